/**
 * Alerts: the alertEscalation workflow's activities (the catalog's record, deliveries to the
 * channels), and how a critical notification raised inside any activity starts or joins that
 * workflow through the worker's own Temporal client.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { LifeboatConfig } from '../config';
import { describeError } from '../domain/errors';
import {
  AlertAction,
  AlertEscalationInput,
  AlertMessage,
  AlertOccurrence,
  ALERT_REPEATED_SIGNAL,
  ALERT_RESOLVED_SIGNAL,
  alertWorkflowId,
  dedupKeyOf,
} from '../domain/alerts';
import type { ChannelOutcome } from '../engines/notify/channels';
import { Ports } from './ports';

/** The catalog's kind for an alert's steps in workflow_events. */
export const ALERT_EVENT_KIND = 'alert';

/** The escalation path of the config, as the workflow takes it (durations in ms, read once at the start). */
export function escalationInput(config: LifeboatConfig, alert: AlertMessage): AlertEscalationInput {
  const n = config.notifications;
  return {
    alert,
    firstChannels: n.routes?.critical ?? [],
    levels: (n.escalation?.steps ?? []).map((s) => ({ name: s.name, afterMs: s.after * 1000, channels: s.channels })),
    holdAcknowledgedMs: (n.escalation?.holdAcknowledged ?? 86_400) * 1000,
  };
}

/** The client of the worker running the current activity; undefined outside an activity (the CLI, a unit test). */
function activityClient() {
  try {
    return Context.current().client;
  } catch {
    return undefined;
  }
}

/**
 * Starts the alert's escalation, or joins the one open for the same target and cause (signal-with-
 * start on the id made from its dedup key). Resolves with what happened, or undefined when there is
 * no Temporal client here, so the caller sends the alert straight to its channels instead.
 */
export async function raiseAlert(config: LifeboatConfig, alert: AlertMessage, occurrence: AlertOccurrence): Promise<string | undefined> {
  const client = activityClient();
  if (!client) return undefined;
  const workflowId = alertWorkflowId(alert.dedupKey);
  await client.workflow.signalWithStart('alertEscalation', {
    workflowId,
    taskQueue: config.temporal.taskQueue,
    args: [escalationInput(config, alert)],
    signal: ALERT_REPEATED_SIGNAL,
    signalArgs: [occurrence],
    staticSummary: `alert: ${alert.title}`.slice(0, 200),
  });
  return `raised as alert ${workflowId} (a repeat of an open alert joins it)`;
}

/**
 * Tells the open alert of a target and cause that its cause cleared (the next verified backup of
 * the target clears "backup failed"). Nothing open: nothing to do. Never fails the caller.
 */
export async function resolveAlerts(config: LifeboatConfig, target: string, causes: readonly string[], reason: string): Promise<string[]> {
  // Without channels no alert is ever raised: nothing to ask Temporal about.
  if (!config.notifications?.channels?.length) return [];
  const client = activityClient();
  if (!client) return [];
  const resolved: string[] = [];
  for (const cause of causes) {
    const workflowId = alertWorkflowId(dedupKeyOf({ title: '', cause, target }));
    try {
      await client.workflow.getHandle(workflowId).signal(ALERT_RESOLVED_SIGNAL, { reason });
      resolved.push(workflowId);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) process.stdout.write(`[lifeboat warning] could not resolve alert ${workflowId}: ${describeError(err)}\n`);
    }
  }
  return resolved;
}

