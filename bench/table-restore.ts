/**
 * `npm run bench:table-restore`: a table-level restore's phases, and its copy phase side by side
 * with the same table copied by hand. Figures, never assertions. Needs the local stack running
 * (`lifeboat stack up`) with a full backup in it.
 *
 * 1. A scratch table `lifeboat_bench_tables_<run>` of LIFEBOAT_BENCH_TABLE_MB (default 64) MiB
 *    of rows is made in the primary's `app` database and archived (`pgbackrest check`).
 * 2. The copy phase alone, side by side, from the primary into a scratch database of the same
 *    server (so neither side pays for the restore), each into an empty place, LIFEBOAT_BENCH_RUNS
 *    times (default 3; the order alternates, so neither side always gets the warmer cache):
 *    - lifeboat: copyTablesIntoNewSchema (src/engines/table-copy.ts), exactly what the copy
 *      activity runs, with its phases (structure, rows, keys and indexes, commit);
 *    - by hand: `pg_dump -t public.<table> app | psql <scratch database>`.
 *    Both over the same transport as production: TLS with the `app` target's sslMode and
 *    sslRootCert (verify-full in the example config), node-postgres for lifeboat, libpq's
 *    PGSSLMODE/PGSSLROOTCERT for the programs. Every run is printed, then the medians and their
 *    ratio (by hand / lifeboat: at least 0.8 is the goal).
 * 3. lifeboat, end to end, once: the real `tableRestore` workflow on an in-process worker
 *    (approved with the embedded stack's test key of bob@example.com): restore of a temporary
 *    instance, copy into a new schema of `app`, verify, cleanup; the report's phases and the wall time.
 *
 * Environment: LIFEBOAT_BENCH_TABLE_MB (table size), LIFEBOAT_BENCH_RUNS (runs of step 2),
 * LIFEBOAT_BENCH_SKIP_WORKFLOW=1 (no step 3), LIFEBOAT_CONFIG (default the example config).
 */
import '../src/quiet-sdk-notice';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Client as TemporalClient } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { Client } from 'pg';
import { createPorts } from '../src/activities/ports';
import { connectTemporal, connectWorkerConnection, lifeboatDataConverter } from '../src/client/temporal';
import { findDatabaseTarget, loadConfig } from '../src/config';
import { pgTlsOf } from '../src/activities/ports';
import { libpqTlsEnv } from '../src/engines/pg-tls';
import { planTableCopies, TableRestoreReport } from '../src/domain/table-restore';
import { copyTablesIntoNewSchema, CopyPhase, fingerprintTable } from '../src/engines/table-copy';
import { newPgClient } from '../src/engines/pg-client';
import { postgresBinDir } from '../src/platform/host';
import { delay } from '../src/platform/processes';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { createStack } from '../src/stack/stack';
import { statusQuery } from '../src/workflows/messages';
import { createLifeboatWorker } from '../src/worker';
import { approveSigned } from '../test/helpers/signing';

const MB = 1024 ** 2;
const sizeMb = Number(process.env.LIFEBOAT_BENCH_TABLE_MB || 64);
const runs = Math.max(1, Number(process.env.LIFEBOAT_BENCH_RUNS || 3));
const run = randomBytes(3).toString('hex');
const table = `lifeboat_bench_tables_${run}`;
const scratchDb = `lifeboat_bench_copy_${run}`;

