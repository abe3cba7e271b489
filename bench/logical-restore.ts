/**
 * `npm run bench:logical-restore`: lifeboat's logical restore (streamed from MinIO: download →
 * decrypt → gunzip → pg_restore, with the archive's row counts taken on the way, as the
 * logicalRestore workflow runs it) side by side with `pg_restore -j` of the same dump from a
 * local file, by hand. Figures, never assertions. Needs the local stack (`lifeboat stack up`).
 *
 * A scratch database of about the requested size is built on the stack's primary cluster (two
 * tables with a primary key, a secondary index and a foreign key, so pg_restore -j has index
 * builds to run in parallel), dumped once with the engine into the primary MinIO, then:
 *   - lifeboat: LogicalDumpEngine.restoreTo() into a new database, countRows on (the workflow's way);
 *   - lifeboat without the row count, to show what the count costs;
 *   - by hand: the same dump decrypted and gunzipped to a local file first (not timed: the
 *     by-hand figure starts with the file on disk), then `pg_restore -j <jobs>` into a new database.
 * The goal (issue 12) is lifeboat ≥ 0.9× the by-hand speed, i.e. its time ≤ by-hand time / 0.9.
 *
 * Environment:
 *   LIFEBOAT_BENCH_LOGICAL_MB   source size in MiB of table data (default 200)
 *   LIFEBOAT_BENCH_JOBS         pg_restore -j for the by-hand run (default the number of CPUs)
 *   LIFEBOAT_BENCH_RUNS         timed runs of each (default 1; the best is reported)
 */
import '../src/quiet-sdk-notice';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { createPorts } from '../src/activities/ports';
import { findDatabaseTarget } from '../src/config';
import { LogicalDumpEngine } from '../src/engines/logical-dump';
import { run } from '../src/platform/processes';
import { createStack } from '../src/stack/stack';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { objectVersionPages } from '../src/engines/aws-pagination';
import { loadLocatedConfig } from '../src/config/locate';

const MIB = 1024 * 1024;
const SOURCE = 'lifeboat_bench_lr_src';
const sizeMb = Number(process.env.LIFEBOAT_BENCH_LOGICAL_MB || 200);
const jobs = Math.max(1, Number(process.env.LIFEBOAT_BENCH_JOBS || os.cpus().length));
const runs = Math.max(1, Number(process.env.LIFEBOAT_BENCH_RUNS || 1));

