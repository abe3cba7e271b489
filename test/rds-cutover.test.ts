/**
 * The RDS side of an undoable cutover, at the AWS SDK boundary: the source fenced by stopping it
 * (and started again on rollback), and the new primary protected (deletion protection, 7-day
 * automated backups, a first snapshot); then the way back, a failback (second describe block).
 * Responses are shaped as RDS returns them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  AddTagsToResourceCommand,
  CopyDBSnapshotCommand,
  CreateDBSnapshotCommand,
  DBInstanceAlreadyExistsFault,
  DBInstanceNotFoundFault,
  DBSnapshotAlreadyExistsFault,
  DeleteDBInstanceCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  InvalidDBInstanceAutomatedBackupStateFault,
  InvalidDBInstanceStateFault,
  ModifyDBInstanceCommand,
  RDSClient,
  RebootDBInstanceCommand,
  RemoveTagsFromResourceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  StartDBInstanceAutomatedBackupsReplicationCommand,
  StartDBInstanceCommand,
  StopDBInstanceCommand,
  type DBInstance,
  type DBSnapshot,
  type Tag,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { LifeboatError } from '../src/domain/errors';
import type { FinalWal, Reprotection } from '../src/domain/ports';
import { finalSnapshotId, RdsEngine, type RdsEngineOptions } from '../src/engines/rds';
import { ACCOUNT, DR_KMS, DR_REGION, errorMeta, PRIMARY_KMS, REGION, SOURCE } from './helpers/aws-fixtures';

const RESTORED = 'test-pitr-cutover-3f9a2c1b';
const OWNER = { workflowId: 'pitr-orders-INC-42', runId: '0193a7c2-5d1e-7c3a-9b8f-2e4d6a8c0f13' };
const meta = { httpStatusCode: 400, requestId: '8d3c1f2e-6a4b-4c9d-8e7f-1a2b3c4d5e6f', attempts: 1, totalRetryDelay: 0 };

function instance(id: string, overrides: Partial<DBInstance> = {}): DBInstance {
  return {
    DBInstanceIdentifier: id,
    DBInstanceClass: 'db.r6g.large',
    Engine: 'postgres',
    EngineVersion: '16.3',
    DBInstanceStatus: 'available',
    Endpoint: { Address: `${id}.c9akciq32xyz.${REGION}.rds.amazonaws.com`, Port: 5432, HostedZoneId: 'Z2R2ITUGPM61AM' },
    BackupRetentionPeriod: 1,
    DbiResourceId: 'db-QW3ERT5YUI7OPA9SDF2GHJ4KLZ',
    DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${id}`,
    DeletionProtection: false,
    TagList: [],
    ...overrides,
  };
}

const source = (overrides: Partial<DBInstance> = {}) => instance(SOURCE, { BackupRetentionPeriod: 14, DeletionProtection: true, TagList: [{ Key: 'team', Value: 'payments' }], ...overrides });
const restored = (overrides: Partial<DBInstance> = {}) =>
  instance(RESTORED, {
    TagList: [
      { Key: 'lifeboat:managed', Value: 'true' },
      { Key: 'lifeboat:restored-from', Value: SOURCE },
    ],
    ...overrides,
  });

async function failure(promise: Promise<unknown>, code: string): Promise<LifeboatError> {
  const err = await promise.then(
    () => assert.fail('expected a failure'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof LifeboatError, String(err));
  assert.equal(err.code, code, err.message);
  return err;
}

describe('RdsEngine cutover: fence, unfence, protect (AWS SDK boundary)', () => {
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' };
  const primary = new RDSClient({ region: REGION, credentials });
  const dr = new RDSClient({ region: DR_REGION, credentials });
  const rds = mockClient(primary);
  const rdsDr = mockClient(dr);
  const engine = () => new RdsEngine({ instanceId: SOURCE, region: REGION, drRegion: DR_REGION, drKmsKeyId: 'alias/lifeboat-dr', clients: { primary, dr } });

  beforeEach(() => {
    rds.reset();
    rdsDr.reset();
  });
  after(() => {
    rds.restore();
    rdsDr.restore();
  });

  it('fences an available source by tagging it with the run and stopping it', async () => {
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: SOURCE }).resolves({ DBInstances: [source()] });
    rds.on(AddTagsToResourceCommand).resolves({});
    rds.on(StopDBInstanceCommand).resolves({ DBInstance: source({ DBInstanceStatus: 'stopping' }) });
    const fence = await engine().fenceSource(OWNER);
    assert.equal(fence.method, 'stopped');
    assert.deepEqual(fence.previous, { status: 'available' });
    assert.deepEqual(rds.commandCalls(AddTagsToResourceCommand)[0].args[0].input, {
      ResourceName: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${SOURCE}`,
      Tags: [{ Key: 'lifeboat:fenced-by', Value: `${OWNER.workflowId}/${OWNER.runId}` }],
    });
    assert.deepEqual(rds.commandCalls(StopDBInstanceCommand)[0].args[0].input, { DBInstanceIdentifier: SOURCE });
  });

  it('a retried fence adopts its own stop and still knows the source was available', async () => {
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [source({ DBInstanceStatus: 'stopping', TagList: [{ Key: 'lifeboat:fenced-by', Value: `${OWNER.workflowId}/${OWNER.runId}` }] })] });
    const fence = await engine().fenceSource(OWNER);
    assert.equal(fence.method, 'stopped');
    assert.deepEqual(fence.previous, { status: 'available' });
    assert.equal(rds.commandCalls(StopDBInstanceCommand).length, 0);
  });

  it('a source someone else stopped is left alone and never started by a rollback', async () => {
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [source({ DBInstanceStatus: 'stopped' })] });
    const fence = await engine().fenceSource(OWNER);
    assert.equal(fence.method, 'none');
    assert.equal(await engine().unfenceSource(fence), `nothing to undo on ${SOURCE}: ${fence.detail}`);
    assert.equal(rds.commandCalls(StopDBInstanceCommand).length, 0);
    assert.equal(rds.commandCalls(StartDBInstanceCommand).length, 0);
  });

  it('refuses to fence a source in the middle of something else (traffic is then not moved)', async () => {
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [source({ DBInstanceStatus: 'modifying' })] });
    const err = await failure(engine().fenceSource(OWNER), 'FENCE_FAILED');
    assert.equal(err.message, `The source ${SOURCE} is modifying, so lifeboat cannot stop it before moving traffic; wait until it is available or stopped, then retry the cutover.`);
  });

  it('unfences by starting the source it stopped and removing its tag; waits while it is still stopping', async () => {
    const fence = { instanceId: SOURCE, method: 'stopped' as const, at: '2024-05-20T12:41:07.000Z', detail: 'stopped', previous: { status: 'available' } };
    rds.on(DescribeDBInstancesCommand).resolvesOnce({ DBInstances: [source({ DBInstanceStatus: 'stopping' })] }).resolves({ DBInstances: [source({ DBInstanceStatus: 'stopped' })] });
    rds.on(StartDBInstanceCommand).resolves({ DBInstance: source({ DBInstanceStatus: 'starting' }) });
    rds.on(RemoveTagsFromResourceCommand).resolves({});
    await failure(engine().unfenceSource(fence), 'UNFENCE_NOT_YET');
    assert.equal(rds.commandCalls(StartDBInstanceCommand).length, 0);
    assert.match(await engine().unfenceSource(fence), /StartDBInstance/);
    assert.deepEqual(rds.commandCalls(StartDBInstanceCommand)[0].args[0].input, { DBInstanceIdentifier: SOURCE });
    assert.deepEqual(rds.commandCalls(RemoveTagsFromResourceCommand)[0].args[0].input, { ResourceName: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${SOURCE}`, TagKeys: ['lifeboat:fenced-by'] });
  });

  it('surfaces a start RDS refuses as an AWS failure, not as success', async () => {
    const fence = { instanceId: SOURCE, method: 'stopped' as const, at: '2024-05-20T12:41:07.000Z', detail: 'stopped', previous: { status: 'available' } };
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [source({ DBInstanceStatus: 'stopped' })] });
    rds.on(StartDBInstanceCommand).rejects(new InvalidDBInstanceStateFault({ message: `Instance ${SOURCE} cannot be started as it is not in stopped state`, $metadata: meta }));
    await assert.rejects(engine().unfenceSource(fence), (err: Error) => /StartDBInstance/.test(err.message));
  });

  it('protects the new primary: deletion protection, 7-day backups applied now, a first snapshot', async () => {
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: RESTORED }).resolves({ DBInstances: [restored()] });
    rds.on(ModifyDBInstanceCommand).resolves({ DBInstance: restored({ DBInstanceStatus: 'modifying' }) });
    rds.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: { DBSnapshotIdentifier: `lifeboat-new-primary-${OWNER.workflowId.toLowerCase()}`, DBInstanceIdentifier: RESTORED, Status: 'creating', DBSnapshotArn: `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:x` } });
    const protection = await engine().protectAsNewPrimary(RESTORED, OWNER);
    assert.deepEqual(rds.commandCalls(ModifyDBInstanceCommand)[0].args[0].input, { DBInstanceIdentifier: RESTORED, DeletionProtection: true, BackupRetentionPeriod: 7, ApplyImmediately: true });
    // Recorded, so that retiring the instance after a failback may turn protection off again.
    assert.deepEqual(rds.commandCalls(AddTagsToResourceCommand).map((c) => c.args[0].input), [
      { ResourceName: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${RESTORED}`, Tags: [{ Key: 'lifeboat:deletion-protected-by', Value: `${OWNER.workflowId}/${OWNER.runId}` }] },
    ]);
    const snap = rds.commandCalls(CreateDBSnapshotCommand)[0].args[0].input;
    assert.equal(snap.DBInstanceIdentifier, RESTORED);
    assert.equal(snap.DBSnapshotIdentifier, `lifeboat-new-primary-${OWNER.workflowId.toLowerCase()}`);
    assert.deepEqual(snap.Tags?.find((t) => t.Key === 'lifeboat:new-primary-of'), { Key: 'lifeboat:new-primary-of', Value: SOURCE });
    assert.deepEqual(protection.measures, ['deletion protection on', 'automated backups kept 7 days', `snapshot lifeboat-new-primary-${OWNER.workflowId.toLowerCase()} started`]);
    assert.deepEqual(protection.endpoint, { host: `${RESTORED}.c9akciq32xyz.${REGION}.rds.amazonaws.com`, port: 5432 });
    assert.equal(protection.backup?.location, REGION);
  });

  it('keeps a longer retention the instance already has, and finds an instance restored in the DR region', async () => {
    rds.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${RESTORED} not found.`, $metadata: { ...meta, httpStatusCode: 404 } }));
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [restored({ BackupRetentionPeriod: 35, DeletionProtection: true })] });
    rdsDr.on(ModifyDBInstanceCommand).resolves({});
    rdsDr.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: { DBSnapshotIdentifier: 'x', Status: 'creating' } });
    const protection = await engine().protectAsNewPrimary(RESTORED, OWNER);
    assert.equal(rdsDr.commandCalls(ModifyDBInstanceCommand)[0].args[0].input.BackupRetentionPeriod, 35);
    assert.equal(rds.commandCalls(ModifyDBInstanceCommand).length, 0);
    assert.equal(rdsDr.commandCalls(AddTagsToResourceCommand).length, 0, 'protection someone else turned on is not claimed as lifeboat\'s');
    assert.equal(protection.backup?.location, DR_REGION);
  });

  it('never protects (or changes) an instance lifeboat did not restore, nor the source itself', async () => {
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [instance(RESTORED, { TagList: [{ Key: 'team', Value: 'payments' }] })] });
    await failure(engine().protectAsNewPrimary(RESTORED, OWNER), 'NOT_MANAGED_BY_LIFEBOAT');
    await failure(engine().protectAsNewPrimary(SOURCE, OWNER), 'CUTOVER_TO_SOURCE_REFUSED');
    assert.equal(rds.commandCalls(ModifyDBInstanceCommand).length, 0);
  });
});

/**
 * The RDS side of a failback, at the AWS SDK boundary: a failover restored the source into the DR
 * region (the instance tagged with the failover run); failback re-protects it in both regions,
 * fences it, ships its final snapshot home, restores that into a new instance in the primary
 * region and, once names moved, retires it. Responses are shaped as RDS returns them.
 */