const stack = createStack();
const { settings } = stack.ctx;
const say = (text: string) => process.stdout.write(`${text}\n`);
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const config = loadConfig(process.env.LIFEBOAT_CONFIG ?? path.resolve(__dirname, '../../lifeboat.config.yaml'));
// The transport production uses for this target, on both sides.
const tls = pgTlsOf(findDatabaseTarget(config, 'app'));
const conn = (database: string) => ({ host: settings.host, port: settings.postgres.primaryPort, user: settings.postgres.superuser, database, tls });
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function withDb<T>(database: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = newPgClient({ ...conn(database), statement_timeout: 0 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function shell(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...libpqTlsEnv(tls) } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${err}`))));
  });
}

async function makeTable(): Promise<{ rows: number; bytes: number }> {
  await withDb(settings.postgres.appDatabase, async (c) => {
    await c.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, customer int NOT NULL, label text NOT NULL, total numeric(12,2) CHECK (total >= 0), placed timestamptz NOT NULL DEFAULT now())`);
    await c.query(`CREATE INDEX ON ${table} (customer)`);
    // About 130 bytes a row on disk with its indexes; grown in batches until the table reaches the size.
    let next = 1;
    for (;;) {
      const size = Number((await c.query<{ b: string }>(`SELECT pg_table_size('${table}') AS b`)).rows[0].b);
      if (size >= sizeMb * MB) break;
      await c.query(`INSERT INTO ${table} SELECT g, g % 10007, md5(g::text) || md5((g * 7)::text), (g % 100000) / 100.0, '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series($1::bigint, $2::bigint) g`, [next, next + 199_999]);
      next += 200_000;
    }
  });
  return withDb(settings.postgres.appDatabase, async (c) => {
    const r = (await c.query<{ n: string; b: string }>(`SELECT count(*) AS n, pg_table_size('${table}') AS b FROM ${table}`)).rows[0];
    return { rows: Number(r.n), bytes: Number(r.b) };
  });
}

async function workflowPhases(): Promise<void> {
  // The worker's state changes are not figures (installed before the first connection makes the runtime).
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const { connection } = await connectWorkerConnection(config);
  const { connection: clientConnection, settings: temporal } = await connectTemporal(config);
  const client = new TemporalClient({ connection: clientConnection, namespace: temporal.namespace, dataConverter: lifeboatDataConverter(config) });
  const ports = createPorts(config, { log: () => undefined });
  const taskQueue = `bench-table-restore-${run}`;
  const intoSchema = `bench_recovered_${run}`;
  try {
    const pointT = await withDb(settings.postgres.appDatabase, async (c) => (await c.query<{ t: Date }>('SELECT now() AS t')).rows[0].t.toISOString());
    await localPgBackRest(stack.ctx).check();
    // Made just before it runs: a worker that never ran holds the connection open, and closing it
    // would then fail over the error that stopped the bench.
    const worker = await createLifeboatWorker({ config, connection, ports, taskQueue });
    const started = Date.now();
    const report = await worker.runUntil(async () => {
      const handle = await client.workflow.start('tableRestore', {
        taskQueue,
        workflowId: `bench-table-restore-${run}`,
        args: [{ target: 'app', restorePoint: pointT, reason: 'benchmark', requestedBy: 'alice@example.com', mode: 'standard', tables: [table], intoSchema, timings: { remindAfterMs: 600000, abortAfterMs: 1200000, pollIntervalMs: 250 } }],
      });
      for (;;) {
        const status = await handle.query(statusQuery);
        if (status.pendingGate) break;
        await delay(200);
      }
      await approveSigned(handle, { by: 'bob@example.com', reason: 'benchmark', gate: 'restore' });
      return (await handle.result()) as TableRestoreReport;
    });
    const wall = Date.now() - started;
    const p = report.phases;
    say(`lifeboat tableRestore, end to end (${report.outcome}): ${secs(wall)} wall, of which restore ${p.restore} s, copy ${p.copy} s, verify ${p.verify} s, cleanup ${p.cleanup} s (the report's whole seconds)`);
    for (const c of report.checks ?? []) say(`  ${c.source} -> ${c.into}: ${c.copy.rows} rows, ${c.ok ? 'count and checksum match' : 'DIFFERENT'}`);
    await withDb(settings.postgres.appDatabase, (c) => c.query(`DROP SCHEMA IF EXISTS ${intoSchema} CASCADE`));
  } finally {
    await ports.close();
    await clientConnection.close();
    await connection.close();
  }
}

