/**
 * dynamodbRestore and dynamodbDrill: a DynamoDB table restored into a NEW table, verified.
 *
 *   validate (no side effects: the new name is not the source and not taken; the point is in
 *     the window, or the backup is verified in the catalog)
 *   -> [restore only] the restore gate, showing what goes where
 *   -> restore: RestoreTableToPointInTime (--to), RestoreTableFromBackup (--backup), or in the
 *      DR region ImportTable from the DR copy of the backup's export; the table tagged with the run
 *   -> wait ACTIVE -> verify (every item counted against the backup's export, keys as the source's)
 *   -> [drill only] delete the drill table -> report (catalog `restores` row, notification)
 *
 * A failure or a cancel after the restore started deletes the new table in a non-cancellable
 * scope, and only if its tags name this run (or it is this run's untagged table, made after the
 * validation saw none there); anything else is left and said.
 */
import { ActivityCancellationType, ApplicationFailure, CancellationScope, isCancellation, patched, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Decision } from '../domain/approval';
import { DynamoDbDrillInput, DynamoDbRestoreInput, DynamoDbRestoreOutcome, DynamoDbRestorePlan, DynamoDbRestoreReport } from '../domain/dynamodb';
import { ApprovalGates } from './approval-gate';
import { describeFailure, failedChecks, failureType } from './failure';
import { LifeboatEnvironment, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const long = proxyActivities<Activities>({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 } });
const evidence = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 10, initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' } });

const now = () => new Date().getTime();
const seconds = (ms: number) => Math.round(ms / 1000);

export async function dynamodbRestore(input: DynamoDbRestoreInput): Promise<DynamoDbRestoreReport> {
  return restoreTable(input, 'restore');
}

/** A drill: the backup (latest by default) restored into a drill table, verified, the table deleted; no gate. */
export async function dynamodbDrill(input: DynamoDbDrillInput): Promise<DynamoDbRestoreReport> {
  return restoreTable(
    {
      target: input.target,
      source: { kind: 'backup', backup: input.backup ?? 'latest' },
      intoTable: '',
      ...(input.fromRegion ? { fromRegion: input.fromRegion } : {}),
      requestedBy: input.requestedBy,
      reason: 'restore drill',
      ...(input.timings ? { timings: input.timings } : {}),
    },
    'drill',
  );
}

