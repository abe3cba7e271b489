/**
 * SQLite targets (`targets.sqlite`): pre-operation backups of a database file and restores of
 * them to a NEW path. Pure types and rules shared by the CLI, the workflows (sqliteBackup,
 * sqliteRestore) and their activities. JSON-safe; keys are referred to by id only.
 *
 * A backup is an online copy made with SQLite's backup API inside one read transaction (so a
 * writer in WAL mode keeps writing and the copy is one consistent snapshot), checked with
 * `PRAGMA integrity_check`, its rows counted per table, then gzip, lifeboat-enc-v2 bound to
 * kind `sqlite`, the target and the backup name, uploaded to both regions and read back.
 */
import type { Decision } from './approval';

/** The object key of a backup: `<prefix><target>/<backup name>.sqlite.gz.enc`. */
export const SQLITE_OBJECT_SUFFIX = '.sqlite.gz.enc';
export function sqliteBackupKey(prefix: string, target: string, backupName: string): string {
  return `${prefix}${target}/${backupName}${SQLITE_OBJECT_SUFFIX}`;
}

/** What each object's authenticated header binds it to (docs/encryption.md). */
export function sqliteBinding(target: string, backupName: string): { kind: string; target: string; backupName: string } {
  return { kind: 'sqlite', target, backupName };
}

/** Catalog `backup_type` and `engine` of a SQLite backup. */
export const SQLITE_BACKUP_TYPE = 'sqlite';
export const SQLITE_ENGINE = 'sqlite3';

export interface SqliteBackupInput {
  target: string;
  requestedBy?: string;
  /** Heartbeat interval of the long steps, in ms (tests). */
  heartbeatMs?: number;
}

export interface SqliteLocation {
  store: string;
  bucket: string;
  prefix: string;
  key: string;
}

export interface SqliteBackupPlan {
  target: string;
  environment: string;
  backupName: string;
  /** The database file. */
  path: string;
  primary: SqliteLocation;
  dr: SqliteLocation;
}

/** One stored, encrypted copy. */
export interface SqliteStoredCopy {
  store: string;
  bucket: string;
  key: string;
  versionId?: string;
  /** Bytes stored (encrypted) and their SHA-256. */
  sizeBytes: number;
  sha256: string;
  keyId: string;
  createdAt: string;
}

/** What the online copy was, recorded with the backup: restores and drills compare against it. */
export interface SqliteSnapshotFacts {
  /** Bytes of the database copy and their SHA-256 (what a restore writes, byte for byte). */
  databaseBytes: number;
  databaseSha256: string;
  /** `PRAGMA integrity_check` of the copy: `ok`. */
  integrity: string;
  /** Rows per table of the copy (the source as it was at the snapshot). */
  tables: Record<string, number>;
  journalMode: string;
}

export interface SqliteBackupResult extends SqliteStoredCopy, SqliteSnapshotFacts {}

export interface SqliteCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface SqliteCopyVerification {
  ok: boolean;
  store: string;
  key: string;
  checks: SqliteCheck[];
}

export type SqliteBackupOutcome = 'verified' | 'failed' | 'cancelled';

export interface SqliteBackupReport {
  workflowId: string;
  target: string;
  outcome: SqliteBackupOutcome;
  backupName?: string;
  primary?: SqliteBackupResult;
  dr?: SqliteStoredCopy;
  verifications: SqliteCopyVerification[];
  catalogId?: string;
  failure?: string;
}

// ----- restore ------------------------------------------------------------------------------

export interface SqliteRestoreInput {
  target: string;
  /** Catalog id, backup name, or `latest` (the newest verified backup of the target). */
  backup: string;
  /** The NEW file to restore into (absolute; must not exist; never the source). */
  into: string;
  /** Read the backup from the DR region's copy. */
  fromRegion?: 'primary' | 'dr';
  requestedBy: string;
  reason: string;
  /** Overrides of the gate timings and heartbeat interval, in ms (tests). */
  timings?: { remindAfterMs?: number; abortAfterMs?: number; heartbeatMs?: number };
}

export interface ChosenSqliteBackup {
  catalogId: string;
  backupName: string;
  store: string;
  bucket: string;
  key: string;
  versionId?: string;
  createdAt: string;
  sizeBytes: number;
  keyId: string;
  databaseBytes: number;
  databaseSha256: string;
  tables: Record<string, number>;
}

