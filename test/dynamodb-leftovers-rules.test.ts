/**
 * The pure rules behind DynamoDB's drill evidence, compliance and sweeping: the drill's report
 * as every drill publishes it, the compliance judgement with point-in-time recovery as the RPO
 * and a monthly drill by default, and the sweeper's verdict on a `<table>-drill-<hex>` table.
 */
import assert from 'node:assert/strict';
import { cadenceSeconds, judgeTarget, TargetFacts } from '../src/domain/compliance';
import { drillReportHtml, drillReportMarkdown } from '../src/domain/drill-report';
import { DynamoDbDrillTableResource, sweepVerdict } from '../src/domain/drill-sweep';
import { drillTableName, DynamoDbRestoreReport, dynamoDbDrillReport, isDrillTableName } from '../src/domain/dynamodb';

const DRILL_ID = 'drill-dynamodb-orders-table-2026-12-01t04-00-00-000z';

/** A dynamodbDrill's own report as the workflow returns it, from the DR copy. */
function drillRun(over: Partial<DynamoDbRestoreReport> = {}): DynamoDbRestoreReport {
  return {
    workflowId: DRILL_ID,
    outcome: 'restored',
    target: 'orders-table',
    requestedBy: 'schedule',
    reason: 'restore drill',
    purpose: 'drill',
    plan: {
      target: 'orders-table',
      environment: 'production',
      region: 'us-west-2',
      sourceTable: 'orders',
      intoTable: drillTableName('orders', DRILL_ID),
      method: 'import',
      pointLabel: 'backup lifeboat-backup-dynamodb-orders-table-1 (DR export)',
      backup: { catalogId: '412', backupArn: 'arn:aws:dynamodb:us-east-1:123456789012:table/orders/backup/01733030000000-a1b2c3d4', backupName: 'lifeboat-backup-dynamodb-orders-table-1', itemCount: 137 },
      expectedItems: 137,
      validatedAt: '2026-12-01T04:00:02.000Z',
      timings: { remindAfterMs: 0, abortAfterMs: 0, pollIntervalMs: 20000, waitTimeoutMs: 0 },
    },
    table: { name: drillTableName('orders', DRILL_ID), region: 'us-west-2' },
    verification: {
      ok: true,
      itemCount: 137,
      checks: [
        { name: 'active', ok: true, detail: 'ACTIVE' },
        { name: 'key-schema', ok: true, detail: 'customerId HASH, orderId RANGE, as the source' },
        { name: 'item-count', ok: true, detail: "137 items, as the backup's export holds." },
      ],
    },
    phases: { validation: 2, waitingForApproval: 0, restore: 540, verify: 31, cleanup: 12 },
    cleanup: [`deleted table ${drillTableName('orders', DRILL_ID)} in us-west-2, which this run made`],
    ...over,
  };
}

const facts = {
  runId: '0193a6f2-7c1e-7d4b-9a2f-5e8c1b3d4f60',
  startedAt: '2026-12-01T04:00:00.000Z',
  finishedAt: '2026-12-01T04:09:50.000Z',
  environment: 'production',
  engineLabel: 'dynamodb',
  backup: { takenAt: '2026-11-30T03:31:00.000Z', sizeBytes: 48213 },
  objectives: { rpo: 900, rto: 3600 },
  history: [],
  asked: 'latest',
};

