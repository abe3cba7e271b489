/**
 * Verification of ONE pgBackRest backup set, in time proportional to that set rather than to the
 * repository. pgBackRest 2.45's `verify` ignores --set and re-reads every set and all the WAL the
 * repository holds; this reads the set's own backup.manifest (and its copy) back from the
 * repository with `repo-get`, then every file the manifest lists (its own and those it reuses from
 * the sets it references), decompresses each with the compression tool and compares its size and
 * SHA-1 with what the manifest records, exactly as pgBackRest's verify does per file. The WAL the
 * set needs to be consistent (archive-start to archive-stop) is read the same way: each segment's
 * repository name carries the SHA-1 of its content.
 *
 * Repository access goes through pgBackRest itself (`repo-get`, `repo-ls`), so any repository
 * type and its credentials work as configured. What this cannot read itself (an encrypted
 * repository, where each bundled file carries its own cipher, or block-incremental files) is
 * reported as such so the caller falls back to pgBackRest's whole-repository verify.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { formatBytes } from '../../domain/format';
import { asUserCommand, run, startStreaming } from '../../platform/processes';
import type { PgBackRestCli } from './cli';

/** One file of a backup set as its manifest lists it. */
export interface ManifestFile {
  /** `pg_data/base/5/1259`, as in the manifest. */
  name: string;
  size: number;
  /** SHA-1 of the file's content as backed up. */
  checksum: string;
  /** The set that stores the file when this set reuses it (a diff or incr); undefined: this set. */
  reference?: string;
  /** Bundle the file is stored in, and where in it; undefined: a file of its own. */
  bundleId?: number;
  bundleOffset?: number;
  /** Bytes stored in the repository (compressed); undefined when pgBackRest did not record it. */
  repoSize?: number;
  /** SHA-1 of the stored bytes (pgBackRest's `rck`), when recorded. */
  repoChecksum?: string;
  /** Stored as block-incremental map and blocks, which this module does not read. */
  blockIncremental: boolean;
}

export interface SetManifest {
  label: string;
  archiveStart?: string;
  archiveStop?: string;
  compressType: string;
  bundle: boolean;
  /** The repository is encrypted: files need the manifest's cipher pass. */
  encrypted: boolean;
  files: ManifestFile[];
}

/** A piece of a repository object that holds one file (a whole object, or a slice of a bundle). */
export interface StoredPiece {
  file: ManifestFile;
  offset: number;
  /** Stored length; undefined: to the end of the object. */
  length?: number;
}

/** One object to read from the repository and the files in it, in stored order. */
export interface StoredObject {
  path: string;
  pieces: StoredPiece[];
}

const SHA1_EMPTY = createHash('sha1').digest('hex');

const COMPRESSION: Record<string, { extension: string; decompress?: [string, string[]] }> = {
  none: { extension: '' },
  zst: { extension: '.zst', decompress: ['zstd', ['-dcq']] },
  gz: { extension: '.gz', decompress: ['gzip', ['-dc']] },
  lz4: { extension: '.lz4', decompress: ['lz4', ['-dcq']] },
  bz2: { extension: '.bz2', decompress: ['bzip2', ['-dc']] },
};

