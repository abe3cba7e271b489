/**
 * restoreDrill of an RDS target at the AWS SDK boundary: RDSClient is mocked with
 * aws-sdk-client-mock, answering as RDS does (the snapshot the catalog records, the restore from
 * it, the drill instance creating -> backing-up -> available, its deletion). The workflow,
 * worker, Temporal, catalog, evidence buckets and verification are real: the mocked instance's
 * endpoint is a real database on the local primary, made for this suite, which the verifier reads.
 */
import assert from 'node:assert/strict';
import {
  DBInstanceNotFoundFault,
  DBSnapshotNotFoundFault,
  DeleteDBInstanceCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  RestoreDBInstanceFromDBSnapshotCommand,
  RestoreDBInstanceToPointInTimeCommand,
  type DBInstance,
  type RestoreDBInstanceFromDBSnapshotCommandInput,
} from '@aws-sdk/client-rds';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig } from '../src/config';
import { drillInstanceName, RestoreDrillResult } from '../src/domain/drill';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { derivedConfig } from './helpers/scratch';
import { recordHistory, uniqueId, withDatabase } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';
import { ACCOUNT, DBI, DR_KMS, DR_REGION, errorMeta as meta, PRIMARY_KMS as KMS, REGION, SOURCE } from './helpers/aws-fixtures';