describe('DynamoDB drills as drill evidence (pure)', () => {
  it('a passed drill: the backup drilled, the DR region, each check with its method, RTO without the cleanup, the backup age as RPO', () => {
    const { report, selection } = dynamoDbDrillReport(drillRun(), facts);
    assert.equal(report.outcome, 'passed');
    assert.deepEqual(report.target, { name: 'orders-table', kind: 'dynamodb', engine: 'dynamodb', environment: 'production' });
    assert.deepEqual([selection.backupId, selection.catalogId, selection.region], ['lifeboat-backup-dynamodb-orders-table-1', '412', 'dr']);
    assert.deepEqual(report.steps.map((s) => [s.phase, s.startedAt, s.seconds]), [
      ['validating', '2026-12-01T04:00:00.000Z', 2],
      ['restoring', '2026-12-01T04:00:02.000Z', 540],
      ['verifying', '2026-12-01T04:09:02.000Z', 31],
      ['cleaning-up', '2026-12-01T04:09:33.000Z', 12],
    ]);
    assert.equal(report.rto.seconds, 2 + 540 + 31);
    assert.equal(report.rpo.seconds, 88140);
    assert.match(report.validations.find((v) => v.name === 'item-count')!.method, /^Scan with Select COUNT over every page/);
    assert.deepEqual(report.issues, []);
    // The backup was older than the RPO objective: said, with what covers the gap.
    assert.equal(report.recommendations.length, 1);
    assert.match(report.recommendations[0], /88140 s old, over the RPO objective of 900 s; point-in-time recovery covers the gap/);
    const md = drillReportMarkdown(report);
    assert.match(md, /^# Restore drill drill-dynamodb-orders-table-.*: PASSED$/m);
    assert.match(md, /- Target: orders-table \(dynamodb, dynamodb\), environment production/);
    assert.match(md, /- Restored into: orders-drill-[0-9a-f]{8}: a new table in us-west-2 \(ImportTable in us-west-2 from the DR copy of the export\), tagged/);
    assert.match(drillReportHtml(report), /<td>orders-table \(dynamodb, dynamodb\), environment production<\/td>/);
  });

  it('a drill refused at validation is a failed drill with no backup and a recommendation to take one', () => {
    const { report, selection } = dynamoDbDrillReport(
      drillRun({ outcome: 'failed', plan: undefined, table: undefined, verification: undefined, cleanup: [], failure: 'orders-table has no verified backup in the catalog yet: take one with `lifeboat backup orders-table` first.', phases: { validation: 1, waitingForApproval: 0, restore: 0, verify: 0, cleanup: 0 } }),
      { ...facts, backup: undefined },
    );
    assert.equal(report.outcome, 'failed');
    assert.deepEqual([selection.backupId, selection.catalogId, report.restoredInto.name], ['none', '', 'none']);
    assert.deepEqual(report.steps.map((s) => s.phase), ['validating']);
    assert.deepEqual(report.issues, ['orders-table has no verified backup in the catalog yet: take one with `lifeboat backup orders-table` first.']);
    assert.deepEqual(report.recommendations, ['orders-table has no backup lifeboat could drill: take one (lifeboat backup orders-table) and drill again.']);
  });

  it('a drill whose item count differs failed, and the table it could not delete is an issue', () => {
    const run = drillRun({
      outcome: 'verification-failed',
      failure: 'verification of orders-drill-1 failed (item-count)',
      verification: { ok: false, itemCount: 130, checks: [{ name: 'item-count', ok: false, detail: "130 items, the backup's export holds 137." }] },
      cleanup: ['the table orders-drill-1 was not deleted (AccessDeniedException)'],
    });
    const { report } = dynamoDbDrillReport(run, facts);
    assert.equal(report.outcome, 'failed');
    assert.deepEqual(report.issues, ['verification of orders-drill-1 failed (item-count)', 'the table orders-drill-1 was not deleted (AccessDeniedException)']);
    assert.match(report.recommendations[0], /^Do not count on backup lifeboat-backup-dynamodb-orders-table-1 until a drill of it passes: .*--from-region dr\)\.$/);
  });
});

