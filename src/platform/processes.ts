/**
 * Child processes, the one place lifeboat spawns them: run a command to completion, start a
 * server in the background with a pid file, stop exactly that process again, check ports, wait
 * for health. Engines (pgBackRest, pg_dump) and the embedded stack both use it, so it lives
 * outside both.
 */
import { spawn, SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { Context } from '@temporalio/activity';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Run as this OS user (root drops privileges through runuser); undefined = the current user. */
  asUser?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  /** Fail unless the exit code is 0 (default true). */
  check?: boolean;
  timeoutMs?: number;
  /**
   * Stops the command (SIGTERM, then SIGKILL) when aborted. Inside an activity it defaults to the
   * activity's cancellation signal, so a cancelled activity leaves no pgBackRest or pg_waldump behind.
   */
  signal?: AbortSignal;
}

export function currentUser(): string {
  return os.userInfo().username;
}

/** Wraps a command so it runs as `user`, only when that differs from who we are. */
export function asUserCommand(user: string | undefined, command: string, args: string[]): [string, string[]] {
  if (!user || user === currentUser()) return [command, args];
  if (process.getuid?.() !== 0) {
    throw new Error(`cannot run ${command} as ${user} without root: run lifeboat as ${user}, or unset LIFEBOAT_PG_OS_USER.`);
  }
  return ['runuser', ['-u', user, '--', command, ...args]];
}

/** The cancellation signal of the activity this code runs in, if it runs in one. */
export function activityCancellationSignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined; // not in an activity: the CLI or the stack
  }
}

export async function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const [cmd, argv] = asUserCommand(options.asUser, command, args);
  const signal = options.signal ?? activityCancellationSignal();
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error(`${command} was not started: ${String(signal.reason)}`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      cwd: options.cwd ?? '/',
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = options.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs)
      : undefined;
    let abortedBy: unknown;
    let killTimer: NodeJS.Timeout | undefined;
    // A polite SIGTERM first (pgBackRest then stops its own helpers and releases its locks), SIGKILL if it lingers.
    const onAbort = () => {
      abortedBy = signal?.reason ?? new Error('cancelled');
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 5000);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = () => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      settle();
      if (err.code === 'ENOENT') {
        reject(new Error(`${cmd} is not installed: run \`npm run provision\` (scripts/provision-tools.sh) and try again.`));
      } else reject(err);
    });
    child.on('close', (code, exitSignal) => {
      settle();
      if (abortedBy !== undefined) {
        reject(abortedBy instanceof Error ? abortedBy : new Error(`${command} was stopped: ${String(abortedBy)}`));
        return;
      }
      const result = { code: code ?? (exitSignal ? 128 : 1), stdout, stderr };
      if (options.check !== false && result.code !== 0) {
        const tail = (stderr.trim() || stdout.trim()).split('\n').slice(-8).join('\n');
        reject(new Error(`${[command, ...args].join(' ')} exited with ${exitSignal ?? result.code}: ${tail}`));
      } else resolve(result);
    });
    // A child may exit before reading its input; that is its exit code's story, not a crash.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Starts a long-running server detached from us, output appended to `logFile`, pid in `pidFile`. */
export function startDetached(
  command: string,
  args: string[],
  opts: { logFile: string; pidFile: string; env?: NodeJS.ProcessEnv; cwd?: string; asUser?: string },
): number {
  const [cmd, argv] = asUserCommand(opts.asUser, command, args);
  const log = fs.openSync(opts.logFile, 'a');
  const spawnOptions: SpawnOptions = {
    cwd: opts.cwd ?? '/',
    env: { ...process.env, ...opts.env },
    detached: true,
    stdio: ['ignore', log, log],
  };
  const child = spawn(cmd, argv, spawnOptions);
  fs.closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${command}: is it installed? Run \`npm run provision\`.`);
  child.unref();
  fs.writeFileSync(opts.pidFile, `${child.pid}\n`);
  return child.pid;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid recorded in `pidFile`, if that process is alive and its command line mentions `marker`. */
export function livePid(pidFile: string, marker: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim().split('\n')[0]);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  try {
    // Guard against pid reuse: only a process started for this data directory counts.
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    if (!cmdline.includes(marker)) return undefined;
  } catch {
    return undefined;
  }
  return pid;
}

export async function stopPid(pid: number, graceMs = 15000): Promise<void> {
  // A stopped (SIGSTOP, frozen) process keeps SIGTERM pending until it runs again: SIGCONT
  // follows, so a frozen pgBackRest stops at once instead of after the whole grace time.
  const signal = (sig: NodeJS.Signals): boolean => {
    try {
      // Detached children lead their own process group: signal the group so helpers go too.
      process.kill(-pid, sig);
      return true;
    } catch {
      try {
        process.kill(pid, sig);
        return true;
      } catch {
        return false;
      }
    }
  };
  if (!signal('SIGTERM')) return;
  signal('SIGCONT');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await delay(100);
  if (isAlive(pid)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    const killDeadline = Date.now() + 5000;
    while (isAlive(pid) && Date.now() < killDeadline) await delay(100);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True when something accepts TCP connections on host:port. */
export function portAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when we could bind host:port right now. */
export function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Polls `probe` until it returns true; otherwise fails with `what` and the last reason seen. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean | string>,
  opts: { timeoutMs: number; intervalMs?: number; hint?: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = '';
  for (;;) {
    try {
      const result = await probe();
      if (result === true) return;
      if (typeof result === 'string') last = result;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} did not become ready within ${Math.round(opts.timeoutMs / 1000)} s${last ? ` (last: ${last})` : ''}${opts.hint ? `: ${opts.hint}` : ''}.`);
    }
    await delay(opts.intervalMs ?? 250);
  }
}

/** Makes a directory owned by `user` (when we are root and it is someone else). */
export async function ensureDir(dir: string, opts: { owner?: string; mode?: number } = {}): Promise<void> {
  fs.mkdirSync(dir, { recursive: true, mode: opts.mode });
  if (opts.mode !== undefined) fs.chmodSync(dir, opts.mode);
  if (opts.owner && opts.owner !== currentUser()) await run('chown', ['-R', `${opts.owner}:`, dir]);
}

export function tailFile(file: string, lines = 5): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
