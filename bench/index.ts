/**
 * `npm run bench`: figures, never assertions. Needs the local stack running (`lifeboat stack up`).
 *
 * (a) Physical backup wall time at each size: `pgbackrest backup --type=full --repo=1` run by hand
 *     against the engine's startBackup + backupProgress loop (src/engines/pgbackrest/backups.ts), same
 *     settings, same run, same data.
 * (b) Peak RSS of a process taking a logical backup (src/engines/logical-dump.ts) of the largest
 *     size, run alone in a child process (bench/logical-child.ts).
 *
 * The data is a scratch table in the primary's `app` database grown until the database reaches
 * each size; it is dropped at the end. The bench's pgBackRest backups are expired at the end too,
 * after one small full backup of the database without the scratch table (so the newest full in
 * the repository never goes away, which would block differential backups).
 *
 * Environment:
 *   LIFEBOAT_BENCH_SIZES_GB       database sizes to measure, ascending (default "0.5,1")
 *   LIFEBOAT_BENCH_POLL_MS        backupProgress poll interval of the engine loop (default 1000)
 *   LIFEBOAT_BENCH_SKIP_LOGICAL   1: skip (b)
 *   LIFEBOAT_BENCH_KEEP_BACKUPS   1: keep the bench's pgBackRest backups and logical dump
 */
import '../src/quiet-sdk-notice';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { Client } from 'pg';
import type { BackupHandle } from '../src/domain/ports';
import { localPgBackRestEngine } from '../src/stack/local-engines';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { delay, run } from '../src/platform/processes';
import { createStack, s3ClientFor, stackStatus } from '../src/stack/stack';

const GB = 1024 ** 3;
const MB = 1024 ** 2;
const TABLE = 'lifeboat_bench_scratch';
const BATCH_ROWS = 200_000; // about 58 MB of rows per INSERT

const sizes = (process.env.LIFEBOAT_BENCH_SIZES_GB || '0.5,1')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => Number.isFinite(n) && n > 0)
  .sort((a, b) => a - b);
const pollMs = Number(process.env.LIFEBOAT_BENCH_POLL_MS || 1000);
const runId = `bench-${randomBytes(3).toString('hex')}`;

const stack = createStack();
const { settings } = stack.ctx;
const cli = localPgBackRest(stack.ctx);
const engine = localPgBackRestEngine(stack);

const say = (text: string) => process.stdout.write(`${text}\n`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const gib = (bytes: number) => `${(bytes / GB).toFixed(2)} GiB`;
const mib = (bytes: number) => `${(bytes / MB).toFixed(0)} MiB`;

async function withApp<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ host: settings.host, port: settings.postgres.primaryPort, user: settings.postgres.superuser, database: settings.postgres.appDatabase });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function databaseSize(): Promise<number> {
  return withApp(async (c) => Number((await c.query<{ size: string }>('SELECT pg_database_size(current_database()) AS size')).rows[0].size));
}

