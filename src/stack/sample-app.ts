/**
 * The sample application on the primary: customers, products, orders and order lines, linked
 * by foreign keys, seeded with deterministic data so restores can be checked row for row.
 */
import { Client } from 'pg';

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
