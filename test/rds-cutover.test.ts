/**
 * The RDS side of an undoable cutover, at the AWS SDK boundary: the source fenced by stopping it
 * (and started again on rollback), and the new primary protected (deletion protection, 7-day
 * automated backups, a first snapshot). Responses are shaped as RDS returns them.
 */
import assert from 'node:assert/strict';
import {
  AddTagsToResourceCommand,
  CreateDBSnapshotCommand,
  DBInstanceNotFoundFault,
  DescribeDBInstancesCommand,
  InvalidDBInstanceStateFault,
  ModifyDBInstanceCommand,
  RDSClient,
  RemoveTagsFromResourceCommand,
  StartDBInstanceCommand,
  StopDBInstanceCommand,
  type DBInstance,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { LifeboatError } from '../src/domain/errors';
import { RdsEngine } from '../src/engines/rds';
import { ACCOUNT, DR_REGION, REGION, SOURCE } from './helpers/aws-fixtures';

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
    rdsDr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [restored({ BackupRetentionPeriod: 35 })] });
    rdsDr.on(ModifyDBInstanceCommand).resolves({});
    rdsDr.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: { DBSnapshotIdentifier: 'x', Status: 'creating' } });
    const protection = await engine().protectAsNewPrimary(RESTORED, OWNER);
    assert.equal(rdsDr.commandCalls(ModifyDBInstanceCommand)[0].args[0].input.BackupRetentionPeriod, 35);
    assert.equal(rds.commandCalls(ModifyDBInstanceCommand).length, 0);
    assert.equal(protection.backup?.location, DR_REGION);
  });

  it('never protects (or changes) an instance lifeboat did not restore, nor the source itself', async () => {
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [instance(RESTORED, { TagList: [{ Key: 'team', Value: 'payments' }] })] });
    await failure(engine().protectAsNewPrimary(RESTORED, OWNER), 'NOT_MANAGED_BY_LIFEBOAT');
    await failure(engine().protectAsNewPrimary(SOURCE, OWNER), 'CUTOVER_TO_SOURCE_REFUSED');
    assert.equal(rds.commandCalls(ModifyDBInstanceCommand).length, 0);
  });
});
