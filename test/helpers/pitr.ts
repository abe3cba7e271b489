/**
 * Shared by the point-in-time restore suites: the accident (rows before and after a point in
 * time T on the real primary), waiting on the workflow's status query, checks that nothing was
 * left behind, and recording histories for the replay suite.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { historyToJson, recordableHistory } from './history-json';
import type { Ports } from '../../src/activities/ports';
import { destinationFor } from '../../src/activities/restore';
import { WorkflowStatus } from '../../src/domain/approval';
import { statusQuery } from '../../src/workflows/messages';
import { BackupHandle, DatabaseEngine, InstanceDescription, NewPrimaryProtection, SourceFence } from '../../src/domain/ports';
import type { PgBackRestEngine } from '../../src/engines/pgbackrest';
import { localDnsRouter } from '../../src/stack/powerdns';
import { localPgBackRest } from '../../src/stack/pgbackrest';
import { delay } from '../../src/platform/processes';
import { Stack } from '../../src/stack/stack';
import type { LifeboatConfig } from '../../src/config';
import type { PitrRestoreInput, PitrRestoreReport } from '../../src/domain/restore';
import { createLifeboatWorker } from '../../src/worker';
import { uniqueTaskQueue, workflowBundle } from './temporal';

export const WAIT_MS = Number(process.env.LIFEBOAT_TEST_WAIT_MS || 5 * 60 * 1000);

/** Where restore histories are kept for the replay suite (the source tree, not lib/). */
export const HISTORIES_DIR = path.resolve(__dirname, '../../../test/histories');

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export async function withDatabase<T>(conn: { host: string; port: number; database: string; user: string }, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ ...conn, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export function onPrimary<T>(stack: Stack, fn: (c: Client) => Promise<T>): Promise<T> {
  const s = stack.ctx.settings;
  return withDatabase({ host: s.host, port: s.postgres.primaryPort, database: s.postgres.appDatabase, user: s.postgres.superuser }, fn);
}

export function onInstance<T>(stack: Stack, endpoint: { host: string; port: number } | undefined, fn: (c: Client) => Promise<T>): Promise<T> {
  assert.ok(endpoint, 'the restored instance has an endpoint');
  const s = stack.ctx.settings;
  return withDatabase({ host: endpoint.host, port: endpoint.port, database: s.postgres.appDatabase, user: s.postgres.superuser }, fn);
}

/** Rows of the accident tables, as (table -> sorted labels); a missing table maps to undefined. */
export type Snapshot = Record<string, string[] | undefined>;

export async function snapshotTables(c: Client, tables: string[]): Promise<Snapshot> {
  const out: Snapshot = {};
  for (const table of tables) {
    const exists = (await c.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [table])).rows[0].r;
    out[table] = exists ? (await c.query<{ label: string }>(`SELECT label FROM ${table} ORDER BY label`)).rows.map((r) => r.label) : undefined;
  }
  return out;
}

/**
 * The accident on the real primary: two fresh tables seeded and archived, then T (the database's
 * clock), then more rows, some deleted, the second table dropped, archived again.
 */
export interface Accident {
  kept: string;
  dropped: string;
  /** ISO-8601 UTC, from the database's clock. */
  pointT: string;
  /** What the tables held at T. */
  atT: Snapshot;
  /** What they hold after the accident. */
  after: Snapshot;
}

export async function stageAccident(stack: Stack, prefix: string): Promise<Accident> {
  const id = randomBytes(4).toString('hex');
  const kept = `${prefix}_${id}_orders`;
  const dropped = `${prefix}_${id}_notes`;
  const cli = localPgBackRest(stack.ctx);
  await onPrimary(stack, async (c) => {
    await c.query(`CREATE TABLE ${kept} (id serial PRIMARY KEY, label text NOT NULL UNIQUE)`);
    await c.query(`CREATE TABLE ${dropped} (id serial PRIMARY KEY, label text NOT NULL UNIQUE)`);
    await c.query(`INSERT INTO ${kept} (label) SELECT 'before-' || lpad(g::text, 3, '0') FROM generate_series(1, 40) g`);
    await c.query(`INSERT INTO ${dropped} (label) SELECT 'note-' || lpad(g::text, 3, '0') FROM generate_series(1, 5) g`);
  });
  // `pgbackrest check` switches WAL and waits until the segment is archived.
  await cli.check();
  const pointT = await onPrimary(stack, async (c) => (await c.query<{ t: Date }>('SELECT now() AS t')).rows[0].t.toISOString());
  const atT = await onPrimary(stack, (c) => snapshotTables(c, [kept, dropped]));
  await onPrimary(stack, async (c) => {
    await c.query(`INSERT INTO ${kept} (label) SELECT 'after-' || lpad(g::text, 3, '0') FROM generate_series(1, 25) g`);
    await c.query(`DELETE FROM ${kept} WHERE label IN ('before-001', 'before-002', 'before-003', 'before-010')`);
    await c.query(`DROP TABLE ${dropped}`);
  });
  await cli.check();
  const after = await onPrimary(stack, (c) => snapshotTables(c, [kept, dropped]));
  return { kept, dropped, pointT, atT, after };
}

