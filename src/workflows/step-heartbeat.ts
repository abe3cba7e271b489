/**
 * How fast a crashed worker is noticed (issue 13: a worker crash costs a step in flight less than
 * 20 s). The server hands a heartbeating step to another worker once no heartbeat came for
 * STEP_HEARTBEAT; the retry then starts after CRASH_RETRY. Only for activities that heartbeat
 * every few seconds for as long as they run: withHeartbeats beats every third of the timeout
 * (5 s here), including while a child process (pgBackRest, pg_dump) works. Activity options are
 * not commands: changing them needs no patch (test/replay.test.ts replays every recorded history).
 */
export const STEP_HEARTBEAT = '15 seconds';
/** The first retry after a crash: backoff here is time the step stands still. */
export const CRASH_RETRY = { initialInterval: '1 second' } as const;
