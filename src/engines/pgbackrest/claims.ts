/**
 * Start claims: small files created exclusively so that only one attempt at a time starts a given
 * backup or restore. A claim holds the pid of the worker that wrote it (and the workflow run it
 * is for), so a claim left by a killed worker is taken over at once, and one whose age passes
 * the stale limit is taken over in any case.
 */
import fs from 'node:fs';
import type { RunIdentity } from '../../domain/ports';
import { isAlive } from '../../platform/processes';
import type { PgBackRestTimings } from './options';

/** A start claim older than this belongs to an attempt that died while starting. */
export function claimStaleMs(timings: PgBackRestTimings): number {
  return timings.startWatchMs + 5 * 60 * 1000;
}

/** Creates `file` exclusively (holding this process's pid, then the claiming run); a claim older than `staleMs` is taken over. */
export function claimFile(file: string, staleMs: number, by?: RunIdentity): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n${by ? `${by.workflowId}\n${by.runId}\n` : ''}`, { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (claimHeld(file, staleMs)) return false;
      fs.rmSync(file, { force: true });
    }
  }
  return false;
}

/**
 * Whether a claim is held: younger than `staleMs` and its process (the worker that wrote it, on
 * this host) still alive. A worker killed mid-start leaves its claim behind; the retry on
 * another worker must take it over at once, not wait minutes for it to go stale.
 */
export function claimHeld(file: string, staleMs: number): boolean {
  try {
    if (Date.now() - fs.statSync(file).mtimeMs >= staleMs) return false;
    const pid = Number(fs.readFileSync(file, 'utf8').split('\n')[0].trim());
    return !Number.isInteger(pid) || pid <= 0 || isAlive(pid);
  } catch {
    return false;
  }
}

/** The workflow run a claim was written for, when it says. */
export function claimOwner(file: string): RunIdentity | undefined {
  try {
    const [, workflowId, runId] = fs.readFileSync(file, 'utf8').split('\n');
    return workflowId && runId ? { workflowId, runId } : undefined;
  } catch {
    return undefined;
  }
}
