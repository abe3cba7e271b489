/**
 * The sample application as a running service: a small HTTP server that reaches its database
 * only through a DNS name, the way a real application does, so a failover that repoints the
 * name is proved by this service answering from the new cluster without being restarted.
 *
 * The name is resolved at the stack's PowerDNS (A for the address, `_postgresql._tcp.<name>`
 * SRV for the port) before every request; an answer is reused only while its TTL lasts, and
 * only when the server does not answer. Pooled connections to an address the name no longer
 * points at are closed rather than reused.
 *
 * Standalone (a drill runs its own copy against a drill name):
 *   node lib/src/stack/sample-app-service.js --port 18090 --db-name db.app.lifeboat.test. \
 *     --dns 127.0.0.1:10053 --database app --user lifeboat
 */
import { promises as dns } from 'node:dns';
import http from 'node:http';
import os from 'node:os';
import { Client } from 'pg';
import { newPgClient } from '../engines/pg-client';

export interface SampleAppServiceOptions {
  /** HTTP port; 0 takes a free one (the handle says which). */
  port: number;
  /** Address the HTTP server binds to. */
  host?: string;
  /** The DNS name of the database, e.g. db.app.lifeboat.test. */
  dbName: string;
  /** The DNS server that serves the name (the stack's PowerDNS). */
  dnsServer: { host: string; port: number };
  database: string;
  user: string;
  /** Most database connections held at once. */
  poolSize?: number;
  /** Written into app_writes.written_by, so rows say which copy of the service wrote them. */
  instance?: string;
  log?: (line: string) => void;
}

export interface SampleAppServiceHandle {
  port: number;
  url: string;
  close(): Promise<void>;
}

export interface DatabaseEndpoint {
  host: string;
  port: number;
}

/** What GET /health reports about the cluster that answered. */
export interface AnsweringDatabase extends DatabaseEndpoint {
  systemIdentifier: string;
  inRecovery: boolean;
  serverVersion: string;
}

const DEFAULT_POOL_SIZE = 4;
const CONNECT_TIMEOUT_MS = 5000;
const QUERY_TIMEOUT_MS = 10000;

const srvName = (name: string) => `_postgresql._tcp.${name}`;
const sameEndpoint = (a: DatabaseEndpoint, b: DatabaseEndpoint) => a.host === b.host && a.port === b.port;

/** Resolves the database name at one DNS server; the last answer serves only within its TTL. */
class DatabaseName {
  private readonly resolver = new dns.Resolver({ timeout: 2000, tries: 1 });
  private last?: { endpoint: DatabaseEndpoint; expiresAt: number };

  constructor(
    readonly name: string,
    private readonly server: { host: string; port: number },
  ) {
    this.resolver.setServers([`${server.host}:${server.port}`]);
  }

  async resolve(): Promise<DatabaseEndpoint> {
    try {
      const addresses = await this.resolver.resolve4(this.name, { ttl: true });
      if (addresses.length === 0) throw new Error('no A record');
      const services = await this.resolver.resolveSrv(srvName(this.name)).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`no SRV record ${srvName(this.name)} (${err.code ?? err.message})`);
      });
      if (services.length === 0) throw new Error(`no SRV record ${srvName(this.name)}`);
      const endpoint = { host: addresses[0].address, port: services[0].port };
      this.last = { endpoint, expiresAt: Date.now() + addresses[0].ttl * 1000 };
      return endpoint;
    } catch (err) {
      if (this.last && Date.now() < this.last.expiresAt) return this.last.endpoint;
      throw new Error(`cannot resolve ${this.name} at the DNS server ${this.server.host}:${this.server.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`);
    }
  }
}

interface Pooled {
  client: Client;
  endpoint: DatabaseEndpoint;
  /** The server closed it or it failed: never handed out again. */
  broken: boolean;
}

