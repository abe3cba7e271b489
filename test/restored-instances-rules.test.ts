/**
 * The rules of restored instances' life (src/domain/restored-instances.ts): which restore reports
 * leave an instance standing, when the expiry notifies and when it removes, and the refusals of
 * the CLI; and the removal of an RDS instance at the SDK boundary (aws-sdk-client-mock): removed
 * only as the run its tags name, never one tagged as having served traffic.
 */
import assert from 'node:assert/strict';
import { DeleteDBInstanceCommand, DescribeDBInstancesCommand, DescribeDBSnapshotsCommand, DBInstanceNotFoundFault, RDSClient, type DBInstance } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { removeKeptInstanceWith } from '../src/activities/restored-instances';
import type { PitrRestoreReport } from '../src/domain/restore';
import { expiryVerdict, extensionProblem, keptInstanceOf, removalProblem, RestoredInstance } from '../src/domain/restored-instances';
import { RDS_TAGS, RdsEngine } from '../src/engines/rds';
import { ACCOUNT, DR_KMS, DR_REGION, errorMeta, REGION, SOURCE } from './helpers/aws-fixtures';

const report = (over: Partial<PitrRestoreReport>): PitrRestoreReport => ({
  workflowId: 'restore-app-1',
  outcome: 'restored',
  target: 'app',
  requestedBy: 'alice@example.com',
  reason: 'look at yesterday',
  restorePoint: '2026-11-30T10:00:00.000Z',
  destination: { instanceId: 'restore-app-1', endpoint: { host: '127.0.0.1', port: 21501 } },
  decisions: [],
  cleanup: [],
  ...over,
});

const kept = (over: Partial<RestoredInstance> = {}): RestoredInstance => ({
  instanceId: 'restore-app-1',
  kind: 'instance',
  details: {},
  target: 'app',
  engine: 'pgbackrest',
  madeBy: 'pitrRestore',
  owner: { workflowId: 'restore-app-1', runId: 'run-1' },
  restorePoint: '2026-11-30T10:00:00.000Z',
  restoredFrom: 'the backups and WAL of app',
  createdAt: '2026-11-30T11:00:00.000Z',
  expiresAt: '2026-12-07T11:00:00.000Z',
  servedTraffic: false,
  state: 'kept',
  ...over,
});

const DAY = 86_400_000;
const EXPIRES = Date.parse('2026-12-07T11:00:00.000Z');

describe('restored instances: which reports leave one standing', () => {
  it('a restored instance is kept, with its endpoint, not as having taken traffic', () => {
    assert.deepEqual(keptInstanceOf(report({})), { instanceId: 'restore-app-1', endpoint: { host: '127.0.0.1', port: 21501 }, servedTraffic: false });
  });

  it('a cut-over one is kept as having taken traffic', () => {
    const r = report({ outcome: 'restored-and-cut-over', cutover: { dnsName: 'db.app.', pointsAt: '127.0.0.1:21501', verifiedThroughDns: true } });
    assert.equal(keptInstanceOf(r)?.servedTraffic, true);
  });

  it('a failed restore whose compensation removed the instance leaves nothing; one kept by --keep or because it took traffic stays', () => {
    assert.equal(keptInstanceOf(report({ outcome: 'verification-failed', cleanup: ['removed restored instance restore-app-1'] })), undefined);
    assert.deepEqual(keptInstanceOf(report({ outcome: 'failed', cleanup: ['kept restore-app-1 as asked (--keep)'] }))?.servedTraffic, false);
    assert.deepEqual(keptInstanceOf(report({ outcome: 'failed', cleanup: ['kept restore-app-1: the name led clients to it, so lifeboat never removes it automatically'] }))?.servedTraffic, true);
    assert.equal(keptInstanceOf(report({ outcome: 'rejected', destination: undefined })), undefined);
  });
});

describe('restored instances: the expiry', () => {
  const notice = DAY;
  it('waits before the notice window, notifies inside it, removes only once expired and noticed', () => {
    assert.equal(expiryVerdict(kept(), EXPIRES - 2 * DAY, notice).action, 'wait');
    assert.equal(expiryVerdict(kept(), EXPIRES - DAY / 2, notice).action, 'notify');
    assert.equal(expiryVerdict(kept({ noticeSentAt: '2026-12-06T12:00:00.000Z' }), EXPIRES - DAY / 2, notice).action, 'wait');
    assert.equal(expiryVerdict(kept({ noticeSentAt: '2026-12-06T12:00:00.000Z' }), EXPIRES + 1000, notice).action, 'remove');
  });

  it('an expiry reached without a notice gets the notice first, never a removal in the same sweep', () => {
    assert.equal(expiryVerdict(kept(), EXPIRES + 5 * DAY, notice).action, 'notify');
  });

  it('never removes an instance that has taken traffic, however long expired', () => {
    const v = expiryVerdict(kept({ servedTraffic: true, noticeSentAt: '2026-12-06T12:00:00.000Z' }), EXPIRES + 30 * DAY, notice);
    assert.equal(v.action, 'keep');
    assert.match(v.reason, /has taken traffic/);
  });
});

