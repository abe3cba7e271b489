/**
 * Host-bound activities of a target go to its agent's task queue when the config names one
 * (`targets.databases[].agent`); the list of them is HOST_BOUND_ACTIVITIES (src/domain/agents.ts).
 * The task queue of an activity is not part of replay's checks, but the lookup is a new activity:
 * hence the patch, shared by every workflow that routes host work, so a history recorded before
 * it replays with its host work on the central queue, as it ran.
 */
import { ActivityOptions, patched, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

export const HOST_WORK_ON_AGENTS = 'host-work-on-agents';

const lookup = proxyActivities<Activities>({ startToCloseTimeout: '15 seconds', retry: { maximumAttempts: 5, initialInterval: '1 second' } });

/** The agent queue of `target`, or undefined (no agent, or a run from before the patch): host work then stays central. */
export async function agentQueueOf(target: string): Promise<string | undefined> {
  if (!patched(HOST_WORK_ON_AGENTS)) return undefined;
  return (await lookup.hostTaskQueueOf.executeWithOptions({ startToCloseTimeout: '15 seconds', summary: `Find the agent of ${target}` }, [target])) ?? undefined;
}

/** Activity proxies with `options`, on `queue` when there is one (host-bound activities only go there). */
export function onHost(options: ActivityOptions, queue: string | undefined) {
  return proxyActivities<Activities>(queue ? { ...options, taskQueue: queue } : options);
}