/** A few connections, each made to where the name pointed when it was opened. */
class NamePool {
  private readonly idle: Pooled[] = [];
  private inUse = 0;
  private readonly waiting: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly name: DatabaseName,
    private readonly options: { database: string; user: string; size: number; log: (line: string) => void },
  ) {}

  private async slot(): Promise<void> {
    if (this.inUse < this.options.size) {
      this.inUse++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private freeSlot(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inUse--;
  }

  private discard(p: Pooled): void {
    p.broken = true;
    p.client.end().catch(() => undefined);
  }

  private async open(endpoint: DatabaseEndpoint): Promise<Pooled> {
    const client = newPgClient({
      host: endpoint.host,
      port: endpoint.port,
      database: this.options.database,
      user: this.options.user,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS,
      application_name: 'lifeboat-sample-app',
    });
    const pooled: Pooled = { client, endpoint, broken: false };
    // A server that shuts down closes idle connections: those must not be handed out again.
    client.on('error', () => (pooled.broken = true));
    client.on('end', () => (pooled.broken = true));
    try {
      await client.connect();
    } catch (err) {
      client.end().catch(() => undefined);
      throw new Error(`cannot connect to ${this.name.name} (${endpoint.host}:${endpoint.port}): ${(err as Error).message}.`);
    }
    return pooled;
  }

  /**
   * Runs `work` on a connection to where the name points now. A reused connection that turns
   * out dead is replaced once, with a fresh lookup: a restarted server leaves its idle
   * connections behind, and the request should not fail for that.
   */
  async use<T>(work: (client: Client, endpoint: DatabaseEndpoint) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('the sample application is shutting down.');
    await this.slot();
    try {
      for (let attempt = 1; ; attempt++) {
        const endpoint = await this.name.resolve();
        for (const stale of this.idle.filter((p) => p.broken || !sameEndpoint(p.endpoint, endpoint))) {
          if (!stale.broken) this.options.log(`${this.name.name} now points at ${endpoint.host}:${endpoint.port}: closing a connection to ${stale.endpoint.host}:${stale.endpoint.port}`);
          this.idle.splice(this.idle.indexOf(stale), 1);
          this.discard(stale);
        }
        const reused = this.idle.pop();
        const pooled = reused ?? (await this.open(endpoint));
        try {
          const result = await work(pooled.client, endpoint);
          if (!pooled.broken && !this.closed) this.idle.push(pooled);
          else this.discard(pooled);
          return result;
        } catch (err) {
          const connectionLost = pooled.broken || isConnectionError(err);
          if (connectionLost) this.discard(pooled);
          else if (!this.closed) this.idle.push(pooled);
          else this.discard(pooled);
          if (connectionLost && reused && attempt === 1) continue;
          throw err;
        }
      }
    } finally {
      this.freeSlot();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.idle.splice(0).map((p) => p.client.end().catch(() => undefined)));
  }
}

/** Not an answer of the server to the statement, but the loss of the connection it ran on. */
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return true;
  // SQLSTATE classes 08 (connection exception) and 57 (operator intervention: shutdown, terminated).
  return code.startsWith('08') || code.startsWith('57') || /^E[A-Z]+$/.test(code);
}

/** The table each write goes into: ids are the order of commits, so the highest one is the last write kept. */
export const APP_WRITES_TABLE = 'app_writes';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function identify(client: Client, endpoint: DatabaseEndpoint): Promise<AnsweringDatabase> {
  const r = await client.query<{ system_identifier: string; in_recovery: boolean; server_version: string }>(
    "SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier, pg_is_in_recovery() AS in_recovery, current_setting('server_version') AS server_version",
  );
  const row = r.rows[0];
  return { host: endpoint.host, port: endpoint.port, systemIdentifier: row.system_identifier, inRecovery: row.in_recovery, serverVersion: row.server_version };
}

async function writeOne(client: Client, writtenBy: string): Promise<{ id: number; writtenAt: string }> {
  const r = await client.query<{ id: string; written_at: Date }>(`INSERT INTO ${APP_WRITES_TABLE} (written_by) VALUES ($1) RETURNING id, written_at`, [writtenBy]);
  return { id: Number(r.rows[0].id), writtenAt: r.rows[0].written_at.toISOString() };
}

function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

