/**
 * drFailover: the disaster-recovery procedure as one run of the config's recovery plan.
 *
 *   assess (no side effects) -> gate `failover` (declare) -> readiness -> restore every database
 *     in the DR region (child workflows, wave by wave) -> gate `cutover` -> switch buckets, move
 *     names (recorded, moved, proven through DNS) -> check the application -> report
 *
 * The RTO clock starts at the declaration (this run's start) and stops when the application
 * first answers correctly from the DR region. Nothing is asked of the primary region: the old
 * primary is not fenced (it is presumed gone and must stay down: the pages and the report say so).
 *
 * Undo: a failure or cancel after names moved points every moved name back (reverse order,
 * proven through DNS); instances a name led clients to are never removed automatically; every
 * other instance is removed by the child that made it (non-cancellable). A cancel of the run
 * reaches its children only through that release, never directly. A rejected cutover
 * removes the instances and leaves every name as it was.
 */
import {
  ActivityOptions,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowHandle,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Decision } from '../domain/approval';
import {
  DrFailoverInput,
  FailoverBucketOutcome,
  FailoverDatabaseReady,
  FailoverDatabaseReport,
  FailoverNameOutcome,
  FailoverOutcome,
  FailoverReport,
  FailoverStepProgress,
  FailoverStepState,
  rpoOf,
} from '../domain/failover';
import { compareFingerprints, ProductionFingerprint, unverifiedParts } from '../domain/production-fingerprint';
import { AssessedPlan, planWaves } from '../domain/recovery-plan';
import { TrafficChange } from '../domain/restore';
import { ApprovalGates } from './approval-gate';
import { failoverDatabase, failoverReleaseSignal, failoverStepReadySignal } from './failover-database';
import { describeFailure } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { LifeboatEnvironment, LifeboatIncidentId, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

type Settings = Awaited<ReturnType<Activities['failoverSettings']>>;
type StepSettings = Settings['steps'][number];

const QUICK: ActivityOptions = { startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } };
const quick = proxyActivities<Activities>(QUICK);
const QUICK_WRITE = '15 seconds';
/** Patch: children start outside the run's cancellation scope and are released (kept, removed or cancelled) by the run alone. */
const CHILDREN_RELEASED_NOT_CANCELLED = 'failover-children-released-not-cancelled';

const now = () => new Date().getTime();
const seconds = (ms: number) => Math.round(ms / 1000);
const endpointText = (e?: { host: string; port?: number }) => (e ? `${e.host}${e.port !== undefined ? `:${e.port}` : ''}` : 'nothing');

