/**
 * The scale benchmark's baseline workflow (bundled on its own, never part of src/workflows):
 * `steps` no-op activities one after another, so what it costs is Temporal's and the SDK's alone,
 * with lifeboat's data converter (the payload codec) on both sides.
 */
import { proxyActivities } from '@temporalio/workflow';

export interface NoopActivities {
  noopStep(step: number): Promise<number>;
}

// The same start-to-close and retry settings as lifeboat's quick activities.
const { noopStep } = proxyActivities<NoopActivities>({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 5, initialInterval: '1 second' } });

export async function noopSteps(steps: number): Promise<number> {
  let done = 0;
  for (let i = 0; i < steps; i++) done += await noopStep(i);
  return done;
}
