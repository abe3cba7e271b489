/**
 * dynamodbBackup: a DynamoDB table backed up in both regions, verified.
 *
 *   plan (names from the workflow id; point-in-time recovery must be on)
 *   -> on-demand backup (looked up by name first: a retry adopts it) -> wait AVAILABLE
 *   -> export to S3 as at the backup's time -> wait COMPLETED -> verify the export
 *   -> copy the export's objects to the DR bucket -> verify the copy
 *   -> catalog row (kind `dynamodb`) -> notify
 *
 * Why an export as well as the on-demand backup: an on-demand backup lives in the table's region
 * and can only be restored there (copying it to another region needs AWS Backup); the export is
 * plain S3 objects that lifeboat copies to the DR bucket with its own S3 engine, verifies object
 * by object against the export's manifest, and that ImportTable in the DR region restores from.
 *
 * A failure after planning is recorded in the catalog as a failed backup and notified, then rethrown.
 */
import { CancellationScope, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo, ApplicationFailure } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DynamoDbBackupInput, DynamoDbBackupPlan, DynamoDbBackupReport } from '../domain/dynamodb';
import { formatBytes } from '../domain/format';
import { describeFailure, failedChecks } from './failure';
import { LifeboatBackupType, LifeboatEnvironment, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const long = proxyActivities<Activities>({
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: STEP_HEARTBEAT,
  retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 },
});

export async function dynamodbBackup(input: DynamoDbBackupInput): Promise<DynamoDbBackupReport> {
  const { workflowId } = workflowInfo();
  const startedAt = new Date().toISOString();
  const board = new StatusBoard('dynamodb backup', input.target);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'dynamodb-backup' },
    { key: LifeboatTarget, value: input.target },
  ]);
  const report: DynamoDbBackupReport = { workflowId, target: input.target, outcome: 'failed', verifications: [] };

  board.enter('planning', `checking ${input.target}'s table and its point-in-time recovery`);
  const plan: DynamoDbBackupPlan = await quick.planDynamoDbBackup.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Plan the backup of ${input.target}` }, [input]);
  report.plan = plan;
  upsertSearchAttributes([
    { key: LifeboatEnvironment, value: plan.environment },
    { key: LifeboatBackupType, value: 'dynamodb' },
  ]);

  try {
    board.enter('backing-up', `on-demand backup ${plan.backupName} of ${plan.tableName} in ${plan.region}`);
    const started = await quick.createDynamoDbBackup.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Take backup ${plan.backupName}` }, [plan]);
    report.started = started;
    report.backup = await long.waitDynamoDbBackup.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Wait for ${plan.backupName} to be AVAILABLE` }, [plan, started.backupArn, started.adopted]);

    board.enter('exporting', `exporting ${plan.tableName} as at ${report.backup.createdAt} to ${plan.primary.bucket}/${plan.primary.prefix}`);
    const exportArn = await quick.exportDynamoDbTable.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Export ${plan.tableName} to S3` }, [plan, report.backup]);
    report.export = await long.waitDynamoDbExport.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: 'Wait for the export to complete' }, [plan, exportArn]);

    board.enter('verifying', `checking the export's ${report.export.itemCount} items and every data file against its manifest`);
    const primaryCheck = await long.verifyDynamoDbExport.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Verify the export in ${plan.primary.store}` }, [plan, report.export, 'primary']);
    report.verifications.push(primaryCheck);
    if (!primaryCheck.ok) throw ApplicationFailure.nonRetryable(`verification of the export of ${plan.backupName} failed (${failedChecks(primaryCheck)}); take a new backup once the cause is fixed`, 'VERIFICATION_FAILED');

    board.enter('copying', `copying the export to ${plan.dr.store}/${plan.dr.bucket}/${plan.dr.prefix}`);
    report.drCopy = await long.copyDynamoDbExportToDr.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Copy the export to ${plan.dr.store}` }, [plan, report.export]);
    const drCheck = await long.verifyDynamoDbExport.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Verify the copy in ${plan.dr.store}` }, [plan, report.export, 'dr']);
    report.verifications.push(drCheck);
    if (!drCheck.ok) throw ApplicationFailure.nonRetryable(`verification of the DR copy of ${plan.backupName} failed (${failedChecks(drCheck)}); take a new backup once the cause is fixed`, 'VERIFICATION_FAILED');

    report.outcome = 'verified';
    board.enter('recording', 'recording the backup in the catalog');
    report.catalogId = await quick.recordDynamoDbBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the backup in the catalog' }, [plan, report, startedAt]);
    const summary = `backup ${plan.backupName} (${formatBytes(report.backup.sizeBytes)}), export of ${report.export.itemCount} items verified in ${plan.primary.store} and ${plan.dr.store}`;
    await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup complete' }, [
      { severity: 'info', title: `DynamoDB backup complete: ${plan.target}`, text: `${summary}.`, target: plan.target, fields: { backup: plan.backupName, items: report.export.itemCount, catalogId: report.catalogId } },
    ]);
    board.enter('done', summary);
    return report;
  } catch (err) {
    const cancelled = isCancellation(err);
    report.outcome = cancelled ? 'cancelled' : 'failed';
    report.failure = cancelled ? 'cancelled' : describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      board.enter(report.outcome, report.failure!);
      report.catalogId = await quick.recordDynamoDbBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the failure in the catalog' }, [plan, report, startedAt]);
      await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup failed' }, [
        { severity: cancelled ? 'warning' : 'critical', title: `DynamoDB backup of ${plan.target} ${report.outcome}`, text: report.failure!, target: plan.target },
      ]);
    });
    throw err;
  }
}
