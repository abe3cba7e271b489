/**
 * How big a PostgreSQL cluster is now: what a physical restore of it has to write. The sum of
 * pg_database_size over every database, the same measure pgBackRest's backup info calls the size
 * of a backup, so a drill's size and the size now compare like with like.
 */
import { newPgClient } from './pg-client';
import type { PgTls } from './pg-tls';

export interface SizeConnection {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  tls?: PgTls;
}

export async function clusterSizeBytes(conn: SizeConnection): Promise<{ bytes: number; databases: number }> {
  const client = newPgClient({ ...conn, connectionTimeoutMillis: 10000, statement_timeout: 60000 });
  await client.connect();
  try {
    const row = (await client.query<{ bytes: string; n: string }>('SELECT sum(pg_database_size(oid))::text AS bytes, count(*)::text AS n FROM pg_database')).rows[0];
    return { bytes: Number(row.bytes), databases: Number(row.n) };
  } finally {
    await client.end().catch(() => undefined);
  }
}
