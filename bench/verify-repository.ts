/**
 * `npm run bench:verify-repo`: how long verifying ONE pgBackRest backup takes as the repository
 * grows, pgBackRest's own `verify` (lifeboat's former content check: 2.45 ignores --set and
 * re-reads every set and all the WAL) against lifeboat's per-set check (the set's manifest, its
 * files and the WAL it needs). Figures, never assertions. Needs the local stack (`lifeboat stack up`).
 *
 * Full backups of the stack's primary cluster are taken into repo1 until it holds each requested
 * number of sets; at each count the newest set is verified both ways, one after the other.
 *
 * Environment:
 *   LIFEBOAT_BENCH_REPO_SETS   set counts to measure at (default 1,10,30; a quick run: 1,3)
 *   LIFEBOAT_BENCH_RUNS        timed runs of each method per count (default 1; the best is kept)
 *   LIFEBOAT_BENCH_REPO_GROW_MB  first grow the app database by a scratch table of this many MiB
 *                              (default 0; dropped at the end), so each set holds more than the sample
 *   LIFEBOAT_BENCH_KEEP_BACKUPS  1: keep the bench's backups (default: all but the newest expired)
 */
import '../src/quiet-sdk-notice';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { BackupHandle } from '../src/domain/ports';
import { BACKUP_ANNOTATION } from '../src/engines/pgbackrest/backups';
import { checkBackupSet } from '../src/engines/pgbackrest/set-check';
import { delay, run } from '../src/platform/processes';
import { localPgBackRestEngine } from '../src/stack/local-engines';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { createStack, stackStatus } from '../src/stack/stack';

const counts = (process.env.LIFEBOAT_BENCH_REPO_SETS || '1,10,30')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => Number.isInteger(n) && n > 0)
  .sort((a, b) => a - b);
const runs = Math.max(1, Number(process.env.LIFEBOAT_BENCH_RUNS || 1));
const growMb = Math.max(0, Number(process.env.LIFEBOAT_BENCH_REPO_GROW_MB || 0));
const SCRATCH = 'lifeboat_bench_verify_repo';
const runId = `bench-verify-repo-${randomBytes(3).toString('hex')}`;

const stack = createStack();
const { settings } = stack.ctx;
const cli = localPgBackRest(stack.ctx);
const engine = localPgBackRestEngine(stack);
const REPO = 1;

