/**
 * JSON over HTTPS for the notification channels that take it (Slack-compatible webhooks,
 * PagerDuty's Events API): a few attempts with a bounded time each, then a sentence saying why.
 */
import type { WebhookDelivery } from '../notifier';

export const DEFAULT_DELIVERY: WebhookDelivery = { attempts: 3, timeoutMs: 5000, backoffMs: 1000 };

/** Why a post failed, without the URL: some fetch messages quote the whole URL, token included. */
export function describePostFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, '<the endpoint URL>');
}

/**
 * Posts `body` until the endpoint answers 2xx or the attempts run out; resolves with the answer's
 * text, rejects with the last problem (HTTP status or network error), never with the URL in it.
 * A 4xx other than 429 is not retried: the same request would be refused again.
 */
export async function postJson(url: URL | string, body: unknown, delivery: WebhookDelivery): Promise<{ attempt: number; status: number; text: string }> {
  let problem = '';
  for (let attempt = 1; attempt <= delivery.attempts; attempt++) {
    if (attempt > 1) await new Promise((r) => setTimeout(r, delivery.backoffMs * 2 ** (attempt - 2)));
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(delivery.timeoutMs),
      });
      const text = await res.text().catch(() => '');
      if (res.ok) return { attempt, status: res.status, text };
      problem = `HTTP ${res.status}${text ? `: ${text.slice(0, 200).trim()}` : ''}`;
      if (res.status >= 400 && res.status < 500 && res.status !== 429) break;
    } catch (err) {
      problem = describePostFailure(err);
    }
  }
  throw new Error(problem);
}
