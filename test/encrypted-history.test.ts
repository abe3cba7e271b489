/**
 * Encrypted history, end to end on the real stack: a restore rejected at its gate, whose history
 * carries a reason, two identities and the source's host. Read raw from the server (an SDK client
 * without the codec, and `temporal workflow show`), none of them is there in plaintext, nor any
 * secret; through the codec server (the temporal CLI with a bearer token, and the Web UI in
 * headless Chromium) the reason is there, decoded.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { loadConfig } from '../src/config';
import type { PitrRestoreReport } from '../src/domain/restore';
import { run } from '../src/platform/processes';
import { Stack } from '../src/stack/stack';
import { ALL_SEARCH_ATTRIBUTES } from '../src/workflows/search-attributes';
import { ensureFullBackup } from './helpers/backup-exists';
import { launchBrowser } from './helpers/browser';
import { plaintextHistory } from './helpers/history-json';
import { runPitrRestore, uniqueId, waitForGate } from './helpers/pitr';
import { rejectSigned } from './helpers/signing';
import { useStack } from './helpers/stack';
import { EXAMPLE_CONFIG_FILE, useTemporal } from './helpers/temporal';

const REASON = 'customer 4711 asked for the ledger as of this morning';
const REJECTION = 'the ledger export covers this already';
const REQUESTER = 'alice@example.com';
const APPROVER = 'bob@example.com';

describe('encrypted history (real stack: raw history, temporal CLI, Web UI)', function () {
  this.timeout(300000);
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  const config = loadConfig(EXAMPLE_CONFIG_FILE);
  const workflowId = uniqueId('test-encrypted-history');
  let history: temporal.api.history.v1.IHistory;

  before(async function () {
    this.timeout(600000);
    stack = await useStack();
    env = await useTemporal();
    ports = createPorts(config);
    await ensureFullBackup(stack);
    const restored = await runPitrRestore({
      env,
      config,
      ports,
      queuePrefix: 'encrypted',
      workflowId,
      input: { target: 'app', restorePoint: 'latest', reason: REASON, requestedBy: REQUESTER, mode: 'standard' },
      drive: async (handle) => {
        await waitForGate(handle, 'restore');
        await rejectSigned(handle, { by: APPROVER, reason: REJECTION });
      },
    });
    assert.equal((restored.result as PitrRestoreReport | undefined)?.outcome, 'rejected', String(restored.error));
    // A client without the codec: what anyone with access to Temporal's API or database reads.
    const raw = new Client({ connection: env.connection, namespace: config.temporal.namespace });
    history = await raw.workflow.getHandle(workflowId).fetchHistory();
  });

  after(async () => {
    await ports?.close();
  });

  /** Values the history must not show in plaintext: what the run carried, and every secret of the stack. */
  function sensitive(): Record<string, string> {
    const { settings, paths } = stack.ctx;
    const secret = (name: Parameters<typeof paths.secret>[0]) => fs.readFileSync(paths.secret(name), 'utf8').trim();
    return {
      reason: REASON,
      rejection: REJECTION,
      requester: REQUESTER,
      approver: APPROVER,
      // The validation's source endpoint is { host, port }: no address of the stack may show at all.
      'source host': settings.host,
      'MinIO secret key': secret('minio-secret-key'),
      'DNS API key': secret('dns-api-key'),
      'history key': secret('history-key-local-1'),
      'codec server token': secret('codec-server-token'),
    };
  }

  /** The JSON output prints each payload's data as base64: the text of every payload, one after another. */
  const payloadTexts = (json: string) => {
    const texts: string[] = [];
    const visit = (node: unknown) => {
      if (!node || typeof node !== 'object') return;
      const p = node as { metadata?: unknown; data?: unknown };
      if (p.metadata && typeof p.data === 'string') texts.push(Buffer.from(p.data, 'base64').toString('utf8'));
      Object.values(node).forEach(visit);
    };
    visit(JSON.parse(json));
    return texts.join('\n');
  };

  const found = (text: string) => Object.entries(sensitive()).filter(([, value]) => text.includes(value)).map(([what]) => what);

  it('the raw history holds none of them, while the same history decoded with the keyring holds the run\'s', async () => {
    const History = temporal.api.history.v1.History;
    // Protobuf carries strings verbatim: a plaintext payload anywhere in the history would show in its bytes.
    const bytes = Buffer.from(History.encode(History.fromObject(history)).finish()).toString('latin1');
    assert.deepEqual(found(bytes), []);
    // The same check, after decoding, finds what the run carried: the check above can see plaintext.
    const decoded = await plaintextHistory(History.decode(History.encode(History.fromObject(history)).finish()), env.client.options.loadedDataConverter.payloadCodecs);
    const plain = Buffer.from(History.encode(History.fromObject(decoded)).finish()).toString('utf8');
    for (const what of ['reason', 'rejection', 'requester', 'approver', 'source host']) assert.ok(found(plain).includes(what), `${what} is in the decoded history`);
    // What stays readable on purpose: the search attributes lifeboat list and the UI filter on.
    const upserted = (history.events ?? []).flatMap((e) => Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}));
    assert.ok(upserted.includes('LifeboatTarget'));
    // TemporalChangeVersion is the SDK's own: the ids of the patches the run took, nothing of its data.
    assert.deepEqual(upserted.filter((name) => name !== 'TemporalChangeVersion' && !ALL_SEARCH_ATTRIBUTES.some((key) => key.name === name)), []);
  });

  it('`temporal workflow show` shows ciphertext without the codec, and the reason through the codec server with its bearer token', async () => {
    const { settings, tools, paths } = stack.ctx;
    const base = ['workflow', 'show', '--workflow-id', workflowId, '--address', `${settings.host}:${settings.temporal.port}`, '--namespace', settings.temporal.namespace, '--output', 'json'];
    const raw = await run(tools.temporal, base);
    assert.ok(raw.stdout.includes(Buffer.from('binary/encrypted').toString('base64')), 'payloads are marked encrypted');
    assert.deepEqual(found(raw.stdout + payloadTexts(raw.stdout)), []);
    const token = fs.readFileSync(paths.secret('codec-server-token'), 'utf8').trim();
    const endpoint = `http://${settings.host}:${settings.temporal.codecPort}`;
    // (A wrong token is refused: test/payload-codec.test.ts; the CLI retries it for seconds before it gives up.)
    const decoded = await run(tools.temporal, [...base, '--codec-endpoint', endpoint, '--codec-auth', `Bearer ${token}`]);
    assert.ok(payloadTexts(decoded.stdout).includes(REASON), 'the CLI shows the reason decoded');
  });

  it('the Web UI, in headless Chromium, shows the workflow\'s reason decoded through the codec server', async () => {
    const { settings } = stack.ctx;
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const codecCalls: number[] = [];
      page.on('response', (r) => {
        if (r.url().startsWith(`http://${settings.host}:${settings.temporal.codecPort}/`) && r.request().method() === 'POST') codecCalls.push(r.status());
      });
      await page.goto(`http://${settings.host}:${settings.temporal.uiPort}/namespaces/${settings.temporal.namespace}/workflows/${workflowId}`, { waitUntil: 'domcontentloaded' });
      // The reason is in the workflow's input, which the UI shows only once the codec server decoded it.
      await page.getByText(REASON).first().waitFor({ timeout: 30000 });
      assert.ok(codecCalls.length > 0 && codecCalls.every((s) => s === 200), `the UI called the codec server: ${JSON.stringify(codecCalls)}`);
    } finally {
      await browser.close();
    }
  });
});
