/** How long a stopping worker drains: shared by the worker and `lifeboat worker stop`, which must wait for it. */

/** Default drain time on shutdown: long enough for a restore step to finish or reach a heartbeat. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 60_000;

/** $LIFEBOAT_WORKER_SHUTDOWN_GRACE_SECONDS, else the default; anything but a non-negative number is refused. */
export function shutdownGraceFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LIFEBOAT_WORKER_SHUTDOWN_GRACE_SECONDS?.trim();
  if (!raw) return DEFAULT_SHUTDOWN_GRACE_MS;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`LIFEBOAT_WORKER_SHUTDOWN_GRACE_SECONDS is "${raw}", not a number of seconds: set it to e.g. 60, or unset it.`);
  return seconds * 1000;
}
