/**
 * Immutable backups at their boundaries, without a server: the S3 Object Lock calls (through
 * aws-sdk-client-mock, checking exactly what lifeboat sends), the preflight's judgement of a
 * bucket's lock, the config rule that keeps the lock within the retention policy, and the rules
 * that refuse a deletion by hand. The real MinIO behaviour is in backup-deletion.test.ts.
 */
import assert from 'node:assert/strict';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadBucketCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectLockConfigurationCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { ConfigError } from '../src/config';
import { defaultRequiredApprovals } from '../src/domain/approval';
import { deletionRefusal, DeletionSubject, SeriesMember } from '../src/domain/backup-deletion';
import { lockProblem } from '../src/domain/object-lock';
import { readBucketLock, removeAsLockAllows, versionsUnderLock } from '../src/engines/object-lock';
import { ensureBucket } from '../src/engines/s3';
import { derivedConfig } from './helpers/scratch';

const s3Error = (name: string, status: number) => new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });
const NOW = new Date('2026-12-01T00:00:00Z');

describe('immutable backups', () => {
  describe('S3 Object Lock calls (SDK boundary)', () => {
    // Mocked per test: another suite's restore() must not leave this one with a real client.
    let s3: AwsClientStub<S3Client>;
    beforeEach(() => (s3 = mockClient(S3Client)));
    afterEach(() => s3.restore());

    it('reads a bucket lock, and a bucket without one as not enabled', async () => {
      s3.on(GetObjectLockConfigurationCommand, { Bucket: 'locked' }).resolves({ ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 7 } } } });
      s3.on(GetObjectLockConfigurationCommand, { Bucket: 'plain' }).rejects(s3Error('ObjectLockConfigurationNotFoundError', 404));
      const client = new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
      assert.deepEqual(await readBucketLock(client, 'locked'), { enabled: true, mode: 'COMPLIANCE', days: 7 });
      assert.deepEqual(await readBucketLock(client, 'plain'), { enabled: false });
    });

    it('creates a locked bucket with object lock on at creation, versioning, and the configured mode and days', async () => {
      s3.on(HeadBucketCommand).rejects(s3Error('NotFound', 404));
      s3.on(CreateBucketCommand).resolves({});
      s3.on(GetBucketVersioningCommand).resolves({ Status: 'Enabled' });
      s3.on(GetObjectLockConfigurationCommand).resolves({ ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' } });
      s3.on(PutObjectLockConfigurationCommand).resolves({});
      await ensureBucket(new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }), { name: 'backups', versioning: true, objectLock: { mode: 'COMPLIANCE', days: 7 } });
      assert.deepEqual(s3.commandCalls(CreateBucketCommand)[0].args[0].input, { Bucket: 'backups', ObjectLockEnabledForBucket: true });
      assert.equal(s3.commandCalls(PutBucketVersioningCommand).length, 0);
      assert.deepEqual(s3.commandCalls(PutObjectLockConfigurationCommand)[0].args[0].input, {
        Bucket: 'backups',
        ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 7 } } },
      });
    });

    function twoVersions() {
      s3.on(ListObjectVersionsCommand).resolves({
        Versions: [
          { Key: 'logical/db/a.dump.gz.enc', VersionId: 'v2', IsLatest: true },
          { Key: 'logical/db/a.dump.gz.enc', VersionId: 'v1', IsLatest: false },
        ],
      });
      s3.on(GetObjectRetentionCommand, { VersionId: 'v2' }).resolves({ Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date('2026-12-05T00:00:00Z') } });
      s3.on(GetObjectRetentionCommand, { VersionId: 'v1' }).rejects(s3Error('NoSuchObjectLockConfiguration', 404));
      s3.on(DeleteObjectCommand).resolves({});
    }

    it('finds which versions are still under retention, and until when', async () => {
      twoVersions();
      const found = await versionsUnderLock(new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }), 'b', { key: 'logical/db/a.dump.gz.enc' }, NOW);
      assert.deepEqual(found, { versions: 2, locked: [{ key: 'logical/db/a.dump.gz.enc', versionId: 'v2', mode: 'GOVERNANCE', until: '2026-12-05T00:00:00.000Z' }], lockedUntil: '2026-12-05T00:00:00.000Z', mode: 'GOVERNANCE' });
      // A retention that ended is no lock.
      const later = await versionsUnderLock(new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }), 'b', { key: 'logical/db/a.dump.gz.enc' }, new Date('2026-12-06T00:00:00Z'));
      assert.deepEqual(later.locked, []);
    });

    it('removes only what the lock allows: the unlocked version goes, the locked one stays behind a delete marker, never with a bypass', async () => {
      twoVersions();
      const r = await removeAsLockAllows(new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }), 'b', { key: 'logical/db/a.dump.gz.enc' }, NOW, { bypassGovernance: false });
      assert.deepEqual(r, { removed: 1, kept: 1, markers: 1, lockedUntil: '2026-12-05T00:00:00.000Z' });
      assert.deepEqual(
        s3.commandCalls(DeleteObjectCommand).map((c) => c.args[0].input),
        [
          { Bucket: 'b', Key: 'logical/db/a.dump.gz.enc', VersionId: 'v1' },
          { Bucket: 'b', Key: 'logical/db/a.dump.gz.enc' },
        ],
      );
    });

    it('bypasses governance retention only when asked (after a gate), and never compliance', async () => {
      twoVersions();
      s3.on(ListObjectVersionsCommand).resolves({
        Versions: [
          { Key: 'k', VersionId: 'v2', IsLatest: true },
          { Key: 'k', VersionId: 'v1', IsLatest: false },
          { Key: 'c', VersionId: 'v3', IsLatest: true },
        ],
      });
      s3.on(GetObjectRetentionCommand, { VersionId: 'v3' }).resolves({ Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date('2027-01-01T00:00:00Z') } });
      const r = await removeAsLockAllows(new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }), 'b', { prefix: 'k' }, NOW, { bypassGovernance: true });
      const deletes = s3.commandCalls(DeleteObjectCommand).map((c) => c.args[0].input);
      assert.deepEqual(deletes.slice(0, 2), [
        { Bucket: 'b', Key: 'k', VersionId: 'v2', BypassGovernanceRetention: true },
        { Bucket: 'b', Key: 'k', VersionId: 'v1' },
      ]);
      // The compliance version stays; its key gets a delete marker.
      assert.deepEqual(deletes[2], { Bucket: 'b', Key: 'c' });
      assert.deepEqual(r, { removed: 2, kept: 1, markers: 1, lockedUntil: '2027-01-01T00:00:00.000Z' });
    });
  });

  describe('the preflight judges the lock a bucket really has', () => {
    const wanted = { mode: 'compliance' as const, days: 7 };
    it('says plainly when a bucket configured as locked has no lock, and what to do', () => {
      assert.match(lockProblem('backups', wanted, { enabled: false })!, /^backups has no object lock, so its backups can be deleted or overwritten: object lock can only be turned on when a bucket is created/);
    });
    it('refuses a lock without default retention, or with another mode or period', () => {
      assert.match(lockProblem('backups', wanted, { enabled: true })!, /no default retention/);
      assert.match(lockProblem('backups', wanted, { enabled: true, mode: 'GOVERNANCE', days: 7 })!, /locks new versions GOVERNANCE for 7 days, but the config says COMPLIANCE for 7 days/);
      assert.match(lockProblem('backups', wanted, { enabled: true, mode: 'COMPLIANCE', days: 30 })!, /COMPLIANCE for 30 days/);
    });
    it('accepts the configured lock', () => {
      assert.equal(lockProblem('backups', wanted, { enabled: true, mode: 'COMPLIANCE', days: 7 }), undefined);
    });
  });

  describe('the config', () => {
    const withBuckets = (days: number) =>
      derivedConfig((d) => {
        d.backupBuckets = [{ store: d.objectStores[0].name, bucket: 'lifeboat-locked', objectLock: { mode: 'governance', days }, pgbackrestRepo: 1 }];
      });
    it('takes a lock no longer than what the policy keeps every backup (retention.daily)', () => {
      const config = withBuckets(7);
      assert.deepEqual(config.backupBuckets[0].objectLock, { mode: 'governance', days: 7 });
    });
    it('refuses a lock longer than retention.daily in one sentence that says what to do', () => {
      assert.throws(
        () => withBuckets(30),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.problems.some((p) => p.path === 'backupBuckets[0].objectLock.days' && /^is 30, longer than retention\.daily \(7\): backups the policy expires would still be locked; lower the lock, or raise retention\.daily/.test(p.message)),
      );
    });
    it('makes a backup deletion a two-person gate in production, one elsewhere', () => {
      assert.equal(defaultRequiredApprovals('backupDeletion', true), 2);
      assert.equal(defaultRequiredApprovals('backupDeletion', false), 1);
    });
  });

  describe('what a deletion by hand refuses', () => {
    const member = (id: string, status: string, completedAt: string, dependsOn: string[] = []): SeriesMember => ({ id, engineBackupId: `b${id}`, status, completedAt, dependsOn });
    const subject = (m: SeriesMember, legalHold = false): DeletionSubject => ({ ...m, dependsOn: [], target: 'app', legalHold });
    const old = member('1', 'verified', '2026-11-01T00:00:00Z');
    const mid = member('2', 'verified', '2026-11-10T00:00:00Z');
    const newest = member('3', 'complete', '2026-11-20T00:00:00Z');
    const series = [old, mid, newest];

    it('deletes an older backup when a newer and another verified one remain', () => {
      assert.equal(deletionRefusal(subject(old), series), undefined);
    });
    it('refuses the newest backup: the RPO rests on it', () => {
      assert.match(deletionRefusal(subject(newest), series)!, /is its newest backup, the one the RPO rests on: take a new backup first/);
    });
    it('refuses the only verified backup', () => {
      const s = [mid, newest];
      assert.match(deletionRefusal(subject(mid), s)!, /only verified backup/);
    });
    it('refuses a backup others depend on, one under legal hold, and one already gone', () => {
      const diff = member('4', 'complete', '2026-11-25T00:00:00Z', ['b1']);
      assert.match(deletionRefusal(subject(old), [...series, diff])!, /needed by b4/);
      assert.match(deletionRefusal(subject(old, true), series)!, /under legal hold/);
      assert.match(deletionRefusal(subject(member('1', 'expired', old.completedAt!)), series)!, /already expired: nothing to delete/);
      assert.match(deletionRefusal(subject(member('1', 'running', old.completedAt!)), series)!, /still running/);
    });
    it('lets a failed backup\'s leftovers go', () => {
      assert.equal(deletionRefusal(subject(member('5', 'failed', '2026-11-30T00:00:00Z')), series), undefined);
    });
  });
});
