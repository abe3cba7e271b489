/**
 * drFailover when things go wrong half-way, on the real stack: the worker killed with SIGKILL
 * while a failoverDatabase child restores (a new worker process carries on, one DR instance, no
 * orphan), a name that really moved but does not lead to the DR instance (put back, proven
 * through DNS), a failover drill cancelled once everything it makes exists, and a failover drill
 * with the primary region down. Each test leaves the stack as it found it: the name at the
 * primary, the primary region up, no instance of its run left.
 * Gate timings and polls come from the input; nothing asserts on how long anything took.
 */
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { Client as TemporalClient, WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { failoverDrillActivities } from '../src/activities/failover-drill';
import { createPorts, Ports } from '../src/activities/ports';
import { destinationFor } from '../src/activities/restore';
import { loadConfig } from '../src/config';
import { drillInstanceName } from '../src/domain/drill';
import { DrFailoverInput, FailoverReport } from '../src/domain/failover';
import { TrafficRouter } from '../src/domain/ports';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { portIsFree, waitUntil } from '../src/platform/processes';
import { localDnsRouter } from '../src/stack/powerdns';
import { regionDown, regionUp } from '../src/stack/regions';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { approveGate, COMMANDERS, FAILOVER_TIMINGS, failoverInstancesOf, readFailoverRow, readProduction, recordFailoverHistory, REQUESTER } from './helpers/failover';
import { leftovers, removeAsItsOwner, uniqueId, waitForGate, waitForStatus } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';
import { startWorkerProcess, stopWorkerProcess } from './helpers/worker-process';
import { rejectSigned } from './helpers/signing';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');
const RESTORE_STEP = 'restore-app-db';

/** A TCP port nothing listens on (taken from the kernel, then let go). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

describe('drFailover resilience (real worker processes, real stack)', function () {
  this.timeout(900000);
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let client: TemporalClient;
  let ports: Ports;
  let engine: PgBackRestEngine;
  let worker: Worker;
  let running: Promise<void>;
  let taskQueue: string;
  const config = loadConfig(CONFIG_FILE);
  /** Runs this file started: any still open at the end is terminated (its children then remove their instances). */
  const runs: WorkflowHandle[] = [];
  const processes: ChildProcess[] = [];

  const start = async (workflowId: string, input: Partial<DrFailoverInput> = {}, queue = taskQueue) => {
    const handle = await client.workflow.start('drFailover', { taskQueue: queue, workflowId, args: [{ mode: 'failover', requestedBy: REQUESTER, reason: 'test: primary region lost', timings: FAILOVER_TIMINGS, ...input } satisfies DrFailoverInput] });
    runs.push(handle);
    return handle;
  };
  /** The failoverDatabase child of the plan's one restore step: its id names the instance it makes. */
  const childIdOf = (workflowId: string) => `${workflowId}.${RESTORE_STEP}`;
  const instancesOf = (workflowId: string) => failoverInstancesOf(engine, workflowId);
  const appDbName = () => stack.ctx.settings.dns.appDbName;
  const dnsNow = () => localDnsRouter(stack.ctx.settings).currentTarget(appDbName());
  const primaryEndpoint = () => ({ host: stack.ctx.settings.host, port: stack.ctx.settings.postgres.primaryPort });
  const production = () => readProduction(stack, config, ports);
  const drillParts = () => failoverDrillActivities(ports);

  /** Nothing of the run is left: no instance (record, data directory or port claim of its child), no drill name, no application copy. */
  const assertAllRemoved = async (workflowId: string) => {
    assert.deepEqual(await instancesOf(workflowId), []);
    for (const instanceName of [destinationFor(childIdOf(workflowId)), drillInstanceName(childIdOf(workflowId))]) assert.deepEqual(leftovers(engine.restoresDir, instanceName), []);
    assert.deepEqual((await drillParts().listOwnedDrillNames()).filter((n) => n.owner.workflowId === workflowId), []);
    assert.deepEqual((await drillParts().listDrillApplications()).filter((a) => a.workflowId === workflowId), []);
  };

  before(async function () {
    this.timeout(900000);
    stack = await useStack();
    env = await useTemporal();
    client = env.client;
    ports = createPorts(config);
    engine = ports.database('app') as PgBackRestEngine;
    taskQueue = uniqueTaskQueue('failover-resilience');
    worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    running = worker.run();
    // A verified backup with its verified DR copy: what readiness asks the catalog for, and what every run here restores from.
    await client.workflow.execute('databaseBackup', { taskQueue, workflowId: uniqueId('test-resilience-backup'), args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'test' }] });
    await localDnsRouter(stack.ctx.settings).pointAt(appDbName(), primaryEndpoint(), 30);
  });

  after(async function () {
    this.timeout(300000);
    // Whatever a failed test left: its runs ended (a child asked to cancel removes its own instance), worker processes gone, the stack as found.
    for (const handle of runs) await handle.terminate('test file finished').catch(() => undefined);
    for (const proc of processes) await stopWorkerProcess(proc);
    await regionUp(stack, 'primary').catch(() => undefined);
    await localDnsRouter(stack.ctx.settings).pointAt(appDbName(), primaryEndpoint(), 30);
    worker?.shutdown();
    await running?.catch(() => undefined);
    await ports?.close();
  });

  it('the worker killed with SIGKILL while the failover restores: a new worker process carries on to the cutover gate with exactly one DR instance; rejected there, everything the run made is removed', async () => {
    const workflowId = uniqueId('test-failover-kill');
    const childId = childIdOf(workflowId);
    const destination = destinationFor(childId);
    const queue = uniqueTaskQueue('failover-kill');
    const dnsBefore = await dnsNow();
    const instancesBefore = (await engine.listInstances()).map((i) => i.instanceId);
    const first = await startWorkerProcess(queue, CONFIG_FILE);
    processes.push(first);
    const handle = await start(workflowId, {}, queue);
    await approveGate(handle, 'failover');

    // The child's restore is under way on that worker (its identity is pid@host): restoring from the DR repository, or waiting for the WAL replay.
    const child = client.workflow.getHandle(childId);
    let killedDuring = '';
    await waitUntil(
      'the failover restore to run on the first worker',
      async () => {
        const desc = await child.describe().catch(() => undefined);
        const restoring = (desc?.raw.pendingActivities ?? []).find((a) => ['restoreIntoNewInstance', 'waitUntilAvailable'].includes(a.activityType?.name ?? '') && a.lastWorkerIdentity?.startsWith(`${first.pid}@`));
        if (restoring) killedDuring = restoring.activityType!.name!;
        return restoring ? true : `${desc?.status.name ?? 'not started'}: ${(desc?.raw.pendingActivities ?? []).map((a) => a.activityType?.name).join(', ') || 'no activity pending'}`;
      },
      { timeoutMs: 300000, intervalMs: 50 },
    );
    await stopWorkerProcess(first, 'SIGKILL');
    const phase = ((await child.describe()).raw.pendingActivities ?? []).map((a) => a.activityType?.name);
    assert.ok(phase.includes(killedDuring), `killed while ${killedDuring} ran; pending now: ${phase.join(', ')}`);

    // A new worker takes over once the server gives up on the dead one's activity (its heartbeat timeout).
    const second = await startWorkerProcess(queue, CONFIG_FILE);
    processes.push(second);
    try {
      const atCutover = await waitForGate(handle, 'cutover');
      const restoreStep = atCutover.planSteps!.find((s) => s.name === RESTORE_STEP)!;
      assert.equal(restoreStep.state, 'done', restoreStep.detail);

      // Exactly one DR instance: the child's, under its one name; one record, one data directory, one port claimed.
      const instances = await instancesOf(workflowId);
      assert.deepEqual(instances.map((i) => [i.instanceId, i.owner?.workflowId]), [[destination, childId]]);
      assert.deepEqual((await engine.listInstances()).map((i) => i.instanceId).filter((id) => !instancesBefore.includes(id)), [destination], 'no other instance appeared, owned or not');
      const port = instances[0].endpoint!.port;
      assert.deepEqual(leftovers(engine.restoresDir, destination).filter((f) => f === destination || f.endsWith('.json') || f.startsWith('ports/')).sort(), [destination, `${destination}.json`, `ports/${port}`].sort());
      const retried = ((await child.fetchHistory()).events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
      assert.ok(retried.length > 0, `the ${killedDuring} the killed worker ran was retried on the new one`);
      console.log(`      killed the worker while ${killedDuring} ran; ${retried.map((e) => `${e.activityTaskStartedEventAttributes?.identity} took attempt ${e.activityTaskStartedEventAttributes?.attempt}`).join(', ')}`);

      await rejectSigned(handle, { by: COMMANDERS[0], reason: 'test: only the crash was of interest', gate: 'cutover' });
      const report = (await handle.result()) as FailoverReport;
      assert.equal(report.outcome, 'cutover-rejected');
      assert.ok(report.cleanup.some((c) => c.startsWith(`removed restored instance ${destination}`)), JSON.stringify(report.cleanup));
      assert.deepEqual(report.names, []);
      assert.deepEqual(await dnsNow(), dnsBefore);
      await assertAllRemoved(workflowId);
      assert.equal(await portIsFree(instances[0].endpoint!.host, port), true, `the DR instance's port ${port} is free`);
      assert.equal((await child.describe()).status.name, 'COMPLETED');
      assert.equal((await readFailoverRow(ports, workflowId)).outcome, 'cutover-rejected');
    } finally {
      await stopWorkerProcess(second, 'SIGTERM');
    }
  });

  it('a name that really moved but does not lead to the DR instance: put back, proven through DNS, and the report says so; the instance is kept, then removed by hand', async () => {
    const workflowId = uniqueId('test-failover-misdirected');
    const dnsBefore = await dnsNow();
    const wrongPort = await closedPort();
    // The router really writes the change, with a port nothing listens on: the name moves, and a connection through it reaches nothing.
    const written: Array<{ host: string; port?: number } | undefined> = [];
    const misdirecting: Ports = {
      ...ports,
      router(name: string) {
        const real = ports.router(name);
        const pointAt: TrafficRouter['pointAt'] = async (dnsName, target, ttl) => {
          const change = await real.pointAt(dnsName, { host: target.host, port: wrongPort }, ttl);
          written.push(await real.currentTarget(dnsName));
          return change;
        };
        return Object.assign(Object.create(real) as TrafficRouter, { pointAt });
      },
    };
    const queue = uniqueTaskQueue('failover-misdirected');
    const misdirectingWorker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports: misdirecting, taskQueue: queue, workflowBundle: await workflowBundle() });
    let instanceId: string | undefined;
    try {
      const report = await misdirectingWorker.runUntil(async () => {
        const handle = await start(workflowId, {}, queue);
        await approveGate(handle, 'failover');
        await approveGate(handle, 'cutover');
        const error = await handle.result().then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(error instanceof WorkflowFailedError, String(error));
        return (await readFailoverRow(ports, workflowId)).report;
      });
      const instance = (await instancesOf(workflowId))[0];
      instanceId = instance?.instanceId;

      // The name had really moved: DNS answered the wrong port right after the change.
      assert.deepEqual(written.map((w) => w && { host: w.host, port: w.port }), [{ host: primaryEndpoint().host, port: wrongPort }]);
      assert.equal(report.outcome, 'failed');
      assert.match(report.failure ?? '', new RegExp(`^move-app-db-name: the move did not take: ${appDbName().replace(/\./g, '\\.')} -> [\\d.]+:${wrongPort} does not answer as the restored instance`));
      // Put back, proven through DNS: the report, and DNS itself.
      assert.deepEqual(report.names.map((n) => [n.name, n.state]), [[appDbName(), 'rolled-back']]);
      assert.equal(report.names[0].detail, `${appDbName()} answers ${primaryEndpoint().host}:${primaryEndpoint().port} again through DNS, as before the failover`);
      assert.ok(report.cleanup.includes(report.names[0].detail), JSON.stringify(report.cleanup));
      assert.deepEqual(await dnsNow(), dnsBefore);
      assert.deepEqual(
        report.steps.map((s) => [s.name, s.state]),
        [
          [RESTORE_STEP, 'done'],
          ['switch-app-files', 'done'],
          ['move-app-db-name', 'rolled-back'],
          ['check-sample-app', 'failed'],
        ],
      );
      // A name led clients to the instance, however briefly: it is never removed automatically.
      assert.ok(instance?.servedTraffic, 'the DR instance is kept, marked as having served traffic');
      assert.ok(report.cleanup.some((c) => c.startsWith(`kept ${instance.instanceId}: a name led clients to it`)), JSON.stringify(report.cleanup));
    } finally {
      if (instanceId) await removeAsItsOwner(engine, instanceId);
    }
    await assertAllRemoved(workflowId);
  });

  it('a failover drill cancelled once its instance, drill name and application copy exist: all of them removed, reported as cancelled, production untouched', async () => {
    const workflowId = uniqueId('test-failover-drill-cancel');
    // The application's copy starts and listens but never answers its check (a path it does not serve), so the drill is caught with everything made.
    const waiting = structuredClone(config);
    const check = waiting.failover!.steps.find((s) => s.kind === 'check-application')!;
    assert.ok(check.kind === 'check-application' && check.drill);
    check.drill.url = 'http://127.0.0.1:{port}/not-served-by-the-app';
    const waitingPorts = createPorts(waiting);
    const queue = uniqueTaskQueue('failover-drill-cancel');
    const waitingWorker = await createLifeboatWorker({ config: waiting, connection: env.nativeConnection, ports: waitingPorts, taskQueue: queue, workflowBundle: await workflowBundle() });
    const before = await production();
    try {
      const { error, madeBeforeCancel } = await waitingWorker.runUntil(async () => {
        const handle = await start(workflowId, { mode: 'drill', reason: 'test: failover drill, cancelled' }, queue);
        await waitForStatus(handle, 'the application check of the drill', (s) => s.planSteps?.find((p) => p.name === 'check-sample-app')?.state === 'running');
        // The step is running from before its application copy starts: wait for the copy itself (on a loaded host it takes seconds).
        const ownRunningApps = async () => (await drillParts().listDrillApplications()).filter((a) => a.workflowId === workflowId && a.running);
        await waitUntil('the drill application copy to run', async () => (await ownRunningApps()).length > 0, { timeoutMs: 120_000, intervalMs: 250 });
        const made = {
          instances: (await instancesOf(workflowId)).map((i) => i.instanceId),
          names: (await drillParts().listOwnedDrillNames()).filter((n) => n.owner.workflowId === workflowId).map((n) => n.name),
          apps: (await ownRunningApps()).map((a) => a.port),
        };
        await handle.cancel();
        const failure = await handle.result().then(
          () => undefined,
          (e: unknown) => e,
        );
        // The children started outside the run's cancellation (patch failover-children-released-not-cancelled).
        await recordFailoverHistory(handle, 'drFailover-v2-drill-cancelled');
        return { error: failure, madeBeforeCancel: made };
      });
      assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, `cancelled, not ${String(error)}`);
      // Everything a drill makes existed when it was cancelled.
      assert.deepEqual(madeBeforeCancel.instances, [drillInstanceName(childIdOf(workflowId))]);
      assert.equal(madeBeforeCancel.names.length, 1, JSON.stringify(madeBeforeCancel));
      assert.equal(madeBeforeCancel.apps.length, 1, JSON.stringify(madeBeforeCancel));

      const report = (await readFailoverRow(ports, workflowId)).report;
      assert.equal(report.outcome, 'cancelled');
      assert.deepEqual(
        report.steps.map((s) => [s.name, s.state]),
        [
          [RESTORE_STEP, 'done'],
          ['switch-app-files', 'done'],
          ['move-app-db-name', 'done'],
          ['check-sample-app', 'failed'],
        ],
      );
      assert.equal(report.steps[3].detail, 'cancelled');
      assert.ok(report.cleanup.some((c) => /^stopped drill application check-sample-app of /.test(c)), JSON.stringify(report.cleanup));
      assert.ok(report.cleanup.includes(`removed drill names ${madeBeforeCancel.names[0]}`), JSON.stringify(report.cleanup));
      assert.ok(report.cleanup.some((c) => c.startsWith(`removed restored instance ${madeBeforeCancel.instances[0]}`)), JSON.stringify(report.cleanup));
      assert.deepEqual(report.drill?.productionDifferences, []);
      assert.deepEqual(report.drill?.unverified, []);
      await assertAllRemoved(workflowId);
      assert.equal(await portIsFree('127.0.0.1', madeBeforeCancel.apps[0]), true, `the application copy's port ${madeBeforeCancel.apps[0]} is free`);
      assert.deepEqual(await production(), before);
    } finally {
      await waitingPorts.close();
    }
  });

  it('a failover drill with the primary region down passes from the DR side alone, and says which parts of production it could not prove untouched', async () => {
    const workflowId = uniqueId('test-failover-drill-down');
    const before = await production();
    let report: FailoverReport;
    await regionDown(stack, 'primary');
    try {
      const handle = await start(workflowId, { mode: 'drill', reason: 'test: failover drill, primary region down' });
      report = (await handle.result()) as FailoverReport;
    } finally {
      await regionUp(stack, 'primary');
    }
    // The drill touches only the DR side; production's parts in the primary region cannot be read, before or after, and the report says so rather than calling them proven.
    assert.equal(report.outcome, 'passed', report.failure);
    assert.deepEqual(report.drill?.productionDifferences, []);
    const unverified = report.drill?.unverified ?? [];
    assert.deepEqual(
      unverified.map((u) => u.replace(/ was unreachable both times .*$/, '')),
      ['database app', 'pgBackRest repo1 (primary) of app', 'bucket app-files source primary/app-files'],
    );
    assert.ok(unverified.every((u) => u.endsWith('equal by assumption, not proven untouched')), unverified.join('\n'));
    assert.deepEqual(
      report.steps.map((s) => [s.name, s.state]),
      [
        [RESTORE_STEP, 'done'],
        ['switch-app-files', 'done'],
        ['move-app-db-name', 'done'],
        ['check-sample-app', 'done'],
      ],
    );
    assert.match(report.buckets[0].detail, /measured, not switched .*The source app-files does not answer/);
    assert.match(report.steps[3].detail ?? '', /^the application's drill copy \(pid \d+, port \d+\)/);
    await assertAllRemoved(workflowId);
    const row = await readFailoverRow(ports, workflowId);
    assert.equal(row.outcome, 'passed');
    // With the region back, the test's own reading agrees: production as it was.
    assert.deepEqual(await production(), before);
    assert.deepEqual(await dnsNow().then((d) => d && { host: d.host, port: d.port }), primaryEndpoint());
  });
});
