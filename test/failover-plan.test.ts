/**
 * `lifeboat failover plan` on the real stack: after a backup that reached the DR repository, the
 * restore step's source is that DR copy with WAL to the DR repository's newest point and its age;
 * the restore step's predicted seconds are the RTO prediction fitted from a drill (from the DR
 * repository's sizes alone while the primary is down); the bucket step compares the replica with its source (an object put in the source only is
 * counted missing); waves and the critical path follow the plan's graph and predicted seconds.
 * With the primary region's MinIO and PostgreSQL stopped the plan is still assessed, from the DR
 * side alone, within a bounded time, and says the primary is unreachable. The CLI prints the plan
 * through bin/lifeboat.js, exits 1 when a step cannot run, and 2 with one sentence for a config
 * without a failover block.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { failoverPlanActivities, FAILOVER_PLAN_TIMINGS } from '../src/activities/failover-plan';
import { createPorts, Ports } from '../src/activities/ports';
import { predictionActivities } from '../src/activities/rto-prediction';
import { LifeboatConfig, loadConfig, PgBackRestTarget } from '../src/config';
import type { DatabaseBackupResult } from '../src/domain/backup';
import type { RestoreDrillResult } from '../src/domain/drill';
import type { AssessedPlan, PlannedStep } from '../src/domain/recovery-plan';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { CONFIG_FILE, lifeboat } from './helpers/cli';
import { uniqueId } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const step = (plan: AssessedPlan, kind: PlannedStep['kind']) => {
  const found = plan.steps.find((s) => s.kind === kind);
  assert.ok(found, `the plan has a ${kind} step`);
  return found;
};

/** Every chain of dependent steps, computed here from the plan's own `after` lists. */
function chains(steps: PlannedStep[]): string[][] {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const from = (name: string): string[][] => {
    const after = byName.get(name)!.after;
    return after.length ? after.flatMap((dep) => from(dep).map((c) => [...c, name])) : [[name]];
  };
  return steps.flatMap((s) => from(s.name));
}

