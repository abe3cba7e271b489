/**
 * `npm run bench:logical-backup`: lifeboat's logical backup workflow side by side with the same
 * dump taken by hand to a local file, in one run, on the local stack (`lifeboat stack up`).
 * Figures, never assertions (issue 13: the logical backup at ≥ 0.9× the throughput of
 * `pg_dump -Fc -Z0 | zstd -T0` to a local file, the worker's RSS under 256 MB).
 *
 * The stack's `app` database is grown with a scratch table (`lifeboat_bench_logical`, hex text
 * that compresses about 2:1) to the requested size, then, one after the other:
 *   1. by hand: `pg_dump -Fc -Z0 app | zstd -3 -T0 > file`;
 *   2. by hand: `pg_dump -Fc -Z0 app | gzip -6 > file`;
 *   3. lifeboat: the logicalBackup workflow of target `app` (dump → zstd → AES-256-GCM →
 *      multipart upload, verify, copy to the DR region, verify the copy, catalog), run by a
 *      `lifeboat worker` process (started here if none runs; the target's agent when it has
 *      one), whose VmRSS is sampled from /proc every 100 ms;
 *   4. the dump step alone: LogicalDumpEngine.backup in a child Node process of its own
 *      (bench/logical-child.ts), so its memory is the dump's, not a whole worker's (an agent's
 *      dump activity adds this much to the agent's idle footprint).
 * Reported: time, throughput (pg_dump's output bytes per second), compression ratio, the idle
 * and peak RSS of the process doing the dump, the time of the engine's row counts on their own, and the workflow's phases from its history (each activity's
 * scheduled → completed time). The scratch table, the bench's objects and catalog row go at the end.
 *
 * Environment:
 *   LIFEBOAT_BENCH_LOGICAL_MB   size of the app database to reach, in MiB (default 256)
 *   LIFEBOAT_BENCH_KEEP         1 keeps the scratch table (a second run then skips the seeding)
 *   LIFEBOAT_BENCH_ENGINE_ALONE 0 skips step 4
 *   LIFEBOAT_BENCH_SKIP_GZIP    1 skips step 2 (minutes per GiB)
 */
import '../src/quiet-sdk-notice';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Client as PgClient } from 'pg';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { createPorts } from '../src/activities/ports';
import { findDatabaseTarget } from '../src/config';
import { loadLocatedConfig } from '../src/config/locate';
import { connectClient } from '../src/client/temporal';
import { objectVersionPages } from '../src/engines/aws-pagination';
import { run } from '../src/platform/processes';
import { createStack } from '../src/stack/stack';
import { startWorker, stopWorker, workerPid } from '../src/stack/worker-process';
import type { LogicalBackupReport } from '../src/domain/logical-backup';
import { countTableRows } from '../src/engines/logical-dump';

const MIB = 1024 * 1024;
const TABLE = 'lifeboat_bench_logical';
const sizeMb = Number(process.env.LIFEBOAT_BENCH_LOGICAL_MB || 256);