/** Parses a backup.manifest (pgBackRest's ini, each value JSON) into what verification reads. */
export function parseManifest(text: string): SetManifest {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current && eq > 0) current.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const value = (section: string, key: string): unknown => {
    const raw = sections.get(section)?.get(key);
    return raw === undefined ? undefined : JSON.parse(raw);
  };
  const label = value('backup', 'backup-label');
  if (typeof label !== 'string') throw new Error('the manifest has no backup-label: it is not a pgBackRest backup.manifest');
  const files: ManifestFile[] = [];
  for (const [name, raw] of sections.get('target:file') ?? []) {
    const f = JSON.parse(raw) as Record<string, unknown>;
    const number = (k: string) => (typeof f[k] === 'number' ? (f[k] as number) : undefined);
    const size = number('size');
    // An empty file has no checksum in the manifest (nothing was read).
    const checksum = typeof f.checksum === 'string' ? f.checksum : size === 0 ? SHA1_EMPTY : undefined;
    if (size === undefined || checksum === undefined) throw new Error(`the manifest's entry for ${name} has no size or checksum`);
    files.push({
      name,
      size,
      checksum,
      ...(typeof f.reference === 'string' ? { reference: f.reference } : {}),
      ...(number('bni') !== undefined ? { bundleId: number('bni'), bundleOffset: number('bno') ?? 0 } : {}),
      ...(number('repo-size') !== undefined ? { repoSize: number('repo-size') } : {}),
      ...(typeof f.rck === 'string' ? { repoChecksum: f.rck } : {}),
      blockIncremental: f.bi !== undefined || f.bim !== undefined,
    });
  }
  const archiveStart = value('backup', 'backup-archive-start');
  const archiveStop = value('backup', 'backup-archive-stop');
  return {
    label,
    ...(typeof archiveStart === 'string' ? { archiveStart } : {}),
    ...(typeof archiveStop === 'string' ? { archiveStop } : {}),
    compressType: String(value('backup:option', 'option-compress-type') ?? (value('backup:option', 'option-compress') === true ? 'gz' : 'none')),
    bundle: value('backup', 'backup-bundle') === true,
    encrypted: sections.get('cipher')?.has('cipher-pass') === true,
    files,
  };
}

/** Why this module cannot read the set itself, or undefined when it can. */
export function unreadableReason(manifest: SetManifest): string | undefined {
  if (manifest.encrypted) return 'the repository is encrypted';
  if (!COMPRESSION[manifest.compressType]) return `its compression type ${manifest.compressType} is not one lifeboat reads`;
  if (manifest.files.some((f) => f.blockIncremental)) return 'it holds block-incremental files';
  return undefined;
}

/**
 * The repository objects holding the set's files: one per file stored on its own, one per bundle
 * (with the files in it by offset). A zero-length file in a bundled set is not stored at all.
 */
export function storedObjects(manifest: SetManifest, stanza: string): { objects: StoredObject[]; notStored: ManifestFile[] } {
  const extension = COMPRESSION[manifest.compressType]?.extension ?? '';
  const objects = new Map<string, StoredObject>();
  const notStored: ManifestFile[] = [];
  for (const file of manifest.files) {
    const set = `backup/${stanza}/${file.reference ?? manifest.label}`;
    if (file.bundleId !== undefined) {
      const path = `${set}/bundle/${file.bundleId}`;
      const object = objects.get(path) ?? { path, pieces: [] };
      object.pieces.push({ file, offset: file.bundleOffset ?? 0, length: file.repoSize ?? file.size });
      objects.set(path, object);
    } else if (manifest.bundle && file.size === 0) {
      notStored.push(file);
    } else {
      const path = `${set}/${file.name}${extension}`;
      objects.set(path, { path, pieces: [{ file, offset: 0, ...(file.repoSize !== undefined ? { length: file.repoSize } : {}) }] });
    }
  }
  for (const object of objects.values()) object.pieces.sort((a, b) => a.offset - b.offset);
  return { objects: [...objects.values()], notStored };
}

/** What was found wrong with one file or object. */
export interface SetProblem {
  what: string;
  detail: string;
}

/** The outcome of reading a set back. */
export interface SetCheckResult {
  files: number;
  objects: number;
  /** Bytes of file content read back (decompressed). */
  bytes: number;
  /** Sets other than this one whose files it reuses. */
  referenced: string[];
  walSegments: number;
  /** Where the WAL check began when it began before this set: the previous set's last segment. */
  walSince?: string;
  problems: SetProblem[];
}

export interface SetCheckOptions {
  cli: PgBackRestCli;
  osUser: string;
  repo: number;
  timeoutMs: number;
  /** Objects read at once (each is a repo-get and, compressed, a decompressor). */
  concurrency?: number;
}

/**
 * Reads a backup set back from repository `repo` and checks every file its manifest lists, plus
 * the WAL segments from its archive start to its archive stop in archive `archiveId`.
 * Returns `{ unreadable }` when this module cannot read the set (see unreadableReason).
 */
