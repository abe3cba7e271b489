/**
 * The `lifeboat` CLI as an incident commander types it, as child processes against the real
 * stack: restore with --cutover, approve as a second person, approve the cutover, watch to the
 * end; then the application's DNS name leads to the restored data. An in-process worker serves a
 * task queue of this test's own, which the CLI is pointed at through LIFEBOAT_TASK_QUEUE.
 */
import assert from 'node:assert/strict';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { destinationFor } from '../src/activities/restore';
import { loadConfig } from '../src/config';
import { WorkflowStatus } from '../src/domain/approval';
import { PitrRestoreReport } from '../src/domain/restore';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { delay } from '../src/platform/processes';
import { localDnsRouter } from '../src/stack/powerdns';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { Accident, assertNothingCreated, dropAccidentTables, recordHistory, removeAsItsOwner, snapshotTables, stageAccident, undoTestCutover, uniqueId, WAIT_MS, withDatabase } from './helpers/pitr';
import { CONFIG_FILE, lifeboat as runLifeboat, Run } from './helpers/cli';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const DNS_NAME = 'db.app.lifeboat.test.';

describe('pitrRestore through the lifeboat CLI (child processes, real stack)', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let engine: PgBackRestEngine;
  let accident: Accident | undefined;
  const config = loadConfig(CONFIG_FILE);
  const taskQueue = uniqueTaskQueue('pitr-cli');
  const workflowId = uniqueId('test-pitr-cli');
  const destination = destinationFor(workflowId);

  before(async function () {
    this.timeout(600000);
    stack = await useStack();
    env = await useTemporal();
    ports = createPorts(config);
    engine = ports.database('app') as PgBackRestEngine;
  });

  after(async function () {
    this.timeout(300000);
    // The name back at the primary, the primary writable, the new primary's backup and timeline gone, the instance removed.
    if (stack) await undoTestCutover(stack, ports, engine, workflowId, destination).catch((err: unknown) => console.error(`undoing the cutover of ${workflowId}: ${String(err)}`));
    await (engine ? removeAsItsOwner(engine, destination) : Promise.resolve()).catch((err: unknown) => console.error(`cleanup of ${destination}: ${String(err)}`));
    if (stack) await dropAccidentTables(stack, accident);
    await ports?.close();
  });

  /** `lifeboat <args>` as a child process, on this test's task queue. */
  const lifeboat = (args: string[], extraEnv: Record<string, string> = {}): Promise<Run> => runLifeboat(args, { LIFEBOAT_TASK_QUEUE: taskQueue, ...extraEnv });

  async function statusJson(): Promise<{ state: string; status?: WorkflowStatus }> {
    const r = await lifeboat(['status', workflowId, '--json']);
    return JSON.parse(r.stdout) as { state: string; status?: WorkflowStatus };
  }

  async function waitForCliStatus(what: string, done: (s: WorkflowStatus) => boolean): Promise<WorkflowStatus> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const { status } = await statusJson();
      if (status && done(status)) return status;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(status)}`);
      await delay(500);
    }
  }

  it('restore --cutover, approve as someone else, approve the cutover, watch: the DNS name then leads to the restored data', async () => {
    accident = await stageAccident(stack, 'lbcli');
    const a = accident;
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    await worker.runUntil(async () => {
      const started = await lifeboat(['restore', 'app', '--to', a.pointT, '--reason', 'orders deleted by a bad migration', '--cutover', '--incident', 'INC-42', '--id', workflowId, '--as', 'alice@example.com']);
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stdout, new RegExp(`^restore started: ${workflowId}$`, 'm'));
      assert.match(started.stdout, /^waiting for approval \(restore\) by any of: backup-owner, data-owner, not alice@example\.com$/m);
      assert.match(started.stdout, new RegExp(`^  destination: new instance ${destination}$`, 'm'));
      assert.match(started.stdout, /^  cutover: afterwards, behind a second gate: db\.app\.lifeboat\.test\.$/m);

      // The requester cannot approve their own restore in production: exit 2 with the reason.
      const self = await lifeboat(['approve', workflowId, '--reason', 'mine'], { LIFEBOAT_USER: 'alice@example.com' });
      assert.equal(self.code, 2, self.stdout);
      assert.match(self.stderr, /^lifeboat: approve refused: alice@example\.com requested this and cannot approve it in production: someone else must/);

      const approved = await lifeboat(['approve', workflowId, '--reason', 'data owner agrees'], { LIFEBOAT_USER: 'carol@example.com' });
      assert.equal(approved.code, 0, approved.stderr);
      assert.match(approved.stdout, /^restore gate approved by carol@example\.com at \S+: data owner agrees$/m);

      const watching = lifeboat(['watch', workflowId]);
      const cutoverGate = await waitForCliStatus('the cutover gate', (s) => s.pendingGate?.gate === 'cutover');
      assert.deepEqual(cutoverGate.pendingGate?.allowedRoles, ['incident-commander']);
      // carol holds no incident-commander role: the cutover is not hers to approve.
      const carol = await lifeboat(['approve', workflowId, '--gate', 'cutover', '--reason', 'go', '--as', 'carol@example.com']);
      assert.equal(carol.code, 2);
      assert.match(carol.stderr, /approve refused: carol@example\.com does not hold a role that approves the cutover gate in production \(incident-commander\)/);
      const cut = await lifeboat(['approve', workflowId, '--gate', 'cutover', '--reason', 'verified, move traffic', '--as', 'bob@example.com']);
      assert.equal(cut.code, 0, cut.stderr);
      assert.match(cut.stdout, /^cutover gate approved by bob@example\.com/m);

      const watched = await watching;
      assert.equal(watched.code, 0, `${watched.stdout}\n${watched.stderr}`);
      assert.match(watched.stdout, /^outcome: restored-and-cut-over$/m);
      assert.match(watched.stdout, new RegExp(`^instance ${destination} at 127\\.0\\.0\\.1:\\d+$`, 'm'));
      assert.match(watched.stdout, /^db\.app\.lifeboat\.test\. -> 127\.0\.0\.1:\d+$/m);

      const status = await lifeboat(['status', workflowId]);
      assert.equal(status.code, 0);
      assert.match(status.stdout, new RegExp(`^${workflowId}: completed, phase done$`, 'm'));
      assert.match(status.stdout, /^decision: restore approved by carol@example\.com/m);
      assert.match(status.stdout, /^decision: cutover approved by bob@example\.com/m);
      // v3: the undoable cutover also marks the instance as serving traffic; v1 and v2 histories stay as recorded.
      await recordHistory(env.client.workflow.getHandle(workflowId), 'pitrRestore-v3-cutover-cli');
    });

    const report = (await env.client.workflow.getHandle(workflowId).result()) as PitrRestoreReport;
    assert.equal(report.outcome, 'restored-and-cut-over');
    const endpoint = report.destination?.endpoint;
    assert.ok(endpoint);
    assert.deepEqual(report.cutover, { dnsName: DNS_NAME, pointsAt: `${endpoint.host}:${endpoint.port}`, verifiedThroughDns: true });
    assert.ok((report.rto?.phases.cutover ?? -1) >= 0);
    // Traffic went there, so nothing removes it automatically from now on.
    assert.equal((await engine.describeInstance(destination))?.servedTraffic, true);
    // The catalog lists it as having taken traffic: the expiry and `instances remove` leave it alone.
    const listed = await ports.catalog.query<{ served_traffic: boolean; state: string }>('SELECT served_traffic, state FROM restored_instances WHERE instance_id = $1', [destination]);
    assert.deepEqual(listed, [{ served_traffic: true, state: 'kept' }]);
    const refusedRemoval = await lifeboat(['instances', 'remove', destination, '--reason', 'done', '--as', 'alice@example.com']);
    assert.equal(refusedRemoval.code, 2, refusedRemoval.stdout);
    assert.match(refusedRemoval.stderr, new RegExp(`^lifeboat: ${destination} has taken traffic`));

    // The name resolves to the restored instance, and a connection through it sees the data at T.
    const s = stack.ctx.settings;
    const served = await localDnsRouter(s).currentTarget(DNS_NAME);
    assert.ok(served);
    assert.equal(served.host, endpoint.host);
    assert.equal(served.port, endpoint.port);
    const throughDns = await withDatabase({ host: served.host, port: served.port, database: s.postgres.appDatabase, user: s.postgres.superuser }, (c) => snapshotTables(c, [a.kept, a.dropped]));
    assert.deepEqual(throughDns, a.atT);

    // Back to the primary, the instance removed: nothing of this test is left.
    await undoTestCutover(stack, ports, engine, workflowId, destination);
    assert.deepEqual(await localDnsRouter(s).currentTarget(DNS_NAME).then((t) => [t?.host, t?.port]), [s.host, s.postgres.primaryPort]);
    const target = config.targets.databases.find((d) => d.name === 'app');
    await assertNothingCreated(engine, target?.engine === 'pgbackrest' ? target.restoresDir : '', workflowId);
  });

  it('refuses a --destination that is not a plain new instance name with exit 2, before starting anything', async () => {
    for (const bad of ['../../etc', 'x;touch /tmp/p', 'Orders', 'ends-with-', 'a'.repeat(64)]) {
      const id = uniqueId('test-pitr-cli-bad-destination');
      const refused = await lifeboat(['restore', 'app', '--to', 'latest', '--reason', 'test', '--destination', bad, '--id', id, '--as', 'alice@example.com']);
      assert.equal(refused.code, 2, `${bad}: ${refused.stdout}${refused.stderr}`);
      assert.equal(
        refused.stderr,
        `lifeboat: the destination ${JSON.stringify(bad)} is not a valid instance name: use lowercase letters, digits and single hyphens, starting with a letter, not ending with a hyphen, at most 63 characters (valid for RDS and local instances alike).\n`,
      );
      assert.equal(refused.stdout, '');
      // Nothing started: no workflow under that id.
      await assert.rejects(env.client.workflow.getHandle(id).describe(), /not found/i);
    }
  });
});
