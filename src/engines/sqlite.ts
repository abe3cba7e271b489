/**
 * The SQLite engine: the `sqlite3` command-line shell (Debian's `sqlite3` package) for the
 * online copy and the checks, node streams for gzip and lifeboat-enc-v2, S3 for the copies.
 *
 * Why the shell and not a binding such as better-sqlite3: it needs no native build (v13 of that
 * binding crashes on Node 20, and a binding pins lifeboat to one Node ABI on every agent), the
 * shell is one OS package on any host that runs SQLite, and its `.backup` is SQLite's own
 * online backup API. The shell runs `.backup` inside a read transaction it opened first
 * (`BEGIN` and a read), so every backup step reads the same snapshot: a writer in WAL mode keeps
 * committing meanwhile and the copy is still one consistent state (without the transaction,
 * each step would see the writer's commit and restart the copy, possibly forever).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LifeboatError } from '../domain/errors';
import { SqliteBackupResult, SqliteCheck, SqliteSnapshotFacts, SqliteStoredCopy, compareTableCounts, integrityCheck, sqliteBinding } from '../domain/sqlite';
import { run } from '../platform/processes';
import { s3Error } from './aws-errors';
import { EncryptionKey, Keyring, Sha256Meter, createDecryptStream, createEncryptStream, keyringOf, uploadFromStreams } from './crypto-stream';

const MIB = 1024 * 1024;
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

export interface SqliteObject {
  s3: S3Client;
  store: string;
  bucket: string;
  key: string;
  versionId?: string;
}

export interface SqliteProgress {
  phase: string;
  bytes: number;
}

/** Runs the shell on `file` with `commands` (each its own argument: no shell quoting), bailing at the first error. */
async function shell(file: string, commands: string[], options: { json?: boolean; cwd?: string; readonly?: boolean } = {}): Promise<string> {
  const args = ['-batch', '-bail', ...(options.json ? ['-json'] : []), ...(options.readonly ? ['-readonly'] : []), file, ...commands];
  const r = await run('sqlite3', args, { check: false, cwd: options.cwd });
  if (r.code !== 0) {
    const why = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' ');
    throw new LifeboatError(`sqlite3 could not read ${file} (${why || `exit ${r.code}`}): check that it is a SQLite database this user can read.`, 'SQLITE_FAILED');
  }
  return r.stdout;
}

/** Whether `file` starts with SQLite's header; undefined when it is readable and not a database, a sentence when it cannot be read. */
export async function sqliteFileProblem(file: string): Promise<string | undefined> {
  let handle: fs.FileHandle | undefined;
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) return `${file} is not a regular file`;
    handle = await fs.open(file, 'r');
    const head = Buffer.alloc(16);
    const { bytesRead } = await handle.read(head, 0, 16, 0);
    if (bytesRead < 16 || !head.equals(SQLITE_MAGIC)) return `${file} is not a SQLite database (its first bytes are not "SQLite format 3")`;
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return code === 'ENOENT' ? `${file} does not exist` : `${file} cannot be read (${code})`;
  } finally {
    await handle?.close();
  }
}

/** Quotes an SQL identifier. */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `PRAGMA integrity_check` of `file`, as a check. */
export async function checkIntegrity(file: string): Promise<SqliteCheck> {
  return integrityCheck(await shell(file, ['PRAGMA integrity_check']));
}

/** One read-only statement on `file` (`sqlite3 -readonly`, so it cannot write whatever it says), its rows as JSON objects. */
export async function readOnlyQuery(file: string, sql: string): Promise<Array<Record<string, unknown>>> {
  const out = (await shell(file, [sql], { json: true, readonly: true })).trim();
  return out ? (JSON.parse(out) as Array<Record<string, unknown>>) : [];
}

