/**
 * Activities of the filesRestore workflow (src/workflows/files-restore.ts): validate the request
 * against the backup set's manifest or the source bucket's versions (no side effects), make the
 * new bucket (tagged with this run as its owner, like a drill's scratch bucket), copy the
 * selected objects (each hashed as it streams: against the manifest's SHA-256 for a backup set),
 * read every restored object back and check it, delete what --mirror approved, and remove the
 * new bucket on failure or cancel. S3 only: they run on the central task queue.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import { DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BucketTarget, findBucketTarget } from '../config';
import { LifeboatError } from '../domain/errors';
import { formatBytes } from '../domain/format';
import {
  describeOrigin,
  describeSelection,
  FilesRestoreBucket,
  FilesRestoreCheck,
  FilesRestoreCopy,
  FilesRestoreInput,
  FilesRestoreOrigin,
  FilesRestoreSelection,
  firstFew,
  RESTORE_BUCKET_MARKER,
  restoreBucketName,
  selects,
  ValidatedFilesRestore,
} from '../domain/files-restore';
import { isAwsError } from '../engines/aws-errors';
import { currentObjects, objectsAt, versioningOf } from '../engines/bucket-versions';
import { Sha256Meter } from '../engines/crypto-stream';
import { createDrillBucket, drillBucketOwner, removeDrillBucket } from '../engines/drill-bucket';
import { FileBackupEngine, forEachLimit, ManifestEntry, streamObject } from '../engines/file-backup';
import { checkRestoredContent, checkRestoredCount, checkRestoredMetadata } from '../engines/restored-files';
import { filesRoot } from './files-backup';
import { withHeartbeats } from './heartbeat';
import { Ports } from './ports';
import { bucketFingerprint, recordRestoredThing, recordRestoredThingRemoved, RestoredThing } from './restored-instances';
import { RestoredDetails, restoredThingId } from '../domain/restored-instances';

/** A files restore's new bucket, as restored_instances lists it. */
function restoredBucketOf(plan: ValidatedFilesRestore, details: RestoredDetails): RestoredThing {
  const o = plan.origin;
  return {
    instanceId: restoredThingId('bucket', details),
    kind: 'bucket',
    target: plan.target,
    engine: 's3',
    madeBy: 'filesRestore',
    restorePoint: o.kind === 'backup' ? o.takenAt : o.at,
    restoredFrom: `${o.kind === 'backup' ? `files backup ${o.timestamp} (catalog id ${o.catalogId})` : `the versions of ${o.bucket} at ${o.at}`}, ${plan.selection}`,
    endpoint: `${details.store}/${details.bucket}`,
    details,
  };
}

/** Objects a --mirror may delete at most: the gate lists them, and the history keeps the list. */
export const MAX_MIRROR_DELETES = 10000;
const MIB = 1024 * 1024;

interface FilesRow {
  id: string;
  engine_backup_id: string;
  completed_at: Date | null;
  locations: { primary?: { store: string; bucket: string; root: string; timestamp?: string; failed?: boolean } };
  details: { sourceBucket?: string };
}

/** A refusal of what was asked: one sentence, not retried; the CLI shows it and exits 2. */
const refuse = (sentence: string) => new LifeboatError(sentence, 'RESTORE_REFUSED');

function runOf(): { workflowId: string; runId: string } {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new LifeboatError('a restore bucket belongs to a workflow run, and this activity was called outside one.', 'NO_WORKFLOW_RUN');
  return { workflowId: run.workflowId, runId: run.runId };
}

async function bucketExists(s3: S3Client, bucket: string): Promise<boolean> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || isAwsError(err, 'NoSuchBucket', 'NotFound')) return false;
    // 403: the name is taken by someone else's bucket (AWS names are global).
    if (status === 403) return true;
    throw err;
  }
}

/** One object to put back: where its bytes are read, and what they must hash to when known. */
interface RestoreItem {
  key: string;
  size: number;
  etag: string;
  read: { bucket: string; key: string; versionId?: string };
  /** A backup set's manifest entry (SHA-256, content type, metadata recorded at backup time). */
  entry?: ManifestEntry;
}

