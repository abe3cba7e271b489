/**
 * Activities of the SQLite restore drill (src/workflows/sqlite-drill.ts): choosing the verified
 * SQLite backup, making the drill's scratch directory on the target's host (marked with the run
 * before it gets its name), restoring the backup into it and checking it, and removing it; and,
 * for the drill sweeper, listing scratch directories and removing one whose mark names a run.
 * Everything that touches the host's files runs there (SQLITE_DRILL_HOST_ACTIVITIES).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { findSqliteTarget, objectivesFor, SqliteTarget } from '../config';
import type { DrillSelection, RestoreDrillInput } from '../domain/drill';
import type { DrillValidation } from '../domain/drill-report';
import type { DrillSqliteScratchResource } from '../domain/drill-sweep';
import { describeError, LifeboatError } from '../domain/errors';
import type { RunIdentity } from '../domain/ports';
import { compareTableCounts, SQLITE_BACKUP_TYPE } from '../domain/sqlite';
import {
  checkQueryPasses,
  parseSqliteDrillMark,
  SQLITE_DRILL_FILE,
  SQLITE_DRILL_MARK,
  SQLITE_DRILL_METHODS,
  SqliteDrillMark,
  SqliteDrillScratch,
  SqliteDrillSource,
  sqliteDrillDirName,
} from '../domain/sqlite-drill';
import { loadEncryptionKey } from '../engines/crypto-stream';
import { checkIntegrity, countRows, readOnlyQuery, SqliteEngine } from '../engines/sqlite';
import { withHeartbeats } from './heartbeat';
import { Ports } from './ports';

type Region = 'primary' | 'dr';
const DAY_MS = 86400000;
/** Failures of decryption itself (the object altered, swapped or under an unknown key), as opposed to reaching the store. */
const DECRYPTION_FAILURES = new Set(['BACKUP_DAMAGED', 'BACKUP_MISMATCH', 'WRONG_KEY', 'NOT_A_BACKUP', 'UNSUPPORTED_FORMAT']);

interface SqliteBackupRow {
  id: string;
  engine_backup_id: string;
  completed_at: Date | null;
  size_bytes: string | null;
  locations: Partial<Record<Region, { store: string; bucket: string; key: string; versionId?: string; failed?: boolean }>>;
  checksums: Record<string, string>;
  details: { tables?: Record<string, number>; databaseBytes?: number };
}

function runOf(): RunIdentity {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new LifeboatError('a SQLite drill scratch directory belongs to a workflow run, and this activity was called outside one.', 'NO_WORKFLOW_RUN');
  return { workflowId: run.workflowId, runId: run.runId };
}

/** The SQLite drill objectives: a SQLite file is a database (objectives.database). */
export function sqliteObjectives(config: Ports['config'], target: SqliteTarget): { rpo: number; rto: number } {
  return objectivesFor(config, target);
}

