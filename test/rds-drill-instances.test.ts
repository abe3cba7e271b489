/**
 * What the drill sweeper sees of an RDS target, at the SDK boundary: RdsEngine.listInstances
 * pages through DescribeDBInstances in both regions and keeps only the instances lifeboat restored
 * from this source (tagged managed and restored-from it), each with the owner run its tags record.
 */
import assert from 'node:assert/strict';
import { DescribeDBInstancesCommand, RDSClient, RDSServiceException, type DBInstance } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { LifeboatError } from '../src/domain/errors';
import { RDS_TAGS, RdsEngine } from '../src/engines/rds';
import { ACCOUNT, DR_KMS, DR_REGION, errorMeta, REGION, SOURCE } from './helpers/aws-fixtures';

function instance(id: string, region: string, tags: Record<string, string>): DBInstance {
  return {
    DBInstanceIdentifier: id,
    DBInstanceArn: `arn:aws:rds:${region}:${ACCOUNT}:db:${id}`,
    DBInstanceStatus: 'available',
    Engine: 'postgres',
    TagList: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  };
}

const owned = (workflowId: string, runId: string) => ({
  [RDS_TAGS.managed]: 'true',
  [RDS_TAGS.restoredFrom]: SOURCE,
  [RDS_TAGS.workflowId]: workflowId,
  [RDS_TAGS.runId]: runId,
  [RDS_TAGS.createdAt]: '2026-11-30T05:00:00.000Z',
  [RDS_TAGS.restorePoint]: 'backup:lb-backup-orders-prod-1',
});

describe('RdsEngine.listInstances (AWS SDK boundary)', () => {
  const primaryClient = new RDSClient({ region: REGION, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' } });
  const drClient = new RDSClient({ region: DR_REGION, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' } });
  const primary = mockClient(primaryClient);
  const dr = mockClient(drClient);
  const engine = () => new RdsEngine({ instanceId: SOURCE, region: REGION, drRegion: DR_REGION, drKmsKeyId: DR_KMS, clients: { primary: primaryClient, dr: drClient } });

  beforeEach(() => {
    primary.reset();
    dr.reset();
  });

  after(() => {
    primary.restore();
    dr.restore();
  });

  it('pages through both regions and keeps only what lifeboat restored from this source, with its owner run', async () => {
    primary
      .on(DescribeDBInstancesCommand, { Marker: undefined })
      .resolves({
        DBInstances: [
          instance(SOURCE, REGION, {}),
          instance('drill-orders-1', REGION, owned('drill-orders-1', 'run-1')),
          instance('someone-elses-db', REGION, { team: 'billing' }),
        ],
        Marker: 'page-2',
      })
      .on(DescribeDBInstancesCommand, { Marker: 'page-2' })
      .resolves({ DBInstances: [instance('drill-billing-1', REGION, { ...owned('drill-billing-1', 'run-9'), [RDS_TAGS.restoredFrom]: 'billing-prod' }), instance('restore-orders-2', REGION, owned('restore-orders-2', 'run-2'))] });
    dr.on(DescribeDBInstancesCommand).resolves({ DBInstances: [instance('drill-orders-dr-1', DR_REGION, { ...owned('drill-orders-dr-1', 'run-3'), [RDS_TAGS.servedTraffic]: '2026-11-30T06:00:00.000Z' })] });

    const found = await engine().listInstances();
    assert.deepEqual(
      found.map((i) => [i.instanceId, i.owner?.workflowId, i.owner?.runId, i.createdByLifeboat, i.servedTraffic ?? false]),
      [
        ['drill-orders-1', 'drill-orders-1', 'run-1', true, false],
        ['restore-orders-2', 'restore-orders-2', 'run-2', true, false],
        ['drill-orders-dr-1', 'drill-orders-dr-1', 'run-3', true, true],
      ],
    );
    assert.equal(primary.commandCalls(DescribeDBInstancesCommand).length, 2, 'both pages of the primary region');
    assert.equal(dr.commandCalls(DescribeDBInstancesCommand).length, 1);
  });

  it('turns a refused listing into a LifeboatError naming the call and the region', async () => {
    primary.on(DescribeDBInstancesCommand).rejects(new RDSServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { ...errorMeta, httpStatusCode: 403 }, message: 'not authorized to perform rds:DescribeDBInstances' }));
    let caught: unknown;
    await engine().listInstances().catch((err: unknown) => (caught = err));
    assert.ok(caught instanceof LifeboatError, String(caught));
    assert.match(caught.message, /DescribeDBInstances/);
    assert.match(caught.message, new RegExp(`listing the instances restored from ${SOURCE}`));
  });
});
