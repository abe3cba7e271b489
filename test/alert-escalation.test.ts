/**
 * Alerts on the real stack: a backup that fails raises a critical alert through the notifier of
 * a real worker; the alertEscalation workflow pages level 0 (a Slack-compatible webhook and
 * PagerDuty Events v2, both local receivers), joins a repeat of the same cause instead of paging
 * again, escalates to email (a local SMTP server) after a short configured delay, and stops when
 * `lifeboat ack` (the real CLI) takes it; the next verified backup of a target resolves its open
 * "backup failed" alert in PagerDuty too. Every step is on record in the catalog.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig, loadConfig } from '../src/config';
import { alertWorkflowId, AlertEscalationResult } from '../src/domain/alerts';
import type { DatabaseEngine } from '../src/domain/ports';
import { createLifeboatWorker } from '../src/worker';
import { lifeboat } from './helpers/cli';
import { recordHistory } from './helpers/pitr';
import { HttpReceiver, SmtpReceiver, startHttpReceiver, startSmtpReceiver } from './helpers/notification-receivers';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');
const ROUTING_KEY = 'AbCdEf0123456789AbCdEf0123456789';
const UI = 'http://127.0.0.1:8233';

interface AlertRow {
  id: string;
  status: string;
  target: string;
  level: number;
  level_name: string;
  occurrences: number;
  acknowledged_by: string | null;
  acknowledge_note: string | null;
  resolved_because: string | null;
  workflow_id: string;
}

describe('alert escalation (real worker, real stack)', function () {
  this.timeout(600000);
  const run = randomBytes(3).toString('hex');
  const base = loadConfig(CONFIG_FILE);
  const taskQueue = uniqueTaskQueue('alerts');
  let env: TestWorkflowEnvironment;
  let web: HttpReceiver;
  let smtp: SmtpReceiver;
  let config: LifeboatConfig;
  let ports: Ports;

  before(async function () {
    env = await useTemporal();
    await useStack();
    web = await startHttpReceiver();
    smtp = await startSmtpReceiver();
    process.env.LIFEBOAT_TEST_ALERT_SLACK = `${web.url}/slack/ops`;
    process.env.LIFEBOAT_TEST_ALERT_PD = ROUTING_KEY;
    const mail = (name: string, to: string) => ({ name, kind: 'email' as const, host: '127.0.0.1', port: smtp.port, security: 'none' as const, from: 'lifeboat@example.com', to: [to], allowInsecure: true });
    config = {
      ...base,
      // Critical alerts start their escalation on the central queue: here, this test's.
      temporal: { ...base.temporal, taskQueue },
      notifications: {
        webUiUrl: UI,
        channels: [
          { name: 'ops-chat', kind: 'slack', url: 'env:LIFEBOAT_TEST_ALERT_SLACK', allowInsecure: true },
          { name: 'ops-pager', kind: 'pagerduty', routingKey: 'env:LIFEBOAT_TEST_ALERT_PD', url: `${web.url}/pagerduty/v2/enqueue`, allowInsecure: true },
          mail('admins-mail', 'backup-admins@example.com'),
          mail('manager-mail', 'manager@example.com'),
        ],
        routes: { info: [], warning: ['ops-chat'], critical: ['ops-chat', 'ops-pager'] },
        escalation: {
          steps: [
            { name: 'backup administrators', after: 10, channels: ['admins-mail'] },
            { name: 'manager', after: 60, channels: ['manager-mail'] },
          ],
          holdAcknowledged: 5,
        },
      },
    };
    ports = createPorts(config);
    await ports.catalog.migrate();
  });
  after(async () => {
    await ports?.close();
    await web?.close();
    await smtp?.close();
  });

  async function withWorker<T>(p: Ports, fn: (worker: Worker) => Promise<T>): Promise<T> {
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports: p, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(() => fn(worker));
  }

  async function failingBackup(target: string, workflowId: string): Promise<Error> {
    return env.client.workflow.execute('databaseBackup', { taskQueue, workflowId, args: [{ target, kind: 'full', pollIntervalMs: 200 }] }).then(
      () => assert.fail(`the backup of ${target} must fail`),
      (e: unknown) => e as Error,
    );
  }

  async function alertRow(workflowId: string): Promise<AlertRow | undefined> {
    const [row] = await ports.catalog.query<AlertRow>(
      'SELECT id::text AS id, status, target, level, level_name, occurrences, acknowledged_by, acknowledge_note, resolved_because, workflow_id FROM alerts WHERE workflow_id = $1 ORDER BY id DESC LIMIT 1',
      [workflowId],
    );
    return row;
  }

  async function until<T>(what: string, read: () => Promise<T | undefined>, timeoutMs = 60000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (value !== undefined) return value;
      if (Date.now() > end) assert.fail(`waited ${timeoutMs} ms for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('a critical alert pages level 0, groups a repeat, escalates after the configured delay and stops on `lifeboat ack`', async () => {
    const target = `ghost-${run}`;
    const dedupKey = `lifeboat/${target}/backup-failed`;
    const alertWorkflow = alertWorkflowId(dedupKey);
    const pdOf = () => web.pagerDuty().filter((p) => p.body.dedup_key === dedupKey);
    const slackOf = () => web.slack().filter((p) => (p.body.text as string).includes(target));

    await withWorker(ports, async () => {
      const first = await failingBackup(target, `test-alert-${run}-1`);
      assert.ok(first instanceof WorkflowFailedError, String(first));
      // Level 0: the chat and PagerDuty, with the target, what failed, the error, the link and the next step.
      const [trigger] = await web.waitFor((p) => p.body.dedup_key === dedupKey && p.body.event_action === 'trigger');
      const payload = trigger.body.payload as { summary: string; source: string; custom_details: Record<string, unknown> };
      assert.match(payload.summary, new RegExp(`^Backup FAILED: ${target} \\(full\\) while preflight: `));
      assert.equal(payload.source, target);
      assert.equal(payload.custom_details.workflow_id, `test-alert-${run}-1`);
      assert.match(String(payload.custom_details.next_step), new RegExp(`\`lifeboat backup ${target}\``));
      assert.deepEqual(trigger.body.links, [{ href: `${UI}/namespaces/default/workflows/test-alert-${run}-1`, text: 'The workflow in the Temporal Web UI' }]);
      const [chat] = await web.waitFor((p) => p.path === '/slack/ops' && (p.body.text as string).includes(target));
      assert.match(chat.body.text as string, new RegExp(`\\nWorkflow: test-alert-${run}-1 ${UI}/namespaces/default/workflows/test-alert-${run}-1\\n`));
      const row = await until('the alert row', () => alertRow(alertWorkflow));
      assert.match(chat.body.text as string, new RegExp(`\\nAlert: ${row.id}, escalation level 0 \\(routes\\.critical\\)\\. Acknowledge with \`lifeboat ack ${row.id}\``));

      // The same cause again: it joins the open alert, nobody is paged twice.
      await failingBackup(target, `test-alert-${run}-2`);
      await until('the repeat on record', async () => ((await alertRow(alertWorkflow))?.occurrences === 2 ? true : undefined));
      assert.equal(pdOf().filter((p) => p.body.event_action === 'trigger').length, 1, 'PagerDuty was paged once');
      assert.equal(slackOf().length, 1, 'the chat heard of it once');

      // Level 1 after its delay: email to the backup administrators, not the manager yet.
      const [adminMail] = await smtp.waitFor((m) => m.to.includes('backup-admins@example.com') && m.subject.includes(target), 1, 30000);
      assert.equal(adminMail.subject, `[lifeboat CRITICAL] Backup FAILED: ${target} (full) while preflight`);
      assert.match(adminMail.text, new RegExp(`^Target: ${target}\\nWhat failed: Backup FAILED: ${target} \\(full\\) while preflight\\nError: .+\\nWorkflow: test-alert-${run}-1 ${UI}/\\S+\\nNext step: .+\\nAlert: ${row.id}, escalation level 1 \\(backup administrators\\), seen 2 times\\.`));
      assert.equal(smtp.mails.filter((m) => m.to.includes('manager@example.com')).length, 0);

      // `lifeboat ack`, through the real CLI: the escalation stops at level 1.
      const ack = await lifeboat(['ack', row.id, '--by', 'Alice@example.com', '--note', 'on it: ghost target removed from the schedule']);
      assert.equal(ack.code, 0, ack.stderr);
      const lines = ack.stdout.split('\n');
      assert.match(lines[0], new RegExp(`^Alert ${row.id} acknowledged by alice@example\\.com at \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z: escalation stopped at level 1 \\(backup administrators\\)\\.$`));
      assert.equal(lines[1], `  Backup FAILED: ${target} (full) while preflight`);
      assert.match(lines[2], new RegExp(`^  Escalation: ${alertWorkflow}  http://\\S+/namespaces/default/workflows/${alertWorkflow}$`));
      // A second ack, and an alert that does not exist: one sentence each, exit 2.
      const again = await lifeboat(['ack', row.id, '--by', 'bob@example.com']);
      assert.equal(again.code, 2);
      assert.match(again.stderr, new RegExp(`^lifeboat: alert ${row.id} is already acknowledged by alice@example\\.com at \\S+: nothing to do\\.\\n$`));
      const unknown = await lifeboat(['ack', '987654321', '--by', 'bob@example.com']);
      assert.equal(unknown.code, 2);
      assert.equal(unknown.stderr, 'lifeboat: there is no alert 987654321 on record: `lifeboat alerts list` shows the open ones.\n');

      // Every channel told hears who took it; PagerDuty's incident is acknowledged by its key.
      await web.waitFor((p) => p.body.dedup_key === dedupKey && p.body.event_action === 'acknowledge');
      const [ackChat] = await web.waitFor((p) => p.path === '/slack/ops' && (p.body.text as string).startsWith(`[lifeboat CRITICAL] ACKNOWLEDGED Backup FAILED: ${target}`));
      assert.match(ackChat.body.text as string, /\nAcknowledged by alice@example\.com at \S+: on it: ghost target removed from the schedule; escalation stopped at level 1 \(backup administrators\)\.\n/);
      await smtp.waitFor((m) => m.to.includes('backup-admins@example.com') && m.subject.startsWith('[lifeboat CRITICAL] ACKNOWLEDGED'));

      // The hold ends (5 s here: long enough to see the acks go out, short for CI) and the escalation closes at level 1: the manager is never paged.
      const result = (await env.client.workflow.getHandle(alertWorkflow).result()) as AlertEscalationResult;
      assert.equal(smtp.mails.filter((m) => m.to.includes('manager@example.com')).length, 0, 'no page after the ack');
      assert.deepEqual({ ...result, acknowledged: { ...result.acknowledged, at: 'T' } }, {
        alertId: row.id,
        level: 1,
        levelName: 'backup administrators',
        occurrences: 2,
        outcome: 'closed',
        acknowledged: { alertId: row.id, by: 'alice@example.com', at: 'T', level: 1, levelName: 'backup administrators', note: 'on it: ghost target removed from the schedule' },
      });
      await recordHistory(env.client.workflow.getHandle(alertWorkflow), 'alertEscalation-v1-escalated-acknowledged');
    });

    // On record: the alert's row and each step as a workflow event, in order.
    const final = (await alertRow(alertWorkflow))!;
    assert.deepEqual(
      { status: final.status, level: final.level, level_name: final.level_name, occurrences: final.occurrences, by: final.acknowledged_by, note: final.acknowledge_note },
      { status: 'closed', level: 1, level_name: 'backup administrators', occurrences: 2, by: 'alice@example.com', note: 'on it: ghost target removed from the schedule' },
    );
    const events = await ports.catalog.query<{ event: string }>("SELECT event FROM workflow_events WHERE workflow_id = $1 AND kind = 'alert' ORDER BY id", [alertWorkflow]);
    const steps = events.map((e) => e.event.replace(`alert ${final.id} `, ''));
    assert.deepEqual(steps.filter((s) => !s.startsWith('opened')), [
      'level 0 (routes.critical) sent: ops-chat took it, ops-pager took it',
      'seen again (2 times): joined, not paged again',
      'level 1 (backup administrators) sent: admins-mail took it',
      'acknowledged by alice@example.com at level 1 (backup administrators)',
      'acknowledgement sent: ops-chat took it, ops-pager took it, admins-mail took it',
      'closed: acknowledged, and its hold ended without the cause clearing',
    ]);
    assert.match(steps[0], new RegExp(`^opened: Backup FAILED: ${target} \\(full\\) while preflight$`));

    // `lifeboat alerts list --all` shows it, through the real CLI.
    const list = await lifeboat(['alerts', 'list', '--all']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID +STATUS +TARGET +LEVEL +SEEN +OPENED +WHAT\n/);
    assert.match(list.stdout, new RegExp(`\\n${final.id} +closed +${target} +1 \\(backup administrators\\) +2x +\\S+ +Backup FAILED: ${target} \\(full\\) while preflight\\n`));
  });

  it('the next verified backup of the target resolves its open "backup failed" alert, in PagerDuty too', async () => {
    const dedupKey = 'lifeboat/app/backup-failed';
    const alertWorkflow = alertWorkflowId(dedupKey);
    // The worker sees app's source as unreachable for the first backup only: a real failure, raised as a real alert.
    const unreachable: Ports = {
      ...ports,
      database(name: string): DatabaseEngine {
        const real = ports.database(name);
        return Object.assign(Object.create(real) as DatabaseEngine, {
          async describeSource(): Promise<never> {
            throw new Error('connect ECONNREFUSED 127.0.0.1:5432 (the test took the source away)');
          },
        });
      },
    };
    await withWorker(unreachable, async () => {
      await failingBackup('app', `test-alert-${run}-app-1`);
      await web.waitFor((p) => p.body.dedup_key === dedupKey && p.body.event_action === 'trigger' && JSON.stringify(p.body).includes(`test-alert-${run}-app-1`));
    });
    const row = await until('the app alert', () => alertRow(alertWorkflow));
    assert.equal(row.status, 'open');
    await withWorker(ports, async () => {
      await env.client.workflow.execute('databaseBackup', { taskQueue, workflowId: `test-alert-${run}-app-2`, args: [{ target: 'app', kind: 'full', pollIntervalMs: 500 }] });
      const result = (await env.client.workflow.getHandle(alertWorkflow).result()) as AlertEscalationResult;
      assert.equal(result.outcome, 'resolved');
      assert.match(result.resolvedBecause ?? '', new RegExp(`^backup \\S+ of app verified in both regions \\(test-alert-${run}-app-2\\)$`));
      await recordHistory(env.client.workflow.getHandle(alertWorkflow), 'alertEscalation-v1-resolved-by-backup');
    });
    const resolve = await web.waitFor((p) => p.body.dedup_key === dedupKey && p.body.event_action === 'resolve');
    assert.deepEqual(resolve[resolve.length - 1].body, { routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: dedupKey });
    await web.waitFor((p) => p.path === '/slack/ops' && (p.body.text as string).startsWith('[lifeboat CRITICAL] RESOLVED Backup FAILED: app'));
    const final = (await alertRow(alertWorkflow))!;
    assert.equal(final.status, 'resolved');
    assert.match(final.resolved_because ?? '', /verified in both regions/);
  });

  it('every channel down: the failed backup reports its own failure, and the escalation goes on with each failure on record', async () => {
    const target = `ghost-down-${run}`;
    const alertWorkflow = alertWorkflowId(`lifeboat/${target}/backup-failed`);
    web.failing = true;
    process.env.LIFEBOAT_TEST_ALERT_SLACK = `${web.url.replace(/:\d+$/, ':1')}/slack/ops`;
    await smtp.close();
    try {
      await withWorker(ports, async () => {
        const err = await failingBackup(target, `test-alert-${run}-down`);
        assert.ok(err instanceof WorkflowFailedError);
        assert.match(err.cause?.message ?? '', new RegExp(`^Backup of ${target} failed while preflight: `));
        const result = await env.client.workflow.getHandle(alertWorkflow).query<{ level: number }>('alertState');
        assert.equal(typeof result.level, 'number');
        await until('level 1 attempted', async () => {
          const rows = await ports.catalog.query<{ event: string }>("SELECT event FROM workflow_events WHERE workflow_id = $1 AND kind = 'alert' AND event LIKE '%level 1%'", [alertWorkflow]);
          return rows[0]?.event;
        });
        const events = await ports.catalog.query<{ event: string }>("SELECT event FROM workflow_events WHERE workflow_id = $1 AND kind = 'alert' ORDER BY id", [alertWorkflow]);
        assert.match(events[1].event, / level 0 \(routes\.critical\) sent: ops-chat FAILED, ops-pager FAILED$/);
        assert.match(events[2].event, / level 1 \(backup administrators\) sent: admins-mail FAILED$/);
        await env.client.workflow.getHandle(alertWorkflow).signal('alertResolved', { reason: 'test over' });
        await env.client.workflow.getHandle(alertWorkflow).result();
      });
    } finally {
      web.failing = false;
    }
  });
});
