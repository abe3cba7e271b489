/**
 * The sample application on the primary: customers, products, orders and order lines, linked
 * by foreign keys, seeded with deterministic data so restores can be checked row for row, plus
 * `app_writes`, the counter its HTTP service (sample-app-service.ts) writes. The service runs as
 * a stack component, `sample-app`, reaching the database only through the DNS name.
 */
import http from 'node:http';
import path from 'node:path';
import { Client } from 'pg';
import { ComponentHealth, logFile, pidFile, StackComponent, StackContext } from './component';
import { ENV } from './settings';
import { livePid, startDetached, stopPid, tailFile, waitUntil } from '../platform/processes';

export const SAMPLE_APP_TABLES = ['customers', 'products', 'orders', 'order_items'] as const;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS customers (
  id bigint PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS products (
  id bigint PRIMARY KEY,
  sku text NOT NULL UNIQUE,
  title text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents >= 0)
);
CREATE TABLE IF NOT EXISTS orders (
  id bigint PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers(id),
  placed_at timestamptz NOT NULL,
  status text NOT NULL
);
CREATE TABLE IF NOT EXISTS order_items (
  order_id bigint NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
  line_no integer NOT NULL,
  product_id bigint NOT NULL REFERENCES products(id),
  quantity integer NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (order_id, line_no)
);
CREATE INDEX IF NOT EXISTS orders_customer_idx ON orders (customer_id);
CREATE TABLE IF NOT EXISTS app_writes (
  id bigserial PRIMARY KEY,
  written_at timestamptz NOT NULL DEFAULT now(),
  written_by text NOT NULL
);
`;

/** The role verifications connect as (the config's default `verifyUser`): it reads everything and writes nothing. */
export const VERIFY_ROLE = 'lifeboat_verify';

/** Roles are cluster-wide, so restored copies of the primary have it too. */
async function ensureVerifyRole(client: Client): Promise<void> {
  const found = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [VERIFY_ROLE]);
  if (found.rowCount === 0) await client.query(`CREATE ROLE ${VERIFY_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`);
  await client.query(`GRANT pg_read_all_data TO ${VERIFY_ROLE}`);
}

/** Creates the schema and the verify role, and seeds the data once; `orders` gets `rows` rows, the other tables scale with it. */
export async function seedSampleApp(client: Client, rows: number): Promise<{ seeded: boolean }> {
  await client.query(SCHEMA);
  await ensureVerifyRole(client);
  const existing = await client.query<{ n: string }>('SELECT count(*) AS n FROM orders');
  if (Number(existing.rows[0].n) > 0) return { seeded: false };
  const customers = Math.max(10, Math.floor(rows / 10));
  const products = Math.max(10, Math.min(5000, Math.floor(rows / 20)));
  await client.query('BEGIN');
  try {
    await client.query(
      `INSERT INTO customers (id, email, name, created_at)
       SELECT i, 'customer' || i || '@example.test', 'Customer ' || md5(i::text), timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute'
       FROM generate_series(1, $1::bigint) AS i`,
      [customers],
    );
    await client.query(
      `INSERT INTO products (id, sku, title, price_cents)
       SELECT i, 'SKU-' || lpad(i::text, 6, '0'), 'Product ' || substr(md5('p' || i), 1, 12), (i * 37) % 10000 + 99
       FROM generate_series(1, $1::bigint) AS i`,
      [products],
    );
    await client.query(
      `INSERT INTO orders (id, customer_id, placed_at, status)
       SELECT i, (i % $2::bigint) + 1, timestamptz '2026-01-01 00:00:00+00' + i * interval '13 seconds',
              (ARRAY['placed','paid','shipped','delivered'])[(i % 4) + 1]
       FROM generate_series(1, $1::bigint) AS i`,
      [rows, customers],
    );
    await client.query(
      `INSERT INTO order_items (order_id, line_no, product_id, quantity)
       SELECT o, l, ((o * 7 + l * 13) % $2::bigint) + 1, (o + l) % 5 + 1
       FROM generate_series(1, $1::bigint) AS o, generate_series(1, 2) AS l`,
      [rows, products],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
  await client.query('ANALYZE');
  return { seeded: true };
}

const SERVICE_ENTRY = path.resolve(__dirname, 'sample-app-service.js');

/** GET on the service; any HTTP answer counts, a refused connection does not. */
function getJson(host: string, port: number, urlPath: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: urlPath, timeout: 15000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
        } catch (err) {
          reject(new Error(`${urlPath} answered HTTP ${res.statusCode} with something other than JSON: ${(err as Error).message}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/** The sample application's HTTP service, on LIFEBOAT_APP_PORT, following the database's DNS name. */
export class SampleAppServer implements StackComponent {
  readonly name = 'sample-app';
  constructor(private readonly ctx: StackContext) {}

  get endpoint(): string {
    const { host, app, dns } = this.ctx.settings;
    return `http://${host}:${app.port} (database through ${dns.appDbName})`;
  }

  ports() {
    return [{ port: this.ctx.settings.app.port, env: ENV.appPort, what: 'sample application (HTTP)' }];
  }

  isRunning(): boolean {
    return livePid(pidFile(this.ctx, this.name), SERVICE_ENTRY) !== undefined;
  }

  async start(): Promise<void> {
    const { settings } = this.ctx;
    const log = logFile(this.ctx, this.name);
    const args = [
      SERVICE_ENTRY,
      '--port', String(settings.app.port),
      '--host', settings.host,
      '--db-name', settings.dns.appDbName,
      '--dns', `${settings.host}:${settings.dns.port}`,
      '--database', settings.postgres.appDatabase,
      '--user', settings.postgres.superuser,
      '--instance', `sample-app:${settings.app.port}`,
    ];
    startDetached(process.execPath, args, { logFile: log, pidFile: pidFile(this.ctx, this.name) });
    await waitUntil('the sample application', async () => (this.isRunning() ? (await this.accepting()) || 'not answering HTTP yet' : `exited: ${tailFile(log, 3)}`), {
      timeoutMs: 30000,
      hint: `see ${log}`,
    });
    // Serving is what starting means: where the name points is lifeboat's to change, and an
    // unhealthy answer is reported by `stack status` rather than undoing the whole `up`.
    const health = await this.health();
    if (!health.healthy) this.ctx.log(`the sample application serves, but ${health.detail}`);
  }

  async stop(): Promise<void> {
    const pid = livePid(pidFile(this.ctx, this.name), SERVICE_ENTRY);
    if (pid) await stopPid(pid);
  }

  /** Its own GET /health: a read and a write through the DNS name. */
  async health(): Promise<ComponentHealth> {
    const { host, app } = this.ctx.settings;
    try {
      const { status, body } = await getJson(host, app.port, '/health');
      if (status === 200 && body.ok === true) {
        const db = body.database as { host: string; port: number; systemIdentifier: string };
        return { healthy: true, detail: `${this.endpoint}: answered from ${db.host}:${db.port} (system ${db.systemIdentifier}), write ${String(body.lastWriteId)}` };
      }
      return { healthy: false, detail: `GET /health answered HTTP ${status}: ${String(body.error ?? JSON.stringify(body))}` };
    } catch (err) {
      return { healthy: false, detail: `no HTTP answer on ${host}:${app.port}: ${(err as Error).message}` };
    }
  }

  /** Serving HTTP, even while its database is away: `up` leaves it running, it follows the name on its own. */
  async accepting(): Promise<boolean> {
    const { host, app } = this.ctx.settings;
    return getJson(host, app.port, '/health').then(
      () => true,
      () => false,
    );
  }
}
