/**
 * failback on the real stack through a real central worker and the target's agent, after a real
 * drFailover: every activity on the host (the DR primary's and the new instance's) runs on the
 * agent, nothing else does; the application
 * writes through the DNS name the whole time; a failback rejected at its gate leaves the DR
 * primary serving (re-protected, never fenced); the next one fences it, ships its last WAL,
 * restores in the primary region up to it, proves every table equal, moves the name home, and
 * retires the DR primary behind the retire gate. Every write the application was told succeeded
 * is in the new instance: zero committed transactions lost. Bad input to the CLI exits 2.
 * Nothing asserts on how long anything took.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { Client as TemporalClient, WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createPorts, Ports } from '../src/activities/ports';
import { loadConfig } from '../src/config';
import { agentTaskQueue } from '../src/domain/agents';
import { FailbackInput, FailbackReport } from '../src/domain/failback';
import { DrFailoverInput, FailoverReport } from '../src/domain/failover';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { localDnsRouter } from '../src/stack/powerdns';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { lifeboat } from './helpers/cli';
import { activityRuns, assertRouted } from './helpers/agents';
import { approveGate, COMMANDERS, FAILOVER_TIMINGS, recordFailoverHistory, REQUESTER } from './helpers/failover';
import { forgetFailbackLineage, recordHistory, removeAsItsOwner, uniqueId, waitForGate, withDatabase } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';
import { rejectSigned } from './helpers/signing';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');
const TIMINGS = FAILOVER_TIMINGS;

/** The application's writes through its DNS name, as a client sees them: every 201 is a committed transaction. */
function startWriter(appUrl: string) {
  const acknowledged: number[] = [];
  const refused: string[] = [];
  let stop = false;
  const done = (async () => {
    while (!stop) {
      try {
        const res = await fetch(`${appUrl}/writes`, { method: 'POST', signal: AbortSignal.timeout(5000) });
        const body = (await res.json()) as { id?: number; error?: string };
        if (res.status === 201 && body.id !== undefined) acknowledged.push(body.id);
        else refused.push(body.error ?? `HTTP ${res.status}`);
      } catch (err) {
        refused.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    acknowledged,
    refused,
    async stop() {
      stop = true;
      await done;
    },
  };
}

describe('failback (real worker, real stack, after a real failover)', function () {
  this.timeout(1200000);
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let client: TemporalClient;
  let ports: Ports;
  let engine: PgBackRestEngine;
  let worker: Worker;
  let agentWorker: Worker;
  let running: Promise<void>;
  let agentRunning: Promise<void>;
  let taskQueue: string;
  let failoverId: string;
  let drInstance: { instanceId: string; endpoint: { host: string; port: number } };
  // The sample target's host work goes to its agent, which this file runs in-process beside the central worker.
  const agent = `failback-host-${Math.random().toString(36).slice(2, 8)}`;
  const base = loadConfig(CONFIG_FILE);
  const config = { ...base, targets: { ...base.targets, databases: base.targets.databases.map((d) => (d.name === 'app' && d.engine === 'pgbackrest' ? { ...d, agent } : d)) } };
  const where = () => ({ agentQueue: agentTaskQueue(agent), agentIdentity: `agent-${agent}`, centralQueue: taskQueue, centralIdentity: `central-${agent}` });
  const made: string[] = [];
  const appDbName = () => stack.ctx.settings.dns.appDbName;
  const dnsNow = () => localDnsRouter(stack.ctx.settings).currentTarget(appDbName());
  const primaryEndpoint = () => ({ host: stack.ctx.settings.host, port: stack.ctx.settings.postgres.primaryPort });
  const appUrl = () => `http://${stack.ctx.settings.host}:${stack.ctx.settings.app.port}`;
  const startFailback = (workflowId: string, input: Partial<FailbackInput> = {}) =>
    client.workflow.start('failback', { taskQueue, workflowId, args: [{ failoverId, requestedBy: REQUESTER, reason: 'test: the primary region is back', timings: TIMINGS, ...input } satisfies FailbackInput] });

  before(async function () {
    this.timeout(900000);
    stack = await useStack();
    env = await useTemporal();
    client = env.client;
    ports = createPorts(config);
    engine = ports.database('app') as PgBackRestEngine;
    taskQueue = uniqueTaskQueue('failback');
    worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle(), identity: `central-${agent}` });
    agentWorker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, agent, identity: `agent-${agent}` });
    running = worker.run();
    agentRunning = agentWorker.run();
    await localDnsRouter(stack.ctx.settings).pointAt(appDbName(), primaryEndpoint(), 30);
    // A verified backup with its DR copy, then a real failover: the failback starts where a real one would.
    await client.workflow.execute('databaseBackup', { taskQueue, workflowId: uniqueId('test-failback-backup'), args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'test' }] });
    await localPgBackRest(stack.ctx).check();
    failoverId = uniqueId('test-failback-failover');
    const handle = await client.workflow.start('drFailover', {
      taskQueue,
      workflowId: failoverId,
      args: [{ mode: 'failover', requestedBy: REQUESTER, reason: 'test: primary region lost, to fail back', timings: TIMINGS } satisfies DrFailoverInput],
    });
    await approveGate(handle, 'failover');
    await approveGate(handle, 'cutover');
    const failover = (await handle.result()) as FailoverReport;
    assert.equal(failover.outcome, 'failed-over', failover.failure);
    // The DR primary is marked as serving traffic in its record on the host; its child restored it there.
    assertRouted(await activityRuns(handle), where(), ['markServedTraffic']);
    assertRouted(await activityRuns(client.workflow.getHandle(`${failoverId}.restore-app-db`)), where(), ['validateRestore', 'restoreIntoNewInstance', 'waitUntilAvailable']);
    await recordFailoverHistory(handle, 'drFailover-v3-failed-over-agent-routed');
    const instance = (await engine.listInstances()).find((i) => i.owner?.workflowId === `${failoverId}.restore-app-db`);
    assert.ok(instance?.endpoint, 'the failover kept its DR primary');
    made.push(instance.instanceId);
    drInstance = { instanceId: instance.instanceId, endpoint: instance.endpoint };
    assert.deepEqual(await dnsNow().then((d) => ({ host: d?.host, port: d?.port })), drInstance.endpoint);
  });

  after(async function () {
    this.timeout(300000);
    // The suites after this one expect the name at the primary and no instance of this file.
    await localDnsRouter(stack.ctx.settings).pointAt(appDbName(), primaryEndpoint(), 30);
    for (const id of made) await removeAsItsOwner(engine, id).catch((err: Error) => console.log(`      (could not remove ${id}: ${err.message})`));
    // The DR primary's and the new primary's backups and timelines leave the stanza: later suites restore the configured primary's lineage.
    await forgetFailbackLineage(stack, ports, ['reprotect-test-failback', 'new-primary-test-failback'], async () => {
      await client.workflow.execute('databaseBackup', { taskQueue, workflowId: uniqueId('test-failback-reset'), args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'test' }] });
    }).catch((err: Error) => console.log(`      (could not forget the failback's lineage: ${err.message})`));
    worker?.shutdown();
    agentWorker?.shutdown();
    await running?.catch(() => undefined);
    await agentRunning?.catch(() => undefined);
    await ports?.close();
  });

  it('through the CLI, bad input is refused in one sentence with exit 2 before anything starts', async () => {
    const unknown = await lifeboat(['failback', 'start', 'no-such-failover', '--reason', 'test', '--as', REQUESTER]);
    assert.equal(unknown.code, 2, unknown.stdout + unknown.stderr);
    assert.match(unknown.stderr, /no failover with the workflow id "no-such-failover" is on record: check the id with `lifeboat failover status`\./);
    const noReason = await lifeboat(['failback', 'start', failoverId, '--as', REQUESTER]);
    assert.equal(noReason.code, 2);
    assert.match(noReason.stderr, /a failback needs --reason, for the record/);
    const badId = await lifeboat(['failback', 'start', 'not an id', '--reason', 'test', '--as', REQUESTER]);
    assert.equal(badId.code, 2);
    assert.match(badId.stderr, /"not an id" is not a failover workflow id/);
    const listed = await client.workflow.list({ query: `WorkflowType = 'failback' AND ExecutionStatus = 'Running'` });
    for await (const w of listed) assert.fail(`a failback started on bad input: ${w.workflowId}`);
  });

  it('rejected at the failback gate: the DR primary is re-protected in both regions and keeps serving writes, never fenced', async () => {
    const workflowId = uniqueId('test-failback-reject');
    const handle = await startFailback(workflowId);
    const status = await waitForGate(handle, 'failback');
    const facts = Object.fromEntries(status.pendingGate!.prompt.facts.map((f) => [f.label, f.value]));
    assert.match(facts.app, new RegExp(`^${drInstance.instanceId} \\(${drInstance.endpoint.host}:${drInstance.endpoint.port}\\) is fenced, its final WAL shipped, and a new instance restored in the primary region from backup \\d{8}-\\d{6}F up to it$`));
    assert.match(facts['the old primary'], /is not touched/);
    const reprotect = status.planSteps!.find((s) => s.name === 'reprotect-app')!;
    assert.equal(reprotect.state, 'done');
    assert.match(reprotect.detail ?? '', /complete in repo1 \(primary\).*complete in repo2 \(dr\)/);
    await rejectSigned(handle, { by: COMMANDERS[0], reason: 'test: not tonight', gate: 'failback' });
    const report = (await handle.result()) as FailbackReport;
    assert.equal(report.outcome, 'rejected');
    assert.equal(report.databases[0].fence, undefined);
    // The re-protection is real: both repositories list the DR primary's backup.
    const backups = report.databases[0].reprotection!.backups;
    for (const [repo, label] of [[1, backups.primary.backupId], [2, backups.dr.backupId]] as const) {
      const info = JSON.parse((await localPgBackRest(stack.ctx).exec('info', ['--output=json', `--repo=${repo}`])).stdout) as Array<{ backup: Array<{ label: string }> }>;
      assert.ok(info[0].backup.some((b) => b.label === label), `repo${repo} holds ${label}`);
    }
    // Still serving writes through the name.
    const write = await fetch(`${appUrl()}/writes`, { method: 'POST' });
    assert.equal(write.status, 201, await write.text());
    assert.deepEqual(await dnsNow().then((d) => ({ host: d?.host, port: d?.port })), drInstance.endpoint);
    assertRouted(await activityRuns(handle), where(), ['findDrPrimary', 'reprotectDrPrimary']);
    await recordHistory(handle, 'failback-v1-rejected');
    await recordHistory(handle, 'failback-v2-rejected-agent-routed');
  });

  it('approved: fenced, final WAL shipped, restored in the primary region, every table equal, the name home, the DR primary retired; no acknowledged write lost', async () => {
    const workflowId = uniqueId('test-failback');
    const writer = startWriter(appUrl());
    let handle: WorkflowHandle;
    try {
      const started = await lifeboat(['failback', 'start', failoverId, '--reason', 'test: primary region back', '--as', REQUESTER, '--id', workflowId], { LIFEBOAT_TASK_QUEUE: taskQueue });
      assert.equal(started.code, 0, started.stdout + started.stderr);
      assert.match(started.stdout, new RegExp(`^failback started: ${workflowId} \\(closes failover ${failoverId}\\)$`, 'm'));
      handle = client.workflow.getHandle(workflowId);
      await approveGate(handle, 'failback');
      const atRetire = await waitForGate(handle, 'retire');
      // The name is home and the application answers from the new instance before the DR primary goes.
      const restoreStep = atRetire.planSteps!.find((s) => s.name === 'restore-app')!;
      assert.match(restoreStep.detail ?? '', /no committed transaction lost/);
      const status = await lifeboat(['failback', 'status', workflowId]);
      assert.match(status.stdout, /waiting for the retire gate/);
      // A few writes on the new instance, then stop: every acknowledged one must be there.
      const before = writer.acknowledged.length;
      for (let i = 0; i < 100 && writer.acknowledged.length < before + 3; i++) await new Promise((r) => setTimeout(r, 200));
    } finally {
      await writer.stop();
    }
    await approveGate(handle!, 'retire');
    const report = (await handle!.result()) as FailbackReport;
    const db = report.databases[0];
    if (db.restoredInstanceId) made.push(db.restoredInstanceId);
    assert.equal(report.outcome, 'failed-back', report.failure);

    // Zero lost: every write the application acknowledged (before the fence on the DR primary, after the move on the new one) is in the new instance.
    assert.ok(writer.acknowledged.length > 0, 'the application wrote during the test');
    const restored = db.restoredEndpoint!;
    const present = await withDatabase({ ...restored, database: 'app', user: 'lifeboat' }, async (c) =>
      (await c.query<{ id: string }>('SELECT id::text FROM app_writes WHERE id = ANY($1::bigint[])', [writer.acknowledged])).rows.map((r) => Number(r.id)),
    );
    assert.deepEqual(new Set(present), new Set(writer.acknowledged), 'every acknowledged write is in the instance the name now leads to');
    assert.ok(db.proof?.ok, db.proof?.detail);
    assert.ok(db.proof!.tables.some((t) => t.table === 'public.app_writes' && t.restoredRows === t.drPrimaryRows && t.restoredRows > 0), JSON.stringify(db.proof!.tables));
    assert.match(db.finalWal?.detail ?? '', /is in every repository of stanza app$/);

    // The name leads to the new instance, in the primary region's restore range, restored from repo1.
    assert.deepEqual(await dnsNow().then((d) => ({ host: d?.host, port: d?.port })), restored);
    assert.deepEqual(db.names.map((n) => [n.name, n.state, n.to]), [[appDbName(), 'moved', `${restored.host}:${restored.port}`]]);
    const health = (await (await fetch(`${appUrl()}/health`)).json()) as { ok: boolean; database: { host: string; port: number } };
    assert.equal(health.ok, true);
    assert.deepEqual({ host: health.database.host, port: health.database.port }, restored);
    assert.ok(report.writeOutageSeconds !== undefined && report.writeOutageSeconds >= 0, JSON.stringify(report));

    // The new primary is protected, the DR primary retired (gone), the decisions on record.
    assert.ok(db.protection?.some((p) => /^first full backup \S+ complete$/.test(p)), JSON.stringify(db.protection));
    assert.match(db.retired ?? '', new RegExp(`^retired ${drInstance.instanceId} \\(made by failover ${failoverId}\\.restore-app-db\\)`));
    assert.equal(await engine.describeInstance(drInstance.instanceId), undefined);
    assert.deepEqual(report.decisions.map((d) => [d.gate, d.decision]), [['failback', 'approved'], ['retire', 'approved']]);
    const [row] = await ports.catalog.query<{ outcome: string; evidence: Array<{ key: string }> }>('SELECT outcome, evidence FROM failbacks WHERE workflow_id = $1', [workflowId]);
    assert.equal(row.outcome, 'failed-back');
    assert.deepEqual(row.evidence.map((e) => path.basename(e.key)), ['report.json', 'report.md']);
    const shown = await lifeboat(['failback', 'status', workflowId]);
    assert.equal(shown.code, 0, shown.stdout + shown.stderr);
    assert.match(shown.stdout, /^outcome: failed-back; writes refused for /m);
    assert.match(shown.stdout, /^  app: no committed transaction lost/m);
    // A second failback of the same failover is refused before it starts.
    const again = await lifeboat(['failback', 'start', failoverId, '--reason', 'test: again', '--as', REQUESTER]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, new RegExp(`failover ${failoverId} was already failed back by ${workflowId}`));
    // Everything done to the DR primary and the new instance ran on the agent; names, proof, gates and report centrally.
    assertRouted(await activityRuns(handle!), where(), [
      'findDrPrimary',
      'reprotectDrPrimary',
      'fenceDrPrimary',
      'shipFinalWal',
      'restoreInPrimaryRegion',
      'waitUntilAvailable',
      'prepareToServe',
      'markServedTraffic',
      'protectAsNewPrimary',
      'waitForDatabaseBackup',
      'retireDrPrimary',
    ]);
    await recordHistory(handle!, 'failback-v1-failed-back');
    await recordHistory(handle!, 'failback-v2-failed-back-agent-routed');
  });
});