/** The verified SQLite backup a drill proves: the newest, one at random within a window, or one by catalog id or backup name. */
export async function selectSqliteDrillBackup(ports: Ports, input: RestoreDrillInput): Promise<DrillSelection> {
  const { config } = ports;
  const target = findSqliteTarget(config, input.target);
  const region: Region = input.fromRegion ?? 'primary';
  const rows = await ports.catalog.query<SqliteBackupRow>(
    `SELECT id::text AS id, engine_backup_id, completed_at, size_bytes::text AS size_bytes, locations, checksums, details FROM backups
      WHERE target = $1 AND backup_type = $2 AND status = 'verified' ORDER BY completed_at DESC NULLS LAST, id DESC`,
    [target.name, SQLITE_BACKUP_TYPE],
  );
  const usable = rows.filter((r) => {
    const l = r.locations[region];
    return !!l?.key && !l.failed && !!r.completed_at;
  });
  const objectives = sqliteObjectives(config, target);
  const describe = (row: SqliteBackupRow, selectedBy: string, candidates: number): DrillSelection => {
    const l = row.locations[region]!;
    const sqlite: SqliteDrillSource = {
      store: l.store,
      bucket: l.bucket,
      key: l.key,
      ...(l.versionId ? { versionId: l.versionId } : {}),
      backupName: row.engine_backup_id,
      storedSha256: row.checksums.sha256 ?? '',
      databaseSha256: row.checksums.databaseSha256 ?? '',
      databaseBytes: Number(row.details.databaseBytes ?? 0),
      tables: row.details.tables ?? {},
      scratchDir: target.drill.scratchDir,
      checks: target.drill.checks.map(({ name, sql }) => ({ name, sql })),
      rtoObjectiveSeconds: objectives.rto,
    };
    return {
      kind: 'sqlite',
      backupId: row.engine_backup_id,
      catalogId: row.id,
      type: SQLITE_BACKUP_TYPE,
      region,
      takenAt: row.completed_at!.toISOString(),
      ...(row.size_bytes ? { sizeBytes: Number(row.size_bytes) } : {}),
      selectedBy,
      candidates,
      target: { name: target.name, engine: 'sqlite3', environment: target.environment },
      rpoObjectiveSeconds: objectives.rpo,
      sqlite,
    };
  };
  if (!usable.length) {
    throw new LifeboatError(`${target.name} has no verified SQLite backup in the ${region} region to drill; take one (lifeboat backup ${target.name} --wait) and drill again.`, 'NO_BACKUP_TO_DRILL');
  }
  const choice = input.backup ?? 'latest';
  if (choice === 'latest') return describe(usable[0], 'as the newest verified backup', usable.length);
  if (choice === 'random') {
    const days = input.randomWithinDays ?? 30;
    const recent = usable.filter((r) => Date.now() - r.completed_at!.getTime() <= days * DAY_MS);
    if (!recent.length) {
      throw new LifeboatError(`${target.name} has no verified SQLite backup from the last ${days} days in the ${region} region to drill at random; take a backup, or drill --backup latest.`, 'NO_BACKUP_TO_DRILL');
    }
    // Chosen here, once: the workflow's history keeps the choice, so a replay restores the same one.
    return describe(recent[Math.floor(Math.random() * recent.length)], `at random among the ${recent.length} verified backups of the last ${days} days`, recent.length);
  }
  const named = usable.find((r) => r.engine_backup_id === choice || r.id === choice);
  if (!named) {
    throw new LifeboatError(`${target.name} has no verified SQLite backup "${choice}" in the ${region} region; pick one from \`lifeboat backups list --target ${target.name}\`, or drill --backup latest.`, 'NO_BACKUP_TO_DRILL');
  }
  return describe(named, 'by its id', usable.length);
}

