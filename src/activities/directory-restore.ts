/**
 * Activities of the directoryRestore workflow (src/workflows/directory-restore.ts).
 *
 * Central: choose the backup from the catalog. On the directory's host: inspect the destination
 * (refusals before anything is made), restore into a staging directory next to the destination
 * (named and marked with the run id), verify it (every file's SHA-256, modes, owners, mtimes,
 * critical files, the syntax check), commit (a new directory: one rename; in place: each listed
 * entry moved into place, what it replaces moved into an undo directory first), verify the
 * destination, and remove the staging directory only when it carries this run's mark.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { DirectoryTarget, findDirectoryTarget } from '../config';
import { LifeboatError } from '../domain/errors';
import {
  DirectoryCheck,
  DirectoryEntry,
  DirectoryRestoreInput,
  firstFew,
  STAGING_MARK_FILE,
  ValidatedDirectoryRestore,
} from '../domain/directory-backup';
import { DIRECTORY_DRILL_PREFIX, DirectoryDrillOwner, DRILL_OWNER_FILE } from '../domain/directory-drill';
import { applyAttributes, compareTree, extractArchive, mtimeToSet, readManifest, sha256OfFile } from '../engines/directory-archive';
import { loadEncryptionKey } from '../engines/crypto-stream';
import { directoryBinding, openArchive } from './directory-backup';
import { activityCancellationSignal } from '../platform/processes';
import { withHeartbeats } from './heartbeat';
import { Ports } from './ports';

type ChosenBackup = Pick<ValidatedDirectoryRestore, 'backupId' | 'catalogId' | 'takenAt' | 'from'>;

const refuse = (sentence: string) => new LifeboatError(sentence, 'RESTORE_REFUSED');

interface DirectoryRow {
  id: string;
  engine_backup_id: string;
  completed_at: Date | null;
  locations: { primary?: { store: string; bucket: string; key: string; failed?: boolean } };
  checksums: { sha256?: string; manifestSha256?: string; keyId?: string };
}

/** In an in-place restore's undo directory: one JSON line per entry moved, written before the move. */
export const UNDO_JOURNAL_FILE = '.lifeboat-undo-journal';

/** What an earlier attempt of the commit moved, from its journal (none when there is no journal). */
export async function readUndoJournal(file: string): Promise<{ overwritten: string[]; created: string[] }> {
  const out = { overwritten: [] as string[], created: [] as string[] };
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    // A line cut short by the kill is not a move that happened: the retry writes it again.
    let row: { overwritten?: string; created?: string };
    try {
      row = JSON.parse(line) as typeof row;
    } catch {
      continue;
    }
    if (typeof row.overwritten === 'string') out.overwritten.push(row.overwritten);
    if (typeof row.created === 'string') out.created.push(row.created);
  }
  return out;
}

/** Whether what is at `p` (lstat `st`) is the manifest's entry: type, content or link, mode, owner, mtime. */
async function sameAsEntry(p: string, st: fs.Stats, e: DirectoryEntry, owners: boolean): Promise<boolean> {
  if (e.type === 'file' ? !st.isFile() : e.type === 'symlink' ? !st.isSymbolicLink() : !st.isDirectory()) return false;
  if (owners && (st.uid !== e.uid || st.gid !== e.gid)) return false;
  if (e.type !== 'symlink' && (st.mode & 0o7777) !== e.mode) return false;
  if (e.type === 'dir') return true;
  if (Number((await fsp.lstat(p, { bigint: true })).mtimeNs / 1000000n) !== e.mtimeMs) return false;
  if (e.type === 'symlink') return (await fsp.readlink(p)) === e.linkTarget;
  return st.size === e.size && (await sha256OfFile(p)).sha256 === e.sha256;
}

function runOf(): { workflowId: string; runId: string } {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new LifeboatError('a directory restore belongs to a workflow run, and this activity was called outside one.', 'NO_WORKFLOW_RUN');
  return { workflowId: run.workflowId, runId: run.runId };
}

/** The staging directory of a run: next to the destination, hidden, named after the run. */
export function stagingPathFor(destination: string, runId: string): string {
  return path.join(path.dirname(destination), `.${path.basename(destination)}.lifeboat-restore-${runId.replace(/[^A-Za-z0-9-]/g, '').slice(0, 36)}`);
}

