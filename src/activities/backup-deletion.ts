/**
 * Activities of `lifeboat backups delete` (the backupDeletion workflow): find the backup and apply
 * the refusal rules of src/domain/backup-deletion.ts (the CLI runs the same check before anything
 * starts), then, once the gate approved, delete only that backup in every region, the way
 * retention would (src/activities/retention.ts `backupRemoval`): pgBackRest `expire --set`,
 * every version of a dump or file set. Locked versions stay until their date, behind delete
 * markers, and the result says until when. The row becomes `deleted`; a workflow_events row of
 * kind `backup-deletion` keeps who asked, who approved and what happened.
 */
import { insertWorkflowEvent } from '../catalog/catalog';
import { describeError, LifeboatError } from '../domain/errors';
import { BackupDeletionPlan, BackupDeletionResult, deletionRefusal, SeriesMember } from '../domain/backup-deletion';
import { withHeartbeats } from './heartbeat';
import { currentWorkflowId } from './context';
import { Ports } from './ports';
import { backupFamily, backupRemoval, BackupRecord, configuredLock, SELECT_BACKUPS } from './retention';

const REGIONS = ['primary', 'dr'] as const;

interface Found {
  row: BackupRecord & { environment: string };
  series: SeriesMember[];
}

async function findBackup(ports: Ports, backupId: string): Promise<Found> {
  const byId = /^\d{1,18}$/.test(backupId);
  const rows = await ports.catalog.query<BackupRecord & { environment: string }>(
    `${SELECT_BACKUPS.replace(' FROM backups', ', environment FROM backups')} WHERE ${byId ? 'id = $1::bigint OR ' : ''}engine_backup_id = $1::text ORDER BY id`,
    [backupId],
  );
  // A catalog id wins over an engine name that happens to be all digits.
  const matches = byId && rows.some((r) => r.id === backupId) ? rows.filter((r) => r.id === backupId) : rows;
  if (matches.length === 0) throw new LifeboatError(`there is no backup "${backupId}" in the catalog: give a catalog id or backup name that \`lifeboat backups list\` shows`, 'BACKUP_NOT_FOUND');
  if (matches.length > 1) {
    throw new LifeboatError(`"${backupId}" names ${matches.length} backups (${matches.map((m) => `${m.id}: ${m.target} ${m.backup_type}`).join(', ')}): give the catalog id of the one to delete`, 'AMBIGUOUS_BACKUP');
  }
  const row = matches[0];
  const family = backupFamily(row);
  const same = await ports.catalog.query<BackupRecord>(`${SELECT_BACKUPS} WHERE target = $1 ORDER BY id`, [row.target]);
  const series = same
    .filter((r) => backupFamily(r) === family)
    .map((r) => ({
      id: r.id,
      engineBackupId: r.engine_backup_id,
      status: r.status,
      ...(r.completed_at ? { completedAt: r.completed_at.toISOString() } : {}),
      dependsOn: Array.isArray(r.details?.dependsOn) ? (r.details.dependsOn as unknown[]).map(String) : [],
    }));
  return { row, series };
}

const refusalOf = (found: Found) =>
  deletionRefusal(
    {
      id: found.row.id,
      target: found.row.target,
      engineBackupId: found.row.engine_backup_id,
      status: found.row.status,
      legalHold: found.row.legal_hold,
      ...(found.row.completed_at ? { completedAt: found.row.completed_at.toISOString() } : {}),
      dependsOn: [],
    },
    found.series,
  );

/**
 * What a deletion would delete, or a refusal (a non-retryable LifeboatError, one sentence).
 * Reads the catalog only: the CLI calls it before starting anything.
 */
