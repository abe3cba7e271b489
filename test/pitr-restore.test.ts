/**
 * pitrRestore on the real stack through a real worker: the accident undone to a point in time in
 * a NEW pgBackRest instance, the gates' refusals, a worker killed mid-restore, and cancellation.
 * Gate timings and the poll interval come from the input, so nothing waits for minutes;
 * nothing asserts on how long anything took.
 */
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { WorkflowFailedError, WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { destinationFor } from '../src/activities/restore';
import { loadConfig } from '../src/config';
import { approveSignal, rejectSignal } from '../src/workflows/messages';
import { PitrRestoreInput, PitrRestoreReport } from '../src/domain/restore';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { delay } from '../src/platform/processes';
import { Stack } from '../src/stack/stack';
import {
  Accident,
  assertNothingCreated,
  dropAccidentTables,
  leftovers,
  onInstance,
  onPrimary,
  recordHistory,
  removeAsItsOwner,
  RestoreRun,
  runPitrRestore,
  snapshotTables,
  stageAccident,
  uniqueId,
  waitForGate,
  waitForStatus,
  WAIT_MS,
  refusal,
} from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal } from './helpers/temporal';
import { startWorkerProcess, stopWorkerProcess } from './helpers/worker-process';
import { approveSigned, rejectSigned, signedInput } from './helpers/signing';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CAROL = 'carol@example.com';
const MALLORY = 'mallory@example.com';
/** Short gates and polls for tests: nothing here waits for the config's 15 minutes. */
const TIMINGS = { remindAfterMs: 60000, abortAfterMs: 120000, pollIntervalMs: 250 };

/** Rows of the restores table of the catalog for one workflow. */
interface RestoreRow {
  outcome: string;
  restore_point: string;
  destination: string | null;
  requested_by: string;
  report: PitrRestoreReport;
}

