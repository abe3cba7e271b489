/**
 * Notifications are best effort. A webhook that refuses connections, answers 500 or never
 * answers (a tiny local HTTP server in this test) costs a bounded time and a logged warning:
 * it never fails an approval gate, and never replaces the failure a notification was about.
 * The gate suites run the real pitrRestore workflow on the real stack.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { destinationFor } from '../src/activities/restore';
import { LifeboatConfig, loadConfig } from '../src/config';
import { PitrRestoreInput } from '../src/domain/restore';
import { LogAndWebhookNotifier } from '../src/engines/notifier';
import { NotificationChannels } from '../src/engines/notify/channels';
import { RoutingNotifier } from '../src/engines/notify/routing';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { assertNothingCreated, removeAsItsOwner, runPitrRestore, uniqueId, waitForGate, waitForStatus } from './helpers/pitr';
import { ensureFullBackup } from './helpers/backup-exists';
import { useStack } from './helpers/stack';
import { useTemporal } from './helpers/temporal';
import { approveSigned, rejectSigned } from './helpers/signing';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');

/** A webhook endpoint that behaves as told, counting the requests it got. */
async function webhookServer(behaviour: 'error' | 'hang'): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    if (behaviour === 'error') {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('internal error');
    }
    // 'hang': never answers; the notifier's timeout must end the wait.
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests: () => requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

async function closedPortUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return `http://127.0.0.1:${port}/hook`;
}

