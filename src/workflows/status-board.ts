/**
 * The live state of a long-running workflow, as people see it: the `status` query (CLI), the
 * phase search attribute and the current-details markdown (Web UI), and a timeline.
 */
import { setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { Decision, PendingGate, TimelineEntry, WorkflowStatus } from '../domain/approval';
import { statusQuery } from './messages';
import { LifeboatAwaitingApproval } from './search-attributes';
import { showPhase } from './ui';
import { formatDuration } from '../domain/format';

export class StatusBoard {
  readonly startedAt = new Date().toISOString();
  phase = 'starting';
  pendingGate?: PendingGate;
  readonly decisions: Decision[] = [];
  readonly timeline: TimelineEntry[] = [];
  readonly refused: WorkflowStatus['refused'] = [];
  /** Refused signals beyond the MAX_REFUSED kept in `refused`. */
  refusedOverflow = 0;
  /** What the run works on, shown on top (a drill: the backup under test). */
  subject?: string;
  readonly validations: NonNullable<WorkflowStatus['validations']> = [];
  /** A recovery plan's steps (drFailover), kept current by the workflow; shown once it has any. */
  readonly planSteps: NonNullable<WorkflowStatus['planSteps']> = [];
  private note = '';

  constructor(
    readonly kind: string,
    readonly target: string,
    /** Set once known (validation tells it); shown as elapsed against the target. */
    public rtoTargetSeconds?: number,
  ) {
    setHandler(statusQuery, () => this.snapshot());
  }

  /** Moves to a phase: timeline entry, search attribute and the Web UI's current details. */
  enter(phase: string, note: string): void {
    this.phase = phase;
    this.note = note;
    this.timeline.push({ at: new Date().toISOString(), phase, note });
    showPhase(phase, this.markdown(note));
  }

  /** A validation completed: listed at once in the status query and the Web UI's details (no command, so replay-safe anywhere). */
  validated(check: { name: string; ok: boolean; detail: string }): void {
    this.validations.push({ name: check.name, ok: check.ok, detail: check.detail, at: new Date().toISOString() });
    setCurrentDetails(this.markdown(this.note));
  }

  /** The pending gate changed in place (an approval of several came in): the Web UI's details follow (no command, so replay-safe anywhere). */
  gateProgressed(): void {
    setCurrentDetails(this.markdown(this.note));
  }

  /** A plan step changed state: shown at once (no command, so replay-safe anywhere). */
  stepsChanged(): void {
    setCurrentDetails(this.markdown(this.note));
  }

  setPendingGate(gate: PendingGate | undefined): void {
    this.pendingGate = gate;
    upsertSearchAttributes([{ key: LifeboatAwaitingApproval, value: gate !== undefined }]);
  }

  elapsedSeconds(): number {
    return Math.round((new Date().getTime() - Date.parse(this.startedAt)) / 1000);
  }

  snapshot(): WorkflowStatus {
    return {
      kind: this.kind,
      target: this.target,
      phase: this.phase,
      startedAt: this.startedAt,
      rtoTargetSeconds: this.rtoTargetSeconds,
      pendingGate: this.pendingGate,
      decisions: [...this.decisions],
      timeline: [...this.timeline],
      refused: [...this.refused],
      ...(this.refusedOverflow ? { refusedOverflow: this.refusedOverflow } : {}),
      ...(this.subject ? { subject: this.subject } : {}),
      ...(this.validations.length ? { validations: [...this.validations] } : {}),
      ...(this.planSteps.length ? { planSteps: this.planSteps.map((p) => ({ ...p })) } : {}),
    };
  }

  private markdown(note: string): string {
    const lines = [`**${this.kind}** of **${this.target}**: ${note}`, ''];
    if (this.subject) lines.push(`Under test: ${this.subject}`, '');
    if (this.rtoTargetSeconds) {
      // An absolute deadline stays true while the page sits unchanged; the elapsed time is as of this update.
      const due = new Date(Date.parse(this.startedAt) + this.rtoTargetSeconds * 1000).toISOString();
      const elapsed = this.elapsedSeconds();
      lines.push(
        `RTO target ${formatDuration(this.rtoTargetSeconds)}: recovery due by **${due}** (started ${this.startedAt}); elapsed ${formatDuration(elapsed)} at ${new Date().toISOString()}${elapsed > this.rtoTargetSeconds ? ', **over target**' : ''}.`,
        '',
      );
    }
    if (this.validations.length) {
      lines.push(`### Validations (${this.validations.filter((v) => v.ok).length} of ${this.validations.length} passed)`, '');
      for (const v of this.validations) lines.push(`- ${v.ok ? 'ok' : '**FAILED**'}: ${v.name}: ${v.detail}`);
      lines.push('');
    }
    if (this.planSteps.length) {
      lines.push('### Recovery plan', '', '| step | kind | state | detail |', '|---|---|---|---|');
      for (const p of this.planSteps) lines.push(`| ${p.name} | ${p.kind} | ${p.state} | ${[p.childWorkflowId ? `child ${p.childWorkflowId}` : '', p.detail ?? ''].filter(Boolean).join(': ').replace(/\|/g, '/')} |`);
      lines.push('');
    }
    const gate = this.pendingGate;
    if (gate) {
      lines.push(`### Waiting for approval: ${gate.prompt.title}`, '', ...gate.prompt.facts.map((f) => `- **${f.label}:** ${f.value}`), '');
      lines.push(`Any of: ${gate.allowedRoles.join(', ')}${gate.requestedBy ? ` (not ${gate.requestedBy})` : ''}. Reminder at ${gate.remindAt}, aborts at ${gate.abortAt}.`, '');
      if (gate.required && gate.required > 1) {
        const given = gate.approvals ?? [];
        lines.push(`Needs ${gate.required} different people: ${given.length} approved so far${given.length ? ` (${given.map((a) => a.by).join(', ')})` : ''}, ${gate.required - given.length} more needed.`, '');
      }
      lines.push('```', `lifeboat approve ${workflowInfo().workflowId} --gate ${gate.gate} --reason "..." --as <you>`, `lifeboat reject ${workflowInfo().workflowId} --reason "..." --as <you>`, '```');
    }
    for (const d of this.decisions) lines.push(`- ${d.gate}: **${d.decision}** by ${d.by} at ${d.at}: ${d.reason}`);
    return lines.join('\n');
  }
}

