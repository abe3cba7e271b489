/**
 * `npm run bench:logical-restore`: lifeboat's logical restore (LogicalDumpEngine.restoreTo with the
 * row count, as the logicalRestore activity runs it) side by side with `pg_restore -j` of the same
 * dump from a local file, by hand. Figures, never assertions. Needs the local stack (`lifeboat stack up`).
 *
 * A scratch database of about the requested size is built on the stack's primary cluster (two
 * tables with a primary key, a secondary index and a foreign key, so pg_restore -j has index
 * builds to run in parallel), dumped once with the engine into the primary MinIO (pg_dump custom
 * format → zstd → lifeboat-enc-v2), then, each run in a new database:
 *   - lifeboat, spooled (the default above two cores, `logicalBackup.restoreJobs` 0, or > 1): MinIO → decrypt → zstd -d
 *     into a local file, hashed on the way, then `pg_restore -j <jobs>` from it (the restored rows
 *     are checked against the counts recorded at backup time, so the archive is not counted);
 *   - the same, the archive's rows counted on the way too (a dump taken before lifeboat recorded counts);
 *   - lifeboat, streamed (the default on two cores, or `restoreJobs: 1`): MinIO → decrypt → zstd -d → one pg_restore in one transaction;
 *   - by hand: `pg_restore -j <jobs>` from the same archive as a local file (written once, untimed:
 *     the by-hand figure starts with the file on disk), and with one job.
 * Same transport on every side: TLS with the `app` target's sslMode and sslRootCert (PGSSLMODE,
 * PGSSLROOTCERT). Every run is printed, then the medians; the goal (issue 12) is lifeboat ≥ 0.9×
 * the by-hand -j speed, i.e. its time ≤ by-hand time / 0.9. The order rotates between runs.
 *
 * Environment:
 *   LIFEBOAT_BENCH_LOGICAL_MB   source size in MiB of table data (default 200)
 *   LIFEBOAT_BENCH_JOBS         pg_restore -j for lifeboat and by hand (default the number of CPUs)
 *   LIFEBOAT_BENCH_RUNS         timed runs of each (default 3; medians reported)
 */
import '../src/quiet-sdk-notice';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Client } from 'pg';
import { pgTlsOf } from '../src/activities/ports';
import { newPgClient } from '../src/engines/pg-client';
import { libpqTlsEnv, PgTls } from '../src/engines/pg-tls';
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
const runs = Math.max(1, Number(process.env.LIFEBOAT_BENCH_RUNS || 3));

