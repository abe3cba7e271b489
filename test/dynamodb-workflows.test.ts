/**
 * The DynamoDB workflows (dynamodbBackup, dynamodbRestore, dynamodbDrill) on the real local
 * Temporal with an in-process worker, the real catalog and the real MinIO of both regions;
 * DynamoDB itself is mocked at the SDK boundary (aws-sdk-client-mock) by a small model that
 * answers as DynamoDB does: a backup CREATING then AVAILABLE, an export IN_PROGRESS that then
 * writes its real objects (manifests, gzipped DYNAMODB_JSON) into the primary MinIO bucket, a
 * restored table CREATING then ACTIVE, an ImportTable that reads the DR copy's data files from
 * the DR MinIO, Scan COUNT page by page, tags kept per table. One backup serves the whole file.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  CreateBackupCommand,
  DeleteBackupCommand,
  DeleteTableCommand,
  DescribeBackupCommand,
  DescribeContinuousBackupsCommand,
  DescribeExportCommand,
  DescribeImportCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ExportTableToPointInTimeCommand,
  ImportTableCommand,
  ListBackupsCommand,
  ListTagsOfResourceCommand,
  ResourceNotFoundException,
  RestoreTableFromBackupCommand,
  RestoreTableToPointInTimeCommand,
  ScanCommand,
  TagResourceCommand,
  ThrottlingException,
  type ImportTableCommandInput,
  type TableDescription,
  type Tag,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { listBackups } from '../src/activities/backup';
import { dynamoDbPreflightChecks } from '../src/activities/dynamodb';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig, parseConfig } from '../src/config';
import { DYNAMODB_TAGS, DynamoDbBackupReport, DynamoDbRestoreReport } from '../src/domain/dynamodb';
import type { RetentionReport } from '../src/domain/retention';
import { describeFailure, failureType } from '../src/workflows/failure';
import { createLifeboatWorker } from '../src/worker';
import { DR_REGION, errorMeta as meta, REGION } from './helpers/aws-fixtures';
import { backupArn, backupDescription, continuousBackups, exportDescription, makeExport, orderItems, TABLE, tableDescription } from './helpers/dynamodb-fixtures';
import { recordHistory, uniqueId } from './helpers/pitr';
import { approveSigned } from './helpers/signing';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const ITEMS = 137;
/** Unique per run: the catalog of a kept test stack still holds the rows of earlier runs. */
const TARGET = `orders-table-${uniqueId('t').slice(2)}`;

/** DynamoDB as the tests see it: tables with tags and items, backups, exports. */
class FakeDynamoDb {
  tables = new Map<string, { desc: TableDescription; items: number; described: number; tags: Tag[] }>();
  backups = new Map<string, { name: string; described: number; createdAt: Date; stuck: boolean }>();
  exports = new Map<string, { described: number; done: boolean; folder: string; bytes: number; itemCount: number; bucket: string; prefix: string; exportTime: Date; write: Promise<void> }>();
  createBackupCalls = 0;
  stuck = false;

