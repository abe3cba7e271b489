/**
 * drFailover on the real stack through a real worker: a failover with the primary region stopped
 * (restored from the DR repository, the name moved, the sample application answering from the DR
 * instance through DNS, no committed write lost), rejection at each gate, and a DNS change that
 * PowerDNS refuses (every moved name put back, proven through DNS). One DR backup serves all.
 * A failover drill with the primary up: passed, production provably untouched, everything removed.
 * Gate timings and polls come from the input; nothing asserts on how long anything took.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { Client as TemporalClient, WorkflowFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { failoverDrillActivities } from '../src/activities/failover-drill';
import { createPorts, Ports } from '../src/activities/ports';
import { loadConfig } from '../src/config';
import { DrFailoverInput, FailoverReport } from '../src/domain/failover';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { PowerDnsRouter } from '../src/engines/powerdns';
import { portIsFree } from '../src/platform/processes';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { localDnsRouter } from '../src/stack/powerdns';
import { regionDown, regionUp } from '../src/stack/regions';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { lifeboat } from './helpers/cli';
import { approveGate, COMMANDERS, FAILOVER_TIMINGS, failoverInstancesOf, readFailoverRow, readProduction, recordFailoverHistory, REQUESTER } from './helpers/failover';
import { onPrimary, removeAsItsOwner, uniqueId, waitForGate, withDatabase } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';
import { rejectSigned } from './helpers/signing';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');

describe('drFailover workflow (real worker, real stack)', function () {
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
  const made: string[] = [];

  const start = (workflowId: string, input: Partial<DrFailoverInput> = {}, queue = taskQueue) =>
    client.workflow.start('drFailover', { taskQueue: queue, workflowId, args: [{ mode: 'failover', requestedBy: REQUESTER, reason: 'test: primary region lost', timings: FAILOVER_TIMINGS, ...input } satisfies DrFailoverInput] });
  const failoverRow = (workflowId: string) => readFailoverRow(ports, workflowId);
  const instancesOf = (workflowId: string) => failoverInstancesOf(engine, workflowId);
  const appDbName = () => stack.ctx.settings.dns.appDbName;
  const dnsNow = () => localDnsRouter(stack.ctx.settings).currentTarget(appDbName());
  const primaryEndpoint = () => ({ host: stack.ctx.settings.host, port: stack.ctx.settings.postgres.primaryPort });

  before(async function () {
    this.timeout(900000);
    stack = await useStack();
    env = await useTemporal();
    client = env.client;
    ports = createPorts(config);
    engine = ports.database('app') as PgBackRestEngine;
    taskQueue = uniqueTaskQueue('failover');
    worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    running = worker.run();
    // One verified backup with its verified DR copy for the whole file: what readiness asks the catalog for, and what a failover restores from.
    await client.workflow.execute('databaseBackup', { taskQueue, workflowId: uniqueId('test-failover-backup'), args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'test' }] });
    await localPgBackRest(stack.ctx).check();
    // Every test starts with the name at the primary, whatever an interrupted earlier run left.
    await localDnsRouter(stack.ctx.settings).pointAt(appDbName(), primaryEndpoint(), 30);
  });

  after(async function () {
    this.timeout(300000);
    await regionUp(stack, 'primary').catch(() => undefined);
    await localDnsRouter(stack.ctx.settings).pointAt(appDbName(), primaryEndpoint(), 30);
    for (const id of made) await removeAsItsOwner(engine, id).catch((err: Error) => console.log(`      (could not remove ${id}: ${err.message})`));
    worker?.shutdown();
    await running?.catch(() => undefined);
    await ports?.close();
  });

  const production = () => readProduction(stack, config, ports);

  it('a failover drill with the primary up: passed, production untouched, the app copy answering from the drill instance through the drill name, everything removed', async () => {
    const workflowId = uniqueId('test-failover-drill');
    const before = await production();
    const handle = await start(workflowId, { mode: 'drill', reason: 'test: failover drill' });
    const report = (await handle.result()) as FailoverReport;
    assert.equal(report.outcome, 'passed', report.failure);
    assert.deepEqual(report.decisions, [], 'a drill has no gates');

    // Production: the drill's own fingerprints agree, and so does the test's independent reading.
    assert.deepEqual(report.drill?.productionDifferences, []);
    assert.deepEqual(report.drill?.unverified, []);
    assert.deepEqual(await production(), before);

    // Restored into a drill-... instance on the drill ports; the name written in the drill zone only.
    assert.deepEqual(report.steps.map((s) => [s.name, s.state]), [
      ['restore-app-db', 'done'],
      ['switch-app-files', 'done'],
      ['move-app-db-name', 'done'],
      ['check-sample-app', 'done'],
    ]);
    assert.match(report.steps[0].detail ?? '', /^drill-/);
    assert.match(report.buckets[0].detail, /measured, not switched/);
    const zone = config.trafficRouters[0].drillZone!.replace(/\.?$/, '.');
    assert.equal(report.names.length, 1);
    const drillName = report.names[0].name;
    assert.ok(drillName.endsWith(`.${zone}`) && drillName.startsWith('db.app.'), drillName);
    assert.deepEqual(report.drill?.drillNames, [drillName]);
    const [host, port] = report.names[0].to.split(':');
    const drillPorts = config.targets.databases.find((d) => d.name === 'app')!;
    assert.ok(drillPorts.engine === 'pgbackrest' && Number(port) >= drillPorts.drillPorts.from && Number(port) <= drillPorts.drillPorts.to, report.names[0].to);

    // The application's own copy answered, from the drill instance (checkApplication compared its database.host/port).
    const appStep = report.steps.find((s) => s.name === 'check-sample-app')!;
    assert.match(appStep.detail ?? '', new RegExp(`^the application's drill copy \\(pid \\d+, port \\d+\\) at http://127\\.0\\.0\\.1:\\d+/health: `));
    assert.ok(report.rto && report.rto.seconds > 0 && report.rto.predictedSeconds !== undefined, JSON.stringify(report.rto));
    // Measured against predicted, per step.
    assert.ok(report.steps.every((s) => s.seconds !== undefined), JSON.stringify(report.steps));
    assert.ok(report.steps[0].predictedSeconds !== undefined, JSON.stringify(report.steps[0]));

    // Everything the drill made is gone: the names, the app copy (its port too), the instance (its port too); the child closed.
    const drillParts = failoverDrillActivities(ports);
    assert.deepEqual((await drillParts.listOwnedDrillNames()).filter((n) => n.owner.workflowId === workflowId), []);
    assert.deepEqual((await drillParts.listDrillApplications()).filter((a) => a.workflowId === workflowId), []);
    const appPort = Number(/port (\d+)\)/.exec(appStep.detail!)![1]);
    assert.equal(await portIsFree('127.0.0.1', appPort), true, `the drill application's port ${appPort} is free`);
    assert.equal(await portIsFree(host, Number(port)), true, `the drill instance's port ${port} is free`);
    assert.deepEqual(await instancesOf(workflowId), []);
    assert.equal((await client.workflow.getHandle(`${workflowId}.restore-app-db`).describe()).status.name, 'COMPLETED');
    assert.ok(report.cleanup.some((c) => /^removed restored instance drill-/.test(c)), JSON.stringify(report.cleanup));

    const row = await failoverRow(workflowId);
    assert.equal(row.outcome, 'passed');
    assert.equal(row.report.mode, 'drill');
    assert.deepEqual(row.evidence.map((e) => path.basename(e.key)), ['report.json', 'report.md']);
    await recordFailoverHistory(handle, 'drFailover-v1-drill-passed');
    await recordFailoverHistory(client.workflow.getHandle(`${workflowId}.restore-app-db`), 'failoverDatabase-v1-drill-removed');
  });

  it('a failover drill whose application copy cannot start: failed, and still everything removed and production untouched', async () => {
    const workflowId = uniqueId('test-failover-drill-fail');
    // The same plan, with an application copy that exits at once: a real process that never listens.
    const broken = structuredClone(config);
    const check = broken.failover!.steps.find((s) => s.kind === 'check-application')!;
    assert.ok(check.kind === 'check-application' && check.drill);
    check.drill.command = ['node', '-e', 'process.exit(3)', '{name:app}'];
    const brokenPorts = createPorts(broken);
    const queue = uniqueTaskQueue('failover-drill-fail');
    const brokenWorker = await createLifeboatWorker({ config: broken, connection: env.nativeConnection, ports: brokenPorts, taskQueue: queue, workflowBundle: await workflowBundle() });
    const before = await production();
    try {
      await brokenWorker.runUntil(async () => {
        const handle = await start(workflowId, { mode: 'drill', reason: 'test: failover drill, broken app copy' }, queue);
        const error = await handle.result().then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(error instanceof WorkflowFailedError, String(error));
        await recordFailoverHistory(handle, 'drFailover-v1-drill-failed');
      });
    } finally {
      await brokenPorts.close();
    }
    const report = (await failoverRow(workflowId)).report;
    assert.equal(report.outcome, 'failed');
    assert.match(report.failure ?? '', /^the drill application of step check-sample-app exited before it listened on port \d+/);
    assert.deepEqual(report.drill?.productionDifferences, []);
    assert.deepEqual(await production(), before);
    const drillParts = failoverDrillActivities(ports);
    assert.deepEqual((await drillParts.listOwnedDrillNames()).filter((n) => n.owner.workflowId === workflowId), []);
    assert.deepEqual((await drillParts.listDrillApplications()).filter((a) => a.workflowId === workflowId), []);
    assert.deepEqual(await instancesOf(workflowId), []);
    assert.ok(report.cleanup.some((c) => /^removed drill names db\.app\./.test(c)), JSON.stringify(report.cleanup));
    assert.ok(report.cleanup.some((c) => /^removed restored instance drill-/.test(c)), JSON.stringify(report.cleanup));
  });

  it('rejected at the declare gate: nothing is made and the report says so', async () => {
    const workflowId = uniqueId('test-failover-reject1');
    const handle = await start(workflowId);
    const status = await waitForGate(handle, 'failover');
    const facts = Object.fromEntries(status.pendingGate!.prompt.facts.map((f) => [f.label, f.value]));
    assert.match(facts['predicted RTO'], /against the 14400 s objective/);
    assert.match(facts['names moved'], /db\.app\.lifeboat\.test\. -> the DR instance of app/);
    assert.match(facts['instances created'], /app restored from its DR copies/);
    assert.match(facts['the old primary'], /not fenced/);
    await rejectSigned(handle, { by: COMMANDERS[0], reason: 'test: not a disaster', gate: 'failover' });
    const report = (await handle.result()) as FailoverReport;
    assert.equal(report.outcome, 'rejected');
    assert.ok(report.steps.every((s) => s.state === 'waiting'), JSON.stringify(report.steps));
    assert.deepEqual(await instancesOf(workflowId), []);
    assert.equal((await failoverRow(workflowId)).outcome, 'rejected');
    await recordFailoverHistory(handle, 'drFailover-v1-rejected');
  });

  it('with the primary region stopped: restored from the DR copies, the name moved, the application serving from the DR instance, no committed write lost', async () => {
    const workflowId = uniqueId('test-failover-real');
    const appUrl = `http://${stack.ctx.settings.host}:${stack.ctx.settings.app.port}`;
    // The application writes, and every write is archived to both regions before the region goes away.
    const posted = await fetch(`${appUrl}/writes`, { method: 'POST' });
    assert.equal(posted.status < 300, true, await posted.text());
    const last = await onPrimary(stack, async (c) => (await c.query<{ id: string; at: Date }>('SELECT id::text, written_at AS at FROM app_writes ORDER BY id DESC LIMIT 1')).rows[0]);
    await localPgBackRest(stack.ctx).check();
    const dnsBefore = await dnsNow();
    await regionDown(stack, 'primary');
    const handle = await start(workflowId, { lastKnownCommits: { app: { at: last.at.toISOString(), detail: `app_writes id ${last.id}` } }, incidentId: 'INC-TEST-1' });
    await approveGate(handle, 'failover');
    const atCutover = await waitForGate(handle, 'cutover');
    const page = Object.fromEntries(atCutover.pendingGate!.prompt.facts.map((f) => [f.label, f.value]));
    assert.match(page[appDbName()], new RegExp(`^${stack.ctx.settings.host}:${stack.ctx.settings.postgres.primaryPort} -> ${stack.ctx.settings.host}:\\d+ \\(`));
    const restoreStep = atCutover.planSteps!.find((s) => s.kind === 'restore-database')!;
    assert.equal(restoreStep.state, 'done');
    assert.equal(restoreStep.childWorkflowId, `${workflowId}.restore-app-db`);
    await approveGate(handle, 'cutover');
    const report = (await handle.result()) as FailoverReport;
    const instance = (await instancesOf(workflowId))[0];
    if (instance) made.push(instance.instanceId);
    assert.equal(report.outcome, 'failed-over', report.failure);
    assert.ok(instance?.endpoint, 'the DR instance exists and is kept');

    // The name leads to the DR instance, and the application answers from it through the name.
    assert.deepEqual(await dnsNow().then((d) => ({ host: d?.host, port: d?.port })), instance.endpoint);
    assert.notDeepEqual(dnsBefore, await dnsNow());
    const health = (await (await fetch(`${appUrl}/health`)).json()) as { ok: boolean; database: { host: string; port: number } };
    assert.equal(health.ok, true);
    assert.deepEqual({ host: health.database.host, port: health.database.port }, instance.endpoint);
    assert.deepEqual(report.names.map((n) => [n.name, n.state, n.to]), [[appDbName(), 'moved', `${instance.endpoint.host}:${instance.endpoint.port}`]]);

    // RPO: the last write the primary committed is in the DR instance, and the report says nothing was lost.
    const recovered = await withDatabase({ ...instance.endpoint, database: 'app', user: 'lifeboat' }, async (c) => (await c.query<{ id: string }>('SELECT max(id)::text AS id FROM app_writes')).rows[0].id);
    assert.ok(Number(recovered) >= Number(last.id), `recovered up to write ${recovered}, the primary had committed ${last.id}`);
    assert.equal(report.rpo[0].seconds, 0, report.rpo[0].detail);
    assert.ok(report.rto && report.rto.seconds > 0 && report.rto.objectiveSeconds === 14400 && report.rto.applicationServingAt, JSON.stringify(report.rto));
    assert.deepEqual(report.steps.map((s) => [s.name, s.state]), [
      ['restore-app-db', 'done'],
      ['switch-app-files', 'done'],
      ['move-app-db-name', 'done'],
      ['check-sample-app', 'done'],
    ]);
    assert.match(report.buckets[0].detail, /^app-files-replica \(store dr\) is now the copy to serve; lifeboat has no bucket name to move/);
    assert.ok(report.notes.some((n) => /not fenced/.test(n)));

    // Catalog and evidence in the DR region; a lesson appended as a new object.
    const row = await failoverRow(workflowId);
    assert.equal(row.outcome, 'failed-over');
    assert.deepEqual(row.evidence.map((e) => path.basename(e.key)), ['report.json', 'report.md']);
    const note = await lifeboat(['failover', 'note', workflowId, 'the runbook missed the DNS TTL', '--as', COMMANDERS[0]]);
    assert.equal(note.code, 0, note.stderr);
    assert.match(note.stdout, /^lesson 1 added to /);
    const after = await failoverRow(workflowId);
    assert.equal(after.lessons.length, 1);
    assert.equal(after.evidence.length, 4);
    const status = await lifeboat(['failover', 'status', workflowId]);
    assert.equal(status.code, 0, status.stderr + status.stdout);
    assert.match(status.stdout, /outcome: failed-over; RTO \d+ s/);
    await recordFailoverHistory(handle, 'drFailover-v1-failed-over');
    await recordFailoverHistory(client.workflow.getHandle(`${workflowId}.restore-app-db`), 'failoverDatabase-v1-kept');
    // Since patch host-work-on-agents: each looks up the target's agent (none here) before its host work.
    await recordFailoverHistory(handle, 'drFailover-v3-failed-over');
    await recordFailoverHistory(client.workflow.getHandle(`${workflowId}.restore-app-db`), 'failoverDatabase-v2-kept');

    // Undo for the next suites: the primary back, the name back at it (the workflow never does this itself).
    await regionUp(stack, 'primary');
    await localDnsRouter(stack.ctx.settings).pointAt(appDbName(), primaryEndpoint(), 30);
  });

  it('rejected at the cutover gate: the DR instance is removed by its child and the name is untouched', async () => {
    const workflowId = uniqueId('test-failover-reject2');
    const before = await dnsNow();
    const handle = await start(workflowId);
    await approveGate(handle, 'failover');
    await waitForGate(handle, 'cutover');
    assert.equal((await instancesOf(workflowId)).length, 1);
    await rejectSigned(handle, { by: COMMANDERS[1], reason: 'test: the primary is coming back', gate: 'cutover' });
    const report = (await handle.result()) as FailoverReport;
    assert.equal(report.outcome, 'cutover-rejected');
    assert.deepEqual(await instancesOf(workflowId), []);
    assert.ok(report.cleanup.some((c) => /^removed restored instance /.test(c)), JSON.stringify(report.cleanup));
    assert.deepEqual(await dnsNow(), before);
    assert.deepEqual(report.names, []);
    await recordFailoverHistory(handle, 'drFailover-v1-cutover-rejected');
    await recordFailoverHistory(client.workflow.getHandle(`${workflowId}.restore-app-db`), 'failoverDatabase-v1-removed');
  });

  it('a DNS change PowerDNS refuses (a wrong API key when the name moves): the name is put back, proven through DNS; the instance is kept', async () => {
    const workflowId = uniqueId('test-failover-dnsfail');
    const before = await dnsNow();
    const s = stack.ctx.settings;
    // The worker's router holds a key PowerDNS does not accept when it makes the change: a real 401 from the real server.
    const wrongKey = new PowerDnsRouter({ apiUrl: `http://${s.host}:${s.dns.apiPort}`, apiKey: 'not-the-key', zone: s.dns.zone, dnsServer: { host: s.host, port: s.dns.port } });
    const refusing: Ports = {
      ...ports,
      router(name: string) {
        const real = ports.router(name);
        return Object.assign(Object.create(real) as typeof real, { pointAt: wrongKey.pointAt.bind(wrongKey) });
      },
    };
    const queue = uniqueTaskQueue('failover-dns');
    const refusingWorker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports: refusing, taskQueue: queue, workflowBundle: await workflowBundle() });
    const report = await refusingWorker.runUntil(async () => {
      const handle = await start(workflowId, {}, queue);
      await approveGate(handle, 'failover');
      await approveGate(handle, 'cutover');
      const error = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof WorkflowFailedError, String(error));
      await recordFailoverHistory(handle, 'drFailover-v1-name-rolled-back');
      return (await failoverRow(workflowId)).report;
    });
    const instance = (await instancesOf(workflowId))[0];
    if (instance) made.push(instance.instanceId);
    assert.equal(report.outcome, 'failed');
    assert.match(report.failure ?? '', /PowerDNS API refused lifeboat's API key/);
    assert.deepEqual(report.names.map((n) => [n.name, n.state]), [[appDbName(), 'rolled-back']]);
    assert.match(report.names[0].detail, /answers .* again through DNS/);
    assert.deepEqual(await dnsNow(), before);
    assert.ok(instance, 'an instance a name was about to lead clients to is never removed automatically');
    assert.ok(report.cleanup.some((c) => /^kept .*a name led clients to it/.test(c)), JSON.stringify(report.cleanup));
  });
});
