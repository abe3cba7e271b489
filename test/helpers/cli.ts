/**
 * lifeboat's commands as a person runs them: a child process of node with the real entry point,
 * its output collected as written, with the environment a test chooses. LIFEBOAT_USER is cleared
 * unless the test sets it, so no identity leaks in from the shell that runs the suite.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { testKeyFile } from './signing';

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

/**
 * `lifeboat <args>` with the example config (and, when given, a task queue of the test's own).
 * `approve` and `reject` sign with the decider's TEST key (test/fixtures/keys), as a person with
 * their key in LIFEBOAT_SIGNING_KEY would; a test passes LIFEBOAT_SIGNING_KEY: '' to send unsigned.
 */
export function lifeboat(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const signing: Record<string, string> = {};
  if ((args[0] === 'approve' || args[0] === 'reject') && !('LIFEBOAT_SIGNING_KEY' in env) && !args.includes('--key')) {
    const as = args.indexOf('--as');
    const who = as >= 0 ? args[as + 1] : env.LIFEBOAT_USER;
    const file = who ? testKeyFile(who) : undefined;
    if (file) signing.LIFEBOAT_SIGNING_KEY = file;
  }
  return runNode(CLI, args, { LIFEBOAT_CONFIG: CONFIG_FILE, ...signing, ...env });
}
