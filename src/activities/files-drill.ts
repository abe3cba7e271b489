/**
 * Activities of the files restore drill (src/workflows/files-drill.ts): choosing the verified
 * files backup of a bucket target, making the drill's scratch bucket (tagged with its owner run)
 * in the store the set is restored from, restoring the set into it (every object hashed as it
 * streams), checking it against the manifest, and removing the bucket.
 */
import { Context } from '@temporalio/activity';
import { BucketTarget, findBucketTarget, objectivesFor } from '../config';
import type { DrillValidation } from '../domain/drill-report';
import type { DrillSelection, RestoreDrillInput } from '../domain/drill';
import { LifeboatError } from '../domain/errors';
import { DrillBucket, drillBucketName, FILES_DRILL_METHODS, FilesDrillCheck, FilesDrillRestore, FilesDrillSource } from '../domain/files-drill';
import { createDrillBucket, removeDrillBucket } from '../engines/drill-bucket';
import { FileBackupEngine, FileProgress, ManifestEntry } from '../engines/file-backup';
import { checkRestoredContent, checkRestoredCount, checkRestoredMetadata, drillSample } from '../engines/restored-files';
import { currentWorkflowId } from './context';
import { filesRoot } from './files-backup';
import { withHeartbeats } from './heartbeat';
import { Ports } from './ports';

type Region = 'primary' | 'dr';

interface FilesLocation {
  store: string;
  bucket: string;
  root: string;
  timestamp?: string;
  manifestKey?: string;
  failed?: boolean;
  completedAt?: string;
}

interface FilesBackupRow {
  id: string;
  engine_backup_id: string;
  backup_type: string;
  completed_at: Date | null;
  locations: { primary?: FilesLocation; dr?: FilesLocation };
  details: { sourceBucket?: string; totals?: { objects?: number; bytes?: number } };
}

const DAY_MS = 86400000;

function runOf(): { workflowId: string; runId: string } {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new LifeboatError('a drill bucket belongs to a workflow run, and this activity was called outside one.', 'NO_WORKFLOW_RUN');
  return { workflowId: run.workflowId, runId: run.runId };
}

/** The verified files backup of a bucket target a drill proves: the newest, one at random within a window, or one by id (its timestamp or catalog id). */
export async function selectFilesDrillBackup(ports: Ports, input: RestoreDrillInput): Promise<DrillSelection> {
  const { config } = ports;
  const target: BucketTarget = findBucketTarget(config, input.target);
  const region: Region = input.fromRegion ?? 'primary';
  const rows = await ports.catalog.query<FilesBackupRow>(
    "SELECT id::text, engine_backup_id, backup_type, completed_at, locations, details FROM backups WHERE target = $1 AND status = 'verified' AND backup_type LIKE 'files-%' ORDER BY completed_at DESC NULLS LAST",
    [target.name],
  );
  // The DR copy of a set counts only once the copy was verified (a failed copy is marked so).
  const usable = rows.filter((r) => {
    const l = r.locations[region];
    return !!l?.bucket && !l.failed && !!r.completed_at;
  });
  const settings = target.drill;
  const describe = (row: FilesBackupRow, selectedBy: string, candidates: number): DrillSelection => {
    const l = row.locations[region]!;
    const files: FilesDrillSource = {
      store: l.store,
      bucket: l.bucket,
      root: l.root,
      timestamp: l.timestamp ?? row.engine_backup_id,
      sourceBucket: row.details.sourceBucket ?? target.source.bucket,
      ...(row.details.totals?.objects !== undefined ? { objects: row.details.totals.objects } : {}),
      ...(row.details.totals?.bytes !== undefined ? { bytes: row.details.totals.bytes } : {}),
      rtoObjectiveSeconds: objectivesFor(config, target).rto,
      hashAllUpTo: settings.hashAllUpTo,
      sample: settings.sample,
    };
    return {
      kind: 'files',
      backupId: row.engine_backup_id,
      catalogId: row.id,
      type: row.backup_type,
      region,
      takenAt: row.completed_at!.toISOString(),
      ...(files.bytes !== undefined ? { sizeBytes: files.bytes } : {}),
      selectedBy,
      candidates,
      target: { name: target.name, engine: 'file-backup', environment: target.environment },
      rpoObjectiveSeconds: objectivesFor(config, target).rpo,
      files,
    };
  };
  if (!usable.length) {
    throw new LifeboatError(`${target.name} has no verified files backup in the ${region} region to drill; take one (lifeboat backup ${target.name}) and drill again.`, 'NO_BACKUP_TO_DRILL');
  }
  const choice = input.backup ?? 'latest';
  if (choice === 'latest') return describe(usable[0], 'as the newest verified backup', usable.length);
  if (choice === 'random') {
    const days = input.randomWithinDays ?? 30;
    const recent = usable.filter((r) => Date.now() - r.completed_at!.getTime() <= days * DAY_MS);
    if (!recent.length) {
      throw new LifeboatError(`${target.name} has no verified files backup from the last ${days} days in the ${region} region to drill at random; take a backup, or drill --backup latest.`, 'NO_BACKUP_TO_DRILL');
    }
    // Chosen here, once: the workflow's history keeps the choice, so a replay restores the same one.
    return describe(recent[Math.floor(Math.random() * recent.length)], `at random among the ${recent.length} verified backups of the last ${days} days`, recent.length);
  }
  const named = usable.find((r) => r.engine_backup_id === choice || r.id === choice);
  if (!named) {
    throw new LifeboatError(`${target.name} has no verified files backup "${choice}" in the ${region} region; pick one from \`lifeboat backups list --target ${target.name}\`, or drill --backup latest.`, 'NO_BACKUP_TO_DRILL');
  }
  return describe(named, 'by its id', usable.length);
}

