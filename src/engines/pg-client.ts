import { Client, ClientConfig } from 'pg';

/**
 * A pg Client that cannot crash its process. When a server goes away mid-conversation (a
 * restored instance stopping, a failover), pg emits 'error' on the client besides rejecting the
 * pending query; with no listener that event is an uncaught exception that kills the worker.
 * The rejection still reaches the caller, which is where the error is handled.
 */
export function newPgClient(config: ClientConfig): Client {
  const client = new Client(config);
  client.on('error', () => undefined);
  return client;
}
