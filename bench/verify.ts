/**
 * `npm run bench:verify`: how long lifeboat's verification of a large table takes against
 * reading the table once. Figures, never assertions. Needs the local stack (`lifeboat stack up`).
 *
 * A table of the requested size is built in a scratch database on the stack's primary cluster
 * (UNLOGGED: the same pages to read, without pushing gigabytes of WAL into both MinIO regions),
 * vacuumed (hint bits and visibility map set, as on any settled table) and read once to warm the
 * OS cache. Then, each timed the same way:
 *   - `SELECT count(*)`: a sequential scan that never looks inside a row (the floor);
 *   - `COPY ... TO '/dev/null'`: every row read and turned into text, on the server;
 *   - `pg_dump --data-only -t <table>` to /dev/null: every row read, as text, by a client;
 *   - lifeboat: verifyDatabase() as the verify role (checksum by page ranges + checks);
 *   - with LIFEBOAT_BENCH_OLD_METHOD=1, the former `md5(string_agg(row text ORDER BY key))`.
 *
 * Environment:
 *   LIFEBOAT_BENCH_VERIFY_GB     table size in GiB (default 1)
 *   LIFEBOAT_BENCH_RUNS          timed runs of each (default 2; the best is reported)
 *   LIFEBOAT_BENCH_OLD_METHOD    1: also time the former method (needs memory and time)
 *   LIFEBOAT_BENCH_KEEP_TABLE    1: keep the scratch database for the next run
 */
import '../src/quiet-sdk-notice';
import { Client } from 'pg';
import { verifyDatabase } from '../src/engines/verifier';
import { VERIFY_ROLE } from '../src/stack/sample-app';
import { run } from '../src/platform/processes';
import { createStack } from '../src/stack/stack';

const GB = 1024 ** 3;
const DATABASE = 'lifeboat_bench_verify';
const TABLE = 'orders_large';
const sizeGb = Number(process.env.LIFEBOAT_BENCH_VERIFY_GB || 1);
const runs = Math.max(1, Number(process.env.LIFEBOAT_BENCH_RUNS || 2));

const stack = createStack();
const { settings } = stack.ctx;
const say = (text: string) => process.stdout.write(`${text}\n`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function withPg<T>(database: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ host: settings.host, port: settings.postgres.primaryPort, user: settings.postgres.superuser, database, statement_timeout: 0 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const tableBytes = () => withPg(DATABASE, async (c) => Number((await c.query<{ b: string }>(`SELECT coalesce(pg_relation_size(to_regclass('${TABLE}')), 0) AS b`)).rows[0].b));

/** Rows shaped like an order table's: keys, a time, a status, an amount and some free text. */
async function build(bytes: number): Promise<void> {
  await withPg('postgres', async (c) => {
    const exists = (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE])).rowCount;
    if (!exists) await c.query(`CREATE DATABASE ${DATABASE}`);
  });
  await withPg(DATABASE, async (c) => {
    await c.query(`CREATE UNLOGGED TABLE IF NOT EXISTS ${TABLE} (id bigint PRIMARY KEY, customer_id bigint NOT NULL, placed_at timestamptz NOT NULL, status text NOT NULL, amount numeric(12,2) NOT NULL, note text)`);
  });
  for (;;) {
    const size = await tableBytes();
    if (size >= bytes) break;
    await withPg(DATABASE, (c) =>
      c.query(
        `INSERT INTO ${TABLE} SELECT i, i % 100003, timestamptz '2026-01-01 00:00:00+00' + i * interval '3 seconds', (ARRAY['placed','paid','shipped','delivered'])[(i % 4) + 1],
                (i % 100000) / 100.0, 'customer note ' || md5(i::text) || ' ' || substr(md5((i * 7)::text), 1, ((i % 40) + 1)::int)
         FROM generate_series((SELECT coalesce(max(id), 0) + 1 FROM ${TABLE}), (SELECT coalesce(max(id), 0) + 1000000 FROM ${TABLE})) AS i`,
      ),
    );
    process.stdout.write(`  built ${(size / GB).toFixed(2)} GiB\r`);
  }
  await withPg(DATABASE, (c) => c.query(`VACUUM (ANALYZE) ${TABLE}`));
}

