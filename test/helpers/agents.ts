/**
 * Routing, read from a workflow's history: which worker (identity) took each activity, from which
 * task queue. A test runs a central worker and an agent worker in-process, each with its own
 * identity, and asserts that host-bound work ran on the agent alone and nothing else did.
 */
import assert from 'node:assert/strict';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { HOST_BOUND_ACTIVITIES } from '../../src/domain/agents';

const EventType = temporal.api.enums.v1.EventType;

export interface ActivityRun {
  activity: string;
  queue: string;
  identity: string;
}

/** Every activity attempt that started, in order, with its task queue and the worker that took it. */
export async function activityRuns(handle: WorkflowHandle): Promise<ActivityRun[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Map(events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!]));
  return events
    .filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    .map((e) => {
      const s = scheduled.get(String(e.activityTaskStartedEventAttributes!.scheduledEventId))!;
      return { activity: s.activityType!.name!, queue: s.taskQueue!.name!, identity: e.activityTaskStartedEventAttributes!.identity! };
    });
}

/**
 * Host-bound activities ran on the agent's queue and worker only, every other one on the central
 * queue and worker; `expectOnAgent` (each must have run) says which host work this workflow does.
 */
export function assertRouted(runs: ActivityRun[], where: { agentQueue: string; agentIdentity: string; centralQueue: string; centralIdentity: string }, expectOnAgent: readonly string[]): void {
  const hostBound: readonly string[] = HOST_BOUND_ACTIVITIES;
  const onAgent = runs.filter((r) => hostBound.includes(r.activity));
  const onCentral = runs.filter((r) => !hostBound.includes(r.activity));
  assert.deepEqual([...new Set(onAgent.map((r) => r.activity))].sort(), [...expectOnAgent].sort(), 'the host-bound activities that ran');
  for (const r of onAgent) assert.deepEqual([r.queue, r.identity], [where.agentQueue, where.agentIdentity], `${r.activity} ran on the agent`);
  assert.ok(onCentral.length > 0, 'central work ran too');
  for (const r of onCentral) assert.deepEqual([r.queue, r.identity], [where.centralQueue, where.centralIdentity], `${r.activity} ran centrally`);
}
