/**
 * The DynamoDB engine at the AWS SDK boundary: DynamoDBClient mocked with aws-sdk-client-mock,
 * answering as DynamoDB does (shapes in helpers/dynamodb-fixtures.ts), errors as the SDK raises
 * them. Waits run on an injected clock and sleep, so a backup stuck CREATING for hours takes no time.
 */
import assert from 'node:assert/strict';
import {
  CreateBackupCommand,
  DeleteBackupCommand,
  DeleteTableCommand,
  DescribeBackupCommand,
  DescribeImportCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListBackupsCommand,
  ListImportsCommand,
  ListTablesCommand,
  ListTagsOfResourceCommand,
  ResourceNotFoundException,
  RestoreTableFromBackupCommand,
  RestoreTableToPointInTimeCommand,
  TableAlreadyExistsException,
  TagResourceCommand,
  ThrottlingException,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { dynamoDbBackupName, DYNAMODB_TAGS, importClientToken } from '../src/domain/dynamodb';
import { LifeboatError } from '../src/domain/errors';
import { AwsOperationError } from '../src/engines/aws-errors';
import { DynamoDbEngine } from '../src/engines/dynamodb';
import { DR_REGION, errorMeta as meta, REGION } from './helpers/aws-fixtures';
import { backupArn, backupDescription, TABLE, tableDescription } from './helpers/dynamodb-fixtures';

const RUN = { workflowId: 'restore-dynamodb-orders-2026-12-01t07-00-00-000z', runId: '0193a6f2-7c1e-7d4b-9a2f-5e8c1b3d4f60' };
const notFound = (name: string) => new ResourceNotFoundException({ message: `Requested resource not found: Table: ${name} not found`, $metadata: { ...meta } });

describe('DynamoDB engine (mocked DynamoDBClient)', () => {
  const ddb = mockClient(DynamoDBClient);
  let clock = 0;
  const polls: string[] = [];
  const engine = () =>
    new DynamoDbEngine({
      tableName: TABLE,
      region: REGION,
      drRegion: DR_REGION,
      pollIntervalMs: 20_000,
      waitTimeoutMs: 30 * 60_000,
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
      onPoll: (s) => polls.push(s.status),
    });

  beforeEach(() => {
    ddb.reset();
    clock = 0;
    polls.length = 0;
  });
  after(() => ddb.restore());

  it('names the backup after the workflow id and adopts it on a retry instead of taking a second one', async () => {
    const name = dynamoDbBackupName('backup-dynamodb-orders-2026-12-01t03-30-00-000z');
    assert.equal(name, 'lifeboat-backup-dynamodb-orders-2026-12-01t03-30-00-000z');
    assert.match(dynamoDbBackupName('backup orders:2026/12/01'), /^lifeboat-backup-orders-2026-12-01-[0-9a-f]{8}$/);
    // The second page of ListBackups holds it (DynamoDB pages by LastEvaluatedBackupArn).
    ddb.on(ListBackupsCommand)
      .resolvesOnce({ BackupSummaries: [{ TableName: TABLE, BackupName: 'nightly-by-hand', BackupArn: backupArn('nightly-by-hand'), BackupStatus: 'AVAILABLE', BackupType: 'USER' }], LastEvaluatedBackupArn: backupArn('nightly-by-hand') })
      .resolvesOnce({ BackupSummaries: [{ TableName: TABLE, BackupName: name, BackupArn: backupArn(name), BackupStatus: 'CREATING', BackupType: 'USER' }] });
    const r = await engine().startBackup(name);
    assert.deepEqual(r, { backupArn: backupArn(name), adopted: true });
    assert.equal(ddb.commandCalls(CreateBackupCommand).length, 0);
    assert.equal(ddb.commandCalls(ListBackupsCommand)[1].args[0].input.ExclusiveStartBackupArn, backupArn('nightly-by-hand'));
  });

  it('turns throttling into a retryable failure and a missing permission into a sentence that is not retried', async () => {
    const name = dynamoDbBackupName('backup-dynamodb-orders-1');
    ddb.on(ListBackupsCommand).resolves({ BackupSummaries: [] });
    ddb.on(CreateBackupCommand).rejectsOnce(new ThrottlingException({ message: 'Rate of requests exceeds the allowed throughput.', $metadata: { ...meta } }));
    const throttled = await engine().startBackup(name).catch((e: unknown) => e);
    assert.ok(throttled instanceof AwsOperationError, String(throttled));
    assert.equal(throttled.nonRetryable, false);
    assert.equal(throttled.code, 'AWS_TRANSIENT');
    assert.match(throttled.message, /DynamoDB CreateBackup in us-east-1 failed with ThrottlingException while taking backup .* lifeboat will retry/);

    ddb.on(CreateBackupCommand).resolves({ BackupDetails: { BackupArn: backupArn(name), BackupName: name, BackupStatus: 'CREATING', BackupType: 'USER', BackupCreationDateTime: new Date(), BackupSizeBytes: 0 } });
    assert.deepEqual(await engine().startBackup(name), { backupArn: backupArn(name), adopted: false });

    const denied = Object.assign(new Error('User: arn:aws:sts::123456789012:assumed-role/lifeboat is not authorized to perform: dynamodb:CreateBackup'), { name: 'AccessDeniedException', $fault: 'client', $metadata: { ...meta } });
    ddb.on(CreateBackupCommand).rejects(denied);
    const refused = await engine().startBackup(name).catch((e: unknown) => e);
    assert.ok(refused instanceof AwsOperationError);
    assert.equal(refused.nonRetryable, true);
    assert.match(refused.message, /grant the lifeboat worker role the missing permission/);
  });

  it('gives up on a backup stuck CREATING with a sentence, polling at the interval and heartbeating every poll', async () => {
    const name = dynamoDbBackupName('backup-dynamodb-orders-stuck');
    ddb.on(DescribeBackupCommand).resolves({ BackupDescription: backupDescription(name, 'CREATING', new Date('2026-12-01T03:30:00Z'), 120) });
    const err = await engine().waitForBackup(backupArn(name)).catch((e: unknown) => e);
    assert.ok(err instanceof LifeboatError, String(err));
    assert.equal(err.code, 'BACKUP_STUCK');
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, /is still CREATING in us-east-1 after 30 minutes .* lifeboat left the backup alone/);
    // 30 minutes at one poll per 20 s: 91 polls, no busy loop.
    assert.equal(ddb.commandCalls(DescribeBackupCommand).length, 91);
    assert.equal(polls.length, 91);
    assert.ok(polls.every((p) => p === 'CREATING'));
  });

  it('returns the backup once AVAILABLE, with its size and DynamoDB\'s item count', async () => {
    const name = dynamoDbBackupName('backup-dynamodb-orders-2');
    const at = new Date('2026-12-01T03:30:05Z');
    ddb.on(DescribeBackupCommand)
      .resolvesOnce({ BackupDescription: backupDescription(name, 'CREATING', at, 120) })
      .resolves({ BackupDescription: backupDescription(name, 'AVAILABLE', at, 120) });
    const d = await engine().waitForBackup(backupArn(name));
    assert.deepEqual(d, { backupArn: backupArn(name), backupName: name, status: 'AVAILABLE', sizeBytes: 48213, itemCount: 120, createdAt: at.toISOString(), adopted: false });
    assert.equal(clock, 20_000);
  });

  it('refuses to restore into a table that exists and is not this run\'s, and into the source, without calling a restore', async () => {
    ddb.on(DescribeTableCommand).callsFake((input: { TableName: string }) => {
      if (input.TableName === 'orders-copy') return { Table: tableDescription('orders-copy', 'ACTIVE', { CreationDateTime: new Date('2025-06-01T00:00:00Z') }) };
      throw notFound(input.TableName);
    });
    ddb.on(ListTagsOfResourceCommand).resolves({ Tags: [{ Key: 'team', Value: 'payments' }] });
    const request = { intoTable: 'orders-copy', region: 'primary' as const, method: 'point-in-time' as const, restoreTime: '2026-12-01T06:00:00.000Z', owner: RUN, purpose: 'restore' as const, validatedAt: '2026-12-01T07:00:00.000Z' };
    const refused = await engine().startRestore(request).catch((e: unknown) => e);
    assert.ok(refused instanceof LifeboatError);
    assert.equal(refused.code, 'RESTORE_REFUSED');
    assert.match(refused.message, /^The table orders-copy already exists in us-east-1 and was not made by this restore; .* choose another --into-table\.$/);
    const source = await engine().startRestore({ ...request, intoTable: TABLE }).catch((e: unknown) => e);
    assert.ok(source instanceof LifeboatError);
    assert.match(source.message, /that is the protected source table/);
    assert.equal(ddb.commandCalls(RestoreTableToPointInTimeCommand).length, 0);
    assert.equal(ddb.commandCalls(TagResourceCommand).length, 0);
  });

  it('restores to a time into a new table and tags it with the run at once', async () => {
    ddb.on(DescribeTableCommand).callsFake((input: { TableName: string }) => {
      throw notFound(input.TableName);
    });
    ddb.on(RestoreTableToPointInTimeCommand).resolves({ TableDescription: tableDescription('orders-restored', 'CREATING', { RestoreSummary: { SourceTableArn: tableDescription(TABLE, 'ACTIVE').TableArn, RestoreDateTime: new Date('2026-12-01T06:00:00Z'), RestoreInProgress: true } }) });
    ddb.on(TagResourceCommand).resolves({});
    const r = await engine().startRestore({ intoTable: 'orders-restored', region: 'primary', method: 'point-in-time', restoreTime: '2026-12-01T06:00:00.000Z', owner: RUN, purpose: 'restore', validatedAt: '2026-12-01T07:00:00.000Z' });
    assert.equal(r.adopted, false);
    const sent = ddb.commandCalls(RestoreTableToPointInTimeCommand)[0].args[0].input;
    assert.equal(sent.SourceTableName, TABLE);
    assert.equal(sent.TargetTableName, 'orders-restored');
    assert.equal(sent.RestoreDateTime?.toISOString(), '2026-12-01T06:00:00.000Z');
    const tags = ddb.commandCalls(TagResourceCommand)[0].args[0].input.Tags ?? [];
    assert.equal(tags.find((t) => t.Key === DYNAMODB_TAGS.runId)?.Value, RUN.runId);
    assert.equal(tags.find((t) => t.Key === DYNAMODB_TAGS.workflowId)?.Value, RUN.workflowId);
  });

  it('adopts the table an earlier attempt of this run restored (TableAlreadyExists, tagged by this run) instead of failing', async () => {
    let created: TableDescription | undefined;
    ddb.on(DescribeTableCommand).callsFake((input: { TableName: string }) => {
      if (created) return { Table: created };
      throw notFound(input.TableName);
    });
    ddb.on(RestoreTableFromBackupCommand).callsFake(() => {
      created = tableDescription('orders-restored', 'CREATING', { CreationDateTime: new Date() });
      throw new TableAlreadyExistsException({ message: 'Table already exists: orders-restored', $metadata: { ...meta } });
    });
    ddb.on(ListTagsOfResourceCommand).resolves({ Tags: [{ Key: DYNAMODB_TAGS.workflowId, Value: RUN.workflowId }, { Key: DYNAMODB_TAGS.runId, Value: RUN.runId }] });
    const r = await engine().startRestore({ intoTable: 'orders-restored', region: 'primary', method: 'from-backup', backupArn: backupArn('lifeboat-x'), owner: RUN, purpose: 'restore', validatedAt: '2026-12-01T07:00:00.000Z' });
    assert.equal(r.adopted, true);
  });

  it('deletes only a table whose tags name this run: an untagged one, or another run\'s, is refused and left alone', async () => {
    ddb.on(DescribeTableCommand).callsFake((input: { TableName: string }) => ({ Table: tableDescription(input.TableName, 'ACTIVE', { CreationDateTime: new Date('2025-01-01T00:00:00Z') }) }));
    ddb.on(ListTagsOfResourceCommand).resolves({ Tags: [{ Key: 'team', Value: 'payments' }] });
    const untagged = await engine().deleteOwnTable('orders-archive', 'primary', RUN, { validatedAt: '2026-12-01T07:00:00.000Z' }).catch((e: unknown) => e);
    assert.ok(untagged instanceof LifeboatError);
    assert.equal(untagged.code, 'NOT_MANAGED_BY_LIFEBOAT');
    assert.match(untagged.message, /^Table orders-archive in us-east-1 is not tagged as made by lifeboat, so lifeboat will not delete it; /);

    ddb.on(ListTagsOfResourceCommand).resolves({ Tags: [{ Key: DYNAMODB_TAGS.workflowId, Value: 'drill-dynamodb-orders-earlier' }, { Key: DYNAMODB_TAGS.runId, Value: 'another-run' }] });
    const other = await engine().deleteOwnTable('orders-drill-1', 'primary', RUN).catch((e: unknown) => e);
    assert.ok(other instanceof LifeboatError);
    assert.match(other.message, /tagged as made by drill-dynamodb-orders-earlier, not by this run/);
    const source = await engine().deleteOwnTable(TABLE, 'primary', RUN).catch((e: unknown) => e);
    assert.ok(source instanceof LifeboatError);
    assert.equal(ddb.commandCalls(DeleteTableCommand).length, 0);

    ddb.on(ListTagsOfResourceCommand).resolves({ Tags: [{ Key: DYNAMODB_TAGS.workflowId, Value: RUN.workflowId }, { Key: DYNAMODB_TAGS.runId, Value: RUN.runId }] });
    ddb.on(DeleteTableCommand).resolves({ TableDescription: tableDescription('orders-restored', 'DELETING') });
    assert.match(await engine().deleteOwnTable('orders-restored', 'primary', RUN), /^deleted table orders-restored in us-east-1, which this run made$/);
    assert.equal(ddb.commandCalls(DeleteTableCommand).length, 1);
  });

  it('an untagged table made by an import after validation is this run\'s only when an import into it carries this run\'s client token', async () => {
    // A worker killed between ImportTable and tagging leaves an untagged table with no restore summary; someone else's table of the same name looks the same.
    const made = new Date('2026-12-01T07:05:00Z');
    ddb.on(DescribeTableCommand).callsFake((input: { TableName: string }) => ({ Table: tableDescription(input.TableName, 'ACTIVE', { CreationDateTime: made }) }));
    ddb.on(ListTagsOfResourceCommand).resolves({ Tags: [] });
    const importArn = (id: string) => `arn:aws:dynamodb:${REGION}:123456789012:table/orders-dr/import/${id}`;
    ddb.on(ListImportsCommand).resolves({ ImportSummaryList: [{ ImportArn: importArn('01700000000000-someone') }] });
    ddb.on(DescribeImportCommand).resolves({ ImportTableDescription: { ImportArn: importArn('01700000000000-someone'), ClientToken: 'someone-elses-token', ImportStatus: 'COMPLETED' } });
    const foreign = await engine().deleteOwnTable('orders-dr', 'primary', RUN, { validatedAt: '2026-12-01T07:00:00.000Z' }).catch((e: unknown) => e);
    assert.ok(foreign instanceof LifeboatError);
    assert.equal(foreign.code, 'NOT_MANAGED_BY_LIFEBOAT');
    assert.equal(ddb.commandCalls(DeleteTableCommand).length, 0);

    ddb.on(DescribeImportCommand).resolves({ ImportTableDescription: { ImportArn: importArn('01700000000000-ours'), ClientToken: importClientToken(RUN.workflowId, 'orders-dr'), ImportStatus: 'COMPLETED' } });
    ddb.on(DeleteTableCommand).resolves({ TableDescription: tableDescription('orders-dr', 'DELETING') });
    assert.match(await engine().deleteOwnTable('orders-dr', 'primary', RUN, { validatedAt: '2026-12-01T07:00:00.000Z' }), /^deleted table orders-dr in us-east-1, which this run made$/);
    assert.equal(ddb.commandCalls(DeleteTableCommand).length, 1);
  });

  it('lists, for the sweeper, only tables named as drill tables of this table (every ListTables page), with the run their tags name', async () => {
    // Two pages, as ListTables returns them past 100 names; only `orders-drill-<8 hex>` counts.
    ddb.on(ListTablesCommand)
      .resolvesOnce({ TableNames: ['customers', 'orders', 'orders-drill-0a1b2c3d'], LastEvaluatedTableName: 'orders-drill-0a1b2c3d' })
      .resolvesOnce({ TableNames: ['orders-drill-9f8e7d6c', 'orders-drill-notes', 'orders-restored', 'payments-drill-11223344'] });
    ddb.on(DescribeTableCommand).callsFake((input: { TableName: string }) => ({ Table: tableDescription(input.TableName, 'ACTIVE', {}, DR_REGION) }));
    ddb.on(ListTagsOfResourceCommand).callsFake((input: { ResourceArn: string }) => ({
      Tags: input.ResourceArn.endsWith('/orders-drill-0a1b2c3d')
        ? [{ Key: DYNAMODB_TAGS.managed, Value: 'true' }, { Key: DYNAMODB_TAGS.workflowId, Value: 'drill-dynamodb-orders-1' }, { Key: DYNAMODB_TAGS.runId, Value: 'run-1' }, { Key: DYNAMODB_TAGS.purpose, Value: 'drill' }]
        : [{ Key: 'team', Value: 'payments' }],
    }));
    const found = await engine().listDrillTables('dr');
    assert.deepEqual(found, [
      { name: 'orders-drill-0a1b2c3d', status: 'ACTIVE', tagged: true, owner: { workflowId: 'drill-dynamodb-orders-1', runId: 'run-1' }, purpose: 'drill' },
      { name: 'orders-drill-9f8e7d6c', status: 'ACTIVE', tagged: false },
    ]);
    assert.deepEqual(ddb.commandCalls(ListTablesCommand).map((c) => c.args[0].input.ExclusiveStartTableName), [undefined, 'orders-drill-0a1b2c3d']);
    assert.deepEqual(ddb.commandCalls(DescribeTableCommand).map((c) => c.args[0].input.TableName), ['orders-drill-0a1b2c3d', 'orders-drill-9f8e7d6c']);
  });

  it('deletes only backups named lifeboat-...', async () => {
    const err = await engine().deleteBackup(backupArn('nightly-by-hand'), 'nightly-by-hand').catch((e: unknown) => e);
    assert.ok(err instanceof LifeboatError);
    assert.equal(err.code, 'NOT_MANAGED_BY_LIFEBOAT');
    assert.equal(ddb.commandCalls(DescribeBackupCommand).length, 0);
    const name = dynamoDbBackupName('backup-dynamodb-orders-old');
    ddb.on(DescribeBackupCommand).resolves({ BackupDescription: backupDescription(name, 'AVAILABLE', new Date('2026-11-01T03:30:00Z'), 100) });
    ddb.on(DeleteBackupCommand).resolves({});
    assert.equal(await engine().deleteBackup(backupArn(name), name), 'deleted');
  });

  it('refuses a DR region equal to the table\'s region', () => {
    assert.throws(() => new DynamoDbEngine({ tableName: TABLE, region: REGION, drRegion: REGION }), /drRegion equal to its region/);
  });
});