async function isEmptyOrMissing(dir: string): Promise<'missing' | 'empty' | 'not-empty' | 'not-a-directory'> {
  try {
    const st = await fsp.lstat(dir);
    if (!st.isDirectory()) return 'not-a-directory';
    return (await fsp.readdir(dir)).length ? 'not-empty' : 'empty';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
}

/** Whether the staging directory carries `runId`'s mark. */
async function carriesMark(staging: string, runId: string): Promise<boolean> {
  try {
    return (await fsp.readFile(path.join(staging, STAGING_MARK_FILE), 'utf8')).trim() === runId;
  } catch {
    return false;
  }
}

/** Runs the syntax check against `dir`: exit 0 passes; the last lines of its output. */
async function runSyntaxCheck(command: string[], dir: string, timeoutMs: number): Promise<{ ok: boolean; detail: string; output: string }> {
  const argv = command.map((a) => a.split('{dir}').join(dir));
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(argv[0], argv.slice(1), {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', LANG: process.env.LANG ?? 'C', LIFEBOAT_RESTORED_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const take = (b: Buffer) => (output = (output + b.toString('utf8')).slice(-8000));
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: `${argv[0]} could not be run (${(err as NodeJS.ErrnoException).code ?? err.message})`, output });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const tail = output.trim().split('\n').slice(-20).join('\n');
      resolve({ ok: code === 0, detail: signal ? `${argv.join(' ')} was killed (${signal}) after ${timeoutMs} ms` : `${argv.join(' ')} exited ${code}`, output: tail });
    });
  });
}

