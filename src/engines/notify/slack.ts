/**
 * A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat and most chat tools take
 * this shape): `text` for clients and notifications, `blocks` for a readable layout in Slack.
 */
import { AlertAction, alertLines, AlertMessage, alertSubject } from '../../domain/alerts';
import type { WebhookDelivery } from '../notifier';
import { postJson } from './http';

export function slackPayload(m: AlertMessage, action: AlertAction, note?: string): Record<string, unknown> {
  const subject = alertSubject(m, action);
  const lines = alertLines(m, action, note);
  return {
    text: `${subject}\n${lines.join('\n')}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: subject.slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: lines.map((l) => l.replace(/^([A-Z][a-z ]+):/, '*$1:*')).join('\n').slice(0, 3000) } },
      ...(m.link ? [{ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open the workflow' }, url: m.link }] }] : []),
    ],
  };
}

export async function postToSlack(url: URL | string, m: AlertMessage, action: AlertAction, delivery: WebhookDelivery, note?: string): Promise<string> {
  const answer = await postJson(url, slackPayload(m, action, note), delivery);
  return `posted${answer.attempt > 1 ? ` on attempt ${answer.attempt}` : ''}`;
}
