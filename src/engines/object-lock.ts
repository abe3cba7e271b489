/**
 * S3 Object Lock on backup buckets: what a bucket's lock is, which versions of a backup are still
 * under retention, and removing a backup's versions without ever fighting the lock. Governance
 * retention is bypassed only when the caller says a gate approved it; compliance never can be.
 */
import { DeleteObjectCommand, GetObjectLockConfigurationCommand, GetObjectRetentionCommand, type S3Client } from '@aws-sdk/client-s3';
import { objectVersionPages } from './aws-pagination';

export type LockMode = 'GOVERNANCE' | 'COMPLIANCE';

/** A bucket's lock as S3 reports it. */
export interface BucketLock {
  enabled: boolean;
  /** The default retention every new version gets, when the bucket has one. */
  mode?: LockMode;
  days?: number;
  years?: number;
}

/** One object version still under retention. */
export interface LockedVersion {
  key: string;
  versionId: string;
  mode: LockMode;
  until: string;
}

/** What a backup's versions are: every version (not delete markers) and those still locked. */
export interface VersionsUnderLock {
  versions: number;
  locked: LockedVersion[];
  /** The latest retain-until date among the locked versions: when the whole backup becomes deletable. */
  lockedUntil?: string;
  mode?: LockMode;
}

const errorName = (err: unknown) => (err as { name?: string; Code?: string })?.name ?? (err as { Code?: string })?.Code ?? '';

/** The bucket's Object Lock configuration; `enabled: false` when the bucket has none. */
export async function readBucketLock(s3: S3Client, bucket: string): Promise<BucketLock> {
  let answer;
  try {
    answer = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
  } catch (err) {
    // AWS and MinIO both name it this way; MinIO answers a bucket made without the lock with it too.
    if (errorName(err) === 'ObjectLockConfigurationNotFoundError') return { enabled: false };
    throw err;
  }
  const config = answer?.ObjectLockConfiguration;
  const retention = config?.Rule?.DefaultRetention;
  return {
    enabled: config?.ObjectLockEnabled === 'Enabled',
    ...(retention?.Mode ? { mode: retention.Mode as LockMode } : {}),
    ...(retention?.Days !== undefined ? { days: retention.Days } : {}),
    ...(retention?.Years !== undefined ? { years: retention.Years } : {}),
  };
}

type Selection = { key: string } | { prefix: string };

async function versionsOf(s3: S3Client, bucket: string, what: Selection): Promise<{ versions: Array<{ key: string; versionId: string; latest: boolean }>; markers: Array<{ key: string; versionId: string; latest: boolean }> }> {
  const prefix = 'key' in what ? what.key : what.prefix;
  if (!prefix) throw new Error('refusing to look at a whole bucket: no key or prefix given');
  const versions: Array<{ key: string; versionId: string; latest: boolean }> = [];
  const markers: Array<{ key: string; versionId: string; latest: boolean }> = [];
  for await (const page of objectVersionPages(s3, { Bucket: bucket, Prefix: prefix })) {
    for (const v of page.Versions ?? []) if (!('key' in what) || v.Key === what.key) versions.push({ key: v.Key!, versionId: v.VersionId ?? 'null', latest: v.IsLatest === true });
    for (const m of page.DeleteMarkers ?? []) if (!('key' in what) || m.Key === what.key) markers.push({ key: m.Key!, versionId: m.VersionId ?? 'null', latest: m.IsLatest === true });
  }
  return { versions, markers };
}

/** Every version of `key` (exact) or under `prefix`, and which of them are retained past `now`. */
export async function versionsUnderLock(s3: S3Client, bucket: string, what: Selection, now: Date): Promise<VersionsUnderLock> {
  const { versions } = await versionsOf(s3, bucket, what);
  const locked: LockedVersion[] = [];
  for (const v of versions) {
    let retention;
    try {
      retention = (await s3.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: v.key, VersionId: v.versionId }))).Retention;
    } catch (err) {
      // A version written without retention (before the lock, or with it shortened away) is not locked.
      if (['NoSuchObjectLockConfiguration', 'ObjectLockConfigurationNotFoundError'].includes(errorName(err))) continue;
      throw err;
    }
    const until = retention?.RetainUntilDate;
    if (until && until.getTime() > now.getTime() && retention?.Mode) locked.push({ key: v.key, versionId: v.versionId, mode: retention.Mode as LockMode, until: until.toISOString() });
  }
  const latest = locked.reduce<LockedVersion | undefined>((a, b) => (!a || b.until > a.until ? b : a), undefined);
  // Compliance wins: one compliance version makes the backup undeletable by anyone until its date.
  const mode = locked.length ? (locked.some((l) => l.mode === 'COMPLIANCE') ? 'COMPLIANCE' : 'GOVERNANCE') : undefined;
  return { versions: versions.length, locked, ...(latest ? { lockedUntil: latest.until } : {}), ...(mode ? { mode } : {}) };
}

export interface LockedRemoval {
  /** Versions (and delete markers) removed for good. */
  removed: number;
  /** Locked versions that stay; the backup's keys now end in a delete marker, so nothing reads them as current. */
  kept: number;
  /** Delete markers written over kept versions. */
  markers: number;
  lockedUntil?: string;
}

/**
 * Removes a backup from a locked bucket as far as the lock allows: every version not under
 * retention goes; a locked version stays (S3 would refuse, and lifeboat does not try), and its key
 * gets a delete marker so the backup no longer reads as present. With `bypassGovernance` (only
 * after a gate approved it) governance-locked versions go too; compliance-locked ones never do.
 */
export async function removeAsLockAllows(s3: S3Client, bucket: string, what: Selection, now: Date, options: { bypassGovernance: boolean }): Promise<LockedRemoval> {
  const lock = await versionsUnderLock(s3, bucket, what, now);
  const stays = (v: { key: string; versionId: string }) => {
    const l = lock.locked.find((x) => x.key === v.key && x.versionId === v.versionId);
    return l !== undefined && !(options.bypassGovernance && l.mode === 'GOVERNANCE');
  };
  const { versions, markers } = await versionsOf(s3, bucket, what);
  let removed = 0;
  const keptKeys = new Set<string>();
  let kept = 0;
  for (const v of versions) {
    if (stays(v)) {
      keptKeys.add(v.key);
      kept++;
      continue;
    }
    const bypass = options.bypassGovernance && lock.locked.some((x) => x.key === v.key && x.versionId === v.versionId);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.key, VersionId: v.versionId, ...(bypass ? { BypassGovernanceRetention: true } : {}) }));
    removed++;
  }
  // Old delete markers of keys that are gone entirely go too; a kept key keeps (or gets) a marker on top.
  for (const m of markers) {
    if (keptKeys.has(m.key)) continue;
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: m.key, VersionId: m.versionId }));
    removed++;
  }
  let written = 0;
  for (const key of keptKeys) {
    if (markers.some((m) => m.key === key && m.latest)) continue;
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    written++;
  }
  const remaining = lock.locked.filter((l) => keptKeys.has(l.key));
  const until = remaining.reduce<string | undefined>((a, b) => (!a || b.until > a ? b.until : a), undefined);
  return { removed, kept, markers: written, ...(until ? { lockedUntil: until } : {}) };
}
