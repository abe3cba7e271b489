/**
 * filesBackup on the real stack through a real worker: a full set then an incremental one of a
 * scratch source bucket the test creates (declared as its own bucket target in a derived
 * config), each verified, copied to the DR region's backup bucket and verified there, recorded
 * in the catalog; the incremental restores byte for byte. Everything it makes is removed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig } from '../src/config';
import { FilesBackupReport } from '../src/domain/files-backup';
import { LifeboatBackupType } from '../src/workflows/search-attributes';
import { FileBackupEngine, FileManifest } from '../src/engines/file-backup';
import { ensureBucket } from '../src/engines/s3';
import { createLifeboatWorker } from '../src/worker';
import { derivedConfig, purge, removeBucket, removeCatalogRows } from './helpers/scratch';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

describe('filesBackup workflow (real worker, real stack)', function () {
  const id = randomBytes(4).toString('hex');
  const target = `lbtest-files-${id}`;
  const sourceBucket = `lbtest-${id}-src`;
  const restoreBucket = `lbtest-${id}-restore`;
  const prefix = `files/lbtest-${id}/`;
  const workflowIds: string[] = [];
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let config: LifeboatConfig;
  let primary: S3Client;
  let dr: S3Client;

  const put = (key: string, body: string | Buffer, contentType = 'application/octet-stream') => primary.send(new PutObjectCommand({ Bucket: sourceBucket, Key: key, Body: body, ContentType: contentType }));
  const bytesOf = async (s3: S3Client, bucket: string, key: string) => Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());
  const keysUnder = async (s3: S3Client, bucket: string, under: string) => {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: under }));
    return (out.Contents ?? []).map((o) => o.Key!.slice(under.length)).sort();
  };

  before(async function () {
    this.timeout(600000);
    env = await useTemporal();
    config = derivedConfig((doc) => {
      doc.targets.buckets.push({
        name: target,
        environment: 'staging',
        source: { store: 'primary', bucket: sourceBucket },
        backup: { store: 'primary', bucket: 'lifeboat-backups-primary', prefix },
        replica: { store: 'dr', bucket: 'app-files-replica' },
        drBackup: { store: 'dr', bucket: 'lifeboat-backups-dr' },
      });
    });
    ports = createPorts(config, { log: () => undefined });
    primary = ports.objectStore('primary');
    dr = ports.objectStore('dr');
    await ensureBucket(primary, { name: sourceBucket, versioning: true });
    await ensureBucket(primary, { name: restoreBucket, versioning: false });
  });

  after(async () => {
    if (!ports) return;
    await removeBucket(primary, sourceBucket);
    await removeBucket(primary, restoreBucket);
    await purge(primary, 'lifeboat-backups-primary', prefix);
    await purge(dr, 'lifeboat-backups-dr', prefix);
    await removeCatalogRows(ports.catalog, workflowIds);
    await ports.close();
  });

  async function run(workflowId: string, input: { mode?: 'full' | 'incremental'; at?: string }): Promise<FilesBackupReport> {
    workflowIds.push(workflowId);
    const taskQueue = uniqueTaskQueue('files');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(env.client.workflow.execute('filesBackup', { taskQueue, workflowId, args: [{ target, ...input }] }) as Promise<FilesBackupReport>);
  }

  it('takes a full set on the full-backup day, then an incremental that holds exactly the changes, in both regions, and restores it byte for byte', async () => {
    const big = randomBytes(6 * 1024 * 1024 + 123); // above the multipart part size
    await put('docs/a.txt', 'alpha v1\n', 'text/plain');
    await put('docs/b.json', JSON.stringify({ b: 1 }), 'application/json');
    await put('media/big.bin', big);
    await put('gone-soon.txt', 'delete me\n', 'text/plain');

    // 2026-01-04 is a Sunday: the full backup day of the example's schedules.full.
    const full = await run(`test-files-full-${id}`, { at: '2026-01-04T04:00:00Z' });
    assert.equal(full.outcome, 'verified');
    assert.equal(full.plan?.mode, 'full');
    assert.match(full.plan!.modeReason, /full backup day/);
    assert.equal(full.plan?.timestamp, '20260104T040000Z');
    assert.deepEqual(full.set?.totals, { objects: 4, bytes: full.set!.totals.bytes, added: 4, modified: 0, unchanged: 0, deleted: 0, copiedBytes: full.set!.totals.bytes });
    assert.deepEqual(full.set?.dependsOn, []);
    assert.deepEqual(full.verifications.map((v) => [v.store, v.ok, v.objects]), [['primary', true, 4], ['dr', true, 4]]);
    assert.equal(full.drCopy?.copied, 4);

    await put('docs/a.txt', 'alpha v2, longer\n', 'text/plain');
    await put('docs/new.txt', 'brand new\n', 'text/plain');
    await primary.send(new DeleteObjectCommand({ Bucket: sourceBucket, Key: 'gone-soon.txt' }));

    // Monday, no mode given: an incremental on the full.
    const incr = await run(`test-files-incr-${id}`, { at: '2026-01-05T04:00:00Z' });
    assert.equal(incr.outcome, 'verified');
    assert.equal(incr.plan?.mode, 'incremental');
    assert.equal(incr.plan?.modeReason, 'incremental on 20260104T040000Z');
    const t = incr.set!.totals;
    assert.deepEqual([t.objects, t.added, t.modified, t.unchanged, t.deleted], [4, 1, 1, 2, 1]);
    assert.equal(t.copiedBytes, 'alpha v2, longer\n'.length + 'brand new\n'.length);
    assert.deepEqual(incr.set?.dependsOn, ['20260104T040000Z']);
    assert.equal(incr.drCopy?.copied, 2);

    // Exactly the changes were copied, in both regions; the manifest names the rest where it lives.
    for (const [s3, bucket] of [[primary, 'lifeboat-backups-primary'], [dr, 'lifeboat-backups-dr']] as const) {
      assert.deepEqual(await keysUnder(s3, bucket, `${prefix}20260105T040000Z/objects/`), ['docs/a.txt', 'docs/new.txt']);
      assert.deepEqual(await keysUnder(s3, bucket, `${prefix}20260104T040000Z/objects/`), ['docs/a.txt', 'docs/b.json', 'gone-soon.txt', 'media/big.bin']);
      const manifest = JSON.parse((await bytesOf(s3, bucket, `${prefix}20260105T040000Z/manifest.json`)).toString('utf8')) as FileManifest;
      assert.deepEqual(
        manifest.entries.map((e) => [e.key, e.change, e.storedIn]),
        [
          ['docs/a.txt', 'modified', '20260105T040000Z'],
          ['docs/b.json', 'unchanged', '20260104T040000Z'],
          ['docs/new.txt', 'added', '20260105T040000Z'],
          ['gone-soon.txt', 'deleted', '20260104T040000Z'],
          ['media/big.bin', 'unchanged', '20260104T040000Z'],
        ],
      );
    }

    // Restored from the DR region's copy, the incremental is the source as it is now, byte for byte.
    const fromDr = new FileBackupEngine({ source: { bucket: sourceBucket }, backup: { s3: dr, bucket: 'lifeboat-backups-dr', root: prefix } });
    const restored = await fromDr.restore('20260105T040000Z', { s3: primary, bucket: restoreBucket });
    assert.deepEqual([restored.restored, restored.skippedDeleted], [4, 1]);
    const sourceKeys = await keysUnder(primary, sourceBucket, '');
    assert.deepEqual(await keysUnder(primary, restoreBucket, ''), sourceKeys);
    for (const key of sourceKeys) assert.ok((await bytesOf(primary, restoreBucket, key)).equals(await bytesOf(primary, sourceBucket, key)), `${key} differs after restore`);
    assert.ok((await bytesOf(primary, restoreBucket, 'media/big.bin')).equals(big));

    // Catalog: one verified row per set, with where each copy is and what it depends on.
    const rows = await ports.catalog.query<{ backup_type: string; engine_backup_id: string; status: string; locations: Record<string, { bucket: string; manifestKey: string }>; details: { dependsOn: string[] } }>(
      'SELECT backup_type, engine_backup_id, status, locations, details FROM backups WHERE workflow_id = ANY($1) ORDER BY engine_backup_id',
      [workflowIds],
    );
    assert.deepEqual(
      rows.map((r) => [r.backup_type, r.engine_backup_id, r.status, r.locations.primary.bucket, r.locations.dr.bucket, r.details.dependsOn]),
      [
        ['files-full', '20260104T040000Z', 'verified', 'lifeboat-backups-primary', 'lifeboat-backups-dr', []],
        ['files-incremental', '20260105T040000Z', 'verified', 'lifeboat-backups-primary', 'lifeboat-backups-dr', ['20260104T040000Z']],
      ],
    );
    assert.equal(rows[1].locations.dr.manifestKey, `${prefix}20260105T040000Z/manifest.json`);
    const verifications = await ports.catalog.query<{ ok: boolean }>('SELECT ok FROM verifications WHERE workflow_id = ANY($1)', [workflowIds]);
    assert.deepEqual(verifications.map((v) => v.ok), [true, true, true, true]);
    const description = await env.client.workflow.getHandle(`test-files-incr-${id}`).describe();
    assert.equal(description.typedSearchAttributes.get(LifeboatBackupType), 'files-incremental');
  });
});
