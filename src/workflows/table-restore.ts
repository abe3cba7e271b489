/**
 * tableRestore: a few tables as they were at a point in time, back next to production in a NEW
 * schema of the live database; what an incident commander wants after a DELETE without WHERE.
 *
 *   validate the point (no side effects) and the tables and schema against the live database
 *     -> approval gate (which table goes where) -> restore a temporary instance -> WAL replay
 *     -> copy the tables into the new schema (one transaction) -> count and checksum both sides
 *     -> remove the temporary instance -> report
 *
 * Its own workflow type rather than a mode of pitrRestore: pitrRestore's result is an instance
 * that is kept (and perhaps cut over to), this one's is a schema in the live database with the
 * instance always removed; their gates, compensation and reports differ at every step, and
 * pitrRestore's recorded histories stay untouched. The restore activities are shared.
 *
 * Failure or cancellation after anything exists: compensation in a non-cancellable scope drops
 * the schema (only if this run created it, only what it put there) and removes the temporary
 * instance (only if this run made it), unless `keep` asks to leave them for forensics.
 */
import { ActivityCancellationType, ActivityOptions, ApplicationFailure, CancellationScope, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Decision } from '../domain/approval';
import { InstanceDescription } from '../domain/ports';
import { ValidatedRestore } from '../domain/restore';
import { describeCopy, TableCheck, TableCopyPlan, TableCopyResult, TableRestoreInput, TableRestoreOutcome, TableRestorePhases, TableRestoreReport, WHAT_IS_COPIED } from '../domain/table-restore';
import { LifeboatEnvironment, LifeboatIncidentId, LifeboatKind, LifeboatTarget } from './search-attributes';
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
const SHORT_HEARTBEAT = '15 seconds';

const now = () => new Date().getTime();
const seconds = (ms: number) => Math.round(ms / 1000);

