/**
 * The configured notification channels (`notifications.channels`), each delivered by the module
 * of its external system: slack.ts, pagerduty.ts, smtp.ts. Secrets are read at each delivery, so a
 * rotated key is used at once and a bad one is named by its reference. Delivery never throws:
 * every channel's outcome is returned (and a failure logged by the caller), one channel's outage
 * never stops another's.
 */
import { LifeboatConfig, resolveSecret, resolveSecretUrl } from '../../config';
import { AlertAction, alertLines, AlertMessage, alertSubject } from '../../domain/alerts';
import type { WebhookDelivery } from '../notifier';
import { DEFAULT_DELIVERY } from './http';
import { sendToPagerDuty } from './pagerduty';
import { postToSlack } from './slack';
import { sendMail } from './smtp';

export type ChannelConfig = NonNullable<LifeboatConfig['notifications']['channels']>[number];

export interface ChannelOutcome {
  channel: string;
  kind: string;
  delivered: boolean;
  detail: string;
}

export class NotificationChannels {
  private readonly delivery: WebhookDelivery;

  constructor(
    private readonly channels: readonly ChannelConfig[],
    options: { delivery?: Partial<WebhookDelivery>; env?: NodeJS.ProcessEnv } = {},
  ) {
    this.delivery = { ...DEFAULT_DELIVERY, ...options.delivery };
    this.env = options.env ?? process.env;
  }

  private readonly env: NodeJS.ProcessEnv;

  get names(): string[] {
    return this.channels.map((c) => c.name);
  }

  /** Sends `m` to each named channel at once; an unknown name is an outcome, not an error (the config check makes it rare). */
  async deliver(names: readonly string[], m: AlertMessage, action: AlertAction = 'trigger', note?: string): Promise<ChannelOutcome[]> {
    return Promise.all(
      [...new Set(names)].map(async (name): Promise<ChannelOutcome> => {
        const channel = this.channels.find((c) => c.name === name);
        if (!channel) return { channel: name, kind: '?', delivered: false, detail: `no channel "${name}" in notifications.channels` };
        try {
          return { channel: name, kind: channel.kind, delivered: true, detail: await this.send(channel, m, action, note) };
        } catch (err) {
          return { channel: name, kind: channel.kind, delivered: false, detail: `${channel.kind} channel "${name}" did not take "${m.title}": ${(err as Error).message}` };
        }
      }),
    );
  }

  private async send(c: ChannelConfig, m: AlertMessage, action: AlertAction, note?: string): Promise<string> {
    const key = `notifications.channels[${this.channels.indexOf(c)}].allowInsecure`;
    switch (c.kind) {
      case 'slack': {
        const url = resolveSecretUrl(c.url, 'webhook URL', { allowInsecure: c.allowInsecure, allowInsecureKey: key }, this.env);
        return postToSlack(url, m, action, this.delivery, note);
      }
      case 'pagerduty':
        return sendToPagerDuty(c.url, resolveSecret(c.routingKey, this.env), m, action, this.delivery);
      case 'email': {
        const password = c.password;
        return sendMail(
          {
            host: c.host,
            port: c.port,
            security: c.security,
            ...(c.user ? { user: c.user } : {}),
            ...(password ? { password: () => resolveSecret(password, this.env) } : {}),
            ...(c.caFile ? { caFile: c.caFile } : {}),
            timeoutMs: this.delivery.timeoutMs * 2,
          },
          { from: c.from, to: c.to, subject: alertSubject(m, action), text: alertLines(m, action, note).join('\n') + '\n\n-- lifeboat\n' },
        );
      }
    }
  }
}