async function best(what: string, once: () => Promise<unknown>): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < runs; i++) {
    const started = Date.now();
    await once();
    fastest = Math.min(fastest, Date.now() - started);
  }
  say(`  ${what.padEnd(44)} ${secs(fastest)}`);
  return fastest;
}

async function main(): Promise<void> {
  say(`verification benchmark: one table of ${sizeGb} GiB in ${DATABASE} on port ${settings.postgres.primaryPort}`);
  const t0 = Date.now();
  await build(sizeGb * GB);
  const facts = await withPg(DATABASE, async (c) => (await c.query<{ rows: string; bytes: string; total: string }>(`SELECT reltuples::bigint AS rows, pg_relation_size('${TABLE}') AS bytes, pg_total_relation_size('${TABLE}') AS total FROM pg_class WHERE relname = '${TABLE}'`)).rows[0]);
  say(`  table: ${(Number(facts.bytes) / GB).toFixed(2)} GiB of heap (${(Number(facts.total) / GB).toFixed(2)} GiB with its index), about ${Number(facts.rows).toLocaleString('en')} rows; ready in ${secs(Date.now() - t0)}`);
  await withPg(DATABASE, (c) => c.query(`SELECT count(*) FROM ${TABLE}`)); // warm the OS cache

  const count = await best('SELECT count(*)', () => withPg(DATABASE, (c) => c.query(`SELECT count(*) FROM ${TABLE}`)));
  const copy = await best(`COPY ${TABLE} TO '/dev/null' (server)`, () => withPg(DATABASE, (c) => c.query(`COPY ${TABLE} TO '/dev/null'`)));
  const dump = await best('pg_dump --data-only -t (client) > /dev/null', () =>
    run(stack.ctx.tools.pgBin('pg_dump'), ['-h', settings.host, '-p', String(settings.postgres.primaryPort), '-U', settings.postgres.superuser, '--data-only', '-t', TABLE, '-f', '/dev/null', DATABASE]),
  );
  let rows = 0;
  const verify = await best(`lifeboat verifyDatabase as ${VERIFY_ROLE}`, async () => {
    const report = await verifyDatabase({ host: settings.host, port: settings.postgres.primaryPort, database: DATABASE, user: VERIFY_ROLE }, { criticalTables: [TABLE], smokeQueries: [] });
    if (!report.ok) throw new Error(`verification failed: ${JSON.stringify(report.checks)}`);
    rows = report.tables[0].rows;
  });
  if (process.env.LIFEBOAT_BENCH_OLD_METHOD) {
    const started = Date.now();
    try {
      await withPg(DATABASE, (c) => c.query(`SELECT count(*), md5(string_agg(t::text, E'\\n' ORDER BY id)) FROM ${TABLE} AS t`));
      say(`  ${'former md5(string_agg(...))'.padEnd(44)} ${secs(Date.now() - started)}`);
    } catch (err) {
      say(`  ${'former md5(string_agg(...))'.padEnd(44)} failed after ${secs(Date.now() - started)}: ${(err as Error).message}`);
    }
  }
  say('');
  say(`| table | rows | count(*) | COPY to /dev/null | pg_dump to /dev/null | lifeboat verification | verification / COPY | verification / pg_dump |`);
  say(`|---|---|---|---|---|---|---|---|`);
  say(`| ${(Number(facts.bytes) / GB).toFixed(2)} GiB | ${rows.toLocaleString('en')} | ${secs(count)} | ${secs(copy)} | ${secs(dump)} | ${secs(verify)} | ${(verify / copy).toFixed(2)}x | ${(verify / dump).toFixed(2)}x |`);
}

async function cleanup(): Promise<void> {
  if (process.env.LIFEBOAT_BENCH_KEEP_TABLE) return;
  await withPg('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`));
}

process.once('SIGINT', () => {
  void cleanup().finally(() => process.exit(130));
});

main()
  .then(cleanup)
  .catch(async (err: unknown) => {
    process.stderr.write(`benchmark failed: ${(err as Error).stack ?? String(err)}\n`);
    await cleanup().catch(() => undefined);
    process.exitCode = 1;
  });
