/**
 * filesBackup: a backup set of a bucket target, in both regions, verified.
 *
 *   plan (mode: full weekly / incremental daily; set name from the workflow's time)
 *   -> back up (every object, or only what changed since the last set; manifest last)
 *   -> verify (counts, sizes, sampled content) -> copy to the DR region's backup bucket
 *   -> verify the copy (every object hashed) -> catalog row (files-full / files-incremental) -> notify
 *
 * A failure after planning is recorded in the catalog as a failed backup and notified, then rethrown.
 */
import { ApplicationFailure, CancellationScope, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { FilesBackupInput, FilesBackupPlan, FilesBackupReport } from '../domain/files-backup';
import { LifeboatBackupType, LifeboatEnvironment, LifeboatKind, LifeboatTarget } from './search-attributes';
import { describeFailure, failedChecks } from './failure';
import { StatusBoard } from './status-board';
import { formatBytes } from '../domain/format';
import { CRASH_RETRY, STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const long = proxyActivities<Activities>({
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: STEP_HEARTBEAT,
  retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 },
});


export async function filesBackup(input: FilesBackupInput): Promise<FilesBackupReport> {
  const { workflowId } = workflowInfo();
  const startedAt = new Date().toISOString();
  // Workflow time is deterministic on replay: the set's name does not change when the workflow is retried.
  const at = input.at ?? startedAt;
  const board = new StatusBoard('files backup', input.target);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'files-backup' },
    { key: LifeboatTarget, value: input.target },
  ]);
  const report: FilesBackupReport = { workflowId, target: input.target, outcome: 'failed', verifications: [] };

  board.enter('planning', `choosing full or incremental for ${input.target} at ${at}`);
  const plan: FilesBackupPlan = await quick.planFilesBackup.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Plan the backup of ${input.target}` }, [input.target, at, input.mode]);
  report.plan = plan;
  upsertSearchAttributes([
    { key: LifeboatEnvironment, value: plan.environment },
    { key: LifeboatBackupType, value: `files-${plan.mode}` },
  ]);

  try {
    board.enter('backing-up', `${plan.modeReason}: ${plan.sourceBucket} into ${plan.primary.store}/${plan.primary.bucket}/${plan.primary.root}/${plan.timestamp}`);
    report.set = await long.backupFiles.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Back up ${plan.sourceBucket} (${plan.mode}) as ${plan.timestamp}` }, [plan]);

    board.enter('verifying', `checking set ${plan.timestamp} against its manifest`);
    const primaryCheck = await long.verifyFilesSet.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Verify set ${plan.timestamp} in ${plan.primary.store}` }, [plan, 'primary']);
    report.verifications.push(primaryCheck);
    if (!primaryCheck.ok) throw ApplicationFailure.nonRetryable(`verification of backup set ${plan.timestamp} failed (${failedChecks(primaryCheck)}); take a new full backup once the cause is fixed`, 'VERIFICATION_FAILED');

    board.enter('copying', `copying set ${plan.timestamp} and what it shares with earlier sets to ${plan.dr.store}/${plan.dr.bucket}, then hashing every object there`);
    const copy = await long.copyFilesToDr.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Copy set ${plan.timestamp} to ${plan.dr.store} and verify the copy` }, [plan]);
    report.drCopy = { copied: copy.copied, skipped: copy.skipped, copiedBytes: copy.copiedBytes, manifestKey: copy.manifestKey };
    report.verifications.push(copy.verification);

    report.outcome = 'verified';
    board.enter('recording', 'recording the backup in the catalog');
    report.catalogId = await quick.recordFilesBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the backup in the catalog' }, [plan, report, startedAt]);
    const t = report.set.totals;
    const summary = `${plan.mode} set ${plan.timestamp}: ${t.objects} objects (${formatBytes(t.bytes)}); ${t.added} added, ${t.modified} modified, ${t.unchanged} unchanged, ${t.deleted} deleted; ${formatBytes(t.copiedBytes)} copied`;
    await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup complete' }, [
      {
        severity: 'info',
        title: `Files backup complete: ${plan.target} (${plan.mode}, ${formatBytes(t.copiedBytes)})`,
        text: `${summary}. Verified in ${plan.primary.store} and in ${plan.dr.store}.`,
        target: plan.target,
        fields: { timestamp: plan.timestamp, objects: t.objects, copiedBytes: t.copiedBytes, catalogId: report.catalogId },
      },
    ]);
    board.enter('done', summary);
    return report;
  } catch (err) {
    const cancelled = isCancellation(err);
    report.outcome = cancelled ? 'cancelled' : 'failed';
    report.failure = cancelled ? 'cancelled' : describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      board.enter(report.outcome, report.failure!);
      report.catalogId = await quick.recordFilesBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the failure in the catalog' }, [plan, report, startedAt]);
      await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup failed' }, [
        { severity: cancelled ? 'warning' : 'critical', title: `Files backup of ${plan.target} ${report.outcome}`, text: report.failure!, target: plan.target },
      ]);
    });
    throw err;
  }
}
