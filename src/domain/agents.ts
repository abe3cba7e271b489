/**
 * Agents: workers on a database host. Work that must run where the database is (pgBackRest and
 * the files it reads) goes to the host's own task queue; everything else (orchestration, the
 * catalog, AWS, DNS) stays on the central queue, where any number of central workers share it.
 */

/** The task queue of the agent called `agent` (`targets.databases[].agent`). */
export function agentTaskQueue(agent: string): string {
  return `lifeboat-agent-${agent}`;
}

/**
 * The activities an agent runs: each calls pgBackRest on the database host. A workflow sends
 * these, and only these, to the target's agent when it has one; an agent worker registers these
 * alone, so nothing else can land on the host.
 */
export const HOST_BOUND_ACTIVITIES = [
  'preflightDatabaseBackup',
  'startDatabaseBackup',
  'waitForDatabaseBackup',
  'verifyDatabaseBackup',
  'copyDatabaseBackupToDr',
] as const;

export type HostBoundActivity = (typeof HOST_BOUND_ACTIVITIES)[number];
