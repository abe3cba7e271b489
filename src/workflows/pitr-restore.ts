/**
 * pitrRestore: the data as it was at a point in time, in a NEW instance, never over the source.
 *
 *   validate (no side effects) -> approval gate -> restore -> WAL replay -> verify
 *     -> [cutover gate -> DNS cutover -> connect through the name] -> report
 *
 * Failure or cancellation after the instance exists: compensation in a non-cancellable scope
 * removes it (unless `keep`), and the report says what was removed. A failed verification
 * never leads to cutover.
 *
 * Cutover (patch `undoable-cutover`): the restored instance is readied, the source fenced, the
 * name's records recorded, then moved; verified through DNS; then the new primary is protected.
 * Any failure or cancel after the fence first puts the name back and proves it through DNS, then
 * unfences the source, and only then compensates; an instance that took traffic is kept. When the
 * rollback itself fails nothing is removed or unfenced, and the report says how to repair by hand.
 * Reporting and notifying (patch `best-effort-report`) never undo work that succeeded.
 */
import { ActivityCancellationType, ActivityOptions, ApplicationFailure, CancellationScope, isCancellation, patched, proxyActivities, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Decision } from '../domain/approval';
import { InstanceDescription, SourceFence } from '../domain/ports';
import { PhaseDurations, PitrRestoreInput, PitrRestoreReport, RestoreOutcome, TrafficChange, TrafficOutcome, ValidatedRestore } from '../domain/restore';
import { LifeboatEnvironment, LifeboatIncidentId, LifeboatKind, LifeboatTarget } from './search-attributes';
import { SourceFacts, VerificationSummary } from '../domain/verification';
import { ApprovalGates } from './approval-gate';
import { StatusBoard } from './status-board';
import { describeFailure, failureType } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { CRASH_RETRY, STEP_HEARTBEAT } from './step-heartbeat';

const QUICK: ActivityOptions = { startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } };
const LONG: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: STEP_HEARTBEAT,
  retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 },
};
const quick = proxyActivities<Activities>(QUICK);
const long = proxyActivities<Activities>(LONG);

/**
 * Short activities heartbeat (withHeartbeats) under this timeout, so a worker killed during one
 * costs seconds, not the whole start-to-close timeout. Activity options are not commands: changing
 * them needs no patch. Catalog-only writes of milliseconds get QUICK_WRITE instead.
 */
const SHORT_HEARTBEAT = '15 seconds';
const QUICK_WRITE = '15 seconds';

/** Patch ids: new command sequences, so histories recorded before them still replay. */
const UNDOABLE_CUTOVER = 'undoable-cutover';
const BEST_EFFORT_REPORT = 'best-effort-report';

const now = () => new Date().getTime();

/** Data between the restore point and the latest recoverable point (a `latest` resolved after validation can be the later one). */
function rpoOf(restorePoint: string, latestAtValidation: string): NonNullable<PitrRestoreReport['rpo']> {
  const latestRecoverable = Date.parse(restorePoint) > Date.parse(latestAtValidation) ? restorePoint : latestAtValidation;
  return { restorePoint, latestRecoverable, seconds: seconds(Date.parse(latestRecoverable) - Date.parse(restorePoint)) };
}
const endpointText = (e?: { host: string; port?: number }) => (e ? `${e.host}${e.port !== undefined ? `:${e.port}` : ''}` : 'nothing');
const seconds = (ms: number) => Math.round(ms / 1000);

