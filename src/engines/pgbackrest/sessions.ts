/**
 * SQL sessions to the source and to restored clusters, with the source's credentials (a restored
 * cluster is a copy of the source, so they are the same): what a cluster answers (status,
 * identity, version), its settings, and waiting for a reloaded setting to show. Every session is
 * closed before its result is returned.
 */
import type { Client } from 'pg';
import { LifeboatError } from '../../domain/errors';
import type { InstanceDescription } from '../../domain/ports';
import { delay } from '../../platform/processes';
import { newPgClient } from '../pg-client';
import type { PgBackRestSetup } from './options';

export type ClusterFacts = Pick<InstanceDescription, 'status' | 'identity' | 'engineVersion'>;

export class ClusterSessions {
  constructor(private readonly setup: Pick<PgBackRestSetup, 'source' | 'timings'>) {}

  /** A session named `lifeboat` (so it shows as lifeboat's in pg_stat_activity). */
  async withCluster<T>(port: number, host: string, fn: (c: Client) => Promise<T>): Promise<T> {
    return this.session(port, host, fn, 'lifeboat');
  }

  /** Status, identity and version of the cluster answering on host:port. */
  async facts(port: number, host: string): Promise<ClusterFacts> {
    return this.session(port, host, async (client) => {
      const r = await client.query<{ system_identifier: string; in_recovery: boolean; version: string }>(
        "SELECT system_identifier::text AS system_identifier, pg_is_in_recovery() AS in_recovery, current_setting('server_version') AS version FROM pg_control_system()",
      );
      const row = r.rows[0];
      return { status: row.in_recovery ? 'replaying-wal' : 'available', identity: row.system_identifier, engineVersion: row.version.split(' ')[0] };
    });
  }

  /** The source's current WAL insert position. */
  async currentInsertLsn(): Promise<string> {
    const s = this.setup.source;
    return this.session(s.port, s.host, async (client) => (await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn);
  }

  async setting(port: number, host: string, name: string): Promise<string> {
    return this.withCluster(port, host, async (c) => (await c.query<{ v: string }>('SELECT current_setting($1) AS v', [name])).rows[0].v);
  }

  /** A reload is asynchronous: waits until a new session sees the value. */
  async waitForSetting(port: number, host: string, name: string, value: string): Promise<void> {
    const { timings } = this.setup;
    const deadline = Date.now() + timings.settleTimeoutMs;
    let seen = '';
    for (;;) {
      seen = await this.setting(port, host, name);
      if (seen === value) return;
      if (Date.now() > deadline) throw new LifeboatError(`${name} on ${host}:${port} is still ${JSON.stringify(seen)} after a reload, not ${JSON.stringify(value)}; check the server's log.`, 'SETTING_NOT_APPLIED', false);
      await delay(timings.pollMs);
    }
  }

  private async session<T>(port: number, host: string, fn: (c: Client) => Promise<T>, applicationName?: string): Promise<T> {
    const s = this.setup.source;
    const client = newPgClient({
      host,
      port,
      user: s.user,
      password: s.password,
      database: s.database,
      tls: s.tls,
      connectionTimeoutMillis: this.setup.timings.connectTimeoutMs,
      ...(applicationName ? { application_name: applicationName } : {}),
    });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
