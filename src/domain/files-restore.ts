/**
 * Restoring the objects of a bucket target (`lifeboat restore <bucket target> ...`, the
 * filesRestore workflow): from a files backup set (its manifest gives each object's SHA-256), or
 * as the bucket was at a time (object versions of a versioned source bucket), selected by prefix
 * or key list, into a NEW bucket of this run's own (default) or in place behind the restore gate.
 * Pure types and rules, shared by the CLI, the workflow and its activities. JSON-safe.
 */

/** Where the objects come from: a backup set (its id, catalog id, or `latest`) or the source bucket's versions at a time. */
export type FilesRestoreSource = { kind: 'backup'; backup: string } | { kind: 'time'; at: string };

/** Which objects: all (none given), those under a prefix, or exactly these keys. */
export interface FilesRestoreSelection {
  prefix?: string;
  keys?: string[];
  /** Where the keys came from (the file named by --keys-from), for messages. */
  keysFrom?: string;
}

/** Where the objects go: a new bucket this run makes (named, or `restore-<workflow id>`), or back into the source bucket. */
export type FilesRestoreDestination = { kind: 'new-bucket'; bucket?: string } | { kind: 'in-place'; mirror: boolean };

export interface FilesRestoreInput {
  target: string;
  source: FilesRestoreSource;
  selection: FilesRestoreSelection;
  destination: FilesRestoreDestination;
  requestedBy: string;
  reason: string;
  /** Injectable so tests stay fast; default the config's approvals timings. */
  timings?: { remindAfterMs?: number; abortAfterMs?: number; heartbeatMs?: number };
}

/** Where a set's objects are read from, or which versioned bucket at which time. */
export type FilesRestoreOrigin =
  | { kind: 'backup'; store: string; bucket: string; root: string; timestamp: string; sourceBucket: string; catalogId: string; takenAt: string }
  | { kind: 'versions'; store: string; bucket: string; at: string };

/** What validation found: everything the gate shows and the restore does, fixed before anything is written. */
export interface ValidatedFilesRestore {
  target: string;
  environment: string;
  origin: FilesRestoreOrigin;
  into: { kind: 'new-bucket' | 'in-place'; store: string; bucket: string };
  /** Objects and bytes the selection restores. */
  objects: number;
  bytes: number;
  /** The selection in words ("under photos/", "the 3 keys of keys.txt", "every object"). */
  selection: string;
  /** In place: objects that differ from what is there now (overwritten with a new version), missing now (written), and equal now (left as they are). */
  inPlace?: { overwrite: number; create: number; unchanged: number; newer: number; versioned: true };
  /** In place with --mirror: the objects under the selection that the restore set does not have, deleted after the restore (at most these). */
  mirrorDeletes?: string[];
  timings: { remindAfterMs: number; abortAfterMs: number; heartbeatMs?: number };
  /** Who asked and why, for the catalog's record (missing in plans made before it was kept). */
  requestedBy?: string;
  reason?: string;
}

/** The new bucket a restore made, and who owns it. */
export interface FilesRestoreBucket {
  store: string;
  bucket: string;
  /** True when an earlier attempt of this run had made it already. */
  adopted: boolean;
}

