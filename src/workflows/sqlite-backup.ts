/**
 * sqliteBackup: a pre-operation (or scheduled) backup of a SQLite target, in both regions, verified.
 *
 *   plan (config, key) -> on the file's host: online copy with SQLite's backup API inside one
 *   read transaction, PRAGMA integrity_check (ok), row counts, gzip, lifeboat-enc-v2 bound to
 *   sqlite/target/backup, upload -> read the primary copy back (hashes, integrity, counts) ->
 *   copy to the DR bucket -> read that back -> catalog row (backup_type 'sqlite') -> notify
 *
 * A failure after planning is recorded in the catalog as a failed backup and notified, then
 * rethrown (`lifeboat backup <target> --wait` exits nonzero).
 */
import { ActivityOptions, ApplicationFailure, CancellationScope, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { formatBytes } from '../domain/format';
import { SqliteBackupInput, SqliteBackupReport, SqliteCopyVerification } from '../domain/sqlite';
import { describeFailure, failedChecks } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { LifeboatBackupType, LifeboatEnvironment, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const LONG: ActivityOptions = { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 } };
const long = proxyActivities<Activities>(LONG);

export async function sqliteBackup(input: SqliteBackupInput): Promise<SqliteBackupReport> {
  const { workflowId } = workflowInfo();
  const startedAt = new Date().toISOString();
  const board = new StatusBoard('sqlite backup', input.target);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'sqlite-backup' },
    { key: LifeboatTarget, value: input.target },
    { key: LifeboatBackupType, value: 'sqlite' },
  ]);
  const report: SqliteBackupReport = { workflowId, target: input.target, outcome: 'failed', verifications: [] };
  const hb = input.heartbeatMs;

  board.enter('planning', `checking the settings and encryption key of ${input.target}`);
  const plan = await quick.planSqliteBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Plan the backup of ${input.target}` }, [input.target]);
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: plan.environment }]);
  report.backupName = plan.backupName;

  try {
    const onFileHost = onHost(LONG, await agentQueueOf(plan.target));
    board.enter('copying', `online copy of ${plan.path} (SQLite backup API), integrity_check, into ${plan.primary.store}/${plan.primary.bucket}`);
    const made = await onFileHost.backupSqliteDatabase.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Copy ${plan.path} into ${plan.primary.store}` }, [plan, hb]);
    report.primary = made;

    board.enter('verifying', `reading ${made.key} back: SHA-256, decryption, integrity_check, row counts`);
    const primaryCheck = await onFileHost.verifySqliteBackup.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Verify the copy in ${plan.primary.store}` }, [plan, 'primary', made, made, hb]);
    report.verifications.push(primaryCheck);
    failIfBad(primaryCheck, 'the backup');

    board.enter('copying-to-dr', `copying ${formatBytes(made.sizeBytes)} to ${plan.dr.store}/${plan.dr.bucket}`);
    report.dr = await long.copySqliteBackupToDr.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Copy the backup to ${plan.dr.store}` }, [plan, made, hb]);

    board.enter('verifying-copy', 'reading the DR copy back end to end');
    const drCheck = await onFileHost.verifySqliteBackup.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Verify the copy in ${plan.dr.store}` }, [plan, 'dr', report.dr, made, hb]);
    report.verifications.push(drCheck);
    failIfBad(drCheck, 'the DR copy');

    report.outcome = 'verified';
    board.enter('recording', 'recording the backup in the catalog');
    report.catalogId = await quick.recordSqliteBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the backup in the catalog' }, [plan, report, startedAt]);
    const tables = Object.keys(made.tables).length;
    await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup complete' }, [
      {
        severity: 'info',
        title: `SQLite backup complete: ${plan.target} (${formatBytes(made.databaseBytes)} database, ${formatBytes(made.sizeBytes)} stored)`,
        text: `${plan.backupName}: ${made.key} in ${plan.primary.store} and ${plan.dr.store}, both verified (integrity_check ok, ${tables} tables counted, key ${made.keyId}).`,
        target: plan.target,
        fields: { catalogId: report.catalogId, sizeBytes: made.sizeBytes },
      },
    ]);
    board.enter('done', `verified in both regions: catalog id ${report.catalogId}`);
    return report;
  } catch (err) {
    const cancelled = isCancellation(err);
    report.outcome = cancelled ? 'cancelled' : 'failed';
    report.failure = cancelled ? 'cancelled' : describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      board.enter(report.outcome, report.failure!);
      report.catalogId = await quick.recordSqliteBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the failure in the catalog' }, [plan, report, startedAt]);
      await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup failed' }, [
        { severity: cancelled ? 'warning' : 'critical', title: `SQLite backup of ${plan.target} ${report.outcome}`, text: report.failure!, target: plan.target },
      ]);
    });
    throw err;
  }
}

function failIfBad(v: SqliteCopyVerification, what: string): void {
  if (v.ok) return;
  throw ApplicationFailure.nonRetryable(`verification of ${what} failed (${failedChecks(v)}); take a new backup once the cause is fixed`, 'VERIFICATION_FAILED');
}