export async function dropAccidentTables(stack: Stack, accident: Accident | undefined): Promise<void> {
  if (!accident) return;
  await onPrimary(stack, (c) => c.query(`DROP TABLE IF EXISTS ${accident.kept}, ${accident.dropped}`)).catch((err: unknown) => console.error(`dropping test tables: ${String(err)}`));
}

/** Polls the status query until `done` says so; returns the last status. */
export async function waitForStatus(handle: WorkflowHandle, what: string, done: (s: WorkflowStatus) => boolean, timeoutMs = WAIT_MS, intervalMs = 200): Promise<WorkflowStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: WorkflowStatus | undefined;
  for (;;) {
    last = await handle.query(statusQuery).catch(() => last);
    if (last && done(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(last)}`);
    await delay(intervalMs);
  }
}

export function waitForGate(handle: WorkflowHandle, gate: string): Promise<WorkflowStatus> {
  return waitForStatus(handle, `the ${gate} gate`, (s) => s.pendingGate?.gate === gate);
}

/** Everything under the restores directory that belongs to this workflow's destination. */
export function leftovers(restoresDir: string, destination: string): string[] {
  if (!fs.existsSync(restoresDir)) return [];
  const own = fs.readdirSync(restoresDir).filter((name) => name === destination || name.startsWith(`${destination}.`));
  const ports = path.join(restoresDir, 'ports');
  const claims = fs.existsSync(ports) ? fs.readdirSync(ports).filter((p) => fs.readFileSync(path.join(ports, p), 'utf8').trim() === destination).map((p) => `ports/${p}`) : [];
  return [...own, ...claims];
}

export async function assertNothingCreated(engine: { describeInstance(id: string): Promise<InstanceDescription | undefined> }, restoresDir: string, workflowId: string): Promise<void> {
  const destination = destinationFor(workflowId);
  assert.deepEqual(leftovers(restoresDir, destination), [], `nothing of ${destination} under ${restoresDir}`);
  assert.equal(await engine.describeInstance(destination), undefined, `no instance ${destination}`);
}

/**
 * Test cleanup, acting as the workflow run that made the instance (read from its own record):
 * lifeboat itself deletes only for the run that created it.
 */
export async function removeAsItsOwner(engine: Pick<DatabaseEngine, 'describeInstance' | 'deleteInstance'> & { restoreFiles?(id: string): { record: string } }, instanceId: string): Promise<void> {
  const found = await engine.describeInstance(instanceId);
  if (!found) return;
  assert.ok(found.owner, `${instanceId} records its owner`);
  if (found.servedTraffic && engine.restoreFiles) {
    // One that served traffic is never removed automatically: the operator's decision, by hand, in its record.
    const file = engine.restoreFiles(instanceId).record;
    const record = JSON.parse(fs.readFileSync(file, 'utf8')) as { servedTraffic?: boolean };
    delete record.servedTraffic;
    fs.writeFileSync(file, JSON.stringify(record));
  }
  await engine.deleteInstance(instanceId, found.owner);
}

/** With LIFEBOAT_RECORD_HISTORIES=1, writes the run's history for the replay suite. */
export async function recordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (!process.env.LIFEBOAT_RECORD_HISTORIES) return;
  // A recorded history is never rewritten: a changed workflow gets a new file (a new version in its name).
  const file = path.join(HISTORIES_DIR, `${name}.json`);
  if (fs.existsSync(file)) {
    console.log(`      (history ${name} is recorded already and is kept as it is; record a new version under a new name)`);
    return;
  }
  const history = await recordableHistory(handle);
  fs.mkdirSync(HISTORIES_DIR, { recursive: true });
  fs.writeFileSync(file, historyToJson(history) + '\n', { flag: 'wx' });
}

/**
 * A test's cutover, undone on the shared test stack, so later suites find the stack as before:
 * the name back at the primary, the primary writable, the new primary's full backup expired,
 * its timeline's WAL removed from both repositories (a restore following "the latest timeline"
 * would otherwise follow it), the instance removed and the catalog no longer naming it the source.
 * Production never does this: there the new primary stays the source.
 */
export async function undoTestCutover(
  stack: Stack,
  ports: Ports,
  engine: PgBackRestEngine,
  workflowId: string,
  destination: string,
  remove: (instanceId: string) => Promise<void> = (id) => removeAsItsOwner(engine, id),
): Promise<void> {
  const s = stack.ctx.settings;
  await localDnsRouter(s).pointAt(s.dns.appDbName, { host: s.host, port: s.postgres.primaryPort }, 30);
  for (const row of await ports.catalog.query<{ fence: SourceFence }>("SELECT fence FROM source_fences WHERE workflow_id = $1 AND state = 'fenced'", [workflowId])) {
    await engine.unfenceSource(row.fence);
  }
  await ports.catalog.query("UPDATE source_fences SET state = 'unfenced', unfenced_at = now() WHERE workflow_id = $1 AND state = 'fenced'", [workflowId]);
  // Only a source still current is undone: a second call finds nothing left to do.
  const sources = await ports.catalog.query<{ protection: NewPrimaryProtection }>('SELECT protection FROM target_sources WHERE workflow_id = $1 AND until IS NULL', [workflowId]);
  await ports.catalog.query('UPDATE target_sources SET until = now() WHERE workflow_id = $1 AND until IS NULL', [workflowId]);
  const protection = sources[0]?.protection;
  if (protection?.backup) {
    const done = await waitForBackup(engine, protection.backup);
    // pgBackRest never expires the newest full backup: one of the primary goes on top first.
    const fresh = await engine.startBackup({ backupName: uniqueId('test-cutover-reset'), kind: 'full' });
    await waitForBackup(engine, fresh);
    if (done) await localPgBackRest(stack.ctx).exec('expire', ['--repo=1', `--set=${done}`, '--log-level-console=warn']);
  }
  await remove(destination);
  if (protection?.timeline && protection.timeline > 1) {
    const tl = protection.timeline.toString(16).toUpperCase().padStart(8, '0');
    for (const [store, bucket] of [
      ['primary', s.minio.primary.backupBucket],
      ['dr', s.minio.dr.backupBucket],
    ]) {
      await deleteKeys(ports.objectStore(store), bucket, `pgbackrest/archive/${s.pgbackrest.stanza}/`, new RegExp(`/(${tl}[0-9A-F]{8}/|${tl}\\.history)`));
    }
  }
}

export async function waitForBackup(engine: PgBackRestEngine, handle: BackupHandle): Promise<string | undefined> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const progress = await engine.backupProgress(handle);
    if (progress.state === 'complete') return progress.backupId ?? handle.backupId;
    if (progress.state === 'failed') return undefined;
    if (Date.now() > deadline) throw new Error(`backup ${handle.backupId} did not finish: ${progress.detail}`);
    await delay(500);
  }
}

export async function deleteKeys(client: S3Client, bucket: string, prefix: string, match: RegExp | { test(key: string): boolean }): Promise<void> {
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((o) => o.Key!).filter((k) => match.test(k));
    if (keys.length) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
    token = page.NextContinuationToken;
  } while (token);
}

/** What one pitrRestore run came to: its handle and run, the result or the failure, and its last status. */
export interface RestoreRun {
  handle: WorkflowHandle;
  runId: string;
  result?: PitrRestoreReport;
  error?: unknown;
  status: WorkflowStatus;
}

/**
 * Starts pitrRestore on a task queue of its own and serves it with an in-process worker while
 * `drive` talks to it (approves, cancels, checks). A failed assertion while driving terminates
 * the run, so it never waits on a queue nobody serves. The final status is asked while the worker
 * still runs to answer the query.
 */
export async function runPitrRestore(opts: {
  env: TestWorkflowEnvironment;
  config: LifeboatConfig;
  ports: Ports;
  queuePrefix: string;
  workflowId: string;
  input: PitrRestoreInput;
  drive?: (handle: WorkflowHandle) => Promise<void>;
}): Promise<RestoreRun> {
  const taskQueue = uniqueTaskQueue(opts.queuePrefix);
  const worker = await createLifeboatWorker({ config: opts.config, connection: opts.env.nativeConnection, ports: opts.ports, taskQueue, workflowBundle: await workflowBundle() });
  const handle = await opts.env.client.workflow.start('pitrRestore', { taskQueue, workflowId: opts.workflowId, args: [opts.input] });
  return worker.runUntil(async () => {
    try {
      await opts.drive?.(handle);
    } catch (error) {
      await handle.terminate('test failed').catch(() => undefined);
      throw error;
    }
    const runId = (await handle.describe()).runId;
    const outcome = await handle.result().then(
      (result) => ({ result: result as PitrRestoreReport }),
      (error: unknown) => ({ error }),
    );
    return { handle, runId, ...outcome, status: (await handle.query(statusQuery)) as WorkflowStatus };
  });
}

/** The failure a refused request ends with: WorkflowFailedError -> ActivityFailure -> ApplicationFailure, not retried. */
export function refusal(error: unknown): ApplicationFailure {
  assert.ok(error instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(error)}`);
  assert.ok(error.cause instanceof ActivityFailure, `expected ActivityFailure, got ${String(error.cause)}`);
  const app = error.cause.cause;
  assert.ok(app instanceof ApplicationFailure, `expected ApplicationFailure, got ${String(app)}`);
  assert.equal(app.nonRetryable, true);
  return app;
}

