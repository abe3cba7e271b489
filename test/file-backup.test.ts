/**
 * The file-backup engine against the running local stack's two MinIO servers. It reads the
 * shared `app-files` bucket but mutates only scratch buckets it creates; everything it writes
 * lives under a random test id and is removed afterwards (all versions: the buckets are versioned).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { LifeboatError } from '../src/domain/errors';
import { FileBackupEngine, FileManifest, FileProgress, backupTimestamp } from '../src/engines/file-backup';
import { ensureBucket } from '../src/engines/s3';
import { loadStackSettings } from '../src/stack/settings';
import { useStack } from './helpers/stack';
import { SAMPLE_OBJECTS, s3ClientFor } from '../src/stack/stack';

const settings = loadStackSettings();
const testId = `lbtest-${randomBytes(4).toString('hex')}`;
const PRIMARY_BACKUPS = settings.minio.primary.backupBucket;
const DR_BACKUPS = settings.minio.dr.backupBucket;
const FILES = settings.minio.primary.filesBucket;
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function purge(s3: S3Client, bucket: string, prefix = ''): Promise<void> {
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix || undefined }));
    const all = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])];
    if (all.length === 0) return;
    for (const v of all) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId }));
  }
}

async function listAll(s3: S3Client, bucket: string, prefix = ''): Promise<Array<{ key: string; size: number }>> {
  const out: Array<{ key: string; size: number }> = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

async function bytesOf(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function manifestOf(s3: S3Client, bucket: string, key: string): Promise<FileManifest> {
  return JSON.parse((await bytesOf(s3, bucket, key)).toString('utf8')) as FileManifest;
}

const byChange = (m: FileManifest, change: string) =>
  m.entries
    .filter((e) => e.change === change)
    .map((e) => e.key)
    .sort();

describe('file backup engine (S3 bucket → backup sets with manifests)', function () {
  let primary: S3Client;
  let dr: S3Client;
  const root = `${testId}/files`;
  const sourceBucket = `${testId}-src`;
  const restoreBucket = `${testId}-restore`;

  before(async function () {
    this.timeout(600000);
    await useStack();
    primary = s3ClientFor(settings, settings.minio.primary);
    dr = s3ClientFor(settings, settings.minio.dr);
  });

  after(async function () {
    await purge(primary, PRIMARY_BACKUPS, `${testId}/`);
    await purge(dr, DR_BACKUPS, `${testId}/`);
    for (const [s3, bucket] of [
      [primary, sourceBucket],
      [dr, restoreBucket],
    ] as const) {
      await purge(s3, bucket).catch(() => undefined);
      await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
    }
    primary.destroy();
    dr.destroy();
  });

  it('makes sortable, key-safe timestamps and refuses unsafe ones', async function () {
    assert.equal(backupTimestamp('2026-01-21T04:00:00.000Z'), '20260121T040000Z');
    assert.equal(backupTimestamp(new Date(Date.UTC(2026, 11, 31, 23, 59, 59))), '20261231T235959Z');
    assert.throws(() => backupTimestamp('yesterday'), (err: LifeboatError) => err.code === 'BAD_INPUT');
    const engine = new FileBackupEngine({ source: { s3: primary, bucket: FILES }, backup: { s3: primary, bucket: PRIMARY_BACKUPS, root } });
    await assert.rejects(engine.backup({ timestamp: '../x', mode: 'full' }), (err: LifeboatError) => err.code === 'BAD_INPUT' && err.nonRetryable);
  });

  it('names a missing source bucket', async function () {
    const engine = new FileBackupEngine({ source: { s3: primary, bucket: `${testId}-missing` }, backup: { s3: primary, bucket: PRIMARY_BACKUPS, root } });
    await assert.rejects(engine.backup({ timestamp: '20260101T000000Z', mode: 'full' }), (err: LifeboatError) => {
      assert.equal(err.code, 'BUCKET_NOT_FOUND');
      assert.equal(err.nonRetryable, true);
      return true;
    });
  });

  describe('the shared app-files bucket', function () {
    const appRoot = `${root}/app-files`;
    const T0 = '20260101T000000Z';
    let engine: FileBackupEngine;

    before(function () {
      engine = new FileBackupEngine({ source: { s3: primary, bucket: FILES }, backup: { s3: primary, bucket: PRIMARY_BACKUPS, root: appRoot, name: 'primary' } });
    });

    it('takes a full backup of every object, with SHA-256, ETag, size and version in the manifest', async function () {
      const progress: FileProgress[] = [];
      const result = await engine.backup({ timestamp: T0, mode: 'full', onProgress: (p) => progress.push(p) });
      assert.equal(result.kind, 'full');
      assert.equal(result.adopted, false);
      assert.equal(result.manifestKey, `${appRoot}/${T0}/manifest.json`);
      const source = await listAll(primary, FILES);
      assert.equal(result.totals.objects, source.length);
      assert.equal(result.totals.added, source.length);
      assert.equal(result.totals.bytes, source.reduce((n, o) => n + o.size, 0));
      assert.deepEqual(JSON.parse(JSON.stringify(result)), result, 'JSON-safe');

      const manifest = await manifestOf(primary, PRIMARY_BACKUPS, result.manifestKey);
      for (const sample of SAMPLE_OBJECTS) {
        const entry = manifest.entries.find((e) => e.key === sample.key);
        assert.ok(entry, `${sample.key} is in the manifest`);
        assert.equal(entry.size, Buffer.byteLength(sample.body));
        assert.equal(entry.sha256, sha256(sample.body));
        assert.equal(entry.contentType, sample.contentType);
        assert.equal(entry.storedIn, T0);
        assert.match(entry.etag, /^[0-9a-f]{32}/);
        assert.ok(entry.versionId, 'app-files is versioned: the version copied is recorded');
        assert.deepEqual(await bytesOf(primary, PRIMARY_BACKUPS, `${appRoot}/${T0}/objects/${sample.key}`), Buffer.from(sample.body));
      }
      const last = progress[progress.length - 1];
      assert.equal(last.objectsDone, last.objectsTotal);
    });

    it('verifies, and adopts the finished backup when run again', async function () {
      const v = await engine.verify(T0, { sample: 'all' });
      assert.equal(v.ok, true, JSON.stringify(v.checks, null, 2));
      assert.deepEqual(
        v.checks.map((c) => c.name),
        ['manifest', 'stored objects', 'sampled content'],
      );
      const again = await engine.backup({ timestamp: T0, mode: 'full' });
      assert.equal(again.adopted, true);
      assert.deepEqual(await engine.listBackups(), [T0]);
    });
  });

  describe('a scratch bucket that changes between backups', function () {
    const T1 = '20260102T000000Z';
    const T2 = '20260103T000000Z';
    const T3 = '20260104T000000Z';
    const big = randomBytes(12 * 1024 * 1024 + 5);
    const original: Record<string, { body: Buffer; contentType: string; metadata?: Record<string, string> }> = {
      'docs/readme.txt': { body: Buffer.from('version one of the readme\n'), contentType: 'text/plain' },
      'docs/keep.json': { body: Buffer.from(JSON.stringify({ keep: true, n: 42 })), contentType: 'application/json', metadata: { owner: 'team-a' } },
      'images/logo.bin': { body: randomBytes(64 * 1024), contentType: 'application/octet-stream' },
      'big/blob.bin': { body: big, contentType: 'application/octet-stream' },
      'to-delete/old.txt': { body: Buffer.from('soon gone\n'), contentType: 'text/plain' },
      'unicode/naïve file (1).txt': { body: Buffer.from('spaces, parentheses and a diaeresis\n'), contentType: 'text/plain; charset=utf-8' },
    };
    const current = { ...original };
    let engine: FileBackupEngine;
    const backups = () => ({ s3: primary, bucket: PRIMARY_BACKUPS, root: `${root}/scratch`, name: 'primary' });
    const drBackups = () => ({ s3: dr, bucket: DR_BACKUPS, root: `${root}/scratch`, name: 'dr' });

    const put = async (key: string, body: Buffer, contentType: string, metadata?: Record<string, string>) => {
      await primary.send(new PutObjectCommand({ Bucket: sourceBucket, Key: key, Body: body, ContentType: contentType, Metadata: metadata }));
      current[key] = { body, contentType, metadata };
    };

    before(async function () {
      await ensureBucket(primary, { name: sourceBucket, versioning: true });
      for (const [key, o] of Object.entries(original)) await put(key, o.body, o.contentType, o.metadata);
      // Small parts and several objects at once, so the multipart path runs concurrently.
      engine = new FileBackupEngine({ source: { s3: primary, bucket: sourceBucket }, backup: backups(), concurrency: 3, partSize: 5 * 1024 * 1024 });
    });

    it('refuses an incremental without an earlier backup', async function () {
      await assert.rejects(engine.backup({ timestamp: T1, mode: 'incremental' }), (err: LifeboatError) => {
        assert.equal(err.code, 'NO_BASE_BACKUP');
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /take a full backup first/);
        return true;
      });
    });

    it('an incremental holds exactly the changes: modified and new objects copied, deletions listed, the rest referenced', async function () {
      const full = await engine.backup({ timestamp: T1, mode: 'full' });
      assert.equal(full.totals.objects, Object.keys(original).length);
      assert.equal((await engine.verify(T1, { sample: 'all' })).ok, true);

      await put('docs/readme.txt', Buffer.from('version two of the readme, a little longer\n'), 'text/plain');
      await put('docs/new.txt', Buffer.from('a new document\n'), 'text/plain');
      await primary.send(new DeleteObjectCommand({ Bucket: sourceBucket, Key: 'to-delete/old.txt' }));
      delete current['to-delete/old.txt'];

      const incr = await engine.backup({ timestamp: T2, mode: 'incremental' });
      assert.equal(incr.kind, 'incremental');
      assert.equal(incr.base, T1, 'the latest earlier backup is the base');
      assert.deepEqual(
        { ...incr.totals },
        {
          objects: Object.keys(current).length,
          bytes: Object.values(current).reduce((n, o) => n + o.body.length, 0),
          added: 1,
          modified: 1,
          unchanged: 4,
          deleted: 1,
          copiedBytes: current['docs/readme.txt'].body.length + current['docs/new.txt'].body.length,
        },
      );
      const manifest = await manifestOf(primary, PRIMARY_BACKUPS, incr.manifestKey);
      assert.deepEqual(byChange(manifest, 'added'), ['docs/new.txt']);
      assert.deepEqual(byChange(manifest, 'modified'), ['docs/readme.txt']);
      assert.deepEqual(byChange(manifest, 'deleted'), ['to-delete/old.txt']);
      assert.deepEqual(byChange(manifest, 'unchanged'), ['big/blob.bin', 'docs/keep.json', 'images/logo.bin', 'unicode/naïve file (1).txt']);
      for (const e of manifest.entries) {
        assert.equal(e.storedIn, e.change === 'added' || e.change === 'modified' ? T2 : T1, `${e.key} lives in the right backup`);
        if (e.change !== 'deleted') assert.equal(e.sha256, sha256(current[e.key].body), `${e.key} SHA-256`);
      }
      const stored = (await listAll(primary, PRIMARY_BACKUPS, `${root}/scratch/${T2}/objects/`)).map((o) => o.key.split(`/${T2}/objects/`)[1]).sort();
      assert.deepEqual(stored, ['docs/new.txt', 'docs/readme.txt'], 'only the changes were copied');

      const v = await engine.verify(T2, { sample: 'all' });
      assert.equal(v.ok, true, JSON.stringify(v.checks, null, 2));
      assert.deepEqual(
        v.checks.map((c) => c.name),
        ['manifest', 'stored objects', 'earlier backups', 'sampled content'],
      );
      assert.equal(v.objects, Object.keys(current).length);
    });

    it('an incremental of an unchanged bucket copies nothing and points into both earlier backups', async function () {
      const incr = await engine.backup({ timestamp: T3, mode: 'incremental' });
      assert.equal(incr.base, T2);
      assert.equal(incr.totals.copiedBytes, 0);
      assert.equal(incr.totals.unchanged, Object.keys(current).length);
      assert.equal(incr.totals.deleted, 0, 'a deletion is reported once, by the backup after it');
      const manifest = await manifestOf(primary, PRIMARY_BACKUPS, incr.manifestKey);
      assert.deepEqual([...new Set(manifest.entries.map((e) => e.storedIn))].sort(), [T1, T2]);
      const v = await engine.verify(T3, { sample: 3 });
      assert.equal(v.ok, true, JSON.stringify(v.checks, null, 2));
      assert.equal(v.sampled.length, 3);
      assert.deepEqual((await engine.verify(T3, { sample: 3 })).sampled, v.sampled, 'the sample is deterministic');
      assert.deepEqual(await engine.listBackups(), [T1, T2, T3]);
    });

    it('copies a backup set with the objects it references to the DR region, verifies it, and resumes on a retry', async function () {
      const copy = await engine.copyToRegion(T2, drBackups());
      assert.equal(copy.bucket, DR_BACKUPS);
      assert.equal(copy.store, 'dr');
      assert.equal(copy.copied, Object.keys(current).length, 'its own objects and those it shares with T1');
      assert.equal(copy.skipped, 0);
      assert.equal(copy.verification.ok, true, JSON.stringify(copy.verification.checks, null, 2));
      assert.equal(copy.verification.sampled.length, Object.keys(current).length, 'every object of the copy was hashed');
      const drManifest = await manifestOf(dr, DR_BACKUPS, copy.manifestKey);
      assert.deepEqual(drManifest, await manifestOf(primary, PRIMARY_BACKUPS, engine.manifestKey(T2)));
      const head = await dr.send(new HeadObjectCommand({ Bucket: DR_BACKUPS, Key: `${root}/scratch/${T1}/objects/big/blob.bin` }));
      assert.equal(head.Metadata?.['lifeboat-sha256'], sha256(big));

      const again = await engine.copyToRegion(T2, drBackups());
      assert.equal(again.copied, 0);
      assert.equal(again.skipped, Object.keys(current).length);
      assert.equal(again.verification.ok, true);
    });

    it('restores a backup from the DR copy byte for byte, with content types and metadata, without deleted objects', async function () {
      await ensureBucket(dr, { name: restoreBucket, versioning: true });
      const fromDr = new FileBackupEngine({ source: { bucket: sourceBucket }, backup: drBackups() });
      const restored = await fromDr.restore(T2, { s3: dr, bucket: restoreBucket, prefix: 'restored/' });
      assert.equal(restored.restored, Object.keys(current).length);
      assert.equal(restored.skippedDeleted, 1);
      assert.equal(restored.destination, `${restoreBucket}/restored/`);
      const listed = (await listAll(dr, restoreBucket, 'restored/')).map((o) => o.key.slice('restored/'.length)).sort();
      assert.deepEqual(listed, Object.keys(current).sort());
      for (const [key, o] of Object.entries(current)) {
        const out = await dr.send(new GetObjectCommand({ Bucket: restoreBucket, Key: `restored/${key}` }));
        const body = Buffer.from(await out.Body!.transformToByteArray());
        assert.ok(body.equals(o.body), `${key} round-trips byte for byte`);
        assert.equal(out.ContentType, o.contentType, `${key} content type`);
        if (o.metadata) assert.deepEqual(out.Metadata, o.metadata, `${key} user metadata`);
      }

      const one = await fromDr.restore(T2, { s3: dr, bucket: restoreBucket, prefix: 'only-docs/' }, { keys: ['docs/'] });
      assert.equal(one.restored, 3);
      assert.deepEqual((await listAll(dr, restoreBucket, 'only-docs/')).map((o) => o.key).sort(), ['only-docs/docs/keep.json', 'only-docs/docs/new.txt', 'only-docs/docs/readme.txt']);
    });

    it('a corrupted backup object fails verify with the key and the reason, and is never restored', async function () {
      const victim = `${root}/scratch/${T1}/objects/docs/keep.json`;
      const good = await bytesOf(primary, PRIMARY_BACKUPS, victim);
      const bad = Buffer.from(good);
      bad[3] ^= 0x20;
      await primary.send(new PutObjectCommand({ Bucket: PRIMARY_BACKUPS, Key: victim, Body: bad }));

      for (const ts of [T1, T2]) {
        const v = await engine.verify(ts, { sample: 'all' });
        assert.equal(v.ok, false);
        const failed = v.checks.filter((c) => !c.ok);
        assert.deepEqual(failed.map((c) => c.name), ['sampled content'], `${ts}: same size, so only the content check can tell`);
        assert.match(failed[0].detail, /1 of \d+ sampled objects do not match the manifest \(altered or damaged; use the other region's copy or take a new full backup\): docs\/keep\.json: SHA-256 /);
      }

      await assert.rejects(engine.restore(T2, { s3: primary, bucket: sourceBucket, prefix: 'restore-check/' }, { keys: ['docs/keep.json'] }), (err: LifeboatError) => {
        assert.equal(err.code, 'BACKUP_DAMAGED');
        assert.match(err.message, /docs\/keep\.json .* was not copied: the backup copy was altered or damaged/);
        return true;
      });
      assert.deepEqual(await listAll(primary, sourceBucket, 'restore-check/'), [], 'nothing was written');
      // A fresh copy streams from the damaged object and refuses to complete it.
      await assert.rejects(engine.copyToRegion(T2, { ...drBackups(), root: `${root}/scratch-again` }), (err: LifeboatError) => {
        assert.equal(err.code, 'BACKUP_DAMAGED');
        return true;
      });
      assert.equal((await listAll(dr, DR_BACKUPS, `${root}/scratch-again/${T1}/objects/docs/keep.json`)).length, 0);

      // A missing object (or one of another size) shows up in the listing check as well.
      await primary.send(new DeleteObjectCommand({ Bucket: PRIMARY_BACKUPS, Key: `${root}/scratch/${T2}/objects/docs/new.txt` }));
      const v = await engine.verify(T2, { sample: 1 });
      const stored = v.checks.find((c) => c.name === 'stored objects')!;
      assert.equal(stored.ok, false);
      assert.match(stored.detail, /manifest records 2 .*missing docs\/new\.txt/);
    });
  });
});
