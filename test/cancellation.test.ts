/**
 * Cancellation reaches what activities spawn: a command run through `run` stops when its signal
 * (inside an activity: its cancellation) fires. Real processes, no server; the streamed upload's
 * cancellation, which needs the stack's MinIO, is in cancellation-upload.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CancelledFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { reportCancellationAsSuch } from '../src/activities/cancellation';
import { LifeboatError } from '../src/domain/errors';
import { isAlive, run } from '../src/platform/processes';

describe('cancellation stops spawned processes and streams', function () {
  it('run: an aborted signal ends the command at once and rejects with the reason', async () => {
    const pidFile = path.join(os.tmpdir(), `lifeboat-cancel-${randomBytes(4).toString('hex')}.pid`);
    const abort = new AbortController();
    const started = Date.now();
    const cancelled = run('/bin/sh', ['-c', `echo $$ > ${pidFile}; exec sleep 60`], { signal: abort.signal });
    setTimeout(() => abort.abort(new Error('CANCELLED')), 300);
    try {
      await assert.rejects(cancelled, /CANCELLED/);
      assert.ok(Date.now() - started < 5000, 'stopped within seconds, not after the 60 s sleep');
      const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
      assert.ok(pid > 0);
      assert.equal(isAlive(pid), false, 'the process is gone');
    } finally {
      fs.rmSync(pidFile, { force: true });
    }
  });

  it('an activity cancelled while an engine call runs reports the cancellation, not the engine error that wraps it', async () => {
    const pidFile = path.join(os.tmpdir(), `lifeboat-cancel-${randomBytes(4).toString('hex')}.pid`);
    // Like pgBackRest's `info` inside a wait: the engine turns whatever stopped its command into its own error.
    const engineCall = async () => {
      try {
        await run('/bin/sh', ['-c', `echo $$ > ${pidFile}; exec sleep 60`]);
      } catch (err) {
        throw new LifeboatError(`pgBackRest failed while reading the stanza: ${String(err)}`, 'PGBACKREST_FAILED');
      }
    };
    const outcomes: string[] = [];
    for (const interceptors of [[], [reportCancellationAsSuch]]) {
      const env = new MockActivityEnvironment(undefined, { interceptors });
      const running = env.run(engineCall);
      await waitForFile(pidFile);
      env.cancel('CANCELLED');
      const err = await running.then(() => assert.fail('a cancelled activity does not complete'), (e: unknown) => e);
      outcomes.push(err instanceof CancelledFailure ? `cancelled (${err.message})` : `failed (${(err as LifeboatError).code})`);
      assert.equal(isAlive(Number(fs.readFileSync(pidFile, 'utf8').trim())), false, 'the command was stopped');
      fs.rmSync(pidFile, { force: true });
    }
    assert.deepEqual(outcomes, ['failed (PGBACKREST_FAILED)', 'cancelled (CANCELLED)']);
  });
});

async function waitForFile(file: string): Promise<void> {
  for (let i = 0; i < 200 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 25));
  for (let i = 0; i < 40 && !fs.readFileSync(file, 'utf8').trim(); i++) await new Promise((r) => setTimeout(r, 25));
}