export async function checkBackupSet(options: SetCheckOptions, label: string, archiveId: string | undefined, walSince?: string): Promise<SetCheckResult | { unreadable: string }> {
  const stanza = options.cli.options.stanza;
  const manifestPath = `backup/${stanza}/${label}/backup.manifest`;
  const [main, copy] = await Promise.all([repoGetText(options, manifestPath), repoGetText(options, `${manifestPath}.copy`)]);
  const problems: SetProblem[] = [];
  if (main.error && copy.error) {
    return { files: 0, objects: 0, bytes: 0, referenced: [], walSegments: 0, problems: [{ what: 'backup.manifest', detail: `neither the manifest nor its copy could be read (${main.error})` }] };
  }
  if (main.error || copy.error) problems.push({ what: main.error ? 'backup.manifest' : 'backup.manifest.copy', detail: `could not be read (${main.error ?? copy.error})` });
  else if (main.text !== copy.text) problems.push({ what: 'backup.manifest', detail: 'differs from backup.manifest.copy' });
  let manifest: SetManifest;
  try {
    manifest = parseManifest(main.text ?? copy.text!);
  } catch (err) {
    problems.push({ what: 'backup.manifest', detail: (err as Error).message });
    return { files: 0, objects: 0, bytes: 0, referenced: [], walSegments: 0, problems };
  }
  const unreadable = unreadableReason(manifest);
  if (unreadable) return { unreadable };
  if (manifest.label !== label) problems.push({ what: 'backup.manifest', detail: `names the set ${manifest.label}, not ${label}` });

  const { objects, notStored } = storedObjects(manifest, stanza);
  for (const file of notStored) {
    if (file.checksum !== SHA1_EMPTY) problems.push({ what: file.name, detail: `is empty, but the manifest records SHA-1 ${file.checksum}` });
  }
  let bytes = 0;
  const decompress = COMPRESSION[manifest.compressType].decompress;
  // From the previous set's last segment when the caller names it (same timeline, earlier): the
  // WAL between two backups is what a point-in-time restore between them replays, and checking it
  // here checks each segment once over the life of the repository.
  const walFrom = manifest.archiveStart && walSince && walSince.slice(0, 8) === manifest.archiveStart.slice(0, 8) && walSince < manifest.archiveStart ? walSince : manifest.archiveStart;
  const walSegments = walFrom && manifest.archiveStop && archiveId ? await walToCheck(options, archiveId, walFrom, manifest.archiveStop, problems) : [];
  const tasks: Array<() => Promise<void>> = [
    ...objects.map((object) => async () => {
      const read = await checkObject(options, object, decompress, problems);
      bytes += read; // after the await: `bytes += await ...` would add to a stale total
    }),
    // Each segment is compressed as archive-push found the settings then: its name says how.
    ...walSegments.map((segment) => async () => {
      await checkObject(options, segment, compressionOfName(segment.path), problems);
    }),
  ];
  await inParallel(tasks, options.concurrency ?? 4);
  if (manifest.archiveStart && manifest.archiveStop && !archiveId) problems.push({ what: 'WAL', detail: `the repository has no archive for this set's database, so WAL ${manifest.archiveStart} to ${manifest.archiveStop} cannot be read` });
  const referenced = [...new Set(manifest.files.map((f) => f.reference).filter((r): r is string => !!r && r !== label))].sort();
  return { files: manifest.files.length, objects: objects.length, bytes, referenced, walSegments: walSegments.length, ...(walFrom !== manifest.archiveStart ? { walSince: walFrom } : {}), problems };
}

