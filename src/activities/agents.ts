/** Where a target's host-bound work runs: its agent's task queue, read from the config when the workflow asks. */
import { findDatabaseTarget } from '../config';
import { agentTaskQueue } from '../domain/agents';
import { Ports } from './ports';

export function agentActivities(ports: Ports) {
  return {
    /** The agent task queue of a database target, or null: its host work then runs on the central queue. */
    async hostTaskQueueOf(targetName: string): Promise<string | null> {
      const target = findDatabaseTarget(ports.config, targetName);
      return target.engine === 'pgbackrest' && target.agent ? agentTaskQueue(target.agent) : null;
    },
  };
}
