/**
 * `npm run bench:dr-copy`: the backup workflow with each DR-copy mode on the same data, side by
 * side with the same pgBackRest work by hand. Figures, never assertions. Needs the local stack
 * (`lifeboat stack up`).
 *
 * For each mode (second-backup: a second backup of the source into repo2; repository-copy: the
 * set copied from repo1's bucket to repo2's) one full `databaseBackup` workflow is run and shows:
 *   - the workflow's wall time (backup, verify, DR copy, verify the copy, record);
 *   - the source's read volume: what pgBackRest reports it read from the data directory for every
 *     set it took of the source during the run (`info`: size), and, measured apart, the bytes the
 *     pgBackRest backup processes read (rchar of every `backup` process and its local workers,
 *     sampled from /proc every 100 ms: a floor, as the last reads of a process may fall between samples);
 *   - the DR copy's lag as the workflow recorded it (primary complete -> DR copy verified).
 * By hand, for reference: `pgbackrest backup --type=full --repo=1` (one read of the source) and
 * then `--repo=2` (the second read the old mode makes), timed the same way; those two sets are
 * expired at the end.
 *
 * The data: a scratch database with a table of LIFEBOAT_BENCH_DR_COPY_MB MiB (default 256) of
 * half-compressible rows, dropped at the end (the sets taken of it stay until retention expires them).
 */
import '../src/quiet-sdk-notice';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Client as TemporalClient } from '@temporalio/client';
import { Client } from 'pg';
import { createPorts } from '../src/activities/ports';
import { connectTemporal, connectWorkerConnection, lifeboatDataConverter } from '../src/client/temporal';
import { LifeboatConfig } from '../src/config';
import { loadLocatedConfig } from '../src/config/locate';
import type { DatabaseBackupResult } from '../src/domain/backup';
import { formatBytes } from '../src/domain/format';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { createStack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';

const MB = 1024 ** 2;
const DATABASE = 'lifeboat_bench_drcopy';
const sizeMb = Number(process.env.LIFEBOAT_BENCH_DR_COPY_MB || 256);
const stack = createStack();
const { settings } = stack.ctx;
const cli = localPgBackRest(stack.ctx);
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

/** Rows of random hex (compresses about 2:1, like real data) until the table holds `mb` MiB. */
async function build(mb: number): Promise<number> {
  await withPg('postgres', async (c) => {
    if (!(await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE])).rowCount) await c.query(`CREATE DATABASE ${DATABASE}`);
  });
  return withPg(DATABASE, async (c) => {
    await c.query('CREATE TABLE IF NOT EXISTS filler (id bigserial PRIMARY KEY, payload text NOT NULL)');
    await c.query('ALTER TABLE filler ALTER COLUMN payload SET STORAGE EXTERNAL');
    const size = async () => Number((await c.query<{ b: string }>("SELECT pg_total_relation_size('filler') AS b")).rows[0].b);
    while ((await size()) < mb * MB) await c.query("INSERT INTO filler (payload) SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 20000) g, generate_series(1, 256) s GROUP BY g");
    await c.query('CHECKPOINT');
    return size();
  });
}

/** Bytes read by pgBackRest backup processes (and their local workers) while `work` runs, sampled from /proc. */
async function measureBackupReads<T>(work: () => Promise<T>): Promise<{ value: T; bytes: number }> {
  const seen = new Map<number, number>();
  const sample = () => {
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        if (!cmd[0]?.endsWith('pgbackrest')) continue;
        // The backup command itself, or a local worker it started for the backup.
        if (!cmd.includes('backup') && !cmd.includes('--command=backup')) continue;
        const rchar = Number(/rchar: (\d+)/.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
        seen.set(Number(pid), Math.max(seen.get(Number(pid)) ?? 0, rchar));
      } catch {
        /* gone, or not ours to read */
      }
    }
  };
  const timer = setInterval(sample, 100);
  try {
    const value = await work();
    sample();
    return { value, bytes: [...seen.values()].reduce((a, b) => a + b, 0) };
  } finally {
    clearInterval(timer);
  }
}

/** The labels in each repository, to tell which sets a run added. */
async function labels(): Promise<Map<number, Map<string, number>>> {
  const out = new Map<number, Map<string, number>>();
  for (const repo of [1, 2]) {
    const info = await cli.info(repo);
    out.set(repo, new Map((info?.backup ?? []).filter((b) => b.database['repo-key'] === repo).map((b) => [b.label, b.info.size])));
  }
  return out;
}

