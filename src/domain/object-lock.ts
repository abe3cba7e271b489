/**
 * Write-once backup buckets: how a configured lock compares with the one a bucket really has.
 * Pure, for the preflight and its tests.
 */
export interface ConfiguredLock {
  mode: 'governance' | 'compliance';
  days: number;
}

export interface FoundLock {
  enabled: boolean;
  mode?: 'GOVERNANCE' | 'COMPLIANCE';
  days?: number;
  years?: number;
}

/** Why the bucket's lock is not what the config says, in one sentence with what to do; undefined when it is. */
export function lockProblem(bucket: string, wanted: ConfiguredLock, found: FoundLock): string | undefined {
  const mode = wanted.mode.toUpperCase();
  if (!found.enabled) {
    return `${bucket} has no object lock, so its backups can be deleted or overwritten: object lock can only be turned on when a bucket is created, so create a new bucket with object lock (${mode}, ${wanted.days} days) and point the backups at it`;
  }
  if (!found.mode || (found.days === undefined && found.years === undefined)) {
    return `${bucket} has object lock on but no default retention, so new backups are not locked: set its default retention to ${mode} ${wanted.days} days (PutObjectLockConfiguration)`;
  }
  const days = found.days ?? (found.years ?? 0) * 365;
  if (found.mode !== mode || days !== wanted.days) {
    return `${bucket} locks new versions ${found.mode} for ${found.days !== undefined ? `${found.days} days` : `${found.years} years`}, but the config says ${mode} for ${wanted.days} days: change the bucket's default retention or the config so they agree`;
  }
  return undefined;
}

export function describeLock(found: FoundLock): string {
  if (!found.enabled) return 'no object lock';
  if (!found.mode) return 'object lock on, no default retention';
  return `object lock ${found.mode} ${found.days !== undefined ? `${found.days} days` : `${found.years} years`}`;
}
