import { Context } from '@temporalio/activity';

/**
 * Runs `work` while heartbeating every few seconds with `details()`: long calls that block
 * (a pgBackRest restore, a big verification) stay visibly alive in the Web UI, and a worker
 * that died is noticed within the heartbeat timeout.
 */
export async function withHeartbeats<T>(details: () => unknown, work: () => Promise<T>, everyMs = 5000): Promise<T> {
  const ctx = Context.current();
  ctx.heartbeat(details());
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
