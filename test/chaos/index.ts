/**
 * `npm run chaos [-- --trials N --seed S --scenarios a,b --settle-seconds N]`: the fault-injection
 * harness against the real embedded stack (started, or reused when healthy, with the ports of
 * the environment). Prints one line per invariant per trial and a summary; exits 1 on any
 * violation, 2 on bad arguments.
 */
import '../../src/quiet-sdk-notice';
import { randomInt } from 'node:crypto';
import { loadLocatedConfig } from '../../src/config/locate';
import { createStack, Stack, stackDown, stackStatus, stackUp } from '../../src/stack/stack';
import { ChaosHarness, ChaosOptions, Scenario, SCENARIOS, TrialResult } from './harness';
import { INVARIANTS } from './invariants';

class UsageError extends Error {}

const USAGE = `usage: npm run chaos -- [--trials N] [--seed S] [--scenarios ${SCENARIOS.join(',')}] [--settle-seconds N]`;

function wholeNumber(flag: string, raw: string | undefined, min: number): number {
  if (raw === undefined || !/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > 4294967295) {
    throw new UsageError(`${flag} needs a whole number of at least ${min}, not ${JSON.stringify(raw ?? '')}: for example ${flag} ${Math.max(min, 3)}.`);
  }
  return Number(raw);
}

function scenarioList(raw: string): Scenario[] {
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
  if (!names.length || unknown.length) throw new UsageError(`unknown scenario ${unknown.join(', ') || '(none given)'}: choose from ${SCENARIOS.join(', ')}.`);
  return names as Scenario[];
}

export function parseChaosArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Omit<ChaosOptions, 'log'> {
  const options: Omit<ChaosOptions, 'log'> = {
    // One trial in CI (CI=true: the suite is at its time budget), three by hand; large N with --trials.
    trials: env.LIFEBOAT_CHAOS_TRIALS ? wholeNumber('LIFEBOAT_CHAOS_TRIALS', env.LIFEBOAT_CHAOS_TRIALS, 1) : env.CI === 'true' ? 1 : 3,
    seed: env.LIFEBOAT_CHAOS_SEED ? wholeNumber('LIFEBOAT_CHAOS_SEED', env.LIFEBOAT_CHAOS_SEED, 0) : randomInt(0, 2 ** 31),
    scenarios: env.LIFEBOAT_CHAOS_SCENARIOS ? scenarioList(env.LIFEBOAT_CHAOS_SCENARIOS) : [...SCENARIOS],
    settleMs: 300000,
  };
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (seen.has(flag)) throw new UsageError(`${flag} is given twice: give it once.`);
    seen.add(flag);
    switch (flag) {
      case '--trials':
        options.trials = wholeNumber('--trials', value(), 1);
        break;
      case '--seed':
        options.seed = wholeNumber('--seed', value(), 0);
        break;
      case '--scenarios':
        options.scenarios = scenarioList(value() ?? '');
        break;
      case '--settle-seconds':
        options.settleMs = wholeNumber('--settle-seconds', value(), 10) * 1000;
        break;
      case '--help':
      case '-h':
        throw new UsageError(USAGE);
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(argv[i])}: ${USAGE}`);
    }
  }
  return options;
}

export function summaryLines(results: TrialResult[], options: Omit<ChaosOptions, 'log'>): string[] {
  const lines: string[] = [];
  const pad = (s: string | number, n: number) => String(s).padStart(n);
  lines.push('');
  lines.push(`${'scenario'.padEnd(22)}${pad('trials', 7)}${pad('passed', 8)}${pad('failed', 8)}${pad('mean s', 9)}${pad('max s', 8)}`);
  const rows = [...new Set(results.map((r) => r.scenario))].sort().map((scenario) => ({ scenario, of: results.filter((r) => r.scenario === scenario) }));
  for (const { scenario, of } of [...rows, { scenario: 'all', of: results }]) {
    if (!of.length) continue;
    const passed = of.filter((r) => r.ok).length;
    const durations = of.map((r) => r.durationMs / 1000);
    const mean = durations.reduce((a, b) => a + b, 0) / durations.length;
    lines.push(`${scenario.padEnd(22)}${pad(of.length, 7)}${pad(passed, 8)}${pad(of.length - passed, 8)}${pad(mean.toFixed(1), 9)}${pad(Math.max(...durations).toFixed(1), 8)}`);
  }
  const violations = [...INVARIANTS, 'cleanup'].map((name) => `${name} ${results.filter((r) => r.checks.some((c) => c.name === name && !c.ok)).length}`);
  lines.push(`trials with a violation, per invariant: ${violations.join(', ')}`);
  const failed = results.filter((r) => !r.ok).map((r) => r.index + 1);
  if (failed.length) lines.push(`failed trials: ${failed.join(', ')}`);
  lines.push(`seed ${options.seed}; again: npm run chaos -- --trials ${options.trials} --seed ${options.seed}${options.scenarios.length < SCENARIOS.length ? ` --scenarios ${options.scenarios.join(',')}` : ''}`);
  return lines;
}

async function useStack(log: (line: string) => void): Promise<{ stack: Stack; startedHere: boolean }> {
  const stack = createStack(undefined, (line) => log(`[stack] ${line}`));
  const status = await stackStatus(stack);
  if (status.every((s) => s.healthy)) return { stack, startedHere: false };
  const result = await stackUp(stack);
  return { stack, startedHere: result.started.length > 0 };
}

export async function main(argv: string[]): Promise<number> {
  let options: Omit<ChaosOptions, 'log'>;
  try {
    options = parseChaosArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`lifeboat chaos: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = (line: string) => process.stdout.write(`${line}\n`);
  log(`chaos: ${options.trials} trials, seed ${options.seed}, scenarios ${options.scenarios.join(', ')}`);
  const { file, config } = loadLocatedConfig(process.env.LIFEBOAT_CONFIG);
  const { stack, startedHere } = await useStack(log);
  const harness = new ChaosHarness(stack, config, file, { ...options, log });
  let results: TrialResult[] = [];
  // The first Ctrl-C lets the trial under way finish and clean up; a second one stops at once.
  process.once('SIGINT', () => {
    log('stopping after this trial (Ctrl-C again to stop at once)');
    harness.stopRequested = true;
    process.once('SIGINT', () => process.exit(130));
  });
  try {
    await harness.setUp();
    results = await harness.run();
  } finally {
    await harness.tearDown();
    if (startedHere && !process.env.LIFEBOAT_TEST_KEEP_STACK) await stackDown(stack);
  }
  for (const line of summaryLines(results, { ...options, trials: results.length })) log(line);
  return results.every((r) => r.ok) ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`lifeboat chaos: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
