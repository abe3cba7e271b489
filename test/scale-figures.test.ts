/**
 * What the scale benchmark reads from a history (bench/scale-figures.ts): schedule-to-start,
 * who took each task, the cost of a step. Histories built event by event, as the server writes
 * them. No server needed.
 */
import assert from 'node:assert/strict';
import { temporal } from '@temporalio/proto';
import { distribution, historyFigures, ownRunTimeKey, percentile, runFigures, split } from '../bench/scale-figures';

type Event = temporal.api.history.v1.IHistoryEvent;
const T = temporal.api.enums.v1.EventType;
const T0 = Date.parse('2026-12-01T00:30:00.000Z');

/**
 * A history with one event per line: [ms after T0, type, attributes]. Ids and seconds are plain
 * numbers here where the decoded proto has Longs: the figures read both with Number().
 */
function history(lines: Array<[number, temporal.api.enums.v1.EventType, Record<string, unknown>?]>): Event[] {
  return lines.map(([at, eventType, attrs], i) => ({
    eventId: i + 1,
    eventType,
    eventTime: { seconds: Math.floor((T0 + at) / 1000), nanos: ((T0 + at) % 1000) * 1e6 },
    ...attrs,
  })) as unknown as Event[];
}

const activity = (id: string) => ({ activityTaskScheduledEventAttributes: { activityId: id, activityType: { name: `step${id}` } } });
const started = (scheduledEventId: number, identity: string, attempt = 1) => ({ activityTaskStartedEventAttributes: { scheduledEventId, identity, attempt } });
const completed = (scheduledEventId: number, startedEventId: number) => ({ activityTaskCompletedEventAttributes: { scheduledEventId, startedEventId } });
const wfStarted = (scheduledEventId: number, identity: string) => ({ workflowTaskStartedEventAttributes: { scheduledEventId, identity } });

// Two sequential steps on two workers, then a third that was retried once.
const events = history([
  [0, T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED], // 1
  [0, T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED], // 2
  [12, T.EVENT_TYPE_WORKFLOW_TASK_STARTED, wfStarted(2, 'central-1@host')], // 3
  [25, T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED], // 4
  [25, T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, activity('1')], // 5
  [40, T.EVENT_TYPE_ACTIVITY_TASK_STARTED, started(5, 'central-2@host')], // 6
  [100, T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, completed(5, 6)], // 7
  [100, T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED], // 8
  [104, T.EVENT_TYPE_WORKFLOW_TASK_STARTED, wfStarted(8, 'central-1@host')], // 9
  [120, T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED], // 10
  [130, T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, activity('2')], // 11
  [135, T.EVENT_TYPE_ACTIVITY_TASK_STARTED, started(11, 'central-1@host')], // 12
  [160, T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, completed(11, 12)], // 13
  [160, T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED], // 14
  [170, T.EVENT_TYPE_WORKFLOW_TASK_STARTED, wfStarted(14, 'central-2@host')], // 15
  [180, T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED], // 16
  [180, T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, activity('3')], // 17
  [1300, T.EVENT_TYPE_ACTIVITY_TASK_STARTED, started(17, 'central-2@host', 2)], // 18
  [1310, T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, completed(17, 18)], // 19
  [1310, T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED], // 20
  [1315, T.EVENT_TYPE_WORKFLOW_TASK_STARTED, wfStarted(20, 'central-1@host')], // 21
  [1320, T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED], // 22
  [1321, T.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED], // 23
]);

const runTimes = new Map([
  [ownRunTimeKey('wf-1', '1', 1), 50],
  [ownRunTimeKey('wf-1', '2', 1), 20],
  [ownRunTimeKey('wf-1', '3', 2), 5],
]);

describe('scale benchmark figures from a history', () => {
  it('reads schedule-to-start of workflow and activity tasks, first attempts only for activities', () => {
    const f = historyFigures('wf-1', events, runTimes);
    assert.deepEqual(f.workflowTaskScheduleToStartMs, [12, 4, 10, 5]);
    assert.deepEqual(f.activityScheduleToStartMs, [15, 5]);
    assert.equal(f.retried, 1);
    assert.equal(f.completed, true);
    assert.equal(f.closedAt! - f.startedAt, 1321);
  });

  it('names the worker that took each task', () => {
    const f = historyFigures('wf-1', events, runTimes);
    assert.deepEqual(f.activityIdentities, ['central-2@host', 'central-1@host', 'central-2@host']);
    assert.deepEqual(split(f.workflowTaskIdentities), [
      { identity: 'central-1@host', count: 3 },
      { identity: 'central-2@host', count: 1 },
    ]);
  });

  it('costs a step from the previous completion to its own, less its run time, and leaves out a retried one', () => {
    const f = historyFigures('wf-1', events, runTimes);
    assert.deepEqual(f.steps, [
      { activityType: 'step1', costMs: 100 - 0 - 50, gapMs: 25, dispatchMs: 100 - 25 - 50, runMs: 50 },
      { activityType: 'step2', costMs: 160 - 100 - 20, gapMs: 30, dispatchMs: 160 - 130 - 20, runMs: 20 },
    ]);
  });

  it('leaves out a step whose run time the worker did not report', () => {
    assert.deepEqual(historyFigures('wf-2', events, runTimes).steps, []);
  });

  it('summarises runs: nearest-rank percentiles, throughput from first start to last close', () => {
    assert.equal(percentile([5, 1, 4, 2, 3], 50), 3);
    assert.equal(percentile([5, 1, 4, 2, 3], 95), 5);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.deepEqual(distribution(Array.from({ length: 100 }, (_, i) => i + 1)), { count: 100, p50: 50, p95: 95, max: 100 });
    const run = runFigures([historyFigures('wf-1', events, runTimes), historyFigures('wf-1', events, runTimes)]);
    assert.equal(run.completed, 2);
    assert.equal(run.spanMs, 1321);
    assert.equal(run.throughputPerSecond, 2 / 1.321);
    assert.deepEqual(run.activitySplit, [
      { identity: 'central-2@host', count: 4 },
      { identity: 'central-1@host', count: 2 },
    ]);
    assert.equal(run.stepCost.count, 4);
  });
});