export async function tableRestore(input: TableRestoreInput): Promise<TableRestoreReport> {
  const workflowId = workflowInfo().workflowId;
  const board = new StatusBoard('table restore', input.target);
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'table-restore' },
    { key: LifeboatTarget, value: input.target },
    ...(input.incidentId ? [{ key: LifeboatIncidentId, value: input.incidentId }] : []),
  ]);
  const phases: TableRestorePhases = { validation: 0, waitingForApproval: 0, restore: 0, copy: 0, verify: 0, cleanup: 0 };
  const decisions: Decision[] = [];
  const cleanup: string[] = [];
  let plan: TableCopyPlan[] = [];
  // Assigned once validation answers; the report helper defined before that reads it.
  // eslint-disable-next-line prefer-const
  let validated: ValidatedRestore | undefined;
  let instance: InstanceDescription | undefined;
  let restoredTo: string | undefined;
  let copies: TableCopyResult[] | undefined;
  let checks: TableCheck[] | undefined;
  /** From here on a (half-made) instance may exist. */
  let restoreAttempted = false;
  /** From here on the schema may exist (committed by an attempt whose result was lost). */
  let copyAttempted = false;
  const undelivered: string[] = [];

  const report = (outcome: TableRestoreOutcome, extra: Partial<TableRestoreReport> = {}): TableRestoreReport => ({
    workflowId,
    outcome,
    target: input.target,
    requestedBy: input.requestedBy,
    reason: input.reason,
    incidentId: input.incidentId,
    restorePoint: restoredTo ?? validated?.pointTime ?? input.restorePoint,
    intoSchema: input.intoSchema,
    tables: plan,
    temporaryInstance: instance?.instanceId ?? (restoreAttempted ? validated?.destinationId : undefined),
    copies,
    checks,
    copied: WHAT_IS_COPIED,
    phases,
    decisions,
    cleanup,
    ...extra,
  });
  /** Recording after the work: a failure is noted in the result, never undoes the work. */
  const record = async (r: TableRestoreReport): Promise<void> => {
    try {
      await quick.recordTableRestoreReport.executeWithOptions({ startToCloseTimeout: '15 seconds', summary: 'Record the report in the catalog' }, [r]);
    } catch (err) {
      undelivered.push(`the report was not recorded in the catalog: ${describeFailure(err)}`);
    }
  };

  const hostQueue = await agentQueueOf(input.target);
  const hostQuick = onHost(QUICK, hostQueue);
  const hostLong = onHost(LONG, hostQueue);

  // 1. Validate: the restore point and window as any restore, then the tables and the schema against the live database. Nothing exists yet.
  board.enter('validating', `checking ${input.restorePoint} and the tables ${input.tables.join(', ')} of ${input.target}`);
  let t = now();
  validated = await hostQuick.validateRestore.executeWithOptions({ startToCloseTimeout: '2 minutes', heartbeatTimeout: SHORT_HEARTBEAT, summary: `Validate the restore point (${input.restorePoint})` }, [input, workflowId]);
  plan = await quick.validateTableRestore.executeWithOptions({ startToCloseTimeout: '2 minutes', heartbeatTimeout: SHORT_HEARTBEAT, summary: `Check the tables and the new schema ${input.intoSchema}` }, [
    { target: input.target, tables: input.tables, intoSchema: input.intoSchema },
  ]);
  phases.validation = seconds(now() - t);
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: validated.environment }]);
  const v = validated;
  board.rtoTargetSeconds = v.rtoTargetSeconds;

  // 2. Approval: exactly which table goes where.
  const gateName = input.mode === 'emergency' ? 'emergencyRestore' : 'restore';
  let approval: Decision;
  try {
    const policy = await quick.resolveGatePolicy.executeWithOptions({ startToCloseTimeout: '15 seconds' }, [v.environment, gateName, input.requestedBy]);
    t = now();
    approval = await gates.request(
      policy,
      {
        title: `${input.mode === 'emergency' ? 'EMERGENCY ' : ''}restore ${plan.length === 1 ? 'the table' : `${plan.length} tables`} of ${v.target} as at ${v.pointTime ?? input.restorePoint} into the new schema ${input.intoSchema}`,
        facts: [
          { label: 'target', value: `${v.target} (${v.engine}, ${v.environment})` },
          { label: 'restore point', value: v.point.kind === 'latest' ? `latest, resolved when the restore starts (now ${v.pointTime})` : v.pointTime ?? input.restorePoint },
          ...plan.map((p, i) => ({ label: `table ${i + 1}`, value: describeCopy(p) })),
          { label: 'new schema', value: `${input.intoSchema}, created in the live database of ${v.target}; no existing table or schema is written` },
          { label: 'copied', value: WHAT_IS_COPIED },
          { label: 'temporary instance', value: `${v.destinationId}, restored to the point, removed after the copy is checked` },
          { label: 'requested by', value: `${input.requestedBy}: ${input.reason}${input.incidentId ? ` (incident ${input.incidentId})` : ''}` },
        ],
      },
      v.timings,
    );
    phases.waitingForApproval = seconds(now() - t);
    decisions.push(approval);
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        board.enter('cancelled', `cancelled while waiting for the ${gateName} gate; nothing was created`);
        await record(report('cancelled', { failure: `cancelled while waiting for the ${gateName} gate; nothing was created` }));
      });
    }
    throw err;
  }
  if (approval.decision !== 'approved') {
    board.enter(approval.decision, `${approval.decision} by ${approval.by}: ${approval.reason}; nothing was created`);
    const r = report(approval.decision === 'rejected' ? 'rejected' : 'expired');
    await record(r);
    return undelivered.length ? { ...r, undelivered } : r;
  }

  let done: TableRestoreReport;
  try {
    // 3. The temporary instance, restored to the point.
    board.enter('restoring', `restoring a temporary instance ${v.destinationId}`);
    t = now();
    restoreAttempted = true;
    instance = await hostLong.restoreIntoNewInstance.executeWithOptions(
      { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Restore ${v.target} into the temporary ${v.destinationId}` },
      [v, input.fromRegion],
    );
    restoredTo = instance.restoredTo ?? v.pointTime;
    board.enter('replaying-wal', `temporary instance ${instance.instanceId} is replaying WAL to the restore point`);
    instance = await hostLong.waitUntilAvailable.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Wait for ${v.destinationId} to be available` }, [v.target, instance.instanceId, v.timings.pollIntervalMs]);
    phases.restore = seconds(now() - t);

    // 4. Copy: one transaction on the live database; a cancel waits until the attempt has rolled back or committed.
    board.enter('copying', `copying ${plan.map((p) => p.source).join(', ')} into ${input.intoSchema}`);
    t = now();
    copyAttempted = true;
    copies = await long.copyTablesFromRestored.executeWithOptions(
      { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Copy ${plan.length} table(s) into ${input.intoSchema}` },
      [v, instance, plan, input.intoSchema],
    );
    phases.copy = seconds(now() - t);

    // 5. Verify: count and checksum of every table on both sides.
    board.enter('verifying', `counting and checksumming ${plan.map((p) => p.into).join(', ')} against ${instance.instanceId}`);
    t = now();
    checks = await long.checkTableCopies.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Check the copies against ${instance.instanceId}` }, [v.target, instance, plan, input.intoSchema]);
    phases.verify = seconds(now() - t);
    const wrong = checks.filter((c) => !c.ok);
    if (wrong.length) {
      throw ApplicationFailure.nonRetryable(
        `the copies differ from the restored tables (${wrong.map((c) => `${c.into}: ${c.copy.rows} rows, checksum ${c.copy.checksum}; restored ${c.restored.rows} rows, checksum ${c.restored.checksum}`).join('; ')})`,
        'VERIFICATION_FAILED',
      );
    }

    // 6. The temporary instance goes; the rows stay. Its removal failing is said, not undone.
    board.enter('cleaning-up', `removing the temporary instance ${instance.instanceId}`);
    t = now();
    try {
      cleanup.push(await hostQuick.removeRestoredInstance.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Remove the temporary ${instance.instanceId}` }, [v.target, instance.instanceId]));
    } catch (err) {
      if (isCancellation(err)) throw err;
      cleanup.push(`the temporary instance ${instance.instanceId} could not be removed (${describeFailure(err)}): remove it once the cause is fixed; the copied tables are complete and checked`);
    }
    phases.cleanup = seconds(now() - t);
    done = report('restored');
    board.enter('done', `${plan.map((p) => `${p.into}: ${checks!.find((c) => c.source === p.source)?.copy.rows ?? '?'} rows`).join(', ')}; counts and checksums match the restored instance`);
  } catch (err) {
    const cancelled = isCancellation(err);
    const failure = describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      const made = instance?.instanceId ?? (restoreAttempted ? v.destinationId : undefined);
      if (input.keep) {
        if (copyAttempted) cleanup.push(`kept the schema ${input.intoSchema} as asked (--keep)`);
        if (made) cleanup.push(`kept ${made} as asked (--keep)`);
      } else {
        board.enter('cleaning-up', `${copyAttempted ? `dropping ${input.intoSchema}, ` : ''}${made ? `removing ${made}` : ''}`);
        const t0 = now();
        if (copyAttempted) cleanup.push(await quick.dropRestoredSchema.executeWithOptions({ startToCloseTimeout: '10 minutes', heartbeatTimeout: SHORT_HEARTBEAT, summary: `Drop ${input.intoSchema} if this run made it` }, [v.target, input.intoSchema, plan]));
        if (made) cleanup.push(await hostQuick.removeRestoredInstance.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Remove the temporary ${made}` }, [v.target, made]));
        phases.cleanup = seconds(now() - t0);
      }
      board.enter(cancelled ? 'cancelled' : 'failed', `${cancelled ? 'cancelled' : failure}${cleanup.length ? `; ${cleanup.join('; ')}` : ''}`);
      const outcome: TableRestoreOutcome = cancelled ? 'cancelled' : failureType(err) === 'VERIFICATION_FAILED' ? 'verification-failed' : 'failed';
      await record(report(outcome, { failure }));
      try {
        await quick.notify({ severity: 'critical', title: `Table restore of ${input.target} ${cancelled ? 'cancelled' : 'failed'}`, text: `${failure}${cleanup.length ? `\n${cleanup.join('\n')}` : ''}`, target: input.target });
      } catch (notifyErr) {
        undelivered.push(`the notification was not sent: ${describeFailure(notifyErr)}`);
      }
    });
    throw err;
  }

  // 7. Record: best effort, the work is done.
  await record(done);
  return undelivered.length ? { ...done, undelivered: [...undelivered] } : done;
}