/** A checked set in one sentence, for the verification check's detail. */
export function describeSetCheck(result: SetCheckResult, label: string, where: string): string {
  const reused = result.referenced.length ? ` (with the files it reuses from ${result.referenced.join(', ')})` : '';
  const segments = `${result.walSegments} WAL segment${result.walSegments === 1 ? '' : 's'}`;
  const wal = !result.walSegments ? '' : result.walSince ? `; the ${segments} from the previous backup's end (${result.walSince}) to its own, which point-in-time restores between them replay,` : `; the ${segments} it needs to be consistent`;
  if (result.problems.length === 0) {
    return `Read the ${result.files} files of ${label}${reused} back from ${where}, ${formatBytes(result.bytes)} in ${result.objects} objects, and found each of the size and SHA-1 its manifest records${wal ? `${wal} ${result.walSegments === 1 ? 'is' : 'are'} archived and valid` : ''}.`;
  }
  const shown = result.problems.slice(0, 3).map((p) => `${p.what} ${p.detail}`);
  const more = result.problems.length > shown.length ? `; and ${result.problems.length - shown.length} more problems` : '';
  return `${label} is damaged in ${where}: ${shown.join('; ')}${more}. Take a new backup, and restore from another one meanwhile.`;
}

async function repoGetText(options: SetCheckOptions, file: string): Promise<{ text?: string; error?: string }> {
  const result = await run(...options.cli.argv('repo-get', [`--repo=${options.repo}`, '--log-level-console=warn'], [file]), { asUser: options.osUser, check: false, timeoutMs: options.timeoutMs }).catch((err: unknown) => ({
    code: -1,
    stdout: '',
    stderr: (err as Error).message,
  }));
  return result.code === 0 ? { text: result.stdout } : { error: lastLine(result.stderr || result.stdout) || `exit code ${result.code}` };
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).pop()?.replace(/^.*?(ERROR: )/, '$1') ?? '';
}

function compressionOfName(path: string): [string, string[]] | undefined {
  return Object.values(COMPRESSION).find((c) => c.extension && path.endsWith(c.extension))?.decompress;
}

/**
 * The WAL segments from `start` to `stop` as objects to check: each one's content must have the
 * SHA-1 its repository name carries. A segment not archived is a problem at once.
 */
async function walToCheck(options: SetCheckOptions, archiveId: string, start: string, stop: string, problems: SetProblem[]): Promise<StoredObject[]> {
  const stanza = options.cli.options.stanza;
  const base = `archive/${stanza}/${archiveId}`;
  const dirs = [...new Set(walDirsBetween(start, stop))];
  const found = new Map<string, { path: string; checksum: string }>();
  for (const dir of dirs) {
    const listing = await run(...options.cli.argv('repo-ls', [`--repo=${options.repo}`, '--output=json', '--log-level-console=warn'], [`${base}/${dir}`]), { asUser: options.osUser, check: false, timeoutMs: options.timeoutMs });
    if (listing.code !== 0) {
      problems.push({ what: `WAL directory ${dir}`, detail: `could not be listed (${lastLine(listing.stderr)})` });
      continue;
    }
    for (const name of Object.keys(JSON.parse(listing.stdout || '{}') as Record<string, unknown>)) {
      const m = /^([0-9A-F]{24})-([0-9a-f]{40})(\.[a-z0-9]+)?$/.exec(name);
      if (m && m[1] >= start && m[1] <= stop && m[1].slice(0, 8) === start.slice(0, 8) && !found.has(m[1])) found.set(m[1], { path: `${base}/${dir}/${name}`, checksum: m[2] });
    }
  }
  for (const segment of segmentsBetween(start, stop, [...found.keys()])) {
    if (!found.has(segment)) problems.push({ what: `WAL segment ${segment}`, detail: 'is not in the archive' });
  }
  // A segment's size is not in its name (16 MiB unless initdb chose another): its SHA-1 covers it.
  return [...found.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([segment, f]) => ({ path: f.path, pieces: [{ file: { name: `WAL segment ${segment}`, size: -1, checksum: f.checksum, blockIncremental: false }, offset: 0 }] }));
}

/** The archive directories (timeline + log id) a range of segments spans. */
export function walDirsBetween(start: string, stop: string): string[] {
  const tli = start.slice(0, 8);
  const from = parseInt(start.slice(8, 16), 16);
  const to = parseInt(stop.slice(8, 16), 16);
  const dirs: string[] = [];
  for (let log = from; log <= to && dirs.length < 4096; log++) dirs.push(`${tli}${log.toString(16).toUpperCase().padStart(8, '0')}`);
  return dirs;
}

