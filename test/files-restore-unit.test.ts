/**
 * The files restore's rules that need no server: what the CLI refuses before connecting (through
 * the real CLI, with Temporal unreachable), key lists, bucket names, and the bucket as it was at
 * a time from S3's version listing (at the SDK boundary, with realistic ListObjectVersions pages).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mockClient } from 'aws-sdk-client-mock';
import { ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { bucketNameProblem, describeSelection, filesRestoreRequestProblem, parseKeyList, restoreBucketName, selects } from '../src/domain/files-restore';
import { objectsAt } from '../src/engines/bucket-versions';
import { lifeboat } from './helpers/cli';

describe('files restore: rules without a server', () => {
  it('refuses contradictory requests with one sentence', () => {
    const none = { inPlace: false, mirror: false };
    assert.match(filesRestoreRequestProblem({ ...none, backup: 'latest', to: '2026-01-01T00:00:00Z' })!, /^give --backup <id\|latest> or --to <time>, not both/);
    assert.match(filesRestoreRequestProblem({ ...none })!, /^a files restore needs --backup <id\|latest> \(a backup set\) or --to <time>/);
    assert.match(filesRestoreRequestProblem({ ...none, backup: 'latest', mirror: true })!, /applies only to --in-place/);
    assert.match(filesRestoreRequestProblem({ backup: 'latest', inPlace: true, mirror: true, keysFrom: 'k' })!, /not to a key list/);
    assert.match(filesRestoreRequestProblem({ ...none, backup: 'latest', prefix: 'a/', keysFrom: 'k' })!, /^give --prefix or --keys-from, not both\.$/);
    assert.match(filesRestoreRequestProblem({ backup: 'latest', inPlace: true, mirror: false, intoBucket: 'x-y' })!, /not both/);
    assert.match(filesRestoreRequestProblem({ ...none, backup: 'latest', intoBucket: 'UP' })!, /^--into-bucket "UP" is not a valid bucket name/);
    assert.equal(filesRestoreRequestProblem({ ...none, backup: 'latest', prefix: 'docs/', intoBucket: 'docs-restored' }), undefined);
    assert.equal(filesRestoreRequestProblem({ backup: 'latest', inPlace: true, mirror: true, prefix: 'docs/' }), undefined);
  });

  it('reads key lists, names buckets, selects keys', () => {
    assert.deepEqual(parseKeyList('a.txt\r\n\n# comment\n  b/c.txt  \na.txt\n'), ['a.txt', 'b/c.txt']);
    assert.equal(restoreBucketName('restore-files-app-files-2026-12-01t03-00-00-000z'), 'restore-files-app-files-2026-12-01t03-00-00-000z');
    assert.equal(restoreBucketName('Test_Run.1'), 'restore-test-run-1');
    assert.ok(restoreBucketName('x'.repeat(100)).length <= 63);
    assert.equal(bucketNameProblem('app-files-restored'), undefined);
    assert.ok(bucketNameProblem('192.168.1.1'));
    assert.ok(bucketNameProblem('a..b'));
    assert.equal(selects({ prefix: 'docs/' }, 'docs/a'), true);
    assert.equal(selects({ prefix: 'docs/' }, 'img/a'), false);
    assert.equal(selects({ keys: ['a'] }, 'a/b'), false);
    assert.equal(selects({}, 'anything'), true);
    assert.equal(describeSelection({ keys: ['a', 'b'], keysFrom: 'k.txt' }), 'the 2 keys listed in k.txt');
  });

  it('sees a versioned bucket as it was at a time: newest version then, deleted keys left out, later versions ignored, pages followed', async () => {
    const s3 = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    const mock = mockClient(s3);
    const t = (s: string) => new Date(`2026-11-21T10:${s}Z`);
    mock
      .on(ListObjectVersionsCommand, { Bucket: 'b', KeyMarker: undefined })
      .resolves({
        IsTruncated: true,
        NextKeyMarker: 'b.txt',
        NextVersionIdMarker: 'v-b1',
        Versions: [
          { Key: 'a.txt', VersionId: 'v-a3', IsLatest: true, LastModified: t('05:00'), Size: 30, ETag: '"a3"' },
          { Key: 'a.txt', VersionId: 'v-a2', IsLatest: false, LastModified: t('03:00'), Size: 20, ETag: '"a2"' },
          { Key: 'a.txt', VersionId: 'v-a1', IsLatest: false, LastModified: t('01:00'), Size: 10, ETag: '"a1"' },
          { Key: 'b.txt', VersionId: 'v-b1', IsLatest: false, LastModified: t('01:00'), Size: 5, ETag: '"b1"' },
        ],
        DeleteMarkers: [{ Key: 'b.txt', VersionId: 'd-b', IsLatest: true, LastModified: t('02:00') }],
      })
      .on(ListObjectVersionsCommand, { Bucket: 'b', KeyMarker: 'b.txt' })
      .resolves({
        IsTruncated: false,
        Versions: [
          { Key: 'c.txt', VersionId: 'v-c1', IsLatest: true, LastModified: t('04:00'), Size: 7, ETag: '"c1"' },
          { Key: 'd.txt', VersionId: 'null', IsLatest: true, LastModified: t('00:30'), Size: 9, ETag: '"d0"' },
        ],
      });
    const at = await objectsAt(s3, 'b', undefined, t('03:30'));
    assert.deepEqual(
      at.map((v) => [v.key, v.versionId, v.size, v.etag]),
      [
        ['a.txt', 'v-a2', 20, 'a2'],
        ['d.txt', 'null', 9, 'd0'],
      ],
    );
    const earlier = await objectsAt(s3, 'b', undefined, t('01:30'));
    assert.deepEqual(earlier.map((v) => v.key), ['a.txt', 'b.txt', 'd.txt']);
    mock.restore();
  });

  it('the CLI refuses before connecting (Temporal unreachable): exit 2, one sentence', async function () {
    // Six CLI processes, each starting Node: a loaded machine takes its time.
    this.timeout(300000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-frest-unit-'));
    const empty = path.join(dir, 'empty.txt');
    fs.writeFileSync(empty, '# nothing\n\n');
    const offline = { LIFEBOAT_TEMPORAL_PORT: '1' };
    const cases: Array<[string[], RegExp]> = [
      [['restore', 'app-files', '--backup', 'latest', '--to', '2026-01-01T00:00:00Z', '--reason', 'r', '--as', 'alice@example.com'], /^lifeboat: give --backup <id\|latest> or --to <time>, not both: /],
      [['restore', 'app-files', '--backup', 'latest', '--mirror', '--reason', 'r', '--as', 'alice@example.com'], /^lifeboat: --mirror deletes objects the backup does not have, so it applies only to --in-place: /],
      [['restore', 'app-files', '--backup', 'latest', '--keys-from', empty, '--reason', 'r', '--as', 'alice@example.com'], /^lifeboat: --keys-from \S+ lists no key: /],
      [['restore', 'app-files', '--to', '2026-01-01 10:00', '--reason', 'r', '--as', 'alice@example.com'], /^lifeboat: --to "2026-01-01 10:00" is not a time with a zone: /],
      [['restore', 'app-files', '--backup', 'latest', '--in-place', '--reason', 'r', '--as', 'nobody@example.com'], /^lifeboat: nobody@example\.com is not in the config's people, and a request in the production environment production must come from a known person/],
      [['restore', 'app', '--to', 'latest', '--prefix', 'x/', '--reason', 'r', '--as', 'alice@example.com'], /^lifeboat: --prefix applies to bucket targets \(a files restore\); app is not one\.$/],
    ];
    for (const [args, sentence] of cases) {
      const r = await lifeboat(args, offline);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), sentence);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
