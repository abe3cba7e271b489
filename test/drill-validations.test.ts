/**
 * A drill's validations on the real stack, in two drills of one backup (lean on purpose):
 *   1. the backup records the exact row counts of the critical tables right after it ends; a
 *      drill matches them, runs the target's validation SQL and an application check (psql against
 *      the drill instance as the verify role), times every query, takes a port from the drill
 *      range with the drill label, and keeps the instance for its validation window, then removes it;
 *   2. a second drill with a validation query that fails and an application check that exits 3
 *      fails with both named in the report, compares its timings with the first drill's, and a
 *      cancel during its (long) validation window removes the instance at once.
 */
import assert from 'node:assert/strict';
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { findDatabaseTarget, LifeboatConfig, loadConfig, PgBackRestTarget } from '../src/config';
import type { WorkflowStatus } from '../src/domain/approval';
import type { DatabaseBackupResult } from '../src/domain/backup';
import { drillInstanceName, RestoreDrillInput, RestoreDrillResult } from '../src/domain/drill';
import type { RecordedRowCounts } from '../src/domain/verification';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { statusQuery } from '../src/workflows/messages';
import { createLifeboatWorker } from '../src/worker';
import { CONFIG_FILE } from './helpers/cli';
import { recordHistory, removeAsItsOwner, uniqueId, withDatabase } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

