/**
 * Activities of the filesBackup workflow over the FileBackupEngine (src/engines/file-backup.ts):
 * plan (mode and set name), back up into the primary backup bucket, verify, copy to the DR
 * region's backup bucket (the engine verifies the copy, every object hashed), record. The set
 * name comes from the workflow's time, so a retried activity writes to the same place and adopts
 * a finished set.
 */
import { Context } from '@temporalio/activity';
import { BucketTarget, findBucketTarget, LifeboatConfig } from '../config';
import { LifeboatError } from '../domain/errors';
import { FilesBackupMode, FilesBackupPlan, FilesBackupReport, FilesSetRecord, FilesVerification } from '../domain/files-backup';
import { backupTimestamp, FileBackupEngine, FileProgress, FileVerification } from '../engines/file-backup';
import { recordBackupRow } from './catalog-records';
import { currentWorkflowId } from './context';
import { withHeartbeats } from './heartbeat';
import { Ports } from './ports';

type Region = 'primary' | 'dr';

const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;

/** The root prefix of a target's backup sets in a bucket: the configured prefix, else `files/<source bucket>`. */
export function filesRoot(prefix: string | undefined, sourceBucket: string): string {
  return (prefix || `files/${sourceBucket}`).replace(/^\/+|\/+$/g, '');
}

/** Whether `schedules.full` runs on that day (UTC): the weekly full backup day. */
export function isFullBackupDay(config: LifeboatConfig, at: Date): boolean {
  const full = config.schedules.full;
  if (!full.enabled) return false;
  const weekday = WEEKDAYS[at.getUTCDay()];
  const month = at.toLocaleString('en-US', { month: 'long', timeZone: 'UTC' }).toLowerCase();
  if (full.months.length && !full.months.includes(month as (typeof full.months)[number])) return false;
  if (full.daysOfWeek.length) return full.daysOfWeek.includes(weekday);
  if (full.daysOfMonth.length) return full.daysOfMonth.includes(at.getUTCDate());
  return true;
}

function verificationOf(v: FileVerification, store: string): FilesVerification {
  return { ok: v.ok, checks: v.checks, store, timestamp: v.timestamp, objects: v.objects, bytes: v.bytes, sampled: v.sampled.length };
}

