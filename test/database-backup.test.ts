/**
 * The database backup workflow end to end: a real worker on the real dev server, pgBackRest
 * backing up the stack's primary into both MinIO regions, the real catalog. Plus the RDS engine
 * through the same workflow at the SDK boundary (aws-sdk-client-mock).
 *
 * Leaves behind only healthy backups: a backup corrupted on purpose is expired again after a
 * fresh full backup has replaced it as the newest full, and restored instances are deleted.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  CopyDBSnapshotCommand,
  CreateDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  KMSKeyNotAccessibleFault,
  RDSClient,
  type DBSnapshot,
  type RDSClientResolvedConfig,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-rds';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { AwsStub, mockClient } from 'aws-sdk-client-mock';
import { Client } from 'pg';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig, loadConfig, parseConfig } from '../src/config';
import { WorkflowStatus } from '../src/domain/approval';
import { statusQuery } from '../src/workflows/messages';
import { backupNameFor, DatabaseBackupInput, DatabaseBackupResult, drCopyNameFor } from '../src/domain/backup';
import { LifeboatError } from '../src/domain/errors';
import type { BackupHandle, DatabaseEngine } from '../src/domain/ports';
import { LifeboatBackupType, LifeboatEnvironment, LifeboatKind, LifeboatPhase, LifeboatTarget } from '../src/workflows/search-attributes';
import { rpoStatus } from '../src/activities/backup';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { BACKUP_ANNOTATION } from '../src/engines/pgbackrest/backups';
import { localName } from '../src/engines/pgbackrest/files';
import { rdsIdentifier } from '../src/engines/rds';
import { tableFacts, TableFacts } from '../src/engines/verifier';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { isAlive, waitUntil } from '../src/platform/processes';
import { s3ClientFor, Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { recordHistory } from './helpers/pitr';
import { payloadValue, recordableHistory } from './helpers/history-json';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');
const WORKER_ENTRY = path.resolve(__dirname, '../src/worker.js');

interface BackupRow {
  id: string;
  status: string;
  backup_type: string;
  engine: string;
  environment: string;
  engine_backup_id: string;
  size_bytes: string | null;
  locations: { primary?: { handle: BackupHandle; sizeBytes?: number; verified?: boolean }; dr?: { handle: BackupHandle; sizeBytes?: number; verified?: boolean } };
  verified_at: Date | null;
  failure: string | null;
}

/**
 * This suite keeps `drCopy: second-backup` tested (a second backup of the source into repo2,
 * annotated with the copy's name); the default, repository-copy, has test/dr-repository-copy.test.ts.
 */
const SECOND_BACKUP = { LIFEBOAT_DR_COPY: 'second-backup' };
function loadSecondBackupConfig(): LifeboatConfig {
  const previous = process.env.LIFEBOAT_DR_COPY;
  process.env.LIFEBOAT_DR_COPY = SECOND_BACKUP.LIFEBOAT_DR_COPY;
  try {
    return loadConfig(CONFIG_FILE);
  } finally {
    if (previous === undefined) delete process.env.LIFEBOAT_DR_COPY;
    else process.env.LIFEBOAT_DR_COPY = previous;
  }
}

