/**
 * Drills started by their Temporal Schedules, on the real stack: `lifeboat schedules apply`
 * creates the drill schedule of each target and the sweeper's, a trigger (what Temporal does at
 * the scheduled time, or when catching up after an outage) starts the drill, and the drill runs
 * to its verdict. `lifeboat backups list` then shows the backup as proven, as the CLI prints it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client, ScheduleNotFoundError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { CATCHUP_WINDOW_MS } from '../src/client/schedule-plan';
import { applySchedules, listPrefixed, registeredWorkflowTypes } from '../src/client/schedules';
import { loadConfig } from '../src/config';
import type { DatabaseBackupResult } from '../src/domain/backup';
import type { RestoreDrillResult } from '../src/domain/drill';
import type { DrillSweepResult } from '../src/domain/drill-sweep';
import { createLifeboatWorker } from '../src/worker';
import { LifeboatKind, LifeboatTarget } from '../src/workflows/search-attributes';
import { CONFIG_FILE, lifeboat } from './helpers/cli';
import { uniqueId } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

describe('drill schedules (real Temporal Schedules, real worker, real stack)', function () {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let ports: Ports;
  let backup: DatabaseBackupResult;
  const config = loadConfig(CONFIG_FILE);
  const prefix = `lbtest-${randomBytes(4).toString('hex')}-`;
  const taskQueue = uniqueTaskQueue('drill-schedule');

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    client = env.client;
    ports = createPorts(config, { log: () => undefined });
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    backup = (await worker.runUntil(env.client.workflow.execute('databaseBackup', { taskQueue, workflowId: uniqueId('test-drill-schedule-backup'), args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'test' }] }))) as DatabaseBackupResult;
  });

  after(async function () {
    this.timeout(60000);
    for (const s of (await listPrefixed(client, prefix).catch(() => [])) ?? []) {
      await client.schedule
        .getHandle(s.scheduleId)
        .delete()
        .catch((err: unknown) => {
          if (!(err instanceof ScheduleNotFoundError)) throw err;
        });
    }
    await ports?.close();
  });

  /** Triggers the schedule and returns the id of the workflow it started (the newest action). */
  async function trigger(scheduleId: string): Promise<string> {
    const handle = client.schedule.getHandle(scheduleId);
    const before = (await handle.describe()).info.recentActions.length;
    await handle.trigger();
    for (let i = 0; i < 600; i++) {
      const actions = (await handle.describe()).info.recentActions;
      if (actions.length > before) return actions[actions.length - 1].action.workflow.workflowId;
      await new Promise((r) => setTimeout(r, 200));
    }
    return assert.fail(`schedule ${scheduleId} started nothing after its trigger`);
  }

  it('the drill schedule, triggered, runs a drill of the target to its verdict; backups list then shows the backup proven', async () => {
    const report = await applySchedules(client, config, { prefix, taskQueue, registeredWorkflows: await registeredWorkflowTypes() });
    const drillId = `${prefix}restore-drill-app`;
    const sweeperId = `${prefix}drill-sweeper`;
    const status = Object.fromEntries(report.results.map((r) => [r.scheduleId, r]));
    assert.equal(status[drillId]?.status, 'created');
    assert.equal(status[drillId]?.paused, false, 'the drill workflow is deployed, so its schedule runs');
    assert.equal(status[sweeperId]?.paused, false);
    const described = await client.schedule.getHandle(drillId).describe();
    assert.equal(described.policies.catchupWindow, CATCHUP_WINDOW_MS.drill, 'a drill missed during an outage still runs within a week');
    assert.equal(described.policies.overlap, 'SKIP');

    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    await worker.runUntil(async () => {
      const workflowId = await trigger(drillId);
      assert.ok(workflowId.startsWith(`${drillId}-`), `the drill is named after its schedule: ${workflowId}`);
      const handle = client.workflow.getHandle(workflowId);
      const { report: drill } = (await handle.result()) as RestoreDrillResult;
      assert.equal(drill.outcome, 'passed', JSON.stringify(drill.issues));
      assert.equal(drill.target.name, 'app');
      assert.equal(drill.backup.id, backup.primary.handle.backupId, 'the newest verified backup, as a scheduled drill chooses');
      const d = await handle.describe();
      assert.equal(d.type, 'restoreDrill');
      assert.equal(d.typedSearchAttributes.get(LifeboatKind), 'restore-drill');
      assert.equal(d.typedSearchAttributes.get(LifeboatTarget), 'app');

      // The sweeper's schedule starts the sweeper, which finds nothing of this drill left.
      const sweep = (await client.workflow.getHandle(await trigger(sweeperId)).result()) as DrillSweepResult;
      assert.ok(![...sweep.removed, ...sweep.kept, ...sweep.reported].some((s) => s.resource.name.includes(workflowId.toLowerCase().slice(0, 40))), JSON.stringify(sweep));
    });

    // As the CLI prints it: a header with the drill column, and the drilled backup proven today.
    const list = await lifeboat(['backups', 'list', '--target', 'app']);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^status +target +kind +size +completed +dr lag +primary \/ dr +drill$/);
    const row = lines.find((l) => l.includes(`${backup.primary.handle.backupId} / `));
    assert.ok(row, list.stdout);
    const today = new Date().toISOString().slice(0, 10);
    assert.match(row, new RegExp(`^verified +app +full +.* proven ${today}$`));
    assert.equal(row.indexOf('proven'), lines[0].indexOf('drill'), 'the verdict sits in the drill column');
  });
});
