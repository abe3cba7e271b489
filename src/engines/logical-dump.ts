/**
 * Logical backups of a PostgreSQL database: `pg_dump --format=custom` streamed through zstd (the
 * program, all cores; gzip for dumps written before, and where zstd is not installed) and
 * client-side AES-256-GCM (crypto-stream.ts) into S3 by bounded multipart upload, never held in
 * memory whole. pgBackRest stays the tool for physical backups and PITR; these dumps serve
 * table-level restores, portability across major versions and a second, independent copy.
 *
 * Stored object: `<bucket>/<prefix>/<target>/<backupName>.dump.gz.enc` (the suffix is historical:
 * it names every dump, whatever its compression), whose bytes are encrypt(zstd(pg_dump output)),
 * or encrypt(gzip(...)) for older dumps. The compression is declared in the encrypted header's
 * authenticated binding and in the metadata record; readers also tell it by its magic bytes.
 * pg_dump's own compression is off (`--compress=0`) so the data is compressed once. The object's user metadata is its record (see
 * META below). The SHA-256 of the stored bytes is only known once the upload has finished, so
 * the record is completed by a server-side copy of the object onto itself ("sealing"): an object
 * without a complete record is an interrupted backup, and a retry replaces it. A complete record
 * is adopted as is, which makes `backup` idempotent per backup name.
 *
 * The encryption key is given by reference and resolved here, only for the stream that needs
 * it; results carry its key id (a fingerprint), never the key.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable, Transform, TransformCallback, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  HeadObjectCommandOutput,
  S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type { SecretRef } from '../config/fields';
import { resolveSecret } from '../config/load';
import { libpqTlsEnv, PgTls } from './pg-tls';
import { newPgClient } from './pg-client';
import type { Client as PgClient } from 'pg';
import type { BackupVerification } from '../domain/ports';
import { LifeboatError, describeError } from '../domain/errors';
import { isAwsError, s3Error } from './aws-errors';
import { objectVersionPages } from './aws-pagination';
import { createAutoDecompressStream, createCompressStream, zstdAvailable } from './compression';
import { DumpBinding, DumpCompression, ENCRYPTION_FORMAT, EncryptionKey, Keyring, Sha256Meter, createDecryptStream, createEncryptStream, keyForHeader, keyringOf, loadEncryptionKey, parseHeader, uploadFromStreams, HEADER_BYTES, MAX_BINDING_BYTES } from './crypto-stream';
import { countRowsFrom, fanOut } from './archive-rows';
import { activityCancellationSignal, startStreaming, type StreamingChild } from '../platform/processes';

export const LOGICAL_DUMP_FORMAT = 'lifeboat-logical-dump/1';
export const LOGICAL_DUMP_SUFFIX = '.dump.gz.enc';

/** Where a database is reached. The password, if any, is a reference resolved at use. */
export interface PgConnection {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: SecretRef;
  /** TLS for pg_dump, pg_restore and psql (PGSSLMODE, PGSSLROOTCERT). */
  tls?: PgTls;
}

/** A bucket (and key prefix) in one object store. */
export interface DumpStore {
  s3: S3Client;
  bucket: string;
  /** Key prefix the `<target>/<backupName>` layout starts under; '' for the bucket root. */
  prefix?: string;
  /** Name of the store shown in results and messages (`primary`, `dr`). */
  name?: string;
}

export interface LogicalDumpOptions {
  store: DumpStore;
  /** `file:/path` or `env:NAME` holding 32 bytes as 64 hex characters or base64: the key new dumps are written with. */
  encryptionKey: SecretRef;
  /** Older keys, read only: dumps written before a key rotation stay readable. */
  previousEncryptionKeys?: Array<{ keyId: string; key: SecretRef }>;
  /** Directory of pg_dump and pg_restore; default $LIFEBOAT_PG_BIN_DIR, the newest /usr/lib/postgresql/N/bin, then PATH. */
  pgBinDir?: string;
  /** Multipart part size in bytes (default 8 MiB, at least 5 MiB). */
  partSize?: number;
  /** Parts uploaded at once (default 2). Memory in flight is about partSize × (queueSize + 1). */
  queueSize?: number;
  /** Compression of new dumps: zstd (default, when the zstd program is installed) or gzip (Node's zlib, the format before zstd). */
  compression?: DumpCompression;
  /** gzip level 1..9 (default 6), when compressing with gzip. */
  gzipLevel?: number;
  /** zstd level 1..19 (default 3). */
  zstdLevel?: number;
  /** zstd worker threads (default 0: one per core). */
  zstdThreads?: number;
  /** Plaintext bytes per encrypted chunk (default 256 KiB). */
  chunkBytes?: number;
  /** Objects larger than this are sealed by multipart copy (S3's CopyObject stops at 5 GiB). */
  copyObjectLimit?: number;
  /** Part size of multipart copies (default 512 MiB). */
  copyPartSize?: number;
}

/** Names a stored dump. Every result below is one, so it can be passed straight back. */
export interface LogicalBackupRef {
  bucket: string;
  key: string;
}

/** What a complete dump's record says; JSON-safe, for workflow history and the catalog. */
export interface LogicalBackupResult extends LogicalBackupRef {
  store?: string;
  format: string;
  target: string;
  backupName: string;
  /** host:port/database the dump was taken from. */
  source: string;
  /** Bytes and SHA-256 of the stored (encrypted) object. */
  sizeBytes: number;
  sha256: string;
  /** Bytes and SHA-256 of pg_dump's own output, before compression and encryption. */
  dumpBytes: number;
  dumpSha256: string;
  /** Fingerprint of the key it is encrypted with (not the key). */
  keyId: string;
  /** How pg_dump's output is compressed inside the encryption: zstd, or gzip (all dumps before zstd; records without the field are gzip). */
  compression?: DumpCompression;
  createdAt: string;
  versionId?: string;
  /** True when an earlier attempt had already stored it completely. */
  adopted: boolean;
  /**
   * Rows per table (schema.name, as pg_restore names them) in the snapshot the dump was taken
   * from, counted when it was taken; kept in the catalog (not in the object's metadata, which is
   * too small). Missing for a dump adopted from an earlier attempt or taken before they were.
   */
  rowCounts?: Record<string, number>;
}

export interface DumpProgress {
  /** pg_dump output read so far (for restores: archive bytes fed to pg_restore). */
  dumpBytes: number;
  /** Stored bytes uploaded or read so far. */
  storedBytes: number;
}

export interface LogicalVerification extends BackupVerification {
  key: string;
  /** Entries in the archive's table of contents. */
  tocEntries: number;
  /** Tables (schema.name) whose data the archive holds; at most 500 listed. */
  tables: string[];
  durationMs: number;
}

export interface RestoreOptions {
  tables?: string[];
  clean?: boolean;
  /** Streamed restores only: one transaction (default true). */
  singleTransaction?: boolean;
  countRows?: boolean;
  expect?: DumpBinding;
  onProgress?: (p: DumpProgress) => void;
  /** pg_restore --jobs from a local copy of the archive (> 1, with `spool`); 1 (default): streamed. */
  jobs?: number;
  /** Where the local copy goes, and the run's name for it (the file is lifeboat-restore-<name>.dump). */
  spool?: { dir: string; name: string };
}

/** Free space a spooled restore leaves on its disk besides the archive. */
const SPOOL_RESERVE_BYTES = 256 * 1024 * 1024;