export function filesBackupActivities(ports: Ports) {
  const { config } = ports;

  const settingsOf = (targetName: string): BucketTarget & { drBackup: NonNullable<BucketTarget['drBackup']> } => {
    const target = findBucketTarget(config, targetName);
    if (!target.drBackup) {
      throw new LifeboatError(
        `The bucket target ${target.name} has no drBackup section in the config, so lifeboat does not know where to copy its backups in the DR region: add drBackup (store, bucket) pointing at a backup bucket there (not the replica).`,
        'NO_DR_BACKUP_CONFIG',
      );
    }
    return target as BucketTarget & { drBackup: NonNullable<BucketTarget['drBackup']> };
  };

  const engineFor = (targetName: string) => {
    const t = settingsOf(targetName);
    return new FileBackupEngine({
      source: { s3: ports.objectStore(t.source.store), bucket: t.source.bucket, name: t.source.store },
      backup: { s3: ports.objectStore(t.backup.store), bucket: t.backup.bucket, root: filesRoot(t.backup.prefix, t.source.bucket), name: t.backup.store },
    });
  };

  const drLocation = (targetName: string) => {
    const t = settingsOf(targetName);
    return { s3: ports.objectStore(t.drBackup.store), bucket: t.drBackup.bucket, root: filesRoot(t.drBackup.prefix ?? t.backup.prefix, t.source.bucket), name: t.drBackup.store };
  };

  const withProgress = <T>(phase: string, everyMs: number | undefined, work: (onProgress: (p: FileProgress) => void) => Promise<T>) => {
    let progress: FileProgress = { objectsDone: 0, objectsTotal: 0, bytesDone: 0 };
    return withHeartbeats(
      () => ({ phase, ...progress }),
      () => work((p) => (progress = p)),
      everyMs ?? 5000,
    );
  };

  return {
    /** The set's name from `at`, and its mode: as asked, else full on the full-backup day or when there is nothing to build on. */
    async planFilesBackup(targetName: string, at: string, mode?: FilesBackupMode): Promise<FilesBackupPlan> {
      const t = settingsOf(targetName);
      const timestamp = backupTimestamp(at);
      const engine = engineFor(targetName);
      let resolved: FilesBackupMode;
      let modeReason: string;
      if (mode) {
        resolved = mode;
        modeReason = `${mode} as asked`;
      } else if (isFullBackupDay(config, new Date(at))) {
        resolved = 'full';
        modeReason = 'full: the weekly full backup day (schedules.full)';
      } else {
        const earlier = (await engine.listBackups()).filter((ts) => ts < timestamp);
        resolved = earlier.length ? 'incremental' : 'full';
        modeReason = earlier.length ? `incremental on ${earlier[earlier.length - 1]}` : 'full: there is no earlier complete backup set to build an incremental on';
      }
      const dr = drLocation(targetName);
      return {
        target: t.name,
        environment: t.environment,
        sourceBucket: t.source.bucket,
        mode: resolved,
        modeReason,
        timestamp,
        primary: { store: t.backup.store, bucket: t.backup.bucket, root: engine.root },
        dr: { store: t.drBackup.store, bucket: dr.bucket, root: dr.root },
      };
    },

    /** Copies what the mode says into the set, writes its manifest last; heartbeats objects and bytes. */
    async backupFiles(plan: FilesBackupPlan, heartbeatMs?: number): Promise<FilesSetRecord> {
      const engine = engineFor(plan.target);
      const result = await withProgress('copying objects', heartbeatMs, (onProgress) => engine.backup({ timestamp: plan.timestamp, mode: plan.mode, onProgress }));
      const manifest = await engine.readManifest(plan.timestamp);
      if (!manifest) throw new LifeboatError(`The manifest of backup ${plan.timestamp} vanished right after it was written; lifeboat will retry.`, 'BACKUP_NOT_FOUND', false);
      const dependsOn = [...new Set(manifest.entries.filter((e) => e.change !== 'deleted' && e.storedIn !== plan.timestamp).map((e) => e.storedIn))].sort();
      return { timestamp: result.timestamp, kind: result.kind, ...(result.base ? { base: result.base } : {}), manifestKey: result.manifestKey, totals: result.totals, dependsOn, adopted: result.adopted };
    },

    /** Counts, sizes and a sampled content hash of a set against its manifest, in one region. */
    async verifyFilesSet(plan: FilesBackupPlan, region: Region, sample?: number | 'all'): Promise<FilesVerification> {
      const engine = engineFor(plan.target);
      const location = region === 'dr' ? drLocation(plan.target) : undefined;
      const v = await withHeartbeats(() => ({ phase: `verifying the ${region} set` }), () => engine.verify(plan.timestamp, { sample: sample ?? 16, location }));
      return verificationOf(v, region === 'dr' ? plan.dr.store : plan.primary.store);
    },

    /** Copies every object the set references (its own and unchanged ones in earlier sets), then verifies the copy, all content hashed. */
    async copyFilesToDr(plan: FilesBackupPlan, heartbeatMs?: number): Promise<{ copied: number; skipped: number; copiedBytes: number; manifestKey: string; verification: FilesVerification }> {
      const engine = engineFor(plan.target);
      const copy = await withProgress('copying to the DR region', heartbeatMs, (onProgress) => engine.copyToRegion(plan.timestamp, drLocation(plan.target), { onProgress }));
      return { copied: copy.copied, skipped: copy.skipped, copiedBytes: copy.copiedBytes, manifestKey: copy.manifestKey, verification: verificationOf(copy.verification, plan.dr.store) };
    },

    /** The catalog row (backup_type `files-full` or `files-incremental`) and its verifications. */
    async recordFilesBackup(plan: FilesBackupPlan, report: FilesBackupReport, startedAt: string): Promise<string> {
      const info = Context.current().info;
      const now = new Date().toISOString();
      // A verified primary set stays verified when the DR copy fails after it: that is the copy's failure.
      const primaryVerified = report.verifications.some((v) => v.store === plan.primary.store && v.ok);
      const verified = report.outcome === 'verified' || primaryVerified;
      const copyFailed = report.outcome !== 'verified' && primaryVerified;
      const set = report.set;
      // Where a set that never finished would be: retention removes what a failed run left there.
      const plannedManifest = (root: string) => `${root ? `${root}/` : ''}${plan.timestamp}/manifest.json`;
      return recordBackupRow(
        ports.catalog,
        {
          target: plan.target,
          environment: plan.environment,
          backupType: `files-${plan.mode}`,
          engine: 'file-backup',
          engineBackupId: plan.timestamp,
          status: verified ? 'verified' : 'failed',
          locations: {
            primary: { ...plan.primary, timestamp: plan.timestamp, manifestKey: set?.manifestKey ?? plannedManifest(plan.primary.root), ...(set ? {} : { failed: true }) },
            dr: {
              ...plan.dr,
              timestamp: plan.timestamp,
              manifestKey: report.drCopy?.manifestKey ?? plannedManifest(plan.dr.root),
              ...(report.outcome === 'verified' ? {} : { failed: true }),
            },
          },
          sizeBytes: set?.totals.copiedBytes,
          checksums: {},
          startedAt,
          completedAt: now,
          verifiedAt: verified ? now : undefined,
          workflowId: currentWorkflowId(),
          runId: info.workflowExecution?.runId,
          failure: copyFailed ? `DR copy failed: ${report.failure ?? 'unknown reason'}` : report.failure,
          details: { sourceBucket: plan.sourceBucket, mode: plan.mode, modeReason: plan.modeReason, ...(set ? { base: set.base ?? null, dependsOn: set.dependsOn, totals: set.totals } : {}) },
        },
        report.verifications.map((v) => ({ subject: `file backup ${v.store}:${v.timestamp}`, result: { ok: v.ok, checks: v.checks } })),
      );
    },
  };
}