export async function checkBackupDeletion(ports: Ports, backupId: string): Promise<BackupDeletionPlan> {
  const found = await findBackup(ports, backupId);
  const refusal = refusalOf(found);
  if (refusal) throw new LifeboatError(refusal, 'DELETION_REFUSED');
  const { row } = found;
  const copies: string[] = [];
  const locks: string[] = [];
  const target = ports.config.targets.databases.find((d) => d.name === row.target);
  for (const region of REGIONS) {
    const loc = row.locations?.[region];
    if (!loc) continue;
    if (typeof loc.bucket === 'string') {
      const store = String(loc.store ?? '');
      copies.push(`${region}: ${store}/${loc.bucket}/${String(loc.key ?? loc.manifestKey ?? '')}`);
      const lock = configuredLock(ports.config, store, loc.bucket);
      if (lock) locks.push(`${region}: ${loc.bucket} (${lock.objectLock.mode.toUpperCase()} ${lock.objectLock.days} days)`);
    } else {
      const handle = (typeof loc.handle === 'object' && loc.handle ? loc.handle : loc) as { name?: string; backupId?: string; locator?: string };
      copies.push(`${region}: ${handle.name ?? handle.backupId ?? row.engine_backup_id}${handle.locator ? ` in ${handle.locator}` : ''}`);
      const repo = target?.engine === 'pgbackrest' ? (region === 'dr' ? target.drRepo : target.primaryRepo) : undefined;
      const lock = repo !== undefined ? ports.config.backupBuckets.find((b) => b.pgbackrestRepo === repo) : undefined;
      if (lock) locks.push(`${region}: repo${repo} in ${lock.bucket} (${lock.objectLock.mode.toUpperCase()} ${lock.objectLock.days} days)`);
    }
  }
  return {
    catalogId: row.id,
    target: row.target,
    environment: row.environment,
    backupType: row.backup_type,
    engine: row.engine,
    engineBackupId: row.engine_backup_id,
    status: row.status,
    ...(row.completed_at ? { completedAt: row.completed_at.toISOString() } : {}),
    copies,
    locks,
    gateTimings: { remindAfterMs: ports.config.approvals.remindAfter * 1000, abortAfterMs: ports.config.approvals.abortAfter * 1000 },
  };
}

