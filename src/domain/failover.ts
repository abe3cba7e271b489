/**
 * Disaster-recovery failover (drFailover): what the incident commander asks for, the state of
 * each plan step as the run goes, and the report. Pure data and rules: the workflow, its
 * activities and the CLI share them.
 */
import { Decision } from './approval';
import { FingerprintDifference } from './production-fingerprint';
import { AssessedPlan, PlanStepKind } from './recovery-plan';
import { InstanceDescription } from './ports';
import { VerificationSummary } from './verification';

/** Durations a run may override (tests, drills): gate reminder/expiry, engine polling, application polling. All in ms. */
export interface FailoverTimings {
  remindAfterMs?: number;
  abortAfterMs?: number;
  pollIntervalMs?: number;
  appCheckIntervalMs?: number;
}

export interface DrFailoverInput {
  mode: 'failover' | 'drill';
  requestedBy: string;
  reason: string;
  incidentId?: string;
  /**
   * The last commit known on the primary before the disaster, per database target (from the
   * application, a monitoring system, the sample app's counter): what the RPO is measured
   * against. Without it the report says the loss is unknown beyond the recovered point.
   */
  lastKnownCommits?: Record<string, { at: string; detail?: string }>;
  timings?: FailoverTimings;
  /** Keep instances a failed or rejected run made (forensics); the default removes them. */
  keep?: boolean;
}

export type FailoverStepState = 'waiting' | 'running' | 'done' | 'failed' | 'skipped' | 'rolled-back';

/** One plan step as the run went: shown on the status board, kept in the report. */
export interface FailoverStepProgress {
  name: string;
  kind: PlanStepKind;
  target?: string;
  state: FailoverStepState;
  /** Seconds from the declaration (workflow start) to the step's start and end. */
  startedAtSecond?: number;
  finishedAtSecond?: number;
  seconds?: number;
  predictedSeconds?: number;
  detail?: string;
  /** The child workflow that does the step (restore-database). */
  childWorkflowId?: string;
}

/** What the child workflow restoring one database reports to its parent once its instance is verified. */
export interface FailoverDatabaseReady {
  step: string;
  target: string;
  instance: InstanceDescription;
  /** The point the instance's data is as of (the newest the DR repository held when the restore ran). */
  restoredTo?: string;
  verification: VerificationSummary;
  /** What could not be done with the primary region down, said instead of done (e.g. source facts). */
  notes: string[];
  seconds: { validation: number; restore: number; walReplay: number; verification: number };
}

export interface FailoverDatabaseInput {
  target: string;
  step: string;
  requestedBy: string;
  reason: string;
  incidentId?: string;
  pollIntervalMs: number;
  keep?: boolean;
  /** A failover drill's restore: a drill-... instance on the drill ports, which the drill sweeper recognises. */
  purpose?: 'drill';
}

/** The parent's word to a child once the cutover is decided: keep the instance (it serves or may serve traffic) or remove it. */
export interface FailoverRelease {
  keep: boolean;
  reason: string;
}

export interface FailoverDatabaseReport {
  step: string;
  target: string;
  outcome: 'kept' | 'removed' | 'failed' | 'cancelled';
  ready?: FailoverDatabaseReady;
  cleanup: string[];
  failure?: string;
}

/** A name the run moved (or tried to), and where it stands now. */
export interface FailoverNameOutcome {
  step: string;
  target: string;
  name: string;
  from: string;
  to: string;
  state: 'moved' | 'rolled-back' | 'rollback-failed' | 'not-moved';
  detail: string;
  repairCommand?: string;
}

export interface FailoverBucketOutcome {
  step: string;
  target: string;
  replica: string;
  /** Seconds between the source's newest object and the replica's, when the source answered. */
  lagSeconds?: number;
  detail: string;
}

export interface FailoverRpo {
  target: string;
  recoveredTo?: string;
  lastKnownCommit?: string;
  /** Committed data lost: lastKnownCommit - recoveredTo, 0 when the recovered point is not older; undefined when unknowable. */
  seconds?: number;
  detail: string;
}

export type FailoverOutcome = 'failed-over' | 'passed' | 'rejected' | 'expired' | 'not-ready' | 'cutover-rejected' | 'failed' | 'cancelled';

/** What a failover drill proves beyond the steps: production left exactly as it was. */
export interface FailoverDrillProof {
  /** Production before vs after the drill: must be empty for a passed drill. */
  productionDifferences: FingerprintDifference[];
  /** Parts of production that could not be read before or after, so are not proven untouched. */
  unverified: string[];
  /** The drill names written (and removed afterwards). */
  drillNames: string[];
}

