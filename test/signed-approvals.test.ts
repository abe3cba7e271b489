/**
 * Signed approvals end to end on the real stack (Temporal, catalog, MinIO's write-once evidence
 * buckets), through the test-only one-gate workflow (test/workflows/quorum-gate.ts) in the
 * example config's production environment: unsigned and forged decisions are refused and kept on
 * record, a signed `lifeboat approve` opens the gate, the decision and its signature land in the
 * evidence bucket, and `lifeboat audit verify` passes on it, then fails once the record is tampered with.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { DECISION_EVIDENCE_EVENT_KIND } from '../src/activities/approvals';
import { createPorts, Ports } from '../src/activities/ports';
import { gatePolicy, LifeboatConfig, loadConfig } from '../src/config';
import { Decision, WorkflowStatus } from '../src/domain/approval';
import { canonicalJson, DecisionEvidence, factsDigest } from '../src/domain/signed-decision';
import { createLifeboatWorker } from '../src/worker';
import { approveSignal, statusQuery } from '../src/workflows/messages';
import { lifeboat } from './helpers/cli';
import { uniqueId, waitForGate, waitForStatus } from './helpers/pitr';
import { approveSigned, privateTestKey } from './helpers/signing';
import { sshKeygen, startSshAgent } from './helpers/ssh-agent';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, gateProbeBundle } from './helpers/temporal';
import type { GateProbeInput } from './workflows/quorum-gate';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');

describe('signed approvals (real Temporal, catalog and evidence buckets)', function () {
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

  async function refusalOf(promise: Promise<unknown>): Promise<string> {
    const error = await promise.then(() => undefined, (err: unknown) => err);
    assert.ok(error instanceof WorkflowUpdateFailedError, `expected a refused update, got ${String(error)}`);
    return String(error.cause?.message);
  }

  it('refuses unsigned and forged decisions on record, opens on a signed CLI approval, and audit verify checks it (and catches tampering)', async () => {
    const workflowId = uniqueId('test-signed-approval');
    const taskQueue = uniqueTaskQueue('signed');
    const input: GateProbeInput = { environment: 'production', gate: 'restore', requestedBy: 'alice@example.com', timings: { remindAfterMs: 60000, abortAfterMs: 120000 } };
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: bundle });
    const handle: WorkflowHandle = await env.client.workflow.start('gateProbe', { taskQueue, workflowId, args: [input] });
    const { decision, status } = await worker.runUntil(async () => {
      try {
        await waitForGate(handle, 'restore');
        // The Web UI's signal: unsigned, from someone who holds the role. Refused, and on record.
        await handle.signal(approveSignal, { by: 'carol@example.com', reason: 'from the Web UI' });
        const refused = await waitForStatus(handle, 'the unsigned signal on record', (s) => s.refused.length === 1);
        assert.equal(refused.refused[0].reason, 'unsigned decisions are refused in production: sign it with your Ed25519 key (lifeboat approve --key <file>)');
        // Forgeries through the update: someone else's key, an expired signature, `lifeboat approve` without a key.
        assert.match(await refusalOf(approveSigned(handle, { by: 'carol@example.com', reason: 'go' }, { keyOf: 'mallory@example.com' })), /signed with a key that is not carol@example\.com's/);
        assert.match(await refusalOf(approveSigned(handle, { by: 'carol@example.com', reason: 'go' }, { now: new Date(Date.now() - 3600000), lifetimeMs: 60000 })), /^the signature expired at /);
        const unsigned = await lifeboat(['approve', workflowId, '--reason', 'go', '--as', 'carol@example.com'], { LIFEBOAT_SIGNING_KEY: '' });
        assert.equal(unsigned.code, 2, unsigned.stderr);
        assert.match(unsigned.stderr, /approve refused: unsigned decisions are refused in production/);
        // The signed CLI approval opens the gate.
        const approved = await lifeboat(['approve', workflowId, '--reason', 'data owner agrees', '--as', 'carol@example.com']);
        assert.equal(approved.code, 0, approved.stderr);
        assert.match(approved.stdout, /^restore gate approved by carol@example\.com at \S+: data owner agrees$/m);
        const d = (await handle.result()) as Decision;
        return { decision: d, status: (await handle.query(statusQuery)) as WorkflowStatus };
      } catch (error) {
        await handle.terminate('test failed').catch(() => undefined);
        throw error;
      }
    });
    assert.equal(decision.decision, 'approved');
    assert.equal(decision.signed?.statement.by, 'carol@example.com');
    assert.equal(status.refused.length, 1);

    // In the evidence bucket, pointed at by the catalog.
    const [row] = await ports.catalog.query<{ details: { key: string; sha256: string; copies: Array<{ region: string; bucket: string; versionId: string; retainUntil: string }> } }>(
      `SELECT details FROM workflow_events WHERE workflow_id = $1 AND kind = $2`,
      [workflowId, DECISION_EVIDENCE_EVENT_KIND],
    );
    assert.ok(row, 'the decision evidence is on record in the catalog');
    assert.equal(row.details.copies.length, 2, 'both regions hold a copy');

    const audit = await lifeboat(['audit', 'verify', workflowId]);
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
    assert.match(audit.stdout, /ok {4}approved by carol@example\.com at \S+, signed: signature verifies with carol@example\.com's key/);
    assert.match(audit.stdout, /facts \(SHA-256 [0-9a-f]{64}\): changes: nothing: a test/);
    assert.match(audit.stdout, /1 refused decision on record while the gate was open/);
    assert.match(audit.stdout, /^ok {4}history: the 1 decision the workflow's history accepted is the evidence's, no more and no fewer$/m);

    // Tampering: someone with write access to the bucket and the catalog stores a record with other
    // facts as a new version and points the catalog at it. The hashes agree; the signature does not.
    const s3 = ports.objectStore(config.evidence.store);
    const original = await s3.send(new GetObjectCommand({ Bucket: config.evidence.bucket, Key: row.details.key }));
    const evidence = JSON.parse(Buffer.from(await original.Body!.transformToByteArray()).toString('utf8')) as DecisionEvidence;
    evidence.prompt.facts[0].value = 'everything: the source is overwritten';
    evidence.factsSha256 = factsDigest(evidence.gate, evidence.prompt);
    const body = Buffer.from(canonicalJson(evidence));
    const sha256 = createHash('sha256').update(body).digest('hex');
    const put = await s3.send(new PutObjectCommand({ Bucket: config.evidence.bucket, Key: row.details.key, Body: body, Metadata: { 'lifeboat-sha256': sha256 } }));
    const primary = row.details.copies.find((c) => c.bucket === config.evidence.bucket)!;
    await ports.catalog.query(`UPDATE workflow_events SET details = $3::jsonb WHERE workflow_id = $1 AND kind = $2`, [
      workflowId,
      DECISION_EVIDENCE_EVENT_KIND,
      JSON.stringify({ ...row.details, sha256, bytes: body.length, copies: [{ ...primary, versionId: put.VersionId }] }),
    ]);
    const tampered = await lifeboat(['audit', 'verify', workflowId]);
    assert.equal(tampered.code, 1, tampered.stdout + tampered.stderr);
    assert.match(tampered.stdout, /FAIL {2}approved by carol@example\.com .*signed against other facts than the gate showed/);
    assert.match(tampered.stdout, /AUDIT FAILED/);
  });

  it('signs through a real ssh-agent (--key ssh-agent): refused with nothing sent while the agent lacks the key, accepted once it holds it; audit verify holds the evidence against the history', async () => {
    const workflowId = uniqueId('test-agent-approval');
    const taskQueue = uniqueTaskQueue('agent');
    const input: GateProbeInput = { environment: 'production', gate: 'restore', requestedBy: 'carol@example.com', timings: { remindAfterMs: 60000, abortAfterMs: 120000 } };
    const agent = await startSshAgent();
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: bundle });
    const handle: WorkflowHandle = await env.client.workflow.start('gateProbe', { taskQueue, workflowId, args: [input] });
    try {
      const decision = await worker.runUntil(async () => {
        try {
          await waitForGate(handle, 'restore');
          const approve = (as: string) => lifeboat(['approve', workflowId, '--reason', 'backup owner agrees', '--as', as, '--key', 'ssh-agent'], { SSH_AUTH_SOCK: agent.socket });
          const notAlices = sshKeygen('ed25519', 'not-alice@example.com');
          agent.add(notAlices.file);
          notAlices.remove(); // the agent holds its own copy
          const lacking = await approve('alice@example.com');
          assert.equal(lacking.code, 2, lacking.stderr);
          assert.match(lacking.stderr, /^lifeboat: the ssh-agent holds none of alice@example\.com's key/);
          const untouched = (await handle.query(statusQuery)) as WorkflowStatus;
          assert.equal(untouched.pendingGate?.gate, 'restore', 'the gate is still open');
          assert.deepEqual(untouched.refused, [], 'nothing reached the workflow');
          agent.add(privateTestKey('alice.key'));
          const approved = await approve('Alice@Example.com');
          assert.equal(approved.code, 0, approved.stderr);
          assert.match(approved.stdout, /^restore gate approved by alice@example\.com at \S+: backup owner agrees$/m);
          return (await handle.result()) as Decision;
        } catch (error) {
          await handle.terminate('test failed').catch(() => undefined);
          throw error;
        }
      });
      assert.equal(decision.signed?.publicKey, gatePolicy(config, 'production', 'restore', 'carol@example.com').signing!.keys['alice@example.com']);
    } finally {
      await agent.stop();
    }

    const audit = await lifeboat(['audit', 'verify', workflowId]);
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
    assert.match(audit.stdout, /ok {4}approved by alice@example\.com at \S+, signed: signature verifies with alice@example\.com's key/);
    assert.match(audit.stdout, /^ok {4}history: the 1 decision the workflow's history accepted is the evidence's, no more and no fewer$/m);

    // The catalog forgets the decision (the bucket cannot: it is write-once): the history still has it.
    await ports.catalog.query(`DELETE FROM workflow_events WHERE workflow_id = $1 AND kind = $2`, [workflowId, DECISION_EVIDENCE_EVENT_KIND]);
    const hidden = await lifeboat(['audit', 'verify', workflowId]);
    assert.equal(hidden.code, 1, hidden.stdout + hidden.stderr);
    assert.match(hidden.stdout, /in the evidence bucket but not on record in the catalog/);
    assert.match(hidden.stdout, /^FAIL {2}history: the history accepted the approval of the restore gate by alice@example\.com at \S+ \(run [0-9a-f-]+\), but no evidence record holds it$/m);
    assert.match(hidden.stdout, /AUDIT FAILED/);
  });
});
