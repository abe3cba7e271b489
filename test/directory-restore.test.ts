/**
 * Directory targets on the real stack (MinIO in two regions, Temporal, the catalog), through the
 * real CLI: a temp configuration tree with files of different modes and owners, a symlink and an
 * empty directory is backed up (encrypted, both regions verified, a catalog row), restored into a
 * new directory and compared exactly (content, type, mode, owner, mtime, link); restored in place
 * behind the restore gate after files were changed, deleted and added (only what the manifest
 * lists is written, what it overwrites is kept for the undo); a rejected in-place restore writes
 * nothing; bad input is refused with one sentence and exit 2 before anything is made; a drill
 * (restoreDrill) restores into a scratch directory and removes it; test/directory-drill.test.ts
 * covers the drill's evidence, failures and the sweeper. One backup for the whole file.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { createPorts, Ports } from '../src/activities/ports';
import { interpolateConfigText, LifeboatConfig, loadConfig } from '../src/config';
import type { DirectoryRestoreReport } from '../src/domain/directory-backup';
import type { RestoreDrillResult } from '../src/domain/drill';
import type { PreflightResult } from '../src/domain/preflight';
import { createLifeboatWorker } from '../src/worker';
import { statusQuery } from '../src/workflows/messages';
import { lifeboat } from './helpers/cli';
import { recordHistory } from './helpers/pitr';
import { EXAMPLE_CONFIG, purge, removeCatalogRows } from './helpers/scratch';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  sha256?: string;
  link?: string;
}

/** Every entry under `dir`, read independently of lifeboat's code: type, mode, owner, mtime (ms), content hash or link. */
function snapshot(dir: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const visit = (rel: string) => {
    const abs = rel === '.' ? dir : path.join(dir, rel);
    const st = fs.lstatSync(abs, { bigint: true });
    const e: Entry = { type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file', mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtimeMs: Number(st.mtimeNs / 1000000n) };
    if (e.type === 'file') e.sha256 = createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
    if (e.type === 'symlink') {
      e.link = fs.readlinkSync(abs);
      e.mode = 0; // a link's own mode is not meaningful on Linux
    }
    out.set(rel, e);
    if (e.type === 'dir') for (const c of fs.readdirSync(abs).sort()) visit(rel === '.' ? c : `${rel}/${c}`);
  };
  visit('.');
  return out;
}

describe('directory targets: backup, restore into a new directory and in place, drill (real worker, real stack, real CLI)', function () {
  const id = randomBytes(4).toString('hex');
  const target = `lbtest-dir-${id}`;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `lifeboat-dir-${id}-`));
  const source = path.join(root, 'etc-app');
  const configFile = path.join(root, 'lifeboat.yaml');
  const prefix = 'directories/';
  const workflowIds: string[] = [];
  const isRoot = process.getuid?.() === 0;
  let env: TestWorkflowEnvironment;
  let config: LifeboatConfig;
  let ports: Ports;
  let original: Map<string, Entry>;
  let backupId: string;

  const worker = async (name: string) => createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue: uniqueTaskQueue(name), workflowBundle: await workflowBundle() });
  const cli = (args: string[], taskQueue: string) => lifeboat([...args, '--config', configFile], { LIFEBOAT_TASK_QUEUE: taskQueue });

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    // The tree: modes, owners (nobody, postgres when root), a symlink, an empty directory, nesting.
    fs.mkdirSync(path.join(source, 'conf.d'), { recursive: true });
    fs.mkdirSync(path.join(source, 'empty'));
    fs.mkdirSync(path.join(source, 'ssl/private'), { recursive: true });
    fs.writeFileSync(path.join(source, 'app.conf'), 'include conf.d/*.conf;\nlisten 8080;\n');
    fs.writeFileSync(path.join(source, 'conf.d/site.conf'), 'server_name example.com;\n');
    fs.writeFileSync(path.join(source, 'ssl/private/site.key'), randomBytes(2048));
    fs.writeFileSync(path.join(source, 'run.sh'), '#!/bin/sh\nexit 0\n');
    fs.chmodSync(path.join(source, 'app.conf'), 0o644);
    fs.chmodSync(path.join(source, 'conf.d/site.conf'), 0o640);
    fs.chmodSync(path.join(source, 'ssl/private/site.key'), 0o600);
    fs.chmodSync(path.join(source, 'ssl/private'), 0o700);
    fs.chmodSync(path.join(source, 'run.sh'), 0o4755);
    fs.chmodSync(path.join(source, 'empty'), 0o2775);
    fs.symlinkSync('conf.d/site.conf', path.join(source, 'current.conf'));
    if (isRoot) {
      fs.chownSync(path.join(source, 'conf.d/site.conf'), 65534, 65534);
      fs.chownSync(path.join(source, 'ssl/private/site.key'), 101, 104);
      fs.chownSync(path.join(source, 'ssl/private'), 101, 104);
      fs.lchownSync(path.join(source, 'current.conf'), 65534, 65534);
      fs.chmodSync(path.join(source, 'run.sh'), 0o4755); // chown clears setuid
    }
    const keyFile = path.join(root, 'dir.key');
    fs.writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
    const doc = YAML.parse(interpolateConfigText(fs.readFileSync(EXAMPLE_CONFIG, 'utf8')).text) as { targets: Record<string, unknown[]> };
    doc.targets.directories = [
      {
        name: target,
        environment: 'staging',
        path: source,
        encryptionKey: { secretRef: `file:${keyFile}` },
        store: 'primary',
        bucket: 'lifeboat-backups-primary',
        prefix,
        dr: { store: 'dr', bucket: 'lifeboat-backups-dr' },
        criticalFiles: ['app.conf', 'conf.d/site.conf'],
        // The syntax check: the main file names what it includes, and that must be there.
        // A flag file beside the tree makes it fail, to prove a failed verification leaves nothing behind.
        syntaxCheck: { command: ['sh', '-c', `test ! -e ${path.join(root, 'fail-syntax')} && grep -q "^listen " "{dir}/app.conf" && ls {dir}/conf.d/*.conf && echo syntax ok || { echo "app.conf: syntax error" >&2; exit 3; }`] },
      },
    ];
    fs.writeFileSync(configFile, YAML.stringify(doc));
    config = loadConfig(configFile);
    ports = createPorts(config, { log: () => undefined });
    original = snapshot(source);

    const w = await worker('dir-backup');
    const workflowId = `test-dir-backup-${id}`;
    workflowIds.push(workflowId);
    await w.runUntil(async () => {
      const run = await cli(['backup', target, '--id', workflowId], w.options.taskQueue);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, new RegExp(`Directory backup complete: ${target}, 4 files .* encrypted at lifeboat-backups-primary/directories/${target}/${workflowId}\\.lbdir\\.gz\\.enc, copy in lifeboat-backups-dr`));
      await recordHistory(env.client.workflow.getHandle(workflowId), 'directoryBackup-v1-verified');
    });
    backupId = workflowId;
  });

  after(async function () {
    this.timeout(300000);
    if (!ports) return;
    await purge(ports.objectStore('primary'), 'lifeboat-backups-primary', `${prefix}${target}/`);
    await purge(ports.objectStore('dr'), 'lifeboat-backups-dr', `${prefix}${target}/`);
    // The drill's row first: it refers to the backup it drilled.
    await ports.catalog.query('DELETE FROM drills WHERE workflow_id = ANY($1)', [workflowIds]);
    await removeCatalogRows(ports.catalog, workflowIds);
    await ports.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('records the backup: a verified catalog row with both regions checked, in `lifeboat backups list`', async function () {
    this.timeout(120000);
    const rows = await ports.catalog.query<{ status: string; backup_type: string; checksums: { sha256: string; manifestSha256: string }; details: { files: number; symlinks: number } }>(
      'SELECT status, backup_type, checksums, details FROM backups WHERE workflow_id = $1',
      [backupId],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0].status, 'verified');
    assert.equal(rows[0].backup_type, 'directory');
    assert.match(rows[0].checksums.manifestSha256, /^[0-9a-f]{64}$/);
    assert.deepEqual([rows[0].details.files, rows[0].details.symlinks], [4, 1]);
    const checks = await ports.catalog.query<{ subject: string; ok: boolean; checks: Array<{ name: string }> }>('SELECT v.subject, v.ok, v.checks FROM verifications v JOIN backups b ON b.id = v.backup_id WHERE b.workflow_id = $1 ORDER BY v.subject', [backupId]);
    assert.deepEqual(checks.map((c) => [c.subject.split(':')[0], c.ok]), [['directory archive dr', true], ['directory archive primary', true]]);
    for (const c of checks) assert.deepEqual(c.checks.map((k) => k.name), ['object-sha256', 'manifest-sha256', 'files-sha256', 'critical-files']);
    const list = await lifeboat(['backups', 'list', '--target', target, '--json', '--config', configFile]);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as Array<{ kind: string; name: string; status: string }>;
    assert.deepEqual(listed.map((r) => [r.kind, r.name, r.status]), [['directory', backupId, 'verified']]);
  });

  it('preflight checks the directory on its host: readable, critical files present, the key loads', async function () {
    this.timeout(300000);
    const w = await worker('dir-preflight');
    const workflowId = `test-dir-preflight-${id}`;
    await w.runUntil(async () => {
      const r = (await env.client.workflow.execute('preflight', { taskQueue: w.options.taskQueue, workflowId, args: [{ targets: [target] }] })) as PreflightResult;
      const mine = r.checks.filter((c) => c.component.startsWith(`directory ${target} `));
      assert.deepEqual(mine.map((c) => [c.component.split(' ').pop(), c.ok]), [['directory-readable', true], ['critical-files', true], ['encryption-key', true]]);
      assert.match(mine[1].detail, /^2 present$/);
      await recordHistory(env.client.workflow.getHandle(workflowId), 'preflight-v3-directory-targets');
    });
  });

  it('refuses bad input with one sentence and exit 2, before anything is made', async function () {
    this.timeout(300000);
    const w = await worker('dir-refusals');
    const occupied = path.join(root, 'occupied');
    fs.mkdirSync(occupied);
    fs.writeFileSync(path.join(occupied, 'keep.me'), 'mine');
    const before = fs.readdirSync(root).sort();
    const expectRefused = async (args: string[], sentence: RegExp) => {
      const run = await cli(args, w.options.taskQueue);
      assert.equal(run.code, 2, `${args.join(' ')}\n${run.stdout}\n${run.stderr}`);
      assert.match(run.stderr.trim(), sentence);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    };
    const base = ['--reason', 'test', '--as', 'carol@example.com'];
    await w.runUntil(async () => {
      await expectRefused(['restore', `lbtest-nosuch-${id}`, '--backup', 'latest', ...base], /^lifeboat: No database, bucket or directory target is named "lbtest-nosuch-\w+"; the config declares .*lbtest-dir-/);
      // What needs no server (a missing --backup, a relative --into, --into with --in-place, --to) is refused by prepareDirectoryRestore: see test/directory-archive.test.ts.
      await expectRefused(['restore', target, '--backup', 'latest', '--to', '2026-01-01T00:00:00Z', ...base], /^lifeboat: --to does not apply to a directory target; /);
      const refusedId = `test-dir-occupied-${id}`;
      workflowIds.push(refusedId);
      await expectRefused(['restore', target, '--backup', 'latest', '--into', occupied, ...base, '--id', refusedId], new RegExp(`^lifeboat: ${occupied} exists and is not empty, so the restore will not write there: `));
      await expectRefused(['restore', target, '--backup', 'no-such-backup', ...base, '--id', `test-dir-nobackup-${id}`], new RegExp(`^lifeboat: ${target} has no verified directory backup "no-such-backup": `));
      workflowIds.push(`test-dir-nobackup-${id}`);
    });
    // Nothing made next to the destinations (no staging directory), the occupied one untouched.
    assert.deepEqual(fs.readdirSync(root).sort(), before);
    assert.deepEqual(fs.readdirSync(occupied), ['keep.me']);
  });

  it('restores into a new directory: every entry exactly as backed up (content, type, mode, owner, mtime, link); the syntax check ran', async function () {
    this.timeout(300000);
    const w = await worker('dir-new');
    const into = path.join(root, 'restored');
    const workflowId = `test-dir-restore-${id}`;
    workflowIds.push(workflowId);
    await w.runUntil(async () => {
      const run = await cli(['restore', target, '--backup', backupId, '--into', into, '--reason', 'compare', '--as', 'carol@example.com', '--id', workflowId], w.options.taskQueue);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /ok {2}syntax-check \(\S+\): sh -c .* exited 0/);
      assert.match(run.stdout, /\| syntax ok/);
      await recordHistory(env.client.workflow.getHandle(workflowId), 'directoryRestore-v1-new-dir');
    });
    assert.deepEqual([...snapshot(into)], [...original]);
    // No staging directory left beside it.
    assert.deepEqual(fs.readdirSync(root).filter((n) => n.includes('lifeboat-restore')), []);
  });

  it('a restore whose verification fails leaves nothing: no destination, no staging directory (removed because it carries the run\'s mark)', async function () {
    this.timeout(300000);
    const w = await worker('dir-failed');
    const into = path.join(root, 'never-made');
    const workflowId = `test-dir-failed-${id}`;
    workflowIds.push(workflowId);
    fs.writeFileSync(path.join(root, 'fail-syntax'), '');
    try {
      await w.runUntil(async () => {
        const run = await cli(['restore', target, '--backup', 'latest', '--into', into, '--reason', 'a bad restore', '--as', 'carol@example.com', '--id', workflowId], w.options.taskQueue);
        assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
        assert.match(run.stdout, /directory restore FAILED: verification of \S+ failed \(syntax-check: sh -c .* exited 3\)/);
        const status = await env.client.workflow.getHandle(workflowId).query(statusQuery);
        assert.equal(status.phase, 'verification-failed');
        assert.match(status.timeline[status.timeline.length - 1].note, /removed \S+lifeboat-restore-\S+, which this run made/);
        await recordHistory(env.client.workflow.getHandle(workflowId), 'directoryRestore-v1-verification-failed');
      });
    } finally {
      fs.rmSync(path.join(root, 'fail-syntax'));
    }
    assert.equal(fs.existsSync(into), false);
    assert.deepEqual(fs.readdirSync(root).filter((n) => n.includes('lifeboat-restore')), []);
  });

  it('in place behind the restore gate: rejected writes nothing; approved restores what the manifest lists, leaves other files, keeps what it overwrote', async function () {
    this.timeout(300000);
    const w = await worker('dir-inplace');
    // After the backup: a file rewritten, one deleted, a mode changed, a file added.
    fs.writeFileSync(path.join(source, 'app.conf'), 'listen 9999; # a bad edit\n');
    fs.rmSync(path.join(source, 'conf.d/site.conf'));
    fs.chmodSync(path.join(source, 'ssl/private/site.key'), 0o644);
    fs.writeFileSync(path.join(source, 'added-later.conf'), 'new\n');
    const changed = snapshot(source);
    await w.runUntil(async () => {
      const rejectedId = `test-dir-rejected-${id}`;
      workflowIds.push(rejectedId);
      const started = await cli(['restore', target, '--backup', 'latest', '--in-place', '--reason', 'undo the bad edit', '--as', 'carol@example.com', '--id', rejectedId], w.options.taskQueue);
      assert.equal(started.code, 0, `${started.stdout}\n${started.stderr}`);
      assert.match(started.stdout, /overwritten: 2: app\.conf, ssl\/private\/site\.key; each is moved to /);
      assert.match(started.stdout, /created: 1: conf\.d\/site\.conf/);
      const reject = await cli(['reject', rejectedId, '--reason', 'not now', '--as', 'alice@example.com'], w.options.taskQueue);
      assert.equal(reject.code, 0, `${reject.stdout}\n${reject.stderr}`);
      const r = (await env.client.workflow.getHandle(rejectedId).result()) as DirectoryRestoreReport;
      assert.equal(r.outcome, 'rejected');
      assert.deepEqual([...snapshot(source)], [...changed]);
      await recordHistory(env.client.workflow.getHandle(rejectedId), 'directoryRestore-v1-in-place-rejected');

      const workflowId = `test-dir-inplace-${id}`;
      workflowIds.push(workflowId);
      const run = await cli(['restore', target, '--backup', 'latest', '--in-place', '--reason', 'undo the bad edit', '--as', 'carol@example.com', '--id', workflowId], w.options.taskQueue);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      const approve = await cli(['approve', workflowId, '--reason', 'checked the gate facts', '--as', 'alice@example.com'], w.options.taskQueue);
      assert.equal(approve.code, 0, `${approve.stdout}\n${approve.stderr}`);
      const report = (await env.client.workflow.getHandle(workflowId).result()) as DirectoryRestoreReport;
      assert.equal(report.outcome, 'restored', report.failure);
      assert.equal(report.written!.overwritten, 2);
      const undoDir = report.plan!.inPlace!.backupDir;
      assert.equal(report.undo, `cp -a ${undoDir}/. ${source}/ && rm -f -- ${source}/.lifeboat-undo-journal && rm -rf -- ${source}/conf.d/site.conf`);
      assert.deepEqual([...report.overwritten!].sort(), ['app.conf', 'ssl/private/site.key']);
      assert.deepEqual(report.created, ['conf.d/site.conf']);
      // What it overwrote is kept, as it was.
      assert.equal(fs.readFileSync(path.join(undoDir, 'app.conf'), 'utf8'), 'listen 9999; # a bad edit\n');
      assert.equal(fs.statSync(path.join(undoDir, 'ssl/private/site.key')).mode & 0o7777, 0o644);
      await recordHistory(env.client.workflow.getHandle(workflowId), 'directoryRestore-v1-in-place-approved');
      fs.rmSync(undoDir, { recursive: true, force: true });
    });
    // Every entry the backup lists is back exactly; the file added later is still there, untouched.
    const now = snapshot(source);
    const added = now.get('added-later.conf');
    assert.deepEqual(added, changed.get('added-later.conf'));
    now.delete('added-later.conf');
    // The directory's own mtime is the recorded one, even with the added file in it.
    assert.deepEqual([...now], [...original]);
  });

  it('a drill (restoreDrill) restores into a scratch directory, verifies it, removes it and reports it', async function () {
    this.timeout(300000);
    const w = await worker('dir-drill');
    const workflowId = `test-dir-drill-${id}`;
    workflowIds.push(workflowId);
    await w.runUntil(async () => {
      const run = await cli(['drill', 'run', target, '--id', workflowId, '--as', 'carol@example.com'], w.options.taskQueue);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, new RegExp(`Restore drill PASSED: ${target}, backup ${backupId} \\(directory, primary region`));
      const { report } = (await env.client.workflow.getHandle(workflowId).result()) as RestoreDrillResult;
      assert.equal(report.target.kind, 'directory');
      assert.deepEqual(report.validations.map((c) => [c.name, c.ok]), [['manifest', true], ['critical-files', true], ['syntax-check', true]]);
      assert.match(report.restoredInto.name, /lifeboat-drill-/);
      assert.equal(fs.existsSync(report.restoredInto.name), false);
      assert.match(report.steps.find((st) => st.phase === 'cleaning-up')!.detail, /removed \S+, which this run made/);
    });
  });
});
