/**
 * Mocha root hooks, loaded once per run (.mocharc.json): the Temporal Runtime is process-wide
 * and installed here exactly once; a stack the tests started is stopped again at the very end.
 */
import '../../src/quiet-sdk-notice';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { releaseTestStack } from '../helpers/stack';

// Expected failures (refused input, injected faults) log as warnings; LIFEBOAT_TEST_LOG=WARN shows them.
Runtime.install({ logger: new DefaultLogger((process.env.LIFEBOAT_TEST_LOG as 'WARN' | undefined) ?? 'ERROR') });

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(120000);
    await releaseTestStack();
  },
};
