/**
 * The logical-dump engine against the running local stack: real pg_dump/pg_restore, real MinIO
 * over TLS in both regions. Everything it makes lives under a random test id and is removed.
 * LIFEBOAT_TEST_DUMP_MB sizes the memory-bound test's table (default 384).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Client } from 'pg';
import type { SecretRef } from '../src/config/fields';
import { LifeboatError } from '../src/domain/errors';
import { DEFAULT_CHUNK_BYTES, HEADER_BYTES, createDecryptStream, createEncryptStream, loadEncryptionKey } from '../src/engines/crypto-stream';
import { LogicalBackupResult, LogicalDumpEngine, PgConnection } from '../src/engines/logical-dump';
import { SAMPLE_APP_TABLES } from '../src/stack/sample-app';
import { loadStackSettings } from '../src/stack/settings';
import { useStack } from './helpers/stack';
import { s3ClientFor } from '../src/stack/stack';

const settings = loadStackSettings();
const PG_BIN = '/usr/lib/postgresql/15/bin';
const testId = `lbtest-${randomBytes(4).toString('hex')}`;
const dbPrefix = `lb_${testId.replace(/-/g, '_')}`;
const PRIMARY_BUCKET = settings.minio.primary.backupBucket;
const DR_BUCKET = settings.minio.dr.backupBucket;
const DUMP_MB = Number(process.env.LIFEBOAT_TEST_DUMP_MB || 384);

function conn(database: string): PgConnection {
  return { host: settings.host, port: settings.postgres.primaryPort, database, user: settings.postgres.superuser };
}

async function withPg<T>(database: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ host: settings.host, port: settings.postgres.primaryPort, user: settings.postgres.superuser, database });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function createDatabase(name: string, sql?: string): Promise<void> {
  await withPg('app', (c) => c.query(`CREATE DATABASE ${name}`));
  if (sql) await withPg(name, (c) => c.query(sql));
}

async function dropDatabase(name: string): Promise<void> {
  await withPg('app', (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

/** Removes every version and delete marker under the prefix (the buckets are versioned). */
async function purge(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let removed = 0;
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix }));
    const all = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])];
    if (all.length === 0) return removed;
    for (const v of all) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId }));
      removed++;
    }
  }
}

async function versionsOf(s3: S3Client, bucket: string, key: string): Promise<number> {
  const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
  return [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].filter((v) => v.Key === key).length;
}

async function objectBytes(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A direct pg_dump, written to a pipe like the engine's (custom format, no compression). */
async function directDump(database: string): Promise<Buffer> {
  const c = conn(database);
  const child = spawn(path.join(PG_BIN, 'pg_dump'), ['--host', c.host, '--port', String(c.port), '--username', c.user, '--format=custom', '--compress=0', '--dbname', database], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [out, code] = await Promise.all([readAll(child.stdout), new Promise<number | null>((resolve) => child.on('close', resolve))]);
  assert.equal(code, 0, 'the direct pg_dump failed');
  return out;
}

/**
 * A custom-format archive with the creation time in its header zeroed: the only bytes two dumps
 * of an unchanged database taken at different seconds differ in. Header: "PGDMP", version
 * (3 bytes), int size, offset size, format; then compression (one byte from archive version
 * 1.15, an int before) and seven ints of struct tm. An int is a sign byte plus `int size` bytes.
 */
function withoutTimestamp(archive: Buffer): Buffer {
  assert.equal(archive.subarray(0, 5).toString('ascii'), 'PGDMP', 'not a pg_dump custom-format archive');
  const [vmaj, vmin] = [archive[5], archive[6]];
  const intSize = archive[8];
  let offset = 11;
  offset += vmaj > 1 || vmin >= 15 ? 1 : 1 + intSize;
  const copy = Buffer.from(archive);
  copy.fill(0, offset, offset + 7 * (1 + intSize));
  return copy;
}

/** Peak growth of this process's RSS while `fn` runs, sampled every 20 ms. */
async function rssGrowthDuring<T>(fn: () => Promise<T>): Promise<{ result: T; baseline: number; peak: number }> {
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, baseline, peak };
  } finally {
    clearInterval(timer);
  }
}

