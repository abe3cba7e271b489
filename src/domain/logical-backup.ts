/**
 * Inputs and results of the logicalBackup workflow: pg_dump (custom format) → zstd (gzip before) → AES-256-GCM
 * into the primary region's bucket, verified, copied to the DR region's bucket and verified
 * again, recorded in the catalog. JSON-safe; keys are referred to by fingerprint only.
 */
import type { BackupVerification } from './ports';

export interface LogicalBackupInput {
  /** A database target with a `logicalBackup` section in the config. */
  target: string;
  /** How often long activities heartbeat their progress, in ms (default 5000). */
  pollIntervalMs?: number;
}

/** Where one copy of a dump is, and what it holds. */
export interface StoredDump {
  store: string;
  bucket: string;
  key: string;
  versionId?: string;
  /** Bytes and SHA-256 of the stored (encrypted) object. */
  sizeBytes: number;
  sha256: string;
  /** Bytes and SHA-256 of pg_dump's own output. */
  dumpBytes: number;
  dumpSha256: string;
  /** Fingerprint of the encryption key, never the key. */
  keyId: string;
  /** How pg_dump's output is compressed: zstd, or gzip (results recorded without it are gzip). */
  compression?: 'gzip' | 'zstd';
  createdAt: string;
  /** True when an earlier attempt had already stored it. */
  adopted: boolean;
  /** Rows per table in the dump's snapshot, counted as it was taken (recorded in the catalog for restores to compare with). */
  rowCounts?: Record<string, number>;
}

export interface LogicalBackupPlan {
  target: string;
  environment: string;
  /** Derived from the workflow id, so a retried activity adopts its own dump. */
  backupName: string;
  /** host:port/database dumped. */
  source: string;
  primary: { store: string; bucket: string; prefix: string };
  dr: { store: string; bucket: string; prefix: string };
  expectedTables: string[];
}

export interface DumpVerification extends BackupVerification {
  store: string;
  key: string;
  tocEntries: number;
  tables: number;
  durationMs: number;
}

export interface LogicalBackupReport {
  workflowId: string;
  target: string;
  backupName?: string;
  outcome: 'verified' | 'failed' | 'cancelled';
  primary?: StoredDump;
  dr?: StoredDump;
  verifications: DumpVerification[];
  /** The catalog row (backups.id). */
  catalogId?: string;
  failure?: string;
}