describe('pitrRestore workflow (real worker, real stack)', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let engine: PgBackRestEngine;
  const notices: string[] = [];
  const config = loadConfig(CONFIG_FILE);
  const target = config.targets.databases.find((d) => d.name === 'app');
  const restoresDir = target && target.engine === 'pgbackrest' ? target.restoresDir : '';
  /** Instances a test made; removed at the end whatever happened. */
  const made = new Set<string>();

  before(async function () {
    this.timeout(600000);
    stack = await useStack();
    env = await useTemporal();
    ports = createPorts(config, { log: (line) => notices.push(line) });
    engine = ports.database('app') as PgBackRestEngine;
  });

  after(async function () {
    this.timeout(300000);
    for (const id of made) await removeAsItsOwner(engine, id).catch((err: unknown) => console.error(`cleanup of ${id}: ${String(err)}`));
    await ports?.close();
  });

  function input(overrides: Partial<PitrRestoreInput> = {}): PitrRestoreInput {
    return {
      target: 'app',
      restorePoint: 'latest',
      reason: 'test: undo the accident',
      requestedBy: ALICE,
      mode: 'standard',
      timings: TIMINGS,
      ...overrides,
    };
  }

  /** Starts pitrRestore and runs an in-process worker while `drive` talks to it; returns the result or the failure. */
  function runRestore(workflowId: string, restoreInput: PitrRestoreInput, drive?: (handle: WorkflowHandle) => Promise<void>): Promise<RestoreRun> {
    made.add(destinationFor(workflowId));
    return runPitrRestore({ env, config, ports, queuePrefix: 'pitr', workflowId, input: restoreInput, drive });
  }

  async function catalogRow(workflowId: string): Promise<RestoreRow | undefined> {
    const rows = await ports.catalog.query<RestoreRow>('SELECT outcome, restore_point, destination, requested_by, report FROM restores WHERE workflow_id = $1', [workflowId]);
    return rows[0];
  }

  async function approvalsOf(workflowId: string): Promise<Array<{ gate: string; decision: string; decided_by: string; reason: string }>> {
    return ports.catalog.query('SELECT gate, decision, decided_by, reason FROM approvals WHERE workflow_id = $1 ORDER BY decided_at', [workflowId]);
  }


  describe('the accident, undone', () => {
    let accident: Accident | undefined;
    after(async () => dropAccidentTables(stack, accident));

    it('restores exactly the data at T into a new instance, leaves the source as it is, reports RPO and RTO and records it', async () => {
      accident = await stageAccident(stack, 'lbpitr');
      const a = accident;
      assert.equal(a.atT[a.dropped]?.length, 5);
      assert.equal(a.after[a.dropped], undefined);
      const workflowId = uniqueId('test-pitr-accident');
      const { handle, result, error, status } = await runRestore(workflowId, input({ restorePoint: a.pointT, reason: 'rows deleted and a table dropped by accident', incidentId: 'INC-4' }), async (h) => {
        const waiting = await waitForGate(h, 'restore');
        assert.equal(waiting.phase, 'awaiting-approval');
        assert.deepEqual(waiting.pendingGate?.allowedRoles, ['backup-owner', 'data-owner']);
        const facts = Object.fromEntries(waiting.pendingGate!.prompt.facts.map((f) => [f.label, f.value]));
        assert.match(facts['restore point'], new RegExp(`^${a.pointT.replace(/[.]/g, '\\.')}`));
        assert.match(facts.destination, new RegExp(destinationFor(workflowId)));
        const decision = await approveSigned(h, { by: BOB, reason: 'data owner: restore it', gate: 'restore' });
        assert.equal(decision.decision, 'approved');
        assert.equal(decision.by, BOB);
      });
      assert.equal(error, undefined, `the restore failed: ${String(error)}`);
      assert.ok(result);
      assert.equal(result.outcome, 'restored');
      assert.equal(result.restorePoint, a.pointT);
      assert.equal(result.destination?.instanceId, destinationFor(workflowId));
      assert.ok(result.verification?.ok, JSON.stringify(result.verification?.checks));

      // The restored instance holds exactly what the tables held at T: the deleted rows and the dropped table are back, nothing written after T is there.
      const restored = await onInstance(stack, result.destination?.endpoint, (c) => snapshotTables(c, [a.kept, a.dropped]));
      assert.deepEqual(restored, a.atT);
      assert.ok(!restored[a.kept]!.some((l) => l.startsWith('after-')));
      // The source is untouched: it still has the later state.
      assert.deepEqual(await onPrimary(stack, (c) => snapshotTables(c, [a.kept, a.dropped])), a.after);
      assert.notEqual(result.destination?.endpoint?.port, stack.ctx.settings.postgres.primaryPort);

      // The report measures RTO (request to verified, per phase) and RPO (restore point to the latest recoverable).
      assert.ok(result.rto);
      assert.equal(result.rto.targetSeconds, 3600);
      assert.deepEqual(Object.keys(result.rto.phases).sort(), ['cutover', 'restore', 'validation', 'verification', 'waitingForApproval', 'walReplay']);
      assert.ok(Object.values(result.rto.phases).every((s) => Number.isInteger(s) && s >= 0));
      const { cutover: _cutover, ...measured } = result.rto.phases;
      assert.ok(result.rto.seconds >= Object.values(measured).reduce((x, y) => x + y, 0) - Object.keys(measured).length, JSON.stringify(result.rto));
      assert.equal(result.rto.withinTarget, result.rto.seconds <= 3600);
      assert.ok(result.rpo);
      assert.equal(result.rpo.restorePoint, a.pointT);
      assert.ok(result.rpo.latestRecoverable > a.pointT);
      assert.equal(result.rpo.seconds, Math.round((Date.parse(result.rpo.latestRecoverable) - Date.parse(a.pointT)) / 1000));
      assert.deepEqual(
        result.decisions.map((d) => [d.gate, d.decision, d.by]),
        [['restore', 'approved', BOB]],
      );

      // On record: the catalog's restores row and the approval.
      const row = await catalogRow(workflowId);
      assert.ok(row, 'a restores row');
      assert.equal(row.outcome, 'restored');
      assert.equal(row.restore_point, a.pointT);
      assert.equal(row.destination, destinationFor(workflowId));
      assert.equal(row.requested_by, ALICE);
      assert.deepEqual(row.report.rto, result.rto);
      assert.deepEqual(
        (await approvalsOf(workflowId)).map((r) => [r.gate, r.decision, r.decided_by]),
        [['restore', 'approved', BOB]],
      );
      assert.equal(status.phase, 'done');
      assert.deepEqual(
        status.timeline.map((t) => t.phase),
        ['validating', 'awaiting-approval', 'restoring', 'replaying-wal', 'verifying', 'done'],
      );
      await recordHistory(handle, 'pitrRestore-approved');
      // The same run under signed decisions: the signature in the update, the decision's evidence written (patch signed-decisions-evidence).
      await recordHistory(handle, 'pitrRestore-v3-signed-approval');

      // Removing it (the compensation's own activity path) leaves nothing behind.
      await removeAsItsOwner(engine, destinationFor(workflowId));
      await assertNothingCreated(engine, restoresDir, workflowId);
    });
  });

  describe('refusals end with a clear message and nothing created', () => {
    it('a rejection ends the workflow rejected, on record, before anything is made', async () => {
      const workflowId = uniqueId('test-pitr-rejected');
      const { handle, result, error, status } = await runRestore(workflowId, input(), async (h) => {
        await waitForGate(h, 'restore');
        await rejectSigned(h, { by: CAROL, reason: 'wrong restore point: ask again with T-5min' });
      });
      assert.equal(error, undefined);
      assert.equal(result?.outcome, 'rejected');
      assert.equal(result?.destination, undefined);
      assert.deepEqual(result?.cleanup, []);
      assert.deepEqual(result?.decisions.map((d) => [d.gate, d.decision, d.by, d.reason]), [['restore', 'rejected', CAROL, 'wrong restore point: ask again with T-5min']]);
      assert.equal(status.phase, 'rejected');
      assert.equal(status.timeline.at(-1)?.note, `rejected by ${CAROL}: wrong restore point: ask again with T-5min; nothing was created`);
      assert.equal((await catalogRow(workflowId))?.outcome, 'rejected');
      assert.deepEqual((await approvalsOf(workflowId)).map((r) => [r.gate, r.decision, r.decided_by]), [['restore', 'rejected', CAROL]]);
      await assertNothingCreated(engine, restoresDir, workflowId);
      await recordHistory(handle, 'pitrRestore-rejected');
    });

    it('an unanswered gate reminds the approvers, then expires', async () => {
      const workflowId = uniqueId('test-pitr-expired');
      const { handle, result, error, status } = await runRestore(workflowId, input({ timings: { remindAfterMs: 1500, abortAfterMs: 4000, pollIntervalMs: 250 } }), async (h) => {
        await waitForGate(h, 'restore');
        const reminded = await waitForStatus(h, 'the reminder', (s) => s.pendingGate?.reminded === true || s.phase === 'expired');
        assert.equal(reminded.pendingGate?.reminded, true);
      });
      assert.equal(error, undefined);
      assert.equal(result?.outcome, 'expired');
      assert.deepEqual(result?.decisions.map((d) => [d.decision, d.by, d.reason]), [['expired', 'lifeboat', 'no decision within 4 s']]);
      assert.equal(status.phase, 'expired');
      assert.equal(status.timeline.at(-1)?.note, 'expired by lifeboat: no decision within 4 s; nothing was created');
      // The reminder went out through the notifier, naming the gate, the roles and the workflow.
      const reminder = notices.filter((n) => n.includes(`[${workflowId}]`) && n.includes('Approval still pending'));
      assert.equal(reminder.length, 1, notices.join('\n'));
      assert.match(reminder[0], /^\[lifeboat warning\] Approval still pending: restore app to .* \(target app\) \[.*\]: The restore gate has waited since .*; any of backup-owner, data-owner can decide\. It aborts at .*\.$/);
      assert.equal((await catalogRow(workflowId))?.outcome, 'expired');
      assert.deepEqual((await approvalsOf(workflowId)).map((r) => [r.decision, r.decided_by]), [['expired', 'lifeboat']]);
      await assertNothingCreated(engine, restoresDir, workflowId);
      await recordHistory(handle, 'pitrRestore-expired');
    });

    it('a cancel while the gate waits is recorded in the catalog, with nothing created', async () => {
      const workflowId = uniqueId('test-pitr-cancel-gate');
      const { handle, error, status } = await runRestore(workflowId, input(), async (h) => {
        await waitForGate(h, 'restore');
        // A refused decision first, so there is something on record besides the cancel.
        await h.signal(approveSignal, { by: MALLORY, reason: 'from the UI' });
        await waitForStatus(h, 'the refused signal', (s) => s.refused.length > 0);
        await h.cancel();
      });
      assert.ok(error instanceof WorkflowFailedError, String(error));
      assert.ok(error.cause instanceof CancelledFailure, String(error.cause));
      assert.equal(status.phase, 'cancelled');
      assert.equal(status.timeline.at(-1)?.note, 'cancelled while waiting for the restore gate; nothing was created');
      const row = await catalogRow(workflowId);
      assert.equal(row?.outcome, 'cancelled');
      assert.equal(row?.requested_by, ALICE);
      assert.equal(row?.report.failure, 'cancelled while waiting for the restore gate; nothing was created');
      assert.deepEqual(row?.report.decisions, []);
      assert.deepEqual(row?.report.cleanup, []);
      await assertNothingCreated(engine, restoresDir, workflowId);
      await recordHistory(handle, 'pitrRestore-cancelled-at-gate');
    });

    it('refuses an approver without the role through the validator, keeps waiting, then takes a proper rejection', async () => {
      const workflowId = uniqueId('test-pitr-unauthorized');
      const { result, error } = await runRestore(workflowId, input({ mode: 'emergency' }), async (h) => {
        await waitForGate(h, 'emergencyRestore');
        for (const [who, reason] of [
          [CAROL, `${CAROL} does not hold a role that approves the emergencyRestore gate in production (incident-commander)`],
          [MALLORY, `${MALLORY} does not hold a role that approves the emergencyRestore gate in production (incident-commander)`],
        ]) {
          const refused = await approveSigned(h, { by: who, reason: 'looks fine to me' }).then(
            () => assert.fail(`${who} must not be able to approve`),
            (e: unknown) => e,
          );
          assert.ok(refused instanceof WorkflowUpdateFailedError, String(refused));
          assert.equal((refused.cause as Error).message, reason);
        }
        // A decision for another gate than the pending one is refused too.
        const wrongGate = await approveSigned(h, { by: BOB, reason: 'ok', gate: 'cutover' }).catch((e: unknown) => e);
        assert.equal(((wrongGate as WorkflowUpdateFailedError).cause as Error).message, 'the pending gate is emergencyRestore, not cutover: check `lifeboat status` before deciding');
        const still = await waitForGate(h, 'emergencyRestore');
        assert.equal(still.phase, 'awaiting-approval');
        assert.deepEqual(still.decisions, []);
        await rejectSigned(h, { by: BOB, reason: 'not an emergency after all' });
      });
      assert.equal(error, undefined);
      assert.equal(result?.outcome, 'rejected');
      assert.deepEqual(result?.decisions.map((d) => [d.gate, d.decision, d.by]), [['emergencyRestore', 'rejected', BOB]]);
      await assertNothingCreated(engine, restoresDir, workflowId);
    });

    it('refuses self-approval in production', async () => {
      const workflowId = uniqueId('test-pitr-self');
      const { result, error } = await runRestore(workflowId, input({ requestedBy: ALICE }), async (h) => {
        await waitForGate(h, 'restore');
        const refused = await approveSigned(h, { by: ALICE, reason: 'I am sure' }).catch((e: unknown) => e);
        assert.ok(refused instanceof WorkflowUpdateFailedError, String(refused));
        assert.equal((refused.cause as Error).message, `${ALICE} requested this and cannot approve it in production: someone else must`);
        assert.equal((await waitForGate(h, 'restore')).decisions.length, 0);
        await rejectSigned(h, { by: CAROL, reason: 'needs a second look' });
      });
      assert.equal(error, undefined);
      assert.equal(result?.outcome, 'rejected');
      await assertNothingCreated(engine, restoresDir, workflowId);
    });

    it('records a signal from someone without the right in status.refused, and takes a proper one', async () => {
      const workflowId = uniqueId('test-pitr-signal');
      const { result, error, status: final } = await runRestore(workflowId, input(), async (h) => {
        await waitForGate(h, 'restore');
        await h.signal(approveSignal, { by: MALLORY, reason: 'approving from the UI' });
        const status = await waitForStatus(h, 'the refused signal', (s) => s.refused.length > 0);
        assert.equal(status.refused.length, 1);
        assert.equal(status.refused[0].by, MALLORY);
        assert.equal(status.refused[0].reason, `${MALLORY} does not hold a role that approves the restore gate in production (backup-owner, data-owner)`);
        assert.equal(status.pendingGate?.gate, 'restore');
        // Production refuses an unsigned decision even from someone with the role, and keeps it on record.
        await h.signal(rejectSignal, { by: CAROL, reason: 'rejected from the UI' });
        const unsigned = await waitForStatus(h, 'the unsigned signal', (s) => s.refused.length > 1);
        assert.equal(unsigned.refused[1].by, CAROL);
        assert.equal(unsigned.refused[1].reason, 'unsigned decisions are refused in production: sign it with your Ed25519 key (lifeboat reject --key <file>)');
        assert.equal(unsigned.pendingGate?.gate, 'restore');
        // A signed signal counts.
        await h.signal(rejectSignal, await signedInput(h, 'rejected', { by: CAROL, reason: 'rejected, signed' }));
      });
      assert.equal(error, undefined);
      assert.equal(result?.outcome, 'rejected');
      assert.deepEqual(result?.decisions.map((d) => [d.decision, d.by]), [['rejected', CAROL]]);
      assert.ok(result?.decisions[0].signed, 'the decision keeps its signature');
      assert.equal(final.phase, 'rejected');
      assert.equal(final.refused[0].by, MALLORY);
      await assertNothingCreated(engine, restoresDir, workflowId);
    });

    it('refuses a restore point before the window, in the future or without a zone, and the source as destination', async () => {
      const window = await engine.restoreWindow('primary');
      const iso = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';
      const cases: Array<{ name: string; overrides: Partial<PitrRestoreInput>; message: string | RegExp; type: string }> = [
        {
          name: 'before the oldest backup',
          overrides: { restorePoint: '2001-02-03T04:05:06Z' },
          // The window's end moves as WAL is archived (others use the stack too); its start is the oldest backup.
          message: new RegExp(`^the restore time 2001-02-03T04:05:06\\.000Z is before the oldest backup; the restore window is ${window.earliest.replace(/\./g, '\\.')} to ${iso}: pick a time inside it\\.$`),
          type: 'OUTSIDE_RESTORE_WINDOW',
        },
        {
          name: 'in the future',
          overrides: { restorePoint: '2999-01-01T00:00:00+01:00' },
          message: new RegExp(`^the restore time 2998-12-31T23:00:00\\.000Z is in the future \\(now ${iso}\\); the restore window is ${window.earliest.replace(/\./g, '\\.')} to ${iso}: pick a time inside it\\.$`),
          type: 'OUTSIDE_RESTORE_WINDOW',
        },
        {
          name: 'without a zone',
          overrides: { restorePoint: '2026-11-21T10:01:00' },
          message: 'the restore time 2026-11-21T10:01:00 has no time zone, so it could mean several instants: add one, e.g. 2026-11-21T10:01:00Z for UTC or +01:00.',
          type: 'INVALID_RESTORE_POINT',
        },
        {
          name: 'the source as destination',
          overrides: { destination: 'app' },
          message: 'the destination "app" is the source itself; lifeboat restores only into a new instance: choose another --destination.',
          type: 'DESTINATION_IS_SOURCE',
        },
      ];
      for (const c of cases) {
        const workflowId = uniqueId('test-pitr-invalid');
        const { handle, error } = await runRestore(workflowId, input(c.overrides));
        const failure = refusal(error);
        if (typeof c.message === 'string') assert.equal(failure.message, c.message, c.name);
        else assert.match(failure.message, c.message, c.name);
        assert.equal(failure.type, c.type, c.name);
        // Validation ran once: a refusal is not retried.
        const history = await handle.fetchHistory();
        const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'validateRestore');
        assert.equal(scheduled.length, 1, c.name);
        const started = (history.events ?? []).find((e) => e.activityTaskStartedEventAttributes);
        assert.equal(started?.activityTaskStartedEventAttributes?.attempt, 1, c.name);
        await assertNothingCreated(engine, restoresDir, workflowId);
        if (c.overrides.destination) assert.equal((await engine.describeInstance('app'))?.createdByLifeboat, false);
      }
    });
  });

  describe('crashes and cancellation', () => {
    let accident: Accident | undefined;
    let child: ChildProcess | undefined;
    const children: ChildProcess[] = [];
    after(async () => {
      for (const c of children) await stopWorkerProcess(c);
      await dropAccidentTables(stack, accident);
    });

    /** A real worker process on its own task queue (test/helpers/worker-process.ts), stopped after the suite. */
    async function startSuiteWorker(taskQueue: string): Promise<ChildProcess> {
      const proc = await startWorkerProcess(taskQueue, CONFIG_FILE);
      children.push(proc);
      return proc;
    }

    it('resumes after the worker is killed mid-restore and finishes with exactly one instance', async function () {
      accident = await stageAccident(stack, 'lbcrash');
      const a = accident;
      const taskQueue = uniqueTaskQueue('pitr-crash');
      const workflowId = uniqueId('test-pitr-crash');
      const destination = destinationFor(workflowId);
      made.add(destination);
      child = await startSuiteWorker(taskQueue);
      const handle = await env.client.workflow.start('pitrRestore', { taskQueue, workflowId, args: [input({ restorePoint: a.pointT, timings: { ...TIMINGS, pollIntervalMs: 500 } })] });
      await waitForGate(handle, 'restore');
      await approveSigned(handle, { by: BOB, reason: 'go' });
      const during = await waitForStatus(handle, 'the restore', (s) => ['restoring', 'replaying-wal', 'verifying', 'done'].includes(s.phase), WAIT_MS, 50);
      assert.ok(['restoring', 'replaying-wal'].includes(during.phase), `killed during ${during.phase}`);
      await stopWorkerProcess(child);

      // Another worker takes over once the server gives up on the dead one's activity (its heartbeat timeout).
      child = await startSuiteWorker(taskQueue);
      const result = (await handle.result()) as PitrRestoreReport;
      assert.equal(result.outcome, 'restored');
      assert.equal(result.destination?.instanceId, destination);
      assert.deepEqual(await onInstance(stack, result.destination?.endpoint, (c) => snapshotTables(c, [a.kept, a.dropped])), a.atT);
      // Exactly one instance: one record, one data directory, one port claimed, and no other instance of this workflow.
      assert.deepEqual(leftovers(restoresDir, destination).filter((f) => f === destination || f.endsWith('.json') || f.startsWith('ports/')).sort(), [destination, `${destination}.json`, `ports/${result.destination!.endpoint!.port}`].sort());
      const events = (await handle.fetchHistory()).events ?? [];
      const attempts = events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
      assert.ok(attempts.some((n) => n > 1), 'an activity was retried after the crash');
      child.kill('SIGTERM');
      await removeAsItsOwner(engine, destination);
      await assertNothingCreated(engine, restoresDir, workflowId);
    });

    it('a worker killed with kill -9 during validation costs seconds (its heartbeat timeout), not the 2-minute start-to-close timeout', async function () {
      const taskQueue = uniqueTaskQueue('pitr-kill-short');
      const workflowId = uniqueId('test-pitr-kill-short');
      // Two workers, as in production: when one dies the other takes over; no new process to wait for.
      const workers = [await startSuiteWorker(taskQueue), await startSuiteWorker(taskQueue)];
      const handle = await env.client.workflow.start('pitrRestore', { taskQueue, workflowId, args: [input()] });
      let holder = '';
      const seenBy = Date.now() + 30000;
      while (!holder) {
        const desc = await handle.describe();
        const validating = (desc.raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'validateRestore' && a.lastWorkerIdentity);
        holder = validating?.lastWorkerIdentity ?? '';
        if (!holder && (Date.now() > seenBy || desc.status.name !== 'RUNNING')) {
          throw new Error('validateRestore finished before this test could kill the worker running it; run the test again');
        }
      }
      // The worker running the validation (its identity is pid@host) dies without a word.
      const victim = workers.find((w) => holder.startsWith(`${w.pid}@`));
      assert.ok(victim, `validateRestore runs on one of this test's workers (${holder})`);
      victim.kill('SIGKILL');
      const killedAt = Date.now();
      try {
        await waitForGate(handle, 'restore');
        const validatedAfter = (Date.now() - killedAt) / 1000;
        const events = (await handle.fetchHistory()).events ?? [];
        const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'validateRestore');
        const started = events.find((e) => e.activityTaskStartedEventAttributes && Number(e.activityTaskStartedEventAttributes.scheduledEventId) === Number(scheduled?.eventId));
        const completed = events.find((e) => e.activityTaskCompletedEventAttributes && Number(e.activityTaskCompletedEventAttributes.scheduledEventId) === Number(scheduled?.eventId));
        const at = (e: typeof started) => Number(e?.eventTime?.seconds ?? 0) * 1000 + Math.floor((e?.eventTime?.nanos ?? 0) / 1e6);
        const attempt = started?.activityTaskStartedEventAttributes?.attempt ?? 1;
        const retryStartedAfter = (at(started) - killedAt) / 1000;
        const validationTook = (at(completed) - at(started)) / 1000;
        console.log(
          `      killed the worker running validateRestore (kill -9); attempt ${attempt} started ${retryStartedAfter.toFixed(1)} s later on the other worker, ran ${validationTook.toFixed(1)} s; the gate was reached ${validatedAfter.toFixed(1)} s after the kill, so about ${(validatedAfter - validationTook).toFixed(1)} s added`,
        );
        assert.equal(attempt, 2, 'the validation was retried once');
        assert.ok(validatedAfter - validationTook < 30, `a killed worker added ${(validatedAfter - validationTook).toFixed(1)} s to the validation (limit 30 s, not the 2-minute start-to-close timeout)`);
        await rejectSigned(handle, { by: CAROL, reason: 'test: only the crash was of interest' });
        assert.equal(((await handle.result()) as PitrRestoreReport).outcome, 'rejected');
        await assertNothingCreated(engine, restoresDir, workflowId);
      } finally {
        await handle.terminate('test over').catch(() => undefined);
        for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
      }
    });

    it('removes the half-made instance when cancelled during the restore', async () => {
      const workflowId = uniqueId('test-pitr-cancel');
      const destination = destinationFor(workflowId);
      const { error } = await runRestore(workflowId, input({ restorePoint: 'latest' }), async (h) => {
        await waitForGate(h, 'restore');
        await approveSigned(h, { by: BOB, reason: 'go' });
        await waitForStatus(h, 'the restore', (s) => s.phase === 'restoring', WAIT_MS, 50);
        await h.cancel();
      });
      assert.ok(error instanceof WorkflowFailedError, String(error));
      assert.ok(error.cause instanceof CancelledFailure, String(error.cause));
      const row = await catalogRow(workflowId);
      assert.equal(row?.outcome, 'cancelled');
      // Removed if the cancelled attempt had made anything; either way this run's own name only.
      assert.equal(row?.report.cleanup.length, 1);
      assert.ok([`removed restored instance ${destination}`, `nothing to remove: ${destination} was never created`].includes(row!.report.cleanup[0]), row?.report.cleanup[0]);
      // Give a late activity attempt a moment to show itself; nothing must reappear.
      await delay(3000);
      await assertNothingCreated(engine, restoresDir, workflowId);
    });
  });

  describe('verification against the source', () => {
    /** Restores and approves at once; the verification's checks by name. */
    async function restoreAndVerify(workflowId: string, restorePoint: string) {
      const run = await runRestore(workflowId, input({ restorePoint }), async (h) => {
        await waitForGate(h, 'restore');
        await approveSigned(h, { by: BOB, reason: 'go', gate: 'restore' });
      });
      assert.equal(run.error, undefined, `the restore failed: ${String(run.error)}`);
      const checks = new Map(run.result!.verification!.checks.map((c) => [c.name, c]));
      await removeAsItsOwner(engine, destinationFor(workflowId));
      return { ...run, checks };
    }

    it('restores to latest and finds every critical table identical to the source facts taken during the restore, as the verify role', async () => {
      // A quiet source whose WAL is archived: nothing written between its facts and the end of the restore.
      await onPrimary(stack, (c) => c.query('ANALYZE'));
      await localPgBackRest(stack.ctx).check();
      const workflowId = uniqueId('test-pitr-latest-facts');
      const { handle, result, checks } = await restoreAndVerify(workflowId, 'latest');
      assert.equal(result!.outcome, 'restored');
      assert.deepEqual(checks.get('verification role'), { name: 'verification role', ok: true, detail: 'lifeboat_verify, not a superuser' });
      const compared = checks.get('compared with the source');
      assert.equal(compared?.ok, true);
      assert.match(compared!.detail, /^every critical table identical to the source at \d{4}-/);
      for (const table of target!.criticalTables) {
        assert.match(checks.get(`table ${table}`)!.detail, /^\d+ rows, identical to the source \(checksum h64:[0-9a-f]{16}\)$/, table);
      }
      const activities = ((await handle.fetchHistory()).events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
      assert.ok(activities.includes('captureSourceFacts'), activities.join(', '));
      await recordHistory(handle, 'pitrRestore-v2-latest-compared-with-source');
    });

    it('restores to a past time and records that the source could not be compared, and why', async () => {
      const pointT = await onPrimary(stack, async (c) => (await c.query<{ t: Date }>('SELECT now() AS t')).rows[0].t.toISOString());
      await localPgBackRest(stack.ctx).check();
      const { result, checks } = await restoreAndVerify(uniqueId('test-pitr-time-facts'), pointT);
      assert.equal(result!.outcome, 'restored');
      assert.deepEqual(checks.get('compared with the source'), {
        name: 'compared with the source',
        ok: true,
        detail: `not possible: the restore point ${pointT} is in the past and the source holds only its present state`,
      });
      assert.match(checks.get('table orders')!.detail, /^\d+ rows, checksum h64:[0-9a-f]{16}$/);
    });
  });
});