/** Bytes an unprivileged writer can still use on the filesystem of `dir`; undefined when it cannot be read. */
function freeBytes(dir: string): number | undefined {
  try {
    const st = fs.statfsSync(dir);
    return st.bavail * st.bsize;
  } catch {
    return undefined;
  }
}

/**
 * Writes the archive to its local file and, when counting, to the counter too. Unlike fanOut, a
 * failed write (ENOSPC) fails the stream, and the end waits until the file has all the bytes.
 */
function spoolSink(file: fs.WriteStream, counter: Writable | undefined): Writable {
  file.on('error', () => undefined);
  const also = counter ? fanOut([counter]) : undefined;
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      let pending = also ? 2 : 1;
      let failed: Error | undefined;
      const settle = (err?: Error | null) => {
        if (err) failed ??= err;
        if (--pending === 0) done(failed);
      };
      file.write(chunk, settle);
      also?.write(chunk, settle);
    },
    final(done) {
      also?.end();
      file.end();
      finished(file).then(() => done(), done);
    },
  });
}

export interface LogicalRestoreResult {
  key: string;
  /** host:port/database restored into. */
  destination: string;
  /** The tables asked for, or `all`. */
  tables: string[] | 'all';
  dumpBytes: number;
  durationMs: number;
  /** Rows per table in the archive (pg_restore's names, e.g. public.orders), when counted. */
  archiveRowCounts?: Record<string, number>;
  /** streamed into one pg_restore, or spooled to a local file for pg_restore --jobs. */
  how: 'streamed' | 'spooled';
}

/**
 * Rows of every ordinary table and partition (their data is what the archive holds), outside
 * system schemas and extensions, as `client`'s transaction sees them: one count(*) after another.
 */
export async function countTableRows(client: Pick<PgClient, 'query'>): Promise<Record<string, number>> {
  const tables = await client.query<{ name: string; sql: string }>(
    `SELECT n.nspname || '.' || c.relname AS name, format('SELECT count(*)::text AS n FROM %I.%I', n.nspname, c.relname) AS sql
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
      ORDER BY 1`,
  );
  const counts: Record<string, number> = {};
  for (const t of tables.rows) counts[t.name] = Number((await client.query<{ n: string }>(t.sql)).rows[0].n);
  return counts;
}

/**
 * A repeatable-read transaction on `source` with its snapshot exported, for pg_dump --snapshot
 * and for counting every table's rows in that same snapshot; undefined when it cannot be had
 * (then pg_dump takes its own snapshot and no counts are recorded). Close it once pg_dump exits.
 */
async function openDumpSnapshot(source: PgConnection): Promise<{ id: string; countRows(): Promise<Record<string, number>>; close(): Promise<void> } | undefined> {
  const client = newPgClient({ host: source.host, port: source.port, database: source.database, user: source.user, password: source.password ? resolveSecret(source.password) : undefined, tls: source.tls });
  try {
    await client.connect();
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const id = (await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0].id;
    return {
      id,
      countRows: () => countTableRows(client),
      async close() {
        await client.query('COMMIT').catch(() => undefined);
        await client.end().catch(() => undefined);
      },
    };
  } catch {
    await client.end().catch(() => undefined);
    return undefined;
  }
}

/** The object's metadata record; S3 lowercases user metadata keys. */
const META = {
  format: 'lifeboat-format',
  encryption: 'lifeboat-encryption',
  keyId: 'lifeboat-key-id',
  target: 'lifeboat-target',
  backupName: 'lifeboat-backup-name',
  source: 'lifeboat-source',
  sha256: 'lifeboat-sha256',
  size: 'lifeboat-size',
  dumpSha256: 'lifeboat-dump-sha256',
  dumpBytes: 'lifeboat-dump-bytes',
  createdAt: 'lifeboat-created-at',
} as const;
/** Metadata that records written before it existed lack: absent means gzip. */
const META_COMPRESSION = 'lifeboat-compression';

const CONTENT_TYPE = 'application/octet-stream';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
const MIB = 1024 * 1024;
const PROGRESS_INTERVAL_MS = 250;
/** Enough bytes for any header: the fixed part and the longest binding. */
const HEADER_PROBE_BYTES = HEADER_BYTES + 2 + MAX_BINDING_BYTES;

function checkName(what: string, value: string): void {
  if (!NAME.test(value)) {
    throw new LifeboatError(
      `The ${what} "${value}" cannot name a backup object: use 1 to 200 letters, digits, dots, hyphens and underscores, starting with a letter or digit.`,
      'BAD_INPUT',
    );
  }
}

/** `<prefix>/<target>/<backupName>.dump.gz.enc`, without a leading or doubled slash. */
export function logicalDumpKey(prefix: string | undefined, target: string, backupName: string): string {
  checkName('target', target);
  checkName('backup name', backupName);
  const base = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  return `${base ? `${base}/` : ''}${target}/${backupName}${LOGICAL_DUMP_SUFFIX}`;
}

/** What the object at `key` must be: its target and backup name, from where it is stored (never from its own metadata). */
export function bindingOfKey(key: string): DumpBinding | undefined {
  const parts = key.split('/');
  const file = parts[parts.length - 1] ?? '';
  if (parts.length < 2 || !file.endsWith(LOGICAL_DUMP_SUFFIX)) return undefined;
  return { target: parts[parts.length - 2], backupName: file.slice(0, -LOGICAL_DUMP_SUFFIX.length) };
}

function describeConnection(c: PgConnection): string {
  return `${c.host}:${c.port}/${c.database}`;
}

function recordFrom(head: HeadObjectCommandOutput, ref: LogicalBackupRef, store: string | undefined): Omit<LogicalBackupResult, 'adopted'> | undefined {
  const m = head.Metadata ?? {};
  const required = Object.values(META);
  if (required.some((k) => !m[k])) return undefined;
  const size = Number(m[META.size]);
  if (m[META.format] !== LOGICAL_DUMP_FORMAT || !Number.isSafeInteger(size) || size !== head.ContentLength) return undefined;
  return {
    bucket: ref.bucket,
    key: ref.key,
    ...(store ? { store } : {}),
    format: m[META.format],
    target: m[META.target],
    backupName: m[META.backupName],
    source: m[META.source],
    sizeBytes: size,
    sha256: m[META.sha256],
    dumpBytes: Number(m[META.dumpBytes]),
    dumpSha256: m[META.dumpSha256],
    keyId: m[META.keyId],
    compression: m[META_COMPRESSION] === 'zstd' ? 'zstd' : 'gzip',
    createdAt: m[META.createdAt],
    ...(head.VersionId && head.VersionId !== 'null' ? { versionId: head.VersionId } : {}),
  };
}

function metadataOf(r: Omit<LogicalBackupResult, 'adopted' | 'bucket' | 'key'>): Record<string, string> {
  return {
    [META.format]: r.format,
    [META.encryption]: ENCRYPTION_FORMAT,
    [META.keyId]: r.keyId,
    [META.target]: r.target,
    [META.backupName]: r.backupName,
    [META.source]: r.source,
    [META.sha256]: r.sha256,
    [META.size]: String(r.sizeBytes),
    [META.dumpSha256]: r.dumpSha256,
    [META.dumpBytes]: String(r.dumpBytes),
    [META.createdAt]: r.createdAt,
    ...(r.compression && r.compression !== 'gzip' ? { [META_COMPRESSION]: r.compression } : {}),
  };
}

function isNotFound(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status === 404 || isAwsError(err, 'NotFound', 'NoSuchKey');
}

