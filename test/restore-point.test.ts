/**
 * Named restore points, end to end on the real stack: made through the `lifeboat` CLI (a child
 * process, served by an in-process worker on this test's own task queue), recorded with their
 * LSN, unique per target, and restorable exactly; a name lifeboat never made is refused before
 * the approval gate, with nothing created.
 */
import assert from 'node:assert/strict';
import { MockActivityEnvironment, TestWorkflowEnvironment } from '@temporalio/testing';
import { restorePointActivities } from '../src/activities/restore-points';
import { LifeboatError } from '../src/domain/errors';
import { createPorts, Ports } from '../src/activities/ports';
import { destinationFor } from '../src/activities/restore';
import { loadConfig } from '../src/config';
import { PitrRestoreInput } from '../src/domain/restore';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { assertNothingCreated, onInstance, onPrimary, recordHistory, refusal, removeAsItsOwner, runPitrRestore, uniqueId, waitForGate } from './helpers/pitr';
import { CONFIG_FILE, lifeboat as runLifeboat } from './helpers/cli';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';
import { approveSigned } from './helpers/signing';


describe('named restore points (lifeboat restore-point, real stack)', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let engine: PgBackRestEngine;
  const config = loadConfig(CONFIG_FILE);
  const taskQueue = uniqueTaskQueue('restore-point');
  const table = `lbrp_${uniqueId('t').slice(2).replace(/-/g, '_')}`;
  const made = new Set<string>();

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
    await onPrimary(stack, (c) => c.query(`DROP TABLE IF EXISTS ${table}`)).catch(() => undefined);
    await ports?.close();
  });

  const lifeboat = (args: string[]) => runLifeboat(args, { LIFEBOAT_TASK_QUEUE: taskQueue });

  const input = (restorePoint: string): PitrRestoreInput => ({
    target: 'app',
    restorePoint,
    reason: 'test: named restore point',
    requestedBy: 'alice@example.com',
    mode: 'standard',
    timings: { remindAfterMs: 60000, abortAfterMs: 120000, pollIntervalMs: 250 },
  });

  it('is made through the CLI with its LSN on record, is unique per target, and a restore to it brings back exactly what was there', async () => {
    const name = `before migration ${uniqueId('m').slice(2)}`;
    await onPrimary(stack, (c) => c.query(`CREATE TABLE ${table} AS SELECT g AS id FROM generate_series(1, 10) g`));
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    await worker.runUntil(async () => {
      const first = await lifeboat(['restore-point', 'app', name, '--reason', 'schema migration 42 next', '--as', 'Alice@Example.com']);
      assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
      const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      assert.match(first.stdout, new RegExp(`^restore point "${escaped}" is at LSN [0-9A-F]+/[0-9A-F]+ on app and archived: restore to it with --to name:${escaped}\\.$`, 'm'));
      const [{ workflow_id: madeBy, ...row }] = await ports.catalog.query<{ lsn: string; state: string; created_by: string; reason: string; workflow_id: string }>(
        'SELECT lsn, state, created_by, reason, workflow_id FROM restore_points WHERE target = $1 AND name = $2',
        ['app', name],
      );
      assert.deepEqual({ ...row, lsn: /^[0-9A-F]+\/[0-9A-F]+$/.test(row.lsn) }, { lsn: true, state: 'created', created_by: 'alice@example.com', reason: 'schema migration 42 next' });
      await recordHistory(env.client.workflow.getHandle(madeBy), 'createRestorePoint-v1-made');
      assert.ok(first.stdout.includes(row.lsn), 'the CLI prints the LSN on record');

      // Written after the point: a restore to the point must not have these.
      await onPrimary(stack, (c) => c.query(`INSERT INTO ${table} SELECT g FROM generate_series(11, 20) g`));
      await localPgBackRest(stack.ctx).check();

      const again = await lifeboat(['restore-point', 'app', name, '--reason', 'again', '--as', 'bob@example.com']);
      assert.equal(again.code, 2, `${again.stdout}\n${again.stderr}`);
      assert.match(again.stderr, new RegExp(`^lifeboat: restore point refused: app already has a restore point named "${escaped}" \\(LSN ${row.lsn}, made \\S+ by alice@example\\.com\\); names are unique per target, so a restore to it is never ambiguous: choose another name\\.$`, 'm'));
    });

    const workflowId = uniqueId('test-rp-restore');
    made.add(destinationFor(workflowId));
    const run = await runPitrRestore({
      env,
      config,
      ports,
      queuePrefix: 'restore-point-restore',
      workflowId,
      input: input(`name:${name}`),
      drive: async (h) => {
        const gate = await waitForGate(h, 'restore');
        assert.equal(gate.pendingGate?.prompt.facts.find((f) => f.label === 'restore point')?.value, `name:${name}`);
        await approveSigned(h, { by: 'bob@example.com', reason: 'go', gate: 'restore' });
      },
    });
    assert.equal(run.error, undefined, String(run.error));
    assert.equal(run.result?.outcome, 'restored');
    const restored = await engine.describeInstance(destinationFor(workflowId));
    const ids = await onInstance(stack, restored?.endpoint, async (c) => (await c.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id));
    assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'the rows at the point, none written after it');
  });

  it('refuses before approval a name lifeboat has no record of, saying how to restore instead, and creates nothing', async () => {
    const workflowId = uniqueId('test-rp-unknown');
    const { error } = await runPitrRestore({ env, config, ports, queuePrefix: 'restore-point-unknown', workflowId, input: input('name:made in psql') });
    const failure = refusal(error);
    assert.equal(failure.type, 'UNKNOWN_RESTORE_POINT');
    assert.equal(
      failure.message,
      'lifeboat has no record of a restore point named "made in psql" for app, so it cannot check that point before approval: restore points made with `lifeboat restore-point app <name>` are recorded with their LSN; for one made in SQL, restore to the LSN pg_create_restore_point returned (--to lsn:<lsn>).',
    );
    const target = config.targets.databases.find((d) => d.name === 'app');
    await assertNothingCreated(engine, target && target.engine === 'pgbackrest' ? target.restoresDir : '', workflowId);
  });

  it('never makes a name twice: a retry after an attempt died between making the point and recording it sets the name aside', async () => {
    const name = `interrupted ${uniqueId('i').slice(2)}`;
    const run = { workflowId: uniqueId('test-rp-interrupted'), runId: '0193a6f2-0000-7d4b-9a2f-5e8c1b3d4f60' };
    // What the crashed attempt left: the name claimed and its making begun, no LSN recorded.
    await ports.catalog.query(
      "INSERT INTO restore_points (target, name, state, created_by, reason, workflow_id, run_id, attempted_at) VALUES ('app', $1, 'creating', 'alice@example.com', 'test', $2, $3, now())",
      [name, run.workflowId, run.runId],
    );
    const activity = new MockActivityEnvironment({ workflowExecution: run });
    await assert.rejects(
      activity.run(restorePointActivities(ports).createRestorePoint, { target: 'app', name, reason: 'test', requestedBy: 'alice@example.com' }),
      (err: unknown) => {
        assert.ok(err instanceof LifeboatError, String(err));
        assert.equal(err.code, 'RESTORE_POINT_UNCERTAIN');
        assert.ok(err.nonRetryable);
        assert.match(err.message, /may exist without lifeboat knowing where; .* make the point again under another name\.$/);
        return true;
      },
    );
    const [row] = await ports.catalog.query<{ state: string; lsn: string | null }>('SELECT state, lsn FROM restore_points WHERE target = $1 AND name = $2', ['app', name]);
    assert.deepEqual(row, { state: 'uncertain', lsn: null });
    // And a restore to the name is refused before approval.
    const workflowId = uniqueId('test-rp-uncertain');
    const { error } = await runPitrRestore({ env, config, ports, queuePrefix: 'restore-point-uncertain', workflowId, input: input(`name:${name}`) });
    assert.equal(refusal(error).type, 'UNKNOWN_RESTORE_POINT');
  });

  it('refuses a malformed or too long name and a missing reason in one sentence, exit 2, before connecting', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['restore-point', 'app', 'drop;table', '--reason', 'r', '--as', 'a@b.c'], /^lifeboat: "drop;table" is not a restore point name pg_create_restore_point could have made: letters, digits, spaces and _\.:@\+-, at most 63 characters\.\n$/],
      [['restore-point', 'app', 'x'.repeat(64), '--reason', 'r', '--as', 'a@b.c'], /is not a restore point name .* at most 63 characters\.\n$/],
      [['restore-point', 'app', 'ok-name', '--as', 'a@b.c'], /^lifeboat: a restore point needs --reason, for the record\.\n$/],
    ];
    for (const [args, sentence] of cases) {
      const r = await lifeboat([...args, '--config', CONFIG_FILE]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, sentence);
      assert.equal(r.stdout, '');
    }
  });
});
