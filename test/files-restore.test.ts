/**
 * Files restore of a bucket target on the real stack (two MinIO regions), through the real CLI:
 * a verified files backup of a versioned scratch source, then objects changed, deleted and
 * added; restored by prefix from the set and by key list from the versions at a time into new
 * buckets, and in place behind the restore gate (approved), with and without --mirror; each
 * compared exactly (bytes, content type, user metadata) with what the objects were. Bad input is
 * refused with one sentence and exit 2 before anything is created; a cancel mid-restore leaves
 * no bucket behind.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, ListObjectVersionsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import YAML from 'yaml';
import { createPorts, Ports } from '../src/activities/ports';
import { interpolateConfigText, LifeboatConfig, loadConfig } from '../src/config';
import type { FilesBackupReport } from '../src/domain/files-backup';
import { FilesRestoreInput, FilesRestoreReport, restoreBucketName } from '../src/domain/files-restore';
import { ensureBucket } from '../src/engines/s3';
import { createLifeboatWorker } from '../src/worker';
import { lifeboat } from './helpers/cli';
import { recordHistory } from './helpers/pitr';
import { EXAMPLE_CONFIG, purge, removeBucket, removeCatalogRows } from './helpers/scratch';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

interface Snapshot {
  sha256: string;
  bytes: number;
  contentType?: string;
  metadata: Record<string, string>;
}

describe('files restore of a bucket target (real worker, real stack, real CLI)', function () {
  const id = randomBytes(4).toString('hex');
  const target = `lbtest-frest-${id}`;
  const plain = `lbtest-frestp-${id}`;
  const sourceBucket = `lbtest-${id}-rsrc`;
  const plainBucket = `lbtest-${id}-rplain`;
  const prefix = `files/lbtest-frest-${id}/`;
  const plainPrefix = `files/lbtest-frestp-${id}/`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lifeboat-files-restore-${id}-`));
  const configFile = path.join(dir, 'lifeboat.yaml');
  const workflowIds: string[] = [];
  const made: string[] = [];
  let env: TestWorkflowEnvironment;
  let config: LifeboatConfig;
  let ports: Ports;
  let primary: S3Client;
  let dr: S3Client;
  let backup: FilesBackupReport;
  /** Every object as the backup saw it. */
  let original: Map<string, Snapshot>;
  /** A time after the backup and before the changes: the versions then are the backup's objects. */
  let beforeChanges: string;

  const bucketExists = (s3: S3Client, bucket: string) =>
    s3.send(new HeadBucketCommand({ Bucket: bucket })).then(
      () => true,
      (err: { $metadata?: { httpStatusCode?: number } }) => (err.$metadata?.httpStatusCode === 404 ? false : Promise.reject(err)),
    );

  /** Every current object of a bucket: SHA-256 of its bytes, size, content type and user metadata. */
  const snapshot = async (bucket: string): Promise<Map<string, Snapshot>> => {
    const out = new Map<string, Snapshot>();
    const listed = await primary.send(new ListObjectsV2Command({ Bucket: bucket }));
    for (const o of listed.Contents ?? []) {
      const got = await primary.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
      const body = Buffer.from(await got.Body!.transformToByteArray());
      out.set(o.Key!, { sha256: createHash('sha256').update(body).digest('hex'), bytes: body.length, contentType: got.ContentType, metadata: got.Metadata ?? {} });
    }
    return out;
  };
  const only = (m: Map<string, Snapshot>, keep: (key: string) => boolean) => new Map([...m].filter(([k]) => keep(k)));
  const sorted = (m: Map<string, Snapshot>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

  const worker = async (name: string, p: Ports = ports) => createLifeboatWorker({ config, connection: env.nativeConnection, ports: p, taskQueue: uniqueTaskQueue(name), workflowBundle: await workflowBundle() });
  const cli = (args: string[], taskQueue?: string) => lifeboat([...args, '--config', configFile], taskQueue ? { LIFEBOAT_TASK_QUEUE: taskQueue } : {});

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    const doc = YAML.parse(interpolateConfigText(fs.readFileSync(EXAMPLE_CONFIG, 'utf8')).text) as { targets: { buckets: unknown[] } };
    for (const [name, bucket, p] of [
      [target, sourceBucket, prefix],
      [plain, plainBucket, plainPrefix],
    ]) {
      doc.targets.buckets.push({
        name,
        environment: 'staging',
        source: { store: 'primary', bucket },
        backup: { store: 'primary', bucket: 'lifeboat-backups-primary', prefix: p },
        replica: { store: 'dr', bucket: 'app-files-replica' },
        drBackup: { store: 'dr', bucket: 'lifeboat-backups-dr' },
      });
    }
    fs.writeFileSync(configFile, YAML.stringify(doc));
    config = loadConfig(configFile);
    ports = createPorts(config, { log: () => undefined });
    primary = ports.objectStore('primary');
    dr = ports.objectStore('dr');
    await ensureBucket(primary, { name: sourceBucket, versioning: true });
    await ensureBucket(primary, { name: plainBucket, versioning: false });
    const put = (bucket: string, key: string, body: string | Buffer, ContentType: string, Metadata?: Record<string, string>) => primary.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType, Metadata }));
    for (const bucket of [sourceBucket, plainBucket]) {
      await put(bucket, 'docs/a.txt', 'alpha\n', 'text/plain; charset=utf-8', { author: 'alice' });
      await put(bucket, 'docs/b.json', JSON.stringify({ b: 1 }), 'application/json');
      await put(bucket, 'docs/deep/c.csv', 'x,y\n1,2\n', 'text/csv', { rows: '1', origin: 'import' });
      await put(bucket, 'img/logo.png', randomBytes(64 * 1024), 'image/png', { 'cache-policy': 'long' });
      await put(bucket, 'media/clip.bin', randomBytes(1024 * 1024 + 7), 'application/octet-stream');
      await put(bucket, 'readme.md', '# files\n', 'text/markdown');
    }
    original = await snapshot(sourceBucket);

    const w = await worker('frest-backup');
    await w.runUntil(async () => {
      for (const [t, wf] of [
        [target, `test-frest-backup-${id}`],
        [plain, `test-frestp-backup-${id}`],
      ]) {
        workflowIds.push(wf);
        const r = (await env.client.workflow.execute('filesBackup', { taskQueue: w.options.taskQueue, workflowId: wf, args: [{ target: t, mode: 'full' }] })) as FilesBackupReport;
        assert.equal(r.outcome, 'verified', r.failure);
        if (t === target) backup = r;
      }
    });

    // After the backup: a.txt rewritten (new bytes and metadata), the logo deleted, a new file added.
    await new Promise((r) => setTimeout(r, 1500));
    beforeChanges = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 1500));
    await put(sourceBucket, 'docs/a.txt', 'ALPHA, rewritten after the backup\n', 'text/plain', { author: 'mallory' });
    await primary.send(new DeleteObjectCommand({ Bucket: sourceBucket, Key: 'img/logo.png' }));
    await put(sourceBucket, 'docs/new.txt', 'written after the backup\n', 'text/plain');
  });

  after(async function () {
    this.timeout(300000);
    if (!ports) return;
    for (const b of [...made, ...workflowIds.map(restoreBucketName)]) await removeBucket(primary, b);
    await removeBucket(primary, sourceBucket);
    await removeBucket(primary, plainBucket);
    for (const p of [prefix, plainPrefix]) {
      await purge(primary, 'lifeboat-backups-primary', p);
      await purge(dr, 'lifeboat-backups-dr', p);
    }
    await removeCatalogRows(ports.catalog, workflowIds);
    await ports.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses bad input with one sentence and exit 2, before anything is created', async function () {
    this.timeout(300000);
    const keys = path.join(dir, 'unknown-keys.txt');
    fs.writeFileSync(keys, 'docs/a.txt\nno/such-1.txt\n# a comment\n\nno/such-2.txt\nno/such-3.txt\nno/such-4.txt\n');
    const w = await worker('frest-refusals');
    const base = ['restore', target, '--reason', 'test', '--as', 'carol@example.com'];
    const expectRefused = async (args: string[], sentence: RegExp, workflowId?: string) => {
      const run = await cli([...args, ...(workflowId ? ['--id', workflowId] : [])], w.options.taskQueue);
      assert.equal(run.code, 2, `${args.join(' ')}\n${run.stdout}\n${run.stderr}`);
      assert.match(run.stderr.trim(), sentence);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
      if (workflowId) {
        workflowIds.push(workflowId);
        assert.equal(await bucketExists(primary, restoreBucketName(workflowId)), false, 'no bucket was made');
      }
    };
    await w.runUntil(async () => {
      await expectRefused([...base, '--backup', 'latest', '--to', beforeChanges], /^lifeboat: give --backup <id\|latest> or --to <time>, not both: /);
      await expectRefused([...base, '--backup', 'latest', '--mirror'], /^lifeboat: --mirror deletes objects the backup does not have, so it applies only to --in-place: /);
      await expectRefused([...base, '--backup', 'latest', '--in-place', '--into-bucket', 'x-restored'], /^lifeboat: give --into-bucket <new bucket> or --in-place, not both\.$/);
      await expectRefused([...base, '--backup', 'latest', '--keys-from', path.join(dir, 'missing.txt')], /^lifeboat: --keys-from \S+missing\.txt cannot be read \(ENOENT\): /);
      await expectRefused([...base, '--backup', 'latest', '--into-bucket', 'Bad_Name'], /^lifeboat: --into-bucket "Bad_Name" is not a valid bucket name: /);
      await expectRefused([...base, '--backup', 'latest', '--cutover'], /^lifeboat: --cutover applies to database targets; \S+ is a bucket target/);
      // Judged against the set or the bucket, by the workflow's validation, which writes nothing.
      await expectRefused([...base, '--backup', 'latest', '--prefix', 'nothing-here/'], new RegExp(`^lifeboat: no object of backup set ${backup.plan!.timestamp} \\(taken \\S+\\) in primary/lifeboat-backups-primary is under the prefix "nothing-here/": check the prefix`), `test-frest-noprefix-${id}`);
      await expectRefused(
        [...base, '--backup', 'latest', '--keys-from', keys],
        new RegExp(`^lifeboat: 4 of the 5 keys in ${keys.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} are not in backup set ${backup.plan!.timestamp} .*\\("no/such-1\\.txt", "no/such-2\\.txt", "no/such-3\\.txt" and 1 more\\): fix the list`),
        `test-frest-unknownkeys-${id}`,
      );
      await expectRefused([...base, '--backup', 'latest', '--into-bucket', sourceBucket], new RegExp(`^lifeboat: the bucket ${sourceBucket} already exists in primary: a restore goes into a new bucket`), `test-frest-exists-${id}`);
      await expectRefused([...base, '--backup', 'no-such-set'], new RegExp(`^lifeboat: ${target} has no verified files backup "no-such-set": `), `test-frest-noset-${id}`);
      const plainBase = ['restore', plain, '--reason', 'test', '--as', 'carol@example.com'];
      await expectRefused([...plainBase, '--to', beforeChanges], new RegExp(`^lifeboat: ${plainBucket} has never kept object versions, so lifeboat cannot see it as it was at \\S+: restore from a backup set instead \\(--backup \\d{8}T\\d{6}Z, the newest taken by then\\)\\.$`), `test-frestp-noversions-${id}`);
      await expectRefused([...plainBase, '--backup', 'latest', '--in-place'], new RegExp(`^lifeboat: ${plainBucket} does not keep object versions \\(never turned on\\), so an in-place restore would destroy what it overwrites: `), `test-frestp-inplace-${id}`);
    });
    assert.deepEqual(sorted(only(await snapshot(plainBucket), () => true)).map(([k]) => k), [...original.keys()].sort(), 'the unversioned source is untouched');
  });

  it('by prefix from the backup set into a new bucket (CLI): exactly the objects as they were, bytes and metadata, every object verified', async function () {
    this.timeout(300000);
    const into = `lbtest-${id}-byprefix`;
    made.push(into);
    const workflowId = `test-frest-prefix-${id}`;
    workflowIds.push(workflowId);
    const w = await worker('frest-prefix');
    await w.runUntil(async () => {
      const run = await cli(['restore', target, '--backup', 'latest', '--prefix', 'docs/', '--into-bucket', into, '--reason', 'the docs as backed up', '--as', 'carol@example.com', '--id', workflowId], w.options.taskQueue);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, new RegExp(`^Files restore RESTORED: 3 objects of ${target} into ${into} \\(a new bucket\\)$`, 'm'));
      assert.match(run.stdout, /^ {2}ok {2}object count and bytes: 3 objects, \d+ bytes, exactly as the manifest records$/m);
      assert.match(run.stdout, /^ {2}ok {2}content \(SHA-256\): all 3 objects \(\d+ bytes\) hash to the SHA-256 the manifest recorded$/m);
      assert.match(run.stdout, /^ {2}ok {2}metadata: all 3 objects: content type, user metadata and size as recorded/m);
      await recordHistory(env.client.workflow.getHandle(workflowId), 'filesRestore-v1-prefix-new-bucket');
    });
    assert.deepEqual(sorted(await snapshot(into)), sorted(only(original, (k) => k.startsWith('docs/'))));
  });

  it('by key list from the versions at a time into its own new bucket: a rewritten and a deleted object back as they were', async function () {
    this.timeout(300000);
    const keys = path.join(dir, 'keys.txt');
    fs.writeFileSync(keys, 'docs/a.txt\nimg/logo.png\n');
    const workflowId = `test-frest-keys-${id}`;
    workflowIds.push(workflowId);
    const w = await worker('frest-keys');
    await w.runUntil(async () => {
      const run = await cli(['restore', target, '--to', beforeChanges, '--keys-from', keys, '--reason', 'two files as they were', '--as', 'carol@example.com', '--id', workflowId], w.options.taskQueue);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, new RegExp(`^Files restore RESTORED: 2 objects of ${target} into ${restoreBucketName(workflowId)} \\(a new bucket\\)$`, 'm'));
      await recordHistory(env.client.workflow.getHandle(workflowId), 'filesRestore-v1-versions-keys');
    });
    assert.deepEqual(sorted(await snapshot(restoreBucketName(workflowId))), sorted(only(original, (k) => k === 'docs/a.txt' || k === 'img/logo.png')));
  });

  it('in place behind the restore gate (approved): by prefix keeps newer objects; then --mirror deletes them; every overwritten object keeps its previous version', async function () {
    this.timeout(600000);
    const w = await worker('frest-inplace');
    const versionsOf = async (key: string) => ((await primary.send(new ListObjectVersionsCommand({ Bucket: sourceBucket, Prefix: key }))).Versions ?? []).filter((v) => v.Key === key).length;
    const rewrittenVersions = await versionsOf('docs/a.txt');
    const restoreInPlace = async (workflowId: string, extra: string[], history: string) => {
      workflowIds.push(workflowId);
      const run = await cli(['restore', target, '--backup', backup.plan!.timestamp, '--in-place', ...extra, '--reason', 'undo a bad deploy', '--as', 'carol@example.com', '--id', workflowId], w.options.taskQueue);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /^waiting for approval \(restore\) by any of: /m);
      const approve = await cli(['approve', workflowId, '--reason', 'checked the gate facts', '--as', 'alice@example.com'], w.options.taskQueue);
      assert.equal(approve.code, 0, `${approve.stdout}\n${approve.stderr}`);
      const report = (await env.client.workflow.getHandle(workflowId).result()) as FilesRestoreReport;
      assert.equal(report.outcome, 'restored', report.failure);
      await recordHistory(env.client.workflow.getHandle(workflowId), history);
      return { run, report };
    };
    await w.runUntil(async () => {
      const first = await restoreInPlace(`test-frest-inplace-${id}`, ['--prefix', 'docs/'], 'filesRestore-v1-in-place-approved');
      assert.match(first.run.stdout, /^ {2}in place: 1 overwritten \(each keeps its previous version: the bucket is versioned\), 0 written where missing, 2 already equal and left alone$/m);
      assert.match(first.run.stdout, /^ {2}deleted: none: 1 newer objects the backup does not have stay as they are$/m);
      assert.deepEqual(first.report.copy, { written: 1, unchanged: 2, bytes: first.report.copy!.bytes });
      assert.match(first.report.undo!, new RegExp(`^lifeboat restore ${target} --to \\S+Z --in-place --prefix docs/ --reason "undo test-frest-inplace-${id}"$`));
      const now = await snapshot(sourceBucket);
      assert.deepEqual(now.get('docs/a.txt'), original.get('docs/a.txt'));
      assert.ok(now.has('docs/new.txt'), 'the newer object stays without --mirror');
      assert.equal(now.has('img/logo.png'), false, 'outside the prefix: not touched');
      assert.equal(await versionsOf('docs/a.txt'), rewrittenVersions + 1, 'the rewritten version stays, the restore added one');

      const second = await restoreInPlace(`test-frest-mirror-${id}`, ['--mirror'], 'filesRestore-v1-in-place-mirror');
      assert.match(second.run.stdout, /^ {2}deleted: 1 objects the backup does not have \(--mirror\): docs\/new\.txt; each gets a delete marker, its versions stay$/m);
      assert.equal(second.report.mirrorDeleted, 1);
    });
    assert.deepEqual(sorted(await snapshot(sourceBucket)), sorted(original), 'the bucket is exactly as the backup saw it');
    assert.equal(await versionsOf('docs/new.txt'), 1, 'the deleted object keeps its version under a delete marker');
  });

  it('in place, rejected at the gate: nothing is written; `lifeboat watch` says rejected and exits 1', async function () {
    this.timeout(300000);
    const workflowId = `test-frest-rejected-${id}`;
    workflowIds.push(workflowId);
    const w = await worker('frest-rejected');
    const before = await snapshot(sourceBucket);
    const versions = async () => ((await primary.send(new ListObjectVersionsCommand({ Bucket: sourceBucket }))).Versions ?? []).length;
    const versionsBefore = await versions();
    await w.runUntil(async () => {
      const run = await cli(['restore', target, '--to', beforeChanges, '--in-place', '--reason', 'roll the bucket back', '--as', 'carol@example.com', '--id', workflowId], w.options.taskQueue);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /^ {2}from: the versions of primary\/\S+ as they were at \S+$/m);
      const watching = cli(['watch', workflowId], w.options.taskQueue);
      const reject = await cli(['reject', workflowId, '--reason', 'restore into a new bucket first', '--as', 'alice@example.com'], w.options.taskQueue);
      assert.equal(reject.code, 0, `${reject.stdout}\n${reject.stderr}`);
      const watched = await watching;
      assert.equal(watched.code, 1, watched.stdout);
      assert.match(watched.stdout, /^outcome: rejected$/m);
      assert.equal(((await env.client.workflow.getHandle(workflowId).result()) as FilesRestoreReport).outcome, 'rejected');
      await recordHistory(env.client.workflow.getHandle(workflowId), 'filesRestore-v1-in-place-rejected');
    });
    assert.deepEqual(sorted(await snapshot(sourceBucket)), sorted(before));
    assert.equal(await versions(), versionsBefore, 'no version was written');
  });

  it('in place, cancelled mid-restore: nothing deleted, the overwritten version stays, and the status names the undo', async function () {
    this.timeout(300000);
    const workflowId = `test-frest-inplace-cancel-${id}`;
    workflowIds.push(workflowId);
    await primary.send(new PutObjectCommand({ Bucket: sourceBucket, Key: 'docs/a.txt', Body: 'rewritten once more\n', ContentType: 'text/plain' }));
    const keys = path.join(dir, 'one-key.txt');
    fs.writeFileSync(keys, 'docs/a.txt\n');
    const gated = createPorts(config, { log: () => undefined });
    let reached!: () => void;
    const writing = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    gated.objectStore('primary').middlewareStack.add(
      (next, context) => async (args) => {
        if ((args.input as { Bucket?: string }).Bucket === sourceBucket && ['PutObjectCommand', 'CreateMultipartUploadCommand'].includes(context.commandName ?? '')) {
          reached();
          await released;
        }
        return next(args);
      },
      { step: 'initialize', name: 'holdInPlaceWrites' },
    );
    const versions = async () => ((await primary.send(new ListObjectVersionsCommand({ Bucket: sourceBucket, Prefix: 'docs/a.txt' }))).Versions ?? []).map((v) => v.VersionId);
    const versionsBefore = await versions();
    const w = await worker('frest-inplace-cancel', gated);
    try {
      await w.runUntil(async () => {
        const run = await cli(['restore', target, '--backup', 'latest', '--in-place', '--keys-from', keys, '--reason', 'one file back', '--as', 'carol@example.com', '--id', workflowId], w.options.taskQueue);
        assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
        const approve = await cli(['approve', workflowId, '--reason', 'go', '--as', 'alice@example.com'], w.options.taskQueue);
        assert.equal(approve.code, 0, `${approve.stdout}\n${approve.stderr}`);
        await writing;
        const handle = env.client.workflow.getHandle(workflowId);
        await handle.cancel();
        release();
        const err = await handle.result().then(() => assert.fail('a cancelled restore does not complete'), (e: unknown) => e);
        assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, String(err));
        const status = await cli(['status', workflowId], w.options.taskQueue);
        assert.match(status.stdout, new RegExp(`nothing deleted in ${sourceBucket}: the objects written before the stop are new versions, each over its previous version, which stays; to put them back: lifeboat restore ${target} --to \\S+Z --in-place --keys-from \\S+one-key\\.txt`), status.stdout);
        await recordHistory(handle, 'filesRestore-v1-in-place-cancelled');
      });
    } finally {
      release();
      await gated.close();
    }
    const after = await versions();
    assert.ok(versionsBefore.every((v) => after.includes(v)), 'every version from before the restore is still there');
  });

  it('cancelled mid-restore: the new bucket this run made is removed, nothing else is touched', async function () {
    this.timeout(300000);
    const workflowId = `test-frest-cancel-${id}`;
    workflowIds.push(workflowId);
    const bucket = restoreBucketName(workflowId);
    const gated = createPorts(config, { log: () => undefined });
    let reached!: () => void;
    const writing = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    gated.objectStore('primary').middlewareStack.add(
      (next, context) => async (args) => {
        if ((args.input as { Bucket?: string }).Bucket === bucket && ['PutObjectCommand', 'CreateMultipartUploadCommand'].includes(context.commandName ?? '')) {
          reached();
          await released;
        }
        return next(args);
      },
      { step: 'initialize', name: 'holdRestoreWrites' },
    );
    const before = await snapshot(sourceBucket);
    const w = await worker('frest-cancel', gated);
    try {
      await w.runUntil(async () => {
        const input: FilesRestoreInput = { target, source: { kind: 'backup', backup: 'latest' }, selection: {}, destination: { kind: 'new-bucket' }, requestedBy: 'test', reason: 'cancel test' };
        const handle = await env.client.workflow.start('filesRestore', { taskQueue: w.options.taskQueue, workflowId, args: [input] });
        await writing;
        assert.equal(await bucketExists(primary, bucket), true, 'the restore is writing into its new bucket');
        await handle.cancel();
        release();
        const err = await handle.result().then(() => assert.fail('a cancelled restore does not complete'), (e: unknown) => e);
        assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, String(err));
        await recordHistory(handle, 'filesRestore-v1-cancelled');
      });
    } finally {
      release();
      await gated.close();
    }
    assert.equal(await bucketExists(primary, bucket), false, 'no bucket is left');
    assert.deepEqual(sorted(await snapshot(sourceBucket)), sorted(before), 'the source is untouched');
  });
});
