/**
 * logicalRestore: a logical dump restored into a NEW database, or chosen tables into a NEW
 * schema of the target's database, never over anything that exists.
 *
 *   validate (backup, header binding and key, tables, destination; no side effects)
 *     -> approval gate (restore) -> restore on the target's host (streamed: S3 → decrypt →
 *     gunzip → pg_restore) -> verify (row counts against the archive's own) -> report
 *
 * Failure or cancellation after the restore started: compensation in a non-cancellable scope
 * drops what carries this run's marker (the new database, the scratch database, the new
 * schema) and nothing else, unless `keep`.
 */
import { ActivityCancellationType, ActivityOptions, ApplicationFailure, CancellationScope, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Decision } from '../domain/approval';
import { formatBytes } from '../domain/format';
import { LogicalRestoreDone, LogicalRestoreInput, LogicalRestoreOutcome, LogicalRestoreReport, ValidatedLogicalRestore } from '../domain/logical-restore';
import { ApprovalGates } from './approval-gate';
import { describeFailure, failureType } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { LifeboatEnvironment, LifeboatIncidentId, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

const QUICK: ActivityOptions = { startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } };
const LONG: ActivityOptions = {
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: STEP_HEARTBEAT,
  retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 },
};
const quick = proxyActivities<Activities>(QUICK);
const long = proxyActivities<Activities>(LONG);

const now = () => new Date().getTime();
const seconds = (ms: number) => Math.round(ms / 1000);

export function describeLogicalDestination(d: ValidatedLogicalRestore['destination']): string {
  return d.kind === 'database' ? `new database ${d.database} on ${d.server}` : `new schema ${d.schema} in database ${d.database} on ${d.server}`;
}

