/**
 * What failed backups leave behind, removed for real, and a retention over more backups than one
 * run should carry: on the real stack through a real worker.
 *
 * Seeds the leftovers of failed runs as the workflows record them: a pgBackRest set whose run
 * failed after taking it, a logical dump object plus the incomplete multipart upload of a crashed
 * worker, and a file set with data but no manifest plus an incomplete upload, in both regions.
 * Retention (batch size 2, so it continues as new) removes all of them, keeps the last verified
 * backup, and totals the work of every run. Also: the abort-incomplete-uploads lifecycle rule,
 * which MinIO refuses (it purges stale uploads itself; the stack sets how soon) and S3 takes
 * (SDK boundary).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  CreateMultipartUploadCommand,
  GetBucketLifecycleConfigurationCommand,
  ListMultipartUploadsCommand,
  PutBucketLifecycleConfigurationCommand,
  type LifecycleRule,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { mockClient } from 'aws-sdk-client-mock';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig } from '../src/config';
import { LifeboatError } from '../src/domain/errors';
import type { BackupHandle } from '../src/domain/ports';
import { RetentionReport } from '../src/domain/retention';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { BACKUP_ANNOTATION } from '../src/engines/pgbackrest/backups';
import { localPgBackRestEngine } from '../src/stack/local-engines';
import { ABORT_INCOMPLETE_UPLOADS_RULE, ensureAbortIncompleteUploadsRule, ensureBucket } from '../src/engines/s3';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { delay } from '../src/platform/processes';
import { Stack, stackUp } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { recordHistory } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { derivedConfig, purge, removeBucket, removeCatalogRows, versionCount } from './helpers/scratch';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const PRIMARY_BACKUPS = 'lifeboat-backups-primary';
const DR_BACKUPS = 'lifeboat-backups-dr';
const NOW = '2030-06-15T12:00:00Z';

async function incompleteUpload(s3: S3Client, bucket: string, key: string): Promise<string> {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(5 * 1024 * 1024, 7) }));
  return UploadId!;
}

async function uploadsUnder(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (page.Uploads ?? []).map((u) => u.Key!);
}

describe('retention of failed backups, continue-as-new, lifecycle rules (real worker, real stack)', function () {
  const id = randomBytes(4).toString('hex');
  const dbTarget = `lbtest-db-${id}`;
  const filesTarget = `lbtest-files-${id}`;
  const filesPrefix = `files/lbtest-fail-${id}`;
  const seedWorkflow = `test-retention-failed-seed-${id}`;
  const workflowIds = [seedWorkflow];
  let env: TestWorkflowEnvironment;
  let stack: Stack;
  let ports: Ports;
  let config: LifeboatConfig;
  let primary: S3Client;
  let dr: S3Client;
  let pg: PgBackRestEngine;
  const rowId = new Map<string, string>();
  const handles: BackupHandle[] = [];

  async function insertRow(name: string, row: { target: string; backupType: string; engine: string; engineBackupId: string; status: string; completedAt: string | null; locations: unknown; failure?: string }) {
    const [r] = await ports.catalog.query<{ id: string }>(
      `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, completed_at, verified_at, workflow_id, failure)
       VALUES ($1, 'staging', $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id::text AS id`,
      [row.target, row.backupType, row.engine, row.engineBackupId, row.status, JSON.stringify(row.locations), row.completedAt, row.status === 'verified' ? row.completedAt : null, seedWorkflow, row.failure ?? null],
    );
    rowId.set(name, r.id);
  }

  async function pgBackup(name: string, kind: 'full' | 'incr'): Promise<BackupHandle> {
    let started: BackupHandle | undefined;
    for (let i = 0; !started; i++) {
      try {
        started = await pg.startBackup({ backupName: name, kind });
      } catch (err) {
        if (!(err instanceof LifeboatError) || err.code !== 'PGBACKREST_BUSY' || i > 120) throw err;
        await delay(1000);
      }
    }
    for (;;) {
      const p = await pg.backupProgress(started);
      if (p.state === 'complete') {
        const done = { ...started, backupId: p.backupId ?? started.backupId };
        handles.push(done);
        return done;
      }
      if (p.state === 'failed') throw new Error(p.detail);
      await delay(300);
    }
  }

  async function setsNamed(name: string): Promise<string[]> {
    const info = await localPgBackRest(stack.ctx).info(1);
    return (info?.backup ?? []).filter((b) => b.database['repo-key'] === 1 && (b as { annotation?: Record<string, string> }).annotation?.[BACKUP_ANNOTATION] === name).map((b) => b.label);
  }

  const dumpKey = (name: string) => `logical/${dbTarget}/${name}.dump.gz.enc`;

  before(async function () {
    this.timeout(600000);
    env = await useTemporal();
    stack = await useStack();
    config = derivedConfig((doc) => {
      const app = doc.targets.databases[0];
      delete app.cutover;
      doc.targets.databases = [{ ...app, name: dbTarget, environment: 'staging' }];
      doc.targets.buckets = [
        {
          name: filesTarget,
          environment: 'staging',
          source: { store: 'primary', bucket: `lbtest-${id}-fsrc` },
          backup: { store: 'primary', bucket: PRIMARY_BACKUPS, prefix: filesPrefix },
          replica: { store: 'dr', bucket: 'app-files-replica' },
          drBackup: { store: 'dr', bucket: DR_BACKUPS },
        },
      ];
    });
    ports = createPorts(config, { log: () => undefined });
    await ports.catalog.migrate();
    primary = ports.objectStore('primary');
    dr = ports.objectStore('dr');
    pg = localPgBackRestEngine(stack, { timings: { startWatchMs: 3000, pollMs: 100 } });

    // pgBackRest: a good full (the last verified backup: kept), then an incremental whose run failed (say, verification).
    const full = await pgBackup(`lbtest-${id}-F`, 'full');
    await insertRow('good-full', { target: dbTarget, backupType: 'full', engine: 'pgbackrest', engineBackupId: `lbtest-${id}-F`, status: 'verified', completedAt: '2030-06-14T03:00:00Z', locations: { primary: { region: 'primary', handle: full } } });
    const incr = await pgBackup(`lbtest-${id}-I`, 'incr');
    await insertRow('failed-incr', {
      target: dbTarget,
      backupType: 'incr',
      engine: 'pgbackrest',
      engineBackupId: `lbtest-${id}-I`,
      status: 'failed',
      completedAt: null,
      locations: { primary: { region: 'primary', handle: { ...incr, backupId: `lbtest-${id}-I` } } },
      failure: 'verifying: Verification failed (seeded by the test)',
    });

    // Logical: a verified dump (kept), a failed dump with an object and a crashed worker's upload, and an old verified one (expires).
    for (const [name, status] of [['L-good', 'verified'], ['L-old', 'verified']] as const) {
      for (const [s3, bucket] of [[primary, PRIMARY_BACKUPS], [dr, DR_BACKUPS]] as const) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: dumpKey(name), Body: `dump ${name}` }));
      await insertRow(name, {
        target: dbTarget,
        backupType: 'logical',
        engine: 'pg_dump',
        engineBackupId: name,
        status,
        completedAt: name === 'L-good' ? '2030-06-14T02:00:00Z' : '2028-03-01T02:00:00Z',
        locations: { primary: { store: 'primary', bucket: PRIMARY_BACKUPS, key: dumpKey(name) }, dr: { store: 'dr', bucket: DR_BACKUPS, key: dumpKey(name) } },
      });
    }
    await primary.send(new PutObjectCommand({ Bucket: PRIMARY_BACKUPS, Key: dumpKey('L-failed'), Body: 'a dump that never verified' }));
    await incompleteUpload(primary, PRIMARY_BACKUPS, dumpKey('L-failed'));
    await incompleteUpload(dr, DR_BACKUPS, dumpKey('L-failed'));
    await insertRow('L-failed', {
      target: dbTarget,
      backupType: 'logical',
      engine: 'pg_dump',
      engineBackupId: 'L-failed',
      status: 'failed',
      completedAt: null,
      locations: { primary: { store: 'primary', bucket: PRIMARY_BACKUPS, key: dumpKey('L-failed'), failed: true }, dr: { store: 'dr', bucket: DR_BACKUPS, key: dumpKey('L-failed'), failed: true } },
      failure: 'dumping: pg_dump failed (seeded by the test)',
    });

    // Files: a set whose run failed mid-copy: objects but no manifest, in both regions. (Its incomplete
    // uploads are aborted by prefix, which S3 lists but MinIO does not: MinIO lists uploads of an exact key only.)
    const ts = '20300614T040000Z';
    const manifestKey = `${filesPrefix}/${ts}/manifest.json`;
    for (const [s3, bucket] of [[primary, PRIMARY_BACKUPS], [dr, DR_BACKUPS]] as const) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${filesPrefix}/${ts}/objects/a.txt`, Body: 'a' }));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${filesPrefix}/${ts}/objects/b.txt`, Body: 'b' }));
    }
    await insertRow('files-failed', {
      target: filesTarget,
      backupType: 'files-full',
      engine: 'file-backup',
      engineBackupId: ts,
      status: 'failed',
      completedAt: null,
      locations: {
        primary: { store: 'primary', bucket: PRIMARY_BACKUPS, root: filesPrefix, timestamp: ts, manifestKey, failed: true },
        dr: { store: 'dr', bucket: DR_BACKUPS, root: filesPrefix, timestamp: ts, manifestKey, failed: true },
      },
      failure: 'copying objects: the source bucket went away (seeded by the test)',
    });
  });

  after(async function () {
    this.timeout(300000);
    if (!ports) return;
    for (const h of [...handles].reverse()) await pg.deleteBackup(h).catch(() => undefined);
    for (const [s3, bucket] of [[primary, PRIMARY_BACKUPS], [dr, DR_BACKUPS]] as const) {
      await purge(s3, bucket, `logical/${dbTarget}/`);
      await purge(s3, bucket, `${filesPrefix}/`);
    }
    await removeCatalogRows(ports.catalog, workflowIds);
    await ports.close();
  });

  it('expires every failed backup\'s leftovers in both regions, over several runs (continue-as-new), and totals them', async () => {
    const workflowId = `test-retention-failed-${id}`;
    workflowIds.push(workflowId);
    const taskQueue = uniqueTaskQueue('retention-failed');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    const { report, firstRunId } = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start('retention', { taskQueue, workflowId, args: [{ now: NOW, batchSize: 2 }] });
      // result() follows the chain of runs to the last one.
      const result = (await handle.result()) as RetentionReport;
      return { report: result, firstRunId: handle.firstExecutionRunId };
    });

    // The first run planned, expired two, and continued as new; the last run totals all of them.
    const first = await env.client.workflow.getHandle(workflowId, firstRunId).fetchHistory();
    const last = first.events!.at(-1)!;
    assert.ok(last.workflowExecutionContinuedAsNewEventAttributes, 'the first run continued as new');
    const expired = (first.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'expireBackup').length;
    assert.equal(expired, 2, 'batchSize 2: two expiries in the first run');
    assert.deepEqual(report.totals, { runs: 2, expired: 4, refused: 0, decided: 4 });
    await recordHistory(env.client.workflow.getHandle(workflowId, firstRunId), 'retention-v2-continued');

    const statuses = Object.fromEntries(
      (await ports.catalog.query<{ id: string; status: string }>('SELECT id::text AS id, status FROM backups WHERE workflow_id = $1', [seedWorkflow])).map((r) => [[...rowId].find(([, v]) => v === r.id)![0], r.status]),
    );
    assert.deepEqual(statuses, { 'good-full': 'verified', 'failed-incr': 'expired', 'L-good': 'verified', 'L-old': 'expired', 'L-failed': 'expired', 'files-failed': 'expired' });

    // Reality: the failed incremental's pgBackRest set is gone, the good full stays.
    assert.deepEqual(await setsNamed(`lbtest-${id}-I`), []);
    assert.equal((await setsNamed(`lbtest-${id}-F`)).length, 1);
    // The failed dump's object and its incomplete uploads in both regions, the failed set's objects: gone.
    for (const [s3, bucket] of [[primary, PRIMARY_BACKUPS], [dr, DR_BACKUPS]] as const) {
      assert.equal(await versionCount(s3, bucket, dumpKey('L-failed')), 0);
      assert.deepEqual(await uploadsUnder(s3, bucket, dumpKey('L-failed')), []);
      assert.equal(await versionCount(s3, bucket, `${filesPrefix}/20300614T040000Z/`), 0);
      assert.equal(await versionCount(s3, bucket, dumpKey('L-good')), 1);
    }
    const events = await ports.catalog.query<{ details: { reason: string; catalogId: string } }>("SELECT details FROM workflow_events WHERE workflow_id = $1 AND event = 'backup-expired'", [workflowId]);
    assert.equal(events.length, 4);
    const failedReasons = events.filter((e) => ['failed-incr', 'L-failed', 'files-failed'].includes([...rowId].find(([, v]) => v === e.details.catalogId)![0]));
    assert.equal(failedReasons.length, 3);
    assert.ok(failedReasons.every((e) => e.details.reason === 'a failed backup: nothing restores from it'));
  });

  it('stack up states MinIO\'s own purge of incomplete uploads, which takes no lifecycle rule for it and keeps the bucket\'s rules', async () => {
    await stackUp(stack);
    // MinIO purges stale multipart uploads itself; the stack sets how soon, in the server's environment.
    for (const minio of [stack.minioPrimary, stack.minioDr]) {
      const pid = Number(fs.readFileSync(path.join(stack.ctx.paths.run, `${minio.name}.pid`), 'utf8').trim());
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      assert.ok(environ.includes('MINIO_API_STALE_UPLOADS_EXPIRY=24h'), `${minio.name}: ${environ.filter((e) => e.startsWith('MINIO_API')).join(' ')}`);
    }
    const bucket = `lbtest-${id}-lifecycle`;
    await ensureBucket(primary, { name: bucket, versioning: true });
    try {
      await primary.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket: bucket,
          LifecycleConfiguration: { Rules: [{ ID: 'owners-rule', Status: 'Enabled', Filter: { Prefix: 'tmp/' }, Expiration: { Days: 3 } }] },
        }),
      );
      assert.equal(await ensureAbortIncompleteUploadsRule(primary, bucket), 'unsupported');
      const rules = (await primary.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
      assert.deepEqual(rules.map((r) => [r.ID, r.Expiration?.Days]), [['owners-rule', 3]], 'the bucket\'s own rule is untouched');
    } finally {
      await removeBucket(primary, bucket);
    }
  });

  it('on S3 (SDK boundary): adds the rule beside the bucket\'s other rules, and is idempotent', async () => {
    const s3 = mockClient(S3Client);
    try {
      let stored: LifecycleRule[] = [{ ID: 'owners-rule', Status: 'Enabled', Filter: { Prefix: 'tmp/' }, Expiration: { Days: 3 } }];
      s3.on(GetBucketLifecycleConfigurationCommand).callsFake(async () => ({ Rules: stored }));
      s3.on(PutBucketLifecycleConfigurationCommand).callsFake(async (input: { LifecycleConfiguration: { Rules: LifecycleRule[] } }) => {
        stored = input.LifecycleConfiguration.Rules;
        return {};
      });
      const client = new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'example' } });
      assert.equal(await ensureAbortIncompleteUploadsRule(client, 'backups'), 'added');
      assert.equal(await ensureAbortIncompleteUploadsRule(client, 'backups'), 'present');
      assert.equal(s3.commandCalls(PutBucketLifecycleConfigurationCommand).length, 1);
      assert.deepEqual(stored.map((r) => r.ID), ['owners-rule', ABORT_INCOMPLETE_UPLOADS_RULE]);
      assert.deepEqual(stored[1], { ID: ABORT_INCOMPLETE_UPLOADS_RULE, Status: 'Enabled', Filter: { Prefix: '' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } });

      // A bucket with no lifecycle configuration at all gets exactly the one rule.
      s3.reset();
      s3.on(GetBucketLifecycleConfigurationCommand).rejects(Object.assign(new Error('The lifecycle configuration does not exist'), { name: 'NoSuchLifecycleConfiguration' }));
      s3.on(PutBucketLifecycleConfigurationCommand).resolves({});
      assert.equal(await ensureAbortIncompleteUploadsRule(client, 'fresh'), 'added');
      assert.deepEqual(s3.commandCalls(PutBucketLifecycleConfigurationCommand)[0].args[0].input.LifecycleConfiguration?.Rules?.map((r) => r.ID), [ABORT_INCOMPLETE_UPLOADS_RULE]);
    } finally {
      s3.restore();
    }
  });
});