const stack = createStack();
const { settings } = stack.ctx;
const say = (text: string) => process.stdout.write(`${text}\n`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mib = (b: number) => `${(b / MIB).toFixed(0)} MiB`;
const rate = (bytes: number, ms: number) => `${(bytes / MIB / (ms / 1000)).toFixed(1)} MiB/s`;

async function withApp<T>(fn: (c: PgClient) => Promise<T>): Promise<T> {
  const c = new PgClient({ host: settings.host, port: settings.postgres.primaryPort, user: settings.postgres.superuser, database: settings.postgres.appDatabase, statement_timeout: 0 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function seed(bytes: number): Promise<number> {
  return withApp(async (c) => {
    await c.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (id bigserial PRIMARY KEY, payload text NOT NULL)`);
    const payload = Array.from({ length: 8 }, () => 'md5(random()::text)').join(' || ');
    for (;;) {
      const size = Number((await c.query<{ b: string }>('SELECT pg_database_size(current_database()) AS b')).rows[0].b);
      if (size >= bytes) return size;
      const rows = Math.max(10_000, Math.min(500_000, Math.ceil((bytes - size) / 330)));
      await c.query(`INSERT INTO ${TABLE} (payload) SELECT ${payload} FROM generate_series(1, ${rows})`);
    }
  });
}

/** Peak VmRSS of a process, sampled every 100 ms until stopped. */
function sampleRss(pid: number): { stop: () => { peakKb: number; startKb: number } } {
  const read = () => {
    try {
      return Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      return 0;
    }
  };
  const startKb = read();
  let peakKb = startKb;
  const timer = setInterval(() => (peakKb = Math.max(peakKb, read())), 100);
  return {
    stop: () => {
      clearInterval(timer);
      return { peakKb: Math.max(peakKb, read()), startKb };
    },
  };
}

async function byHand(pgBin: string, compressor: string, file: string): Promise<{ ms: number; bytes: number }> {
  const dump = [path.join(pgBin, 'pg_dump'), '-h', settings.host, '-p', String(settings.postgres.primaryPort), '-U', settings.postgres.superuser, '-Fc', '-Z0', '-d', settings.postgres.appDatabase].join(' ');
  const started = Date.now();
  const r = await run('bash', ['-c', `set -o pipefail; ${dump} | ${compressor} > ${file}`], { timeoutMs: 6 * 3600_000 });
  const ms = Date.now() - started;
  if (r.code !== 0) throw new Error(`by hand (${compressor}) failed: ${r.stderr}`);
  const bytes = fs.statSync(file).size;
  fs.rmSync(file, { force: true });
  return { ms, bytes };
}

/** The engine's row counts (every table, one count(*) after another, in one snapshot) on their own: what they add to the dump's load on the database. */
async function countsAlone(): Promise<{ ms: number; tables: number }> {
  return withApp(async (c) => {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const started = Date.now();
    const counts = await countTableRows(c);
    const ms = Date.now() - started;
    await c.query('COMMIT');
    return { ms, tables: Object.keys(counts).length };
  });
}

/** bench/logical-child.ts: one engine backup in a process of its own; its figures and the sampled peak VmRSS. */
async function engineAlone(prefix: string): Promise<{ wallMs: number; baselineRssKb: number; vmHwmKb?: number; peakKb: number; storedBytes: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-lb-key-'));
  const keyFile = path.join(dir, 'key');
  fs.writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  try {
    const child = spawn(process.execPath, [path.join(__dirname, 'logical-child.js')], {
      env: { ...process.env, LIFEBOAT_BENCH_DUMP_PREFIX: prefix, LIFEBOAT_BENCH_DUMP_NAME: 'engine-alone', LIFEBOAT_BENCH_KEY_FILE: keyFile },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const rss = sampleRss(child.pid!);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const { peakKb } = rss.stop();
    if (code !== 0) throw new Error(`the engine's child process exited with ${code}`);
    return { ...(JSON.parse(out.trim().split('\n').pop()!) as { wallMs: number; baselineRssKb: number; vmHwmKb?: number; storedBytes: number }), peakKb };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { config } = loadLocatedConfig(undefined);
  const ports = createPorts(config, { log: () => undefined });
  const target = findDatabaseTarget(config, 'app');
  const lb = target.logicalBackup!;
  const agent = (target as { agent?: string }).agent;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-lb-'));
  const pgBin = process.env.LIFEBOAT_PG_BIN_DIR ?? path.dirname((await run('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin/pg_dump | sort -V | tail -1'])).stdout.trim());
  const workflowId = `bench-logical-backup-${Date.now()}`;
  let startedWorker = false;
  let report: LogicalBackupReport | undefined;
  try {
    say(`seeding the app database to ${sizeMb} MiB (scratch table ${TABLE}) on ${settings.host}:${settings.postgres.primaryPort}`);
    const dbBytes = await seed(sizeMb * MIB);
    const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
    say(`database ${mib(dbBytes)}; ${os.cpus().length} CPUs, load average ${load} at the start`);

    const zstd = await byHand(pgBin, 'zstd -3 -T0 -q', path.join(work, 'app.dump.zst'));
    // gzip -6 is the slowest by far (minutes per GiB); LIFEBOAT_BENCH_SKIP_GZIP=1 leaves it out.
    const gzip = process.env.LIFEBOAT_BENCH_SKIP_GZIP === '1' ? undefined : await byHand(pgBin, 'gzip -6', path.join(work, 'app.dump.gz'));

    const counts = await countsAlone();

    // The process doing the dump: the target's agent when it has one, else the central worker,
    // started as `lifeboat worker start` starts it (a detached `node lib/src/worker.js`).
    if (!workerPid(stack.ctx, agent)) {
      await startWorker(stack.ctx, {}, agent);
      startedWorker = true;
    }
    const pid = workerPid(stack.ctx, agent)!;
    const client = await connectClient(config);
    // Idle: after its start has settled (the connection's first polls, the bundle loaded).
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const rss = sampleRss(pid);
    const started = Date.now();
    const handle = await client.workflow.start('logicalBackup', { taskQueue: config.temporal.taskQueue, workflowId, args: [{ target: 'app' }] });
    report = (await handle.result()) as LogicalBackupReport;
    const lifeboatMs = Date.now() - started;
    const memory = rss.stop();

    // Phases: each activity from scheduled to completed, in the history's order.
    const history = await handle.fetchHistory();
    const scheduled = new Map<string, { name: string; at: number }>();
    const phases: Array<{ name: string; ms: number }> = [];
    const ms = (t: unknown) => {
      const ts = t as { seconds?: { toNumber(): number } | number; nanos?: number };
      return Number(ts.seconds ?? 0) * 1000 + (ts.nanos ?? 0) / 1e6;
    };
    for (const e of history.events ?? []) {
      const id = String(e.eventId);
      if (e.activityTaskScheduledEventAttributes) scheduled.set(id, { name: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', at: ms(e.eventTime) });
      const done = e.activityTaskCompletedEventAttributes;
      if (done) {
        const s = scheduled.get(String(done.scheduledEventId));
        if (s) phases.push({ name: s.name, ms: ms(e.eventTime) - s.at });
      }
    }
    const dumpPhase = phases.find((p) => p.name === 'dumpDatabase');
    const raw = report.primary!.dumpBytes;
    await client.connection.close();
    const alone = process.env.LIFEBOAT_BENCH_ENGINE_ALONE === '0' ? undefined : await engineAlone(`bench-lb-${process.pid}/`);

    say('');
    say(`pg_dump -Fc -Z0 output: ${mib(raw)} (lifeboat's record of the same database)`);
    say(`${'work'.padEnd(58)} ${'time'.padStart(8)} ${'throughput'.padStart(13)} ${'ratio'.padStart(6)}`);
    const row = (label: string, t: number, stored: number) => say(`${label.padEnd(58)} ${secs(t).padStart(8)} ${rate(raw, t).padStart(13)} ${(raw / stored).toFixed(2).padStart(6)}`);
    row('by hand: pg_dump -Fc -Z0 | zstd -3 -T0 > file', zstd.ms, zstd.bytes);
    if (gzip) row('by hand: pg_dump -Fc -Z0 | gzip -6 > file', gzip.ms, gzip.bytes);
    if (dumpPhase) row(`lifeboat: dump step (pg_dump | ${report.primary!.compression ?? 'gzip'} | encrypt | upload)`, dumpPhase.ms, report.primary!.sizeBytes);
    row('lifeboat: whole workflow (dump, verify, DR copy, verify)', lifeboatMs, report.primary!.sizeBytes);
    say('');
    say('phases (activity scheduled → completed):');
    for (const p of phases) say(`  ${p.name.padEnd(24)} ${secs(p.ms)}`);
    say('');
    const who = `${agent ? `agent ${agent}` : 'worker'} (pid ${pid}, ${startedWorker ? 'started by this bench as `lifeboat worker start` does' : 'already running: started before this bench'})`;
    say(`RSS of the ${who}: idle ${(memory.startKb / 1024).toFixed(0)} MiB, peak during the backup ${(memory.peakKb / 1024).toFixed(0)} MiB (goal < 256 MiB)`);
    say(`the row counts alone (${counts.tables} tables, count(*) each in one snapshot; the engine runs them beside pg_dump): ${secs(counts.ms)}`);
    if (alone) {
      say(`the dump step alone in its own process: ${secs(alone.wallMs)} (${rate(raw, alone.wallMs)}), RSS ${(alone.baselineRssKb / 1024).toFixed(0)} MiB at start, peak ${(Math.max(alone.peakKb, alone.vmHwmKb ?? 0) / 1024).toFixed(0)} MiB`);
    }
    if (dumpPhase) say(`lifeboat's dump step / by hand with zstd: ${(zstd.ms / dumpPhase.ms).toFixed(2)}x the throughput (goal ≥ 0.90x)`);
    say(`lifeboat's whole workflow / by hand with zstd: ${(zstd.ms / lifeboatMs).toFixed(2)}x${gzip ? `; / by hand with gzip: ${(gzip.ms / lifeboatMs).toFixed(2)}x` : ''}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    if (startedWorker) await stopWorker(stack.ctx, agent).catch(() => undefined);
    if (process.env.LIFEBOAT_BENCH_KEEP !== '1') await withApp((c) => c.query(`DROP TABLE IF EXISTS ${TABLE}`)).catch(() => undefined);
    // The bench's dump in both regions and its catalog row: nothing of it stays behind.
    const leftovers = [
      { where: lb, prefix: `${lb.prefix ?? ''}app/${workflowId}` },
      { where: lb.dr, prefix: `${lb.prefix ?? ''}app/${workflowId}` },
      { where: { store: 'primary', bucket: settings.minio.primary.backupBucket }, prefix: `bench-lb-${process.pid}/` },
    ];
    for (const { where, prefix } of leftovers) {
      const s3 = ports.objectStore(where.store);
      for await (const page of objectVersionPages(s3, { Bucket: where.bucket, Prefix: prefix })) {
        for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) await s3.send(new DeleteObjectCommand({ Bucket: where.bucket, Key: v.Key, VersionId: v.VersionId })).catch(() => undefined);
      }
    }
    await ports.catalog.query('DELETE FROM verifications WHERE backup_id IN (SELECT id FROM backups WHERE workflow_id = $1)', [workflowId]).catch(() => undefined);
    await ports.catalog.query('DELETE FROM backups WHERE workflow_id = $1', [workflowId]).catch(() => undefined);
    await ports.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