export async function logicalRestore(input: LogicalRestoreInput): Promise<LogicalRestoreReport> {
  const workflowId = workflowInfo().workflowId;
  const board = new StatusBoard('logical restore', input.target);
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'logical-restore' },
    { key: LifeboatTarget, value: input.target },
    ...(input.incidentId ? [{ key: LifeboatIncidentId, value: input.incidentId }] : []),
  ]);
  const phases: LogicalRestoreReport['phases'] = { validation: 0, waitingForApproval: 0, restore: 0, verification: 0 };
  const decisions: Decision[] = [];
  const cleanup: string[] = [];
  let restored: LogicalRestoreDone | undefined;
  let verification: LogicalRestoreReport['verification'];

  const hostQueue = await agentQueueOf(input.target);
  const hostLong = onHost(LONG, hostQueue);

  // 1. Validate: nothing exists yet, so a refusal ends the workflow with nothing to clean up.
  board.enter('validating', `checking logical backup ${input.backup} of ${input.target}, the tables and the destination`);
  let t = now();
  const v = await quick.validateLogicalRestore.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Validate the request (backup ${input.backup})` }, [input, workflowId]);
  phases.validation = seconds(now() - t);
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: v.environment }]);
  const where = describeLogicalDestination(v.destination);

  const report = (outcome: LogicalRestoreOutcome, extra: Partial<LogicalRestoreReport> = {}): LogicalRestoreReport => ({
    workflowId,
    outcome,
    target: v.target,
    requestedBy: input.requestedBy,
    reason: input.reason,
    incidentId: input.incidentId,
    backup: v.backup,
    destination: v.destination,
    tables: v.tables,
    restored,
    verification,
    decisions,
    cleanup,
    phases,
    ...extra,
  });
  const finish = async (r: LogicalRestoreReport): Promise<LogicalRestoreReport> => {
    await quick.recordLogicalRestoreReport.executeWithOptions({ startToCloseTimeout: '15 seconds', summary: 'Record the report in the catalog' }, [r]);
    return r;
  };

  // 2. Approval: the gate shows exactly what goes where.
  const policy = await quick.resolveGatePolicy.executeWithOptions({ startToCloseTimeout: '15 seconds' }, [v.environment, 'restore', input.requestedBy]);
  t = now();
  let approval: Decision;
  try {
    approval = await gates.request(
      policy,
      {
        title: `restore logical backup ${v.backup.backupName} of ${v.target} into ${where}`,
        facts: [
          { label: 'target', value: `${v.target} (${v.environment})` },
          { label: 'backup', value: `${v.backup.backupName} (catalog id ${v.backup.catalogId}, taken ${v.backup.createdAt}, ${formatBytes(v.backup.sizeBytes)} stored in ${v.backup.store}, lifeboat-enc-v${v.backup.encryption.version}, key ${v.backup.encryption.keyId})` },
          { label: 'tables', value: v.tables === 'all' ? `all ${v.archiveTables.length} tables in the dump` : v.tables.join(', ') },
          { label: 'destination', value: where },
          { label: 'left untouched', value: v.destination.kind === 'schema' ? `every existing schema and table of ${v.destination.database}` : 'every existing database, the source included' },
          { label: 'requested by', value: `${input.requestedBy}: ${input.reason}${input.incidentId ? ` (incident ${input.incidentId})` : ''}` },
        ],
      },
      v.timings,
    );
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        board.enter('cancelled', 'cancelled while waiting for the restore gate; nothing was created');
        await finish(report('cancelled', { failure: 'cancelled while waiting for the restore gate; nothing was created' }));
      });
    }
    throw err;
  }
  phases.waitingForApproval = seconds(now() - t);
  decisions.push(approval);
  if (approval.decision !== 'approved') {
    board.enter(approval.decision, `${approval.decision} by ${approval.by}: ${approval.reason}; nothing was created`);
    return finish(report(approval.decision === 'rejected' ? 'rejected' : 'expired'));
  }

  try {
    // 3. Restore, on the target's host.
    board.enter('restoring', `streaming ${v.backup.key} into ${where}`);
    t = now();
    restored = await hostLong.restoreLogicalDump.executeWithOptions(
      {
        startToCloseTimeout: '12 hours',
        heartbeatTimeout: STEP_HEARTBEAT,
        // On cancel, wait until the attempt has stopped: compensation must not race pg_restore.
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary: `Restore ${v.backup.backupName} into ${where}`,
      },
      [v],
    );
    phases.restore = seconds(now() - t);

    // 4. Verify against the archive's own row counts.
    board.enter('verifying', `counting the rows of ${Object.keys(restored.archiveRowCounts).length} tables against the dump`);
    t = now();
    verification = await long.verifyLogicalRestore.executeWithOptions({ startToCloseTimeout: '2 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Verify ${where}` }, [v, restored]);
    phases.verification = seconds(now() - t);
    if (!verification.ok) {
      const failed = verification.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      throw ApplicationFailure.nonRetryable(`verification of ${where} failed (${failed.join('; ')})`, 'VERIFICATION_FAILED');
    }
  } catch (err) {
    const cancelled = isCancellation(err);
    const failure = describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      if (input.keep) cleanup.push(`kept ${where} as asked (--keep)`);
      else {
        board.enter('cleaning-up', `removing ${where}`);
        cleanup.push(...(await quick.removeLogicalRestore.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Remove ${where}` }, [v])));
      }
      board.enter(cancelled ? 'cancelled' : 'failed', `${cancelled ? 'cancelled' : failure}; ${cleanup.join('; ')}`);
      const outcome: LogicalRestoreOutcome = cancelled ? 'cancelled' : failureType(err) === 'VERIFICATION_FAILED' ? 'verification-failed' : 'failed';
      await finish(report(outcome, { failure })).catch(() => undefined);
      await quick
        .notify({ severity: 'critical', title: `Logical restore of ${v.target} ${cancelled ? 'cancelled' : 'failed'}`, text: `${failure}\n${cleanup.join('\n')}`, target: v.target })
        .catch(() => undefined);
    });
    throw err;
  }

  // 5. Report: the work is done, recording it cannot undo it.
  const tables = Object.keys(restored.archiveRowCounts).length;
  board.enter('done', `restored into ${where}: ${tables} tables, row counts as in the dump (${formatBytes(restored.dumpBytes)} of archive in ${seconds(restored.durationMs)} s)`);
  const result = report('restored');
  await finish(result).catch(() => undefined);
  return result;
}
