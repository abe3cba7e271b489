/**
 * The files drill's parts that need no server: the scratch bucket's name and its ownership at
 * the S3 SDK boundary (AWS S3: made in the client's region, tagged with its owner run, adopted
 * only by that run, removed only on its behalf), the sample a drill hashes, the report's wording
 * for a set of objects, and `drill run`'s refusal of a bad id for a bucket target.
 */
import assert from 'node:assert/strict';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetBucketTaggingCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketTaggingCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { prepareDrill } from '../src/client/drill-commands';
import { UsageError } from '../src/client/args';
import { loadConfig } from '../src/config';
import { drillReportHtml, drillReportMarkdown, DrillReport } from '../src/domain/drill-report';
import { drillBucketName, DRILL_BUCKET_TAGS } from '../src/domain/files-drill';
import { LifeboatError } from '../src/domain/errors';
import { createDrillBucket, listDrillBuckets, removeDrillBucket } from '../src/engines/drill-bucket';
import type { ManifestEntry } from '../src/engines/file-backup';
import { checkRestoredContent, checkRestoredCount, checkRestoredMetadata, drillSample } from '../src/engines/restored-files';
import { CONFIG_FILE } from './helpers/cli';
import { DR_REGION, errorMeta } from './helpers/aws-fixtures';

const OWNER = { workflowId: 'drill-app-files-2026-11-30t10-00-00-000z', runId: '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0', target: 'app-files', createdAt: '2026-11-30T10:00:00.000Z' };
const tagsOf = (o: typeof OWNER) => [
  { Key: DRILL_BUCKET_TAGS.drill, Value: 'true' },
  { Key: DRILL_BUCKET_TAGS.workflowId, Value: o.workflowId },
  { Key: DRILL_BUCKET_TAGS.runId, Value: o.runId },
  { Key: DRILL_BUCKET_TAGS.target, Value: o.target },
  { Key: DRILL_BUCKET_TAGS.createdAt, Value: o.createdAt },
];
const notFound = () => Object.assign(new Error('NotFound'), { name: 'NotFound', $metadata: { ...errorMeta, httpStatusCode: 404 } });