/**
 * Test cleanup after a failback, once its instances are gone: the stanza as the suites after it
 * expect it, the configured primary its only lineage. Backups whose annotation starts with one of
 * `annotations` (the DR primary's re-protection, the new primary's first backup) are expired
 * from each repository, after `freshBackup` put one of the primary on top of both (pgBackRest
 * never expires the newest full backup); then the WAL and history of their timelines go from both buckets.
 */
export async function forgetFailbackLineage(stack: Stack, ports: Ports, annotations: string[], freshBackup: () => Promise<void>): Promise<void> {
  const s = stack.ctx.settings;
  const cli = localPgBackRest(stack.ctx);
  const ours = async () => {
    const found: Array<{ repo: number; label: string }> = [];
    for (const repo of [1, 2]) {
      const info = JSON.parse((await cli.exec('info', ['--output=json', `--repo=${repo}`])).stdout) as Array<{ backup: Array<{ label: string; annotation?: Record<string, string>; database: { 'repo-key': number } }> }>;
      for (const b of info[0]?.backup ?? []) {
        const name = b.annotation?.['lifeboat-backup'] ?? '';
        if (b.database['repo-key'] === repo && annotations.some((a) => name.startsWith(a))) found.push({ repo, label: b.label });
      }
    }
    return found;
  };
  const sets = await ours();
  if (sets.length) await freshBackup();
  for (const set of sets) await cli.exec('expire', [`--repo=${set.repo}`, `--set=${set.label}`, '--log-level-console=warn']);
  // Every timeline above the primary's own came from the failover's lineage (the DR primary's, the new primary's): WAL and history go.
  const primaryTimeline = await onPrimary(stack, async (c) => (await c.query<{ tl: number }>('SELECT timeline_id AS tl FROM pg_control_checkpoint()')).rows[0].tl);
  const above = new RegExp(`/(([0-9A-F]{8})[0-9A-F]{8}/|([0-9A-F]{8})\\.history$)`);
  const foreign = (key: string) => {
    const m = above.exec(key);
    return m !== null && parseInt(m[2] ?? m[3], 16) > primaryTimeline;
  };
  for (const [store, bucket] of [
    ['primary', s.minio.primary.backupBucket],
    ['dr', s.minio.dr.backupBucket],
  ]) {
    await deleteKeys(ports.objectStore(store), bucket, `pgbackrest/archive/${s.pgbackrest.stanza}/`, { test: foreign });
  }
}
