import { CancelledFailure, Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/**
 * How often to heartbeat under a given heartbeat timeout: three beats per timeout (the SDK sends
 * at most one per 80% of it), never more often than every 200 ms nor less than every 5 s.
 */
export function heartbeatEveryMs(heartbeatTimeoutMs: number | undefined): number {
  if (!heartbeatTimeoutMs) return 5000;
  return Math.max(200, Math.min(5000, Math.floor(heartbeatTimeoutMs / 3)));
}

/**
 * Runs `work` while heartbeating every few seconds with `details()`: long calls that block
 * (a pgBackRest restore, a big verification) stay visibly alive in the Web UI, and a worker
 * that died is noticed within the heartbeat timeout. The beat follows the activity's heartbeat
 * timeout, so a short timeout (fast failover after a crashed worker) gets beats often enough.
 * Heartbeats also deliver cancellation: commands run through `run` stop when it arrives.
 */
export async function withHeartbeats<T>(details: () => unknown, work: () => Promise<T>, everyMs?: number): Promise<T> {
  const ctx = Context.current();
  ctx.heartbeat(details());
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs ?? heartbeatEveryMs(ctx.info.heartbeatTimeoutMs));
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/**
 * The workflow's cancellation of the current activity, if one has arrived (not a worker shutting
 * down, a timeout or a vanished workflow). Decided from the context, not from the error in hand:
 * a cancellation that lands inside an engine call comes back wrapped as that engine's failure.
 */
export function cancellationByWorkflow(ctx: Context = Context.current()): CancelledFailure | undefined {
  const reason: unknown = ctx.cancellationSignal.aborted ? ctx.cancellationSignal.reason : undefined;
  return reason instanceof CancelledFailure && reason.message === 'CANCELLED' ? reason : undefined;
}

/**
 * Worker liveness for every activity with a heartbeat timeout (issue 13: a crashed worker costs a
 * quick step STEP_HEARTBEAT, not its start-to-close timeout). Whenever the activity has been quiet
 * for a beat, the worker beats for it, with the details the activity itself last sent (so a
 * retry's heartbeatDetails are the activity's own); an activity that beats often never notices.
 * A step that hangs while its worker lives is still ended by its start-to-close timeout.
 */
export const beatWhileRunning: ActivityInterceptorsFactory = (ctx: Context) => ({
  inbound: {
    async execute(input, next) {
      const timeoutMs = ctx.info.heartbeatTimeoutMs;
      if (!timeoutMs || ctx.info.isLocal) return next(input);
      const everyMs = heartbeatEveryMs(timeoutMs);
      const send = ctx.heartbeat;
      let last = Date.now();
      let details: unknown;
      Object.defineProperty(ctx, 'heartbeat', {
        configurable: true,
        value: (d?: unknown) => {
          last = Date.now();
          details = d;
          send(d);
        },
      });
      const timer = setInterval(() => {
        if (Date.now() - last >= everyMs) {
          last = Date.now();
          send(details);
        }
      }, everyMs);
      try {
        return await next(input);
      } finally {
        clearInterval(timer);
      }
    },
  },
});