describe('files drill (no server)', () => {
  it('names the scratch bucket after the workflow: a valid S3 bucket name starting drill-', () => {
    assert.equal(drillBucketName('drill-app-files-2026-11-30T10:00:00.000Z'), 'drill-app-files-2026-11-30t10-00-00-000z');
    assert.equal(drillBucketName('Nightly_Files/7'), 'drill-nightly-files-7');
    const long = drillBucketName(`drill-${'x'.repeat(80)}-`);
    assert.ok(long.length <= 63 && /^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(long), long);
  });

  it('hashes every object of a small set, and a stable sample of a large one that differs from drill to drill', () => {
    const entries: ManifestEntry[] = Array.from({ length: 50 }, (_, i) => ({ key: `k/${String(i).padStart(3, '0')}`, change: 'added', size: i, etag: '', sha256: '', storedIn: 't' }));
    assert.equal(drillSample(entries, 'drill-a', 50, 10).length, 50);
    const a = drillSample(entries, 'drill-a', 20, 10).map((e) => e.key);
    assert.equal(a.length, 10);
    assert.deepEqual(drillSample(entries, 'drill-a', 20, 10).map((e) => e.key), a, 'the same drill (a retry) samples the same objects');
    assert.notDeepEqual(drillSample(entries, 'drill-b', 20, 10).map((e) => e.key), a, 'the next drill samples others');
  });

  describe('the scratch bucket at the S3 SDK boundary (AWS S3)', () => {
    // The mock of this one client: other suites' mocks of the class come and go without touching it.
    const s3 = new S3Client({ region: DR_REGION, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } });
    let s3mock: ReturnType<typeof mockClient>;
    before(() => (s3mock = mockClient(s3)));
    afterEach(() => s3mock.reset());
    after(() => s3mock.restore());

    it('makes it in the client region, tagged with its owner run; a retry of the same run adopts it', async () => {
      s3mock.on(HeadBucketCommand).rejects(notFound());
      s3mock.on(CreateBucketCommand).resolves({});
      s3mock.on(PutBucketTaggingCommand).resolves({});
      assert.deepEqual(await createDrillBucket(s3, 'drill-x', OWNER), { adopted: false });
      assert.deepEqual(s3mock.commandCalls(CreateBucketCommand)[0].args[0].input, { Bucket: 'drill-x', CreateBucketConfiguration: { LocationConstraint: DR_REGION } });
      assert.deepEqual(s3mock.commandCalls(PutBucketTaggingCommand)[0].args[0].input, { Bucket: 'drill-x', Tagging: { TagSet: tagsOf(OWNER) } });

      s3mock.reset();
      s3mock.on(HeadBucketCommand).resolves({});
      s3mock.on(GetBucketTaggingCommand).resolves({ TagSet: tagsOf(OWNER) });
      assert.deepEqual(await createDrillBucket(s3, 'drill-x', OWNER), { adopted: true });
      assert.equal(s3mock.commandCalls(CreateBucketCommand).length, 0);
    });

    it("refuses a bucket of that name another run owns, naming it, and never removes it", async () => {
      const other = { ...OWNER, runId: 'ffffffff-0000-1111-2222-333333333333' };
      s3mock.on(HeadBucketCommand).resolves({});
      s3mock.on(GetBucketTaggingCommand).resolves({ TagSet: tagsOf(other) });
      await assert.rejects(createDrillBucket(s3, 'drill-x', OWNER), (err: LifeboatError) => err.code === 'DRILL_BUCKET_NOT_OURS' && err.message.includes(`run ${other.runId}`));
      await assert.rejects(removeDrillBucket(s3, 'drill-x', OWNER), (err: LifeboatError) => err.code === 'DRILL_BUCKET_NOT_OURS');
      s3mock.on(GetBucketTaggingCommand).rejects(Object.assign(new Error('no tags'), { name: 'NoSuchTagSet', $metadata: { ...errorMeta, httpStatusCode: 404 } }));
      await assert.rejects(removeDrillBucket(s3, 'drill-x', OWNER), /carries no drill owner tags/);
      assert.equal(s3mock.commandCalls(DeleteObjectsCommand).length + s3mock.commandCalls(DeleteBucketCommand).length, 0);
    });

    it('lists the drill buckets of a store with their owners, for the sweeper; an untagged one has none', async () => {
      s3mock.on(ListBucketsCommand).resolves({ Buckets: [{ Name: 'app-files' }, { Name: 'drill-b' }, { Name: 'drill-a' }] });
      s3mock.on(GetBucketTaggingCommand, { Bucket: 'drill-a' }).resolves({ TagSet: tagsOf(OWNER) });
      s3mock.on(GetBucketTaggingCommand, { Bucket: 'drill-b' }).rejects(Object.assign(new Error('no tags'), { name: 'NoSuchTagSet', $metadata: { ...errorMeta, httpStatusCode: 404 } }));
      assert.deepEqual(await listDrillBuckets(s3), [{ bucket: 'drill-a', owner: OWNER }, { bucket: 'drill-b' }]);
    });

    it('removes its own: every version, then unfinished uploads, then the bucket; gone already is fine', async () => {
      s3mock.on(HeadBucketCommand).resolves({});
      s3mock.on(GetBucketTaggingCommand).resolves({ TagSet: tagsOf(OWNER) });
      s3mock
        .on(ListObjectVersionsCommand)
        .resolvesOnce({ Versions: [{ Key: 'a', VersionId: 'null' }, { Key: 'b/c', VersionId: 'null' }] })
        .resolves({});
      s3mock.on(DeleteObjectsCommand).resolves({});
      s3mock.on(ListMultipartUploadsCommand).resolves({});
      s3mock.on(DeleteBucketCommand).resolves({});
      const done = await removeDrillBucket(s3, 'drill-x', OWNER);
      assert.deepEqual([done.removed, done.objects], [true, 2]);
      assert.equal(s3mock.commandCalls(DeleteBucketCommand).length, 1);

      s3mock.reset();
      s3mock.on(HeadBucketCommand).rejects(notFound());
      assert.equal((await removeDrillBucket(s3, 'drill-x', OWNER)).removed, false);
    });
  });

  describe('the checks of a restored bucket against the manifest, at the S3 SDK boundary', () => {
    const s3 = new S3Client({ region: DR_REGION, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } });
    let s3mock: ReturnType<typeof mockClient>;
    before(() => (s3mock = mockClient(s3)));
    afterEach(() => s3mock.reset());
    after(() => s3mock.restore());
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    const md5 = (text: string) => createHash('md5').update(text).digest('hex');
    const entry = (key: string, body: string, extra: Partial<ManifestEntry> = {}): ManifestEntry => ({ key, change: 'added', size: body.length, etag: md5(body), sha256: sha(body), storedIn: 't', ...extra });
    const manifest = [entry('a.txt', 'alpha', { contentType: 'text/plain', metadata: { author: 'alice' } }), entry('b.txt', 'bravo'), entry('c.txt', 'charlie')];

    it('count and bytes: names what is missing, of another size, or not in the manifest', async () => {
      s3mock.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'a.txt', Size: 5 }, { Key: 'b.txt', Size: 4 }, { Key: 'stray.txt', Size: 1 }], IsTruncated: false });
      const c = await checkRestoredCount(s3, 'drill-x', manifest);
      assert.equal(c.ok, false);
      assert.equal(c.detail, '3 objects (10 bytes) restored where the manifest records 3 (17 bytes): missing c.txt; wrong size b.txt (4 bytes, manifest 5); not in the manifest stray.txt');
    });

    it('content: an object whose bytes differ fails with its key named; the rest pass', async () => {
      s3mock.on(GetObjectCommand, { Key: 'a.txt' }).callsFake(async () => ({ Body: Readable.from([Buffer.from('alpha')]) }));
      s3mock.on(GetObjectCommand, { Key: 'b.txt' }).callsFake(async () => ({ Body: Readable.from([Buffer.from('BRAVO')]) }));
      const c = await checkRestoredContent(s3, 'drill-x', manifest.slice(0, 2), 3);
      assert.equal(c.ok, false);
      assert.match(c.detail, /^1 of a sample of 2 of 3 objects do not match the manifest: b\.txt: SHA-256 [0-9a-f]{16}… over 5 bytes, manifest [0-9a-f]{16}… over 5$/);
    });

    it('metadata: content type, user metadata and single-part ETag as recorded', async () => {
      s3mock.on(HeadObjectCommand, { Key: 'a.txt' }).resolves({ ContentType: 'application/octet-stream', Metadata: {}, ContentLength: 5, ETag: `"${md5('alpha')}"` });
      s3mock.on(HeadObjectCommand, { Key: 'b.txt' }).resolves({ ContentLength: 5, ETag: `"${md5('bravo')}"` });
      s3mock.on(HeadObjectCommand, { Key: 'c.txt' }).resolves({ ContentLength: 7, ETag: `"${md5('charlie')}-1"` });
      const c = await checkRestoredMetadata(s3, 'drill-x', manifest, 3);
      assert.equal(c.ok, false);
      assert.equal(c.detail, '1 of all 3 objects differ from the manifest: a.txt: content type application/octet-stream, manifest text/plain; metadata author=(none) (manifest alice)');
    });
  });

  it('reports a files drill in objects: the set\'s size and count, the scratch bucket, the checks', () => {
    const report: DrillReport = {
      drillId: 'drill-app-files-1',
      runId: OWNER.runId,
      startedAt: '2026-11-30T10:00:00.000Z',
      finishedAt: '2026-11-30T10:00:09.000Z',
      outcome: 'passed',
      target: { name: 'app-files', kind: 'bucket', engine: 'file-backup', environment: 'production' },
      backup: { id: '20261130T040000Z', type: 'files-full', takenAt: '2026-11-30T04:00:05.000Z', region: 'dr', sizeBytes: 6 * 1024 * 1024, objects: 12, selectedBy: 'as the newest verified backup' },
      restoredInto: { name: 'drill-app-files-1', detail: 'a scratch bucket of its own in the dr object store (dr region); 12 objects (6.0 MiB) restored; emptied and removed afterwards' },
      requestedBy: 'test',
      steps: [{ phase: 'selecting', startedAt: '2026-11-30T10:00:00.000Z', seconds: 1, detail: 'x' }],
      validations: [{ name: 'object count and bytes', method: 'listed', ok: true, detail: '12 objects, 6291456 bytes, exactly as the manifest records' }],
      rto: { seconds: 8, objectiveSeconds: 14400 },
      rpo: { seconds: 21595, objectiveSeconds: 86400 },
      issues: [],
      recommendations: [],
      history: [],
    };
    const md = drillReportMarkdown(report);
    assert.match(md, /^- Target: app-files \(bucket, file-backup\), environment production$/m);
    assert.match(md, /^- Backup tested: 20261130T040000Z \(files-full, taken 2026-11-30T04:00:05.000Z, region dr, 12 objects, 6\.0 MiB\), chosen as the newest verified backup$/m);
    assert.match(drillReportHtml(report), /region dr, 12 objects, 6\.0 MiB\), chosen/);
    assert.doesNotMatch(md, /rows/);
  });

  it('drill run of a bucket target takes a files set\'s id, and refuses a database label in one sentence', () => {
    const config = loadConfig(CONFIG_FILE);
    const target = config.targets.buckets[0].name;
    const ok = prepareDrill(config, { target, backup: '20260104T040000Z', requestedBy: 'test', fromRegion: 'dr' });
    assert.deepEqual(ok.input, { target, backup: '20260104T040000Z', requestedBy: 'test', fromRegion: 'dr' });
    assert.throws(
      () => prepareDrill(config, { target, backup: '20261130-085650F', requestedBy: 'test' }),
      (err: UsageError) => err instanceof UsageError && err.message === '--backup takes latest, random or a backup\'s id (like 20260104T040000Z, see `lifeboat backups list`), not "20261130-085650F".',
    );
  });
});