export interface ValidatedSqliteRestore {
  target: string;
  environment: string;
  workflowId: string;
  backup: ChosenSqliteBackup;
  /** The source file: never written. */
  source: string;
  into: string;
  /** Where the restore writes first: beside `into`, named after this run; renamed to `into` only once checked. */
  tempPath: string;
  timings: { remindAfterMs: number; abortAfterMs: number; heartbeatMs: number };
}

export interface SqliteRestoreDone {
  path: string;
  bytes: number;
  sha256: string;
  durationMs: number;
  checks: SqliteCheck[];
  /** True when an earlier attempt of this run had already put the checked file in place. */
  adopted: boolean;
}

export type SqliteRestoreOutcome = 'restored' | 'rejected' | 'expired' | 'failed' | 'verification-failed' | 'cancelled';

export interface SqliteRestoreReport {
  workflowId: string;
  outcome: SqliteRestoreOutcome;
  target: string;
  requestedBy: string;
  reason: string;
  backup?: ChosenSqliteBackup;
  into?: string;
  restored?: SqliteRestoreDone;
  decisions: Decision[];
  cleanup: string[];
  failure?: string;
  /** Seconds per phase. */
  phases: { validation: number; waitingForApproval: number; restore: number };
}

/** POSIX path helpers (domain code runs in workflows too, so no node:path): the file lives on a Linux host. */
export function normalizePath(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (!part || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}
function dirOf(p: string): string {
  const n = normalizePath(p);
  return n.slice(0, n.lastIndexOf('/')) || '/';
}
function baseOf(p: string): string {
  const n = normalizePath(p);
  return n.slice(n.lastIndexOf('/') + 1);
}

/** The marker in a restore's temporary file name: only files carrying this run's marker are ever removed. */
export function restoreMarker(workflowId: string): string {
  return `lifeboat-restore-${workflowId.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 120)}`;
}

/** The temporary file beside `into` a restore writes and checks before renaming it: `.<name>.<marker>.tmp`. */
export function restoreTempPath(into: string, workflowId: string): string {
  const dir = dirOf(into);
  return `${dir === '/' ? '' : dir}/.${baseOf(into)}.${restoreMarker(workflowId)}.tmp`;
}

/** SQLite's companion files of a database file (a WAL database's log and shared memory, a rollback journal). */
export function companionFiles(file: string): string[] {
  return [`${file}-wal`, `${file}-shm`, `${file}-journal`];
}

/**
 * Why `into` cannot be a restore's destination, judged on the path alone (the file system is
 * checked where the file lives), or undefined. `source` is the target's file.
 */
export function destinationProblem(into: string, source: string): string | undefined {
  if (!into.trim()) return '--into needs the path of a new file to restore into, such as /var/lib/app/restored.db.';
  if (!into.startsWith('/')) return `--into ${into} is not an absolute path: give the full path of a new file, such as ${dirOf(source)}/restored-${baseOf(source)}.`;
  if (into.endsWith('/') || baseOf(into) === '') return `--into ${into} names a directory: give the path of a new file inside it.`;
  const same = normalizePath(into) === normalizePath(source);
  const companion = companionFiles(normalizePath(source)).includes(normalizePath(into));
  if (same || companion) return `--into ${into} is the source database${companion ? "'s own companion file" : ''} of this target: a restore never writes over its source, so give a new path.`;
  return undefined;
}

/** Counts as recorded at backup time against the restored file's: one check per table, plus tables the other side lacks. */
export function compareTableCounts(expected: Record<string, number>, actual: Record<string, number>): SqliteCheck[] {
  const checks: SqliteCheck[] = [];
  for (const [table, n] of Object.entries(expected).sort(([a], [b]) => a.localeCompare(b))) {
    const got = actual[table];
    if (got === undefined) checks.push({ name: `rows in ${table}`, ok: false, detail: `the table is missing (the backup recorded ${n} rows)` });
    else checks.push({ name: `rows in ${table}`, ok: got === n, detail: got === n ? `${got}, as at backup time` : `${got}, but ${n} at backup time` });
  }
  for (const table of Object.keys(actual).sort()) {
    if (!(table in expected)) checks.push({ name: `rows in ${table}`, ok: false, detail: `the table was not in the backup's records (${actual[table]} rows)` });
  }
  return checks;
}

/** `PRAGMA integrity_check` output as a check: it passes only when the whole answer is `ok`. */
export function integrityCheck(output: string): SqliteCheck {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const ok = lines.length === 1 && lines[0] === 'ok';
  return { name: 'integrity_check', ok, detail: ok ? 'ok' : `${lines.slice(0, 5).join('; ') || 'no answer'}${lines.length > 5 ? ` and ${lines.length - 5} more problems` : ''}` };
}
