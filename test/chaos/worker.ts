/**
 * The harness's own lifeboat worker: a real `lib/src/worker.js` process on the harness's task
 * queue, started detached like `lifeboat worker start` does, so it can be killed with SIGKILL
 * and replaced, while any worker an operator started keeps its own pid file and queue.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StackContext } from '../../src/stack/component';
import { delay, isAlive, livePid, startDetached, stopPid, tailFile, waitUntil } from '../../src/platform/processes';

export const WORKER_ENTRY = path.resolve(__dirname, '../../src/worker.js');
const REPO_ROOT = path.resolve(__dirname, '../../..');

export class ChaosWorker {
  private pid: number | undefined;
  readonly log: string;
  private readonly pidFile: string;

  constructor(
    private readonly ctx: StackContext,
    private readonly taskQueue: string,
    private readonly configFile: string,
  ) {
    this.log = path.join(ctx.paths.logs, 'chaos-worker.log');
    this.pidFile = path.join(ctx.paths.run, 'chaos-worker.pid');
  }

  /** A worker a previous, interrupted harness run left behind is stopped first. */
  async stopLeftover(): Promise<void> {
    const pid = livePid(this.pidFile, WORKER_ENTRY);
    if (pid) await stopPid(pid, 30000);
  }

  async start(): Promise<number> {
    fs.mkdirSync(path.dirname(this.log), { recursive: true });
    fs.mkdirSync(path.dirname(this.pidFile), { recursive: true });
    const logStart = fs.existsSync(this.log) ? fs.statSync(this.log).size : 0;
    const pid = startDetached(process.execPath, [WORKER_ENTRY], {
      logFile: this.log,
      pidFile: this.pidFile,
      cwd: REPO_ROOT,
      env: { LIFEBOAT_TASK_QUEUE: this.taskQueue, LIFEBOAT_CONFIG: this.configFile },
      // A lifeboat worker: it needs the environment its secret references point into.
      inheritEnv: 'all',
    });
    this.pid = pid;
    await waitUntil(
      'the chaos worker',
      async () => {
        const fresh = fs.readFileSync(this.log, 'utf8').slice(logStart);
        if (fresh.includes(`lifeboat worker: task queue ${this.taskQueue} `)) return true;
        if (!isAlive(pid)) return `exited: ${tailFile(this.log, 3)}`;
        return 'starting';
      },
      { timeoutMs: 120000, intervalMs: 200, hint: `see ${this.log}` },
    );
    return pid;
  }

  get running(): boolean {
    return this.pid !== undefined && isAlive(this.pid);
  }

  /** kill -9: no drain, no goodbye to the server, exactly what a crashed host looks like. */
  async kill9(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !isAlive(pid)) return;
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 10000;
    while (isAlive(pid) && Date.now() < deadline) await delay(50);
    this.pid = undefined;
  }

  /** A graceful stop (SIGTERM, the worker drains), at the end of the run. */
  async stop(): Promise<void> {
    const pid = this.pid;
    this.pid = undefined;
    if (pid !== undefined && isAlive(pid)) await stopPid(pid, 30000);
  }
}
