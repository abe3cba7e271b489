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
import os from 'node:os';
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
  ListTablesCommand,
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
import { complianceActivities } from '../src/activities/compliance';
import { dynamoDbPreflightChecks } from '../src/activities/dynamodb';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig, parseConfig } from '../src/config';
import { judgeTarget } from '../src/domain/compliance';
import type { DrillSweepResult } from '../src/domain/drill-sweep';
import { drillTableName, DYNAMODB_TAGS, DynamoDbBackupReport, DynamoDbRestoreReport } from '../src/domain/dynamodb';
import { collectCatalogMetrics } from '../src/metrics/catalog-metrics';
import type { RetentionReport } from '../src/domain/retention';
import { describeFailure, failureType } from '../src/workflows/failure';
import { createLifeboatWorker } from '../src/worker';
import { DR_REGION, errorMeta as meta, REGION } from './helpers/aws-fixtures';
import { lifeboat } from './helpers/cli';
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
    ddb.on(ListTablesCommand).callsFake(async (_input: unknown, getClient: () => DynamoDBClient) => {
      const region = await getClient().config.region();
      return { TableNames: [...this.tables.entries()].filter(([, t]) => t.desc.TableArn!.split(':')[3] === region).map(([name]) => name).sort() };
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
  let configFile: string;
  let drill: DynamoDbRestoreReport | undefined;

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
    // The same config as a file, for the CLI run as a child process (the worker stays in here, with the mock).
    configFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-ddb-')), 'lifeboat.config.yaml');
    fs.writeFileSync(configFile, `${text.replace(/\n*$/, '\n')}${target}`);
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
    const { result, error } = await run<DynamoDbRestoreReport>('dynamodbDrill', workflowId, [{ target: TARGET, fromRegion: 'dr', requestedBy: 'test', timings: { pollIntervalMs: 50 } }], { history: 'dynamodbDrill-v2-dr-import-evidence' });
    drill = result;
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

  it('publishes the drill as evidence: a drills row, the report in md/json/html that --verify reads back, the backup proven, drills list', async function () {
    this.timeout(600000);
    assert.ok(drill?.evidence, 'needs the drill of the test above, with its evidence');
    const [row] = await ports.catalog.query<{ outcome: string; backup_id: string; region: string; rto_seconds: number; report: { target: { kind: string } } }>('SELECT outcome, backup_id, region, rto_seconds, report FROM drills WHERE workflow_id = $1', [drill.workflowId]);
    assert.deepEqual([row.outcome, row.backup_id, row.region, row.report.target.kind], ['passed', backup.backup!.backupName, 'dr', 'dynamodb']);
    assert.equal(row.rto_seconds, drill.phases.validation + drill.phases.restore + drill.phases.verify);
    assert.deepEqual(drill.evidence.map((e) => e.format), ['json', 'md', 'html']);
    const [marked] = await ports.catalog.query<{ drill_outcome: string }>('SELECT drill_outcome FROM backups WHERE id = $1', [backup.catalogId]);
    assert.equal(marked.drill_outcome, 'proven');

    const md = await lifeboat(['drill', 'report', drill.workflowId, '--config', configFile]);
    assert.equal(md.code, 0, md.stderr);
    assert.match(md.stdout, new RegExp(`^# Restore drill ${drill.workflowId}: PASSED\n`));
    assert.match(md.stdout, new RegExp(`- Target: ${TARGET} \\(dynamodb, dynamodb\\), environment production`));
    assert.match(md.stdout, /\| item-count \| Scan with Select COUNT over every page, against the item count of the backup's export manifest \| passed \| 137 items/);
    const json = await lifeboat(['drill', 'report', drill.workflowId, '--format', 'json', '--config', configFile]);
    assert.equal((JSON.parse(json.stdout) as { backup: { id: string } }).backup.id, backup.backup!.backupName);
    const verify = await lifeboat(['drill', 'report', drill.workflowId, '--verify', '--config', configFile]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.equal(verify.stdout.split('\n').filter((l) => l.startsWith('ok  ')).length, 3 * drill.evidence[0].copies.length);

    const list = await lifeboat(['drills', 'list', '--target', TARGET, '--json', '--config', configFile]);
    assert.equal(list.code, 0, list.stderr);
    const [entry] = JSON.parse(list.stdout) as Array<{ target: string; kind: string; last?: { drillId: string; outcome: string; region: string } }>;
    assert.deepEqual([entry.target, entry.kind, entry.last?.drillId, entry.last?.outcome, entry.last?.region], [TARGET, 'dynamodb', drill.workflowId, 'passed', 'dr']);
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

  it('backup --wait through the real CLI: the catalog id alone on stdout once verified in both regions, exit 0', async function () {
    this.timeout(300000);
    const taskQueue = uniqueTaskQueue('dynamodb-wait');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    const r = await worker.runUntil(lifeboat(['backup', TARGET, '--wait', '--config', configFile], { LIFEBOAT_TASK_QUEUE: taskQueue }));
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^\d+\n$/, 'the id alone on stdout');
    assert.match(r.stderr, new RegExp(`backup lifeboat-backup-dynamodb-${TARGET}-[^ ]+ of ${TARGET} verified in both regions \\(workflow backup-dynamodb-${TARGET}-`));
    const [row] = await ports.catalog.query<{ status: string; target: string; locations: { dr?: { failed?: boolean; exportFolder?: string } } }>('SELECT status, target, locations FROM backups WHERE id = $1', [r.stdout.trim()]);
    assert.deepEqual([row.target, row.status, row.locations.dr?.failed], [TARGET, 'verified', undefined]);
    assert.ok(row.locations.dr?.exportFolder);
    const json = await lifeboat(['backup', TARGET, '--wait', '--json', '--config', configFile], { LIFEBOAT_TASK_QUEUE: taskQueue });
    assert.deepEqual([json.code, json.stdout, json.stderr.trimEnd()], [2, '', 'lifeboat: --wait prints only the backup id on stdout, for scripts; leave out --json (or --wait: --json prints the whole result).']);
  });

  it('compliance, metrics and storage see the table: RPO from point-in-time recovery, the monthly drill, backup age, exports and on-demand backups', async function () {
    this.timeout(600000);
    const facts = await complianceActivities(ports).complianceFacts(TARGET);
    assert.equal(facts.kind, 'dynamodb');
    assert.match(facts.recoveryPoint.measured?.detail ?? '', /^point-in-time recovery of orders restores to \S+, \d+ s ago, within the RPO of 900 s$/);
    assert.equal(facts.drill.lastPassedId, drill?.workflowId);
    const judged = judgeTarget(facts, Date.now());
    assert.deepEqual(judged.checks.map((c) => [c.name, c.status]).slice(0, 2), [['recovery point', 'ok'], ['drill', 'ok']]);
    assert.ok((await complianceActivities(ports).complianceTargets()).some((t) => t.target === TARGET && t.kind === 'dynamodb'));

    const metrics = await collectCatalogMetrics(ports.catalog, config);
    const sample = (name: string) => metrics.find((f) => f.name === name)?.samples?.find((x) => x.labels.target === TARGET)?.value;
    assert.ok((sample('lifeboat_last_verified_backup_age_seconds') ?? Infinity) < 600);
    assert.equal(sample('lifeboat_drill_last_success'), 1);
    assert.equal(sample('lifeboat_drill_cadence_seconds'), 31 * 86400);

    const storage = await lifeboat(['storage', '--target', TARGET, '--json', '--config', configFile]);
    const report = JSON.parse(storage.stdout) as { targets: Array<{ target: string; region: string; byClass: Record<string, number> }> };
    const [primary, dr] = ['primary', 'dr'].map((region) => report.targets.find((t) => t.target === TARGET && t.region === region)!);
    const [sized] = await ports.catalog.query<{ bytes: string }>("SELECT sum(size_bytes)::text AS bytes FROM backups WHERE target = $1 AND status = 'verified'", [TARGET]);
    assert.equal(primary.byClass.DYNAMODB_BACKUP, Number(sized.bytes));
    assert.ok(primary.byClass.STANDARD > 0 && dr.byClass.STANDARD > 0, 'the exports in both buckets');
    const text = await lifeboat(['storage', '--target', TARGET, '--config', configFile]);
    // By class, the on-demand backups beside the exports' S3 class (classes in the order the listing found them).
    assert.match(text.stdout, new RegExp(`${TARGET}\\s+primary\\s+\\S+ \\S+\\s+(STANDARD \\S+ \\S+, DYNAMODB_BACKUP \\S+ \\S+|DYNAMODB_BACKUP \\S+ \\S+, STANDARD \\S+ \\S+)\\s`));
  });

  it('the drill sweeper deletes a drill table tagged with a closed dynamodbDrill run, keeps a running run\'s, and reports an untagged one', async function () {
    this.timeout(180000);
    assert.ok(drill, 'needs the drill above (a closed dynamodbDrill run)');
    // A drill killed mid-way: the table it tagged outlives it. A running drill (no worker on its queue) owns another.
    const running = await env.client.workflow.start('dynamodbDrill', { taskQueue: uniqueTaskQueue('nobody'), workflowId: uniqueId('drill-dynamodb-running'), args: [{ target: TARGET, requestedBy: 'test' }] });
    const closedRunId = (await env.client.workflow.getHandle(drill.workflowId).describe()).runId;
    const stage = (name: string, tags: Tag[]) => fake.tables.set(name, { desc: tableDescription(name, 'ACTIVE', { CreationDateTime: new Date() }, DR_REGION), items: 0, described: 0, tags });
    const orphan = drillTableName(TABLE, drill.workflowId);
    const live = drillTableName(TABLE, running.workflowId);
    const tagsOf = (workflowId: string, runId: string) => [{ Key: DYNAMODB_TAGS.managed, Value: 'true' }, { Key: DYNAMODB_TAGS.workflowId, Value: workflowId }, { Key: DYNAMODB_TAGS.runId, Value: runId }, { Key: DYNAMODB_TAGS.purpose, Value: 'drill' }];
    stage(orphan, tagsOf(drill.workflowId, closedRunId));
    stage(live, tagsOf(running.workflowId, running.firstExecutionRunId));
    stage(`${TABLE}-drill-0badc0de`, [{ Key: 'team', Value: 'payments' }]);
    try {
      const { result, error } = await run<DrillSweepResult>('drillSweeper', uniqueId('drill-sweeper-dynamodb'), [{ requestedBy: 'test' }], { history: 'drillSweeper-v3-dynamodb-tables' });
      assert.equal(error, undefined, describeFailure(error));
      const mine = (list: DrillSweepResult['removed']) => list.filter((x) => x.resource.kind === 'dynamodb-table').map((x) => x.resource.name);
      assert.deepEqual(mine(result!.removed), [orphan]);
      assert.deepEqual(mine(result!.kept), [live]);
      assert.deepEqual(mine(result!.reported), [`${TABLE}-drill-0badc0de`]);
      assert.ok(!fake.tables.has(orphan));
      assert.ok(fake.tables.has(live) && fake.tables.has(`${TABLE}-drill-0badc0de`));
      assert.match(result!.removed.find((x) => x.resource.name === orphan)!.detail ?? '', new RegExp(`^deleted table ${orphan} in us-west-2, which this run made$`));
    } finally {
      await running.terminate('test over');
      fake.tables.delete(live);
      fake.tables.delete(`${TABLE}-drill-0badc0de`);
    }
  });
});
