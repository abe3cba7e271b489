import { Client, ClientConfig } from 'pg';
import { PgTls, pgSslOption } from './pg-tls';

/** A connection's settings, with lifeboat's TLS policy instead of node-postgres's `ssl`. */
export type PgClientConfig = ClientConfig & { tls?: PgTls };

/** node-postgres settings for `config`: its `tls` turned into the `ssl` option for its host. */
export function pgClientSettings(config: PgClientConfig): ClientConfig {
  const { tls, ...rest } = config;
  if (tls === undefined) return rest;
  return { ...rest, ssl: pgSslOption(tls, rest.host ?? 'localhost') };
}

/**
 * A pg Client that cannot crash its process. When a server goes away mid-conversation (a
 * restored instance stopping, a failover), pg emits 'error' on the client besides rejecting the
 * pending query; with no listener that event is an uncaught exception that kills the worker.
 * The rejection still reaches the caller, which is where the error is handled.
 */
export function newPgClient(config: PgClientConfig): Client {
  const client = new Client(pgClientSettings(config));
  client.on('error', () => undefined);
  return client;
}
