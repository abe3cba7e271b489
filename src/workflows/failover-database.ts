/**
 * failoverDatabase: one restore-database step of a drFailover, as a child workflow (id
 * `${parentId}.${step}`), so the Web UI shows each restore under its failover and steps run in
 * parallel.
 *
 *   validate (DR window, no side effects) -> restore latest from the DR repository into a NEW
 *     instance -> WAL replay -> verify -> tell the parent -> wait for its release: keep or remove
 *
 * Everything comes from the DR region: the restore window and the backup are read from the DR
 * repository, and the primary is never asked for its facts (a failover runs because it is gone),
 * which the report says. The child stays open until the parent decides, so the instance is
 * removed by the run that made it: on rejection, on failure, on cancel (non-cancellable), never
 * once the parent keeps it for traffic.
 */
import { ActivityCancellationType, ActivityOptions, ApplicationFailure, CancellationScope, condition, defineSignal, getExternalWorkflowHandle, isCancellation, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { FailoverDatabaseInput, FailoverDatabaseReady, FailoverDatabaseReport, FailoverRelease } from '../domain/failover';
import { drillInstanceName } from '../domain/drill';
import { InstanceDescription } from '../domain/ports';
import { describeFailure, failedChecks } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { CRASH_RETRY, STEP_HEARTBEAT } from './step-heartbeat';

const QUICK: ActivityOptions = { startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } };
const LONG: ActivityOptions = { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 } };
const long = proxyActivities<Activities>(LONG);

/** Child -> parent: the step's instance is restored and verified (or the child ended without one). */
export const failoverStepReadySignal = defineSignal<[FailoverDatabaseReady]>('failoverStepReady');
/** Parent -> child: keep the instance (it may serve traffic) or remove it. */
export const failoverReleaseSignal = defineSignal<[FailoverRelease]>('failoverRelease');

const now = () => new Date().getTime();
const seconds = (ms: number) => Math.round(ms / 1000);

export async function failoverDatabase(input: FailoverDatabaseInput): Promise<FailoverDatabaseReport> {
  const workflowId = workflowInfo().workflowId;
  const parent = workflowInfo().parent;
  const board = new StatusBoard('failover restore', input.target);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'failover-database' },
    { key: LifeboatTarget, value: input.target },
  ]);
  let release: FailoverRelease | undefined;
  setHandler(failoverReleaseSignal, (r) => {
    release ??= r;
  });
  const cleanup: string[] = [];
  const notes = ['source facts not taken: the primary is not asked during a failover, so verification checks the instance on its own (tables, keys, smoke queries)'];
  let instance: InstanceDescription | undefined;
  let destinationId: string | undefined;
  let restoreAttempted = false;
  let ready: FailoverDatabaseReady | undefined;
  // The DR repository is read, and the new cluster made, watched and removed, on the target's host:
  // on its agent when it has one (patch host-work-on-agents). Verification stays here.
  let hostQuick = onHost(QUICK, undefined);
  let hostLong = long;

  try {
    const hostQueue = await agentQueueOf(input.target);
    hostQuick = onHost(QUICK, hostQueue);
    hostLong = onHost(LONG, hostQueue);
    board.enter('validating', `reading the DR restore window of ${input.target}`);
    let t = now();
    const v = await hostQuick.validateRestore.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Validate the DR restore of ${input.target}` }, [
      { target: input.target, restorePoint: 'latest', reason: input.reason, requestedBy: input.requestedBy, incidentId: input.incidentId, mode: 'emergency', fromRegion: 'dr', timings: { pollIntervalMs: input.pollIntervalMs }, ...(input.purpose === 'drill' ? { purpose: 'drill' as const, destination: drillInstanceName(workflowId) } : {}) },
      workflowId,
    ]);
    const validation = seconds(now() - t);
    destinationId = v.destinationId;

    board.enter('restoring', `restoring ${input.target} from the DR repository into ${v.destinationId}`);
    t = now();
    restoreAttempted = true;
    instance = await hostLong.restoreIntoNewInstance.executeWithOptions(
      { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Restore ${input.target} from the DR region into ${v.destinationId}` },
      [v, 'dr'],
    );
    const restore = seconds(now() - t);
    const restoredTo = instance.restoredTo ?? v.pointTime;
    board.enter('replaying-wal', `${instance.instanceId} is replaying the DR region's WAL`);
    t = now();
    instance = await hostLong.waitUntilAvailable.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Wait for ${v.destinationId} to be available` }, [input.target, instance.instanceId, input.pollIntervalMs]);
    const walReplay = seconds(now() - t);

    board.enter('verifying', `checking ${instance.instanceId}`);
    t = now();
    const verification = await long.verifyRestoredInstance.executeWithOptions({ startToCloseTimeout: '2 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Verify ${instance.instanceId}` }, [input.target, instance]);
    const verificationSeconds = seconds(now() - t);
    if (!verification.ok) throw ApplicationFailure.nonRetryable(`verification of ${instance.instanceId} failed (${failedChecks(verification)})`, 'VERIFICATION_FAILED');

    ready = { step: input.step, target: input.target, instance, restoredTo, verification, notes, seconds: { validation, restore, walReplay, verification: verificationSeconds } };
    if (parent) await getExternalWorkflowHandle(parent.workflowId, parent.runId).signal(failoverStepReadySignal, ready);
    board.enter('awaiting-release', `${instance.instanceId} verified; waiting for the failover to keep or remove it`);
    await condition(() => release !== undefined);
  } catch (err) {
    const failure = describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      const made = instance?.instanceId ?? (restoreAttempted ? destinationId : undefined);
      if (made && !input.keep) {
        board.enter('cleaning-up', `removing ${made}`);
        cleanup.push(await hostQuick.removeRestoredInstance.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Remove ${made}` }, [input.target, made]));
      } else if (made) cleanup.push(`kept ${made} as asked (keep)`);
      board.enter(isCancellation(err) ? 'cancelled' : 'failed', `${failure}${cleanup.length ? `; ${cleanup.join('; ')}` : ''}`);
    });
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.nonRetryable(`${failure}${cleanup.length ? ` (${cleanup.join('; ')})` : ''}`, 'FAILOVER_RESTORE_FAILED');
  }

  const r = release!;
  if (r.keep || input.keep) {
    board.enter('done', `${ready.instance.instanceId} kept: ${r.keep ? r.reason : 'keep asked'}`);
    return { step: input.step, target: input.target, outcome: 'kept', ready, cleanup: r.keep ? [] : [`kept ${ready.instance.instanceId} as asked (keep)`] };
  }
  await CancellationScope.nonCancellable(async () => {
    board.enter('cleaning-up', `removing ${ready!.instance.instanceId}: ${r.reason}`);
    cleanup.push(await hostQuick.removeRestoredInstance.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Remove ${ready!.instance.instanceId}` }, [input.target, ready!.instance.instanceId]));
  });
  board.enter('done', `removed: ${r.reason}`);
  return { step: input.step, target: input.target, outcome: 'removed', ready, cleanup };
}
