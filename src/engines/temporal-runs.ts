/**
 * What Temporal says of a workflow run, by workflow id and run id: still running, closed (and
 * how), or unknown. The drill sweeper asks this of every drill resource's recorded owner. One
 * client connection, made on first use and closed with the ports.
 */
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { describeError } from '../domain/errors';
import type { OwnerRunState } from '../domain/drill-sweep';
import type { RunIdentity } from '../domain/ports';

export interface TemporalRunsOptions {
  address: string;
  namespace: string;
}

export class TemporalRuns {
  private client?: Promise<Client>;

  constructor(private readonly options: TemporalRunsOptions) {}

  private connect(): Promise<Client> {
    this.client ??= Connection.connect({ address: this.options.address, connectTimeout: 5000 }).then(
      (connection) => new Client({ connection, namespace: this.options.namespace }),
      (err: unknown) => {
        this.client = undefined;
        throw err;
      },
    );
    return this.client;
  }

  /** The run's state; `unknown` when Temporal could not be asked (a retry or the next sweep asks again). */
  async runState(run: RunIdentity): Promise<OwnerRunState> {
    let client: Client;
    try {
      client = await this.connect();
    } catch (err) {
      return { state: 'unknown', detail: `Temporal at ${this.options.address} is unreachable: ${describeError(err)}` };
    }
    try {
      const d = await client.workflow.getHandle(run.workflowId, run.runId).describe();
      if (d.status.name === 'RUNNING') return { state: 'running', workflowType: d.type };
      return { state: 'closed', workflowType: d.type, status: d.status.name, ...(d.closeTime ? { closedAt: d.closeTime.toISOString() } : {}) };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { state: 'not-found' };
      return { state: 'unknown', detail: describeError(err) };
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await (await client.catch(() => undefined))?.connection.close();
  }
}
