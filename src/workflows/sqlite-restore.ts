/**
 * sqliteRestore: a SQLite backup restored to a NEW file on the target's host, never over the
 * source or anything that exists.
 *
 *   validate (catalog, path; no side effects) -> destination checked on the host (its directory,
 *   nothing there, not the source) -> approval gate (restore) -> on the host: download, decrypt,
 *   gunzip into a temporary file beside the destination named after this run; its bytes, PRAGMA
 *   integrity_check and each table's row count checked against the backup's records; linked to
 *   the destination (refused if anything appeared there) -> report
 *
 * Failure or cancellation after the gate: compensation in a non-cancellable scope removes this
 * run's temporary file (and SQLite's companions of it), nothing else. A killed worker's retry
 * starts the download over into the same file.
 */
import { ActivityCancellationType, ActivityOptions, ApplicationFailure, CancellationScope, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Decision } from '../domain/approval';
import { formatBytes } from '../domain/format';
import { SqliteRestoreDone, SqliteRestoreInput, SqliteRestoreOutcome, SqliteRestoreReport } from '../domain/sqlite';
import { ApprovalGates } from './approval-gate';
import { describeFailure, failureType } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { LifeboatEnvironment, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { CRASH_RETRY, STEP_HEARTBEAT } from './step-heartbeat';

const QUICK: ActivityOptions = { startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } };
const LONG: ActivityOptions = { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 } };
const quick = proxyActivities<Activities>(QUICK);

const now = () => new Date().getTime();
const seconds = (ms: number) => Math.round(ms / 1000);

export async function sqliteRestore(input: SqliteRestoreInput): Promise<SqliteRestoreReport> {
  const workflowId = workflowInfo().workflowId;
  const board = new StatusBoard('sqlite restore', input.target);
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'sqlite-restore' },
    { key: LifeboatTarget, value: input.target },
  ]);
  const phases: SqliteRestoreReport['phases'] = { validation: 0, waitingForApproval: 0, restore: 0 };
  const decisions: Decision[] = [];
  const cleanup: string[] = [];
  let restored: SqliteRestoreDone | undefined;

  const queue = await agentQueueOf(input.target);
  const hostQuick = onHost(QUICK, queue);
  const hostLong = onHost(LONG, queue);

  // 1. Validate, centrally then on the host: nothing exists yet, so a refusal leaves nothing to clean up.
  board.enter('validating', `checking backup ${input.backup} of ${input.target} and the new path ${input.into}`);
  let t = now();
  const v = await quick.validateSqliteRestore.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Validate the request (backup ${input.backup})` }, [input, workflowId]);
  await hostQuick.checkSqliteRestoreDestination.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Check that ${v.into} is new` }, [v]);
  phases.validation = seconds(now() - t);
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: v.environment }]);

  const report = (outcome: SqliteRestoreOutcome, extra: Partial<SqliteRestoreReport> = {}): SqliteRestoreReport => ({
    workflowId,
    outcome,
    target: v.target,
    requestedBy: input.requestedBy,
    reason: input.reason,
    backup: v.backup,
    into: v.into,
    restored,
    decisions,
    cleanup,
    phases,
    ...extra,
  });
  const finish = async (r: SqliteRestoreReport): Promise<SqliteRestoreReport> => {
    await quick.recordSqliteRestoreReport.executeWithOptions({ startToCloseTimeout: '15 seconds', summary: 'Record the report in the catalog' }, [r]);
    return r;
  };

  // 2. Approval: the gate shows what goes where.
  const policy = await quick.resolveGatePolicy.executeWithOptions({ startToCloseTimeout: '15 seconds' }, [v.environment, 'restore', input.requestedBy]);
  t = now();
  let approval: Decision;
  try {
    approval = await gates.request(
      policy,
      {
        title: `restore SQLite backup ${v.backup.backupName} of ${v.target} into the new file ${v.into}`,
        facts: [
          { label: 'target', value: `${v.target} (${v.environment}), file ${v.source}` },
          { label: 'backup', value: `${v.backup.backupName} (catalog id ${v.backup.catalogId}, taken ${v.backup.createdAt}, ${formatBytes(v.backup.databaseBytes)} database, ${Object.keys(v.backup.tables).length} tables, key ${v.backup.keyId}, from ${v.backup.store})` },
          { label: 'destination', value: `new file ${v.into} (written as ${v.tempPath}, renamed once checked)` },
          { label: 'left untouched', value: `the source ${v.source} and every existing file` },
          { label: 'requested by', value: `${input.requestedBy}: ${input.reason}` },
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
    // 3. Restore and check, on the host; the destination appears only once every check passed.
    board.enter('restoring', `${v.backup.key} into ${v.tempPath}, then checks, then ${v.into}`);
    t = now();
    restored = await hostLong.restoreSqliteBackup.executeWithOptions(
      {
        startToCloseTimeout: '6 hours',
        heartbeatTimeout: STEP_HEARTBEAT,
        retry: { maximumAttempts: 5, ...CRASH_RETRY, backoffCoefficient: 2 },
        // On cancel, wait until the attempt has stopped: compensation must not race the download.
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary: `Restore ${v.backup.backupName} into ${v.into}`,
      },
      [v],
    );
    phases.restore = seconds(now() - t);
    for (const c of restored.checks) board.validated(c);
    if (!restored.checks.every((c) => c.ok)) throw ApplicationFailure.nonRetryable(`verification of ${v.into} failed`, 'VERIFICATION_FAILED');
  } catch (err) {
    const cancelled = isCancellation(err);
    const failure = cancelled ? 'cancelled' : describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      board.enter('cleaning-up', `removing what this restore wrote beside ${v.into}`);
      try {
        cleanup.push(...(await hostQuick.removeSqliteRestore.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Remove ${v.tempPath}` }, [v])));
      } catch (cleanupErr) {
        cleanup.push(`${v.tempPath} could not be removed (${describeFailure(cleanupErr)}): remove it by hand; it carries this run's id`);
      }
      board.enter(cancelled ? 'cancelled' : 'failed', `${failure}; ${cleanup.join('; ')}`);
      const outcome: SqliteRestoreOutcome = cancelled ? 'cancelled' : failureType(err) === 'VERIFICATION_FAILED' ? 'verification-failed' : 'failed';
      await finish(report(outcome, { failure })).catch(() => undefined);
      await quick
        .notify({ severity: 'critical', title: `SQLite restore of ${v.target} ${cancelled ? 'cancelled' : 'failed'}`, text: `${failure}\n${cleanup.join('\n')}`, target: v.target })
        .catch(() => undefined);
    });
    throw err;
  }

  // 4. Report: the work is done, recording it cannot undo it.
  board.enter('done', `restored into ${v.into}: ${formatBytes(restored.bytes)}, integrity_check ok, ${Object.keys(v.backup.tables).length} tables with their row counts as at backup time`);
  const result = report('restored');
  // Non-cancellable: a cancel that arrives once the file is in place cannot undo it, and the
  // catalog must still record it (in a cancelled scope the record was silently skipped).
  await CancellationScope.nonCancellable(() => finish(result)).catch(() => undefined);
  return result;
}
