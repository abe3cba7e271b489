/**
 * failback of an RDS target at the AWS SDK boundary: RDSClient (every client the worker's ports
 * make, in both regions) is mocked with aws-sdk-client-mock as one small stateful RDS account,
 * answering per region as RDS does: the DR primary a failover made, its security groups, tags,
 * reboots, snapshots and cross-region copies, the new instance creating -> backing-up ->
 * available, deletions. The workflow, worker, Temporal, catalog, evidence buckets, PowerDNS and
 * the connection through the name are real: the new instance's endpoint is the local primary.
 * Approved, the commands go out in the order a failback must send them; when the restore in the
 * primary region fails, the DR primary is put back into its security groups and the report says
 * failed. Nothing asserts on how long anything took.
 */
import assert from 'node:assert/strict';
import {
  AddTagsToResourceCommand,
  CopyDBSnapshotCommand,
  CreateDBSnapshotCommand,
  DBInstanceNotFoundFault,
  DBSnapshotNotFoundFault,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  InstanceQuotaExceededFault,
  ModifyDBInstanceCommand,
  RDSClient,
  RebootDBInstanceCommand,
  RemoveTagsFromResourceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  StartDBInstanceAutomatedBackupsReplicationCommand,
  type DBInstance,
  type DBSnapshot,
  type Tag,
} from '@aws-sdk/client-rds';
import { WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig } from '../src/config';
import { FailbackInput, FailbackReport } from '../src/domain/failback';
import { finalSnapshotId } from '../src/engines/rds';
import { localDnsRouter } from '../src/stack/powerdns';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { failbackInstanceName } from '../src/workflows/failback';
import { ACCOUNT, DR_KMS, DR_REGION, errorMeta as meta, PRIMARY_KMS, REGION, SOURCE } from './helpers/aws-fixtures';
import { approveGate, FAILOVER_TIMINGS, REQUESTER } from './helpers/failover';
import { uniqueId } from './helpers/pitr';
import { derivedConfig } from './helpers/scratch';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const APP_SG = 'sg-0a1b2c3d4e5f60718';
const FENCE_SG = 'sg-0f9e8d7c6b5a49382';
const RESTORE_STEP = 'restore-orders-db';
const DNS_NAME = 'db.orders.lifeboat.test';

/** Every RDS call a failback makes; anything else reaches no mock and fails the test. */
const ANSWERED = [
  AddTagsToResourceCommand,
  CopyDBSnapshotCommand,
  CreateDBSnapshotCommand,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBInstanceCommand,
  RebootDBInstanceCommand,
  RemoveTagsFromResourceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  StartDBInstanceAutomatedBackupsReplicationCommand,
] as const;

type Region = 'primary' | 'dr';
const tagOf = (instance: DBInstance, key: string) => instance.TagList?.find((t) => t.Key === key)?.Value;
const regionName = (r: Region) => (r === 'primary' ? REGION : DR_REGION);

/**
 * One RDS account in two regions, as far as a failback touches it. Instances and snapshots change
 * state the way RDS reports them: a modify is applied by the next describe, a reboot is seen once,
 * a snapshot or copy is available when next described, a restored instance is creating, then
 * backing-up, then available. Every command is logged with its region, in the order sent.
 */
class FakeRds {
  readonly instances = new Map<string, DBInstance & { pending?: string[] }>();
  readonly snapshots = new Map<string, DBSnapshot & { described?: number }>();
  readonly sent: Array<{ region: Region; command: string; input: Record<string, unknown> }> = [];
  restoreFails = false;

  private key = (region: Region, id: string) => `${region}/${id}`;

  add(region: Region, instance: DBInstance): void {
    this.instances.set(this.key(region, instance.DBInstanceIdentifier!), instance);
  }

  instance(region: Region, id: string): DBInstance | undefined {
    return this.instances.get(this.key(region, id));
  }

  byArn(arn: string): DBInstance {
    const found = [...this.instances.values()].find((i) => i.DBInstanceArn === arn);
    if (!found) throw new DBInstanceNotFoundFault({ message: `DBInstance ${arn} not found.`, $metadata: { ...meta, httpStatusCode: 404 } });
    return found;
  }

