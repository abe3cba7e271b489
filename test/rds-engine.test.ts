import assert from 'node:assert/strict';
import {
  AddTagsToResourceCommand,
  CopyDBSnapshotCommand,
  CreateDBSnapshotCommand,
  DBInstanceAlreadyExistsFault,
  DBInstanceNotFoundFault,
  DBSnapshotAlreadyExistsFault,
  DBSnapshotNotFoundFault,
  DeleteDBInstanceCommand,
  DeleteDBSnapshotCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  DescribeOrderableDBInstanceOptionsCommand,
  InvalidRestoreFault,
  KMSKeyNotAccessibleFault,
  PointInTimeRestoreNotEnabledFault,
  RDSClient,
  RDSServiceException,
  RestoreDBInstanceFromDBSnapshotCommand,
  RestoreDBInstanceToPointInTimeCommand,
  SnapshotQuotaExceededFault,
  type DBInstance,
  type DBInstanceAutomatedBackup,
  type DBSnapshot,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { LifeboatError } from '../src/domain/errors';
import type { BackupHandle, BackupProgress, ResourceOwner, RestorePoint } from '../src/domain/ports';
import { AwsOperationError } from '../src/engines/aws-errors';
import { finalSnapshotId, RdsEngine, rdsIdentifier } from '../src/engines/rds';
import { ACCOUNT, DBI, DR_KMS, DR_REGION, errorMeta as meta, PRIMARY_KMS, REGION, SOURCE } from './helpers/aws-fixtures';

const SNAPSHOT = 'lb-backup-orders-prod-20240520t1200z';
const SNAPSHOT_ARN = `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${SNAPSHOT}`;
const COPY = 'lb-backup-orders-prod-20240520t1200z-dr';
const COPY_ARN = `arn:aws:rds:${DR_REGION}:${ACCOUNT}:snapshot:${COPY}`;
const REPLICATED_BACKUPS_ARN = `arn:aws:rds:${DR_REGION}:${ACCOUNT}:auto-backup:ab-7xkq3m5zujhvw2npt4y6glarce`;

/** The workflow run that restores in these tests, as the restore activity passes it. */
const RUN = { workflowId: 'restore-orders-prod-2024-05-20t12-00-00-000z', runId: '0193a6f2-7c1e-7d4b-9a2f-5e8c1b3d4f60' };
function ownerFor(point: RestorePoint): ResourceOwner {
  const restorePoint = point.kind !== 'time' ? point.kind : Number.isNaN(Date.parse(point.at)) ? point.at : new Date(point.at).toISOString();
  return { ...RUN, restorePoint, createdAt: '2024-05-20T12:00:01.000Z' };
}
/** The tags lifeboat puts on an instance it restored for RUN to `restorePoint`. */
function ownerTags(restorePoint = 'latest', run = RUN) {
  return [
    { Key: 'lifeboat:restore-point', Value: restorePoint },
    { Key: 'lifeboat:workflow-id', Value: run.workflowId },
    { Key: 'lifeboat:run-id', Value: run.runId },
    { Key: 'lifeboat:created-at', Value: '2024-05-20T12:00:01.000Z' },
  ];
}


function sourceInstance(overrides: Partial<DBInstance> = {}): DBInstance {
  return {
    DBInstanceIdentifier: SOURCE,
    DBInstanceClass: 'db.r6g.large',
    Engine: 'postgres',
    EngineVersion: '16.3',
    DBInstanceStatus: 'available',
    MasterUsername: 'postgres',
    DBName: 'orders',
    Endpoint: { Address: `${SOURCE}.c9akciq32xyz.${REGION}.rds.amazonaws.com`, Port: 5432, HostedZoneId: 'Z2R2ITUGPM61AM' },
    AllocatedStorage: 100,
    InstanceCreateTime: new Date('2024-01-10T08:00:00.000Z'),
    PreferredBackupWindow: '03:00-03:30',
    BackupRetentionPeriod: 7,
    LatestRestorableTime: new Date('2024-05-20T11:55:00.000Z'),
    MultiAZ: true,
    StorageType: 'gp3',
    StorageEncrypted: true,
    KmsKeyId: PRIMARY_KMS,
    DbiResourceId: DBI,
    DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${SOURCE}`,
    DeletionProtection: true,
    TagList: [{ Key: 'team', Value: 'payments' }],
    ...overrides,
  };
}

function restoredInstance(id: string, overrides: Partial<DBInstance> = {}): DBInstance {
  return {
    DBInstanceIdentifier: id,
    DBInstanceClass: 'db.r6g.large',
    Engine: 'postgres',
    EngineVersion: '16.3',
    DBInstanceStatus: 'creating',
    AllocatedStorage: 100,
    BackupRetentionPeriod: 7,
    StorageEncrypted: true,
    KmsKeyId: PRIMARY_KMS,
    DbiResourceId: 'db-QW3ERT5YUI7OPA9SDF2GHJ4KLZ',
    DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${id}`,
    DeletionProtection: false,
    TagList: [{ Key: 'lifeboat:managed', Value: 'true' }, { Key: 'lifeboat:restored-from', Value: SOURCE }, ...ownerTags()],
    ...overrides,
  };
}

function snapshot(overrides: Partial<DBSnapshot> = {}): DBSnapshot {
  return {
    DBSnapshotIdentifier: SNAPSHOT,
    DBInstanceIdentifier: SOURCE,
    SnapshotCreateTime: new Date('2024-05-20T12:00:04.512Z'),
    Engine: 'postgres',
    EngineVersion: '16.3',
    AllocatedStorage: 100,
    Status: 'creating',
    Port: 5432,
    AvailabilityZone: `${REGION}a`,
    VpcId: 'vpc-0a1b2c3d4e5f60718',
    InstanceCreateTime: new Date('2024-01-10T08:00:00.000Z'),
    MasterUsername: 'postgres',
    LicenseModel: 'postgresql-license',
    SnapshotType: 'manual',
    PercentProgress: 0,
    StorageType: 'gp3',
    Encrypted: true,
    KmsKeyId: PRIMARY_KMS,
    DBSnapshotArn: SNAPSHOT_ARN,
    IAMDatabaseAuthenticationEnabled: false,
    DbiResourceId: DBI,
    SnapshotTarget: 'region',
    TagList: [
      { Key: 'lifeboat:managed', Value: 'true' },
      { Key: 'lifeboat:backup-name', Value: SNAPSHOT },
    ],
    ...overrides,
  };
}

function drCopy(overrides: Partial<DBSnapshot> = {}): DBSnapshot {
  return snapshot({
    DBSnapshotIdentifier: COPY,
    DBSnapshotArn: COPY_ARN,
    AvailabilityZone: `${DR_REGION}b`,
    VpcId: undefined,
    Status: 'pending',
    KmsKeyId: DR_KMS,
    SourceRegion: REGION,
    SourceDBSnapshotIdentifier: SNAPSHOT_ARN,
    ...overrides,
  });
}

function replicatedBackup(overrides: Partial<DBInstanceAutomatedBackup> = {}): DBInstanceAutomatedBackup {
  return {
    DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${SOURCE}`,
    DbiResourceId: DBI,
    Region: REGION,
    DBInstanceIdentifier: SOURCE,
    RestoreWindow: { EarliestTime: new Date('2024-05-14T03:12:00.000Z'), LatestTime: new Date('2024-05-20T11:40:00.000Z') },
    AllocatedStorage: 100,
    Status: 'replicating',
    Port: 5432,
    InstanceCreateTime: new Date('2024-01-10T08:00:00.000Z'),
    MasterUsername: 'postgres',
    Engine: 'postgres',
    EngineVersion: '16.3',
    Encrypted: true,
    KmsKeyId: DR_KMS,
    BackupRetentionPeriod: 7,
    DBInstanceAutomatedBackupsArn: REPLICATED_BACKUPS_ARN,
    ...overrides,
  };
}

function serviceError(name: string, message: string, status = 400): RDSServiceException {
  return new RDSServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { ...meta, httpStatusCode: status }, message });
}

/** The members a request really sends: the SDK's paginators set unused cursor members (Marker, MaxRecords) to undefined, which never reach the wire. */
function sent<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** Awaits a rejection and checks it is a LifeboatError with this code and retryability. */
async function lifeboatFailure(promise: Promise<unknown>, code: string, nonRetryable: boolean): Promise<LifeboatError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof LifeboatError, `expected a LifeboatError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.nonRetryable, nonRetryable, caught.message);
  return caught;
}

describe('RdsEngine (AWS SDK boundary)', () => {
  const primaryClient = new RDSClient({ region: REGION, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' } });
  const drClient = new RDSClient({ region: DR_REGION, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' } });
  const primary = mockClient(primaryClient);
  const dr = mockClient(drClient);
  let engine: RdsEngine;

  beforeEach(() => {
    primary.reset();
    dr.reset();
    engine = new RdsEngine({ instanceId: SOURCE, region: REGION, drRegion: DR_REGION, drKmsKeyId: DR_KMS, clients: { primary: primaryClient, dr: drClient } });
  });

  after(() => {
    primary.restore();
    dr.restore();
  });

  const primaryHandle: BackupHandle = { engine: 'rds', backupId: SNAPSHOT, location: REGION, locator: SNAPSHOT_ARN };
  const drHandle: BackupHandle = { engine: 'rds', backupId: COPY, location: DR_REGION, locator: COPY_ARN };

  describe('construction', () => {
    it('refuses a DR region equal to the primary region', () => {
      assert.throws(
        () => new RdsEngine({ instanceId: SOURCE, region: REGION, drRegion: REGION, drKmsKeyId: DR_KMS }),
        (err: unknown) => err instanceof LifeboatError && err.code === 'INVALID_CONFIG' && /another region/.test(err.message),
      );
    });
  });

  describe('describeSource', () => {
    it('describes the source from DescribeDBInstances with the DbiResourceId as identity', async () => {
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [sourceInstance()] });
      const d = await engine.describeSource();
      assert.deepEqual(d, {
        instanceId: SOURCE,
        status: 'available',
        endpoint: { host: `${SOURCE}.c9akciq32xyz.${REGION}.rds.amazonaws.com`, port: 5432 },
        identity: DBI,
        engineVersion: '16.3',
        createdByLifeboat: false,
      });
      const calls = primary.commandCalls(DescribeDBInstancesCommand);
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0].args[0].input, { DBInstanceIdentifier: SOURCE });
      assert.equal(dr.calls().length, 0);
    });

    it('turns a missing source into a non-retryable error naming the AWS fault', async () => {
      primary.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${SOURCE} not found.`, $metadata: meta }));
      const err = await lifeboatFailure(engine.describeSource(), 'AWS_INSTANCE_NOT_FOUND', true);
      assert.match(err.message, /DBInstanceNotFoundFault/);
      assert.match(err.message, /check the instance identifier and region/);
    });
  });

  describe('startBackup', () => {
    it('creates a tagged manual snapshot of the source and returns its ARN', async () => {
      primary.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: snapshot() });
      const handle = await engine.startBackup({ backupName: SNAPSHOT, kind: 'snapshot' });
      assert.deepEqual(handle, primaryHandle);
      const calls = primary.commandCalls(CreateDBSnapshotCommand);
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0].args[0].input, {
        DBSnapshotIdentifier: SNAPSHOT,
        DBInstanceIdentifier: SOURCE,
        Tags: [
          { Key: 'lifeboat:managed', Value: 'true' },
          { Key: 'lifeboat:backup-name', Value: SNAPSHOT },
          { Key: 'lifeboat:backup-kind', Value: 'snapshot' },
          { Key: 'lifeboat:source-instance', Value: SOURCE },
        ],
      });
    });

    it('maps a workflow-id-like name to the same valid snapshot identifier every time', async () => {
      primary.on(CreateDBSnapshotCommand).callsFake((input: { DBSnapshotIdentifier: string }) => ({ DBSnapshot: snapshot({ DBSnapshotIdentifier: input.DBSnapshotIdentifier }) }));
      const name = 'backup/orders-prod/2024-05-20T12:00:00Z';
      const a = await engine.startBackup({ backupName: name, kind: 'full' });
      const b = await engine.startBackup({ backupName: name, kind: 'full' });
      assert.equal(a.backupId, b.backupId);
      assert.match(a.backupId, /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
      const tags = primary.commandCalls(CreateDBSnapshotCommand)[0].args[0].input.Tags;
      assert.deepEqual(tags?.[1], { Key: 'lifeboat:backup-name', Value: name });
    });

    it('adopts a snapshot of the same instance that an earlier attempt created', async () => {
      primary.on(CreateDBSnapshotCommand).rejects(new DBSnapshotAlreadyExistsFault({ message: `Cannot create the snapshot because a snapshot with the identifier ${SNAPSHOT} already exists.`, $metadata: meta }));
      primary.on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: SNAPSHOT }).resolves({ DBSnapshots: [snapshot({ Status: 'creating', PercentProgress: 12 })] });
      const handle = await engine.startBackup({ backupName: SNAPSHOT, kind: 'snapshot' });
      assert.deepEqual(handle, primaryHandle);
      assert.equal(primary.commandCalls(DescribeDBSnapshotsCommand).length, 1);
    });

    it('refuses to adopt a same-named snapshot of another instance', async () => {
      primary.on(CreateDBSnapshotCommand).rejects(new DBSnapshotAlreadyExistsFault({ message: 'Cannot create the snapshot because a snapshot with the identifier already exists.', $metadata: meta }));
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot({ DBInstanceIdentifier: 'billing-prod', DbiResourceId: 'db-OTHERINSTANCE0000000000000' })] });
      const err = await lifeboatFailure(engine.startBackup({ backupName: SNAPSHOT, kind: 'snapshot' }), 'SNAPSHOT_NAME_CONFLICT', true);
      assert.match(err.message, /billing-prod/);
    });

    it('surfaces the snapshot quota as a non-retryable error an operator can act on', async () => {
      primary.on(CreateDBSnapshotCommand).rejects(new SnapshotQuotaExceededFault({ message: 'Cannot create more than 100 manual snapshots', $metadata: meta }));
      const err = await lifeboatFailure(engine.startBackup({ backupName: SNAPSHOT, kind: 'snapshot' }), 'AWS_SNAPSHOT_QUOTA_EXCEEDED', true);
      assert.ok(err instanceof AwsOperationError);
      assert.equal(err.awsErrorName, 'SnapshotQuotaExceededFault');
      assert.match(err.message, /^RDS CreateDBSnapshot in us-east-1 failed with SnapshotQuotaExceededFault while taking snapshot/);
      assert.match(err.message, /quota of manual DB snapshots/);
      assert.match(err.message, /run lifeboat retention/);
      assert.match(err.message, /Cannot create more than 100 manual snapshots/);
    });

    it('rethrows throttling and 5xx as retryable', async () => {
      primary.on(CreateDBSnapshotCommand).rejectsOnce(serviceError('Throttling', 'Rate exceeded')).rejectsOnce(serviceError('InternalFailure', 'An internal error has occurred.', 503));
      const throttled = await lifeboatFailure(engine.startBackup({ backupName: SNAPSHOT, kind: 'snapshot' }), 'AWS_TRANSIENT', false);
      assert.match(throttled.message, /Throttling/);
      const serverError = await lifeboatFailure(engine.startBackup({ backupName: SNAPSHOT, kind: 'snapshot' }), 'AWS_TRANSIENT', false);
      assert.match(serverError.message, /InternalFailure/);
    });

    it('treats an SDK timeout as retryable', async () => {
      const timeout = Object.assign(new Error('Connection timed out after 30000 ms'), { name: 'TimeoutError' });
      primary.on(CreateDBSnapshotCommand).rejects(timeout);
      await lifeboatFailure(engine.startBackup({ backupName: SNAPSHOT, kind: 'snapshot' }), 'AWS_TRANSIENT', false);
    });

    it('refuses incremental backups without calling AWS', async () => {
      await lifeboatFailure(engine.startBackup({ backupName: SNAPSHOT, kind: 'incr' }), 'UNSUPPORTED_BACKUP_KIND', true);
      assert.equal(primary.calls().length, 0);
    });
  });

  describe('backupProgress', () => {
    it('waits through creating to available', async () => {
      primary
        .on(DescribeDBSnapshotsCommand)
        .resolvesOnce({ DBSnapshots: [snapshot({ Status: 'creating', PercentProgress: 0 })] })
        .resolvesOnce({ DBSnapshots: [snapshot({ Status: 'creating', PercentProgress: 45 })] })
        .resolves({ DBSnapshots: [snapshot({ Status: 'available', PercentProgress: 100 })] });
      const seen: BackupProgress[] = [];
      for (let i = 0; i < 10; i++) {
        const progress = await engine.backupProgress(primaryHandle);
        seen.push(progress);
        if (progress.state !== 'running') break;
      }
      assert.deepEqual(
        seen.map((p) => [p.state, p.percent]),
        [
          ['running', 0],
          ['running', 45],
          ['complete', 100],
        ],
      );
      assert.equal(seen[1].detail, `Snapshot ${SNAPSHOT} is creating in ${REGION} (45%).`);
      assert.equal(seen[2].startedAt, '2024-05-20T12:00:04.512Z');
      for (const call of primary.commandCalls(DescribeDBSnapshotsCommand)) assert.deepEqual(call.args[0].input, { DBSnapshotIdentifier: SNAPSHOT });
    });

    it('reports failed snapshots and vanished ones as failed', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolvesOnce({ DBSnapshots: [snapshot({ Status: 'failed' })] }).rejectsOnce(new DBSnapshotNotFoundFault({ message: `DBSnapshot ${SNAPSHOT} not found.`, $metadata: meta }));
      assert.equal((await engine.backupProgress(primaryHandle)).state, 'failed');
      const gone = await engine.backupProgress(primaryHandle);
      assert.equal(gone.state, 'failed');
      assert.match(gone.detail, /no longer exists/);
    });

    it('reads DR copies from the DR region', async () => {
      dr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [drCopy({ Status: 'copying', PercentProgress: 30 })] });
      const progress = await engine.backupProgress(drHandle);
      assert.deepEqual([progress.state, progress.percent], ['running', 30]);
      assert.equal(primary.calls().length, 0);
      assert.deepEqual(dr.commandCalls(DescribeDBSnapshotsCommand)[0].args[0].input, { DBSnapshotIdentifier: COPY });
    });
  });

  describe('verifyBackup', () => {
    it('passes an available, encrypted snapshot of the source', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot({ Status: 'available', PercentProgress: 100 })] });
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [sourceInstance()] });
      const v = await engine.verifyBackup(primaryHandle);
      assert.equal(v.ok, true, JSON.stringify(v.checks));
      assert.deepEqual(
        v.checks.map((c) => c.name),
        ['exists', 'status', 'encrypted', 'allocated-storage', 'source-instance'],
      );
    });

    it('fails unencrypted snapshots, impossible sizes and snapshots of another instance', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolves({
        DBSnapshots: [snapshot({ Status: 'available', Encrypted: false, KmsKeyId: undefined, AllocatedStorage: 500, DbiResourceId: 'db-REPLACEDINSTANCE0000000000' })],
      });
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [sourceInstance()] });
      const v = await engine.verifyBackup(primaryHandle);
      assert.equal(v.ok, false);
      const failed = v.checks.filter((c) => !c.ok).map((c) => c.name);
      assert.deepEqual(failed, ['encrypted', 'allocated-storage', 'source-instance']);
    });

    it('checks a DR copy is encrypted with the DR key, even when the primary region is down', async () => {
      dr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [drCopy({ Status: 'available' })] });
      primary.on(DescribeDBInstancesCommand).rejects(serviceError('ServiceUnavailable', 'Service Unavailable', 503));
      const v = await engine.verifyBackup(drHandle);
      assert.equal(v.ok, true, JSON.stringify(v.checks));
      assert.ok(v.checks.some((c) => c.name === 'dr-kms-key' && c.ok));
    });

    it('reports a missing snapshot as a failed verification', async () => {
      primary.on(DescribeDBSnapshotsCommand).rejects(new DBSnapshotNotFoundFault({ message: `DBSnapshot ${SNAPSHOT} not found.`, $metadata: meta }));
      const v = await engine.verifyBackup(primaryHandle);
      assert.deepEqual(v, { ok: false, checks: [{ name: 'exists', ok: false, detail: `Snapshot ${SNAPSHOT} does not exist in ${REGION}.` }] });
    });
  });

  describe('copyToDisasterRecovery', () => {
    it('sends CopyDBSnapshot to the DR region with the source ARN and the DR KMS key', async () => {
      dr.on(CopyDBSnapshotCommand).resolves({ DBSnapshot: drCopy() });
      const handle = await engine.copyToDisasterRecovery(primaryHandle, { copyName: COPY });
      assert.deepEqual(handle, drHandle);
      assert.equal(primary.calls().length, 0);
      const calls = dr.commandCalls(CopyDBSnapshotCommand);
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0].args[0].input, {
        SourceDBSnapshotIdentifier: SNAPSHOT_ARN,
        TargetDBSnapshotIdentifier: COPY,
        KmsKeyId: DR_KMS,
        CopyTags: true,
      });
      // The SDK presigns the cross-region request from the region named in the source ARN.
      assert.ok(SNAPSHOT_ARN.startsWith(`arn:aws:rds:${REGION}:`));
    });

    it('looks the source ARN up when the handle has none', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot({ Status: 'available' })] });
      dr.on(CopyDBSnapshotCommand).resolves({ DBSnapshot: drCopy() });
      await engine.copyToDisasterRecovery({ engine: 'rds', backupId: SNAPSHOT, location: REGION }, { copyName: COPY });
      assert.equal(dr.commandCalls(CopyDBSnapshotCommand)[0].args[0].input.SourceDBSnapshotIdentifier, SNAPSHOT_ARN);
    });

    it('adopts a copy of the same snapshot that already exists', async () => {
      dr.on(CopyDBSnapshotCommand).rejects(new DBSnapshotAlreadyExistsFault({ message: `Cannot create the snapshot because a snapshot with the identifier ${COPY} already exists.`, $metadata: meta }));
      dr.on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: COPY }).resolves({ DBSnapshots: [drCopy({ Status: 'copying', PercentProgress: 60 })] });
      assert.deepEqual(await engine.copyToDisasterRecovery(primaryHandle, { copyName: COPY }), drHandle);
    });

    it('refuses to adopt a same-named copy of a different snapshot', async () => {
      dr.on(CopyDBSnapshotCommand).rejects(new DBSnapshotAlreadyExistsFault({ message: 'already exists', $metadata: meta }));
      dr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [drCopy({ SourceDBSnapshotIdentifier: `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:some-other-snapshot` })] });
      await lifeboatFailure(engine.copyToDisasterRecovery(primaryHandle, { copyName: COPY }), 'SNAPSHOT_NAME_CONFLICT', true);
    });

    it('surfaces an inaccessible KMS key as a non-retryable error with what to fix', async () => {
      dr.on(CopyDBSnapshotCommand).rejects(new KMSKeyNotAccessibleFault({ message: 'The specified KMS key does not exist, is not enabled or you do not have permissions to access it.', $metadata: meta }));
      const err = await lifeboatFailure(engine.copyToDisasterRecovery(primaryHandle, { copyName: COPY }), 'AWS_KMS_KEY_NOT_ACCESSIBLE', true);
      assert.match(err.message, /^RDS CopyDBSnapshot in us-west-2 failed with KMSKeyNotAccessibleFault while copying snapshot/);
      assert.match(err.message, /key policy/);
    });

    it('only copies snapshots from the primary region', async () => {
      await lifeboatFailure(engine.copyToDisasterRecovery(drHandle, { copyName: 'copy-of-a-copy' }), 'INVALID_BACKUP_HANDLE', true);
      assert.equal(dr.calls().length, 0);
    });
  });

  describe('deleteBackup', () => {
    it('deletes a lifeboat snapshot and treats a missing one as done', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolvesOnce({ DBSnapshots: [snapshot({ Status: 'available' })] }).rejects(new DBSnapshotNotFoundFault({ message: 'not found', $metadata: meta }));
      primary.on(DeleteDBSnapshotCommand).resolves({ DBSnapshot: snapshot({ Status: 'deleted' }) });
      await engine.deleteBackup(primaryHandle);
      await engine.deleteBackup(primaryHandle);
      const deletes = primary.commandCalls(DeleteDBSnapshotCommand);
      assert.equal(deletes.length, 1);
      assert.deepEqual(deletes[0].args[0].input, { DBSnapshotIdentifier: SNAPSHOT });
    });

    it('refuses to delete a snapshot lifeboat did not tag', async () => {
      primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot({ Status: 'available', TagList: [] })] });
      await lifeboatFailure(engine.deleteBackup(primaryHandle), 'NOT_MANAGED_BY_LIFEBOAT', true);
      assert.equal(primary.commandCalls(DeleteDBSnapshotCommand).length, 0);
    });
  });

  describe('restoreWindow', () => {
    it('uses LatestRestorableTime and the automated backups earliest time', async () => {
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [sourceInstance()] });
      primary.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({
        DBInstanceAutomatedBackups: [
          {
            DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${SOURCE}`,
            DbiResourceId: DBI,
            Region: REGION,
            DBInstanceIdentifier: SOURCE,
            RestoreWindow: { EarliestTime: new Date('2024-05-13T03:05:11.000Z'), LatestTime: new Date('2024-05-20T11:55:00.000Z') },
            Status: 'active',
            Engine: 'postgres',
            BackupRetentionPeriod: 7,
            DBInstanceAutomatedBackupsArn: `arn:aws:rds:${REGION}:${ACCOUNT}:auto-backup:ab-7xkq3m5zujhvw2npt4y6glarce`,
          },
        ],
      });
      assert.deepEqual(await engine.restoreWindow(), { earliest: '2024-05-13T03:05:11.000Z', latest: '2024-05-20T11:55:00.000Z' });
      assert.deepEqual(sent(primary.commandCalls(DescribeDBInstanceAutomatedBackupsCommand)[0].args[0].input), { DbiResourceId: DBI });
    });

    it('falls back to the retention period, bounded by the instance creation time', async () => {
      primary.on(DescribeDBInstancesCommand).resolvesOnce({ DBInstances: [sourceInstance()] }).resolves({ DBInstances: [sourceInstance({ InstanceCreateTime: new Date('2024-05-18T09:30:00.000Z') })] });
      primary.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({ DBInstanceAutomatedBackups: [] });
      assert.deepEqual(await engine.restoreWindow('primary'), { earliest: '2024-05-13T11:55:00.000Z', latest: '2024-05-20T11:55:00.000Z' });
      assert.deepEqual(await engine.restoreWindow('primary'), { earliest: '2024-05-18T09:30:00.000Z', latest: '2024-05-20T11:55:00.000Z' });
    });

    it('says so when automated backups are disabled', async () => {
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [sourceInstance({ BackupRetentionPeriod: 0, LatestRestorableTime: undefined })] });
      const err = await lifeboatFailure(engine.restoreWindow(), 'PITR_NOT_ENABLED', true);
      assert.match(err.message, /backup retention period of at least 1 day/);
    });

    it('reads the DR window from the replicated automated backups in the DR region', async () => {
      dr.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({
        DBInstanceAutomatedBackups: [
          replicatedBackup({ Status: 'retained', RestoreWindow: { EarliestTime: new Date('2023-11-01T00:00:00.000Z'), LatestTime: new Date('2023-12-01T00:00:00.000Z') }, DBInstanceAutomatedBackupsArn: `${REPLICATED_BACKUPS_ARN}-old` }),
          replicatedBackup(),
        ],
      });
      assert.deepEqual(await engine.restoreWindow('dr'), { earliest: '2024-05-14T03:12:00.000Z', latest: '2024-05-20T11:40:00.000Z' });
      assert.deepEqual(sent(dr.commandCalls(DescribeDBInstanceAutomatedBackupsCommand)[0].args[0].input), { DBInstanceIdentifier: SOURCE });
      assert.equal(primary.calls().length, 0);
    });

    it('explains that DR point-in-time restore needs backup replication', async () => {
      dr.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({ DBInstanceAutomatedBackups: [] });
      const err = await lifeboatFailure(engine.restoreWindow('dr'), 'DR_PITR_NOT_ENABLED', true);
      assert.match(err.message, /StartDBInstanceAutomatedBackupsReplication/);
    });
  });

  describe('startRestore', () => {
    const DEST = 'orders-prod-pitr-wf-7f3a9c';

    it('restores to a point in time into a new instance tagged with its owner', async () => {
      // RDS answers with the instance carrying the tags it was created with.
      primary.on(RestoreDBInstanceToPointInTimeCommand).callsFake((input: { Tags?: Array<{ Key: string; Value: string }> }) => ({ DBInstance: restoredInstance(DEST, { TagList: input.Tags }) }));
      const point: RestorePoint = { kind: 'time', at: '2024-05-20T10:30:00Z' };
      const d = await engine.startRestore({ destinationId: DEST, point, owner: ownerFor(point) });
      assert.deepEqual(d, {
        instanceId: DEST,
        status: 'creating',
        identity: 'db-QW3ERT5YUI7OPA9SDF2GHJ4KLZ',
        engineVersion: '16.3',
        createdByLifeboat: true,
        owner: { ...RUN, restorePoint: '2024-05-20T10:30:00.000Z', createdAt: '2024-05-20T12:00:01.000Z' },
      });
      const calls = primary.commandCalls(RestoreDBInstanceToPointInTimeCommand);
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0].args[0].input, {
        TargetDBInstanceIdentifier: DEST,
        RestoreTime: new Date('2024-05-20T10:30:00.000Z'),
        SourceDBInstanceIdentifier: SOURCE,
        DeletionProtection: false,
        Tags: [
          { Key: 'lifeboat:managed', Value: 'true' },
          { Key: 'lifeboat:restored-from', Value: SOURCE },
          { Key: 'lifeboat:restore-point', Value: '2024-05-20T10:30:00.000Z' },
          { Key: 'lifeboat:restore-name', Value: DEST },
          { Key: 'lifeboat:workflow-id', Value: RUN.workflowId },
          { Key: 'lifeboat:run-id', Value: RUN.runId },
          { Key: 'lifeboat:created-at', Value: '2024-05-20T12:00:01.000Z' },
        ],
      });
    });

    it("labels a restore drill's instance as a drill's, and reads the label back with its owner", async () => {
      primary.on(RestoreDBInstanceToPointInTimeCommand).callsFake((input: { Tags?: Array<{ Key: string; Value: string }> }) => ({ DBInstance: restoredInstance(DEST, { TagList: input.Tags }) }));
      const point: RestorePoint = { kind: 'time', at: '2024-05-20T10:30:00Z' };
      const d = await engine.startRestore({ destinationId: DEST, point, owner: { ...ownerFor(point), purpose: 'drill' } });
      assert.deepEqual(d.owner, { ...RUN, restorePoint: '2024-05-20T10:30:00.000Z', createdAt: '2024-05-20T12:00:01.000Z', purpose: 'drill' });
      const tags = primary.commandCalls(RestoreDBInstanceToPointInTimeCommand)[0].args[0].input.Tags;
      assert.deepEqual(tags?.at(-1), { Key: 'lifeboat:purpose', Value: 'drill' });
    });

    it('restores to the latest restorable time with the configured network settings', async () => {
      engine = new RdsEngine({
        instanceId: SOURCE,
        region: REGION,
        drRegion: DR_REGION,
        drKmsKeyId: DR_KMS,
        clients: { primary: primaryClient, dr: drClient },
        restore: { primary: { dbSubnetGroupName: 'lifeboat-restores', vpcSecurityGroupIds: ['sg-0123456789abcdef0'], dbInstanceClass: 'db.t4g.medium', publiclyAccessible: false } },
      });
      primary.on(RestoreDBInstanceToPointInTimeCommand).resolves({ DBInstance: restoredInstance(DEST) });
      await engine.startRestore({ destinationId: DEST, point: { kind: 'latest' }, owner: ownerFor({ kind: 'latest' }) });
      const input = primary.commandCalls(RestoreDBInstanceToPointInTimeCommand)[0].args[0].input;
      assert.equal(input.UseLatestRestorableTime, true);
      assert.equal(input.RestoreTime, undefined);
      assert.equal(input.DBSubnetGroupName, 'lifeboat-restores');
      assert.deepEqual(input.VpcSecurityGroupIds, ['sg-0123456789abcdef0']);
      assert.equal(input.DBInstanceClass, 'db.t4g.medium');
      assert.equal(input.PubliclyAccessible, false);
    });

    it('restores in the DR region from the replicated automated backups', async () => {
      dr.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({ DBInstanceAutomatedBackups: [replicatedBackup()] });
      dr.on(RestoreDBInstanceToPointInTimeCommand).resolves({ DBInstance: restoredInstance(DEST, { DBInstanceArn: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:db:${DEST}` }) });
      await engine.startRestore({ destinationId: DEST, point: { kind: 'time', at: '2024-05-20T09:00:00.000Z' }, fromRegion: 'dr', owner: ownerFor({ kind: 'time', at: '2024-05-20T09:00:00.000Z' }) });
      assert.equal(primary.calls().length, 0);
      const input = dr.commandCalls(RestoreDBInstanceToPointInTimeCommand)[0].args[0].input;
      assert.equal(input.SourceDBInstanceAutomatedBackupsArn, REPLICATED_BACKUPS_ARN);
      assert.equal(input.SourceDBInstanceIdentifier, undefined);
      assert.equal(input.TargetDBInstanceIdentifier, DEST);
    });

    it('never restores over the source instance', async () => {
      for (const destinationId of [SOURCE, 'Orders-Prod']) {
        const err = await lifeboatFailure(engine.startRestore({ destinationId, point: { kind: 'latest' }, owner: ownerFor({ kind: 'latest' }) }), 'RESTORE_OVER_SOURCE', true);
        assert.match(err.message, /protected source instance/);
      }
      assert.equal(primary.calls().length + dr.calls().length, 0);
    });

    it('surfaces a time outside the restore window with the window that would work', async () => {
      primary.on(RestoreDBInstanceToPointInTimeCommand).rejects(new InvalidRestoreFault({ message: 'The requested point in time is outside the restorable window of the DB instance.', $metadata: meta }));
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [sourceInstance()] });
      primary.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({
        DBInstanceAutomatedBackups: [{ DBInstanceIdentifier: SOURCE, DbiResourceId: DBI, Status: 'active', RestoreWindow: { EarliestTime: new Date('2024-05-13T03:05:11.000Z'), LatestTime: new Date('2024-05-20T11:55:00.000Z') } }],
      });
      const err = await lifeboatFailure(engine.startRestore({ destinationId: DEST, point: { kind: 'time', at: '2024-04-01T00:00:00Z' }, owner: ownerFor({ kind: 'time', at: '2024-04-01T00:00:00Z' }) }), 'OUTSIDE_RESTORE_WINDOW', true);
      assert.match(err.message, /InvalidRestoreFault/);
      assert.match(err.message, /2024-04-01T00:00:00\.000Z must lie between 2024-05-13T03:05:11\.000Z and 2024-05-20T11:55:00\.000Z/);
      assert.match(err.message, /request a time inside it/);
    });

    it('surfaces disabled point-in-time restore, bad parameters and denied access as non-retryable', async () => {
      primary
        .on(RestoreDBInstanceToPointInTimeCommand)
        .rejectsOnce(new PointInTimeRestoreNotEnabledFault({ message: `Source database ${SOURCE} does not have automated backups enabled.`, $metadata: meta }))
        .rejectsOnce(serviceError('InvalidParameterValue', 'Invalid DB Instance class: db.x9.huge'))
        .rejectsOnce(serviceError('AccessDenied', `User: arn:aws:sts::${ACCOUNT}:assumed-role/lifeboat-worker/i-0abc is not authorized to perform: rds:RestoreDBInstanceToPointInTime`, 403));
      const restore = () => engine.startRestore({ destinationId: DEST, point: { kind: 'latest' }, owner: ownerFor({ kind: 'latest' }) });
      const pitr = await lifeboatFailure(restore(), 'PITR_NOT_ENABLED', true);
      assert.match(pitr.message, /PointInTimeRestoreNotEnabledFault/);
      const bad = await lifeboatFailure(restore(), 'AWS_INVALID_PARAMETER', true);
      assert.match(bad.message, /InvalidParameterValue.*db\.x9\.huge/);
      const denied = await lifeboatFailure(restore(), 'AWS_ACCESS_DENIED', true);
      assert.match(denied.message, /AccessDenied.*grant the lifeboat worker role/);
    });

    it('adopts its own restore that already exists', async () => {
      primary.on(RestoreDBInstanceToPointInTimeCommand).rejects(new DBInstanceAlreadyExistsFault({ message: 'DB instance already exists', $metadata: meta }));
      primary.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: DEST }).resolves({ DBInstances: [restoredInstance(DEST, { DBInstanceStatus: 'backing-up' })] });
      const d = await engine.startRestore({ destinationId: DEST, point: { kind: 'latest' }, owner: ownerFor({ kind: 'latest' }) });
      assert.equal(d.instanceId, DEST);
      assert.equal(d.status, 'backing-up');
      assert.equal(d.createdByLifeboat, true);
    });

    it('refuses to adopt an instance another workflow run made, or this run made for another restore point, naming its owner', async () => {
      primary.on(RestoreDBInstanceToPointInTimeCommand).rejects(new DBInstanceAlreadyExistsFault({ message: 'DB instance already exists', $metadata: meta }));
      const other = { workflowId: 'restore-orders-prod-earlier', runId: '0193a5e1-0000-7000-8000-000000000001' };
      const cases = [
        { name: 'same run, another restore point', tags: ownerTags('2024-05-20T09:00:00.000Z'), owner: `workflow ${RUN.workflowId} (run ${RUN.runId}, restore point 2024-05-20T09:00:00.000Z, created 2024-05-20T12:00:01.000Z)` },
        { name: 'same workflow id, earlier run', tags: ownerTags('latest', { workflowId: RUN.workflowId, runId: other.runId }), owner: `workflow ${RUN.workflowId} (run ${other.runId}, restore point latest, created 2024-05-20T12:00:01.000Z)` },
        { name: 'another workflow', tags: ownerTags('latest', other), owner: `workflow ${other.workflowId} (run ${other.runId}, restore point latest, created 2024-05-20T12:00:01.000Z)` },
        { name: 'no owner recorded', tags: [], owner: 'a lifeboat run from before owners were recorded' },
      ];
      for (const c of cases) {
        primary.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: DEST }).resolves({
          DBInstances: [restoredInstance(DEST, { DBInstanceStatus: 'available', TagList: [{ Key: 'lifeboat:managed', Value: 'true' }, { Key: 'lifeboat:restored-from', Value: SOURCE }, ...c.tags] })],
        });
        const err = await lifeboatFailure(engine.startRestore({ destinationId: DEST, point: { kind: 'latest' }, owner: ownerFor({ kind: 'latest' }) }), 'INSTANCE_OWNED_ELSEWHERE', true);
        assert.equal(
          err.message,
          `Instance ${DEST} already exists in ${REGION} and belongs to ${c.owner}, not to this workflow run restoring to latest; lifeboat will neither adopt nor delete it: choose another destination name.`,
          c.name,
        );
      }
      assert.equal(primary.commandCalls(DeleteDBInstanceCommand).length, 0);
    });

    it('refuses a destination it would have to rewrite, before calling AWS', async () => {
      for (const destinationId of ['../../etc', 'x;touch /tmp/p', 'two--hyphens', 'a'.repeat(64)]) {
        const err = await lifeboatFailure(engine.startRestore({ destinationId, point: { kind: 'latest' }, owner: ownerFor({ kind: 'latest' }) }), 'INVALID_DESTINATION', true);
        assert.match(err.message, /is not a valid RDS instance identifier/);
      }
      assert.equal(primary.calls().length + dr.calls().length, 0);
    });

    it('refuses an existing instance of the same name that lifeboat did not create', async () => {
      primary.on(RestoreDBInstanceToPointInTimeCommand).rejects(new DBInstanceAlreadyExistsFault({ message: 'DB instance already exists', $metadata: meta }));
      primary.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: DEST }).resolves({ DBInstances: [restoredInstance(DEST, { TagList: [{ Key: 'team', Value: 'payments' }] })] });
      await lifeboatFailure(engine.startRestore({ destinationId: DEST, point: { kind: 'latest' }, owner: ownerFor({ kind: 'latest' }) }), 'INSTANCE_NAME_CONFLICT', true);
    });

    it('refuses restore points RDS cannot express', async () => {
      await lifeboatFailure(engine.startRestore({ destinationId: DEST, point: { kind: 'lsn', lsn: '0/3000060' }, owner: ownerFor({ kind: 'lsn', lsn: '0/3000060' }) }), 'UNSUPPORTED_RESTORE_POINT', true);
      await lifeboatFailure(engine.startRestore({ destinationId: DEST, point: { kind: 'time', at: 'yesterday' }, owner: ownerFor({ kind: 'time', at: 'yesterday' }) }), 'INVALID_RESTORE_POINT', true);
      assert.equal(primary.calls().length, 0);
    });
  });

  describe('startRestore of a snapshot (what a restore drill proves)', () => {
    const DEST = 'drill-orders-2024q2-7f3a9c';

    it('restores the DR copy itself in the DR region with RestoreDBInstanceFromDBSnapshot, tagged with its owner', async () => {
      dr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [drCopy({ Status: 'available' })] });
      dr.on(RestoreDBInstanceFromDBSnapshotCommand).callsFake((input: { Tags?: Array<{ Key: string; Value: string }> }) => ({ DBInstance: restoredInstance(DEST, { TagList: input.Tags }) }));
      const point: RestorePoint = { kind: 'backup', backupId: COPY };
      const d = await engine.startRestore({ destinationId: DEST, point, fromRegion: 'dr', owner: ownerFor(point) });
      assert.equal(d.instanceId, DEST);
      assert.equal(d.createdByLifeboat, true);
      const calls = dr.commandCalls(RestoreDBInstanceFromDBSnapshotCommand);
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0].args[0].input, {
        DBInstanceIdentifier: DEST,
        DBSnapshotIdentifier: COPY,
        DeletionProtection: false,
        Tags: [
          { Key: 'lifeboat:managed', Value: 'true' },
          { Key: 'lifeboat:restored-from', Value: SOURCE },
          { Key: 'lifeboat:restore-point', Value: `backup:${COPY}` },
          { Key: 'lifeboat:restore-name', Value: DEST },
          { Key: 'lifeboat:workflow-id', Value: RUN.workflowId },
          { Key: 'lifeboat:run-id', Value: RUN.runId },
          { Key: 'lifeboat:created-at', Value: '2024-05-20T12:00:01.000Z' },
        ],
      });
      assert.equal(primary.commandCalls(RestoreDBInstanceFromDBSnapshotCommand).length, 0);
      assert.equal(dr.commandCalls(RestoreDBInstanceToPointInTimeCommand).length, 0);
    });

    it('refuses a snapshot that is missing, of another instance, or not yet available, before restoring anything', async () => {
      const point: RestorePoint = { kind: 'backup', backupId: SNAPSHOT };
      const request = { destinationId: DEST, point, owner: ownerFor(point) };
      primary
        .on(DescribeDBSnapshotsCommand)
        .rejectsOnce(new DBSnapshotNotFoundFault({ message: `DBSnapshot ${SNAPSHOT} not found.`, $metadata: meta }))
        .resolvesOnce({ DBSnapshots: [snapshot({ Status: 'available', DBInstanceIdentifier: 'billing-prod' })] })
        .resolvesOnce({ DBSnapshots: [snapshot({ Status: 'creating' })] });
      await lifeboatFailure(engine.startRestore(request), 'SNAPSHOT_NOT_FOUND', true);
      await lifeboatFailure(engine.startRestore(request), 'SNAPSHOT_NAME_CONFLICT', true);
      await lifeboatFailure(engine.startRestore(request), 'SNAPSHOT_NOT_AVAILABLE', false);
      assert.equal(primary.commandCalls(RestoreDBInstanceFromDBSnapshotCommand).length, 0);
    });
  });

  describe('describeInstance', () => {
    const DEST = 'orders-prod-drill-2024q2';

    it('finds restored instances in either region and returns undefined when there is none', async () => {
      primary.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${DEST} not found.`, $metadata: meta }));
      dr.on(DescribeDBInstancesCommand)
        .resolvesOnce({
          DBInstances: [
            restoredInstance(DEST, {
              DBInstanceStatus: 'available',
              Endpoint: { Address: `${DEST}.cx1y2z3abcde.${DR_REGION}.rds.amazonaws.com`, Port: 5432, HostedZoneId: 'Z1PVIF0B656C1W' },
            }),
          ],
        })
        .rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${DEST} not found.`, $metadata: meta }));
      const found = await engine.describeInstance(DEST);
      assert.deepEqual(found?.endpoint, { host: `${DEST}.cx1y2z3abcde.${DR_REGION}.rds.amazonaws.com`, port: 5432 });
      assert.equal(found?.createdByLifeboat, true);
      assert.equal(await engine.describeInstance(DEST), undefined);
    });
  });

  describe('deleteInstance', () => {
    const DEST = 'orders-prod-drill-2024q2';

    it('deletes an instance of the same run, keeping a final snapshot named after it', async () => {
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [restoredInstance(DEST, { DBInstanceStatus: 'available' })] });
      dr.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${DEST} not found.`, $metadata: meta }));
      primary.on(DeleteDBInstanceCommand).resolves({ DBInstance: restoredInstance(DEST, { DBInstanceStatus: 'deleting' }) });
      await engine.deleteInstance(DEST, RUN);
      const deletes = primary.commandCalls(DeleteDBInstanceCommand);
      assert.equal(deletes.length, 1);
      const finalSnapshot = finalSnapshotId(DEST, RUN.runId);
      assert.match(finalSnapshot, new RegExp(`^${DEST}-final-[0-9a-f]{8}$`));
      assert.deepEqual(deletes[0].args[0].input, { DBInstanceIdentifier: DEST, SkipFinalSnapshot: false, FinalDBSnapshotIdentifier: finalSnapshot, DeleteAutomatedBackups: true });
      // Another run deleting an instance of the same name later gets another snapshot name.
      assert.notEqual(finalSnapshotId(DEST, '0193a5e1-0000-7000-8000-000000000001'), finalSnapshot);
      assert.equal(dr.commandCalls(DeleteDBInstanceCommand).length, 0);
    });

    it('deletes a failed restore without a final snapshot, which RDS cannot take of it', async () => {
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [restoredInstance(DEST, { DBInstanceStatus: 'incompatible-restore' })] });
      dr.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${DEST} not found.`, $metadata: meta }));
      primary.on(DeleteDBInstanceCommand).resolves({ DBInstance: restoredInstance(DEST, { DBInstanceStatus: 'deleting' }) });
      await engine.deleteInstance(DEST, RUN);
      assert.deepEqual(primary.commandCalls(DeleteDBInstanceCommand)[0].args[0].input, { DBInstanceIdentifier: DEST, SkipFinalSnapshot: true, DeleteAutomatedBackups: true });
    });

    it('deletes an instance restored from a snapshot that is still there without a final snapshot, and keeps one when the snapshot is gone', async () => {
      const fromSnapshot = restoredInstance(DEST, { DBInstanceStatus: 'available', TagList: [{ Key: 'lifeboat:managed', Value: 'true' }, { Key: 'lifeboat:restored-from', Value: SOURCE }, ...ownerTags(`backup:${SNAPSHOT}`)] });
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [fromSnapshot] });
      dr.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${DEST} not found.`, $metadata: meta }));
      primary.on(DeleteDBInstanceCommand).resolves({ DBInstance: restoredInstance(DEST, { DBInstanceStatus: 'deleting' }) });
      primary.on(DescribeDBSnapshotsCommand).resolvesOnce({ DBSnapshots: [snapshot({ Status: 'available' })] }).rejects(new DBSnapshotNotFoundFault({ message: `DBSnapshot ${SNAPSHOT} not found.`, $metadata: meta }));
      await engine.deleteInstance(DEST, RUN);
      await engine.deleteInstance(DEST, RUN);
      assert.deepEqual(
        primary.commandCalls(DeleteDBInstanceCommand).map((c) => c.args[0].input),
        [
          { DBInstanceIdentifier: DEST, SkipFinalSnapshot: true, DeleteAutomatedBackups: true },
          { DBInstanceIdentifier: DEST, SkipFinalSnapshot: false, FinalDBSnapshotIdentifier: finalSnapshotId(DEST, RUN.runId), DeleteAutomatedBackups: true },
        ],
      );
    });

    it("refuses another run's instance, naming its owner, without calling DeleteDBInstance", async () => {
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [restoredInstance(DEST, { DBInstanceStatus: 'available' })] });
      dr.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${DEST} not found.`, $metadata: meta }));
      for (const by of [{ workflowId: RUN.workflowId, runId: 'a-later-run-of-the-same-id' }, { workflowId: 'restore-orders-prod-other', runId: RUN.runId }]) {
        const err = await lifeboatFailure(engine.deleteInstance(DEST, by), 'NOT_OWNER', true);
        assert.equal(
          err.message,
          `Refusing to delete ${DEST} in ${REGION}: it belongs to workflow ${RUN.workflowId} (run ${RUN.runId}, restore point latest, created 2024-05-20T12:00:01.000Z), not to workflow ${by.workflowId} run ${by.runId}; delete it by hand if it really is unwanted.`,
        );
      }
      assert.equal(primary.commandCalls(DeleteDBInstanceCommand).length, 0);
    });

    it('marks an instance as serving traffic with a tag, and then never deletes it', async () => {
      const arn = `arn:aws:rds:${REGION}:${ACCOUNT}:db:${DEST}`;
      let tags = restoredInstance(DEST).TagList!;
      primary.on(DescribeDBInstancesCommand).callsFake(() => ({ DBInstances: [restoredInstance(DEST, { DBInstanceStatus: 'available', TagList: tags })] }));
      dr.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${DEST} not found.`, $metadata: meta }));
      primary.on(AddTagsToResourceCommand).callsFake((input: { Tags: Array<{ Key: string; Value: string }> }) => {
        tags = [...tags, ...input.Tags];
        return {};
      });
      await engine.markServedTraffic(DEST);
      const calls = primary.commandCalls(AddTagsToResourceCommand);
      assert.equal(calls.length, 1);
      assert.equal(calls[0].args[0].input.ResourceName, arn);
      assert.equal(calls[0].args[0].input.Tags?.[0].Key, 'lifeboat:served-traffic');
      assert.ok(!Number.isNaN(Date.parse(calls[0].args[0].input.Tags![0].Value!)));
      // Marking twice is harmless.
      await engine.markServedTraffic(DEST);
      assert.equal(primary.commandCalls(AddTagsToResourceCommand).length, 1);
      assert.equal((await engine.describeInstance(DEST))?.servedTraffic, true);
      const err = await lifeboatFailure(engine.deleteInstance(DEST, RUN), 'SERVED_TRAFFIC', true);
      assert.match(err.message, /^Refusing to delete .* it has served traffic since .*; move traffic elsewhere and delete it by hand when it is no longer needed\.$/);
      assert.equal(primary.commandCalls(DeleteDBInstanceCommand).length, 0);
    });

    it('refuses the source instance without calling AWS', async () => {
      const err = await lifeboatFailure(engine.deleteInstance(SOURCE, RUN), 'DELETE_SOURCE_REFUSED', true);
      assert.match(err.message, /protected source instance/);
      assert.equal(primary.calls().length + dr.calls().length, 0);
    });

    it('refuses an instance lifeboat did not create', async () => {
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [sourceInstance({ DBInstanceIdentifier: 'billing-prod' })] });
      await lifeboatFailure(engine.deleteInstance('billing-prod', RUN), 'NOT_MANAGED_BY_LIFEBOAT', true);
      assert.equal(primary.commandCalls(DeleteDBInstanceCommand).length, 0);
    });

    it('treats a missing instance as deleted, also when it disappears between describe and delete', async () => {
      const notFound = new DBInstanceNotFoundFault({ message: `DBInstance ${DEST} not found.`, $metadata: meta });
      primary.on(DescribeDBInstancesCommand).rejectsOnce(notFound).resolves({ DBInstances: [restoredInstance(DEST, { DBInstanceStatus: 'available' })] });
      dr.on(DescribeDBInstancesCommand).rejects(notFound);
      primary.on(DeleteDBInstanceCommand).rejects(notFound);
      await engine.deleteInstance(DEST, RUN);
      assert.equal(primary.commandCalls(DeleteDBInstanceCommand).length, 0);
      await engine.deleteInstance(DEST, RUN);
      assert.equal(primary.commandCalls(DeleteDBInstanceCommand).length, 1);
    });

    it('does nothing for an instance already deleting', async () => {
      primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [restoredInstance(DEST, { DBInstanceStatus: 'deleting' })] });
      dr.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: 'not found', $metadata: meta }));
      await engine.deleteInstance(DEST, RUN);
      assert.equal(primary.commandCalls(DeleteDBInstanceCommand).length, 0);
    });
  });

  describe('rdsIdentifier', () => {
    it('keeps valid names (lower-cased) and rewrites others deterministically within the length limit', () => {
      assert.equal(rdsIdentifier('Orders-Prod', 63), 'orders-prod');
      const rewritten = rdsIdentifier('pitr/orders-prod/2024-05-20T10:30:00Z', 63);
      assert.match(rewritten, /^pitr-orders-prod-2024-05-20t10-30-00z-[0-9a-f]{8}$/);
      assert.equal(rdsIdentifier('pitr/orders-prod/2024-05-20T10:30:00Z', 63), rewritten);
      assert.notEqual(rdsIdentifier('pitr:orders-prod:2024-05-20T10:30:00Z', 63), rewritten);
      assert.match(rdsIdentifier('1-starts-with-digit', 63), /^lb-1-starts-with-digit-[0-9a-f]{8}$/);
      const long = rdsIdentifier('x'.repeat(100), 63);
      assert.ok(long.length <= 63);
      assert.match(long, /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
    });
  });
});

