/**
 * logicalBackup: an encrypted pg_dump of a database target, in both regions, verified.
 *
 *   plan (config, key, source) -> dump (pg_dump custom → zstd → AES-256-GCM → S3 multipart,
 *   SHA-256 recorded) -> verify (read back, pg_restore --list) beside the copy to the DR bucket
 *   (one after the other before patch logical-backup-copy-beside-verify) -> verify the copy ->
 *   catalog row (backup_type 'logical') -> notify
 *
 * The encryption key is referred to by the config, never passed. A failure after planning is
 * recorded in the catalog as a failed backup and notified, then rethrown.
 */
import { ActivityOptions, ApplicationFailure, CancellationScope, isCancellation, patched, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { LogicalBackupInput, LogicalBackupPlan, LogicalBackupReport } from '../domain/logical-backup';
import { LifeboatBackupType, LifeboatEnvironment, LifeboatKind, LifeboatTarget } from './search-attributes';
import { describeFailure, failedChecks } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { StatusBoard } from './status-board';
import { formatBytes } from '../domain/format';
import { CRASH_RETRY, STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const LONG: ActivityOptions = {
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: STEP_HEARTBEAT,
  retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 },
};
const long = proxyActivities<Activities>(LONG);
/** Patch: the DR copy runs beside the primary copy's verification instead of after it (issue 13). */
export const COPY_BESIDE_VERIFY = 'logical-backup-copy-beside-verify';


export async function logicalBackup(input: LogicalBackupInput): Promise<LogicalBackupReport> {
  const { workflowId } = workflowInfo();
  const startedAt = new Date().toISOString();
  const board = new StatusBoard('logical backup', input.target);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'logical-backup' },
    { key: LifeboatTarget, value: input.target },
    { key: LifeboatBackupType, value: 'logical' },
  ]);
  const report: LogicalBackupReport = { workflowId, target: input.target, outcome: 'failed', verifications: [] };
  const hb = input.pollIntervalMs;

  board.enter('planning', `checking the logical backup settings and encryption key of ${input.target}`);
  const plan: LogicalBackupPlan = await quick.planLogicalBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Plan the logical backup of ${input.target}` }, [input.target]);
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: plan.environment }]);
  report.backupName = plan.backupName;

  try {
    // pg_dump and pg_restore --list run on the target's host: on its agent when it has one (patch
    // host-work-on-agents), with that host's client tools; the copy between buckets stays here.
    const onTargetHost = onHost(LONG, await agentQueueOf(plan.target));
    board.enter('dumping', `pg_dump of ${plan.source} into ${plan.primary.store}/${plan.primary.bucket}, compression and AES-256-GCM on the way`);
    report.primary = await onTargetHost.dumpDatabase.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Dump ${plan.source} into ${plan.primary.store}` }, [plan, hb]);

    const verifyPrimary = () => onTargetHost.verifyDump.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Verify the dump in ${plan.primary.store}` }, [plan, 'primary', hb]);
    const copyToDr = () => long.copyDumpToDr.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Copy the dump to ${plan.dr.store}` }, [plan, hb]);
    if (patched(COPY_BESIDE_VERIFY)) {
      // Both only read the sealed primary object: the copy runs while the primary copy is verified.
      // A copy of a dump whose verification then fails is marked failed in the catalog with the run.
      board.enter('verifying', `reading ${report.primary.key} back (SHA-256, decryption, decompression, pg_restore --list) while copying ${formatBytes(report.primary.sizeBytes)} to ${plan.dr.store}/${plan.dr.bucket}`);
      const [checked, copied] = await Promise.allSettled([verifyPrimary(), copyToDr()]);
      if (checked.status === 'rejected') throw checked.reason;
      report.verifications.push(checked.value);
      if (copied.status === 'fulfilled') report.dr = copied.value;
      failIfBad(checked.value, 'the dump');
      if (copied.status === 'rejected') throw copied.reason;
    } else {
      board.enter('verifying', `reading ${report.primary.key} back: SHA-256, decryption, gzip, pg_restore --list`);
      const primaryCheck = await verifyPrimary();
      report.verifications.push(primaryCheck);
      failIfBad(primaryCheck, 'the dump');

      board.enter('copying', `copying ${formatBytes(report.primary.sizeBytes)} to ${plan.dr.store}/${plan.dr.bucket}`);
      report.dr = await copyToDr();
    }

    board.enter('verifying-copy', `reading the DR copy back end to end`);
    const drCheck = await onTargetHost.verifyDump.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Verify the copy in ${plan.dr.store}` }, [plan, 'dr', hb]);
    report.verifications.push(drCheck);
    failIfBad(drCheck, 'the DR copy');

    report.outcome = 'verified';
    board.enter('recording', 'recording the backup in the catalog');
    report.catalogId = await quick.recordLogicalBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the backup in the catalog' }, [plan, report, startedAt]);
    const size = `${formatBytes(report.primary.dumpBytes)} dumped, ${formatBytes(report.primary.sizeBytes)} stored`;
    await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup complete' }, [
      {
        severity: 'info',
        title: `Logical backup complete: ${plan.target} (${size})`,
        text: `${plan.backupName}: ${report.primary.key} in ${plan.primary.store} and ${plan.dr.store}, both verified (SHA-256 ${report.primary.sha256.slice(0, 16)}…, key ${report.primary.keyId}).`,
        target: plan.target,
        fields: { sizeBytes: report.primary.sizeBytes, dumpBytes: report.primary.dumpBytes, catalogId: report.catalogId },
      },
    ]);
    board.enter('done', `verified in both regions: ${size}`);
    return report;
  } catch (err) {
    const cancelled = isCancellation(err);
    report.outcome = cancelled ? 'cancelled' : 'failed';
    report.failure = cancelled ? 'cancelled' : describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      board.enter(report.outcome, report.failure!);
      report.catalogId = await quick.recordLogicalBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the failure in the catalog' }, [plan, report, startedAt]);
      await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup failed' }, [
        { severity: cancelled ? 'warning' : 'critical', title: `Logical backup of ${plan.target} ${report.outcome}`, text: report.failure!, target: plan.target },
      ]);
    });
    throw err;
  }
}

function failIfBad(v: { ok: boolean; checks: Array<{ name: string; ok: boolean; detail: string }> }, what: string): void {
  if (v.ok) return;
  throw ApplicationFailure.nonRetryable(`verification of ${what} failed (${failedChecks(v)}); take a new backup once the cause is fixed`, 'VERIFICATION_FAILED');
}
