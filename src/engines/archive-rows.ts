/**
 * Row counts of a pg_dump archive, taken from the archive itself: `pg_restore --data-only
 * --file=-` turns its data into COPY blocks, and each block holds one line per row (COPY's text
 * format escapes newlines inside values). Used to check a restore against what the dump holds,
 * without trusting the restored database to say so.
 */
import type { ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';

const NEWLINE = 0x0a;
const COPY_START = /^COPY (.+?) (?:\(.*\) )?FROM stdin;$/;
const COPY_END = '\\.';

/** Counts the rows of each COPY block in pg_restore's SQL output; table names as pg_restore wrote them (quoted where needed). */
export class CopyRowCounter {
  readonly counts: Record<string, number> = {};
  private current: string | undefined;
  private carry: Buffer | undefined;

  push(data: Buffer): void {
    let buf = this.carry ? Buffer.concat([this.carry, data]) : data;
    this.carry = undefined;
    let pos = 0;
    for (;;) {
      const nl = buf.indexOf(NEWLINE, pos);
      if (nl < 0) break;
      this.line(buf, pos, nl);
      pos = nl + 1;
    }
    if (pos < buf.length) {
      buf = buf.subarray(pos);
      // Keep a copy: the parent buffer may be large and is otherwise free to go.
      this.carry = Buffer.from(buf);
    }
  }

  end(): void {
    if (this.carry?.length) this.line(this.carry, 0, this.carry.length);
    this.carry = undefined;
  }

  private line(buf: Buffer, start: number, end: number): void {
    if (this.current !== undefined) {
      if (end - start === 2 && buf[start] === 0x5c && buf[start + 1] === 0x2e) {
        this.current = undefined;
        return;
      }
      this.counts[this.current]++;
      return;
    }
    // Only the short lines outside data blocks are decoded.
    if (end - start > 8192 || buf[start] !== 0x43 /* C */) return;
    const text = buf.toString('utf8', start, end);
    if (text === COPY_END) return;
    const m = COPY_START.exec(text);
    if (!m) return;
    this.current = m[1];
    this.counts[this.current] ??= 0;
  }
}

/** Feeds a child's stdout to a counter; resolves with the counts once stdout ends. */
export function countRowsFrom(child: ChildProcess): Promise<Record<string, number>> {
  const counter = new CopyRowCounter();
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => counter.push(d));
    child.stdout!.on('error', reject);
    child.stdout!.on('end', () => {
      counter.end();
      resolve(counter.counts);
    });
  });
}

/**
 * A sink that writes every chunk to all `sinks` and moves on when all have taken it: the
 * slowest reader paces the stream, and memory stays bounded. A sink that closed (a reader that
 * has what it needs) is skipped from then on.
 */
export function fanOut(sinks: Writable[]): Writable {
  const open = new Set(sinks);
  for (const s of sinks) {
    const gone = () => open.delete(s);
    s.on('close', gone);
    s.on('error', gone);
  }
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      let waiting = 1;
      const settle = () => {
        if (--waiting === 0) done();
      };
      for (const s of open) {
        if (s.write(chunk)) continue;
        waiting++;
        const resume = () => {
          s.off('drain', resume);
          s.off('close', resume);
          s.off('error', resume);
          settle();
        };
        s.on('drain', resume);
        s.on('close', resume);
        s.on('error', resume);
      }
      settle();
    },
    final(done) {
      for (const s of open) s.end();
      done();
    },
  });
}