const stack = createStack();
const { settings } = stack.ctx;
const say = (text: string) => process.stdout.write(`${text}\n`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const conn = (database: string) => ({ host: settings.host, port: settings.postgres.primaryPort, user: settings.postgres.superuser, database });

async function withPg<T>(database: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ ...conn(database), statement_timeout: 0 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const recreate = (name: string) =>
  withPg('postgres', async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name} TEMPLATE template0`);
  });
const drop = (name: string) => withPg('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));

async function build(): Promise<number> {
  await recreate(SOURCE);
  const rows = Math.round((sizeMb * MIB) / 110);
  await withPg(SOURCE, async (c) => {
    await c.query('CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL)');
    await c.query('CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), placed_at timestamptz NOT NULL, status text NOT NULL, amount numeric(12,2) NOT NULL, note text)');
    await c.query("INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 100000) g");
    await c.query(
      `INSERT INTO orders SELECT g, 1 + (g % 100000), timestamptz '2026-01-01' + g * interval '1 second', (ARRAY['new','paid','shipped','returned'])[1 + g % 4], (g % 100000) / 100.0, md5(g::text) || md5((g * 3)::text) FROM generate_series(1, $1) g`,
      [rows],
    );
    await c.query('CREATE INDEX orders_customer_idx ON orders (customer_id, placed_at)');
    await c.query('CREATE INDEX orders_status_idx ON orders (status, amount)');
  });
  return withPg(SOURCE, async (c) => Number((await c.query<{ b: string }>('SELECT pg_database_size(current_database()) AS b')).rows[0].b));
}

async function best(label: string, fn: () => Promise<void>): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < runs; i++) {
    const started = Date.now();
    await fn();
    fastest = Math.min(fastest, Date.now() - started);
  }
  say(`  ${label.padEnd(58)} ${secs(fastest)}`);
  return fastest;
}

async function main(): Promise<void> {
  const { config } = loadLocatedConfig(undefined);
  const ports = createPorts(config, { log: () => undefined });
  const lb = findDatabaseTarget(config, 'app').logicalBackup!;
  const engine = new LogicalDumpEngine({ store: { s3: ports.objectStore(lb.store), bucket: lb.bucket, prefix: `bench-${process.pid}/`, name: lb.store }, encryptionKey: lb.encryptionKey });
  const backupName = `bench-${Date.now()}`;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-lr-'));
  const local = path.join(work, 'dump.custom');
  const pgBin = process.env.LIFEBOAT_PG_BIN_DIR ?? path.dirname((await run('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin/pg_restore | sort -V | tail -1'])).stdout.trim());
  try {
    say(`building ${SOURCE} (~${sizeMb} MiB of rows) on ${settings.host}:${settings.postgres.primaryPort}`);
    const dbBytes = await build();
    const dump = await engine.backup({ target: 'bench', backupName, source: conn(SOURCE) });
    say(`database ${(dbBytes / MIB).toFixed(0)} MiB, pg_dump archive ${(dump.dumpBytes / MIB).toFixed(0)} MiB, stored ${(dump.sizeBytes / MIB).toFixed(0)} MiB (gzip + lifeboat-enc-v2); ${runs} run(s) each, best shown; ${os.cpus().length} CPUs`);
    const ref = { bucket: dump.bucket, key: dump.key };

    const lifeboatMs = await best('lifeboat (MinIO → decrypt → gunzip → pg_restore, counted)', async () => {
      await recreate('lifeboat_bench_lr_a');
      await engine.restoreTo(ref, { ...conn('lifeboat_bench_lr_a') }, { countRows: true });
    });
    const uncountedMs = await best('lifeboat without the row count', async () => {
      await recreate('lifeboat_bench_lr_a');
      await engine.restoreTo(ref, { ...conn('lifeboat_bench_lr_a') });
    });

    // By hand: the archive as a local file first (untimed), then pg_restore -j from it.
    await pipeline(await engine.dumpStream(ref), fs.createWriteStream(local));
    const byHandMs = await best(`by hand: pg_restore -j ${jobs} from a local file`, async () => {
      await recreate('lifeboat_bench_lr_b');
      const r = await run(path.join(pgBin, 'pg_restore'), ['-h', settings.host, '-p', String(settings.postgres.primaryPort), '-U', settings.postgres.superuser, '-d', 'lifeboat_bench_lr_b', '--no-owner', '--no-privileges', '--exit-on-error', '-j', String(jobs), local]);
      if (r.code !== 0) throw new Error(`pg_restore -j failed: ${r.stderr}`);
    });
    const singleMs = await best('by hand: pg_restore (one job) from a local file', async () => {
      await recreate('lifeboat_bench_lr_b');
      const r = await run(path.join(pgBin, 'pg_restore'), ['-h', settings.host, '-p', String(settings.postgres.primaryPort), '-U', settings.postgres.superuser, '-d', 'lifeboat_bench_lr_b', '--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', local]);
      if (r.code !== 0) throw new Error(`pg_restore failed: ${r.stderr}`);
    });
    say('');
    say(`lifeboat / by hand (pg_restore -j ${jobs}):        ${(byHandMs / lifeboatMs).toFixed(2)}x the speed (goal ≥ 0.90x)`);
    say(`lifeboat uncounted / by hand (pg_restore -j ${jobs}): ${(byHandMs / uncountedMs).toFixed(2)}x`);
    say(`lifeboat / by hand (one job):                   ${(singleMs / lifeboatMs).toFixed(2)}x`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    for (const db of ['lifeboat_bench_lr_a', 'lifeboat_bench_lr_b', SOURCE]) await drop(db).catch(() => undefined);
    const s3 = ports.objectStore(lb.store);
    for await (const page of objectVersionPages(s3, { Bucket: lb.bucket, Prefix: `bench-${process.pid}/` })) {
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) await s3.send(new DeleteObjectCommand({ Bucket: lb.bucket, Key: v.Key, VersionId: v.VersionId }));
    }
    await ports.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
