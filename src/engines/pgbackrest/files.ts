/**
 * The local files the engine keeps, and how it treats them: names safe for the file system
 * (localName), JSON written atomically, the tail of a log, files handed to the database's OS user.
 * Nothing here knows what a backup or a restore is.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { currentUser, run } from '../../platform/processes';

/** A name used as it is for files and directories: letters, digits and _.-, starting with a letter or digit, at most 63 characters. */
export const VALID_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/**
 * A file-system-safe local name for `name`: a valid name is kept; anything else is rewritten and
 * suffixed with a short hash of the original, so the mapping is deterministic and collision-free.
 */
export function localName(name: string): string {
  if (VALID_NAME.test(name)) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  let base = name.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 50).replace(/[-.]+$/, '');
  if (!base) base = 'lb';
  return `${base}-${hash}`;
}

/** Whether `child` lies strictly inside `parent`. */
export function within(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** The last `bytes` of a file (a log), or nothing when it cannot be read. */
export function readTail(file: string, bytes = 64 * 1024): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.max(0, size - bytes);
      const buf = Buffer.alloc(size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

export function readJsonFile<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Written to a temporary file and renamed: a reader sees the old or the new content, never half. */
export function writeJson(file: string, value: unknown): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

export function removeFiles(...files: string[]): void {
  for (const file of files) fs.rmSync(file, { force: true });
}

function fileStat(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch {
    return undefined;
  }
}

export function fileSize(file: string): number {
  return fileStat(file)?.size ?? 0;
}

export function fileTime(file: string): string | undefined {
  return fileStat(file)?.mtime.toISOString();
}

export async function chownToOsUser(osUser: string, ...paths: string[]): Promise<void> {
  if (osUser === currentUser()) return;
  await run('chown', [`${osUser}:`, ...paths]);
}

/** The restores directory belongs to the OS user: the restore itself runs as that user. */
export async function ensureRestoresDir(restoresDir: string, osUser: string): Promise<void> {
  if (fs.existsSync(restoresDir)) return;
  fs.mkdirSync(restoresDir, { recursive: true, mode: 0o755 });
  await chownToOsUser(osUser, restoresDir);
}

/**
 * Resolves when text matching `wanted` is appended to `file` from now on (watched with inotify
 * through fs.watch: nothing is read until the file changes), after `timeoutMs`, or when `signal`
 * aborts: whichever comes first (`from`: look from that offset on instead of from now). Returns whether the text was seen. A long-running process's log
 * tells when its state changes, so its waiter learns of it at once without reading in a loop.
 */
export async function awaitLogLine(file: string, wanted: RegExp, timeoutMs: number, signal?: AbortSignal, from?: number): Promise<boolean> {
  if (signal?.aborted) return false;
  // From where the caller last looked at the state (so a line written since is not missed), else from now.
  let offset = from ?? fileSize(file);
  return new Promise<boolean>((resolve) => {
    let watcher: fs.FSWatcher | undefined;
    let settled = false;
    const finish = (seen: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      watcher?.close();
      signal?.removeEventListener('abort', aborted);
      resolve(seen);
    };
    const aborted = () => finish(false);
    const look = () => {
      const size = fileSize(file);
      if (size < offset) offset = 0; // rewritten from the start
      if (size === offset) return;
      const fd = fs.openSync(file, 'r');
      try {
        const buf = Buffer.alloc(Math.min(size - offset, 1024 * 1024));
        const read = fs.readSync(fd, buf, 0, buf.length, size - buf.length);
        offset = size;
        if (wanted.test(buf.subarray(0, read).toString('utf8'))) finish(true);
      } finally {
        fs.closeSync(fd);
      }
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    signal?.addEventListener('abort', aborted, { once: true });
    try {
      watcher = fs.watch(file, () => {
        try {
          look();
        } catch {
          finish(false);
        }
      });
      watcher.on('error', () => finish(false));
      // Appended between the size taken above and the watch: looked at now.
      look();
    } catch {
      finish(false);
    }
  });
}
