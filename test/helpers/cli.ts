/**
 * lifeboat's commands as a person runs them: a child process of node with the real entry point,
 * its output collected as written, with the environment a test chooses. LIFEBOAT_USER is cleared
 * unless the test sets it, so no identity leaks in from the shell that runs the suite.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../../..');
export const CLI = path.join(ROOT, 'bin/lifeboat.js');
export const CONFIG_FILE = path.join(ROOT, 'lifeboat.config.yaml');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `node <entry> <args>`; an `env` value of undefined removes that variable. */
export function runNode(entry: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    delete childEnv.LIFEBOAT_USER;
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete childEnv[k];
      else childEnv[k] = v;
    }
    const started = Date.now();
    const child = spawn(process.execPath, [entry, ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: Date.now() - started }));
  });
}

/** `lifeboat <args>` with the example config (and, when given, a task queue of the test's own). */
export function lifeboat(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return runNode(CLI, args, { LIFEBOAT_CONFIG: CONFIG_FILE, ...env });
}