/** Bytes pgBackRest read from the source for the sets added since `before`: a label new in both repositories is one read (a copy), not two. */
function sourceReadSince(before: Map<number, Map<string, number>>, after: Map<number, Map<string, number>>): { bytes: number; sets: string[] } {
  const added = new Map<string, number>();
  for (const repo of [1, 2]) for (const [label, size] of after.get(repo)!) if (!before.get(repo)!.has(label)) added.set(label, size);
  return { bytes: [...added.values()].reduce((a, b) => a + b, 0), sets: [...added.keys()] };
}

function configFor(mode: string): LifeboatConfig {
  process.env.LIFEBOAT_DR_COPY = mode;
  return loadLocatedConfig(process.env.LIFEBOAT_CONFIG).config;
}

interface Figures {
  what: string;
  ms: number;
  reported: number;
  processReads: number;
  lag?: number;
  note: string;
}

async function main(): Promise<void> {
  const tableBytes = await build(sizeMb);
  const dbBytes = await withPg('postgres', async (c) => Number((await c.query<{ b: string }>('SELECT sum(pg_database_size(oid))::text AS b FROM pg_database')).rows[0].b));
  say(`dr-copy bench: scratch table ${formatBytes(tableBytes)}, all databases ${formatBytes(dbBytes)}`);
  const rows: Figures[] = [];

  // By hand: one backup into each repository, timed the same way.
  const byHand: string[] = [];
  for (const repo of [1, 2]) {
    const before = await labels();
    const started = Date.now();
    const { bytes } = await measureBackupReads(() => cli.exec('backup', [`--repo=${repo}`, '--type=full', '--log-level-console=warn']));
    const ms = Date.now() - started;
    const read = sourceReadSince(before, await labels());
    byHand.push(...read.sets.map((label) => `${repo}:${label}`));
    rows.push({ what: `by hand: pgbackrest backup --type=full --repo=${repo}`, ms, reported: read.bytes, processReads: bytes, note: repo === 2 ? 'the second read the old mode makes' : 'one read of the source' });
  }

  const { connection } = await connectWorkerConnection(configFor('second-backup'));
  const { connection: clientConnection, settings: temporal } = await connectTemporal(configFor('second-backup'));
  try {
    for (const mode of ['second-backup', 'repository-copy']) {
      const config = configFor(mode);
      const client = new TemporalClient({ connection: clientConnection, namespace: temporal.namespace, dataConverter: lifeboatDataConverter(config) });
      const ports = createPorts(config, { log: () => undefined });
      const taskQueue = `bench-drcopy-${randomBytes(3).toString('hex')}`;
      try {
        const worker = await createLifeboatWorker({ config, connection, ports, taskQueue });
        const before = await labels();
        const started = Date.now();
        const { value: result, bytes } = await measureBackupReads(() =>
          worker.runUntil(
            client.workflow.execute('databaseBackup', { taskQueue, workflowId: `bench-drcopy-${mode}-${Date.now().toString(36)}`, args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'bench' }] }) as Promise<DatabaseBackupResult>,
          ),
        );
        const ms = Date.now() - started;
        const read = sourceReadSince(before, await labels());
        const copy = result.dr.handle.copy;
        rows.push({
          what: `lifeboat databaseBackup, drCopy: ${mode}`,
          ms,
          reported: read.bytes,
          processReads: bytes,
          lag: result.dr.lagSeconds,
          note: copy ? `copied ${copy.copiedObjects} objects, ${formatBytes(copy.copiedBytes)} from repo1's bucket; ${copy.walSegments} WAL segments in range` : `sets ${read.sets.join(' + ')}`,
        });
      } finally {
        await ports.close();
      }
    }
  } finally {
    await clientConnection.close();
    await connection.close();
  }

  say('');
  say(`${'work'.padEnd(52)} ${'time'.padStart(8)}  ${'source read (pgBackRest)'.padStart(24)}  ${'backup processes read'.padStart(22)}  ${'DR lag'.padStart(7)}  note`);
  for (const r of rows) {
    say(`${r.what.padEnd(52)} ${secs(r.ms).padStart(8)}  ${formatBytes(r.reported).padStart(24)}  ${formatBytes(r.processReads).padStart(22)}  ${(r.lag !== undefined ? `${r.lag} s` : '-').padStart(7)}  ${r.note}`);
  }

  for (const entry of byHand) {
    const [repo, label] = entry.split(':');
    await cli.exec('expire', [`--repo=${repo}`, `--set=${label}`, '--log-level-console=warn']).catch((err: unknown) => say(`(could not expire the by-hand set ${label} in repo${repo}: ${String(err)})`));
  }
  await withPg('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${DATABASE}`));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
