/**
 * The notification channels against local receivers that answer as the real services do: a
 * Slack-compatible webhook, PagerDuty's Events API v2, and an SMTP server speaking the protocol
 * over STARTTLS with a certificate from a local CA (test/helpers/notification-receivers.ts).
 * Severity routing, the config's checks of channels, and `lifeboat ack`'s refusals of bad input
 * (through the real CLI) are here too. No lifeboat stack needed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigError, parseConfig } from '../src/config';
import { AlertMessage } from '../src/domain/alerts';
import { LogAndWebhookNotifier } from '../src/engines/notifier';
import { ChannelConfig, NotificationChannels } from '../src/engines/notify/channels';
import { alertMessageOf, RoutingNotifier } from '../src/engines/notify/routing';
import { ensureLocalCertificates } from '../src/stack/tls';
import { CONFIG_FILE, lifeboat } from './helpers/cli';
import { HttpReceiver, SmtpReceiver, startHttpReceiver, startSmtpReceiver } from './helpers/notification-receivers';

const ROUTING_KEY = 'R0UT1NGKEY0123456789abcdefABCDEF'; // 32 characters, as PagerDuty's integration keys
const delivery = { attempts: 2, timeoutMs: 2000, backoffMs: 50 };

const failure: AlertMessage = alertMessageOf(
  {
    severity: 'critical',
    title: 'Backup FAILED: app (full) while verifying',
    text: 'Verification of 20261201-010203F in the primary region failed: pg_data/base/1/1234 is damaged.',
    target: 'app',
    workflowId: 'backup-app-20261201',
  },
  (id) => `https://temporal.example.com/namespaces/default/workflows/${id}`,
);

describe('notification channels (local receivers)', function () {
  this.timeout(60000);
  let web: HttpReceiver;
  let smtp: SmtpReceiver;
  let ca: string;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-notify-'));

  before(async () => {
    web = await startHttpReceiver();
    const certs = await ensureLocalCertificates('openssl', path.join(dir, 'tls'), '127.0.0.1');
    ca = certs.caCert;
    smtp = await startSmtpReceiver({ tls: { key: fs.readFileSync(certs.serverKey, 'utf8'), cert: fs.readFileSync(certs.serverCert, 'utf8') }, users: { 'lifeboat@example.com': 's3cret pass' } });
    process.env.LIFEBOAT_TEST_SLACK_URL = `${web.url}/slack/T000/B000/XXXX`;
    process.env.LIFEBOAT_TEST_PD_KEY = ROUTING_KEY;
    process.env.LIFEBOAT_TEST_SMTP_PASSWORD = 's3cret pass';
  });
  after(async () => {
    await web?.close();
    await smtp?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const channels = (): ChannelConfig[] => [
    { name: 'ops-chat', kind: 'slack', url: 'env:LIFEBOAT_TEST_SLACK_URL', allowInsecure: true },
    { name: 'ops-pager', kind: 'pagerduty', routingKey: 'env:LIFEBOAT_TEST_PD_KEY', url: `${web.url}/pagerduty/v2/enqueue`, allowInsecure: true },
    {
      name: 'admins-mail',
      kind: 'email',
      host: '127.0.0.1',
      port: smtp.port,
      security: 'starttls',
      caFile: ca,
      user: 'lifeboat@example.com',
      password: 'env:LIFEBOAT_TEST_SMTP_PASSWORD',
      from: 'lifeboat@example.com',
      to: ['backup-admins@example.com', 'oncall@example.com'],
      allowInsecure: false,
    },
  ];

  it('a Slack-compatible webhook gets the target, what failed, the error, the link and the next step', async () => {
    const before = web.slack().length;
    const [outcome] = await new NotificationChannels(channels(), { delivery }).deliver(['ops-chat'], { ...failure, alertId: '7', level: 0, levelName: 'routes.critical' });
    assert.deepEqual(outcome, { channel: 'ops-chat', kind: 'slack', delivered: true, detail: 'posted' });
    const post = web.slack()[before];
    assert.equal(post.path, '/slack/T000/B000/XXXX');
    const text = post.body.text as string;
    assert.match(text, /^\[lifeboat CRITICAL\] Backup FAILED: app \(full\) while verifying\n/);
    assert.match(text, /\nTarget: app\n/);
    assert.match(text, /\nWhat failed: Backup FAILED: app \(full\) while verifying\n/);
    assert.match(text, /\nError: Verification of 20261201-010203F in the primary region failed: pg_data\/base\/1\/1234 is damaged\.\n/);
    assert.match(text, /\nWorkflow: backup-app-20261201 https:\/\/temporal\.example\.com\/namespaces\/default\/workflows\/backup-app-20261201\n/);
    assert.match(text, /\nNext step: .*`lifeboat backup app`/);
    assert.match(text, /\nAlert: 7, escalation level 0 \(routes\.critical\)\. Acknowledge with `lifeboat ack 7` to stop the escalation\.$/);
    const blocks = post.body.blocks as Array<{ type: string; elements?: Array<{ url: string }> }>;
    assert.deepEqual(
      blocks.map((b) => b.type),
      ['header', 'section', 'actions'],
    );
    assert.equal(blocks[2].elements?.[0].url, failure.link);
  });

  it('PagerDuty Events v2: trigger with the dedup key, then acknowledge and resolve the same incident', async () => {
    const ch = new NotificationChannels(channels(), { delivery });
    const before = web.pagerDuty().length;
    for (const action of ['trigger', 'acknowledge', 'resolve'] as const) {
      const [o] = await ch.deliver(['ops-pager'], { ...failure, alertId: '7', level: 1 }, action);
      assert.equal(o.delivered, true, o.detail);
      assert.equal(o.detail, `${action} accepted (dedup_key lifeboat/app/backup-failed)`);
    }
    const [trigger, ack, resolve] = web.pagerDuty().slice(before).map((p) => p.body);
    assert.equal(trigger.routing_key, ROUTING_KEY);
    assert.equal(trigger.event_action, 'trigger');
    assert.equal(trigger.dedup_key, 'lifeboat/app/backup-failed');
    assert.deepEqual(trigger.payload, {
      summary: `${failure.title}: ${failure.text}`,
      source: 'app',
      severity: 'critical',
      component: 'app',
      group: 'lifeboat',
      class: 'backup-failed',
      custom_details: {
        target: 'app',
        what_failed: failure.title,
        error: failure.text,
        workflow_id: 'backup-app-20261201',
        next_step: failure.nextStep,
        alert_id: '7',
        acknowledge_with: 'lifeboat ack 7',
        escalation_level: 1,
      },
    });
    assert.deepEqual(trigger.links, [{ href: failure.link, text: 'The workflow in the Temporal Web UI' }]);
    assert.deepEqual(ack, { routing_key: ROUTING_KEY, event_action: 'acknowledge', dedup_key: 'lifeboat/app/backup-failed' });
    assert.deepEqual(resolve, { routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: 'lifeboat/app/backup-failed' });
  });

  it('PagerDuty refusing the event (a bad routing key) is an undelivered outcome that says why, not an error', async () => {
    process.env.LIFEBOAT_TEST_PD_BAD_KEY = 'short';
    const bad = channels().map((c) => (c.kind === 'pagerduty' ? { ...c, routingKey: 'env:LIFEBOAT_TEST_PD_BAD_KEY' as const } : c));
    const [o] = await new NotificationChannels(bad, { delivery }).deliver(['ops-pager'], failure);
    assert.equal(o.delivered, false);
    assert.match(o.detail, /^pagerduty channel "ops-pager" did not take "Backup FAILED: app \(full\) while verifying": HTTP 400: .*invalid event.*routing_key/);
  });

  it('email over SMTP: STARTTLS verified against the local CA, AUTH PLAIN, every recipient, the alert as text', async () => {
    const before = smtp.mails.length;
    const [o] = await new NotificationChannels(channels(), { delivery }).deliver(['admins-mail'], { ...failure, alertId: '7', level: 1, levelName: 'backup administrators' });
    assert.equal(o.delivered, true, o.detail);
    assert.match(o.detail, new RegExp(`^accepted by 127\\.0\\.0\\.1:${smtp.port} \\(2\\.0\\.0 Ok: queued as \\d+\\)$`));
    const mail = smtp.mails[before];
    assert.equal(mail.encrypted, true);
    assert.equal(mail.user, 'lifeboat@example.com');
    assert.equal(mail.from, 'lifeboat@example.com');
    assert.deepEqual(mail.to, ['backup-admins@example.com', 'oncall@example.com']);
    assert.equal(mail.subject, '[lifeboat CRITICAL] Backup FAILED: app (full) while verifying');
    assert.equal(mail.headers['auto-submitted'], 'auto-generated');
    assert.match(mail.text, /^Target: app\nWhat failed: Backup FAILED: app \(full\) while verifying\nError: Verification of .* is damaged\.\nWorkflow: backup-app-20261201 https:\/\/temporal\.example\.com\/\S+\nNext step: .+\nAlert: 7, escalation level 1 \(backup administrators\)\. Acknowledge with `lifeboat ack 7` to stop the escalation\.\n/);
    // The protocol as a submission server sees it: EHLO twice around STARTTLS, AUTH only after it.
    const seen = smtp.commands.slice(-9);
    assert.deepEqual(seen.slice(0, 4), [seen[0], 'STARTTLS', seen[0], 'AUTH PLAIN']);
    assert.match(seen[0], /^EHLO \S+$/);
    assert.deepEqual(seen.slice(4), ['MAIL FROM:<lifeboat@example.com>', 'RCPT TO:<backup-admins@example.com>', 'RCPT TO:<oncall@example.com>', 'DATA', 'QUIT']);
  });

  it('email: a password is never sent over a connection that is not encrypted', async () => {
    const plain = await startSmtpReceiver({ users: { 'lifeboat@example.com': 's3cret pass' } });
    try {
      const ch: ChannelConfig = { ...(channels()[2] as Extract<ChannelConfig, { kind: 'email' }>), port: plain.port, security: 'none', allowInsecure: true };
      const [o] = await new NotificationChannels([ch], { delivery }).deliver(['admins-mail'], failure);
      assert.equal(o.delivered, false);
      assert.match(o.detail, /failed at EHLO \S+: refusing to send the SMTP password over an unencrypted connection: use security starttls or implicit$/);
      assert.equal(plain.commands.some((c) => c.startsWith('AUTH')), false);
      assert.equal(plain.mails.length, 0);
    } finally {
      await plain.close();
    }
  });

  it('a relay that offers no STARTTLS is refused when the channel asks for it', async () => {
    const plain = await startSmtpReceiver();
    try {
      const ch: ChannelConfig = { ...(channels()[2] as Extract<ChannelConfig, { kind: 'email' }>), port: plain.port };
      const [o] = await new NotificationChannels([ch], { delivery }).deliver(['admins-mail'], failure);
      assert.equal(o.delivered, false);
      assert.match(o.detail, /the server does not offer STARTTLS/);
      assert.equal(plain.mails.length, 0);
    } finally {
      await plain.close();
    }
  });

  it('severity decides the channels: a warning goes to its route only; a critical one without an escalation goes to its route directly', async () => {
    const log: string[] = [];
    const notifier = new RoutingNotifier({
      base: new LogAndWebhookNotifier({ log: (l) => log.push(l) }),
      channels: new NotificationChannels(channels(), { delivery }),
      routes: { warning: ['ops-chat'], critical: ['ops-pager', 'admins-mail'] },
      escalates: true,
      // No Temporal client here (as outside an activity): the alert goes straight to its channels.
      raise: async () => undefined,
      log: (l) => log.push(l),
    });
    const [slackBefore, pdBefore, mailBefore] = [web.slack().length, web.pagerDuty().length, smtp.mails.length];
    const warning = await notifier.notify({ severity: 'warning', title: 'RPO breached: app', text: 'The last good backup is 26 hours old.', target: 'app' });
    assert.deepEqual(warning, { delivered: true, detail: 'logged (no webhook configured); sent to ops-chat' });
    assert.equal(web.slack().length, slackBefore + 1);
    assert.equal(web.pagerDuty().length, pdBefore);
    const info = await notifier.notify({ severity: 'info', title: 'Backup complete: app', text: 'ok', target: 'app' });
    assert.deepEqual(info, { delivered: true, detail: 'logged (no webhook configured)' });
    const critical = await notifier.notify({ severity: 'critical', title: failure.title, text: failure.text, target: 'app', workflowId: 'wf-9' });
    assert.deepEqual(critical, { delivered: true, detail: 'logged (no webhook configured); sent to ops-pager, admins-mail' });
    assert.equal(web.slack().length, slackBefore + 1);
    assert.equal(web.pagerDuty().length, pdBefore + 1);
    assert.equal(smtp.mails.length, mailBefore + 1);
    assert.deepEqual(log, [
      '[lifeboat warning] RPO breached: app (target app): The last good backup is 26 hours old.',
      '[lifeboat info] Backup complete: app (target app): ok',
      `[lifeboat critical] ${failure.title} (target app) [wf-9]: ${failure.text}`,
    ]);
  });

  describe('the config of channels, routes and escalation', () => {
    const base = YAML.parse(fs.readFileSync(CONFIG_FILE, 'utf8')) as Record<string, unknown>;
    const withNotifications = (notifications: unknown) => YAML.stringify({ ...base, notifications });
    const problems = (notifications: unknown): string[] => {
      try {
        parseConfig(withNotifications(notifications), 'test.yaml');
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.problems.map((p) => `${p.path}: ${p.message}`);
      }
      return [];
    };
    const pager = { name: 'ops-pager', kind: 'pagerduty', routingKey: { secretRef: 'env:PD_KEY' } };

    it('accepts a full setup, with defaults filled in', () => {
      const config = parseConfig(
        withNotifications({
          channels: [pager, { name: 'admins', kind: 'email', host: 'smtp.example.com', from: 'lifeboat@example.com', to: ['admins@example.com'] }],
          routes: { critical: ['ops-pager'] },
          escalation: { steps: [{ name: 'backup administrators', channels: ['admins'] }] },
        }),
        'test.yaml',
      );
      const n = config.notifications;
      assert.equal(n.channels?.[0].kind === 'pagerduty' && n.channels[0].url, 'https://events.pagerduty.com/v2/enqueue');
      assert.deepEqual(n.channels?.[1].kind === 'email' && [n.channels[1].port, n.channels[1].security], [587, 'starttls']);
      assert.deepEqual(n.escalation, { steps: [{ name: 'backup administrators', after: 1800, channels: ['admins'] }], holdAcknowledged: 86400 });
      assert.deepEqual(n.routes, { info: [], warning: [], critical: ['ops-pager'] });
    });

    it('refuses an unknown channel in a route or a level, in one sentence each', () => {
      assert.deepEqual(problems({ channels: [pager], routes: { critical: ['ops-pagr'] }, escalation: { steps: [{ name: 'managers', after: '1h', channels: ['managers'] }] } }), [
        'notifications.routes.critical[0]: notification channel "ops-pagr" is not declared in notifications.channels (known: ops-pager; did you mean "ops-pager"?)',
        'notifications.escalation.steps[0].channels[0]: notification channel "managers" is not declared in notifications.channels (known: ops-pager)',
      ]);
    });

    it('refuses channels that would send in the clear without allowInsecure', () => {
      assert.deepEqual(problems({ channels: [{ ...pager, url: 'http://pd.internal/v2/enqueue' }, { name: 'mail', kind: 'email', host: 'relay', security: 'none', from: 'a@example.com', to: ['b@example.com'] }] }), [
        'notifications.channels[0].url: uses plain http: make it https, or set allowInsecure: true for a local test receiver',
        'notifications.channels[1].security: is none, which sends alerts (and any password) unencrypted: use starttls or implicit, or set allowInsecure: true for a local relay',
      ]);
    });
  });

  describe('lifeboat ack refuses bad input before connecting (exit 2, one sentence)', () => {
    it('an id that is not an alert id', async () => {
      const r = await lifeboat(['ack', 'backup-app'], { LIFEBOAT_USER: 'alice@example.com' });
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, 'lifeboat: "backup-app" is not an alert id: pass the number `lifeboat alerts list` shows, such as 12.\n');
      assert.equal(r.stdout, '');
    });

    it('nobody to put on record', async () => {
      const r = await lifeboat(['ack', '12']);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, 'lifeboat: who takes the alert? pass --by <person> or set LIFEBOAT_USER, so the acknowledgement is on record.\n');
    });
  });
});
