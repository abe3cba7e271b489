/**
 * The restore drill when things go wrong, on the real stack: a backup damaged on purpose in the
 * primary repository fails its drill with a critical alert and the backup marked; a drill that
 * fails before its restore still writes its report and alerts; cancel and a killed worker leave
 * no drill instance behind; a drill from the DR region passes with the primary region's MinIO
 * stopped, its report in the DR evidence bucket at once and copied to the primary one when that
 * region is back. Alerts are read from a local webhook endpoint.
 */
import assert from 'node:assert/strict';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { drillActivities } from '../src/activities/drills';
import { LifeboatConfig, loadConfig } from '../src/config';
import type { DatabaseBackupResult } from '../src/domain/backup';
import { drillInstanceName, DrillEvidence, RestoreDrillInput, RestoreDrillResult } from '../src/domain/drill';
import type { DrillReport } from '../src/domain/drill-report';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { delay } from '../src/platform/processes';
import { Stack, stackStatus, stackUp } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { processesMentioning } from './chaos/invariants';
import { ChaosWorker } from './chaos/worker';
import { AlertCapture, captureAlerts } from './helpers/captured-alerts';
import { CONFIG_FILE } from './helpers/cli';
import { leftovers, recordHistory, removeAsItsOwner, uniqueId, waitForStatus } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