/**
 * Failover with the primary region gone: everything is asked of the DR region's client, and the
 * primary region's client answers every command with a network failure (as an unreachable
 * region does), so a single call to it would fail the test's restore.
 */
describe('RdsEngine in the DR region alone (failover, AWS SDK boundary)', () => {
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' };
  const primaryClient = new RDSClient({ region: REGION, credentials });
  const drClient = new RDSClient({ region: DR_REGION, credentials });
  const primary = mockClient(primaryClient);
  const dr = mockClient(drClient);
  const DEST = 'failover-orders-prod-7f3a9c';
  const NOW = new Date('2024-05-20T12:00:00.000Z');
  const OLDER_COPY = 'lb-backup-orders-prod-20240519t1200z-dr';
  let engine: RdsEngine;

  /** What the SDK throws when the region's endpoint does not answer, after its own retries. */
  function regionUnreachable(): Error {
    return Object.assign(new Error(`connect ETIMEDOUT 52.94.228.17:443 (rds.${REGION}.amazonaws.com)`), { name: 'TimeoutError', code: 'ETIMEDOUT', $metadata: { attempts: 3, totalRetryDelay: 912 } });
  }

  const classOffered = {
    OrderableDBInstanceOptions: [
      {
        Engine: 'postgres',
        EngineVersion: '16.3',
        DBInstanceClass: 'db.r6g.large',
        LicenseModel: 'postgresql-license',
        AvailabilityZoneGroup: DR_REGION,
        AvailabilityZones: [{ Name: `${DR_REGION}a` }, { Name: `${DR_REGION}b` }, { Name: `${DR_REGION}c` }],
        MultiAZCapable: true,
        ReadReplicaCapable: true,
        Vpc: true,
        SupportsStorageEncryption: true,
        StorageType: 'gp3',
        SupportsIops: true,
      },
    ],
  };

  /** Copies in the DR region: an older and a newer one of lifeboat's, one still copying, one someone else made. */
  function drCopies(): DBSnapshot[] {
    return [
      drCopy({ DBSnapshotIdentifier: OLDER_COPY, DBSnapshotArn: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:snapshot:${OLDER_COPY}`, Status: 'available', OriginalSnapshotCreateTime: new Date('2024-05-19T12:00:04.000Z'), SnapshotCreateTime: new Date('2024-05-19T12:31:40.000Z') }),
      drCopy({ Status: 'available', OriginalSnapshotCreateTime: new Date('2024-05-20T06:00:04.000Z'), SnapshotCreateTime: new Date('2024-05-20T06:40:12.000Z') }),
      drCopy({ DBSnapshotIdentifier: 'lb-backup-orders-prod-20240520t1100z-dr', Status: 'copying', PercentProgress: 40, OriginalSnapshotCreateTime: new Date('2024-05-20T11:00:03.000Z') }),
      drCopy({ DBSnapshotIdentifier: 'manual-before-upgrade', Status: 'available', OriginalSnapshotCreateTime: new Date('2024-05-20T11:30:00.000Z'), TagList: [{ Key: 'team', Value: 'payments' }] }),
    ];
  }

  beforeEach(() => {
    primary.reset();
    dr.reset();
    primary.onAnyCommand().rejects(regionUnreachable());
    engine = new RdsEngine({ instanceId: SOURCE, region: REGION, drRegion: DR_REGION, drKmsKeyId: DR_KMS, clients: { primary: primaryClient, dr: drClient }, restore: { dr: { dbInstanceClass: 'db.r6g.large', dbSubnetGroupName: 'orders-dr' } } });
  });

  after(() => {
    primary.restore();
    dr.restore();
  });

  const request = { destinationId: DEST, owner: { ...RUN, restorePoint: 'latest', createdAt: '2024-05-20T12:00:01.000Z' } };

  it('restores from the replicated automated backups to their latest restorable time, with the primary region unreachable', async () => {
    dr.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({ DBInstanceAutomatedBackups: [replicatedBackup()] });
    dr.on(RestoreDBInstanceToPointInTimeCommand).callsFake((input: { Tags?: Array<{ Key: string; Value: string }> }) => ({ DBInstance: restoredInstance(DEST, { TagList: input.Tags, DBInstanceArn: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:db:${DEST}` }) }));
    const restored = await engine.restoreInDisasterRecoveryRegion(request, NOW);
    assert.equal(primary.calls().length, 0);
    assert.deepEqual(restored.source, { kind: 'replicated-automated-backup', arn: REPLICATED_BACKUPS_ARN, earliest: '2024-05-14T03:12:00.000Z', latest: '2024-05-20T11:40:00.000Z', rpoSeconds: 1200 });
    assert.equal(restored.instance.instanceId, DEST);
    assert.equal(restored.detail, `Automated backups of ${SOURCE} replicated to ${DR_REGION} restore up to 2024-05-20T11:40:00.000Z (RPO 1200 s now).`);
    const input = dr.commandCalls(RestoreDBInstanceToPointInTimeCommand)[0].args[0].input;
    assert.equal(input.SourceDBInstanceAutomatedBackupsArn, REPLICATED_BACKUPS_ARN);
    assert.equal(input.SourceDBInstanceIdentifier, undefined);
    assert.equal(input.UseLatestRestorableTime, true);
    assert.equal(input.DBInstanceClass, 'db.r6g.large');
    assert.equal(input.DBSubnetGroupName, 'orders-dr');
    assert.equal(dr.commandCalls(RestoreDBInstanceFromDBSnapshotCommand).length, 0);
  });

  it('without replicated backups, restores the newest available copy lifeboat made there, its age being the RPO', async () => {
    dr.on(DescribeDBInstanceAutomatedBackupsCommand).rejects(serviceError('DBInstanceAutomatedBackupNotFoundFault', `No automated backup found for ${SOURCE}`, 404));
    dr.on(DescribeDBSnapshotsCommand, { DBInstanceIdentifier: SOURCE, SnapshotType: 'manual' }).resolves({ DBSnapshots: drCopies() });
    dr.on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: COPY }).resolves({ DBSnapshots: [drCopies()[1]] });
    dr.on(RestoreDBInstanceFromDBSnapshotCommand).callsFake((input: { Tags?: Array<{ Key: string; Value: string }> }) => ({ DBInstance: restoredInstance(DEST, { TagList: input.Tags }) }));
    const restored = await engine.restoreInDisasterRecoveryRegion(request, NOW);
    assert.equal(primary.calls().length, 0);
    // The copy's own creation time is when it was copied; its data is from the original snapshot's time.
    assert.deepEqual(restored.source, { kind: 'snapshot-copy', snapshotId: COPY, arn: COPY_ARN, takenAt: '2024-05-20T06:00:04.000Z', rpoSeconds: 21596 });
    assert.match(restored.detail, /^No automated backups of orders-prod are replicated to us-west-2; its newest snapshot copy there, lb-backup-orders-prod-20240520t1200z-dr, holds data up to 2024-05-20T06:00:04\.000Z \(RPO 21596 s now\)\.$/);
    const calls = dr.commandCalls(RestoreDBInstanceFromDBSnapshotCommand);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].args[0].input.DBSnapshotIdentifier, COPY);
    assert.equal(calls[0].args[0].input.DBInstanceIdentifier, DEST);
    assert.equal(dr.commandCalls(RestoreDBInstanceToPointInTimeCommand).length, 0);
  });

  it('stays on the source it was given (what readiness reported), so a retried restore does not switch copies', async () => {
    dr.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({ DBInstanceAutomatedBackups: [replicatedBackup()] });
    dr.on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: OLDER_COPY }).resolves({ DBSnapshots: [drCopies()[0]] });
    dr.on(RestoreDBInstanceFromDBSnapshotCommand).callsFake((input: { Tags?: Array<{ Key: string; Value: string }> }) => ({ DBInstance: restoredInstance(DEST, { TagList: input.Tags }) }));
    const source = { kind: 'snapshot-copy' as const, snapshotId: OLDER_COPY, takenAt: '2024-05-19T12:00:04.000Z', rpoSeconds: 86396 };
    const restored = await engine.restoreInDisasterRecoveryRegion({ ...request, source }, NOW);
    assert.deepEqual(restored.source, source);
    assert.equal(dr.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0].args[0].input.DBSnapshotIdentifier, OLDER_COPY);
    assert.equal(dr.commandCalls(DescribeDBInstanceAutomatedBackupsCommand).length, 0);
    assert.equal(primary.calls().length, 0);
  });

  it('refuses, restoring nothing, when the DR region holds neither replicated backups nor a usable copy', async () => {
    dr.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({ DBInstanceAutomatedBackups: [] });
    dr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [drCopies()[2], drCopies()[3]] });
    const refused = await lifeboatFailure(engine.restoreInDisasterRecoveryRegion(request, NOW), 'DR_NO_RECOVERY_SOURCE', true);
    assert.equal(
      refused.message,
      `Neither automated backups replicated to ${DR_REGION} nor a snapshot copy of ${SOURCE} there exist, so it cannot be restored in the DR region; enable automated backup replication to ${DR_REGION}, or let lifeboat copy a backup there first.`,
    );
    assert.equal(dr.commandCalls(RestoreDBInstanceFromDBSnapshotCommand).length + dr.commandCalls(RestoreDBInstanceToPointInTimeCommand).length, 0);
    assert.equal(primary.calls().length, 0);
  });

  describe('readiness (no side effects)', () => {
    /** Every command readiness sent, by name: only questions, and only to the DR region. */
    function askedOf() {
      return dr.calls().map((c) => (c.args[0] as { constructor: { name: string } }).constructor.name);
    }

    it('is ready with replicated backups (their lag) and the DR instance class on offer for the same engine version', async () => {
      dr.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({ DBInstanceAutomatedBackups: [replicatedBackup()] });
      dr.on(DescribeOrderableDBInstanceOptionsCommand).resolves(classOffered);
      const ready = await engine.disasterRecoveryReadiness(NOW);
      assert.equal(ready.ready, true);
      assert.equal(ready.region, DR_REGION);
      assert.equal(ready.source?.kind, 'replicated-automated-backup');
      assert.equal(ready.source?.rpoSeconds, 1200);
      assert.deepEqual(
        ready.checks.map((c) => [c.name, c.ok]),
        [
          ['recovery-source', true],
          ['instance-class', true],
        ],
      );
      assert.equal(
        ready.summary,
        `${SOURCE} is ready to restore in ${DR_REGION}: automated backups of ${SOURCE} replicated to ${DR_REGION} restore up to 2024-05-20T11:40:00.000Z (RPO 1200 s now); instance class db.r6g.large is offered for PostgreSQL 16.3 in ${DR_REGION} (${DR_REGION}a, ${DR_REGION}b, ${DR_REGION}c).`,
      );
      assert.deepEqual(sent(dr.commandCalls(DescribeOrderableDBInstanceOptionsCommand)[0].args[0].input), { Engine: 'postgres', DBInstanceClass: 'db.r6g.large', EngineVersion: '16.3', MaxRecords: 20 });
      assert.deepEqual(askedOf(), ['DescribeDBInstanceAutomatedBackupsCommand', 'DescribeOrderableDBInstanceOptionsCommand']);
      assert.equal(primary.calls().length, 0);
    });

    it('is ready from the newest snapshot copy when nothing is replicated, and says how old its data is', async () => {
      dr.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({ DBInstanceAutomatedBackups: [] });
      dr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: drCopies() });
      dr.on(DescribeOrderableDBInstanceOptionsCommand).resolves(classOffered);
      const ready = await engine.disasterRecoveryReadiness(NOW);
      assert.equal(ready.ready, true);
      assert.deepEqual(ready.source, { kind: 'snapshot-copy', snapshotId: COPY, arn: COPY_ARN, takenAt: '2024-05-20T06:00:04.000Z', rpoSeconds: 21596 });
      assert.match(ready.summary, /its newest snapshot copy there, lb-backup-orders-prod-20240520t1200z-dr, holds data up to 2024-05-20T06:00:04\.000Z \(RPO 21596 s now\)/);
      assert.deepEqual(askedOf(), ['DescribeDBInstanceAutomatedBackupsCommand', 'DescribeDBSnapshotsCommand', 'DescribeOrderableDBInstanceOptionsCommand']);
      assert.equal(primary.calls().length, 0);
    });

    it('is not ready, saying every reason, with no source and a class the DR region does not offer', async () => {
      dr.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({ DBInstanceAutomatedBackups: [] });
      dr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [] });
      dr.on(DescribeOrderableDBInstanceOptionsCommand).resolves({ OrderableDBInstanceOptions: [] });
      const ready = await engine.disasterRecoveryReadiness(NOW);
      assert.equal(ready.ready, false);
      assert.equal(ready.source, undefined);
      assert.equal(
        ready.summary,
        `${SOURCE} is not ready to restore in ${DR_REGION} because neither automated backups replicated to ${DR_REGION} nor a snapshot copy of ${SOURCE} there exist: enable automated backup replication, or copy a backup there; and instance class db.r6g.large is not offered for PostgreSQL in ${DR_REGION}: choose another class for restore.dr.dbInstanceClass.`,
      );
    });

    it('is not ready without a DR instance class in the config, since the source cannot be asked', async () => {
      engine = new RdsEngine({ instanceId: SOURCE, region: REGION, drRegion: DR_REGION, drKmsKeyId: DR_KMS, clients: { primary: primaryClient, dr: drClient } });
      dr.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({ DBInstanceAutomatedBackups: [replicatedBackup()] });
      const ready = await engine.disasterRecoveryReadiness(NOW);
      assert.equal(ready.ready, false);
      assert.deepEqual(ready.checks.find((c) => c.name === 'instance-class'), {
        name: 'instance-class',
        ok: false,
        detail: `No instance class is set for restores in ${DR_REGION} (restore.dr.dbInstanceClass of the target), and the source's class cannot be read there without the primary region: set it, so a failover knows what it asks for.`,
      });
      assert.equal(dr.commandCalls(DescribeOrderableDBInstanceOptionsCommand).length, 0);
      assert.equal(primary.calls().length, 0);
    });

    it('reports a denied question as not ready with its advice, and throws throttling so the activity retries', async () => {
      dr.on(DescribeDBInstanceAutomatedBackupsCommand).rejects(serviceError('AccessDenied', `User: arn:aws:sts::${ACCOUNT}:assumed-role/lifeboat-worker/i-0abc is not authorized to perform: rds:DescribeDBInstanceAutomatedBackups`, 403));
      dr.on(DescribeOrderableDBInstanceOptionsCommand).resolves(classOffered);
      const denied = await engine.disasterRecoveryReadiness(NOW);
      assert.equal(denied.ready, false);
      assert.match(denied.checks[0].detail, /^RDS DescribeDBInstanceAutomatedBackups in us-west-2 failed with AccessDenied while finding the automated backups replicated to the DR region/);
      assert.match(denied.summary, /^orders-prod is not ready to restore in us-west-2 because RDS DescribeDBInstanceAutomatedBackups in us-west-2 failed with AccessDenied/);

      dr.reset();
      dr.on(DescribeDBInstanceAutomatedBackupsCommand).rejects(serviceError('Throttling', 'Rate exceeded'));
      const throttled = await lifeboatFailure(engine.disasterRecoveryReadiness(NOW), 'AWS_TRANSIENT', false);
      assert.match(throttled.message, /Throttling/);
    });
  });
});
