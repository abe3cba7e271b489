/**
 * Failback, from the engine's side: the failed-over primary (a restored instance serving the
 * target) is re-protected into both regions' repositories with a complete full backup in each,
 * fenced and its final WAL shipped, then restored into a NEW instance up to that WAL from the
 * primary region's copy. The old primary (the configured source) is never restored over.
 */
import { LifeboatError } from '../../domain/errors';
import type { BackupHandle, FinalWal, InstanceDescription, Reprotection, RestoreRequest, RunIdentity } from '../../domain/ports';
import { delay } from '../../platform/processes';
import type { Backups } from './backups';
import type { Cutover } from './cutover';
import { localName } from './files';
import type { PgBackRestSetup } from './options';
import type { Restores } from './restores';

export class Failback {
  constructor(
    private readonly setup: Pick<PgBackRestSetup, 'primaryRepo' | 'drRepo' | 'timings'>,
    private readonly cutover: Cutover,
    private readonly backups: Backups,
    private readonly restores: Restores,
  ) {}

  async reprotectInBothRegions(instanceId: string, owner: RunIdentity): Promise<Reprotection> {
    const { protection, pgOptions } = await this.cutover.startArchiving(instanceId, owner);
    // One name per failback run: a retried activity adopts the backup it already made.
    const name = `reprotect-${localName(owner.workflowId)}`;
    // One at a time: pgBackRest holds one backup lock per stanza.
    const primary = await this.completed(await this.backups.backupInto(this.setup.primaryRepo, name, 'full', pgOptions));
    const dr = await this.completed(await this.backups.backupInto(this.setup.drRepo, name, 'full', pgOptions));
    return {
      instanceId,
      ...(protection.timeline !== undefined ? { timeline: protection.timeline } : {}),
      backups: { primary, dr },
      measures: [...protection.measures, `full backup ${primary.backupId} complete in repo${this.setup.primaryRepo} (primary)`, `full backup ${dr.backupId} complete in repo${this.setup.drRepo} (dr)`],
    };
  }

  restoreForFailback(request: Omit<RestoreRequest, 'point' | 'fromRegion'> & { finalWal: FinalWal; reprotection: Reprotection }): Promise<InstanceDescription> {
    const { finalWal, reprotection, ...rest } = request;
    if (!finalWal.lsn) throw new LifeboatError(`The final WAL of ${finalWal.instanceId} has no LSN, so a restore cannot be bounded by it; ship the final WAL again.`, 'NO_FINAL_WAL', true);
    return this.restores.startRestore({ ...rest, fromRegion: 'primary', point: { kind: 'lsn', lsn: finalWal.lsn, backupId: reprotection.backups.primary.backupId } });
  }

  /** Polls a started backup until pgBackRest lists it complete; a failed one fails the call (its retry starts it again). */
  private async completed(handle: BackupHandle): Promise<BackupHandle> {
    for (;;) {
      const p = await this.backups.backupProgress(handle);
      if (p.state === 'complete') return { ...handle, backupId: p.backupId ?? handle.backupId };
      if (p.state === 'failed') throw new LifeboatError(p.detail, 'REPROTECT_BACKUP_FAILED', false);
      await delay(Math.max(this.setup.timings.pollMs, 1000));
    }
  }
}
