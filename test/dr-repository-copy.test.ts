/**
 * The DR copy made by copying the repository (`drCopy: repository-copy`), on the real stack: the
 * backup workflow reads the source once (one pgBackRest backup, into repo1), lifeboat streams the
 * set and its WAL from the primary MinIO to the DR MinIO, pgBackRest registers it in repo2, the
 * set check verifies it there, and the lag is recorded, listed and exported. Then: a PITR restore
 * from repo2 alone; a copy broken mid-way (DR copy failed, primary untouched, nothing half-copied
 * counted) and resumed; a worker killed mid-copy, the other resuming without copying twice.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ListObjectsV2Command, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { createPorts, Ports } from '../src/activities/ports';
import { listBackups } from '../src/activities/backup';
import { backupRemoval, type BackupRecord } from '../src/activities/retention';
import { LifeboatConfig, loadConfig } from '../src/config';
import { backupNameFor, DatabaseBackupInput, DatabaseBackupResult, drCopyNameFor } from '../src/domain/backup';
import { LifeboatError } from '../src/domain/errors';
import type { BackupHandle, DatabaseEngine } from '../src/domain/ports';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { BACKUP_ANNOTATION } from '../src/engines/pgbackrest/backups';
import type { RepositoryCopyProgress } from '../src/engines/pgbackrest/repository-copy';
import { collectCatalogMetrics } from '../src/metrics/catalog-metrics';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { waitUntil } from '../src/platform/processes';
import { s3ClientFor, Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { recordHistory } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');
const WORKER_ENTRY = path.resolve(__dirname, '../src/worker.js');
const SCRATCH_DB = 'lifeboat_drcopy_test';

interface Row {
  status: string;
  failure: string | null;
  locations: {
    primary?: { handle: BackupHandle; verified?: boolean };
    dr?: { handle: BackupHandle; verified?: boolean; failed?: boolean; lagSeconds?: number; copyMode?: string; startedAt?: string; completedAt?: string };
  };
}

describe('DR copy by repository copy (drCopy: repository-copy, real stack)', function () {
  const run = randomBytes(3).toString('hex');
  let config: LifeboatConfig;
  let env: TestWorkflowEnvironment;
  let stack: Stack;
  let ports: Ports;
  let engine: PgBackRestEngine;
  let drS3: S3Client;
  let first: DatabaseBackupResult | undefined;

  before(async function () {
    this.timeout(600000);
    // The stack's config takes the mode from LIFEBOAT_DR_COPY (see lifeboat.config.yaml).
    const previous = process.env.LIFEBOAT_DR_COPY;
    process.env.LIFEBOAT_DR_COPY = 'repository-copy';
    try {
      config = loadConfig(CONFIG_FILE);
    } finally {
      if (previous === undefined) delete process.env.LIFEBOAT_DR_COPY;
      else process.env.LIFEBOAT_DR_COPY = previous;
    }
    env = await useTemporal();
    stack = await useStack();
    ports = createPorts(config);
    await ports.catalog.migrate();
    engine = ports.database('app') as PgBackRestEngine;
    assert.equal(engine.drCopy, 'repository-copy');
    drS3 = s3ClientFor(stack.ctx.settings, stack.ctx.settings.minio.dr);
  });
  after(async () => {
    drS3?.destroy();
    await ports?.close();
  });

  async function runBackup(workflowId: string, input: DatabaseBackupInput, options: { ports?: Ports } = {}): Promise<DatabaseBackupResult> {
    const taskQueue = uniqueTaskQueue('drcopy');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports: options.ports ?? ports, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(async () => {
      const handle = await env.client.workflow.start('databaseBackup', { taskQueue, workflowId, args: [input] });
      return (await handle.result()) as DatabaseBackupResult;
    });
  }

  const rowOf = async (workflowId: string): Promise<Row[]> => ports.catalog.query<Row>('SELECT status, failure, locations FROM backups WHERE workflow_id = $1', [workflowId]);

  async function setsIn(repo: number) {
    const info = await localPgBackRest(stack.ctx).info(repo);
    return (info?.backup ?? []).filter((b) => b.database['repo-key'] === repo) as Array<{ label: string; annotation?: Record<string, string> }>;
  }

  const setPrefix = (label: string) => `pgbackrest/backup/app/${label}/`;
  async function drKeys(label: string): Promise<string[]> {
    const page = await drS3.send(new ListObjectsV2Command({ Bucket: stack.ctx.settings.minio.dr.backupBucket, Prefix: setPrefix(label) }));
    return (page.Contents ?? []).map((o) => o.Key!);
  }
  /** Versions per key under the set's prefix in the DR bucket (versioned): more than one means an object was written twice. */
  async function drVersions(label: string): Promise<Map<string, number>> {
    const versions = new Map<string, number>();
    const page = await drS3.send(new ListObjectVersionsCommand({ Bucket: stack.ctx.settings.minio.dr.backupBucket, Prefix: setPrefix(label) }));
    for (const v of page.Versions ?? []) versions.set(v.Key!, (versions.get(v.Key!) ?? 0) + 1);
    return versions;
  }

  async function onDb<T>(database: string, fn: (c: Client) => Promise<T>, port = stack.ctx.settings.postgres.primaryPort): Promise<T> {
    const c = new Client({ host: '127.0.0.1', port, user: stack.ctx.settings.postgres.superuser, database, connectionTimeoutMillis: 5000 });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  it('(a) reads the source once: one pgBackRest backup, its set copied to repo2, verified there by the set check, the lag recorded, listed and exported', async () => {
    const workflowId = `test-drcopy-${run}-a`;
    const name = backupNameFor(workflowId);
    const started = Date.now();
    const result = await runBackup(workflowId, { target: 'app', kind: 'full', pollIntervalMs: 300 });
    console.log(`      (a) backup + repository copy + both verifications in ${((Date.now() - started) / 1000).toFixed(1)} s; copied ${result.dr.handle.copy?.copiedObjects} objects (${result.dr.handle.copy?.copiedBytes} bytes), DR copy lag ${result.dr.lagSeconds} s`);
    assert.equal(result.status, 'verified');
    // Checked before the source was read: both repositories can be copied byte for byte.
    const ready = result.preflight.checks.find((c) => c.name === 'dr-copy');
    assert.ok(ready?.ok, JSON.stringify(ready));
    assert.match(ready.detail, /repo1 \(s3 .*\) can be copied into repo2/);
    const label = result.primary.handle.backupId;
    // The same set in both repositories: one backup of the source, not two.
    assert.equal(result.dr.handle.backupId, label);
    assert.equal(result.dr.handle.locator, 'repo2');
    assert.equal(result.dr.handle.copy?.mode, 'repository-copy');
    assert.ok((result.dr.handle.copy?.copiedObjects ?? 0) > 0, 'the copy wrote the set into repo2');
    assert.deepEqual(result.dr.handle.copy?.sets, [label]);
    const repo2 = await setsIn(2);
    assert.deepEqual(repo2.filter((b) => b.annotation?.[BACKUP_ANNOTATION] === name).map((b) => b.label), [label], 'pgBackRest lists the copied set in repo2 under the same name');
    assert.equal(repo2.filter((b) => b.annotation?.[BACKUP_ANNOTATION] === drCopyNameFor(name)).length, 0, 'no second backup of the source was taken');
    // Verified in repo2 by the set check (the set's files and WAL read back from the DR MinIO).
    const setCheck = result.verifications.dr.checks.find((c) => c.name === 'repository-verify');
    assert.ok(setCheck?.ok, JSON.stringify(result.verifications.dr.checks));
    assert.match(setCheck.detail, /repo2/);
    // The lag, on record with the backup, in `backups list` and in the metrics.
    const [row] = await rowOf(workflowId);
    assert.equal(row.status, 'verified');
    assert.equal(row.locations.dr?.copyMode, 'repository-copy');
    assert.equal(typeof row.locations.dr?.lagSeconds, 'number');
    assert.ok(row.locations.dr!.lagSeconds! >= 0 && row.locations.dr!.lagSeconds! < 600, `lag ${row.locations.dr?.lagSeconds}`);
    assert.equal(row.locations.dr?.startedAt, result.dr.handle.copy?.startedAt, 'the DR location carries the copy\'s own times');
    const listed = (await listBackups(ports, { target: 'app', limit: 10 })).find((e) => e.workflowId === workflowId);
    assert.equal(listed?.drLagSeconds, row.locations.dr?.lagSeconds);
    const metrics = await collectCatalogMetrics(ports.catalog, config);
    const lag = metrics.find((m) => m.name === 'lifeboat_backup_dr_copy_lag_seconds');
    assert.deepEqual(lag?.samples, [{ labels: { target: 'app', mode: 'repository-copy' }, value: row.locations.dr!.lagSeconds }]);
    first = result;
    await recordHistory(env.client.workflow.getHandle(workflowId), 'databaseBackup-v6-repository-copy');
  });

  it('(b) a point-in-time restore from repo2 alone (primary MinIO down) to a time after the copied backup', async () => {
    assert.ok(first, 'needs the backup of (a)');
    await onDb('postgres', async (c) => {
      if (!(await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [SCRATCH_DB])).rowCount) await c.query(`CREATE DATABASE ${SCRATCH_DB}`);
    });
    const at = await onDb(SCRATCH_DB, async (c) => {
      await c.query('CREATE TABLE IF NOT EXISTS marks (label text PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
      await c.query('INSERT INTO marks (label) VALUES ($1)', [`before-${run}`]);
      await new Promise((r) => setTimeout(r, 1100));
      const point = (await c.query<{ t: Date }>('SELECT clock_timestamp() AS t')).rows[0].t.toISOString();
      await new Promise((r) => setTimeout(r, 1100));
      await c.query('INSERT INTO marks (label) VALUES ($1)', [`after-${run}`]);
      return point;
    });
    // Both marks archived to both repositories before the primary region goes away.
    await localPgBackRest(stack.ctx).check();
    const destination = `test-drcopy-${run}-pitr`;
    const owner = { workflowId: `test-drcopy-${run}-b`, runId: `run-${run}`, restorePoint: at, createdAt: new Date().toISOString() };
    try {
      await stack.minioPrimary.stop();
      try {
        await engine.startRestore({ destinationId: destination, point: { kind: 'time', at }, fromRegion: 'dr', owner });
        await waitUntil(
          `restore ${destination} from repo2 to ${at}`,
          async () => {
            const d = await engine.describeInstance(destination);
            if (d?.status === 'failed') throw new Error(`restore failed: ${d.detail}`);
            return d?.status === 'available' ? true : `${d?.status}: ${d?.detail ?? ''}`;
          },
          { timeoutMs: 300000, intervalMs: 300 },
        );
      } finally {
        await stack.minioPrimary.start();
      }
      const restored = await engine.describeInstance(destination);
      const marks = await onDb(SCRATCH_DB, async (c) => (await c.query<{ label: string }>('SELECT label FROM marks ORDER BY label')).rows.map((r) => r.label), restored!.endpoint!.port);
      assert.ok(marks.includes(`before-${run}`), `the restore reaches ${at}: ${marks.join(', ')}`);
      assert.ok(!marks.includes(`after-${run}`), `the restore stops at ${at}: ${marks.join(', ')}`);
    } finally {
      await engine.deleteInstance(destination, owner);
    }
  });

  it('(c) a copy that breaks mid-way: DR copy failed, the primary copy verified and untouched, nothing half-copied listed; the next copy resumes', async () => {
    const workflowId = `test-drcopy-${run}-c`;
    const breaking: Ports = {
      ...ports,
      database(targetName: string): DatabaseEngine {
        const real = ports.database(targetName);
        return Object.assign(Object.create(real) as DatabaseEngine, {
          copyToDisasterRecovery(handle: BackupHandle, request: { copyName: string }): Promise<BackupHandle> {
            return real.copyToDisasterRecovery(handle, {
              ...request,
              onProgress: (p: unknown) => {
                if ((p as RepositoryCopyProgress).copiedObjects >= 1) {
                  throw new LifeboatError('The link to the DR region broke after the first object (injected by the test); lifeboat copies the rest at the next run.', 'DR_LINK_BROKEN', true);
                }
              },
            });
          },
        });
      },
    };
    const err = await runBackup(workflowId, { target: 'app', kind: 'incr', pollIntervalMs: 300 }, { ports: breaking }).then(
      () => assert.fail('a broken copy fails the run'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
    assert.equal(err.cause.type, 'BACKUP_DR_COPY_FAILED');
    assert.match(err.cause.message, /verified in the primary region, but its DR copy failed while copying to the DR region: .*link to the DR region broke/);
    const [row] = await rowOf(workflowId);
    assert.equal(row.status, 'verified');
    assert.ok(row.locations.primary?.verified);
    assert.match(row.failure ?? '', /^DR copy failed while copying to the DR region/);
    const primary = row.locations.primary!.handle;
    const label = primary.backupId;
    // The primary copy is untouched and still verifies.
    assert.ok((await setsIn(1)).some((b) => b.label === label));
    assert.ok((await engine.verifyBackup(primary)).ok);
    // Some objects reached repo2, but no manifest: pgBackRest does not list the set there.
    await new Promise((r) => setTimeout(r, 1000)); // uploads already under way when the copy broke finish or fail
    const partial = await drKeys(label);
    assert.ok(partial.length >= 1, 'the first object was copied');
    assert.ok(!partial.some((k) => k.endsWith('/backup.manifest')), partial.join('\n'));
    assert.ok(!(await setsIn(2)).some((b) => b.label === label), 'a half-copied set is not in repo2\'s backup.info');

    // The next copy of the same set copies only what is missing, and the result verifies.
    const resumed = await engine.copyToDisasterRecovery(primary, { copyName: drCopyNameFor(backupNameFor(workflowId)) });
    assert.ok((resumed.copy?.presentObjects ?? 0) >= 1, JSON.stringify(resumed.copy));
    assert.ok([...(await drVersions(label)).values()].every((n) => n === 1), 'no object of the set was written twice');
    assert.ok((await setsIn(2)).some((b) => b.label === label));
    const verification = await engine.verifyBackup(resumed);
    assert.ok(verification.ok, JSON.stringify(verification.checks));
    await recordHistory(env.client.workflow.getHandle(workflowId), 'databaseBackup-v6-repository-copy-failed');
  });

  it('(d) a worker killed (kill -9) mid-copy: the other worker resumes the copy, no object is written twice, the copy verifies', async () => {
    // Enough data that the copy takes a while: incompressible rows in the scratch database.
    await onDb('postgres', async (c) => {
      if (!(await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [SCRATCH_DB])).rowCount) await c.query(`CREATE DATABASE ${SCRATCH_DB}`);
    });
    await onDb(SCRATCH_DB, async (c) => {
      await c.query('CREATE TABLE IF NOT EXISTS ballast (id int PRIMARY KEY, payload bytea NOT NULL)');
      if (Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM ballast')).rows[0].n) === 0) {
        // ~96 MiB of random bytes in 32 KiB rows (stored out of line, uncompressed).
        await c.query("ALTER TABLE ballast ALTER COLUMN payload SET STORAGE EXTERNAL");
        await c.query('INSERT INTO ballast SELECT g, decode(string_agg(md5(random()::text || g::text || s::text), \'\'), \'hex\') FROM generate_series(1, 3072) g, generate_series(1, 2048) s GROUP BY g');
      }
    });
    const taskQueue = uniqueTaskQueue('drcopy-kill');
    const workflowId = `test-drcopy-${run}-d`;
    const workers: ChildProcess[] = [];
    const startWorker = async (): Promise<ChildProcess> => {
      const child = spawn(process.execPath, [WORKER_ENTRY], {
        env: { ...process.env, LIFEBOAT_CONFIG: CONFIG_FILE, LIFEBOAT_TASK_QUEUE: taskQueue, LIFEBOAT_DR_COPY: 'repository-copy' },
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
    try {
      await startWorker();
      await startWorker();
      const handle = await env.client.workflow.start('databaseBackup', { taskQueue, workflowId, args: [{ target: 'app', kind: 'full', pollIntervalMs: 300 } satisfies DatabaseBackupInput] });
      let holder = '';
      let label = '';
      let copiedBeforeKill: string[] = [];
      await waitUntil(
        'the copy to be under way, part of the set in repo2',
        async () => {
          const desc = await handle.describe();
          if (desc.status.name !== 'RUNNING') throw new Error(`the backup ended (${desc.status.name}) before the copy could be interrupted`);
          const copy = (desc.raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'copyDatabaseBackupToDr' && a.lastWorkerIdentity);
          if (!copy) return 'copy not started';
          holder = copy.lastWorkerIdentity ?? '';
          label ||= (await setsIn(1)).find((b) => b.annotation?.[BACKUP_ANNOTATION] === backupNameFor(workflowId))?.label ?? '';
          if (!label) return 'label not known yet';
          copiedBeforeKill = await drKeys(label);
          if (copiedBeforeKill.some((k) => k.endsWith('/backup.manifest'))) throw new Error('the copy finished before the worker could be killed: give the test more data');
          return copiedBeforeKill.length > 0 || `${copiedBeforeKill.length} objects in repo2`;
        },
        { timeoutMs: 300000, intervalMs: 50 },
      );
      const victim = workers.find((w) => holder.startsWith(`${w.pid}@`));
      assert.ok(victim, `the copy runs on one of this test's workers (${holder})`);
      victim.kill('SIGKILL');
      const result = (await handle.result()) as DatabaseBackupResult;
      console.log(`      (d) worker killed with ${copiedBeforeKill.length} objects of ${label} in repo2; the resumed copy found ${result.dr.handle.copy?.presentObjects} there and copied ${result.dr.handle.copy?.copiedObjects}`);
      assert.equal(result.status, 'verified');
      assert.equal(result.dr.handle.backupId, label);
      assert.ok((result.dr.handle.copy?.presentObjects ?? 0) >= 1, `the copy resumed: ${JSON.stringify(result.dr.handle.copy)}`);
      const versions = await drVersions(label);
      assert.ok([...versions.values()].every((n) => n === 1), `no object written twice: ${JSON.stringify([...versions])}`);
      assert.ok(result.verifications.dr.ok);
      const [row] = await rowOf(workflowId);
      assert.equal(row.status, 'verified');
      assert.equal(typeof row.locations.dr?.lagSeconds, 'number');
    } finally {
      for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
      await Promise.all(workers.map((w) => (w.exitCode === null && w.signalCode === null ? new Promise((r) => w.once('exit', r)) : undefined)));
      await onDb(SCRATCH_DB, (c) => c.query('DROP TABLE IF EXISTS ballast')).catch(() => undefined);
    }
  });

  it('(e) retention: a full copied to repo2 only as the base of copied diffs stays while one depends on it and is expired with the last', async () => {
    const base = `test-drcopy-${run}-e`;
    const take = async (suffix: string, kind: 'full' | 'diff'): Promise<BackupHandle> => {
      const started = await engine.startBackup({ backupName: `${base}-${suffix}`, kind });
      let label = '';
      await waitUntil(
        `backup ${base}-${suffix}`,
        async () => {
          const p = await engine.backupProgress(started);
          if (p.state === 'failed') throw new Error(p.detail);
          if (p.state === 'complete') label = p.backupId!;
          return p.state === 'complete' || p.detail;
        },
        { timeoutMs: 300000, intervalMs: 300 },
      );
      return { ...started, backupId: label };
    };
    // Only repo1 holds these: the full's own DR copy never happened (a second backup, or one that failed).
    const full = await take('full', 'full');
    const d1 = await take('d1', 'diff');
    const d2 = await take('d2', 'diff');
    const c1 = await engine.copyToDisasterRecovery(d1, { copyName: drCopyNameFor(d1.name!) });
    const c2 = await engine.copyToDisasterRecovery(d2, { copyName: drCopyNameFor(d2.name!) });
    assert.deepEqual(c1.copy?.sets, [full.backupId, d1.backupId], 'the first diff brought its full along');
    assert.deepEqual(c1.copy?.dependsOn, [full.backupId]);
    assert.deepEqual(c2.copy?.sets, [d2.backupId], 'the second found the full there');
    assert.deepEqual(c2.copy?.dependsOn, [full.backupId]);
    const inRepo2 = async () => (await setsIn(2)).map((b) => b.label);
    assert.ok([full.backupId, d1.backupId, d2.backupId].every((l) => l), 'three labels');

    // Retention (and `backups delete`) of catalog rows holding only these DR copies; no live row holds the full as its DR copy.
    const { deleteDatabaseBackups } = backupRemoval(ports);
    const rowOfCopy = (h: BackupHandle) => ({ id: '-1', target: 'app', engine: 'pgbackrest', engine_backup_id: h.backupId, locations: { dr: { handle: h } } }) as unknown as BackupRecord;
    const [first] = await deleteDatabaseBackups(rowOfCopy(c1));
    console.log(`      (e) ${first.detail}`);
    assert.equal(first.outcome, 'deleted');
    assert.match(first.detail, new RegExp(`kept its base ${full.backupId} \\(BACKUP_HAS_DEPENDENTS`));
    let labels = await inRepo2();
    assert.ok(!labels.includes(d1.backupId) && labels.includes(full.backupId) && labels.includes(d2.backupId), labels.join(' '));
    const [second] = await deleteDatabaseBackups(rowOfCopy(c2));
    console.log(`      (e) ${second.detail}`);
    assert.match(second.detail, new RegExp(`expired ${full.backupId}, copied there only as its base`));
    labels = await inRepo2();
    assert.ok(![full.backupId, d1.backupId, d2.backupId].some((l) => labels.includes(l)), `repo2 holds none of them: ${labels.join(' ')}`);
    // repo1 is not touched by expiring DR copies.
    const labels1 = (await setsIn(1)).map((b) => b.label);
    assert.ok([full.backupId, d1.backupId, d2.backupId].every((l) => labels1.includes(l)), labels1.join(' '));
    for (const d of [d2, d1]) await engine.deleteBackup(d);
  });
});
