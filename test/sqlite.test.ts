/**
 * SQLite targets on the real stack (MinIO in both regions, Temporal, the catalog, a real worker,
 * the real CLI and the `sqlite3` shell): `lifeboat backup app-sqlite --wait` while a writer in
 * WAL mode keeps committing, and the copy is one consistent state; a restore behind the gate to
 * a new path, compared row for row with the source as it was at the backup; bad input refused in
 * one sentence before anything is made. One backup for the whole file.
 */
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { findSqliteTarget, LifeboatConfig, loadConfig } from '../src/config';
import { BackupListEntry } from '../src/domain/backup';
import { PreflightInput, PreflightResult } from '../src/domain/preflight';
import { restoreMarker, SqliteBackupReport, SqliteRestoreInput, SqliteRestoreReport } from '../src/domain/sqlite';
import { createLifeboatWorker } from '../src/worker';
import { failureOf } from '../src/client/backup-commands';
import { lifeboat } from './helpers/cli';
import { recordHistory, uniqueId, waitForGate } from './helpers/pitr';
import { purge, removeCatalogRows } from './helpers/scratch';
import { approveSigned } from './helpers/signing';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const TARGET = 'app-sqlite';

/** Rows of a query, one state of the file (opened read-write, so SQLite removes the WAL files it made when it closes). */
function rows(file: string, sql: string): unknown[] {
  const out = execFileSync('sqlite3', ['-json', file, sql], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 }).trim();
  return out ? (JSON.parse(out) as unknown[]) : [];
}
const scalar = (file: string, sql: string) => Number(Object.values(rows(file, sql)[0] as Record<string, unknown>)[0]);