  constructor(
    readonly ddb: AwsClientStub<DynamoDBClient>,
    readonly s3: { primary: S3Client; dr: S3Client },
  ) {
    this.tables.set(TABLE, { desc: tableDescription(TABLE, 'ACTIVE'), items: ITEMS, described: 99, tags: [] });
    const missing = (name: string) => new ResourceNotFoundException({ message: `Requested resource not found: Table: ${name} not found`, $metadata: { ...meta } });
    ddb.on(DescribeTableCommand).callsFake((input: { TableName: string }) => {
      const t = this.tables.get(input.TableName);
      if (!t) throw missing(input.TableName);
      t.described++;
      if (t.desc.TableStatus === 'CREATING' && t.described >= 2) t.desc = { ...t.desc, TableStatus: 'ACTIVE' };
      return { Table: t.desc };
    });
    ddb.on(DescribeContinuousBackupsCommand).resolves(continuousBackups(true));
    ddb.on(ListBackupsCommand).callsFake(() => ({
      BackupSummaries: [...this.backups.entries()].map(([arn, b]) => ({ TableName: TABLE, BackupName: b.name, BackupArn: arn, BackupStatus: 'AVAILABLE' as const, BackupType: 'USER' as const })),
    }));
    ddb.on(CreateBackupCommand).callsFake((input: { BackupName: string }) => {
      this.createBackupCalls++;
      if (this.createBackupCalls === 1) throw new ThrottlingException({ message: 'Rate of requests exceeds the allowed throughput.', $metadata: { ...meta } });
      const arn = backupArn(input.BackupName);
      this.backups.set(arn, { name: input.BackupName, described: 0, createdAt: new Date(Math.floor(Date.now() / 1000) * 1000), stuck: this.stuck });
      return { BackupDetails: backupDescription(input.BackupName, 'CREATING', this.backups.get(arn)!.createdAt, ITEMS).BackupDetails };
    });
    ddb.on(DescribeBackupCommand).callsFake((input: { BackupArn: string }) => {
      const b = this.backups.get(input.BackupArn);
      if (!b) throw Object.assign(new Error(`Backup not found: ${input.BackupArn}`), { name: 'BackupNotFoundException', $metadata: { ...meta } });
      b.described++;
      return { BackupDescription: backupDescription(b.name, !b.stuck && b.described >= 2 ? 'AVAILABLE' : 'CREATING', b.createdAt, ITEMS) };
    });
    ddb.on(ExportTableToPointInTimeCommand).callsFake((input: { S3Bucket: string; S3Prefix: string; ExportTime: Date; ClientToken: string }) => {
      const exportArn = `${tableDescription(TABLE, 'ACTIVE').TableArn}/export/01733036${String(this.exports.size).padStart(5, '0')}-${input.ClientToken.slice(3, 11)}`;
      const existing = this.exports.get(exportArn);
      if (!existing) {
        const made = makeExport({ exportArn, bucket: input.S3Bucket, prefix: input.S3Prefix, exportTime: input.ExportTime, items: orderItems(ITEMS), files: 3 });
        // DynamoDB writes the data files while the export runs, manifests last.
        const write = (async () => {
          for (const [key, body] of made.objects) await this.s3.primary.send(new PutObjectCommand({ Bucket: input.S3Bucket, Key: key, Body: body }));
        })();
        this.exports.set(exportArn, { described: 0, done: false, folder: made.folder, bytes: made.bytes, itemCount: made.itemCount, bucket: input.S3Bucket, prefix: input.S3Prefix, exportTime: input.ExportTime, write });
      }
      const e = this.exports.get(exportArn)!;
      return { ExportDescription: exportDescription({ exportArn, status: 'IN_PROGRESS', bucket: e.bucket, prefix: e.prefix, exportTime: e.exportTime, folder: e.folder, itemCount: e.itemCount, bytes: e.bytes, clientToken: input.ClientToken }) };
    });
    ddb.on(DescribeExportCommand).callsFake(async (input: { ExportArn: string }) => {
      const e = this.exports.get(input.ExportArn)!;
      e.described++;
      if (e.described >= 2) {
        await e.write;
        e.done = true;
      }
      return { ExportDescription: exportDescription({ exportArn: input.ExportArn, status: e.done ? 'COMPLETED' : 'IN_PROGRESS', bucket: e.bucket, prefix: e.prefix, exportTime: e.exportTime, folder: e.folder, itemCount: e.itemCount, bytes: e.bytes }) };
    });
    const restored = (name: string, items: number, summary: TableDescription['RestoreSummary'], region = REGION) => {
      const desc = tableDescription(name, 'CREATING', { CreationDateTime: new Date(), ...(summary ? { RestoreSummary: summary } : {}) }, region);
      this.tables.set(name, { desc, items, described: 0, tags: [] });
      return desc;
    };
    ddb.on(RestoreTableFromBackupCommand).callsFake((input: { TargetTableName: string; BackupArn: string }) => ({
      TableDescription: restored(input.TargetTableName, ITEMS, { SourceBackupArn: input.BackupArn, SourceTableArn: tableDescription(TABLE, 'ACTIVE').TableArn, RestoreDateTime: new Date(), RestoreInProgress: true }),
    }));
    ddb.on(ImportTableCommand).callsFake(async (input: ImportTableCommandInput) => {
      // What an import reads: every data file under the prefix, in the DR bucket.
      const listed = await this.s3.dr.send(new ListObjectsV2Command({ Bucket: input.S3BucketSource!.S3Bucket, Prefix: input.S3BucketSource!.S3KeyPrefix }));
      let items = 0;
      for (const o of listed.Contents ?? []) {
        const body = await (await this.s3.dr.send(new GetObjectCommand({ Bucket: input.S3BucketSource!.S3Bucket, Key: o.Key }))).Body!.transformToByteArray();
        items += gunzipSync(Buffer.from(body)).toString('utf8').split('\n').filter((l) => l.trim()).length;
      }
      const name = input.TableCreationParameters!.TableName!;
      const desc = restored(name, items, undefined, DR_REGION);
      return { ImportTableDescription: { ImportArn: `${desc.TableArn}/import/01733036999999-a1b2c3d4`, ImportStatus: 'IN_PROGRESS' as const, TableArn: desc.TableArn, TableId: desc.TableId } };
    });
    ddb.on(DescribeImportCommand).resolves({ ImportTableDescription: { ImportStatus: 'IN_PROGRESS' } });
    ddb.on(TagResourceCommand).callsFake((input: { ResourceArn: string; Tags: Tag[] }) => {
      const t = [...this.tables.values()].find((x) => x.desc.TableArn === input.ResourceArn);
      if (!t) throw missing(input.ResourceArn);
      t.tags = [...t.tags.filter((old) => !input.Tags.some((n) => n.Key === old.Key)), ...input.Tags];
      return {};
    });
    ddb.on(ListTagsOfResourceCommand).callsFake((input: { ResourceArn: string }) => ({ Tags: [...this.tables.values()].find((x) => x.desc.TableArn === input.ResourceArn)?.tags ?? [] }));
    ddb.on(ScanCommand).callsFake((input: { TableName: string; ExclusiveStartKey?: { n: { N: string } } }) => {
      const t = this.tables.get(input.TableName)!;
      const from = Number(input.ExclusiveStartKey?.n.N ?? 0);
      const count = Math.min(50, t.items - from);
      return { Count: count, ScannedCount: count, ...(from + count < t.items ? { LastEvaluatedKey: { n: { N: String(from + count) } } } : {}) };
    });
    ddb.on(DeleteTableCommand).callsFake((input: { TableName: string }) => {
      const t = this.tables.get(input.TableName)!;
      this.tables.delete(input.TableName);
      return { TableDescription: { ...t.desc, TableStatus: 'DELETING' } };
    });
    ddb.on(DeleteBackupCommand).callsFake((input: { BackupArn: string }) => {
      const b = this.backups.get(input.BackupArn);
      if (!b) throw Object.assign(new Error(`Backup not found: ${input.BackupArn}`), { name: 'BackupNotFoundException', $metadata: { ...meta } });
      this.backups.delete(input.BackupArn);
      return { BackupDescription: backupDescription(b.name, 'DELETED', b.createdAt, ITEMS) };
    });
    ddb.on(RestoreTableToPointInTimeCommand).rejects(new Error('not expected in this test'));
  }
}

