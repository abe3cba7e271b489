/** Where a target's host-bound work runs: its agent's task queue, read from the config when the workflow asks. */
import { LifeboatConfig } from '../config';
import { agentTaskQueue } from '../domain/agents';
import { Ports } from './ports';

/** The agent task queue of a database target, or null: its host work then runs on the central queue. */
export function hostTaskQueueIn(config: LifeboatConfig, targetName: string): string | null {
  // A name the config does not declare has no agent: the workflow's next step refuses it in its own words.
  const target = config.targets.databases.find((d) => d.name === targetName);
  const directory = config.targets.directories.find((d) => d.name === targetName);
  if (directory) return directory.agent ? agentTaskQueue(directory.agent) : null;
  const sqlite = config.targets.sqlite.find((q) => q.name === targetName);
  if (sqlite) return sqlite.agent ? agentTaskQueue(sqlite.agent) : null;
  return target?.engine === 'pgbackrest' && target.agent ? agentTaskQueue(target.agent) : null;
}

export function agentActivities(ports: Ports) {
  return {
    /** The agent task queue of a database target, or null: its host work then runs on the central queue. */
    async hostTaskQueueOf(targetName: string): Promise<string | null> {
      return hostTaskQueueIn(ports.config, targetName);
    },

    /** The SQLite targets grouped by the host that holds their files: an agent's queue, or null for the central workers. */
    async sqliteTargetHosts(): Promise<Array<{ queue: string | null; targets: string[] }>> {
      const groups = new Map<string | null, string[]>();
      for (const q of ports.config.targets.sqlite) {
        const queue = hostTaskQueueIn(ports.config, q.name);
        groups.set(queue, [...(groups.get(queue) ?? []), q.name]);
      }
      return [...groups].map(([queue, targets]) => ({ queue, targets }));
    },

    /** Every database target that has an agent, with its queue: what a sweep over all targets asks each host about. */
    async targetsOnAgents(): Promise<Array<{ target: string; queue: string }>> {
      return ports.config.targets.databases.flatMap((d) => {
        const queue = hostTaskQueueIn(ports.config, d.name);
        return queue ? [{ target: d.name, queue }] : [];
      });
    },
  };
}