describe('failover plan (real stack)', function () {
  let stack: Stack;
  let config: LifeboatConfig;
  let ports: Ports;
  let backup: DatabaseBackupResult;
  let source: S3Client;
  let replica: S3Client;
  const sourceOnlyKey = `failover-plan-test/${Date.now()}-only-in-source.txt`;
  const copiedToReplica: string[] = [];

  before(async function () {
    this.timeout(900000);
    stack = await useStack();
    const env = await useTemporal();
    config = loadConfig(CONFIG_FILE);
    ports = createPorts(config, { log: () => undefined });
    // A verified backup in both regions: the DR copy the plan must name.
    const taskQueue = uniqueTaskQueue('failover-plan-backup');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    backup = (await worker.runUntil(env.client.workflow.execute('databaseBackup', { taskQueue, workflowId: uniqueId('test-failover-plan-backup'), args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'test' }] }))) as DatabaseBackupResult;
    // A passed drill of that backup: what the restore step's prediction is fitted from.
    const drillQueue = uniqueTaskQueue('failover-plan-drill');
    const drillWorker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue: drillQueue, workflowBundle: await workflowBundle() });
    const drill = (await drillWorker.runUntil(
      env.client.workflow.execute('restoreDrill', { taskQueue: drillQueue, workflowId: uniqueId('test-failover-plan-drill'), args: [{ target: 'app', backup: backup.primary.handle.backupId, requestedBy: 'test', timings: { pollIntervalMs: 500 } }] }),
    )) as RestoreDrillResult;
    assert.equal(drill.report.outcome, 'passed', 'the drill the prediction rests on passed');
    // The stack has no replication between regions: copy what the source holds into the replica, as replication would.
    const bucket = config.targets.buckets.find((b) => b.name === 'app-files')!;
    source = ports.objectStore(bucket.source.store);
    replica = ports.objectStore(bucket.replica.store);
    const listed = await source.send(new ListObjectsV2Command({ Bucket: bucket.source.bucket }));
    const present = new Set(((await replica.send(new ListObjectsV2Command({ Bucket: bucket.replica.bucket }))).Contents ?? []).map((o) => o.Key));
    for (const o of listed.Contents ?? []) {
      if (!o.Key || present.has(o.Key)) continue;
      const body = await (await source.send(new GetObjectCommand({ Bucket: bucket.source.bucket, Key: o.Key }))).Body!.transformToByteArray();
      await replica.send(new PutObjectCommand({ Bucket: bucket.replica.bucket, Key: o.Key, Body: body }));
      copiedToReplica.push(o.Key);
    }
  });

  after(async function () {
    this.timeout(120000);
    const bucket = config?.targets.buckets.find((b) => b.name === 'app-files');
    if (bucket && source) await source.send(new DeleteObjectCommand({ Bucket: bucket.source.bucket, Key: sourceOnlyKey })).catch(() => undefined);
    if (bucket && replica) for (const key of copiedToReplica) await replica.send(new DeleteObjectCommand({ Bucket: bucket.replica.bucket, Key: key })).catch(() => undefined);
    await ports?.close();
  });

  it("the restore step's source is the DR copy in the DR repository, with WAL to its newest point, and its age is the RPO now", async function () {
    this.timeout(300000);
    const engine = ports.database('app');
    const before = await engine.restoreWindow('dr');
    const plan = await failoverPlanActivities(ports).assessFailoverPlan('failover');
    const after = await engine.restoreWindow('dr');
    const restore = step(plan, 'restore-database');

    // The newest backup set pgBackRest lists in repo2 is the DR copy this suite's backup made.
    const info = await localPgBackRest(stack.ctx).info(2);
    const newestDr = (info?.backup ?? []).filter((b) => b.database['repo-key'] === 2 && !b.error).sort((a, b) => b.timestamp.stop - a.timestamp.stop)[0];
    assert.equal(newestDr.label, backup.dr.handle.backupId, 'the newest set in repo2 is the DR copy the backup recorded');
    assert.match(restore.source!.description, new RegExp(`^pgBackRest repo2 \\(DR\\), full backup ${newestDr.label} \\+ WAL to `));

    // Its newest point is the DR repository's restore window end (read just before and after), not older than the copy.
    const newest = Date.parse(restore.source!.newestPoint!);
    assert.ok(newest >= Date.parse(before.latest) && newest <= Date.parse(after.latest), `${restore.source!.newestPoint} within ${before.latest}..${after.latest}`);
    assert.ok(newest >= newestDr.timestamp.stop * 1000, 'not older than the DR copy itself');
    assert.equal(restore.source!.ageSeconds, Math.max(0, Math.round((Date.parse(plan.assessedAt) - newest) / 1000)));
    assert.ok(restore.source!.ageSeconds! < 600, `a fresh backup's age is minutes at most, not ${restore.source!.ageSeconds} s`);

    // Ready from the catalog's verified DR copy, with a free port of the restore range (none claimed).
    assert.equal(restore.readiness.ready, true, restore.readiness.detail);
    assert.match(restore.readiness.detail, new RegExp(`DR copy ${backup.dr.handle.backupId} verified`));
    const port = Number(/restore port (\d+) free/.exec(restore.readiness.detail)?.[1]);
    const range = (config.targets.databases.find((d) => d.name === 'app') as PgBackRestTarget).restorePorts;
    assert.ok(port >= range.from && port <= range.to, `port ${port} in ${range.from}-${range.to}`);
    assert.equal(fs.existsSync(path.join(stack.ctx.paths.restoresDir, 'ports', String(port))), false, 'the assessment claimed no port');
    // Predicted from the drill, as `drills list` predicts it (the source's size now).
    const prediction = await predictionActivities(ports).predictRestore('app');
    assert.ok(prediction.predictedSeconds !== undefined && prediction.basis.drills >= 1, prediction.summary);
    assert.ok(Math.abs(restore.predictedSeconds! - prediction.predictedSeconds) <= 2, `${restore.predictedSeconds} vs ${prediction.predictedSeconds}`);
    assert.equal(restore.predictionBasis, prediction.summary);
    assert.equal(plan.primary?.reachable, true);
  });

  it('the bucket step measures the replica against its source and counts an object put in the source only as missing', async function () {
    this.timeout(120000);
    const bucket = config.targets.buckets.find((b) => b.name === 'app-files')!;
    const inSync = step(await failoverPlanActivities(ports).assessFailoverPlan('failover'), 'switch-bucket');
    assert.equal(inSync.readiness.ready, true, inSync.readiness.detail);
    assert.equal(inSync.source!.replication!.missingObjects, 0);
    assert.equal(inSync.source!.ageSeconds, 0, 'nothing missing: nothing would be lost');
    assert.match(inSync.source!.description, /every source object in the replica/);

    await source.send(new PutObjectCommand({ Bucket: bucket.source.bucket, Key: sourceOnlyKey, Body: 'written after the last replication\n' }));
    const behind = step(await failoverPlanActivities(ports).assessFailoverPlan('failover'), 'switch-bucket');
    const listedSource = (await source.send(new ListObjectsV2Command({ Bucket: bucket.source.bucket }))).Contents ?? [];
    const listedReplica = (await replica.send(new ListObjectsV2Command({ Bucket: bucket.replica.bucket }))).Contents ?? [];
    assert.deepEqual(behind.source!.replication, {
      replicaObjects: listedReplica.length,
      sourceObjects: listedSource.length,
      missingObjects: 1,
      lagSeconds: behind.source!.replication!.lagSeconds,
      complete: true,
      sourceAnswered: true,
    });
    assert.match(behind.source!.description, /1 object of the source missing from the replica/);
    const written = listedSource.find((o) => o.Key === sourceOnlyKey)!.LastModified!;
    assert.equal(behind.source!.newestPoint, written.toISOString(), 'the data at risk starts at the missing object');
    assert.ok(behind.source!.ageSeconds! >= 0 && behind.source!.ageSeconds! < 120);
    assert.equal(behind.readiness.ready, true, 'a lagging replica can still be served; the lag is its RPO');
  });

  it('waves follow the dependencies and the critical path is the longest chain by predicted seconds, against the 4 h objective', async function () {
    this.timeout(120000);
    const plan = await failoverPlanActivities(ports).assessFailoverPlan('failover');
    assert.deepEqual(plan.waves, [['restore-app-db', 'switch-app-files'], ['move-app-db-name'], ['check-sample-app']]);
    const seconds = new Map(plan.steps.map((s) => [s.name, s.predictedSeconds ?? 0]));
    const totals = chains(plan.steps).map((c) => ({ steps: c, seconds: c.reduce((sum, n) => sum + seconds.get(n)!, 0) }));
    const longest = totals.reduce((a, b) => (b.seconds > a.seconds ? b : a));
    assert.deepEqual(plan.criticalPath, longest);
    assert.deepEqual(plan.criticalPath.steps, ['restore-app-db', 'move-app-db-name', 'check-sample-app'], 'the restore chain is the long one');
    assert.equal(plan.objectiveSeconds, 4 * 3600);
    const move = step(plan, 'move-name');
    assert.equal(move.predictedSeconds, 30 + 30, 'the router serves the change, then the 30 s TTL');
    assert.match(move.predictionBasis!, /^no measurement yet: estimate/);
    assert.match(move.source!.description, /^db\.app\.lifeboat\.test\. (points at|has no address record)/);
    assert.equal(plan.worstRpoSeconds, Math.max(...plan.steps.map((s) => s.source?.ageSeconds ?? 0)));
    assert.equal(plan.ready, plan.steps.every((s) => s.readiness.ready));
  });

  it("with the primary region's MinIO and PostgreSQL stopped, assesses from the DR side within a bounded time and says the primary is unreachable", async function () {
    this.timeout(600000);
    await stack.minioPrimary.stop();
    await stack.primary.stop();
    try {
      const started = Date.now();
      const plan = await failoverPlanActivities(ports, { ...FAILOVER_PLAN_TIMINGS, primaryProbeMs: 2000 }).assessFailoverPlan('failover');
      const seconds = (Date.now() - started) / 1000;
      assert.ok(seconds < 90, `assessed in ${seconds.toFixed(1)} s with the primary region down`);
      assert.equal(plan.primary?.reachable, false);
      assert.match(plan.primary!.detail, /^primary unreachable: assessed from the DR side alone/);

      const restore = step(plan, 'restore-database');
      assert.match(restore.source!.description, new RegExp(`full backup ${backup.dr.handle.backupId} \\+ WAL to `));
      assert.ok(restore.source!.ageSeconds !== undefined);
      assert.equal(restore.readiness.ready, true, restore.readiness.detail);
      assert.match(restore.readiness.detail, /primary unreachable: the source 127\.0\.0\.1:\d+ does not answer/);
      // Still the drill's prediction: sizes from the DR repository alone, the drilled backup counted through its DR copy.
      assert.doesNotMatch(restore.predictionBasis!, /^no measurement yet/);
      const drOnly = await predictionActivities(ports).predictRestore('app', { drOnly: true });
      assert.ok(drOnly.basis.drills >= 1 && drOnly.predictedSeconds !== undefined, drOnly.summary);
      assert.match(drOnly.basis.detail, new RegExp(`size now .+ \\(the newest backup in the DR repository, ${backup.dr.handle.backupId} \\(the primary region does not answer\\)\\)`));
      assert.ok(Math.abs(restore.predictedSeconds! - drOnly.predictedSeconds) <= 2, `${restore.predictedSeconds} vs ${drOnly.predictedSeconds}`);

      const files = step(plan, 'switch-bucket');
      assert.equal(files.readiness.ready, true, files.readiness.detail);
      assert.equal(files.source!.replication!.sourceAnswered, false);
      assert.match(files.source!.description, /primary unreachable, so its lag is counted from its newest object/);

      // The CLI, as the incident commander runs it: the same verdict, printed.
      const cli = await lifeboat(['failover', 'plan']);
      assert.equal(cli.code, 0, cli.stderr + cli.stdout);
      assert.match(cli.stdout, /^primary unreachable: assessed from the DR side alone/m);
      assert.match(cli.stdout, /^READY: .*primary region unreachable, assessed from the DR side\.$/m);
    } finally {
      await stack.minioPrimary.start();
      await stack.primary.start();
    }
  });

  it('lifeboat failover plan prints the waves, sources, readiness, predictions, critical path and verdict; --json gives the plan', async function () {
    this.timeout(300000);
    const r = await lifeboat(['failover', 'plan']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^Recovery plan \(failover\), assessed \d{4}-/);
    assert.match(r.stdout, /^wave 1 \(in parallel\):\n {2}restore-app-db \(restore-database app\): ready, predicted /m);
    assert.match(r.stdout, /^ {4}source: pgBackRest repo2 \(DR\), full backup \S+ \+ WAL to \S+; data age .+ \(RPO now\)$/m);
    assert.match(r.stdout, /^ {2}move-app-db-name \(move-name app\) after restore-app-db: ready, predicted 1 min$/m);
    assert.match(r.stdout, /^ {2}check-sample-app \(check-application\) after move-app-db-name, switch-app-files: ready, predicted 1 min$/m);
    assert.match(r.stdout, /^critical path: restore-app-db -> move-app-db-name -> check-sample-app = .+ \(within the full-system objective of 4 h\)$/m);
    assert.match(r.stdout, /^worst RPO now: /m);
    assert.match(r.stdout, /^READY: every step of the failover can run; predicted RTO .+, within the 4 h objective; RPO now .+\.$/m);

    const drill = await lifeboat(['failover', 'plan', '--drill', '--json']);
    assert.equal(drill.code, 0, drill.stderr + drill.stdout);
    const plan = JSON.parse(drill.stdout) as AssessedPlan;
    assert.equal(plan.mode, 'drill');
    assert.match(step(plan, 'move-name').readiness.detail, /drill zone drill\.lifeboat\.test\. (exists|does not exist yet and can be created); the drill writes db\.app\.drill\.lifeboat\.test\./);
    assert.match(step(plan, 'restore-database').readiness.detail, /drill port \d+ free/);
  });

  it('exits 1 and says why when a step cannot run (every restore port taken)', async function () {
    this.timeout(300000);
    // The restore range narrowed to the catalog's port: taken by a server, so no restore could start.
    const taken = String(stack.ctx.settings.postgres.catalogPort);
    const r = await lifeboat(['failover', 'plan'], { LIFEBOAT_RESTORE_PORT_FROM: taken, LIFEBOAT_RESTORE_PORT_TO: taken });
    assert.equal(r.code, 1, r.stderr + r.stdout);
    assert.match(r.stdout, /^ {2}restore-app-db \(restore-database app\): NOT READY/m);
    assert.match(r.stdout, new RegExp(`^NOT READY: 1 step cannot run \\(restore-app-db: no free port in the restore port range ${taken}-${taken}: delete restored instances`, 'm'));
  });

  it('exits 2 with one sentence, before connecting to anything, for a config without a failover block', async function () {
    this.timeout(60000);
    const text = fs.readFileSync(CONFIG_FILE, 'utf8');
    const withoutPlan = text.replace(/^failover:\n(?: {2}.*\n|\s*#.*\n)*/m, '');
    assert.ok(!/^failover:/m.test(withoutPlan) && withoutPlan.length < text.length);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-failover-plan-'));
    try {
      const file = path.join(dir, 'lifeboat.config.yaml');
      fs.writeFileSync(file, withoutPlan);
      const started = Date.now();
      const r = await lifeboat(['failover', 'plan', '--config', file]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, 'lifeboat: the config has no `failover` block, so there is no recovery plan to assess: add `failover.steps` (see docs/config.md, "failover") and run the command again.\n');
      assert.ok(Date.now() - started < 30000);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
