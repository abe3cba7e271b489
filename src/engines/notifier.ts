/**
 * The Notifier port: every notification is logged, and posted as JSON to a webhook when one is
 * configured (Slack, PagerDuty or any endpoint that takes JSON). A webhook that fails is reported
 * to the caller so the activity retries; the log line is never lost.
 */
export type Severity = 'info' | 'warning' | 'critical';

export interface Notification {
  severity: Severity;
  /** One line a person reads first, e.g. "Backup complete: app (full, 41 MB)". */
  title: string;
  text: string;
  workflowId?: string;
  target?: string;
  fields?: Record<string, string | number | boolean>;
}

export interface Notifier {
  notify(notification: Notification): Promise<void>;
}

export class LogAndWebhookNotifier implements Notifier {
  constructor(
    private readonly options: { webhookUrl?: () => string; log?: (line: string) => void } = {},
  ) {}

  async notify(n: Notification): Promise<void> {
    const log = this.options.log ?? ((line: string) => process.stdout.write(line + '\n'));
    log(`[lifeboat ${n.severity}] ${n.title}${n.target ? ` (target ${n.target})` : ''}${n.workflowId ? ` [${n.workflowId}]` : ''}: ${n.text}`);
    if (!this.options.webhookUrl) return;
    const url = this.options.webhookUrl();
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      // `text` makes it readable in Slack as is; the structured fields serve PagerDuty-style consumers.
      body: JSON.stringify({ text: `${n.title}\n${n.text}`, severity: n.severity, title: n.title, workflowId: n.workflowId, target: n.target, fields: n.fields ?? {} }),
      signal: AbortSignal.timeout(10000),
    });
    if (!res.ok) throw new Error(`the notification webhook answered HTTP ${res.status}: check the URL the config's notifications.webhook.url points at.`);
  }
}
