/**
 * The Notifier port with severity routing: every notification is logged (and posted to the
 * legacy `notifications.webhook`) as before; then `notifications.routes` decides which channels
 * hear of it. A critical one becomes an alert: handed to `raise` (the alertEscalation workflow,
 * which groups repeats and escalates), or, where it cannot be raised, sent to its channels at once.
 * Never throws, like every Notifier.
 */
import { AlertMessage, dedupKeyOf, defaultNextStep, Severity as AlertSeverity } from '../../domain/alerts';
import { redactSecrets } from '../../config/secrets';
import type { Notification, Notifier, NotifyOutcome } from '../notifier';
import type { NotificationChannels } from './channels';

export type Routes = Partial<Record<AlertSeverity, string[]>>;

/** Starts or joins an alert's escalation; undefined when that cannot happen here (then the alert goes straight to its channels). */
export type AlertRaiser = (alert: AlertMessage, occurrence: { title: string; text: string; workflowId?: string }) => Promise<string | undefined>;

/** The Web UI page of a workflow, under `base` (no trailing slash). */
export function workflowLink(base: string, namespace: string, workflowId: string): string {
  return `${base.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** What every channel gets of a notification: its facts, the link to its workflow, and a next step. */
export function alertMessageOf(n: Notification, link?: (workflowId: string) => string): AlertMessage {
  return {
    severity: n.severity,
    title: n.title,
    text: n.text,
    ...(n.target ? { target: n.target } : {}),
    ...(n.workflowId ? { workflowId: n.workflowId, ...(link ? { link: link(n.workflowId) } : {}) } : {}),
    nextStep: n.nextStep ?? defaultNextStep(n),
    dedupKey: dedupKeyOf(n),
    ...(n.fields ? { fields: n.fields } : {}),
  };
}

export class RoutingNotifier implements Notifier {
  constructor(
    private readonly options: {
      /** Logs, and posts to the legacy webhook. */
      base: Notifier;
      channels: NotificationChannels;
      routes: Routes;
      /** Whether critical alerts escalate (a level 0 or later levels configured). */
      escalates: boolean;
      raise?: AlertRaiser;
      link?: (workflowId: string) => string;
      log?: (line: string) => void;
      redact?: (text: string) => string;
    },
  ) {}

  async notify(n: Notification): Promise<NotifyOutcome> {
    const redact = this.options.redact ?? redactSecrets;
    const write = this.options.log ?? ((line: string) => process.stdout.write(line + '\n'));
    const log = (line: string) => write(redact(line));
    const base = await this.options.base.notify(n);
    const names = this.options.routes[n.severity] ?? [];
    const message = alertMessageOf(n, this.options.link);
    if (n.severity === 'critical' && this.options.escalates && this.options.raise) {
      try {
        const raised = await this.options.raise(message, { title: n.title, text: n.text, ...(n.workflowId ? { workflowId: n.workflowId } : {}) });
        if (raised) return { delivered: base.delivered, detail: `${base.detail}; ${raised}` };
      } catch (err) {
        // Temporal unreachable: the page must still go out, ungrouped, rather than not at all.
        log(`[lifeboat warning] the alert "${n.title}" could not start its escalation (${err instanceof Error ? err.message : String(err)}); sending it to ${names.join(', ') || 'no channel'} directly${n.workflowId ? ` [${n.workflowId}]` : ''}`);
      }
    }
    if (!names.length) return base;
    const outcomes = await this.options.channels.deliver(names, message);
    for (const o of outcomes.filter((x) => !x.delivered)) log(`[lifeboat warning] ${o.detail}; the notification is in this log${n.workflowId ? ` [${n.workflowId}]` : ''}`);
    const failed = outcomes.filter((o) => !o.delivered).map((o) => o.channel);
    return {
      delivered: base.delivered && failed.length === 0,
      detail: redact(`${base.detail}; ${failed.length ? `not taken by ${failed.join(', ')}` : `sent to ${names.join(', ')}`}`),
    };
  }
}
