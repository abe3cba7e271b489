/**
 * The worker drains on SIGTERM: a real worker process (lib/src/worker.js) runs a preflight,
 * gets SIGTERM while the database check activity is running, lets that activity finish and
 * report, and exits 0. Another worker then finishes the workflow.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { temporal } from '@temporalio/proto';
import { createPorts, Ports } from '../src/activities/ports';
import { loadConfig } from '../src/config';
import { PreflightResult } from '../src/domain/preflight';
import { delay } from '../src/platform/processes';
import { createLifeboatWorker } from '../src/worker';
import { uniqueId } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const ROOT = path.resolve(__dirname, '../..');
const CONFIG_FILE = path.join(ROOT, 'lifeboat.config.yaml');

describe('worker shutdown drains in-flight activities (real worker process, real stack)', function () {
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  const config = loadConfig(CONFIG_FILE);

  before(async function () {
    this.timeout(600000);
    await useStack();
    env = await useTemporal();
    ports = createPorts(config);
  });
  after(async () => ports?.close());

  it('SIGTERM while an activity runs: the activity completes on that worker, and the process exits 0', async () => {
    const taskQueue = uniqueTaskQueue('drain');
    const workflowId = uniqueId('test-worker-drain');
    await workflowBundle(); // the process takes it ($LIFEBOAT_WORKFLOW_BUNDLE) and starts without bundling
    const proc = spawn(process.execPath, [path.join(ROOT, 'lib/src/worker.js')], {
      cwd: ROOT,
      env: { ...process.env, LIFEBOAT_TASK_QUEUE: taskQueue, LIFEBOAT_CONFIG: CONFIG_FILE, LIFEBOAT_WORKER_SHUTDOWN_GRACE_SECONDS: '60' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      const ready = Date.now() + 120000;
      while (!output.includes(`lifeboat worker: task queue ${taskQueue} `)) {
        if (proc.exitCode !== null) throw new Error(`the worker exited: ${output}`);
        if (Date.now() > ready) throw new Error(`the worker did not start: ${output}`);
        await delay(100);
      }
      const handle = await env.client.workflow.start('preflight', { taskQueue, workflowId, args: [{ targets: ['app'] }] });
      // Wait until the database check (pgBackRest check of both repositories, some seconds) is running.
      const running = Date.now() + 60000;
      for (;;) {
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        const check = pending.find((a) => a.activityType?.name === 'checkDatabaseTarget');
        if (check?.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED) break;
        if (Date.now() > running) throw new Error(`checkDatabaseTarget never started: ${JSON.stringify(pending)}`);
        await delay(20);
      }
      const signalledAt = Date.now();
      proc.kill('SIGTERM');
      const { code, signal } = await exited;
      assert.equal(signal, null, output);
      assert.equal(code, 0, output);
      assert.match(output, /lifeboat worker: SIGTERM received: no new tasks; running activities get 60 s to finish\n/);
      assert.match(output, /lifeboat worker: stopped after draining its tasks\n/);

      // The activity finished on the draining worker, at its first attempt, after the signal.
      const events = (await handle.fetchHistory()).events ?? [];
      const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'checkDatabaseTarget');
      assert.ok(scheduled, 'checkDatabaseTarget was scheduled');
      const started = events.find((e) => e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === scheduled.eventId?.toString());
      const completed = events.find((e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === scheduled.eventId?.toString());
      assert.ok(started && completed, 'checkDatabaseTarget started and completed');
      assert.equal(started.activityTaskStartedEventAttributes!.attempt, 1);
      assert.equal(started.activityTaskStartedEventAttributes!.identity, `${proc.pid}@${os.hostname()}`);
      const completedAt = Number(completed.eventTime!.seconds) * 1000 + Math.floor((completed.eventTime!.nanos ?? 0) / 1e6);
      assert.ok(completedAt >= signalledAt - 50, `completed ${completedAt - signalledAt} ms after SIGTERM`);

      // Another worker takes the workflow to its end.
      const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
      const result = (await worker.runUntil(handle.result())) as PreflightResult;
      assert.ok(result.checks.some((c) => c.component === 'database app' && c.ok), JSON.stringify(result.checks));
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
  });
});