/** Rows per table (every table but SQLite's own `sqlite_` ones) of `file`. */
export async function countRows(file: string): Promise<Record<string, number>> {
  const listing = await shell(file, ["SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"], { json: true });
  const tables = listing.trim() ? (JSON.parse(listing) as Array<{ name: string }>).map((t) => t.name) : [];
  if (!tables.length) return {};
  const counts: Record<string, number> = {};
  // One statement, in one read transaction: counts of one state.
  const rows = JSON.parse(
    (await shell(file, ['BEGIN', `SELECT * FROM (${tables.map((t) => `SELECT ${literal(t)} AS name, count(*) AS n FROM ${ident(t)}`).join(' UNION ALL ')})`, 'COMMIT'], { json: true })).trim() || '[]',
  ) as Array<{ name: string; n: number }>;
  for (const r of rows) counts[r.name] = Number(r.n);
  return counts;
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

async function sha256File(file: string): Promise<{ sha256: string; bytes: number }> {
  const meter = new Sha256Meter();
  await pipeline(createReadStream(file), meter, new Writable({ write: (_c, _e, cb) => cb() }));
  return { sha256: meter.sha256, bytes: meter.bytes };
}

/**
 * The online copy: `.backup` into `dest` (a new file in a directory of ours) inside one read
 * transaction of the source, then the copy's integrity check, journal mode and row counts.
 */
export async function snapshot(source: string, dest: string): Promise<SqliteSnapshotFacts> {
  const problem = await sqliteFileProblem(source);
  if (problem) throw new LifeboatError(`The SQLite target's file cannot be backed up: ${problem}; fix its path in targets.sqlite or the file's permissions.`, 'SQLITE_SOURCE', false);
  // .backup takes its file name as a token of the shell: run it in dest's directory with a plain name.
  const name = path.basename(dest);
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`internal: snapshot file name ${name} has characters the shell would need quoted`);
  await shell(path.resolve(source), ['PRAGMA busy_timeout = 60000', 'BEGIN', 'SELECT count(*) FROM sqlite_schema', `.backup ${name}`, 'COMMIT'], { cwd: path.dirname(dest) });
  const integrity = await checkIntegrity(dest);
  if (!integrity.ok) throw new LifeboatError(`The online copy of ${source} fails PRAGMA integrity_check (${integrity.detail}): the source database is damaged; repair it before relying on a backup.`, 'SQLITE_DAMAGED', false);
  const tables = await countRows(dest);
  const journalMode = (await shell(dest, ['PRAGMA journal_mode'])).trim();
  const { sha256, bytes } = await sha256File(dest);
  return { databaseBytes: bytes, databaseSha256: sha256, integrity: integrity.detail, tables, journalMode };
}

export class SqliteEngine {
  private readonly keys: Keyring;

  constructor(key: EncryptionKey | Keyring) {
    this.keys = 'current' in key ? key : keyringOf(key);
  }

  /** Makes the online copy in a scratch directory, checks it, and uploads gzip + lifeboat-enc-v2 of it to `to`. */
  async backup(args: { source: string; target: string; backupName: string; to: SqliteObject; onProgress?: (p: SqliteProgress) => void }): Promise<SqliteBackupResult> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-sqlite-'));
    try {
      const copy = path.join(dir, 'snapshot.db');
      args.onProgress?.({ phase: 'copying with the backup API', bytes: 0 });
      const facts = await snapshot(args.source, copy);
      const stored = new Sha256Meter((bytes) => args.onProgress?.({ phase: 'uploading', bytes }));
      const outcome = await uploadFromStreams({
        s3: args.to.s3,
        bucket: args.to.bucket,
        key: args.to.key,
        contentType: 'application/octet-stream',
        metadata: { 'lifeboat-kind': 'sqlite', 'lifeboat-target': args.target, 'lifeboat-backup': args.backupName, 'lifeboat-database-sha256': facts.databaseSha256 },
        streams: [createReadStream(copy), zlib.createGzip(), createEncryptStream(this.keys, { binding: sqliteBinding(args.target, args.backupName) }), stored],
        partSize: 8 * MIB,
        queueSize: 2,
      });
      if (!outcome.ok) {
        const cause = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
        throw new LifeboatError(`Uploading the backup of ${args.target} to ${args.to.store}/${args.to.bucket} failed (${outcome.side}: ${cause}); lifeboat will retry.`, 'UPLOAD_FAILED', false);
      }
      return {
        ...facts,
        store: args.to.store,
        bucket: args.to.bucket,
        key: args.to.key,
        ...(outcome.versionId ? { versionId: outcome.versionId } : {}),
        sizeBytes: stored.bytes,
        sha256: stored.sha256,
        keyId: this.keys.current.keyId,
        createdAt: new Date().toISOString(),
      };
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  private async body(o: SqliteObject): Promise<Readable> {
    try {
      const out = await o.s3.send(new GetObjectCommand({ Bucket: o.bucket, Key: o.key, ...(o.versionId ? { VersionId: o.versionId } : {}) }));
      return out.Body as Readable;
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) {
        throw new LifeboatError(`The backup ${o.key} is not in ${o.store}/${o.bucket}: check the backup in \`lifeboat backups list\`, or take a new one.`, 'BACKUP_NOT_FOUND');
      }
      throw s3Error(err, 'GetObject', `reading ${o.key}`, o.bucket);
    }
  }

