/**
 * Child processes, the one place lifeboat spawns them: run a command to completion, start a
 * server in the background with a pid file, stop exactly that process again, check ports, wait
 * for health. Engines (pgBackRest, pg_dump) and the embedded stack both use it, so it lives
 * outside both.
 */
import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { Context } from '@temporalio/activity';

export interface RunResult {
  code: number;
  /** The last `maxStdoutBytes` of standard output, decoded as UTF-8. */
  stdout: string;
  /** The last `maxStderrBytes` of standard error, decoded as UTF-8. */
  stderr: string;
  /** Bytes cut from the start of each stream to respect its bound; 0 when nothing was cut. */
  cutBytes: { stdout: number; stderr: number };
}

/**
 * Standard output is what callers parse (pgBackRest's JSON, pg_waldump's listing of a whole WAL
 * segment, tens of MiB), so its bound is generous; standard error only feeds messages.
 */
export const DEFAULT_MAX_STDOUT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_STDERR_BYTES = 1024 * 1024;

/**
 * The last `maxBytes` bytes of a stream, kept as bytes and decoded once at the end, so a UTF-8
 * character split between two chunks is decoded whole and a chatty child cannot fill memory.
 */
export class OutputTail {
  private chunks: Buffer[] = [];
  private keptBytes = 0;
  /** Bytes dropped from the start so far. */
  cutBytes = 0;

  constructor(readonly maxBytes: number) {
    if (!(maxBytes >= 0)) throw new Error(`an output bound must be a number of bytes, 0 or more (got ${maxBytes}).`);
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.keptBytes += chunk.length;
    while (this.keptBytes > this.maxBytes) {
      const first = this.chunks[0];
      const excess = this.keptBytes - this.maxBytes;
      if (first.length <= excess) {
        this.chunks.shift();
        this.keptBytes -= first.length;
        this.cutBytes += first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.keptBytes -= excess;
        this.cutBytes += excess;
      }
    }
  }

  text(): string {
    let bytes = Buffer.concat(this.chunks, this.keptBytes);
    if (this.cutBytes > 0) {
      // The cut may have fallen inside a character: start at the next character's first byte.
      let start = 0;
      while (start < bytes.length && start < 3 && (bytes[start] & 0xc0) === 0x80) start++;
      bytes = bytes.subarray(start);
    }
    return bytes.toString('utf8');
  }
}

/** Says, in an error message, that the output it quotes is only the end of what the command wrote. */
function cutNote(stream: string, cutBytes: number): string {
  return cutBytes > 0 ? ` (the first ${cutBytes} bytes of ${stream} were cut)` : '';
}

/**
 * What a child may see of the worker's environment: where programs are, who and where it runs,
 * its language and time zone. Nothing else: the worker's environment holds secrets
 * (secretRef env:NAME), and pgBackRest and libpq read PGBACKREST_* and PG* variables as settings,
 * so those reach a child only when lifeboat sets them for that call.
 */
export const INHERITED_ENV_NAMES = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'TERM'] as const;

/** The allowlisted part of `base` (default: this process's environment), with `set` on top. */
export function childEnvironment(set: NodeJS.ProcessEnv = {}, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) {
    if (value !== undefined && ((INHERITED_ENV_NAMES as readonly string[]).includes(name) || name.startsWith('LC_'))) env[name] = value;
  }
  for (const [name, value] of Object.entries(set)) if (value !== undefined) env[name] = value;
  return env;
}

/** How a child's environment is made from ours. */
export type EnvInheritance =
  /** childEnvironment: the allowlist, plus `env` (the default). */
  | 'allowlisted'
  /** `env` alone. */
  | 'none'
  /** Everything we have, plus `env`: only for lifeboat's own processes (the stack's worker) that resolve secrets themselves. */
  | 'all';

function environmentFor(inherit: EnvInheritance | undefined, env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  if (inherit === 'none') return { ...env };
  if (inherit === 'all') return { ...process.env, ...env };
  return childEnvironment(env);
}