  /** What DescribeDBInstances answers now; a pending state is seen once, then the next. */
  private view(instance: DBInstance & { pending?: string[] }): DBInstance {
    if (instance.pending?.length) instance.DBInstanceStatus = instance.pending.shift();
    const { pending: _pending, ...shown } = instance;
    return structuredClone(shown);
  }

  private notFound(id: string): never {
    throw new DBInstanceNotFoundFault({ message: `DBInstance ${id} not found.`, $metadata: { ...meta, httpStatusCode: 404 } });
  }

  handle(region: Region, command: string, input: Record<string, unknown>): unknown {
    if (!command.startsWith('Describe')) this.sent.push({ region, command, input });
    const id = input.DBInstanceIdentifier as string | undefined;
    switch (command) {
      case 'DescribeDBInstances': {
        if (!id) return { DBInstances: [...this.instances.entries()].filter(([k]) => k.startsWith(`${region}/`)).map(([, i]) => this.view(i)) };
        const found = this.instances.get(this.key(region, id));
        return found ? { DBInstances: [this.view(found)] } : this.notFound(id);
      }
      case 'ModifyDBInstance': {
        const found = this.instances.get(this.key(region, id!)) ?? this.notFound(id!);
        if (input.VpcSecurityGroupIds) found.VpcSecurityGroups = (input.VpcSecurityGroupIds as string[]).map((g) => ({ VpcSecurityGroupId: g, Status: 'active' }));
        if (input.BackupRetentionPeriod !== undefined) found.BackupRetentionPeriod = input.BackupRetentionPeriod as number;
        if (input.DeletionProtection !== undefined) found.DeletionProtection = input.DeletionProtection as boolean;
        return { DBInstance: { ...structuredClone(found), DBInstanceStatus: 'modifying' } };
      }
      case 'AddTagsToResource': {
        const found = this.byArn(input.ResourceName as string);
        const tags = input.Tags as Tag[];
        found.TagList = [...(found.TagList ?? []).filter((t) => !tags.some((n) => n.Key === t.Key)), ...tags];
        return {};
      }
      case 'RemoveTagsFromResource': {
        const found = this.byArn(input.ResourceName as string);
        found.TagList = (found.TagList ?? []).filter((t) => !(input.TagKeys as string[]).includes(t.Key!));
        return {};
      }
      case 'RebootDBInstance': {
        const found = this.instances.get(this.key(region, id!)) ?? this.notFound(id!);
        found.pending = ['rebooting', 'available'];
        return { DBInstance: { ...structuredClone(found), DBInstanceStatus: 'rebooting' } };
      }
      case 'StartDBInstanceAutomatedBackupsReplication': {
        const source = this.byArn(input.SourceDBInstanceArn as string);
        source.DBInstanceAutomatedBackupsReplications = [{ DBInstanceAutomatedBackupsArn: `arn:aws:rds:${REGION}:${ACCOUNT}:auto-backup:ab-${source.DbiResourceId!.slice(3).toLowerCase()}` }];
        return { DBInstanceAutomatedBackup: { DBInstanceArn: source.DBInstanceArn, DbiResourceId: source.DbiResourceId, Region: DR_REGION, Status: 'pending', KmsKeyId: input.KmsKeyId as string } };
      }
      case 'CreateDBSnapshot': {
        const of = this.instances.get(this.key(region, id!)) ?? this.notFound(id!);
        const snapshotId = input.DBSnapshotIdentifier as string;
        const snapshot: DBSnapshot = {
          DBSnapshotIdentifier: snapshotId,
          DBInstanceIdentifier: id,
          SnapshotCreateTime: new Date(),
          Engine: 'postgres',
          EngineVersion: '16.3',
          Status: 'creating',
          Encrypted: true,
          KmsKeyId: of.KmsKeyId,
          SnapshotType: 'manual',
          DBSnapshotArn: `arn:aws:rds:${regionName(region)}:${ACCOUNT}:snapshot:${snapshotId}`,
          TagList: input.Tags as Tag[],
        };
        this.snapshots.set(this.key(region, snapshotId), snapshot);
        return { DBSnapshot: structuredClone(snapshot) };
      }
      case 'CopyDBSnapshot': {
        const sourceArn = input.SourceDBSnapshotIdentifier as string;
        const original = [...this.snapshots.values()].find((s) => s.DBSnapshotArn === sourceArn)!;
        const copyId = input.TargetDBSnapshotIdentifier as string;
        const copy: DBSnapshot = {
          ...structuredClone(original),
          DBSnapshotIdentifier: copyId,
          Status: 'pending',
          KmsKeyId: input.KmsKeyId as string,
          SourceDBSnapshotIdentifier: sourceArn,
          SourceRegion: DR_REGION,
          OriginalSnapshotCreateTime: original.SnapshotCreateTime,
          DBSnapshotArn: `arn:aws:rds:${regionName(region)}:${ACCOUNT}:snapshot:${copyId}`,
        };
        this.snapshots.set(this.key(region, copyId), copy);
        return { DBSnapshot: structuredClone(copy) };
      }
      case 'DescribeDBSnapshots': {
        const snapshotId = input.DBSnapshotIdentifier as string;
        const found = this.snapshots.get(this.key(region, snapshotId));
        if (!found) throw new DBSnapshotNotFoundFault({ message: `DBSnapshot ${snapshotId} not found.`, $metadata: { ...meta, httpStatusCode: 404 } });
        found.Status = 'available';
        found.PercentProgress = 100;
        return { DBSnapshots: [structuredClone(found)] };
      }
      case 'RestoreDBInstanceFromDBSnapshot': {
        if (this.restoreFails) {
          // A failure no retry fixes: the workflow sees it once.
          throw new InstanceQuotaExceededFault({ message: 'The request cannot be processed because it would exceed the maximum number of DB instances allowed for this account.', $metadata: meta });
        }
        const restored = newInstance(region, id!, input.Tags as Tag[]);
        this.instances.set(this.key(region, id!), { ...restored, pending: ['creating', 'backing-up', 'available'] });
        return { DBInstance: { ...structuredClone(restored), Endpoint: undefined } };
      }
      case 'DeleteDBInstance': {
        const found = this.instances.get(this.key(region, id!)) ?? this.notFound(id!);
        found.pending = [];
        found.DBInstanceStatus = 'deleting';
        return { DBInstance: structuredClone(found) };
      }
      default:
        throw new Error(`the fake RDS does not answer ${command}`);
    }
  }
}