const say = (text: string) => process.stdout.write(`${text}\n`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MiB`;

const isBusy = (err: unknown) => /\[050\]|unable to acquire lock/i.test((err as Error).message);

/** Another pgBackRest backup of the stanza (a test, a scheduled run) holds its lock: wait for it, untimed. */
async function whenFree<T>(attempt: () => Promise<T>): Promise<T> {
  for (let waited = 0; ; waited++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isBusy(err) || waited > 720) throw err;
      await delay(5000);
    }
  }
}

async function withApp<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ host: settings.host, port: settings.postgres.primaryPort, user: settings.postgres.superuser, database: settings.postgres.appDatabase });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Hex text (it compresses about 2:1, like real data rather than a run of zeros). */
async function grow(mb: number): Promise<void> {
  await withApp(async (c) => {
    await c.query(`CREATE TABLE IF NOT EXISTS ${SCRATCH} (id bigserial PRIMARY KEY, payload text NOT NULL)`);
    const payload = Array.from({ length: 8 }, () => 'md5(random()::text)').join(' || ');
    while (Number((await c.query<{ b: string }>(`SELECT pg_total_relation_size('${SCRATCH}') AS b`)).rows[0].b) < mb * 1024 ** 2) {
      await c.query(`INSERT INTO ${SCRATCH} (payload) SELECT ${payload} FROM generate_series(1, 100000)`);
    }
  });
}

async function repoSets() {
  const info = await cli.info(REPO);
  const sets = (info?.backup ?? []).filter((b) => b.database['repo-key'] === REPO);
  const walSegments = (info?.archive ?? []).filter((a) => a.database['repo-key'] === REPO && a.min && a.max).reduce((n, a) => n + segmentSpan(a.min!, a.max!), 0);
  return { sets, walSegments, info };
}

/** Segments from min to max of one timeline (16 MiB segments), an estimate of the archive's length. */
function segmentSpan(min: string, max: string): number {
  const index = (s: string) => parseInt(s.slice(8, 16), 16) * 256 + parseInt(s.slice(16), 16);
  return index(max) - index(min) + 1;
}

async function best(once: () => Promise<void>): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < runs; i++) {
    const started = Date.now();
    await once();
    fastest = Math.min(fastest, Date.now() - started);
  }
  return fastest;
}

interface Row {
  sets: number;
  stored: number;
  walSegments: number;
  label: string;
  oldMs: number;
  oldOk: string;
  newMs: number;
  newFiles: number;
  engineMs: number;
}

async function main(): Promise<void> {
  const down = (await stackStatus(stack)).filter((s) => /postgres|minio/i.test(s.name) && !s.healthy);
  if (down.length) {
    say(`the local stack is not healthy (${down.map((s) => `${s.name}: ${s.detail}`).join('; ')}): start it with \`lifeboat stack up\``);
    process.exitCode = 1;
    return;
  }
  const version = (await run(stack.ctx.tools.pgbackrest, ['version'])).stdout.trim();
  say(`${runId}: verify one backup as repo${REPO} grows to ${counts.join(', ')} sets; ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, ${version}`);
  const rows: Row[] = [];
  const mine: string[] = [];
  try {
    if (growMb) {
      await grow(growMb);
      say(`  the app database grown by a ${growMb} MiB scratch table (${SCRATCH})`);
    }
    for (const count of counts) {
      for (let { sets } = await repoSets(); sets.length < count; { sets } = await repoSets()) {
        const name = `${runId}-${sets.length + 1}`;
        const started = Date.now();
        await whenFree(() => cli.exec('backup', [`--repo=${REPO}`, '--type=full', `--annotation=${BACKUP_ANNOTATION}=${name}`, '--log-level-console=warn'], { timeoutMs: 60 * 60 * 1000 }));
        const label = (await repoSets()).sets.find((b) => (b as { annotation?: Record<string, string> }).annotation?.[BACKUP_ANNOTATION] === name)?.label;
        if (label) mine.push(label);
        process.stdout.write(`  full backup ${sets.length + 1} (${label}) in ${secs(Date.now() - started)}\n`);
      }
      const { sets, walSegments, info } = await repoSets();
      const newest = [...sets].sort((a, b) => a.timestamp.stop - b.timestamp.stop).at(-1)!;
      const archiveId = info?.archive.find((a) => a.database.id === newest.database.id && a.database['repo-key'] === REPO)?.id;
      const stored = sets.reduce((n, b) => n + b.info.repository.delta, 0);

      let oldOk = '';
      const oldMs = await best(async () => {
        const r = await cli.exec('verify', [`--repo=${REPO}`, `--set=${newest.label}`, '--output=text', '--verbose', '--log-level-console=warn'], { check: false, timeoutMs: 60 * 60 * 1000 });
        oldOk = r.code === 0 ? 'ok' : `exit ${r.code}`;
      });
      let newFiles = 0;
      const newMs = await best(async () => {
        const r = await checkBackupSet({ cli, osUser: settings.postgres.osUser, repo: REPO, timeoutMs: 60 * 60 * 1000 }, newest.label, archiveId);
        if ('unreadable' in r) throw new Error(`lifeboat cannot read ${newest.label} itself: ${r.unreadable}`);
        if (r.problems.length) throw new Error(`${newest.label} did not verify: ${JSON.stringify(r.problems.slice(0, 3))}`);
        newFiles = r.files;
      });
      const handle: BackupHandle = { engine: 'pgbackrest', backupId: newest.label, location: 'primary', locator: `repo${REPO}` };
      const engineMs = await best(async () => {
        const v = await engine.verifyBackup(handle);
        if (!v.ok) throw new Error(`engine.verifyBackup(${newest.label}) failed: ${JSON.stringify(v.checks)}`);
      });
      rows.push({ sets: sets.length, stored, walSegments, label: newest.label, oldMs, oldOk, newMs, newFiles, engineMs });
      say(`  [${sets.length} sets] pgbackrest verify ${secs(oldMs)} (${oldOk}); lifeboat set check ${secs(newMs)}; engine.verifyBackup ${secs(engineMs)}`);
    }
  } finally {
    if (growMb) await withApp((c) => c.query(`DROP TABLE IF EXISTS ${SCRATCH}`));
    if (process.env.LIFEBOAT_BENCH_KEEP_BACKUPS !== '1' && mine.length > 1) {
      // The newest stays: expiring the newest full would make pgBackRest refuse diffs until the next full.
      const expire = mine.slice(0, -1);
      for (const label of expire) await whenFree(() => cli.exec('expire', [`--repo=${REPO}`, `--set=${label}`, '--log-level-console=warn'])).catch((err: unknown) => say(`  could not expire ${label}: ${(err as Error).message}`));
      say(`expired the bench's backups but the newest (${expire.length} sets; ${mine.at(-1)} stays)`);
    }
  }
  say('');
  say(`verify the newest full backup of repo${REPO} (primary MinIO over TLS, zstd, bundles), best of ${runs}; load average now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  say('| sets in repo | stored in repo | WAL segments archived | files in the set | pgbackrest verify (former) | lifeboat set check (new) | engine.verifyBackup (new, all checks) | former / new |');
  say('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    say(`| ${r.sets} | ${mib(r.stored)} | ${r.walSegments} | ${r.newFiles} | ${secs(r.oldMs)}${r.oldOk === 'ok' ? '' : ` (${r.oldOk})`} | ${secs(r.newMs)} | ${secs(r.engineMs)} | ${(r.oldMs / r.newMs).toFixed(1)}x |`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
