/**
 * The archive of a configuration directory (a `targets.directories` entry): a manifest of every
 * entry, then the bytes of every regular file, in manifest order. Before upload it is gzipped and
 * encrypted (lifeboat-enc-v2, bound to kind=directory, the target and the backup id).
 *
 * Format lifeboat-dir-v1 (integers big-endian):
 *
 *   offset  size  field
 *   0       10    magic, ASCII "LBOATDIR1\n"
 *   10      4     manifest length M
 *   14      M     manifest, UTF-8 JSON (DirectoryManifest)
 *   then, for each entry of type "file" in manifest order: exactly `size` bytes of its content
 *
 * The manifest comes first so a restore knows every path, owner and mode before it writes, and a
 * gate can show what an in-place restore overwrites by reading only the head. Every entry records
 * path (relative, "/"-separated), type (dir, file, symlink), permission bits (mode & 0o7777), uid
 * and gid with their names on the backed-up host, mtime (ms since the epoch), size and SHA-256
 * (files) or link text (symlinks; a symlink is kept as a link, never followed). Sockets, FIFOs and
 * devices are listed under `skipped`. Files are hashed when the manifest is made and again while
 * streamed; a file that changed in between fails the archive (the activity retries).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { LifeboatError } from '../domain/errors';
import type { DirectoryEntry, DirectoryManifest } from '../domain/directory-backup';

export const DIRECTORY_ARCHIVE_FORMAT = 'lifeboat-dir-v1';
const MAGIC = Buffer.from('LBOATDIR1\n', 'ascii');
/** A manifest larger than this is refused: a configuration directory is not a file share. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/** uid → user name and gid → group name from /etc/passwd and /etc/group (empty when unreadable). */
export function accountNames(etc = '/etc'): { users: Map<number, string>; groups: Map<number, string> } {
  const read = (file: string) => {
    const out = new Map<number, string>();
    try {
      for (const line of fs.readFileSync(path.join(etc, file), 'utf8').split('\n')) {
        const [name, , id] = line.split(':');
        if (name && id && /^\d+$/.test(id) && !out.has(Number(id))) out.set(Number(id), name);
      }
    } catch {
      // No names: numeric ids are what is restored anyway.
    }
    return out;
  };
  return { users: read('passwd'), groups: read('group') };
}

export { mtimeToSet };

export async function sha256OfFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of fs.createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** A modification time in whole milliseconds, from the nanoseconds the file system keeps (no floating point). */
async function mtimeMsOf(p: string): Promise<number> {
  return Number((await fsp.lstat(p, { bigint: true })).mtimeNs / 1000000n);
}

/** The time to set for a recorded mtime: half a microsecond into the millisecond, so the float seconds utimes takes cannot fall into the one before. */
function mtimeToSet(ms: number): number {
  return (ms + 0.0005) / 1000;
}

/** Every entry under `root` (root itself is the entry "."), sorted so parents come before children. */
export async function scanDirectory(root: string): Promise<{ entries: DirectoryEntry[]; skipped: string[] }> {
  const names = accountNames();
  const entries: DirectoryEntry[] = [];
  const skipped: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '.' ? root : path.join(root, rel);
    const st = await fsp.lstat(abs);
    const base = { path: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, user: names.users.get(st.uid), group: names.groups.get(st.gid), mtimeMs: await mtimeMsOf(abs) };
    if (st.isDirectory()) {
      entries.push({ ...base, type: 'dir' });
      const children = (await fsp.readdir(abs)).sort();
      for (const child of children) await visit(rel === '.' ? child : `${rel}/${child}`);
    } else if (st.isSymbolicLink()) {
      entries.push({ ...base, type: 'symlink', linkTarget: await fsp.readlink(abs) });
    } else if (st.isFile()) {
      const { sha256, size } = await sha256OfFile(abs);
      entries.push({ ...base, type: 'file', size, sha256 });
    } else {
      skipped.push(rel);
    }
  };
  await visit('.');
  return { entries, skipped };
}

export function manifestBytes(m: DirectoryManifest): Buffer {
  return Buffer.from(JSON.stringify(m), 'utf8');
}

export function manifestSha256(m: DirectoryManifest): string {
  return createHash('sha256').update(manifestBytes(m)).digest('hex');
}

/** The archive of `root` as a stream: magic, manifest, then every file's bytes, each re-hashed against the manifest as it goes. */
export function archiveStream(root: string, manifest: DirectoryManifest): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    const head = manifestBytes(manifest);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(head.length);
    yield MAGIC;
    yield len;
    yield head;
    for (const e of manifest.entries) {
      if (e.type !== 'file') continue;
      const abs = path.join(root, e.path);
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of fs.createReadStream(abs)) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > e.size!) break;
        hash.update(buf);
        yield buf;
      }
      if (size !== e.size || hash.digest('hex') !== e.sha256) {
        throw new LifeboatError(`${abs} changed while it was being archived (its size or SHA-256 differs from the manifest made moments before); lifeboat will retry the archive.`, 'DIRECTORY_CHANGED', false);
      }
    }
  }
  return Readable.from(generate(), { objectMode: false });
}

