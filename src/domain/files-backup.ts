/**
 * Inputs and results of the filesBackup workflow: a full (weekly) or incremental (daily) backup
 * set of a bucket target, verified, copied to the DR region's backup bucket and verified there,
 * recorded in the catalog. JSON-safe.
 */
import type { BackupVerification } from './ports';

export type FilesBackupMode = 'full' | 'incremental';

export interface FilesBackupInput {
  /** A bucket target with a `drBackup` section in the config. */
  target: string;
  /**
   * Default: full on the days `schedules.full` runs (and whenever there is no earlier complete
   * backup set to base an incremental on), incremental otherwise.
   */
  mode?: FilesBackupMode;
  /** The backup's time (names the set); default the workflow's own clock at that step. */
  at?: string;
}

export interface FilesBackupPlan {
  target: string;
  environment: string;
  sourceBucket: string;
  mode: FilesBackupMode;
  /** Why this mode: asked for, the full-backup day, or no base to build on. */
  modeReason: string;
  /** Set name, e.g. 20260121T040000Z. */
  timestamp: string;
  primary: { store: string; bucket: string; root: string };
  dr: { store: string; bucket: string; root: string };
}

export interface FilesBackupTotals {
  /** Objects the source held (not counting deleted entries) and their bytes. */
  objects: number;
  bytes: number;
  added: number;
  modified: number;
  unchanged: number;
  deleted: number;
  /** Bytes this backup copied. */
  copiedBytes: number;
}

export interface FilesSetRecord {
  timestamp: string;
  kind: FilesBackupMode;
  base?: string;
  manifestKey: string;
  totals: FilesBackupTotals;
  /** Earlier sets whose objects/ hold bytes this one lists as unchanged. */
  dependsOn: string[];
  adopted: boolean;
}

export interface FilesVerification extends BackupVerification {
  store: string;
  timestamp: string;
  objects: number;
  bytes: number;
  sampled: number;
}

export interface FilesBackupReport {
  workflowId: string;
  target: string;
  outcome: 'verified' | 'failed' | 'cancelled';
  plan?: FilesBackupPlan;
  set?: FilesSetRecord;
  /** Objects copied to the DR region and those already there. */
  drCopy?: { copied: number; skipped: number; copiedBytes: number; manifestKey: string };
  verifications: FilesVerification[];
  catalogId?: string;
  failure?: string;
}
