/**
 * The drill sweeper on the real stack. A real restore drill is terminated mid-restore (no
 * cleanup runs on terminate), leaving its drill instance behind: the sweeper removes it, records
 * the removal in the catalog and notifies. It leaves alone a drill instance whose drill run is
 * still running, an instance not named as a drill, and the source; a drill bucket whose owner run
 * is closed goes, an unlabelled one is reported and stays. The rules themselves are unit-tested
 * at the end (no server).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, PutBucketTaggingCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { MockActivityEnvironment, TestWorkflowEnvironment } from '@temporalio/testing';
import { drillSweeperActivities } from '../src/activities/drill-sweeper';
import type { DatabaseEngine } from '../src/domain/ports';
import { createPorts, Ports } from '../src/activities/ports';
import { loadConfig } from '../src/config';
import type { DatabaseBackupResult } from '../src/domain/backup';
import { drillInstanceName } from '../src/domain/drill';
import { DrillResource, drillBucketTags, DrillSweepResult, sweepVerdict } from '../src/domain/drill-sweep';
import type { WorkflowStatus } from '../src/domain/approval';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { statusQuery } from '../src/workflows/messages';
import { createLifeboatWorker } from '../src/worker';
import { agentTaskQueue } from '../src/domain/agents';
import { CONFIG_FILE } from './helpers/cli';
import { activityRuns, assertRouted } from './helpers/agents';
import { recordHistory, removeAsItsOwner, uniqueId } from './helpers/pitr';
import { removeBucket } from './helpers/scratch';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const WAIT_MS = 5 * 60 * 1000;

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('drill sweeper (real worker, real stack)', function () {
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let engine: PgBackRestEngine;
  let s3: S3Client;
  let backup: DatabaseBackupResult;
  const notes: string[] = [];
  const config = loadConfig(CONFIG_FILE);
  const tag = randomBytes(3).toString('hex');
  const instances: string[] = [];
  const buckets: string[] = [];
  const strays: string[] = [];

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    ports = createPorts(config, { log: (l) => notes.push(l) });
    engine = ports.database('app') as PgBackRestEngine;
    s3 = ports.objectStore(config.objectStores[0].name);
    // A verified backup, as the catalog records it: what a drill chooses from.
    const taskQueue = uniqueTaskQueue('sweep-backup');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    backup = (await worker.runUntil(env.client.workflow.execute('databaseBackup', { taskQueue, workflowId: uniqueId('test-sweep-backup'), args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'test' }] }))) as DatabaseBackupResult;
  });

  after(async function () {
    this.timeout(300000);
    for (const id of instances) {
      if (await engine?.describeInstance(id)) await removeAsItsOwner(engine, id).catch((err: unknown) => console.error(`cleanup of ${id}: ${String(err)}`));
    }
    for (const b of buckets) await removeBucket(s3, b).catch(() => undefined);
    for (const dir of strays) fs.rmSync(dir, { recursive: true, force: true });
    await ports?.close();
  });

  /** A drill bucket with an object in it, labelled with `owner` (or not at all). */
  async function drillBucket(name: string, owner?: { workflowId: string; runId: string }): Promise<void> {
    buckets.push(name);
    await s3.send(new CreateBucketCommand({ Bucket: name }));
    await s3.send(new PutObjectCommand({ Bucket: name, Key: 'restored/invoice.json', Body: '{"invoice":1}' }));
    if (owner) await s3.send(new PutBucketTaggingCommand({ Bucket: name, Tagging: { TagSet: drillBucketTags({ ...owner, createdAt: new Date().toISOString() }) } }));
  }

  it('removes the instance a terminated drill left behind and reports it; leaves a running drill\'s, a non-drill instance and the source alone', async () => {
    const drillQueue = uniqueTaskQueue('sweep-drill');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue: drillQueue, workflowBundle: await workflowBundle() });

    // 1. A real drill, terminated while it restores: terminate runs no cleanup, so its instance stays.
    const orphanId = uniqueId(`test-sweep-orphan-${tag}`);
    const orphanName = drillInstanceName(orphanId);
    instances.push(orphanName);
    const orphanRun = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start('restoreDrill', { taskQueue: drillQueue, workflowId: orphanId, args: [{ target: 'app', backup: backup.primary.handle.backupId, requestedBy: 'test' }] });
      await until(`the drill instance ${orphanName} with its owner recorded`, async () => ((await engine.describeInstance(orphanName))?.owner ? true : undefined));
      await handle.terminate('test: a drill lost without its cleanup');
      return handle.firstExecutionRunId;
    });
    assert.equal((await env.client.workflow.getHandle(orphanId).describe()).status.name, 'TERMINATED');
    assert.equal((await engine.describeInstance(orphanName))?.owner?.runId, orphanRun, 'the orphan outlived its drill');

    // 2. A drill that is still running (no worker polls its queue), with its instance made for it.
    const runningId = uniqueId(`test-sweep-running-${tag}`);
    const runningName = drillInstanceName(runningId);
    instances.push(runningName);
    const running = await env.client.workflow.start('restoreDrill', { taskQueue: uniqueTaskQueue('sweep-idle'), workflowId: runningId, args: [{ target: 'app' }] });
    await engine.startRestore({ destinationId: runningName, point: { kind: 'backup', backupId: backup.primary.handle.backupId }, owner: { workflowId: runningId, runId: running.firstExecutionRunId, restorePoint: 'test', createdAt: new Date().toISOString() } });

    // 3. An instance that is not a drill's (not named drill-...), owned by the terminated run all the same.
    const plainName = `lbtest-sweep-plain-${tag}`;
    instances.push(plainName);
    await engine.startRestore({ destinationId: plainName, point: { kind: 'backup', backupId: backup.primary.handle.backupId }, owner: { workflowId: orphanId, runId: orphanRun, restorePoint: 'test', createdAt: new Date().toISOString() } });

    // 4. A directory named like a drill that lifeboat has no record of.
    const unrecorded = path.join(engine.restoresDir, `drill-lbtest-unrecorded-${tag}`);
    strays.push(unrecorded);
    fs.mkdirSync(unrecorded, { recursive: true });

    // 5. Drill buckets: one of the terminated drill, one without labels.
    const orphanBucket = `drill-lbtest-${tag}-orphan`;
    const unlabelledBucket = `drill-lbtest-${tag}-unlabelled`;
    await drillBucket(orphanBucket, { workflowId: orphanId, runId: orphanRun });
    await drillBucket(unlabelledBucket);

    // The sweep runs as deployed: app's drill instances are listed and removed by its agent, everything else centrally.
    const sweepQueue = uniqueTaskQueue('sweep');
    const agent = `sweep-host-${tag}`;
    const withAgent = { ...config, targets: { ...config.targets, databases: config.targets.databases.map((d) => (d.name === 'app' && d.engine === 'pgbackrest' ? { ...d, agent } : d)) } };
    const sweepPorts = createPorts(withAgent, { log: (l) => notes.push(l) });
    const sweeper = await createLifeboatWorker({ config: withAgent, connection: env.nativeConnection, ports: sweepPorts, taskQueue: sweepQueue, workflowBundle: await workflowBundle(), identity: `central-${tag}` });
    const agentWorker = await createLifeboatWorker({ config: withAgent, connection: env.nativeConnection, ports: sweepPorts, agent, identity: `agent-${tag}` });
    const sweepId = uniqueId('test-drill-sweeper');
    const { result, status } = await sweeper.runUntil(() =>
      agentWorker.runUntil(async () => {
        const handle = await env.client.workflow.start('drillSweeper', { taskQueue: sweepQueue, workflowId: sweepId, args: [{ requestedBy: 'test' }] });
        const out = (await handle.result()) as DrillSweepResult;
        const board = (await handle.query(statusQuery)) as WorkflowStatus;
        // Directory and SQLite drills' scratch directories are listed on the hosts of those
        // targets: here none has an agent, so on the central worker (host work done there).
        const runs = await activityRuns(handle);
        const scratchListing = ['findDrillScratchDirectories', 'findSqliteDrillScratch'];
        for (const r of runs.filter((x) => scratchListing.includes(x.activity))) assert.deepEqual([r.queue, r.identity], [sweepQueue, `central-${tag}`], `${r.activity} ran centrally`);
        assertRouted(runs.filter((x) => !scratchListing.includes(x.activity)), { agentQueue: agentTaskQueue(agent), agentIdentity: `agent-${tag}`, centralQueue: sweepQueue, centralIdentity: `central-${tag}` }, ['findDrillInstances', 'removeDrillInstance']);
        await recordHistory(handle, 'drillSweeper-v1-removed-orphans');
        await recordHistory(handle, 'drillSweeper-v2-agent-routed');
        return { result: out, status: board };
      }),
    );
    await sweepPorts.close();
    await running.terminate('test over');

    const names = (list: DrillSweepResult['removed']) => list.map((s) => s.resource.name);
    // Removed: exactly the terminated drill's instance and bucket (others' leftovers on the shared stack may be there too).
    assert.ok(names(result.removed).includes(orphanName), JSON.stringify(result, null, 1));
    assert.ok(names(result.removed).includes(orphanBucket), JSON.stringify(result.removed));
    const removedInstance = result.removed.find((s) => s.resource.name === orphanName)!;
    assert.match(removedInstance.reason, new RegExp(`outlived its owner workflow ${orphanId} run ${orphanRun} \\(restoreDrill, terminated at `));
    assert.equal(await engine.describeInstance(orphanName), undefined, 'the orphan is gone');
    await assert.rejects(s3.send(new HeadBucketCommand({ Bucket: orphanBucket })), 'the orphan bucket is gone');

    // Kept: the running drill's instance, still there and serving.
    assert.ok(names(result.kept).includes(runningName), JSON.stringify(result.kept));
    assert.match(result.kept.find((s) => s.resource.name === runningName)!.reason, /a restoreDrill still running/);
    assert.ok(await engine.describeInstance(runningName), 'the running drill keeps its instance');
    // Reported, not removed: the unrecorded directory and the unlabelled bucket.
    assert.ok(names(result.reported).includes(path.basename(unrecorded)), JSON.stringify(result.reported));
    assert.ok(names(result.reported).includes(unlabelledBucket), JSON.stringify(result.reported));
    assert.ok(fs.existsSync(unrecorded));
    await s3.send(new HeadBucketCommand({ Bucket: unlabelledBucket }));
    // Never looked at: the non-drill instance and the source.
    const all = [...result.removed, ...result.kept, ...result.reported].map((s) => s.resource.name);
    assert.ok(!all.includes(plainName) && !all.includes('app'), all.join(', '));
    assert.ok(await engine.describeInstance(plainName), 'the non-drill instance is untouched');

    // Recorded in the catalog, once each, and notified.
    const rows = await ports.catalog.query<{ details: { name: string; owner: { runId: string }; detail: string } }>(
      "SELECT details FROM workflow_events WHERE workflow_id = $1 AND kind = 'drill-sweep' AND event = 'removed' ORDER BY id",
      [sweepId],
    );
    const recorded = rows.map((r) => r.details.name);
    assert.ok(recorded.includes(orphanName) && recorded.includes(orphanBucket), JSON.stringify(rows));
    assert.equal(recorded.length, result.removed.length);
    assert.equal(rows.find((r) => r.details.name === orphanName)!.details.owner.runId, orphanRun);
    assert.ok(notes.some((l) => l.includes(`Drill sweeper removed ${orphanName}`)), notes.join('\n'));
    assert.ok(notes.some((l) => l.includes(`Drill sweeper left ${unlabelledBucket} in place`)), notes.join('\n'));
    // The status board ends with the summary.
    assert.equal(status.phase, 'done');
    assert.match(status.timeline.at(-1)!.note, new RegExp(`^${result.removed.length} removed, ${result.kept.length} kept \\(their drills run\\), ${result.reported.length} reported$`));
    assert.ok(status.timeline.some((t) => t.phase === 'removing' && t.note.includes(orphanName)));
  });
});