describe('SQLite targets (real worker, real stack, real CLI)', function () {
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let config: LifeboatConfig;
  let source: string;
  let scratch: string;
  let backupId: string;
  let backupWorkflowId: string;
  /** The static tables as they were at the backup (the writer never touches them). */
  let customersAtBackup: unknown[];
  let writer: ChildProcess | undefined;
  let written = 0;
  const taskQueue = uniqueTaskQueue('sqlite');
  const workflowIds: string[] = [];
  const cli = (args: string[]) => lifeboat([...args], { LIFEBOAT_TASK_QUEUE: taskQueue });

  let worker: Awaited<ReturnType<typeof createLifeboatWorker>>;
  let running: Promise<void>;

  /** A writer in WAL mode: one transaction at a time, each a ledger row and its two entries, until stopped. */
  function startWriter(): void {
    const w = spawn('sqlite3', ['-bail', source], { stdio: ['pipe', 'ignore', 'pipe'] });
    writer = w;
    w.stdin.write('PRAGMA busy_timeout = 30000;\nPRAGMA synchronous = NORMAL;\n');
    const base = scalar(source, 'SELECT coalesce(max(id), 0) FROM ledger');
    const tick = () => {
      if (writer !== w || w.stdin.destroyed) return;
      for (let i = 0; i < 5; i++) {
        const n = base + ++written;
        w.stdin.write(`BEGIN IMMEDIATE; INSERT INTO ledger (id, amount, note) VALUES (${n}, ${n * 3}, 'tx ${n}'); INSERT INTO entries (ledger_id, side, amount) VALUES (${n}, 'debit', ${n * 3}), (${n}, 'credit', ${-n * 3}); COMMIT;\n`);
      }
      setTimeout(tick, 20);
    };
    tick();
  }

  async function stopWriter(): Promise<void> {
    const w = writer;
    writer = undefined;
    if (!w) return;
    const closed = new Promise((r) => w.on('close', r));
    w.stdin?.end('.quit\n');
    await closed;
  }

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    config = loadConfig(path.join(path.resolve(__dirname, '../..'), 'lifeboat.config.yaml'));
    ports = createPorts(config, { log: () => undefined });
    source = findSqliteTarget(config, TARGET).path;
    scratch = path.join(path.dirname(source), `restores-${uniqueId('t')}`);
    fs.mkdirSync(scratch, { recursive: true });
    // The target's file, made by this test: a WAL database with tables of every shape.
    for (const f of [source, `${source}-wal`, `${source}-shm`]) fs.rmSync(f, { force: true });
    execFileSync('sqlite3', [
      source,
      'PRAGMA journal_mode = WAL',
      'CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT, balance REAL, photo BLOB)',
      "INSERT INTO customers SELECT value, 'customer ' || value, CASE WHEN value % 7 = 0 THEN 'multi' || char(10) || 'line' END, value * 1.25, randomblob(64) FROM generate_series(1, 20000)",
      'CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, note TEXT)',
      'CREATE TABLE entries (id INTEGER PRIMARY KEY, ledger_id INTEGER NOT NULL REFERENCES ledger(id), side TEXT, amount INTEGER)',
      'CREATE INDEX entries_ledger ON entries (ledger_id)',
    ]);
    customersAtBackup = rows(source, 'SELECT id, name, note, balance, hex(photo) AS photo FROM customers ORDER BY id');
    worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    running = worker.run();
  });

  after(async function () {
    this.timeout(300000);
    await stopWriter().catch(() => undefined);
    worker?.shutdown();
    await running?.catch(() => undefined);
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    if (ports) {
      const target = findSqliteTarget(config, TARGET);
      for (const at of [{ store: target.store, bucket: target.bucket }, target.dr]) {
        for (const id of workflowIds) await purge(ports.objectStore(at.store), at.bucket, `${target.prefix}${TARGET}/${id}`).catch(() => undefined);
      }
      await removeCatalogRows(ports.catalog, workflowIds);
      await ports.catalog.query('DELETE FROM restores WHERE workflow_id = ANY($1)', [workflowIds]).catch(() => undefined);
      await ports.close();
    }
  });

  it('`backup --wait` while a writer commits in WAL mode: verified in both regions, one consistent state, listed in `backups list`', async function () {
    this.timeout(600000);
    startWriter();
    // The writer is committing before the backup starts.
    while (scalar(source, 'SELECT count(*) FROM ledger') < 50) await new Promise((r) => setTimeout(r, 50));
    backupWorkflowId = uniqueId('test-sqlite-backup');
    workflowIds.push(backupWorkflowId);
    const before = scalar(source, 'SELECT count(*) FROM ledger');
    const run = await cli(['backup', TARGET, '--wait', '--id', backupWorkflowId]);
    const after = scalar(source, 'SELECT count(*) FROM ledger');
    await stopWriter();
    assert.equal(run.code, 0, run.stderr);
    backupId = run.stdout.trim();
    assert.match(backupId, /^\d+$/, 'only the catalog id on stdout');
    assert.ok(after > before, `the writer kept committing during the backup (${before} -> ${after} ledger rows)`);

    const report = (await env.client.workflow.getHandle(backupWorkflowId).result()) as SqliteBackupReport;
    assert.equal(report.outcome, 'verified');
    assert.equal(report.catalogId, backupId);
    assert.equal(report.primary!.integrity, 'ok');
    assert.deepEqual(report.verifications.map((v) => [v.store, v.ok]), [['primary', true], ['dr', true]]);
    const t = report.primary!.tables;
    // One consistent state: every ledger row came with both its entries, and the copy holds a state the writer passed through.
    assert.equal(t.customers, 20000);
    assert.equal(t.entries, 2 * t.ledger, `entries ${t.entries} = 2 x ledger ${t.ledger}`);
    assert.ok(t.ledger >= before && t.ledger <= after, `${t.ledger} ledger rows, between ${before} and ${after}`);
    await recordHistory(env.client.workflow.getHandle(backupWorkflowId), 'sqliteBackup-v1-verified-concurrent-writer');

    const list = await cli(['backups', 'list', '--target', TARGET, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const entry = (JSON.parse(list.stdout) as BackupListEntry[]).find((e) => e.id === backupId);
    assert.ok(entry, 'the backup is in `backups list`');
    assert.equal(entry.kind, 'sqlite');
    assert.equal(entry.status, 'verified');
    assert.equal(entry.primary, `primary/${report.primary!.bucket}/${report.primary!.key}`);
    assert.equal(entry.dr, `dr/${report.dr!.bucket}/${report.dr!.key}`);
  });

  it('restores behind the gate into a new path: bytes, integrity_check and counts checked, rows exactly as the source was at the backup', async function () {
    this.timeout(600000);
    assert.ok(backupId, 'needs the backup of the first test');
    // The accident, after the backup.
    execFileSync('sqlite3', [source, 'DELETE FROM customers WHERE id > 100', 'DELETE FROM entries']);
    const into = path.join(scratch, 'restored.db');
    const workflowId = uniqueId('test-sqlite-restore');
    workflowIds.push(workflowId);
    const input: SqliteRestoreInput = { target: TARGET, backup: 'latest', into, requestedBy: ALICE, reason: 'customers deleted by a bad migration', timings: { heartbeatMs: 500 } };
    const h = await env.client.workflow.start('sqliteRestore', { taskQueue, workflowId, args: [input] });
    const waiting = await waitForGate(h, 'restore');
    const facts = Object.fromEntries(waiting.pendingGate!.prompt.facts.map((f) => [f.label, f.value]));
    assert.match(facts.destination, new RegExp(`^new file ${into} \\(written as .*${restoreMarker(workflowId)}\\.tmp, renamed once checked\\)$`));
    assert.match(facts.backup, new RegExp(`\\(catalog id ${backupId}, `));
    assert.deepEqual(fs.readdirSync(scratch), [], 'nothing is made before approval');
    await approveSigned(h, { by: BOB, reason: 'restore it beside production', gate: 'restore' });
    const report = (await h.result()) as SqliteRestoreReport;
    assert.equal(report.outcome, 'restored', JSON.stringify(report));
    assert.deepEqual(fs.readdirSync(scratch), ['restored.db'], 'the file, and no temporary file or companion left');
    assert.ok(report.restored!.checks.every((c) => c.ok));
    assert.ok(report.restored!.checks.some((c) => c.name === 'integrity_check' && c.detail === 'ok'));
    assert.ok(report.restored!.checks.some((c) => c.name === 'rows in customers' && c.detail === '20000, as at backup time'));
    // Exactly the source as it was: the static table row for row, the writer's tables a prefix of what it wrote.
    assert.deepEqual(rows(into, 'SELECT id, name, note, balance, hex(photo) AS photo FROM customers ORDER BY id'), customersAtBackup);
    const k = scalar(into, 'SELECT count(*) FROM ledger');
    assert.equal(scalar(into, 'SELECT max(id) FROM ledger') - scalar(into, 'SELECT min(id) FROM ledger') + 1, k, 'the ledger has no gap');
    assert.deepEqual(rows(into, 'SELECT * FROM ledger ORDER BY id'), rows(source, `SELECT * FROM ledger WHERE id <= ${scalar(into, 'SELECT max(id) FROM ledger')} ORDER BY id`));
    assert.deepEqual(
      rows(into, 'SELECT ledger_id, side, amount FROM entries ORDER BY ledger_id, side'),
      rows(into, "SELECT id AS ledger_id, 'credit' AS side, -amount AS amount FROM ledger UNION ALL SELECT id, 'debit', amount FROM ledger ORDER BY 1, 2"),
    );
    assert.equal(scalar(source, 'SELECT count(*) FROM customers'), 100, 'the source is left as it is');
    await recordHistory(h, 'sqliteRestore-v1-restored');
  });

  it('refuses bad input in one sentence, exit 2, before anything is made: unknown target, existing destination, the source path', async function () {
    this.timeout(300000);
    const existing = path.join(scratch, 'restored.db');
    const as = ['--reason', 'check', '--as', ALICE];
    const unknown = await cli(['restore', 'app-sqlit', '--backup', 'latest', '--into', path.join(scratch, 'x.db'), ...as]);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /No (database or bucket )?target is named "app-sqlit"/);
    const taken = await cli(['restore', TARGET, '--backup', 'latest', '--into', existing, ...as]);
    assert.equal(taken.code, 2, taken.stderr);
    assert.match(taken.stderr, new RegExp(`--into ${existing} already exists: a SQLite restore only makes a new file, so give a path where nothing is, or move that file away first\\.`));
    const ontoSource = await cli(['restore', TARGET, '--backup', 'latest', '--into', source, ...as]);
    assert.equal(ontoSource.code, 2, ontoSource.stderr);
    assert.match(ontoSource.stderr, /is the source database of this target: a restore never writes over its source, so give a new path\./);
    const wrongOption = await cli(['backup', TARGET, '--logical']);
    assert.equal(wrongOption.code, 2);
    assert.match(wrongOption.stderr, /is a SQLite target; --logical applies to database targets/);

    // The workflow refuses too, where the file lives, when the destination appeared after the CLI's check.
    const workflowId = uniqueId('test-sqlite-restore-taken');
    workflowIds.push(workflowId);
    const h = await env.client.workflow.start('sqliteRestore', { taskQueue, workflowId, args: [{ target: TARGET, backup: backupId, into: existing, requestedBy: ALICE, reason: 'check' } satisfies SqliteRestoreInput] });
    await assert.rejects(h.result(), (err: unknown) => err instanceof WorkflowFailedError && /already exists: a SQLite restore only makes a new file/.test(failureOf(err)));
    assert.deepEqual(fs.readdirSync(scratch), ['restored.db'], 'nothing was made');
    await recordHistory(h, 'sqliteRestore-v1-destination-exists');
  });

  it('preflight checks the file where it is: it exists, is a SQLite database and reads', async function () {
    this.timeout(300000);
    const workflowId = uniqueId('test-sqlite-preflight');
    workflowIds.push(workflowId);
    const h = await env.client.workflow.start('preflight', { taskQueue, workflowId, args: [{ targets: [TARGET] } satisfies PreflightInput] });
    const result = (await h.result()) as PreflightResult;
    const check = result.checks.find((c) => c.component === `sqlite ${TARGET}`);
    assert.ok(check, JSON.stringify(result.checks));
    assert.equal(check.ok, true, check.detail);
    assert.equal(check.detail, `${source} reads as a SQLite database (3 tables)`);
    assert.ok(result.checks.some((c) => c.component.startsWith('object store dr')), 'its DR store is checked too');
    await recordHistory(h, 'preflight-v3-sqlite-target');
  });
});