export async function pitrRestore(input: PitrRestoreInput): Promise<PitrRestoreReport> {
  const workflowId = workflowInfo().workflowId;
  const requestedAt = now();
  const board = new StatusBoard('point-in-time restore', input.target);
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'pitr-restore' },
    { key: LifeboatTarget, value: input.target },
    ...(input.incidentId ? [{ key: LifeboatIncidentId, value: input.incidentId }] : []),
  ]);
  const phases: PhaseDurations = { validation: 0, waitingForApproval: 0, restore: 0, walReplay: 0, verification: 0, cutover: 0 };
  const decisions: Decision[] = [];
  const cleanup: string[] = [];
  let instance: InstanceDescription | undefined;
  let verification: VerificationSummary | undefined;
  // Assigned once validation answers; the report and gate helpers defined before that read it.
  // eslint-disable-next-line prefer-const
  let validated: ValidatedRestore | undefined;
  /** From here on a (half-made) instance may exist, and failure must remove it (the activity removes only what this run made). */
  let restoreAttempted = false;
  /** The point the data is as of: `latest` is resolved when the restore runs, not at validation. */
  let restoredTo: string | undefined;
  /** Set before the source is fenced and before the name moves: what a rollback must undo. */
  let fence: SourceFence | undefined;
  let traffic: TrafficChange | undefined;
  let trafficOutcome: TrafficOutcome | undefined;
  /** The name may have led clients to the restored instance: it is never removed automatically. */
  let servedTraffic = false;
  const undelivered: string[] = [];

  const report = (outcome: RestoreOutcome, extra: Partial<PitrRestoreReport> = {}): PitrRestoreReport => ({
    workflowId,
    outcome,
    target: input.target,
    requestedBy: input.requestedBy,
    reason: input.reason,
    incidentId: input.incidentId,
    restorePoint: restoredTo ?? validated?.pointTime ?? input.restorePoint,
    destination: instance ? { instanceId: instance.instanceId, endpoint: instance.endpoint } : undefined,
    verification,
    decisions,
    cleanup,
    ...extra,
  });
  const finish = async (r: PitrRestoreReport): Promise<PitrRestoreReport> => {
    await quick.recordRestoreReport.executeWithOptions({ startToCloseTimeout: QUICK_WRITE, summary: 'Record the report in the catalog' }, [r]);
    return r;
  };
  /** Recording and notifying after the work is done: a failure is noted, never undoes the work. */
  const bestEffort = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      undelivered.push(`${what}: ${describeFailure(err)}`);
    }
  };
  const gate = async (name: Parameters<Activities['resolveGatePolicy']>[1], title: string, facts: Array<{ label: string; value: string }>) => {
    const policy = await quick.resolveGatePolicy.executeWithOptions({ startToCloseTimeout: QUICK_WRITE }, [validated!.environment, name, input.requestedBy]);
    const started = now();
    const decision = await gates.request(policy, { title, facts }, validated!.timings);
    phases.waitingForApproval += seconds(now() - started);
    decisions.push(decision);
    return decision;
  };
  /** A cancel while the first gate waits: nothing exists yet, but the catalog still gets the run and its decisions. */
  const recordingCancellation = async (gateName: string, wait: () => Promise<Decision>): Promise<Decision> => {
    try {
      return await wait();
    } catch (err) {
      if (isCancellation(err) && patched('record-cancel-at-gate')) {
        await CancellationScope.nonCancellable(async () => {
          board.enter('cancelled', `cancelled while waiting for the ${gateName} gate; nothing was created`);
          await finish(report('cancelled', { failure: `cancelled while waiting for the ${gateName} gate; nothing was created` }));
        });
      }
      throw err;
    }
  };

  // The restore window, the new cluster and a cutover's fence run on the target's host: on its
  // agent when it has one (patch host-work-on-agents); verification, DNS and the catalog stay here.
  const hostQueue = await agentQueueOf(input.target);
  const hostQuick = onHost(QUICK, hostQueue);
  const hostLong = onHost(LONG, hostQueue);

  // 1. Validate: nothing exists yet, so a refusal ends the workflow with nothing to clean up.
  board.enter('validating', `checking ${input.restorePoint} against the restore window of ${input.target}`);
  let t = now();
  validated = await hostQuick.validateRestore.executeWithOptions({ startToCloseTimeout: '2 minutes', heartbeatTimeout: SHORT_HEARTBEAT, summary: `Validate the request (${input.restorePoint})` }, [input, workflowId]);
  phases.validation = seconds(now() - t);
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: validated.environment }]);
  const v = validated;
  board.rtoTargetSeconds = v.rtoTargetSeconds;

  // 2. Approval.
  const firstGate = input.mode === 'emergency' ? 'emergencyRestore' : 'restore';
  const approval = await recordingCancellation(firstGate, () => gate(firstGate, `${input.mode === 'emergency' ? 'EMERGENCY ' : ''}restore ${v.target} to ${v.pointTime ?? input.restorePoint}`, [
    { label: 'target', value: `${v.target} (${v.engine}, ${v.environment})` },
    { label: 'restore point', value: v.point.kind === 'latest' ? `latest, resolved when the restore starts (now ${v.pointTime})` : v.pointTime ?? input.restorePoint },
    { label: 'window', value: `${v.window.earliest} to ${v.window.latest}` },
    { label: 'destination', value: `new instance ${v.destinationId}${input.fromRegion === 'dr' ? ' from the DR region' : ''}` },
    { label: 'left untouched', value: `the source ${v.source.instanceId}${v.source.endpoint ? ` at ${v.source.endpoint.host}:${v.source.endpoint.port}` : ''} and its backups` },
    { label: 'requested by', value: `${input.requestedBy}: ${input.reason}${input.incidentId ? ` (incident ${input.incidentId})` : ''}` },
    { label: 'cutover', value: input.cutover ? `afterwards, behind a second gate: ${v.cutover?.dnsName ?? '(target has no DNS name)'}` : 'no' },
  ]));
  if (approval.decision !== 'approved') {
    board.enter(approval.decision, `${approval.decision} by ${approval.by}: ${approval.reason}; nothing was created`);
    return finish(report(approval.decision === 'rejected' ? 'rejected' : 'expired'));
  }

  let done!: PitrRestoreReport;
  // The source's facts for the restore point, taken while the restore runs: only `latest` can
  // have them (the source holds its present state only), and verification decides whether the
  // source was written in between. Older histories had no such step.
  const sourceFacts: Promise<SourceFacts> | undefined = !patched('verify-against-source-facts')
    ? undefined
    : v.point.kind === 'latest'
      ? long.captureSourceFacts
          .executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Take the facts of ${v.target}'s critical tables from the source` }, [v.target])
          .catch((err: unknown): SourceFacts => ({ available: false, reason: `taking them failed (${describeFailure(err)})` }))
      : Promise.resolve({ available: false, reason: `the restore point ${v.pointTime ?? input.restorePoint} is in the past and the source holds only its present state` });

  try {
    // 3. Restore into a new instance, then let it replay WAL and promote.
    board.enter('restoring', `restoring into new instance ${v.destinationId}`);
    t = now();
    restoreAttempted = true;
    instance = await hostLong.restoreIntoNewInstance.executeWithOptions(
      {
        startToCloseTimeout: '6 hours',
        heartbeatTimeout: STEP_HEARTBEAT,
        retry: CRASH_RETRY,
        // On cancel, wait until the attempt has returned: compensation must not run while it may still create the instance.
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary: `Restore ${v.target} into ${v.destinationId}`,
      },
      [v, input.fromRegion],
    );
    phases.restore = seconds(now() - t);
    restoredTo = instance.restoredTo ?? v.pointTime;
    board.enter('replaying-wal', `instance ${instance.instanceId} is replaying WAL to the restore point`);
    t = now();
    instance = await hostLong.waitUntilAvailable.executeWithOptions(
      { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Wait for ${v.destinationId} to be available` },
      [v.target, instance.instanceId, v.timings.pollIntervalMs],
    );
    phases.walReplay = seconds(now() - t);

    // 4. Verify.
    board.enter('verifying', `checking row counts, foreign keys and smoke queries on ${instance.instanceId}`);
    t = now();
    verification = await long.verifyRestoredInstance.executeWithOptions(
      { startToCloseTimeout: '2 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Verify ${instance.instanceId}` },
      sourceFacts ? [v.target, instance, await sourceFacts] : [v.target, instance],
    );
    phases.verification = seconds(now() - t);
    const verifiedAt = now();
    if (!verification.ok) {
      const failed = verification.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      throw ApplicationFailure.nonRetryable(`verification of ${instance.instanceId} failed (${failed.join('; ')}); no cutover`, 'VERIFICATION_FAILED');
    }

    // 5. Optional cutover behind its own gate.
    let cutover: PitrRestoreReport['cutover'];
    if (input.cutover) {
      if (!v.cutover) throw ApplicationFailure.nonRetryable(`target ${v.target} has no cutover settings (dnsName, router) in the config; the restored instance is ready at ${instance.endpoint?.host}:${instance.endpoint?.port}`, 'NO_CUTOVER_CONFIG');
      const endpoint = instance.endpoint!;
      const cutoverDecision = await gate('cutover', `point ${v.cutover.dnsName} at the restored instance ${instance.instanceId}`, [
        { label: 'name', value: v.cutover.dnsName },
        { label: 'new target', value: `${endpoint.host}:${endpoint.port} (${instance.instanceId})` },
        { label: 'verification', value: verification.checks.map((c) => `${c.name} ok`).slice(0, 6).join(', ') },
        { label: 'effect', value: 'applications connecting by this name reach the restored data from the next lookup on' },
      ]);
      if (cutoverDecision.decision === 'approved' && patched(UNDOABLE_CUTOVER)) {
        const name = v.cutover.dnsName;
        board.enter('preparing-cutover', `readying ${instance.instanceId} to take traffic`);
        t = now();
        await hostQuick.prepareToServe.executeWithOptions({ startToCloseTimeout: '10 minutes', heartbeatTimeout: SHORT_HEARTBEAT, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Ready ${instance.instanceId} to take traffic` }, [v.target, instance.instanceId]);
        board.enter('fencing', `making the source ${v.source.instanceId} unwritable before traffic moves`);
        fence = await hostQuick.fenceSource.executeWithOptions({ startToCloseTimeout: '10 minutes', heartbeatTimeout: SHORT_HEARTBEAT, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Fence the source ${v.source.instanceId}` }, [v.target]);
        traffic = await quick.recordTrafficBefore.executeWithOptions({ startToCloseTimeout: '2 minutes', heartbeatTimeout: SHORT_HEARTBEAT, summary: `Record what ${name} points at now` }, [v.target, v.cutover, endpoint]);
        trafficOutcome = { name, previous: endpointText(traffic.previous.endpoint), state: 'applied', fence };
        board.enter('cutting-over', `pointing ${name} (now ${trafficOutcome.previous}) at ${endpoint.host}:${endpoint.port}`);
        // Before the name moves: from now on nothing removes this instance automatically.
        if (patched('mark-served-traffic')) await hostQuick.markServedTraffic.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Mark ${instance.instanceId} as serving traffic` }, [v.target, instance.instanceId]);
        servedTraffic = true;
        await quick.moveTraffic.executeWithOptions({ startToCloseTimeout: '10 minutes', heartbeatTimeout: SHORT_HEARTBEAT, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Point ${name} at ${instance.instanceId}` }, [traffic]);
        if (v.timings.settleAfterCutoverMs) await sleep(v.timings.settleAfterCutoverMs);
        board.enter('verifying-cutover', `connecting through ${name}`);
        const through = await quick.verifyThroughDns.executeWithOptions({ startToCloseTimeout: '2 minutes', heartbeatTimeout: SHORT_HEARTBEAT, summary: `Connect through ${name}` }, [v.target, v.cutover, endpoint]);
        if (!through.ok) throw ApplicationFailure.nonRetryable(`cutover did not take: ${through.detail}`, 'CUTOVER_NOT_SERVED');
        board.enter('protecting', `archiving the WAL of ${instance.instanceId} and starting its first full backup`);
        trafficOutcome.protection = await hostQuick.protectAsNewPrimary.executeWithOptions(
          { startToCloseTimeout: '10 minutes', heartbeatTimeout: SHORT_HEARTBEAT, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Protect ${instance.instanceId} as the new primary` },
          [v.target, instance.instanceId],
        );
        phases.cutover = seconds(now() - t);
        cutover = { dnsName: name, pointsAt: `${endpoint.host}:${endpoint.port}`, verifiedThroughDns: true };
      } else if (cutoverDecision.decision === 'approved') {
        board.enter('cutting-over', `pointing ${v.cutover.dnsName} at ${endpoint.host}:${endpoint.port}`);
        t = now();
        if (patched('mark-served-traffic')) await hostQuick.markServedTraffic.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Mark ${instance.instanceId} as serving traffic` }, [v.target, instance.instanceId]);
        await quick.pointDnsAt.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Point ${v.cutover.dnsName} at ${instance.instanceId}` }, [v.cutover, endpoint]);
        const through = await quick.verifyThroughDns.executeWithOptions({ startToCloseTimeout: '2 minutes', heartbeatTimeout: SHORT_HEARTBEAT, summary: `Connect through ${v.cutover.dnsName}` }, [v.target, v.cutover, endpoint]);
        phases.cutover = seconds(now() - t);
        if (!through.ok) throw ApplicationFailure.nonRetryable(`cutover did not take: ${through.detail}`, 'CUTOVER_NOT_SERVED');
        cutover = { dnsName: v.cutover.dnsName, pointsAt: `${endpoint.host}:${endpoint.port}`, verifiedThroughDns: true };
      } else {
        board.enter('cutover-declined', `cutover ${cutoverDecision.decision}; the restored instance stays available without traffic`);
      }
    }

    // 6. Report.
    const rtoSeconds = seconds(verifiedAt - requestedAt);
    const result = report(cutover ? 'restored-and-cut-over' : 'restored', {
      cutover,
      ...(trafficOutcome ? { traffic: trafficOutcome } : {}),
      rto: { seconds: rtoSeconds, targetSeconds: v.rtoTargetSeconds, withinTarget: rtoSeconds <= v.rtoTargetSeconds, phases },
      rpo: restoredTo ? rpoOf(restoredTo, v.window.latest) : undefined,
    });
    board.enter('done', `${result.outcome}: ${instance.instanceId} verified in ${rtoSeconds} s (RTO target ${v.rtoTargetSeconds} s)`);
    if (!patched(BEST_EFFORT_REPORT)) return await finish(result);
    // Out of the try: from here on nothing can undo the restore or the cutover.
    done = result;
  } catch (err) {
    const cancelled = isCancellation(err);
    const failure = describeFailure(err);
    // Compensation must run even when the workflow is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      let made = instance?.instanceId ?? (restoreAttempted ? v.destinationId : undefined);
      if (fence || traffic) {
        // Traffic first: the name goes back and is proven through DNS before anything else.
        const rolledBack = await rollBackCutover();
        if (!rolledBack) made = undefined;
      }
      if (made && servedTraffic) {
        cleanup.push(`kept ${made}: the name led clients to it, so lifeboat never removes it automatically`);
      } else if (made && !input.keep) {
        board.enter('cleaning-up', `removing ${made}`);
        cleanup.push(await hostQuick.removeRestoredInstance.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Remove ${made}` }, [v.target, made]));
      } else if (made) {
        cleanup.push(`kept ${made} as asked (--keep)`);
      }
      board.enter(cancelled ? 'cancelled' : 'failed', `${cancelled ? 'cancelled' : failure}${cleanup.length ? `; ${cleanup.join('; ')}` : ''}`);
      const outcome: RestoreOutcome = cancelled ? 'cancelled' : failureType(err) === 'VERIFICATION_FAILED' ? 'verification-failed' : 'failed';
      const failed = report(outcome, { failure, ...(trafficOutcome ? { traffic: trafficOutcome } : {}) });
      const notice = { severity: 'critical' as const, title: `Restore of ${input.target} ${cancelled ? 'cancelled' : 'failed'}`, text: `${failure}${cleanup.length ? `\n${cleanup.join('\n')}` : ''}`, target: input.target };
      if (patched(BEST_EFFORT_REPORT)) {
        // The original failure is what the workflow ends with, whatever happens to the report.
        await bestEffort('the report was not recorded in the catalog', () => finish({ ...failed, undelivered }));
        await bestEffort('the notification was not sent', () => quick.notify(notice));
      } else {
        await finish(failed);
        await quick.notify(notice);
      }
    });
    throw err;
  }

  // 7. Record and tell: best effort, the work is done.
  await bestEffort('the report was not recorded in the catalog', () => finish(done));
  if (undelivered.length) board.enter('done', `${done.outcome}, but ${undelivered.join('; ')}`);
  return undelivered.length ? { ...done, undelivered: [...undelivered] } : done;

  /**
   * Puts the name back to its recorded records, proves it through DNS, then unfences the source.
   * Returns false when the name could not be put back: then the source stays fenced (no split
   * brain), nothing is removed, and the failure says what DNS serves and how to repair it.
   */
  async function rollBackCutover(): Promise<boolean> {
    const name = traffic?.name ?? v.cutover?.dnsName ?? '';
    if (traffic && instance?.endpoint) {
      board.enter('rolling-back', `pointing ${name} back at ${endpointText(traffic.previous.endpoint)}`);
      try {
        const detail = await quick.rollBackTraffic.executeWithOptions({ startToCloseTimeout: '10 minutes', retry: { initialInterval: input.timings?.rollbackRetryMs ?? '2 seconds' }, summary: `Point ${name} back at ${endpointText(traffic.previous.endpoint)}` }, [
          v.target,
          traffic,
          instance.endpoint,
        ]);
        trafficOutcome = { ...trafficOutcome!, state: 'rolled-back', detail };
        cleanup.push(detail);
      } catch (rollbackErr) {
        const why = describeFailure(rollbackErr);
        trafficOutcome = { ...trafficOutcome!, state: 'rollback-failed', detail: why, repairCommand: traffic.repairCommand };
        cleanup.push(
          `ROLLBACK FAILED: ${name} may still lead clients to the restored instance ${instance.instanceId} at ${endpointText(instance.endpoint)} (${why}); it was kept and the source ${v.source.instanceId} stays fenced. Point the name back with: ${traffic.repairCommand}${fence?.undoCommand ? ` ; then let the source take writes again with: ${fence.undoCommand}` : ''}`,
        );
        await bestEffort('the rollback alert was not sent', () =>
          quick.notify({ severity: 'critical', title: `Cutover of ${name} could NOT be rolled back`, text: cleanup[cleanup.length - 1], target: input.target }),
        );
        return false;
      }
    }
    if (fence) {
      board.enter('unfencing', `letting clients write to ${v.source.instanceId} again`);
      let unfenced: string;
      try {
        unfenced = await hostQuick.unfenceSource.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Unfence the source ${v.source.instanceId}` }, [v.target, fence]);
      } catch (unfenceErr) {
        unfenced = `UNFENCE FAILED: the source ${v.source.instanceId} still refuses writes (${describeFailure(unfenceErr)})${fence.undoCommand ? `; undo the fence with: ${fence.undoCommand}` : ''}`;
      }
      trafficOutcome = { ...(trafficOutcome ?? { name, previous: 'unchanged', state: 'rolled-back' }), unfenced };
      cleanup.push(unfenced);
    }
    return true;
  }
}
