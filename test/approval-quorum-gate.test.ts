/**
 * A gate that needs two people, on the real Temporal dev server with lifeboat's real activities
 * and catalog: a test-only workflow (test/workflows/quorum-gate.ts) holds one gate of the stock
 * config's production environment (failover: two of alice, bob and erin, none of them the requester).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { APPROVAL_EVENT_KIND } from '../src/activities/approvals';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig, loadConfig } from '../src/config';
import { Decision, WorkflowStatus } from '../src/domain/approval';
import { createLifeboatWorker } from '../src/worker';
import { approveSignal, statusQuery } from '../src/workflows/messages';
import { lifeboat } from './helpers/cli';
import { uniqueId, waitForGate, waitForStatus } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, gateProbeBundle } from './helpers/temporal';
import type { GateProbeInput } from './workflows/quorum-gate';
import { approveSigned, rejectSigned, signedInput } from './helpers/signing';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');

describe('two-person approval gates (real Temporal, real catalog)', function () {
  let env: TestWorkflowEnvironment;
  let config: LifeboatConfig;
  let ports: Ports;
  let bundle: WorkflowBundleWithSourceMap;

  before(async function () {
    this.timeout(600000);
    await useStack();
    env = await useTemporal();
    config = loadConfig(CONFIG_FILE);
    ports = createPorts(config);
    await ports.catalog.migrate();
    bundle = await gateProbeBundle();
  });
  after(async () => {
    await ports?.close();
  });

  const input: GateProbeInput = { environment: 'production', gate: 'failover', requestedBy: 'carol@example.com', timings: { remindAfterMs: 60000, abortAfterMs: 120000 } };

  /** Starts the probe on a queue of its own, lets `drive` decide, and returns what the gate ended with. */
  async function probe(workflowId: string, drive: (h: WorkflowHandle, taskQueue: string) => Promise<void>, overrides: Partial<GateProbeInput> = {}) {
    const taskQueue = uniqueTaskQueue('quorum');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: bundle });
    const handle = await env.client.workflow.start('gateProbe', { taskQueue, workflowId, args: [{ ...input, ...overrides }] });
    return worker.runUntil(async () => {
      try {
        await drive(handle, taskQueue);
      } catch (error) {
        await handle.terminate('test failed').catch(() => undefined);
        throw error;
      }
      const decision = (await handle.result()) as Decision;
      return { decision, status: (await handle.query(statusQuery)) as WorkflowStatus };
    });
  }

  const approve = (h: WorkflowHandle, by: string, reason = 'primary region is gone') => approveSigned(h, { by, reason, gate: 'failover' });

  async function refusalOf(promise: Promise<unknown>): Promise<string> {
    const error = await promise.then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(error instanceof WorkflowUpdateFailedError, `expected a refused update, got ${String(error)}`);
    return String(error.cause?.message);
  }

  async function catalogRecord(workflowId: string) {
    const decisions = await ports.catalog.query<{ decision: string; decided_by: string }>('SELECT decision, decided_by FROM approvals WHERE workflow_id = $1', [workflowId]);
    const approvals = await ports.catalog.query<{ event: string; by: string }>(`SELECT event, details->>'by' AS by FROM workflow_events WHERE workflow_id = $1 AND kind = $2 ORDER BY id`, [workflowId, APPROVAL_EVENT_KIND]);
    return { decisions: decisions.map((r) => [r.decision, r.decided_by]), approvals: approvals.map((r) => [r.event, r.by]) };
  }

  it('needs two different people: the first approval is recorded and shown as 1 of 2, the same person twice is refused, the second opens the gate', async () => {
    const workflowId = uniqueId('test-quorum-approved');
    const { decision, status } = await probe(workflowId, async (h) => {
      const first = await waitForGate(h, 'failover');
      assert.equal(first.pendingGate?.required, 2);
      assert.deepEqual(first.pendingGate?.approvals, []);

      const answer = await approve(h, 'Alice@Example.com');
      assert.equal(answer.decision, 'approved');
      assert.equal(answer.required, 2);
      assert.deepEqual(answer.approvals?.map((a) => a.by), ['alice@example.com']);

      const one = await waitForStatus(h, 'the first approval on record', (s) => s.pendingGate?.approvals?.length === 1);
      assert.equal(one.phase, 'awaiting-approval');
      assert.deepEqual(one.pendingGate?.approvals?.map((a) => a.by), ['alice@example.com']);
      // The Web UI's details of the run (Temporal's metadata query) say it too.
      const details = await h.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      assert.match(details.currentDetails ?? '', /Needs 2 different people: 1 approved so far \(alice@example\.com\), 1 more needed\./);
      // Recorded in the catalog as it came, before the gate is decided.
      await waitUntil(async () => (await catalogRecord(workflowId)).approvals.length === 1, 'the first approval in the catalog');
      assert.deepEqual(await catalogRecord(workflowId), { decisions: [], approvals: [['approval 1 of 2', 'alice@example.com']] });

      assert.equal(await refusalOf(approve(h, ' alice@example.com')), 'alice@example.com has already approved the failover gate, which needs 2 different people: 1 more must come from someone else');
      // The requester holds the role too (an incident commander declaring), and still does not count.
      assert.match(await refusalOf(approve(h, 'erin@example.com')), /^erin@example\.com requested this and cannot approve it in production/);
      assert.match(await refusalOf(approve(h, 'dave@example.com')), /^dave@example\.com does not hold a role that approves the failover gate/);

      const second = await approve(h, 'bob@example.com', 'confirmed with the cloud provider');
      assert.deepEqual(second.approvals?.map((a) => a.by), ['alice@example.com', 'bob@example.com']);
    }, { requestedBy: 'erin@example.com' });
    assert.equal(decision.decision, 'approved');
    assert.equal(decision.by, 'bob@example.com');
    assert.equal(decision.required, 2);
    assert.deepEqual(decision.approvals?.map((a) => [a.by, a.reason]), [['alice@example.com', 'primary region is gone'], ['bob@example.com', 'confirmed with the cloud provider']]);
    assert.equal(status.phase, 'approved');
    assert.equal(status.pendingGate, undefined);
    assert.deepEqual(await catalogRecord(workflowId), {
      decisions: [['approved', 'bob@example.com']],
      approvals: [['approval 1 of 2', 'alice@example.com'], ['approval 2 of 2', 'bob@example.com']],
    });
  });

  it('ends rejected when one allowed person rejects, even after an approval', async () => {
    const workflowId = uniqueId('test-quorum-rejected');
    const { decision } = await probe(workflowId, async (h) => {
      await waitForGate(h, 'failover');
      await approve(h, 'alice@example.com');
      const answer = await rejectSigned(h, { by: 'erin@example.com', reason: 'the primary answers again', gate: 'failover' });
      assert.equal(answer.decision, 'rejected');
    });
    assert.equal(decision.decision, 'rejected');
    assert.equal(decision.by, 'erin@example.com');
    assert.deepEqual(decision.approvals?.map((a) => a.by), ['alice@example.com']);
    assert.deepEqual(await catalogRecord(workflowId), { decisions: [['rejected', 'erin@example.com']], approvals: [['approval 1 of 2', 'alice@example.com']] });
  });

  it('takes approvals as signals too, and records a second signal of the same person as refused', async () => {
    const workflowId = uniqueId('test-quorum-signals');
    const { decision, status } = await probe(workflowId, async (h) => {
      await waitForGate(h, 'failover');
      // Production takes signed decisions only, as updates or as signals.
      const signal = async (by: string, reason: string) => h.signal(approveSignal, await signedInput(h, 'approved', { by, reason, gate: 'failover' }));
      await signal('erin@example.com', 'declared from the Web UI');
      await signal('erin@example.com', 'pressed twice');
      await waitForStatus(h, 'the refused second signal', (s) => s.refused.length === 1);
      await signal('alice@example.com', 'second commander');
    });
    assert.equal(decision.decision, 'approved');
    assert.deepEqual(decision.approvals?.map((a) => a.by), ['erin@example.com', 'alice@example.com']);
    assert.deepEqual(status.refused.map((r) => [r.by, r.reason]), [['erin@example.com', 'erin@example.com has already approved the failover gate, which needs 2 different people: 1 more must come from someone else']]);
  });

  it('the CLI says "approval 1 of 2 recorded; waiting for one more", then "approved", and status shows how many remain', async () => {
    const workflowId = uniqueId('test-quorum-cli');
    await probe(workflowId, async (h, taskQueue) => {
      await waitForGate(h, 'failover');
      const cli = (args: string[], user: string) => lifeboat(args, { LIFEBOAT_TASK_QUEUE: taskQueue, LIFEBOAT_USER: user });
      const first = await cli(['approve', workflowId, '--gate', 'failover', '--reason', 'region down'], 'alice@example.com');
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout.trim(), 'failover gate: approval 1 of 2 recorded; waiting for one more (approved by alice@example.com)');
      const shown = await cli(['status', workflowId], 'alice@example.com');
      assert.match(shown.stdout, /waiting for failover approval since .* \(2 different people among incident-commander; /);
      assert.match(shown.stdout, /\n {2}approvals: 1 of 2, 1 more needed \(alice@example\.com at [^)]+\)\n/);
      const again = await cli(['approve', workflowId, '--gate', 'failover', '--reason', 'region down'], 'alice@example.com');
      assert.equal(again.code, 2);
      assert.match(again.stderr, /approve refused: alice@example\.com has already approved the failover gate, which needs 2 different people: 1 more must come from someone else/);
      const second = await cli(['approve', workflowId, '--gate', 'failover', '--reason', 'confirmed'], 'bob@example.com');
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout.trim(), /^failover gate approved by bob@example\.com at \S+: confirmed$/);
    });
  });

  it('expires with the approvals it got on record when the second person never comes', async () => {
    const workflowId = uniqueId('test-quorum-expired');
    const { decision, status } = await probe(
      workflowId,
      async (h) => {
        await waitForGate(h, 'failover');
        await approve(h, 'bob@example.com');
      },
      { timings: { remindAfterMs: 1500, abortAfterMs: 4000 } },
    );
    assert.equal(decision.decision, 'expired');
    assert.equal(decision.by, 'lifeboat');
    assert.equal(decision.reason, '1 of 2 approvals within 4 s');
    assert.deepEqual(decision.approvals?.map((a) => a.by), ['bob@example.com']);
    assert.equal(status.phase, 'expired');
    assert.deepEqual(await catalogRecord(workflowId), { decisions: [['expired', 'lifeboat']], approvals: [['approval 1 of 2', 'bob@example.com']] });
  });

  it('a production request from someone outside people (a run started past the CLI) cannot be approved, only rejected', async () => {
    const workflowId = uniqueId('test-quorum-unknown-requester');
    let refusal = '';
    const { decision } = await probe(
      workflowId,
      async (h) => {
        await waitForGate(h, 'failover');
        refusal = await refusalOf(approve(h, 'erin@example.com'));
        await rejectSigned(h, { by: 'alice@example.com', reason: 'nobody we know asked for this', gate: 'failover' });
      },
      { requestedBy: ' Mallory@Example.com' },
    );
    assert.equal(refusal, "mallory@example.com requested this, and is not in the config's people: in production only a known person's request can be approved, so reject it and ask them to request it again as themselves");
    assert.equal(decision.decision, 'rejected');
  });

  it('a one-person gate is unchanged: the first allowed approval decides it', async () => {
    const workflowId = uniqueId('test-quorum-single');
    const { decision, status } = await probe(
      workflowId,
      async (h) => {
        const pending = await waitForGate(h, 'cutover');
        assert.equal(pending.pendingGate?.required, undefined);
        const answer = await approveSigned(h, { by: 'alice@example.com', reason: 'move traffic', gate: 'cutover' });
        assert.equal(answer.approvals, undefined);
      },
      { gate: 'cutover' },
    );
    assert.equal(decision.decision, 'approved');
    assert.equal(decision.approvals, undefined);
    assert.equal(status.phase, 'approved');
    assert.deepEqual(await catalogRecord(workflowId), { decisions: [['approved', 'alice@example.com']], approvals: [] });
  });
});

async function waitUntil(done: () => Promise<boolean>, what: string, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
