/**
 * SQLite restore drills on the real stack (MinIO in both regions, Temporal, the catalog, a real
 * worker, the real CLI and `sqlite3`): `lifeboat drill run app-sqlite` restores the latest backup
 * into a scratch directory of its own, checks it and removes it, with its report read back
 * through `lifeboat drill report`; a swapped backup object and counts that disagree fail the
 * drill with a report saying why; nothing is left in the scratch directory; the drill sweeper
 * removes a scratch directory a closed drill left and leaves a running drill's and anything
 * unmarked alone.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { findSqliteTarget, LifeboatConfig, loadConfig } from '../src/config';
import type { DrillReport } from '../src/domain/drill-report';
import type { DrillSweepResult } from '../src/domain/drill-sweep';
import type { SqliteBackupReport } from '../src/domain/sqlite';
import { SQLITE_DRILL_MARK, sqliteDrillDirName } from '../src/domain/sqlite-drill';
import { createLifeboatWorker } from '../src/worker';
import { lifeboat } from './helpers/cli';
import { recordHistory, uniqueId } from './helpers/pitr';
import { purge, removeCatalogRows } from './helpers/scratch';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const TARGET = 'app-sqlite';

describe('SQLite restore drills (real worker, real stack, real CLI)', function () {
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let config: LifeboatConfig;
  let source: string;
  let scratchDir: string;
  const backups: SqliteBackupReport[] = [];
  const taskQueue = uniqueTaskQueue('sqlite-drill');
  const workflowIds: string[] = [];
  const cli = (args: string[]) => lifeboat([...args], { LIFEBOAT_TASK_QUEUE: taskQueue });
  let worker: Awaited<ReturnType<typeof createLifeboatWorker>>;
  let running: Promise<void>;

  /** What is in the scratch directory, hidden entries included. */
  const leftInScratch = () => (fs.existsSync(scratchDir) ? fs.readdirSync(scratchDir).sort() : []);

  async function backUp(): Promise<SqliteBackupReport> {
    const workflowId = uniqueId('test-sqlite-drill-backup');
    workflowIds.push(workflowId);
    const report = (await env.client.workflow.execute('sqliteBackup', { taskQueue, workflowId, args: [{ target: TARGET, requestedBy: 'test', heartbeatMs: 500 }] })) as SqliteBackupReport;
    assert.equal(report.outcome, 'verified', JSON.stringify(report));
    backups.push(report);
    return report;
  }

  async function drill(args: string[]): Promise<{ id: string; code: number; stdout: string; stderr: string }> {
    const id = uniqueId('drill-test-sqlite');
    workflowIds.push(id);
    const r = await cli(['drill', 'run', TARGET, '--id', id, ...args]);
    return { id, code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  async function reportOf(id: string): Promise<DrillReport> {
    const r = await cli(['drill', 'report', id, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as DrillReport;
  }

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    config = loadConfig(path.join(path.resolve(__dirname, '../..'), 'lifeboat.config.yaml'));
    ports = createPorts(config, { log: () => undefined });
    const target = findSqliteTarget(config, TARGET);
    source = target.path;
    scratchDir = target.drill.scratchDir;
    fs.mkdirSync(path.dirname(source), { recursive: true });
    for (const f of [source, `${source}-wal`, `${source}-shm`]) fs.rmSync(f, { force: true });
    execFileSync('sqlite3', [
      source,
      'PRAGMA journal_mode = WAL',
      'CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, photo BLOB)',
      "INSERT INTO customers SELECT value, 'customer ' || value, randomblob(32) FROM generate_series(1, 5000)",
      'CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)',
      'INSERT INTO ledger SELECT value, value * 3 FROM generate_series(1, 300)',
      'CREATE TABLE entries (id INTEGER PRIMARY KEY, ledger_id INTEGER NOT NULL REFERENCES ledger(id), amount INTEGER)',
      'INSERT INTO entries (ledger_id, amount) SELECT value, value * 3 FROM generate_series(1, 300)',
    ]);
    worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    running = worker.run();
    await backUp();
    // A second, newer backup, one row more: the drills below tell the two apart.
    execFileSync('sqlite3', [source, 'INSERT INTO customers (id, name) VALUES (5001, \'late\')']);
    await backUp();
  });

  after(async function () {
    this.timeout(300000);
    worker?.shutdown();
    await running?.catch(() => undefined);
    if (ports) {
      const target = findSqliteTarget(config, TARGET);
      for (const at of [{ store: target.store, bucket: target.bucket }, target.dr]) {
        for (const b of backups) if (b.backupName) await purge(ports.objectStore(at.store), at.bucket, `${target.prefix}${TARGET}/${b.backupName}`).catch(() => undefined);
      }
      await ports.catalog.query('DELETE FROM drills WHERE workflow_id = ANY($1)', [workflowIds]).catch(() => undefined);
      await removeCatalogRows(ports.catalog, workflowIds);
      await ports.close();
    }
  });

  it('`drill run` restores the latest backup into a scratch directory, checks it, removes it, and publishes a report `drill report` prints and verifies', async function () {
    this.timeout(600000);
    const r = await drill([]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Restore drill PASSED: ${TARGET}, backup ${backups[1].backupName} \\(sqlite, primary region, chosen as the newest verified backup\\)`));
    const report = await reportOf(r.id);
    assert.equal(report.outcome, 'passed');
    assert.equal(report.target.kind, 'sqlite');
    const byName = new Map(report.validations.map((v) => [v.name, v]));
    for (const name of ['stored SHA-256', 'decryption', 'database SHA-256', 'integrity_check', 'rows in customers', 'rows in ledger', 'rows in entries', 'check entries-have-ledger-rows']) {
      assert.equal(byName.get(name)?.ok, true, `${name}: ${JSON.stringify(byName.get(name))}`);
    }
    assert.equal(byName.get('rows in customers')!.detail, '5001, as at backup time');
    assert.equal(byName.get('integrity_check')!.detail, 'ok');
    assert.match(byName.get('decryption')!.detail, new RegExp(`bound to sqlite/${TARGET}/${backups[1].backupName}`));
    assert.ok(report.restoredInto.name.startsWith(path.join(scratchDir, sqliteDrillDirName(r.id))), report.restoredInto.name);
    assert.match(report.steps.find((s) => s.phase === 'cleaning-up')!.detail, /^removed .*entries: lifeboat-drill\.json, restored\.db/);
    // The Markdown rendering, as people read it.
    const md = await cli(['drill', 'report', r.id]);
    assert.equal(md.code, 0, md.stderr);
    assert.match(md.stdout, /integrity_check/);
    assert.match(md.stdout, new RegExp(`${TARGET} \\(sqlite, sqlite3\\)`));
    const verify = await cli(['drill', 'report', r.id, '--verify']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /^ok {4}json {2}lifeboat-evidence/m);
    // Nothing left where the drill worked.
    assert.deepEqual(leftInScratch(), []);
    const [row] = await ports.catalog.query<{ outcome: string; backup_id: string }>('SELECT outcome, backup_id FROM drills WHERE workflow_id = $1', [r.id]);
    assert.deepEqual(row, { outcome: 'passed', backup_id: backups[1].backupName });
    const list = await cli(['drills', 'list', '--target', TARGET, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const [entry] = JSON.parse(list.stdout) as Array<{ target: string; kind: string; last?: { drillId: string; outcome: string } }>;
    assert.deepEqual({ target: entry.target, kind: entry.kind, last: entry.last?.drillId, outcome: entry.last?.outcome }, { target: TARGET, kind: 'sqlite', last: r.id, outcome: 'passed' });
    await recordHistory(env.client.workflow.getHandle(r.id), 'restoreDrill-v4-sqlite-passed');
  });

  it('a backup whose object was swapped for another backup\'s fails the decryption check, with a report saying why, and leaves nothing behind', async function () {
    this.timeout(600000);
    const [older, newer] = backups;
    const id = (b: SqliteBackupReport) => b.catalogId!;
    const [saved] = await ports.catalog.query<{ locations: unknown }>('SELECT locations FROM backups WHERE id = $1', [id(newer)]);
    // The newer backup's record now points at the older backup's object: authentic bytes, wrong backup.
    await ports.catalog.query('UPDATE backups SET locations = (SELECT locations FROM backups WHERE id = $2) WHERE id = $1', [id(newer), id(older)]);
    try {
      const r = await drill(['--backup', newer.backupName!]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /Restore drill FAILED/);
      const report = await reportOf(r.id);
      assert.equal(report.outcome, 'failed');
      const decryption = report.validations.find((v) => v.name === 'decryption')!;
      assert.equal(decryption.ok, false);
      assert.match(decryption.detail, new RegExp(`bound to .*${older.backupName}.*not to .*${newer.backupName}`));
      assert.match(report.issues[0], /^validation failed: decryption: /);
      assert.deepEqual(leftInScratch(), []);
      await recordHistory(env.client.workflow.getHandle(r.id), 'restoreDrill-v4-sqlite-swapped-object');
    } finally {
      await ports.catalog.query('UPDATE backups SET locations = $2, drill_outcome = NULL WHERE id = $1', [id(newer), JSON.stringify(saved.locations)]);
    }
  });

  it('counts that disagree with those recorded at backup fail the drill, the report naming the table', async function () {
    this.timeout(600000);
    const older = backups[0];
    await ports.catalog.query(`UPDATE backups SET details = jsonb_set(details, '{tables,customers}', '4999') WHERE id = $1`, [older.catalogId]);
    try {
      const r = await drill(['--backup', older.catalogId!]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const report = await reportOf(r.id);
      assert.equal(report.outcome, 'failed');
      const customers = report.validations.find((v) => v.name === 'rows in customers')!;
      assert.deepEqual({ ok: customers.ok, detail: customers.detail }, { ok: false, detail: '5000, but 4999 at backup time' });
      assert.equal(report.validations.find((v) => v.name === 'integrity_check')?.ok, true);
      assert.match(report.issues[0], /rows in customers: 5000, but 4999 at backup time/);
      const md = await cli(['drill', 'report', r.id]);
      assert.match(md.stdout, /5000, but 4999 at backup time/);
      assert.deepEqual(leftInScratch(), []);
    } finally {
      await ports.catalog.query(`UPDATE backups SET details = jsonb_set(details, '{tables,customers}', '5000'), drill_outcome = NULL WHERE id = $1`, [older.catalogId]);
    }
  });

  it('an unknown target is refused in one sentence, exit 2, before anything starts', async function () {
    this.timeout(60000);
    const r = await cli(['drill', 'run', 'no-such-sqlite']);
    assert.equal(r.code, 2);
    assert.match(r.stderr.trim(), /^lifeboat: No database, bucket, directory or SQLite target is named "no-such-sqlite"( \(did you mean "[^"]+"\?\))?; the config declares .*app-sqlite.*\.$/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  it('the drill sweeper removes the scratch directory a closed drill left, and leaves a running drill\'s, an unmarked one and other files alone', async function () {
    this.timeout(600000);
    fs.mkdirSync(scratchDir, { recursive: true });
    const mark = (owner: { workflowId: string; runId: string }) => JSON.stringify({ lifeboat: 'sqlite-drill', workflowId: owner.workflowId, runId: owner.runId, target: TARGET, createdAt: new Date().toISOString() });
    // 1. A closed drill's (the first test's run, long finished), as a killed attempt would leave it.
    const closedId = workflowIds.find((w) => w.startsWith('drill-test-sqlite'))!;
    const closedRun = (await env.client.workflow.getHandle(closedId).describe()).runId;
    const closedDir = path.join(scratchDir, sqliteDrillDirName(closedId));
    fs.mkdirSync(closedDir);
    fs.writeFileSync(path.join(closedDir, SQLITE_DRILL_MARK), mark({ workflowId: closedId, runId: closedRun }));
    fs.copyFileSync(source, path.join(closedDir, 'restored.db'));
    // 2. A drill still running (no worker polls its queue), with its directory.
    const runningId = uniqueId('drill-test-sqlite-running');
    const live = await env.client.workflow.start('restoreDrill', { taskQueue: uniqueTaskQueue('sqlite-sweep-idle'), workflowId: runningId, args: [{ target: TARGET }] });
    const runningDir = path.join(scratchDir, sqliteDrillDirName(runningId));
    fs.mkdirSync(runningDir);
    fs.writeFileSync(path.join(runningDir, SQLITE_DRILL_MARK), mark({ workflowId: runningId, runId: live.firstExecutionRunId }));
    // 3. Named like a drill's, no mark; 4. someone's file; 5. someone's directory.
    const unmarked = path.join(scratchDir, 'drill-made-by-someone');
    fs.mkdirSync(unmarked);
    fs.writeFileSync(path.join(scratchDir, 'notes.txt'), 'not lifeboat\'s');
    fs.mkdirSync(path.join(scratchDir, 'keep-me'));
    const sweepId = uniqueId('test-sqlite-sweep');
    workflowIds.push(sweepId);
    let result: DrillSweepResult;
    try {
      const handle = await env.client.workflow.start('drillSweeper', { taskQueue, workflowId: sweepId, args: [{ requestedBy: 'test' }] });
      result = (await handle.result()) as DrillSweepResult;
      await recordHistory(handle, 'drillSweeper-v3-sqlite-scratch');
    } finally {
      await live.terminate('test over');
    }
    const names = (list: DrillSweepResult['removed']) => list.filter((s) => s.resource.kind === 'sqlite-scratch').map((s) => s.resource.name);
    assert.deepEqual(names(result.removed), [sqliteDrillDirName(closedId)], JSON.stringify(result));
    assert.match(result.removed.find((s) => s.resource.kind === 'sqlite-scratch')!.detail!, /^removed .*entries: lifeboat-drill\.json, restored\.db/);
    assert.deepEqual(names(result.kept), [sqliteDrillDirName(runningId)]);
    assert.deepEqual(names(result.reported), ['drill-made-by-someone']);
    assert.equal(fs.existsSync(closedDir), false);
    assert.equal(fs.existsSync(path.join(runningDir, SQLITE_DRILL_MARK)), true);
    assert.deepEqual(leftInScratch(), ['drill-made-by-someone', sqliteDrillDirName(runningId), 'keep-me', 'notes.txt'].sort());
    const [event] = await ports.catalog.query<{ details: { name: string; owner: { runId: string } } }>("SELECT details FROM workflow_events WHERE workflow_id = $1 AND kind = 'drill-sweep' AND details->>'kind' = 'sqlite-scratch'", [sweepId]);
    assert.deepEqual({ name: event.details.name, run: event.details.owner.runId }, { name: sqliteDrillDirName(closedId), run: closedRun });
    fs.rmSync(scratchDir, { recursive: true, force: true });
  });
});
