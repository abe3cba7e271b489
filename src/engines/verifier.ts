/**
 * The Verifier port: proves a (restored) database is usable, with SQL through pg. Each check
 * reports what it found, so a report can say "orders: 20000 rows, 0 orphaned order_items".
 */
import { Client } from 'pg';
import { newPgClient } from './pg-client';

export interface DatabaseEndpoint {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
}

export interface VerificationCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface TableFacts {
  table: string;
  rows: number;
  /** md5 over the table's rows in primary-key order: equal checksums mean equal contents. */
  checksum: string;
}

export interface VerificationReport {
  ok: boolean;
  checks: VerificationCheck[];
  tables: TableFacts[];
}

export interface VerificationPlan {
  criticalTables: string[];
  smokeQueries: Array<{ name: string; sql: string }>;
  /** Compare with these facts (e.g. of the source at the restore point); row counts must match. */
  expected?: TableFacts[];
}

const quoteIdent = (name: string) => name.split('.').map((part) => `"${part.replace(/"/g, '""')}"`).join('.');

export async function withDatabase<T>(endpoint: DatabaseEndpoint, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = newPgClient({ ...endpoint, connectionTimeoutMillis: 10000, statement_timeout: 600000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Row count and content checksum of a table, ordered by its primary key (or every column). */
export async function tableFacts(client: Client, table: string): Promise<TableFacts> {
  const pk = await client.query<{ col: string }>(
    `SELECT a.attname AS col FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
     WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
    [table],
  );
  const orderBy = pk.rows.length ? pk.rows.map((r) => quoteIdent(r.col)).join(', ') : 't::text';
  const result = await client.query<{ rows: string; checksum: string | null }>(
    `SELECT count(*) AS rows, md5(string_agg(t::text, E'\\n' ORDER BY ${orderBy})) AS checksum FROM ${quoteIdent(table)} AS t`,
  );
  return { table, rows: Number(result.rows[0].rows), checksum: result.rows[0].checksum ?? 'empty' };
}

/** Every foreign key in the database, with how many rows point at nothing. */
async function foreignKeyChecks(client: Client): Promise<VerificationCheck[]> {
  const fks = await client.query<{ name: string; child: string; parent: string; child_cols: string[]; parent_cols: string[] }>(`
    SELECT c.conname AS name, c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent,
           array_agg(ca.attname::text ORDER BY k.ord) AS child_cols, array_agg(pa.attname::text ORDER BY k.ord) AS parent_cols
    FROM pg_constraint c
    CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(child_col, parent_col, ord)
    JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.child_col
    JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.parent_col
    WHERE c.contype = 'f' GROUP BY c.conname, c.conrelid, c.confrelid ORDER BY 1`);
  const checks: VerificationCheck[] = [];
  for (const fk of fks.rows) {
    const join = fk.child_cols.map((col, i) => `p.${quoteIdent(fk.parent_cols[i])} = c.${quoteIdent(col)}`).join(' AND ');
    const notNull = fk.child_cols.map((col) => `c.${quoteIdent(col)} IS NOT NULL`).join(' AND ');
    const orphans = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${fk.child} c WHERE ${notNull} AND NOT EXISTS (SELECT 1 FROM ${fk.parent} p WHERE ${join})`,
    );
    const n = Number(orphans.rows[0].n);
    checks.push({ name: `foreign key ${fk.name}`, ok: n === 0, detail: n === 0 ? `${fk.child} -> ${fk.parent}: no orphaned rows` : `${fk.child} -> ${fk.parent}: ${n} orphaned rows` });
  }
  return checks;
}

export async function verifyDatabase(endpoint: DatabaseEndpoint, plan: VerificationPlan, onProgress: (what: string) => void = () => undefined): Promise<VerificationReport> {
  return withDatabase(endpoint, async (client) => {
    const checks: VerificationCheck[] = [];
    const tables: TableFacts[] = [];
    onProgress('connected');
    const inRecovery = (await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r;
    checks.push({ name: 'accepts writes', ok: !inRecovery, detail: inRecovery ? 'still in recovery (read-only)' : 'promoted, read-write' });
    for (const table of plan.criticalTables) {
      onProgress(`table ${table}`);
      try {
        const facts = await tableFacts(client, table);
        tables.push(facts);
        const expected = plan.expected?.find((e) => e.table === table);
        if (expected) {
          const same = expected.rows === facts.rows && expected.checksum === facts.checksum;
          checks.push({ name: `table ${table}`, ok: same, detail: same ? `${facts.rows} rows, contents identical to the reference` : `${facts.rows} rows (reference ${expected.rows}), checksum ${facts.checksum === expected.checksum ? 'equal' : 'differs'}` });
        } else {
          checks.push({ name: `table ${table}`, ok: true, detail: `${facts.rows} rows, checksum ${facts.checksum.slice(0, 12)}` });
        }
      } catch (err) {
        checks.push({ name: `table ${table}`, ok: false, detail: `cannot read it: ${(err as Error).message}` });
      }
    }
    onProgress('foreign keys');
    checks.push(...(await foreignKeyChecks(client)));
    for (const query of plan.smokeQueries) {
      onProgress(`smoke query ${query.name}`);
      try {
        await client.query('BEGIN READ ONLY');
        const result = await client.query(query.sql);
        await client.query('ROLLBACK');
        const n = result.rowCount ?? 0;
        checks.push({ name: `smoke query ${query.name}`, ok: n > 0, detail: n > 0 ? `${n} rows` : 'returned no rows' });
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        checks.push({ name: `smoke query ${query.name}`, ok: false, detail: (err as Error).message });
      }
    }
    return { ok: checks.every((c) => c.ok), checks, tables };
  });
}