describe('restored instances: refusals of extend and remove', () => {
  it('an unknown id, a removed instance, one that took traffic: one sentence each, saying what to do', () => {
    assert.equal(extensionProblem(undefined, 'nope'), 'there is no restored instance "nope" in the catalog: `lifeboat instances list` shows the ids.');
    assert.match(extensionProblem(kept({ state: 'removed', removedAt: '2026-12-08T00:00:00.000Z', removedBy: 'bob@example.com' }), 'restore-app-1')!, /^restore-app-1 was removed at 2026-12-08T00:00:00\.000Z by bob@example\.com, so there is nothing to extend: restore again/);
    assert.equal(extensionProblem(kept(), 'restore-app-1'), undefined);
    assert.match(removalProblem(kept({ servedTraffic: true }), 'restore-app-1')!, /has taken traffic, and lifeboat never removes an instance that has: point the name away from it .* then remove it by hand/);
    assert.match(removalProblem(kept({ state: 'removed' }), 'restore-app-1')!, /already removed/);
    assert.equal(removalProblem(kept(), 'restore-app-1'), undefined);
  });
});

describe('restored instances: removing an RDS instance (AWS SDK boundary)', () => {
  const primaryClient = new RDSClient({ region: REGION, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' } });
  const drClient = new RDSClient({ region: DR_REGION, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' } });
  const primary = mockClient(primaryClient);
  const dr = mockClient(drClient);
  const engine = () => new RdsEngine({ instanceId: SOURCE, region: REGION, drRegion: DR_REGION, drKmsKeyId: DR_KMS, clients: { primary: primaryClient, dr: drClient } });
  const ID = 'restore-orders-1';
  const owner = { workflowId: 'restore-orders-1', runId: '0b5f6c1e-run' };
  const rdsInstance = (tags: Record<string, string>): DBInstance => ({
    DBInstanceIdentifier: ID,
    DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${ID}`,
    DBInstanceStatus: 'available',
    Engine: 'postgres',
    Endpoint: { Address: `${ID}.c9akciq32.${REGION}.rds.amazonaws.com`, Port: 5432 },
    TagList: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  });
  const tags = (extra: Record<string, string> = {}, run = owner.runId) => ({
    [RDS_TAGS.managed]: 'true',
    [RDS_TAGS.restoredFrom]: SOURCE,
    [RDS_TAGS.workflowId]: owner.workflowId,
    [RDS_TAGS.runId]: run,
    [RDS_TAGS.createdAt]: '2026-11-30T05:00:00.000Z',
    [RDS_TAGS.restorePoint]: '2026-11-30T04:00:00.000Z',
    ...extra,
  });
  const notFound = () => new DBInstanceNotFoundFault({ message: `DBInstance ${ID} not found.`, $metadata: { ...errorMeta, httpStatusCode: 404 } });

  beforeEach(() => {
    primary.reset();
    dr.reset();
    dr.on(DescribeDBInstancesCommand).rejects(notFound());
  });
  after(() => {
    primary.restore();
    dr.restore();
  });

  it('removes it as the run the catalog names, with a final snapshot (its data is newer than any snapshot)', async () => {
    primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [rdsInstance(tags())] });
    primary.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [] });
    primary.on(DeleteDBInstanceCommand).resolves({ DBInstance: { ...rdsInstance(tags()), DBInstanceStatus: 'deleting' } });
    const removal = await removeKeptInstanceWith(engine(), { instanceId: ID, owner });
    assert.equal(removal.outcome, 'removed');
    const deletes = primary.commandCalls(DeleteDBInstanceCommand);
    assert.equal(deletes.length, 1);
    assert.equal(deletes[0].args[0].input.DBInstanceIdentifier, ID);
    assert.equal(deletes[0].args[0].input.SkipFinalSnapshot, false);
    assert.ok(deletes[0].args[0].input.FinalDBSnapshotIdentifier);
  });

  it('never deletes one tagged as having served traffic', async () => {
    primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [rdsInstance(tags({ [RDS_TAGS.servedTraffic]: '2026-11-30T06:00:00.000Z' }))] });
    const removal = await removeKeptInstanceWith(engine(), { instanceId: ID, owner });
    assert.equal(removal.outcome, 'refused');
    assert.equal(removal.servedTraffic, true);
    assert.equal(primary.commandCalls(DeleteDBInstanceCommand).length, 0);
  });

  it('never deletes one whose tags name another run than the catalog does, nor one not tagged as lifeboat\'s', async () => {
    primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [rdsInstance(tags({}, 'some-other-run'))] });
    const other = await removeKeptInstanceWith(engine(), { instanceId: ID, owner });
    assert.equal(other.outcome, 'refused');
    assert.match(other.detail, /names workflow restore-orders-1 run some-other-run/);
    primary.on(DescribeDBInstancesCommand).resolves({ DBInstances: [rdsInstance({ team: 'billing' })] });
    const foreign = await removeKeptInstanceWith(engine(), { instanceId: ID, owner });
    assert.equal(foreign.outcome, 'refused');
    assert.equal(primary.commandCalls(DeleteDBInstanceCommand).length, 0);
  });

  it('an instance already gone is success', async () => {
    primary.on(DescribeDBInstancesCommand).rejects(notFound());
    assert.deepEqual(await removeKeptInstanceWith(engine(), { instanceId: ID, owner }), { outcome: 'already-gone', detail: `${ID} was already gone` });
  });
});