export async function startSampleAppService(options: SampleAppServiceOptions): Promise<SampleAppServiceHandle> {
  const log = options.log ?? (() => undefined);
  const bindHost = options.host ?? '127.0.0.1';
  const name = new DatabaseName(options.dbName, options.dnsServer);
  const pool = new NamePool(name, { database: options.database, user: options.user, size: options.poolSize ?? DEFAULT_POOL_SIZE, log });
  let instance = options.instance;

  const health = async (): Promise<{ status: number; body: unknown }> => {
    let database: AnsweringDatabase | undefined;
    try {
      const lastWriteId = await pool.use(async (client, endpoint) => {
        database = await identify(client, endpoint);
        return (await writeOne(client, instance!)).id;
      });
      return { status: 200, body: { ok: true, database, lastWriteId, resolvedFrom: options.dbName, at: new Date().toISOString() } };
    } catch (err) {
      return { status: 503, body: { ok: false, error: messageOf(err), ...(database ? { database } : {}), resolvedFrom: options.dbName, at: new Date().toISOString() } };
    }
  };

  const routes: Record<string, (url: URL) => Promise<{ status: number; body: unknown }>> = {
    'GET /health': health,
    'GET /orders/recent': async (url) => {
      const raw = url.searchParams.get('limit') ?? '10';
      const limit = Number(raw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new HttpError(400, `limit=${raw} is not a whole number from 1 to 100: give one, or leave it out for 10.`);
      return pool.use(async (client, endpoint) => {
        const r = await client.query<{ id: string; customer_id: string; placed_at: Date; status: string }>(
          'SELECT id, customer_id, placed_at, status FROM orders ORDER BY placed_at DESC, id DESC LIMIT $1',
          [limit],
        );
        const orders = r.rows.map((o) => ({ id: Number(o.id), customerId: Number(o.customer_id), placedAt: o.placed_at.toISOString(), status: o.status }));
        return { status: 200, body: { orders, database: endpoint } };
      });
    },
    'POST /writes': async () =>
      pool.use(async (client, endpoint) => {
        const written = await writeOne(client, instance!);
        return { status: 201, body: { ...written, database: endpoint } };
      }),
    'GET /writes/last': async () =>
      pool.use(async (client, endpoint) => {
        const r = await client.query<{ id: string | null }>(`SELECT max(id) AS id FROM ${APP_WRITES_TABLE}`);
        return { status: 200, body: { lastWriteId: r.rows[0].id === null ? null : Number(r.rows[0].id), database: endpoint } };
      }),
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sample-app');
    const route = routes[`${req.method} ${url.pathname}`];
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify(body) + '\n');
    };
    // The request body is never read: drain it so the connection can be reused.
    req.resume();
    if (!route) {
      const known = Object.keys(routes).filter((k) => k.endsWith(` ${url.pathname}`));
      if (known.length) return send(405, { ok: false, error: `${url.pathname} takes ${known.map((k) => k.split(' ')[0]).join(' or ')}, not ${req.method}.` });
      return send(404, { ok: false, error: `no endpoint ${url.pathname}: the service answers ${Object.keys(routes).join(', ')}.` });
    }
    route(url).then(
      (r) => send(r.status, r.body),
      (err: unknown) => {
        if (err instanceof HttpError) send(err.status, { ok: false, error: err.message });
        else send(503, { ok: false, error: messageOf(err), resolvedFrom: options.dbName });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, bindHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  instance ??= `sample-app@${os.hostname()}:${port}`;
  const url = `http://${bindHost}:${port}`;
  log(`listening on ${url}; database "${options.database}" as ${options.user} through ${options.dbName} (DNS ${options.dnsServer.host}:${options.dnsServer.port})`);
  return {
    port,
    url,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await pool.close();
    },
  };
}

/** `--name value` pairs, each known and given once; a wrong one is one sentence for the operator. */
export function parseServiceArguments(argv: string[]): SampleAppServiceOptions {
  const known = ['port', 'host', 'db-name', 'dns', 'database', 'user', 'instance', 'pool-size'];
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const key = flag.startsWith('--') ? flag.slice(2) : '';
    if (!known.includes(key)) throw new Error(`"${flag}" is not an option of the sample application: it takes ${known.map((k) => `--${k}`).join(', ')}.`);
    if (values.has(key)) throw new Error(`--${key} was given twice: give it once.`);
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('--')) throw new Error(`--${key} needs a value: --${key} <value>.`);
    values.set(key, value);
  }
  const required = ['port', 'db-name', 'dns'].filter((k) => !values.has(k));
  if (required.length) throw new Error(`the sample application needs ${required.map((k) => `--${k}`).join(' and ')}: see the usage at the top of sample-app-service.ts or the README.`);
  const whole = (key: string, min: number, max: number) => {
    const raw = values.get(key)!;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || n > max) throw new Error(`--${key} ${raw} is not a whole number from ${min} to ${max}: give one.`);
    return n;
  };
  const dnsMatch = /^([^:\s]+):(\d+)$/.exec(values.get('dns')!);
  if (!dnsMatch || Number(dnsMatch[2]) < 1 || Number(dnsMatch[2]) > 65535) throw new Error(`--dns ${values.get('dns')} is not host:port: give the DNS server that serves the name, e.g. 127.0.0.1:10053.`);
  return {
    port: whole('port', 0, 65535),
    host: values.get('host'),
    dbName: values.get('db-name')!,
    dnsServer: { host: dnsMatch[1], port: Number(dnsMatch[2]) },
    database: values.get('database') ?? 'app',
    user: values.get('user') ?? 'lifeboat',
    instance: values.get('instance'),
    poolSize: values.has('pool-size') ? whole('pool-size', 1, 50) : undefined,
  };
}

if (require.main === module) {
  let options: SampleAppServiceOptions;
  try {
    options = parseServiceArguments(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`sample app: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} sample app: ${line}\n`);
  startSampleAppService({ ...options, log }).then(
    (handle) => {
      const stop = () => {
        log('stopping');
        handle.close().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (err: unknown) => {
      process.stderr.write(`sample app: cannot start: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