/** Reads exact byte counts from a stream of chunks. */
class ChunkReader {
  private buffered: Buffer[] = [];
  private length = 0;
  private done = false;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.length < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else {
        const buf = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
        this.buffered.push(buf);
        this.length += buf.length;
      }
    }
    return this.length >= n;
  }

  async exact(n: number, what: string): Promise<Buffer> {
    if (!(await this.fill(n))) throw damaged(`it ends inside ${what}`);
    const all = Buffer.concat(this.buffered);
    this.buffered = all.length > n ? [all.subarray(n)] : [];
    this.length = all.length - n;
    return all.subarray(0, n);
  }

  /** Up to `max` bytes (at least one unless the stream ended). */
  async some(max: number): Promise<Buffer | undefined> {
    if (!(await this.fill(1))) return undefined;
    const first = this.buffered.shift()!;
    if (first.length <= max) {
      this.length -= first.length;
      return first;
    }
    this.buffered.unshift(first.subarray(max));
    this.length -= max;
    return first.subarray(0, max);
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }
}

const damaged = (why: string) => new LifeboatError(`The directory archive is damaged: ${why}; restore from another backup or the other region's copy.`, 'ARCHIVE_DAMAGED');

export interface ArchiveVisitor {
  /** The manifest, before any content. */
  manifest?(m: DirectoryManifest): void | Promise<void>;
  /** A file's content in order; its chunks must be consumed before the next file begins. */
  file?(entry: DirectoryEntry, chunks: AsyncIterable<Buffer>): Promise<void>;
}

/** The manifest of an archive, reading only its head. */
export async function readManifest(source: AsyncIterable<Buffer>): Promise<DirectoryManifest> {
  const reader = new ChunkReader(source[Symbol.asyncIterator]());
  return readHead(reader);
}

async function readHead(reader: ChunkReader): Promise<DirectoryManifest> {
  const magic = await reader.exact(MAGIC.length, 'its magic');
  if (!magic.equals(MAGIC)) throw damaged('it does not start with the lifeboat-dir-v1 magic');
  const len = (await reader.exact(4, 'its manifest length')).readUInt32BE(0);
  if (len > MAX_MANIFEST_BYTES) throw damaged(`its manifest length ${len} is over ${MAX_MANIFEST_BYTES}`);
  let m: DirectoryManifest;
  try {
    m = JSON.parse((await reader.exact(len, 'its manifest')).toString('utf8')) as DirectoryManifest;
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw damaged('its manifest is not JSON');
  }
  if (m.format !== DIRECTORY_ARCHIVE_FORMAT || !Array.isArray(m.entries)) throw damaged(`its manifest is not ${DIRECTORY_ARCHIVE_FORMAT}`);
  for (const e of m.entries) {
    if (!isSafeRelative(e.path)) throw damaged(`its manifest lists ${JSON.stringify(e.path)}, which leaves the directory`);
  }
  return m;
}

