/**
 * pitrRestore of an RDS target at the AWS SDK boundary: RDSClient is mocked with
 * aws-sdk-client-mock (every client the worker's ports create in this process), answering as RDS
 * does: the source with its LatestRestorableTime, the automated backups' RestoreWindow, the
 * restore, then the new instance creating -> backing-up -> available. The workflow, worker,
 * Temporal, catalog and verification are real: the mocked instance's endpoint is a real database
 * on the local primary, made for this suite, which verification connects to.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  DBInstanceNotFoundFault,
  DeleteDBInstanceCommand,
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  InvalidRestoreFault,
  RDSClient,
  RestoreDBInstanceToPointInTimeCommand,
  type DBInstance,
  type RestoreDBInstanceToPointInTimeCommandInput,
} from '@aws-sdk/client-rds';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { createPorts } from '../src/activities/ports';
import { destinationFor } from '../src/activities/restore';
import { LifeboatConfig, parseConfig } from '../src/config';
import { finalSnapshotId } from '../src/engines/rds';
import { PitrRestoreInput, PitrRestoreReport } from '../src/domain/restore';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { uniqueId, withDatabase } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';
import { ACCOUNT, DBI, DR_KMS, DR_REGION, errorMeta as meta, PRIMARY_KMS as KMS, REGION, SOURCE } from './helpers/aws-fixtures';
import { approveSigned } from './helpers/signing';

const minutes = (n: number) => n * 60 * 1000;

describe('pitrRestore of an RDS target (mocked RDSClient, real worker)', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let rds: AwsClientStub<RDSClient>;
  const database = `lbtest_rds_${uniqueId('db').slice(3)}`;
  // The window RDS reports, fixed when the suite starts: latest restorable 5 minutes ago, retention 7 days.
  const latest = new Date(Math.floor((Date.now() - minutes(5)) / 1000) * 1000);
  const earliest = new Date(latest.getTime() - 7 * 24 * 60 * minutes(1) + minutes(25));
  /** The instance the mocked RDS has restored, and how often it has been described since. */
  const notices: string[] = [];
  let restored: { id: string; input: RestoreDBInstanceToPointInTimeCommandInput; described: string[]; deleted: boolean } | undefined;

  /** lifeboat.config.yaml with an RDS target added, as a user would write it. */
  function rdsConfig(criticalTables: string[]): LifeboatConfig {
    const text = fs.readFileSync(path.resolve(__dirname, '../../lifeboat.config.yaml'), 'utf8');
    const target = [
      '    - name: orders',
      '      environment: production',
      '      engine: rds',
      `      instanceId: ${SOURCE}`,
      `      region: ${REGION}`,
      `      drRegion: ${DR_REGION}`,
      `      drKmsKeyId: ${DR_KMS}`,
      `      database: ${database}`,
      '      user: lifeboat',
      // The mocked instance's endpoint is the stack's Postgres, which serves the local CA's certificate.
      '      sslRootCert: "{dataDir}/tls/ca.crt"',
      `      criticalTables: [${criticalTables.join(', ')}]`,
      '      smokeQueries:',
      '        - name: latest-entries',
      '          sql: SELECT id FROM ledger ORDER BY booked_at DESC LIMIT 5',
      '      restore:',
      '        primary: { dbInstanceClass: db.r6g.large, dbSubnetGroupName: restores }',
      '',
    ].join('\n');
    assert.ok(text.includes('\n  buckets:'));
    const config = parseConfig(text.replace('\n  buckets:', `\n${target}\n  buckets:`), 'lifeboat.config.yaml + rds target');
    assert.equal(config.targets.databases.find((d) => d.name === 'orders')?.engine, 'rds');
    return config;
  }

  function sourceInstance(): DBInstance {
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
      BackupRetentionPeriod: 7,
      LatestRestorableTime: latest,
      StorageEncrypted: true,
      KmsKeyId: KMS,
      DbiResourceId: DBI,
      DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${SOURCE}`,
      DeletionProtection: true,
      TagList: [{ Key: 'team', Value: 'payments' }],
    };
  }

  /** The restored instance as RDS describes it in `status`, with the tags it was created with; the endpoint exists once it is backing up. */
  function restoredInstance(id: string, status: string, tags = restored?.input.Tags ?? []): DBInstance {
    const s = stack.ctx.settings;
    return {
      DBInstanceIdentifier: id,
      DBInstanceClass: 'db.r6g.large',
      Engine: 'postgres',
      EngineVersion: '16.3',
      DBInstanceStatus: status,
      ...(status === 'creating' ? {} : { Endpoint: { Address: s.host, Port: s.postgres.primaryPort, HostedZoneId: 'Z2R2ITUGPM61AM' } }),
      AllocatedStorage: 100,
      StorageEncrypted: true,
      KmsKeyId: KMS,
      DbiResourceId: 'db-QW3ERT5YUI7OPA9SDF2GHJ4KLZ',
      DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${id}`,
      DeletionProtection: false,
      TagList: tags,
    };
  }

  function behaveLikeRds(restore: (input: RestoreDBInstanceToPointInTimeCommandInput) => Promise<{ DBInstance: DBInstance }> | { DBInstance: DBInstance }): void {
    rds.reset();
    restored = undefined;
    rds.on(DescribeDBInstancesCommand).callsFake((input: { DBInstanceIdentifier?: string }) => {
      if (input.DBInstanceIdentifier === SOURCE) return { DBInstances: [sourceInstance()] };
      if (restored && input.DBInstanceIdentifier === restored.id) {
        const lifecycle = ['creating', 'backing-up', 'available'];
        const status = restored.deleted ? 'deleting' : lifecycle[Math.min(restored.described.length, lifecycle.length - 1)];
        restored.described.push(status);
        return { DBInstances: [restoredInstance(restored.id, status)] };
      }
      throw new DBInstanceNotFoundFault({ message: `DBInstance ${input.DBInstanceIdentifier} not found.`, $metadata: { ...meta, httpStatusCode: 404 } });
    });
    rds.on(DescribeDBInstanceAutomatedBackupsCommand).resolves({
      DBInstanceAutomatedBackups: [
        {
          DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${SOURCE}`,
          DbiResourceId: DBI,
          Region: REGION,
          DBInstanceIdentifier: SOURCE,
          RestoreWindow: { EarliestTime: earliest, LatestTime: latest },
          Status: 'active',
          Engine: 'postgres',
          BackupRetentionPeriod: 7,
          DBInstanceAutomatedBackupsArn: `arn:aws:rds:${REGION}:${ACCOUNT}:auto-backup:ab-7xkq3m5zujhvw2npt4y6glarce`,
        },
      ],
    });
    rds.on(RestoreDBInstanceToPointInTimeCommand).callsFake(async (input: RestoreDBInstanceToPointInTimeCommandInput) => restore(input));
    rds.on(DeleteDBInstanceCommand).callsFake((input: { DBInstanceIdentifier: string }) => {
      if (restored) restored.deleted = true;
      return { DBInstance: restoredInstance(input.DBInstanceIdentifier, 'deleting') };
    });
  }

  function restoresNormally(): void {
    behaveLikeRds((input) => {
      restored = { id: input.TargetDBInstanceIdentifier!, input, described: [], deleted: false };
      return { DBInstance: restoredInstance(restored.id, 'creating') };
    });
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
      await c.query('INSERT INTO ledger (amount) SELECT g * 1.5 FROM generate_series(1, 120) g');
    });
    rds = mockClient(RDSClient);
  });

  after(async function () {
    rds?.restore();
    if (!stack) return;
    const s = stack.ctx.settings;
    await withDatabase({ host: s.host, port: s.postgres.primaryPort, user: s.postgres.superuser, database: 'postgres' }, (c) => c.query(`DROP DATABASE IF EXISTS ${database}`)).catch((err: unknown) =>
      console.error(`dropping ${database}: ${String(err)}`),
    );
  });

  function input(overrides: Partial<PitrRestoreInput> = {}): PitrRestoreInput {
    return {
      target: 'orders',
      restorePoint: new Date(latest.getTime() - minutes(30)).toISOString(),
      reason: 'test: undo a bad deploy',
      requestedBy: 'alice@example.com',
      mode: 'standard',
      timings: { remindAfterMs: 60000, abortAfterMs: 120000, pollIntervalMs: 100 },
      ...overrides,
    };
  }

  /** Runs pitrRestore for the RDS target through an in-process worker; approves the gate unless told otherwise. */
  async function run(config: LifeboatConfig, workflowId: string, restoreInput: PitrRestoreInput): Promise<{ result?: PitrRestoreReport; error?: unknown; row?: { outcome: string; report: PitrRestoreReport } }> {
    const ports = createPorts(config, { log: (line) => notices.push(line) });
    try {
      const taskQueue = uniqueTaskQueue('pitr-rds');
      const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
      const outcome = await worker.runUntil(async () => {
        const handle = await env.client.workflow.start('pitrRestore', { taskQueue, workflowId, args: [restoreInput] });
        const approving = (async () => {
          for (let i = 0; i < 600; i++) {
            const desc = await handle.describe();
            if (desc.status.name !== 'RUNNING') return;
            const status = await handle.query('status').catch(() => undefined);
            if ((status as { pendingGate?: unknown } | undefined)?.pendingGate) {
              await approveSigned(handle, { by: 'carol@example.com', reason: 'data owner agrees' });
              return;
            }
            await new Promise((r) => setTimeout(r, 100));
          }
        })();
        try {
          return { result: (await handle.result()) as PitrRestoreReport };
        } catch (error) {
          return { error };
        } finally {
          await approving;
        }
      });
      const rows = await ports.catalog.query<{ outcome: string; report: PitrRestoreReport }>('SELECT outcome, report FROM restores WHERE workflow_id = $1', [workflowId]);
      return { ...outcome, row: rows[0] };
    } finally {
      await ports.close();
    }
  }

  function nonRetryableActivityFailure(error: unknown): ApplicationFailure {
    assert.ok(error instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(error)}`);
    assert.ok(error.cause instanceof ActivityFailure, `expected ActivityFailure, got ${String(error.cause)}`);
    assert.ok(error.cause.cause instanceof ApplicationFailure);
    assert.equal(error.cause.cause.nonRetryable, true);
    return error.cause.cause;
  }

  it('restores into a new instance from the automated backups, waits until available, verifies it and reports RPO and RTO', async () => {
    restoresNormally();
    const workflowId = uniqueId('test-pitr-rds');
    const destination = destinationFor(workflowId);
    const restoreInput = input();
    const { result, error, row } = await run(rdsConfig(['ledger']), workflowId, restoreInput);
    assert.equal(error, undefined, String(error));
    assert.ok(result && restored);
    assert.equal(result.outcome, 'restored');

    // One restore call, into a new instance, from the source, to the requested time, tagged as lifeboat's.
    const restoreCalls = rds.commandCalls(RestoreDBInstanceToPointInTimeCommand);
    assert.equal(restoreCalls.length, 1);
    const sent = restoreCalls[0].args[0].input;
    assert.equal(sent.SourceDBInstanceIdentifier, SOURCE);
    assert.equal(sent.TargetDBInstanceIdentifier, destination);
    assert.equal(sent.RestoreTime?.toISOString(), restoreInput.restorePoint);
    assert.equal(sent.UseLatestRestorableTime, undefined);
    assert.equal(sent.DBInstanceClass, 'db.r6g.large');
    assert.equal(sent.DBSubnetGroupName, 'restores');
    assert.equal(sent.DeletionProtection, false);
    assert.deepEqual(sent.Tags?.find((t) => t.Key === 'lifeboat:managed'), { Key: 'lifeboat:managed', Value: 'true' });
    assert.deepEqual(sent.Tags?.find((t) => t.Key === 'lifeboat:restored-from'), { Key: 'lifeboat:restored-from', Value: SOURCE });

    // It waited through RDS's states to available, then verified through the instance's endpoint.
    assert.deepEqual(restored.described.slice(-3), ['creating', 'backing-up', 'available']);
    assert.deepEqual(result.destination, { instanceId: destination, endpoint: { host: stack.ctx.settings.host, port: stack.ctx.settings.postgres.primaryPort } });
    assert.equal(result.verification?.ok, true, JSON.stringify(result.verification?.checks));
    assert.deepEqual(
      result.verification?.checks.filter((c) => c.name.startsWith('table') || c.name.startsWith('smoke')).map((c) => [c.name, c.ok]),
      [
        ['table ledger', true],
        ['smoke query latest-entries', true],
      ],
    );
    assert.match(result.verification!.checks.find((c) => c.name === 'table ledger')!.detail, /^120 rows, checksum h64:[0-9a-f]{16}$/);
    assert.equal(rds.commandCalls(DeleteDBInstanceCommand).length, 0);

    assert.equal(result.rpo?.restorePoint, restoreInput.restorePoint);
    assert.equal(result.rpo?.latestRecoverable, latest.toISOString());
    assert.equal(result.rpo?.seconds, 30 * 60);
    assert.ok(result.rto && Number.isInteger(result.rto.seconds));
    assert.equal(row?.outcome, 'restored');
    assert.equal(row?.report.destination?.instanceId, destination);
  });

  it('removes the new instance with DeleteDBInstance, keeping a final snapshot, when verification fails', async () => {
    restoresNormally();
    const workflowId = uniqueId('test-pitr-rds-verify');
    const destination = destinationFor(workflowId);
    const { error, row } = await run(rdsConfig(['ledger', 'ledger_archive']), workflowId, input());
    assert.ok(error instanceof WorkflowFailedError, String(error));
    assert.ok(error.cause instanceof ApplicationFailure, String(error.cause));
    assert.equal(error.cause.type, 'VERIFICATION_FAILED');
    assert.equal(error.cause.message, `verification of ${destination} failed (table ledger_archive: cannot read it: relation "ledger_archive" does not exist); no cutover`);

    const deletes = rds.commandCalls(DeleteDBInstanceCommand);
    assert.equal(deletes.length, 1);
    const { runId } = await env.client.workflow.getHandle(workflowId).describe();
    assert.deepEqual(deletes[0].args[0].input, { DBInstanceIdentifier: destination, SkipFinalSnapshot: false, FinalDBSnapshotIdentifier: finalSnapshotId(destination, runId), DeleteAutomatedBackups: true });
    // The instance carried its owner, this very run, which is why it could be removed.
    const tags = Object.fromEntries((restored?.input.Tags ?? []).map((t) => [t.Key, t.Value]));
    assert.equal(tags['lifeboat:workflow-id'], workflowId);
    assert.equal(tags['lifeboat:run-id'], runId);
    assert.equal(row?.outcome, 'verification-failed');
    assert.deepEqual(row?.report.cleanup, [`removed restored instance ${destination}`]);
    assert.equal(row?.report.verification?.ok, false);
    assert.equal(row?.report.cutover, undefined);
  });

  it('refuses a restore time outside the window RDS reports, before calling RestoreDBInstanceToPointInTime', async () => {
    restoresNormally();
    const tooEarly = new Date(earliest.getTime() - minutes(60)).toISOString();
    const { error, row } = await run(rdsConfig(['ledger']), uniqueId('test-pitr-rds-window'), input({ restorePoint: tooEarly }));
    const failure = nonRetryableActivityFailure(error);
    assert.equal(failure.type, 'OUTSIDE_RESTORE_WINDOW');
    assert.equal(failure.message, `the restore time ${tooEarly} is before the oldest backup; the restore window is ${earliest.toISOString()} to ${latest.toISOString()}: pick a time inside it.`);
    assert.equal(rds.commandCalls(RestoreDBInstanceToPointInTimeCommand).length, 0);
    assert.equal(rds.commandCalls(DeleteDBInstanceCommand).length, 0);
    // Refused before anything could exist: no compensation ran.
    assert.equal(row, undefined);
  });

  it('surfaces InvalidRestoreFault from the restore call as a non-retryable failure naming the window', async () => {
    behaveLikeRds(() => {
      throw new InvalidRestoreFault({ message: 'The restore time is outside the restorable window for DB instance orders-prod.', $metadata: meta });
    });
    const workflowId = uniqueId('test-pitr-rds-invalid');
    const destination = destinationFor(workflowId);
    const restoreInput = input();
    const { error, row } = await run(rdsConfig(['ledger']), workflowId, restoreInput);
    const failure = nonRetryableActivityFailure(error);
    assert.equal(failure.type, 'OUTSIDE_RESTORE_WINDOW');
    assert.equal(
      failure.message,
      `RDS RestoreDBInstanceToPointInTime in ${REGION} failed with InvalidRestoreFault while restoring ${SOURCE} to ${restoreInput.restorePoint} into new instance ${destination}: ` +
        `the requested point in time cannot be restored, usually because it lies outside the restorable window (the requested time ${restoreInput.restorePoint} must lie between ${earliest.toISOString()} and ${latest.toISOString()}); ` +
        'ask lifeboat for the current restore window and request a time inside it (AWS said: The restore time is outside the restorable window for DB instance orders-prod).',
    );
    // Not retried: one call. Nothing was made, so nothing is deleted.
    assert.equal(rds.commandCalls(RestoreDBInstanceToPointInTimeCommand).length, 1);
    assert.equal(rds.commandCalls(DeleteDBInstanceCommand).length, 0);
    // The report and the notification carry lifeboat's sentence, not only AWS's raw text.
    assert.equal(row?.outcome, 'failed');
    assert.equal(row?.report.failure, failure.message);
    assert.ok(notices.some((n) => n.startsWith('[lifeboat critical] Restore of orders failed') && n.includes(failure.message)), notices.join('\n'));
  });
});
