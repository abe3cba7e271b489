/**
 * tableRestore on the real stack: a DELETE without WHERE on the real primary, then the tables
 * as they were before it, copied into a new schema of the live database and compared row by row
 * with what they held; through the CLI as an incident commander types it (start, approve as
 * someone else, watch). Refusals before anything exists, and a cancel during the copy that
 * leaves neither the schema nor the temporary instance behind.
 */
import assert from 'node:assert/strict';
import { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { createPorts, Ports } from '../src/activities/ports';
import { destinationFor } from '../src/activities/restore';
import { loadConfig } from '../src/config';
import { WorkflowStatus } from '../src/domain/approval';
import { TableRestoreInput, TableRestoreReport } from '../src/domain/table-restore';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { Stack } from '../src/stack/stack';
import { statusQuery } from '../src/workflows/messages';
import { createLifeboatWorker } from '../src/worker';
import { ensureFullBackup } from './helpers/backup-exists';
import { CONFIG_FILE, lifeboat as runLifeboat, Run } from './helpers/cli';
import { assertNothingCreated, onPrimary, recordHistory, removeAsItsOwner, uniqueId, waitForStatus } from './helpers/pitr';
import { approveSigned } from './helpers/signing';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const TIMINGS = { remindAfterMs: 60000, abortAfterMs: 120000, pollIntervalMs: 250 };

/** Every row of a table as JSON, in key order: what "exactly as it was" is compared on. */
async function rowsOf(c: Client, table: string): Promise<unknown[]> {
  return (await c.query<{ r: unknown }>(`SELECT to_jsonb(t) AS r FROM ${table} t ORDER BY id`)).rows.map((row) => row.r);
}

async function schemaExists(stack: Stack, schema: string): Promise<boolean> {
  return onPrimary(stack, async (c) => (await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1);
}

describe('tableRestore (real worker, real stack)', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let engine: PgBackRestEngine;
  const config = loadConfig(CONFIG_FILE);
  const target = config.targets.databases.find((d) => d.name === 'app');
  const restoresDir = target && target.engine === 'pgbackrest' ? target.restoresDir : '';
  const taskQueue = uniqueTaskQueue('table-restore');
  const id = uniqueId('t').slice(2).replace(/-/g, '_');
  const orders = `lbtbl_${id}_orders`;
  const items = `lbtbl_${id}_order_items`;
  const big = `lbtbl_${id}_big`;
  const made = { instances: new Set<string>(), schemas: new Set<string>() };

  before(async function () {
    this.timeout(900000);
    stack = await useStack();
    env = await useTemporal();
    ports = createPorts(config);
    engine = ports.database('app') as PgBackRestEngine;
    await ensureFullBackup(stack);
  });

  after(async function () {
    this.timeout(300000);
    for (const instanceId of made.instances) await removeAsItsOwner(engine, instanceId).catch((err: unknown) => console.error(`cleanup of ${instanceId}: ${String(err)}`));
    await onPrimary(stack, async (c) => {
      for (const schema of made.schemas) await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.query(`DROP TABLE IF EXISTS ${items}, ${orders}, ${big}`);
    }).catch((err: unknown) => console.error(`dropping test tables: ${String(err)}`));
    await ports?.close();
  });

  const lifeboat = (args: string[], extraEnv: Record<string, string> = {}): Promise<Run> => runLifeboat(args, { LIFEBOAT_TASK_QUEUE: taskQueue, ...extraEnv });

  /** Serves this suite's task queue while `fn` runs. */
  async function withWorker<T>(fn: () => Promise<T>): Promise<T> {
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(fn);
  }

  function input(overrides: Partial<TableRestoreInput>): TableRestoreInput {
    return { target: 'app', restorePoint: 'latest', reason: 'test: rows deleted', requestedBy: 'alice@example.com', mode: 'standard', timings: TIMINGS, tables: [], intoSchema: 'x', ...overrides };
  }

  it('after a DELETE without WHERE, restores both tables as they were into a new schema, through the CLI; the live tables and everything else stay as they are', async function () {
    this.timeout(900000);
    const cli = localPgBackRest(stack.ctx);
    await onPrimary(stack, async (c) => {
      await c.query(`CREATE TABLE ${orders} (id serial PRIMARY KEY, label text NOT NULL UNIQUE, total numeric(10,2) CHECK (total >= 0), placed timestamptz NOT NULL DEFAULT now(), tags text[])`);
      await c.query(`CREATE TABLE ${items} (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, order_id int NOT NULL REFERENCES ${orders}(id), qty int NOT NULL, note text)`);
      await c.query(`CREATE INDEX ON ${items} (order_id)`);
      await c.query(`INSERT INTO ${orders} (label, total, tags) SELECT 'order-' || g, g * 1.25, ARRAY['t' || (g % 3)] FROM generate_series(1, 500) g`);
      await c.query(`INSERT INTO ${items} (order_id, qty, note) SELECT 1 + (g % 500), g % 7, CASE WHEN g % 5 = 0 THEN NULL ELSE 'n''' || g END FROM generate_series(1, 1500) g`);
    });
    await cli.check();
    const pointT = await onPrimary(stack, async (c) => (await c.query<{ t: Date }>('SELECT now() AS t')).rows[0].t.toISOString());
    const before = await onPrimary(stack, async (c) => ({ orders: await rowsOf(c, orders), items: await rowsOf(c, items) }));
    // The accident: every item gone, orders changed after T.
    await onPrimary(stack, async (c) => {
      await c.query(`DELETE FROM ${items}`);
      await c.query(`UPDATE ${orders} SET total = 0 WHERE id <= 10`);
    });
    await cli.check();
    const after = await onPrimary(stack, async (c) => ({ orders: await rowsOf(c, orders), items: await rowsOf(c, items) }));
    assert.equal(after.items.length, 0);

    const schema = `recovered_${id}`;
    const workflowId = uniqueId('test-table-restore');
    made.schemas.add(schema);
    made.instances.add(destinationFor(workflowId));
    await withWorker(async () => {
      const started = await lifeboat(['restore', 'app', '--to', pointT, '--tables', `${orders},${items}`, '--into-schema', schema, '--reason', 'DELETE without WHERE on order items', '--incident', 'INC-12', '--id', workflowId, '--as', 'alice@example.com']);
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stdout, new RegExp(`^restore started: ${workflowId}$`, 'm'));
      assert.match(started.stdout, /^waiting for approval \(restore\) by any of: backup-owner, data-owner, not alice@example\.com$/m);
      // The gate says exactly which table goes where, with what the live tables hold now.
      assert.match(started.stdout, new RegExp(`^  table 1: public\\.${orders} -> ${schema}\\.${orders} \\(the live public\\.${orders} holds 500 rows now\\)$`, 'm'));
      assert.match(started.stdout, new RegExp(`^  table 2: public\\.${items} -> ${schema}\\.${items} \\(the live public\\.${items} holds 0 rows now\\)$`, 'm'));
      assert.match(started.stdout, new RegExp(`^  new schema: ${schema}, created in the live database of app; no existing table or schema is written$`, 'm'));
      assert.match(started.stdout, new RegExp(`^  temporary instance: ${destinationFor(workflowId)}, restored to the point, removed after the copy is checked$`, 'm'));

      const approved = await lifeboat(['approve', workflowId, '--reason', 'data owner: bring the rows back'], { LIFEBOAT_USER: 'bob@example.com' });
      assert.equal(approved.code, 0, approved.stderr);
      const watched = await lifeboat(['watch', workflowId]);
      assert.equal(watched.code, 0, `${watched.stdout}\n${watched.stderr}`);
      assert.match(watched.stdout, /^outcome: restored$/m);
      assert.match(watched.stdout, new RegExp(`^public\\.${items} -> ${schema}\\.${items}: 1500 rows, count and checksum match the restored instance$`, 'm'));
      assert.match(watched.stdout, new RegExp(`^public\\.${orders} -> ${schema}\\.${orders}: 500 rows, count and checksum match the restored instance$`, 'm'));
      assert.match(watched.stdout, /^phases: restore [^,]+, copy [^,]+, verify [^,]+, cleanup .+$/m);
      assert.match(watched.stdout, new RegExp(`removed restored instance ${destinationFor(workflowId)}`));
      await recordHistory(env.client.workflow.getHandle(workflowId), 'tableRestore-v1-restored');
    });
    const report = (await env.client.workflow.getHandle(workflowId).result()) as TableRestoreReport;
    assert.equal(report.outcome, 'restored');
    assert.deepEqual(
      report.checks?.map((c) => [c.into, c.copy.rows, c.ok, c.copy.checksum === c.restored.checksum]),
      [
        [`${schema}.${orders}`, 500, true, true],
        [`${schema}.${items}`, 1500, true, true],
      ],
    );

    // The rows exactly as they were at T, next to the live tables, which are as the accident left them.
    const recovered = await onPrimary(stack, async (c) => ({ orders: await rowsOf(c, `${schema}.${orders}`), items: await rowsOf(c, `${schema}.${items}`) }));
    assert.deepEqual(recovered, before);
    assert.deepEqual(await onPrimary(stack, async (c) => ({ orders: await rowsOf(c, orders), items: await rowsOf(c, items) })), after);
    // Structure: keys and indexes came along, foreign keys and sequences did not; the schema records its maker.
    const structure = await onPrimary(stack, async (c) => ({
      constraints: (await c.query<{ t: string }>(`SELECT contype::text AS t FROM pg_constraint WHERE connamespace = $1::regnamespace ORDER BY 1`, [schema])).rows.map((r) => r.t),
      indexes: Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM pg_indexes WHERE schemaname = $1`, [schema])).rows[0].n),
      sequences: Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM pg_sequences WHERE schemaname = $1`, [schema])).rows[0].n),
      comment: (await c.query<{ d: string }>(`SELECT obj_description($1::regnamespace, 'pg_namespace') AS d`, [schema])).rows[0].d,
    }));
    assert.deepEqual(structure.constraints, ['c', 'p', 'p', 'u']);
    assert.equal(structure.indexes, 4);
    assert.equal(structure.sequences, 0);
    assert.match(structure.comment, new RegExp(`^lifeboat table restore: \\{"workflowId":"${workflowId}"`));
    await assertNothingCreated(engine, restoresDir, workflowId);
    const row = (await ports.catalog.query<{ outcome: string; destination: string }>('SELECT outcome, destination FROM restores WHERE workflow_id = $1', [workflowId]))[0];
    assert.deepEqual(row, { outcome: 'restored', destination: `schema ${schema}` });
  });

  it('refuses an unknown table and an existing schema with exit 2 and one sentence, before anything is created', async function () {
    this.timeout(300000);
    await onPrimary(stack, (c) => c.query(`CREATE TABLE IF NOT EXISTS ${orders} (id serial PRIMARY KEY)`));
    const taken = `taken_${id}`;
    made.schemas.add(taken);
    await onPrimary(stack, (c) => c.query(`CREATE SCHEMA ${taken}`));
    await withWorker(async () => {
      const unknownId = uniqueId('test-table-restore-unknown');
      const unknown = await lifeboat(['restore', 'app', '--to', 'latest', '--tables', `${orders},no_such_table_${id}`, '--into-schema', `recovered_u_${id}`, '--reason', 'test', '--id', unknownId, '--as', 'alice@example.com']);
      assert.equal(unknown.code, 2, unknown.stdout);
      assert.equal(
        unknown.stderr,
        `lifeboat: restore refused: the table public.no_such_table_${id} does not exist in the database of app: check the name (\\dt public.*), or, for a dropped table, restore the whole database with \`lifeboat restore app --to <time>\`.\n`,
      );
      const existingId = uniqueId('test-table-restore-existing');
      const existing = await lifeboat(['restore', 'app', '--to', 'latest', '--tables', orders, '--into-schema', taken, '--reason', 'test', '--id', existingId, '--as', 'alice@example.com']);
      assert.equal(existing.code, 2, existing.stdout);
      assert.equal(existing.stderr, `lifeboat: restore refused: the schema ${taken} already exists in the database of app; a table restore creates a NEW schema and never writes into an existing one: choose another --into-schema.\n`);
      for (const wf of [unknownId, existingId]) await assertNothingCreated(engine, restoresDir, wf);
    });
    assert.equal(await schemaExists(stack, `recovered_u_${id}`), false);
    // The existing schema is as it was: empty, never written.
    assert.equal(await onPrimary(stack, async (c) => (await c.query(`SELECT 1 FROM pg_class WHERE relnamespace = $1::regnamespace`, [taken])).rowCount), 0);
  });

  it('a cancel during the copy leaves neither the schema nor the temporary instance', async function () {
    this.timeout(900000);
    // Big enough that the copy is still running when the cancel lands.
    await onPrimary(stack, async (c) => {
      await c.query(`CREATE TABLE ${big} (id bigint PRIMARY KEY, payload text NOT NULL)`);
      await c.query(`INSERT INTO ${big} SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 400000) g`);
    });
    await localPgBackRest(stack.ctx).check();
    const schema = `recovered_c_${id}`;
    const workflowId = uniqueId('test-table-restore-cancel');
    made.schemas.add(schema);
    made.instances.add(destinationFor(workflowId));
    const outcome = await withWorker(async () => {
      const handle: WorkflowHandle = await env.client.workflow.start('tableRestore', { taskQueue, workflowId, args: [input({ tables: [big], intoSchema: schema })] });
      await waitForStatus(handle, 'the restore gate', (s) => s.pendingGate?.gate === 'restore');
      await approveSigned(handle, { by: 'bob@example.com', reason: 'go', gate: 'restore' });
      await waitForStatus(handle, 'the copy', (s) => s.phase === 'copying', 10 * 60 * 1000, 50);
      await handle.cancel();
      const error = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      const status = (await handle.query(statusQuery)) as WorkflowStatus;
      await recordHistory(handle, 'tableRestore-v1-cancelled-during-copy');
      return { error, status };
    });
    assert.ok(outcome.error, 'the workflow ended cancelled');
    assert.equal(outcome.status.phase, 'cancelled');
    const note = outcome.status.timeline.at(-1)?.note ?? '';
    assert.match(note, new RegExp(`(nothing to drop: the schema ${schema} was never created|dropped the schema ${schema} this run had created)`));
    assert.match(note, new RegExp(`removed restored instance ${destinationFor(workflowId)}`));
    assert.equal(await schemaExists(stack, schema), false);
    await assertNothingCreated(engine, restoresDir, workflowId);
    const row = (await ports.catalog.query<{ outcome: string }>('SELECT outcome FROM restores WHERE workflow_id = $1', [workflowId]))[0];
    assert.equal(row?.outcome, 'cancelled');
  });
});