describe('restoreDrill of an RDS target (mocked RDSClient, real worker)', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let rds: AwsClientStub<RDSClient>;
  let ports: Ports;
  let config: LifeboatConfig;
  const database = `lbtest_drill_rds_${uniqueId('db').slice(3)}`;
  const snapshotId = `lifeboat-orders-${uniqueId('drill').slice(6)}`;
  const takenAt = new Date(Math.floor((Date.now() - 3 * 3600 * 1000) / 1000) * 1000);
  let catalogId: string;
  let restored: { input: RestoreDBInstanceFromDBSnapshotCommandInput; described: string[]; deleted: boolean } | undefined;

  function sourceInstance(): DBInstance {
    return {
      DBInstanceIdentifier: SOURCE,
      DBInstanceStatus: 'available',
      Engine: 'postgres',
      EngineVersion: '16.3',
      Endpoint: { Address: `${SOURCE}.c9akciq32xyz.${REGION}.rds.amazonaws.com`, Port: 5432 },
      InstanceCreateTime: new Date('2024-01-10T08:00:00.000Z'),
      BackupRetentionPeriod: 7,
      LatestRestorableTime: new Date(Date.now() - 5 * 60 * 1000),
      StorageEncrypted: true,
      KmsKeyId: KMS,
      DbiResourceId: DBI,
      DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${SOURCE}`,
      DeletionProtection: true,
    };
  }

  /** The drill instance as RDS describes it, with the tags it was created with; its endpoint is the suite's real database. */
  function drillInstance(id: string, status: string): DBInstance {
    const s = stack.ctx.settings;
    return {
      DBInstanceIdentifier: id,
      DBInstanceStatus: status,
      Engine: 'postgres',
      EngineVersion: '16.3',
      ...(status === 'creating' ? {} : { Endpoint: { Address: s.host, Port: s.postgres.primaryPort } }),
      DbiResourceId: 'db-QW3ERT5YUI7OPA9SDF2GHJ4KLZ',
      DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${id}`,
      DeletionProtection: false,
      TagList: restored?.input.Tags ?? [],
    };
  }

  before(async function () {
    this.timeout(600000);
    stack = await useStack();
    env = await useTemporal();
    const s = stack.ctx.settings;
    const admin = { host: s.host, port: s.postgres.primaryPort, user: s.postgres.superuser, database: 'postgres' };
    await withDatabase(admin, (c) => c.query(`CREATE DATABASE ${database}`));
    await withDatabase({ ...admin, database }, async (c) => {
      await c.query('CREATE TABLE ledger (id serial PRIMARY KEY, amount numeric NOT NULL, booked_at timestamptz NOT NULL DEFAULT now())');
      await c.query('INSERT INTO ledger (amount) SELECT g * 1.5 FROM generate_series(1, 80) g');
    });
    // The stack's config with an RDS target, as a user would add it.
    config = derivedConfig((doc) => {
      doc.targets.databases.push({
        name: 'orders',
        environment: 'production',
        engine: 'rds',
        instanceId: SOURCE,
        region: REGION,
        drRegion: DR_REGION,
        drKmsKeyId: DR_KMS,
        database,
        user: 'lifeboat',
        // The mocked instance's endpoint is the stack's Postgres, which serves the local CA's certificate.
        sslRootCert: '{dataDir}/tls/ca.crt',
        criticalTables: ['ledger'],
        smokeQueries: [{ name: 'latest-entries', sql: 'SELECT id FROM ledger ORDER BY booked_at DESC LIMIT 5' }],
        restore: { primary: { dbInstanceClass: 'db.r6g.large', dbSubnetGroupName: 'restores' } },
      });
    });
    ports = createPorts(config, { log: () => undefined });
    // The snapshot as the backup workflow records it: verified, in the primary region.
    const handle = { engine: 'rds', backupId: snapshotId, location: REGION, locator: `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${snapshotId}` };
    const [row] = await ports.catalog.query<{ id: string }>(
      `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, completed_at, verified_at, workflow_id)
       VALUES ('orders', 'production', 'snapshot', 'rds', $1, 'verified', $2, $3, $3, $4) RETURNING id::text`,
      [snapshotId, JSON.stringify({ primary: { region: 'primary', handle, completedAt: takenAt.toISOString(), verified: true } }), takenAt.toISOString(), uniqueId('test-drill-rds-backup')],
    );
    catalogId = row.id;

    rds = mockClient(RDSClient);
    rds.on(DescribeDBInstancesCommand).callsFake((input: { DBInstanceIdentifier?: string }) => {
      if (input.DBInstanceIdentifier === SOURCE) return { DBInstances: [sourceInstance()] };
      if (restored && input.DBInstanceIdentifier === restored.input.DBInstanceIdentifier) {
        const lifecycle = ['creating', 'backing-up', 'available'];
        const status = restored.deleted ? 'deleting' : lifecycle[Math.min(restored.described.length, lifecycle.length - 1)];
        restored.described.push(status);
        return { DBInstances: [drillInstance(restored.input.DBInstanceIdentifier!, status)] };
      }
      throw new DBInstanceNotFoundFault({ message: `DBInstance ${input.DBInstanceIdentifier} not found.`, $metadata: { ...meta, httpStatusCode: 404 } });
    });
    rds.on(DescribeDBSnapshotsCommand).callsFake((input: { DBSnapshotIdentifier?: string }) => {
      if (input.DBSnapshotIdentifier === snapshotId) {
        return { DBSnapshots: [{ DBSnapshotIdentifier: snapshotId, DBInstanceIdentifier: SOURCE, Status: 'available', SnapshotCreateTime: takenAt, DBSnapshotArn: handle.locator, Encrypted: true, KmsKeyId: KMS }] };
      }
      throw new DBSnapshotNotFoundFault({ message: `DBSnapshot ${input.DBSnapshotIdentifier} not found.`, $metadata: { ...meta, httpStatusCode: 404 } });
    });
    rds.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({
      DBInstanceAutomatedBackups: [{ DbiResourceId: DBI, Region: REGION, DBInstanceIdentifier: SOURCE, Status: 'active', RestoreWindow: { EarliestTime: new Date(Date.now() - 7 * 86400000), LatestTime: new Date(Date.now() - 5 * 60 * 1000) } }],
    });
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).callsFake((input: RestoreDBInstanceFromDBSnapshotCommandInput) => {
      restored = { input, described: [], deleted: false };
      return { DBInstance: drillInstance(input.DBInstanceIdentifier!, 'creating') };
    });
    rds.on(DeleteDBInstanceCommand).callsFake((input: { DBInstanceIdentifier: string }) => {
      if (restored) restored.deleted = true;
      return { DBInstance: drillInstance(input.DBInstanceIdentifier, 'deleting') };
    });
  });

  after(async function () {
    this.timeout(120000);
    rds?.restore();
    await ports?.catalog.query('DELETE FROM drills WHERE backup_catalog_id = $1', [catalogId]).catch(() => undefined);
    await ports?.catalog.query('DELETE FROM backups WHERE id = $1', [catalogId]).catch(() => undefined);
    await ports?.close();
    if (!stack) return;
    const s = stack.ctx.settings;
    await withDatabase({ host: s.host, port: s.postgres.primaryPort, user: s.postgres.superuser, database: 'postgres' }, (c) => c.query(`DROP DATABASE IF EXISTS ${database}`)).catch((err: unknown) =>
      console.error(`dropping ${database}: ${String(err)}`),
    );
  });

  it('restores the snapshot into a drill instance tagged with its owner, waits, verifies, and deletes it without a final snapshot', async () => {
    const workflowId = uniqueId('test-drill-rds');
    const taskQueue = uniqueTaskQueue('drill-rds');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    const { result, runId } = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start('restoreDrill', { taskQueue, workflowId, args: [{ target: 'orders', requestedBy: 'test', timings: { pollIntervalMs: 100 } }] });
      const out = (await handle.result()) as RestoreDrillResult;
      await recordHistory(handle, 'restoreDrill-v2-rds-snapshot');
      return { result: out, runId: (await handle.describe()).runId };
    });
    const { report } = result;
    assert.equal(report.outcome, 'passed', JSON.stringify(report.issues));
    assert.deepEqual(report.backup, { id: snapshotId, type: 'snapshot', takenAt: takenAt.toISOString(), region: 'primary', selectedBy: 'as the newest verified backup' });

    // The snapshot itself, restored once into a new instance named for the drill, never over the source.
    assert.equal(rds.commandCalls(RestoreDBInstanceToPointInTimeCommand).length, 0);
    const calls = rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand);
    assert.equal(calls.length, 1);
    const sent = calls[0].args[0].input;
    const drillName = drillInstanceName(workflowId);
    assert.equal(sent.DBSnapshotIdentifier, snapshotId);
    assert.equal(sent.DBInstanceIdentifier, drillName);
    assert.match(drillName, /^drill-test-drill-rds-[0-9a-f]{8}$/);
    assert.equal(sent.DeletionProtection, false);
    assert.equal(sent.DBInstanceClass, 'db.r6g.large');
    assert.equal(sent.DBSubnetGroupName, 'restores');
    const tags = Object.fromEntries((sent.Tags ?? []).map((t) => [t.Key, t.Value]));
    assert.deepEqual(
      { managed: tags['lifeboat:managed'], from: tags['lifeboat:restored-from'], point: tags['lifeboat:restore-point'], workflow: tags['lifeboat:workflow-id'], run: tags['lifeboat:run-id'] },
      { managed: 'true', from: SOURCE, point: `backup:${snapshotId}`, workflow: workflowId, run: runId },
    );

    // Waited through RDS's states, verified through the instance's endpoint (the real database).
    assert.deepEqual(restored!.described.slice(0, 3), ['creating', 'backing-up', 'available']);
    assert.deepEqual(
      report.validations.filter((v) => v.name.startsWith('table') || v.name.startsWith('smoke')).map((v) => [v.name, v.ok]),
      [
        ['table ledger', true],
        ['smoke query latest-entries', true],
      ],
    );
    assert.ok(report.validations.every((v) => v.ok), JSON.stringify(report.validations));

    // Removed as its owner; the snapshot it came from is still there, so no final snapshot duplicates it.
    const deletes = rds.commandCalls(DeleteDBInstanceCommand);
    assert.equal(deletes.length, 1);
    assert.deepEqual(deletes[0].args[0].input, { DBInstanceIdentifier: drillName, SkipFinalSnapshot: true, DeleteAutomatedBackups: true });
    assert.equal(report.steps.at(-1)?.detail, `removed restored instance ${drillName}`);

    const [marked] = await ports.catalog.query<{ drill_outcome: string }>('SELECT drill_outcome FROM backups WHERE id = $1', [catalogId]);
    assert.equal(marked.drill_outcome, 'proven');
    assert.deepEqual(result.evidence.map((e) => e.copies.length), [2, 2, 2]);
  });
});
