/**
 * Activities of the retention workflow: plan from the catalog (pure rules in
 * src/domain/retention.ts), then expire one backup at a time in every region that holds it:
 *
 *   database backups   the engine's deleteBackup, once per region's handle (pgBackRest: the
 *                      primary and DR repositories; it refuses a set others depend on, or the
 *                      newest full, and that refusal is reported, not overridden)
 *   logical dumps      every version of the dump object in each region's bucket
 *   file backup sets   the manifest first (so a half-deleted set never looks complete), then
 *                      every version under the set's prefix, in each region
 *
 * A backup is marked `expired` in the catalog only once every copy is gone; each expiry and each
 * refusal is a workflow_events row (kind `retention`). Legal holds are checked again just before
 * deleting: the catalog's legal_hold flag, and for file sets the bucket target's held prefixes.
 *
 * Object lock (`backupBuckets`): a copy with a version still under retention is not touched; it
 * is reported "locked until ..." and a later run deletes it. pgBackRest deletes through its own
 * S3 calls without version ids, so in a locked repository bucket an expired set's files stay as
 * noncurrent versions until their lock ends: the outcome says so, with the date.
 *
 * `backupRemoval` is shared with `lifeboat backups delete` (src/activities/backup-deletion.ts),
 * which removes what the lock allows and hides the rest behind delete markers.
 */
import { AbortMultipartUploadCommand, DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BucketTarget, findTarget, LifeboatConfig } from '../config';
import { describeError, LifeboatError } from '../domain/errors';
import type { BackupHandle } from '../domain/ports';
import { ExpiryOutcome, planRetention, RegionDeletion, RetentionCandidate, RetentionItem, RetentionPlan } from '../domain/retention';
import { multipartUploadPages, objectVersionPages } from '../engines/aws-pagination';
import { FileBackupEngine } from '../engines/file-backup';
import { removeAsLockAllows, versionsUnderLock } from '../engines/object-lock';
import { currentWorkflowId } from './context';
import { withHeartbeats } from './heartbeat';
import { Ports } from './ports';
import { insertWorkflowEvent } from '../catalog/catalog';
import { deleteDynamoDbBackup, withDynamoDbPolicies } from './dynamodb';
import { DYNAMODB_BACKUP_TYPE } from '../domain/dynamodb';

export interface BackupRecord {
  id: string;
  target: string;
  backup_type: string;
  engine: string;
  engine_backup_id: string;
  status: string;
  locations: Record<string, Record<string, unknown> | undefined>;
  completed_at: Date | null;
  legal_hold: boolean;
  details: Record<string, unknown>;
}

const LIVE = ['complete', 'verified'];
/** What retention judges: live backups, and failed ones whose leftovers it removes. */
export const JUDGED = [...LIVE, 'failed'];
const REGIONS = ['primary', 'dr'] as const;
export const SELECT_BACKUPS = `SELECT id::text AS id, target, backup_type, engine, engine_backup_id, status, locations, completed_at, legal_hold, details FROM backups`;

/** Which family a catalog row belongs to; retention judges each target's families separately. */
export function backupFamily(row: { backup_type: string; engine: string }): 'files' | 'logical' | 'sqlite' | `database:${string}` {
  if (row.backup_type === 'sqlite') return 'sqlite';
  if (row.backup_type.startsWith('files-')) return 'files';
  if (row.backup_type === 'logical') return 'logical';
  // A directory archive is, like a dump, one encrypted object per region (its target has no other family).
  if (row.backup_type === 'directory') return 'logical';
  return `database:${row.engine}`;
}

/** Removes every version and delete marker of `key` (exact) or under `prefix`; returns how many. */
export async function deleteAllVersions(s3: S3Client, bucket: string, what: { key: string } | { prefix: string }): Promise<number> {
  const prefix = 'key' in what ? what.key : what.prefix;
  if (!prefix) throw new Error('refusing to delete a whole bucket: no key or prefix given');
  let removed = 0;
  for (;;) {
    const found: Array<{ Key: string; VersionId?: string }> = [];
    for await (const page of objectVersionPages(s3, { Bucket: bucket, Prefix: prefix })) {
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
        if ('key' in what && v.Key !== what.key) continue;
        found.push({ Key: v.Key!, VersionId: v.VersionId });
      }
    }
    if (found.length === 0) return removed;
    for (const v of found) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key, ...(v.VersionId ? { VersionId: v.VersionId } : {}) }));
      removed++;
    }
  }
}

