/**
 * lifeboat's own records in Postgres: every backup, verification, decision and check, with
 * who and when. Writes are idempotent by workflow id, so a retried activity never doubles a row.
 */
import { Pool, PoolClient } from 'pg';
import type { ClientConfig } from 'pg';
import { migrateCatalog } from './migrations';

export interface CatalogConnection {
  host: string;
  port: number;
  database: string;
  user: string;
  /** The password, or how to read it at each new connection (a rotated password needs no restart). */
  password?: string | (() => string);
  /** node-postgres's TLS option (the worker builds it from the config's sslMode and sslRootCert). */
  ssl?: ClientConfig['ssl'];
}

export interface PreflightRecord {
  workflowId: string;
  ok: boolean;
  components: unknown;
}

export interface WorkflowEvent {
  workflowId: string;
  kind: string;
  target?: string;
  event: string;
  details?: unknown;
}

/** One row of the audit trail; takes any client, so it can join the caller's transaction. */
export async function insertWorkflowEvent(client: Pick<PoolClient, 'query'>, event: WorkflowEvent): Promise<void> {
  await client.query('INSERT INTO workflow_events (workflow_id, kind, target, event, details) VALUES ($1, $2, $3, $4, $5)', [
    event.workflowId,
    event.kind,
    event.target ?? null,
    event.event,
    JSON.stringify(event.details ?? {}),
  ]);
}

export class Catalog {
  private readonly pool: Pool;

  constructor(connection: CatalogConnection) {
    this.pool = new Pool({ ...connection, max: 5, connectionTimeoutMillis: 5000, idleTimeoutMillis: 10000 });
    // An idle client losing its server must not crash the worker; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  async withClient<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      return await fn(client);
    } finally {
      client.release();
    }
  }

  async migrate(): Promise<{ applied: number[] }> {
    return this.withClient((c) => migrateCatalog(c as unknown as import('pg').Client));
  }

  async query<R extends object = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(sql, params)).rows;
  }

  async recordPreflight(record: PreflightRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO preflight_checks (workflow_id, ok, components) VALUES ($1, $2, $3)
       ON CONFLICT (workflow_id) DO UPDATE SET ok = EXCLUDED.ok, components = EXCLUDED.components`,
      [record.workflowId, record.ok, JSON.stringify(record.components)],
    );
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
