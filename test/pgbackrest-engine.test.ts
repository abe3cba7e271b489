/**
 * The pgBackRest engine against the REAL embedded stack: pgBackRest 2.45 with repo1 in the
 * primary region's MinIO and repo2 in the DR region's, the primary cluster on its port.
 * Needs a running stack (`lifeboat stack up`); never starts or stops it, never touches the
 * primary's configuration. Everything the suite creates is removed at the end except its newest
 * full backups: pgBackRest needs the newest full of a repository for later diff and incr backups,
 * and expiring the oldest full would also expire WAL others may rely on. Full backups of earlier
 * runs that are neither are swept, so at most one per repository stays.
 *
 * Waits are bounded by LIFEBOAT_TEST_WAIT_MS (default 5 minutes); nothing asserts on timing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { createPorts } from '../src/activities/ports';
import { restoreActivities } from '../src/activities/restore';
import { LifeboatError } from '../src/domain/errors';
import { restorePointLabel } from '../src/domain/ownership';
import type { BackupHandle, BackupProgress, InstanceDescription, ResourceOwner, RestorePoint, RunIdentity } from '../src/domain/ports';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { BACKUP_ANNOTATION } from '../src/engines/pgbackrest/backups';
import { classifyPgBackRestError } from '../src/engines/pgbackrest/errors';
import { localName } from '../src/engines/pgbackrest/files';
import { localPgBackRestEngine } from '../src/stack/local-engines';
import type { PgBackRestCli } from '../src/engines/pgbackrest/cli';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { delay, run as runCommand, waitUntil } from '../src/platform/processes';
import { type Stack } from '../src/stack/stack';
import { derivedConfig } from './helpers/scratch';
import { useStack } from './helpers/stack';

const WAIT_MS = Number(process.env.LIFEBOAT_TEST_WAIT_MS || 5 * 60 * 1000);
const POLL_MS = 300;

describe('pgBackRest engine: names and errors', () => {
  it('keeps valid local names and maps any other name deterministically without collisions', () => {
    assert.equal(localName('drill-app-2024q2'), 'drill-app-2024q2');
    const odd = localName('pitr/app 2024-05-01T12:00Z');
    assert.match(odd, /^[A-Za-z0-9][A-Za-z0-9_.-]*-[0-9a-f]{8}$/);
    assert.equal(localName('pitr/app 2024-05-01T12:00Z'), odd);
    assert.notEqual(localName('pitr/app 2024-05-01T12:00Z'), localName('pitr app 2024-05-01T12:00Z'));
    assert.match(localName('../postgres/primary'), /^postgres-primary-[0-9a-f]{8}$/);
  });

  it('maps a busy lock to a retryable error and the last full backup to a final one', () => {
    const busy = classifyPgBackRestError(new Error("ERROR: [050]: unable to acquire lock on file '/x/app-backup.lock': Resource temporarily unavailable"), 'starting backup b1');
    assert.equal(busy.code, 'PGBACKREST_BUSY');
    assert.equal(busy.nonRetryable, false);
    const last = classifyPgBackRestError(new Error('ERROR: [075]: repo1: full backup 20240501-120000F cannot be expired until another full backup has been created on this repo'), 'expiring backup 20240501-120000F');
    assert.equal(last.code, 'LAST_FULL_BACKUP');
    assert.equal(last.nonRetryable, true);
  });
});

describe('pgBackRest engine on the embedded stack', function () {
  const run = randomBytes(4).toString('hex');
  const table = `lifeboat_test_${run}`;
  const names = {
    full: `lbtest-${run}-full`,
    diff: `lbtest-${run}-diff`,
    incr: `lbtest-${run}-incr`,
    drCopy: `lbtest-${run}-full-dr`,
    pitr: `lbtest-${run}-pitr`,
    dr: `lbtest-${run}-dr`,
    unreachable: `lbtest-${run}-no-target`,
    quiet: `lbtest-${run}-quiet`,
    afterBackup: `lbtest-${run}-after-backup`,
  };
  /** The workflow run these restores are made for, as the restore activity would pass it. */
  const RUN: RunIdentity = { workflowId: `lbtest-${run}-workflow`, runId: `0193a6f2-${run}-7d4b-9a2f-5e8c1b3d4f60` };
  const owner = (point: RestorePoint, by: RunIdentity = RUN): ResourceOwner => ({ ...by, restorePoint: restorePointLabel(point), createdAt: new Date().toISOString() });
  let stack: Stack;
  let engine: PgBackRestEngine;
  let cli: PgBackRestCli;
  let full: BackupHandle;
  let diff: BackupHandle;
  let incr: BackupHandle | undefined;
  let quiet: BackupHandle | undefined;
  let pointT: string;
  let drPoint: string;

  const source = () => stack.primary.connect(stack.ctx.settings.postgres.appDatabase);

  async function sql<T extends object>(client: Client, text: string, values: unknown[] = []): Promise<T[]> {
    return (await client.query<T>(text, values)).rows;
  }

  async function onSource<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const c = source();
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  async function onInstance<T>(d: InstanceDescription, fn: (c: Client) => Promise<T>): Promise<T> {
    assert.ok(d.endpoint, `instance ${d.instanceId} has an endpoint`);
    const s = stack.ctx.settings;
    const c = new Client({ host: d.endpoint.host, port: d.endpoint.port, user: s.postgres.superuser, database: s.postgres.appDatabase, connectionTimeoutMillis: 5000 });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  /** Other people use the stack too: a busy lock means "wait for their backup", as the workflow's retry would. */
  async function retryWhileBusy<T>(fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof LifeboatError) || err.code !== 'PGBACKREST_BUSY' || Date.now() > deadline) throw err;
        await delay(1000);
      }
    }
  }

  async function finish(handle: BackupHandle): Promise<BackupProgress> {
    let last: BackupProgress | undefined;
    await waitUntil(
      `backup ${handle.name ?? handle.backupId}`,
      async () => {
        last = await engine.backupProgress(handle);
        return last.state === 'running' ? last.detail : true;
      },
      { timeoutMs: WAIT_MS, intervalMs: POLL_MS },
    );
    assert.ok(last);
    assert.equal(last.state, 'complete', last.detail);
    return last;
  }

  async function available(instanceId: string): Promise<InstanceDescription> {
    let last: InstanceDescription | undefined;
    await waitUntil(
      `restored instance ${instanceId}`,
      async () => {
        last = await engine.describeInstance(instanceId);
        if (!last) return 'no such instance';
        if (last.status === 'failed') throw new Error(`restore failed: ${last.detail}`);
        return last.status === 'available' ? true : `${last.status}: ${last.detail ?? ''}`;
      },
      { timeoutMs: WAIT_MS, intervalMs: POLL_MS },
    );
    assert.ok(last);
    return last;
  }

  async function setsNamed(repo: number, name: string): Promise<string[]> {
    const info = await cli.info(repo);
    return (info?.backup ?? [])
      .filter((b) => b.database['repo-key'] === repo && (b as { annotation?: Record<string, string> }).annotation?.[BACKUP_ANNOTATION] === name)
      .map((b) => b.label);
  }

  /** Expires full backups of test runs that are neither the oldest nor the newest full of their repository. */
  async function sweepTestFulls(): Promise<void> {
    for (const repo of [1, 2]) {
      const info = await cli.info(repo).catch(() => undefined);
      const fulls = (info?.backup ?? []).filter((b) => b.database['repo-key'] === repo && b.type === 'full').sort((a, b) => a.label.localeCompare(b.label));
      for (const b of fulls.slice(1, -1)) {
        const name = (b as { annotation?: Record<string, string> }).annotation?.[BACKUP_ANNOTATION];
        if (!name?.startsWith('lbtest-')) continue;
        await engine
          .deleteBackup({ engine: 'pgbackrest', backupId: b.label, name, location: repo === 1 ? 'primary' : 'dr', locator: `repo${repo}` })
          .catch((err: unknown) => console.error(`sweeping ${name}: ${String(err)}`));
      }
    }
  }

  async function countBatches(c: Client): Promise<Record<string, number>> {
    const rows = await sql<{ batch: string; n: number }>(c, `SELECT batch, count(*)::int AS n FROM ${table} GROUP BY batch`);
    return Object.fromEntries(rows.map((r) => [r.batch, r.n]));
  }

  before(async function () {
    this.timeout(600000);
    stack = await useStack();
    // drCopy: second-backup, kept tested here (the default, repository-copy, in dr-repository-copy.test.ts).
    engine = localPgBackRestEngine(stack, { drCopy: 'second-backup', timings: { startWatchMs: 15000, pollMs: 100, stopTimeoutSec: 30 } });
    cli = localPgBackRest(stack.ctx);
    await sweepTestFulls();
    await onSource((c) => c.query(`CREATE TABLE ${table} (id serial PRIMARY KEY, batch text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`));
  });

  after(async function () {
    if (!engine) return;
    for (const id of [names.pitr, names.dr, names.unreachable, names.afterBackup]) await engine.deleteInstance(id, RUN).catch((err: unknown) => console.error(`cleanup of ${id}: ${String(err)}`));
    for (const h of [quiet, incr, diff]) if (h) await engine.deleteBackup(h).catch((err: unknown) => console.error(`cleanup of ${h.name}: ${String(err)}`));
    await sweepTestFulls();
    await onSource((c) => c.query(`DROP TABLE IF EXISTS ${table}`)).catch(() => undefined);
  });

  it('describes the source with its system identifier', async () => {
    const d = await engine.describeSource();
    assert.equal(d.status, 'available');
    assert.equal(d.createdByLifeboat, false);
    assert.deepEqual(d.endpoint, { host: stack.ctx.settings.host, port: stack.ctx.settings.postgres.primaryPort });
    const [row] = await onSource((c) => sql<{ id: string }>(c, 'SELECT system_identifier::text AS id FROM pg_control_system()'));
    assert.equal(d.identity, row.id);
    assert.match(d.engineVersion ?? '', /^\d+\.\d+/);
  });

  it('takes a full backup into repo1, then a differential one on top of it', async () => {
    const started = await retryWhileBusy(() => engine.startBackup({ backupName: names.full, kind: 'full' }));
    assert.equal(started.engine, 'pgbackrest');
    assert.equal(started.location, 'primary');
    assert.equal(started.locator, 'repo1');
    assert.equal(started.name, names.full);
    const done = await finish(started);
    assert.match(done.backupId ?? '', /^\d{8}-\d{6}F$/);
    assert.ok(done.startedAt && done.completedAt && done.startedAt <= done.completedAt);
    assert.ok((done.sizeBytes ?? 0) > 0);
    full = { ...started, backupId: done.backupId! };
    // The detached process's pid and log files go once the set is in the repository and pgBackRest
    // has exited: right after the set appears it may still be expiring older sets (seconds).
    const pidFile = path.join(engine.runDir, `pgbackrest-backup-repo1-${localName(names.full)}.pid`);
    await waitUntil('the full backup\'s pgBackRest to exit and its pid file to go', async () => (await engine.backupProgress(started)).state === 'complete' && !fs.existsSync(pidFile), { timeoutMs: 60000, intervalMs: 250 });
    assert.equal(fs.existsSync(pidFile), false);

    const diffStarted = await retryWhileBusy(() => engine.startBackup({ backupName: names.diff, kind: 'diff' }));
    const diffDone = await finish(diffStarted);
    // A differential's label names the full backup it is based on.
    assert.match(diffDone.backupId ?? '', /^\d{8}-\d{6}F_\d{8}-\d{6}D$/);
    diff = { ...diffStarted, backupId: diffDone.backupId! };
  });

  it('adopts a backup started again under the same name, finished or still running', async () => {
    const again = await engine.startBackup({ backupName: names.full, kind: 'full' });
    assert.equal(again.backupId, full.backupId);
    assert.deepEqual(await setsNamed(1, names.full), [full.backupId]);

    const first = await retryWhileBusy(() => engine.startBackup({ backupName: names.incr, kind: 'incr' }));
    const second = await engine.startBackup({ backupName: names.incr, kind: 'incr' });
    assert.equal(second.name, names.incr);
    const done = await finish(second);
    incr = { ...first, backupId: done.backupId! };
    assert.deepEqual(await setsNamed(1, names.incr), [done.backupId]);
    // The handle from the first call resolves to the same backup.
    assert.equal((await engine.backupProgress(first)).backupId, done.backupId);
  });

  it('verifies a backup and reports every check it ran', async () => {
    const result = await engine.verifyBackup(full);
    assert.equal(result.ok, true, JSON.stringify(result.checks));
    assert.deepEqual(result.checks.map((c) => c.name), ['backup-set', 'page-checksums', 'repository-verify', 'source-identity']);
    assert.ok(result.checks.every((c) => c.ok && c.detail.length > 0));
    assert.match(result.checks[2].detail, new RegExp(`^Read the \\d+ files of ${full.backupId} back from repo1 \\(primary\\), .* and found each of the size and SHA-1 its manifest records; the \\d+ WAL segments? (it needs to be consistent|from the previous backup's end \\([0-9A-F]{24}\\) to its own, which point-in-time restores between them replay,) (is|are) archived and valid\\.$`));
    // An incremental set is read with the files it reuses from its full.
    assert.ok(incr, 'needs the incremental backup of the test before');
    const ofIncr = await engine.verifyBackup(incr);
    assert.equal(ofIncr.ok, true, JSON.stringify(ofIncr.checks));
    assert.match(ofIncr.checks[2].detail, new RegExp(`files of ${incr.backupId} \\(with the files it reuses from ${full.backupId}[,)]`));

    const missing = await engine.verifyBackup({ engine: 'pgbackrest', backupId: `lbtest-${run}-never-taken`, name: `lbtest-${run}-never-taken`, location: 'primary', locator: 'repo1' });
    assert.equal(missing.ok, false);
    assert.equal(missing.checks[0].name, 'backup-set');
  });

  it('copies a backup to the DR repository as a complete backup set of its own', async () => {
    const copy = await retryWhileBusy(() => engine.copyToDisasterRecovery(full, { copyName: names.drCopy }));
    assert.equal(copy.location, 'dr');
    assert.equal(copy.locator, 'repo2');
    const done = await finish(copy);
    assert.match(done.backupId ?? '', /^\d{8}-\d{6}F$/);
    assert.deepEqual(await setsNamed(2, names.drCopy), [done.backupId]);
    const verified = await engine.verifyBackup({ ...copy, backupId: done.backupId! });
    assert.equal(verified.ok, true, JSON.stringify(verified.checks));
    // Copying again adopts the copy.
    assert.equal((await engine.copyToDisasterRecovery(full, { copyName: names.drCopy })).backupId, done.backupId);
    await assert.rejects(engine.copyToDisasterRecovery({ ...copy, backupId: done.backupId! }, { copyName: 'x' }), (err: LifeboatError) => err.code === 'INVALID_BACKUP_HANDLE');
  });

  it('sweeps WAL scratch directories left by a killed worker, keeping fresh ones', async () => {
    // What kill -9 during a WAL read leaves behind: its scratch directory, never removed by its finally.
    const stale = fs.mkdtempSync(path.join(engine.restoresDir, '.wal-'));
    fs.writeFileSync(path.join(stale, '000000010000000000000001'), 'segment');
    const old = new Date(Date.now() - 60 * 60_000);
    fs.utimesSync(stale, old, old);
    // A fresh one may belong to a read running in another worker right now (this process stands for it) ...
    const fresh = fs.mkdtempSync(path.join(engine.restoresDir, '.wal-'));
    const [, afterComm] = fs.readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ');
    fs.writeFileSync(path.join(fresh, 'owner.pid'), `${process.pid}\n${afterComm.split(' ')[19]}\n`);
    // ... unless the process it names was killed: then it goes at once, however fresh.
    const orphan = fs.mkdtempSync(path.join(engine.restoresDir, '.wal-'));
    const killed = (await runCommand('/bin/sh', ['-c', 'echo $$'])).stdout.trim();
    fs.writeFileSync(path.join(orphan, 'owner.pid'), `${killed}\n1\n`);
    try {
      await engine.restoreWindow('primary');
      assert.equal(fs.existsSync(stale), false, `${stale} was swept`);
      assert.equal(fs.existsSync(orphan), false, `${orphan} of the killed process ${killed} was swept`);
      assert.equal(fs.existsSync(fresh), true, `${fresh} was kept`);
      // The read's own scratch directory is gone too.
      const left = fs.readdirSync(engine.restoresDir).filter((n) => n.startsWith('.wal-'));
      assert.deepEqual(left, [path.basename(fresh)]);
    } finally {
      for (const dir of [stale, fresh, orphan]) fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('restores to a point in time into a new instance and leaves the source untouched', async () => {
    const postmasterPid = () => fs.readFileSync(path.join(stack.primary.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0];
    const pidBefore = postmasterPid();
    await onSource((c) => c.query(`INSERT INTO ${table} (batch) SELECT 'before' FROM generate_series(1, 50)`));
    // `pgbackrest check` switches WAL and waits until the segment is in both repositories.
    await cli.check();
    [{ t: pointT }] = await onSource((c) => sql<{ t: string }>(c, `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS t`));
    await onSource((c) => c.query(`INSERT INTO ${table} (batch) SELECT 'after' FROM generate_series(1, 30)`));
    await cli.check();

    const window = await engine.restoreWindow('primary');
    assert.ok(window.earliest < pointT && pointT < window.latest, `${pointT} lies in ${JSON.stringify(window)}`);

    // Two attempts at once (a retry racing its first attempt) make one restore.
    const [started, racing] = await Promise.all([
      engine.startRestore({ destinationId: names.pitr, point: { kind: 'time', at: pointT }, owner: owner({ kind: 'time', at: pointT }) }),
      engine.startRestore({ destinationId: names.pitr, point: { kind: 'time', at: pointT }, owner: owner({ kind: 'time', at: pointT }) }),
    ]);
    assert.ok(racing.endpoint === undefined || racing.endpoint.port === started.endpoint?.port, JSON.stringify(racing));
    assert.equal(started.instanceId, names.pitr);
    assert.equal(started.createdByLifeboat, true);
    assert.ok(['restoring', 'starting', 'replaying-wal', 'available'].includes(started.status), started.status);
    const port = started.endpoint!.port;
    assert.ok(port >= stack.ctx.settings.postgres.restorePorts.from && port <= stack.ctx.settings.postgres.restorePorts.to && port !== stack.ctx.settings.postgres.primaryPort, `port ${port}`);

    // A retried activity adopts the restore under way (or done) instead of making another.
    const adopted = await engine.startRestore({ destinationId: names.pitr, point: { kind: 'time', at: pointT }, owner: owner({ kind: 'time', at: pointT }) });
    assert.equal(adopted.endpoint!.port, port);
    await assert.rejects(
      engine.startRestore({ destinationId: names.pitr, point: { kind: 'latest' }, owner: owner({ kind: 'latest' }) }),
      (err: LifeboatError) => err.code === 'INSTANCE_NAME_CONFLICT' && err.nonRetryable,
    );
    // Another workflow, or a later run of the same workflow id, asking for the same name is refused, naming the owner; nothing of the instance changes.
    const recorded = fs.readFileSync(engine.restoreFiles(names.pitr).record, 'utf8');
    for (const other of [{ workflowId: RUN.workflowId, runId: 'a-later-run-of-the-same-id' }, { workflowId: `lbtest-${run}-other-workflow`, runId: RUN.runId }]) {
      await assert.rejects(engine.startRestore({ destinationId: names.pitr, point: { kind: 'time', at: pointT }, owner: owner({ kind: 'time', at: pointT }, other) }), (err: LifeboatError) => {
        assert.equal(err.code, 'INSTANCE_OWNED_ELSEWHERE');
        assert.ok(err.nonRetryable);
        assert.match(err.message, new RegExp(`^Instance ${names.pitr} already exists and belongs to workflow ${RUN.workflowId} \\(run ${RUN.runId}, restore point ${pointT.replace(/[.]/g, '\\.')}, created .*\\), not to this workflow run; lifeboat will neither adopt nor delete it: choose another destination name\\.$`));
        return true;
      });
      await assert.rejects(engine.deleteInstance(names.pitr, other), (err: LifeboatError) => err.code === 'NOT_OWNER' && err.nonRetryable && err.message.includes(`belongs to workflow ${RUN.workflowId} (run ${RUN.runId}`));
    }
    assert.equal(fs.readFileSync(engine.restoreFiles(names.pitr).record, 'utf8'), recorded);
    // A name the engine would have to rewrite is refused, never mapped to another directory.
    for (const destinationId of ['../../etc', 'x;touch /tmp/p']) {
      await assert.rejects(engine.startRestore({ destinationId, point: { kind: 'latest' }, owner: owner({ kind: 'latest' }) }), (err: LifeboatError) => err.code === 'INVALID_DESTINATION' && err.nonRetryable);
    }

    const d = await available(names.pitr);
    assert.equal(d.endpoint!.port, port);
    const sourceDescription = await engine.describeSource();
    assert.equal(d.identity, sourceDescription.identity);
    assert.deepEqual(await onInstance(d, countBatches), { before: 50 });
    assert.equal((await onInstance(d, (c) => sql<{ r: boolean }>(c, 'SELECT pg_is_in_recovery() AS r')))[0].r, false);
    assert.deepEqual({ ...d.owner, createdAt: undefined }, { ...RUN, restorePoint: pointT, createdAt: undefined });

    // The source still runs as before, with every row.
    assert.equal(sourceDescription.status, 'available');
    assert.equal(postmasterPid(), pidBefore);
    assert.deepEqual(await onSource(countBatches), { before: 50, after: 30 });
  });

  it('a restored cluster never archives WAL: ALTER SYSTEM and a restart cannot turn archiving back on', async () => {
    const files = engine.restoreFiles(names.pitr);
    const pgCtl = stack.ctx.tools.pgBin('pg_ctl');
    const asUser = stack.ctx.settings.postgres.osUser;
    const settings = async (d: InstanceDescription) =>
      // reset_val: SHOW and setting print archive_command as "(disabled)" while archiving is off.
      onInstance(d, (c) => sql<{ name: string; setting: string; source: string }>(c, "SELECT name, reset_val AS setting, source FROM pg_settings WHERE name IN ('archive_mode', 'archive_command') ORDER BY name"));
    const refusing = (rows: Array<{ name: string; setting: string; source: string }>) => {
      assert.deepEqual(rows.map((r) => [r.name, r.source]), [['archive_command', 'command line'], ['archive_mode', 'command line']]);
      assert.equal(rows[1].setting, 'off');
      assert.match(rows[0].setting, /^echo 'lifeboat: this is a restored instance, it must not archive WAL into the production repositories' >&2; exit 1$/);
    };
    // What the repositories hold before: other suites' cutovers may have archived a timeline of
    // the same number, so the proof is that this cluster adds nothing, not that none exists.
    const { binary, configPath, stanza } = cli.options;
    const archivedIn = async (repo: number) => {
      const listed = await runCommand(binary, [`--config=${configPath}`, `--stanza=${stanza}`, `--repo=${repo}`, '--output=json', '--recurse', '--log-level-console=warn', 'repo-ls', `archive/${stanza}`], { asUser });
      return Object.keys(JSON.parse(listed.stdout) as Record<string, unknown>).map((k) => path.basename(k));
    };
    const before = new Map([[1, await archivedIn(1)], [2, await archivedIn(2)]]);
    let d = await available(names.pitr);
    refusing(await settings(d));
    // Someone turns archiving on with the source's own archive command, as a copied runbook would.
    const [{ archive_command: sourceCommand }] = await onSource((c) => sql<{ archive_command: string }>(c, 'SHOW archive_command'));
    assert.match(sourceCommand, /archive-push/);
    await onInstance(d, async (c) => {
      await c.query("ALTER SYSTEM SET archive_mode = 'on'");
      await c.query(`ALTER SYSTEM SET archive_command = '${sourceCommand.replace(/'/g, "''")}'`);
    });
    // A restart by hand (pg_ctl restart reuses the command line) ...
    await runCommand(pgCtl, ['-D', files.dataDir, '-l', files.log, '-m', 'fast', '-w', 'restart'], { asUser });
    d = await available(names.pitr);
    refusing(await settings(d));
    // ... and a start by lifeboat (the cluster found down and adopted again) both keep archiving off.
    await runCommand(pgCtl, ['-D', files.dataDir, '-m', 'fast', '-w', 'stop'], { asUser });
    await engine.startRestore({ destinationId: names.pitr, point: { kind: 'time', at: pointT }, owner: owner({ kind: 'time', at: pointT }) });
    d = await available(names.pitr);
    refusing(await settings(d));
    // The restored cluster writes and switches WAL; none of it (nor its timeline's history) reaches either repository.
    const [{ tli }] = await onInstance(d, async (c) => {
      await c.query(`INSERT INTO ${table} (batch) SELECT 'restored' FROM generate_series(1, 20)`);
      await c.query('SELECT pg_switch_wal()');
      await c.query('CHECKPOINT');
      return sql<{ tli: number }>(c, 'SELECT timeline_id AS tli FROM pg_control_checkpoint()');
    });
    const [{ tli: sourceTli }] = await onSource((c) => sql<{ tli: number }>(c, 'SELECT timeline_id AS tli FROM pg_control_checkpoint()'));
    assert.notEqual(tli, sourceTli, 'the restored cluster runs on a timeline of its own');
    await delay(3000);
    const [{ archived, failed }] = await onInstance(d, (c) => sql<{ archived: number; failed: number }>(c, 'SELECT archived_count::int AS archived, failed_count::int AS failed FROM pg_stat_archiver'));
    assert.deepEqual({ archived, failed }, { archived: 0, failed: 0 });
    const timeline = tli.toString(16).toUpperCase().padStart(8, '0');
    for (const repo of [1, 2]) {
      const archived = await archivedIn(repo);
      assert.ok(archived.some((n) => n.startsWith('00000001')), `repo${repo} lists the source's WAL`);
      const added = archived.filter((n) => n.startsWith(timeline) && !before.get(repo)!.includes(n));
      assert.deepEqual(added, [], `repo${repo} gained no WAL of timeline ${timeline} from the restored cluster`);
    }
    await onInstance(d, (c) => c.query('ALTER SYSTEM RESET ALL'));
  });

  it('restores from the DR repository up to the end of its archive', async () => {
    const window = await engine.restoreWindow('dr');
    assert.ok(window.earliest <= window.latest);
    assert.ok(pointT < window.latest, `${pointT} before the end of the DR archive ${window.latest}`);
    // The end of the window lies after the last archived commit: it is pinned to the last archived record.
    drPoint = window.latest;
    await engine.startRestore({ destinationId: names.dr, point: { kind: 'time', at: drPoint }, fromRegion: 'dr', owner: owner({ kind: 'time', at: drPoint }) });
    const d = await available(names.dr);
    assert.notEqual(d.endpoint!.port, (await engine.describeInstance(names.pitr))!.endpoint!.port);
    assert.deepEqual(await onInstance(d, countBatches), { before: 50, after: 30 });
    const autoConf = fs.readFileSync(path.join(engine.restoreFiles(names.dr).dataDir, 'postgresql.auto.conf'), 'utf8');
    assert.match(autoConf, /restore_command = .*--repo=2 /);
  });

  it('fails the wait for a restored instance at once when its PostgreSQL has stopped, naming it and its log', async () => {
    const files = engine.restoreFiles(names.dr);
    // PostgreSQL gone after the restore script ended: nothing will start it again by itself.
    await runCommand(stack.ctx.tools.pgBin('pg_ctl'), ['-D', files.dataDir, '-m', 'fast', '-w', 'stop'], { asUser: stack.ctx.settings.postgres.osUser });
    const ports = createPorts(derivedConfig(() => undefined));
    try {
      const started = Date.now();
      await assert.rejects(new MockActivityEnvironment().run(restoreActivities(ports).waitUntilAvailable, 'app', names.dr, 200), (err: unknown) => {
        assert.ok(err instanceof LifeboatError, String(err));
        assert.equal(err.code, 'RESTORED_INSTANCE_STOPPED');
        assert.equal(err.nonRetryable, true);
        // Stopped by hand, so PostgreSQL said nothing wrong since it was started: no reason beyond "not running".
        assert.equal(err.message, `The restored instance ${names.dr} stopped before it became available: PostgreSQL of restored instance ${names.dr} is not running (log: ${files.log}); read its log, then delete it and run the restore again.`);
        return true;
      });
      const took = Date.now() - started;
      console.log(`      waitUntilAvailable gave up on the stopped instance after ${took} ms`);
      assert.ok(took < 10_000, `${took} ms`);
      // A port another process took: PostgreSQL cannot start again, and the engine says why.
      const port = (await engine.describeInstance(names.dr))!.endpoint!.port;
      const squatter = net.createServer().listen(port, stack.ctx.settings.host);
      await once(squatter, 'listening');
      try {
        fs.appendFileSync(files.log, 'lifeboat: starting PostgreSQL by hand (test)\n');
        await runCommand(stack.ctx.tools.pgBin('pg_ctl'), ['-D', files.dataDir, '-l', files.log, '-w', '-t', '10', 'start'], { asUser: stack.ctx.settings.postgres.osUser, check: false });
        const down = await engine.describeInstance(names.dr);
        assert.equal(down?.status, 'stopped');
        assert.equal(down?.detail, `PostgreSQL of restored instance ${names.dr} is not running (FATAL: could not create any TCP/IP sockets) (log: ${files.log}).`);
      } finally {
        squatter.close();
      }
    } finally {
      await ports.close();
    }
    // A retried restore adopts the instance and starts it again.
    await engine.startRestore({ destinationId: names.dr, point: { kind: 'time', at: drPoint }, fromRegion: 'dr', owner: owner({ kind: 'time', at: drPoint }) });
    await available(names.dr);
  });

  it('cleans up a restore left half-made by a crash and does it again', async () => {
    const files = engine.restoreFiles(names.dr);
    // What a crash before the restore finished leaves: the cluster down, no settings file yet.
    await runCommand(stack.ctx.tools.pgBin('pg_ctl'), ['-D', files.dataDir, '-m', 'fast', '-w', 'stop'], { asUser: stack.ctx.settings.postgres.osUser });
    fs.rmSync(path.join(files.dataDir, 'lifeboat-restore.conf'));
    const broken = await engine.describeInstance(names.dr);
    assert.equal(broken?.status, 'failed');
    assert.match(broken?.detail ?? '', /did not finish/);

    await engine.startRestore({ destinationId: names.dr, point: { kind: 'time', at: drPoint }, fromRegion: 'dr', owner: owner({ kind: 'time', at: drPoint }) });
    const d = await available(names.dr);
    assert.deepEqual(await onInstance(d, countBatches), { before: 50, after: 30 });
  });

  it('reports a restore whose target is never reached as failed, with PostgreSQL\'s reason', async () => {
    await engine.startRestore({ destinationId: names.unreachable, point: { kind: 'name', name: `lbtest-${run}-never-created` }, owner: owner({ kind: 'name', name: `lbtest-${run}-never-created` }) });
    let last: InstanceDescription | undefined;
    await waitUntil(
      'the restore to a missing restore point to fail',
      async () => {
        last = await engine.describeInstance(names.unreachable);
        return last?.status === 'failed' || last?.status === 'available' ? true : `${last?.status}`;
      },
      { timeoutMs: WAIT_MS, intervalMs: POLL_MS },
    );
    assert.equal(last?.status, 'failed');
    assert.match(last?.detail ?? '', /recovery ended before configured recovery target was reached/);
    await engine.deleteInstance(names.unreachable, RUN);
    assert.equal(await engine.describeInstance(names.unreachable), undefined);
  });

  it('restores to a time just after a backup of an idle source: everything archived, not a target never reached', async () => {
    // A backup of an idle source writes segments without a commit (its start checkpoint, its
    // stop switch), and every check after it adds one more: more than the usual scan of the
    // archive's end, so only the backup's own stop bounds the last commit.
    const started = await retryWhileBusy(() => engine.startBackup({ backupName: names.quiet, kind: 'incr' }));
    const done = await finish(started);
    quiet = { ...started, backupId: done.backupId! };
    for (let i = 0; i < 4; i++) await cli.check();
    const at = new Date(Date.parse(done.completedAt!) + 1000).toISOString();
    const window = await engine.restoreWindow('primary');
    assert.ok(at <= window.latest, `${at} lies in ${JSON.stringify(window)}`);
    await engine.startRestore({ destinationId: names.afterBackup, point: { kind: 'time', at }, owner: owner({ kind: 'time', at }) });
    const d = await available(names.afterBackup);
    assert.deepEqual(await onInstance(d, countBatches), await onSource(countBatches));
    await engine.deleteInstance(names.afterBackup, RUN);
    // An incremental on top of the earlier ones: gone again before they are expired below. (On a
    // stack with no backup yet pgBackRest made it a full, which the after hook's sweep handles.)
    if (!quiet.backupId.endsWith('F')) {
      await engine.deleteBackup(quiet);
      quiet = undefined;
    }
  });

  it('never deletes an instance that has served traffic', async () => {
    const files = engine.restoreFiles(names.dr);
    await engine.markServedTraffic(names.dr);
    assert.equal((await engine.describeInstance(names.dr))?.servedTraffic, true);
    await assert.rejects(engine.deleteInstance(names.dr, RUN), (err: LifeboatError) => {
      assert.equal(err.code, 'SERVED_TRAFFIC');
      assert.ok(err.nonRetryable);
      assert.match(err.message, new RegExp(`^Refusing to delete ${names.dr}: it has served traffic since \\d{4}-.*Z, and lifeboat never removes such an instance automatically; move traffic elsewhere and remove it by hand when it is no longer needed\\.$`));
      return true;
    });
    assert.equal((await available(names.dr)).servedTraffic, true);
    assert.ok(fs.existsSync(files.dataDir));
    // The operator decides it is no longer needed (by hand: the flag cleared in its record).
    const record = JSON.parse(fs.readFileSync(files.record, 'utf8')) as { servedTraffic?: boolean };
    delete record.servedTraffic;
    fs.writeFileSync(files.record, JSON.stringify(record));
  });

  it('deletes restored instances, and a missing one is success', async () => {
    const files = engine.restoreFiles(names.pitr);
    const port = (await engine.describeInstance(names.pitr))!.endpoint!.port;
    await engine.deleteInstance(names.pitr, RUN);
    assert.equal(await engine.describeInstance(names.pitr), undefined);
    assert.equal(fs.existsSync(files.dataDir), false);
    assert.equal(fs.existsSync(files.record), false);
    assert.equal(fs.existsSync(path.join(engine.restoresDir, 'ports', String(port))), false);
    await engine.deleteInstance(names.pitr, RUN);
    await engine.deleteInstance(names.dr, RUN);
    assert.equal(await engine.describeInstance(names.dr), undefined);
  });

  it('refuses to restore into or delete the source', async () => {
    await assert.rejects(engine.deleteInstance('primary', RUN), (err: LifeboatError) => err.code === 'DELETE_SOURCE_REFUSED' && err.nonRetryable);
    await assert.rejects(engine.startRestore({ destinationId: 'primary', point: { kind: 'latest' }, owner: owner({ kind: 'latest' }) }), (err: LifeboatError) => err.code === 'RESTORE_OVER_SOURCE' && err.nonRetryable);
    const d = await engine.describeInstance('primary');
    assert.equal(d?.createdByLifeboat, false);
    assert.equal(d?.status, 'available');
  });

  it('expires backups, refusing one that others depend on', async () => {
    if (diff.backupId.startsWith(`${full.backupId}_`)) {
      await assert.rejects(engine.deleteBackup(full), (err: LifeboatError) => err.code === 'BACKUP_HAS_DEPENDENTS' && err.message.includes(diff.backupId));
    }
    assert.ok(incr);
    await engine.deleteBackup(incr);
    await engine.deleteBackup(diff);
    const fulls = ((await cli.info(1))?.backup ?? []).filter((b) => b.database['repo-key'] === 1 && b.type === 'full').map((b) => b.label).sort();
    if (fulls.length > 1 && fulls[fulls.length - 1] === full.backupId) {
      await assert.rejects(engine.deleteBackup(full), (err: LifeboatError) => err.code === 'NEWEST_FULL_BACKUP' && err.nonRetryable);
    }
    assert.deepEqual(await setsNamed(1, names.incr), []);
    assert.deepEqual(await setsNamed(1, names.diff), []);
    assert.equal((await engine.backupProgress(diff)).state, 'failed');
    // Already gone is success.
    await engine.deleteBackup(diff);
    incr = undefined;
  });
});
