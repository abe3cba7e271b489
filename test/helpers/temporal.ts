/**
 * Temporal for tests: the stack's real dev server, one workflow bundle per run shared by every
 * worker, a unique task queue per test so tests never steal each other's tasks.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { useStack } from './stack';

let env: Promise<TestWorkflowEnvironment> | undefined;
let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

export async function useTemporal(): Promise<TestWorkflowEnvironment> {
  env ??= (async () => {
    const stack = await useStack();
    const { host, temporal } = stack.ctx.settings;
    return TestWorkflowEnvironment.createFromExistingServer({ address: `${host}:${temporal.port}`, namespace: temporal.namespace });
  })();
  return env;
}

export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: path.resolve(__dirname, '../../src/workflows'), logger: quietLogger });
  return bundle;
}

export function uniqueTaskQueue(name: string): string {
  return `test-${name}-${randomUUID().slice(0, 8)}`;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => process.stderr.write(`bundle warning: ${message}\n`),
  error: (message: string) => process.stderr.write(`bundle error: ${message}\n`),
};