/** Aborts every incomplete multipart upload of `key` (exact) or under `prefix`; returns how many. */
export async function abortIncompleteUploads(s3: S3Client, bucket: string, what: { key: string } | { prefix: string }): Promise<number> {
  const prefix = 'key' in what ? what.key : what.prefix;
  if (!prefix) throw new Error('refusing to abort the uploads of a whole bucket: no key or prefix given');
  let aborted = 0;
  for await (const page of multipartUploadPages(s3, { Bucket: bucket, Prefix: prefix })) {
    for (const u of page.Uploads ?? []) {
      if (!u.Key || !u.UploadId || ('key' in what && u.Key !== what.key)) continue;
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
      aborted++;
    }
  }
  return aborted;
}

/** How a removal treats locked copies: retention skips them; a deletion by hand removes what the lock allows. */
export interface RemovalMode {
  byHand: boolean;
  /** Only after a gate approved it: governance-locked versions go too. */
  bypassGovernance: boolean;
  now: Date;
}

/** The configured lock of a bucket, if `backupBuckets` declares it. */
export function configuredLock(config: LifeboatConfig, store: string, bucket: string) {
  return config.backupBuckets.find((b) => b.store === store && b.bucket === bucket);
}

/** Removing one backup's copies in each region: the parts retention and a deletion by hand share. */
export function backupRemoval(ports: Ports) {
  const { config } = ports;

  const bucketTargetOf = (name: string): BucketTarget | undefined => config.targets.buckets.find((b) => b.name === name);

  /** The held prefix a file set touches, if any; undefined when none (or the target has no holds). */
  const fileSetHold = async (row: BackupRecord): Promise<string | undefined> => {
    const target = bucketTargetOf(row.target);
    if (!target?.legalHolds.length) return undefined;
    for (const region of REGIONS) {
      const loc = row.locations[region];
      if (!loc || typeof loc.store !== 'string' || typeof loc.bucket !== 'string') continue;
      const engine = new FileBackupEngine({
        source: { bucket: target.source.bucket },
        backup: { s3: ports.objectStore(loc.store), bucket: loc.bucket, root: String(loc.root ?? ''), name: loc.store },
      });
      const manifest = await engine.readManifest(row.engine_backup_id).catch(() => undefined);
      if (!manifest) continue;
      for (const hold of target.legalHolds) {
        const held = manifest.entries.find((e) => e.change !== 'deleted' && e.key.startsWith(hold.prefix));
        if (held) return `${hold.prefix} (${hold.reason}), e.g. ${held.key}`;
      }
      return undefined;
    }
    return `its manifest cannot be read in any region, so lifeboat cannot rule out objects under legal hold (${target.legalHolds.map((h) => h.prefix).join(', ')})`;
  };

  /**
   * One region's copy in a bucket declared locked. Retention touches nothing while any version is
   * under retention; a deletion by hand removes what the lock allows and hides the rest.
   */
  const removeLocked = async (
    s3: S3Client,
    where: { region: string; store: string; bucket: string; shown: string },
    selections: Array<{ key: string } | { prefix: string }>,
    mode: RemovalMode,
  ): Promise<RegionDeletion> => {
    const path = `${where.store}/${where.bucket}/${where.shown}`;
    if (!mode.byHand) {
      let versions = 0;
      const locked: Array<{ until: string; mode: string }> = [];
      for (const sel of selections) {
        const found = await versionsUnderLock(s3, where.bucket, sel, mode.now);
        versions += found.versions;
        locked.push(...found.locked);
      }
      if (locked.length) {
        const until = locked.map((l) => l.until).sort().at(-1)!;
        const modes = [...new Set(locked.map((l) => l.mode))].join(' and ');
        return { region: where.region, outcome: 'refused', lockedUntil: until, detail: `locked until ${until}: ${locked.length} of ${versions} versions of ${path} are under ${modes} retention, so nothing was deleted; a retention run after that date deletes it` };
      }
    }
    let removed = 0;
    let kept = 0;
    let markers = 0;
    let parts = 0;
    let until: string | undefined;
    for (const sel of selections) {
      const r = await removeAsLockAllows(s3, where.bucket, sel, mode.now, { bypassGovernance: mode.bypassGovernance });
      removed += r.removed;
      kept += r.kept;
      markers += r.markers;
      if (r.lockedUntil && (!until || r.lockedUntil > until)) until = r.lockedUntil;
      parts += await abortIncompleteUploads(s3, where.bucket, sel);
    }
    const uploads = parts ? `, ${parts} incomplete upload${parts > 1 ? 's' : ''} aborted` : '';
    if (kept) {
      return {
        region: where.region,
        outcome: 'deleted',
        lockedUntil: until,
        detail: `removed ${removed} versions of ${path}${uploads}; ${kept} locked versions stay until ${until} (object lock: lifeboat does not remove them early${mode.bypassGovernance ? ', and compliance retention cannot be bypassed' : ''}), hidden behind ${markers} new delete markers`,
      };
    }
    return { region: where.region, outcome: removed + parts ? 'deleted' : 'absent', detail: removed + parts ? `removed ${path} (${removed} versions${uploads})` : `${path} was already gone` };
  };

  /** S3 copies (logical dumps, file sets) in each region the row names. */
  const deleteObjects = async (row: BackupRecord, family: 'files' | 'logical' | 'sqlite', mode: RemovalMode = { byHand: false, bypassGovernance: false, now: new Date() }): Promise<RegionDeletion[]> => {
    const out: RegionDeletion[] = [];
    for (const region of REGIONS) {
      const loc = row.locations[region];
      if (!loc) continue;
      const store = String(loc.store ?? '');
      const bucket = String(loc.bucket ?? '');
      const s3 = ports.objectStore(store);
      const lock = configuredLock(config, store, bucket);
      if (family === 'logical' || family === 'sqlite') {
        const key = String(loc.key ?? '');
        // Each kind's object has its own suffix: a catalog row pointing anywhere else is refused, not deleted.
        const [suffix, what] = family === 'sqlite' ? ['.sqlite.gz.enc', 'SQLite backup'] : row.backup_type === 'directory' ? ['.lbdir.gz.enc', 'directory archive'] : ['.dump.gz.enc', 'logical dump'];
        if (!key.endsWith(suffix)) {
          out.push({ region, outcome: 'refused', detail: `the catalog's key ${JSON.stringify(key)} is not a ${what} object; fix the catalog row` });
          continue;
        }
        if (lock) {
          out.push(await removeLocked(s3, { region, store, bucket, shown: key }, [{ key }], mode));
          continue;
        }
        const n = await deleteAllVersions(s3, bucket, { key });
        // A dump whose worker died mid-upload left parts, not an object.
        const parts = await abortIncompleteUploads(s3, bucket, { key });
        const uploads = parts ? ` and aborted ${parts} incomplete upload${parts > 1 ? 's' : ''}` : '';
        out.push({
          region,
          outcome: n + parts ? 'deleted' : 'absent',
          detail: n || parts ? `removed ${store}/${bucket}/${key} (${n} versions)${uploads}` : `${store}/${bucket}/${key} was already gone`,
        });
      } else {
        const manifestKey = String(loc.manifestKey ?? '');
        const suffix = `${row.engine_backup_id}/manifest.json`;
        if (!manifestKey.endsWith(`/${suffix}`) && manifestKey !== suffix) {
          out.push({ region, outcome: 'refused', detail: `the catalog's manifest key ${JSON.stringify(manifestKey)} does not name set ${row.engine_backup_id}; fix the catalog row` });
          continue;
        }
        const prefix = manifestKey.slice(0, -'manifest.json'.length);
        if (lock) {
          // The manifest first, as below: a half-removed set never reads as complete.
          out.push(await removeLocked(s3, { region, store, bucket, shown: prefix }, [{ key: manifestKey }, { prefix }], mode));
          continue;
        }
        const first = await deleteAllVersions(s3, bucket, { key: manifestKey });
        const rest = await deleteAllVersions(s3, bucket, { prefix });
        const parts = await abortIncompleteUploads(s3, bucket, { prefix });
        const uploads = parts ? `, ${parts} incomplete upload${parts > 1 ? 's' : ''} aborted` : '';
        out.push({
          region,
          outcome: first + rest + parts ? 'deleted' : 'absent',
          detail: first + rest + parts ? `removed set ${store}/${bucket}/${prefix} (${first + rest} object versions${uploads})` : `set ${store}/${bucket}/${prefix} was already gone`,
        });
      }
    }
    return out;
  };

  /** Database backups through their engine, one handle per region. Refusals are reported per region. */
  /**
   * pgBackRest removes a set with plain DeleteObject calls: in a versioned, locked repository bucket
   * they only add delete markers, and the set's files stay as noncurrent versions under the lock
   * (measured on MinIO, see docs/architecture.md). Said here, with when the lock ends.
   */
  const repositoryLockNote = (row: BackupRecord, region: string): { note: string; lockedUntil?: string } | undefined => {
    const target = config.targets.databases.find((d) => d.name === row.target);
    if (!target || target.engine !== 'pgbackrest') return undefined;
    const repo = region === 'dr' ? target.drRepo : target.primaryRepo;
    const bucket = config.backupBuckets.find((b) => b.pgbackrestRepo === repo);
    if (!bucket) return undefined;
    const completed = row.completed_at ?? new Date();
    const until = new Date(completed.getTime() + bucket.objectLock.days * 86_400_000).toISOString();
    return {
      ...(until > new Date().toISOString() ? { lockedUntil: until } : {}),
      note: `repo${repo} is in object-locked bucket ${bucket.store}/${bucket.bucket}: pgBackRest's deletes only added delete markers, and the set's files stay as noncurrent versions until about ${until} (${bucket.objectLock.mode}, ${bucket.objectLock.days} days from the backup); a noncurrent-version lifecycle rule removes them after that`,
    };
  };

  /**
   * A DR copy made by copying the repository brings along the sets it builds on that the DR
   * repository lacked (its full): those belong to no catalog row's DR copy, so nothing else would
   * ever expire them. Once the copy built on one is expired, the base goes too, unless a live row
   * holds it as its own DR copy or pgBackRest still has a set depending on it (the engine refuses:
   * it stays for that one, and goes with it). Returns what it did, for the region's detail.
   */
  const expireCopiedBases = async (row: BackupRecord, handle: BackupHandle): Promise<string> => {
    const bases = handle.copy?.dependsOn ?? [];
    if (bases.length === 0) return '';
    const engine = ports.database(row.target);
    const done: string[] = [];
    // The newest base first: an incr between the full and this set goes before the full it builds on.
    for (const label of [...bases].sort().reverse()) {
      const owner = await ports.catalog.query<{ id: string }>(
        `SELECT id FROM backups WHERE target = $1 AND id <> $2 AND status NOT IN ('expired', 'deleted') AND locations->'dr'->'handle'->>'backupId' = $3 LIMIT 1`,
        [row.target, row.id, label],
      );
      if (owner.length) {
        done.push(`kept ${label} (the DR copy of catalog row ${owner[0].id})`);
        continue;
      }
      try {
        await engine.deleteBackup({ engine: handle.engine, backupId: label, location: handle.location, ...(handle.locator ? { locator: handle.locator } : {}) }, { copiedBase: true });
        done.push(`expired ${label}, copied there only as its base`);
      } catch (err) {
        if (!(err instanceof LifeboatError && err.nonRetryable)) throw err;
        done.push(`kept its base ${label} (${err.code}: still needed)`);
      }
    }
    return `; ${done.join('; ')}`;
  };

  const deleteDatabaseBackups = async (row: BackupRecord): Promise<RegionDeletion[]> => {
    const engine = ports.database(row.target);
    const handles: Array<{ region: string; handle: BackupHandle }> = [];
    for (const region of REGIONS) {
      // The databaseBackup workflow records { region, handle, ... } per region; a bare handle is accepted too.
      const loc = row.locations[region];
      const handle = (loc && typeof loc.handle === 'object' && loc.handle ? loc.handle : loc) as Partial<BackupHandle> | undefined;
      if (handle && typeof handle.backupId === 'string') handles.push({ region, handle: { engine: row.engine as BackupHandle['engine'], location: region, ...handle } as BackupHandle });
    }
    if (handles.length === 0) handles.push({ region: 'primary', handle: { engine: row.engine as BackupHandle['engine'], backupId: row.engine_backup_id, location: 'primary' } });
    const out: RegionDeletion[] = [];
    for (const { region, handle } of handles) {
      const what = `${handle.name ?? handle.backupId} (${handle.locator ?? handle.location})`;
      try {
        await engine.deleteBackup(handle);
        const lock = repositoryLockNote(row, region);
        const bases = region === 'dr' ? await expireCopiedBases(row, handle) : '';
        out.push({ region, outcome: 'deleted', detail: `expired ${what}${bases}${lock ? `; ${lock.note}` : ''}`, ...(lock?.lockedUntil ? { lockedUntil: lock.lockedUntil } : {}) });
      } catch (err) {
        if (err instanceof LifeboatError && err.nonRetryable) out.push({ region, outcome: 'refused', detail: `${err.code}: ${err.message}` });
        else throw err;
      }
    }
    return out;
  };

  return { fileSetHold, deleteObjects, deleteDatabaseBackups };
}