/** Hex text (it compresses about 2:1, like real data rather than a run of zeros). */
async function growTo(bytes: number): Promise<number> {
  return withApp(async (c) => {
    await c.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (id bigserial PRIMARY KEY, payload text NOT NULL)`);
    const payload = Array.from({ length: 8 }, () => 'md5(random()::text)').join(' || ');
    for (;;) {
      const size = Number((await c.query<{ size: string }>('SELECT pg_database_size(current_database()) AS size')).rows[0].size);
      if (size >= bytes) return size;
      const rows = Math.max(10_000, Math.min(BATCH_ROWS, Math.ceil((bytes - size) / 300)));
      await c.query(`INSERT INTO ${TABLE} (payload) SELECT ${payload} FROM generate_series(1, ${rows})`);
    }
  });
}

async function dropScratch(): Promise<void> {
  await withApp((c) => c.query(`DROP TABLE IF EXISTS ${TABLE}`));
}

interface RepoBackup {
  label: string;
  type: string;
  size: number;
  stored: number;
}

async function repoBackups(): Promise<RepoBackup[]> {
  const info = await cli.info(1);
  return (info?.backup ?? []).filter((b) => b.database['repo-key'] === 1).map((b) => ({ label: b.label, type: b.type, size: b.info.size, stored: b.info.repository.delta }));
}

/** Another pgBackRest backup of the stanza (a test, a scheduled run) holds its lock: wait for it, untimed. */
const isBusy = (err: unknown) => /\[050\]|unable to acquire lock|PGBACKREST_BUSY|is busy|another pgBackRest backup/i.test(`${(err as Error).message} ${(err as { code?: string }).code ?? ''}`);

async function whenFree<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  for (let waited = 0; ; waited++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isBusy(err) || waited > 720) throw err;
      if (waited === 0) say(`  (${what}: another pgBackRest backup holds the stanza lock; waiting for it)`);
      await delay(5000);
    }
  }
}

async function byHand(): Promise<{ ms: number; backup: RepoBackup }> {
  const before = new Set((await repoBackups()).map((b) => b.label));
  const ms = await whenFree('by hand', async () => {
    const started = Date.now();
    await cli.exec('backup', ['--type=full', '--repo=1'], { timeoutMs: 6 * 60 * 60 * 1000 });
    return Date.now() - started;
  });
  const made = (await repoBackups()).filter((b) => !before.has(b.label));
  if (made.length !== 1) throw new Error(`expected one new backup in repo1 after the manual backup, found ${made.length}`);
  return { ms, backup: made[0] };
}

async function throughEngine(name: string): Promise<{ ms: number; polls: number; backup: RepoBackup }> {
  let started = 0;
  let handle: BackupHandle = await whenFree('engine', () => {
    started = Date.now();
    return engine.startBackup({ backupName: name, kind: 'full' });
  });
  let polls = 0;
  for (;;) {
    const progress = await engine.backupProgress(handle);
    polls++;
    if (progress.state === 'complete') {
      const ms = Date.now() - started;
      handle = { ...handle, backupId: progress.backupId ?? handle.backupId };
      const backup = (await repoBackups()).find((b) => b.label === handle.backupId);
      if (!backup) throw new Error(`the engine reported ${handle.backupId} complete, but repo1 does not list it`);
      return { ms, polls, backup };
    }
    if (progress.state === 'failed') throw new Error(progress.detail);
    await delay(pollMs);
  }
}

interface LogicalFigures {
  wallMs: number;
  dumpBytes: number;
  storedBytes: number;
  key: string;
  baselineRssKb: number;
  maxRssKb: number;
  vmHwmKb?: number;
  /** Highest VmRSS seen from outside, sampled every 50 ms. */
  sampledPeakKb: number;
}

async function logicalBackup(prefix: string): Promise<LogicalFigures> {
  const keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-')), 'key');
  fs.writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  try {
    const child = spawn(process.execPath, [path.join(__dirname, 'logical-child.js')], {
      env: { ...process.env, LIFEBOAT_BENCH_DUMP_PREFIX: prefix, LIFEBOAT_BENCH_DUMP_NAME: runId, LIFEBOAT_BENCH_KEY_FILE: keyFile },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let sampledPeakKb = 0;
    const sampler = setInterval(() => {
      try {
        const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) sampledPeakKb = Math.max(sampledPeakKb, Number(m[1]));
      } catch {
        // the process has just exited
      }
    }, 50);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearInterval(sampler);
    if (code !== 0) throw new Error(`the logical backup child exited with ${code}`);
    return { ...(JSON.parse(out.trim().split('\n').pop()!) as Omit<LogicalFigures, 'sampledPeakKb'>), sampledPeakKb };
  } finally {
    fs.rmSync(path.dirname(keyFile), { recursive: true, force: true });
  }
}

async function removeDumps(prefix: string): Promise<number> {
  const s3 = s3ClientFor(settings, settings.minio.primary);
  const bucket = settings.minio.primary.backupBucket;
  let removed = 0;
  try {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix }));
    for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId }));
      removed++;
    }
  } finally {
    s3.destroy();
  }
  return removed;
}

interface Row {
  targetGb: number;
  dbBytes: number;
  handMs: number;
  engineMs: number;
  enginePolls: number;
  backupBytes: number;
  storedBytes: number;
}

async function main(): Promise<void> {
  const status = await stackStatus(stack);
  const needed = status.filter((s) => /postgres|minio/i.test(s.name));
  const down = needed.filter((s) => !s.healthy);
  if (down.length) {
    say(`the local stack is not healthy (${down.map((s) => `${s.name}: ${s.detail}`).join('; ')}): start it with \`lifeboat stack up\``);
    process.exitCode = 1;
    return;
  }
  const pgbackrestVersion = (await run(stack.ctx.tools.pgbackrest, ['version'])).stdout.trim();
  say(`lifeboat bench ${runId}: sizes ${sizes.join(', ')} GiB, ${os.cpus().length} CPUs, ${pgbackrestVersion}, engine poll every ${pollMs} ms`);
  say(`the app database is ${gib(await databaseSize())} before the scratch table`);

  const rows: Row[] = [];
  const benchLabels: string[] = [];
  let logical: LogicalFigures | undefined;
  const dumpPrefix = `bench/${runId}/`;
  try {
    await dropScratch();
    for (const targetGb of sizes) {
      const growStart = Date.now();
      const dbBytes = await growTo(targetGb * GB);
      say(`\n[${targetGb} GiB] database grown to ${gib(dbBytes)} in ${secs(Date.now() - growStart)}; checkpoint`);
      await withApp((c) => c.query('CHECKPOINT'));

      const hand = await byHand();
      benchLabels.push(hand.backup.label);
      say(`[${targetGb} GiB] by hand: pgbackrest backup --type=full --repo=1 took ${secs(hand.ms)} (${hand.backup.label}, ${gib(hand.backup.size)} of data, ${mib(hand.backup.stored)} stored)`);

      const viaEngine = await throughEngine(`${runId}-${targetGb}gb`);
      benchLabels.push(viaEngine.backup.label);
      say(`[${targetGb} GiB] engine: startBackup + ${viaEngine.polls} backupProgress polls took ${secs(viaEngine.ms)} (${viaEngine.backup.label})`);
      rows.push({ targetGb, dbBytes, handMs: hand.ms, engineMs: viaEngine.ms, enginePolls: viaEngine.polls, backupBytes: hand.backup.size, storedBytes: hand.backup.stored });
    }

    if (process.env.LIFEBOAT_BENCH_SKIP_LOGICAL !== '1' && sizes.length) {
      say(`\n[${sizes[sizes.length - 1]} GiB] logical backup (pg_dump | gzip | AES-256-GCM | S3 multipart) in a child process`);
      logical = await logicalBackup(dumpPrefix);
    }
  } finally {
    await dropScratch();
    say('\nscratch table dropped');
    if (process.env.LIFEBOAT_BENCH_KEEP_BACKUPS !== '1') {
      try {
        if (benchLabels.length) {
          // A new newest full first: expiring the newest full would block differential backups.
          await whenFree('cleanup', () => cli.exec('backup', ['--type=full', '--repo=1', '--log-level-console=warn'], { timeoutMs: 60 * 60 * 1000 }));
          for (const label of benchLabels) await whenFree('cleanup', () => cli.exec('expire', ['--repo=1', `--set=${label}`, '--log-level-console=warn']));
          say(`expired the bench's pgBackRest backups ${benchLabels.join(', ')} (after one small full backup without the scratch table)`);
        }
        const removed = await removeDumps(dumpPrefix);
        if (removed) say(`removed the logical dump (${removed} object versions under ${dumpPrefix})`);
      } catch (err) {
        say(`cleanup incomplete: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  say('\nphysical full backup, repo1 (primary MinIO over TLS), zstd, process-max=2');
  const header = ['size', 'database', 'by hand', 'engine loop', 'engine - hand', 'backup data', 'stored'];
  const table = rows.map((r) => [
    `${r.targetGb} GiB`,
    gib(r.dbBytes),
    secs(r.handMs),
    secs(r.engineMs),
    `${r.engineMs >= r.handMs ? '+' : ''}${secs(r.engineMs - r.handMs)} (${(((r.engineMs - r.handMs) / r.handMs) * 100).toFixed(1)}%)`,
    gib(r.backupBytes),
    mib(r.storedBytes),
  ]);
  printTable(header, table);
  if (logical) {
    say(`\nlogical backup of the ${sizes[sizes.length - 1]} GiB database, one Node process (pg_dump's own memory not included)`);
    printTable(
      ['wall', 'pg_dump output', 'stored', 'RSS at start', 'peak RSS (VmHWM)', 'maxRSS', 'peak VmRSS sampled'],
      [[secs(logical.wallMs), gib(logical.dumpBytes), mib(logical.storedBytes), `${(logical.baselineRssKb / 1024).toFixed(0)} MiB`, `${((logical.vmHwmKb ?? 0) / 1024).toFixed(0)} MiB`, `${(logical.maxRssKb / 1024).toFixed(0)} MiB`, `${(logical.sampledPeakKb / 1024).toFixed(0)} MiB`]],
    );
  }
  say(`\n${JSON.stringify({ runId, cpus: os.cpus().length, pollMs, physical: rows, logical })}`);
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  say(fmt(header));
  say(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) say(fmt(r));
}

// Interrupted: the scratch table must not stay behind in the app database.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`\n${signal}: dropping the scratch table (the bench's backups, if any, stay in repo1)`);
    dropScratch().then(
      () => process.exit(130),
      () => process.exit(130),
    );
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
