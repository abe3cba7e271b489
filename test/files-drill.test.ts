/**
 * The restore drill of a bucket target on the real stack (two MinIO regions): a verified files
 * backup (taken by the filesBackup workflow of a scratch source the test fills) restored into a
 * scratch bucket of the drill's own, checked against the manifest, the bucket removed, and the
 * report in both regions' evidence buckets with its hashes on record. A drill cancelled while
 * it restores leaves no scratch bucket; a drill of a damaged backup set fails, alerts
 * critically and marks the backup.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import YAML from 'yaml';
import { createPorts, Ports } from '../src/activities/ports';
import { drillActivities } from '../src/activities/drills';
import { interpolateConfigText, LifeboatConfig, loadConfig } from '../src/config';
import type { RestoreDrillInput, RestoreDrillResult } from '../src/domain/drill';
import { drillBucketName } from '../src/domain/files-drill';
import type { FilesBackupReport } from '../src/domain/files-backup';
import { ensureBucket } from '../src/engines/s3';
import { createLifeboatWorker } from '../src/worker';
import { lifeboat } from './helpers/cli';
import { recordHistory } from './helpers/pitr';
import { EXAMPLE_CONFIG, purge, removeBucket, removeCatalogRows } from './helpers/scratch';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

describe('restore drill of a bucket target (real worker, real stack)', function () {
  const id = randomBytes(4).toString('hex');
  const target = `lbtest-fdrill-${id}`;
  const sourceBucket = `lbtest-${id}-fsrc`;
  const prefix = `files/lbtest-fdrill-${id}/`;
  const configFile = path.join(os.tmpdir(), `lifeboat-files-drill-${id}.yaml`);
  const workflowIds: string[] = [];
  let env: TestWorkflowEnvironment;
  let config: LifeboatConfig;
  let ports: Ports;
  let primary: S3Client;
  let dr: S3Client;
  let backup: FilesBackupReport;

  const bucketExists = (s3: S3Client, bucket: string) =>
    s3.send(new HeadBucketCommand({ Bucket: bucket })).then(
      () => true,
      (err: { $metadata?: { httpStatusCode?: number } }) => (err.$metadata?.httpStatusCode === 404 ? false : Promise.reject(err)),
    );

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    // The example config with a bucket target of the test's own, as a file the CLI reads too.
    const doc = YAML.parse(interpolateConfigText(fs.readFileSync(EXAMPLE_CONFIG, 'utf8')).text) as { targets: { buckets: unknown[] } };
    doc.targets.buckets.push({
      name: target,
      environment: 'staging',
      source: { store: 'primary', bucket: sourceBucket },
      backup: { store: 'primary', bucket: 'lifeboat-backups-primary', prefix },
      replica: { store: 'dr', bucket: 'app-files-replica' },
      drBackup: { store: 'dr', bucket: 'lifeboat-backups-dr' },
      // Above 3 objects a sample of 3: the content and metadata checks of this small set sample.
      drill: { hashAllUpTo: 3, sample: 3 },
    });
    fs.writeFileSync(configFile, YAML.stringify(doc));
    config = loadConfig(configFile);
    ports = createPorts(config, { log: () => undefined });
    primary = ports.objectStore('primary');
    dr = ports.objectStore('dr');
    await ensureBucket(primary, { name: sourceBucket, versioning: true });
    const put = (key: string, body: string | Buffer, ContentType: string, Metadata?: Record<string, string>) => primary.send(new PutObjectCommand({ Bucket: sourceBucket, Key: key, Body: body, ContentType, Metadata }));
    await put('docs/a.txt', 'alpha\n', 'text/plain; charset=utf-8', { author: 'alice' });
    await put('docs/b.json', JSON.stringify({ b: 1 }), 'application/json');
    await put('img/logo.png', randomBytes(64 * 1024), 'image/png', { 'cache-policy': 'long' });
    await put('media/clip.bin', randomBytes(1024 * 1024 + 7), 'application/octet-stream');
    await put('readme.md', '# files\n', 'text/markdown');

    const taskQueue = uniqueTaskQueue('fdrill-backup');
    const workflowId = `test-fdrill-backup-${id}`;
    workflowIds.push(workflowId);
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    backup = (await worker.runUntil(env.client.workflow.execute('filesBackup', { taskQueue, workflowId, args: [{ target, mode: 'full' }] }))) as FilesBackupReport;
    assert.equal(backup.outcome, 'verified', backup.failure);
  });

  after(async function () {
    this.timeout(300000);
    if (!ports) return;
    // A drill removes its own bucket; this only catches one a failed assertion left.
    for (const wf of workflowIds) for (const s3 of [primary, dr]) await removeBucket(s3, drillBucketName(wf));
    await removeBucket(primary, sourceBucket);
    await purge(primary, 'lifeboat-backups-primary', prefix);
    await purge(dr, 'lifeboat-backups-dr', prefix);
    await ports.catalog.query('DELETE FROM drills WHERE target = $1', [target]);
    await removeCatalogRows(ports.catalog, workflowIds);
    await ports.close();
    fs.rmSync(configFile, { force: true });
  });

  const drillRow = async (workflowId: string) =>
    (await ports.catalog.query<{ outcome: string; backup_id: string; region: string }>('SELECT outcome, backup_id, region FROM drills WHERE workflow_id = $1', [workflowId]))[0];
  const backupMark = async () => (await ports.catalog.query<{ drill_outcome: string | null }>('SELECT drill_outcome FROM backups WHERE id = $1', [backup.catalogId]))[0].drill_outcome;

  it('through the CLI, from the DR region: restored into a scratch bucket, every check passed, the bucket removed, the report in both regions and --verify OK', async () => {
    const taskQueue = uniqueTaskQueue('fdrill-cli');
    const workflowId = `test-fdrill-cli-${id}`;
    workflowIds.push(workflowId);
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    await worker.runUntil(async () => {
      const run = await lifeboat(['drill', 'run', target, '--from-region', 'dr', '--id', workflowId, '--config', configFile, '--as', 'carol@example.com'], { LIFEBOAT_TASK_QUEUE: taskQueue });
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, new RegExp(`^Restore drill PASSED: ${target}, backup ${backup.plan!.timestamp} \\(files-full, dr region, chosen as the newest verified backup\\)$`, 'm'));
      assert.match(run.stdout, /^ {2}validations: 3 of 3 passed$/m);
      await recordHistory(env.client.workflow.getHandle(workflowId), 'restoreDrill-v2-files-passed');
    });
    const { report } = (await env.client.workflow.getHandle(workflowId).result()) as RestoreDrillResult;
    assert.deepEqual(report.target, { name: target, kind: 'bucket', engine: 'file-backup', environment: 'staging' });
    assert.deepEqual(report.steps.map((s) => s.phase), ['selecting', 'preparing', 'restoring', 'validating-count', 'validating-content', 'validating-metadata', 'cleaning-up']);
    assert.deepEqual(
      report.validations.map((v) => [v.name, v.ok]),
      [['object count and bytes', true], ['content (SHA-256)', true], ['metadata', true]],
    );
    assert.match(report.validations[0].detail, /^5 objects, \d+ bytes, exactly as the manifest records$/);
    assert.match(report.validations[1].detail, /^a sample of 3 of 5 objects \(\d+ bytes\) hash to the SHA-256 the manifest recorded$/);
    assert.equal(report.restoredInto.name, drillBucketName(workflowId));
    assert.match(report.steps.at(-1)!.detail, /emptied \(5 objects\) and removed$/);
    assert.equal(report.backup.objects, 5);
    assert.ok(report.rto.objectiveSeconds === config.objectives.files.rto && report.rpo.objectiveSeconds === config.objectives.files.rpo);
    assert.equal(await bucketExists(dr, drillBucketName(workflowId)), false, 'the scratch bucket is gone');
    assert.deepEqual(await drillRow(workflowId), { outcome: 'passed', backup_id: backup.plan!.timestamp, region: 'dr' });
    assert.equal(await backupMark(), 'proven');

    const verified = await lifeboat(['drill', 'report', workflowId, '--verify', '--config', configFile]);
    assert.equal(verified.code, 0, `${verified.stdout}\n${verified.stderr}`);
    assert.equal(verified.stdout.trim().split('\n').filter((l) => l.startsWith('ok  ')).length, 6, verified.stdout);
    const checks = await drillActivities(ports).verifyDrillEvidence(workflowId);
    assert.deepEqual([...new Set(checks.map((c) => c.region))].sort(), ['dr', 'primary']);
    const md = await lifeboat(['drill', 'report', workflowId, '--format', 'md', '--config', configFile]);
    assert.match(md.stdout, new RegExp(`^- Backup tested: ${backup.plan!.timestamp} \\(files-full, taken \\S+, region dr, 5 objects, [\\d.]+ [KM]iB\\), chosen as the newest verified backup$`, 'm'));
  });

  it('cancelled while it restores: the scratch bucket is removed all the same, and the report says cancelled', async () => {
    const workflowId = `test-fdrill-cancel-${id}`;
    workflowIds.push(workflowId);
    // The worker's own clients, with the first write into the drill's bucket held until the cancel is sent.
    const gated = createPorts(config, { log: () => undefined });
    let reached!: () => void;
    const writing = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    gated.objectStore('primary').middlewareStack.add(
      (next, context) => async (args) => {
        const bucket = (args.input as { Bucket?: string }).Bucket;
        if (bucket === drillBucketName(workflowId) && ['PutObjectCommand', 'CreateMultipartUploadCommand'].includes(context.commandName ?? '')) {
          reached();
          await released;
        }
        return next(args);
      },
      { step: 'initialize', name: 'holdDrillWrites' },
    );
    const taskQueue = uniqueTaskQueue('fdrill-cancel');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports: gated, taskQueue, workflowBundle: await workflowBundle() });
    try {
      await worker.runUntil(async () => {
        const input: RestoreDrillInput = { target, requestedBy: 'test' };
        const handle = await env.client.workflow.start('restoreDrill', { taskQueue, workflowId, args: [input] });
        await writing;
        assert.equal(await bucketExists(primary, drillBucketName(workflowId)), true, 'the restore is writing into its scratch bucket');
        await handle.cancel();
        release();
        const err = await handle.result().then(() => assert.fail('a cancelled drill does not complete'), (e: unknown) => e);
        assert.ok(err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure, String(err));
        await recordHistory(handle, 'restoreDrill-v2-files-cancelled');
      });
    } finally {
      release();
      await gated.close();
    }
    assert.equal(await bucketExists(primary, drillBucketName(workflowId)), false, 'no scratch bucket is left');
    assert.equal((await drillRow(workflowId)).outcome, 'cancelled');
    assert.equal(await backupMark(), 'proven', 'a cancelled drill says nothing of the backup');
  });

  it('a damaged backup set (one object overwritten) fails the drill: bucket removed, report written, critical alert, the backup marked "restore failed"', async () => {
    const ts = backup.plan!.timestamp;
    await primary.send(new PutObjectCommand({ Bucket: 'lifeboat-backups-primary', Key: `${prefix}${ts}/objects/docs/a.txt`, Body: 'ALPHA\n', ContentType: 'text/plain; charset=utf-8' }));
    const workflowId = `test-fdrill-damaged-${id}`;
    workflowIds.push(workflowId);
    const log: string[] = [];
    const logged = createPorts(config, { log: (l) => log.push(l) });
    const taskQueue = uniqueTaskQueue('fdrill-damaged');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports: logged, taskQueue, workflowBundle: await workflowBundle() });
    let result: RestoreDrillResult;
    try {
      result = await worker.runUntil(async () => {
        const handle = await env.client.workflow.start('restoreDrill', { taskQueue, workflowId, args: [{ target, backup: ts, requestedBy: 'test' } satisfies RestoreDrillInput] });
        const r = (await handle.result()) as RestoreDrillResult;
        await recordHistory(handle, 'restoreDrill-v2-files-failed');
        return r;
      });
    } finally {
      await logged.close();
    }
    const { report, evidence } = result;
    assert.equal(report.outcome, 'failed');
    assert.match(report.issues[0], /^The backup copy of docs\/a\.txt \(in \S+\) hashes to [0-9a-f]{64} over 6 bytes, not [0-9a-f]{64} over 6 as the manifest records/);
    assert.deepEqual(report.steps.map((s) => s.phase), ['selecting', 'preparing', 'restoring', 'cleaning-up']);
    assert.ok(report.recommendations.some((r) => r.startsWith(`Do not count on backup ${ts}`)));
    assert.equal(await bucketExists(primary, drillBucketName(workflowId)), false, 'the scratch bucket is gone');
    assert.equal(evidence.length, 3);
    assert.ok(log.some((l) => l.includes(`Restore drill FAILED: ${target}`)), log.join('\n'));
    assert.equal(await backupMark(), 'restore failed');
  });
});
