/**
 * What the scale benchmark reads out of workflow histories (pure: no I/O, unit-tested in
 * test/scale-figures.test.ts). Every time is the server's event time, in ms.
 *
 * - schedule-to-start: WorkflowTaskScheduled → WorkflowTaskStarted, ActivityTaskScheduled →
 *   ActivityTaskStarted (the wait for a worker to take the task);
 * - who took the work: the identity of each ActivityTaskStarted and WorkflowTaskStarted;
 * - the cost of a step (issue 13): for sequential activities, the time from the previous step's
 *   completion (or the workflow's start) to this one's completion, minus the activity function's
 *   own run time as the worker measured it. Split in two: the `gap` from the previous completion
 *   to this step's ActivityTaskScheduled (the workflow task that decides the next step), and the
 *   `dispatch` from scheduled to completed minus the run time (matching, start, codec, report).
 */
import { temporal } from '@temporalio/proto';

type Event = temporal.api.history.v1.IHistoryEvent;
const T = temporal.api.enums.v1.EventType;

/** An activity attempt's own run time, keyed `${workflowId}/${activityId}/${attempt}`. */
export type OwnRunTimes = ReadonlyMap<string, number>;

export const ownRunTimeKey = (workflowId: string, activityId: string, attempt: number) => `${workflowId}/${activityId}/${attempt}`;

export interface StepCost {
  activityType: string;
  /** Previous completion (or the workflow's start) to this completion, minus the run time. */
  costMs: number;
  gapMs: number;
  dispatchMs: number;
  runMs: number;
}

export interface HistoryFigures {
  workflowId: string;
  completed: boolean;
  startedAt: number;
  closedAt?: number;
  workflowTaskScheduleToStartMs: number[];
  activityScheduleToStartMs: number[];
  workflowTaskIdentities: string[];
  activityIdentities: string[];
  /** Sequential steps whose own run time the worker reported. */
  steps: StepCost[];
  /** Activities that ran more than once (a retry's backoff is not Temporal's cost: not in `steps`). */
  retried: number;
}