async function headObject(s3: S3Client, ref: LogicalBackupRef & { versionId?: string }): Promise<HeadObjectCommandOutput | undefined> {
  try {
    return await s3.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key, ...(ref.versionId ? { VersionId: ref.versionId } : {}) }));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw s3Error(err, 'HeadObject', `looking up ${ref.key}`, ref.bucket);
  }
}

async function getBody(s3: S3Client, ref: LogicalBackupRef & { versionId?: string }): Promise<Readable> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key, VersionId: ref.versionId }));
    return out.Body as Readable;
  } catch (err) {
    if (isNotFound(err)) {
      throw new LifeboatError(`The backup ${ref.key} is not in bucket ${ref.bucket}: check the backup name in the catalog, or take a new backup.`, 'BACKUP_NOT_FOUND');
    }
    throw s3Error(err, 'GetObject', `reading ${ref.key}`, ref.bucket);
  }
}

function copySource(bucket: string, key: string, versionId?: string): string {
  const encoded = key.split('/').map(encodeURIComponent).join('/');
  return `${bucket}/${encoded}${versionId ? `?versionId=${encodeURIComponent(versionId)}` : ''}`;
}

function throttled(fn: ((p: DumpProgress) => void) | undefined): { tick: (p: DumpProgress) => void; final: (p: DumpProgress) => void } {
  let last = 0;
  return {
    tick: (p) => {
      if (!fn) return;
      const now = Date.now();
      if (now - last < PROGRESS_INTERVAL_MS) return;
      last = now;
      fn(p);
    },
    final: (p) => fn?.(p),
  };
}

function newestPgBinDir(): string | undefined {
  if (process.env.LIFEBOAT_PG_BIN_DIR) return process.env.LIFEBOAT_PG_BIN_DIR;
  const root = '/usr/lib/postgresql';
  try {
    const versions = fs
      .readdirSync(root)
      .filter((v) => fs.existsSync(path.join(root, v, 'bin', 'pg_dump')))
      .sort((a, b) => Number(b) - Number(a));
    return versions.length ? path.join(root, versions[0], 'bin') : undefined;
  } catch {
    return undefined;
  }
}

/** Starts a PostgreSQL client program with the connection in its environment, not on its command line. */
function startPgProgram(binDir: string | undefined, program: string, args: string[], conn: PgConnection | undefined, stdin: 'pipe' | 'ignore'): StreamingChild {
  // Only what this call needs: startStreaming adds the allowlisted basics, never the worker's secrets or PG* settings.
  // Named in pg_stat_activity, so a person (or a test) can tell lifeboat's sessions from others.
  const env: NodeJS.ProcessEnv = { PGCONNECT_TIMEOUT: '15', PGAPPNAME: `lifeboat ${program}`, ...libpqTlsEnv(conn?.tls) };
  if (conn?.password) env.PGPASSWORD = resolveSecret(conn.password);
  const command = binDir ? path.join(binDir, program) : program;
  const connArgs = conn ? ['--host', conn.host, '--port', String(conn.port), '--username', conn.user, '--no-password'] : [];
  // pg_dump, pg_restore and psql end with a cancelled activity instead of running on unseen.
  return startStreaming(command, [...connArgs, ...args], { env, stdin });
}

/** A client program's failure as a LifeboatError: bad input and missing things are non-retryable. */
function pgProgramError(program: string, conn: PgConnection, result: { code: number; stderr: string }, doing: string): LifeboatError {
  const said = result.stderr.split('\n').filter(Boolean).slice(-3).join(' / ') || `exit code ${result.code}`;
  const where = describeConnection(conn);
  if (result.code === 127 && said.includes('ENOENT')) {
    return new LifeboatError(`${program} is not installed where lifeboat looks (${said}): install the PostgreSQL client or set LIFEBOAT_PG_BIN_DIR.`, 'TOOL_MISSING');
  }
  if (/database "[^"]*" does not exist/.test(said)) {
    return new LifeboatError(`${program} cannot find the database while ${doing} (${where}: ${said}): create it or fix the database name.`, 'DATABASE_NOT_FOUND');
  }
  if (/password authentication failed|no password supplied|permission denied|role "[^"]*" does not exist|must be owner/.test(said)) {
    return new LifeboatError(`${program} was refused while ${doing} (${where}: ${said}): grant the role the access it needs or fix the user and password reference.`, 'PERMISSION_DENIED');
  }
  if (/server version mismatch|unsupported version/.test(said)) {
    return new LifeboatError(`${program} is older than the server while ${doing} (${said}): install a ${program} at least as new as the server, or set LIFEBOAT_PG_BIN_DIR.`, 'TOOL_VERSION');
  }
  return new LifeboatError(`${program} failed while ${doing} (${where}: ${said}); lifeboat will retry, and if it keeps failing check the database server.`, 'PG_PROGRAM_FAILED', false);
}

/** A pass-through that ends only once `exited` reports success, so an upload never completes a failed dump. */
function exitGate(exited: Promise<{ code: number }>, failure: () => Promise<Error>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      exited.then(
        async (r) => (r.code === 0 ? done() : done(await failure())),
        (err: Error) => done(err),
      );
    },
  });
}

/**
 * Feeds a child's stdin; once the child stops reading (pg_restore --list needs only the table of
 * contents) the rest is drained, so the stages before it still see, hash and authenticate every byte.
 */
function drainingSink(child: ChildProcess): Writable {
  const stdin = child.stdin!;
  let open = true;
  const closed = () => {
    open = false;
  };
  stdin.on('error', closed);
  stdin.on('close', closed);
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      if (!open) return done();
      if (stdin.write(chunk)) return done();
      const resume = () => {
        stdin.off('drain', resume);
        stdin.off('close', resume);
        stdin.off('error', resume);
        done();
      };
      stdin.on('drain', resume);
      stdin.on('close', resume);
      stdin.on('error', resume);
    },
    final(done) {
      if (open) stdin.end();
      done();
    },
  });
}

/** Parses `pg_restore --list`: counts entries and collects the tables that have data. */
function parseToc(listing: string): { entries: number; tables: Set<string>; tableData: Set<string> } {
  const tables = new Set<string>();
  const tableData = new Set<string>();
  let entries = 0;
  for (const line of listing.split('\n')) {
    if (!/^\d+;/.test(line)) continue;
    entries++;
    const m = /^\d+; \d+ \d+ (TABLE DATA|TABLE) (\S+) (\S+) /.exec(line);
    if (!m) continue;
    (m[1] === 'TABLE' ? tables : tableData).add(`${m[2]}.${m[3]}`);
  }
  return { entries, tables, tableData };
}

/** Which stage of reading a dump an error came from, for the check that reports it. */
function failedStage(err: unknown): 'decryption' | 'decompression' | 'read' {
  if (err instanceof LifeboatError && ['BACKUP_DAMAGED', 'BACKUP_MISMATCH', 'WRONG_KEY', 'NOT_A_BACKUP', 'UNSUPPORTED_FORMAT'].includes(err.code)) return 'decryption';
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('Z_') || code === 'DECOMPRESSION_FAILED')) return 'decompression';
  return 'read';
}

const qualify = (table: string) => (table.includes('.') ? table : `public.${table}`);

export class LogicalDumpEngine {
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly pgBinDir: string | undefined;