export function directoryRestoreActivities(ports: Ports) {
  const { config } = ports;
  const chownable = () => process.getuid?.() === 0;

  const verifyTree = async (plan: ValidatedDirectoryRestore, dir: string, entries: DirectoryEntry[]): Promise<{ checks: DirectoryCheck[]; output?: string }> => {
    const checks: DirectoryCheck[] = [];
    const owners = chownable();
    const diffs = await compareTree(dir, entries, { owners });
    checks.push({
      name: 'manifest',
      ok: diffs.length === 0,
      detail: diffs.length
        ? `${diffs.length} entries differ: ${firstFew(diffs.map((d) => `${d.path} ${d.what}`), 5)}`
        : `${entries.length} entries match the manifest: SHA-256 of every file, modes, mtimes${owners ? ', owners' : ' (owners not compared: the worker is not root, so it cannot set them)'}`,
    });
    const missing = [];
    for (const f of plan.criticalFiles) if (!fs.existsSync(path.join(dir, f))) missing.push(f);
    checks.push({ name: 'critical-files', ok: missing.length === 0, detail: missing.length ? `missing: ${firstFew(missing, 5)}` : `${plan.criticalFiles.length} present` });
    let output: string | undefined;
    if (plan.syntaxCheck) {
      const r = await runSyntaxCheck(plan.syntaxCheck.command, dir, plan.syntaxCheck.timeoutMs);
      checks.push({ name: 'syntax-check', ok: r.ok, detail: r.detail });
      output = r.output;
    }
    return { checks, output };
  };

  const manifestOf = async (plan: ValidatedDirectoryRestore, t: DirectoryTarget) => {
    const { plain } = await openArchive(ports.objectStore(plan.from.store), plan.from, loadEncryptionKey(t.encryptionKey), directoryBinding(plan.target, plan.backupId));
    try {
      return await readManifest(plain);
    } finally {
      plain.destroy();
    }
  };

  return {
    /** Central: the verified backup asked for (id, catalog id or latest) from the catalog; a wrong one is refused in one sentence. */
    async chooseDirectoryBackup(input: DirectoryRestoreInput): Promise<ChosenBackup> {
      const t = findDirectoryTarget(config, input.target);
      const rows = (
        await ports.catalog.query<DirectoryRow>(
          "SELECT id::text, engine_backup_id, completed_at, locations, checksums FROM backups WHERE target = $1 AND status = 'verified' AND backup_type = 'directory' ORDER BY completed_at DESC NULLS LAST",
          [t.name],
        )
      ).filter((r) => r.locations.primary?.key && !r.locations.primary.failed && r.completed_at);
      if (!rows.length) throw refuse(`${t.name} has no verified directory backup to restore from: take one first (lifeboat backup ${t.name}).`);
      const row = input.backup === 'latest' ? rows[0] : rows.find((r) => r.engine_backup_id === input.backup || r.id === input.backup);
      if (!row) throw refuse(`${t.name} has no verified directory backup "${input.backup}": pick one from \`lifeboat backups list --target ${t.name}\`, or --backup latest.`);
      const l = row.locations.primary!;
      return {
        backupId: row.engine_backup_id,
        catalogId: row.id,
        takenAt: row.completed_at!.toISOString(),
        from: { store: l.store, bucket: l.bucket, key: l.key, sha256: row.checksums.sha256 ?? '', manifestSha256: row.checksums.manifestSha256 ?? '', keyId: row.checksums.keyId ?? '' },
      };
    },

    /**
     * On the host: the destination and what the restore will do there, decided before anything
     * is written. A new directory must not exist or be empty; in place, the manifest is compared
     * with the directory as it is now (what is overwritten, written where missing, equal).
     */
    async inspectDirectoryRestore(input: DirectoryRestoreInput, chosen: ChosenBackup): Promise<ValidatedDirectoryRestore> {
      const t = findDirectoryTarget(config, input.target);
      const { workflowId, runId } = runOf();
      let into: ValidatedDirectoryRestore['into'];
      if (input.drill) into = { kind: 'drill', path: path.join(os.tmpdir(), `${DIRECTORY_DRILL_PREFIX}${t.name}-${runId.slice(0, 8)}`) };
      else if (input.destination.kind === 'in-place') into = { kind: 'in-place', path: t.path };
      else {
        const dest = path.resolve(input.destination.path ?? `${t.path}.restored-${workflowId.replace(/[^A-Za-z0-9._-]+/g, '-').slice(-40)}`);
        const state = await isEmptyOrMissing(dest);
        if (state === 'not-empty' || state === 'not-a-directory') throw refuse(`${dest} exists and is ${state === 'not-empty' ? 'not empty' : 'not a directory'}, so the restore will not write there: give --into a new or empty directory, or --in-place to restore over ${t.path} behind the gate.`);
        if (path.resolve(dest) === path.resolve(t.path)) throw refuse(`${dest} is the directory of ${t.name} itself: restore over it with --in-place (behind the gate), or give --into another directory.`);
        if (!fs.existsSync(path.dirname(dest))) throw refuse(`the parent of ${dest} does not exist: create ${path.dirname(dest)} first, or give --into a path in an existing directory.`);
        into = { kind: 'new-dir', path: dest };
      }
      const staging = into.kind === 'drill' ? into.path : stagingPathFor(into.path, runId);
      const timings = {
        remindAfterMs: input.timings?.remindAfterMs ?? config.approvals.remindAfter * 1000,
        abortAfterMs: input.timings?.abortAfterMs ?? config.approvals.abortAfter * 1000,
        ...(input.timings?.heartbeatMs ? { heartbeatMs: input.timings.heartbeatMs } : {}),
      };
      const plan: ValidatedDirectoryRestore = {
        target: t.name,
        environment: t.environment,
        ...chosen,
        into,
        staging,
        files: 0,
        bytes: 0,
        criticalFiles: [...t.criticalFiles],
        ...(t.syntaxCheck ? { syntaxCheck: { command: [...t.syntaxCheck.command], timeoutMs: t.syntaxCheck.timeout * 1000 } } : {}),
        timings,
      };
      const manifest = await withHeartbeats(() => ({ phase: 'reading the backup\'s manifest' }), () => manifestOf(plan, t));
      const files = manifest.entries.filter((e) => e.type === 'file');
      plan.files = files.length;
      plan.bytes = files.reduce((n, e) => n + (e.size ?? 0), 0);
      if (into.kind === 'in-place') {
        if ((await isEmptyOrMissing(t.path)) === 'not-a-directory') throw refuse(`${t.path} is not a directory, so nothing can be restored in place there: restore --into a new directory instead.`);
        const overwrite: string[] = [];
        const create: string[] = [];
        let unchanged = 0;
        // Hashing what is there now can take a while on a big directory: heartbeats keep the step alive.
        await withHeartbeats(() => ({ phase: `comparing ${t.path} with the backup`, compared: overwrite.length + create.length + unchanged }), async () => {
          for (const e of manifest.entries) {
            if (e.path === '.') continue;
            const here = path.join(t.path, e.path);
            let st: fs.Stats | undefined;
            try {
              st = await fsp.lstat(here);
            } catch {
              st = undefined;
            }
            if (!st) create.push(e.path);
            // A directory keeps its content: only its owner, mode and mtime are set again.
            else if (e.type === 'dir' ? st.isDirectory() : await sameAsEntry(here, st, e, chownable())) unchanged++;
            else overwrite.push(e.path);
          }
        });
        plan.inPlace = { overwrite, create, unchanged, backupDir: path.join(path.dirname(t.path), `.${path.basename(t.path)}.lifeboat-undo-${runId.slice(0, 36)}`) };
      }
      return plan;
    },

    /** On the host: the archive written into the staging directory (made and marked with this run's id first; an earlier attempt's is cleared). */
    async restoreDirectoryToStaging(plan: ValidatedDirectoryRestore): Promise<{ files: number; bytes: number }> {
      const t = findDirectoryTarget(config, plan.target);
      const { workflowId, runId } = runOf();
      if (fs.existsSync(plan.staging)) {
        if (!(await carriesMark(plan.staging, runId))) throw refuse(`${plan.staging} exists and does not carry this run's mark, so it is left alone: remove it by hand if nothing needs it, then restore again.`);
        // An earlier attempt of this run: start over.
        await fsp.rm(plan.staging, { recursive: true, force: true });
      }
      await fsp.mkdir(plan.staging, { mode: 0o700 });
      await fsp.writeFile(path.join(plan.staging, STAGING_MARK_FILE), runId);
      // A drill's scratch directory also says whose it is, so the drill sweeper can ask Temporal about that run if the drill never removes it.
      if (plan.into.kind === 'drill') {
        const owner: DirectoryDrillOwner = { workflowId, runId, target: plan.target, createdAt: new Date().toISOString() };
        await fsp.writeFile(path.join(plan.staging, DRILL_OWNER_FILE), JSON.stringify(owner));
      }
      let bytes = 0;
      return withHeartbeats(
        () => ({ phase: 'restoring into the staging directory', bytes, bytesTotal: plan.bytes }),
        async () => {
          const { plain } = await openArchive(ports.objectStore(plan.from.store), plan.from, loadEncryptionKey(t.encryptionKey), directoryBinding(plan.target, plan.backupId));
          const r = await extractArchive(plain, plan.staging, { chown: chownable(), onFile: (b) => (bytes = b), signal: activityCancellationSignal() });
          if (r.mismatches.length) throw new LifeboatError(`The restored files ${firstFew(r.mismatches, 5)} do not match the manifest's SHA-256: the backup is damaged, so restore from another one.`, 'VERIFICATION_FAILED');
          return { files: r.files, bytes: r.bytes };
        },
        plan.timings.heartbeatMs ?? 5000,
      );
    },

    /** On the host: the staging directory (or, after commit, the destination) against the manifest, the critical files and the syntax check. */
    async verifyRestoredDirectory(plan: ValidatedDirectoryRestore, where: 'staging' | 'destination'): Promise<{ checks: DirectoryCheck[]; output?: string }> {
      const t = findDirectoryTarget(config, plan.target);
      const manifest = await manifestOf(plan, t);
      const dir = where === 'staging' ? plan.staging : plan.into.path;
      // The staging directory's mark is not in the manifest: compare only what it lists.
      return withHeartbeats(() => ({ phase: `verifying ${dir}` }), () => verifyTree(plan, dir, manifest.entries));
    },

    /**
     * On the host: a new directory is the staging one renamed (the mark removed just before); in
     * place, every entry the manifest lists that differs is moved into place, what it replaces
     * first moved into the undo directory. Only what the manifest lists is touched.
     */
    async commitDirectoryRestore(plan: ValidatedDirectoryRestore): Promise<{ overwritten: string[]; created: string[]; undoDir?: string }> {
      const t = findDirectoryTarget(config, plan.target);
      const { runId } = runOf();
      if (plan.into.kind === 'new-dir') {
        const dest = plan.into.path;
        const rootEntry = (await manifestOf(plan, t)).entries.find((e) => e.path === '.');
        if (fs.existsSync(plan.staging)) {
          if (!(await carriesMark(plan.staging, runId))) throw new LifeboatError(`${plan.staging} does not carry this run's mark, so it is not moved into place; restore again.`, 'STAGING_NOT_OURS');
          const state = await isEmptyOrMissing(dest);
          if (state === 'not-empty' || state === 'not-a-directory') throw refuse(`${dest} was made by someone else while the restore ran, so it is left alone and the restored copy is removed: restore again into another directory.`);
          if (state === 'empty') await fsp.rmdir(dest);
          // Renamed with its mark still inside: a worker killed right after finds the mark in the
          // destination and knows the directory is this run's (removed below, on this or the retry).
          await fsp.rename(plan.staging, dest);
        } else if (!(await carriesMark(dest, runId))) {
          // No staging directory and no mark in the destination: an earlier attempt finished, or it is not ours.
          if (fs.existsSync(dest)) return { overwritten: [], created: [dest] };
          throw new LifeboatError(`${plan.staging} is gone and ${dest} does not exist: the restored copy was removed while the restore ran; restore again.`, 'STAGING_NOT_OURS');
        }
        await fsp.rm(path.join(dest, STAGING_MARK_FILE), { force: true });
        if (rootEntry) await fsp.utimes(dest, mtimeToSet(rootEntry.mtimeMs), mtimeToSet(rootEntry.mtimeMs));
        return { overwritten: [], created: [dest] };
      }
      if (plan.into.kind !== 'in-place' || !plan.inPlace) return { overwritten: [], created: [] };
      const manifest = await manifestOf(plan, t);
      const undo = plan.inPlace.backupDir;
      await fsp.mkdir(undo, { recursive: true, mode: 0o700 });
      // The journal: each move is written down before it is made, so a retry after a killed worker
      // reports what the first attempt already moved (which the retry itself finds equal and skips).
      const journal = path.join(undo, UNDO_JOURNAL_FILE);
      const done = await readUndoJournal(journal);
      const overwritten = new Set(done.overwritten);
      const created = new Set(done.created);
      const note = async (what: 'overwritten' | 'created', p: string) => {
        if ((what === 'overwritten' ? overwritten : created).has(p)) return;
        (what === 'overwritten' ? overwritten : created).add(p);
        await fsp.appendFile(journal, `${JSON.stringify({ [what]: p })}\n`);
      };
      const chown = chownable();
      await withHeartbeats(
        () => ({ phase: `moving the restored entries into ${t.path}`, overwritten: overwritten.size, created: created.size }),
        async () => {
          // Parents before children (the manifest's order): directories made first, files and links moved in.
          for (const e of manifest.entries) {
            if (e.path === '.') continue;
            const dest = path.join(t.path, e.path);
            const staged = path.join(plan.staging, e.path);
            let st: fs.Stats | undefined;
            try {
              st = await fsp.lstat(dest);
            } catch {
              st = undefined;
            }
            if (e.type === 'dir') {
              if (st && !st.isDirectory()) {
                await note('overwritten', e.path);
                await fsp.mkdir(path.dirname(path.join(undo, e.path)), { recursive: true });
                await fsp.rename(dest, path.join(undo, e.path));
                st = undefined;
              }
              if (!st) {
                await note('created', e.path);
                await fsp.mkdir(dest, { mode: 0o700 });
              }
              continue;
            }
            if (!(await fsp.lstat(staged).catch(() => undefined))) continue; // moved by an earlier attempt (in the journal)
            if (st) {
              if (await sameAsEntry(dest, st, e, chown)) continue;
              await note('overwritten', e.path);
              const kept = path.join(undo, e.path);
              await fsp.mkdir(path.dirname(kept), { recursive: true });
              if (!(await fsp.lstat(kept).catch(() => undefined))) await fsp.rename(dest, kept);
              else await fsp.rm(dest, { recursive: true, force: true });
            } else await note('created', e.path);
            await fsp.rename(staged, dest);
          }
        },
      );
      // Directories' owners, modes and mtimes (and the directory's own) last, deepest first.
      await applyAttributes(t.path, manifest.entries.filter((e) => e.type === 'dir'), chown);
      await fsp.rm(plan.staging, { recursive: true, force: true });
      if (!overwritten.size) await fsp.rm(undo, { recursive: true, force: true });
      return { overwritten: [...overwritten], created: [...created], ...(overwritten.size ? { undoDir: undo } : {}) };
    },

    /** Compensation (and a drill's end): the staging or scratch directory removed, only when it carries this run's mark. */
    async removeDirectoryStaging(plan: ValidatedDirectoryRestore): Promise<string> {
      const { runId } = runOf();
      if (!fs.existsSync(plan.staging)) return `nothing to remove: ${plan.staging} does not exist`;
      if (!(await carriesMark(plan.staging, runId))) return `${plan.staging} left alone: it does not carry this run's mark`;
      await withHeartbeats(() => ({ phase: `removing ${plan.staging}` }), () => fsp.rm(plan.staging, { recursive: true, force: true }));
      return `removed ${plan.staging}, which this run made`;
    },
  };
}