const MB = 1024 * 1024;
const mb = (n: number) => `${(n / MB).toFixed(1)} MiB`;

describe('logical dump engine (pg_dump → gzip → AES-256-GCM → S3)', function () {
  let primary: S3Client;
  let dr: S3Client;
  let keyFile: string;
  let keyHex: string;
  let keyRef: SecretRef;
  let engine: LogicalDumpEngine;
  let drEngine: LogicalDumpEngine;
  const prefix = `${testId}/logical`;
  const staticDb = `${dbPrefix}_static`;
  const scratchDbs: string[] = [staticDb];

  before(async function () {
    this.timeout(600000);
    await useStack();
    primary = s3ClientFor(settings, settings.minio.primary);
    dr = s3ClientFor(settings, settings.minio.dr);
    keyHex = randomBytes(32).toString('hex');
    keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), `${testId}-`)), 'backup.key');
    fs.writeFileSync(keyFile, keyHex + '\n', { mode: 0o600 });
    keyRef = `file:${keyFile}`;
    engine = new LogicalDumpEngine({ store: { s3: primary, bucket: PRIMARY_BUCKET, prefix, name: 'primary' }, encryptionKey: keyRef, pgBinDir: PG_BIN });
    drEngine = new LogicalDumpEngine({ store: { s3: dr, bucket: DR_BUCKET, prefix, name: 'dr' }, encryptionKey: keyRef, pgBinDir: PG_BIN });
    // A small database nobody else writes to, so its dump is reproducible.
    await createDatabase(
      staticDb,
      `CREATE TABLE widgets (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2));
       INSERT INTO widgets SELECT g, 'widget ' || g, g * 1.25 FROM generate_series(1, 2000) g;
       CREATE TABLE events (id bigint PRIMARY KEY, widget_id int REFERENCES widgets(id), payload jsonb);
       INSERT INTO events SELECT g, 1 + g % 2000, jsonb_build_object('n', g, 'hash', md5(g::text)) FROM generate_series(1, 5000) g;`,
    );
  });

  after(async function () {
    for (const db of scratchDbs) await dropDatabase(db).catch(() => undefined);
    await purge(primary, PRIMARY_BUCKET, `${testId}/`);
    await purge(dr, DR_BUCKET, `${testId}/`);
    fs.rmSync(path.dirname(keyFile), { recursive: true, force: true });
    primary.destroy();
    dr.destroy();
  });

  describe('encryption container', function () {
    const key = () => loadEncryptionKey(keyRef);
    const roundTrip = async (plain: Buffer, chunkBytes = 1024) =>
      readAll(Readable.from([plain]).pipe(createEncryptStream(key(), { chunkBytes })).pipe(createDecryptStream(key())));

    it('round-trips empty, sub-chunk, exact-chunk and multi-chunk inputs', async function () {
      for (const size of [0, 1, 1023, 1024, 1025, 4096, 10_000]) {
        const plain = randomBytes(size);
        assert.deepEqual(await roundTrip(plain), plain, `size ${size}`);
      }
    });

    // An unbound v2 header: the fixed part and a binding length of 0.
    const HEADER = HEADER_BYTES + 2;

    it('writes magic, version, per-object salt and nonce, and one tag per chunk', async function () {
      const plain = randomBytes(3000);
      const a = await readAll(Readable.from([plain]).pipe(createEncryptStream(key(), { chunkBytes: 1024 })));
      const b = await readAll(Readable.from([plain]).pipe(createEncryptStream(key(), { chunkBytes: 1024 })));
      assert.equal(a.subarray(0, 8).toString('ascii'), 'LBOATENC');
      assert.equal(a[8], 2);
      assert.equal(a.readUInt32BE(9), 1024);
      // 3 chunks of 1024, 1024 and 952 bytes, each with a 16-byte tag.
      assert.equal(a.length, HEADER + 3000 + 3 * 16);
      assert.notDeepEqual(a.subarray(21, 49), b.subarray(21, 49), 'salt and nonce must be fresh per object');
      assert.notDeepEqual(a.subarray(HEADER), b.subarray(HEADER));
    });

    it('detects truncation at a chunk boundary, reordering and a flipped bit', async function () {
      const plain = randomBytes(4096);
      const sealed = await readAll(Readable.from([plain]).pipe(createEncryptStream(key(), { chunkBytes: 1024 })));
      const frame = 1024 + 16;
      const decrypt = (buf: Buffer) => readAll(Readable.from([buf]).pipe(createDecryptStream(key())));
      // 4096 bytes = 4 full chunks + an empty final chunk; dropping the final one must fail.
      await assert.rejects(decrypt(sealed.subarray(0, sealed.length - 16)), /damaged or was altered/);
      const swapped = Buffer.concat([sealed.subarray(0, HEADER), sealed.subarray(HEADER + frame, HEADER + 2 * frame), sealed.subarray(HEADER, HEADER + frame), sealed.subarray(HEADER + 2 * frame)]);
      await assert.rejects(decrypt(swapped), /chunk 0 does not authenticate/);
      const flipped = Buffer.from(sealed);
      flipped[HEADER + 2 * frame + 7] ^= 1;
      await assert.rejects(decrypt(flipped), /chunk 2 does not authenticate/);
      const header = Buffer.from(sealed);
      header[30] ^= 1;
      await assert.rejects(decrypt(header), /chunk 0 does not authenticate/);
    });

    it('names a wrong key and a malformed key without revealing either', async function () {
      const sealed = await readAll(Readable.from([Buffer.from('hello')]).pipe(createEncryptStream(key())));
      const otherFile = path.join(path.dirname(keyFile), 'other.key');
      const other = randomBytes(32).toString('base64');
      fs.writeFileSync(otherFile, other, { mode: 0o600 });
      const otherKey = loadEncryptionKey(`file:${otherFile}`);
      await assert.rejects(readAll(Readable.from([sealed]).pipe(createDecryptStream(otherKey))), (err: LifeboatError) => {
        assert.equal(err.code, 'WRONG_KEY');
        assert.ok(!err.message.includes(other) && !err.message.includes(keyHex));
        return true;
      });
      fs.writeFileSync(otherFile, 'not-a-key-but-a-secret-nonetheless', { mode: 0o600 });
      assert.throws(() => loadEncryptionKey(`file:${otherFile}`), (err: LifeboatError) => {
        assert.equal(err.code, 'ENCRYPTION_KEY_INVALID');
        assert.equal(err.nonRetryable, true);
        assert.ok(!err.message.includes('a-secret-nonetheless'));
        return true;
      });
      assert.equal(DEFAULT_CHUNK_BYTES, 256 * 1024);
    });
  });

  describe('backing up the sample application', function () {
    let appBackup: LogicalBackupResult;
    const progress: number[] = [];

    it('streams an encrypted dump to <prefix>/<target>/<name>.dump.gz.enc with its SHA-256 in the metadata', async function () {
      appBackup = await engine.backup({ target: 'app', backupName: 'nightly-1', source: conn(settings.postgres.appDatabase), onProgress: (p) => progress.push(p.storedBytes) });
      assert.equal(appBackup.key, `${prefix}/app/nightly-1.dump.gz.enc`);
      assert.equal(appBackup.bucket, PRIMARY_BUCKET);
      assert.equal(appBackup.adopted, false);
      assert.match(appBackup.sha256, /^[0-9a-f]{64}$/);
      assert.equal(appBackup.source, `${settings.host}:${settings.postgres.primaryPort}/app`);
      assert.ok(appBackup.dumpBytes > 100_000, `a dump of the sample app is not ${appBackup.dumpBytes} bytes`);
      assert.ok(progress.length >= 1 && progress[progress.length - 1] === appBackup.sizeBytes, 'progress ends at the stored size');

      const head = await primary.send(new HeadObjectCommand({ Bucket: PRIMARY_BUCKET, Key: appBackup.key }));
      assert.equal(head.ContentLength, appBackup.sizeBytes);
      assert.equal(head.Metadata?.['lifeboat-sha256'], appBackup.sha256);
      assert.equal(head.Metadata?.['lifeboat-dump-sha256'], appBackup.dumpSha256);
      assert.equal(head.Metadata?.['lifeboat-key-id'], appBackup.keyId);

      const stored = await objectBytes(primary, PRIMARY_BUCKET, appBackup.key);
      assert.equal(sha256(stored), appBackup.sha256, 'the recorded SHA-256 is that of the stored bytes');
      assert.equal(stored.subarray(0, 8).toString('ascii'), 'LBOATENC');
      assert.ok(!stored.includes(Buffer.from('PGDMP')) && !stored.includes(Buffer.from('customers')), 'nothing readable is stored');

      // Results go into workflow history: plain JSON, no key material.
      const json = JSON.stringify(appBackup);
      assert.deepEqual(JSON.parse(json), appBackup);
      assert.ok(!json.includes(keyHex) && !json.includes(keyFile), 'neither the key nor its location is in the result');
      assert.equal(await versionsOf(primary, PRIMARY_BUCKET, appBackup.key), 1, 'the unsealed upload version is gone');
    });

    it('adopts a complete backup of the same name instead of dumping again', async function () {
      const again = await engine.backup({ target: 'app', backupName: 'nightly-1', source: conn(settings.postgres.appDatabase) });
      assert.equal(again.adopted, true);
      assert.equal(again.sha256, appBackup.sha256);
      assert.equal(again.createdAt, appBackup.createdAt);
      assert.equal(await versionsOf(primary, PRIMARY_BUCKET, appBackup.key), 1);
    });

    it('replaces an interrupted backup (object without a complete record)', async function () {
      const ref = engine.refFor('app', 'interrupted');
      await primary.send(new PutObjectCommand({ Bucket: ref.bucket, Key: ref.key, Body: 'half a dump', Metadata: { 'lifeboat-format': 'lifeboat-logical-dump/1' } }));
      assert.equal(await engine.describe(ref), undefined);
      const result = await engine.backup({ target: 'app', backupName: 'interrupted', source: conn(staticDb) });
      assert.equal(result.adopted, false);
      assert.equal((await engine.verify(ref)).ok, true);
      assert.equal(await versionsOf(primary, PRIMARY_BUCKET, ref.key), 1, 'the interrupted version was removed');
    });

    it('verifies: SHA-256, authenticated decryption, gzip, and pg_restore --list with the expected tables', async function () {
      const v = await engine.verify(appBackup, { expectedTables: [...SAMPLE_APP_TABLES] });
      assert.equal(v.ok, true, JSON.stringify(v.checks, null, 2));
      assert.deepEqual(
        v.checks.map((c) => c.name),
        ['metadata record', 'stored SHA-256', 'decryption', 'decompression', 'dump SHA-256', 'pg_restore --list', 'expected tables'],
      );
      for (const t of SAMPLE_APP_TABLES) assert.ok(v.tables.includes(`public.${t}`), `${t} has data in the archive`);
      assert.ok(v.tocEntries > SAMPLE_APP_TABLES.length * 2);
      assert.deepEqual(JSON.parse(JSON.stringify(v)), v);
    });

    it('fails verification clearly when an expected table is missing', async function () {
      const v = await engine.verify(appBackup, { expectedTables: ['customers', 'public.refunds'] });
      assert.equal(v.ok, false);
      const failed = v.checks.filter((c) => !c.ok);
      assert.equal(failed.length, 1);
      assert.equal(failed[0].name, 'expected tables');
      assert.match(failed[0].detail, /no definition or data for public\.refunds/);
    });

    it('fails verification of an altered object on its hash and on authentication', async function () {
      const stored = await objectBytes(primary, PRIMARY_BUCKET, appBackup.key);
      const head = await primary.send(new HeadObjectCommand({ Bucket: PRIMARY_BUCKET, Key: appBackup.key }));
      stored[Math.floor(stored.length / 2)] ^= 0x40;
      // Same target and backup name (the binding holds), another place: only the flipped bit is wrong.
      const tamperedKey = `${prefix}/tampered/app/nightly-1.dump.gz.enc`;
      await primary.send(new PutObjectCommand({ Bucket: PRIMARY_BUCKET, Key: tamperedKey, Body: stored, Metadata: head.Metadata }));
      const v = await engine.verify({ bucket: PRIMARY_BUCKET, key: tamperedKey });
      assert.equal(v.ok, false);
      const byName = Object.fromEntries(v.checks.map((c) => [c.name, c]));
      assert.equal(byName['metadata record'].ok, true);
      assert.equal(byName['stored SHA-256'].ok, false);
      assert.match(byName['stored SHA-256'].detail, /altered or damaged/);
      assert.equal(byName['decryption'].ok, false);
      assert.match(byName['decryption'].detail, /does not authenticate/);
    });

    it('fails verification with the wrong key, naming both key ids', async function () {
      const otherFile = path.join(path.dirname(keyFile), 'rotated.key');
      fs.writeFileSync(otherFile, randomBytes(32).toString('hex'), { mode: 0o600 });
      const wrong = new LogicalDumpEngine({ store: { s3: primary, bucket: PRIMARY_BUCKET, prefix }, encryptionKey: `file:${otherFile}`, pgBinDir: PG_BIN });
      const v = await wrong.verify(appBackup);
      assert.equal(v.ok, false);
      const decryption = v.checks.find((c) => c.name === 'decryption')!;
      assert.equal(decryption.ok, false);
      assert.match(decryption.detail, new RegExp(`encrypted with key ${appBackup.keyId}, which is not in the keyring \\([0-9a-f]{16}\\)`));
      assert.equal(v.checks.find((c) => c.name === 'stored SHA-256')!.ok, true, 'the stored bytes themselves are fine');
    });

    it('copies to the DR region by streaming, verifies the copy by reading it back, and adopts it on a retry', async function () {
      const copy = await engine.copyToRegion(appBackup, { s3: dr, bucket: DR_BUCKET, prefix, name: 'dr' });
      assert.equal(copy.bucket, DR_BUCKET);
      assert.equal(copy.key, appBackup.key);
      assert.equal(copy.store, 'dr');
      assert.equal(copy.sha256, appBackup.sha256);
      assert.equal(copy.verifiedSha256, appBackup.sha256);
      assert.equal(copy.adopted, false);
      const head = await dr.send(new HeadObjectCommand({ Bucket: DR_BUCKET, Key: copy.key }));
      assert.equal(head.Metadata?.['lifeboat-sha256'], appBackup.sha256);
      const v = await drEngine.verify(copy, { expectedTables: [...SAMPLE_APP_TABLES] });
      assert.equal(v.ok, true, JSON.stringify(v.checks, null, 2));
      const again = await engine.copyToRegion(appBackup, { s3: dr, bucket: DR_BUCKET, prefix, name: 'dr' });
      assert.equal(again.adopted, true);
      assert.equal(await versionsOf(dr, DR_BUCKET, copy.key), 1);
    });

    it('restores single tables into a scratch database, and refuses the source database', async function () {
      const scratch = `${dbPrefix}_tables`;
      scratchDbs.push(scratch);
      await createDatabase(scratch);
      const restored = await drEngine.restoreTo({ bucket: DR_BUCKET, key: appBackup.key }, conn(scratch), { tables: ['customers', 'public.products'] });
      assert.deepEqual(restored.tables, ['customers', 'public.products']);
      assert.equal(restored.destination, `${settings.host}:${settings.postgres.primaryPort}/${scratch}`);
      const tables = await withPg(scratch, async (c) => (await c.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)).rows.map((r) => r.tablename as string));
      assert.deepEqual(tables, ['customers', 'products']);
      const count = await withPg(scratch, async (c) => Number((await c.query('SELECT count(*) FROM customers')).rows[0].count));
      assert.ok(count > 0, 'customers came back with their rows');
      await dropDatabase(scratch);

      await assert.rejects(engine.restoreTo(appBackup, conn(settings.postgres.appDatabase)), (err: LifeboatError) => {
        assert.equal(err.code, 'RESTORE_INTO_SOURCE');
        assert.equal(err.nonRetryable, true);
        return true;
      });
    });
  });

  describe('byte-for-byte round trip', function () {
    it('decrypting the stored object yields exactly what pg_dump writes', async function () {
      const backup = await engine.backup({ target: 'static', backupName: 'roundtrip', source: conn(staticDb) });
      const direct = await directDump(staticDb);
      const decrypted = await readAll(await engine.dumpStream(backup));
      assert.equal(sha256(decrypted), backup.dumpSha256, 'the stream decrypts to the bytes pg_dump produced during the backup');
      assert.equal(decrypted.length, backup.dumpBytes);
      // Two dumps of an unchanged database differ only in the header's creation time.
      assert.equal(decrypted.length, direct.length);
      assert.equal(sha256(withoutTimestamp(decrypted)), sha256(withoutTimestamp(direct)));
      const differing = [...decrypted.keys()].filter((i) => decrypted[i] !== direct[i]);
      assert.ok(differing.every((i) => i < 64), `bytes differ outside the header's timestamp: ${differing.slice(0, 5).join(', ')}`);
    });

    it('restores into a scratch database with identical contents', async function () {
      const scratch = `${dbPrefix}_full`;
      scratchDbs.push(scratch);
      await createDatabase(scratch);
      const ref = engine.refFor('static', 'roundtrip');
      const restored = await engine.restoreTo(ref, conn(scratch));
      assert.equal(restored.tables, 'all');
      const fingerprint = (db: string) =>
        withPg(db, async (c) => {
          const w = await c.query(`SELECT count(*) AS n, md5(string_agg(id || ':' || name || ':' || price, ',' ORDER BY id)) AS h FROM widgets`);
          const e = await c.query(`SELECT count(*) AS n, md5(string_agg(id || ':' || widget_id || ':' || payload::text, ',' ORDER BY id)) AS h FROM events`);
          const fk = await c.query(`SELECT count(*) AS n FROM pg_constraint WHERE contype = 'f' AND conrelid = 'events'::regclass`);
          return { widgets: w.rows[0], events: e.rows[0], foreignKeys: fk.rows[0].n };
        });
      assert.deepEqual(await fingerprint(scratch), await fingerprint(staticDb));
      await dropDatabase(scratch);

      // With jobs: downloaded once into a local file (counted on the way), pg_restore -j from it, the file removed.
      const spooledDb = `${dbPrefix}_spooled`;
      scratchDbs.push(spooledDb);
      await createDatabase(spooledDb);
      const spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), `${testId}-spool-`));
      const spooled = await engine.restoreTo(ref, conn(spooledDb), { countRows: true, jobs: 2, spool: { dir: spoolDir, name: 'roundtrip' } });
      assert.equal(spooled.how, 'spooled');
      assert.deepEqual(fs.readdirSync(spoolDir), [], 'the local copy is removed after the restore');
      assert.deepEqual(await fingerprint(spooledDb), await fingerprint(staticDb));
      const widgets = (await withPg(staticDb, (c) => c.query<{ n: string }>('SELECT count(*) AS n FROM widgets'))).rows[0].n;
      assert.equal(spooled.archiveRowCounts?.['public.widgets'], Number(widgets), JSON.stringify(spooled.archiveRowCounts));
      await dropDatabase(spooledDb);
      fs.rmSync(spoolDir, { recursive: true, force: true });

      // Where the free space cannot be known (here: no such directory), the streamed way.
      await createDatabase(spooledDb);
      const streamed = await engine.restoreTo(ref, conn(spooledDb), { countRows: true, jobs: 2, spool: { dir: spoolDir, name: 'roundtrip' } });
      assert.equal(streamed.how, 'streamed');
      assert.deepEqual(streamed.archiveRowCounts, spooled.archiveRowCounts);
      await dropDatabase(spooledDb);
    });
  });

  describe('compression: zstd for new dumps, gzip dumps still read', function () {
    it('a gzip dump (the format before zstd) verifies, lists and restores as before; the new default is zstd, declared in header and record', async function () {
      // A gzip dump as lifeboat wrote them before zstd: no compression line in the binding, no compression metadata.
      const gzipEngine = new LogicalDumpEngine({ store: { s3: primary, bucket: PRIMARY_BUCKET, prefix, name: 'primary' }, encryptionKey: keyRef, pgBinDir: PG_BIN, compression: 'gzip' });
      const old = await gzipEngine.backup({ target: 'static', backupName: 'gzip-era', source: conn(staticDb) });
      const head = await primary.send(new HeadObjectCommand({ Bucket: old.bucket, Key: old.key }));
      assert.equal(head.Metadata?.['lifeboat-compression'], undefined);
      const first = (await primary.send(new GetObjectCommand({ Bucket: old.bucket, Key: old.key, Range: 'bytes=0-511' }))).Body as Readable;
      assert.ok(!(await readAll(first)).includes(Buffer.from('compression=')), 'a gzip dump carries no compression line');
      // Read by today's engine (zstd by default): every path takes gzip.
      assert.equal(engine.compression(), 'zstd');
      const described = await engine.describe(old);
      assert.equal(described?.compression, 'gzip');
      const v = await engine.verify(old, { expectedTables: ['widgets'] });
      assert.ok(v.ok, JSON.stringify(v.checks));
      assert.match(v.checks.find((c) => c.name === 'decompression')!.detail, /^gzip stream intact/);
      assert.ok((await engine.listArchive(old)).tablesWithData.includes('public.widgets'));
      assert.equal(sha256(await readAll(await engine.dumpStream(old))), old.dumpSha256);
      const scratch = `${dbPrefix}_gzip`;
      scratchDbs.push(scratch);
      await createDatabase(scratch);
      const restored = await engine.restoreTo(old, conn(scratch), { countRows: true });
      assert.ok((restored.archiveRowCounts?.['public.widgets'] ?? 0) > 0, JSON.stringify(restored.archiveRowCounts));
      await dropDatabase(scratch);

      // The new default: zstd, in the record, the metadata and the authenticated binding.
      const current = await engine.describe(engine.refFor('static', 'roundtrip'));
      assert.equal(current?.compression, 'zstd');
      const fresh = await primary.send(new HeadObjectCommand({ Bucket: PRIMARY_BUCKET, Key: engine.refFor('static', 'roundtrip').key }));
      assert.equal(fresh.Metadata?.['lifeboat-compression'], 'zstd');
      const v2 = await engine.verify(engine.refFor('static', 'roundtrip'));
      assert.match(v2.checks.find((c) => c.name === 'decompression')!.detail, /^zstd stream intact/);
    });
  });

  describe('failures', function () {
    it('a failing pg_dump leaves no object and says why', async function () {
      const ref = engine.refFor('app', 'no-such-db');
      await assert.rejects(engine.backup({ target: 'app', backupName: 'no-such-db', source: conn(`${dbPrefix}_missing`) }), (err: LifeboatError) => {
        assert.equal(err.code, 'DATABASE_NOT_FOUND');
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /does not exist/);
        return true;
      });
      assert.equal(await versionsOf(primary, PRIMARY_BUCKET, ref.key), 0);
      const uploads = await primary.send(new ListMultipartUploadsCommand({ Bucket: PRIMARY_BUCKET, Prefix: ref.key }));
      assert.equal(uploads.Uploads?.length ?? 0, 0, 'no multipart upload is left behind');
    });

    it('a missing bucket is named as the cause, not the pg_dump it interrupted', async function () {
      const nowhere = new LogicalDumpEngine({ store: { s3: primary, bucket: `${testId}-no-such-bucket`, prefix }, encryptionKey: keyRef, pgBinDir: PG_BIN });
      await assert.rejects(nowhere.backup({ target: 'app', backupName: 'nowhere', source: conn(staticDb) }), (err: LifeboatError) => {
        assert.equal(err.code, 'BUCKET_NOT_FOUND');
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /The bucket lbtest-[0-9a-f]+-no-such-bucket does not exist/);
        return true;
      });
    });

    it('rejects names that cannot be object keys, and unreadable key references, before doing anything', async function () {
      await assert.rejects(engine.backup({ target: 'app', backupName: '../escape', source: conn('app') }), (err: LifeboatError) => err.code === 'BAD_INPUT' && err.nonRetryable);
      const noKey = new LogicalDumpEngine({ store: { s3: primary, bucket: PRIMARY_BUCKET, prefix }, encryptionKey: `file:${keyFile}.missing`, pgBinDir: PG_BIN });
      await assert.rejects(noKey.backup({ target: 'app', backupName: 'x', source: conn('app') }), (err: LifeboatError) => err.code === 'SECRET_MISSING' && err.nonRetryable);
    });
  });

  describe('resource bounds', function () {
    const bigDb = `${dbPrefix}_big`;

    before(async function () {
      scratchDbs.push(bigDb);
      // Unlogged: the data is not WAL-logged, so it does not flood the archive other tests share.
      // Each row carries 192 random bytes as base64 (256 characters): barely compressible.
      const rows = Math.ceil((DUMP_MB * MB) / 270);
      const t0 = Date.now();
      await createDatabase(
        bigDb,
        `CREATE UNLOGGED TABLE big (id bigint, payload text);
         INSERT INTO big SELECT g, encode(decode(${Array(12).fill('md5(random()::text)').join(' || ')}, 'hex'), 'base64') FROM generate_series(1, ${rows}) g;`,
      );
      console.log(`      generated ${rows} rows (~${DUMP_MB} MiB) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });

    after(async function () {
      await dropDatabase(bigDb);
    });

    it('keeps memory bounded while dumping, uploading and verifying a large table', async function () {
      const big = new LogicalDumpEngine({
        store: { s3: primary, bucket: PRIMARY_BUCKET, prefix, name: 'primary' },
        encryptionKey: keyRef,
        pgBinDir: PG_BIN,
        // Seal by multipart copy here, so that path runs against a real server too.
        copyObjectLimit: 64 * MB,
        copyPartSize: 32 * MB,
      });
      const t0 = Date.now();
      const { result, baseline, peak } = await rssGrowthDuring(() => big.backup({ target: 'big', backupName: 'memory', source: conn(bigDb) }));
      const seconds = (Date.now() - t0) / 1000;
      const growth = peak - baseline;
      console.log(
        `      backup: ${mb(result.dumpBytes)} dumped, ${mb(result.sizeBytes)} stored in ${seconds.toFixed(1)} s ` +
          `(${(result.dumpBytes / MB / seconds).toFixed(1)} MiB/s); RSS ${mb(baseline)} → peak ${mb(peak)} (+${mb(growth)})`,
      );
      assert.ok(result.dumpBytes >= DUMP_MB * MB * 0.9, `the dump is ${mb(result.dumpBytes)}, smaller than the ${DUMP_MB} MiB asked for`);
      // Parts in flight are 8 MiB × (2 + 1), the rest is garbage buffers awaiting the next GC
      // (V8 collects after about 64 MiB of external allocation): flat, whatever the data size.
      const bound = 128 * MB;
      assert.ok(growth < bound, `RSS grew by ${mb(growth)} while streaming ${mb(result.dumpBytes)}: more than the ${mb(bound)} bound`);
      if (result.dumpBytes < 3 * bound) console.log(`      note: at ${DUMP_MB} MiB the data is not much larger than the bound; the default (384) shows the contrast`);

      const t1 = Date.now();
      const verified = await rssGrowthDuring(() => big.verify(result, { expectedTables: ['big'] }));
      const vSeconds = (Date.now() - t1) / 1000;
      console.log(
        `      verify: ${(result.sizeBytes / MB / vSeconds).toFixed(1)} MiB/s stored; RSS +${mb(verified.peak - verified.baseline)}`,
      );
      assert.equal(verified.result.ok, true, JSON.stringify(verified.result.checks, null, 2));
      assert.ok(verified.peak - verified.baseline < bound, `RSS grew by ${mb(verified.peak - verified.baseline)} while verifying`);
      assert.equal(await versionsOf(primary, PRIMARY_BUCKET, result.key), 1);
      const sealed = await primary.send(new HeadObjectCommand({ Bucket: PRIMARY_BUCKET, Key: result.key }));
      assert.equal(sealed.Metadata?.['lifeboat-sha256'], result.sha256, 'sealed by multipart copy with the full record');
    });
  });
});