describe('drill sweeper listing (real stack)', function () {
  it('a target it cannot list is notified and skipped; the object stores are still swept', async function () {
    this.timeout(600000);
    await useStack();
    const config = loadConfig(CONFIG_FILE);
    const notes: string[] = [];
    const real = createPorts(config, { log: (l) => notes.push(l) });
    const bucket = `drill-lbtest-${randomBytes(3).toString('hex')}-listed`;
    const s3 = real.objectStore(config.objectStores[0].name);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const failing: Ports = {
        ...real,
        database(): DatabaseEngine {
          throw new Error('the AWS credentials for this target are missing.');
        },
      };
      const found = (await new MockActivityEnvironment().run(() => drillSweeperActivities(failing).findDrillResources())) as DrillResource[];
      assert.ok(found.some((r) => r.kind === 'bucket' && r.name === bucket && !r.createdByLifeboat), JSON.stringify(found));
      assert.ok(!found.some((r) => r.kind === 'database-instance'));
      assert.ok(notes.some((l) => l.includes('Drill sweeper could not list the instances of database app') && l.includes('the AWS credentials for this target are missing.')), notes.join('\n'));
    } finally {
      await removeBucket(s3, bucket);
      await real.close();
    }
  });
});

describe('drill sweeper rules (no server)', () => {
  const owner = { workflowId: 'drill-app-1', runId: 'r1' };
  const instance: DrillResource = { kind: 'database-instance', target: 'app', name: 'drill-app-1', status: 'available', owner, createdByLifeboat: true };

  it('removes only a labelled drill resource whose drill run is closed', () => {
    assert.equal(sweepVerdict(instance, { state: 'closed', workflowType: 'restoreDrill', status: 'TERMINATED' }).action, 'remove');
    assert.equal(sweepVerdict(instance, { state: 'closed', workflowType: 'restoreDrill', status: 'COMPLETED' }).action, 'remove');
    assert.equal(sweepVerdict(instance, { state: 'closed', workflowType: 'pitrRestore', status: 'COMPLETED' }).action, 'report');
    assert.equal(sweepVerdict(instance, { state: 'running', workflowType: 'restoreDrill' }).action, 'keep');
  });

  it('reports, never removes, whatever is uncertain: no label, no owner, owner unknown or not a drill, traffic served', () => {
    const closed = { state: 'closed', workflowType: 'restoreDrill', status: 'COMPLETED' } as const;
    const cases: Array<[DrillResource, Parameters<typeof sweepVerdict>[1], RegExp]> = [
      [{ ...instance, createdByLifeboat: false }, closed, /carries no lifeboat label/],
      [{ ...instance, owner: undefined }, undefined, /records no owner run/],
      [instance, { state: 'not-found' }, /unknown to Temporal/],
      [instance, { state: 'unknown', detail: 'Temporal at x is unreachable' }, /could not be looked up in Temporal \(Temporal at x is unreachable\)/],
      [instance, { state: 'closed', workflowType: 'pitrRestore', status: 'COMPLETED' }, /a pitrRestore workflow, not a drill/],
      [{ ...instance, servedTraffic: true }, closed, /has served traffic/],
      [{ kind: 'bucket', store: 'primary', name: 'drill-x', createdByLifeboat: true }, undefined, /drill bucket drill-x in object store primary records no owner run/],
    ];
    for (const [resource, run, reason] of cases) {
      const verdict = sweepVerdict(resource, run);
      assert.equal(verdict.action, 'report', `${verdict.reason}`);
      assert.match(verdict.reason, reason);
    }
    assert.equal(sweepVerdict({ ...instance, name: 'app' }, closed).action, 'keep', 'a name not starting drill- is never touched');
  });
});
