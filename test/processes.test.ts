/**
 * The process module (src/platform/processes.ts): output is kept as a bounded tail, decoded as
 * UTF-8 only once, so characters split between chunks survive and a chatty child cannot fill
 * memory. No server needed: the children are small node scripts.
 */
import assert from 'node:assert/strict';
import { OutputTail, run, startStreaming } from '../src/platform/processes';

const NODE = process.execPath;
// Two-, three- and four-byte characters, so every chunk size splits some of them.
const UNIT = 'Grüße aus Zürich — 東京の夜 — 🚣‍♀️🛟 ';
const TEXT = UNIT.repeat(40);
/** What the child processes write: short, since they write it a few bytes per timer tick. */
const SHORT_TEXT = UNIT.repeat(4);

/** A node script that writes SHORT_TEXT to `stream` in chunks of `size` bytes, one per tick. */
function chunkedWriter(stream: 'stdout' | 'stderr', size: number): string {
  return `
    const bytes = Buffer.from(${JSON.stringify(SHORT_TEXT)});
    let at = 0;
    const next = () => {
      if (at >= bytes.length) return;
      process.${stream}.write(bytes.subarray(at, at + ${size}), () => setTimeout(next, 1));
      at += ${size};
    };
    next();`;
}

describe('processes', () => {
  describe('OutputTail', () => {
    it('decodes a character split between chunks, for every split point', () => {
      const bytes = Buffer.from(TEXT);
      for (const size of [1, 2, 3, 5, 7]) {
        const tail = new OutputTail(1024 * 1024);
        for (let at = 0; at < bytes.length; at += size) tail.push(bytes.subarray(at, at + size));
        assert.equal(tail.text(), TEXT, `chunks of ${size} bytes`);
        assert.equal(tail.cutBytes, 0);
      }
    });

    it('keeps only the last maxBytes, counts what it cut, and starts at a whole character', () => {
      const bytes = Buffer.from(TEXT);
      for (const max of [1, 2, 3, 4, 10, 101, 1000]) {
        const tail = new OutputTail(max);
        for (let at = 0; at < bytes.length; at += 7) tail.push(bytes.subarray(at, at + 7));
        assert.equal(tail.cutBytes, bytes.length - max, `bound ${max}`);
        const text = tail.text();
        assert.ok(Buffer.byteLength(text) <= max, `bound ${max}: kept ${Buffer.byteLength(text)} bytes`);
        assert.ok(TEXT.endsWith(text), `bound ${max}: the kept text is the end of the output`);
        assert.ok(!text.includes('\uFFFD'), `bound ${max}: no broken character`);
      }
    });
  });

  describe('run', () => {
    for (const size of [1, 3]) {
      it(`decodes multibyte output written in chunks of ${size} bytes`, async function () {
        this.timeout(60000);
        const out = await run(NODE, ['-e', chunkedWriter('stdout', size)]);
        assert.equal(out.stdout, SHORT_TEXT);
        const err = await run(NODE, ['-e', chunkedWriter('stderr', size)]);
        assert.equal(err.stderr, SHORT_TEXT);
        assert.deepEqual(err.cutBytes, { stdout: 0, stderr: 0 });
      });
    }

    it('keeps only the last bytes of output far larger than its bound, and says so', async () => {
      // 8 MiB of numbered lines on stdout, 2 MiB on stderr; bounds of 64 KiB.
      const script = `
        const line = (i) => String(i).padStart(9, '0') + ' ' + 'x'.repeat(53) + '\\n';
        let out = ''; for (let i = 0; i < 131072; i++) out += line(i);
        let err = ''; for (let i = 0; i < 32768; i++) err += line(i);
        // Exit only once both are written: a pipe can take a write asynchronously, and exit drops what is pending.
        process.stderr.write(err, () => process.stdout.write(out, () => process.exit(3)));`;
      const bound = 64 * 1024;
      const result = await run(NODE, ['-e', script], { check: false, maxStdoutBytes: bound, maxStderrBytes: bound });
      assert.equal(result.code, 3);
      assert.equal(result.stdout.length, bound);
      assert.ok(result.stdout.endsWith('000131071 ' + 'x'.repeat(53) + '\n'));
      assert.equal(result.cutBytes.stdout, 131072 * 64 - bound);
      assert.equal(result.cutBytes.stderr, 32768 * 64 - bound);
      // A failure message quotes the end of stderr and says the rest was cut.
      await assert.rejects(run(NODE, ['-e', script], { maxStdoutBytes: bound, maxStderrBytes: bound }), (err: Error) => {
        assert.match(err.message, /exited with 3 \(the first 2031616 bytes of standard error were cut\): /);
        assert.match(err.message, /000032767 x+$/);
        return true;
      });
    });
  });

  describe('startStreaming', () => {
    it('streams stdout to the caller and keeps a bounded, whole-character tail of stderr', async () => {
      const script = `${chunkedWriter('stderr', 3)}; process.stdout.write('streamed')`;
      const { child, exited } = startStreaming(NODE, ['-e', script], { stdin: 'ignore', maxStderrBytes: 100 });
      let streamed = '';
      child.stdout!.on('data', (d: Buffer) => (streamed += d.toString()));
      const result = await exited;
      assert.equal(result.code, 0);
      assert.equal(streamed, 'streamed');
      assert.ok(Buffer.byteLength(result.stderr) <= 100);
      assert.ok(SHORT_TEXT.trim().endsWith(result.stderr));
      assert.equal(result.stderrCutBytes, Buffer.byteLength(SHORT_TEXT) - 100);
    });

    it('reports a program that is not installed as exit code 127', async () => {
      const result = await startStreaming('/nonexistent/pg_dump', [], { stdin: 'ignore' }).exited;
      assert.deepEqual(result, { code: 127, stderr: 'ENOENT: /nonexistent/pg_dump is not installed', stderrCutBytes: 0 });
    });
  });
});
