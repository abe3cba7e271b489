/**
 * `npm run bench:physical`: lifeboat's physical backup step and restore step side by side with the
 * same pgBackRest command by hand, same settings, same data, same run. Figures, never assertions.
 * Needs the local stack (`lifeboat stack up`), and a quiet one for figures worth quoting.
 *
 * Backup: `pgbackrest backup --type=full --repo=1` by hand, then lifeboat's two activities of the
 * step (startDatabaseBackup, waitForDatabaseBackup with the workflow's default poll of 5 s), run
 * in a MockActivityEnvironment: the activity code exactly as a worker runs it, without Temporal's
 * own scheduling (measured apart by `npm run bench:scale`). Twice: as it runs now (woken by the
 * backup's own log), and with the engine's wake-up hidden, i.e. polling every 5 s as before.
 * Phases: the start activity (its `info`, the detached start, the watch until pgBackRest logs the
 * backup start), pgBackRest's own time (its log's "command end ... (N ms)"), and the rest: how
 * long after pgBackRest ended lifeboat said complete.
 *
 * Restore: `pgbackrest restore --type=default` into a new directory plus `pg_ctl -w start` by hand,
 * until the cluster leaves recovery (all archived WAL replayed, promoted), against lifeboat's
 * startRestore + waitUntilAvailable (the same options: the engine's own restore record gives
 * them), both from repo1.
 *
 *   LIFEBOAT_BENCH_PHYSICAL_MB       size of the scratch table (default 64; 1024 by hand for 1 GB)
 *   LIFEBOAT_BENCH_PHYSICAL_POLL_MS  the activities' poll interval (default 5000, the workflows')
 */
import '../src/quiet-sdk-notice';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { backupActivities } from '../src/activities/backup';
import { createPorts, Ports } from '../src/activities/ports';
import { restoreActivities } from '../src/activities/restore';
import { loadLocatedConfig } from '../src/config/locate';
import type { BackupHandle, DatabaseEngine, InstanceDescription } from '../src/domain/ports';
import { delay, run } from '../src/platform/processes';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { createStack } from '../src/stack/stack';

