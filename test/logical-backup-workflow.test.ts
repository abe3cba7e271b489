/**
 * logicalBackup on the real stack through a real worker: pg_dump of the sample app database,
 * gzip, AES-256-GCM, into the primary MinIO, verified, copied to the DR MinIO and verified,
 * recorded in the catalog. Everything it writes is removed afterwards.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Readable } from 'node:stream';
import { createPorts, Ports } from '../src/activities/ports';
import { findDatabaseTarget, LifeboatConfig, loadConfig } from '../src/config';
import { LogicalBackupReport } from '../src/domain/logical-backup';
import { LifeboatBackupType, LifeboatKind, LifeboatPhase } from '../src/workflows/search-attributes';
import { createDecryptStream, loadEncryptionKey } from '../src/engines/crypto-stream';
import { createAutoDecompressStream } from '../src/engines/compression';
import { recordHistory } from './helpers/pitr';
import { stackPaths, loadStackSettings } from '../src/stack/settings';
import { ensureLogicalBackupKey } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { derivedConfig, EXAMPLE_CONFIG, purge, removeCatalogRows } from './helpers/scratch';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

describe('logicalBackup workflow (real worker, real stack)', function () {
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let config: LifeboatConfig;
  const id = randomBytes(4).toString('hex');
  const workflowIds: string[] = [];
  const written: Array<{ store: string; bucket: string; key: string }> = [];

  before(async function () {
    this.timeout(600000);
    env = await useTemporal();
    // What `lifeboat stack up` writes on a stack started before the key existed.
    ensureLogicalBackupKey(path.dirname(stackPaths(loadStackSettings()).secret('dns-api-key')));
    config = loadConfig(EXAMPLE_CONFIG);
    ports = createPorts(config, { log: () => undefined });
  });

  after(async () => {
    if (!ports) return;
    for (const w of written) await purge(ports.objectStore(w.store), w.bucket, w.key).catch((err: unknown) => console.error(`cleanup of ${w.key}: ${String(err)}`));
    await removeCatalogRows(ports.catalog, workflowIds);
    await ports.close();
  });

  async function run(workflowId: string, withPorts: Ports, withConfig: LifeboatConfig, target: string): Promise<LogicalBackupReport> {
    workflowIds.push(workflowId);
    const taskQueue = uniqueTaskQueue('logical');
    const worker = await createLifeboatWorker({ config: withConfig, connection: env.nativeConnection, ports: withPorts, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(env.client.workflow.execute('logicalBackup', { taskQueue, workflowId, args: [{ target, pollIntervalMs: 1000 }] }) as Promise<LogicalBackupReport>);
  }

  async function sha256Of(body: Readable, ...transforms: NodeJS.ReadWriteStream[]): Promise<{ sha256: string; bytes: number }> {
    const hash = createHash('sha256');
    let bytes = 0;
    await pipeline([
      body,
      ...transforms,
      new Writable({
        write(chunk: Buffer, _e, done) {
          hash.update(chunk);
          bytes += chunk.length;
          done();
        },
      }),
    ]);
    return { sha256: hash.digest('hex'), bytes };
  }

  it('dumps, encrypts, verifies and copies to the DR region; the stored bytes decrypt to exactly the recorded pg_dump output', async () => {
    const workflowId = `test-logical-${id}`;
    const report = await run(workflowId, ports, config, 'app');
    assert.ok(report.primary && report.dr);
    written.push({ store: report.primary.store, bucket: report.primary.bucket, key: report.primary.key }, { store: report.dr.store, bucket: report.dr.bucket, key: report.dr.key });
    assert.equal(report.outcome, 'verified');
    assert.equal(report.backupName, workflowId);
    assert.equal(report.primary.key, `logical/app/${workflowId}.dump.gz.enc`);
    assert.deepEqual([report.primary.store, report.primary.bucket, report.dr.store, report.dr.bucket], ['primary', 'lifeboat-backups-primary', 'dr', 'lifeboat-backups-dr']);
    assert.deepEqual(report.verifications.map((v) => [v.store, v.ok]), [['primary', true], ['dr', true]]);
    for (const v of report.verifications) {
      assert.ok(v.tables >= 4 && v.tocEntries > 0, JSON.stringify(v));
      assert.ok(v.checks.some((c) => c.name === 'expected tables' && c.ok), JSON.stringify(v.checks));
    }

    // Byte for byte: the stored object hashes as recorded, and decrypts and decompresses (zstd; gzip before) to pg_dump's output as recorded.
    const target = findDatabaseTarget(config, 'app');
    const key = loadEncryptionKey(target.logicalBackup!.encryptionKey);
    assert.equal(report.primary.keyId, key.keyId);
    for (const copy of [report.primary, report.dr]) {
      const s3 = ports.objectStore(copy.store);
      const stored = await sha256Of((await s3.send(new GetObjectCommand({ Bucket: copy.bucket, Key: copy.key }))).Body as Readable);
      assert.deepEqual(stored, { sha256: report.primary.sha256, bytes: report.primary.sizeBytes });
      const plain = await sha256Of((await s3.send(new GetObjectCommand({ Bucket: copy.bucket, Key: copy.key }))).Body as Readable, createDecryptStream(key), createAutoDecompressStream());
      assert.deepEqual(plain, { sha256: report.primary.dumpSha256, bytes: report.primary.dumpBytes });
      // The custom-format archive's magic: pg_dump's own bytes, not a double compression.
      const head = await s3.send(new HeadObjectCommand({ Bucket: copy.bucket, Key: copy.key }));
      assert.equal(head.Metadata?.['lifeboat-dump-sha256'], report.primary.dumpSha256);
    }
    assert.ok(report.primary.sizeBytes < report.primary.dumpBytes, 'compression makes the dump smaller');
    assert.equal(report.primary.compression, 'zstd');
    await recordHistory(env.client.workflow.getHandle(workflowId), 'logicalBackup-v3-copy-beside-verify');

    // The catalog row and one verification per region.
    const rows = await ports.catalog.query<{ id: string; backup_type: string; engine: string; status: string; locations: Record<string, { key: string; bucket: string }>; checksums: Record<string, string>; size_bytes: string; verified_at: Date | null }>(
      'SELECT id::text AS id, backup_type, engine, status, locations, checksums, size_bytes::text AS size_bytes, verified_at FROM backups WHERE workflow_id = $1',
      [workflowId],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0].id, report.catalogId);
    assert.deepEqual([rows[0].backup_type, rows[0].engine, rows[0].status], ['logical', 'pg_dump', 'verified']);
    assert.deepEqual([rows[0].locations.primary.key, rows[0].locations.dr.bucket], [report.primary.key, 'lifeboat-backups-dr']);
    assert.deepEqual(rows[0].checksums, { sha256: report.primary.sha256, dumpSha256: report.primary.dumpSha256, keyId: key.keyId });
    assert.equal(Number(rows[0].size_bytes), report.primary.sizeBytes);
    assert.ok(rows[0].verified_at);
    const checks = await ports.catalog.query<{ subject: string; ok: boolean }>('SELECT subject, ok FROM verifications WHERE backup_id = $1 ORDER BY subject', [report.catalogId]);
    assert.deepEqual(checks.map((c) => c.ok), [true, true]);
    assert.equal(checks.length, 2);

    const description = await env.client.workflow.getHandle(workflowId).describe();
    assert.equal(description.typedSearchAttributes.get(LifeboatKind), 'logical-backup');
    assert.equal(description.typedSearchAttributes.get(LifeboatBackupType), 'logical');
    assert.equal(description.typedSearchAttributes.get(LifeboatPhase), 'done');
    // Nothing secret in history: the key's fingerprint travels, never the key.
    const history = JSON.stringify(await env.client.workflow.getHandle(workflowId).fetchHistory());
    assert.ok(!history.includes(key.material.toString('hex')));
  });

  it('refuses a target without a logicalBackup section at once, without retrying, and records nothing', async () => {
    const bare = derivedConfig((doc) => delete doc.targets.databases[0].logicalBackup);
    const barePorts = createPorts(bare, { log: () => undefined });
    try {
      const workflowId = `test-logical-refused-${id}`;
      const err = await run(workflowId, barePorts, bare, 'app').then(
        () => assert.fail('a target without logicalBackup must be refused'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError);
      assert.ok(err.cause instanceof ActivityFailure);
      assert.ok(err.cause.cause instanceof ApplicationFailure);
      assert.equal(err.cause.cause.nonRetryable, true);
      assert.match(err.cause.cause.message, /^The database target app has no logicalBackup section in the config/);
      assert.deepEqual(await ports.catalog.query('SELECT id FROM backups WHERE workflow_id = $1', [workflowId]), []);
    } finally {
      await barePorts.close();
    }
  });
});