export interface FailoverReport {
  workflowId: string;
  mode: 'failover' | 'drill';
  outcome: FailoverOutcome;
  requestedBy: string;
  reason: string;
  incidentId?: string;
  declaredAt: string;
  finishedAt: string;
  plan?: AssessedPlan;
  steps: FailoverStepProgress[];
  /** Declaration to the application first answering correctly from the DR region. */
  rto?: { seconds: number; objectiveSeconds: number; withinObjective: boolean; predictedSeconds?: number; applicationServingAt?: string };
  rpo: FailoverRpo[];
  names: FailoverNameOutcome[];
  buckets: FailoverBucketOutcome[];
  decisions: Decision[];
  /** What the run decided on its own and why (kept instances, skipped fencing, re-protection left). */
  notes: string[];
  cleanup: string[];
  failure?: string;
  drill?: FailoverDrillProof;
  lessons?: Array<{ at: string; by: string; text: string }>;
}

/** Committed data lost for one database: the last commit known on the primary against the point recovered. */
export function rpoOf(target: string, recoveredTo: string | undefined, lastKnown: { at: string; detail?: string } | undefined): FailoverRpo {
  if (!recoveredTo) return { target, detail: 'no instance was recovered' };
  if (!lastKnown) return { target, recoveredTo, detail: `recovered to ${recoveredTo}; the last commit on the primary is not known, so the data lost after that point is unknown` };
  const lost = Math.max(0, Math.round((Date.parse(lastKnown.at) - Date.parse(recoveredTo)) / 1000));
  const what = lastKnown.detail ? ` (${lastKnown.detail})` : '';
  return {
    target,
    recoveredTo,
    lastKnownCommit: lastKnown.at,
    seconds: lost,
    detail: lost === 0 ? `recovered to ${recoveredTo}, not before the last known commit at ${lastKnown.at}${what}: no committed data lost` : `recovered to ${recoveredTo}, ${lost} s before the last known commit at ${lastKnown.at}${what}`,
  };
}

/** The report as Markdown, for the evidence bucket and people. */
export function failoverMarkdown(r: FailoverReport): string {
  const lines = [`# ${r.mode === 'drill' ? 'Failover drill' : 'Disaster-recovery failover'} ${r.workflowId}: ${r.outcome}`, ''];
  lines.push(`- declared: ${r.declaredAt} by ${r.requestedBy}: ${r.reason}${r.incidentId ? ` (incident ${r.incidentId})` : ''}`, `- finished: ${r.finishedAt}`);
  if (r.rto) {
    lines.push(`- RTO: ${r.rto.seconds} s against the ${r.rto.objectiveSeconds} s objective (${r.rto.withinObjective ? 'within' : 'OVER'})${r.rto.predictedSeconds !== undefined ? `; predicted ${r.rto.predictedSeconds} s` : ''}`);
  }
  if (r.failure) lines.push(`- failure: ${r.failure}`);
  if (r.drill) {
    const diffs = r.drill.productionDifferences;
    lines.push(`- production: ${diffs.length ? `CHANGED during the drill: ${diffs.map((d) => `${d.part}: ${d.change}`).join('; ')}` : 'unchanged (fingerprints before and after the drill are equal)'}`);
    if (r.drill.unverified.length) lines.push(`- not verified (unreadable): ${r.drill.unverified.join('; ')}`);
    if (r.drill.drillNames.length) lines.push(`- drill names: ${r.drill.drillNames.join(', ')}`);
  }
  lines.push('', '## Steps', '', '| step | kind | state | predicted s | measured s | detail |', '|---|---|---|---|---|---|');
  for (const s of r.steps) lines.push(`| ${s.name} | ${s.kind} | ${s.state} | ${s.predictedSeconds ?? ''} | ${s.seconds ?? ''} | ${(s.detail ?? '').replace(/\|/g, '/')} |`);
  lines.push('', '## RPO', '');
  for (const p of r.rpo) lines.push(`- ${p.target}: ${p.seconds === undefined ? 'unknown' : `${p.seconds} s`}: ${p.detail}`);
  if (r.names.length) {
    lines.push('', '## Names', '');
    for (const n of r.names) lines.push(`- ${n.name}: ${n.from} -> ${n.to}: ${n.state}: ${n.detail}${n.repairCommand ? ` (repair: \`${n.repairCommand}\`)` : ''}`);
  }
  if (r.buckets.length) {
    lines.push('', '## Buckets', '');
    for (const b of r.buckets) lines.push(`- ${b.target} -> ${b.replica}: ${b.detail}`);
  }
  lines.push('', '## Decisions', '');
  for (const d of r.decisions) lines.push(`- ${d.gate}: ${d.decision} by ${d.by} at ${d.at}: ${d.reason}`);
  if (r.notes.length) lines.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  if (r.cleanup.length) lines.push('', '## Cleanup', '', ...r.cleanup.map((c) => `- ${c}`));
  if (r.lessons?.length) lines.push('', '## Lessons', '', ...r.lessons.map((l) => `- ${l.at} ${l.by}: ${l.text}`));
  return `${lines.join('\n')}\n`;
}
