/**
 * `lifeboat backup <target> --wait`, the CI/CD gate before a risky change, through the real CLI
 * on the real stack: a files backup verified in both regions prints only its catalog id on
 * stdout and exits 0; one whose DR copy cannot be made (verified in the primary region only)
 * exits 1 with the reason on stderr and nothing on stdout.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { createPorts, Ports } from '../src/activities/ports';
import { interpolateConfigText, LifeboatConfig, loadConfig } from '../src/config';
import { ensureBucket } from '../src/engines/s3';
import { createLifeboatWorker } from '../src/worker';
import { lifeboat } from './helpers/cli';
import { EXAMPLE_CONFIG, purge, removeBucket } from './helpers/scratch';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

describe('backup --wait (real CLI, real stack)', function () {
  const id = randomBytes(4).toString('hex');
  const good = `lbtest-bwait-${id}`;
  const noDr = `lbtest-bwaitnodr-${id}`;
  const sourceBucket = `lbtest-${id}-bwsrc`;
  const prefixes = [`files/lbtest-bwait-${id}/`, `files/lbtest-bwaitnodr-${id}/`];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lifeboat-backup-wait-${id}-`));
  const configFile = path.join(dir, 'lifeboat.yaml');
  let env: TestWorkflowEnvironment;
  let config: LifeboatConfig;
  let ports: Ports;
  let primary: S3Client;

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    const doc = YAML.parse(interpolateConfigText(fs.readFileSync(EXAMPLE_CONFIG, 'utf8')).text) as { targets: { buckets: unknown[] } };
    doc.targets.buckets.push(
      { name: good, environment: 'staging', source: { store: 'primary', bucket: sourceBucket }, backup: { store: 'primary', bucket: 'lifeboat-backups-primary', prefix: prefixes[0] }, replica: { store: 'dr', bucket: 'app-files-replica' }, drBackup: { store: 'dr', bucket: 'lifeboat-backups-dr' } },
      // Its DR copy goes to a bucket that does not exist: the set verifies in the primary region only.
      { name: noDr, environment: 'staging', source: { store: 'primary', bucket: sourceBucket }, backup: { store: 'primary', bucket: 'lifeboat-backups-primary', prefix: prefixes[1] }, replica: { store: 'dr', bucket: 'app-files-replica' }, drBackup: { store: 'dr', bucket: `lbtest-${id}-no-such-dr` } },
    );
    fs.writeFileSync(configFile, YAML.stringify(doc));
    config = loadConfig(configFile);
    ports = createPorts(config, { log: () => undefined });
    primary = ports.objectStore('primary');
    await ensureBucket(primary, { name: sourceBucket, versioning: true });
    await primary.send(new PutObjectCommand({ Bucket: sourceBucket, Key: 'migrations/042.sql', Body: 'ALTER TABLE orders ADD COLUMN note text;\n', ContentType: 'text/plain' }));
  });

  after(async function () {
    this.timeout(300000);
    if (!ports) return;
    await removeBucket(primary, sourceBucket);
    for (const p of prefixes) {
      await purge(primary, 'lifeboat-backups-primary', p);
      await purge(ports.objectStore('dr'), 'lifeboat-backups-dr', p);
    }
    await ports.catalog.query("DELETE FROM verifications WHERE backup_id IN (SELECT id FROM backups WHERE target = ANY($1))", [[good, noDr]]);
    await ports.catalog.query('DELETE FROM backups WHERE target = ANY($1)', [[good, noDr]]);
    await ports.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('verified in both regions: only the catalog id on stdout, exit 0; the row says verified with its DR copy', async function () {
    this.timeout(600000);
    const taskQueue = uniqueTaskQueue('bwait');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    const run = await worker.runUntil(lifeboat(['backup', good, '--wait', '--config', configFile], { LIFEBOAT_TASK_QUEUE: taskQueue }));
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /^\d+\n$/, 'the id alone on stdout');
    assert.match(run.stderr, /verified in both regions \(workflow files-backup-/);
    const [row] = await ports.catalog.query<{ status: string; target: string; locations: { dr?: { failed?: boolean; bucket: string } } }>('SELECT status, target, locations FROM backups WHERE id = $1', [run.stdout.trim()]);
    assert.equal(row.target, good);
    assert.equal(row.status, 'verified');
    assert.equal(row.locations.dr?.bucket, 'lifeboat-backups-dr');
    assert.equal(row.locations.dr?.failed, undefined);
  });

  it('verified in the primary region only (the DR copy failed): exit 1, the reason on stderr, nothing on stdout', async function () {
    this.timeout(600000);
    const taskQueue = uniqueTaskQueue('bwait-nodr');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    const run = await worker.runUntil(lifeboat(['backup', noDr, '--wait', '--config', configFile], { LIFEBOAT_TASK_QUEUE: taskQueue }));
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, new RegExp(`^lifeboat: backup files-backup-${noDr}-\\S+ of ${noDr} was not verified in both regions: .*lbtest-${id}-no-such-dr`, 'm'));
  });
});