export async function drFailover(input: DrFailoverInput): Promise<FailoverReport> {
  const workflowId = workflowInfo().workflowId;
  const declaredAt = now();
  const board = new StatusBoard(input.mode === 'drill' ? 'failover drill' : 'disaster-recovery failover', 'recovery plan');
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([
    { key: LifeboatKind, value: input.mode === 'drill' ? 'failover-drill' : 'dr-failover' },
    { key: LifeboatTarget, value: 'recovery-plan' },
    ...(input.incidentId ? [{ key: LifeboatIncidentId, value: input.incidentId }] : []),
  ]);
  const t = input.timings ?? {};
  const decisions: Decision[] = [];
  const notes: string[] = [];
  const cleanup: string[] = [];
  const names: FailoverNameOutcome[] = [];
  const buckets: FailoverBucketOutcome[] = [];
  const progress = new Map<string, FailoverStepProgress>();
  const ready = new Map<string, FailoverDatabaseReady>();
  const children = new Map<string, { handle: ChildWorkflowHandle<typeof failoverDatabase>; result: Promise<FailoverDatabaseReport | Error> }>();
  const childFailures = new Map<string, string>();
  const childReports: FailoverDatabaseReport[] = [];
  /** Names moved, in order: what a rollback undoes, newest first. */
  const moved: Array<{ step: StepSettings; change: TrafficChange }> = [];
  /** Instances a name was pointed at: never removed automatically. */
  const servedTraffic = new Set<string>();
  // Assigned once the assessment answers; the report helper defined before that reads it.
  let plan: AssessedPlan | undefined;
  let applicationServingAt: number | undefined;
  setHandler(failoverStepReadySignal, (r) => {
    ready.set(r.step, r);
  });

  const settings = await quick.failoverSettings.executeWithOptions({ startToCloseTimeout: QUICK_WRITE, summary: 'Read the recovery plan from the config' }, [input.mode]);
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: settings.environment }]);
  board.rtoTargetSeconds = settings.objectiveSeconds;
  for (const s of settings.steps) {
    const p: FailoverStepProgress = { name: s.name, kind: s.kind, ...(s.target ? { target: s.target } : {}), state: 'waiting' };
    progress.set(s.name, p);
    board.planSteps.push({ name: s.name, kind: s.kind, state: 'waiting' });
  }
  const stepOf = (name: string) => settings.steps.find((s) => s.name === name)!;
  const at = () => seconds(now() - declaredAt);
  const setStep = (name: string, state: FailoverStepState, detail?: string, childWorkflowId?: string) => {
    const p = progress.get(name)!;
    p.state = state;
    if (detail !== undefined) p.detail = detail;
    if (childWorkflowId) p.childWorkflowId = childWorkflowId;
    if (state === 'running' && p.startedAtSecond === undefined) p.startedAtSecond = at();
    if (state === 'done' || state === 'failed') {
      p.finishedAtSecond = at();
      if (p.startedAtSecond !== undefined) p.seconds = p.finishedAtSecond - p.startedAtSecond;
    }
    const shown = board.planSteps.find((b) => b.name === name)!;
    shown.state = state;
    if (p.detail !== undefined) shown.detail = p.detail;
    if (p.childWorkflowId) shown.childWorkflowId = p.childWorkflowId;
    board.stepsChanged();
  };
  const restoreStepFor = (target: string) => settings.steps.find((s) => s.kind === 'restore-database' && s.target === target);
  const instanceOf = (target: string) => {
    const step = restoreStepFor(target);
    return step ? ready.get(step.name)?.instance : undefined;
  };

  const report = (outcome: FailoverOutcome, extra: Partial<FailoverReport> = {}): FailoverReport => ({
    workflowId,
    mode: input.mode,
    outcome,
    requestedBy: input.requestedBy,
    reason: input.reason,
    ...(input.incidentId ? { incidentId: input.incidentId } : {}),
    declaredAt: new Date(declaredAt).toISOString(),
    finishedAt: new Date().toISOString(),
    ...(plan ? { plan } : {}),
    steps: [...progress.values()].map((p) => ({ ...p })),
    rpo: settings.steps
      .filter((s) => s.kind === 'restore-database')
      .map((s) => rpoOf(s.target!, ready.get(s.name)?.restoredTo, input.lastKnownCommits?.[s.target!])),
    names: [...names],
    buckets: [...buckets],
    decisions: [...decisions],
    notes: [...notes],
    cleanup: [...cleanup],
    ...extra,
  });
  /** The report is recorded; a failure to record it is noted in the result, never undoes the failover. */
  const finish = async (r: FailoverReport): Promise<FailoverReport> => {
    try {
      await quick.recordFailoverReport.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: 'Record the report in the catalog and the DR evidence bucket' }, [r]);
      return r;
    } catch (err) {
      if (isCancellation(err)) throw err;
      return { ...r, notes: [...r.notes, `the report could not be recorded: ${describeFailure(err)}`] };
    }
  };
  const gate = async (name: 'failover' | 'cutover', title: string, facts: Array<{ label: string; value: string }>) => {
    const policy = await quick.resolveGatePolicy.executeWithOptions({ startToCloseTimeout: QUICK_WRITE }, [settings.environment, name, input.requestedBy]);
    const decision = await gates.request(policy, { title, facts }, { remindAfterMs: t.remindAfterMs ?? settings.gateTimings.remindAfterMs, abortAfterMs: t.abortAfterMs ?? settings.gateTimings.abortAfterMs });
    decisions.push(decision);
    return decision;
  };

  // A drill takes its own path from here: the failover's commands below stay exactly as recorded.
  if (input.mode === 'drill') return runDrill();

  // 1. Assess: read only, from the DR region.
  board.enter('assessing', 'reading each step\'s DR source, its age and readiness');
  plan = await quick.assessFailoverPlan.executeWithOptions({ startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, summary: 'Assess the recovery plan (no side effects)' }, [input.mode]);
  for (const s of plan.steps) {
    const p = progress.get(s.name);
    if (p && s.predictedSeconds !== undefined) p.predictedSeconds = s.predictedSeconds;
  }
  const predicted = plan.criticalPath.seconds;

  // 2. Declare.
  const moves = settings.steps.filter((s) => s.kind === 'move-name' && s.cutover);
  const declare = await gate('failover', `DECLARE DISASTER: fail over to the DR region (${settings.steps.length} steps)`, [
    { label: 'plan', value: plan.waves.map((w, i) => `wave ${i + 1}: ${w.join(', ')}`).join('; ') },
    { label: 'predicted RTO', value: `${predicted} s on the critical path (${plan.criticalPath.steps.join(' -> ')}) against the ${settings.objectiveSeconds} s objective${predicted > settings.objectiveSeconds ? ': OVER the objective' : ''}` },
    { label: 'RPO per source', value: plan.steps.filter((s) => s.source).map((s) => `${s.name}: ${s.source!.ageSeconds !== undefined ? `${s.source!.ageSeconds} s` : 'unknown'} (${s.source!.description})`).join('; ') || 'no source measured' },
    { label: 'readiness', value: plan.ready ? 'every step ready' : `NOT READY: ${plan.steps.filter((s) => !s.readiness.ready).map((s) => `${s.name}: ${s.readiness.detail}`).join('; ')}` },
    { label: 'instances created', value: settings.steps.filter((s) => s.kind === 'restore-database').map((s) => `${s.target} restored from its DR copies into a new instance (${workflowId}.${s.name})`).join('; ') || 'none' },
    { label: 'names moved', value: moves.map((s) => `${s.cutover!.dnsName} -> the DR instance of ${s.target}`).join('; ') || 'none' },
    { label: 'buckets switched', value: settings.steps.filter((s) => s.kind === 'switch-bucket').map((s) => `${s.target} -> ${s.replica}`).join('; ') || 'none' },
    { label: 'the old primary', value: 'is not fenced (it is presumed unreachable): it must stay down until failback' },
    { label: 'requested by', value: `${input.requestedBy}: ${input.reason}${input.incidentId ? ` (incident ${input.incidentId})` : ''}` },
  ]);
  if (declare.decision !== 'approved') {
    board.enter(declare.decision, `${declare.decision} by ${declare.by}: ${declare.reason}; nothing was made`);
    return finish(report(declare.decision === 'rejected' ? 'rejected' : 'expired'));
  }

  // 3. Readiness: nothing has been made yet, so stopping here leaves nothing behind.
  if (!plan.ready) {
    const reasons = plan.steps.filter((s) => !s.readiness.ready).map((s) => `${s.name}: ${s.readiness.detail}`);
    board.enter('not-ready', `not ready (${reasons.join('; ')}); nothing was made`);
    return finish(report('not-ready', { failure: `the plan is not ready: ${reasons.join('; ')}` }));
  }

  const waves = planWaves(settings.steps);
  try {
    // 4. Restore every database in the DR region, wave by wave, each wave's restores in parallel.
    board.enter('restoring', 'restoring every database from its DR copies');
    for (const wave of waves) {
      const restores = wave.map(stepOf).filter((s) => s.kind === 'restore-database');
      await Promise.all(restores.map((s) => restoreDatabase(s)));
      const failed = restores.filter((s) => childFailures.has(s.name));
      if (failed.length) throw ApplicationFailure.nonRetryable(failed.map((s) => `${s.name}: ${childFailures.get(s.name)}`).join('; '), 'FAILOVER_RESTORE_FAILED');
    }

    // 5. Cut over, behind its own gate.
    const current = await quick.currentNameTargets.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Read what each name answers now' }, [moves.map((s) => ({ dnsName: s.cutover!.dnsName, router: s.cutover!.router }))]);
    const cutover = await gate('cutover', `CUT OVER to the DR region: ${moves.length} name(s), ${settings.steps.filter((s) => s.kind === 'switch-bucket').length} bucket(s)`, [
      ...moves.map((s) => ({ label: s.cutover!.dnsName, value: `${current[s.cutover!.dnsName]} -> ${endpointText(instanceOf(s.target!)?.endpoint)} (${instanceOf(s.target!)?.instanceId}, verified, data as of ${ready.get(restoreStepFor(s.target!)!.name)?.restoredTo ?? 'unknown'})` })),
      ...settings.steps.filter((s) => s.kind === 'switch-bucket').map((s) => ({ label: `bucket ${s.target}`, value: `served from ${s.replica}` })),
      { label: 'the old primary', value: 'is not fenced: keep it down, or clients still holding its address could write to it' },
      { label: 'undo', value: 'every name\'s records are saved first; a failure points them back' },
    ]);
    if (cutover.decision !== 'approved') {
      board.enter('cutover-declined', `cutover ${cutover.decision}: removing the DR instances, names untouched`);
      await CancellationScope.nonCancellable(() => releaseChildren(`the cutover was ${cutover.decision} by ${cutover.by}`));
      for (const s of settings.steps) if (progress.get(s.name)!.state === 'waiting') setStep(s.name, 'skipped', `not run: cutover ${cutover.decision}`);
      board.enter('cutover-rejected', `cutover ${cutover.decision}; ${cleanup.join('; ')}`);
      return await finish(report('cutover-rejected'));
    }
    notes.push('the old primary was not fenced: a failover presumes it unreachable; it must stay down until failback');
    notes.push('the DR instances are not yet re-protected (their WAL is not archived): re-protection is the first step of failback');

    // 6-8. The remaining steps in their waves: buckets, names, the application.
    for (const wave of waves) {
      const rest = wave.map(stepOf).filter((s) => s.kind !== 'restore-database');
      const results = await Promise.allSettled(rest.map((s) => runCutoverStep(s)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
  } catch (err) {
    const cancelled = isCancellation(err);
    const failure = describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      for (const { step, change } of [...moved].reverse()) await rollBackName(step, change);
      await releaseChildren(cancelled ? 'the failover was cancelled' : `the failover failed (${failure})`);
      for (const s of settings.steps) if (['waiting', 'running'].includes(progress.get(s.name)!.state)) setStep(s.name, 'failed', cancelled ? 'cancelled' : 'not completed');
      board.enter(cancelled ? 'cancelled' : 'failed', `${cancelled ? 'cancelled' : failure}${cleanup.length ? `; ${cleanup.join('; ')}` : ''}`);
      const r = report(cancelled ? 'cancelled' : 'failed', { failure });
      await finish(r);
      await quick.notify({ severity: 'critical', title: `Failover ${cancelled ? 'cancelled' : 'failed'}`, text: `${failure}${cleanup.length ? `\n${cleanup.join('\n')}` : ''}`, target: 'recovery-plan' }).catch(() => undefined);
    });
    throw err;
  }

  // 9. Served: every instance stays; the report.
  await releaseChildren('it serves the application after the failover', true);
  const rtoSeconds = seconds((applicationServingAt ?? now()) - declaredAt);
  const done = report('failed-over', {
    rto: {
      seconds: rtoSeconds,
      objectiveSeconds: settings.objectiveSeconds,
      withinObjective: rtoSeconds <= settings.objectiveSeconds,
      predictedSeconds: predicted,
      ...(applicationServingAt ? { applicationServingAt: new Date(applicationServingAt).toISOString() } : {}),
    },
  });
  board.enter('done', `failed over: the application answered from the DR region ${rtoSeconds} s after the declaration (objective ${settings.objectiveSeconds} s)`);
  return finish(done);

  /**
   * The failover drill: the same plan against production left alone. No gates (it touches only what
   * it creates, and scheduled drills run unattended, like restoreDrill). Production is fingerprinted
   * before anything and after everything; restores are drill-... instances on the drill ports; names
   * are written in the drill zone only; the application check runs the application's own copy
   * against those names. Everything the drill made is removed, whatever happens.
   */
  async function runDrill(): Promise<FailoverReport> {
    const drillNames: Record<string, string> = {};
    const startedApps: string[] = [];
    const fingerprintInput = {
      databases: settings.steps.filter((s) => s.kind === 'restore-database').map((s) => s.target!),
      buckets: settings.steps.filter((s) => s.kind === 'switch-bucket').map((s) => s.target!),
      names: settings.steps.filter((s) => s.kind === 'move-name' && s.cutover).map((s) => ({ router: s.cutover!.router, name: s.cutover!.dnsName })),
    };
    const fingerprint = () =>
      quick.fingerprintProduction.executeWithOptions({ startToCloseTimeout: '10 minutes', heartbeatTimeout: STEP_HEARTBEAT, summary: 'Fingerprint production (read-only)' }, [fingerprintInput]);

    board.enter('fingerprinting', 'no gates in a drill: it touches only what it creates; reading production before anything is made');
    const before: ProductionFingerprint = await fingerprint();
    board.enter('assessing', 'reading each step\'s DR source, its age and readiness');
    plan = await quick.assessFailoverPlan.executeWithOptions({ startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, summary: 'Assess the recovery plan (no side effects)' }, [input.mode]);
    for (const s of plan.steps) {
      const p = progress.get(s.name);
      if (p && s.predictedSeconds !== undefined) p.predictedSeconds = s.predictedSeconds;
    }
    notes.push('a drill has no gates: it restores into drill instances and writes drill names only, and production is fingerprinted before and after');
    if (!plan.ready) {
      const reasons = plan.steps.filter((s) => !s.readiness.ready).map((s) => `${s.name}: ${s.readiness.detail}`);
      board.enter('not-ready', `not ready (${reasons.join('; ')}); nothing was made`);
      return finish(report('not-ready', { failure: `the plan is not ready: ${reasons.join('; ')}` }));
    }

    let failure: string | undefined;
    let cancelled: unknown;
    try {
      for (const wave of planWaves(settings.steps)) {
        const restores = wave.map(stepOf).filter((s) => s.kind === 'restore-database');
        if (restores.length) board.enter('restoring', `restoring ${restores.map((s) => s.target).join(', ')} from the DR copies into drill instances`);
        await Promise.all(restores.map((s) => restoreDatabase(s)));
        const failed = restores.filter((s) => childFailures.has(s.name));
        if (failed.length) throw ApplicationFailure.nonRetryable(failed.map((s) => `${s.name}: ${childFailures.get(s.name)}`).join('; '), 'FAILOVER_RESTORE_FAILED');
        const rest = wave.map(stepOf).filter((s) => s.kind !== 'restore-database');
        const results = await Promise.allSettled(rest.map((s) => runDrillStep(s)));
        const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (rejected) throw rejected.reason;
      }
    } catch (err) {
      if (isCancellation(err)) cancelled = err;
      failure = describeFailure(err);
    }

    // Always, and not cancellable: the application copies, the drill names, the drill instances; then production again.
    let after: ProductionFingerprint | undefined;
    await CancellationScope.nonCancellable(async () => {
      board.enter('cleaning-up', 'stopping the application copies, removing the drill names and the drill instances');
      for (const step of startedApps) cleanup.push(await quick.stopDrillApplication.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Stop the drill application of ${step}` }, [workflowId, step]));
      const removed = await quick.removeDrillNames.executeWithOptions({ startToCloseTimeout: '5 minutes', summary: 'Remove the drill names' }, [workflowId]);
      cleanup.push(removed.length ? `removed drill names ${removed.join(', ')}` : 'no drill names to remove');
      await releaseChildren('the drill is over');
      after = await fingerprint();
    });
    const productionDifferences = compareFingerprints(before, after!);
    const unverified = unverifiedParts(before, after!);
    if (!failure && productionDifferences.length) failure = `production changed during the drill: ${productionDifferences.map((d) => `${d.part}: ${d.change}`).join('; ')}`;
    for (const s of settings.steps) if (['waiting', 'running'].includes(progress.get(s.name)!.state)) setStep(s.name, 'failed', cancelled ? 'cancelled' : 'not completed');
    const rtoSeconds = applicationServingAt ? seconds(applicationServingAt - declaredAt) : undefined;
    const outcome: FailoverOutcome = cancelled ? 'cancelled' : failure ? 'failed' : 'passed';
    const r = report(outcome, {
      ...(failure ? { failure } : {}),
      ...(rtoSeconds !== undefined
        ? { rto: { seconds: rtoSeconds, objectiveSeconds: settings.objectiveSeconds, withinObjective: rtoSeconds <= settings.objectiveSeconds, predictedSeconds: plan.criticalPath.seconds, applicationServingAt: new Date(applicationServingAt!).toISOString() } }
        : {}),
      drill: { productionDifferences, unverified, drillNames: Object.values(drillNames) },
    });
    board.enter(
      outcome === 'passed' ? 'done' : outcome,
      outcome === 'passed'
        ? `drill passed: the application answered from the drill instances ${rtoSeconds ?? '?'} s after the start (predicted ${plan.criticalPath.seconds} s); production unchanged; everything removed`
        : `${failure}${cleanup.length ? `; ${cleanup.join('; ')}` : ''}`,
    );
    if (cancelled) {
      await CancellationScope.nonCancellable(() => finish(r));
      throw cancelled;
    }
    const recorded = await finish(r);
    if (outcome === 'failed') {
      await quick.notify({ severity: 'warning', title: 'Failover drill failed', text: `${failure}`, target: 'recovery-plan' }).catch(() => undefined);
      throw ApplicationFailure.nonRetryable(`the failover drill failed: ${failure}`, 'FAILOVER_DRILL_FAILED', recorded);
    }
    return recorded;

    async function runDrillStep(s: StepSettings): Promise<void> {
      setStep(s.name, 'running');
      if (s.kind === 'switch-bucket') {
        const b = await quick.switchBucketToReplica.executeWithOptions({ startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, summary: `Measure the replica of ${s.target} (a drill does not switch)` }, [s.name, s.target!, true]);
        buckets.push(b);
        setStep(s.name, 'done', b.detail);
      } else if (s.kind === 'move-name') {
        const instance = instanceOf(s.target!);
        if (!instance?.endpoint) throw ApplicationFailure.nonRetryable(`${s.name}: ${s.target} has no drill instance to point a drill name at`, 'NO_DR_INSTANCE');
        const cut = s.cutover!;
        await quick.ensureDrillZone.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Make sure router ${cut.router} has its drill zone` }, [cut.router]);
        const { drillName } = await quick.pointDrillName.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Write the drill copy of ${cut.dnsName}` }, [
          { workflowId, router: cut.router, target: s.target!, productionName: cut.dnsName, endpoint: { host: instance.endpoint.host, port: instance.endpoint.port }, ttlSeconds: cut.ttlSeconds },
        ]);
        drillNames[s.target!] = drillName;
        names.push({ step: s.name, target: s.target!, name: drillName, from: 'nothing (a drill name)', to: endpointText(instance.endpoint), state: 'moved', detail: `the drill copy of ${cut.dnsName}; the production name is not touched` });
        const through = await quick.verifyThroughDns.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Connect through ${drillName}` }, [s.target!, { dnsName: drillName, router: cut.router }, instance.endpoint]);
        if (!through.ok) throw ApplicationFailure.nonRetryable(`${s.name}: the drill name does not lead to the drill instance: ${through.detail}`, 'DRILL_NAME_NOT_SERVED');
        setStep(s.name, 'done', `${drillName} -> ${endpointText(instance.endpoint)} (drill zone only); ${through.detail}`);
      } else if (s.kind === 'check-application') {
        const expect = s.servesFrom ? instanceOf(s.servesFrom)?.endpoint : undefined;
        if (!s.drill) {
          // No copy of the application to run: what can be proven is that each drill name leads to its drill instance.
          const proofs: string[] = [];
          for (const [target, drillName] of Object.entries(drillNames)) {
            const move = settings.steps.find((m) => m.kind === 'move-name' && m.target === target)!;
            const through = await quick.verifyThroughDns.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Connect through ${drillName}` }, [target, { dnsName: drillName, router: move.cutover!.router }, instanceOf(target)!.endpoint!]);
            if (!through.ok) throw ApplicationFailure.nonRetryable(`${s.name}: ${through.detail}`, 'DRILL_NAME_NOT_SERVED');
            proofs.push(through.detail);
          }
          applicationServingAt = Math.max(applicationServingAt ?? 0, now());
          setStep(s.name, 'done', `the step has no drill block, so the application itself was not run: the databases were checked through the drill names only (${proofs.join('; ') || 'no drill names'})`);
          return;
        }
        // Recorded first: a start that fails half-way still leaves a process the cleanup must stop. Few retries: a copy that exits on start rarely recovers.
        startedApps.push(s.name);
        const app = await quick.startDrillApplication.executeWithOptions({ startToCloseTimeout: '3 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 3, initialInterval: '1 second' }, summary: `Start the drill copy of the application for ${s.name}` }, [
          { workflowId, step: s.name, command: s.drill.command, url: s.drill.url, names: { ...drillNames }, dnsServer: s.drill.dnsServer },
        ]);
        const check = await quick.checkApplication.executeWithOptions(
          { startToCloseTimeout: (s.timeoutMs ?? 300000) + 60000, heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 1 }, summary: `Check the drill application at ${app.url}` },
          [{ url: app.url, ...(expect ? { expect } : {}), timeoutMs: s.timeoutMs ?? 300000, intervalMs: t.appCheckIntervalMs ?? 2000 }],
        );
        if (!check.ok) throw ApplicationFailure.nonRetryable(`${s.name}: the drill application ${check.detail}`, 'APPLICATION_NOT_SERVING');
        applicationServingAt = Math.max(applicationServingAt ?? 0, Date.parse(check.firstCorrectAt!));
        setStep(s.name, 'done', `the application's drill copy (pid ${app.pid}, port ${app.port}) at ${app.url}: ${check.detail}`);
      }
    }
  }

  /** Starts the step's child and waits until its instance is verified, or the child ended without one. */
  async function restoreDatabase(s: StepSettings): Promise<void> {
    const childId = `${workflowId}.${s.name}`;
    setStep(s.name, 'running', `restoring ${s.target} from the DR region`, childId);
    const start = () =>
      startChild(failoverDatabase, {
        workflowId: childId,
        args: [
          {
            target: s.target!,
            step: s.name,
            requestedBy: input.requestedBy,
            reason: input.reason,
            ...(input.incidentId ? { incidentId: input.incidentId } : {}),
            pollIntervalMs: t.pollIntervalMs ?? 5000,
            ...(input.keep ? { keep: true } : {}),
            ...(input.mode === 'drill' ? { purpose: 'drill' as const } : {}),
          },
        ],
        // Should this run end without releasing it, the child is asked to cancel: it then removes its own instance.
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      });
    // Started outside this run's cancellation: a cancel of the run would otherwise cancel the child at the same
    // moment releaseChildren releases it, so the release could find it closed (failing the cleanup) and its report
    // of what it removed would be lost. releaseChildren tells every child what to do, a cancelled run's too.
    const handle = patched(CHILDREN_RELEASED_NOT_CANCELLED) ? await CancellationScope.nonCancellable(start) : await start();
    const result = handle.result().then(
      (r) => r,
      (err: unknown) => {
        childFailures.set(s.name, describeFailure(err));
        return err instanceof Error ? err : new Error(String(err));
      },
    );
    children.set(s.name, { handle, result });
    await condition(() => ready.has(s.name) || childFailures.has(s.name));
    const r = ready.get(s.name);
    if (r) setStep(s.name, 'done', `${r.instance.instanceId} at ${endpointText(r.instance.endpoint)}, data as of ${r.restoredTo ?? 'unknown'}, verified (${r.verification.checks.length} checks)`);
    else setStep(s.name, 'failed', childFailures.get(s.name));
  }

  /** Tells every child still open whether to keep its instance (served traffic, or the failover succeeded) and collects their reports. */
  async function releaseChildren(why: string, keepAll = false): Promise<void> {
    for (const [step, child] of children) {
      const instance = ready.get(step)?.instance;
      if (childFailures.has(step)) continue;
      const keep = keepAll || (instance !== undefined && servedTraffic.has(instance.instanceId));
      const reason = keep && !keepAll ? 'a name led clients to it, so lifeboat never removes it automatically' : why;
      if (instance) await getExternalWorkflowHandle(child.handle.workflowId).signal(failoverReleaseSignal, { keep, reason });
      else await getExternalWorkflowHandle(child.handle.workflowId).cancel();
    }
    for (const [step, child] of children) {
      const r = await child.result;
      if (r instanceof Error) {
        if (!childFailures.has(step) || ready.has(step)) cleanup.push(`${step}: ${describeFailure(r)}`);
        else cleanup.push(`${step}: the child removed what it made (${childFailures.get(step)})`);
        continue;
      }
      childReports.push(r);
      if (r.outcome === 'kept' && r.ready) cleanup.push(`kept ${r.ready.instance.instanceId}: ${keepAll ? why : 'a name led clients to it, so lifeboat never removes it automatically'}`);
      cleanup.push(...r.cleanup);
    }
    children.clear();
  }

  async function runCutoverStep(s: StepSettings): Promise<void> {
    setStep(s.name, 'running');
    if (s.kind === 'switch-bucket') {
      const b = await quick.switchBucketToReplica.executeWithOptions({ startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, summary: `Switch ${s.target} to its replica` }, [s.name, s.target!]);
      buckets.push(b);
      setStep(s.name, 'done', b.detail);
    } else if (s.kind === 'move-name') {
      const instance = instanceOf(s.target!);
      if (!instance?.endpoint) throw ApplicationFailure.nonRetryable(`${s.name}: ${s.target} has no DR instance to point ${s.cutover?.dnsName} at`, 'NO_DR_INSTANCE');
      const endpoint = instance.endpoint;
      const cut = s.cutover!;
      const change = await quick.recordTrafficBefore.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Record what ${cut.dnsName} points at now` }, [s.target!, cut, endpoint]);
      // Before the name moves: from now on nothing removes this instance automatically. The mark is
      // in the instance's record, on the host that made it (its agent, patch host-work-on-agents).
      const onTargetHost = onHost(QUICK, await agentQueueOf(s.target!));
      await onTargetHost.markServedTraffic.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Mark ${instance.instanceId} as serving traffic` }, [s.target!, instance.instanceId]);
      servedTraffic.add(instance.instanceId);
      moved.push({ step: s, change });
      const outcome: FailoverNameOutcome = { step: s.name, target: s.target!, name: cut.dnsName, from: endpointText(change.previous.endpoint), to: endpointText(endpoint), state: 'not-moved', detail: 'recorded', repairCommand: change.repairCommand };
      names.push(outcome);
      await quick.moveTraffic.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Point ${cut.dnsName} at ${instance.instanceId}` }, [change]);
      outcome.state = 'moved';
      const through = await quick.verifyThroughDns.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Connect through ${cut.dnsName}` }, [s.target!, cut, endpoint]);
      if (!through.ok) throw ApplicationFailure.nonRetryable(`${s.name}: the move did not take: ${through.detail}`, 'CUTOVER_NOT_SERVED');
      outcome.detail = through.detail;
      setStep(s.name, 'done', `${cut.dnsName}: ${outcome.from} -> ${outcome.to}; ${through.detail}`);
    } else if (s.kind === 'check-application') {
      const expect = s.servesFrom ? instanceOf(s.servesFrom)?.endpoint : undefined;
      const check = await quick.checkApplication.executeWithOptions(
        { startToCloseTimeout: (s.timeoutMs ?? 300000) + 60000, heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 1 }, summary: `Check the application at ${s.url}` },
        [{ url: s.url!, ...(expect ? { expect } : {}), timeoutMs: s.timeoutMs ?? 300000, intervalMs: t.appCheckIntervalMs ?? 2000 }],
      );
      if (!check.ok) throw ApplicationFailure.nonRetryable(`${s.name}: ${check.detail}`, 'APPLICATION_NOT_SERVING');
      const firstAt = Date.parse(check.firstCorrectAt!);
      applicationServingAt = Math.max(applicationServingAt ?? 0, firstAt);
      setStep(s.name, 'done', check.detail);
    }
  }

  /** Points a moved name back as recorded; a rollback that fails is reported with the command that repairs it by hand. */
  async function rollBackName(step: StepSettings, change: TrafficChange): Promise<void> {
    const outcome = names.find((n) => n.name === change.name && n.step === step.name);
    board.enter('rolling-back', `pointing ${change.name} back at ${endpointText(change.previous.endpoint)}`);
    try {
      const detail = await quick.rollBackFailoverName.executeWithOptions({ startToCloseTimeout: '5 minutes', summary: `Point ${change.name} back at ${endpointText(change.previous.endpoint)}` }, [change]);
      if (outcome) Object.assign(outcome, { state: 'rolled-back', detail });
      cleanup.push(detail);
      setStep(step.name, 'rolled-back', detail);
    } catch (rollbackErr) {
      const why = describeFailure(rollbackErr);
      if (outcome) Object.assign(outcome, { state: 'rollback-failed', detail: why });
      cleanup.push(`ROLLBACK FAILED for ${change.name} (${why}); point it back with: ${change.repairCommand}`);
      setStep(step.name, 'failed', `rollback failed: ${why}`);
    }
  }
}