describe('DynamoDB in the compliance report (pure)', () => {
  const now = Date.parse('2026-12-01T06:00:00.000Z');
  const base: TargetFacts = {
    target: 'orders-table',
    kind: 'dynamodb',
    environment: 'production',
    recoveryPoint: { objectiveSeconds: 900, lastVerifiedBackupAt: '2026-11-30T03:31:00.000Z' },
    drill: { ...(() => { const c = cadenceSeconds(undefined, 'dynamodb'); return { cadenceSeconds: c.seconds, cadence: c.cadence }; })(), lastPassedAt: '2026-11-01T04:09:50.000Z', lastPassedId: DRILL_ID },
    retention: { policy: { daily: 7, weekly: 4, monthly: 12 }, backups: [{ id: '412', name: 'lifeboat-backup-dynamodb-orders-table-1', completedAt: '2026-11-30T03:31:00.000Z', verified: true, series: 'physical' }] },
    openFailures: { backups: [], drills: [] },
  };

  it('drills a DynamoDB table monthly by default', () => {
    assert.deepEqual(cadenceSeconds(undefined, 'dynamodb'), { seconds: 31 * 86400, cadence: 'monthly (the default for DynamoDB tables)' });
    const drill = judgeTarget(base, now).checks.find((c) => c.name === 'drill')!;
    assert.equal(drill.status, 'ok');
    const late = judgeTarget({ ...base, drill: { ...base.drill, lastPassedAt: '2026-10-25T04:00:00.000Z' } }, now).checks.find((c) => c.name === 'drill')!;
    assert.equal(late.status, 'breach');
    assert.match(late.detail, /OVERDUE for its cadence, monthly \(the default for DynamoDB tables\)/);
  });

  it('takes the RPO from point-in-time recovery where it is on, and from the last backup\'s age where it is off', () => {
    const pitr = { breached: false, detail: 'point-in-time recovery of orders restores to 2026-12-01T05:55:00.000Z, 300 s ago, within the RPO of 900 s' };
    const withPitr = judgeTarget({ ...base, recoveryPoint: { ...base.recoveryPoint, measured: pitr } }, now).checks.find((c) => c.name === 'recovery point')!;
    assert.equal(withPitr.status, 'ok');
    assert.match(withPitr.detail, /; point-in-time recovery of orders restores to .* within the RPO of 900 s$/);
    const without = judgeTarget(base, now).checks.find((c) => c.name === 'recovery point')!;
    assert.equal(without.status, 'breach', 'a day-old backup is beyond a 15-minute RPO when nothing else covers it');
  });
});

describe('the drill sweeper and DynamoDB drill tables (pure)', () => {
  const table = (over: Partial<DynamoDbDrillTableResource> = {}): DynamoDbDrillTableResource => ({
    kind: 'dynamodb-table',
    target: 'orders-table',
    region: 'dr',
    awsRegion: 'us-west-2',
    name: drillTableName('orders', DRILL_ID),
    status: 'ACTIVE',
    owner: { workflowId: DRILL_ID, runId: 'run-1' },
    createdByLifeboat: true,
    ...over,
  });

  it('knows a drill table name from any other', () => {
    assert.equal(isDrillTableName(drillTableName('orders', DRILL_ID), 'orders'), true);
    assert.equal(isDrillTableName('orders-drill-notes', 'orders'), false);
    assert.equal(isDrillTableName('payments-drill-0a1b2c3d', 'orders'), false);
    const long = 'o'.repeat(250);
    assert.equal(isDrillTableName(drillTableName(long, DRILL_ID), long), true);
  });

  it('removes a tagged drill table only when its dynamodbDrill run is closed', () => {
    assert.equal(sweepVerdict(table(), { state: 'closed', workflowType: 'dynamodbDrill', status: 'TERMINATED', closedAt: '2026-12-01T04:03:00.000Z' }).action, 'remove');
    assert.match(sweepVerdict(table(), { state: 'closed', workflowType: 'dynamodbDrill', status: 'TERMINATED' }).reason, /^DynamoDB drill table orders-drill-[0-9a-f]{8} of orders-table in us-west-2 outlived its owner workflow drill-dynamodb-/);
    assert.equal(sweepVerdict(table(), { state: 'running', workflowType: 'dynamodbDrill' }).action, 'keep');
  });

  it('never removes an untagged table, nor one whose run is not a dynamodbDrill', () => {
    const untagged = sweepVerdict(table({ createdByLifeboat: false, owner: undefined }), undefined);
    assert.equal(untagged.action, 'report');
    assert.match(untagged.reason, /carries no lifeboat label, so lifeboat did not make it/);
    assert.equal(sweepVerdict(table(), { state: 'closed', workflowType: 'dynamodbRestore', status: 'FAILED' }).action, 'report');
    assert.equal(sweepVerdict(table(), { state: 'closed', workflowType: 'restoreDrill', status: 'COMPLETED' }).action, 'report');
    assert.equal(sweepVerdict(table(), { state: 'not-found' }).action, 'report');
  });
});