async function copySideBySide(): Promise<void> {
  const app = settings.postgres.appDatabase;
  const plan = planTableCopies([table], 'lifeboat_copy');
  if (!plan.ok) throw new Error(plan.reason);
  const bin = postgresBinDir();
  const libpq = `-h ${settings.host} -p ${settings.postgres.primaryPort} -U ${settings.postgres.superuser}`;
  const fresh = async () => {
    await withDb(app, async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${scratchDb}`);
      await c.query(`CREATE DATABASE ${scratchDb}`);
      await c.query('CHECKPOINT');
    });
  };
  const byHand = async () => {
    await fresh();
    const t = Date.now();
    await shell(`${bin}/pg_dump ${libpq} -d ${app} -t public.${table} | ${bin}/psql ${libpq} -d ${scratchDb} -q -v ON_ERROR_STOP=1`);
    return Date.now() - t;
  };
  const lifeboat = async () => {
    await fresh();
    const phases: Record<CopyPhase, number> = { structure: 0, data: 0, indexes: 0, commit: 0 };
    const t = Date.now();
    const copied = await copyTablesIntoNewSchema({
      restored: conn(app),
      live: conn(scratchDb),
      plan: plan.plan,
      intoSchema: 'lifeboat_copy',
      owner: { workflowId: 'bench', runId: run, restorePoint: 'bench', createdAt: new Date().toISOString() },
      onPhase: (phase, ms) => (phases[phase] += ms),
    });
    return { ms: Date.now() - t, phases, copied: copied[0] };
  };
  const hand: number[] = [];
  const ours: Array<Awaited<ReturnType<typeof lifeboat>>> = [];
  try {
    say(`copy phase, ${runs} run(s) each, transport: TLS sslmode=${tls.sslMode} on both sides`);
    for (let i = 0; i < runs; i++) {
      // Alternating order: the second of a pair gets the warmer page cache.
      if (i % 2 === 0) {
        hand.push(await byHand());
        ours.push(await lifeboat());
      } else {
        ours.push(await lifeboat());
        hand.push(await byHand());
      }
      const o = ours[i];
      say(`  run ${i + 1}: by hand ${secs(hand[i])}, lifeboat ${secs(o.ms)} (structure ${secs(o.phases.structure)}, rows ${secs(o.phases.data)}, keys and indexes ${secs(o.phases.indexes)}, commit ${secs(o.phases.commit)})`);
    }
    const last = ours[ours.length - 1];
    const t = Date.now();
    const [a, b] = await Promise.all([fingerprintTable(conn(app), 'public', table), fingerprintTable(conn(scratchDb), 'lifeboat_copy', table)]);
    const verify = Date.now() - t;
    const med = (phase: CopyPhase) => secs(median(ours.map((o) => o.phases[phase])));
    const lifeboatMs = median(ours.map((o) => o.ms));
    const handMs = median(hand);
    say(`copy phase, ${last.copied.rows} rows, ${(last.copied.bytes / MB).toFixed(0)} MiB of COPY data, medians of ${runs}:`);
    say(`  lifeboat (binary COPY piped, keys and indexes after): ${secs(lifeboatMs)}: structure ${med('structure')}, rows ${med('data')}, keys and indexes ${med('indexes')}, commit ${med('commit')}`);
    say(`  by hand (pg_dump -t | psql):                          ${secs(handMs)}`);
    say(`  lifeboat's speed relative to by hand: ${(handMs / lifeboatMs).toFixed(2)}x (goal: at least 0.8x)`);
    say(`  verify (count and checksum, both sides at once, after lifeboat's last copy): ${secs(verify)}, ${a.rows === b.rows && a.checksum === b.checksum ? 'match' : 'DIFFERENT'}`);
  } finally {
    await withDb(app, (c) => c.query(`DROP DATABASE IF EXISTS ${scratchDb}`));
  }
}

async function main(): Promise<void> {
  say(`table restore benchmark, run ${run}: a ${sizeMb} MiB table (LIFEBOAT_BENCH_TABLE_MB); load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, ${os.cpus().length} CPUs`);
  const made = await makeTable();
  say(`scratch table ${table}: ${made.rows} rows, ${(made.bytes / MB).toFixed(0)} MiB`);
  try {
    await copySideBySide();
    if (process.env.LIFEBOAT_BENCH_SKIP_WORKFLOW !== '1') await workflowPhases();
  } finally {
    await withDb(settings.postgres.appDatabase, (c) => c.query(`DROP TABLE IF EXISTS ${table}`));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