export interface RunOptions {
  /** Run as this OS user (root drops privileges through runuser); undefined = the current user. */
  asUser?: string;
  /** Variables set for this call, on top of what `inheritEnv` keeps. */
  env?: NodeJS.ProcessEnv;
  /** Default 'allowlisted' (see childEnvironment); 'none': the child gets `env` alone. */
  inheritEnv?: EnvInheritance;
  cwd?: string;
  input?: string;
  /** Fail unless the exit code is 0 (default true). */
  check?: boolean;
  timeoutMs?: number;
  /** Keep at most this many bytes from the end of standard output (default DEFAULT_MAX_STDOUT_BYTES). */
  maxStdoutBytes?: number;
  /** Keep at most this many bytes from the end of standard error (default DEFAULT_MAX_STDERR_BYTES). */
  maxStderrBytes?: number;
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
      env: environmentFor(options.inheritEnv, options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout = new OutputTail(options.maxStdoutBytes ?? DEFAULT_MAX_STDOUT_BYTES);
    const stderr = new OutputTail(options.maxStderrBytes ?? DEFAULT_MAX_STDERR_BYTES);
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
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
      const result: RunResult = {
        code: code ?? (exitSignal ? 128 : 1),
        stdout: stdout.text(),
        stderr: stderr.text(),
        cutBytes: { stdout: stdout.cutBytes, stderr: stderr.cutBytes },
      };
      if (options.check !== false && result.code !== 0) {
        const fromStderr = result.stderr.trim() !== '';
        const tail = (fromStderr ? result.stderr : result.stdout).trim().split('\n').slice(-8).join('\n');
        const note = fromStderr ? cutNote('standard error', stderr.cutBytes) : cutNote('standard output', stdout.cutBytes);
        reject(new Error(`${[command, ...args].join(' ')} exited with ${exitSignal ?? result.code}${note}: ${tail}`));
      } else resolve(result);
    });
    // A child may exit before reading its input; that is its exit code's story, not a crash.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** A child whose standard output the caller streams; its exit and the tail of its standard error. */
export interface StreamingChild {
  child: ChildProcess;
  /** Resolves once: exit code (127 when it could not start, 128 for a signal) and the last of its stderr. */
  exited: Promise<{ code: number; stderr: string; stderrCutBytes: number }>;
}

/**
 * Starts a program whose output is a stream (pg_dump into an upload, pg_restore --list reading
 * one): stdout stays piped for the caller, stderr is kept as a bounded tail for messages.
 */
export function startStreaming(
  command: string,
  args: string[],
  options: {
    /** Variables set for this call, on top of the allowlisted ones (see childEnvironment). */
    env?: NodeJS.ProcessEnv;
    stdin: 'pipe' | 'ignore';
    /** Default: the activity's cancellation signal; the child gets SIGTERM when it fires. */
    signal?: AbortSignal;
    maxStderrBytes?: number;
  },
): StreamingChild {
  const child = spawn(command, args, {
    env: childEnvironment(options.env),
    stdio: [options.stdin, 'pipe', 'pipe'],
    signal: options.signal ?? activityCancellationSignal(),
    killSignal: 'SIGTERM',
  });
  const stderr = new OutputTail(options.maxStderrBytes ?? DEFAULT_MAX_STDERR_BYTES);
  child.stderr!.on('data', (d: Buffer) => stderr.push(d));
  const exited = new Promise<{ code: number; stderr: string; stderrCutBytes: number }>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      const said = err.code === 'ENOENT' ? `ENOENT: ${command} is not installed` : err.message;
      // 'close' does not follow a failed spawn.
      resolve({ code: 127, stderr: said, stderrCutBytes: 0 });
    });
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stderr: stderr.text().trim(), stderrCutBytes: stderr.cutBytes }));
  });
  return { child, exited };
}

/** Starts a long-running server detached from us, output appended to `logFile`, pid in `pidFile`. */
export function startDetached(
  command: string,
  args: string[],
  opts: { logFile: string; pidFile: string; env?: NodeJS.ProcessEnv; cwd?: string; asUser?: string; inheritEnv?: EnvInheritance },
): number {
  const [cmd, argv] = asUserCommand(opts.asUser, command, args);
  const log = fs.openSync(opts.logFile, 'a');
  const spawnOptions: SpawnOptions = {
    cwd: opts.cwd ?? '/',
    env: environmentFor(opts.inheritEnv, opts.env),
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