describe('RdsEngine failback: re-protect, fence, final snapshot, restore, retire (AWS SDK boundary)', () => {
  const FAILED_OVER = 'orders-prod-dr-5c2e8a41';
  const FAILOVER_RUN = { workflowId: 'failover-orders-INC-77', runId: '0193b1d4-7e2a-7f10-a3c4-5d6e7f8a9b0c' };
  const FAILBACK = { workflowId: 'failback-orders-INC-77', runId: '0193b8e1-2c4d-7a6b-8e9f-0a1b2c3d4e5f' };
  const FAILBACK_TAG = `${FAILBACK.workflowId}/${FAILBACK.runId}`;
  const DR_ARN = `arn:aws:rds:${DR_REGION}:${ACCOUNT}:db:${FAILED_OVER}`;
  const REPROTECT = `lifeboat-reprotect-${FAILBACK.workflowId.toLowerCase()}`;
  const APP_SG = 'sg-0a1b2c3d4e5f60718';
  const FENCE_SG = 'sg-0f9e8d7c6b5a49382';
  const meta = errorMeta;

  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' };
  const primary = new RDSClient({ region: REGION, credentials });
  const dr = new RDSClient({ region: DR_REGION, credentials });
  const rds = mockClient(primary);
  const rdsDr = mockClient(dr);
  let polls: string[] = [];
  let clock = 0;
  const engine = (options: Partial<RdsEngineOptions> = {}) =>
    new RdsEngine({
      instanceId: SOURCE,
      region: REGION,
      drRegion: DR_REGION,
      drKmsKeyId: 'alias/lifeboat-dr',
      clients: { primary, dr },
      restore: { dr: { fenceSecurityGroupIds: [FENCE_SG] } },
      pollIntervalMs: 30_000,
      onPoll: (p) => polls.push(`${p.waitingFor}: ${p.status}`),
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
      ...options,
    });

  /** The DR primary as a failover left it: restored from the DR copies, owned by the failover run, protected as the new primary. */
  const failedOver = (overrides: Partial<DBInstance> = {}, extraTags: Tag[] = []): DBInstance => ({
    DBInstanceIdentifier: FAILED_OVER,
    DBInstanceClass: 'db.r6g.large',
    Engine: 'postgres',
    EngineVersion: '16.3',
    DBInstanceStatus: 'available',
    Endpoint: { Address: `${FAILED_OVER}.cx7b2pq1lmno.${DR_REGION}.rds.amazonaws.com`, Port: 5432, HostedZoneId: 'Z1PVIF0B656C1W' },
    BackupRetentionPeriod: 7,
    DbiResourceId: 'db-H6JKL2MN3OPQ4RST5UVW6XYZ7A',
    DBInstanceArn: DR_ARN,
    DeletionProtection: true,
    StorageEncrypted: true,
    KmsKeyId: DR_KMS,
    VpcSecurityGroups: [{ VpcSecurityGroupId: APP_SG, Status: 'active' }],
    TagList: [
      { Key: 'lifeboat:managed', Value: 'true' },
      { Key: 'lifeboat:restored-from', Value: SOURCE },
      { Key: 'lifeboat:restore-point', Value: 'latest' },
      { Key: 'lifeboat:restore-name', Value: FAILED_OVER },
      { Key: 'lifeboat:workflow-id', Value: FAILOVER_RUN.workflowId },
      { Key: 'lifeboat:run-id', Value: FAILOVER_RUN.runId },
      { Key: 'lifeboat:created-at', Value: '2026-11-28T03:12:09.000Z' },
      { Key: 'lifeboat:served-traffic', Value: '2026-11-28T03:41:55.000Z' },
      { Key: 'lifeboat:deletion-protected-by', Value: `${FAILOVER_RUN.workflowId}/${FAILOVER_RUN.runId}` },
      ...extraTags,
    ],
    ...overrides,
  });
  const fencedTags: Tag[] = [
    { Key: 'lifeboat:fenced-by', Value: FAILBACK_TAG },
    { Key: 'lifeboat:fence-previous-security-groups', Value: APP_SG },
  ];
  const isolated = (overrides: Partial<DBInstance> = {}) => failedOver({ VpcSecurityGroups: [{ VpcSecurityGroupId: FENCE_SG, Status: 'active' }], ...overrides }, fencedTags);

  const snapshot = (id: string, region: string, overrides: Partial<DBSnapshot> = {}): DBSnapshot => ({
    DBSnapshotIdentifier: id,
    DBInstanceIdentifier: FAILED_OVER,
    SnapshotCreateTime: new Date('2026-11-30T09:14:02.311Z'),
    Engine: 'postgres',
    EngineVersion: '16.3',
    AllocatedStorage: 200,
    Status: 'available',
    Port: 5432,
    AvailabilityZone: `${region}a`,
    SnapshotType: 'manual',
    PercentProgress: 100,
    Encrypted: true,
    KmsKeyId: region === REGION ? PRIMARY_KMS : DR_KMS,
    DbiResourceId: 'db-H6JKL2MN3OPQ4RST5UVW6XYZ7A',
    DBSnapshotArn: `arn:aws:rds:${region}:${ACCOUNT}:snapshot:${id}`,
    ...overrides,
  });
  const copyOf = (id: string, overrides: Partial<DBSnapshot> = {}) =>
    snapshot(id, REGION, { SourceRegion: DR_REGION, SourceDBSnapshotIdentifier: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:snapshot:${id}`, ...overrides });

  beforeEach(() => {
    rds.reset();
    rdsDr.reset();
    polls = [];
    clock = 0;
  });
  after(() => {
    rds.restore();
    rdsDr.restore();
  });

  // ---- re-protection

  it('re-protects the DR primary: backups turned on and replicated home, a DR snapshot copied home, both waited until available', async () => {
    rdsDr
      .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: FAILED_OVER })
      .resolvesOnce({ DBInstances: [failedOver({ BackupRetentionPeriod: 1 })] })
      .resolvesOnce({ DBInstances: [failedOver({ BackupRetentionPeriod: 1 })] })
      .resolvesOnce({ DBInstances: [failedOver({ DBInstanceStatus: 'modifying', BackupRetentionPeriod: 1, PendingModifiedValues: { BackupRetentionPeriod: 7 } })] })
      .resolves({ DBInstances: [failedOver()] });
    rdsDr.on(ModifyDBInstanceCommand).resolves({ DBInstance: failedOver({ DBInstanceStatus: 'modifying', BackupRetentionPeriod: 1 }) });
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: SOURCE }).resolves({ DBInstances: [source({ StorageEncrypted: true, KmsKeyId: PRIMARY_KMS })] });
    rds.on(StartDBInstanceAutomatedBackupsReplicationCommand).resolves({
      DBInstanceAutomatedBackup: { DBInstanceArn: DR_ARN, DBInstanceIdentifier: FAILED_OVER, Region: DR_REGION, Status: 'pending', BackupRetentionPeriod: 7, KmsKeyId: PRIMARY_KMS },
    });
    rdsDr.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: snapshot(REPROTECT, DR_REGION, { Status: 'creating', PercentProgress: 0 }) });
    rdsDr
      .on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: REPROTECT })
      .resolvesOnce({ DBSnapshots: [snapshot(REPROTECT, DR_REGION, { Status: 'creating', PercentProgress: 41 })] })
      .resolves({ DBSnapshots: [snapshot(REPROTECT, DR_REGION)] });
    rds.on(CopyDBSnapshotCommand).resolves({ DBSnapshot: copyOf(REPROTECT, { Status: 'pending', PercentProgress: 0 }) });
    rds
      .on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: REPROTECT })
      .resolvesOnce({ DBSnapshots: [copyOf(REPROTECT, { Status: 'copying', PercentProgress: 63 })] })
      .resolves({ DBSnapshots: [copyOf(REPROTECT)] });

    const reprotection = await engine().reprotectInBothRegions(FAILED_OVER, FAILBACK);

    assert.deepEqual(rdsDr.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input), [{ DBInstanceIdentifier: FAILED_OVER, BackupRetentionPeriod: 7, ApplyImmediately: true }]);
    assert.deepEqual(rds.commandCalls(StartDBInstanceAutomatedBackupsReplicationCommand).map((c) => c.args[0].input), [{ SourceDBInstanceArn: DR_ARN, BackupRetentionPeriod: 7, KmsKeyId: PRIMARY_KMS }]);
    assert.equal(rdsDr.commandCalls(StartDBInstanceAutomatedBackupsReplicationCommand).length, 0);
    assert.deepEqual(rdsDr.commandCalls(CreateDBSnapshotCommand).map((c) => c.args[0].input), [
      {
        DBSnapshotIdentifier: REPROTECT,
        DBInstanceIdentifier: FAILED_OVER,
        Tags: [
          { Key: 'lifeboat:managed', Value: 'true' },
          { Key: 'lifeboat:backup-kind', Value: 'snapshot' },
          { Key: 'lifeboat:source-instance', Value: FAILED_OVER },
          { Key: 'lifeboat:workflow-id', Value: FAILBACK.workflowId },
        ],
      },
    ]);
    assert.deepEqual(rds.commandCalls(CopyDBSnapshotCommand).map((c) => c.args[0].input), [
      { SourceDBSnapshotIdentifier: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:snapshot:${REPROTECT}`, TargetDBSnapshotIdentifier: REPROTECT, KmsKeyId: PRIMARY_KMS, CopyTags: true },
    ]);
    assert.deepEqual(reprotection, {
      instanceId: FAILED_OVER,
      backups: {
        primary: { engine: 'rds', backupId: REPROTECT, location: REGION, locator: `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${REPROTECT}` },
        dr: { engine: 'rds', backupId: REPROTECT, location: DR_REGION, locator: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:snapshot:${REPROTECT}` },
      },
      measures: [
        `automated backups of ${FAILED_OVER} turned on, kept 7 days`,
        `automated backups of ${FAILED_OVER} replicated into ${REGION}`,
        `snapshot ${REPROTECT} of ${FAILED_OVER} available in ${DR_REGION} and copied to ${REGION}`,
      ],
    });
    // Every wait reported each poll (the activity's heartbeat) until RDS said available.
    assert.deepEqual(polls, [
      `${FAILED_OVER} to be available for its re-protection: available`,
      `${FAILED_OVER} to be available with automated backups on: modifying`,
      `${FAILED_OVER} to be available with automated backups on: available`,
      `snapshot ${REPROTECT} in ${DR_REGION} to be available: creating`,
      `snapshot ${REPROTECT} in ${DR_REGION} to be available: available`,
      `snapshot ${REPROTECT} in ${REGION} to be available: copying`,
      `snapshot ${REPROTECT} in ${REGION} to be available: available`,
    ]);
  });

  it('a retried re-protection adopts its replication, its snapshot and its copy instead of making them again', async () => {
    const replicating = failedOver({ DBInstanceAutomatedBackupsReplications: [{ DBInstanceAutomatedBackupsArn: `arn:aws:rds:${REGION}:${ACCOUNT}:auto-backup:ab-3kx9q2w7e5r1t8y6u4i0o2p9a7` }] });
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [replicating] });
    rdsDr.on(CreateDBSnapshotCommand).rejects(new DBSnapshotAlreadyExistsFault({ message: `Cannot create the snapshot because a snapshot with the identifier ${REPROTECT} already exists.`, $metadata: meta }));
    rdsDr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot(REPROTECT, DR_REGION)] });
    rds.on(CopyDBSnapshotCommand).rejects(new DBSnapshotAlreadyExistsFault({ message: `Cannot create the snapshot because a snapshot with the identifier ${REPROTECT} already exists.`, $metadata: meta }));
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [copyOf(REPROTECT)] });
    const reprotection = await engine({ primaryKmsKeyId: PRIMARY_KMS }).reprotectInBothRegions(FAILED_OVER, FAILBACK);
    assert.equal(rdsDr.commandCalls(ModifyDBInstanceCommand).length, 0);
    assert.equal(rds.commandCalls(StartDBInstanceAutomatedBackupsReplicationCommand).length, 0);
    assert.equal(rds.commandCalls(DescribeDBInstancesCommand).length, 0, 'the configured primary KMS key is used, the source not asked');
    assert.equal(reprotection.backups.primary.locator, `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${REPROTECT}`);
    assert.deepEqual(reprotection.measures.slice(0, 2), [`automated backups of ${FAILED_OVER} already on, kept 7 days`, `automated backups of ${FAILED_OVER} replicated into ${REGION} (already)`]);
  });

  it('a replication an earlier attempt started but the instance does not show yet is adopted', async () => {
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver()] });
    rds.on(StartDBInstanceAutomatedBackupsReplicationCommand).rejects(
      new InvalidDBInstanceAutomatedBackupStateFault({ message: `The automated backups of ${FAILED_OVER} are already being replicated to ${REGION}.`, $metadata: meta }),
    );
    rds.on(DescribeDBInstanceAutomatedBackupsCommand, { DbiResourceId: 'db-H6JKL2MN3OPQ4RST5UVW6XYZ7A' }).resolves({
      DBInstanceAutomatedBackups: [{ DBInstanceArn: DR_ARN, DbiResourceId: 'db-H6JKL2MN3OPQ4RST5UVW6XYZ7A', DBInstanceIdentifier: FAILED_OVER, Region: DR_REGION, Status: 'replicating' }],
    });
    rdsDr.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: snapshot(REPROTECT, DR_REGION, { Status: 'creating' }) });
    rdsDr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot(REPROTECT, DR_REGION)] });
    rds.on(CopyDBSnapshotCommand).resolves({ DBSnapshot: copyOf(REPROTECT, { Status: 'pending' }) });
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [copyOf(REPROTECT)] });
    const reprotection = await engine({ primaryKmsKeyId: PRIMARY_KMS }).reprotectInBothRegions(FAILED_OVER, FAILBACK);
    assert.equal(reprotection.measures[1], `automated backups of ${FAILED_OVER} replicated into ${REGION}`);
  });

  it('refuses to re-protect the source, an instance lifeboat did not restore, or one that is gone, before changing anything', async () => {
    await failure(engine().reprotectInBothRegions(SOURCE, FAILBACK), 'FAILBACK_FROM_SOURCE_REFUSED');
    rdsDr.on(DescribeDBInstancesCommand).resolvesOnce({ DBInstances: [failedOver({ TagList: [{ Key: 'team', Value: 'payments' }] })] }).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${FAILED_OVER} not found.`, $metadata: { ...meta, httpStatusCode: 404 } }));
    const unmanaged = await failure(engine().reprotectInBothRegions(FAILED_OVER, FAILBACK), 'NOT_MANAGED_BY_LIFEBOAT');
    assert.equal(unmanaged.message, `Instance ${FAILED_OVER} in ${DR_REGION} is not tagged lifeboat:managed=true, so lifeboat did not create it and will not change it; give the instance the failover restored.`);
    const missing = await failure(engine().reprotectInBothRegions(FAILED_OVER, FAILBACK), 'INSTANCE_NOT_FOUND');
    assert.equal(missing.message, `There is no instance ${FAILED_OVER} in ${DR_REGION}, so it cannot be failed back from; give the instance the failover restored there.`);
    assert.equal(rdsDr.commandCalls(ModifyDBInstanceCommand).length + rdsDr.commandCalls(CreateDBSnapshotCommand).length + rds.commandCalls(StartDBInstanceAutomatedBackupsReplicationCommand).length, 0);
  });

  it('refuses to adopt a snapshot or a copy of that name that is not its own', async () => {
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver({ DBInstanceAutomatedBackupsReplications: [{ DBInstanceAutomatedBackupsArn: `arn:aws:rds:${REGION}:${ACCOUNT}:auto-backup:ab-x` }] })] });
    rdsDr.on(CreateDBSnapshotCommand).rejects(new DBSnapshotAlreadyExistsFault({ message: 'exists', $metadata: meta }));
    rdsDr.on(DescribeDBSnapshotsCommand).resolvesOnce({ DBSnapshots: [snapshot(REPROTECT, DR_REGION, { DBInstanceIdentifier: 'billing-prod' })] }).resolves({ DBSnapshots: [snapshot(REPROTECT, DR_REGION)] });
    const taken = await failure(engine({ primaryKmsKeyId: PRIMARY_KMS }).reprotectInBothRegions(FAILED_OVER, FAILBACK), 'SNAPSHOT_NAME_CONFLICT');
    assert.equal(taken.message, `Snapshot ${REPROTECT} already exists in ${DR_REGION} but was taken of instance billing-prod, not ${FAILED_OVER}; lifeboat will not adopt it, so delete or rename that snapshot.`);
    rds.on(CopyDBSnapshotCommand).rejects(new DBSnapshotAlreadyExistsFault({ message: 'exists', $metadata: meta }));
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [copyOf(REPROTECT, { SourceDBSnapshotIdentifier: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:snapshot:someone-elses` })] });
    await failure(engine({ primaryKmsKeyId: PRIMARY_KMS }).reprotectInBothRegions(FAILED_OVER, FAILBACK), 'SNAPSHOT_NAME_CONFLICT');
  });

  it('says which KMS key is missing when the source is gone and none is configured for the primary region', async () => {
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver()] });
    rds.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${SOURCE} not found.`, $metadata: { ...meta, httpStatusCode: 404 } }));
    const err = await failure(engine().reprotectInBothRegions(FAILED_OVER, FAILBACK), 'KMS_KEY_NOT_CONFIGURED');
    assert.equal(err.message, `${FAILED_OVER} is encrypted and no KMS key in ${REGION} is known to encrypt its copy there (the source ${SOURCE} is gone or unencrypted); set primaryKmsKeyId of the target to a key in ${REGION}.`);
    assert.equal(rds.commandCalls(StartDBInstanceAutomatedBackupsReplicationCommand).length, 0);
  });

  it('fails at once on a snapshot RDS failed, and gives up a wait with a retryable error (RDS carries on)', async () => {
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver({ DBInstanceAutomatedBackupsReplications: [{ DBInstanceAutomatedBackupsArn: `arn:aws:rds:${REGION}:${ACCOUNT}:auto-backup:ab-x` }] })] });
    rdsDr.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: snapshot(REPROTECT, DR_REGION, { Status: 'creating' }) });
    rdsDr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot(REPROTECT, DR_REGION, { Status: 'failed' })] });
    const failed = await failure(engine({ primaryKmsKeyId: PRIMARY_KMS }).reprotectInBothRegions(FAILED_OVER, FAILBACK), 'SNAPSHOT_FAILED');
    assert.equal(failed.message, `Snapshot ${REPROTECT} in ${DR_REGION} is failed, so it can never be used; delete it and run the failback again.`);

    rdsDr.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot(REPROTECT, DR_REGION, { Status: 'creating', PercentProgress: 12 })] });
    const late = await failure(engine({ primaryKmsKeyId: PRIMARY_KMS, waitTimeoutMs: 10 * 60_000 }).reprotectInBothRegions(FAILED_OVER, FAILBACK), 'RDS_WAIT_TIMEOUT');
    assert.equal(late.nonRetryable, false);
    assert.equal(late.message, `Lifeboat waited 10 min for snapshot ${REPROTECT} in ${DR_REGION} to be available and it is still creating; RDS carries on, and the retry waits again without redoing anything.`);
  });

  // ---- fence

  it('fences by moving the instance into the fence security groups, waiting for them, then rebooting to end open sessions', async () => {
    rdsDr
      .on(DescribeDBInstancesCommand)
      .resolvesOnce({ DBInstances: [failedOver()] })
      .resolvesOnce({ DBInstances: [failedOver()] })
      .resolvesOnce({
        DBInstances: [
          failedOver(
            {
              DBInstanceStatus: 'modifying',
              VpcSecurityGroups: [
                { VpcSecurityGroupId: APP_SG, Status: 'removing' },
                { VpcSecurityGroupId: FENCE_SG, Status: 'adding' },
              ],
            },
            fencedTags,
          ),
        ],
      })
      .resolves({ DBInstances: [isolated()] });
    rdsDr.on(AddTagsToResourceCommand).resolves({});
    rdsDr.on(ModifyDBInstanceCommand).resolves({ DBInstance: failedOver({ DBInstanceStatus: 'modifying' }) });
    rdsDr.on(RebootDBInstanceCommand).resolves({ DBInstance: isolated({ DBInstanceStatus: 'rebooting' }) });

    const fence = await engine().fenceInstance(FAILED_OVER, FAILBACK);

    assert.deepEqual(rdsDr.commandCalls(AddTagsToResourceCommand).map((c) => c.args[0].input), [{ ResourceName: DR_ARN, Tags: fencedTags }]);
    assert.deepEqual(rdsDr.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input), [{ DBInstanceIdentifier: FAILED_OVER, VpcSecurityGroupIds: [FENCE_SG], ApplyImmediately: true }]);
    assert.deepEqual(rdsDr.commandCalls(RebootDBInstanceCommand).map((c) => c.args[0].input), [{ DBInstanceIdentifier: FAILED_OVER }]);
    assert.equal(rds.calls().length, 0, 'the primary region is not involved');
    assert.deepEqual(fence, {
      instanceId: FAILED_OVER,
      method: 'isolated',
      at: new Date(clock).toISOString(),
      detail: `${FAILED_OVER} was moved into the security groups ${FENCE_SG}, which admit no client, and rebooted to end every open session`,
      previous: { region: DR_REGION, vpcSecurityGroupIds: APP_SG },
      undoCommand: `aws rds modify-db-instance --region ${DR_REGION} --db-instance-identifier ${FAILED_OVER} --vpc-security-group-ids ${APP_SG} --apply-immediately`,
    });
  });

  it('a retried fence follows its own through: the groups it replaced come from its tag, and a reboot in progress is not repeated', async () => {
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [isolated({ DBInstanceStatus: 'rebooting' })] });
    const fence = await engine().fenceInstance(FAILED_OVER, FAILBACK);
    assert.deepEqual(fence.previous, { region: DR_REGION, vpcSecurityGroupIds: APP_SG });
    assert.equal(rdsDr.commandCalls(AddTagsToResourceCommand).length, 0);
    assert.equal(rdsDr.commandCalls(ModifyDBInstanceCommand).length, 0);
    assert.equal(rdsDr.commandCalls(RebootDBInstanceCommand).length, 0);
  });

  it('refuses to fence without fence security groups, an instance another run fenced, or the source', async () => {
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver()] });
    const unset = await failure(engine({ restore: {} }).fenceInstance(FAILED_OVER, FAILBACK), 'FENCE_NOT_CONFIGURED');
    assert.equal(
      unset.message,
      `No fence security groups are set for ${DR_REGION}, and RDS can fence ${FAILED_OVER} only by moving it into groups that admit no client; create a security group without inbound rules in its VPC and set it as restore.dr.fenceSecurityGroupIds of the target.`,
    );
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver({}, [{ Key: 'lifeboat:fenced-by', Value: 'failback-orders-INC-70/0193a0a0-0000-7000-8000-000000000000' }])] });
    const other = await failure(engine().fenceInstance(FAILED_OVER, FAILBACK), 'FENCED_BY_ANOTHER_RUN');
    assert.equal(other.message, `Instance ${FAILED_OVER} is already fenced by failback-orders-INC-70/0193a0a0-0000-7000-8000-000000000000, so lifeboat will not fence it for workflow ${FAILBACK.workflowId} run ${FAILBACK.runId}; finish or roll back that run first.`);
    await failure(engine().fenceInstance(SOURCE, FAILBACK), 'FAILBACK_FROM_SOURCE_REFUSED');
    assert.equal(rdsDr.commandCalls(ModifyDBInstanceCommand).length + rdsDr.commandCalls(AddTagsToResourceCommand).length + rdsDr.commandCalls(RebootDBInstanceCommand).length, 0);
  });

  it('unfences by putting back the groups the fence replaced and removing its tags; waits while the instance reboots', async () => {
    const fence = { instanceId: FAILED_OVER, method: 'isolated' as const, at: '2026-11-30T09:10:00.000Z', detail: 'isolated', previous: { region: DR_REGION, vpcSecurityGroupIds: APP_SG } };
    rdsDr.on(DescribeDBInstancesCommand).resolvesOnce({ DBInstances: [isolated({ DBInstanceStatus: 'rebooting' })] }).resolves({ DBInstances: [isolated()] });
    rdsDr.on(ModifyDBInstanceCommand).resolves({});
    rdsDr.on(RemoveTagsFromResourceCommand).resolves({});
    const early = await failure(engine().unfenceInstance(fence), 'UNFENCE_NOT_YET');
    assert.equal(early.nonRetryable, false);
    assert.equal(await engine().unfenceInstance(fence), `${FAILED_OVER} is back in its security groups ${APP_SG}; clients can connect again once RDS applies the change`);
    assert.deepEqual(rdsDr.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input), [{ DBInstanceIdentifier: FAILED_OVER, VpcSecurityGroupIds: [APP_SG], ApplyImmediately: true }]);
    assert.deepEqual(rdsDr.commandCalls(RemoveTagsFromResourceCommand).map((c) => c.args[0].input), [{ ResourceName: DR_ARN, TagKeys: ['lifeboat:fenced-by', 'lifeboat:fence-previous-security-groups'] }]);
    assert.equal(await engine().unfenceInstance({ ...fence, method: 'none', detail: 'it was unreachable' }), `nothing to undo on ${FAILED_OVER}: it was unreachable`);
  });

  // ---- final snapshot

  it('ships the final state as a snapshot taken after the fence, copied home and waited until available there', async () => {
    const finalId = `${FAILED_OVER}-failback-final-${createHash('sha256').update(FAILBACK_TAG).digest('hex').slice(0, 8)}`;
    rdsDr
      .on(DescribeDBInstancesCommand)
      .resolvesOnce({ DBInstances: [isolated({ DBInstanceStatus: 'rebooting' })] })
      .resolvesOnce({ DBInstances: [isolated({ DBInstanceStatus: 'rebooting' })] })
      .resolves({ DBInstances: [isolated()] });
    rdsDr.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: snapshot(finalId, DR_REGION, { Status: 'creating' }) });
    rdsDr.on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: finalId }).resolves({ DBSnapshots: [snapshot(finalId, DR_REGION)] });
    rds.on(CopyDBSnapshotCommand).resolves({ DBSnapshot: copyOf(finalId, { Status: 'pending' }) });
    rds.on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: finalId }).resolvesOnce({ DBSnapshots: [copyOf(finalId, { Status: 'copying' })] }).resolves({ DBSnapshots: [copyOf(finalId)] });

    const final = await engine({ primaryKmsKeyId: PRIMARY_KMS }).shipFinalWal(FAILED_OVER);

    assert.deepEqual(rdsDr.commandCalls(CreateDBSnapshotCommand).map((c) => c.args[0].input), [
      {
        DBSnapshotIdentifier: finalId,
        DBInstanceIdentifier: FAILED_OVER,
        Tags: [
          { Key: 'lifeboat:managed', Value: 'true' },
          { Key: 'lifeboat:backup-kind', Value: 'snapshot' },
          { Key: 'lifeboat:source-instance', Value: FAILED_OVER },
          { Key: 'lifeboat:fenced-by', Value: FAILBACK_TAG },
        ],
      },
    ]);
    assert.deepEqual(rds.commandCalls(CopyDBSnapshotCommand).map((c) => c.args[0].input), [
      { SourceDBSnapshotIdentifier: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:snapshot:${finalId}`, TargetDBSnapshotIdentifier: finalId, KmsKeyId: PRIMARY_KMS, CopyTags: true },
    ]);
    assert.deepEqual(final, {
      instanceId: FAILED_OVER,
      backup: { engine: 'rds', backupId: finalId, location: REGION, locator: `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${finalId}` },
      shippedAt: new Date(clock).toISOString(),
      detail: `Final snapshot ${finalId} of ${FAILED_OVER}, taken at 2026-11-30T09:14:02.311Z after its fence so it holds every committed transaction, is available in ${REGION}.`,
    });
  });

  it('refuses a final snapshot of an instance that is not fenced, or that left its fence groups, before taking any', async () => {
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver()] });
    const unfenced = await failure(engine().shipFinalWal(FAILED_OVER), 'NOT_FENCED');
    assert.equal(unfenced.message, `Instance ${FAILED_OVER} is not fenced, so a snapshot of it now could miss transactions committed after it; fence it first and take its final snapshot then.`);
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver({}, fencedTags)] });
    await failure(engine().shipFinalWal(FAILED_OVER), 'NOT_FENCED');
    assert.equal(rdsDr.commandCalls(CreateDBSnapshotCommand).length, 0);
  });

  // ---- restore in the primary region

  const finalWal = (backup: FinalWal['backup']): FinalWal => ({ instanceId: FAILED_OVER, shippedAt: '2026-11-30T09:31:40.000Z', detail: 'final', ...(backup ? { backup } : {}) });
  const FINAL = 'orders-prod-dr-5c2e8a41-failback-final-1a2b3c4d';
  const HOME = 'orders-failback-inc-77';
  const reprotection: Reprotection = {
    instanceId: FAILED_OVER,
    backups: { primary: { engine: 'rds', backupId: REPROTECT, location: REGION }, dr: { engine: 'rds', backupId: REPROTECT, location: DR_REGION } },
    measures: [],
  };
  const owner = { ...FAILBACK, restorePoint: `backup:${FINAL}`, createdAt: '2026-11-30T09:32:00.000Z' };

  it('restores the final copy in the primary region into a new instance tagged with its owner', async () => {
    rds.on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: FINAL }).resolves({ DBSnapshots: [copyOf(FINAL)] });
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({ DBInstance: instance(HOME, { DBInstanceStatus: 'creating', Endpoint: undefined }) });
    const restored = await engine({ restore: { primary: { dbInstanceClass: 'db.r6g.large', dbSubnetGroupName: 'orders-db-subnets' } } }).restoreForFailback({
      destinationId: HOME,
      owner,
      finalWal: finalWal({ engine: 'rds', backupId: FINAL, location: REGION, locator: `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${FINAL}` }),
      reprotection,
    });
    assert.deepEqual(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand).map((c) => c.args[0].input), [
      {
        DBInstanceIdentifier: HOME,
        DBSnapshotIdentifier: FINAL,
        DBInstanceClass: 'db.r6g.large',
        DBSubnetGroupName: 'orders-db-subnets',
        DeletionProtection: false,
        Tags: [
          { Key: 'lifeboat:managed', Value: 'true' },
          { Key: 'lifeboat:restored-from', Value: SOURCE },
          { Key: 'lifeboat:restore-point', Value: `backup:${FINAL}` },
          { Key: 'lifeboat:restore-name', Value: HOME },
          { Key: 'lifeboat:workflow-id', Value: FAILBACK.workflowId },
          { Key: 'lifeboat:run-id', Value: FAILBACK.runId },
          { Key: 'lifeboat:created-at', Value: owner.createdAt },
        ],
      },
    ]);
    assert.equal(rdsDr.calls().length, 0, 'the DR region is not involved');
    assert.equal(restored.instanceId, HOME);
    assert.equal(restored.status, 'creating');
  });

  it('a retried failback restore adopts its own instance and refuses one another run made', async () => {
    const tags = (run: string) => [
      { Key: 'lifeboat:managed', Value: 'true' },
      { Key: 'lifeboat:restored-from', Value: SOURCE },
      { Key: 'lifeboat:restore-point', Value: `backup:${FINAL}` },
      { Key: 'lifeboat:workflow-id', Value: FAILBACK.workflowId },
      { Key: 'lifeboat:run-id', Value: run },
      { Key: 'lifeboat:created-at', Value: owner.createdAt },
    ];
    const request = { destinationId: HOME, owner, finalWal: finalWal({ engine: 'rds', backupId: FINAL, location: REGION }), reprotection };
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [copyOf(FINAL)] });
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).rejects(new DBInstanceAlreadyExistsFault({ message: 'DB instance already exists', $metadata: meta }));
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: HOME }).resolvesOnce({ DBInstances: [instance(HOME, { DBInstanceStatus: 'creating', TagList: tags(FAILBACK.runId) })] }).resolves({ DBInstances: [instance(HOME, { TagList: tags('0193c0c0-1111-7222-8333-444455556666') })] });
    assert.equal((await engine().restoreForFailback(request)).instanceId, HOME);
    await failure(engine().restoreForFailback(request), 'INSTANCE_OWNED_ELSEWHERE');
  });

  it('refuses a failback restore without a final snapshot, from one outside the primary region, or over the source', async () => {
    const missing = await failure(engine().restoreForFailback({ destinationId: HOME, owner, finalWal: finalWal(undefined), reprotection }), 'FINAL_SNAPSHOT_MISSING');
    assert.equal(missing.message, `The final state of ${FAILED_OVER} names no snapshot, and RDS fails back only from one; take it with shipFinalWal after the fence and restore from what that returns.`);
    const away = await failure(engine().restoreForFailback({ destinationId: HOME, owner, finalWal: finalWal({ engine: 'rds', backupId: FINAL, location: DR_REGION }), reprotection }), 'INVALID_BACKUP_HANDLE');
    assert.equal(away.message, `The final snapshot ${FINAL} lives in ${DR_REGION}, but a failback restores in ${REGION}; restore from the copy there that shipFinalWal returned.`);
    await failure(engine().restoreForFailback({ destinationId: SOURCE, owner, finalWal: finalWal({ engine: 'rds', backupId: FINAL, location: REGION }), reprotection }), 'RESTORE_OVER_SOURCE');
    assert.equal(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand).length, 0);
  });

  // ---- retire

  it('retires the DR primary its failover made: deletion protection lifeboat turned on is turned off, a final snapshot kept', async () => {
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver()] });
    rds.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: `DBInstance ${FAILED_OVER} not found.`, $metadata: { ...meta, httpStatusCode: 404 } }));
    rdsDr.on(ModifyDBInstanceCommand).resolves({ DBInstance: failedOver({ DeletionProtection: false }) });
    rdsDr.on(DeleteDBInstanceCommand).resolves({ DBInstance: failedOver({ DBInstanceStatus: 'deleting', DeletionProtection: false }) });
    const snapshotId = finalSnapshotId(FAILED_OVER, FAILBACK.runId);
    assert.equal(await engine().retireFailedOverInstance(FAILED_OVER, FAILOVER_RUN, FAILBACK), `${FAILED_OVER} in ${DR_REGION} is being deleted (DeleteDBInstance); its final snapshot ${snapshotId} is kept`);
    assert.deepEqual(rdsDr.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input), [{ DBInstanceIdentifier: FAILED_OVER, DeletionProtection: false, ApplyImmediately: true }]);
    assert.deepEqual(rdsDr.commandCalls(DeleteDBInstanceCommand).map((c) => c.args[0].input), [
      { DBInstanceIdentifier: FAILED_OVER, SkipFinalSnapshot: false, FinalDBSnapshotIdentifier: snapshotId, DeleteAutomatedBackups: false },
    ]);
  });

  it('retiring what is gone or already deleting is success, and sends no delete', async () => {
    rds.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: 'not found', $metadata: { ...meta, httpStatusCode: 404 } }));
    rdsDr.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: 'not found', $metadata: { ...meta, httpStatusCode: 404 } }));
    assert.equal(await engine().retireFailedOverInstance(FAILED_OVER, FAILOVER_RUN, FAILBACK), `${FAILED_OVER} no longer exists; nothing to retire`);
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver({ DBInstanceStatus: 'deleting' })] });
    assert.equal(await engine().retireFailedOverInstance(FAILED_OVER, FAILOVER_RUN, FAILBACK), `${FAILED_OVER} in ${DR_REGION} is already being deleted`);
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver({ DeletionProtection: false })] });
    rdsDr.on(DeleteDBInstanceCommand).rejects(new DBInstanceNotFoundFault({ message: 'not found', $metadata: { ...meta, httpStatusCode: 404 } }));
    assert.equal(await engine().retireFailedOverInstance(FAILED_OVER, FAILOVER_RUN, FAILBACK), `${FAILED_OVER} no longer exists; nothing to retire`);
    assert.equal(rdsDr.commandCalls(ModifyDBInstanceCommand).length, 0);
  });

  it('refuses to retire the source, another run\'s instance, one lifeboat did not make, or one an operator protected', async () => {
    rds.on(DescribeDBInstancesCommand).rejects(new DBInstanceNotFoundFault({ message: 'not found', $metadata: { ...meta, httpStatusCode: 404 } }));
    const src = await failure(engine().retireFailedOverInstance(SOURCE, FAILOVER_RUN, FAILBACK), 'RETIRE_SOURCE_REFUSED');
    assert.equal(src.message, `Refusing to retire ${SOURCE}: it is the protected source instance, and a failback retires only the instance its failover restored; check which instance the failback was asked to retire.`);

    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver()] });
    const otherRun = { workflowId: 'failover-orders-INC-70', runId: '0193a0a0-0000-7000-8000-000000000000' };
    const notOwner = await failure(engine().retireFailedOverInstance(FAILED_OVER, otherRun, FAILBACK), 'NOT_OWNER');
    assert.equal(
      notOwner.message,
      `Refusing to retire ${FAILED_OVER} in ${DR_REGION}: it belongs to workflow ${FAILOVER_RUN.workflowId} (run ${FAILOVER_RUN.runId}, restore point latest, created 2026-11-28T03:12:09.000Z), not to the failover workflow ${otherRun.workflowId} run ${otherRun.runId}; check which failover this failback undoes.`,
    );

    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [failedOver({ TagList: [{ Key: 'team', Value: 'payments' }] })] });
    await failure(engine().retireFailedOverInstance(FAILED_OVER, FAILOVER_RUN, FAILBACK), 'NOT_MANAGED_BY_LIFEBOAT');

    const byOperator = failedOver();
    byOperator.TagList = byOperator.TagList!.filter((t) => t.Key !== 'lifeboat:deletion-protected-by');
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [byOperator] });
    const protectedByHand = await failure(engine().retireFailedOverInstance(FAILED_OVER, FAILOVER_RUN, FAILBACK), 'DELETION_PROTECTED');
    assert.equal(protectedByHand.message, `Refusing to retire ${FAILED_OVER} in ${DR_REGION}: its deletion protection was turned on by someone other than lifeboat; turn it off by hand if the instance really should go, then retry.`);
    assert.equal(rdsDr.commandCalls(ModifyDBInstanceCommand).length + rdsDr.commandCalls(DeleteDBInstanceCommand).length, 0);
  });
});
