/**
 * PagerDuty's Events API v2 (`POST /v2/enqueue`): trigger, acknowledge and resolve one incident
 * per dedup key, so PagerDuty groups repeats the way lifeboat does.
 * https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
 */
import { AlertAction, AlertMessage, AlertSeverity } from '../../domain/alerts';
import type { WebhookDelivery } from '../notifier';
import { postJson } from './http';

export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

const PD_SEVERITY: Record<AlertSeverity, 'critical' | 'warning' | 'info'> = { critical: 'critical', warning: 'warning', info: 'info' };

export function pagerDutyEvent(routingKey: string, m: AlertMessage, action: AlertAction): Record<string, unknown> {
  // acknowledge and resolve carry the key only: PagerDuty finds the incident by it.
  if (action !== 'trigger') return { routing_key: routingKey, event_action: action, dedup_key: m.dedupKey };
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: m.dedupKey,
    payload: {
      summary: `${m.title}: ${m.text}`.slice(0, 1024),
      source: m.target ?? 'lifeboat',
      severity: PD_SEVERITY[m.severity],
      component: m.target ?? 'lifeboat',
      group: 'lifeboat',
      class: m.dedupKey.split('/').pop(),
      custom_details: {
        target: m.target ?? null,
        what_failed: m.title,
        error: m.text,
        workflow_id: m.workflowId ?? null,
        next_step: m.nextStep,
        ...(m.alertId ? { alert_id: m.alertId, acknowledge_with: `lifeboat ack ${m.alertId}` } : {}),
        ...(m.level !== undefined ? { escalation_level: m.level } : {}),
        ...(m.fields ?? {}),
      },
    },
    ...(m.link ? { links: [{ href: m.link, text: 'The workflow in the Temporal Web UI' }] } : {}),
  };
}

export async function sendToPagerDuty(url: URL | string, routingKey: string, m: AlertMessage, action: AlertAction, delivery: WebhookDelivery): Promise<string> {
  const answer = await postJson(url, pagerDutyEvent(routingKey, m, action), delivery);
  // PagerDuty answers 202 with {"status":"success","dedup_key":...}; anything else did not land.
  let parsed: { status?: string; message?: string; dedup_key?: string } = {};
  try {
    parsed = JSON.parse(answer.text) as typeof parsed;
  } catch {
    throw new Error(`the Events API answered HTTP ${answer.status} without JSON`);
  }
  if (parsed.status !== 'success') throw new Error(`the Events API answered "${parsed.status ?? '?'}": ${parsed.message ?? 'no message'}`);
  return `${action} accepted (dedup_key ${parsed.dedup_key ?? m.dedupKey})${answer.attempt > 1 ? ` on attempt ${answer.attempt}` : ''}`;
}
