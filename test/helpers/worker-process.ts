/**
 * A real lifeboat worker process (lib/src/worker.js) on a task queue of the test's own, for tests
 * that kill a worker with SIGKILL and start another: what a crashed host looks like to Temporal.
 */
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { delay } from '../../src/platform/processes';
import { workflowBundle } from './temporal';

const WORKER_ENTRY = path.resolve(__dirname, '../../src/worker.js');
const REPO_ROOT = path.resolve(__dirname, '../../..');

/** Starts the worker with the test's environment (its stack ports) and `extraEnv`; resolves once it polls `taskQueue`. */
export async function startWorkerProcess(taskQueue: string, configFile: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  await workflowBundle(); // built once per run; the process takes it through $LIFEBOAT_WORKFLOW_BUNDLE
  const proc = spawn(process.execPath, [WORKER_ENTRY], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...extraEnv, LIFEBOAT_TASK_QUEUE: taskQueue, LIFEBOAT_CONFIG: configFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 120000;
  while (!output.includes(`lifeboat worker: task queue ${taskQueue} `)) {
    if (proc.exitCode !== null) throw new Error(`the worker exited: ${output}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`the worker did not start: ${output}`);
    }
    await delay(100);
  }
  return proc;
}

export function hasExited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

/** Sends `signal` (SIGKILL unless told: no drain, no goodbye to the server) and waits until the process is gone. */
export async function stopWorkerProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (hasExited(proc)) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill(signal);
  await exited;
}
