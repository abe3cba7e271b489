/**
 * Alerts: what a person paged at night reads, and how repeats of one cause are told apart from a
 * new problem. Pure rules (no I/O): the notifier, the alertEscalation workflow, its activities
 * and the CLI share them.
 */

export type Severity = 'info' | 'warning' | 'critical';
export type AlertSeverity = Severity;

/** The facts one alert carries to every channel, whatever the channel's format. */
export interface AlertMessage {
  severity: AlertSeverity;
  /** What failed, in one line. */
  title: string;
  /** The error, as the workflow or activity reported it. */
  text: string;
  target?: string;
  /** The workflow the failure happened in, and its page in the Web UI. */
  workflowId?: string;
  link?: string;
  /** What the person who reads it does first. */
  nextStep: string;
  /** Groups repeats: the same target and cause is the same alert while it is open. */
  dedupKey: string;
  /** The catalog's alert id once an escalation opened one (`lifeboat ack <id>`). */
  alertId?: string;
  /** The escalation level that sends it (0: the routes of its severity) and that level's name. */
  level?: number;
  levelName?: string;
  occurrences?: number;
  fields?: Record<string, string | number | boolean>;
}

/** What a delivery tells a channel: a new alert, or a change of an alert the channel was told of. */
export type AlertAction = 'trigger' | 'acknowledge' | 'resolve';

/**
 * The cause of a notification, for grouping: given by the sender, else the part of its title
 * before the first colon ("Backup FAILED: app (full) while verifying" → "backup-failed"), which
 * every lifeboat alert keeps free of sizes, times and ids.
 */
export function causeOf(n: { title: string; cause?: string }): string {
  const basis = n.cause ?? n.title.split(':')[0];
  const slug = basis
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug.slice(0, 60) || 'alert';
}

/** One key per target and cause: PagerDuty's dedup_key and the catalog's grouping key. */
export function dedupKeyOf(n: { title: string; cause?: string; target?: string }): string {
  return `lifeboat/${n.target ?? 'lifeboat'}/${causeOf(n)}`;
}

/** The escalation workflow of a dedup key: one open at a time, so a repeat finds it by name. */
export function alertWorkflowId(dedupKey: string): string {
  return `alert-${dedupKey.replace(/^lifeboat\//, '').replace(/[^A-Za-z0-9._-]+/g, '-')}`;
}

/** Causes whose alert the next good run of the same target closes (`resolve` to every channel told). */
export const RESOLVED_BY_GOOD_BACKUP = ['backup-failed', 'dr-copy-failed'] as const;
/** Causes a passed drill of the same target closes. */
export const RESOLVED_BY_PASSED_DRILL = ['restore-drill-failed'] as const;

/** The first thing to do, when the sender did not say: by cause, else the runbook. */
export function defaultNextStep(n: { title: string; cause?: string; target?: string }): string {
  const cause = causeOf(n);
  const target = n.target ?? '<target>';
  if (cause === 'backup-failed' || cause === 'dr-copy-failed')
    return `Read the error and the workflow's history in the Web UI, fix the cause, then run \`lifeboat backup ${target}\`; the alert resolves itself with the next verified backup of ${target} (docs/runbook.md#backup-failed).`;
  if (cause === 'restore-drill-failed') return `Open the drill report, fix what failed, then run \`lifeboat drill run ${target}\` again (docs/runbook.md#drill-failed).`;
  if (cause === 'predicted-rto-over-the-objective') return `Read the prediction in the drill report and shorten the restore, or raise the RTO with whoever owns it (docs/runbook.md#predicted-rto-over-objective).`;
  return 'Open the workflow in the Web UI, read the failure, and follow docs/runbook.md for it.';
}

/** The subject line every channel shows first. */
export function alertSubject(m: Pick<AlertMessage, 'severity' | 'title'>, action: AlertAction = 'trigger'): string {
  const state = action === 'acknowledge' ? 'ACKNOWLEDGED ' : action === 'resolve' ? 'RESOLVED ' : '';
  return `[lifeboat ${m.severity.toUpperCase()}] ${state}${m.title}`;
}

/** The body as lines of text (email, Slack's text): target, what failed, the error, the link, the next step. */
export function alertLines(m: AlertMessage, action: AlertAction = 'trigger', note?: string): string[] {
  const lines = [
    ...(note ? [note, ''] : []),
    `Target: ${m.target ?? '(lifeboat itself)'}`,
    `What failed: ${m.title}`,
    `Error: ${m.text}`,
    `Workflow: ${m.workflowId ?? '(none)'}${m.link ? ` ${m.link}` : ''}`,
    `Next step: ${m.nextStep}`,
  ];
  if (m.alertId) {
    const level = m.level !== undefined ? `, escalation level ${m.level}${m.levelName ? ` (${m.levelName})` : ''}` : '';
    const seen = m.occurrences && m.occurrences > 1 ? `, seen ${m.occurrences} times` : '';
    lines.push(`Alert: ${m.alertId}${level}${seen}.${action === 'trigger' ? ` Acknowledge with \`lifeboat ack ${m.alertId}\` to stop the escalation.` : ''}`);
  }
  return lines;
}

// ----- the alertEscalation workflow's messages ---------------------------------------------------

export const ALERT_REPEATED_SIGNAL = 'alertRepeated';
export const ALERT_RESOLVED_SIGNAL = 'alertResolved';
export const ACKNOWLEDGE_ALERT_UPDATE = 'acknowledgeAlert';
export const ALERT_STATE_QUERY = 'alertState';
/** Level 0's name: the channels `notifications.routes.critical` names. */
export const FIRST_LEVEL_NAME = 'routes.critical';

export interface EscalationLevel {
  name: string;
  /** Wait after the previous level, unacknowledged, before this one is sent. */
  afterMs: number;
  channels: string[];
}

export interface AlertEscalationInput {
  alert: AlertMessage;
  firstChannels: string[];
  levels: EscalationLevel[];
  holdAcknowledgedMs: number;
}

/** One occurrence of the alert's cause: the first starts the alert, repeats join it. */
export interface AlertOccurrence {
  title: string;
  text: string;
  workflowId?: string;
}

export interface AlertAcknowledgement {
  alertId: string;
  by: string;
  at: string;
  note?: string;
  level: number;
  levelName: string;
}

export interface AlertState {
  alertId?: string;
  level: number;
  levelName: string;
  occurrences: number;
  acknowledged?: AlertAcknowledgement;
  resolved?: { reason: string };
}

export interface AlertEscalationResult {
  alertId: string;
  level: number;
  levelName: string;
  occurrences: number;
  outcome: 'resolved' | 'closed';
  acknowledged?: AlertAcknowledgement;
  resolvedBecause?: string;
}