describe('database backup workflow (real worker, real stack)', function () {
  const run = randomBytes(3).toString('hex');
  const config = loadSecondBackupConfig();
  let env: TestWorkflowEnvironment;
  let stack: Stack;
  let ports: Ports;
  let engine: PgBackRestEngine;
  const notes: string[] = [];
  /** Backups this suite made that are still the newest full of their repository: they stay. */
  let lastGood: DatabaseBackupResult | undefined;

  before(async function () {
    this.timeout(600000);
    env = await useTemporal();
    stack = await useStack();
    ports = createPorts(config, { log: (l) => notes.push(l) });
    await ports.catalog.migrate();
    engine = ports.database('app') as PgBackRestEngine;
  });
  after(async () => ports?.close());

  async function runBackup(workflowId: string, input: DatabaseBackupInput, options: { ports?: Ports; config?: LifeboatConfig; during?: () => Promise<void>; whileWorkerRuns?: () => Promise<void> } = {}): Promise<DatabaseBackupResult> {
    const taskQueue = uniqueTaskQueue('dbbackup');
    const worker = await createLifeboatWorker({ config: options.config ?? config, connection: env.nativeConnection, ports: options.ports ?? ports, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(async () => {
      const handle = await env.client.workflow.start('databaseBackup', { taskQueue, workflowId, args: [input] });
      const watching = options.during?.();
      try {
        const result = (await handle.result()) as DatabaseBackupResult;
        // Queries need a worker: whatever asks one runs before this worker stops.
        await options.whileWorkerRuns?.();
        return result;
      } finally {
        await watching;
      }
    });
  }

  async function rowsOf(workflowId: string): Promise<BackupRow[]> {
    return ports.catalog.query<BackupRow>(
      `SELECT id::text AS id, status, backup_type, engine, environment, engine_backup_id, size_bytes::text AS size_bytes, locations, verified_at, failure
       FROM backups WHERE workflow_id = $1`,
      [workflowId],
    );
  }

  async function setsNamed(repo: number, name: string) {
    const info = await localPgBackRest(stack.ctx).info(repo);
    return (info?.backup ?? []).filter((b) => b.database['repo-key'] === repo && (b as { annotation?: Record<string, string> }).annotation?.[BACKUP_ANNOTATION] === name);
  }

  async function onDatabase<T>(port: number, fn: (c: Client) => Promise<T>): Promise<T> {
    const target = config.targets.databases.find((d) => d.name === 'app')!;
    const c = new Client({ host: '127.0.0.1', port, user: target.user, database: target.database, connectionTimeoutMillis: 5000 });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  const criticalTables = config.targets.databases.find((d) => d.name === 'app')!.criticalTables;
  const factsOf = (port: number): Promise<TableFacts[]> =>
    onDatabase(port, async (c) => {
      const facts: TableFacts[] = [];
      for (const t of criticalTables) facts.push(await tableFacts(c, t));
      return facts;
    });

  it('(a) backs up the primary to MinIO, verifies, copies to DR, records and notifies; the catalog matches pgBackRest', async () => {
    const workflowId = `test-dbbackup-${run}-a`;
    const heartbeats: Array<Record<string, unknown>> = [];
    let done = false;
    let statusAfter: WorkflowStatus | undefined;
    const started = Date.now();
    const result = await runBackup(
      workflowId,
      { target: 'app', pollIntervalMs: 300, heartbeatTimeoutMs: 20000, requestedBy: 'schedule' },
      {
        // What the Web UI shows of the pending wait: the engine's progress as heartbeat details.
        during: async () => {
          const handle = env.client.workflow.getHandle(workflowId);
          while (!done) {
            const desc = await handle.describe().catch(() => undefined);
            if (!desc || desc.status.name !== 'RUNNING') break;
            for (const a of desc.raw.pendingActivities ?? []) {
              const p = a.heartbeatDetails?.payloads?.[0];
              if (a.activityType?.name === 'waitForDatabaseBackup' && p) heartbeats.push((await payloadValue(env.client, p)) as Record<string, unknown>);
            }
            await new Promise((r) => setTimeout(r, 150));
          }
        },
        whileWorkerRuns: async () => {
          statusAfter = (await env.client.workflow.getHandle(workflowId).query(statusQuery)) as WorkflowStatus;
        },
      },
    ).finally(() => (done = true));
    const seconds = (Date.now() - started) / 1000;
    const status = statusAfter!;
    console.log(`      (a) full backup + DR copy, verified and recorded in ${seconds.toFixed(1)} s; ${result.primary.handle.backupId} ${result.primary.sizeBytes} B, ${result.dr.handle.backupId} ${result.dr.sizeBytes} B`);

    const name = backupNameFor(workflowId);
    assert.equal(result.status, 'verified');
    assert.equal(result.kind, 'full');
    assert.equal(result.name, name);
    assert.equal(result.primary.handle.locator, 'repo1');
    assert.equal(result.dr.handle.locator, 'repo2');
    assert.match(result.primary.handle.backupId, /^\d{8}-\d{6}F$/);
    assert.match(result.dr.handle.backupId, /^\d{8}-\d{6}F$/);
    assert.ok(result.verifications.primary.ok && result.verifications.dr.ok);
    assert.deepEqual(result.verifications.primary.checks.map((c) => c.name), ['backup-set', 'page-checksums', 'repository-verify', 'source-identity']);
    assert.ok(result.preflight.ok);
    assert.ok(result.preflight.checks.some((c) => c.name === 'repo1 (primary)' && c.ok));
    assert.ok(result.preflight.checks.some((c) => c.name === 'repo2 (dr)' && c.ok));
    assert.ok(heartbeats.length > 0, 'the wait activity heartbeats its progress');
    assert.ok(heartbeats.every((h) => typeof h.detail === 'string' && ['running', 'complete'].includes(h.state as string)), JSON.stringify(heartbeats.slice(0, 3)));

    // Reality: pgBackRest has exactly these sets, with these sizes, in each repository.
    const [inRepo1] = await setsNamed(1, name);
    const [inRepo2] = await setsNamed(2, drCopyNameFor(name));
    assert.equal(inRepo1?.label, result.primary.handle.backupId);
    assert.equal(inRepo2?.label, result.dr.handle.backupId);
    assert.equal(inRepo1.info.repository.delta, result.primary.sizeBytes);
    assert.equal(inRepo2.info.repository.delta, result.dr.sizeBytes);

    // The catalog: one row for the run, with both regions, verified; one verification per region.
    const rows = await rowsOf(workflowId);
    assert.equal(rows.length, 1);
    const row = rows[0];
    assert.equal(row.id, result.catalogId);
    assert.equal(row.status, 'verified');
    assert.equal(row.engine, 'pgbackrest');
    assert.equal(row.environment, 'production');
    assert.equal(row.backup_type, 'full');
    assert.equal(row.engine_backup_id, name);
    assert.equal(Number(row.size_bytes), inRepo1.info.repository.delta);
    assert.equal(row.locations.primary?.handle.backupId, inRepo1.label);
    assert.equal(row.locations.dr?.handle.backupId, inRepo2.label);
    assert.equal(row.locations.dr?.sizeBytes, inRepo2.info.repository.delta);
    assert.ok(row.locations.primary?.verified && row.locations.dr?.verified);
    assert.ok(row.verified_at);
    assert.equal(row.failure, null);
    const verifications = await ports.catalog.query<{ ok: boolean; subject: string; backup_id: string }>('SELECT ok, subject, backup_id::text AS backup_id FROM verifications WHERE workflow_id = $1 ORDER BY id', [workflowId]);
    assert.equal(verifications.length, 2);
    assert.ok(verifications.every((v) => v.ok && v.backup_id === row.id));
    assert.match(verifications[0].subject, new RegExp(`primary ${inRepo1.label}`));
    assert.match(verifications[1].subject, new RegExp(`dr ${inRepo2.label}`));

    // The notification, and what the Web UI shows.
    const complete = notes.filter((n) => n.includes(`[${workflowId}]`) && n.includes('Backup complete: app (full, '));
    assert.equal(complete.length, 1, notes.join('\n'));
    const handle = env.client.workflow.getHandle(workflowId);
    const desc = await handle.describe();
    assert.equal(desc.typedSearchAttributes.get(LifeboatKind), 'database-backup');
    assert.equal(desc.typedSearchAttributes.get(LifeboatTarget), 'app');
    assert.equal(desc.typedSearchAttributes.get(LifeboatEnvironment), 'production');
    assert.equal(desc.typedSearchAttributes.get(LifeboatBackupType), 'full');
    assert.equal(desc.typedSearchAttributes.get(LifeboatPhase), 'done');
    assert.deepEqual(
      status.timeline.map((t) => t.phase),
      ['preflight', 'backing-up', 'verifying', 'copying-to-dr', 'verifying-dr-copy', 'recording', 'done'],
    );
    const history = await recordableHistory(handle);
    const summaries = (history.events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => (e.userMetadata?.summary ? String(defaultPayloadConverter.fromPayload(e.userMetadata.summary)) : ''));
    assert.ok(summaries.length >= 8 && summaries.every((s) => s.length > 0), JSON.stringify(summaries));
    await recordHistory(handle, 'databaseBackup-v2-completed');
    lastGood = result;
  });

  it('(b) the DR copy alone is restorable: with the primary region\'s MinIO down the data comes back from repo2', async () => {
    assert.ok(lastGood, 'needs the backup of (a)');
    const source = await factsOf(stack.ctx.settings.postgres.primaryPort);
    // Every commit so far reaches both repositories before the primary region goes away.
    await localPgBackRest(stack.ctx).check();
    const destination = `test-dbbackup-${run}-dr-restore`;
    // The test stands in for the workflow run that owns the restore.
    const owner = { workflowId: `test-dbbackup-${run}-b`, runId: `run-${run}`, restorePoint: 'latest', createdAt: new Date().toISOString() };
    let downFor = 0;
    try {
      const down = Date.now();
      await stack.minioPrimary.stop();
      try {
        assert.equal((await stack.minioPrimary.health()).healthy, false);
        await engine.startRestore({ destinationId: destination, point: { kind: 'latest' }, fromRegion: 'dr', owner });
        await waitUntil(
          `restore ${destination} from the DR repository`,
          async () => {
            const d = await engine.describeInstance(destination);
            if (d?.status === 'failed') throw new Error(`restore failed: ${d.detail}`);
            return d?.status === 'available' ? true : `${d?.status}: ${d?.detail ?? ''}`;
          },
          { timeoutMs: 300000, intervalMs: 300 },
        );
      } finally {
        await stack.minioPrimary.start();
        downFor = (Date.now() - down) / 1000;
      }
      console.log(`      (b) primary MinIO down for ${downFor.toFixed(1)} s while restoring from repo2`);
      const restored = await engine.describeInstance(destination);
      const facts = await factsOf(restored!.endpoint!.port);
      assert.deepEqual(facts, source);
      assert.ok(facts.every((f) => f.rows > 0));
    } finally {
      await engine.deleteInstance(destination, owner);
    }
    assert.equal(await engine.describeInstance(destination), undefined);
  });

  it('(c) a backup corrupted in the repository fails verification: failed workflow, failed row, a notification, never "complete"', async () => {
    const workflowId = `test-dbbackup-${run}-c`;
    const name = backupNameFor(workflowId);
    const s3 = s3ClientFor(stack.ctx.settings, stack.ctx.settings.minio.primary);
    const bucket = stack.ctx.settings.minio.primary.backupBucket;
    let corrupted: { label: string; key: string } | undefined;
    // The engine as the worker sees it, except that the backup set rots in storage before it is verified.
    const rotting: Ports = {
      ...ports,
      database(targetName: string): DatabaseEngine {
        const real = ports.database(targetName);
        return Object.assign(Object.create(real) as DatabaseEngine, {
          async verifyBackup(handle: BackupHandle) {
            if (handle.locator === 'repo1' && !corrupted) corrupted = await corrupt(s3, bucket, handle.backupId);
            return real.verifyBackup(handle);
          },
        });
      },
    };
    const before = notes.length;
    try {
      const err = await runBackup(workflowId, { target: 'app', kind: 'full', pollIntervalMs: 300 }, { ports: rotting }).then(
        () => assert.fail('a corrupted backup must not verify'),
        (e: unknown) => e,
      );
      assert.ok(corrupted, 'a file of the backup set was corrupted');
      console.log(`      (c) corrupted ${corrupted.key}`);
      assert.ok(err instanceof WorkflowFailedError, String(err));
      const failure = err.cause!;
      // The damaged file is named, with where it is stored and the SHA-1 its manifest records.
      assert.match(failure.message, new RegExp(`^Backup of app failed while verifying: Verification of ${corrupted.label} in the primary region failed \\(.*repository-verify: ${corrupted.label} is damaged in repo1 \\(primary\\): pg_data/\\S+ is stored in backup/app/${corrupted.label}/\\S+ with SHA-1 [0-9a-f]{40} where the manifest records [0-9a-f]{40}`));

      const [row, ...more] = await rowsOf(workflowId);
      assert.equal(more.length, 0);
      assert.equal(row.status, 'failed');
      assert.match(row.failure ?? '', /^verifying: Verification of .* failed/);
      assert.equal(row.locations.primary?.handle.backupId, corrupted.label);
      assert.equal(row.locations.dr, undefined, 'nothing was copied to the DR region');
      const [verification] = await ports.catalog.query<{ ok: boolean }>('SELECT ok FROM verifications WHERE workflow_id = $1', [workflowId]);
      assert.equal(verification.ok, false);

      const mine = notes.slice(before).filter((n) => n.includes(`[${workflowId}]`));
      assert.ok(mine.some((n) => /^\[lifeboat critical\] Backup FAILED: app \(full\) while verifying .*Last good backup: .* ago/.test(n)), mine.join('\n'));
      assert.ok(!mine.some((n) => /complete/i.test(n.split(':')[0]) || n.includes('Backup complete')), mine.join('\n'));
      const desc = await env.client.workflow.getHandle(workflowId).describe();
      assert.equal(desc.typedSearchAttributes.get(LifeboatPhase), 'failed');
      assert.deepEqual(await setsNamed(2, drCopyNameFor(name)), []);
    } finally {
      s3.destroy();
      if (corrupted) {
        // A fresh full takes over as the newest full, then the corrupted one is expired.
        const fresh = await retryWhileBusy(() => engine.startBackup({ backupName: `${name}-replacement`, kind: 'full' }));
        await waitUntil('the replacement full backup', async () => {
          const p = await engine.backupProgress(fresh);
          if (p.state === 'failed') throw new Error(p.detail);
          return p.state === 'complete' ? true : p.detail;
        }, { timeoutMs: 300000, intervalMs: 300 });
        // Verifying a newer set reads none of the damaged older one (pgBackRest's verify re-read
        // every set and all the WAL each time, and failed on damage anywhere in the archive).
        const replacement = await engine.verifyBackup(fresh);
        assert.equal(replacement.ok, true, JSON.stringify(replacement.checks));
        await retryWhileBusy(() => engine.deleteBackup({ engine: 'pgbackrest', backupId: corrupted!.label, name, location: 'primary', locator: 'repo1' }));
        assert.deepEqual(await setsNamed(1, name), []);
      }
    }
  });

  it('(d) a worker killed with kill -9 mid-backup: the other worker takes the backup over within 20 s and finishes it; one backup, one row', async () => {
    const taskQueue = uniqueTaskQueue('dbbackup-kill');
    const workflowId = `test-dbbackup-${run}-d`;
    const name = backupNameFor(workflowId);
    const workers: ChildProcess[] = [];
    const startWorker = async (): Promise<ChildProcess> => {
      const child = spawn(process.execPath, [WORKER_ENTRY], {
        env: { ...process.env, ...SECOND_BACKUP, LIFEBOAT_CONFIG: CONFIG_FILE, LIFEBOAT_TASK_QUEUE: taskQueue },
        cwd: path.dirname(CONFIG_FILE),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      workers.push(child);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      await waitUntil('the worker process', async () => (/lifeboat worker: task queue/.test(out) ? true : child.exitCode !== null ? (() => { throw new Error(out); })() : 'starting'), { timeoutMs: 60000, intervalMs: 100 });
      return child;
    };
    // The defaults a scheduled backup runs with (heartbeat timeout included), polled every second.
    const input: DatabaseBackupInput = { target: 'app', kind: 'full', pollIntervalMs: 1000 };
    try {
      // Two workers, as in production: when one dies the other takes over; no new process to wait for.
      await startWorker();
      await startWorker();
      const started = Date.now();
      const handle = await env.client.workflow.start('databaseBackup', { taskQueue, workflowId, args: [input] });
      let holder = '';
      await waitUntil(
        'the backup to be under way',
        async () => {
          const desc = await handle.describe();
          const wait = (desc.raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'waitForDatabaseBackup' && a.lastWorkerIdentity);
          holder = wait?.lastWorkerIdentity ?? '';
          return wait ? true : `${desc.status.name} ${(desc.raw.pendingActivities ?? []).map((a) => a.activityType?.name).join(',')}`;
        },
        { timeoutMs: 300000, intervalMs: 50 },
      );
      // The worker running the wait (its identity is pid@host) dies without a word.
      const victim = workers.find((w) => holder.startsWith(`${w.pid}@`));
      assert.ok(victim, `the wait runs on one of this test's workers (${holder})`);
      victim.kill('SIGKILL');
      const killedAt = Date.now();
      const state = (await engine.backupProgress({ engine: 'pgbackrest', backupId: name, name, location: 'primary', locator: 'repo1' })).state;
      // What the kill costs: the time until the other worker runs the wait again (the backup itself,
      // detached, never stopped). Read from the server: the retried attempt's start time.
      let takenOverAt = 0;
      await waitUntil(
        'the other worker to take the wait over',
        async () => {
          const desc = await handle.describe();
          if (desc.status.name !== 'RUNNING') return true;
          const wait = (desc.raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'waitForDatabaseBackup');
          const at = wait?.lastStartedTime ? Number(wait.lastStartedTime.seconds) * 1000 + Math.round((wait.lastStartedTime.nanos ?? 0) / 1e6) : 0;
          if (wait && (wait.attempt ?? 1) > 1 && at > killedAt) takenOverAt = at;
          // A wait that finished in between: the next activity (verify) ran on the surviving worker.
          if (!wait && (desc.raw.pendingActivities ?? []).length > 0 && !takenOverAt) takenOverAt = Date.now();
          return takenOverAt > 0;
        },
        { timeoutMs: 120000, intervalMs: 100 },
      );
      const result = (await handle.result()) as DatabaseBackupResult;
      const added = (takenOverAt - killedAt) / 1000;
      console.log(
        `      (d) worker killed (kill -9) ${((killedAt - started) / 1000).toFixed(1)} s into the backup, while pgBackRest was ${state}; the other worker ran the wait again ${added.toFixed(1)} s later (backup done in ${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
      assert.ok(added < 20, `a killed worker added ${added.toFixed(1)} s to the backup (limit 20 s)`);
      assert.equal(result.status, 'verified');
      const inRepo1 = await setsNamed(1, name);
      const inRepo2 = await setsNamed(2, drCopyNameFor(name));
      assert.deepEqual(inRepo1.map((b) => b.label), [result.primary.handle.backupId]);
      assert.deepEqual(inRepo2.map((b) => b.label), [result.dr.handle.backupId]);
      const rows = await rowsOf(workflowId);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].status, 'verified');
      assert.equal(rows[0].locations.primary?.handle.backupId, result.primary.handle.backupId);
    } finally {
      for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
      await Promise.all(workers.map((w) => (w.exitCode === null && w.signalCode === null ? new Promise((r) => w.once('exit', r)) : undefined)));
    }
  });

  it('(f) a hung pgBackRest (alive, stopped with SIGSTOP) is stopped and reported within the stall time, not after hours', async () => {
    const workflowId = `test-dbbackup-${run}-f`;
    const name = backupNameFor(workflowId);
    const base = path.join(engine.runDir, `pgbackrest-backup-repo1-${localName(name)}`);
    const stallTimeoutMs = 4000;
    // Like a storage that stops answering mid-copy: once pgBackRest has started the backup, its processes freeze.
    const freezer = freezeOnceBackupStarts(base);
    const before = notes.length;
    try {
      const err = await runBackup(workflowId, { target: 'app', kind: 'full', pollIntervalMs: 300, stallTimeoutMs }).then(
        () => assert.fail('a hung backup must not complete'),
        (e: unknown) => e,
      );
      const detectedAfter = (Date.now() - freezer.frozenAt) / 1000;
      const pgid = freezer.pgid;
      assert.ok(pgid, 'pgBackRest was frozen');
      console.log(`      (f) pgBackRest frozen with SIGSTOP; the run failed ${detectedAfter.toFixed(1)} s later (stall time ${stallTimeoutMs / 1000} s)`);
      assert.ok(err instanceof WorkflowFailedError, String(err));
      assert.match(
        err.cause!.message,
        /^Backup of app failed while backing up: The pgbackrest backup .* made no progress for \d+ s \(its process is alive but neither read, wrote nor computed anything\), so lifeboat stopped it and failed this backup; check the backup repository's storage and the pgBackRest log, then run the backup again\.$/,
      );
      // The stall time, plus a poll or two and stopping pgBackRest (slower on a loaded machine): seconds, not hours.
      assert.ok(detectedAfter < stallTimeoutMs / 1000 + 30, `detected ${detectedAfter.toFixed(1)} s after the hang`);
      assert.equal(isAlive(pgid), false, 'the hung pgBackRest was stopped');
      assert.deepEqual(await setsNamed(1, name), [], 'no backup set came of it');
      const [row] = await rowsOf(workflowId);
      assert.equal(row.status, 'failed');
      assert.match(row.failure ?? '', /^backing up: .*made no progress/);
      assert.ok(notes.slice(before).some((n) => n.includes(`[${workflowId}]`) && n.startsWith('[lifeboat critical] Backup FAILED: app (full) while backing up')));
    } finally {
      await freezer.release();
    }
  });

  it('(h) a backup workflow cancelled while pgBackRest runs: the pgBackRest process is stopped, the row says cancelled', async () => {
    const workflowId = `test-dbbackup-${run}-h`;
    const name = backupNameFor(workflowId);
    const base = path.join(engine.runDir, `pgbackrest-backup-repo1-${localName(name)}`);
    // Frozen (as in (f)) so that it is surely still running when the cancellation arrives; no stall time in sight.
    const freezer = freezeOnceBackupStarts(base);
    try {
      let cancelledAt = 0;
      const err = await runBackup(workflowId, { target: 'app', kind: 'full', pollIntervalMs: 300 }, {
        during: async () => {
          await waitUntil('pgBackRest to be frozen mid-backup', async () => freezer.pgid !== undefined, { timeoutMs: 120000, intervalMs: 50 });
          // Cancelled while the workflow waits for pgBackRest, as an operator would see it in the Web UI.
          await waitUntil(
            'the wait for the backup',
            async () => ((await env.client.workflow.getHandle(workflowId).describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'waitForDatabaseBackup'),
            { timeoutMs: 120000, intervalMs: 100 },
          );
          await env.client.workflow.getHandle(workflowId).cancel();
          cancelledAt = Date.now();
        },
      }).then(
        () => assert.fail('a cancelled backup does not complete'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError, String(err));
      // The cancellation reaches the activity with its next heartbeat (the SDK sends one per ~80% of the
      // 15 s timeout), then pgBackRest is stopped: the bound proves "stopped", the figure is printed.
      await waitUntil('the cancelled backup\'s pgBackRest to stop', async () => !isAlive(freezer.pgid!), { timeoutMs: 90000, intervalMs: 100 });
      console.log(`      (h) pgBackRest stopped ${((Date.now() - cancelledAt) / 1000).toFixed(1)} s after the cancellation`);
      const [row] = await rowsOf(workflowId);
      assert.equal(row.status, 'failed');
      assert.match(row.failure ?? '', /the backup workflow was cancelled/);
      assert.deepEqual(await setsNamed(1, name), []);
    } finally {
      await freezer.release();
    }
  });

  it('(g) a DR copy that fails after the primary copy verified: the backup stays verified, the copy\'s failure is recorded apart', async () => {
    const workflowId = `test-dbbackup-${run}-g`;
    const refusing: Ports = {
      ...ports,
      database(targetName: string): DatabaseEngine {
        const real = ports.database(targetName);
        return Object.assign(Object.create(real) as DatabaseEngine, {
          async copyToDisasterRecovery(): Promise<BackupHandle> {
            throw new LifeboatError('The DR repository refused the copy (injected by the test: its bucket is read-only); make it writable and run the backup again.', 'DR_REFUSED', true);
          },
        });
      },
    };
    const before = notes.length;
    const err = await runBackup(workflowId, { target: 'app', kind: 'incr', pollIntervalMs: 300 }, { ports: refusing }).then(
      () => assert.fail('a failed DR copy fails the run'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'BACKUP_DR_COPY_FAILED');
    assert.match(err.cause.message, /^Backup \S+I of app is verified in the primary region, but its DR copy failed while copying to the DR region: .*DR repository refused the copy/);
    const [row, ...more] = await rowsOf(workflowId);
    assert.equal(more.length, 0);
    assert.equal(row.status, 'verified', 'a verified backup never becomes failed because a later step failed');
    assert.ok(row.verified_at);
    assert.ok(row.locations.primary?.verified);
    assert.match(row.failure ?? '', /^DR copy failed while copying to the DR region: .*refused the copy/);
    const mine = notes.slice(before).filter((n) => n.includes(`[${workflowId}]`));
    assert.ok(mine.some((n) => /^\[lifeboat critical\] DR copy FAILED: app \(incr\) while copying to the DR region; the primary backup \S+I is verified/.test(n)), mine.join('\n'));
    // The verified primary copy counts as the last good backup.
    const rpo = await rpoStatus(ports, 'app');
    assert.equal(rpo.lastGoodBackupWorkflowId, workflowId);
    await recordHistory(env.client.workflow.getHandle(workflowId), 'databaseBackup-v3-dr-copy-failed');
  });

  it('(e) with WAL archived continuously, preflight judges the RPO by the archive\'s lag, not by the last backup\'s age', async () => {
    const workflowId = `test-dbbackup-${run}-e`;
    // An RPO of one second: every backup above is older than that, yet WAL reaches the repository continuously.
    const tight: LifeboatConfig = { ...config, objectives: { ...config.objectives, database: { ...config.objectives.database, rpo: 1 } } };
    const tightNotes: string[] = [];
    const tightPorts = createPorts(tight, { log: (l) => tightNotes.push(l) });
    try {
      await new Promise((r) => setTimeout(r, 1100));
      const result = await runBackup(workflowId, { target: 'app', kind: 'incr', pollIntervalMs: 300 }, { ports: tightPorts, config: tight });
      const rpo = result.preflight.rpo;
      assert.equal(rpo.basis, 'wal-archive');
      assert.equal(rpo.rpoSeconds, 1);
      assert.ok(rpo.lastGoodBackupAt, 'a verified backup exists from the tests above');
      assert.ok((rpo.ageSeconds ?? 0) >= 1, 'the last backup is older than the RPO');
      // The preflight's pgbackrest check has just archived everything: nothing or seconds at risk.
      assert.ok(rpo.lagSeconds !== undefined && rpo.lagSeconds <= 5, `lag ${rpo.lagSeconds}`);
      assert.equal(rpo.breached, rpo.lagSeconds > 1, rpo.detail);
      assert.match(rpo.detail, /^app would lose (no writes|the last \d+ s of writes) if it failed now, (within|beyond) its RPO of 1 s: .*WAL segment/);
      assert.equal(tightNotes.some((n) => n.startsWith('[lifeboat warning] RPO breached: app') && n.includes(`[${workflowId}]`)), rpo.breached, tightNotes.join('\n'));
      assert.equal(result.status, 'verified');
      assert.equal(result.kind, 'incr');
      assert.match(result.primary.handle.backupId, /I$/);
    } finally {
      await tightPorts.close();
    }
  });
});

/** Others share the stack: a busy pgBackRest lock means "wait for their backup", as an activity retry would. */
async function retryWhileBusy<T>(fn: () => Promise<T>, timeoutMs = 300000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof LifeboatError) || err.code !== 'PGBACKREST_BUSY' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Overwrites bytes in the middle of the largest data file of a backup set, keeping its size. */
async function corrupt(s3: S3Client, bucket: string, label: string): Promise<{ label: string; key: string }> {
  const prefix = `pgbackrest/backup/app/${label}/`;
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  const files = (listed.Contents ?? []).filter((o) => o.Key && (o.Size ?? 0) > 1024);
  const pgData = files.filter((o) => o.Key!.startsWith(`${prefix}pg_data/`));
  const pick = (pgData.length ? pgData : files.filter((o) => o.Key!.startsWith(`${prefix}bundle/`))).sort((a, b) => (b.Size ?? 0) - (a.Size ?? 0))[0];
  assert.ok(pick?.Key, `backup set ${label} has a data file to corrupt`);
  const body = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: pick.Key }))).Body!.transformToByteArray());
  const at = Math.floor(body.length / 2);
  for (let i = at; i < Math.min(body.length, at + 64); i++) body[i] ^= 0xff;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: pick.Key, Body: body }));
  assert.equal(body.length, pick.Size);
  return { label, key: pick.Key };
}

describe('database backup workflow with the RDS engine (SDK boundary mocked)', function () {
  const REGION = 'us-east-1';
  const DR_REGION = 'us-west-2';
  const ACCOUNT = '123456789012';
  const SOURCE = 'orders-prod';
  const DR_KMS = `arn:aws:kms:${DR_REGION}:${ACCOUNT}:key/5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d`;
  const PRIMARY_KMS = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0f6e3b2a-8c1d-4e5f-9a7b-1c2d3e4f5a6b`;
  const run = randomBytes(3).toString('hex');
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let config: LifeboatConfig;
  const notes: string[] = [];
  // Installed when the suite runs: another file's instance mocks restore a stub made at load time.
  let rds: AwsStub<ServiceInputTypes, ServiceOutputTypes, RDSClientResolvedConfig>;

  before(async function () {
    this.timeout(600000);
    rds = mockClient(RDSClient);
    env = await useTemporal();
    // The example config with an RDS target added, parsed from YAML text like any config file.
    const text = fs.readFileSync(CONFIG_FILE, 'utf8').replace(
      /\n  buckets:\n/,
      `
    - name: orders
      environment: production
      engine: rds
      instanceId: ${SOURCE}
      region: ${REGION}
      drRegion: ${DR_REGION}
      drKmsKeyId: ${DR_KMS}
      database: orders
      user: lifeboat
      criticalTables: [orders]

  buckets:
`,
    );
    config = parseConfig(text, 'rds-test-config.yaml');
    ports = createPorts(config, { log: (l) => notes.push(l) });
  });
  beforeEach(() => rds.reset());
  after(async () => {
    rds?.restore();
    await ports?.close();
  });

  async function runBackup(workflowId: string): Promise<DatabaseBackupResult> {
    const taskQueue = uniqueTaskQueue('dbbackup-rds');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(env.client.workflow.execute('databaseBackup', { taskQueue, workflowId, args: [{ target: 'orders', pollIntervalMs: 50, requestedBy: 'schedule' }] }) as Promise<DatabaseBackupResult>);
  }

  function snapshot(id: string, region: string, status: string, extra: Partial<DBSnapshot> = {}): DBSnapshot {
    return {
      DBSnapshotIdentifier: id,
      DBSnapshotArn: `arn:aws:rds:${region}:${ACCOUNT}:snapshot:${id}`,
      DBInstanceIdentifier: SOURCE,
      Status: status,
      AllocatedStorage: 100,
      Encrypted: true,
      KmsKeyId: region === DR_REGION ? DR_KMS : PRIMARY_KMS,
      SnapshotCreateTime: new Date('2026-11-21T03:00:04.000Z'),
      FullSnapshotSizeInBytes: 5 * 1024 ** 3,
      DbiResourceId: 'db-ABCDEFGHIJKLMNOPQRSTUVWXY0',
      TagList: [{ Key: 'lifeboat:managed', Value: 'true' }],
      ...extra,
    } as DBSnapshot;
  }

  function mockSource(): void {
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [{ DBInstanceIdentifier: SOURCE, DBInstanceStatus: 'available', AllocatedStorage: 100, EngineVersion: '16.3', DbiResourceId: 'db-ABCDEFGHIJKLMNOPQRSTUVWXY0', Endpoint: { Address: `${SOURCE}.example.${REGION}.rds.amazonaws.com`, Port: 5432 } }],
    });
  }

  it('snapshots, waits through creating (30%), copies to the DR region with its key, verifies both and records one row', async () => {
    const workflowId = `test-dbbackup-rds-${run}`;
    const snapshotId = rdsIdentifier(backupNameFor(workflowId), 255);
    const copyId = rdsIdentifier(drCopyNameFor(backupNameFor(workflowId)), 255);
    mockSource();
    rds.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: snapshot(snapshotId, REGION, 'creating', { PercentProgress: 0 }) });
    const asked = new Map<string, number>();
    rds.on(DescribeDBSnapshotsCommand).callsFake(async (input: { DBSnapshotIdentifier: string }, getClient: () => RDSClient) => {
      const region = await getClient().config.region();
      const id = input.DBSnapshotIdentifier;
      const n = (asked.get(id) ?? 0) + 1;
      asked.set(id, n);
      if (id === snapshotId && region === REGION) return { DBSnapshots: [snapshot(id, REGION, n === 1 ? 'creating' : 'available', { PercentProgress: n === 1 ? 30 : 100 })] };
      if (id === copyId && region === DR_REGION) {
        return { DBSnapshots: [snapshot(id, DR_REGION, n === 1 ? 'copying' : 'available', { SourceDBSnapshotIdentifier: `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${snapshotId}`, PercentProgress: n === 1 ? 60 : 100 })] };
      }
      throw new Error(`unexpected DescribeDBSnapshots of ${id} in ${region}`);
    });
    rds.on(CopyDBSnapshotCommand).callsFake(async (input: { TargetDBSnapshotIdentifier: string }) => ({ DBSnapshot: snapshot(input.TargetDBSnapshotIdentifier, DR_REGION, 'pending') }));

    const result = await runBackup(workflowId);
    assert.equal(result.status, 'verified');
    assert.equal(result.engine, 'rds');
    assert.equal(result.kind, 'full');
    assert.equal(result.primary.handle.backupId, snapshotId);
    assert.equal(result.dr.handle.backupId, copyId);
    assert.equal(result.primary.sizeBytes, 5 * 1024 ** 3);
    assert.ok(result.verifications.dr.checks.some((c) => c.name === 'dr-kms-key' && c.ok));
    assert.ok((asked.get(snapshotId) ?? 0) >= 2, 'progress was polled through creating');

    const creates = rds.commandCalls(CreateDBSnapshotCommand);
    assert.equal(creates.length, 1);
    assert.equal(creates[0].args[0].input.DBInstanceIdentifier, SOURCE);
    assert.equal(await (creates[0].thisValue as RDSClient).config.region(), REGION);
    const copies = rds.commandCalls(CopyDBSnapshotCommand);
    assert.equal(copies.length, 1);
    assert.equal(await (copies[0].thisValue as RDSClient).config.region(), DR_REGION, 'the copy is sent to the DR region');
    assert.equal(copies[0].args[0].input.KmsKeyId, DR_KMS);
    assert.equal(copies[0].args[0].input.SourceDBSnapshotIdentifier, `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${snapshotId}`);

    const rows = await ports.catalog.query<BackupRow>('SELECT id::text AS id, status, engine, backup_type, engine_backup_id, size_bytes::text AS size_bytes, locations FROM backups WHERE workflow_id = $1', [workflowId]);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].status, 'verified');
    assert.equal(rows[0].engine, 'rds');
    assert.equal(rows[0].backup_type, 'full');
    assert.equal(Number(rows[0].size_bytes), 5 * 1024 ** 3);
    assert.equal(rows[0].locations.primary?.handle.locator, `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${snapshotId}`);
    assert.equal(rows[0].locations.dr?.handle.backupId, copyId);
    assert.equal(rows[0].locations.dr?.handle.location, DR_REGION);
    assert.ok(notes.some((n) => n.includes(`[${workflowId}]`) && n.includes('Backup complete: orders (full, 5.0 GiB)')), notes.join('\n'));
  });

  it('fails at once, without retrying, when the DR region\'s KMS key is not accessible, with the operator\'s message', async () => {
    const workflowId = `test-dbbackup-rds-kms-${run}`;
    const snapshotId = rdsIdentifier(backupNameFor(workflowId), 255);
    mockSource();
    rds.on(CreateDBSnapshotCommand).resolves({ DBSnapshot: snapshot(snapshotId, REGION, 'creating') });
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [snapshot(snapshotId, REGION, 'available')] });
    rds.on(CopyDBSnapshotCommand).rejects(
      new KMSKeyNotAccessibleFault({ message: 'The specified KMS key does not exist, is not enabled or you do not have permissions to access it.', $metadata: { httpStatusCode: 400 } }),
    );
    const started = Date.now();
    const err = await runBackup(workflowId).then(
      () => assert.fail('an inaccessible KMS key must fail the backup'),
      (e: unknown) => e,
    );
    const seconds = (Date.now() - started) / 1000;
    assert.ok(err instanceof WorkflowFailedError);
    const message = err.cause!.message;
    // The snapshot in the primary region verified: it stays verified; what failed is its DR copy.
    assert.match(message, /^Backup \S+ of orders is verified in the primary region, but its DR copy failed while copying to the DR region: RDS CopyDBSnapshot in us-west-2 failed with KMSKeyNotAccessibleFault/);
    assert.match(message, /key policy/);
    assert.equal(rds.commandCalls(CopyDBSnapshotCommand).length, 1, 'a non-retryable failure is not retried');
    assert.ok(seconds < 30, `failed in ${seconds} s`);
    const [row] = await ports.catalog.query<BackupRow>('SELECT status, failure FROM backups WHERE workflow_id = $1', [workflowId]);
    assert.equal(row.status, 'verified');
    assert.match(row.failure ?? '', /^DR copy failed while copying to the DR region: .*KMSKeyNotAccessibleFault/);
    assert.ok(notes.some((n) => n.startsWith('[lifeboat critical] DR copy FAILED: orders (full) while copying to the DR region') && n.includes(`[${workflowId}]`)), notes.join('\n'));
  });
});

/**
 * Freezes (SIGSTOP) the process group of the pgBackRest backup whose files start with `base` as
 * soon as its log says the backup started: a storage that stops answering mid-copy. `release`
 * stops watching and kills what is still frozen.
 */
function freezeOnceBackupStarts(base: string): { readonly pgid: number | undefined; readonly frozenAt: number; release(): Promise<void> } {
  let watching = true;
  const state = { pgid: undefined as number | undefined, frozenAt: 0 };
  const watcher = (async () => {
    while (watching && state.pgid === undefined) {
      try {
        if (/backup start archive/.test(fs.readFileSync(`${base}.log`, 'utf8'))) {
          const pid = Number(fs.readFileSync(`${base}.pid`, 'utf8').trim());
          process.kill(-pid, 'SIGSTOP');
          state.pgid = pid;
          state.frozenAt = Date.now();
        }
      } catch {
        /* not started yet */
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    get pgid() {
      return state.pgid;
    },
    get frozenAt() {
      return state.frozenAt;
    },
    async release() {
      watching = false;
      await watcher;
      if (state.pgid !== undefined && isAlive(state.pgid)) {
        process.kill(-state.pgid, 'SIGKILL');
        process.kill(-state.pgid, 'SIGCONT');
      }
    },
  };
}