export function alertActivities(ports: Ports) {
  const event = (workflowId: string, target: string | undefined, text: string, details: Record<string, unknown>) =>
    ports.catalog.query('INSERT INTO workflow_events (workflow_id, kind, target, event, details) VALUES ($1, $2, $3, $4, $5::jsonb)', [workflowId, ALERT_EVENT_KIND, target ?? null, text, JSON.stringify(details)]);
  const rowOf = async (alertId: string) => {
    const [row] = await ports.catalog.query<{ workflow_id: string; target: string | null }>('SELECT workflow_id, target FROM alerts WHERE id = $1', [alertId]);
    if (!row) throw new Error(`alert ${alertId} is not in the catalog`);
    return row;
  };
  return {
    /** The alert's row, one per escalation run: a retried call finds its row. Returns the alert id people ack by. */
    async openAlert(input: { alert: AlertMessage; workflowId: string; runId: string }): Promise<string> {
      const a = input.alert;
      const [row] = await ports.catalog.query<{ id: string; inserted: boolean }>(
        `INSERT INTO alerts (dedup_key, workflow_id, run_id, severity, target, title, text, source_workflow_id, next_step, level_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'routes.critical')
         ON CONFLICT (workflow_id, run_id) DO UPDATE SET last_seen_at = alerts.last_seen_at
         RETURNING id::text AS id, (xmax = 0) AS inserted`,
        [a.dedupKey, input.workflowId, input.runId, a.severity, a.target ?? null, a.title, a.text, a.workflowId ?? null, a.nextStep],
      );
      if (row.inserted) await event(input.workflowId, a.target, `alert ${row.id} opened: ${a.title}`, { alertId: row.id, dedupKey: a.dedupKey, sourceWorkflowId: a.workflowId ?? null, error: a.text });
      return row.id;
    },

    /** Sends the alert (or its acknowledgement or resolution) to channels; each channel's outcome is on record, none fails the activity. */
    async deliverAlert(input: { alertId: string; level: number; levelName: string; channels: string[]; message: AlertMessage; action: AlertAction; note?: string }): Promise<ChannelOutcome[]> {
      const row = await rowOf(input.alertId);
      const outcomes = input.channels.length ? await ports.alertChannels.deliver(input.channels, input.message, input.action, input.note) : [];
      for (const o of outcomes.filter((x) => !x.delivered)) process.stdout.write(`[lifeboat warning] ${o.detail} [${row.workflow_id}]\n`);
      if (input.action === 'trigger') await ports.catalog.query('UPDATE alerts SET level = $2, level_name = $3 WHERE id = $1 AND level <= $2', [input.alertId, input.level, input.levelName]);
      const sentTo = outcomes.map((o) => `${o.channel} ${o.delivered ? 'took it' : 'FAILED'}`).join(', ') || 'no channel configured';
      const what = input.action === 'trigger' ? `level ${input.level} (${input.levelName})` : input.action === 'acknowledge' ? 'acknowledgement' : 'resolution';
      await event(row.workflow_id, row.target ?? undefined, `alert ${input.alertId} ${what} sent: ${sentTo}`, { alertId: input.alertId, action: input.action, level: input.level, levelName: input.levelName, outcomes, ...(input.note ? { note: input.note } : {}) });
      return outcomes;
    },

    async recordAlertOccurrence(input: { alertId: string; occurrences: number; occurrence: AlertOccurrence }): Promise<void> {
      const row = await rowOf(input.alertId);
      await ports.catalog.query('UPDATE alerts SET occurrences = GREATEST(occurrences, $2), last_seen_at = now() WHERE id = $1', [input.alertId, input.occurrences]);
      await event(row.workflow_id, row.target ?? undefined, `alert ${input.alertId} seen again (${input.occurrences} times): joined, not paged again`, { alertId: input.alertId, occurrences: input.occurrences, ...input.occurrence });
    },

    /** Who took the alert and when; the time is the catalog's, returned for the record. A retry finds the row acknowledged by the same person. */
    async acknowledgeAlertRecord(input: { alertId: string; by: string; note?: string; level: number; levelName: string }): Promise<string> {
      const row = await rowOf(input.alertId);
      const [updated] = await ports.catalog.query<{ at: Date }>(
        `UPDATE alerts SET status = 'acknowledged', acknowledged_by = $2, acknowledged_at = COALESCE(acknowledged_at, now()), acknowledge_note = $3
         WHERE id = $1 AND (status = 'open' OR acknowledged_by = $2) RETURNING acknowledged_at AS at`,
        [input.alertId, input.by, input.note ?? null],
      );
      const at = (updated?.at ?? new Date()).toISOString();
      await event(row.workflow_id, row.target ?? undefined, `alert ${input.alertId} acknowledged by ${input.by} at level ${input.level} (${input.levelName})`, { alertId: input.alertId, by: input.by, at, ...(input.note ? { note: input.note } : {}) });
      return at;
    },

    async resolveAlertRecord(input: { alertId: string; reason: string }): Promise<void> {
      const row = await rowOf(input.alertId);
      await ports.catalog.query(`UPDATE alerts SET status = 'resolved', resolved_at = COALESCE(resolved_at, now()), resolved_because = $2 WHERE id = $1`, [input.alertId, input.reason]);
      await event(row.workflow_id, row.target ?? undefined, `alert ${input.alertId} resolved: ${input.reason}`, { alertId: input.alertId, reason: input.reason });
    },

    async closeAlertRecord(input: { alertId: string }): Promise<void> {
      const row = await rowOf(input.alertId);
      await ports.catalog.query(`UPDATE alerts SET status = 'closed', closed_at = COALESCE(closed_at, now()) WHERE id = $1 AND status <> 'resolved'`, [input.alertId]);
      await event(row.workflow_id, row.target ?? undefined, `alert ${input.alertId} closed: acknowledged, and its hold ended without the cause clearing`, { alertId: input.alertId });
    },
  };
}
