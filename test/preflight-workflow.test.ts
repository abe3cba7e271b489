/**
 * A real workflow on the real dev server through a real worker: preflight checks every system
 * of the local stack through the activities and records its verdict in the catalog.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, ActivityFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig, loadConfig } from '../src/config';
import { LifeboatKind, LifeboatPhase } from '../src/workflows/search-attributes';
import { PreflightResult } from '../src/domain/preflight';
import { createLifeboatWorker } from '../src/worker';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

describe('preflight workflow (real worker, real stack)', function () {
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  const config = loadConfig(path.resolve(__dirname, '../../lifeboat.config.yaml'));

  before(async function () {
    this.timeout(600000);
    env = await useTemporal();
    ports = createPorts(config);
  });
  after(async () => ports?.close());

  async function runPreflight(workflowId: string, targets?: string[], withConfig: LifeboatConfig = config, withPorts: Ports = ports) {
    const taskQueue = uniqueTaskQueue('preflight');
    const worker = await createLifeboatWorker({ config: withConfig, connection: env.nativeConnection, ports: withPorts, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(env.client.workflow.execute('preflight', { taskQueue, workflowId, args: [{ targets }] }) as Promise<PreflightResult>);
  }

  it('checks the database, both pgBackRest repositories, the object stores, DNS and the catalog, and records the verdict', async () => {
    const workflowId = `test-preflight-${Date.now()}`;
    const result = await runPreflight(workflowId);
    assert.equal(result.ok, true, result.problems.join('\n'));
    assert.deepEqual(result.checks.map((c) => c.component).sort(), [
      'catalog',
      'database app',
      'dns db.app.lifeboat.test.',
      'object store dr',
      'object store primary',
      // drCopy: repository-copy (the default): both repositories can be copied byte for byte.
      'pgbackrest app dr-copy (repo1 -> repo2)',
      'pgbackrest app repo1 (primary)',
      'pgbackrest app repo2 (dr)',
      'rpo app',
      'secrets of app',
      'sqlite app-sqlite',
    ]);
    // The RPO line is the WAL archive's lag (pgbackrest check has just archived): reported, never failing the preflight.
    const rpo = result.checks.find((c) => c.component === 'rpo app')!;
    assert.equal(rpo.advisory, true);
    assert.match(rpo.detail, /has no verified backup|would lose (no writes|the last .* of writes) if it failed now/);
    const rows = await ports.catalog.query<{ ok: boolean; components: unknown[] }>('SELECT ok, components FROM preflight_checks WHERE workflow_id = $1', [workflowId]);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].ok, true);
    assert.equal(rows[0].components.length, result.checks.length);

    // What the Web UI shows: kind and final phase as search attributes, the verdict as current details.
    const description = await env.client.workflow.getHandle(workflowId).describe();
    assert.deepEqual(description.typedSearchAttributes.get(LifeboatKind), 'preflight');
    assert.deepEqual(description.typedSearchAttributes.get(LifeboatPhase), 'done');
  });

  it('fails when a secret a target depends on cannot be read: the DNS API key, the dump key, the webhook URL', async () => {
    const missing = path.join(os.tmpdir(), `lifeboat-missing-${Date.now()}`);
    const broken = {
      ...config,
      notifications: { webhook: { url: 'env:LIFEBOAT_TEST_UNSET_WEBHOOK', allowInsecure: false } },
      trafficRouters: config.trafficRouters.map((r) => (r.kind === 'powerdns' ? { ...r, apiKey: `file:${missing}/dns-api-key` } : r)),
      targets: {
        ...config.targets,
        databases: config.targets.databases.map((d) => (d.engine === 'pgbackrest' && d.logicalBackup ? { ...d, logicalBackup: { ...d.logicalBackup, encryptionKey: `file:${missing}/dump-key` } } : d)),
      },
    } as LifeboatConfig;
    delete process.env.LIFEBOAT_TEST_UNSET_WEBHOOK;
    const brokenPorts = createPorts(broken);
    try {
      const result = await runPreflight(`test-preflight-secrets-${Date.now()}`, ['app'], broken, brokenPorts);
      assert.equal(result.ok, false);
      const failed = Object.fromEntries(result.checks.filter((c) => !c.ok).map((c) => [c.component, c.detail]));
      assert.deepEqual(Object.keys(failed).sort(), ['dns db.app.lifeboat.test.', 'secrets of app']);
      assert.match(failed['dns db.app.lifeboat.test.'], new RegExp(`^cannot read the API key of traffic router local-dns \\(The secret reference file:${missing}/dns-api-key cannot be read \\(ENOENT\\): create the file or fix the reference\\.\\): a cutover could not move the name$`));
      assert.match(failed['secrets of app'], /^cannot read the logical-backup encryption key \(.*dump-key cannot be read \(ENOENT\).*\); the API key of traffic router local-dns \(.*\); the notification webhook URL \(The secret reference env:LIFEBOAT_TEST_UNSET_WEBHOOK points at an unset environment variable/);
    } finally {
      await brokenPorts.close();
    }
  });

  it('refuses an unknown target at once, with one sentence naming the known targets, without retrying', async () => {
    const err = await runPreflight(`test-preflight-unknown-${Date.now()}`, ['payroll']).then(
      () => assert.fail('an unknown target must fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ActivityFailure);
    assert.ok(err.cause.cause instanceof ApplicationFailure);
    assert.equal(err.cause.cause.nonRetryable, true);
    assert.equal(err.cause.cause.message, 'No database or bucket target is named "payroll"; the config declares app, app-files, app-sqlite.');
  });
});