/**
 * Every segment name from start to stop. Within one log id the segment numbers run without gaps;
 * where the range crosses a log id, the last number of a log is taken from the names found (a
 * 16 MiB segment size gives FF), so a missing segment at the end of a log still shows.
 */
export function segmentsBetween(start: string, stop: string, found: string[]): string[] {
  const tli = start.slice(0, 8);
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  const fromLog = parseInt(start.slice(8, 16), 16);
  const toLog = parseInt(stop.slice(8, 16), 16);
  const lastOfLog = Math.max(0xff, ...found.map((s) => parseInt(s.slice(16), 16)));
  const names: string[] = [];
  for (let log = fromLog; log <= toLog; log++) {
    const first = log === fromLog ? parseInt(start.slice(16), 16) : 0;
    const last = log === toLog ? parseInt(stop.slice(16), 16) : lastOfLog;
    for (let seg = first; seg <= last && names.length < 1_000_000; seg++) names.push(`${tli}${hex(log)}${hex(seg)}`);
  }
  return names;
}

/**
 * Streams one object out of the repository, slices it into its pieces, decompresses them in one
 * decompressor (compressed pieces are whole frames or members, so their concatenation decompresses
 * to the files one after another) and checks each file's size and SHA-1. A file whose size is -1
 * (a WAL segment) is the whole rest of the stream. Returns the bytes of content read.
 */
async function checkObject(options: SetCheckOptions, object: StoredObject, decompress: [string, string[]] | undefined, problems: SetProblem[]): Promise<number> {
  // What a problem with the whole object is said of: the bundle, or the one file (or WAL segment) it holds.
  const where = object.pieces.some((p) => p.file.bundleId !== undefined) ? `bundle ${object.path}` : object.pieces[0].file.name;
  const get = startStreaming(...asUserCommand(options.osUser, ...options.cli.argv('repo-get', [`--repo=${options.repo}`, '--log-level-console=warn'], [object.path])), { stdin: 'ignore' });
  const unpack = decompress ? startStreaming(decompress[0], decompress[1], { stdin: 'pipe' }) : undefined;
  const timer = setTimeout(() => {
    get.child.kill('SIGKILL');
    unpack?.child.kill('SIGKILL');
  }, options.timeoutMs);
  const splitter = new ContentSplitter(object.pieces.map((p) => p.file));
  const sink: Writable | undefined = unpack?.child.stdin ?? undefined;
  sink?.on('error', () => undefined); // a decompressor that fails early says so in its exit code
  const unpacked = unpack
    ? (async () => {
        for await (const chunk of unpack.child.stdout!) splitter.push(chunk as Buffer);
      })()
    : Promise.resolve();
  const stored = new StoredSlicer(object.pieces);
  try {
    for await (const chunk of get.child.stdout!) {
      for (const part of stored.take(chunk as Buffer)) {
        if (!sink) splitter.push(part);
        // A decompressor that stopped (damaged input) takes no more: the rest is read and dropped.
        else if (!sink.destroyed && !sink.write(part) && !sink.destroyed) await drained(sink);
      }
    }
    if (sink && !sink.destroyed) sink.end();
    const [got, unpackedExit] = await Promise.all([get.exited, unpack?.exited, unpacked]);
    if (got.code !== 0) {
      problems.push({ what: where, detail: `could not be read from the repository (${lastLine(got.stderr) || `exit code ${got.code}`})` });
      return splitter.bytes;
    }
    // Stored bytes that differ from what pgBackRest wrote name the damaged file exactly; the
    // content check after them would only add the files the damage pushed out of alignment.
    const storedProblems = stored.problems(object.path);
    if (storedProblems.length) problems.push(...storedProblems);
    else if (unpackedExit && unpackedExit.code !== 0) {
      problems.push({ what: where, detail: `does not decompress${splitter.current && splitter.current !== where ? ` from ${splitter.current} on` : ''} (${decompress![0]}: ${lastLine(unpackedExit.stderr) || `exit code ${unpackedExit.code}`})` });
    } else problems.push(...splitter.finish());
    return splitter.bytes;
  } finally {
    clearTimeout(timer);
    get.child.kill('SIGKILL');
    unpack?.child.kill('SIGKILL');
  }
}

