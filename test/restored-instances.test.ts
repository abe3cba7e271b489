/**
 * Restored instances' life on the real stack: three point-in-time restores leave their pgBackRest
 * clusters standing; `lifeboat instances list` (a child process, its real output) shows them with
 * their expiry; `extend` moves it; the scheduled expiry (instanceExpiry, with a 30 s lifetime
 * injected through the config and the notice window through its input) first notifies, then
 * removes (port closed, data directory gone); an instance a cutover marked as serving traffic is
 * never removed, on expiry or by hand; `instances remove` goes through the instanceRemoval gate
 * (production) and removes. Bad input is refused with one sentence, exit 2, before anything happens.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { destinationFor } from '../src/activities/restore';
import { loadConfig, LifeboatConfig } from '../src/config';
import type { RestoredInstance, InstanceExpiryResult, InstanceRemovalReport } from '../src/domain/restored-instances';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { delay } from '../src/platform/processes';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { ensureFullBackup } from './helpers/backup-exists';
import { captureAlerts, AlertCapture } from './helpers/captured-alerts';
import { CONFIG_FILE, lifeboat as runLifeboat, Run } from './helpers/cli';
import { recordHistory, removeAsItsOwner, runPitrRestore, uniqueId, waitForGate } from './helpers/pitr';
import { approveSigned } from './helpers/signing';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
/** The injected lifetime: long enough to list and extend, short enough to wait for. */
const LIFETIME_SECONDS = 30;