/** Whether a manifest path stays inside the directory: ".", or relative, "/"-separated, without "..". */
export function isSafeRelative(p: string): boolean {
  if (p === '.') return true;
  if (!p || p.startsWith('/') || p.includes('\0')) return false;
  return p.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** Walks an archive: the manifest, then every file's content; fails on trailing bytes or a short file. */
export async function readArchive(source: AsyncIterable<Buffer>, visitor: ArchiveVisitor): Promise<DirectoryManifest> {
  const reader = new ChunkReader(source[Symbol.asyncIterator]());
  const m = await readHead(reader);
  await visitor.manifest?.(m);
  for (const e of m.entries) {
    if (e.type !== 'file') continue;
    let left = e.size ?? 0;
    async function* chunks(): AsyncGenerator<Buffer> {
      while (left > 0) {
        const c = await reader.some(left);
        if (!c) throw damaged(`it ends inside ${e.path}`);
        left -= c.length;
        yield c;
      }
    }
    if (visitor.file) await visitor.file(e, chunks());
    // Whatever the visitor did not read is skipped.
    for await (const _ of chunks());
  }
  if (!(await reader.atEnd())) throw damaged('it has bytes after its last file');
  return m;
}

/** Per-entry SHA-256 of an archive's content against its manifest: the mismatches (empty when all match). */
export async function checkArchive(source: AsyncIterable<Buffer>): Promise<{ manifest: DirectoryManifest; files: number; bytes: number; mismatches: string[] }> {
  let files = 0;
  let bytes = 0;
  const mismatches: string[] = [];
  const manifest = await readArchive(source, {
    async file(e, chunks) {
      const hash = createHash('sha256');
      for await (const c of chunks) {
        hash.update(c);
        bytes += c.length;
      }
      files++;
      if (hash.digest('hex') !== e.sha256) mismatches.push(e.path);
    },
  });
  return { manifest, files, bytes, mismatches };
}

/**
 * Writes an archive's entries into `dir` (which must exist and be empty): directories, files
 * (content hashed as written), symlinks; then owners, modes and mtimes as recorded, directories
 * last and deepest first so writing inside them does not move their mtimes. `chown` false skips
 * ownership (a worker that is not root cannot give files away).
 */
export async function extractArchive(source: AsyncIterable<Buffer>, dir: string, options: { chown: boolean; onFile?: (bytes: number) => void; signal?: AbortSignal } = { chown: true }): Promise<{ manifest: DirectoryManifest; files: number; bytes: number; mismatches: string[] }> {
  let files = 0;
  let bytes = 0;
  const mismatches: string[] = [];
  const where = (e: DirectoryEntry) => (e.path === '.' ? dir : path.join(dir, e.path));
  const manifest = await readArchive(source, {
    async manifest(m) {
      for (const e of m.entries) {
        if (e.type === 'dir') await fsp.mkdir(where(e), { recursive: true, mode: 0o700 });
      }
    },
    async file(e, chunks) {
      // A cancelled activity stops between files; the workflow's compensation removes what was written.
      if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new Error('cancelled');
      const hash = createHash('sha256');
      const handle = await fsp.open(where(e), 'wx', 0o600);
      try {
        for await (const c of chunks) {
          hash.update(c);
          await handle.write(c);
          bytes += c.length;
          options.onFile?.(bytes);
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      files++;
      if (hash.digest('hex') !== e.sha256) mismatches.push(e.path);
    },
  });
  // Links last: a file listed under a link's path would otherwise be written through it.
  for (const e of manifest.entries) if (e.type === 'symlink') await fsp.symlink(e.linkTarget!, where(e));
  await applyAttributes(dir, manifest.entries, options.chown);
  return { manifest, files, bytes, mismatches };
}

/** Owners, modes and mtimes of `entries` under `dir`, as recorded: files and links first, then directories deepest first. */
export async function applyAttributes(dir: string, entries: DirectoryEntry[], chown: boolean): Promise<void> {
  const where = (e: DirectoryEntry) => (e.path === '.' ? dir : path.join(dir, e.path));
  const depth = (e: DirectoryEntry) => (e.path === '.' ? 0 : e.path.split('/').length);
  const ordered = [...entries.filter((e) => e.type !== 'dir'), ...entries.filter((e) => e.type === 'dir').sort((a, b) => depth(b) - depth(a))];
  for (const e of ordered) {
    const p = where(e);
    const t = mtimeToSet(e.mtimeMs);
    if (e.type === 'symlink') {
      if (chown) await fsp.lchown(p, e.uid, e.gid);
      await fsp.lutimes(p, t, t);
      continue;
    }
    if (chown) await fsp.chown(p, e.uid, e.gid);
    // chmod after chown: chown clears setuid/setgid bits.
    await fsp.chmod(p, e.mode);
    await fsp.utimes(p, t, t);
  }
}

export interface TreeDifference {
  path: string;
  what: string;
}

/** How the tree at `dir` differs from the manifest's entries (type, content, mode, owner, mtime, link); `only` limits the paths compared. */
export async function compareTree(dir: string, entries: DirectoryEntry[], options: { owners: boolean } = { owners: true }): Promise<TreeDifference[]> {
  const out: TreeDifference[] = [];
  for (const e of entries) {
    const p = e.path === '.' ? dir : path.join(dir, e.path);
    let st: fs.Stats;
    try {
      st = await fsp.lstat(p);
    } catch {
      out.push({ path: e.path, what: 'missing' });
      continue;
    }
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
    if (type !== e.type) {
      out.push({ path: e.path, what: `is a ${type}, not a ${e.type}` });
      continue;
    }
    if (e.type === 'file') {
      const { sha256, size } = await sha256OfFile(p);
      if (size !== e.size || sha256 !== e.sha256) out.push({ path: e.path, what: `content differs (SHA-256 ${sha256.slice(0, 12)}…, ${size} bytes; recorded ${e.sha256!.slice(0, 12)}…, ${e.size} bytes)` });
    }
    if (e.type === 'symlink' && (await fsp.readlink(p)) !== e.linkTarget) out.push({ path: e.path, what: `links to ${await fsp.readlink(p)}, not ${e.linkTarget}` });
    if (e.type !== 'symlink' && (st.mode & 0o7777) !== e.mode) out.push({ path: e.path, what: `mode ${(st.mode & 0o7777).toString(8)}, not ${e.mode.toString(8)}` });
    if (options.owners && (st.uid !== e.uid || st.gid !== e.gid)) out.push({ path: e.path, what: `owner ${st.uid}:${st.gid}, not ${e.uid}:${e.gid}` });
    const mtime = await mtimeMsOf(p);
    if (mtime !== e.mtimeMs) out.push({ path: e.path, what: `mtime ${new Date(mtime).toISOString()}, not ${new Date(e.mtimeMs).toISOString()}` });
  }
  return out;
}