  /**
   * Streams the object into `file` (created new, never over anything): SHA-256 of the stored
   * bytes, decryption bound to kind sqlite/target/backup, gunzip, SHA-256 of the database.
   */
  async download(o: SqliteObject & { target: string; backupName: string }, file: string, onProgress?: (p: SqliteProgress) => void): Promise<{ storedSha256: string; storedBytes: number; sha256: string; bytes: number; keyId: string }> {
    const stored = new Sha256Meter((bytes) => onProgress?.({ phase: 'downloading', bytes }));
    const plain = new Sha256Meter();
    let keyId = '';
    await pipeline(
      await this.body(o),
      stored,
      createDecryptStream(this.keys, { expect: sqliteBinding(o.target, o.backupName), onHeader: (h) => (keyId = h.keyId) }),
      zlib.createGunzip(),
      plain,
      createWriteStream(file, { flags: 'wx', mode: 0o600 }),
    );
    return { storedSha256: stored.sha256, storedBytes: stored.bytes, sha256: plain.sha256, bytes: plain.bytes, keyId };
  }

  /** Reads a stored copy back end to end into a scratch file: hashes, decryption, integrity_check, row counts against the backup's. */
  async verify(o: SqliteObject & { target: string; backupName: string }, expected: { sha256: string; databaseSha256: string; tables: Record<string, number> }, onProgress?: (p: SqliteProgress) => void): Promise<SqliteCheck[]> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-sqlite-verify-'));
    try {
      const file = path.join(dir, 'copy.db');
      const got = await this.download(o, file, onProgress);
      const checks: SqliteCheck[] = [
        { name: 'stored SHA-256', ok: got.storedSha256 === expected.sha256, detail: got.storedSha256 === expected.sha256 ? `${got.storedBytes} bytes as uploaded` : `${got.storedSha256.slice(0, 16)}…, but ${expected.sha256.slice(0, 16)}… was uploaded` },
        { name: 'decryption', ok: true, detail: `lifeboat-enc-v2, key ${got.keyId}, bound to sqlite/${o.target}/${o.backupName}` },
        { name: 'database SHA-256', ok: got.sha256 === expected.databaseSha256, detail: got.sha256 === expected.databaseSha256 ? `${got.bytes} bytes, as copied` : `differs from the online copy's` },
      ];
      checks.push(await checkIntegrity(file));
      checks.push(...compareTableCounts(expected.tables, await countRows(file)));
      return checks;
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  /** Streams a stored copy to another bucket (the DR region) byte for byte, hashing what is written. */
  async copy(from: SqliteObject, to: SqliteObject, expectedSha256: string, onProgress?: (p: SqliteProgress) => void): Promise<SqliteStoredCopy> {
    const meter = new Sha256Meter((bytes) => onProgress?.({ phase: 'copying to the DR region', bytes }), (sha) => {
      if (sha !== expectedSha256) throw new LifeboatError(`The backup read from ${from.store} hashes to ${sha.slice(0, 16)}…, not ${expectedSha256.slice(0, 16)}… as uploaded: the stored copy changed; take a new backup.`, 'CHECKSUM_MISMATCH');
    });
    const head = await from.s3.send(new HeadObjectCommand({ Bucket: from.bucket, Key: from.key, ...(from.versionId ? { VersionId: from.versionId } : {}) })).catch((err: unknown) => {
      throw s3Error(err, 'HeadObject', `looking up ${from.key}`, from.bucket);
    });
    const outcome = await uploadFromStreams({
      s3: to.s3,
      bucket: to.bucket,
      key: to.key,
      contentType: 'application/octet-stream',
      metadata: head.Metadata ?? {},
      streams: [await this.body(from), meter, new PassThrough()],
      partSize: 8 * MIB,
      queueSize: 2,
    });
    if (!outcome.ok) {
      const cause = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
      throw new LifeboatError(`Copying ${from.key} to ${to.store}/${to.bucket} failed (${outcome.side}: ${cause}); lifeboat will retry.`, 'COPY_FAILED', false);
    }
    return { store: to.store, bucket: to.bucket, key: to.key, ...(outcome.versionId ? { versionId: outcome.versionId } : {}), sizeBytes: meter.bytes, sha256: meter.sha256, keyId: this.keys.current.keyId, createdAt: new Date().toISOString() };
  }
}