  constructor(private readonly options: LogicalDumpOptions) {
    this.partSize = options.partSize ?? 8 * MIB;
    this.queueSize = options.queueSize ?? 2;
    if (this.partSize < 5 * MIB) throw new LifeboatError(`The multipart part size ${this.partSize} is below S3's minimum: use at least 5 MiB (5242880 bytes).`, 'BAD_INPUT');
    if (!Number.isInteger(this.queueSize) || this.queueSize < 1) throw new LifeboatError(`The upload queue size ${this.queueSize} is not a positive whole number: use 1 or more.`, 'BAD_INPUT');
    this.pgBinDir = options.pgBinDir ?? newestPgBinDir();
  }

  private get store(): DumpStore {
    return this.options.store;
  }

  /** The current key and the retired ones, resolved now (a missing or mislabelled key fails here). */
  keyring(): Keyring {
    return keyringOf(
      loadEncryptionKey(this.options.encryptionKey),
      (this.options.previousEncryptionKeys ?? []).map((k) => loadEncryptionKey(k.key, k.keyId)),
    );
  }

  /** The compression new dumps get: the configured one; zstd by default when its program is installed, else gzip. */
  compression(): DumpCompression {
    if (this.options.compression) return this.options.compression;
    return zstdAvailable() ? 'zstd' : 'gzip';
  }

  /** Where `backup` puts (or finds) this target's backup of that name. */
  refFor(target: string, backupName: string): LogicalBackupRef {
    return { bucket: this.store.bucket, key: logicalDumpKey(this.store.prefix, target, backupName) };
  }

  /** The complete record of a stored dump, or undefined when there is none (or it is incomplete). */
  async describe(ref: LogicalBackupRef & { versionId?: string }): Promise<LogicalBackupResult | undefined> {
    const head = await headObject(this.store.s3, ref);
    const record = head && recordFrom(head, ref, this.store.name);
    return record ? { ...record, adopted: true } : undefined;
  }

  /**
   * Dumps `source` into the store. Idempotent per (target, backupName): a complete earlier
   * attempt is adopted; an incomplete one is replaced.
   */
  async backup(request: { target: string; backupName: string; source: PgConnection; onProgress?: (p: DumpProgress) => void }): Promise<LogicalBackupResult> {
    const ref = this.refFor(request.target, request.backupName);
    const key = this.keyring().current;
    const existing = await this.describe(ref);
    if (existing) return existing;

    const s3 = this.store.s3;
    const source = request.source;
    const doing = `dumping ${describeConnection(source)} into ${ref.bucket}/${ref.key}`;
    const progress = throttled(request.onProgress);
    // The rows of every table as the dump sees them: one exported snapshot, held open by this
    // transaction, shared by pg_dump (--snapshot) and the counts, so the counts are the dump's.
    const snapshot = await openDumpSnapshot(source);
    const dump = startPgProgram(this.pgBinDir, 'pg_dump', ['--format=custom', '--compress=0', ...(snapshot ? ['--snapshot', snapshot.id] : []), '--dbname', source.database], source, 'ignore');
    const pgFailure = async () => pgProgramError('pg_dump', source, await dump.exited, doing);
    const counted = snapshot ? snapshot.countRows() : Promise.resolve(undefined);

    const compression = this.compression();
    const rawMeter = new Sha256Meter();
    const storedMeter = new Sha256Meter((bytes) => progress.tick({ dumpBytes: rawMeter.bytes, storedBytes: bytes }));
    const outcome = await uploadFromStreams({
      s3,
      bucket: ref.bucket,
      key: ref.key,
      contentType: CONTENT_TYPE,
      // Incomplete on purpose: the record is completed by sealing, once the hashes are known.
      metadata: { [META.format]: LOGICAL_DUMP_FORMAT, [META.target]: request.target, [META.backupName]: request.backupName, [META.keyId]: key.keyId },
      streams: [
        dump.child.stdout!,
        exitGate(dump.exited, pgFailure),
        rawMeter,
        // zstd compresses on every core in its own process, beside pg_dump; encryption and the upload's parts overlap with both.
        createCompressStream(compression, compression === 'zstd' ? { level: this.options.zstdLevel ?? 3, threads: this.options.zstdThreads ?? 0 } : { level: this.options.gzipLevel ?? 6 }) as Transform,
        createEncryptStream(key, { chunkBytes: this.options.chunkBytes, binding: { target: request.target, backupName: request.backupName }, compression }),
        storedMeter,
      ],
      partSize: this.partSize,
      queueSize: this.queueSize,
    });
    if (dump.child.exitCode === null) dump.child.kill('SIGTERM');
    const exit = await dump.exited;
    // Counting failed (a table dropped under a lock wait, a lost connection): the dump is still good; restores then check against its archive.
    const rowCounts = await counted.catch(() => undefined);
    await snapshot?.close();

    if (!outcome.ok) {
      if (activityCancellationSignal()?.aborted) throw outcome.error;
      // An upload that completed from a failed dump is removed; unsealed, it would be redone anyway.
      if (outcome.versionId) {
        await s3.send(new DeleteObjectCommand({ Bucket: ref.bucket, Key: ref.key, VersionId: outcome.versionId })).catch(() => undefined);
      }
      if (outcome.side === 'upload') throw s3Error(outcome.error, 'UploadPart', doing, ref.bucket);
      if (exit.code !== 0) throw pgProgramError('pg_dump', source, exit, doing);
      if (outcome.error instanceof LifeboatError) throw outcome.error;
      throw new LifeboatError(`Streaming the dump failed while ${doing} (${describeError(outcome.error)}); lifeboat will retry.`, 'STREAM_FAILED', false);
    }

    const record: Omit<LogicalBackupResult, 'bucket' | 'key' | 'adopted'> = {
      format: LOGICAL_DUMP_FORMAT,
      target: request.target,
      backupName: request.backupName,
      source: describeConnection(source),
      sizeBytes: storedMeter.bytes,
      sha256: storedMeter.sha256,
      dumpBytes: rawMeter.bytes,
      dumpSha256: rawMeter.sha256,
      keyId: key.keyId,
      compression,
      createdAt: new Date().toISOString(),
      ...(rowCounts ? { rowCounts } : {}),
    };
    progress.final({ dumpBytes: rawMeter.bytes, storedBytes: storedMeter.bytes });
    const versionId = await this.seal(ref, outcome.versionId, record);
    return { bucket: ref.bucket, key: ref.key, ...(this.store.name ? { store: this.store.name } : {}), ...record, ...(versionId ? { versionId } : {}), adopted: false };
  }

  /** Completes the record by copying the object onto itself with full metadata; drops older versions of the key. */
  private async seal(ref: LogicalBackupRef, uploadedVersion: string | undefined, record: Omit<LogicalBackupResult, 'bucket' | 'key' | 'adopted'>): Promise<string | undefined> {
    const s3 = this.store.s3;
    const metadata = metadataOf(record);
    const doing = `recording the checksum of ${ref.key}`;
    const limit = this.options.copyObjectLimit ?? 5 * 1024 * MIB;
    let versionId: string | undefined;
    try {
      if (record.sizeBytes <= limit) {
        const out = await s3.send(
          new CopyObjectCommand({
            Bucket: ref.bucket,
            Key: ref.key,
            CopySource: copySource(ref.bucket, ref.key, uploadedVersion),
            MetadataDirective: 'REPLACE',
            Metadata: metadata,
            ContentType: CONTENT_TYPE,
          }),
        );
        versionId = out.VersionId;
      } else {
        versionId = await this.multipartCopy(ref, uploadedVersion, record.sizeBytes, metadata);
      }
    } catch (err) {
      throw s3Error(err, 'CopyObject', doing, ref.bucket);
    }
    if (versionId && versionId !== 'null') await this.dropOtherVersions(ref, versionId);
    return versionId && versionId !== 'null' ? versionId : undefined;
  }