const stack = createStack();
const { settings } = stack.ctx;
const say = (text: string) => process.stdout.write(`${text}\n`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
let tls: PgTls | undefined;
const conn = (database: string) => ({ host: settings.host, port: settings.postgres.primaryPort, user: settings.postgres.superuser, database, tls });
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function withPg<T>(database: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = newPgClient({ ...conn(database), statement_timeout: 0 });
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

async function main(): Promise<void> {
  const { config } = loadLocatedConfig(undefined);
  const ports = createPorts(config, { log: () => undefined });
  const target = findDatabaseTarget(config, 'app');
  const lb = target.logicalBackup!;
  tls = pgTlsOf(target);
  const engine = new LogicalDumpEngine({ store: { s3: ports.objectStore(lb.store), bucket: lb.bucket, prefix: `bench-${process.pid}/`, name: lb.store }, encryptionKey: lb.encryptionKey });
  const backupName = `bench-${Date.now()}`;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-lr-'));
  const local = path.join(work, 'dump.custom');
  const pgBin = process.env.LIFEBOAT_PG_BIN_DIR ?? path.dirname((await run('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin/pg_restore | sort -V | tail -1'])).stdout.trim());
  try {
    say(`building ${SOURCE} (~${sizeMb} MiB of rows) on ${settings.host}:${settings.postgres.primaryPort}`);
    const dbBytes = await build();
    const dump = await engine.backup({ target: 'bench', backupName, source: conn(SOURCE) });
    say(`database ${(dbBytes / MIB).toFixed(0)} MiB, pg_dump archive ${(dump.dumpBytes / MIB).toFixed(0)} MiB, stored ${(dump.sizeBytes / MIB).toFixed(0)} MiB (${dump.compression ?? 'gzip'} + lifeboat-enc-v2); ${runs} run(s) each, medians; ${os.cpus().length} CPUs; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; transport TLS sslmode=${tls?.sslMode ?? 'disable'} on every side`);
    const ref = { bucket: dump.bucket, key: dump.key };
    // The by-hand side's file, written once and untimed.
    await pipeline(await engine.dumpStream(ref), fs.createWriteStream(local));

    const byHand = async (database: string, parallel: boolean) => {
      const args = ['-h', settings.host, '-p', String(settings.postgres.primaryPort), '-U', settings.postgres.superuser, '-d', database, '--no-owner', '--no-privileges', '--exit-on-error'];
      const r = await run(path.join(pgBin, 'pg_restore'), [...args, ...(parallel ? ['-j', String(jobs)] : ['--single-transaction']), local], { env: libpqTlsEnv(tls) });
      if (r.code !== 0) throw new Error(`pg_restore failed: ${r.stderr}`);
    };
    // The logicalRestore activity counts the archive's rows only when the catalog lacks the counts
    // recorded at backup time (dumps taken before lifeboat recorded them).
    const spooled = (db: string, countRows: boolean) =>
      engine
        .restoreTo(ref, conn(db), { countRows, jobs, spool: { dir: work, name: 'bench' } })
        .then((r) => r.how === 'spooled' || Promise.reject(new Error(`restored ${r.how}, not spooled: the disk of ${work} is short of space`)));
    const sides: Array<{ label: string; fn: (db: string) => Promise<unknown>; ms: number[] }> = [
      { label: `lifeboat spooled (the default above two cores): MinIO → decrypt → zstd -d → file, hashed; pg_restore -j ${jobs}`, fn: (db) => spooled(db, false), ms: [] },
      { label: `lifeboat spooled, the archive's rows counted too (dumps without recorded counts)`, fn: (db) => spooled(db, true), ms: [] },
      { label: 'lifeboat streamed (the default on two cores, or restoreJobs: 1): MinIO → decrypt → zstd -d → pg_restore', fn: (db) => engine.restoreTo(ref, conn(db), {}), ms: [] },
      { label: `by hand: pg_restore -j ${jobs} from a local file`, fn: (db) => byHand(db, true), ms: [] },
      { label: 'by hand: pg_restore (one job) from a local file', fn: (db) => byHand(db, false), ms: [] },
    ];
    for (let i = 0; i < runs; i++) {
      // Rotated, so no side is always the one after the same other.
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(i + k) % sides.length];
        await recreate('lifeboat_bench_lr_a');
        const started = Date.now();
        await side.fn('lifeboat_bench_lr_a');
        side.ms.push(Date.now() - started);
      }
      say(`  run ${i + 1}: ${sides.map((x) => secs(x.ms[i])).join(', ')} (in the order of the list below); load average ${os.loadavg()[0].toFixed(2)}`);
    }
    say('');
    const [byDefault, counted, streamed, hand, single] = sides.map((x) => median(x.ms));
    for (const x of sides) say(`  ${x.label.padEnd(90)} ${secs(median(x.ms))}`);
    say('');
    const cores = os.cpus().length;
    say(`lifeboat spooled / by hand (pg_restore -j ${jobs}):          ${(hand / byDefault).toFixed(2)}x the speed${cores > 2 ? ' (the default here; goal ≥ 0.90x)' : ''}`);
    say(`lifeboat, archive counted / by hand (pg_restore -j ${jobs}): ${(hand / counted).toFixed(2)}x`);
    say(`lifeboat streamed / by hand (pg_restore -j ${jobs}):         ${(hand / streamed).toFixed(2)}x${cores > 2 ? '' : ' (the default on this machine\'s two cores; goal ≥ 0.90x)'}`);
    say(`lifeboat spooled / by hand (one job):                   ${(single / byDefault).toFixed(2)}x`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    for (const db of ['lifeboat_bench_lr_a', SOURCE]) await drop(db).catch(() => undefined);
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