describe('restore drill validations (real worker, real stack)', function () {
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let engine: PgBackRestEngine;
  let backup: DatabaseBackupResult;
  const config = loadConfig(CONFIG_FILE);
  const app = findDatabaseTarget(config, 'app') as PgBackRestTarget;
  const drilled: string[] = [];
  let firstDrillId: string | undefined;

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    ports = createPorts(config, { log: () => undefined });
    engine = ports.database('app') as PgBackRestEngine;
    const taskQueue = uniqueTaskQueue('drill-validations-backup');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    backup = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start('databaseBackup', { taskQueue, workflowId: uniqueId('test-drill-counts-backup'), args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'test' }] });
      const result = (await handle.result()) as DatabaseBackupResult;
      await recordHistory(handle, 'databaseBackup-v4-completed-with-row-counts');
      return result;
    });
  });

  after(async function () {
    this.timeout(300000);
    for (const id of drilled) {
      if (await engine.describeInstance(id)) await removeAsItsOwner(engine, id).catch((err: unknown) => console.error(`cleanup of ${id}: ${String(err)}`));
    }
    await ports?.close();
  });

  /** The config with the app target's drill settings replaced. */
  function withDrill(drill: Partial<PgBackRestTarget['drill']>): LifeboatConfig {
    const changed = structuredClone(config);
    const target = changed.targets.databases.find((d) => d.name === 'app')!;
    target.drill = { ...target.drill, ...drill };
    return changed;
  }

  /** Runs a drill; `during` gets its handle once the validation window has begun. */
  async function runDrill(workflowId: string, input: RestoreDrillInput, withConfig: LifeboatConfig, history: string, during: (handle: WorkflowHandle, status: WorkflowStatus) => Promise<void>): Promise<RestoreDrillResult> {
    drilled.push(drillInstanceName(workflowId));
    const workerPorts = createPorts(withConfig, { log: () => undefined });
    const taskQueue = uniqueTaskQueue('drill-validations');
    const worker = await createLifeboatWorker({ config: withConfig, connection: env.nativeConnection, ports: workerPorts, taskQueue, workflowBundle: await workflowBundle() });
    try {
      return await worker.runUntil(async () => {
        const handle = await env.client.workflow.start('restoreDrill', { taskQueue, workflowId, args: [input] });
        // Waits for the window (bounded; the drill itself ends the wait if it never gets there).
        for (let i = 0; i < 1200; i++) {
          const status = await handle.query(statusQuery);
          if (status.phase === 'kept-for-validation') {
            await during(handle, status);
            break;
          }
          if (['done', 'failed', 'cancelled', 'reporting'].includes(status.phase)) assert.fail(`the drill reached ${status.phase} without a validation window`);
          await new Promise((r) => setTimeout(r, 500));
        }
        const result = (await handle.result()) as RestoreDrillResult;
        await recordHistory(handle, history);
        return result;
      });
    } finally {
      await workerPorts.close();
    }
  }

  it('records exact row counts at backup; a drill matches them, runs validation SQL and the application check, times its queries, and keeps the instance for its window', async () => {
    const [row] = await ports.catalog.query<{ row_counts: RecordedRowCounts }>('SELECT row_counts FROM backups WHERE id = $1', [backup.catalogId]);
    assert.ok(row.row_counts.available, JSON.stringify(row.row_counts));
    assert.equal(row.row_counts.counts.backupId, backup.primary.handle.backupId);
    const now = await withDatabase({ host: app.host, port: app.port, database: app.database, user: app.verifyUser }, async (c) => {
      const out: Array<{ table: string; rows: number }> = [];
      for (const table of app.criticalTables) out.push({ table, rows: Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0].n) });
      return out;
    });
    assert.deepEqual(row.row_counts.counts.tables, now, 'the counts recorded are the tables as they are (nothing written since)');

    const workflowId = uniqueId('test-drill-validations-pass');
    firstDrillId = workflowId;
    const drillConfig = withDrill({
      // Reaches the drill instance through the environment it is given, as the verify role.
      applicationCheck: { name: 'orders-readable', command: ['sh', '-c', 'test "$PGUSER" = lifeboat_verify && psql -XtAc "SELECT count(*) FROM orders" | grep -qx "[1-9][0-9]*" && echo "orders readable on $PGHOST:$PGPORT"'], timeout: 60 },
    });
    let during: { port?: number; purpose?: string; status?: WorkflowStatus } = {};
    const { report } = await runDrill(workflowId, { target: 'app', backup: backup.primary.handle.backupId, requestedBy: 'test', timings: { keepForMs: 6000 } }, drillConfig, 'restoreDrill-v2-passed-kept-for-validation', async (_handle, status) => {
      const instance = await engine.describeInstance(drillInstanceName(workflowId));
      during = { port: instance?.endpoint?.port, purpose: instance?.owner?.purpose, status };
    });

    assert.equal(report.outcome, 'passed', JSON.stringify(report.issues));
    const byName = new Map(report.validations.map((v) => [v.name, v]));
    assert.match(byName.get('row counts at backup')?.detail ?? '', /^every critical table has the rows recorded right after backup /, JSON.stringify(byName.get('row counts at backup')));
    assert.ok(byName.get('validation query paid-orders')?.ok, JSON.stringify(report.validations));
    assert.ok(byName.get('smoke query recent-orders')?.ok);
    assert.deepEqual({ ok: byName.get('application check orders-readable')?.ok, exit: report.applicationCheck?.exitCode }, { ok: true, exit: 0 });
    assert.match(report.applicationCheck!.outputTail, /^orders readable on 127\.0\.0\.1:\d+$/);
    assert.deepEqual(report.queryTimings?.map((t) => `${t.kind} ${t.name}`), ['smoke recent-orders', 'smoke order-lines-join', 'validation paid-orders']);
    assert.ok(report.queryTimings!.every((t) => t.ms > 0));

    // Isolation: a port of the drill range, the drill label; in the Web UI, the backup and each validation.
    assert.ok(during.port! >= app.drillPorts.from && during.port! <= app.drillPorts.to, `port ${during.port} in ${app.drillPorts.from}-${app.drillPorts.to}`);
    assert.equal(during.purpose, 'drill');
    assert.match(during.status!.subject ?? '', new RegExp(`^backup ${backup.primary.handle.backupId} \\(full, `));
    assert.deepEqual(
      during.status!.validations?.map((v) => [v.name, v.ok]).filter(([n]) => !String(n).startsWith('foreign key')),
      report.validations.map((v) => [v.name, v.ok]).filter(([n]) => !String(n).startsWith('foreign key')),
    );
    // Kept for the window, then removed.
    const kept = report.steps.find((s) => s.phase === 'kept-for-validation');
    assert.match(kept?.detail ?? '', /^kept 6 s after validation$/);
    assert.deepEqual(report.steps.slice(-2).map((s) => s.phase), ['kept-for-validation', 'cleaning-up']);
    assert.equal(await engine.describeInstance(drillInstanceName(workflowId)), undefined, 'the drill instance is gone');
    const [timed] = await ports.catalog.query<{ query_timings: unknown[] }>('SELECT query_timings FROM drills WHERE workflow_id = $1', [workflowId]);
    assert.equal(timed.query_timings.length, 3);
  });

  it('a failing validation query and application check fail the drill by name; timings compared with the previous drill; a cancel in the window removes the instance', async () => {
    assert.ok(firstDrillId, 'runs after the first drill');
    const workflowId = uniqueId('test-drill-validations-fail');
    const drillConfig = withDrill({
      validationSql: [...app.drill.validationSql, { name: 'lost-orders', sql: "SELECT count(*) FROM orders WHERE status = 'lost'" }],
      applicationCheck: { name: 'app-smoke', command: ['sh', '-c', 'env | sort; echo "no answer from the app" >&2; exit 3'], timeout: 60 },
    });
    let windowBegan = false;
    const { report } = await runDrill(workflowId, { target: 'app', backup: backup.primary.handle.backupId, requestedBy: 'test', timings: { keepForMs: 3600000 } }, drillConfig, 'restoreDrill-v2-failed-validation-window-cancelled', async (handle) => {
      windowBegan = (await engine.describeInstance(drillInstanceName(workflowId))) !== undefined;
      await handle.cancel();
    });
    assert.ok(windowBegan, 'the instance was there during the window');

    assert.equal(report.outcome, 'failed');
    assert.match(report.issues[0], /^validation failed: validation query lost-orders: 1 row, the first column of the first is 0 in [0-9.]+ ms; application check app-smoke: sh exited with 3 after \d+ ms: no answer from the app$/);
    assert.equal(report.applicationCheck?.exitCode, 3);
    const tail = report.applicationCheck!.outputTail;
    assert.match(tail, /^PGUSER=lifeboat_verify$/m);
    assert.match(tail, /^PGDATABASE=app$/m);
    assert.match(tail, /^LIFEBOAT_DRILL_ID=test-drill-validations-fail-/m);
    assert.doesNotMatch(tail, /LIFEBOAT_DATA_DIR|MINIO/, 'nothing of the worker environment but PATH, HOME, LANG, TZ');

    assert.deepEqual(report.queryTimingsBefore?.drillId, firstDrillId);
    const before = report.queryTimings!.filter((t) => t.previousMs !== undefined);
    assert.deepEqual(before.map((t) => t.name), ['recent-orders', 'order-lines-join', 'paid-orders']);
    assert.ok(before.every((t) => t.ratio !== undefined && t.ratio > 0));
    assert.equal(report.queryTimings!.find((t) => t.name === 'lost-orders')?.previousMs, undefined);

    assert.equal(report.steps.find((s) => s.phase === 'kept-for-validation')?.detail, 'the validation window was ended early by a cancel request');
    assert.equal(await engine.describeInstance(drillInstanceName(workflowId)), undefined, 'the drill instance is gone');
  });
});