describe('notifications are best effort', function () {
  describe('the notifier against a failing webhook', () => {
    const note = { severity: 'warning' as const, title: 'Approval still pending: test', text: 'someone decide', workflowId: 'wf-1' };
    const delivery = { attempts: 3, timeoutMs: 500, backoffMs: 50 };

    it('a closed port: resolves undelivered with a logged warning, never throws', async () => {
      const log: string[] = [];
      const url = await closedPortUrl();
      const outcome = await new LogAndWebhookNotifier({ webhookUrl: () => url, log: (l) => log.push(l), delivery }).notify(note);
      assert.equal(outcome.delivered, false);
      assert.match(outcome.detail, /^the notification webhook did not take "Approval still pending: test" after 3 attempts \(fetch failed\): check notifications\.webhook\.url; the notification is in this log only$/);
      assert.equal(log[0], '[lifeboat warning] Approval still pending: test [wf-1]: someone decide');
      assert.equal(log[1], `[lifeboat warning] ${outcome.detail} [wf-1]`);
    });

    it('HTTP 500: three attempts, then undelivered', async () => {
      const hook = await webhookServer('error');
      try {
        const outcome = await new LogAndWebhookNotifier({ webhookUrl: () => hook.url, log: () => undefined, delivery }).notify(note);
        assert.equal(outcome.delivered, false);
        assert.match(outcome.detail, /after 3 attempts \(HTTP 500\)/);
        assert.equal(hook.requests(), 3);
      } finally {
        await hook.close();
      }
    });

    it('a webhook that never answers costs attempts x timeout, not forever', async () => {
      const hook = await webhookServer('hang');
      try {
        const t0 = Date.now();
        const outcome = await new LogAndWebhookNotifier({ webhookUrl: () => hook.url, log: () => undefined, delivery }).notify(note);
        const ms = Date.now() - t0;
        assert.equal(outcome.delivered, false);
        assert.match(outcome.detail, /after 3 attempts \(.*(timeout|aborted).*\)/i);
        assert.ok(ms >= 1500 && ms < 4000, `took ${ms} ms`);
      } finally {
        await hook.close();
      }
    });

    it('an unreadable webhook secret is a warning too, not an error', async () => {
      const log: string[] = [];
      const outcome = await new LogAndWebhookNotifier({
        webhookUrl: () => {
          throw new Error('The secret reference env:NOPE points at an unset environment variable: set NOPE in the worker\'s environment.');
        },
        log: (l) => log.push(l),
        delivery,
      }).notify(note);
      assert.equal(outcome.delivered, false);
      assert.match(log[1], /env:NOPE points at an unset environment variable/);
    });
  });

  describe('every notification channel down at once (Slack-compatible webhook, PagerDuty, SMTP)', () => {
    const delivery = { attempts: 2, timeoutMs: 500, backoffMs: 50 };

    it('resolves undelivered with each channel named and logged, within a bounded time, never throws', async () => {
      const slack = await closedPortUrl();
      const pagerDuty = await webhookServer('error');
      const mailPort = Number(new URL(await closedPortUrl()).port);
      const hangingMail = net.createServer(() => undefined); // accepts, never greets: the SMTP timeout ends it
      await new Promise<void>((r) => hangingMail.listen(0, '127.0.0.1', r));
      process.env.LIFEBOAT_TEST_OUTAGE_SLACK = slack;
      process.env.LIFEBOAT_TEST_OUTAGE_PD = 'R0UT1NGKEY0123456789abcdefABCDEF';
      const mail = (name: string, port: number) => ({ name, kind: 'email' as const, host: '127.0.0.1', port, security: 'none' as const, from: 'lifeboat@example.com', to: ['ops@example.com'], allowInsecure: true });
      const log: string[] = [];
      try {
        const notifier = new RoutingNotifier({
          base: new LogAndWebhookNotifier({ log: (l) => log.push(l) }),
          channels: new NotificationChannels(
            [
              { name: 'chat', kind: 'slack', url: 'env:LIFEBOAT_TEST_OUTAGE_SLACK', allowInsecure: true },
              { name: 'pager', kind: 'pagerduty', routingKey: 'env:LIFEBOAT_TEST_OUTAGE_PD', url: pagerDuty.url, allowInsecure: true },
              mail('mail-refused', mailPort),
              mail('mail-silent', (hangingMail.address() as net.AddressInfo).port),
              // A secret that does not resolve is a channel failure too, named by its reference.
              { name: 'chat-unset', kind: 'slack', url: 'env:LIFEBOAT_TEST_OUTAGE_UNSET', allowInsecure: true },
            ],
            { delivery },
          ),
          routes: { critical: ['chat', 'pager', 'mail-refused', 'mail-silent', 'chat-unset'] },
          escalates: true,
          raise: async () => {
            throw new Error('Temporal is unreachable');
          },
          log: (l) => log.push(l),
        });
        const t0 = Date.now();
        const outcome = await notifier.notify({ severity: 'critical', title: 'Backup FAILED: app (full) while verifying', text: 'damaged', target: 'app', workflowId: 'wf-2' });
        const ms = Date.now() - t0;
        assert.equal(outcome.delivered, false);
        assert.equal(outcome.detail, 'logged (no webhook configured); not taken by chat, pager, mail-refused, mail-silent, chat-unset');
        assert.ok(ms < 4000, `took ${ms} ms`);
        assert.equal(pagerDuty.requests(), 2);
        assert.equal(log[0], '[lifeboat critical] Backup FAILED: app (full) while verifying (target app) [wf-2]: damaged');
        assert.match(log[1], /could not start its escalation \(Temporal is unreachable\); sending it to chat, pager, mail-refused, mail-silent, chat-unset directly \[wf-2\]$/);
        assert.match(log[2], /^\[lifeboat warning\] slack channel "chat" did not take .*: fetch failed; the notification is in this log \[wf-2\]$/);
        assert.match(log[3], /pagerduty channel "pager" did not take .*: HTTP 500: internal error/);
        assert.match(log[4], /email channel "mail-refused" did not take .*: SMTP 127\.0\.0\.1:\d+ failed at connecting: connect ECONNREFUSED/);
        assert.match(log[5], /email channel "mail-silent" did not take .*: SMTP 127\.0\.0\.1:\d+ failed at connecting: no answer within 1000 ms/);
        assert.match(log[6], /slack channel "chat-unset" did not take .*env:LIFEBOAT_TEST_OUTAGE_UNSET/);
      } finally {
        await pagerDuty.close();
        await new Promise((r) => hangingMail.close(r));
      }
    });
  });

  describe('approval gates and failures while the webhook is down (real worker, real stack)', () => {
    let env: TestWorkflowEnvironment;
    const base = loadConfig(CONFIG_FILE);
    const cleanups: Array<() => Promise<void>> = [];
    const made: string[] = [];
    let engine: PgBackRestEngine;
    let enginePorts: Ports;

    before(async function () {
      this.timeout(600000);
      await ensureFullBackup(await useStack());
      env = await useTemporal();
      enginePorts = createPorts(base);
      engine = enginePorts.database('app') as PgBackRestEngine;
    });
    after(async function () {
      this.timeout(120000);
      for (const id of made) await removeAsItsOwner(engine, id).catch((err: unknown) => console.error(`cleanup of ${id}: ${String(err)}`));
      for (const c of cleanups) await c();
      await enginePorts?.close();
    });

    /** The stack's config with the webhook pointed at `url` (through an env secret of this test's own). */
    function withWebhook(url: string, variable: string): LifeboatConfig {
      process.env[variable] = url;
      return { ...base, notifications: { webhook: { url: `env:${variable}`, allowInsecure: true } } } as LifeboatConfig;
    }

    async function run(config: LifeboatConfig, workflowId: string, input: PitrRestoreInput, drive: (h: WorkflowHandle) => Promise<void>) {
      const log: string[] = [];
      const ports = createPorts(config, { log: (l) => log.push(l) });
      cleanups.push(() => ports.close());
      return { ...(await runPitrRestore({ env, config, ports, queuePrefix: 'notify-outage', workflowId, input, drive })), log, ports };
    }

    const input = (overrides: Partial<PitrRestoreInput> = {}): PitrRestoreInput => ({
      target: 'app',
      restorePoint: 'latest',
      reason: 'test: webhook outage',
      requestedBy: 'alice@example.com',
      mode: 'standard',
      timings: { remindAfterMs: 1000, abortAfterMs: 5000, pollIntervalMs: 250 },
      ...overrides,
    });

    it('webhook on a closed port: the gate reminds, expires on time and is recorded', async () => {
      const config = withWebhook(await closedPortUrl(), 'LIFEBOAT_TEST_WEBHOOK_CLOSED');
      const workflowId = uniqueId('test-notify-closed');
      const { result, error, log, status, ports } = await run(config, workflowId, input(), async (h) => {
        await waitForGate(h, 'restore');
        await waitForStatus(h, 'the reminder', (s) => s.pendingGate?.reminded === true || s.phase === 'expired');
      });
      assert.equal(error, undefined, String(error));
      assert.equal(result?.outcome, 'expired');
      assert.equal(status.phase, 'expired');
      assert.ok(log.some((l) => l.includes(`[${workflowId}]`) && l.includes('Approval still pending')), log.join('\n'));
      const rows = await ports.catalog.query<{ decision: string }>('SELECT decision FROM approvals WHERE workflow_id = $1', [workflowId]);
      assert.deepEqual(rows.map((r) => r.decision), ['expired']);
      const target = base.targets.databases.find((d) => d.name === 'app');
      await assertNothingCreated(engine, target?.engine === 'pgbackrest' ? target.restoresDir : '', workflowId);
    });

    it('webhook that hangs: a decision after the reminder is taken at once, not after the webhook gives up', async () => {
      const hook = await webhookServer('hang');
      cleanups.push(() => hook.close());
      const config = withWebhook(hook.url, 'LIFEBOAT_TEST_WEBHOOK_HANG');
      const workflowId = uniqueId('test-notify-hang');
      let decidedInMs = -1;
      const { result, error } = await run(config, workflowId, input({ timings: { remindAfterMs: 1000, abortAfterMs: 60000, pollIntervalMs: 250 } }), async (h) => {
        await waitForStatus(h, 'the reminder', (s) => s.pendingGate?.reminded === true);
        // The webhook is hanging on the reminder right now.
        const deadline = Date.now() + 10000;
        while (hook.requests() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.ok(hook.requests() >= 1, 'the reminder reached the hanging webhook');
        const t0 = Date.now();
        await rejectSigned(h, { by: 'carol@example.com', reason: 'not needed' });
        await h.result();
        decidedInMs = Date.now() - t0;
      });
      assert.equal(error, undefined, String(error));
      assert.equal(result?.outcome, 'rejected');
      // Without the reminder beside the wait this took the notifier's full retry budget (3 x 5 s).
      assert.ok(decidedInMs >= 0 && decidedInMs < 4000, `decided in ${decidedInMs} ms`);
    });

    it('webhook answering 500: a failed restore still fails with its own error, not the notifier\'s', async () => {
      const hook = await webhookServer('error');
      cleanups.push(() => hook.close());
      const config = withWebhook(hook.url, 'LIFEBOAT_TEST_WEBHOOK_500');
      // A target without cutover settings, asked to cut over: the restore runs, then fails with NO_CUTOVER_CONFIG.
      const noCutover = { ...config, targets: { ...config.targets, databases: config.targets.databases.map((d) => ({ ...d, cutover: undefined })) } } as LifeboatConfig;
      const workflowId = uniqueId('test-notify-500');
      made.push(destinationFor(workflowId));
      const { error, log } = await run(noCutover, workflowId, input({ cutover: true, timings: { remindAfterMs: 60000, abortAfterMs: 120000, pollIntervalMs: 250 } }), async (h) => {
        await waitForGate(h, 'restore');
        await approveSigned(h, { by: 'bob@example.com', reason: 'go' });
      });
      assert.ok(error instanceof WorkflowFailedError, String(error));
      const cause = error.cause;
      assert.ok(cause instanceof ApplicationFailure, String(cause));
      assert.equal(cause.type, 'NO_CUTOVER_CONFIG');
      assert.match(cause.message, /^target app has no cutover settings/);
      // The failure notice was attempted (logged) and its delivery failure logged, nothing more.
      assert.ok(log.some((l) => l.startsWith('[lifeboat critical] Restore of app failed')), log.join('\n'));
      assert.ok(log.some((l) => /webhook did not take "Restore of app failed" after 3 attempts \(HTTP 500\)/.test(l)), log.join('\n'));
      assert.ok(hook.requests() >= 3);
    });
  });
});
