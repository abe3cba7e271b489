/**
 * Rows of the catalog's `backups` and `verifications` tables for the logical and file backup
 * workflows. Idempotent per (workflow id, engine backup id): a retried activity updates its row
 * and replaces its verifications instead of adding new ones.
 */
import type { Catalog } from '../catalog/catalog';
import type { BackupVerification } from '../domain/ports';

export interface BackupRow {
  target: string;
  environment: string;
  backupType: string;
  engine: string;
  engineBackupId: string;
  status: 'running' | 'complete' | 'verified' | 'failed';
  locations: Record<string, unknown>;
  sizeBytes?: number;
  checksums?: Record<string, unknown>;
  startedAt?: string;
  completedAt?: string;
  verifiedAt?: string;
  workflowId: string;
  runId?: string;
  failure?: string;
  details?: Record<string, unknown>;
}

/** Inserts or updates the row, replaces its verifications (by subject), and returns its id. */
export async function recordBackupRow(catalog: Catalog, row: BackupRow, verifications: Array<{ subject: string; result: BackupVerification }> = []): Promise<string> {
  return catalog.withClient(async (c) => {
    await c.query('BEGIN');
    try {
      const { rows } = await c.query<{ id: string }>(
        `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, size_bytes, checksums,
                              started_at, completed_at, verified_at, workflow_id, run_id, failure, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (workflow_id, engine_backup_id) DO UPDATE SET
           status = EXCLUDED.status, locations = EXCLUDED.locations, size_bytes = EXCLUDED.size_bytes,
           checksums = EXCLUDED.checksums, started_at = COALESCE(backups.started_at, EXCLUDED.started_at),
           completed_at = EXCLUDED.completed_at, verified_at = EXCLUDED.verified_at, run_id = EXCLUDED.run_id,
           failure = EXCLUDED.failure, details = backups.details || EXCLUDED.details
         RETURNING id::text AS id`,
        [
          row.target,
          row.environment,
          row.backupType,
          row.engine,
          row.engineBackupId,
          row.status,
          JSON.stringify(row.locations),
          row.sizeBytes ?? null,
          JSON.stringify(row.checksums ?? {}),
          row.startedAt ?? null,
          row.completedAt ?? null,
          row.verifiedAt ?? null,
          row.workflowId,
          row.runId ?? null,
          row.failure ?? null,
          JSON.stringify(row.details ?? {}),
        ],
      );
      const id = rows[0].id;
      for (const v of verifications) {
        await c.query('DELETE FROM verifications WHERE backup_id = $1 AND workflow_id = $2 AND subject = $3', [id, row.workflowId, v.subject]);
        await c.query('INSERT INTO verifications (backup_id, workflow_id, subject, ok, checks) VALUES ($1, $2, $3, $4, $5)', [id, row.workflowId, v.subject, v.result.ok, JSON.stringify(v.result.checks)]);
      }
      await c.query('COMMIT');
      return id;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}
