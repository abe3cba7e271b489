/**
 * lifeboat workers running in the background for the local stack (`lifeboat worker start`): the
 * central worker, and an agent per name (`--agent <name>`). Everything runs on this one machine
 * here; in a deployment each agent runs on its database host.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StackContext } from './component';
import { shutdownGraceFromEnv } from '../worker-shutdown';
import { delay, isAlive, livePid, startDetached, stopPid, tailFile, waitUntil } from '../platform/processes';

const WORKER_ENTRY = path.resolve(__dirname, '..', 'worker.js');

function files(ctx: StackContext, agent?: string) {
  const base = agent ? `agent-${agent}` : 'worker';
  return { pid: path.join(ctx.paths.run, `${base}.pid`), log: path.join(ctx.paths.logs, `${base}.log`) };
}

export function workerPid(ctx: StackContext, agent?: string): number | undefined {
  return livePid(files(ctx, agent).pid, WORKER_ENTRY);
}

/** The agents whose pid files the run directory holds, running or not. */
export function knownAgents(ctx: StackContext): string[] {
  if (!fs.existsSync(ctx.paths.run)) return [];
  return fs.readdirSync(ctx.paths.run).flatMap((f) => /^agent-(.+)\.pid$/.exec(f)?.slice(1) ?? []);
}

export async function startWorker(ctx: StackContext, env: NodeJS.ProcessEnv = {}, agent?: string): Promise<{ pid: number; log: string; alreadyRunning: boolean }> {
  const f = files(ctx, agent);
  const running = workerPid(ctx, agent);
  if (running) return { pid: running, log: f.log, alreadyRunning: true };
  fs.mkdirSync(path.dirname(f.log), { recursive: true });
  fs.mkdirSync(path.dirname(f.pid), { recursive: true });
  const logStart = fs.existsSync(f.log) ? fs.statSync(f.log).size : 0;
  const pid = startDetached(process.execPath, [WORKER_ENTRY, ...(agent ? ['--agent', agent] : [])], { logFile: f.log, pidFile: f.pid, env, cwd: process.cwd(), inheritEnv: 'all' });
  await waitUntil(
    agent ? `lifeboat agent ${agent}` : 'the lifeboat worker',
    async () => {
      const fresh = fs.readFileSync(f.log, 'utf8').slice(logStart);
      if (/lifeboat worker: task queue/.test(fresh)) return true;
      if (!workerPid(ctx, agent)) return `exited: ${tailFile(f.log, 3)}`;
      return 'starting';
    },
    { timeoutMs: 60000, hint: `see ${f.log}` },
  );
  return { pid, log: f.log, alreadyRunning: false };
}

export async function stopWorker(ctx: StackContext, agent?: string): Promise<boolean> {
  const pid = workerPid(ctx, agent);
  if (!pid) return false;
  // SIGTERM to the worker alone: signalling its group would stop the pgBackRest it is waiting for.
  // It drains for its grace time; only a worker stuck past that is stopped with its group.
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  const deadline = Date.now() + shutdownGraceFromEnv() + 15000;
  while (isAlive(pid) && Date.now() < deadline) await delay(200);
  if (isAlive(pid)) await stopPid(pid, 5000);
  return true;
}
