/**
 * mocha's spec reporter plus, at the end, the slowest test files (hooks included, so a file's
 * backups and stack set-up count: where CI's minutes go) and one closing line in the plain form
 * CI reads: "N passed, N failed, N skipped".
 */
import path from 'node:path';
import Mocha from 'mocha';

const { EVENT_RUN_END, EVENT_SUITE_BEGIN, EVENT_SUITE_END } = Mocha.Runner.constants;

class LifeboatReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const fileMs = new Map<string, number>();
    const started = new Map<Mocha.Suite, number>();
    runner.on(EVENT_SUITE_BEGIN, (suite: Mocha.Suite) => {
      if (suite.file && suite.parent?.root) started.set(suite, Date.now());
    });
    runner.on(EVENT_SUITE_END, (suite: Mocha.Suite) => {
      const t0 = started.get(suite);
      if (t0 === undefined || !suite.file) return;
      const file = path.basename(suite.file);
      fileMs.set(file, (fileMs.get(file) ?? 0) + Date.now() - t0);
    });
    runner.once(EVENT_RUN_END, () => {
      const slowest = [...fileMs.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20);
      if (slowest.length > 0) {
        process.stdout.write('slowest test files (s):\n');
        for (const [file, ms] of slowest) process.stdout.write(`  ${(ms / 1000).toFixed(0).padStart(5)}  ${file}\n`);
      }
      const s = runner.stats;
      if (s) process.stdout.write(`${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}

export = LifeboatReporter;