export function backupDeletionActivities(ports: Ports) {
  const { fileSetHold, deleteObjects, deleteDatabaseBackups } = backupRemoval(ports);

  const record = async (row: BackupRecord, result: BackupDeletionResult, request: DeletionRequest) => {
    const workflowId = currentWorkflowId();
    const details = { catalogId: row.id, backupType: row.backup_type, engine: row.engine, engineBackupId: row.engine_backup_id, ...request, outcome: result.outcome, regions: result.regions, detail: result.detail, ...(result.lockedUntil ? { lockedUntil: result.lockedUntil } : {}) };
    await ports.catalog.withClient(async (c) => {
      await c.query('BEGIN');
      try {
        if (result.outcome !== 'refused') {
          await c.query(`UPDATE backups SET status = 'deleted', details = details || jsonb_build_object('deletion', $2::jsonb) WHERE id = $1`, [
            row.id,
            JSON.stringify({ deletedAt: new Date().toISOString(), workflowId, ...request, regions: result.regions, wasStatus: row.status, ...(result.lockedUntil ? { lockedUntil: result.lockedUntil } : {}) }),
          ]);
        }
        await insertWorkflowEvent(c, { workflowId, kind: 'backup-deletion', target: row.target, event: result.outcome === 'refused' ? 'backup-deletion-refused' : 'backup-deleted', details });
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  };

  /**
   * Deletes the approved backup in every region. The refusal rules run again first (a newer
   * backup may have failed, a hold may have come while the gate waited). A row already deleted
   * by an earlier attempt of this activity is reported as it stands.
   * `databaseOnly`: the caller is the target's agent, which removes pgBackRest sets and nothing else.
   */
  const deleteByHand = async (catalogId: string, request: DeletionRequest, databaseOnly: boolean): Promise<BackupDeletionResult> => {
    const [current] = await ports.catalog.query<BackupRecord>(`${SELECT_BACKUPS} WHERE id = $1`, [catalogId]);
    if (!current) throw new LifeboatError(`backup ${catalogId} is no longer in the catalog: nothing to delete`, 'BACKUP_NOT_FOUND');
    if (databaseOnly && !backupFamily(current).startsWith('database:')) {
      throw new LifeboatError(`deleteDatabaseBackupByHand removes database sets on a target's host only, not the ${current.backup_type} backup ${current.engine_backup_id}: deleteBackupByHand removes it centrally.`, 'NOT_A_DATABASE_SET');
    }
    if (current.status === 'deleted' && (current.details?.deletion as { workflowId?: string } | undefined)?.workflowId === currentWorkflowId()) {
      const d = current.details.deletion as { regions: BackupDeletionResult['regions']; lockedUntil?: string };
      return { outcome: d.lockedUntil ? 'deleted-locked-copies-remain' : 'deleted', regions: d.regions, detail: 'deleted by an earlier attempt of this run', ...(d.lockedUntil ? { lockedUntil: d.lockedUntil } : {}) };
    }
    const found = await findBackup(ports, catalogId);
    const refuse = async (detail: string): Promise<BackupDeletionResult> => {
      const result: BackupDeletionResult = { outcome: 'refused', regions: [], detail };
      await record(current, result, request);
      return result;
    };
    const refusal = refusalOf(found);
    if (refusal) return refuse(refusal);
    const family = backupFamily(current);
    if (family === 'files') {
      const hold = await fileSetHold(current);
      if (hold) return refuse(`backup ${current.engine_backup_id} holds objects under legal hold: ${hold}`);
    }
    const regions = await withHeartbeats(
      () => ({ phase: 'deleting', backup: `${current.target} ${current.backup_type} ${current.engine_backup_id}` }),
      async () => {
        try {
          return family.startsWith('database:')
            ? await deleteDatabaseBackups(current)
            : await deleteObjects(current, family as 'files' | 'logical' | 'sqlite', { byHand: true, bypassGovernance: request.bypassGovernance, now: new Date() });
        } catch (err) {
          if (err instanceof LifeboatError) throw err;
          throw new LifeboatError(`Deleting backup ${current.engine_backup_id} of ${current.target} failed (${describeError(err)}); lifeboat will retry.`, 'DELETE_FAILED', false);
        }
      },
    );
    const refused = regions.filter((r) => r.outcome === 'refused');
    const lockedUntil = regions.map((r) => r.lockedUntil).filter((u): u is string => u !== undefined).sort().at(-1);
    const lines = regions.map((r) => `${r.region}: ${r.detail}`).join('; ') || 'no copies were recorded';
    const result: BackupDeletionResult = refused.length
      ? { outcome: 'refused', regions, detail: refused.map((r) => `${r.region}: ${r.detail}`).join('; ') }
      : { outcome: lockedUntil ? 'deleted-locked-copies-remain' : 'deleted', regions, detail: lines, ...(lockedUntil ? { lockedUntil } : {}) };
    await record(current, result, request);
    return result;
  };

  return {
    async planBackupDeletion(backupId: string): Promise<BackupDeletionPlan> {
      return checkBackupDeletion(ports, backupId);
    },

    /** Deletes the approved backup in every region (`deleteByHand`). */
    async deleteBackupByHand(catalogId: string, request: DeletionRequest): Promise<BackupDeletionResult> {
      return deleteByHand(catalogId, request, false);
    },

    /** deleteBackupByHand of a database set, on its target's host (its agent): the same checks and records; dumps and file sets stay central. */
    async deleteDatabaseBackupByHand(catalogId: string, request: DeletionRequest): Promise<BackupDeletionResult> {
      return deleteByHand(catalogId, request, true);
    },
  };
}

/** Who asked and who approved, kept with the deletion. */
export interface DeletionRequest {
  reason: string;
  requestedBy: string;
  approvedBy: string[];
  bypassGovernance: boolean;
}
