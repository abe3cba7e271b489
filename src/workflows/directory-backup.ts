/**
 * directoryBackup: an encrypted archive of a configuration directory, in both regions, verified.
 *
 *   plan (config, key) -> archive on the directory's host (manifest of path, type, mode, owner,
 *   mtime, size, SHA-256; gzip; lifeboat-enc-v2 bound to kind=directory/target/backup id; upload)
 *   -> verify (object and manifest SHA-256, every file, critical files) -> copy to the DR bucket
 *   -> verify the copy -> catalog row (backup_type 'directory') -> notify
 *
 * A failure after planning is recorded in the catalog as a failed backup and notified, then rethrown.
 */
import { ActivityOptions, ApplicationFailure, CancellationScope, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DirectoryBackupInput, DirectoryBackupPlan, DirectoryBackupReport, DirectoryVerification } from '../domain/directory-backup';
import { formatBytes } from '../domain/format';
import { describeFailure, failedChecks } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { LifeboatBackupType, LifeboatEnvironment, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const LONG: ActivityOptions = { startToCloseTimeout: '2 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 } };
const long = proxyActivities<Activities>(LONG);

export async function directoryBackup(input: DirectoryBackupInput): Promise<DirectoryBackupReport> {
  const { workflowId } = workflowInfo();
  const startedAt = new Date().toISOString();
  const board = new StatusBoard('directory backup', input.target);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'directory-backup' },
    { key: LifeboatTarget, value: input.target },
    { key: LifeboatBackupType, value: 'directory' },
  ]);
  const report: DirectoryBackupReport = { workflowId, target: input.target, outcome: 'failed', verifications: [] };

  board.enter('planning', `checking the settings and encryption key of ${input.target}`);
  const plan: DirectoryBackupPlan = await quick.planDirectoryBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Plan the backup of ${input.target}` }, [input.target]);
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: plan.environment }]);
  report.backupId = plan.backupId;

  try {
    // The directory is read on its host: the target's agent when it has one.
    const onDirectoryHost = onHost(LONG, await agentQueueOf(plan.target));
    board.enter('archiving', `${plan.host}:${plan.path} into ${plan.primary.store}/${plan.primary.bucket}/${plan.primary.key}, gzip and AES-256-GCM on the way`);
    const primary = await onDirectoryHost.archiveDirectory.executeWithOptions({ ...LONG, summary: `Archive ${plan.host}:${plan.path}` }, [plan, input.pollIntervalMs]);
    report.primary = primary;
    const expected = { sha256: primary.sha256, manifestSha256: primary.manifestSha256 };

    board.enter('verifying', `reading ${plan.primary.key} back: SHA-256 of the object, the manifest and every file`);
    const primaryCheck = await long.verifyDirectoryArchive.executeWithOptions({ ...LONG, summary: `Verify the archive in ${plan.primary.store}` }, [plan, 'primary', expected]);
    report.verifications.push(primaryCheck);
    failIfBad(primaryCheck, 'the archive');

    board.enter('copying', `copying ${formatBytes(primary.sizeBytes)} to ${plan.dr.store}/${plan.dr.bucket}`);
    report.dr = await long.copyDirectoryArchiveToDr.executeWithOptions({ ...LONG, summary: `Copy the archive to ${plan.dr.store}` }, [plan, primary]);

    board.enter('verifying-copy', 'reading the DR copy back end to end');
    const drCheck = await long.verifyDirectoryArchive.executeWithOptions({ ...LONG, summary: `Verify the copy in ${plan.dr.store}` }, [plan, 'dr', expected]);
    report.verifications.push(drCheck);
    failIfBad(drCheck, 'the DR copy');

    report.outcome = 'verified';
    board.enter('recording', 'recording the backup in the catalog');
    report.catalogId = await quick.recordDirectoryBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the backup in the catalog' }, [plan, report, startedAt]);
    const summary = `${primary.files} files, ${primary.dirs} directories, ${primary.symlinks} links (${formatBytes(primary.contentBytes)}), ${formatBytes(primary.sizeBytes)} stored`;
    await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup complete' }, [
      {
        severity: 'info',
        title: `Directory backup complete: ${plan.target} (${summary})`,
        text: `${plan.backupId}: ${plan.host}:${plan.path} in ${plan.primary.store} and ${plan.dr.store}, both verified (manifest SHA-256 ${primary.manifestSha256.slice(0, 16)}…, key ${primary.keyId}).`,
        target: plan.target,
        fields: { sizeBytes: primary.sizeBytes, files: primary.files, catalogId: report.catalogId },
      },
    ]);
    board.enter('done', `verified in both regions: ${summary}`);
    return report;
  } catch (err) {
    const cancelled = isCancellation(err);
    report.outcome = cancelled ? 'cancelled' : 'failed';
    report.failure = cancelled ? 'cancelled' : describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      board.enter(report.outcome, report.failure!);
      report.catalogId = await quick.recordDirectoryBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the failure in the catalog' }, [plan, report, startedAt]);
      await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup failed' }, [
        { severity: cancelled ? 'warning' : 'critical', title: `Directory backup of ${plan.target} ${report.outcome}`, text: report.failure!, target: plan.target },
      ]);
    });
    throw err;
  }
}

function failIfBad(v: DirectoryVerification, what: string): void {
  if (v.ok) return;
  throw ApplicationFailure.nonRetryable(`verification of ${what} failed (${failedChecks(v)}); take a new backup once the cause is fixed`, 'VERIFICATION_FAILED');
}
