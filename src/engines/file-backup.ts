/**
 * Backups of S3 buckets: full (every current object) or incremental (only objects new or
 * changed since the previous backup, by ETag and size), streamed object by object with bounded
 * concurrency into
 *
 *   <backup bucket>/<root>/<timestamp>/objects/<key>     the bytes copied by this backup
 *   <backup bucket>/<root>/<timestamp>/manifest.json     written last: its presence = complete
 *
 * where root defaults to `files/<source bucket>` and the timestamp comes from the caller (the
 * workflow), so a retried activity writes to the same place and adopts a finished backup. The
 * manifest lists every object the source held, with size, ETag, SHA-256 (computed while
 * copying), version id, and `storedIn`: the timestamp of the backup whose objects/ holds its
 * bytes (this one for copied objects, an earlier one for unchanged objects of an incremental).
 * Objects deleted from the source since the base backup are `deleted` entries that still say
 * where their last copy lives.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectCommandOutput,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { BackupVerification } from '../domain/ports';
import { LifeboatError, describeError } from '../domain/errors';
import { isAwsError, s3Error } from './aws-errors';
import { Sha256Meter, uploadFromStreams } from './crypto-stream';
import type { FilesBackupTotals } from '../domain/files-backup';

export const FILE_BACKUP_FORMAT = 'lifeboat-file-backup/1';
const MIB = 1024 * 1024;
const PROGRESS_INTERVAL_MS = 250;
const TIMESTAMP = /^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$/;

/** A bucket in one object store. */
export interface BucketLocation {
  s3: S3Client;
  bucket: string;
  /** Name of the store for results and messages (`primary`, `dr`). */
  name?: string;
}

/** Where backup sets live: a bucket and the root prefix of this source's sets in it. */
export interface BackupSetLocation extends BucketLocation {
  /** Default `files/<source bucket>`. */
  root?: string;
}

export interface FileBackupOptions {
  /** The bucket backed up; its client is needed only by `backup`. */
  source: { s3?: S3Client; bucket: string; name?: string };
  backup: BackupSetLocation;
  /** Objects copied at once (default 4). */
  concurrency?: number;
  /** Multipart part size for large objects (default 8 MiB, at least 5 MiB). */
  partSize?: number;
  /** Parts of one object uploaded at once (default 2). */
  queueSize?: number;
}

/**
 * `added`: copied by this backup and not in its base (every object of a full backup);
 * `modified`: copied because its ETag or size changed; `unchanged`: bytes live in an earlier
 * backup (`storedIn`); `deleted`: gone from the source since the base.
 */
export type EntryChange = 'added' | 'modified' | 'unchanged' | 'deleted';

export interface ManifestEntry {
  key: string;
  change: EntryChange;
  size: number;
  /** The source's ETag, without quotes. */
  etag: string;
  sha256: string;
  versionId?: string;
  lastModified?: string;
  contentType?: string;
  /** The source object's user metadata, put back on restore. */
  metadata?: Record<string, string>;
  /** Timestamp of the backup whose objects/ holds these bytes. */
  storedIn: string;
}

export interface FileManifest {
  format: typeof FILE_BACKUP_FORMAT;
  kind: 'full' | 'incremental';
  sourceBucket: string;
  timestamp: string;
  /** The backup an incremental is relative to. */
  base?: string;
  createdAt: string;
  totals: FileBackupTotals;
  /** Sorted by key; includes `deleted` entries. */
  entries: ManifestEntry[];
}

/** Totals of one backup set; declared in the domain, which workflows can import. */
export type FileBackupTotals = FilesBackupTotals;

export interface FileBackupResult {
  sourceBucket: string;
  kind: 'full' | 'incremental';
  timestamp: string;
  base?: string;
  bucket: string;
  store?: string;
  manifestKey: string;
  totals: FileBackupTotals;
  createdAt: string;
  /** True when the backup had already completed (its manifest existed). */
  adopted: boolean;
  durationMs: number;
}

export interface FileProgress {
  objectsDone: number;
  objectsTotal: number;
  bytesDone: number;
}