/**
 * Cuts the stored bytes of an object into the pieces its manifest lists, skipping what lies
 * between them, and checks each piece's stored length and SHA-1 where the manifest records them:
 * that names the damaged file exactly, even when the decompressed stream then loses its alignment.
 */
class StoredSlicer {
  private position = 0;
  private readonly lengths: number[];
  private readonly hashes: Array<Hash | undefined>;

  constructor(private readonly pieces: StoredPiece[]) {
    this.lengths = pieces.map(() => 0);
    this.hashes = pieces.map((p) => (p.file.repoChecksum ? createHash('sha1') : undefined));
  }

  *take(chunk: Buffer): Generator<Buffer> {
    const start = this.position;
    this.position += chunk.length;
    for (let i = 0; i < this.pieces.length; i++) {
      const piece = this.pieces[i];
      const end = piece.length === undefined ? Infinity : piece.offset + piece.length;
      const from = Math.max(piece.offset, start);
      const to = Math.min(end, this.position);
      if (from < to) {
        const part = chunk.subarray(from - start, to - start);
        this.lengths[i] += part.length;
        this.hashes[i]?.update(part);
        yield part;
      }
    }
  }

  problems(where: string): SetProblem[] {
    return this.pieces.flatMap((piece, i) => {
      if (piece.length !== undefined && this.lengths[i] !== piece.length) return [{ what: piece.file.name, detail: `has ${this.lengths[i]} bytes stored in ${where} where the manifest records ${piece.length}` }];
      const stored = this.hashes[i]?.digest('hex');
      if (stored !== undefined && stored !== piece.file.repoChecksum) return [{ what: piece.file.name, detail: `is stored in ${where} with SHA-1 ${stored} where the manifest records ${piece.file.repoChecksum}` }];
      return [];
    });
  }
}

/** Splits decompressed content into the files it holds, in order, hashing each. */
class ContentSplitter {
  private index = 0;
  private got = 0;
  private hash = createHash('sha1');
  private overflow = false;
  private readonly found: SetProblem[] = [];
  bytes = 0;

  constructor(private readonly files: ManifestFile[]) {}

  get current(): string | undefined {
    return this.files[this.index]?.name;
  }

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      const file = this.files[this.index];
      if (!file) {
        const last = this.files[this.files.length - 1];
        if (!this.overflow) this.found.push({ what: last?.name ?? 'object', detail: 'decompresses to more bytes than the manifest records' });
        this.overflow = true;
        return;
      }
      const take = file.size === -1 ? chunk.length - at : Math.min(file.size - this.got, chunk.length - at);
      this.hash.update(chunk.subarray(at, at + take));
      this.got += take;
      at += take;
      if (file.size !== -1 && this.got === file.size) this.close();
    }
  }

  /** Closes files still open (short ones, and the empty ones at the end) and reports what was wrong. */
  finish(): SetProblem[] {
    while (this.index < this.files.length) {
      const file = this.files[this.index];
      if (file.size !== -1 && this.got !== file.size) {
        this.found.push({ what: file.name, detail: `has ${this.got} bytes where the manifest records ${file.size}` });
        this.index++;
        this.got = 0;
        this.hash = createHash('sha1');
      } else this.close();
    }
    return this.found;
  }

  private close(): void {
    const file = this.files[this.index];
    const sha1 = this.hash.digest('hex');
    if (sha1 !== file.checksum) this.found.push({ what: file.name, detail: `has SHA-1 ${sha1} where ${file.size === -1 ? 'its name records' : 'the manifest records'} ${file.checksum}` });
    this.index++;
    this.got = 0;
    this.hash = createHash('sha1');
  }
}

/** Resolves when `sink` takes more input, or can take none any more. */
function drained(sink: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      sink.off('drain', done).off('close', done).off('error', done);
      resolve();
    };
    sink.on('drain', done).on('close', done).on('error', done);
  });
}

async function inParallel(tasks: Array<() => Promise<void>>, concurrency: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
}