describe('restore drills that fail, are cancelled, lose their worker or a region (real stack)', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let engine: PgBackRestEngine;
  let backup: DatabaseBackupResult;
  let capture: AlertCapture;
  let config: LifeboatConfig;
  const drilled: string[] = [];

  before(async function () {
    this.timeout(900000);
    stack = await useStack();
    env = await useTemporal();
    capture = await captureAlerts();
    config = capture.configFor(loadConfig(CONFIG_FILE), 'LIFEBOAT_TEST_DRILL_FAILURES_WEBHOOK');
    ports = createPorts(config, { log: () => undefined });
    engine = ports.database('app') as PgBackRestEngine;
    // A verified backup of its own, in both regions: the one this suite damages and repairs.
    const taskQueue = uniqueTaskQueue('drill-failures-backup');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    backup = (await worker.runUntil(env.client.workflow.execute('databaseBackup', { taskQueue, workflowId: uniqueId('test-drill-failures-backup'), args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'test' }] }))) as DatabaseBackupResult;
  });

  after(async function () {
    this.timeout(300000);
    for (const id of drilled) {
      if (await engine?.describeInstance(id)) await removeAsItsOwner(engine, id).catch((err: unknown) => console.error(`cleanup of ${id}: ${String(err)}`));
    }
    await ports?.close();
    await capture?.close();
  });

  /** Starts a drill on a worker of its own; `drive` acts on it while it runs (a failed assertion there terminates it). */
  async function drill(workflowId: string, input: RestoreDrillInput, drive?: (h: WorkflowHandle) => Promise<void>): Promise<{ handle: WorkflowHandle; result?: RestoreDrillResult; error?: unknown }> {
    drilled.push(drillInstanceName(workflowId));
    const taskQueue = uniqueTaskQueue('drill-failures');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(async () => {
      const handle = await env.client.workflow.start('restoreDrill', { taskQueue, workflowId, args: [{ requestedBy: 'test', timings: { pollIntervalMs: 500 }, ...input }] });
      try {
        await drive?.(handle);
      } catch (err) {
        await handle.terminate('test failed').catch(() => undefined);
        throw err;
      }
      return handle.result().then(
        (result) => ({ handle, result: result as RestoreDrillResult }),
        (error: unknown) => ({ handle, error }),
      );
    });
  }

  async function recorded(workflowId: string): Promise<{ outcome: string; backup_id: string; report: DrillReport; evidence: DrillEvidence[] }> {
    const [row] = await ports.catalog.query<{ outcome: string; backup_id: string; report: DrillReport; evidence: DrillEvidence[] }>('SELECT outcome, backup_id, report, evidence FROM drills WHERE workflow_id = $1', [workflowId]);
    assert.ok(row, `drill ${workflowId} is on record`);
    return row;
  }

  /** Nothing of the drill's instance: not known to the engine, no files or port claims, no process. */
  async function assertNothingLeft(workflowId: string): Promise<void> {
    const name = drillInstanceName(workflowId);
    assert.equal(await engine.describeInstance(name), undefined, `no instance ${name}`);
    assert.deepEqual(leftovers(stack.ctx.paths.restoresDir, name), [], `nothing of ${name} under the restores directory`);
    assert.deepEqual(processesMentioning(`${stack.ctx.paths.restoresDir}/${name}`), [], `no process of ${name}`);
  }

  it('a backup damaged in the primary repository fails its drill: critical alert, the backup marked "restore failed", no drill instance left', async () => {
    const s3 = ports.objectStore('primary');
    const bucket = stack.ctx.settings.minio.primary.backupBucket;
    const label = backup.primary.handle.backupId;
    const damaged = await damageLargestFile(s3, bucket, `pgbackrest/backup/${stack.ctx.settings.pgbackrest.stanza}/${label}/`);
    const workflowId = uniqueId('test-drill-damaged');
    try {
      const { handle, result, error } = await drill(workflowId, { target: 'app', backup: label });
      assert.equal(error, undefined, String(error));
      const report = result!.report;
      assert.equal(report.outcome, 'failed', JSON.stringify(report.issues));
      assert.equal(report.backup.id, label);
      // pgBackRest finds the damage while it writes the files (the restore runs on after the activity starts it): the instance never starts, and the report says why.
      const stopped = report.steps.find((s) => s.detail.startsWith('stopped: '));
      assert.ok(stopped && ['restoring', 'replaying-wal'].includes(stopped.phase), JSON.stringify(report.steps));
      assert.match(report.issues[0], /failed to start \(failed\): The restore of drill-test-drill-damaged-[0-9a-f]{8} from repo1 did not finish: .+/);
      assert.ok(report.recommendations.some((r) => r.startsWith(`Do not count on backup ${label}`)));
      assert.deepEqual(report.validations, []);
      await recordHistory(handle, 'restoreDrill-v2-damaged-backup');
    } finally {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: damaged.key, Body: damaged.original }));
    }
    await assertNothingLeft(workflowId);
    const critical = capture.alerts.filter((a) => a.severity === 'critical' && a.title === 'Restore drill FAILED: app' && a.text.includes(`Backup ${label} did not restore cleanly`));
    assert.equal(critical.length, 1, JSON.stringify(capture.alerts));
    const [marked] = await ports.catalog.query<{ drill_outcome: string }>('SELECT drill_outcome FROM backups WHERE id = $1', [backup.catalogId]);
    assert.equal(marked.drill_outcome, 'restore failed');
    const row = await recorded(workflowId);
    assert.equal(row.outcome, 'failed');
    const checks = await drillActivities(ports).verifyDrillEvidence(workflowId);
    assert.equal(checks.filter((c) => c.ok).length, 6, JSON.stringify(checks));
  });

  it('a drill that fails before its restore (no such backup) writes its report in both regions and sends the critical alert, then fails with the cause', async () => {
    const workflowId = uniqueId('test-drill-early');
    const { handle, error } = await drill(workflowId, { target: 'app', backup: '20200101-000000F' });
    assert.ok(error instanceof WorkflowFailedError, String(error));
    assert.ok(error.cause instanceof ActivityFailure);
    const cause = error.cause.cause;
    assert.ok(cause instanceof ApplicationFailure);
    assert.equal(cause.type, 'NO_BACKUP_TO_DRILL');
    await recordHistory(handle, 'restoreDrill-v2-early-failure');

    const row = await recorded(workflowId);
    assert.equal(row.outcome, 'failed');
    assert.equal(row.backup_id, 'none');
    const report = row.report;
    assert.deepEqual(report.steps.map((s) => s.phase), ['selecting']);
    assert.match(report.steps[0].detail, /^stopped: .*no verified backup "20200101-000000F" in the primary region/);
    assert.match(report.issues[0], /^the drill failed before its restore, at selecting: /);
    assert.equal(report.restoredInto.detail, 'never created: the drill failed before its restore');
    assert.match(report.recommendations[0], /^app has no backup lifeboat can prove in the primary region: take one/);
    assert.deepEqual(row.evidence.map((e) => e.copies.map((c) => c.region)), [['primary', 'dr'], ['primary', 'dr'], ['primary', 'dr']]);
    const checks = await drillActivities(ports).verifyDrillEvidence(workflowId);
    assert.equal(checks.filter((c) => c.ok).length, 6, JSON.stringify(checks));
    const critical = capture.alerts.filter((a) => a.severity === 'critical' && a.title === 'Restore drill FAILED: app' && a.text.includes('could not restore any backup'));
    assert.equal(critical.length, 1, JSON.stringify(capture.alerts));
    assert.ok(critical[0].text.includes(`drills/app/${workflowId}/report.json`), critical[0].text);
    await assertNothingLeft(workflowId);
  });

  it('a drill whose restore is refused at validation reports the backup it chose, alerts, and leaves the backup unmarked (its data was never tried)', async () => {
    const workflowId = uniqueId('test-drill-refused');
    const [before] = await ports.catalog.query<{ drill_outcome: string | null }>('SELECT drill_outcome FROM backups WHERE id = $1', [backup.catalogId]);
    // A request without a requester: validateRestore refuses it, as it refuses any restore without one.
    const { handle, error } = await drill(workflowId, { target: 'app', backup: backup.primary.handle.backupId, requestedBy: '  ' });
    assert.ok(error instanceof WorkflowFailedError && error.cause instanceof ActivityFailure && error.cause.cause instanceof ApplicationFailure, String(error));
    await recordHistory(handle, 'restoreDrill-v2-refused-at-validation');
    const row = await recorded(workflowId);
    assert.equal(row.outcome, 'failed');
    assert.equal(row.backup_id, backup.primary.handle.backupId);
    assert.deepEqual(row.report.steps.map((s) => s.phase), ['selecting', 'validating']);
    assert.match(row.report.steps[1].detail, /^stopped: .*identity of who asks/);
    assert.match(row.report.recommendations[0], new RegExp(`^Do not count on backup ${backup.primary.handle.backupId} until a drill of it passes`));
    const [after] = await ports.catalog.query<{ drill_outcome: string | null }>('SELECT drill_outcome FROM backups WHERE id = $1', [backup.catalogId]);
    assert.equal(after.drill_outcome, before.drill_outcome);
    assert.equal(capture.alerts.filter((a) => a.severity === 'critical' && a.text.includes(`The drill could not restore backup ${backup.primary.handle.backupId}: a restore needs the identity of who asks for it (--as or LIFEBOAT_USER). Report: drills/app/${workflowId}/report.json.`)).length, 1, JSON.stringify(capture.alerts));
    await assertNothingLeft(workflowId);
  });

  it('cancelled during its restore: the instance removed, the report says cancelled, nothing left behind', async () => {
    const workflowId = uniqueId('test-drill-cancel');
    let cancelledIn = '';
    const { handle, error } = await drill(workflowId, { target: 'app' }, async (h) => {
      const status = await waitForStatus(h, 'the restore', (st) => ['restoring', 'replaying-wal'].includes(st.phase) || ['done', 'failed'].includes(st.phase));
      cancelledIn = status.phase;
      await h.cancel();
    });
    assert.ok(['restoring', 'replaying-wal'].includes(cancelledIn), `cancelled while ${cancelledIn}`);
    assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, String(error));
    await recordHistory(handle, 'restoreDrill-v2-cancelled');
    const row = await recorded(workflowId);
    assert.equal(row.outcome, 'cancelled');
    assert.ok(row.report.steps.some((s) => s.detail === 'stopped: the drill was cancelled'), JSON.stringify(row.report.steps));
    assert.equal(row.report.steps.at(-1)?.phase, 'cleaning-up');
    await assertNothingLeft(workflowId);
  });

  it('its worker killed (-9) during the restore: a new worker finishes the drill, and nothing is left behind', async () => {
    const taskQueue = uniqueTaskQueue('drill-kill');
    const worker = new ChaosWorker(stack.ctx, taskQueue, CONFIG_FILE);
    await worker.stopLeftover();
    await worker.start();
    const workflowId = uniqueId('test-drill-kill');
    drilled.push(drillInstanceName(workflowId));
    try {
      const handle = await env.client.workflow.start('restoreDrill', { taskQueue, workflowId, args: [{ target: 'app', requestedBy: 'test', timings: { pollIntervalMs: 500 } }] });
      const status = await waitForStatus(handle, 'the restore', (st) => st.phase === 'restoring' || ['done', 'failed'].includes(st.phase));
      assert.equal(status.phase, 'restoring');
      await worker.kill9();
      await worker.start();
      const result = (await handle.result()) as RestoreDrillResult;
      assert.equal(result.report.outcome, 'passed', JSON.stringify(result.report.issues));
      assert.match(result.report.steps.at(-1)!.detail, /removed/i);
    } finally {
      await worker.stop();
    }
    await assertNothingLeft(workflowId);
    assert.equal((await recorded(workflowId)).outcome, 'passed');
  });

  it('from the DR region with the primary region\'s MinIO stopped: passes, the report in the DR bucket at once, the primary copy written when the region is back', async () => {
    const workflowId = uniqueId('test-drill-dr-outage');
    await stack.minioPrimary.stop();
    let restarted = false;
    try {
      const { handle, result, error } = await drill(workflowId, { target: 'app', fromRegion: 'dr' }, async () => {
        // The verdict is on record with the DR copy while the primary region is still down.
        const deadline = Date.now() + 10 * 60 * 1000;
        let row: { evidence: DrillEvidence[]; outcome: string } | undefined;
        while (!row && Date.now() < deadline) {
          [row] = await ports.catalog.query<{ evidence: DrillEvidence[]; outcome: string }>('SELECT evidence, outcome FROM drills WHERE workflow_id = $1', [workflowId]);
          if (!row) await delay(500);
        }
        assert.ok(row, 'the drill was recorded while the primary region was down');
        assert.equal(row.outcome, 'passed');
        assert.deepEqual(row.evidence.map((e) => e.copies.map((c) => c.region)), [['dr'], ['dr'], ['dr']]);
        assert.deepEqual(row.evidence.map((e) => e.missing?.map((m) => m.region)), [['primary'], ['primary'], ['primary']]);
        // `drill report --verify` meanwhile: the DR copies check out, the primary ones are reported missing.
        const during = await drillActivities(ports).verifyDrillEvidence(workflowId);
        assert.deepEqual(during.map((c) => `${c.region} ${c.ok}`).sort(), ['dr true', 'dr true', 'dr true', 'primary false', 'primary false', 'primary false']);
        await stack.minioPrimary.start();
        restarted = true;
      });
      assert.equal(error, undefined, String(error));
      assert.equal(result!.report.outcome, 'passed', JSON.stringify(result!.report.issues));
      assert.equal(result!.report.backup.region, 'dr');
      // The RTO prediction is made from the region that answers, and says which repository did not.
      const prediction = result!.report.prediction;
      assert.ok(prediction, 'the report carries the RTO prediction though the primary region is down');
      assert.match(prediction.basis.detail, /pgBackRest's backup info of repo1 \(primary\) could not be read \(.*Connect/, prediction.basis.detail);
      assert.doesNotMatch(prediction.basis.detail, /repo2 \(dr\) could not be read/, prediction.basis.detail);
      assert.deepEqual(result!.evidence.map((e) => e.copies.map((c) => c.region)), [['dr', 'primary'], ['dr', 'primary'], ['dr', 'primary']]);
      await recordHistory(handle, 'restoreDrill-v2-evidence-copy-retried');
    } finally {
      if (!restarted) await stack.minioPrimary.start();
    }
    const warnings = capture.alerts.filter((a) => a.severity === 'warning' && a.title === 'Drill evidence incomplete: app' && a.text.includes(workflowId));
    assert.equal(warnings.length, 1, JSON.stringify(capture.alerts));
    const row = await recorded(workflowId);
    assert.deepEqual(row.evidence.map((e) => [e.copies.map((c) => c.region).sort(), e.missing]), [[['dr', 'primary'], undefined], [['dr', 'primary'], undefined], [['dr', 'primary'], undefined]]);
    const checks = await drillActivities(ports).verifyDrillEvidence(workflowId);
    assert.equal(checks.filter((c) => c.ok).length, 6, JSON.stringify(checks));
    await assertNothingLeft(workflowId);
    // The stack as the next suite expects it (archiving to the primary region caught up).
    if (!(await stackStatus(stack)).every((c) => c.healthy)) await stackUp(stack);
  });
});

/** Flips bytes in the middle of the set's largest file (a bundle or a data file) and returns what was there. */
async function damageLargestFile(s3: S3Client, bucket: string, prefix: string): Promise<{ key: string; original: Buffer }> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  const files = (page.Contents ?? []).filter((o) => !/backup\.manifest/.test(o.Key!)).sort((a, b) => (b.Size ?? 0) - (a.Size ?? 0));
  assert.ok(files.length, `the set under ${prefix} has files`);
  const key = files[0].Key!;
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const original = Buffer.from(await got.Body!.transformToByteArray());
  const damaged = Buffer.from(original);
  const from = Math.floor(damaged.length / 3);
  for (let i = from; i < Math.min(damaged.length, from + 4096); i++) damaged[i] = damaged[i] ^ 0xff;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: damaged }));
  return { key, original };
}