async function readMark(dir: string): Promise<SqliteDrillMark | undefined> {
  const text = await fs.readFile(path.join(dir, SQLITE_DRILL_MARK), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseSqliteDrillMark(text);
}

const sameRun = (m: SqliteDrillMark | undefined, run: RunIdentity) => !!m && m.workflowId === run.workflowId && m.runId === run.runId;

/** `<scratchDir>/drill-<workflow id>` and the hidden name it is made under (marked there first, then renamed). */
function scratchPaths(source: SqliteDrillSource, workflowId: string): { dir: string; making: string } {
  const name = sqliteDrillDirName(workflowId);
  return { dir: path.join(source.scratchDir, name), making: path.join(source.scratchDir, `.${name}.making`) };
}

/**
 * Removes a scratch directory whose mark names `owner`: the directory and what is in it, nothing
 * else. Returns what happened; throws when the directory there is not that run's.
 */
export async function removeMarkedScratch(dir: string, owner: RunIdentity): Promise<string> {
  const st = await fs.lstat(dir).catch(() => undefined);
  if (!st) return `${dir} was already gone`;
  if (!st.isDirectory()) throw new LifeboatError(`${dir} is not a directory, so it is not a SQLite drill's scratch directory; lifeboat leaves it alone.`, 'DRILL_SCRATCH_NOT_OURS');
  const mark = await readMark(dir);
  if (!sameRun(mark, owner)) {
    throw new LifeboatError(
      `${dir} is not marked as made by run ${owner.runId} of ${owner.workflowId}${mark ? ` (its mark names run ${mark.runId} of ${mark.workflowId})` : ' (it carries no lifeboat mark)'}; lifeboat leaves it alone.`,
      'DRILL_SCRATCH_NOT_OURS',
    );
  }
  const entries = await fs.readdir(dir);
  await fs.rm(dir, { recursive: true, force: true });
  return `removed ${dir} (${entries.length} entries: ${entries.sort().join(', ')})`;
}

/** The drill scratch directories in the scratch directories of `targets` (each directory listed once), with the run their mark names. */
export async function listSqliteDrillScratch(config: Ports['config'], targets: string[]): Promise<DrillSqliteScratchResource[]> {
  const found: DrillSqliteScratchResource[] = [];
  const seen = new Set<string>();
  for (const name of targets) {
    const target = findSqliteTarget(config, name);
    const scratchDir = path.resolve(target.drill.scratchDir);
    if (seen.has(scratchDir)) continue;
    seen.add(scratchDir);
    const entries = await fs.readdir(scratchDir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    for (const e of entries) {
      // Only directories named as a drill's: anything else there is not lifeboat's to judge.
      if (!e.isDirectory() || !e.name.startsWith('drill-')) continue;
      const mark = await readMark(path.join(scratchDir, e.name));
      const r: DrillSqliteScratchResource = { kind: 'sqlite-scratch', target: target.name, scratchDir, name: e.name, createdByLifeboat: !!mark };
      if (mark) r.owner = { workflowId: mark.workflowId, runId: mark.runId };
      found.push(r);
    }
  }
  return found;
}

export function sqliteDrillActivities(ports: Ports) {
  const { config } = ports;
  const sourceOf = (selection: DrillSelection): SqliteDrillSource => {
    if (!selection.sqlite) throw new LifeboatError(`backup ${selection.backupId} of ${selection.target.name} is not a SQLite backup, so it cannot be drilled into a scratch file.`, 'BAD_INPUT');
    return selection.sqlite;
  };

  return {
    /**
     * On the target's host: `<scratchDir>/drill-<workflow id>`, made under a hidden name derived
     * from the workflow id, marked with this run, then renamed, so the name never exists unmarked.
     * A retry of this run adopts it; one of that name marked by anything else is refused.
     */
    async createSqliteDrillScratch(selection: DrillSelection): Promise<SqliteDrillScratch> {
      const source = sourceOf(selection);
      const run = runOf();
      const { dir, making } = scratchPaths(source, run.workflowId);
      await fs.mkdir(source.scratchDir, { recursive: true, mode: 0o700 });
      if (await fs.lstat(dir).then(() => true, () => false)) {
        const mark = await readMark(dir);
        if (!sameRun(mark, run)) {
          throw new LifeboatError(`${dir} exists and is not this drill run's${mark ? ` (its mark names run ${mark.runId} of ${mark.workflowId})` : ''}; lifeboat leaves it alone: remove it by hand if it is unwanted, or drill again under another id.`, 'DRILL_SCRATCH_NOT_OURS');
        }
        return { dir, file: path.join(dir, SQLITE_DRILL_FILE), adopted: true };
      }
      // A hidden directory an attempt of this run left half made (its name is this workflow's).
      await fs.rm(making, { recursive: true, force: true });
      await fs.mkdir(making, { mode: 0o700 });
      const mark: SqliteDrillMark = { lifeboat: 'sqlite-drill', workflowId: run.workflowId, runId: run.runId, target: selection.target.name, createdAt: new Date().toISOString() };
      await fs.writeFile(path.join(making, SQLITE_DRILL_MARK), `${JSON.stringify(mark, null, 2)}\n`, { mode: 0o600 });
      await fs.rename(making, dir);
      return { dir, file: path.join(dir, SQLITE_DRILL_FILE), adopted: false };
    },

    /**
     * On the target's host: the backup downloaded, decrypted (bound to kind sqlite, the target and
     * the backup name) and decompressed into the scratch file, then checked: its bytes, integrity_check,
     * row counts against those recorded at backup time, the target's check queries. A check that
     * fails is a failed validation in the report; an object that does not decrypt fails the
     * decryption check and stops the checks that need the file.
     */
    async restoreSqliteDrill(selection: DrillSelection, scratch: SqliteDrillScratch, heartbeatMs?: number): Promise<{ bytes: number; validations: DrillValidation[] }> {
      const source = sourceOf(selection);
      const target = findSqliteTarget(config, selection.target.name);
      const run = runOf();
      if (!sameRun(await readMark(scratch.dir), run)) throw new LifeboatError(`${scratch.dir} is not marked as this drill run's; nothing is restored into it.`, 'DRILL_SCRATCH_NOT_OURS');
      // A retry starts the download over into the same file.
      for (const f of [scratch.file, `${scratch.file}-wal`, `${scratch.file}-shm`, `${scratch.file}-journal`]) await fs.rm(f, { force: true });
      const validations: DrillValidation[] = [];
      const timed = async (v: Omit<DrillValidation, 'seconds'>, started: number) => validations.push({ ...v, seconds: Math.round((Date.now() - started) / 1000) });
      let started = Date.now();
      let got: Awaited<ReturnType<SqliteEngine['download']>>;
      try {
        got = await withHeartbeats(
          () => ({ phase: 'downloading', into: scratch.file }),
          () =>
            new SqliteEngine(loadEncryptionKey(target.encryptionKey)).download(
              { s3: ports.objectStore(source.store), store: source.store, bucket: source.bucket, key: source.key, ...(source.versionId ? { versionId: source.versionId } : {}), target: target.name, backupName: source.backupName },
              scratch.file,
            ),
          heartbeatMs ?? 5000,
        );
      } catch (err) {
        const code = (err as LifeboatError).code;
        if (!DECRYPTION_FAILURES.has(code)) throw err;
        await timed({ name: 'decryption', method: SQLITE_DRILL_METHODS.decryption, ok: false, detail: describeError(err) }, started);
        return { bytes: 0, validations };
      }
      const storedOk = got.storedSha256 === source.storedSha256;
      await timed({ name: 'stored SHA-256', method: SQLITE_DRILL_METHODS.stored, ok: storedOk, detail: storedOk ? `${got.storedBytes} bytes as uploaded` : `${got.storedSha256.slice(0, 16)}…, but ${source.storedSha256.slice(0, 16)}… was uploaded` }, started);
      await timed({ name: 'decryption', method: SQLITE_DRILL_METHODS.decryption, ok: true, detail: `lifeboat-enc-v2, key ${got.keyId}, bound to sqlite/${target.name}/${source.backupName}` }, started);
      const dbOk = got.sha256 === source.databaseSha256;
      await timed({ name: 'database SHA-256', method: SQLITE_DRILL_METHODS.database, ok: dbOk, detail: dbOk ? `${got.bytes} bytes, byte for byte the online copy` : `${got.sha256.slice(0, 16)}… differs from the online copy's ${source.databaseSha256.slice(0, 16)}…` }, started);
      started = Date.now();
      const integrity = await checkIntegrity(scratch.file);
      await timed({ name: 'integrity_check', method: SQLITE_DRILL_METHODS.integrity, ok: integrity.ok, detail: integrity.detail }, started);
      started = Date.now();
      const counts = await countRows(scratch.file);
      for (const c of compareTableCounts(source.tables, counts)) await timed({ name: c.name, method: SQLITE_DRILL_METHODS.rows, ok: c.ok, detail: c.detail }, started);
      for (const q of source.checks) {
        started = Date.now();
        try {
          const verdict = checkQueryPasses(await readOnlyQuery(scratch.file, q.sql));
          await timed({ name: `check ${q.name}`, method: SQLITE_DRILL_METHODS.query, ok: verdict.ok, detail: verdict.detail }, started);
        } catch (err) {
          await timed({ name: `check ${q.name}`, method: SQLITE_DRILL_METHODS.query, ok: false, detail: describeError(err) }, started);
        }
      }
      return { bytes: got.bytes, validations };
    },

    /** On the target's host: the scratch directory removed, only when its mark names this run (and the hidden one this run may have left half made). */
    async removeSqliteDrillScratch(selection: DrillSelection): Promise<string> {
      const source = sourceOf(selection);
      const run = runOf();
      const { dir, making } = scratchPaths(source, run.workflowId);
      await fs.rm(making, { recursive: true, force: true });
      return removeMarkedScratch(dir, run);
    },

    /** For the drill sweeper, on the host: the drill scratch directories of these SQLite targets. */
    async findSqliteDrillScratch(targets: string[]): Promise<DrillSqliteScratchResource[]> {
      return listSqliteDrillScratch(config, targets);
    },
  };
}
