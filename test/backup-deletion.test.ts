/**
 * Immutable backups on the real stack: a write-once (object-locked, GOVERNANCE) bucket on the
 * stack's MinIO holding three logical dumps of a production target, a real worker, the real CLI.
 *
 *   - MinIO itself refuses to delete a version under retention;
 *   - retention (as of 2030, when the policy expires two of them) touches neither: each is
 *     reported "locked until ..." and stays live in the catalog;
 *   - `lifeboat backups delete` refuses the newest backup and an unknown one with exit 2, before
 *     anything starts; a deletion rejected at the gate deletes nothing; an approved one needs two
 *     different people, then removes the unlocked version for good and hides the locked one
 *     behind a delete marker, saying until when it stays; the catalog row is `deleted`.
 *
 * Everything it makes is removed afterwards (the test's own cleanup bypasses governance retention).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, ListObjectVersionsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowHandle } from '@temporalio/client';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig } from '../src/config';
import { BackupDeletionReport } from '../src/domain/backup-deletion';
import { RetentionReport } from '../src/domain/retention';
import { ensureBucket } from '../src/engines/s3';
import { createLifeboatWorker } from '../src/worker';
import { lifeboat } from './helpers/cli';
import { recordHistory, uniqueId, waitForGate } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { derivedConfig, removeCatalogRows } from './helpers/scratch';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';
import { approveUpdate } from '../src/workflows/messages';

const REQUESTER = 'dave@example.com';

describe('immutable backups (object lock on MinIO, retention, backups delete behind two people)', function () {
  const id = randomBytes(4).toString('hex');
  const target = `lbtest-lock-${id}`;
  const bucket = `lbtest-lock-${id}`;
  const seedWorkflow = `test-lock-seed-${id}`;
  const workflowIds = [seedWorkflow];
  const taskQueue = uniqueTaskQueue('lock');
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let config: LifeboatConfig;
  let s3: S3Client;
  let worker: Awaited<ReturnType<typeof createLifeboatWorker>> | undefined;
  let running: Promise<void> | undefined;
  const rowId = new Map<string, string>();
  /** When the first version of L1 leaves its retention (MinIO keeps whole seconds: wait a little past it). */
  let firstL1Unlocked = new Date();
  const keyOf = (name: string) => `logical/${target}/${name}.dump.gz.enc`;

  async function seed(name: string, completedAt: string) {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keyOf(name), Body: `not really a dump: ${name}` }));
    const [r] = await ports.catalog.query<{ id: string }>(
      `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, completed_at, verified_at, workflow_id, details)
       VALUES ($1, 'production', 'logical', 'pg_dump', $2, 'verified', $3, $4, $4, $5, '{}') RETURNING id::text AS id`,
      [target, `${target}-${name}`, JSON.stringify({ primary: { store: 'primary', bucket, key: keyOf(name) } }), completedAt, seedWorkflow],
    );
    rowId.set(name, r.id);
  }
  const statusOf = async (name: string) => (await ports.catalog.query<{ status: string; details: Record<string, unknown> }>('SELECT status, details FROM backups WHERE id = $1', [rowId.get(name)]))[0];
  const versions = async (name: string) => {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: keyOf(name) }));
    return { versions: page.Versions?.length ?? 0, markers: page.DeleteMarkers?.length ?? 0 };
  };

  before(async function () {
    this.timeout(600000);
    env = await useTemporal();
    await useStack();
    config = derivedConfig((doc) => {
      const app = doc.targets.databases[0];
      delete app.cutover;
      doc.targets.databases = [{ ...app, name: target, environment: 'production' }];
      doc.targets.buckets = [];
      doc.backupBuckets = [{ store: 'primary', bucket, objectLock: { mode: 'governance', days: 1 } }];
    });
    ports = createPorts(config, { log: () => undefined });
    s3 = ports.objectStore('primary');
    await ensureBucket(s3, { name: bucket, versioning: true, objectLock: { mode: 'GOVERNANCE', days: 1 } });
    // L1 gets a first version whose own retention ends in a second (overriding the bucket's
    // default), then a second version under the default lock: one removable, one not.
    firstL1Unlocked = new Date(Date.now() + 1000);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keyOf('L1'), Body: 'first version', ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: firstL1Unlocked }));
    await seed('L1', '2028-03-01T02:00:00Z');
    await seed('L2', '2028-03-02T02:00:00Z');
    await seed('L3', '2028-03-03T02:00:00Z');
    worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    running = worker.run();
  });

  after(async function () {
    this.timeout(120000);
    worker?.shutdown();
    await running?.catch(() => undefined);
    if (ports) {
      await ports.catalog.query('DELETE FROM approvals WHERE workflow_id = ANY($1)', [workflowIds]).catch(() => undefined);
      await removeCatalogRows(ports.catalog, workflowIds).catch(() => undefined);
      // The test's own cleanup: governance retention bypassed by the MinIO root user, for scratch data only.
      for (;;) {
        const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket })).catch(() => undefined);
        const all = [...(page?.Versions ?? []), ...(page?.DeleteMarkers ?? [])];
        if (!all.length) break;
        for (const v of all) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId, BypassGovernanceRetention: true }));
      }
      await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
      await ports.close();
    }
  });

  it('MinIO refuses to delete a version under retention', async () => {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: keyOf('L2') }));
    const version = page.Versions![0].VersionId!;
    // AWS answers AccessDenied; MinIO InvalidRequest "Object is WORM protected and cannot be overwritten".
    await assert.rejects(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf('L2'), VersionId: version })), (err: Error) => err.name === 'AccessDenied' || /WORM protected/.test(err.message));
    assert.deepEqual(await versions('L2'), { versions: 1, markers: 0 });
  });

  it('retention skips the locked backups it would expire and reports until when they are locked', async function () {
    this.timeout(120000);
    const workflowId = uniqueId('test-lock-retention');
    workflowIds.push(workflowId);
    // A fast machine gets here within L1's first second: the test is of one removable version and one locked.
    const wait = firstL1Unlocked.getTime() + 1500 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const report = (await env.client.workflow.execute('retention', { taskQueue, workflowId, args: [{ target, now: '2030-06-15T12:00:00Z' }] })) as RetentionReport;
    // The policy expires L1 and L2 (L3 is the last verified); the lock keeps both.
    assert.deepEqual(report.toExpire.map((i) => i.engineBackupId).sort(), [`${target}-L1`, `${target}-L2`]);
    for (const o of report.outcomes) {
      assert.equal(o.outcome, 'refused', o.detail);
      assert.match(o.detail, /^primary: locked until \d{4}-\d\d-\d\dT[\d:.]+Z: 1 of \d versions of primary\/lbtest-lock-\w+\/logical\/.* are under GOVERNANCE retention, so nothing was deleted; a retention run after that date deletes it$/);
      assert.ok(o.lockedUntil && new Date(o.lockedUntil).getTime() > Date.now(), `${o.engineBackupId} is locked into the future`);
    }
    assert.deepEqual(await versions('L2'), { versions: 1, markers: 0 });
    assert.equal((await statusOf('L1')).status, 'verified');
    const events = await ports.catalog.query<{ event: string }>('SELECT event FROM workflow_events WHERE workflow_id = $1 ORDER BY id', [workflowId]);
    assert.deepEqual(events.map((e) => e.event), ['backup-expiry-refused', 'backup-expiry-refused']);
  });

  it('backups delete refuses the newest backup, an unknown one and an unknown requester with exit 2, before anything starts', async () => {
    const newest = await lifeboat(['backups', 'delete', rowId.get('L3')!, '--reason', 'test', '--as', REQUESTER], { LIFEBOAT_TASK_QUEUE: taskQueue });
    assert.equal(newest.code, 2, newest.stdout + newest.stderr);
    assert.match(newest.stderr, new RegExp(`backup ${target}-L3 of ${target} is its newest backup, the one the RPO rests on: take a new backup first, then delete this one\\.`));
    const unknown = await lifeboat(['backups', 'delete', `${target}-nope`, '--reason', 'test', '--as', REQUESTER], { LIFEBOAT_TASK_QUEUE: taskQueue });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /there is no backup "lbtest-lock-\w+-nope" in the catalog: give a catalog id or backup name that `lifeboat backups list` shows\./);
    // A deletable backup, asked for by someone the production config does not know.
    const stranger = await lifeboat(['backups', 'delete', `${target}-L2`, '--reason', 'test', '--as', 'Mallory@Example.com'], { LIFEBOAT_TASK_QUEUE: taskQueue });
    assert.equal(stranger.code, 2, stranger.stdout + stranger.stderr);
    assert.equal(stranger.stderr, "lifeboat: mallory@example.com is not in the config's people, and a request in the production environment production must come from a known person: pass your own identity with --as (or LIFEBOAT_USER), or add yourself to people.\n");
    for await (const w of env.client.workflow.list({ query: `WorkflowType = 'backupDeletion' AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue}'` })) assert.fail(`a deletion started on bad input: ${w.workflowId}`);
  });

  async function startDeletion(name: string): Promise<WorkflowHandle> {
    const workflowId = uniqueId(`test-lock-delete-${name.toLowerCase()}`);
    workflowIds.push(workflowId);
    const started = await lifeboat(['backups', 'delete', `${target}-${name}`, '--reason', `test: ${name} holds bad data`, '--as', REQUESTER, '--id', workflowId], { LIFEBOAT_TASK_QUEUE: taskQueue });
    assert.equal(started.code, 0, started.stdout + started.stderr);
    assert.match(started.stdout, new RegExp(`^backup deletion started: ${workflowId}$`, 'm'));
    return env.client.workflow.getHandle(workflowId);
  }
  const decide = (verb: 'approve' | 'reject', workflowId: string, by: string) => lifeboat([verb, workflowId, '--gate', 'backupDeletion', '--reason', `test: ${verb} by ${by}`, '--as', by]);

  it('rejected at the gate: nothing is deleted', async function () {
    this.timeout(120000);
    const handle = await startDeletion('L2');
    const status = await waitForGate(handle, 'backupDeletion');
    assert.equal(status.pendingGate!.required, 2);
    const rejected = await decide('reject', handle.workflowId, 'erin@example.com');
    assert.equal(rejected.code, 0, rejected.stdout + rejected.stderr);
    const report = (await handle.result()) as BackupDeletionReport;
    assert.equal(report.outcome, 'rejected');
    assert.equal(report.result, undefined);
    assert.deepEqual(await versions('L2'), { versions: 1, markers: 0 });
    assert.equal((await statusOf('L2')).status, 'verified');
    await recordHistory(handle, 'backupDeletion-v1-rejected');
  });

  it('approved by two different people: the unlocked version goes, the locked one stays behind a delete marker until its date, the row is deleted', async function () {
    this.timeout(120000);
    const handle = await startDeletion('L1');
    const status = await waitForGate(handle, 'backupDeletion');
    const facts = Object.fromEntries(status.pendingGate!.prompt.facts.map((f) => [f.label, f.value]));
    assert.match(facts['Object lock'], new RegExp(`^primary: ${bucket} \\(GOVERNANCE 1 days\\): locked versions stay until their retain-until date$`));
    // The requester cannot approve; one person cannot approve twice (the gate's validator, as the CLI meets it).
    const approveAs = (by: string) => handle.executeUpdate(approveUpdate, { args: [{ by, reason: 'test', gate: 'backupDeletion' }] });
    const refusedWith = (pattern: RegExp) => (err: Error) => pattern.test(`${err.message}: ${(err.cause as Error | undefined)?.message}`);
    await assert.rejects(approveAs(REQUESTER), refusedWith(/dave@example\.com does not hold a role that approves the backupDeletion gate/));
    const first = await decide('approve', handle.workflowId, 'alice@example.com');
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /backupDeletion gate: approval 1 of 2 recorded; waiting for one more/);
    await assert.rejects(approveAs('Alice@Example.com'), refusedWith(/alice@example\.com has already approved the backupDeletion gate/));
    assert.deepEqual(await versions('L1'), { versions: 2, markers: 0 }, 'nothing is deleted on one approval');
    const second = await decide('approve', handle.workflowId, 'bob@example.com');
    assert.equal(second.code, 0, second.stdout + second.stderr);

    const report = (await handle.result()) as BackupDeletionReport;
    assert.equal(report.outcome, 'deleted-locked-copies-remain', report.detail);
    assert.deepEqual(report.decision?.approvals?.map((a) => a.by), ['alice@example.com', 'bob@example.com']);
    assert.match(report.detail, /^deleted; locked versions stay until \S+: primary: removed 1 versions of primary\/\S+; 1 locked versions stay until \S+ \(object lock: lifeboat does not remove them early\), hidden behind 1 new delete markers$/);
    // Really so on MinIO: the first version is gone, the locked one is there under a delete marker.
    assert.deepEqual(await versions('L1'), { versions: 1, markers: 1 });
    await assert.rejects(s3.send(new GetObjectCommand({ Bucket: bucket, Key: keyOf('L1') })), (err: Error) => err.name === 'NoSuchKey');
    const row = await statusOf('L1');
    assert.equal(row.status, 'deleted');
    const deletion = row.details.deletion as { requestedBy: string; approvedBy: string[]; lockedUntil: string };
    assert.equal(deletion.requestedBy, REQUESTER);
    assert.deepEqual(deletion.approvedBy, ['alice@example.com', 'bob@example.com']);
    assert.equal(deletion.lockedUntil, report.result?.lockedUntil);
    const events = await ports.catalog.query<{ event: string }>(`SELECT event FROM workflow_events WHERE workflow_id = $1 AND kind = 'backup-deletion'`, [handle.workflowId]);
    assert.deepEqual(events.map((e) => e.event), ['backup-deleted']);
    await recordHistory(handle, 'backupDeletion-v1-deleted');
  });
});
