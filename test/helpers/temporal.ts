/**
 * Temporal for tests: the stack's real dev server, one workflow bundle per run shared by every
 * worker, a unique task queue per test so tests never steal each other's tasks.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH, lifeboatDataConverter } from '../../src/client/temporal';
import { loadConfig } from '../../src/config';
import { useStack } from './stack';

/** The example config, which describes the embedded stack: its keyring is the stack's local key. */
export const EXAMPLE_CONFIG_FILE = path.resolve(__dirname, '../../../lifeboat.config.yaml');

let env: Promise<TestWorkflowEnvironment> | undefined;
let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

export async function useTemporal(): Promise<TestWorkflowEnvironment> {
  env ??= (async () => {
    const stack = await useStack();
    const { host, temporal } = stack.ctx.settings;
    // The test client encodes and decodes like the CLI: workers built from the example config encrypt.
    const dataConverter = lifeboatDataConverter(loadConfig(EXAMPLE_CONFIG_FILE));
    return TestWorkflowEnvironment.createFromExistingServer({ address: `${host}:${temporal.port}`, namespace: temporal.namespace, client: { dataConverter } });
  })();
  return env;
}

export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: path.resolve(__dirname, '../../src/workflows'), failureConverterPath: FAILURE_CONVERTER_PATH, logger: quietLogger }).then((b) => {
    // Worker processes this run starts (kill -9 tests, the chaos harness) inherit it and start without bundling again.
    const file = path.join(os.tmpdir(), `lifeboat-test-workflow-bundle-${process.pid}-${randomUUID().slice(0, 8)}.js`);
    fs.writeFileSync(file, b.code);
    process.env.LIFEBOAT_WORKFLOW_BUNDLE = file;
    process.once('exit', () => fs.rmSync(file, { force: true }));
    return b;
  });
  return bundle;
}

let gateProbe: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The test-only gate workflow (test/workflows/quorum-gate.ts), bundled once per run for the files that hold a gate with it. */
export function gateProbeBundle(): Promise<WorkflowBundleWithSourceMap> {
  gateProbe ??= bundleWorkflowCode({ workflowsPath: path.resolve(__dirname, '../../../test/workflows/quorum-gate.ts'), logger: quietLogger });
  return gateProbe;
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