export function filesDrillActivities(ports: Ports) {
  const sourceOf = (selection: DrillSelection): FilesDrillSource => {
    if (!selection.files) throw new LifeboatError(`backup ${selection.backupId} of ${selection.target.name} is not a files backup, so it cannot be drilled into a bucket.`, 'BAD_INPUT');
    return selection.files;
  };

  /** The engine reading the set where the selection found it (the region drilled). */
  const engineOf = (files: FilesDrillSource) =>
    new FileBackupEngine({ source: { bucket: files.sourceBucket }, backup: { s3: ports.objectStore(files.store), bucket: files.bucket, root: filesRoot(files.root, files.sourceBucket), name: files.store } });

  const manifestEntries = async (files: FilesDrillSource): Promise<ManifestEntry[]> => {
    const manifest = await engineOf(files).readManifest(files.timestamp);
    if (!manifest) {
      throw new LifeboatError(`The manifest of files backup ${files.timestamp} is missing from ${files.store}/${files.bucket}: the set cannot be restored from this region; drill the other region's copy or take a new backup.`, 'BACKUP_NOT_FOUND');
    }
    return manifest.entries.filter((e) => e.change !== 'deleted');
  };

  return {
    /** The drill's scratch bucket `drill-<workflow id>`, in the store the set is restored from, tagged with this run as its owner. */
    async createFilesDrillBucket(selection: DrillSelection): Promise<DrillBucket> {
      const files = sourceOf(selection);
      const bucket = drillBucketName(currentWorkflowId());
      const { adopted } = await createDrillBucket(ports.objectStore(files.store), bucket, { ...runOf(), target: selection.target.name, createdAt: new Date().toISOString() });
      return { store: files.store, bucket, adopted };
    },

    /**
     * Restores every object of the set into the scratch bucket (content type and user metadata
     * as recorded; each object hashed as it streams, so a damaged backup copy fails the restore
     * with the key named). Heartbeats objects and bytes; stops between objects once cancelled.
     */
    async restoreFilesIntoDrillBucket(selection: DrillSelection, into: DrillBucket): Promise<FilesDrillRestore> {
      const files = sourceOf(selection);
      const ctx = Context.current();
      let progress: FileProgress = { objectsDone: 0, objectsTotal: files.objects ?? 0, bytesDone: 0 };
      const result = await withHeartbeats(
        () => ({ phase: `restoring ${files.timestamp} into ${into.bucket}`, ...progress }),
        () =>
          engineOf(files).restore(
            files.timestamp,
            { s3: ports.objectStore(into.store), bucket: into.bucket },
            // Cancellation (delivered by heartbeats) stops the restore between objects; the
            // activity then reports the cancellation (src/activities/cancellation.ts).
            { onProgress: (p) => (progress = p), signal: ctx.cancellationSignal },
          ),
      );
      return { objects: result.restored, bytes: result.bytes, skippedDeleted: result.skippedDeleted };
    },

    /** One check of the scratch bucket against the set's manifest, as a line of the report. */
    async checkFilesDrillBucket(selection: DrillSelection, into: DrillBucket, check: FilesDrillCheck): Promise<DrillValidation> {
      const files = sourceOf(selection);
      const started = Date.now();
      const s3 = ports.objectStore(into.store);
      const entries = await manifestEntries(files);
      const sample = () => drillSample(entries, currentWorkflowId(), files.hashAllUpTo, files.sample);
      const result = await withHeartbeats(
        () => ({ check }),
        () =>
          check === 'count'
            ? checkRestoredCount(s3, into.bucket, entries)
            : check === 'content'
              ? checkRestoredContent(s3, into.bucket, sample(), entries.length)
              : checkRestoredMetadata(s3, into.bucket, sample(), entries.length),
      );
      const names: Record<FilesDrillCheck, string> = { count: 'object count and bytes', content: 'content (SHA-256)', metadata: 'metadata' };
      return { name: names[check], method: FILES_DRILL_METHODS[check], ok: result.ok, detail: result.detail, seconds: Math.round((Date.now() - started) / 1000) };
    },

    /** Empties and deletes the scratch bucket, only if its tags name this run; gone already is fine. */
    async removeFilesDrillBucket(into: Pick<DrillBucket, 'store' | 'bucket'>): Promise<string> {
      const s3 = ports.objectStore(into.store);
      const done = await withHeartbeats(() => ({ removing: into.bucket }), () => removeDrillBucket(s3, into.bucket, runOf()));
      return done.detail;
    },
  };
}