export interface FilesRestoreProgress {
  objectsDone: number;
  objectsTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

/** What the copy came to. */
export interface FilesRestoreCopy {
  /** Objects written (a new bucket: all of them; in place: those that differed or were missing). */
  written: number;
  /** In place: objects already equal to the restored state, left as they were (no new version). */
  unchanged: number;
  bytes: number;
}

export interface FilesRestoreCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export type FilesRestoreOutcome = 'restored' | 'rejected' | 'expired' | 'failed' | 'verification-failed' | 'cancelled';

export interface FilesRestoreReport {
  workflowId: string;
  outcome: FilesRestoreOutcome;
  target: string;
  requestedBy: string;
  reason: string;
  /** The workflow's time when the restore began writing: an in-place restore is undone by restoring --to this time. */
  startedWritingAt?: string;
  plan?: ValidatedFilesRestore;
  copy?: FilesRestoreCopy;
  checks: FilesRestoreCheck[];
  /** In place with --mirror: objects deleted (a delete marker each; their versions stay). */
  mirrorDeleted?: number;
  /** What compensation did, or why nothing needed undoing. */
  cleanup: string[];
  /** How to undo an in-place restore, when it wrote anything. */
  undo?: string;
  failure?: string;
}

/** Tags on a restore's new bucket: the run that made it, so only that run removes it (on failure or cancel). */
export const RESTORE_BUCKET_MARKER = 'lifeboat-restore';

/** S3's bucket naming rule, as people read it. */
export const BUCKET_NAME_RULE = '3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit';
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Why `name` cannot name a new bucket, or undefined when it can. */
export function bucketNameProblem(name: string): string | undefined {
  if (BUCKET_NAME.test(name) && !name.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(name)) return undefined;
  return `${JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name)} is not a valid bucket name: use ${BUCKET_NAME_RULE}.`;
}

/** The default new bucket of a restore: `restore-<workflow id>`, a valid bucket name. */
export function restoreBucketName(workflowId: string): string {
  const cleaned = workflowId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  const name = cleaned.startsWith('restore-') ? cleaned : `restore-${cleaned}`;
  return name.slice(0, 63).replace(/-+$/, '');
}

/** "a, b, c and 4 more": the first few of a list, for one sentence. */
export function firstFew(items: string[], n = 3): string {
  return `${items.slice(0, n).join(', ')}${items.length > n ? ` and ${items.length - n} more` : ''}`;
}

/** The keys of a --keys-from file: one per line, blank lines and `#` comments skipped, each once. */
export function parseKeyList(text: string): string[] {
  const keys = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  return [...new Set(keys)];
}

/** Whether `key` is selected. */
export function selects(selection: FilesRestoreSelection, key: string, keySet?: Set<string>): boolean {
  if (selection.keys) return (keySet ?? new Set(selection.keys)).has(key);
  return !selection.prefix || key.startsWith(selection.prefix);
}

/** The selection in words. */
export function describeSelection(selection: FilesRestoreSelection): string {
  if (selection.keys) return `the ${selection.keys.length} key${selection.keys.length === 1 ? '' : 's'} listed in ${selection.keysFrom ?? 'the key list'}`;
  if (selection.prefix) return `every object under ${selection.prefix}`;
  return 'every object';
}

/** Where the objects come from, in words. */
export function describeOrigin(origin: FilesRestoreOrigin): string {
  return origin.kind === 'backup'
    ? `backup set ${origin.timestamp} (taken ${origin.takenAt}) in ${origin.store}/${origin.bucket}`
    : `the versions of ${origin.store}/${origin.bucket} as they were at ${origin.at}`;
}

/**
 * The restore's request as the CLI can judge it without a network call: one sentence naming
 * what is wrong, or undefined.
 */
export function filesRestoreRequestProblem(o: { backup?: string; to?: string; prefix?: string; keysFrom?: string; intoBucket?: string; inPlace: boolean; mirror: boolean }): string | undefined {
  if (o.backup !== undefined && o.to !== undefined) return 'give --backup <id|latest> or --to <time>, not both: a restore comes from a backup set or from the bucket\'s versions at a time.';
  if (o.backup === undefined && o.to === undefined) return 'a files restore needs --backup <id|latest> (a backup set) or --to <time> (the bucket as it was then, from its object versions).';
  if (o.backup !== undefined && !o.backup.trim()) return '--backup is empty: give a backup id from `lifeboat backups list`, or latest.';
  if (o.prefix !== undefined && o.keysFrom !== undefined) return 'give --prefix or --keys-from, not both.';
  if (o.prefix !== undefined && !o.prefix) return '--prefix is empty: give the key prefix to restore (such as photos/), or leave it out to restore every object.';
  if (o.intoBucket !== undefined && o.inPlace) return 'give --into-bucket <new bucket> or --in-place, not both.';
  if (o.mirror && !o.inPlace) return '--mirror deletes objects the backup does not have, so it applies only to --in-place: a new bucket holds nothing else.';
  if (o.mirror && o.keysFrom !== undefined) return '--mirror applies to a prefix or the whole bucket, not to a key list (a key list names only the objects to put back).';
  if (o.intoBucket !== undefined) return bucketNameProblem(o.intoBucket) ? `--into-bucket ${bucketNameProblem(o.intoBucket)}` : undefined;
  return undefined;
}
