/**
 * Inputs and results of the logicalRestore workflow: a logical dump (pg_dump custom format,
 * gzip, lifeboat-enc) restored into a NEW database on the target's server, or chosen tables into
 * a NEW schema of the target's database, behind the approval gate, verified against the row
 * counts of the archive itself. JSON-safe; keys are referred to by id only.
 */
import type { Decision } from './approval';
import type { BackupVerification } from './ports';

type CheckResult = BackupVerification['checks'][number];

export interface LogicalRestoreInput {
  /** A database target with a `logicalBackup` section. */
  target: string;
  /** The catalog id of a logical backup, its backup name, or `latest` (the newest verified one). */
  backup: string;
  /** Tables to restore (`orders` or `public.orders`); default all. */
  tables?: string[];
  /** The new database to restore into (default `restored_<target>_<8 hex of the workflow id>`). */
  intoDatabase?: string;
  /** Restore the tables into this new schema of the target's own database instead. */
  intoSchema?: string;
  /** Read the dump from the DR region's copy. */
  fromRegion?: 'primary' | 'dr';
  requestedBy: string;
  reason: string;
  incidentId?: string;
  /** Keep what was made when the restore fails or is cancelled (forensics). */
  keep?: boolean;
  /** Overrides of the gate timings and heartbeat interval, in ms (tests). */
  timings?: { remindAfterMs?: number; abortAfterMs?: number; pollIntervalMs?: number };
}

export interface ChosenDump {
  catalogId: string;
  backupName: string;
  store: string;
  bucket: string;
  key: string;
  versionId?: string;
  createdAt: string;
  sizeBytes: number;
  /** Encryption format version and key id, from the object's header. */
  encryption: { version: number; keyId: string };
}

export type LogicalRestoreDestination =
  | { kind: 'database'; server: string; database: string }
  | {
      kind: 'schema';
      server: string;
      /** The target's database, which gets the new schema. */
      database: string;
      schema: string;
      /** The schema the chosen tables are in, in the dump. */
      sourceSchema: string;
      /** A new database the tables are restored into first, then moved from (removed afterwards). */
      scratchDatabase: string;
    };

export interface ValidatedLogicalRestore {
  target: string;
  environment: string;
  workflowId: string;
  backup: ChosenDump;
  /** Schema-qualified names, or all. */
  tables: string[] | 'all';
  /** Tables with data in the archive. */
  archiveTables: string[];
  destination: LogicalRestoreDestination;
  /** The comment this run puts on what it makes: only what carries it is ever removed. */
  marker: string;
  timings: { remindAfterMs: number; abortAfterMs: number; pollIntervalMs: number };
}

export interface LogicalRestoreDone {
  dumpBytes: number;
  durationMs: number;
  /**
   * Rows per table (schema.name as the archive names it) the restore is checked against, for every
   * table restored: the counts recorded when the backup was taken when the catalog has them for all
   * of these tables (`countedFrom: 'backup'`), else counted in the archive on the way.
   */
  archiveRowCounts: Record<string, number>;
  /** Where archiveRowCounts came from; absent in reports made before this field (the archive). */
  countedFrom?: 'backup' | 'archive';
}

export type LogicalRestoreOutcome = 'restored' | 'rejected' | 'expired' | 'failed' | 'cancelled' | 'verification-failed';

export interface LogicalRestoreReport {
  workflowId: string;
  outcome: LogicalRestoreOutcome;
  target: string;
  requestedBy: string;
  reason: string;
  incidentId?: string;
  backup?: ChosenDump;
  destination?: LogicalRestoreDestination;
  tables?: string[] | 'all';
  restored?: LogicalRestoreDone;
  verification?: { ok: boolean; checks: CheckResult[] };
  decisions: Decision[];
  /** What compensation removed or kept. */
  cleanup: string[];
  failure?: string;
  /** Seconds per phase. */
  phases: { validation: number; waitingForApproval: number; restore: number; verification: number };
}

/**
 * What a restored table's row count is compared with: the count recorded with the dump's own
 * snapshot when the backup was taken (the catalog's backups.details.rowCounts), or, for a dump
 * taken before counts were recorded (or a table they lack), the rows its archive holds.
 */
export function rowCountBasis(atBackup: Record<string, number> | undefined, archive: Record<string, number>) {
  return {
    recorded: !!atBackup,
    expected(table: string): { rows: number; source: string } {
      if (atBackup && Number.isSafeInteger(atBackup[table])) return { rows: atBackup[table], source: 'counted when the backup was taken' };
      return { rows: archive[table] ?? 0, source: 'in the dump' };
    },
    detail(backupName: string): string {
      if (!atBackup) return `the dump's own rows: backup ${backupName} was taken before lifeboat recorded row counts at backup time`;
      const missing = Object.keys(archive).filter((t) => !Number.isSafeInteger(atBackup[t]));
      return `the row counts recorded when backup ${backupName} was taken (its snapshot)${missing.length ? `; the dump's own rows for ${missing.join(', ')}, which they lack` : ''}`;
    },
  };
}

/** The comment a logical restore puts on the database or schema it makes: only what carries it is ever dropped. */
export function logicalRestoreMarker(workflowId: string): string {
  return `lifeboat logical restore ${workflowId}`;
}