/** Whether anything accepts connections on the port. */
function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(3000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

describe('restored instances: list, extend, expiry, removal (real stack, CLI as child processes)', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let engine: PgBackRestEngine;
  let alerts: AlertCapture;
  let config: LifeboatConfig;
  const taskQueue = uniqueTaskQueue('instances');
  const restores = { expiring: uniqueId('test-inst-expiring'), traffic: uniqueId('test-inst-traffic'), byHand: uniqueId('test-inst-byhand') };
  const ids = { expiring: destinationFor(restores.expiring), traffic: destinationFor(restores.traffic), byHand: destinationFor(restores.byHand) };

  before(async function () {
    this.timeout(600000);
    stack = await useStack();
    env = await useTemporal();
    await ensureFullBackup(stack);
    alerts = await captureAlerts();
    const base = alerts.configFor(loadConfig(CONFIG_FILE), 'LIFEBOAT_TEST_INSTANCES_WEBHOOK');
    config = { ...base, restoredInstances: { lifetime: LIFETIME_SECONDS, noticeBefore: 86_400 } };
    ports = createPorts(config);
    engine = ports.database('app') as PgBackRestEngine;
  });

  after(async function () {
    this.timeout(300000);
    for (const id of Object.values(ids)) await (engine ? removeAsItsOwner(engine, id) : Promise.resolve()).catch((err: unknown) => console.error(`cleanup of ${id}: ${String(err)}`));
    await ports?.close();
    await alerts?.close();
  });

  const lifeboat = (args: string[], extraEnv: Record<string, string> = {}): Promise<Run> => runLifeboat(args, { LIFEBOAT_TASK_QUEUE: taskQueue, ...extraEnv });
  const listJson = async (all = false): Promise<RestoredInstance[]> => {
    const r = await lifeboat(['instances', 'list', '--json', ...(all ? ['--all'] : [])]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as RestoredInstance[];
  };
  const row = async (id: string, all = false) => (await listJson(all)).find((i) => i.instanceId === id);
  const dataDirOf = (id: string) => engine.restoreFiles(id).dataDir;
  /** One exit-2 refusal: a single sentence on stderr, nothing on stdout. */
  const refused = (r: Run, pattern: RegExp) => {
    assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  };

  /** The scheduled expiry, started as its schedule starts it, on this test's worker. */
  async function runExpiry(name: string, record?: string): Promise<InstanceExpiryResult> {
    const handle = await env.client.workflow.start('instanceExpiry', { taskQueue, workflowId: uniqueId(`test-instance-expiry-${name}`), args: [{ requestedBy: 'schedule', noticeBeforeMs: 3_600_000 }] });
    const result = (await handle.result()) as InstanceExpiryResult;
    if (record) await recordHistory(handle, record);
    return result;
  }

  it('restores that leave their instance standing are listed with their expiry, owner, endpoint and traffic', async function () {
    this.timeout(900000);
    const started = Date.now();
    const runs = await Promise.all(
      Object.values(restores).map((workflowId) =>
        runPitrRestore({
          env,
          config,
          ports,
          queuePrefix: 'instances-restore',
          workflowId,
          input: { target: 'app', restorePoint: 'latest', reason: 'test: look at the data', requestedBy: ALICE, mode: 'standard', timings: { remindAfterMs: 60000, abortAfterMs: 300000, pollIntervalMs: 250 } },
          drive: async (h) => {
            await waitForGate(h, 'restore');
            await approveSigned(h, { by: BOB, reason: 'ok', gate: 'restore' });
          },
        }),
      ),
    );
    for (const r of runs) {
      assert.equal(r.error, undefined, String(r.error));
      assert.equal(r.result?.outcome, 'restored');
    }

    const listed = await listJson();
    for (const [key, id] of Object.entries(ids)) {
      const i = listed.find((x) => x.instanceId === id);
      assert.ok(i, `${id} is listed`);
      assert.equal(i.target, 'app');
      assert.equal(i.engine, 'pgbackrest');
      assert.equal(i.madeBy, 'pitrRestore');
      assert.equal(i.owner.workflowId, restores[key as keyof typeof restores]);
      assert.equal(i.owner.runId, runs[Object.keys(ids).indexOf(key)].runId);
      assert.equal(i.servedTraffic, false);
      assert.equal(i.state, 'kept');
      assert.match(i.endpoint ?? '', /^127\.0\.0\.1:\d+$/);
      assert.equal(Date.parse(i.expiresAt!) - Date.parse(i.createdAt), LIFETIME_SECONDS * 1000);
      assert.ok(Date.parse(i.createdAt) >= started - 5000);
    }

    // The text people read: a header and one line per instance, with its endpoint and "no" traffic.
    const text = await lifeboat(['instances', 'list']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^INSTANCE\s+TARGET\s+DATA AS OF\s+MADE BY\s+AGE\s+EXPIRES\s+ENDPOINT\s+TRAFFIC\s+STATE$/m);
    const expiring = listed.find((x) => x.instanceId === ids.expiring)!;
    assert.match(text.stdout, new RegExp(`^${ids.expiring}\\s+app \\(pgbackrest\\)\\s+\\S+\\s+pitrRestore ${restores.expiring}\\s+.+\\s+${expiring.expiresAt!.replace(/\./g, '\\.')} \\(.+\\)\\s+${expiring.endpoint!.replace(/\./g, '\\.')}\\s+no\\s+kept$`, 'm'));
  });

  it('extend moves the expiry on; bad input is refused with one sentence, exit 2, changing nothing', async () => {
    const before = (await row(ids.byHand))!;
    refused(await lifeboat(['instances', 'extend', 'no-such-instance', '--by', '3d', '--as', ALICE]), /^lifeboat: there is no restored instance "no-such-instance" in the catalog: `lifeboat instances list` shows the ids\.$/m);
    refused(await lifeboat(['instances', 'extend', ids.byHand, '--by', 'three days', '--as', ALICE]), /^lifeboat: --by takes a duration such as 12h, 3d or 2w, not "three days"\.$/m);
    assert.equal((await row(ids.byHand))!.expiresAt, before.expiresAt);

    const extended = await lifeboat(['instances', 'extend', ids.byHand, '--by', '3d', '--reason', 'still comparing', '--as', ALICE]);
    assert.equal(extended.code, 0, extended.stderr);
    const after = (await row(ids.byHand))!;
    assert.ok(Date.parse(after.expiresAt!) >= Date.parse(before.expiresAt!) + 3 * 86_400_000, `${after.expiresAt} is at least 3 days after ${before.expiresAt}`);
    assert.equal(extended.stdout.trim(), `${ids.byHand} now expires at ${after.expiresAt} (in 3.0 days); extended by 3.0 days by ${ALICE}`);
    const events = await ports.catalog.query<{ event: string; details: { by: string; seconds: number } }>(`SELECT event, details FROM workflow_events WHERE kind = 'restored-instance' AND details->>'instanceId' = $1`, [ids.byHand]);
    assert.deepEqual(events.map((e) => [e.event, e.details.by, e.details.seconds]), [['extended', ALICE, 3 * 86_400]]);
  });

  it('the scheduled expiry notifies first, then removes (port closed, data directory gone), and never removes one that took traffic', async function () {
    this.timeout(600000);
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    await worker.runUntil(async () => {
      // A cutover marks its instance before the name moves (pitrRestore's markServedTraffic): the catalog does not know yet.
      await engine.markServedTraffic(ids.traffic);
      const expiring = (await row(ids.expiring))!;
      const [host, port] = expiring.endpoint!.split(':');
      assert.equal(await portOpen(host, Number(port)), true);

      const first = await runExpiry('notice');
      assert.ok(first.notified.includes(ids.expiring), JSON.stringify(first));
      assert.deepEqual(first.removed, [], 'nothing is removed before its notice went out');
      assert.ok(alerts.alerts.some((a) => a.title === `Restored instance ${ids.expiring} will be removed after ${expiring.expiresAt}` && a.text.includes(`lifeboat instances extend ${ids.expiring} --by 3d`)));
      assert.equal(await portOpen(host, Number(port)), true, 'still running after the notice');
      assert.ok((await row(ids.expiring))!.noticeSentAt);

      // Past its expiry, noticed: the next run removes it; the one that took traffic stays.
      const wait = Date.parse(expiring.expiresAt!) - Date.now();
      if (wait > 0) await delay(wait + 1000);
      const second = await runExpiry('remove', 'instanceExpiry-v1-notify-remove-keep');
      // Rows other suites' instances left (removed by hand since) may be cleared in the same run: only this test's count here.
      assert.deepEqual(second.removed.map((r) => r.instanceId).filter((id) => Object.values(ids).includes(id)), [ids.expiring], JSON.stringify(second));
      assert.equal(await portOpen(host, Number(port)), false, 'nothing listens on its port');
      assert.equal(fs.existsSync(dataDirOf(ids.expiring)), false, 'its data directory is gone');
      assert.equal(await engine.describeInstance(ids.expiring), undefined);
      const gone = (await row(ids.expiring, true))!;
      assert.equal(gone.state, 'removed');
      assert.match(gone.removedBy ?? '', /^instance expiry /);
      assert.ok(alerts.alerts.some((a) => a.title === `Restored instance ${ids.expiring} removed on expiry`));

      const traffic = second.kept.find((k) => k.instanceId === ids.traffic);
      assert.ok(traffic, JSON.stringify(second));
      assert.match(traffic.reason, /has taken traffic/);
      assert.ok(fs.existsSync(dataDirOf(ids.traffic)), 'the instance that took traffic is still there');
      assert.equal((await engine.describeInstance(ids.traffic))?.status, 'available');
      assert.equal((await row(ids.traffic))!.servedTraffic, true, 'the catalog now knows it took traffic');
      assert.ok(alerts.alerts.some((a) => a.title === `Restored instance ${ids.traffic} was NOT removed on expiry`));
      // The extended one was not due.
      assert.ok(fs.existsSync(dataDirOf(ids.byHand)));

      // From now on the expiry keeps it without asking its host.
      const third = await runExpiry('keep');
      assert.deepEqual(third.removed.filter((r) => Object.values(ids).includes(r.instanceId)), []);
      assert.ok(third.kept.some((k) => k.instanceId === ids.traffic && /has taken traffic/.test(k.reason)));
    });
  });

  it('remove goes through the instanceRemoval gate in production and removes; one that took traffic, an unknown id or a removed one is refused, exit 2', async function () {
    this.timeout(600000);
    refused(await lifeboat(['instances', 'remove', ids.traffic, '--reason', 'done', '--as', ALICE]), new RegExp(`^lifeboat: ${ids.traffic} has taken traffic \\(since \\S+\\), and lifeboat never removes an instance that has: point the name away from it and make sure no client uses it, then remove it by hand`, 'm'));
    refused(await lifeboat(['instances', 'remove', 'no-such-instance', '--reason', 'done', '--as', ALICE]), /^lifeboat: there is no restored instance "no-such-instance" in the catalog/m);
    refused(await lifeboat(['instances', 'remove', ids.expiring, '--reason', 'done', '--as', ALICE]), new RegExp(`^lifeboat: ${ids.expiring} was already removed at \\S+ by instance expiry \\S+: there is nothing left to remove\\.$`, 'm'));
    refused(await lifeboat(['instances', 'extend', ids.expiring, '--by', '1d', '--as', ALICE]), new RegExp(`^lifeboat: ${ids.expiring} was removed at \\S+ by instance expiry \\S+, so there is nothing to extend: restore again for a new instance\\.$`, 'm'));

    const byHand = (await row(ids.byHand))!;
    const [host, port] = byHand.endpoint!.split(':');
    const workflowId = uniqueId('test-instance-removal');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    await worker.runUntil(async () => {
      const started = await lifeboat(['instances', 'remove', ids.byHand, '--reason', 'finished comparing', '--as', ALICE, '--id', workflowId]);
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stdout, new RegExp(`^instance removal started: ${workflowId}$`, 'm'));
      assert.match(started.stdout, new RegExp(`^next: the instanceRemoval gate \\(production is production\\): lifeboat approve ${workflowId} --gate instanceRemoval`, 'm'));
      const handle = env.client.workflow.getHandle(workflowId);
      const gate = await waitForGate(handle, 'instanceRemoval');
      assert.equal(gate.pendingGate?.prompt.title, `REMOVE restored instance ${ids.byHand} of app`);
      // Nothing happens before the gate opens.
      assert.equal(await portOpen(host, Number(port)), true);

      const self = await lifeboat(['approve', workflowId, '--gate', 'instanceRemoval', '--reason', 'mine', '--as', ALICE]);
      assert.equal(self.code, 2);
      const approved = await lifeboat(['approve', workflowId, '--gate', 'instanceRemoval', '--reason', 'nobody uses it', '--as', BOB]);
      assert.equal(approved.code, 0, approved.stderr);
      const report = (await handle.result()) as InstanceRemovalReport;
      assert.equal(report.outcome, 'removed', JSON.stringify(report));
      assert.deepEqual(report.approvedBy, [BOB]);
      await recordHistory(handle, 'instanceRemoval-v1-gated-cli');
    });
    assert.equal(await portOpen(host, Number(port)), false, 'nothing listens on its port');
    assert.equal(fs.existsSync(dataDirOf(ids.byHand)), false, 'its data directory is gone');
    const gone = (await row(ids.byHand, true))!;
    assert.equal(gone.state, 'removed');
    assert.equal(gone.removedBy, ALICE);
    const all = await lifeboat(['instances', 'list', '--all']);
    assert.match(all.stdout, new RegExp(`^${ids.byHand}\\s.*\\sremoved \\S+ by ${ALICE.replace('.', '\\.')}$`, 'm'));
    // The one that took traffic is still there after all of it.
    assert.equal((await engine.describeInstance(ids.traffic))?.status, 'available');
  });
});