/** The endpoint a restored instance gets: the stack's primary, so the connection through the name is real. */
let localEndpoint: { host: string; port: number };

function newInstance(region: Region, id: string, tags: Tag[]): DBInstance {
  return {
    DBInstanceIdentifier: id,
    DBInstanceClass: 'db.r6g.large',
    Engine: 'postgres',
    EngineVersion: '16.3',
    DBInstanceStatus: 'creating',
    Endpoint: { Address: localEndpoint.host, Port: localEndpoint.port, HostedZoneId: 'Z2R2ITUGPM61AM' },
    BackupRetentionPeriod: 1,
    StorageEncrypted: true,
    KmsKeyId: PRIMARY_KMS,
    DbiResourceId: 'db-N4PQ7RS2TUV5WXY8ZAB3CDE6FG',
    DBInstanceArn: `arn:aws:rds:${regionName(region)}:${ACCOUNT}:db:${id}`,
    VpcSecurityGroups: [{ VpcSecurityGroupId: APP_SG, Status: 'active' }],
    DeletionProtection: false,
    TagList: tags,
  };
}

describe('failback of an RDS target (mocked RDSClient in both regions, real worker, real DNS)', function () {
  this.timeout(600000);
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let rds: AwsClientStub<RDSClient>;
  let config: LifeboatConfig;
  let ports: Ports;
  let fake: FakeRds;
  /** Where the DR primary listens: an address PowerDNS can serve; nothing connects to a fenced instance. */
  let drEndpoint: { host: string; port: number };
  const workflowIds: string[] = [];

  before(async function () {
    stack = await useStack();
    env = await useTemporal();
    const s = stack.ctx.settings;
    localEndpoint = { host: s.host, port: s.postgres.primaryPort };
    drEndpoint = { host: s.host, port: Number(process.env.LIFEBOAT_DRILL_PORT_TO ?? s.postgres.primaryPort + 1) };
    // The stack's config with an RDS target that has a name, and a recovery plan that fails it
    // over and moves that name (no application check: the sample app reads the pgBackRest target).
    config = derivedConfig((doc) => {
      doc.targets.databases.push({
        name: 'orders',
        environment: 'production',
        engine: 'rds',
        instanceId: SOURCE,
        region: REGION,
        drRegion: DR_REGION,
        drKmsKeyId: DR_KMS,
        primaryKmsKeyId: PRIMARY_KMS,
        database: 'postgres',
        user: 'lifeboat',
        // The mocked instance's endpoint is the stack's Postgres, which serves the local CA's certificate.
        sslRootCert: '{dataDir}/tls/ca.crt',
        criticalTables: ['ledger'],
        cutover: { dnsName: DNS_NAME, router: 'local-dns', ttl: '30s' },
        restore: {
          primary: { dbInstanceClass: 'db.r6g.large', dbSubnetGroupName: 'orders-db-subnets', vpcSecurityGroupIds: [APP_SG] },
          dr: { dbInstanceClass: 'db.r6g.large', dbSubnetGroupName: 'orders-db-subnets-dr', fenceSecurityGroupIds: [FENCE_SG] },
        },
      });
      doc.failover = {
        steps: [
          { name: RESTORE_STEP, kind: 'restore-database', target: 'orders' },
          { name: 'move-orders-db-name', kind: 'move-name', target: 'orders', after: [RESTORE_STEP] },
        ],
      };
    });
    ports = createPorts(config, { log: () => undefined });
    rds = mockClient(RDSClient);
  });

  after(async function () {
    rds?.restore();
    if (stack) await localDnsRouter(stack.ctx.settings).removeName(DNS_NAME).catch(() => undefined);
    if (ports) {
      // The suites after this one find no 'orders' source, name change or fence of this file's runs.
      for (const table of ['target_sources', 'traffic_changes', 'source_fences']) {
        await ports.catalog.query(`DELETE FROM ${table} WHERE workflow_id = ANY($1)`, [workflowIds]).catch(() => undefined);
      }
      await ports.catalog.query('DELETE FROM failbacks WHERE workflow_id = ANY($1) OR failover_id = ANY($1)', [workflowIds]).catch(() => undefined);
      await ports.catalog.query('DELETE FROM failovers WHERE workflow_id = ANY($1)', [workflowIds]).catch(() => undefined);
      await ports.close();
    }
  });

  /**
   * What a drFailover left: its catalog row as recordFailoverReport writes it, the DR primary its
   * child restored (owner tags, served traffic, protected as the new primary) and the name on it.
   */
  async function afterAFailover(): Promise<{ failoverId: string; drInstanceId: string; failoverRun: { workflowId: string; runId: string } }> {
    const failoverId = uniqueId('test-failback-rds-failover');
    workflowIds.push(failoverId);
    const failoverRun = { workflowId: `${failoverId}.${RESTORE_STEP}`, runId: '0193b1d4-7e2a-7f10-a3c4-5d6e7f8a9b0c' };
    const drInstanceId = `orders-prod-dr-${failoverId.slice(-8).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
    const declaredAt = new Date(Date.now() - 3 * 3600 * 1000).toISOString();
    const finishedAt = new Date(Date.now() - 2 * 3600 * 1000).toISOString();
    const report = {
      workflowId: failoverId,
      mode: 'failover',
      outcome: 'failed-over',
      requestedBy: REQUESTER,
      reason: 'test: us-east-1 lost',
      declaredAt,
      finishedAt,
      rto: { seconds: 1740 },
      steps: [
        { name: RESTORE_STEP, kind: 'restore-database', state: 'done', detail: `${drInstanceId} at ${drEndpoint.host}:${drEndpoint.port}` },
        { name: 'move-orders-db-name', kind: 'move-name', state: 'done', detail: `${DNS_NAME} -> ${drEndpoint.host}:${drEndpoint.port}` },
      ],
      decisions: [],
      notes: [],
      cleanup: [],
    };
    await ports.catalog.query(
      `INSERT INTO failovers (workflow_id, run_id, mode, outcome, requested_by, reason, incident_id, rto_seconds, declared_at, finished_at, report)
       VALUES ($1, $2, 'failover', 'failed-over', $3, $4, NULL, $5, $6, $7, $8)`,
      [failoverId, '0193b1d4-0000-7f10-a3c4-5d6e7f8a9b0c', REQUESTER, report.reason, report.rto.seconds, declaredAt, finishedAt, JSON.stringify(report)],
    );

    fake = new FakeRds();
    fake.add('dr', {
      DBInstanceIdentifier: drInstanceId,
      DBInstanceClass: 'db.r6g.large',
      Engine: 'postgres',
      EngineVersion: '16.3',
      DBInstanceStatus: 'available',
      Endpoint: { Address: drEndpoint.host, Port: drEndpoint.port, HostedZoneId: 'Z1PVIF0B656C1W' },
      BackupRetentionPeriod: 7,
      StorageEncrypted: true,
      KmsKeyId: DR_KMS,
      DbiResourceId: 'db-H6JKL2MN3OPQ4RST5UVW6XYZ7A',
      DBInstanceArn: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:db:${drInstanceId}`,
      VpcSecurityGroups: [{ VpcSecurityGroupId: APP_SG, Status: 'active' }],
      DeletionProtection: true,
      TagList: [
        { Key: 'lifeboat:managed', Value: 'true' },
        { Key: 'lifeboat:restored-from', Value: SOURCE },
        { Key: 'lifeboat:restore-point', Value: 'latest' },
        { Key: 'lifeboat:restore-name', Value: drInstanceId },
        { Key: 'lifeboat:workflow-id', Value: failoverRun.workflowId },
        { Key: 'lifeboat:run-id', Value: failoverRun.runId },
        { Key: 'lifeboat:created-at', Value: declaredAt },
        { Key: 'lifeboat:served-traffic', Value: finishedAt },
        { Key: 'lifeboat:deletion-protected-by', Value: `${failoverRun.workflowId}/${failoverRun.runId}` },
      ],
    });
    rds.reset();
    for (const command of ANSWERED) {
      // One fake behind every command: the calls differ in input, the answers come from the same account.
      rds.on(command as unknown as typeof DescribeDBInstancesCommand).callsFake(async (input: Record<string, unknown>, getClient: () => RDSClient) => {
        const region = (await getClient().config.region()) === DR_REGION ? 'dr' : 'primary';
        return fake.handle(region, command.name.replace(/Command$/, ''), input);
      });
    }
    await localDnsRouter(stack.ctx.settings).pointAt(DNS_NAME, drEndpoint, 30);
    return { failoverId, drInstanceId, failoverRun };
  }

  async function runFailback(failoverId: string, onGate: (handle: WorkflowHandle) => Promise<void>) {
    const workflowId = uniqueId('test-failback-rds');
    workflowIds.push(workflowId);
    const taskQueue = uniqueTaskQueue('failback-rds');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(async () => {
      const handle = await env.client.workflow.start('failback', {
        taskQueue,
        workflowId,
        args: [{ failoverId, requestedBy: REQUESTER, reason: 'test: the primary region is back', timings: FAILOVER_TIMINGS } satisfies FailbackInput],
      });
      const approving = onGate(handle);
      try {
        return { workflowId, runId: (await handle.describe()).runId, result: (await handle.result()) as FailbackReport, error: undefined as unknown };
      } catch (error) {
        return { workflowId, runId: (await handle.describe()).runId, result: undefined, error };
      } finally {
        await approving.catch(() => undefined);
      }
    });
  }

  /** The commands that change something, in the order sent, as `region Command`. */
  const order = () => fake.sent.map((c) => `${c.region} ${c.command}`);

  it('approved: re-protected, fenced, final snapshot copied home, restored there, the name moved, the DR primary retired with a final snapshot', async () => {
    const { failoverId, drInstanceId, failoverRun } = await afterAFailover();
    const { workflowId, runId, result, error } = await runFailback(failoverId, async (handle) => {
      await approveGate(handle, 'failback');
      await approveGate(handle, 'retire');
    });
    assert.equal(error, undefined, String(error));
    assert.ok(result);
    assert.equal(result.outcome, 'failed-back', result.failure);
    const home = failbackInstanceName(workflowId, 'orders');
    const reprotectId = `lifeboat-reprotect-${workflowId.toLowerCase()}`;
    const db = result.databases[0];
    const finalId = db.finalWal!.backup!.backupId;

    assert.deepEqual(order(), [
      // re-protect: automated backups replicated home, a snapshot copied home
      'primary StartDBInstanceAutomatedBackupsReplication',
      'dr CreateDBSnapshot',
      'primary CopyDBSnapshot',
      // fence: the run and the groups recorded, the fence groups, a reboot to end open sessions
      'dr AddTagsToResource',
      'dr ModifyDBInstance',
      'dr RebootDBInstance',
      // the final snapshot, copied home
      'dr CreateDBSnapshot',
      'primary CopyDBSnapshot',
      // the new instance in the primary region, marked as serving before the name moves to it
      'primary RestoreDBInstanceFromDBSnapshot',
      'primary AddTagsToResource',
      // protected as the new primary
      'primary AddTagsToResource',
      'primary ModifyDBInstance',
      'primary CreateDBSnapshot',
      // retired: lifeboat's deletion protection off, deleted with a final snapshot
      'dr ModifyDBInstance',
      'dr DeleteDBInstance',
    ]);
    const sent = (region: Region, command: string) => fake.sent.filter((c) => c.region === region && c.command === command).map((c) => c.input);
    assert.deepEqual(sent('primary', 'StartDBInstanceAutomatedBackupsReplication'), [{ SourceDBInstanceArn: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:db:${drInstanceId}`, BackupRetentionPeriod: 7, KmsKeyId: PRIMARY_KMS }]);
    assert.deepEqual(sent('dr', 'CreateDBSnapshot').map((i) => [i.DBSnapshotIdentifier, i.DBInstanceIdentifier]), [
      [reprotectId, drInstanceId],
      [finalId, drInstanceId],
    ]);
    assert.deepEqual(sent('primary', 'CopyDBSnapshot'), [
      { SourceDBSnapshotIdentifier: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:snapshot:${reprotectId}`, TargetDBSnapshotIdentifier: reprotectId, KmsKeyId: PRIMARY_KMS, CopyTags: true },
      { SourceDBSnapshotIdentifier: `arn:aws:rds:${DR_REGION}:${ACCOUNT}:snapshot:${finalId}`, TargetDBSnapshotIdentifier: finalId, KmsKeyId: PRIMARY_KMS, CopyTags: true },
    ]);
    const [fenceModify, retireModify] = sent('dr', 'ModifyDBInstance');
    assert.deepEqual(fenceModify, { DBInstanceIdentifier: drInstanceId, VpcSecurityGroupIds: [FENCE_SG], ApplyImmediately: true });
    assert.deepEqual(sent('dr', 'RebootDBInstance'), [{ DBInstanceIdentifier: drInstanceId }]);
    const [restore] = sent('primary', 'RestoreDBInstanceFromDBSnapshot');
    assert.equal(restore.DBInstanceIdentifier, home);
    assert.equal(restore.DBSnapshotIdentifier, finalId);
    assert.deepEqual(restore.VpcSecurityGroupIds, [APP_SG]);
    const tags = Object.fromEntries((restore.Tags as Tag[]).map((t) => [t.Key, t.Value]));
    assert.equal(tags['lifeboat:workflow-id'], workflowId);
    assert.equal(tags['lifeboat:run-id'], runId);
    assert.equal(tags['lifeboat:restore-point'], `backup:${finalId}`);
    assert.deepEqual(retireModify, { DBInstanceIdentifier: drInstanceId, DeletionProtection: false, ApplyImmediately: true });
    assert.deepEqual(sent('dr', 'DeleteDBInstance'), [{ DBInstanceIdentifier: drInstanceId, SkipFinalSnapshot: false, FinalDBSnapshotIdentifier: finalSnapshotId(drInstanceId, runId), DeleteAutomatedBackups: false }]);
    assert.equal(fake.sent.filter((c) => c.command === 'RemoveTagsFromResource').length, 0, 'the fence is never lifted on success');

    // The report: the proof rests on the final snapshot, the name moved to the new instance and proven through DNS.
    assert.equal(db.proof?.basis, 'final-snapshot');
    assert.equal(db.proof?.ok, true);
    assert.equal(db.fence?.method, 'isolated');
    assert.equal(db.restoredInstanceId, home);
    assert.deepEqual(db.restoredEndpoint, localEndpoint);
    assert.deepEqual(
      db.names.map((n) => [n.name, n.state, n.from, n.to]),
      [[DNS_NAME, 'moved', `${drEndpoint.host}:${drEndpoint.port}`, `${localEndpoint.host}:${localEndpoint.port}`]],
    );
    assert.match(db.names[0].detail, /reaches the restored instance$/);
    const served = await localDnsRouter(stack.ctx.settings).currentTarget(DNS_NAME);
    assert.deepEqual({ host: served?.host, port: served?.port }, localEndpoint);
    assert.ok(db.protection?.includes('deletion protection on'), JSON.stringify(db.protection));
    assert.ok(db.protection?.some((p) => /^first full backup lifeboat-new-primary-\S+ complete$/.test(p)), JSON.stringify(db.protection));
    assert.match(db.retired ?? '', new RegExp(`${drInstanceId}.*DeleteDBInstance`));
    assert.deepEqual(result.decisions.map((d) => [d.gate, d.decision]), [['failback', 'approved'], ['retire', 'approved']]);
    assert.equal(db.drInstanceId, drInstanceId);
    // The fence, the final snapshot and the retirement acted on the instance the failover's child made, and on nothing else.
    assert.deepEqual(new Set(fake.sent.filter((c) => c.region === 'dr' && typeof c.input.DBInstanceIdentifier === 'string').map((c) => c.input.DBInstanceIdentifier)), new Set([drInstanceId]));
    assert.equal(tagOf(fake.instance('dr', drInstanceId)!, 'lifeboat:workflow-id'), failoverRun.workflowId);
    const [row] = await ports.catalog.query<{ outcome: string; report: FailbackReport }>('SELECT outcome, report FROM failbacks WHERE workflow_id = $1', [workflowId]);
    assert.equal(row.outcome, 'failed-back');
    assert.equal(row.report.databases[0].proof?.basis, 'final-snapshot');
  });

  it('the restore in the primary region fails: the DR primary is put back into its security groups, nothing is moved, the report says failed', async () => {
    const { failoverId, drInstanceId } = await afterAFailover();
    fake.restoreFails = true;
    const { workflowId, error } = await runFailback(failoverId, (handle) => approveGate(handle, 'failback'));
    assert.ok(error instanceof WorkflowFailedError, String(error));
    assert.ok(error.cause instanceof ApplicationFailure, String(error.cause));
    assert.equal(error.cause.type, 'FAILBACK_FAILED');
    assert.match(error.cause.message, /InstanceQuotaExceededFault/);

    assert.deepEqual(order(), [
      'primary StartDBInstanceAutomatedBackupsReplication',
      'dr CreateDBSnapshot',
      'primary CopyDBSnapshot',
      'dr AddTagsToResource',
      'dr ModifyDBInstance',
      'dr RebootDBInstance',
      'dr CreateDBSnapshot',
      'primary CopyDBSnapshot',
      'primary RestoreDBInstanceFromDBSnapshot',
      // unfenced: its own groups back, the fence tags gone
      'dr ModifyDBInstance',
      'dr RemoveTagsFromResource',
    ]);
    const modifies = fake.sent.filter((c) => c.region === 'dr' && c.command === 'ModifyDBInstance').map((c) => c.input);
    assert.deepEqual(modifies[1], { DBInstanceIdentifier: drInstanceId, VpcSecurityGroupIds: [APP_SG], ApplyImmediately: true });
    assert.deepEqual(fake.instance('dr', drInstanceId)?.VpcSecurityGroups, [{ VpcSecurityGroupId: APP_SG, Status: 'active' }]);
    assert.equal(fake.sent.filter((c) => c.command === 'DeleteDBInstance').length, 0);
    // The name still leads to the DR primary, which serves again.
    const served = await localDnsRouter(stack.ctx.settings).currentTarget(DNS_NAME);
    assert.deepEqual({ host: served?.host, port: served?.port }, drEndpoint);

    const [row] = await ports.catalog.query<{ outcome: string; report: FailbackReport }>('SELECT outcome, report FROM failbacks WHERE workflow_id = $1', [workflowId]);
    assert.equal(row.outcome, 'failed');
    assert.match(row.report.failure ?? '', /InstanceQuotaExceededFault/);
    assert.ok(row.report.cleanup.some((c) => c.startsWith(`${drInstanceId} is back in its security groups ${APP_SG}`)), JSON.stringify(row.report.cleanup));
    assert.equal(row.report.databases[0].names.length, 0);
  });
});
