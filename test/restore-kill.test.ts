/**
 * Issue 12: a worker killed with kill -9 in the middle of restores of four kinds, each killed in
 * its own long step (one restore at a time, a fresh worker at once): a table-level restore, a
 * files restore into a new bucket, a directory restore into a new directory and one in place
 * (behind the gate, killed while it moves entries into place), and a SQLite restore to a new
 * path. Fresh workers finish each (earlier restores are killed again); each result is compared
 * exactly with its source as it was backed up, and nothing half-made is left: no staging
 * directory, temporary file, working schema, scratch bucket or temporary instance beyond what the
 * report names. The in-place report lists every entry it replaced, including those the killed
 * attempt had already moved. Then a cancel mid-restore for the two kinds that had no such test
 * (directory, SQLite): nothing of the run is left.
 *
 * Each restore is killed in turn, not all with one kill: the restores are small, and on a loaded
 * machine some finished before all five were caught in flight.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { createPorts, Ports } from '../src/activities/ports';
import { destinationFor } from '../src/activities/restore';
import { interpolateConfigText, loadConfig } from '../src/config';
import type { DirectoryBackupReport, DirectoryRestoreReport } from '../src/domain/directory-backup';
import type { FilesBackupReport } from '../src/domain/files-backup';
import { FilesRestoreInput, FilesRestoreReport, restoreBucketName } from '../src/domain/files-restore';
import type { SqliteBackupReport, SqliteRestoreInput, SqliteRestoreReport } from '../src/domain/sqlite';
import type { TableRestoreInput, TableRestoreReport } from '../src/domain/table-restore';
import type { PgBackRestEngine } from '../src/engines/pgbackrest';
import { ensureBucket } from '../src/engines/s3';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { Stack } from '../src/stack/stack';
import { ensureFullBackup } from './helpers/backup-exists';
import { assertNothingCreated, onPrimary, removeAsItsOwner, uniqueId, waitForGate } from './helpers/pitr';
import { EXAMPLE_CONFIG, purge, removeBucket, removeCatalogRows } from './helpers/scratch';
import { approveSigned } from './helpers/signing';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal } from './helpers/temporal';
import { startWorkerProcess, stopWorkerProcess } from './helpers/worker-process';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const GATE_TIMINGS = { remindAfterMs: 600000, abortAfterMs: 1200000 };
/** Temporal's PENDING_ACTIVITY_STATE_STARTED: an attempt is running on a worker. */
const STARTED = 2;

/** Every entry under `dir`, read without lifeboat's code: type, mode, mtime (ms), content hash or link. */
function tree(dir: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const visit = (rel: string) => {
    const abs = rel === '.' ? dir : path.join(dir, rel);
    const st = fs.lstatSync(abs, { bigint: true });
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
    const what = type === 'file' ? createHash('sha256').update(fs.readFileSync(abs)).digest('hex') : type === 'symlink' ? fs.readlinkSync(abs) : '';
    out.push([rel, `${type} ${type === 'symlink' ? '' : (st.mode & 0o7777n).toString(8)} ${st.mtimeNs / 1000000n} ${st.uid}:${st.gid} ${what}`]);
    if (type === 'dir') for (const c of fs.readdirSync(abs).sort()) visit(rel === '.' ? c : `${rel}/${c}`);
  };
  visit('.');
  return out;
}

/** Every current object of a bucket: SHA-256 of its bytes, content type and user metadata. */
async function objects(s3: S3Client, bucket: string): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
      const body = Buffer.from(await got.Body!.transformToByteArray());
      out.push([o.Key!, `${createHash('sha256').update(body).digest('hex')} ${got.ContentType} ${JSON.stringify(got.Metadata ?? {})}`]);
    }
    token = page.NextContinuationToken;
  } while (token);
  return out.sort(([a], [b]) => (a < b ? -1 : 1));
}

const sqliteRows = (file: string, sql: string): string => execFileSync('sqlite3', ['-json', file, sql], { maxBuffer: 1 << 30 }).toString();

/** The activity attempts of a run that the server saw started, by activity type. */
async function attempts(h: WorkflowHandle): Promise<Array<{ type: string; attempt: number }>> {
  const events = (await h.fetchHistory()).events ?? [];
  const types = new Map<string, string>();
  const out: Array<{ type: string; attempt: number }> = [];
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes) types.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '');
    const s = e.activityTaskStartedEventAttributes;
    if (s) out.push({ type: types.get(String(s.scheduledEventId)) ?? '', attempt: s.attempt ?? 1 });
  }
  return out;
}

