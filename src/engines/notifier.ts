import { redactSecrets } from '../config/secrets';

/**
 * The Notifier port: every notification is logged, and posted as JSON to a webhook when one is
 * configured (Slack, PagerDuty or any endpoint that takes JSON). Delivery is retried a few
 * times within the call and then given up with a logged warning: never an error to the caller.
 */
import type { Severity } from '../domain/alerts';

export type { Severity };

export interface Notification {
  severity: Severity;
  /** One line a person reads first, e.g. "Backup complete: app (full, 41 MB)". */
  title: string;
  text: string;
  workflowId?: string;
  target?: string;
  fields?: Record<string, string | number | boolean>;
  /** Groups repeats with the target: same target and cause, same alert (default: the title before its first colon). */
  cause?: string;
  /** What the person who reads it does first (default: by cause, else the runbook). */
  nextStep?: string;
}

export interface NotifyOutcome {
  /** Whether a configured webhook took it (true when there is no webhook: the log line is the delivery). */
  delivered: boolean;
  detail: string;
}

/**
 * Notifications are best effort: notify never throws. A webhook outage must not fail an
 * approval gate or a backup, nor replace the failure a notification was about; the log line
 * is always written, and an undelivered notification is logged with why.
 */
export interface Notifier {
  notify(notification: Notification): Promise<NotifyOutcome>;
}

export interface WebhookDelivery {
  /** Attempts per notification (default 3). */
  attempts: number;
  /** How long one attempt may take, so a hanging endpoint costs a bounded time (default 5 s). */
  timeoutMs: number;
  /** Wait before the second attempt, doubling after (default 1 s). */
  backoffMs: number;
}

export class LogAndWebhookNotifier implements Notifier {
  private readonly delivery: WebhookDelivery;

  constructor(
    private readonly options: {
      webhookUrl?: () => URL | string;
      /** Names the secret the URL comes from in messages (never the URL: it carries a token). */
      webhookReference?: string;
      log?: (line: string) => void;
      delivery?: Partial<WebhookDelivery>;
      /** Scrubs secret values from what is logged and returned (default: lifeboat's registry of resolved secrets). */
      redact?: (text: string) => string;
    } = {},
  ) {
    this.delivery = { attempts: 3, timeoutMs: 5000, backoffMs: 1000, ...options.delivery };
  }

  async notify(n: Notification): Promise<NotifyOutcome> {
    const redact = this.options.redact ?? redactSecrets;
    const write = this.options.log ?? ((line: string) => process.stdout.write(line + '\n'));
    const log = (line: string) => write(redact(line));
    log(`[lifeboat ${n.severity}] ${n.title}${n.target ? ` (target ${n.target})` : ''}${n.workflowId ? ` [${n.workflowId}]` : ''}: ${n.text}`);
    if (!this.options.webhookUrl) return { delivered: true, detail: 'logged (no webhook configured)' };
    const where = this.options.webhookReference ? `the webhook URL (${this.options.webhookReference})` : 'notifications.webhook.url';
    let url: URL | string;
    try {
      url = this.options.webhookUrl();
    } catch (err) {
      // A URL that does not resolve or is refused is not worth retrying; its message names the reference only.
      const detail = redact(`the notification "${n.title}" was not posted: ${err instanceof Error ? err.message : String(err)} The notification is in this log only.`);
      log(`[lifeboat warning] ${detail}${n.workflowId ? ` [${n.workflowId}]` : ''}`);
      return { delivered: false, detail };
    }
    let problem = '';
    for (let attempt = 1; attempt <= this.delivery.attempts; attempt++) {
      if (attempt > 1) await new Promise((r) => setTimeout(r, this.delivery.backoffMs * 2 ** (attempt - 2)));
      try {
        await this.post(url, n);
        return { delivered: true, detail: `posted to the webhook${attempt > 1 ? ` on attempt ${attempt}` : ''}` };
      } catch (err) {
        problem = describeFetchFailure(err);
      }
    }
    const detail = redact(`the notification webhook did not take "${n.title}" after ${this.delivery.attempts} attempts (${problem}): check ${where}; the notification is in this log only`);
    log(`[lifeboat warning] ${detail}${n.workflowId ? ` [${n.workflowId}]` : ''}`);
    return { delivered: false, detail };
  }

  private async post(url: URL | string, n: Notification): Promise<void> {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      // `text` makes it readable in Slack as is; the structured fields serve PagerDuty-style consumers.
      body: JSON.stringify({ text: `${n.title}\n${n.text}`, severity: n.severity, title: n.title, workflowId: n.workflowId, target: n.target, fields: n.fields ?? {} }),
      signal: AbortSignal.timeout(this.delivery.timeoutMs),
    });
    // Drain the body so the connection is released whatever the answer.
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
  }
}

/** Why a post failed, without the URL: some fetch messages quote the whole URL, token included. */
function describeFetchFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, '<the webhook URL>');
}
