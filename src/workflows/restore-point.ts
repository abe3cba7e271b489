/**
 * createRestorePoint: makes a named restore point on a target's source and records it, so a
 * later restore to `name:<n>` can be checked before approval. Short; its one activity does the work.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RestorePointRequest, RestorePointResult } from '../domain/restore-point-request';
import { STEP_HEARTBEAT } from './step-heartbeat';

const { createRestorePoint: make } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: STEP_HEARTBEAT,
  retry: { maximumAttempts: 5, initialInterval: '1 second' },
});

export async function createRestorePoint(request: RestorePointRequest): Promise<RestorePointResult> {
  return make(request);
}