export function eventMs(event: Event): number {
  const t = event.eventTime;
  if (!t) throw new Error(`history event ${String(event.eventId)} has no time`);
  return Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

export function historyFigures(workflowId: string, events: readonly Event[], ownRunTimes: OwnRunTimes = new Map()): HistoryFigures {
  const byId = new Map<number, Event>(events.map((e) => [Number(e.eventId), e]));
  const figures: HistoryFigures = {
    workflowId,
    completed: false,
    startedAt: NaN,
    workflowTaskScheduleToStartMs: [],
    activityScheduleToStartMs: [],
    workflowTaskIdentities: [],
    activityIdentities: [],
    steps: [],
    retried: 0,
  };
  let previousEnd: number | undefined;
  for (const event of events) {
    switch (event.eventType) {
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        figures.startedAt = eventMs(event);
        previousEnd = figures.startedAt;
        break;
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        figures.completed = true;
        figures.closedAt = eventMs(event);
        break;
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
      case T.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
        figures.closedAt = eventMs(event);
        break;
      case T.EVENT_TYPE_WORKFLOW_TASK_STARTED: {
        const attrs = event.workflowTaskStartedEventAttributes!;
        const scheduled = byId.get(Number(attrs.scheduledEventId));
        if (scheduled) figures.workflowTaskScheduleToStartMs.push(eventMs(event) - eventMs(scheduled));
        figures.workflowTaskIdentities.push(attrs.identity ?? '');
        break;
      }
      case T.EVENT_TYPE_ACTIVITY_TASK_STARTED: {
        const attrs = event.activityTaskStartedEventAttributes!;
        const scheduled = byId.get(Number(attrs.scheduledEventId));
        // A retried activity's Started event is its last attempt; its time is that attempt's start.
        if (scheduled && (attrs.attempt ?? 1) === 1) figures.activityScheduleToStartMs.push(eventMs(event) - eventMs(scheduled));
        if ((attrs.attempt ?? 1) > 1) figures.retried++;
        figures.activityIdentities.push(attrs.identity ?? '');
        break;
      }
      case T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: {
        const attrs = event.activityTaskCompletedEventAttributes!;
        const scheduled = byId.get(Number(attrs.scheduledEventId));
        const started = byId.get(Number(attrs.startedEventId));
        const end = eventMs(event);
        if (scheduled && started && previousEnd !== undefined) {
          const sAttrs = scheduled.activityTaskScheduledEventAttributes!;
          const attempt = started.activityTaskStartedEventAttributes?.attempt ?? 1;
          const runMs = ownRunTimes.get(ownRunTimeKey(workflowId, sAttrs.activityId ?? '', attempt));
          const scheduledAt = eventMs(scheduled);
          // Only a step that was scheduled after the previous one ended is sequential; only a first attempt is Temporal's cost alone.
          if (runMs !== undefined && attempt === 1 && scheduledAt >= previousEnd) {
            figures.steps.push({
              activityType: sAttrs.activityType?.name ?? '',
              costMs: end - previousEnd - runMs,
              gapMs: scheduledAt - previousEnd,
              dispatchMs: end - scheduledAt - runMs,
              runMs,
            });
          }
        }
        previousEnd = end;
        break;
      }
      default:
        break;
    }
  }
  return figures;
}

/** The nearest-rank percentile (p in 0..100) of the values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export interface Distribution {
  count: number;
  p50: number;
  p95: number;
  max: number;
}

export function distribution(values: readonly number[]): Distribution {
  return { count: values.length, p50: percentile(values, 50), p95: percentile(values, 95), max: values.length ? Math.max(...values) : NaN };
}

/** How many of the values each identity has, most first. */
export function split(identities: readonly string[]): Array<{ identity: string; count: number }> {
  const counts = new Map<string, number>();
  for (const id of identities) counts.set(id, (counts.get(id) ?? 0) + 1);
  return [...counts].map(([identity, count]) => ({ identity, count })).sort((a, b) => b.count - a.count || a.identity.localeCompare(b.identity));
}

export interface RunFigures {
  workflows: number;
  completed: number;
  workflowTaskScheduleToStart: Distribution;
  activityScheduleToStart: Distribution;
  stepCost: Distribution;
  stepGap: Distribution;
  stepDispatch: Distribution;
  /** Completed workflows per second, from the first start to the last close in history. */
  throughputPerSecond: number;
  spanMs: number;
  activitySplit: Array<{ identity: string; count: number }>;
  workflowTaskSplit: Array<{ identity: string; count: number }>;
  retried: number;
}

export function runFigures(histories: readonly HistoryFigures[]): RunFigures {
  const all = <K extends keyof HistoryFigures>(key: K) => histories.flatMap((h) => h[key] as unknown as never[]);
  const steps = histories.flatMap((h) => h.steps);
  const completed = histories.filter((h) => h.completed);
  const first = Math.min(...histories.map((h) => h.startedAt));
  const last = Math.max(...completed.map((h) => h.closedAt!));
  const spanMs = completed.length ? last - first : NaN;
  return {
    workflows: histories.length,
    completed: completed.length,
    workflowTaskScheduleToStart: distribution(all('workflowTaskScheduleToStartMs')),
    activityScheduleToStart: distribution(all('activityScheduleToStartMs')),
    stepCost: distribution(steps.map((s) => s.costMs)),
    stepGap: distribution(steps.map((s) => s.gapMs)),
    stepDispatch: distribution(steps.map((s) => s.dispatchMs)),
    throughputPerSecond: completed.length && spanMs > 0 ? completed.length / (spanMs / 1000) : NaN,
    spanMs,
    activitySplit: split(all('activityIdentities')),
    workflowTaskSplit: split(all('workflowTaskIdentities')),
    retried: histories.reduce((n, h) => n + h.retried, 0),
  };
}
