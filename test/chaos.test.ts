/**
 * The fault-injection harness as CI runs it: `npm run chaos` in a child process with a small
 * number of trials and a fixed seed, against the real stack and a real worker process it kills
 * and restarts. Every trial must print its five invariants as ok and the run must exit 0.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { parseChaosArgs } from './chaos/index';
import { Random, trialRandom } from './chaos/random';
import { runNode } from './helpers/cli';
import { useStack } from './helpers/stack';
import { workflowBundle } from './helpers/temporal';

const ENTRY = path.resolve(__dirname, 'chaos/index.js');

/**
 * Trials on the real stack: one in CI (CI=true), where the suite is at its time budget, Temporal
 * restarted mid-flight (no other file restarts Temporal; a worker killed -9 mid-backup is
 * database-backup's and dr-repository-copy's (d)); two by hand, the second a worker killed
 * mid-backup; LIFEBOAT_CHAOS_TRIALS=N for more (large N by hand, e.g. before a release).
 */
const TRIALS = process.env.LIFEBOAT_CHAOS_TRIALS ? Number(process.env.LIFEBOAT_CHAOS_TRIALS) : process.env.CI === 'true' ? 1 : 2;

const chaos = (args: string[]) => runNode(ENTRY, args, { LIFEBOAT_USER: process.env.LIFEBOAT_USER });

describe('chaos harness (npm run chaos)', function () {
  it('refuses bad arguments in one sentence with exit 2, before touching anything', async () => {
    for (const [args, message] of [
      [['--trials', '0'], /^lifeboat chaos: --trials needs a whole number of at least 1, not "0": for example --trials 3\.$/],
      [['--scenarios', 'kill-everything'], /^lifeboat chaos: unknown scenario kill-everything: choose from kill-worker-backup, /],
      [['--seed', '1', '--seed', '2'], /^lifeboat chaos: --seed is given twice: give it once\.$/],
      [['--verbose'], /^lifeboat chaos: unknown argument "--verbose": usage: npm run chaos -- /],
    ] as const) {
      const r = await chaos([...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr.trim(), message);
      assert.equal(r.stdout, '');
    }
  });

  it('draws the same trials from the same seed, whatever ran before', () => {
    const a = Array.from({ length: 5 }, (_, i) => trialRandom(42, i).int(0, 1000000));
    const b = Array.from({ length: 5 }, (_, i) => trialRandom(42, i).int(0, 1000000));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, Array.from({ length: 5 }, (_, i) => trialRandom(43, i).int(0, 1000000)));
    const r = new Random(7);
    const draws = Array.from({ length: 1000 }, () => r.next());
    assert.ok(draws.every((x) => x >= 0 && x < 1));
    assert.deepEqual(parseChaosArgs(['--trials=5', '--seed', '9'], {}).trials, 5);
  });

  it(`runs ${TRIALS} trial${TRIALS === 1 ? '' : 's'} with a fixed seed on the real stack (${TRIALS === 1 ? 'Temporal restarted during a flight' : 'a worker killed mid-backup, Temporal restarted mid-restore'}): every invariant holds`, async function () {
    this.timeout(600000);
    await useStack();
    await workflowBundle(); // the harness's worker processes take it ($LIFEBOAT_WORKFLOW_BUNDLE) and start without bundling
    const [seed, scenarios] = TRIALS === 1 ? [ONE_TRIAL_SEED, 'restart-temporal'] : [CI_SEED, CI_SCENARIOS];
    const r = await chaos(['--trials', String(TRIALS), '--seed', seed, '--scenarios', scenarios]);
    const out = `${r.stdout}\n${r.stderr}`;
    process.stderr.write(r.stdout.split('\n').map((l) => `      ${l}`).join('\n') + '\n');
    assert.match(r.stdout, new RegExp(`^chaos: ${TRIALS} trials?, seed ${seed}, `, 'm'));
    if (TRIALS === 1) {
      assert.match(r.stdout, new RegExp(`^trial 1/1 \\(seed ${seed}\\) restart-temporal: Temporal restarted `, 'm'), out);
    } else {
      assert.match(r.stdout, new RegExp(`^trial 1/${TRIALS} \\(seed ${CI_SEED}\\) kill-worker-backup: worker killed -9 `, 'm'), out);
      assert.match(r.stdout, new RegExp(`^trial 2/${TRIALS} \\(seed ${CI_SEED}\\) restart-temporal: Temporal restarted `, 'm'), out);
      // Further trials (LIFEBOAT_CHAOS_TRIALS by hand) draw either scenario.
      assert.equal(r.stdout.match(new RegExp(`^trial \\d+/${TRIALS} \\(seed ${CI_SEED}\\) (kill-worker-backup: worker killed -9|restart-temporal: Temporal restarted) `, 'gm'))?.length, TRIALS, out);
    }
    for (const invariant of ['closed', 'one-backup', 'no-orphans', 'dns', 'source']) {
      assert.equal(r.stdout.match(new RegExp(`^  ok   ${invariant}: `, 'gm'))?.length, TRIALS, `${invariant} ok in each trial:\n${out}`);
    }
    assert.doesNotMatch(r.stdout, /^ {2}FAIL /m, out);
    assert.match(r.stdout, new RegExp(`^all\\s+${TRIALS}\\s+${TRIALS}\\s+0\\s`, 'm'));
    assert.equal(r.code, 0, out);
  });
});

/**
 * A seed and scenarios that keep CI to a few minutes: seed 19 draws a worker killed during a
 * backup (its heartbeat timeout is 10 s) and then Temporal restarted during a restore.
 */
const CI_SEED = '19';
const CI_SCENARIOS = 'kill-worker-backup,restart-temporal';
/** One trial (CI): seed 88 aims Temporal's restart at the WAL replay of a restore, as seed 19's second trial does (seed 19 alone would aim at a backup's last phase, often already over). */
const ONE_TRIAL_SEED = '88';