export function filesRestoreActivities(ports: Ports) {
  const { config } = ports;

  const engineFor = (origin: Extract<FilesRestoreOrigin, { kind: 'backup' }>) =>
    new FileBackupEngine({ source: { bucket: origin.sourceBucket }, backup: { s3: ports.objectStore(origin.store), bucket: origin.bucket, root: filesRoot(origin.root, origin.sourceBucket), name: origin.store } });

  /** Every object the origin holds (a set's manifest without its deleted entries, or the versions at the time), as restore items. */
  const itemsOf = async (origin: FilesRestoreOrigin, prefix?: string): Promise<RestoreItem[]> => {
    if (origin.kind === 'backup') {
      const engine = engineFor(origin);
      const manifest = await engine.readManifest(origin.timestamp);
      if (!manifest) throw refuse(`backup set ${origin.timestamp} has no manifest in ${origin.store}/${origin.bucket}, so it cannot be restored from there: pick another set from \`lifeboat backups list\`.`);
      return manifest.entries
        .filter((e) => e.change !== 'deleted' && (!prefix || e.key.startsWith(prefix)))
        .map((e) => ({ key: e.key, size: e.size, etag: e.etag, read: { bucket: origin.bucket, key: engine.objectKey(e.storedIn, e.key) }, entry: e }));
    }
    const versions = await objectsAt(ports.objectStore(origin.store), origin.bucket, prefix, new Date(origin.at));
    return versions.map((v) => ({ key: v.key, size: v.size, etag: v.etag, read: { bucket: origin.bucket, key: v.key, versionId: v.versionId } }));
  };

  const selectedItems = async (origin: FilesRestoreOrigin, selection: FilesRestoreSelection): Promise<RestoreItem[]> => {
    const keySet = selection.keys ? new Set(selection.keys) : undefined;
    return (await itemsOf(origin, selection.keys ? undefined : selection.prefix)).filter((i) => selects(selection, i.key, keySet));
  };

  /** The newest verified set completed at or before `at`, to name in a refusal. */
  const setBefore = async (target: string, at: Date): Promise<string | undefined> => {
    const rows = await ports.catalog.query<{ engine_backup_id: string }>(
      "SELECT engine_backup_id FROM backups WHERE target = $1 AND status = 'verified' AND backup_type LIKE 'files-%' AND completed_at <= $2 ORDER BY completed_at DESC LIMIT 1",
      [target, at.toISOString()],
    );
    return rows[0]?.engine_backup_id;
  };

  const chooseSet = async (target: BucketTarget, backup: string): Promise<FilesRestoreOrigin> => {
    const rows = (
      await ports.catalog.query<FilesRow>(
        "SELECT id::text, engine_backup_id, completed_at, locations, details FROM backups WHERE target = $1 AND status = 'verified' AND backup_type LIKE 'files-%' ORDER BY completed_at DESC NULLS LAST",
        [target.name],
      )
    ).filter((r) => r.locations.primary?.bucket && !r.locations.primary.failed && r.completed_at);
    if (!rows.length) throw refuse(`${target.name} has no verified files backup to restore from: take one (lifeboat backup ${target.name}), or restore --to <time> from the bucket's versions.`);
    const row = backup === 'latest' ? rows[0] : rows.find((r) => r.engine_backup_id === backup || r.id === backup);
    if (!row) throw refuse(`${target.name} has no verified files backup "${backup}": pick one from \`lifeboat backups list --target ${target.name}\`, or --backup latest.`);
    const l = row.locations.primary!;
    return { kind: 'backup', store: l.store, bucket: l.bucket, root: l.root, timestamp: l.timestamp ?? row.engine_backup_id, sourceBucket: row.details.sourceBucket ?? target.source.bucket, catalogId: row.id, takenAt: row.completed_at!.toISOString() };
  };

  /**
   * The catalog's record of a files restore that reached verification: a `restores` row (what,
   * from which backup or time, by whom, where, objects and bytes, the checks), and for a new bucket
   * the state of the bucket as verified, which its removal compares with (restored_instances).
   */
  const recordFilesRestore = async (plan: ValidatedFilesRestore, checks: FilesRestoreCheck[], to: S3Client): Promise<void> => {
    const run = runOf();
    const ok = checks.every((c) => c.ok);
    const from = plan.origin.kind === 'backup' ? `backup:${plan.origin.timestamp}` : `time:${plan.origin.at}`;
    const where = `${plan.into.kind === 'in-place' ? 'in place: ' : 'new bucket: '}${plan.into.store}/${plan.into.bucket}`;
    const summary = { kind: 'files-restore', workflowId: run.workflowId, runId: run.runId, target: plan.target, origin: plan.origin, selection: plan.selection, into: plan.into, objects: plan.objects, bytes: plan.bytes, checks, reason: plan.reason };
    await ports.catalog.query(
      `INSERT INTO restores (workflow_id, target, outcome, restore_point, destination, requested_by, report) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (workflow_id) DO UPDATE SET outcome = EXCLUDED.outcome, destination = EXCLUDED.destination, report = EXCLUDED.report`,
      [run.workflowId, plan.target, ok ? 'restored' : 'verification-failed', from, where, plan.requestedBy ?? 'unknown', JSON.stringify(summary)],
    );
    if (ok && plan.into.kind === 'new-bucket') {
      const state = await bucketFingerprint(to, plan.into.bucket);
      await recordRestoredThing(ports, restoredBucketOf(plan, { store: plan.into.store, bucket: plan.into.bucket, objects: state.objects, bytes: state.bytes, fingerprint: state.fingerprint }));
    }
  };

  return {
    /**
     * Everything the restore will do, decided before anything is written: the set (or the
     * versions at the time), the objects selected, the destination (a new bucket that must not
     * exist, or the versioned source in place: what it overwrites, writes and, with --mirror,
     * deletes). A wrong request is refused with one sentence (RESTORE_REFUSED).
     */
    async validateFilesRestore(input: FilesRestoreInput, workflowId: string): Promise<ValidatedFilesRestore> {
      const target = findBucketTarget(config, input.target);
      const source = ports.objectStore(target.source.store);
      let origin: FilesRestoreOrigin;
      if (input.source.kind === 'backup') {
        origin = await chooseSet(target, input.source.backup);
      } else {
        const at = new Date(input.source.at);
        if (Number.isNaN(at.getTime())) throw refuse(`"${input.source.at}" is not a time: give an ISO-8601 time with a zone, such as 2026-11-21T10:01:00Z.`);
        if (at.getTime() > Date.now()) throw refuse(`the time ${at.toISOString()} is in the future: pick a time before now (${new Date().toISOString()}).`);
        const versioning = await versioningOf(source, target.source.bucket);
        if (versioning !== 'Enabled') {
          const set = await setBefore(target.name, at);
          throw refuse(
            `${target.source.bucket} ${versioning === 'never' ? 'has never kept object versions' : 'has object versioning suspended'}, so lifeboat cannot see it as it was at ${at.toISOString()}: restore from a backup set instead (${set ? `--backup ${set}, the newest taken by then` : `there is no verified set from before then; see \`lifeboat backups list --target ${target.name}\``}).`,
          );
        }
        origin = { kind: 'versions', store: target.source.store, bucket: target.source.bucket, at: at.toISOString() };
      }
      const selection = input.selection;
      const items = await selectedItems(origin, selection);
      if (selection.keys) {
        const found = new Set(items.map((i) => i.key));
        const unknown = selection.keys.filter((k) => !found.has(k));
        if (unknown.length) {
          throw refuse(`${unknown.length} of the ${selection.keys.length} keys in ${selection.keysFrom ?? 'the key list'} ${unknown.length === 1 ? 'is' : 'are'} not in ${describeOrigin(origin)} (${firstFew(unknown.map((k) => JSON.stringify(k)))}): fix the list (keys are case-sensitive, without a leading slash) and ask again.`);
        }
      } else if (!items.length) {
        throw refuse(
          selection.prefix
            ? `no object of ${describeOrigin(origin)} is under the prefix ${JSON.stringify(selection.prefix)}: check the prefix (keys are case-sensitive, without a leading slash).`
            : `${describeOrigin(origin)} holds no object, so there is nothing to restore: pick another set or time.`,
        );
      }
      const objects = items.length;
      const bytes = items.reduce((n, i) => n + i.size, 0);
      const timings = {
        remindAfterMs: input.timings?.remindAfterMs ?? config.approvals.remindAfter * 1000,
        abortAfterMs: input.timings?.abortAfterMs ?? config.approvals.abortAfter * 1000,
        ...(input.timings?.heartbeatMs ? { heartbeatMs: input.timings.heartbeatMs } : {}),
      };
      const base = { target: target.name, environment: target.environment, origin, objects, bytes, selection: describeSelection(selection), timings, requestedBy: input.requestedBy, reason: input.reason };

      if (input.destination.kind === 'new-bucket') {
        const bucket = input.destination.bucket ?? restoreBucketName(workflowId);
        if (await bucketExists(source, bucket)) {
          // This run's own bucket (validation retried after it was made) is fine; anyone else's is not.
          const owner = await drillBucketOwner(source, bucket, RESTORE_BUCKET_MARKER).catch(() => undefined);
          if (!owner || owner.workflowId !== workflowId) {
            throw refuse(`the bucket ${bucket} already exists in ${target.source.store}${owner ? ` (made by restore ${owner.workflowId})` : ''}: a restore goes into a new bucket, so name one that does not exist with --into-bucket.`);
          }
        }
        return { ...base, into: { kind: 'new-bucket', store: target.source.store, bucket } };
      }

      // In place: only over a versioned bucket, where every overwritten object keeps its previous version.
      const versioning = await versioningOf(source, target.source.bucket);
      if (versioning !== 'Enabled') {
        throw refuse(
          `${target.source.bucket} does not keep object versions (${versioning === 'never' ? 'never turned on' : 'suspended'}), so an in-place restore would destroy what it overwrites: restore into a new bucket (leave out --in-place) and copy what you need from there, or turn versioning on first.`,
        );
      }
      const keySet = selection.keys ? new Set(selection.keys) : undefined;
      const now = [...(await currentObjects(source, target.source.bucket, selection.keys ? undefined : selection.prefix)).values()].filter((o) => selects(selection, o.key, keySet));
      const nowByKey = new Map(now.map((o) => [o.key, o]));
      const restoring = new Set(items.map((i) => i.key));
      let overwrite = 0;
      let create = 0;
      let unchanged = 0;
      await forEachLimit(items, 8, async (i) => {
        const current = nowByKey.get(i.key);
        if (!current) create++;
        // Equal only with the same bytes and the same content type and metadata: what the restore leaves alone.
        else if (current.etag === i.etag && current.size === i.size && (await sameHeaders(source, target.source.bucket, i, ports.objectStore(origin.store)))) unchanged++;
        else overwrite++;
      });
      const newer = now.filter((o) => !restoring.has(o.key)).map((o) => o.key);
      const mirror = input.destination.mirror;
      if (mirror && newer.length > MAX_MIRROR_DELETES) {
        throw refuse(`--mirror would delete ${newer.length} objects, over the ${MAX_MIRROR_DELETES} one approval may cover: narrow it with --prefix, or restore without --mirror.`);
      }
      return {
        ...base,
        into: { kind: 'in-place', store: target.source.store, bucket: target.source.bucket },
        inPlace: { overwrite, create, unchanged, newer: newer.length, versioned: true },
        ...(mirror ? { mirrorDeletes: newer } : {}),
      };
    },

    /** The new bucket, tagged with this run as its owner; this run's own (a retried attempt) is adopted, anyone else's refused. */
    async createFilesRestoreBucket(plan: ValidatedFilesRestore): Promise<FilesRestoreBucket> {
      const s3 = ports.objectStore(plan.into.store);
      const { adopted } = await createDrillBucket(s3, plan.into.bucket, { ...runOf(), target: plan.target, createdAt: new Date().toISOString() }, RESTORE_BUCKET_MARKER);
      // On record from the moment it exists: listed, with an expiry; removal waits for the fingerprint the verification records.
      await recordRestoredThing(ports, restoredBucketOf(plan, { store: plan.into.store, bucket: plan.into.bucket, objects: plan.objects, bytes: plan.bytes }));
      return { store: plan.into.store, bucket: plan.into.bucket, adopted };
    },

    /**
     * Copies the selected objects into the destination, each hashed as it streams (a backup
     * set's copy must hash to the manifest's SHA-256, or it is not written). In place, objects
     * already equal to what is restored (ETag, size, content type, metadata) are left alone, so
     * they get no new version. Heartbeats objects and bytes; a cancel stops it between objects.
     */
    async restoreFiles(plan: ValidatedFilesRestore, selection: FilesRestoreSelection): Promise<FilesRestoreCopy> {
      const ctx = Context.current();
      const items = await selectedItems(plan.origin, selection);
      const from = ports.objectStore(plan.origin.store);
      const to = ports.objectStore(plan.into.store);
      const progress = { objectsDone: 0, objectsTotal: items.length, bytesDone: 0, bytesTotal: items.reduce((n, i) => n + i.size, 0) };
      let written = 0;
      let unchanged = 0;
      const current = plan.into.kind === 'in-place' ? await currentObjects(to, plan.into.bucket, selection.keys ? undefined : selection.prefix) : undefined;
      const details = () => ({
        detail: `${progress.objectsDone} of ${progress.objectsTotal} objects, ${formatBytes(progress.bytesDone)} of ${formatBytes(progress.bytesTotal)} into ${plan.into.bucket}`,
        percent: progress.bytesTotal ? Math.floor((progress.bytesDone / progress.bytesTotal) * 100) : 100,
        ...progress,
      });
      await withHeartbeats(
        details,
        () =>
          forEachLimit(items, 4, async (item) => {
            ctx.cancellationSignal.throwIfAborted();
            const now = current?.get(item.key);
            if (now && now.etag === item.etag && now.size === item.size && (await sameHeaders(to, plan.into.bucket, item, from))) {
              unchanged++;
              progress.objectsDone++;
              progress.bytesDone += item.size;
              return;
            }
            const done = await streamObject({
              from: { s3: from, bucket: item.read.bucket, key: item.read.key, versionId: item.read.versionId },
              to: { s3: to, bucket: plan.into.bucket, key: item.key },
              // A set's object carries lifeboat's own metadata in the backup bucket: the manifest says what the source had.
              params: (src) => (item.entry ? { contentType: item.entry.contentType, metadata: item.entry.metadata } : { contentType: src.ContentType, metadata: src.Metadata }),
              ...(item.entry ? { expect: { sha256: item.entry.sha256, size: item.entry.size, what: `The backup copy of ${item.key} (in ${item.entry.storedIn})` } } : {}),
              partSize: 8 * MIB,
              queueSize: 2,
              onBytes: (delta) => (progress.bytesDone += delta),
            });
            if (!done) {
              throw new LifeboatError(
                item.entry
                  ? `The backup copy of ${item.key} is missing from ${plan.origin.bucket} (set ${item.entry.storedIn}): restore from another set.`
                  : `Version ${item.read.versionId} of ${item.key} is gone from ${plan.origin.bucket} (removed since validation): pick another time.`,
                'BACKUP_DAMAGED',
              );
            }
            written++;
            progress.objectsDone++;
          }),
        plan.timings.heartbeatMs,
      );
      return { written, unchanged, bytes: progress.bytesDone };
    },

    /**
     * Reads every restored object back: count and bytes (a new bucket holds exactly the
     * selection), SHA-256 and size against the manifest (or the source version, hashed again),
     * content type, user metadata and single-part ETag.
     */
    async verifyFilesRestore(plan: ValidatedFilesRestore, selection: FilesRestoreSelection): Promise<FilesRestoreCheck[]> {
      const items = await selectedItems(plan.origin, selection);
      const from = ports.objectStore(plan.origin.store);
      const to = ports.objectStore(plan.into.store);
      let hashed = 0;
      const beat = () => Context.current().heartbeat({ detail: `checking ${plan.into.bucket}: ${hashed} of ${items.length} source versions hashed` });
      return withHeartbeats(
        () => ({ detail: `checking ${plan.into.bucket} against ${plan.origin.kind === 'backup' ? `the manifest of ${plan.origin.timestamp}` : `the versions at ${plan.origin.at}`}` }),
        async () => {
          const entries: ManifestEntry[] = [];
          await forEachLimit(items, 4, async (i) => {
            if (i.entry) {
              entries.push(i.entry);
              return;
            }
            entries.push(await versionEntry(from, i));
            hashed++;
          });
          entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
          const checks: FilesRestoreCheck[] = [];
          if (plan.into.kind === 'new-bucket') checks.push({ name: 'object count and bytes', ...(await checkRestoredCount(to, plan.into.bucket, entries, beat)) });
          checks.push({ name: 'content (SHA-256)', ...(await checkRestoredContent(to, plan.into.bucket, entries, entries.length, { beat })) });
          checks.push({ name: 'metadata', ...(await checkRestoredMetadata(to, plan.into.bucket, entries, entries.length, { beat })) });
          const out = checks.map((c) => ({ name: c.name, ok: c.ok, detail: c.detail }));
          await recordFilesRestore(plan, out, to);
          return out;
        },
        plan.timings.heartbeatMs,
      );
    },

    /**
     * --mirror, after the restore verified: deletes the objects the gate listed that are still
     * there (a delete marker each, in this versioned bucket: their versions stay). Objects that
     * appeared after the approval were not approved and are left alone.
     */
    async deleteMirroredObjects(plan: ValidatedFilesRestore): Promise<{ deleted: number; leftAlone: number; detail: string }> {
      const approved = plan.mirrorDeletes ?? [];
      if (plan.into.kind !== 'in-place' || !approved.length) return { deleted: 0, leftAlone: 0, detail: 'nothing to delete' };
      const s3 = ports.objectStore(plan.into.store);
      const now = await currentObjects(s3, plan.into.bucket);
      const still = approved.filter((k) => now.has(k));
      let deleted = 0;
      await withHeartbeats(
        () => ({ detail: `deleting ${deleted} of ${still.length} objects the backup does not have` }),
        async () => {
          for (let i = 0; i < still.length; i += 1000) {
            const batch = still.slice(i, i + 1000);
            const out = await s3.send(new DeleteObjectsCommand({ Bucket: plan.into.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
            if (out.Errors?.length) {
              const e = out.Errors[0];
              throw new LifeboatError(`${out.Errors.length} objects of ${plan.into.bucket} could not be deleted (${e.Key}: ${e.Code} ${e.Message}); lifeboat will retry.`, 'MIRROR_DELETE_FAILED', false);
            }
            deleted += batch.length;
          }
        },
        plan.timings.heartbeatMs,
      );
      return { deleted, leftAlone: approved.length - still.length, detail: `${deleted} objects the backup does not have deleted from ${plan.into.bucket} (each a delete marker: their versions stay)` };
    },

    /** Empties and removes the new bucket, only if its tags name this run; gone already is fine. */
    async removeFilesRestoreBucket(into: Pick<FilesRestoreBucket, 'store' | 'bucket'>): Promise<string> {
      const s3 = ports.objectStore(into.store);
      const done = await withHeartbeats(() => ({ removing: into.bucket }), () => removeDrillBucket(s3, into.bucket, runOf(), RESTORE_BUCKET_MARKER));
      await recordRestoredThingRemoved(ports, restoredThingId('bucket', into), done.detail);
      await ports.catalog.query(`UPDATE restores SET outcome = 'removed-after-failure' WHERE workflow_id = $1`, [runOf().workflowId]);
      return done.detail;
    },
  };
}

/** Whether the object in place already has the content type and metadata the restore would give it. */
async function sameHeaders(s3: S3Client, bucket: string, item: RestoreItem, from: S3Client): Promise<boolean> {
  const here = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: item.key })).catch(() => undefined);
  if (!here) return false;
  let want: { contentType?: string; metadata?: Record<string, string> };
  if (item.entry) want = { contentType: item.entry.contentType, metadata: item.entry.metadata };
  else {
    const there = await from.send(new HeadObjectCommand({ Bucket: item.read.bucket, Key: item.read.key, VersionId: item.read.versionId }));
    want = { contentType: there.ContentType, metadata: there.Metadata };
  }
  const a = want.metadata ?? {};
  const b = here.Metadata ?? {};
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return (want.contentType === undefined || want.contentType === here.ContentType) && [...keys].every((k) => a[k] === b[k]);
}

/** A source version as a manifest entry: hashed again now, with its content type and metadata. */
async function versionEntry(s3: S3Client, i: RestoreItem): Promise<ManifestEntry> {
  const out = await s3.send(new GetObjectCommand({ Bucket: i.read.bucket, Key: i.read.key, VersionId: i.read.versionId }));
  const meter = new Sha256Meter();
  await pipeline(out.Body as Readable, meter, new Writable({ write: (_c, _e, done) => done() }));
  return {
    key: i.key,
    change: 'added',
    size: meter.bytes,
    etag: i.etag,
    sha256: meter.sha256,
    ...(i.read.versionId ? { versionId: i.read.versionId } : {}),
    ...(out.ContentType ? { contentType: out.ContentType } : {}),
    ...(out.Metadata && Object.keys(out.Metadata).length ? { metadata: out.Metadata } : {}),
    storedIn: 'version',
  };
}