  private async multipartCopy(ref: LogicalBackupRef, sourceVersion: string | undefined, size: number, metadata: Record<string, string>): Promise<string | undefined> {
    const s3 = this.store.s3;
    const partSize = Math.max(this.options.copyPartSize ?? 512 * MIB, Math.ceil(size / 10000), 5 * MIB);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: ref.bucket, Key: ref.key, Metadata: metadata, ContentType: CONTENT_TYPE }));
    try {
      const parts: Array<{ PartNumber: number; ETag: string }> = [];
      for (let start = 0, n = 1; start < size; start += partSize, n++) {
        const end = Math.min(start + partSize, size) - 1;
        const out = await s3.send(
          new UploadPartCopyCommand({
            Bucket: ref.bucket,
            Key: ref.key,
            UploadId,
            PartNumber: n,
            CopySource: copySource(ref.bucket, ref.key, sourceVersion),
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts.push({ PartNumber: n, ETag: out.CopyPartResult!.ETag! });
      }
      const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: ref.bucket, Key: ref.key, UploadId, MultipartUpload: { Parts: parts } }));
      return done.VersionId;
    } catch (err) {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: ref.bucket, Key: ref.key, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  /** In a versioned bucket, earlier (unsealed or replaced) versions of this exact key are garbage. */
  private async dropOtherVersions(ref: LogicalBackupRef, keep: string): Promise<void> {
    const s3 = this.store.s3;
    for await (const page of objectVersionPages(s3, { Bucket: ref.bucket, Prefix: ref.key })) {
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
        if (v.Key !== ref.key || !v.VersionId || v.VersionId === keep) continue;
        await s3.send(new DeleteObjectCommand({ Bucket: ref.bucket, Key: ref.key, VersionId: v.VersionId }));
      }
    }
  }

  private async requireRecord(ref: LogicalBackupRef & { versionId?: string }, doing: string): Promise<LogicalBackupResult> {
    const record = await this.describe(ref);
    if (record) return record;
    const exists = (await headObject(this.store.s3, ref)) !== undefined;
    throw new LifeboatError(
      exists
        ? `The backup ${ref.key} in ${ref.bucket} is incomplete (it has no complete metadata record) so lifeboat will not use it for ${doing}: run the backup again.`
        : `The backup ${ref.key} is not in bucket ${ref.bucket}, so there is nothing for ${doing}: check the backup name in the catalog.`,
      exists ? 'BACKUP_INCOMPLETE' : 'BACKUP_NOT_FOUND',
    );
  }

  /**
   * The decrypted, decompressed pg_dump archive, exactly as pg_dump wrote it. The stream fails
   * if any chunk does not authenticate or the compressed (zstd or gzip) data is damaged.
   */
  async dumpStream(ref: LogicalBackupRef): Promise<Readable> {
    const keys = this.keyring();
    const body = await getBody(this.store.s3, ref);
    const out = new PassThrough();
    let declared: DumpCompression | undefined;
    pipeline(body, createDecryptStream(keys, { expect: bindingOfKey(ref.key), onHeader: (h) => (declared = h.compression) }), createAutoDecompressStream({ declared: () => declared }), out).catch((err: Error) => out.destroy(err));
    return out;
  }

  /** Hashes the stored object without interpreting it. */
  private async hashStored(ref: LogicalBackupRef): Promise<{ sha256: string; bytes: number }> {
    const meter = new Sha256Meter();
    await pipeline(await getBody(this.store.s3, ref), meter, new Writable({ write: (_c, _e, done) => done() }));
    return { sha256: meter.sha256, bytes: meter.bytes };
  }

  /**
   * Reads the backup back end to end: stored SHA-256, authenticated decryption of every chunk,
   * gzip integrity, SHA-256 of the archive, and `pg_restore --list` over it, which must succeed
   * with a non-empty table of contents holding data for every expected table. Problems are
   * reported as failed checks, not thrown; only an unreadable store throws.
   */
  async verify(ref: LogicalBackupRef, options: { expectedTables?: string[]; onProgress?: (p: DumpProgress) => void } = {}): Promise<LogicalVerification> {
    const started = Date.now();
    const checks: BackupVerification['checks'] = [];
    const finish = (toc = { entries: 0, tables: [] as string[] }): LogicalVerification => ({
      ok: checks.length > 0 && checks.every((c) => c.ok),
      checks,
      key: ref.key,
      tocEntries: toc.entries,
      tables: toc.tables.slice(0, 500),
      durationMs: Date.now() - started,
    });

    const head = await headObject(this.store.s3, ref);
    if (!head) {
      checks.push({ name: 'object', ok: false, detail: `${ref.key} is not in bucket ${ref.bucket}` });
      return finish();
    }
    const record = recordFrom(head, ref, this.store.name);
    checks.push(
      record
        ? { name: 'metadata record', ok: true, detail: `complete: ${record.sizeBytes} bytes stored, ${record.dumpBytes} bytes of pg_dump output, key ${record.keyId}` }
        : { name: 'metadata record', ok: false, detail: 'the object has no complete lifeboat metadata record (an interrupted backup): run the backup again' },
    );
    if (!record) return finish();

    let keys: Keyring;
    let usedKey: EncryptionKey | undefined;
    try {
      keys = this.keyring();
    } catch (err) {
      checks.push({ name: 'decryption', ok: false, detail: describeError(err) });
      return finish();
    }

    const progress = throttled(options.onProgress);
    const storedMeter = new Sha256Meter((bytes) => progress.tick({ dumpBytes: plainMeter.bytes, storedBytes: bytes }));
    const plainMeter = new Sha256Meter();
    let declared: DumpCompression | undefined;
    let detected: DumpCompression | undefined;
    const decrypt = createDecryptStream(keys, {
      expect: bindingOfKey(ref.key),
      onHeader: (h) => {
        usedKey = keys.current.keyId === h.keyId ? keys.current : keys.previous.find((k) => k.keyId === h.keyId);
        declared = h.compression;
      },
    });
    const decompress = createAutoDecompressStream({ declared: () => declared, onDetected: (c) => (detected = c) });
    const list = startPgProgram(this.pgBinDir, 'pg_restore', ['--list'], undefined, 'pipe');
    let listing = '';
    list.child.stdout!.on('data', (d: Buffer) => (listing += d.toString()));

    let streamError: unknown;
    try {
      await pipeline(await getBody(this.store.s3, ref), storedMeter, decrypt, decompress, plainMeter, drainingSink(list.child));
    } catch (err) {
      streamError = err;
    }
    if (list.child.exitCode === null && streamError) list.child.kill('SIGTERM');
    const listed = await list.exited;

    const stored = streamError ? await this.hashStored(ref) : { sha256: storedMeter.sha256, bytes: storedMeter.bytes };
    checks.push(
      stored.sha256 === record.sha256 && stored.bytes === record.sizeBytes
        ? { name: 'stored SHA-256', ok: true, detail: `${stored.sha256} over ${stored.bytes} bytes matches the record` }
        : { name: 'stored SHA-256', ok: false, detail: `the stored object hashes to ${stored.sha256} over ${stored.bytes} bytes but the record says ${record.sha256} over ${record.sizeBytes}: it was altered or damaged` },
    );
    if (streamError) {
      checks.push({ name: failedStage(streamError), ok: false, detail: describeError(streamError) });
      return finish();
    }
    progress.final({ dumpBytes: plainMeter.bytes, storedBytes: storedMeter.bytes });
    checks.push({ name: 'decryption', ok: true, detail: `every chunk authenticated with key ${usedKey?.keyId ?? record.keyId}` });
    checks.push({ name: 'decompression', ok: true, detail: `${detected ?? 'gzip'} stream intact, ${plainMeter.bytes} bytes` });
    checks.push(
      plainMeter.sha256 === record.dumpSha256
        ? { name: 'dump SHA-256', ok: true, detail: `pg_dump output ${plainMeter.sha256} matches the record` }
        : { name: 'dump SHA-256', ok: false, detail: `pg_dump output hashes to ${plainMeter.sha256} but the record says ${record.dumpSha256}` },
    );

    const toc = parseToc(listing);
    const tables = [...toc.tableData].sort();
    if (listed.code !== 0) {
      checks.push({ name: 'pg_restore --list', ok: false, detail: `pg_restore could not read the archive: ${listed.stderr.split('\n').slice(-3).join(' / ') || `exit code ${listed.code}`}` });
      return finish({ entries: toc.entries, tables });
    }
    checks.push(
      toc.entries > 0
        ? { name: 'pg_restore --list', ok: true, detail: `${toc.entries} table-of-contents entries, data for ${toc.tableData.size} tables` }
        : { name: 'pg_restore --list', ok: false, detail: 'the table of contents is empty: the dumped database holds nothing' },
    );
    const expected = (options.expectedTables ?? []).map(qualify);
    if (expected.length) {
      const missing = expected.filter((t) => !toc.tables.has(t) || !toc.tableData.has(t));
      checks.push(
        missing.length === 0
          ? { name: 'expected tables', ok: true, detail: `definition and data present for ${expected.join(', ')}` }
          : { name: 'expected tables', ok: false, detail: `no definition or data for ${missing.join(', ')} (the archive has ${tables.join(', ') || 'no table data'})` },
      );
    } else {
      checks.push({ name: 'tables', ok: toc.tableData.size > 0, detail: toc.tableData.size > 0 ? `data for ${tables.length} tables` : 'the archive holds no table data' });
    }
    return finish({ entries: toc.entries, tables });
  }

  /**
   * Copies a complete dump to another store (another region: no server-side copy between
   * separate S3 endpoints), streaming with bounded multipart upload. The copy carries the same
   * record; bytes whose hash does not match are never completed, and the copy is read back and
   * hashed before it counts. Idempotent: a complete copy with the same hash is adopted.
   * `readBack: false` leaves the read-back to the caller, for one that verifies the copy end to
   * end right after (the logicalBackup workflow does: stored SHA-256, decryption, decompression,
   * pg_restore --list), so the copy is not downloaded twice.
   */
  async copyToRegion(ref: LogicalBackupRef, dest: DumpStore, options: { onProgress?: (p: DumpProgress) => void; readBack?: boolean } = {}): Promise<LogicalBackupResult & { verifiedSha256?: string }> {
    const record = await this.requireRecord(ref, 'a cross-region copy');
    const destRef = { bucket: dest.bucket, key: logicalDumpKey(dest.prefix, record.target, record.backupName) };
    const doing = `copying ${ref.key} to ${dest.name ?? 'the other store'} ${destRef.bucket}/${destRef.key}`;
    const destHead = await headObject(dest.s3, destRef);
    const destRecord = destHead && recordFrom(destHead, destRef, dest.name);
    let adopted = false;
    let versionId: string | undefined;

    if (destRecord && destRecord.sha256 === record.sha256) {
      adopted = true;
      versionId = destRecord.versionId;
    } else {
      const progress = throttled(options.onProgress);
      const meter = new Sha256Meter(
        (bytes) => progress.tick({ dumpBytes: 0, storedBytes: bytes }),
        (sha, bytes) => {
          if (sha !== record.sha256 || bytes !== record.sizeBytes) {
            throw new LifeboatError(`The source object ${ref.key} hashes to ${sha} over ${bytes} bytes, not ${record.sha256} over ${record.sizeBytes} as recorded, so it was not copied: verify the source backup and take a new one if it is damaged.`, 'BACKUP_DAMAGED');
          }
        },
      );
      const outcome = await uploadFromStreams({
        s3: dest.s3,
        bucket: destRef.bucket,
        key: destRef.key,
        contentType: CONTENT_TYPE,
        metadata: metadataOf(record),
        streams: [await getBody(this.store.s3, { ...ref, versionId: record.versionId }), meter],
        partSize: this.partSize,
        queueSize: this.queueSize,
      });
      if (!outcome.ok) {
        if (outcome.side === 'upload') throw s3Error(outcome.error, 'UploadPart', doing, destRef.bucket);
        if (outcome.error instanceof LifeboatError) throw outcome.error;
        throw new LifeboatError(`Reading the source failed while ${doing} (${describeError(outcome.error)}); lifeboat will retry.`, 'STREAM_FAILED', false);
      }
      versionId = outcome.versionId;
      progress.final({ dumpBytes: 0, storedBytes: meter.bytes });
    }

    const { store: _sourceStore, versionId: _sourceVersion, ...rest } = record;
    const result = {
      ...rest,
      bucket: destRef.bucket,
      key: destRef.key,
      ...(dest.name ? { store: dest.name } : {}),
      ...(versionId ? { versionId } : {}),
      adopted,
    };
    if (options.readBack === false) return result;
    // Read back what the other store now serves: that copy is what a failover would restore.
    const readBack = new Sha256Meter();
    try {
      await pipeline(await getBody(dest.s3, { ...destRef, versionId }), readBack, new Writable({ write: (_c, _e, done) => done() }));
    } catch (err) {
      throw new LifeboatError(`Reading back the copy failed while ${doing} (${describeError(err)}); lifeboat will retry.`, 'STREAM_FAILED', false);
    }
    if (readBack.sha256 !== record.sha256) {
      if (versionId) await dest.s3.send(new DeleteObjectCommand({ Bucket: destRef.bucket, Key: destRef.key, VersionId: versionId })).catch(() => undefined);
      throw new LifeboatError(`The copy ${destRef.key} reads back as ${readBack.sha256}, not ${record.sha256}, so it was removed while ${doing}; lifeboat will retry.`, 'COPY_MISMATCH', false);
    }
    return { ...result, verifiedSha256: readBack.sha256 };
  }

  /**
   * Reads only the object's header (one ranged GET): the format version, the key it needs (which
   * must be in the keyring) and its binding (which must be `expect`, by default what its key
   * says). Lets a restore refuse a swapped, foreign or unreadable dump before anything is made.
   */
  async checkHeader(ref: LogicalBackupRef & { versionId?: string }, expect: DumpBinding | undefined = bindingOfKey(ref.key)): Promise<{ version: number; keyId: string; binding: string }> {
    let head: Buffer;
    try {
      const out = await this.store.s3.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key, VersionId: ref.versionId, Range: `bytes=0-${HEADER_PROBE_BYTES - 1}` }));
      head = Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    } catch (err) {
      if (isNotFound(err)) throw new LifeboatError(`The backup ${ref.key} is not in bucket ${ref.bucket}: check the backup id with \`lifeboat backups list\`.`, 'BACKUP_NOT_FOUND');
      throw s3Error(err, 'GetObject', `reading the header of ${ref.key}`, ref.bucket);
    }
    const header = parseHeader(head);
    if (!header) throw new LifeboatError(`The encrypted backup ${ref.key} ends inside its header: it is damaged; restore from another copy.`, 'BACKUP_DAMAGED');
    keyForHeader(header, this.keyring(), expect);
    return { version: header.version, keyId: header.keyId, binding: header.binding };
  }

  /**
   * The archive's table of contents: `pg_restore --list` over the start of the stream. The
   * table of contents comes first in a custom-format archive, so the download stops as soon as
   * pg_restore has it, whatever the dump's size.
   */
  async listArchive(ref: LogicalBackupRef & { versionId?: string }): Promise<{ entries: number; tables: string[]; tablesWithData: string[] }> {
    const keys = this.keyring();
    const list = startPgProgram(this.pgBinDir, 'pg_restore', ['--list'], undefined, 'pipe');
    let listing = '';
    list.child.stdout!.on('data', (d: Buffer) => (listing += d.toString()));
    list.child.stdin!.on('error', () => undefined);
    const body = await getBody(this.store.s3, ref);
    const stop = new AbortController();
    void list.exited.then(() => stop.abort());
    let streamError: unknown;
    let declared: DumpCompression | undefined;
    try {
      await pipeline(body, createDecryptStream(keys, { expect: bindingOfKey(ref.key), onHeader: (h) => (declared = h.compression) }), createAutoDecompressStream({ declared: () => declared }), list.child.stdin!, { signal: stop.signal });
    } catch (err) {
      if (!stop.signal.aborted) streamError = err;
    }
    body.destroy();
    // pg_restore closes its input once it has the table of contents, so a write can fail (EPIPE)
    // a moment before its exit is seen: give it a few seconds to finish on its own before stopping it.
    if (streamError && list.child.exitCode === null) {
      const settled = await Promise.race([list.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
      if (!settled) list.child.kill('SIGTERM');
    }
    const exit = await list.exited;
    if (streamError instanceof LifeboatError) throw streamError;
    if (exit.code !== 0) {
      throw new LifeboatError(`pg_restore could not read the table of contents of ${ref.key} (${exit.stderr.split('\n').slice(-2).join(' / ') || `exit code ${exit.code}`}): verify the backup, or restore another one.`, 'BACKUP_DAMAGED');
    }
    const toc = parseToc(listing);
    return { entries: toc.entries, tables: [...toc.tables].sort(), tablesWithData: [...toc.tableData].sort() };
  }

  /**
   * Restores the dump with pg_restore into an existing (new, empty) database, all of it or only
   * `tables` (schema-qualified; with pg_restore -t, their definitions and data, not their indexes or constraints).
   * Refuses the database the dump was taken from. `countRows` also counts every table's rows in
   * the archive itself (a second pg_restore turning the same stream into COPY text), to check the
   * restore against. Two ways:
   * - `jobs` > 1 with room in `spool.dir`: download → decrypt → zstd -d (or gunzip) into a local
   *   file (owner-only, named from `spool.name`), counted and hashed on the way; both SHA-256 are
   *   checked BEFORE pg_restore touches the database; then `pg_restore -j jobs` from the file
   *   (parallel data and index builds need a seekable file), and the file is removed. -j cannot
   *   be one transaction: a failed restore leaves a partial database, which the caller made
   *   new and drops. Short of space (checked first, or ENOSPC while writing): the streamed way.
   * - otherwise streamed: the same chain into pg_restore's stdin, never landing on disk, one
   *   transaction by default (a failed restore leaves an empty database); the stored SHA-256 is
   *   checked once the stream ends.
   */
  async restoreTo(
    ref: LogicalBackupRef & { versionId?: string },
    destination: PgConnection,
    options: RestoreOptions = {},
  ): Promise<LogicalRestoreResult> {
    const started = Date.now();
    const record = await this.requireRecord(ref, 'a restore');
    const where = describeConnection(destination);
    if (where === record.source) {
      throw new LifeboatError(`Refusing to restore ${ref.key} into ${where}, the database it was taken from: restore into a new database and copy what you need from there.`, 'RESTORE_INTO_SOURCE');
    }
    const selection: string[] = [];
    const tables = options.tables?.map((t) => {
      if (!/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/.test(t)) {
        throw new LifeboatError(`"${t}" is not a table name: give names like orders or public.orders.`, 'BAD_INPUT');
      }
      return t.includes('.') ? { schema: t.split('.')[0], name: t.split('.')[1] } : { schema: undefined, name: t };
    });
    if (tables?.length) {
      for (const schema of new Set(tables.map((t) => t.schema).filter((s): s is string => !!s))) selection.push('--schema', schema);
      for (const t of tables) selection.push('--table', t.name);
    }
    const args = ['--dbname', destination.database, '--no-owner', '--no-privileges', '--exit-on-error', ...selection];
    if (options.clean) args.push('--clean', '--if-exists');
    const doing = `restoring ${ref.key} into ${where}`;
    const jobs = Math.max(1, Math.floor(options.jobs ?? 1));
    let restored: { dumpBytes: number; archiveRowCounts?: Record<string, number>; how: LogicalRestoreResult['how'] } | undefined;
    if (jobs > 1 && options.spool) {
      const file = path.join(options.spool.dir, `lifeboat-restore-${options.spool.name}.dump`);
      const free = freeBytes(options.spool.dir);
      // The archive, plus a margin so the restore does not fill the disk for everybody else.
      if (free !== undefined && free >= record.dumpBytes * 1.05 + SPOOL_RESERVE_BYTES) {
        restored = await this.restoreSpooled(ref, record, destination, { args, selection, jobs, file, doing, options });
      }
    }
    restored ??= await this.restoreStreamed(ref, record, destination, {
      args: options.singleTransaction !== false ? [...args, '--single-transaction'] : args,
      selection,
      doing,
      options,
    });
    return {
      key: ref.key,
      destination: where,
      tables: tables?.length ? options.tables! : 'all',
      dumpBytes: restored.dumpBytes,
      durationMs: Date.now() - started,
      how: restored.how,
      ...(restored.archiveRowCounts ? { archiveRowCounts: restored.archiveRowCounts } : {}),
    };
  }

  /** download → decrypt → decompress, hashed (and counted) on the way; `sink` takes the archive. Throws the stream's error as it came. */
  private async download(ref: LogicalBackupRef & { versionId?: string }, record: LogicalBackupResult, sink: Writable, expect: DumpBinding | undefined, onProgress: RestoreOptions['onProgress']) {
    const progress = throttled(onProgress);
    const plainMeter = new Sha256Meter();
    const storedMeter = new Sha256Meter((bytes) => progress.tick({ dumpBytes: plainMeter.bytes, storedBytes: bytes }));
    let declared: DumpCompression | undefined;
    const keys = this.keyring();
    await pipeline(
      await getBody(this.store.s3, { ...ref, versionId: record.versionId }),
      storedMeter,
      createDecryptStream(keys, { expect: expect ?? bindingOfKey(ref.key), onHeader: (h) => (declared = h.compression) }),
      createAutoDecompressStream({ declared: () => declared }),
      plainMeter,
      sink,
      // A cancelled activity stops downloading (the spooled way has no pg_restore reading yet to end it).
      { signal: activityCancellationSignal() },
    );
    progress.final({ dumpBytes: plainMeter.bytes, storedBytes: storedMeter.bytes });
    return { storedMeter, plainMeter };
  }

  private tamperedError(ref: LogicalBackupRef, got: string, recorded: string): LifeboatError {
    return new LifeboatError(`The restored backup ${ref.key} hashes to ${got}, not ${recorded} as recorded: its record was altered; check the restored data and the backup's history.`, 'BACKUP_DAMAGED');
  }

  private countFailed(ref: LogicalBackupRef, stderr: string): LifeboatError {
    return new LifeboatError(`Counting the rows in ${ref.key} failed (${stderr.split('\n').slice(-2).join(' / ')}); lifeboat will retry.`, 'PG_PROGRAM_FAILED', false);
  }

  /** The streamed way (see restoreTo). */
  private async restoreStreamed(
    ref: LogicalBackupRef & { versionId?: string },
    record: LogicalBackupResult,
    destination: PgConnection,
    r: { args: string[]; selection: string[]; doing: string; options: RestoreOptions },
  ) {
    const restore = startPgProgram(this.pgBinDir, 'pg_restore', r.args, destination, 'pipe');
    restore.child.stdin!.on('error', () => undefined);
    // The counter reads the same bytes as the restore, so it counts what was restored, not a second download.
    const counter = r.options.countRows ? startPgProgram(this.pgBinDir, 'pg_restore', ['--data-only', '--file=-', ...r.selection], undefined, 'pipe') : undefined;
    counter?.child.stdin!.on('error', () => undefined);
    const counted = counter ? countRowsFrom(counter.child) : undefined;
    counted?.catch(() => undefined);
    // Through fanOut even alone: pg_restore of selected tables exits once it has them, before the
    // archive ends, and the rest of the download must still be read and hashed, not fail the restore.
    const sink = fanOut(counter ? [restore.child.stdin!, counter.child.stdin!] : [restore.child.stdin!]);
    // A pg_restore that failed needs no more of the archive: stop the download, its complaint is reported below.
    void restore.exited.then((e) => {
      if (e.code !== 0) sink.destroy(new Error('pg_restore stopped'));
    });
    let streamError: unknown;
    let meters: Awaited<ReturnType<LogicalDumpEngine['download']>> | undefined;
    try {
      meters = await this.download(ref, record, sink, r.options.expect, r.options.onProgress);
    } catch (err) {
      streamError = err;
      if (restore.child.exitCode === null) restore.child.kill('SIGTERM');
      if (counter && counter.child.exitCode === null) counter.child.kill('SIGTERM');
    }
    const [exit, countExit] = await Promise.all([restore.exited, counter?.exited]);
    // pg_restore's own complaint explains a broken pipe better than the pipe does.
    if (exit.code !== 0 && !(streamError instanceof LifeboatError)) throw pgProgramError('pg_restore', destination, exit, r.doing);
    if (streamError instanceof LifeboatError) throw streamError;
    if (streamError || !meters) throw new LifeboatError(`Streaming the backup failed while ${r.doing} (${describeError(streamError)}); lifeboat will retry.`, 'STREAM_FAILED', false);
    if (meters.storedMeter.sha256 !== record.sha256) throw this.tamperedError(ref, meters.storedMeter.sha256, record.sha256);
    if (countExit && countExit.code !== 0) throw this.countFailed(ref, countExit.stderr);
    return { dumpBytes: meters.plainMeter.bytes, how: 'streamed' as const, ...(counted ? { archiveRowCounts: await counted } : {}) };
  }

  /** The spooled way (see restoreTo); undefined when the disk filled while writing (the file is gone again). */
  private async restoreSpooled(
    ref: LogicalBackupRef & { versionId?: string },
    record: LogicalBackupResult,
    destination: PgConnection,
    r: { args: string[]; selection: string[]; jobs: number; file: string; doing: string; options: RestoreOptions },
  ) {
    try {
      const counter = r.options.countRows ? startPgProgram(this.pgBinDir, 'pg_restore', ['--data-only', '--file=-', ...r.selection], undefined, 'pipe') : undefined;
      counter?.child.stdin!.on('error', () => undefined);
      const counted = counter ? countRowsFrom(counter.child) : undefined;
      counted?.catch(() => undefined);
      // The archive in plain text: readable by the worker's user only; a file an earlier attempt of this run left is replaced.
      const out = fs.createWriteStream(r.file, { mode: 0o600, flags: 'w' });
      let meters: Awaited<ReturnType<LogicalDumpEngine['download']>> | undefined;
      let streamError: unknown;
      try {
        meters = await this.download(ref, record, spoolSink(out, counter?.child.stdin ?? undefined), r.options.expect, r.options.onProgress);
      } catch (err) {
        streamError = err;
        if (counter && counter.child.exitCode === null) counter.child.kill('SIGTERM');
      }
      const countExit = await counter?.exited;
      if ((streamError as { code?: string } | undefined)?.code === 'ENOSPC') return undefined;
      if (streamError instanceof LifeboatError) throw streamError;
      if (streamError || !meters) throw new LifeboatError(`Downloading the backup failed while ${r.doing} (${describeError(streamError)}); lifeboat will retry.`, 'STREAM_FAILED', false);
      // Both hashes before anything reaches the database: a damaged or swapped archive is never restored.
      if (meters.storedMeter.sha256 !== record.sha256) throw this.tamperedError(ref, meters.storedMeter.sha256, record.sha256);
      if (record.dumpSha256 && meters.plainMeter.sha256 !== record.dumpSha256) throw this.tamperedError(ref, meters.plainMeter.sha256, record.dumpSha256);
      if (countExit && countExit.code !== 0) throw this.countFailed(ref, countExit.stderr);
      const restore = startPgProgram(this.pgBinDir, 'pg_restore', [...r.args, '--jobs', String(r.jobs), r.file], destination, 'ignore');
      const exit = await restore.exited;
      if (exit.code !== 0) throw pgProgramError('pg_restore', destination, exit, r.doing);
      return { dumpBytes: meters.plainMeter.bytes, how: 'spooled' as const, ...(counted ? { archiveRowCounts: await counted } : {}) };
    } finally {
      // Only this run's file: its name comes from the run.
      await fs.promises.rm(r.file, { force: true });
    }
  }

  /**
   * Copies one schema, definitions and data, from one database into another where it does not
   * exist yet: pg_dump of that schema piped into pg_restore in a single transaction, so the
   * destination gets all of it or nothing. Used to move restored tables next to live ones.
   */
  async copySchema(from: PgConnection, to: PgConnection, schema: string): Promise<void> {
    const doing = `copying schema ${schema} from ${describeConnection(from)} into ${describeConnection(to)}`;
    const dump = startPgProgram(this.pgBinDir, 'pg_dump', ['--format=custom', '--compress=0', '--schema', schema, '--no-owner', '--no-privileges', '--dbname', from.database], from, 'ignore');
    const load = startPgProgram(this.pgBinDir, 'pg_restore', ['--dbname', to.database, '--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction'], to, 'pipe');
    load.child.stdin!.on('error', () => undefined);
    let streamError: unknown;
    try {
      await pipeline(dump.child.stdout!, load.child.stdin!);
    } catch (err) {
      streamError = err;
    }
    const [dumped, loaded] = await Promise.all([dump.exited, load.exited]);
    if (dumped.code !== 0) throw pgProgramError('pg_dump', from, dumped, doing);
    if (loaded.code !== 0) throw pgProgramError('pg_restore', to, loaded, doing);
    if (streamError) throw new LifeboatError(`Streaming failed while ${doing} (${describeError(streamError)}); lifeboat will retry.`, 'STREAM_FAILED', false);
  }
}
