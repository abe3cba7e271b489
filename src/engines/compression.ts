/**
 * Compression of logical dumps as streams. New dumps are compressed by the `zstd` program (multi-
 * threaded, several times faster than Node's single-stream gzip at a better ratio); dumps written
 * before are gzip and stay readable. Node 20's zlib has no zstd, so zstd runs as a child process
 * wrapped as a Duplex stream: bytes in on its stdin, out of its stdout, and the stream fails when
 * the program exits with an error. Readers pick the decompressor from the data's own magic bytes
 * and check it against what the encrypted header declares (see docs/encryption.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import type { ChildProcess } from 'node:child_process';
import { LifeboatError } from '../domain/errors';
import { startStreaming } from '../platform/processes';
import type { DumpCompression } from './crypto-stream';

export type { DumpCompression } from './crypto-stream';

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** The zstd program: $LIFEBOAT_ZSTD, else `zstd` on PATH. */
export function zstdCommand(): string {
  return process.env.LIFEBOAT_ZSTD || 'zstd';
}

/** Whether the zstd program can be started here (an absolute path that exists, or a name found on PATH). */
export function zstdAvailable(): boolean {
  const command = zstdCommand();
  const executable = (p: string) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (command.includes('/')) return executable(command);
  return (process.env.PATH ?? '').split(':').filter(Boolean).some((dir) => executable(path.join(dir, command)));
}

/** The compression whose magic `head` starts with; undefined when it is neither. */
export function sniffCompression(head: Buffer): DumpCompression | undefined {
  if (head.length >= ZSTD_MAGIC.length && head.subarray(0, ZSTD_MAGIC.length).equals(ZSTD_MAGIC)) return 'zstd';
  if (head.length >= GZIP_MAGIC.length && head.subarray(0, GZIP_MAGIC.length).equals(GZIP_MAGIC)) return 'gzip';
  return undefined;
}

function decompressionError(detail: string): LifeboatError {
  return new LifeboatError(`The dump's compressed data is damaged (${detail}): restore from another copy (the DR region's) or take a new backup.`, 'DECOMPRESSION_FAILED');
}

/**
 * A program as a transform stream: what is written goes to its stdin, its stdout is read. The
 * stream ends only once the program exited with 0, and fails with `failure(stderr)` otherwise;
 * destroying the stream stops the program. Backpressure is the pipes' own.
 */
class ProgramStream extends Duplex {
  private readonly child: ChildProcess;
  private stdinGone = false;

  constructor(command: string, args: string[], failure: (said: string, code: number) => Error) {
    super();
    const started = startStreaming(command, args, { stdin: 'pipe' });
    this.child = started.child;
    const stdin = this.child.stdin!;
    const stdout = this.child.stdout!;
    stdin.on('error', () => (this.stdinGone = true));
    stdin.on('close', () => (this.stdinGone = true));
    stdout.on('data', (d: Buffer) => {
      if (!this.push(d)) stdout.pause();
    });
    const exitedBad = started.exited.then((r) => (r.code === 0 ? undefined : failure(r.stderr.split('\n').filter(Boolean).slice(-2).join(' / ') || `exit code ${r.code}`, r.code)));
    // An error exit fails the stream at once (a writer may be waiting on a pipe nobody reads).
    void exitedBad.then((err) => err && this.destroy(err));
    stdout.on('end', () => {
      void exitedBad.then((err) => (err ? this.destroy(err) : this.push(null)));
    });
  }

  override _read(): void {
    this.child.stdout!.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    const stdin = this.child.stdin!;
    if (this.stdinGone) return done();
    if (stdin.write(chunk)) return done();
    const resume = () => {
      stdin.off('drain', resume);
      stdin.off('close', resume);
      done();
    };
    stdin.on('drain', resume);
    stdin.on('close', resume);
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.stdinGone) this.child.stdin!.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    done(err);
  }
}

export interface CompressOptions {
  /** zstd level (default 3) or gzip level (default 6). */
  level?: number;
  /** zstd worker threads; 0 (the default) is one per core. */
  threads?: number;
}

/** A compressing stream: zstd (the program) or gzip (Node's zlib). */
export function createCompressStream(compression: DumpCompression, options: CompressOptions = {}): Duplex {
  if (compression === 'gzip') return zlib.createGzip({ level: options.level ?? 6 });
  const args = [`-${options.level ?? 3}`, `-T${options.threads ?? 0}`, '-q', '-c', '-'];
  return new ProgramStream(zstdCommand(), args, (said, code) =>
    code === 127
      ? new LifeboatError(`zstd is not installed where lifeboat looks (${said}): install the zstd package or set LIFEBOAT_ZSTD to the program.`, 'TOOL_MISSING')
      : new LifeboatError(`zstd failed while compressing the dump (${said}); lifeboat will retry.`, 'COMPRESSION_FAILED', false),
  );
}

/** A decompressing stream for data known to be `compression`. */
export function createDecompressStream(compression: DumpCompression): Duplex {
  if (compression === 'gzip') return zlib.createGunzip();
  return new ProgramStream(zstdCommand(), ['-d', '-q', '-c', '-'], (said, code) =>
    code === 127
      ? new LifeboatError(`zstd is not installed where lifeboat looks (${said}), and this dump is zstd: install the zstd package or set LIFEBOAT_ZSTD to the program.`, 'TOOL_MISSING')
      : decompressionError(`zstd: ${said}`),
  );
}

/**
 * Decompresses whatever comes: gzip or zstd, told apart by their magic bytes. `declared`, read
 * when the first bytes arrive (after the encrypted header has been read), is what the header says
 * the data is; data that is something else is refused as damaged. `onDetected` learns the kind.
 */
export function createAutoDecompressStream(options: { declared?: () => DumpCompression | undefined; onDetected?: (c: DumpCompression) => void } = {}): Duplex {
  return new AutoDecompress(options);
}

class AutoDecompress extends Duplex {
  private inner?: Duplex;
  private head: Buffer[] = [];
  private headBytes = 0;

  constructor(private readonly options: { declared?: () => DumpCompression | undefined; onDetected?: (c: DumpCompression) => void }) {
    super();
  }

  private open(head: Buffer): void {
    const found = sniffCompression(head);
    if (!found) throw decompressionError('it starts with neither the gzip nor the zstd magic bytes');
    const declared = this.options.declared?.();
    if (declared && declared !== found) throw decompressionError(`its header declares ${declared} but the data is ${found}`);
    this.options.onDetected?.(found);
    const inner = createDecompressStream(found);
    this.inner = inner;
    inner.on('data', (d: Buffer) => {
      if (!this.push(d)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err: Error) => this.destroy(err));
  }

  private forward(chunk: Buffer, done: (err?: Error | null) => void): void {
    const inner = this.inner!;
    if (inner.write(chunk)) return done();
    const resume = () => {
      inner.off('drain', resume);
      inner.off('close', resume);
      done();
    };
    inner.on('drain', resume);
    inner.on('close', resume);
  }

  override _read(): void {
    this.inner?.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.inner) return this.forward(chunk, done);
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes < ZSTD_MAGIC.length) return done();
    const first = Buffer.concat(this.head);
    this.head = [];
    try {
      this.open(first);
    } catch (err) {
      return done(err as Error);
    }
    this.forward(first, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.inner) {
      if (this.headBytes === 0) return done(decompressionError('the archive is empty'));
      const first = Buffer.concat(this.head);
      try {
        this.open(first);
      } catch (err) {
        return done(err as Error);
      }
      this.inner!.end(first);
      return done();
    }
    this.inner.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.inner && !this.inner.destroyed) this.inner.destroy();
    done(err);
  }
}