export interface FileVerification extends BackupVerification {
  timestamp: string;
  objects: number;
  bytes: number;
  /** Keys whose content was read and hashed. */
  sampled: string[];
}

export interface FileCopyResult {
  timestamp: string;
  bucket: string;
  store?: string;
  manifestKey: string;
  copied: number;
  /** Already present with the same SHA-256 (from an earlier attempt or copy of a base). */
  skipped: number;
  copiedBytes: number;
  verification: FileVerification;
}

export interface FileRestoreResult {
  timestamp: string;
  /** bucket/prefix restored into. */
  destination: string;
  restored: number;
  bytes: number;
  /** Deleted entries, which are not restored. */
  skippedDeleted: number;
}

/** `2026-01-21T04:00:00.000Z` → `20260121T040000Z`: sortable, and safe in a key. */
export function backupTimestamp(at: string | Date): string {
  const d = typeof at === 'string' ? new Date(at) : at;
  if (Number.isNaN(d.getTime())) throw new LifeboatError(`"${String(at)}" is not a time: give an ISO-8601 time such as 2026-01-21T04:00:00Z.`, 'BAD_INPUT');
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

function checkTimestamp(ts: string): void {
  if (!TIMESTAMP.test(ts)) {
    throw new LifeboatError(
      `The backup timestamp "${ts}" cannot be part of an object key: use letters, digits, dots, hyphens and underscores, such as ${backupTimestamp(new Date(0))} (backupTimestamp() makes one).`,
      'BAD_INPUT',
    );
  }
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/^"|"$/g, '');

function isNotFound(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return isAwsError(err, 'NoSuchKey', 'NotFound') || (status === 404 && !isAwsError(err, 'NoSuchBucket'));
}

/** Runs `fn` over the items, at most `limit` at once; the first failure stops new work and is thrown. */
export async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.err;
}

async function listKeys(s3: S3Client, bucket: string, prefix: string, doing: string): Promise<Array<{ key: string; size: number; etag: string }>> {
  const out: Array<{ key: string; size: number; etag: string }> = [];
  try {
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix || undefined })) {
      for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0, etag: unquote(o.ETag) });
    }
  } catch (err) {
    throw s3Error(err, 'ListObjectsV2', doing, bucket);
  }
  return out;
}

const sink = () => new Writable({ write: (_c, _e, done) => done() });

/**
 * Streams one object from `from` to `to` through a SHA-256 meter. With `expectSha256` the
 * meter refuses to end on a mismatch, so the upload is aborted rather than completed with bad
 * bytes. Returns undefined when the source object no longer exists.
 */
export async function streamObject(args: {
  from: { s3: S3Client; bucket: string; key: string; versionId?: string };
  to: { s3: S3Client; bucket: string; key: string };
  params: (source: GetObjectCommandOutput) => { contentType?: string; metadata?: Record<string, string> };
  expect?: { sha256: string; size: number; what: string };
  partSize: number;
  queueSize: number;
  onBytes?: (delta: number) => void;
}): Promise<{ source: GetObjectCommandOutput; sha256: string; bytes: number } | undefined> {
  const { from, to } = args;
  let source: GetObjectCommandOutput;
  try {
    source = await from.s3.send(new GetObjectCommand({ Bucket: from.bucket, Key: from.key, VersionId: from.versionId }));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw s3Error(err, 'GetObject', `reading ${from.key}`, from.bucket);
  }
  let last = 0;
  const meter = new Sha256Meter(
    (bytes) => {
      args.onBytes?.(bytes - last);
      last = bytes;
    },
    (sha, bytes) => {
      const e = args.expect;
      if (e && (sha !== e.sha256 || bytes !== e.size)) {
        throw new LifeboatError(
          `${e.what} hashes to ${sha} over ${bytes} bytes, not ${e.sha256} over ${e.size} as the manifest records, so it was not copied: the backup copy was altered or damaged; use the other region's copy or take a new full backup.`,
          'BACKUP_DAMAGED',
        );
      }
    },
  );
  const outcome = await uploadFromStreams({
    s3: to.s3,
    bucket: to.bucket,
    key: to.key,
    ...args.params(source),
    streams: [source.Body as Readable, meter],
    partSize: args.partSize,
    queueSize: args.queueSize,
  });
  if (!outcome.ok) {
    const doing = `copying ${from.bucket}/${from.key} to ${to.bucket}/${to.key}`;
    if (outcome.side === 'upload') throw s3Error(outcome.error, 'PutObject', doing, to.bucket);
    if (outcome.error instanceof LifeboatError) throw outcome.error;
    throw new LifeboatError(`Reading failed while ${doing} (${describeError(outcome.error)}); lifeboat will retry.`, 'STREAM_FAILED', false);
  }
  return { source, sha256: meter.sha256, bytes: meter.bytes };
}