/** The activity types of `h` that an attempt is running right now. */
async function running(h: WorkflowHandle): Promise<string[]> {
  const pending = (await h.describe()).raw.pendingActivities ?? [];
  return pending.filter((p) => Number(p.state) === STARTED).map((p) => p.activityType?.name ?? '');
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10 * 60 * 1000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

describe('restores killed mid-flight (kill -9 of the worker): table, files, directory (new and in place), SQLite finish on a fresh worker, exact, with nothing half-made', function () {
  const id = randomBytes(4).toString('hex');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `lifeboat-kill-${id}-`));
  const configFile = path.join(root, 'lifeboat.yaml');
  const bigDir = `lbkill-big-${id}`;
  const manyDir = `lbkill-many-${id}`;
  const bigPath = path.join(root, 'big');
  const manyPath = path.join(root, 'many');
  const flag = path.join(root, 'commit-may-start');
  const sqliteTarget = `lbkill-sqlite-${id}`;
  const sqlitePath = path.join(root, 'sqlite', 'app.db');
  const into = path.join(root, 'sqlite-restores');
  const filesTarget = `lbkill-files-${id}`;
  const sourceBucket = `lbkill-${id}-src`;
  const filesPrefix = `files-kill-${id}/`;
  const dirPrefix = `directories-kill-${id}/`;
  const sqlitePrefix = `sqlite-kill-${id}/`;
  const dbId = uniqueId('k').slice(2).replace(/-/g, '_');
  const table = `lbkill_${dbId}_rows`;
  const schema = `recovered_k_${dbId}`;
  const taskQueue = uniqueTaskQueue('restore-kill');
  const workflowIds: string[] = [];
  const buckets: string[] = [];
  const instances: string[] = [];
  const schemas: string[] = [];
  const MANY = 3000;
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let primary: S3Client;
  let worker: ChildProcess | undefined;
  let bigAtBackup: Array<[string, string]>;
  let manyAtBackup: Array<[string, string]>;
  let filesAtBackup: Array<[string, string]>;
  let sqliteAtBackup: string;
  let tableAtBackup: unknown[];
  let pointT: string;

  const execute = async <T>(workflow: string, workflowId: string, args: unknown[]): Promise<T> => {
    workflowIds.push(workflowId);
    return (await env.client.workflow.execute(workflow, { taskQueue, workflowId, args })) as T;
  };
  const start = async (workflow: string, workflowId: string, args: unknown[]): Promise<WorkflowHandle> => {
    workflowIds.push(workflowId);
    return env.client.workflow.start(workflow, { taskQueue, workflowId, args });
  };

  before(async function () {
    this.timeout(900000);
    stack = await useStack();
    env = await useTemporal();
    await ensureFullBackup(stack);

    // Two directories: one big enough that its restore is still writing when the worker dies,
    // and one of many small files whose in-place commit is under way then. Its syntax check
    // waits for a flag file: it holds the in-place restore just before its commit until every
    // other restore is in flight (a check the target's config offers anyway, not a test hook).
    fs.mkdirSync(path.join(bigPath, 'blobs'), { recursive: true });
    for (let i = 0; i < 24; i++) fs.writeFileSync(path.join(bigPath, 'blobs', `b${i}.bin`), randomBytes(2 * 1024 * 1024));
    fs.writeFileSync(path.join(bigPath, 'app.conf'), 'listen 8080;\n');
    fs.symlinkSync('app.conf', path.join(bigPath, 'current.conf'));
    for (let d = 0; d < 30; d++) {
      fs.mkdirSync(path.join(manyPath, `d${d}`), { recursive: true });
      for (let f = 0; f < MANY / 30; f++) fs.writeFileSync(path.join(manyPath, `d${d}`, `f${f}.conf`), `setting ${d}.${f} = ${randomBytes(8).toString('hex')}\n`);
    }
    const keyFile = path.join(root, 'dir.key');
    fs.writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });

    // SQLite: ~50 MB of rows, so the download is still running when the worker dies.
    fs.mkdirSync(path.dirname(sqlitePath), { recursive: true });
    fs.mkdirSync(into, { recursive: true });
    execFileSync('sqlite3', [sqlitePath, 'PRAGMA journal_mode = WAL', 'CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)', 'INSERT INTO blobs SELECT value, randomblob(100000) FROM generate_series(1, 500)']);
    sqliteAtBackup = sqliteRows(sqlitePath, 'SELECT id, hex(sha3(body)) AS h FROM blobs ORDER BY id');

    const doc = YAML.parse(interpolateConfigText(fs.readFileSync(EXAMPLE_CONFIG, 'utf8')).text) as { targets: Record<string, unknown[]> };
    const directory = (name: string, p: string, syntaxCheck?: unknown) => ({
      name,
      environment: 'staging',
      path: p,
      encryptionKey: { secretRef: `file:${keyFile}` },
      store: 'primary',
      bucket: 'lifeboat-backups-primary',
      prefix: dirPrefix,
      dr: { store: 'dr', bucket: 'lifeboat-backups-dr' },
      ...(syntaxCheck ? { syntaxCheck } : {}),
    });
    doc.targets.directories = [directory(bigDir, bigPath), directory(manyDir, manyPath, { command: ['sh', '-c', `while [ ! -e ${flag} ]; do sleep 0.1; done`], timeout: '10m' })];
    doc.targets.sqlite = [{ name: sqliteTarget, environment: 'staging', path: sqlitePath, store: 'primary', bucket: 'lifeboat-backups-primary', prefix: sqlitePrefix, encryptionKey: { secretRef: `file:${keyFile}` }, dr: { store: 'dr', bucket: 'lifeboat-backups-dr' } }];
    doc.targets.buckets.push({
      name: filesTarget,
      environment: 'staging',
      source: { store: 'primary', bucket: sourceBucket },
      backup: { store: 'primary', bucket: 'lifeboat-backups-primary', prefix: filesPrefix },
      replica: { store: 'dr', bucket: 'app-files-replica' },
      drBackup: { store: 'dr', bucket: 'lifeboat-backups-dr' },
    });
    fs.writeFileSync(configFile, YAML.stringify(doc));
    ports = createPorts(loadConfig(configFile), { log: () => undefined });
    primary = ports.objectStore('primary');
    buckets.push(sourceBucket);
    await ensureBucket(primary, { name: sourceBucket, versioning: true });
    for (let i = 0; i < 40; i++) await primary.send(new PutObjectCommand({ Bucket: sourceBucket, Key: `media/clip-${i}.bin`, Body: randomBytes(1024 * 1024 + i), ContentType: 'application/octet-stream', Metadata: { n: String(i) } }));
    await primary.send(new PutObjectCommand({ Bucket: sourceBucket, Key: 'docs/readme.md', Body: '# files\n', ContentType: 'text/markdown' }));

    // Enough rows that the table copy is still running when the worker dies.
    await onPrimary(stack, async (c) => {
      await c.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, payload text NOT NULL)`);
      await c.query(`INSERT INTO ${table} SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 100000) g`);
      tableAtBackup = (await c.query<{ h: string }>(`SELECT md5(string_agg(id::text || ':' || payload, ',' ORDER BY id)) AS h FROM ${table}`)).rows.map((r) => r.h);
    });
    await localPgBackRest(stack.ctx).check();
    pointT = await onPrimary(stack, async (c) => (await c.query<{ t: Date }>('SELECT now() AS t')).rows[0].t.toISOString());

    worker = await startWorkerProcess(taskQueue, configFile);
    const [big, many, files, sqlite] = await Promise.all([
      execute<DirectoryBackupReport>('directoryBackup', `test-kill-dir-big-${id}`, [{ target: bigDir }]),
      execute<DirectoryBackupReport>('directoryBackup', `test-kill-dir-many-${id}`, [{ target: manyDir }]),
      execute<FilesBackupReport>('filesBackup', `test-kill-files-${id}`, [{ target: filesTarget, mode: 'full' }]),
      execute<SqliteBackupReport>('sqliteBackup', `test-kill-sqlite-${id}`, [{ target: sqliteTarget, heartbeatMs: 1000 }]),
    ]);
    for (const r of [big, many, files, sqlite]) assert.equal(r.outcome, 'verified', JSON.stringify(r));
    bigAtBackup = tree(bigPath);
    manyAtBackup = tree(manyPath);
    filesAtBackup = await objects(primary, sourceBucket);

    // After the backups, the accidents: every small file rewritten, rows deleted, objects overwritten.
    for (let d = 0; d < 30; d++) for (let f = 0; f < MANY / 30; f++) fs.writeFileSync(path.join(manyPath, `d${d}`, `f${f}.conf`), `bad edit ${d}.${f}\n`);
    execFileSync('sqlite3', [sqlitePath, 'DELETE FROM blobs WHERE id > 10']);
    await primary.send(new PutObjectCommand({ Bucket: sourceBucket, Key: 'docs/readme.md', Body: 'overwritten\n', ContentType: 'text/plain' }));
    await onPrimary(stack, (c) => c.query(`DELETE FROM ${table} WHERE id % 3 = 0`));
    await localPgBackRest(stack.ctx).check();
  });

  after(async function () {
    this.timeout(300000);
    for (const wid of workflowIds) await env?.client.workflow.getHandle(wid).terminate('test cleanup').catch(() => undefined);
    if (worker) await stopWorkerProcess(worker, 'SIGTERM');
    if (stack) {
      const engine = ports?.database('app') as PgBackRestEngine | undefined;
      for (const i of instances) if (engine) await removeAsItsOwner(engine, i).catch((err: unknown) => console.error(`cleanup of ${i}: ${String(err)}`));
      await onPrimary(stack, async (c) => {
        for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
        await c.query(`DROP TABLE IF EXISTS ${table}`);
      }).catch(() => undefined);
    }
    if (ports) {
      for (const b of buckets) await removeBucket(primary, b).catch(() => undefined);
      for (const p of [filesPrefix, dirPrefix, sqlitePrefix]) {
        await purge(primary, 'lifeboat-backups-primary', p).catch(() => undefined);
        await purge(ports.objectStore('dr'), 'lifeboat-backups-dr', p).catch(() => undefined);
      }
      await removeCatalogRows(ports.catalog, workflowIds);
      await ports.catalog.query('DELETE FROM restores WHERE workflow_id = ANY($1)', [workflowIds]).catch(() => undefined);
      await ports.catalog.query('DELETE FROM restored_instances WHERE owner_workflow_id = ANY($1)', [workflowIds]).catch(() => undefined);
      await ports.close();
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('a kill -9 of the worker in the long step of each of five restores: fresh workers finish each, exactly as backed up, and nothing half-made is left', async function () {
    this.timeout(1800000);
    const ids = { table: uniqueId('test-kill-table'), files: uniqueId('test-kill-files-restore'), big: uniqueId('test-kill-dir-new'), many: uniqueId('test-kill-dir-inplace'), sqlite: uniqueId('test-kill-sqlite-restore') };
    const bigInto = path.join(root, 'big-restored');
    const sqliteInto = path.join(into, 'restored.db');
    schemas.push(schema);
    instances.push(destinationFor(ids.table));
    buckets.push(restoreBucketName(ids.files));

    // The long steps of each: a kill must find one of them running.
    const long: Record<string, string[]> = {
      [ids.table]: ['restoreIntoNewInstance', 'waitUntilAvailable', 'copyTablesFromRestored', 'checkTableCopies'],
      [ids.files]: ['restoreFiles', 'verifyFilesRestore'],
      [ids.big]: ['restoreDirectoryToStaging', 'verifyRestoredDirectory'],
      [ids.sqlite]: ['restoreSqliteBackup'],
      [ids.many]: ['commitDirectoryRestore'],
    };
    const busy = async (h: WorkflowHandle) => (await running(h)).find((a) => long[h.workflowId].includes(a));
    // One restore at a time, each killed (kill -9 of the worker) the moment it is seen in a long
    // step, and a fresh worker started at once: the restores are small, so one kill could not
    // catch all five in flight on a loaded machine. Earlier restores, retrying, die again too.
    const killedIn = new Map<string, string>();
    const killWhenBusy = async (h: WorkflowHandle) => {
      const step = await until(`${h.workflowId} at work`, () => busy(h), 10 * 60 * 1000, 20);
      await stopWorkerProcess(worker!);
      // A fresh worker first: a failed assertion must not leave the next test without one.
      worker = await startWorkerProcess(taskQueue, configFile);
      killedIn.set(h.workflowId, step);
    };

    // The in-place restore first: approved, it runs until its syntax check waits for the flag.
    const many = await start('directoryRestore', ids.many, [{ target: manyDir, backup: 'latest', destination: { kind: 'in-place' }, requestedBy: ALICE, reason: 'undo the bad edits', timings: { ...GATE_TIMINGS, heartbeatMs: 1000 } }]);
    await waitForGate(many, 'restore');
    await approveSigned(many, { by: BOB, reason: 'go', gate: 'restore' });
    const tableInput: TableRestoreInput = { target: 'app', restorePoint: pointT, reason: 'rows deleted', requestedBy: ALICE, mode: 'standard', timings: { ...GATE_TIMINGS, pollIntervalMs: 250 }, tables: [table], intoSchema: schema };
    const tbl = await start('tableRestore', ids.table, [tableInput]);
    await waitForGate(tbl, 'restore');
    await approveSigned(tbl, { by: BOB, reason: 'go', gate: 'restore' });
    await killWhenBusy(tbl);
    const filesInput: FilesRestoreInput = { target: filesTarget, source: { kind: 'backup', backup: 'latest' }, selection: {}, destination: { kind: 'new-bucket' }, requestedBy: ALICE, reason: 'objects overwritten', timings: { ...GATE_TIMINGS, heartbeatMs: 1000 } };
    const files = await start('filesRestore', ids.files, [filesInput]);
    await killWhenBusy(files);
    const big = await start('directoryRestore', ids.big, [{ target: bigDir, backup: 'latest', destination: { kind: 'new-dir', path: bigInto }, requestedBy: ALICE, reason: 'look at the old config', timings: { heartbeatMs: 1000 } }]);
    await killWhenBusy(big);
    const sqliteInput: SqliteRestoreInput = { target: sqliteTarget, backup: 'latest', into: sqliteInto, requestedBy: ALICE, reason: 'rows deleted', timings: { ...GATE_TIMINGS, heartbeatMs: 1000 } };
    const sql = await start('sqliteRestore', ids.sqlite, [sqliteInput]);
    await waitForGate(sql, 'restore');
    await approveSigned(sql, { by: BOB, reason: 'go', gate: 'restore' });
    await killWhenBusy(sql);
    // Then the in-place commit, killed while it moves entries into place.
    fs.writeFileSync(flag, '');
    await killWhenBusy(many);
    const all = [tbl, files, big, sql, many];

    const [tableReport, filesReport, bigReport, manyReport, sqliteReport] = (await Promise.all([tbl.result(), files.result(), big.result(), many.result(), sql.result()])) as [TableRestoreReport, FilesRestoreReport, DirectoryRestoreReport, DirectoryRestoreReport, SqliteRestoreReport];
    for (const r of [tableReport, filesReport, bigReport, manyReport, sqliteReport]) assert.equal(r.outcome, 'restored', JSON.stringify(r));
    // Each ran a step again after the kill: the kill hit work in flight, not a finished restore.
    for (const h of all) {
      const step = killedIn.get(h.workflowId)!;
      const again = (await attempts(h)).filter((x) => x.type === step && x.attempt > 1);
      assert.ok(again.length > 0, `${h.workflowId}: ${step} ran again after the kill (${JSON.stringify(await attempts(h))})`);
    }

    // Table: the rows as they were, in the new schema; the temporary instance and its files gone.
    const restoredTable = await onPrimary(stack, async (c) => (await c.query<{ h: string }>(`SELECT md5(string_agg(id::text || ':' || payload, ',' ORDER BY id)) AS h FROM ${schema}.${table}`)).rows.map((r) => r.h));
    assert.deepEqual(restoredTable, tableAtBackup);
    const engine = ports.database('app') as PgBackRestEngine;
    const target = loadConfig(configFile).targets.databases.find((d) => d.name === 'app');
    await assertNothingCreated(engine, target && target.engine === 'pgbackrest' ? target.restoresDir : '', ids.table);
    assert.deepEqual(await onPrimary(stack, async (c) => (await c.query<{ n: string }>("SELECT nspname AS n FROM pg_namespace WHERE nspname LIKE $1 ORDER BY 1", [`%${dbId}%`])).rows.map((r) => r.n)), [schema], 'no working schema beside the restored one');

    // Files: the new bucket holds exactly the objects as backed up; no other bucket of the run.
    assert.equal(filesReport.plan!.into.bucket, restoreBucketName(ids.files));
    assert.deepEqual(await objects(primary, filesReport.plan!.into.bucket), filesAtBackup);
    const ofRun = ((await primary.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name!).filter((n) => n.startsWith(restoreBucketName(ids.files).slice(0, 40)));
    assert.deepEqual(ofRun, [restoreBucketName(ids.files)]);

    // Directory, new: the tree as backed up (mark gone); no staging directory beside it.
    assert.deepEqual(tree(bigInto), bigAtBackup);
    // Directory, in place: every entry back; the report names all it replaced, the undo keeps them.
    assert.deepEqual(tree(manyPath), manyAtBackup);
    const changed = manyAtBackup.filter(([p]) => p.endsWith('.conf')).map(([p]) => p).sort();
    assert.equal(changed.length, MANY);
    assert.deepEqual([...manyReport.overwritten!].sort(), changed);
    assert.equal(manyReport.written!.overwritten, MANY);
    const undo = manyReport.plan!.inPlace!.backupDir;
    for (const p of [changed[0], changed[MANY / 2], changed[MANY - 1]]) assert.match(fs.readFileSync(path.join(undo, p), 'utf8'), /^bad edit /);
    assert.equal(fs.readdirSync(path.join(undo, 'd0')).length, MANY / 30);
    assert.deepEqual(fs.readdirSync(root).filter((n) => n.includes('lifeboat-restore')), [], 'no staging directory left');

    // SQLite: the rows as backed up; only the restored file where it was asked for.
    assert.deepEqual(sqliteRows(sqliteInto, 'SELECT id, hex(sha3(body)) AS h FROM blobs ORDER BY id'), sqliteAtBackup);
    assert.deepEqual(fs.readdirSync(into), ['restored.db'], 'no temporary file or companion left');
  });

  it('a cancel mid-restore leaves nothing of the run: directory into a new directory, SQLite to a new path', async function () {
    this.timeout(600000);
    const dirId = uniqueId('test-kill-dir-cancel');
    const sqlId = uniqueId('test-kill-sqlite-cancel');
    const dirInto = path.join(root, 'big-cancelled');
    const sqliteInto = path.join(into, 'cancelled.db');
    // One at a time, each cancelled the moment it is seen writing (small restores: both at once would race).
    const dir = await start('directoryRestore', dirId, [{ target: bigDir, backup: 'latest', destination: { kind: 'new-dir', path: dirInto }, requestedBy: ALICE, reason: 'cancel test', timings: { heartbeatMs: 500 } }]);
    await until('the directory restore writing', async () => ((await running(dir)).includes('restoreDirectoryToStaging') ? true : undefined), 5 * 60 * 1000, 20);
    await dir.cancel();
    const sql = await start('sqliteRestore', sqlId, [{ target: sqliteTarget, backup: 'latest', into: sqliteInto, requestedBy: ALICE, reason: 'cancel test', timings: { ...GATE_TIMINGS, heartbeatMs: 500 } } satisfies SqliteRestoreInput]);
    await waitForGate(sql, 'restore');
    await approveSigned(sql, { by: BOB, reason: 'go', gate: 'restore' });
    await until('the SQLite restore writing', async () => ((await running(sql)).includes('restoreSqliteBackup') ? true : undefined), 5 * 60 * 1000, 20);
    await sql.cancel();
    // A cancel reaches an activity with its next heartbeat, which the SDK throttles to 80% of the
    // heartbeat timeout (12 s): a restore step that ends first finishes the work, and the restore
    // is then done and recorded, never half-made (the SQLite one once skipped its catalog record).
    const [dirEnd, sqlEnd] = await Promise.allSettled([dir.result(), sql.result()]);
    if (dirEnd.status === 'rejected') assert.equal(fs.existsSync(dirInto), false);
    else {
      assert.equal((dirEnd.value as DirectoryRestoreReport).outcome, 'restored');
      assert.deepEqual(tree(dirInto), bigAtBackup);
    }
    assert.deepEqual(fs.readdirSync(root).filter((n) => n.includes('lifeboat-restore')), [], 'the staging directory was removed');
    if (sqlEnd.status === 'rejected') assert.deepEqual(fs.readdirSync(into).filter((n) => n !== 'restored.db'), [], 'no temporary file of the cancelled restore');
    else {
      assert.equal((sqlEnd.value as SqliteRestoreReport).outcome, 'restored');
      assert.deepEqual(sqliteRows(sqliteInto, 'SELECT id, hex(sha3(body)) AS h FROM blobs ORDER BY id'), sqliteAtBackup);
      assert.deepEqual(fs.readdirSync(into).filter((n) => n !== 'restored.db').sort(), ['cancelled.db'], 'no temporary file beside the restored one');
      const [row] = await ports.catalog.query<{ outcome: string }>('SELECT outcome FROM restores WHERE workflow_id = $1', [sqlId]);
      assert.equal(row?.outcome, 'restored', 'a restore finished after a cancel is still recorded');
    }
  });
});
