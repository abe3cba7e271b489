/**
 * Issue 12's restore leftovers on the real stack, one backup for the whole file (CI is at its
 * budget): row counts recorded with a logical backup and compared by its restore; a worker
 * killed with kill -9 in the middle of a logical restore, another started, the restore finishing
 * with the database whole and listed among the restored things; the restored database removed
 * only by its run's marker; and one exit code for a rejected restore, through the real CLI.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { createPorts, Ports } from '../src/activities/ports';
import { defaultRestoreDatabase } from '../src/activities/logical-restore';
import { findRestoredInstance, removeRestoredDatabase } from '../src/activities/restored-instances';
import { interpolateConfigText, loadConfig } from '../src/config';
import { LogicalBackupReport } from '../src/domain/logical-backup';
import { LogicalRestoreInput, LogicalRestoreReport } from '../src/domain/logical-restore';
import { Stack } from '../src/stack/stack';
import { ensureFullBackup } from './helpers/backup-exists';
import { CONFIG_FILE, lifeboat as runLifeboat } from './helpers/cli';
import { onPrimary, uniqueId, waitForGate, waitForStatus, WAIT_MS } from './helpers/pitr';
import { purge, removeCatalogRows } from './helpers/scratch';
import { approveSigned, rejectSigned } from './helpers/signing';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal } from './helpers/temporal';
import { startWorkerProcess, stopWorkerProcess } from './helpers/worker-process';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

describe('restore leftovers: counts at backup time, kill -9 mid-restore, restored databases listed, one exit code', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let backup: LogicalBackupReport;
  let worker: ChildProcess | undefined;
  const id = uniqueId('lo').slice(3).replace(/-/g, '_');
  const table = `lo_${id}_rows`;
  const taskQueue = uniqueTaskQueue('restore-leftovers');
  const workflowIds: string[] = [];
  const databases: string[] = [];
  const objects: Array<{ store: string; bucket: string; key: string }> = [];
  const cli = (args: string[]) => runLifeboat(args, { LIFEBOAT_TASK_QUEUE: taskQueue });
  // The workers restore with pg_restore -j 2 from a local file, whatever the machine's cores: the
  // way a killed worker leaves the most behind (a pg_restore reading the file on its own).
  const workerConfig = path.join(os.tmpdir(), `lifeboat-restore-leftovers-${id}.yaml`);

  before(async function () {
    this.timeout(900000);
    stack = await useStack();
    env = await useTemporal();
    ports = createPorts(loadConfig(CONFIG_FILE), { log: () => undefined });
    await ensureFullBackup(stack);
    const doc = YAML.parse(interpolateConfigText(fs.readFileSync(CONFIG_FILE, 'utf8')).text) as { targets: { databases: Array<{ name: string; logicalBackup: Record<string, unknown> }> } };
    doc.targets.databases.find((d) => d.name === 'app')!.logicalBackup.restoreJobs = 2;
    fs.writeFileSync(workerConfig, YAML.stringify(doc));
    worker = await startWorkerProcess(taskQueue, workerConfig);
    // Enough rows that pg_restore is still at work when the worker is killed.
    await onPrimary(stack, async (c) => {
      await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, body text NOT NULL)`);
      await c.query(`INSERT INTO ${table} SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 400000) g`);
    });
    const workflowId = `test-lo-backup-${id}`;
    workflowIds.push(workflowId);
    backup = (await env.client.workflow.execute('logicalBackup', { taskQueue, workflowId, args: [{ target: 'app', pollIntervalMs: 1000 }] })) as LogicalBackupReport;
    assert.equal(backup.outcome, 'verified');
    objects.push({ store: backup.primary!.store, bucket: backup.primary!.bucket, key: backup.primary!.key }, { store: backup.dr!.store, bucket: backup.dr!.bucket, key: backup.dr!.key });
    // After the backup: the restore must come back with the rows as they were then, not now.
    await onPrimary(stack, (c) => c.query(`DELETE FROM ${table} WHERE id > 1000`));
  });

  after(async function () {
    this.timeout(300000);
    // A test that failed half-way may leave a restore waiting at its gate: ended here, not left for the next run.
    for (const wid of workflowIds) await env?.client.workflow.getHandle(wid).terminate('test cleanup').catch(() => undefined);
    if (worker) await stopWorkerProcess(worker, 'SIGTERM');
    fs.rmSync(workerConfig, { force: true });
    if (!stack) return;
    for (const db of databases) await onPrimary(stack, (c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)).catch(() => undefined);
    await onPrimary(stack, (c) => c.query(`DROP TABLE IF EXISTS ${table}`)).catch(() => undefined);
    if (ports) {
      for (const o of objects) await purge(ports.objectStore(o.store), o.bucket, o.key).catch(() => undefined);
      await removeCatalogRows(ports.catalog, workflowIds);
      await ports.catalog.query('DELETE FROM restores WHERE workflow_id = ANY($1)', [workflowIds]).catch(() => undefined);
      await ports.catalog.query('DELETE FROM restored_instances WHERE owner_workflow_id = ANY($1)', [workflowIds]).catch(() => undefined);
      await ports.close();
    }
  });

  it('the logical backup records each table\'s rows as its snapshot saw them, in the catalog', async () => {
    const rows = await ports.catalog.query<{ counts: Record<string, number> }>("SELECT details->'rowCounts' AS counts FROM backups WHERE id::text = $1", [backup.catalogId]);
    assert.equal(rows[0].counts[`public.${table}`], 400000);
  });

  it('kill -9 of the worker mid logical restore: another worker finishes it, rows as at backup time, the database listed and removed only by its marker', async function () {
    const workflowId = uniqueId('test-lo-kill');
    workflowIds.push(workflowId);
    const database = defaultRestoreDatabase('app', workflowId);
    databases.push(database);
    const args: LogicalRestoreInput = { target: 'app', backup: backup.catalogId!, requestedBy: ALICE, reason: 'rows deleted', timings: { pollIntervalMs: 500 } };
    const h = await env.client.workflow.start('logicalRestore', { taskQueue, workflowId, args: [args] });
    await waitForGate(h, 'restore');
    await approveSigned(h, { by: BOB, reason: 'go', gate: 'restore' });
    const during = await waitForStatus(h, 'the restore', (s) => ['restoring', 'verifying', 'done'].includes(s.phase), WAIT_MS, 50);
    assert.equal(during.phase, 'restoring', `killed during ${during.phase}`);
    // Killed while pg_restore is writing into the first attempt's working database: the orphan it
    // leaves must never reach the retry's database, and the retry must end it.
    const restoreSessions = (c: import('pg').Client) =>
      c.query<{ datname: string; pid: number }>("SELECT datname, pid FROM pg_stat_activity WHERE application_name = 'lifeboat pg_restore' AND datname LIKE 'lifeboat\\_making\\_%'");
    const deadline = Date.now() + WAIT_MS;
    let writing: Array<{ datname: string }> = [];
    while (!writing.length && Date.now() < deadline) {
      writing = (await onPrimary(stack, restoreSessions)).rows;
      if (!writing.length) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(writing.length, 'pg_restore connected to a working database before the restore moved on');
    assert.match(writing[0].datname, /^lifeboat_making_[0-9a-f]{24}_1$/);
    await stopWorkerProcess(worker!);
    // The server hands the restore to the next worker once the dead one's heartbeat times out.
    worker = await startWorkerProcess(taskQueue, workerConfig);
    const report = (await h.result()) as LogicalRestoreReport;
    assert.equal(report.outcome, 'restored', JSON.stringify(report.failure ?? report.cleanup));
    const attempts = ((await h.fetchHistory()).events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
    assert.ok(attempts.some((n) => n > 1), 'the restore activity ran again after the kill');
    // Nothing of the killed attempt is left: no working database, no pg_restore session.
    const workingLeft = await onPrimary(stack, async (c) => (await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname = $1", [writing[0].datname])).rows);
    assert.deepEqual(workingLeft, [], 'the first attempt\'s working database was dropped by the retry');
    assert.deepEqual((await onPrimary(stack, restoreSessions)).rows, [], 'no pg_restore is left connected to a working database');
    // Compared with the counts taken at backup time, and equal to them: the retry started over from clean.
    const basis = report.verification!.checks.find((c) => c.name === 'row counts compared with')!;
    assert.match(basis.detail, new RegExp(`^the row counts recorded when backup ${backup.backupName} was taken`));
    assert.ok(report.verification!.checks.some((c) => c.name === `rows in public.${table}` && c.ok && c.detail === '400000, as counted when the backup was taken'));
    const s = stack.ctx.settings;
    const { withDatabase } = await import('./helpers/pitr');
    const n = await withDatabase({ host: s.host, port: s.postgres.primaryPort, database, user: s.postgres.superuser }, async (c) => Number((await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows[0].n));
    assert.equal(n, 400000);

    // On the restored things' list, with its expiry and the run that made it.
    const listed = await cli(['instances', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const row = (JSON.parse(listed.stdout) as Array<{ instanceId: string; kind: string; madeBy: string; owner: { workflowId: string }; expiresAt?: string; details: { marker?: string } }>).find((i) => i.instanceId === `database:app/${database}`);
    assert.ok(row, `database:app/${database} is listed`);
    assert.equal(row.kind, 'database');
    assert.equal(row.madeBy, 'logicalRestore');
    assert.equal(row.owner.workflowId, workflowId);
    assert.ok(row.expiresAt);
    const extended = await cli(['instances', 'extend', `database:app/${database}`, '--by', '2d', '--reason', 'still comparing', '--as', ALICE]);
    assert.equal(extended.code, 0, extended.stderr);

    // Removal drops it only while it carries its run's marker, and never while a session uses it.
    const instance = (await findRestoredInstance(ports.catalog, `database:app/${database}`))!;
    const admin = { host: s.host, port: s.postgres.primaryPort, database: 'postgres', user: s.postgres.superuser };
    const foreign = await removeRestoredDatabase(admin, { ...instance, details: { ...instance.details, marker: 'lifeboat logical restore someone-else' } });
    assert.equal(foreign.outcome, 'refused');
    assert.match(foreign.detail, /its comment is not the marker of the restore that made it/);
    const removed = await removeRestoredDatabase(admin, instance);
    assert.equal(removed.outcome, 'removed', removed.detail);
    assert.equal(await onPrimary(stack, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount), 0);
  });

  it('a restore rejected at its gate exits 1 through the CLI, logical and point-in-time alike; bad input exits 2', async () => {
    const logicalId = uniqueId('test-lo-reject-logical');
    const pitrId = uniqueId('test-lo-reject-pitr');
    workflowIds.push(logicalId, pitrId);
    const startedLogical = await cli(['restore', 'app', '--logical', backup.catalogId!, '--reason', 'look at the rows', '--as', ALICE, '--id', logicalId]);
    assert.equal(startedLogical.code, 0, startedLogical.stderr);
    assert.match(startedLogical.stdout, /waiting for approval \(restore\)/);
    const startedPitr = await cli(['restore', 'app', '--to', 'latest', '--reason', 'look at the rows', '--as', ALICE, '--id', pitrId]);
    assert.equal(startedPitr.code, 0, startedPitr.stderr);
    for (const wid of [logicalId, pitrId]) {
      await rejectSigned(env.client.workflow.getHandle(wid), { by: BOB, reason: 'not now', gate: 'restore' });
      const watched = await cli(['watch', wid]);
      assert.equal(watched.code, 1, `${wid}: ${watched.stdout}${watched.stderr}`);
      assert.match(watched.stdout, /outcome: rejected/);
    }
    const bad = await cli(['restore', 'app', '--logical', 'no-such-backup', '--reason', 'x', '--as', ALICE]);
    assert.equal(bad.code, 2, bad.stderr);
  });
});