/** Calls `fn` with a snapshot of `progress` at most every 250 ms, or at once when forced. */
function reporter(progress: FileProgress, fn: ((p: FileProgress) => void) | undefined): (force?: boolean) => void {
  let last = 0;
  return (force = false) => {
    if (!fn) return;
    const now = Date.now();
    if (!force && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    fn({ ...progress });
  };
}

/** A deterministic sample: the `n` entries ranked first by SHA-256 of timestamp and key. */
function sampleOf(entries: ManifestEntry[], timestamp: string, n: number | 'all'): ManifestEntry[] {
  if (n === 'all' || n >= entries.length) return entries;
  const rank = (e: ManifestEntry) => createHash('sha256').update(`${timestamp}\n${e.key}`).digest('hex');
  return entries
    .map((e) => ({ e, r: rank(e) }))
    .sort((a, b) => (a.r < b.r ? -1 : a.r > b.r ? 1 : 0))
    .slice(0, n)
    .map((x) => x.e);
}

function totalsOf(entries: ManifestEntry[], copiedBytes: number): FileBackupTotals {
  const present = entries.filter((e) => e.change !== 'deleted');
  const count = (c: EntryChange) => entries.filter((e) => e.change === c).length;
  return {
    objects: present.length,
    bytes: present.reduce((n, e) => n + e.size, 0),
    added: count('added'),
    modified: count('modified'),
    unchanged: count('unchanged'),
    deleted: count('deleted'),
    copiedBytes,
  };
}

export class FileBackupEngine {
  private readonly concurrency: number;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(private readonly options: FileBackupOptions) {
    this.concurrency = options.concurrency ?? 4;
    this.partSize = options.partSize ?? 8 * MIB;
    this.queueSize = options.queueSize ?? 2;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new LifeboatError(`The copy concurrency ${this.concurrency} is not a positive whole number: use 1 or more.`, 'BAD_INPUT');
    if (this.partSize < 5 * MIB) throw new LifeboatError(`The multipart part size ${this.partSize} is below S3's minimum: use at least 5 MiB (5242880 bytes).`, 'BAD_INPUT');
    if (options.source.s3 === options.backup.s3 && options.source.bucket === options.backup.bucket) {
      // Each backup would copy the previous ones too.
      throw new LifeboatError(`The bucket ${options.source.bucket} cannot hold its own backups: choose another backup bucket.`, 'BAD_INPUT');
    }
  }

  private get store(): BackupSetLocation {
    return this.options.backup;
  }

  /** Root prefix of this source's backup sets, without a trailing slash. */
  get root(): string {
    return FileBackupEngine.rootOf(this.store, this.options.source.bucket);
  }

  private static rootOf(location: BackupSetLocation, sourceBucket: string): string {
    return (location.root ?? `files/${sourceBucket}`).replace(/^\/+|\/+$/g, '');
  }

  private static setPrefix(root: string, ts: string): string {
    return `${root ? `${root}/` : ''}${ts}/`;
  }

  manifestKey(timestamp: string): string {
    checkTimestamp(timestamp);
    return `${FileBackupEngine.setPrefix(this.root, timestamp)}manifest.json`;
  }

  /** Key of an object's bytes in the backup set `storedIn`. */
  objectKey(storedIn: string, key: string, root = this.root): string {
    return `${FileBackupEngine.setPrefix(root, storedIn)}objects/${key}`;
  }

  /** The manifest of a complete backup, or undefined when there is none. */
  async readManifest(timestamp: string, location: BackupSetLocation = this.store): Promise<FileManifest | undefined> {
    checkTimestamp(timestamp);
    const key = `${FileBackupEngine.setPrefix(FileBackupEngine.rootOf(location, this.options.source.bucket), timestamp)}manifest.json`;
    let text: string;
    try {
      const out = await location.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: key }));
      text = await out.Body!.transformToString('utf8');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw s3Error(err, 'GetObject', `reading the manifest ${key}`, location.bucket);
    }
    let manifest: FileManifest;
    try {
      manifest = JSON.parse(text) as FileManifest;
    } catch {
      throw new LifeboatError(`The manifest ${key} in ${location.bucket} is not valid JSON: it was damaged; take a new full backup.`, 'BACKUP_DAMAGED');
    }
    if (manifest.format !== FILE_BACKUP_FORMAT || !Array.isArray(manifest.entries)) {
      throw new LifeboatError(`The object ${key} in ${location.bucket} is not a ${FILE_BACKUP_FORMAT} manifest: check the backup root in the config.`, 'BACKUP_DAMAGED');
    }
    return manifest;
  }

  private async requireManifest(timestamp: string, location: BackupSetLocation = this.store): Promise<FileManifest> {
    const manifest = await this.readManifest(timestamp, location);
    if (manifest) return manifest;
    throw new LifeboatError(
      `There is no complete backup ${timestamp} of ${this.options.source.bucket} in ${location.bucket} (no manifest under ${FileBackupEngine.setPrefix(FileBackupEngine.rootOf(location, this.options.source.bucket), timestamp)}): check the timestamp in the catalog.`,
      'BACKUP_NOT_FOUND',
    );
  }

  /** Timestamps of complete backups (those with a manifest), oldest first. */
  async listBackups(): Promise<string[]> {
    const prefix = this.root ? `${this.root}/` : '';
    const candidates: string[] = [];
    try {
      for await (const page of paginateListObjectsV2({ client: this.store.s3 }, { Bucket: this.store.bucket, Prefix: prefix || undefined, Delimiter: '/' })) {
        for (const p of page.CommonPrefixes ?? []) candidates.push(p.Prefix!.slice(prefix.length, -1));
      }
    } catch (err) {
      throw s3Error(err, 'ListObjectsV2', `listing backups of ${this.options.source.bucket}`, this.store.bucket);
    }
    const complete: string[] = [];
    for (const ts of candidates.filter((c) => TIMESTAMP.test(c))) {
      const head = await this.store.s3.send(new HeadObjectCommand({ Bucket: this.store.bucket, Key: this.manifestKey(ts) })).then(
        () => true,
        (err: unknown) => {
          if (isNotFound(err)) return false;
          throw s3Error(err, 'HeadObject', `looking for the manifest of backup ${ts}`, this.store.bucket);
        },
      );
      if (head) complete.push(ts);
    }
    return complete.sort();
  }

  private result(manifest: FileManifest, adopted: boolean, started: number): FileBackupResult {
    return {
      sourceBucket: manifest.sourceBucket,
      kind: manifest.kind,
      timestamp: manifest.timestamp,
      ...(manifest.base ? { base: manifest.base } : {}),
      bucket: this.store.bucket,
      ...(this.store.name ? { store: this.store.name } : {}),
      manifestKey: this.manifestKey(manifest.timestamp),
      totals: manifest.totals,
      createdAt: manifest.createdAt,
      adopted,
      durationMs: Date.now() - started,
    };
  }

  /**
   * Backs the source up as `timestamp`. An incremental compares with `base` (default: the latest
   * complete backup before `timestamp`). A backup whose manifest exists is adopted as it is.
   */
  async backup(request: { timestamp: string; mode: 'full' | 'incremental'; base?: string; onProgress?: (p: FileProgress) => void }): Promise<FileBackupResult> {
    const started = Date.now();
    const { timestamp } = request;
    checkTimestamp(timestamp);
    const sourceS3 = this.options.source.s3;
    const sourceBucket = this.options.source.bucket;
    if (!sourceS3) throw new LifeboatError(`The file backup engine for ${sourceBucket} was made without a client for the source store, so it cannot back it up: pass source.s3.`, 'BAD_INPUT');
    const existing = await this.readManifest(timestamp);
    if (existing) return this.result(existing, true, started);

    let base: FileManifest | undefined;
    if (request.mode === 'incremental') {
      const baseTs = request.base ?? (await this.listBackups()).filter((t) => t < timestamp).pop();
      if (!baseTs) {
        throw new LifeboatError(`There is no complete backup of ${sourceBucket} before ${timestamp} to base an incremental on: take a full backup first.`, 'NO_BASE_BACKUP');
      }
      base = await this.requireManifest(baseTs);
    }
    const baseByKey = new Map((base?.entries ?? []).filter((e) => e.change !== 'deleted').map((e) => [e.key, e]));

    const listed = await listKeys(sourceS3, sourceBucket, '', `listing ${sourceBucket} for backup ${timestamp}`);
    const entries: ManifestEntry[] = [];
    const toCopy: Array<{ key: string; size: number; etag: string }> = [];
    for (const o of listed) {
      const before = baseByKey.get(o.key);
      if (before && before.etag === o.etag && before.size === o.size) entries.push({ ...before, change: 'unchanged' });
      else toCopy.push(o);
    }

    const progress = { objectsDone: entries.length, objectsTotal: listed.length, bytesDone: 0 };
    const report = reporter(progress, request.onProgress);

    const copiedKeys = new Set<string>();
    await forEachLimit(toCopy, this.concurrency, async (o) => {
      const copied = await streamObject({
        from: { s3: sourceS3, bucket: sourceBucket, key: o.key },
        to: { s3: this.store.s3, bucket: this.store.bucket, key: this.objectKey(timestamp, o.key) },
        params: (src) => ({
          contentType: src.ContentType,
          metadata: { 'lifeboat-source-etag': unquote(src.ETag), ...(src.VersionId ? { 'lifeboat-source-version': src.VersionId } : {}) },
        }),
        partSize: this.partSize,
        queueSize: this.queueSize,
        onBytes: (delta) => {
          progress.bytesDone += delta;
          report();
        },
      });
      progress.objectsDone++;
      report();
      // Deleted between listing and reading: it is not in this backup.
      if (!copied) return;
      copiedKeys.add(o.key);
      const src = copied.source;
      entries.push({
        key: o.key,
        change: baseByKey.has(o.key) ? 'modified' : 'added',
        size: copied.bytes,
        etag: unquote(src.ETag),
        sha256: copied.sha256,
        ...(src.VersionId && src.VersionId !== 'null' ? { versionId: src.VersionId } : {}),
        ...(src.LastModified ? { lastModified: src.LastModified.toISOString() } : {}),
        ...(src.ContentType ? { contentType: src.ContentType } : {}),
        ...(src.Metadata && Object.keys(src.Metadata).length ? { metadata: src.Metadata } : {}),
        storedIn: timestamp,
      });
    });

    const present = new Set(entries.map((e) => e.key));
    for (const [key, before] of baseByKey) {
      if (!present.has(key)) entries.push({ ...before, change: 'deleted' });
    }
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

    // Objects left by an earlier attempt whose source has since gone would break the count check.
    const setObjects = FileBackupEngine.setPrefix(this.root, timestamp) + 'objects/';
    for (const leftover of await listKeys(this.store.s3, this.store.bucket, setObjects, `tidying backup ${timestamp}`)) {
      if (!copiedKeys.has(leftover.key.slice(setObjects.length))) {
        await this.store.s3.send(new DeleteObjectCommand({ Bucket: this.store.bucket, Key: leftover.key }));
      }
    }

    const manifest: FileManifest = {
      format: FILE_BACKUP_FORMAT,
      kind: request.mode,
      sourceBucket,
      timestamp,
      ...(base ? { base: base.timestamp } : {}),
      createdAt: new Date().toISOString(),
      totals: totalsOf(entries, progress.bytesDone),
      entries,
    };
    await this.putManifest(this.store, this.manifestKey(timestamp), manifest);
    report(true);
    return this.result(manifest, false, started);
  }

  private async putManifest(location: BucketLocation, key: string, manifest: FileManifest): Promise<void> {
    try {
      await location.s3.send(
        new PutObjectCommand({
          Bucket: location.bucket,
          Key: key,
          Body: JSON.stringify(manifest, null, 1),
          ContentType: 'application/json',
          Metadata: { 'lifeboat-format': FILE_BACKUP_FORMAT },
        }),
      );
    } catch (err) {
      throw s3Error(err, 'PutObject', `writing the manifest ${key}`, location.bucket);
    }
  }

  /**
   * Checks a backup against its manifest: every object it copied is there with the recorded
   * size and nothing else is; every object it shares with earlier backups is where `storedIn`
   * says; and a deterministic sample (default 16 objects, or `all`) hashes to the recorded
   * SHA-256. Problems are failed checks with the keys named, not exceptions.
   */
  async verify(timestamp: string, options: { sample?: number | 'all'; location?: BackupSetLocation } = {}): Promise<FileVerification> {
    const location = options.location ?? this.store;
    const root = FileBackupEngine.rootOf(location, this.options.source.bucket);
    const checks: BackupVerification['checks'] = [];
    const manifest = await this.readManifest(timestamp, location);
    if (!manifest) {
      checks.push({ name: 'manifest', ok: false, detail: `no manifest for ${timestamp} in ${location.bucket}: the backup is missing or did not complete` });
      return { ok: false, checks, timestamp, objects: 0, bytes: 0, sampled: [] };
    }
    const present = manifest.entries.filter((e) => e.change !== 'deleted');
    const totals = totalsOf(manifest.entries, 0);
    checks.push({ name: 'manifest', ok: true, detail: `${manifest.kind} backup of ${manifest.sourceBucket}: ${totals.objects} objects, ${totals.bytes} bytes${manifest.base ? `, based on ${manifest.base}` : ''}` });

    const listings = new Map<string, Map<string, number>>();
    const listingOf = async (ts: string) => {
      let listing = listings.get(ts);
      if (!listing) {
        const prefix = `${FileBackupEngine.setPrefix(root, ts)}objects/`;
        const objects = await listKeys(location.s3, location.bucket, prefix, `verifying backup ${timestamp}`);
        listing = new Map(objects.map((o) => [o.key.slice(prefix.length), o.size]));
        listings.set(ts, listing);
      }
      return listing;
    };
    const list = (keys: string[]) => `${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ` and ${keys.length - 5} more` : ''}`;

    const own = present.filter((e) => e.storedIn === timestamp);
    const stored = await listingOf(timestamp);
    const missing = own.filter((e) => !stored.has(e.key)).map((e) => e.key);
    const wrongSize = own.filter((e) => stored.has(e.key) && stored.get(e.key) !== e.size).map((e) => `${e.key} (${stored.get(e.key)} bytes, manifest ${e.size})`);
    const ownKeys = new Set(own.map((e) => e.key));
    const extra = [...stored.keys()].filter((k) => !ownKeys.has(k));
    const ownBytes = own.reduce((n, e) => n + e.size, 0);
    const storedBytes = [...stored.values()].reduce((n, s) => n + s, 0);
    const problems = [
      missing.length ? `missing ${list(missing)}` : '',
      wrongSize.length ? `wrong size ${list(wrongSize)}` : '',
      extra.length ? `not in the manifest ${list(extra)}` : '',
    ].filter(Boolean);
    checks.push(
      problems.length === 0
        ? { name: 'stored objects', ok: true, detail: `${stored.size} objects, ${storedBytes} bytes, as the manifest records` }
        : { name: 'stored objects', ok: false, detail: `${stored.size} objects (${storedBytes} bytes) stored but the manifest records ${own.length} (${ownBytes} bytes): ${problems.join('; ')}` },
    );

    const shared = present.filter((e) => e.storedIn !== timestamp);
    if (shared.length) {
      const broken: string[] = [];
      for (const e of shared) {
        const listing = await listingOf(e.storedIn);
        if (listing.get(e.key) !== e.size) broken.push(`${e.key} (in ${e.storedIn})`);
      }
      const sets = [...new Set(shared.map((e) => e.storedIn))].sort();
      checks.push(
        broken.length === 0
          ? { name: 'earlier backups', ok: true, detail: `${shared.length} unchanged objects present with their recorded sizes in ${sets.join(', ')}` }
          : { name: 'earlier backups', ok: false, detail: `${broken.length} unchanged objects are missing or have another size in the backup that holds them: ${list(broken)}` },
      );
    }

    const sample = sampleOf(present, timestamp, options.sample ?? 16);
    const bad: string[] = [];
    await forEachLimit(sample, this.concurrency, async (e) => {
      const meter = new Sha256Meter();
      try {
        const out = await location.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: this.objectKey(e.storedIn, e.key, root) }));
        await pipeline(out.Body as Readable, meter, sink());
      } catch (err) {
        bad.push(`${e.key}: cannot be read (${isNotFound(err) ? 'missing' : describeError(err)})`);
        return;
      }
      if (meter.sha256 !== e.sha256 || meter.bytes !== e.size) {
        bad.push(`${e.key}: SHA-256 ${meter.sha256.slice(0, 16)}… over ${meter.bytes} bytes, manifest ${e.sha256.slice(0, 16)}… over ${e.size}`);
      }
    });
    bad.sort();
    checks.push(
      bad.length === 0
        ? { name: 'sampled content', ok: true, detail: `${sample.length} of ${present.length} objects hash to their recorded SHA-256` }
        : { name: 'sampled content', ok: false, detail: `${bad.length} of ${sample.length} sampled objects do not match the manifest (altered or damaged; use the other region's copy or take a new full backup): ${bad.join('; ')}` },
    );
    return {
      ok: checks.every((c) => c.ok),
      checks,
      timestamp,
      objects: totals.objects,
      bytes: totals.bytes,
      sampled: sample.map((e) => e.key).sort(),
    };
  }

  /**
   * Copies backup `timestamp` to another store (the DR region): every object its manifest
   * references, including those that live in earlier backups, then the manifest, then verifies
   * the copy the same way as the original (all content hashed unless `sample` says otherwise).
   * Each object is hashed while it streams and aborted on a mismatch; objects already there with
   * the recorded SHA-256 are skipped, so a retry resumes.
   */
  async copyToRegion(timestamp: string, dest: BackupSetLocation, options: { sample?: number | 'all'; onProgress?: (p: FileProgress) => void } = {}): Promise<FileCopyResult> {
    const manifest = await this.requireManifest(timestamp);
    const destRoot = FileBackupEngine.rootOf(dest, this.options.source.bucket);
    const present = manifest.entries.filter((e) => e.change !== 'deleted');
    const progress = { objectsDone: 0, objectsTotal: present.length, bytesDone: 0 };
    const report = reporter(progress, options.onProgress);
    let copied = 0;
    let skipped = 0;

    const existing = new Map<string, Map<string, number>>();
    for (const ts of new Set(present.map((e) => e.storedIn))) {
      const prefix = `${FileBackupEngine.setPrefix(destRoot, ts)}objects/`;
      const objects = await listKeys(dest.s3, dest.bucket, prefix, `copying backup ${timestamp} to ${dest.bucket}`);
      existing.set(ts, new Map(objects.map((o) => [o.key.slice(prefix.length), o.size])));
    }

    await forEachLimit(present, this.concurrency, async (e) => {
      const destKey = this.objectKey(e.storedIn, e.key, destRoot);
      if (existing.get(e.storedIn)?.get(e.key) === e.size) {
        const head = await dest.s3.send(new HeadObjectCommand({ Bucket: dest.bucket, Key: destKey })).catch(() => undefined);
        if (head?.Metadata?.['lifeboat-sha256'] === e.sha256) {
          skipped++;
          progress.objectsDone++;
          report();
          return;
        }
      }
      const done = await streamObject({
        from: { s3: this.store.s3, bucket: this.store.bucket, key: this.objectKey(e.storedIn, e.key) },
        to: { s3: dest.s3, bucket: dest.bucket, key: destKey },
        params: (src) => ({ contentType: src.ContentType, metadata: { ...(src.Metadata ?? {}), 'lifeboat-sha256': e.sha256 } }),
        expect: { sha256: e.sha256, size: e.size, what: `The backup copy of ${e.key} (in ${e.storedIn})` },
        partSize: this.partSize,
        queueSize: this.queueSize,
        onBytes: (delta) => {
          progress.bytesDone += delta;
          report();
        },
      });
      if (!done) {
        throw new LifeboatError(`The backup copy of ${e.key} is missing from ${this.store.bucket} (backup ${e.storedIn}), so backup ${timestamp} cannot be copied: take a new full backup.`, 'BACKUP_DAMAGED');
      }
      copied++;
      progress.objectsDone++;
      report();
    });

    const destManifestKey = `${FileBackupEngine.setPrefix(destRoot, timestamp)}manifest.json`;
    await this.putManifest(dest, destManifestKey, manifest);
    const verification = await this.verify(timestamp, { sample: options.sample ?? 'all', location: dest });
    if (!verification.ok) {
      // Without a manifest the copy does not count as complete; a retry copies again.
      await dest.s3.send(new DeleteObjectCommand({ Bucket: dest.bucket, Key: destManifestKey })).catch(() => undefined);
      const failed = verification.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      throw new LifeboatError(`The copy of backup ${timestamp} in ${dest.bucket} does not verify (${failed.join('; ')}); lifeboat will retry the copy.`, 'COPY_MISMATCH', false);
    }
    report(true);
    return {
      timestamp,
      bucket: dest.bucket,
      ...(dest.name ? { store: dest.name } : {}),
      manifestKey: destManifestKey,
      copied,
      skipped,
      copiedBytes: progress.bytesDone,
      verification,
    };
  }

  /**
   * Puts the objects of backup `timestamp` back into `dest` (under `prefix`, default none),
   * with their content type and user metadata; `deleted` entries are not restored. `keys`
   * limits it to those keys or key prefixes ending in `/`. Each object is hashed while it
   * streams: a damaged copy is never written. An aborted `signal` stops it between objects
   * (objects in flight finish) and rejects with the signal's reason.
   */
  async restore(
    timestamp: string,
    dest: BucketLocation & { prefix?: string },
    options: { keys?: string[]; onProgress?: (p: FileProgress) => void; signal?: AbortSignal } = {},
  ): Promise<FileRestoreResult> {
    const manifest = await this.requireManifest(timestamp);
    const wanted = (key: string) => !options.keys || options.keys.some((k) => (k.endsWith('/') ? key.startsWith(k) : key === k));
    const entries = manifest.entries.filter((e) => e.change !== 'deleted' && wanted(e.key));
    const prefix = dest.prefix ?? '';
    const progress = { objectsDone: 0, objectsTotal: entries.length, bytesDone: 0 };
    const report = reporter(progress, options.onProgress);
    await forEachLimit(entries, this.concurrency, async (e) => {
      options.signal?.throwIfAborted();
      const done = await streamObject({
        from: { s3: this.store.s3, bucket: this.store.bucket, key: this.objectKey(e.storedIn, e.key) },
        to: { s3: dest.s3, bucket: dest.bucket, key: `${prefix}${e.key}` },
        params: () => ({ contentType: e.contentType, metadata: e.metadata }),
        expect: { sha256: e.sha256, size: e.size, what: `The backup copy of ${e.key} (in ${e.storedIn})` },
        partSize: this.partSize,
        queueSize: this.queueSize,
        onBytes: (delta) => {
          progress.bytesDone += delta;
          report();
        },
      });
      if (!done) {
        throw new LifeboatError(`The backup copy of ${e.key} is missing from ${this.store.bucket} (backup ${e.storedIn}): restore from the other region's copy of backup ${timestamp}.`, 'BACKUP_DAMAGED');
      }
      progress.objectsDone++;
      report();
    });
    report(true);
    return {
      timestamp,
      destination: `${dest.bucket}/${prefix}`,
      restored: entries.length,
      bytes: progress.bytesDone,
      skippedDeleted: manifest.entries.filter((e) => e.change === 'deleted' && wanted(e.key)).length,
    };
  }
}
