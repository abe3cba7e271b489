/**
 * What Temporal says of a workflow run, by workflow id and run id: still running, closed (and
 * how), or unknown. The drill sweeper asks this of every drill resource's recorded owner. One
 * client connection, made on first use and closed with the ports.
 */
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { describeError } from '../domain/errors';
import type { OwnerRunState } from '../domain/drill-sweep';
import type { RunIdentity } from '../domain/ports';
import type { LifeboatConfig } from '../config';
import { connectionOptions, explainConnectFailure, resolveTemporalConnection } from '../config/temporal-connection';

export class TemporalRuns {
  private client?: Promise<Client>;

  constructor(private readonly section: LifeboatConfig['temporal']) {}

  private connect(): Promise<Client> {
    this.client ??= (async () => {
      // Resolved on first use: TLS files and secrets are read when needed, like every other secret.
      const settings = resolveTemporalConnection(this.section);
      const connection = await Connection.connect({ ...connectionOptions(settings), connectTimeout: 5000 }).catch(async (err: unknown) => {
        throw new Error(await explainConnectFailure(settings, err));
      });
      return new Client({ connection, namespace: settings.namespace });
    })().catch((err: unknown) => {
      this.client = undefined;
      throw err;
    });
    return this.client;
  }

  /** The run's state; `unknown` when Temporal could not be asked (a retry or the next sweep asks again). */
  async runState(run: RunIdentity): Promise<OwnerRunState> {
    let client: Client;
    try {
      client = await this.connect();
    } catch (err) {
      return { state: 'unknown', detail: describeError(err) };
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
