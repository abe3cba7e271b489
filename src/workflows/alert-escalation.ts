/**
 * alertEscalation: one critical alert, from the first page until someone owns it or its cause
 * clears. Started (or joined) by the notifier with signal-with-start on a workflow id made from
 * the alert's target and cause, so a repeat of the same cause joins the open alert instead of
 * paging again.
 *
 *   open the alert in the catalog -> send it to routes.critical (level 0)
 *   -> each escalation level in turn after its delay, unless acknowledged or resolved first
 *   -> acknowledged (`lifeboat ack`): the channels told hear who took it; repeats keep joining
 *      for holdAcknowledged, then the alert closes
 *   -> resolved (the cause cleared, e.g. the next verified backup): the channels told hear it
 *
 * Every step is on record: this history, the catalog's alerts row and its workflow_events.
 */
import { allHandlersFinished, condition, defineQuery, defineSignal, defineUpdate, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ACKNOWLEDGE_ALERT_UPDATE, AlertAcknowledgement, AlertEscalationInput, AlertEscalationResult, AlertMessage, AlertOccurrence, ALERT_REPEATED_SIGNAL, ALERT_RESOLVED_SIGNAL, ALERT_STATE_QUERY, AlertState, FIRST_LEVEL_NAME } from '../domain/alerts';
import { LifeboatKind, LifeboatPhase, LifeboatTarget } from './search-attributes';
import { STEP_HEARTBEAT } from './step-heartbeat';

// Deliveries never throw (each channel's outcome is returned); retries cover a lost worker or catalog blip.
const acts = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });

export const alertRepeatedSignal = defineSignal<[AlertOccurrence]>(ALERT_REPEATED_SIGNAL);
export const alertResolvedSignal = defineSignal<[{ reason: string }]>(ALERT_RESOLVED_SIGNAL);
export const acknowledgeAlertUpdate = defineUpdate<AlertAcknowledgement, [{ by: string; note?: string }]>(ACKNOWLEDGE_ALERT_UPDATE);
export const alertStateQuery = defineQuery<AlertState>(ALERT_STATE_QUERY);

export async function alertEscalation(input: AlertEscalationInput): Promise<AlertEscalationResult> {
  const info = workflowInfo();
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'alert' },
    { key: LifeboatTarget, value: input.alert.target ?? 'lifeboat' },
    { key: LifeboatPhase, value: 'open' },
  ]);
  // Known once the catalog row exists; handlers that need it wait for it.
  let alertId: string | undefined = undefined;
  let occurrences = 0;
  let level = 0;
  let levelName = FIRST_LEVEL_NAME;
  let acknowledging = false;
  let acknowledged: AlertAcknowledgement | undefined;
  let resolved: { reason: string } | undefined;
  const told = new Set<string>();

  setHandler(alertStateQuery, () => ({ alertId, level, levelName, occurrences, ...(acknowledged ? { acknowledged } : {}), ...(resolved ? { resolved } : {}) }));

  // signal-with-start sends the first occurrence too: the first signal is the alert itself, later ones are repeats.
  setHandler(alertRepeatedSignal, async (o) => {
    occurrences++;
    if (occurrences === 1) return;
    await condition(() => alertId !== undefined);
    await acts.recordAlertOccurrence({ alertId: alertId!, occurrences, occurrence: o });
  });

  setHandler(alertResolvedSignal, ({ reason }) => {
    resolved ??= { reason };
  });

  setHandler(
    acknowledgeAlertUpdate,
    async ({ by, note }) => {
      acknowledging = true;
      await condition(() => alertId !== undefined);
      const at = await acts.acknowledgeAlertRecord({ alertId: alertId!, by, ...(note ? { note } : {}), level, levelName });
      acknowledged = { alertId: alertId!, by, at, level, levelName, ...(note ? { note } : {}) };
      return acknowledged;
    },
    {
      validator: ({ by }) => {
        if (!by?.trim()) throw new Error('an acknowledgement names who takes the alert: pass --by <person> or set LIFEBOAT_USER.');
        if (acknowledged || acknowledging) throw new Error(`alert ${alertId ?? info.workflowId} is already acknowledged${acknowledged ? ` by ${acknowledged.by} at ${acknowledged.at}` : ''}.`);
        if (resolved) throw new Error(`alert ${alertId ?? info.workflowId} is resolved already (${resolved.reason}): there is nothing to acknowledge.`);
      },
    },
  );

  const settled = () => acknowledged !== undefined || resolved !== undefined;
  const message = (): AlertMessage => ({ ...input.alert, alertId, level, levelName, occurrences: Math.max(occurrences, 1) });

  alertId = await acts.openAlert({ alert: input.alert, workflowId: info.workflowId, runId: info.runId });
  await acts.deliverAlert({ alertId, level, levelName, channels: input.firstChannels, message: message(), action: 'trigger' });
  input.firstChannels.forEach((c) => told.add(c));

  for (const [i, step] of input.levels.entries()) {
    if (await condition(settled, step.afterMs)) break;
    level = i + 1;
    levelName = step.name;
    upsertSearchAttributes([{ key: LifeboatPhase, value: `escalated-${level}` }]);
    await acts.deliverAlert({ alertId, level, levelName, channels: step.channels, message: message(), action: 'trigger' });
    step.channels.forEach((c) => told.add(c));
  }

  await condition(settled);
  if (acknowledged && !resolved) {
    upsertSearchAttributes([{ key: LifeboatPhase, value: 'acknowledged' }]);
    const note = `Acknowledged by ${acknowledged.by} at ${acknowledged.at}${acknowledged.note ? `: ${acknowledged.note}` : ''}; escalation stopped at level ${level} (${levelName}).`;
    await acts.deliverAlert({ alertId, level, levelName, channels: [...told], message: message(), action: 'acknowledge', note });
    // Repeats of the cause keep joining this alert for a while instead of paging again.
    await condition(() => resolved !== undefined, input.holdAcknowledgedMs);
  }
  if (resolved) {
    upsertSearchAttributes([{ key: LifeboatPhase, value: 'resolved' }]);
    await acts.resolveAlertRecord({ alertId, reason: resolved.reason });
    await acts.deliverAlert({ alertId, level, levelName, channels: [...told], message: message(), action: 'resolve', note: `Resolved: ${resolved.reason}` });
  } else {
    upsertSearchAttributes([{ key: LifeboatPhase, value: 'closed' }]);
    await acts.closeAlertRecord({ alertId });
  }
  await condition(allHandlersFinished);
  return {
    alertId,
    level,
    levelName,
    occurrences,
    outcome: resolved ? 'resolved' : 'closed',
    ...(acknowledged ? { acknowledged } : {}),
    ...(resolved ? { resolvedBecause: resolved.reason } : {}),
  };
}