async function restoreTable(input: DynamoDbRestoreInput, purpose: 'restore' | 'drill'): Promise<DynamoDbRestoreReport> {
  const { workflowId } = workflowInfo();
  const startedAt = new Date().toISOString();
  const board = new StatusBoard(purpose === 'drill' ? 'dynamodb drill' : 'dynamodb restore', input.target);
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([
    { key: LifeboatKind, value: purpose === 'drill' ? 'dynamodb-drill' : 'dynamodb-restore' },
    { key: LifeboatTarget, value: input.target },
  ]);
  const report: DynamoDbRestoreReport = {
    workflowId,
    outcome: 'failed',
    target: input.target,
    requestedBy: input.requestedBy,
    reason: input.reason,
    purpose,
    phases: { validation: 0, waitingForApproval: 0, restore: 0, verify: 0, cleanup: 0 },
    cleanup: [],
  };
  const decisions: Decision[] = [];
  const record = async () => {
    try {
      await quick.recordDynamoDbRestore.executeWithOptions({ startToCloseTimeout: '30 seconds', summary: 'Record the report in the catalog' }, [report]);
    } catch (err) {
      report.cleanup.push(`the report was not recorded in the catalog: ${describeFailure(err)}`);
    }
  };

  // A drill's report goes to the evidence buckets and the drills table like every drill's,
  // passed or not; a drill run before this change published nothing, and replays so.
  const asked = input.source.kind === 'backup' ? input.source.backup : 'latest';
  const publishDrill = async (mustLand: boolean) => {
    if (purpose !== 'drill' || !patched('dynamodb-drill-evidence')) return;
    // No board.enter here: a phase change is a search-attribute command, and the histories before this patch have none at this point.
    try {
      report.evidence = await evidence.publishDynamoDbDrill.executeWithOptions({ startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, summary: 'Publish the drill report as evidence' }, [report, startedAt, asked]);
    } catch (err) {
      if (mustLand) throw err;
      report.cleanup.push(`the drill report was not published as evidence: ${describeFailure(err)}`);
    }
  };

  // 1. Validate: nothing exists yet, so a refusal ends the workflow with nothing to clean up.
  board.enter('validating', `checking the request for ${input.target}`);
  let t = now();
  let plan: DynamoDbRestorePlan;
  try {
    plan = await quick.validateDynamoDbRestore.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: 'Validate the request' }, [{ ...input, purpose }, workflowId]);
  } catch (err) {
    // A drill refused (no verified backup, the DR export missing) is a failed drill on record.
    if (purpose === 'drill' && !isCancellation(err)) {
      report.failure = describeFailure(err);
      report.phases.validation = seconds(now() - t);
      await CancellationScope.nonCancellable(() => publishDrill(false));
    }
    throw err;
  }
  report.phases.validation = seconds(now() - t);
  report.plan = plan;
  report.table = { name: plan.intoTable, region: plan.region };
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: plan.environment }]);
  const how = plan.method === 'import' ? `ImportTable in ${plan.region} from the DR export` : plan.method === 'from-backup' ? 'RestoreTableFromBackup' : 'RestoreTableToPointInTime';
  board.subject = `${plan.sourceTable} as at ${plan.pointLabel} into the new table ${plan.intoTable}`;

  // 2. The restore gate (a drill makes only a drill table and removes it: no gate).
  if (purpose === 'restore') {
    let decision: Decision;
    try {
      const policy = await quick.resolveGatePolicy.executeWithOptions({ startToCloseTimeout: '1 minute' }, [plan.environment, 'restore', input.requestedBy]);
      t = now();
      decision = await gates.request(
        policy,
        {
          title: `restore the DynamoDB table ${plan.sourceTable} of ${plan.target} as at ${plan.pointLabel} into the new table ${plan.intoTable}`,
          facts: [
            { label: 'target', value: `${plan.target} (dynamodb, ${plan.environment})` },
            { label: 'from', value: `${plan.sourceTable}, ${plan.pointLabel}` },
            { label: 'into', value: `the new table ${plan.intoTable} in ${plan.region} (${how}); no existing table is written` },
            { label: 'verified by', value: plan.expectedItems !== undefined ? `every item counted: ${plan.expectedItems} expected, as the backup's export holds` : 'every item counted, keys compared with the source' },
            { label: 'requested by', value: `${input.requestedBy}: ${input.reason}` },
          ],
        },
        plan.timings,
      );
      report.phases.waitingForApproval = seconds(now() - t);
      decisions.push(decision);
    } catch (err) {
      if (isCancellation(err)) {
        await CancellationScope.nonCancellable(async () => {
          report.outcome = 'cancelled';
          report.failure = 'cancelled while waiting for the restore gate; nothing was created';
          board.enter('cancelled', report.failure);
          await record();
        });
      }
      throw err;
    }
    if (decision.decision !== 'approved') {
      report.outcome = decision.decision === 'rejected' ? 'rejected' : 'expired';
      board.enter(decision.decision, `${decision.decision} by ${decision.by}: ${decision.reason}; nothing was created`);
      await record();
      return report;
    }
  }

  let restoreAttempted = false;
  try {
    // 3. Restore into the new table, tagged with this run.
    board.enter('restoring', `${how} into ${plan.intoTable}`);
    t = now();
    restoreAttempted = true;
    const started = await quick.restoreDynamoDbTable.executeWithOptions(
      { startToCloseTimeout: '2 minutes', cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Restore into ${plan.intoTable}` },
      [plan, purpose],
    );
    const active = await long.waitDynamoDbTable.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Wait for ${plan.intoTable} to be ACTIVE` }, [plan, purpose, started.importArn]);
    report.table = { name: plan.intoTable, region: plan.region, ...(active.tableArn ?? started.tableArn ? { arn: active.tableArn ?? started.tableArn } : {}) };
    report.phases.restore = seconds(now() - t);

    // 4. Verify: every item counted.
    board.enter('verifying', `counting every item of ${plan.intoTable}${plan.expectedItems !== undefined ? ` against the backup's ${plan.expectedItems}` : ''}`);
    t = now();
    report.verification = await long.verifyDynamoDbTable.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Verify ${plan.intoTable}` }, [plan]);
    report.phases.verify = seconds(now() - t);
    for (const c of report.verification.checks) board.validated(c);
    if (!report.verification.ok) throw ApplicationFailure.nonRetryable(`verification of ${plan.intoTable} failed (${failedChecks(report.verification)})`, 'VERIFICATION_FAILED');

    // 5. A drill's table goes once it proved the backup.
    if (purpose === 'drill') {
      board.enter('cleaning-up', `deleting the drill table ${plan.intoTable}`);
      t = now();
      report.cleanup.push(await quick.removeDynamoDbTable.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Delete the drill table ${plan.intoTable}` }, [plan]));
      report.phases.cleanup = seconds(now() - t);
    }
  } catch (err) {
    const cancelled = isCancellation(err);
    report.outcome = cancelled ? 'cancelled' : failureType(err) === 'VERIFICATION_FAILED' ? 'verification-failed' : 'failed';
    report.failure = cancelled ? 'cancelled' : describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      if (restoreAttempted) {
        board.enter('cleaning-up', `deleting ${plan.intoTable} if this run made it`);
        const t0 = now();
        try {
          report.cleanup.push(await quick.removeDynamoDbTable.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Delete ${plan.intoTable} if this run made it` }, [plan]));
        } catch (cleanupErr) {
          report.cleanup.push(`the table ${plan.intoTable} was not deleted (${describeFailure(cleanupErr)})`);
        }
        report.phases.cleanup = seconds(now() - t0);
      }
      board.enter(report.outcome, `${report.failure}${report.cleanup.length ? `; ${report.cleanup.join('; ')}` : ''}`);
      await record();
      await publishDrill(false);
      await quick.notify
        .executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: restore stopped' }, [
          { severity: cancelled ? 'warning' : 'critical', title: `DynamoDB ${purpose} of ${plan.target} ${report.outcome}`, text: `${report.failure}${report.cleanup.length ? `\n${report.cleanup.join('\n')}` : ''}`, target: plan.target },
        ])
        .catch(() => undefined);
    });
    throw err;
  }

  report.outcome = 'restored' satisfies DynamoDbRestoreOutcome;
  const summary = `${plan.intoTable}: ${report.verification!.itemCount} items${plan.expectedItems !== undefined ? `, as the backup's export holds` : ''}${purpose === 'drill' ? '; the drill table is deleted' : ''}`;
  board.enter('done', summary);
  await record();
  await publishDrill(true);
  await quick.notify
    .executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Notify: ${purpose} complete` }, [
      { severity: 'info', title: `DynamoDB ${purpose} of ${plan.target} complete`, text: `${plan.sourceTable} as at ${plan.pointLabel} restored into ${summary}.`, target: plan.target },
    ])
    .catch(() => undefined);
  return report;
}