export function retentionActivities(ports: Ports) {
  const { config } = ports;
  const { fileSetHold, deleteObjects, deleteDatabaseBackups } = backupRemoval(ports);

  const candidatesOf = (rows: BackupRecord[], holds: Map<string, string>): RetentionCandidate[] => {
    const seriesOf = (r: BackupRecord) => `${r.target}/${backupFamily(r)}`;
    const idByName = new Map(rows.map((r) => [`${seriesOf(r)}\n${r.engine_backup_id}`, r.id]));
    return rows.map((r) => {
      const deps = Array.isArray(r.details?.dependsOn) ? (r.details.dependsOn as unknown[]).map(String) : [];
      return {
        id: r.id,
        series: seriesOf(r),
        completedAt: r.completed_at ? r.completed_at.toISOString() : '',
        verified: r.status === 'verified',
        ...(r.status === 'failed' ? { failed: true } : {}),
        ...(r.legal_hold ? { legalHold: 'the catalog marks it legal_hold' } : holds.has(r.id) ? { legalHold: holds.get(r.id)! } : {}),
        dependsOn: deps.map((name) => idByName.get(`${seriesOf(r)}\n${name}`)).filter((id): id is string => id !== undefined),
      };
    });
  };

  const record = async (row: BackupRecord, outcome: ExpiryOutcome, reason: string) => {
    const workflowId = currentWorkflowId();
    const details = { catalogId: row.id, backupType: row.backup_type, engine: row.engine, engineBackupId: row.engine_backup_id, reason, regions: outcome.regions, detail: outcome.detail };
    await ports.catalog.withClient(async (c) => {
      await c.query('BEGIN');
      try {
        if (outcome.outcome === 'expired') {
          const updated = await c.query(
            `UPDATE backups SET status = 'expired', details = details || jsonb_build_object('retention', $2::jsonb) WHERE id = $1 AND status = ANY($3) RETURNING id`,
            [row.id, JSON.stringify({ expiredAt: new Date().toISOString(), workflowId, reason, regions: outcome.regions, wasStatus: row.status }), JUDGED],
          );
          if (updated.rowCount) await insertWorkflowEvent(c, { workflowId, kind: 'retention', target: row.target, event: 'backup-expired', details });
        } else {
          await insertWorkflowEvent(c, { workflowId, kind: 'retention', target: row.target, event: 'backup-expiry-refused', details });
        }
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  };


  /**
   * Deletes one backup in every region that holds it, and records what happened. Idempotent:
   * copies already gone count as deleted, a row already expired is skipped. `databaseOnly`: the
   * caller is the target's agent, which removes pgBackRest sets and nothing else.
   */
  const expire = async (catalogId: string, reason: string, databaseOnly: boolean): Promise<ExpiryOutcome> => {
    const [row] = await ports.catalog.query<BackupRecord>(`${SELECT_BACKUPS} WHERE id = $1`, [catalogId]);
    if (!row) throw new LifeboatError(`There is no backup ${catalogId} in the catalog to expire; plan retention again.`, 'BACKUP_NOT_FOUND');
    const base = { catalogId, target: row.target, backupType: row.backup_type, engineBackupId: row.engine_backup_id };
    if (!JUDGED.includes(row.status)) return { ...base, outcome: 'skipped', regions: [], detail: `its status is ${row.status}, not complete, verified or failed: nothing to do` };
    const family = backupFamily(row);
    if (databaseOnly && !family.startsWith('database:')) {
      throw new LifeboatError(`expireDatabaseBackup removes database sets on a target's host only, not the ${row.backup_type} backup ${row.engine_backup_id}: expireBackup removes it centrally.`, 'NOT_A_DATABASE_SET');
    }

    const refuse = async (detail: string): Promise<ExpiryOutcome> => {
      const outcome: ExpiryOutcome = { ...base, outcome: 'refused', regions: [], detail };
      await record(row, outcome, reason);
      return outcome;
    };
    // Holds and dependents are checked again here: they may have appeared since the plan.
    if (row.legal_hold) return refuse('the catalog marks it legal_hold');
    if (family === 'files') {
      const hold = await fileSetHold(row);
      if (hold) return refuse(`legal hold: ${hold}`);
      const dependents = await ports.catalog.query<{ id: string; engine_backup_id: string }>(
        `SELECT id::text AS id, engine_backup_id FROM backups WHERE target = $1 AND backup_type LIKE 'files-%' AND status IN ('running','complete','verified') AND id <> $2 AND details->'dependsOn' ? $3`,
        [row.target, row.id, row.engine_backup_id],
      );
      if (dependents.length) return refuse(`backup sets ${dependents.map((d) => d.engine_backup_id).join(', ')} still use objects stored in it`);
    }

    const regions = await withHeartbeats(
      () => ({ phase: 'expiring', backup: `${row.target} ${row.backup_type} ${row.engine_backup_id}` }),
      async () => {
        try {
          if (row.engine === DYNAMODB_BACKUP_TYPE) return await deleteDynamoDbBackup(ports, row);
          return family.startsWith('database:') ? await deleteDatabaseBackups(row) : await deleteObjects(row, family as 'files' | 'logical' | 'sqlite');
        } catch (err) {
          if (err instanceof LifeboatError) throw err;
          throw new LifeboatError(`Deleting backup ${row.engine_backup_id} of ${row.target} failed (${describeError(err)}); lifeboat will retry.`, 'DELETE_FAILED', false);
        }
      },
    );
    const refused = regions.filter((r) => r.outcome === 'refused');
    const lockedUntil = regions.map((r) => r.lockedUntil).filter((u): u is string => u !== undefined).sort().at(-1);
    const outcome: ExpiryOutcome = refused.length
      ? { ...base, outcome: 'refused', regions, detail: refused.map((r) => `${r.region}: ${r.detail}`).join('; '), ...(lockedUntil ? { lockedUntil } : {}) }
      : { ...base, outcome: 'expired', regions, detail: regions.map((r) => `${r.region}: ${r.detail}`).join('; ') || 'no copies were recorded', ...(lockedUntil ? { lockedUntil } : {}) };
    await record(row, outcome, reason);
    return outcome;
  };

  return {
    /** Reads the catalog's live backups of the targets and decides each by the policy. Writes nothing. */
    async planRetention(targetName: string | undefined, now: string): Promise<RetentionPlan> {
      const other = targetName ? [...config.targets.directories, ...config.targets.sqlite, ...config.targets.dynamodb].find((t) => t.name === targetName) : undefined;
      const targets = targetName ? [other?.name ?? findTarget(config, targetName).name] : [...config.targets.databases, ...config.targets.buckets, ...config.targets.directories, ...config.targets.sqlite, ...config.targets.dynamodb].map((t) => t.name);
      const at = new Date(now);
      if (Number.isNaN(at.getTime())) throw new LifeboatError(`"${now}" is not a time: give retention an ISO-8601 time such as 2026-01-21T04:00:00Z.`, 'BAD_INPUT');
      const rows = await ports.catalog.query<BackupRecord>(`${SELECT_BACKUPS} WHERE status = ANY($1) AND target = ANY($2) ORDER BY id`, [JUDGED, targets]);
      const policy = { daily: config.retention.daily, weekly: config.retention.weekly, monthly: config.retention.monthly };
      const holds = new Map<string, string>();
      let decisions = planRetention(candidatesOf(rows, holds), policy, at);
      // Manifests are read only for file sets the policy would expire, when their target has holds.
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const d of decisions) {
        const row = byId.get(d.id)!;
        if (d.action !== 'expire' || backupFamily(row) !== 'files') continue;
        const hold = await fileSetHold(row);
        if (hold) holds.set(row.id, hold);
      }
      if (holds.size) decisions = planRetention(candidatesOf(rows, holds), policy, at);
      decisions = withDynamoDbPolicies(config, candidatesOf(rows, holds), decisions, at);
      const items: RetentionItem[] = decisions.map((d) => {
        const row = byId.get(d.id)!;
        return {
          ...d,
          catalogId: row.id,
          target: row.target,
          backupType: row.backup_type,
          engine: row.engine,
          engineBackupId: row.engine_backup_id,
          regions: REGIONS.filter((r) => row.locations?.[r]),
        };
      });
      return { now: at.toISOString(), policy, targets, items };
    },

    /** Deletes one backup in every region that holds it, and records what happened (`expire`). */
    async expireBackup(catalogId: string, reason: string): Promise<ExpiryOutcome> {
      return expire(catalogId, reason, false);
    },

    /**
     * expireBackup of a database set, on its target's host (its agent), where pgBackRest and the
     * repositories' configuration are: the same checks and records. Dumps and file sets are S3
     * objects, removed centrally: refused here.
     */
    async expireDatabaseBackup(catalogId: string, reason: string): Promise<ExpiryOutcome> {
      return expire(catalogId, reason, true);
    },
  };
}