const MB = 1024 ** 2;
const DATABASE = 'lifeboat_bench_physical';
const sizeMb = Number(process.env.LIFEBOAT_BENCH_PHYSICAL_MB || 64);
const pollMs = Number(process.env.LIFEBOAT_BENCH_PHYSICAL_POLL_MS || 5000);
const runId = randomBytes(3).toString('hex');
const stack = createStack();
const { settings } = stack.ctx;
const cli = localPgBackRest(stack.ctx);
const say = (text: string) => process.stdout.write(`${text}\n`);
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function withPg<T>(database: string, fn: (c: Client) => Promise<T>, port = settings.postgres.primaryPort): Promise<T> {
  const c = new Client({ host: settings.host, port, user: settings.postgres.superuser, database, statement_timeout: 0, connectionTimeoutMillis: 2000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Rows of random hex (about 2:1 compressible) until the table holds `mb` MiB. */
async function build(mb: number): Promise<number> {
  await withPg('postgres', async (c) => {
    if (!(await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE])).rowCount) await c.query(`CREATE DATABASE ${DATABASE}`);
  });
  return withPg(DATABASE, async (c) => {
    await c.query('CREATE TABLE IF NOT EXISTS filler (id bigserial PRIMARY KEY, payload text NOT NULL)');
    await c.query('ALTER TABLE filler ALTER COLUMN payload SET STORAGE EXTERNAL');
    const size = async () => Number((await c.query<{ b: string }>("SELECT pg_total_relation_size('filler') AS b")).rows[0].b);
    while ((await size()) < mb * MB) await c.query("INSERT INTO filler (payload) SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 5000) g, generate_series(1, 256) s GROUP BY g");
    await c.query('CHECKPOINT');
    return size();
  });
}

/** Counts the pgBackRest commands an engine runs, by command, while `work` runs. */
function countCommands(engine: DatabaseEngine): { counts: Map<string, number>; restore: () => void } {
  const counts = new Map<string, number>();
  const holder = engine as unknown as { backups: { setup: { cli: { exec: (cmd: string, ...rest: unknown[]) => Promise<unknown> } } } };
  const target = holder.backups.setup.cli;
  const original = target.exec;
  target.exec = function (this: unknown, cmd: string, ...rest: unknown[]) {
    counts.set(cmd, (counts.get(cmd) ?? 0) + 1);
    return original.call(this, cmd, ...rest);
  };
  return { counts, restore: () => (target.exec = original) };
}

interface StepFigures {
  what: string;
  ms: number;
  phases: string;
}

async function lifeboatBackup(ports: Ports, engine: DatabaseEngine, label: string, polled: boolean): Promise<StepFigures & { handle: BackupHandle }> {
  // As before: the engine cannot wake the waiter, so it sleeps the poll interval between looks.
  const seen = polled ? (Object.assign(Object.create(engine) as DatabaseEngine, { awaitBackupChange: undefined }) as DatabaseEngine) : engine;
  const activities = backupActivities({ ...ports, database: () => seen } as Ports);
  const env = new MockActivityEnvironment();
  const name = `bench-physical-${runId}-${label}`;
  const { counts, restore } = countCommands(engine);
  try {
    const t0 = Date.now();
    const handle = (await env.run(activities.startDatabaseBackup as (...a: unknown[]) => Promise<BackupHandle>, 'app', name, 'full')) as BackupHandle;
    const t1 = Date.now();
    const done = (await env.run(activities.waitForDatabaseBackup as (...a: unknown[]) => Promise<{ handle: BackupHandle }>, 'app', handle, pollMs)) as { handle: BackupHandle };
    const t2 = Date.now();
    const set = (await cli.info(1))?.backup.find((b) => b.label === done.handle.backupId);
    const pgbackrestMs = set ? (set.timestamp.stop - set.timestamp.start) * 1000 : NaN;
    const calls = [...counts].map(([c, n]) => `${c} x${n}`).join(', ');
    return {
      what: `lifeboat backup step (${polled ? 'polling every ' + secs(pollMs) + ', as before' : 'woken by the log'})`,
      ms: t2 - t0,
      phases: `start activity ${secs(t1 - t0)}, wait activity ${secs(t2 - t1)}; pgBackRest's set ${secs(pgbackrestMs)} (label times, 1 s resolution); pgBackRest commands: ${calls}`,
      handle: done.handle,
    };
  } finally {
    restore();
  }
}

async function backupByHand(): Promise<StepFigures & { label: string }> {
  const before = new Set(((await cli.info(1))?.backup ?? []).map((b) => b.label));
  const t0 = Date.now();
  await cli.exec('backup', ['--repo=1', '--type=full', '--log-level-console=info']);
  const ms = Date.now() - t0;
  const made = ((await cli.info(1))?.backup ?? []).find((b) => !before.has(b.label) && b.database['repo-key'] === 1);
  return { what: 'by hand: pgbackrest backup --type=full --repo=1', ms, phases: `one command`, label: made?.label ?? '?' };
}

async function restoreByHand(recovery: string[], port: number, restoresDir: string): Promise<StepFigures> {
  const osUser = settings.postgres.osUser;
  const dir = path.join(restoresDir, `bench-by-hand-${runId}`);
  const sockets = `${dir}-sockets`;
  await run('mkdir', ['-p', '-m', '700', dir, sockets], { asUser: osUser });
  const pgCtl = stack.ctx.tools.pgBin('pg_ctl');
  try {
    const t0 = Date.now();
    const [binary, args] = cli.argv('restore', ['--repo=1', `--pg1-path=${dir}`, `--tablespace-map-all=${dir}-ts`, '--archive-mode=off', ...recovery, '--log-level-console=warn']);
    await run(binary, args, { asUser: osUser, timeoutMs: 6 * 60 * 60 * 1000 });
    const t1 = Date.now();
    await run(pgCtl, ['-D', dir, '-l', `${dir}.log`, '-o', `-p ${port} -k ${sockets} -c listen_addresses=${settings.host} -c archive_mode=off -c hot_standby=on`, '-w', '-t', '600', 'start'], { asUser: osUser });
    const t2 = Date.now();
    // Until WAL replay ended and the cluster was promoted (a reference loop, 50 ms: the figure's resolution).
    for (;;) {
      const inRecovery = await withPg('postgres', async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r, port).catch(() => true);
      if (!inRecovery) break;
      await delay(50);
    }
    const t3 = Date.now();
    return { what: `by hand: pgbackrest restore ${recovery.join(' ')} + pg_ctl -w start`, ms: t3 - t0, phases: `restore ${secs(t1 - t0)}, start ${secs(t2 - t1)}, replay to promotion ${secs(t3 - t2)}` };
  } finally {
    await run(pgCtl, ['-D', dir, '-m', 'immediate', 'stop'], { asUser: osUser }).catch(() => undefined);
    await run('rm', ['-rf', dir, `${dir}-ts`, sockets, `${dir}.log`], { asUser: osUser }).catch(() => undefined);
  }
}

async function lifeboatRestore(ports: Ports, engine: DatabaseEngine, restoresDir: string): Promise<StepFigures & { recovery: string[]; port: number }> {
  const destination = `bench-physical-${runId}`;
  const owner = { workflowId: `bench-physical-${runId}`, runId, restorePoint: 'latest', createdAt: new Date().toISOString() };
  const activities = restoreActivities(ports);
  const env = new MockActivityEnvironment();
  try {
    const t0 = Date.now();
    await engine.startRestore({ destinationId: destination, point: { kind: 'latest' }, fromRegion: 'primary', owner });
    const t1 = Date.now();
    const instance = (await env.run(activities.waitUntilAvailable as (...a: unknown[]) => Promise<InstanceDescription>, 'app', destination, pollMs)) as InstanceDescription;
    const t2 = Date.now();
    const record = JSON.parse(fs.readFileSync(path.join(restoresDir, `${destination}.json`), 'utf8')) as { recovery: string[] };
    return { what: 'lifeboat restore step (startRestore + waitUntilAvailable)', ms: t2 - t0, phases: `start ${secs(t1 - t0)}, wait until available ${secs(t2 - t1)}`, recovery: record.recovery, port: instance.endpoint!.port };
  } finally {
    await engine.deleteInstance(destination, owner).catch((err: unknown) => say(`(could not remove ${destination}: ${String(err)})`));
  }
}

async function main(): Promise<void> {
  const config = loadLocatedConfig(process.env.LIFEBOAT_CONFIG).config;
  const ports = createPorts(config, { log: () => undefined });
  const engine = ports.database('app');
  const made: string[] = [];
  try {
    const bytes = await build(sizeMb);
    const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    say(`physical bench: scratch table ${(bytes / MB).toFixed(0)} MiB, poll ${secs(pollMs)}, load average ${load}`);
    const rows: StepFigures[] = [];
    const hand = await backupByHand();
    made.push(hand.label);
    rows.push(hand);
    say(`  ${hand.what}: ${secs(hand.ms)}`);
    const now = await lifeboatBackup(ports, engine, 'event', false);
    made.push(now.handle.backupId);
    rows.push(now);
    say(`  ${now.what}: ${secs(now.ms)} (${now.phases})`);
    const before = await lifeboatBackup(ports, engine, 'poll', true);
    made.push(before.handle.backupId);
    rows.push(before);
    say(`  ${before.what}: ${secs(before.ms)} (${before.phases})`);
    // The restores: lifeboat first (its record names the options), then the same by hand.
    const target = config.targets.databases.find((d) => d.name === 'app');
    if (target?.engine !== 'pgbackrest') throw new Error('the stack config has no pgBackRest target app');
    const restore = await lifeboatRestore(ports, engine, target.restoresDir);
    rows.push(restore);
    say(`  ${restore.what}: ${secs(restore.ms)} (${restore.phases})`);
    rows.push(await restoreByHand(restore.recovery, restore.port, target.restoresDir));

    say('');
    for (const r of rows) say(`${r.what.padEnd(72)} ${secs(r.ms).padStart(9)}  ${r.phases}`);
    say('');
    say(`backup: lifeboat / by hand = ${(now.ms / hand.ms).toFixed(2)}x (before: ${(before.ms / hand.ms).toFixed(2)}x); restore: lifeboat / by hand = ${(rows[3].ms / rows[4].ms).toFixed(2)}x`);
  } finally {
    // The newest full stays (expiring it would make pgBackRest refuse diffs until the next full).
    for (const label of made.slice(0, -1)) await cli.exec('expire', ['--repo=1', `--set=${label}`, '--log-level-console=warn']).catch(() => undefined);
    await withPg('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${DATABASE}`)).catch(() => undefined);
    await ports.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
