/**
 * The database backup workflow's inputs, results and catalog shape. Pure: shared by the
 * workflow (deterministic), the activities and the CLI.
 *
 * Catalog shape (decided here, documented in docs): ONE `backups` row per backup run (per
 * workflow), with one entry per region in `locations`:
 *
 *   engine_backup_id  the name lifeboat gave the backup (derived from the workflow id); stable
 *                     from the first moment, so every retried write lands on the same row
 *   locations         { primary: BackupLocation, dr?: BackupLocation }: each region's own
 *                     engine id (pgBackRest label / RDS snapshot id), locator (repoN / ARN),
 *                     size, times and whether that copy verified
 *   size_bytes        the primary copy's size; started/completed_at the primary copy's times
 *   status            running -> verified (both regions verified) | failed (with `failure`)
 *
 * One `verifications` row per region verified (subject `<region> <engine id>`), linked to the row.
 * A pgBackRest "copy" is a second backup set with its own label in the DR repository, and an RDS
 * copy is a snapshot with its own id in the DR region, so each region's entry carries its own id.
 */
import type { BackupHandle, BackupVerification, DatabaseEngineKind } from './ports';

export type DatabaseBackupKind = 'full' | 'diff' | 'incr';

export interface DatabaseBackupInput {
  target: string;
  /** Default `full` (what the schedule takes). RDS takes only full snapshots. */
  kind?: DatabaseBackupKind;
  /** How often the wait activities ask the engine for progress (default 5 s). */
  pollIntervalMs?: number;
  /**
   * A worker that stops heartbeating for this long is presumed dead and its activity retried
   * elsewhere (default 15 s: a worker killed mid-backup costs well under 20 s).
   */
  heartbeatTimeoutMs?: number;
  /** A running backup that does no work for this long is hung: stopped, and the run fails (default 10 min). */
  stallTimeoutMs?: number;
  /** Who or what asked: `schedule`, a person's identity. */
  requestedBy?: string;
}

export interface RpoStatus {
  /** Seconds. */
  rpoSeconds: number;
  /** When the newest verified backup of the target (any region) finished, from the catalog. */
  lastGoodBackupAt?: string;
  lastGoodBackupWorkflowId?: string;
  /** Seconds since then; undefined when there never was one. */
  ageSeconds?: number;
  /**
   * What the figure judged against the RPO is: `wal-archive` (continuous archiving: the data lost
   * now is what is not archived yet, `lagSeconds`) or `backup-age` (snapshot-only: `ageSeconds`).
   */
  basis: 'wal-archive' | 'backup-age';
  /** Seconds of writes not yet archived (wal-archive basis). */
  lagSeconds?: number;
  /** The newest recoverable point the archive holds (wal-archive basis). */
  recoverableUntil?: string;
  breached: boolean;
  /** One sentence for a person. */
  detail: string;
}

export interface BackupPreflight {
  target: string;
  environment: string;
  engine: DatabaseEngineKind;
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; detail: string }>;
  rpo: RpoStatus;
}

export interface BackupLocation {
  region: 'primary' | 'dr';
  handle: BackupHandle;
  sizeBytes?: number;
  startedAt?: string;
  completedAt?: string;
  verified?: boolean;
  verifiedAt?: string;
  /** This copy failed after the other was verified (a DR copy that broke): retention removes what it left. */
  failed?: boolean;
  /**
   * The DR copy's lag: seconds from the primary copy's completion to this copy's verification,
   * i.e. how long the DR region had no verified copy of this backup. DR locations only.
   */
  lagSeconds?: number;
  /** How the DR copy was made: the repository copied (source read once) or a second backup of the source. */
  copyMode?: 'repository-copy' | 'second-backup';
}

export type BackupRowStatus = 'running' | 'verified' | 'failed';

/** What the record activity writes: the whole row, idempotently keyed by (workflow id, name). */
export interface BackupRecord {
  target: string;
  kind: DatabaseBackupKind;
  engine?: DatabaseEngineKind;
  name: string;
  status: BackupRowStatus;
  locations: { primary?: BackupLocation; dr?: BackupLocation };
  failure?: string;
  requestedBy?: string;
}

export interface DatabaseBackupResult {
  workflowId: string;
  target: string;
  environment: string;
  engine: DatabaseEngineKind;
  kind: DatabaseBackupKind;
  name: string;
  status: 'verified';
  primary: BackupLocation;
  dr: BackupLocation;
  verifications: { primary: BackupVerification; dr: BackupVerification };
  preflight: BackupPreflight;
  catalogId: string;
  /** Seconds from start to recorded. */
  durationSeconds: number;
}

/** The row `lifeboat backups list` shows. */
export interface BackupListEntry {
  id: string;
  target: string;
  environment: string;
  kind: string;
  engine: string;
  name: string;
  status: string;
  sizeBytes?: number;
  startedAt?: string;
  completedAt?: string;
  verifiedAt?: string;
  primary?: string;
  dr?: string;
  /** The DR copy's lag (see BackupLocation.lagSeconds) and how it was made, when recorded. */
  drLagSeconds?: number;
  drCopyMode?: string;
  failure?: string;
  workflowId: string;
  /** What the newest restore drill of this backup found: proven (it restored and validated) or restore failed. */
  drill?: { outcome: 'proven' | 'restore failed'; at?: string };
}

/**
 * The backup's name, derived from the workflow id so a retried activity (or a restarted worker)
 * adopts its own backup: lower-case letters, digits and single hyphens, starting with a letter.
 */
export function backupNameFor(workflowId: string): string {
  const cleaned = workflowId.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  const name = /^[a-z]/.test(cleaned) ? cleaned : `b-${cleaned}`;
  return name.slice(0, 200).replace(/-+$/, '');
}

/** The DR copy's name: the backup's name with `-dr`. */
export function drCopyNameFor(backupName: string): string {
  return `${backupName}-dr`;
}

/**
 * The kind a target actually takes: RDS snapshots are always full (a scheduled `diff` of an RDS
 * target is a snapshot), pgBackRest takes what is asked.
 */
export function effectiveKind(engine: DatabaseEngineKind, kind: DatabaseBackupKind): DatabaseBackupKind {
  return engine === 'rds' ? 'full' : kind;
}

