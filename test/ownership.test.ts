/**
 * lifeboat touches only what it made, on the real stack through a real worker: two workflows
 * asking for the same destination, a reused workflow id, an instance that appears under a run's
 * name after its validation (the race two requests for one name run), and `latest` resolved when
 * the restore runs rather than before the gate. Every refusal names the owner; nothing another
 * run made is adopted or removed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { destinationFor } from '../src/activities/restore';
import { loadConfig } from '../src/config';
import { InstanceDescription, ResourceOwner } from '../src/domain/ports';
import { PitrRestoreInput, PitrRestoreReport } from '../src/domain/restore';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { waitUntil } from '../src/platform/processes';
import { Stack } from '../src/stack/stack';
import { onInstance, onPrimary, recordHistory, refusal, removeAsItsOwner, runPitrRestore, uniqueId, waitForGate, WAIT_MS } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { useTemporal } from './helpers/temporal';
import { approveSigned } from './helpers/signing';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');
const TIMINGS = { remindAfterMs: 60000, abortAfterMs: 120000, pollIntervalMs: 250 };

describe('ownership: lifeboat touches only what its own run made (real worker, real stack)', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let engine: PgBackRestEngine;
  const config = loadConfig(CONFIG_FILE);
  const made = new Set<string>();
  let table: string | undefined;

  before(async function () {
    this.timeout(600000);
    stack = await useStack();
    env = await useTemporal();
    ports = createPorts(config, { log: () => undefined });
    engine = ports.database('app') as PgBackRestEngine;
  });

  after(async function () {
    this.timeout(300000);
    for (const id of made) await removeAsItsOwner(engine, id).catch((err: unknown) => console.error(`cleanup of ${id}: ${String(err)}`));
    if (table) await onPrimary(stack, (c) => c.query(`DROP TABLE IF EXISTS ${table}`)).catch(() => undefined);
    await ports?.close();
  });

  function input(overrides: Partial<PitrRestoreInput> = {}): PitrRestoreInput {
    return { target: 'app', restorePoint: 'latest', reason: 'test: ownership', requestedBy: 'alice@example.com', mode: 'standard', timings: TIMINGS, ...overrides };
  }

  /** Runs one pitrRestore on its own task queue; `drive` talks to it while an in-process worker serves it. */
  const runRestore = (workflowId: string, restoreInput: PitrRestoreInput, drive?: (h: WorkflowHandle) => Promise<void>) =>
    runPitrRestore({ env, config, ports, queuePrefix: 'ownership', workflowId, input: restoreInput, drive });

  const approve = async (h: WorkflowHandle) => {
    await waitForGate(h, 'restore');
    await approveSigned(h, { by: 'bob@example.com', reason: 'go', gate: 'restore' });
  };


  async function restoreRow(workflowId: string): Promise<PitrRestoreReport | undefined> {
    const rows = await ports.catalog.query<{ report: PitrRestoreReport }>('SELECT report FROM restores WHERE workflow_id = $1', [workflowId]);
    return rows[0]?.report;
  }

  /** What must stay exactly as it was: the record, the running postmaster, the data. */
  async function fingerprint(d: InstanceDescription): Promise<string> {
    const record = fs.readFileSync(engine.restoreFiles(d.instanceId).record, 'utf8');
    const started = await onInstance(stack, d.endpoint, async (c) => (await c.query<{ t: string }>('SELECT pg_postmaster_start_time()::text AS t')).rows[0].t);
    return `${record}@${started}`;
  }

  it('a second workflow asking for the same --destination is refused, naming the owner, and the first one\'s instance stays as it is; `latest` is resolved when the restore runs', async () => {
    table = `lbown_${uniqueId('t').slice(2)}`;
    const destination = uniqueId('lbown-shared');
    made.add(destination);
    // Rows written while the first request waits at its gate: `latest` resolved at validation would miss them.
    const first = uniqueId('test-own-first');
    let latestAtValidation = '';
    const one = await runRestore(first, input({ destination }), async (h) => {
      const gate = await waitForGate(h, 'restore');
      latestAtValidation = /now (\S+)\)$/.exec(gate.pendingGate!.prompt.facts.find((f) => f.label === 'restore point')!.value)?.[1] ?? '';
      assert.ok(latestAtValidation, JSON.stringify(gate.pendingGate?.prompt.facts));
      await onPrimary(stack, (c) => c.query(`CREATE TABLE ${table} AS SELECT g AS id FROM generate_series(1, 42) g`));
      await localPgBackRest(stack.ctx).check();
      await approve(h);
    });
    assert.equal(one.error, undefined, String(one.error));
    assert.equal(one.result?.outcome, 'restored');
    assert.ok(one.result!.restorePoint > latestAtValidation, `${one.result!.restorePoint} after ${latestAtValidation}`);
    assert.equal(one.result?.rpo?.restorePoint, one.result?.restorePoint);
    assert.equal(one.result?.rpo?.seconds, 0);
    const restored = await engine.describeInstance(destination);
    assert.ok(restored);
    assert.equal(await onInstance(stack, restored.endpoint, async (c) => (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n), 42);
    assert.deepEqual({ ...restored.owner, createdAt: undefined }, { workflowId: first, runId: one.runId, restorePoint: 'latest', createdAt: undefined });
    const before = await fingerprint(restored);

    const second = uniqueId('test-own-second');
    const two = await runRestore(second, input({ destination }));
    const failure = refusal(two.error);
    assert.equal(failure.type, 'DESTINATION_EXISTS');
    assert.equal(
      failure.message,
      `an instance named "${destination}" already exists, made by workflow ${first} (run ${one.runId}, restore point latest, created ${restored.owner!.createdAt}); a restore goes into a NEW instance and never reuses one: choose another --destination.`,
    );
    assert.equal(await fingerprint((await engine.describeInstance(destination))!), before);
    assert.equal((await engine.describeInstance(destination))?.status, 'available');
    await recordHistory(one.handle, 'pitrRestore-v2-latest-resolved-at-restore');
  });

  it('a reused --id whose earlier run left an instance: the new run is refused and the old instance stays', async () => {
    const workflowId = uniqueId('test-own-reused');
    const destination = destinationFor(workflowId);
    made.add(destination);
    const earlier = await runRestore(workflowId, input(), approve);
    assert.equal(earlier.result?.outcome, 'restored', String(earlier.error));
    const kept = (await engine.describeInstance(destination))!;
    const before = await fingerprint(kept);

    const again = await runRestore(workflowId, input());
    assert.notEqual(again.runId, earlier.runId);
    const failure = refusal(again.error);
    assert.equal(failure.type, 'DESTINATION_EXISTS');
    assert.match(failure.message, new RegExp(`made by workflow ${workflowId} \\(run ${earlier.runId}, .*choose another --destination or another --id\\.$`));
    assert.equal(await fingerprint((await engine.describeInstance(destination))!), before);
  });

  it('an instance that appears under the name after validation (another run\'s) is neither adopted nor removed by the failing run\'s compensation', async () => {
    const workflowId = uniqueId('test-own-race');
    const destination = destinationFor(workflowId);
    made.add(destination);
    const otherRun: ResourceOwner = { workflowId, runId: 'an-earlier-run-of-this-id', restorePoint: 'latest', createdAt: new Date().toISOString() };
    let theirs: InstanceDescription | undefined;
    let before = '';
    const run = await runRestore(workflowId, input(), async (h) => {
      await waitForGate(h, 'restore');
      // Validation found the name free; now another run of the same id makes it (the race two requests for one name run).
      await engine.startRestore({ destinationId: destination, point: { kind: 'latest' }, owner: otherRun });
      await waitUntil('the other run\'s instance', async () => (await engine.describeInstance(destination))?.status === 'available' || 'restoring', { timeoutMs: WAIT_MS, intervalMs: 250 });
      theirs = await engine.describeInstance(destination);
      before = await fingerprint(theirs!);
      await approve(h);
    });
    const failure = refusal(run.error);
    assert.equal(failure.type, 'INSTANCE_OWNED_ELSEWHERE');
    assert.match(failure.message, new RegExp(`^Instance ${destination} already exists and belongs to workflow ${workflowId} \\(run an-earlier-run-of-this-id, restore point latest, created .*\\), not to this workflow run; lifeboat will neither adopt nor delete it: choose another destination name\\.$`));
    const report = await restoreRow(workflowId);
    assert.equal(report?.outcome, 'failed');
    assert.equal(report?.cleanup.length, 1);
    assert.match(report!.cleanup[0], new RegExp(`^left ${destination} untouched \\(Refusing to delete ${destination}: it belongs to workflow ${workflowId} \\(run an-earlier-run-of-this-id, .*not to workflow ${workflowId} run ${run.runId}; remove it by hand if it really is unwanted\\)$`));
    assert.equal(await fingerprint((await engine.describeInstance(destination))!), before);
    assert.equal((await engine.describeInstance(destination))?.owner?.runId, otherRun.runId);
    await recordHistory(run.handle, 'pitrRestore-v2-foreign-instance-left-untouched');
  });

  it('refuses an invalid --destination at validation, before anything exists', async () => {
    for (const destination of ['../../etc', 'x;touch /tmp/p']) {
      const workflowId = uniqueId('test-own-invalid');
      const { error } = await runRestore(workflowId, input({ destination }));
      const failure = refusal(error);
      assert.equal(failure.type, 'INVALID_DESTINATION');
      assert.equal(
        failure.message,
        `the destination ${JSON.stringify(destination)} is not a valid instance name: use lowercase letters, digits and single hyphens, starting with a letter, not ending with a hyphen, at most 63 characters (valid for RDS and local instances alike).`,
      );
      assert.deepEqual(fs.readdirSync(engine.restoresDir).filter((f) => f.includes('etc') || f.includes('touch')), []);
    }
  });
});