describe('DynamoDB targets: backup, restore and drill workflows (mocked DynamoDB, real Temporal, catalog and MinIO)', function () {
  let env: TestWorkflowEnvironment;
  let ddb: AwsClientStub<DynamoDBClient>;
  let fake: FakeDynamoDb;
  let config: LifeboatConfig;
  let ports: Ports;
  const suffix = uniqueId('x').slice(2);
  const buckets = { primary: `lbtest-ddb-${suffix}`, dr: `lbtest-ddb-dr-${suffix}` };
  let backup: DynamoDbBackupReport;
  let stuckWorkflowId: string | undefined;

  before(async function () {
    this.timeout(600000);
    await useStack();
    env = await useTemporal();
    const text = fs.readFileSync(path.resolve(__dirname, '../../lifeboat.config.yaml'), 'utf8');
    const target = [
      '  dynamodb:',
      `    - name: ${TARGET}`,
      '      environment: production',
      `      region: ${REGION}`,
      `      drRegion: ${DR_REGION}`,
      `      tableName: ${TABLE}`,
      '      exports:',
      `        primary: { store: primary, bucket: ${buckets.primary}, prefix: dynamodb/orders }`,
      `        dr: { store: dr, bucket: ${buckets.dr}, prefix: dr-copies/orders }`,
      '',
    ].join('\n');
    config = parseConfig(`${text.replace(/\n*$/, '\n')}${target}`, 'lifeboat.config.yaml + dynamodb target');
    ports = createPorts(config);
    await ports.objectStore('primary').send(new CreateBucketCommand({ Bucket: buckets.primary }));
    await ports.objectStore('dr').send(new CreateBucketCommand({ Bucket: buckets.dr }));
    ddb = mockClient(DynamoDBClient);
    fake = new FakeDynamoDb(ddb, { primary: ports.objectStore('primary'), dr: ports.objectStore('dr') });
  });

  after(async () => {
    ddb?.restore();
    await ports?.close();
  });

  async function run<R>(workflowType: string, workflowId: string, args: unknown[], o: { approve?: boolean; history?: string } = {}): Promise<{ result?: R; error?: unknown }> {
    const taskQueue = uniqueTaskQueue('dynamodb');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(async () => {
      const handle = await env.client.workflow.start(workflowType, { taskQueue, workflowId, args });
      const approving = (async () => {
        if (!o.approve) return;
        for (let i = 0; i < 600; i++) {
          if ((await handle.describe()).status.name !== 'RUNNING') return;
          const status = (await handle.query('status').catch(() => undefined)) as { pendingGate?: unknown } | undefined;
          if (status?.pendingGate) {
            await approveSigned(handle, { by: 'carol@example.com', reason: 'data owner agrees' });
            return;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      try {
        return { result: (await handle.result()) as R };
      } catch (error) {
        return { error };
      } finally {
        await approving;
        if (o.history) await recordHistory(handle, o.history);
      }
    });
  }

  it('backs up: on-demand backup (throttled once, then retried), export verified, copied to the DR bucket and verified there, one catalog row of kind dynamodb', async function () {
    this.timeout(180000);
    const workflowId = uniqueId('backup-dynamodb-orders');
    const { result, error } = await run<DynamoDbBackupReport>('dynamodbBackup', workflowId, [{ target: TARGET, requestedBy: 'test', timings: { pollIntervalMs: 50 } }], { history: 'dynamodbBackup-v1-verified' });
    assert.equal(error, undefined, describeFailure(error));
    backup = result!;
    assert.equal(backup.outcome, 'verified');
    // Throttled once, retried by Temporal: two CreateBackup calls, one backup, named from the workflow id.
    assert.equal(fake.createBackupCalls, 2);
    assert.equal(fake.backups.size, 1);
    assert.equal(backup.backup?.backupName, `lifeboat-${workflowId}`);
    const sent = ddb.commandCalls(ExportTableToPointInTimeCommand)[0].args[0].input;
    assert.equal(sent.ExportTime?.toISOString(), backup.backup?.createdAt, 'exported as at the backup');
    assert.equal(sent.S3Prefix, `dynamodb/orders/lifeboat-${workflowId}`);
    assert.deepEqual(
      backup.verifications.map((v) => [v.region, v.ok, v.itemCount, v.files]),
      [
        ['primary', true, ITEMS, 3],
        ['dr', true, ITEMS, 3],
      ],
    );
    assert.deepEqual(backup.drCopy && { copied: backup.drCopy.copied, skipped: backup.drCopy.skipped }, { copied: 5, skipped: 0 });
    // The DR bucket holds the same objects under its own prefix.
    const drKeys = (await ports.objectStore('dr').send(new ListObjectsV2Command({ Bucket: buckets.dr }))).Contents?.map((o) => o.Key) ?? [];
    assert.equal(drKeys.length, 5);
    assert.ok(drKeys.every((k) => k!.startsWith(`dr-copies/orders/lifeboat-${workflowId}/AWSDynamoDB/`)));

    const rows = await listBackups(ports, { target: TARGET });
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0].status, rows[0].kind, rows[0].engine, rows[0].primary, rows[0].id], ['verified', 'dynamodb', 'dynamodb', `lifeboat-${workflowId}`, backup.catalogId]);
    assert.match(rows[0].dr ?? '', new RegExp(`^s3://${buckets.dr}/dr-copies/orders/lifeboat-`));
  });

  it('restores the backup into a NEW table behind the restore gate, tags it with the run and counts every item against the export', async function () {
    this.timeout(120000);
    assert.ok(backup, 'needs the backup of the first test');
    const workflowId = uniqueId('restore-dynamodb-orders');
    const { result, error } = await run<DynamoDbRestoreReport>(
      'dynamodbRestore',
      workflowId,
      [{ target: TARGET, source: { kind: 'backup', backup: 'latest' }, intoTable: 'orders-restored', requestedBy: 'alice@example.com', reason: 'test: undo a bad import', timings: { remindAfterMs: 60000, abortAfterMs: 120000, pollIntervalMs: 50 } }],
      { approve: true, history: 'dynamodbRestore-v1-from-backup' },
    );
    assert.equal(error, undefined, describeFailure(error));
    assert.equal(result!.outcome, 'restored');
    const call = ddb.commandCalls(RestoreTableFromBackupCommand)[0].args[0].input;
    assert.deepEqual([call.TargetTableName, call.BackupArn], ['orders-restored', backupArn(backup.backup!.backupName)]);
    const table = fake.tables.get('orders-restored')!;
    assert.equal(table.tags.find((t) => t.Key === DYNAMODB_TAGS.workflowId)?.Value, workflowId);
    assert.deepEqual(result!.verification?.checks.map((c) => [c.name, c.ok]), [['active', true], ['key-schema', true], ['item-count', true]]);
    assert.equal(result!.verification?.itemCount, ITEMS);
    const [row] = await ports.catalog.query<{ outcome: string; destination: string }>('SELECT outcome, destination FROM restores WHERE workflow_id = $1', [workflowId]);
    assert.deepEqual(row, { outcome: 'restored', destination: 'orders-restored' });
  });

  it('refuses a restore into a table that exists with one sentence, before it makes anything', async function () {
    this.timeout(60000);
    const before = ddb.commandCalls(RestoreTableFromBackupCommand).length;
    const { error } = await run<DynamoDbRestoreReport>('dynamodbRestore', uniqueId('restore-dynamodb-orders'), [
      { target: TARGET, source: { kind: 'backup', backup: 'latest' }, intoTable: 'orders-restored', requestedBy: 'alice@example.com', reason: 'test: again', timings: { pollIntervalMs: 50 } },
    ]);
    assert.ok(error instanceof WorkflowFailedError);
    assert.equal(failureType(error), 'RESTORE_REFUSED');
    assert.equal(describeFailure(error), 'The table orders-restored already exists in us-east-1; lifeboat restores only into a new table and never writes over one, so give --into-table a name that is not taken.');
    assert.equal(ddb.commandCalls(RestoreTableFromBackupCommand).length, before);
  });

  it('drills from the DR copy: ImportTable in the DR region from the copied export, every item counted, the drill table deleted', async function () {
    this.timeout(120000);
    assert.ok(backup, 'needs the backup of the first test');
    const workflowId = uniqueId('drill-dynamodb-orders');
    const { result, error } = await run<DynamoDbRestoreReport>('dynamodbDrill', workflowId, [{ target: TARGET, fromRegion: 'dr', requestedBy: 'test', timings: { pollIntervalMs: 50 } }], { history: 'dynamodbDrill-v1-dr-import' });
    assert.equal(error, undefined, describeFailure(error));
    assert.equal(result!.outcome, 'restored');
    const imported = ddb.commandCalls(ImportTableCommand).at(-1)!.args[0].input;
    assert.equal(imported.S3BucketSource?.S3Bucket, buckets.dr);
    assert.match(imported.S3BucketSource?.S3KeyPrefix ?? '', /^dr-copies\/orders\/lifeboat-.*\/AWSDynamoDB\/[^/]+\/data\/$/);
    assert.deepEqual(imported.TableCreationParameters?.KeySchema, tableDescription(TABLE, 'ACTIVE').KeySchema);
    assert.equal(result!.verification?.itemCount, ITEMS);
    // Deleted, and only the drill table: the table the restore test made is still there.
    const deleted = ddb.commandCalls(DeleteTableCommand).map((c) => c.args[0].input.TableName);
    assert.deepEqual(deleted, [result!.table!.name]);
    assert.ok(fake.tables.has('orders-restored'));
    assert.match(result!.cleanup.join(';'), /deleted table orders-drill-[0-9a-f]{8} in us-west-2, which this run made/);
  });

  it('fails a backup stuck CREATING with a sentence, records it as failed, and leaves the backup alone', async function () {
    this.timeout(60000);
    fake.stuck = true;
    const workflowId = uniqueId('backup-dynamodb-orders');
    const { error } = await run<DynamoDbBackupReport>('dynamodbBackup', workflowId, [{ target: TARGET, timings: { pollIntervalMs: 50, waitTimeoutMs: 400 } }], { history: 'dynamodbBackup-v1-stuck-creating' });
    fake.stuck = false;
    assert.equal(failureType(error), 'BACKUP_STUCK');
    assert.match(describeFailure(error), /is still CREATING in us-east-1 after 0 minutes/);
    const [row] = await ports.catalog.query<{ status: string; failure: string }>('SELECT status, failure FROM backups WHERE workflow_id = $1', [workflowId]);
    assert.equal(row.status, 'failed');
    assert.match(row.failure, /still CREATING/);
    assert.ok(![...fake.tables.keys()].some((t) => t.includes('drill')));
    stuckWorkflowId = workflowId;
  });

  it('retention expires the failed backup (its on-demand backup deleted, by name) and keeps the last verified one', async function () {
    this.timeout(120000);
    assert.ok(stuckWorkflowId && backup, 'needs the backups of the tests above');
    // DynamoDB has since finished the stuck backup: AVAILABLE, so it can be deleted.
    for (const b of fake.backups.values()) b.stuck = false;
    const now = new Date(Date.now() + 2 * 86400_000).toISOString();
    const { result, error } = await run<RetentionReport>('retention', uniqueId('retention-dynamodb'), [{ target: TARGET, now }]);
    assert.equal(error, undefined, describeFailure(error));
    const outcomes = result!.outcomes.map((o) => [o.engineBackupId, o.outcome]);
    assert.deepEqual(outcomes, [[`lifeboat-${stuckWorkflowId}`, 'expired']]);
    assert.deepEqual(ddb.commandCalls(DeleteBackupCommand).map((c) => c.args[0].input.BackupArn), [backupArn(`lifeboat-${stuckWorkflowId}`)]);
    assert.deepEqual([...fake.backups.values()].map((b) => b.name), [backup.backup!.backupName]);
    const rows = await ports.catalog.query<{ engine_backup_id: string; status: string }>('SELECT engine_backup_id, status FROM backups WHERE target = $1 ORDER BY id', [TARGET]);
    assert.deepEqual(rows.map((r) => r.status), ['verified', 'expired']);
  });

  it('preflight: the table, its point-in-time recovery (a clear sentence when off) and both export buckets', async () => {
    const ok = await dynamoDbPreflightChecks(ports, TARGET);
    assert.deepEqual(
      ok.map((c) => [c.component, c.ok]),
      [
        [`${TARGET}: table`, true],
        [`${TARGET}: point-in-time recovery`, true],
        [`${TARGET}: primary export bucket`, true],
        [`${TARGET}: dr export bucket`, true],
      ],
    );
    ddb.on(DescribeContinuousBackupsCommand).resolves(continuousBackups(false));
    try {
      const pitr = (await dynamoDbPreflightChecks(ports, TARGET)).find((c) => c.component.endsWith('point-in-time recovery'))!;
      assert.equal(pitr.ok, false);
      assert.match(pitr.detail, /^Point-in-time recovery is not enabled on the DynamoDB table orders in us-east-1, and lifeboat needs it for exports to S3 and restores to a time: enable it \(aws dynamodb update-continuous-backups /);
    } finally {
      ddb.on(DescribeContinuousBackupsCommand).resolves(continuousBackups(true));
    }
  });
});
