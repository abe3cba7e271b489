/**
 * The Verifier port: proves a (restored) database is usable and holds the right data, with SQL
 * through pg. Each check reports what it found, so a report can say "orders: 20000 rows,
 * identical to the source".
 *
 * Table checksums are bounded whatever the table's size: every row's text is hashed on its own
 * and the 64-bit hashes are summed (see TableFacts.checksum), one range of pages at a time. Nothing
 * ever builds a value the size of the table (the 1 GB limit that `md5(string_agg(...))` hit),
 * nothing sorts, and the table is read once, in physical order. The sum does not depend on row
 * order, so tables with and without a primary key are checksummed the same way, and a copy
 * whose rows sit elsewhere on disk (a logical restore) has the same checksum.
 */
import { Client, QueryConfig } from 'pg';
import type { PgTls } from './pg-tls';
import { newPgClient } from './pg-client';
import { comparability, DatabaseFacts, RECENT_TRANSACTIONS, RecordedRowCounts, rowCountsCheck, SnapshotPosition, SourceFacts, TableFacts, VerificationSummary } from '../domain/verification';

export type { DatabaseFacts, SourceFacts, TableFacts } from '../domain/verification';

export interface DatabaseEndpoint {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  tls?: PgTls;
}

export interface VerificationCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export type VerificationReport = VerificationSummary;

export interface VerificationPlan {
  criticalTables: string[];
  smokeQueries: Array<{ name: string; sql: string }>;
  /** The source's facts for the restore point, or why there are none (reported as such). */
  expected?: SourceFacts;
  /** The row counts recorded when the restored backup ended (drills), compared where they describe the same point. */
  recordedCounts?: RecordedRowCounts;
}

/** What a verification is doing now, for heartbeats: the table and how far into it. */
export interface VerificationProgress {
  step: string;
  table?: string;
  rowsDone?: number;
  pagesDone?: number;
  pages?: number;
}

export interface ChecksumOptions {
  /** Pages (8 KiB each by default) per checksum statement: the heartbeat's granularity. */
  pagesPerRange?: number;
  onProgress?: (progress: VerificationProgress) => void;
  /** Aborted when the activity is cancelled: the checksum stops between ranges. */
  signal?: AbortSignal;
}

/** 64 MiB of 8 KiB pages: about half a second of hashing per statement. */
const DEFAULT_PAGES_PER_RANGE = 8192;
const SMOKE_QUERY_TIMEOUT_MS = 5 * 60 * 1000;
const TWO_TO_64 = 1n << 64n;

export async function withDatabase<T>(endpoint: DatabaseEndpoint, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = newPgClient({ ...endpoint, connectionTimeoutMillis: 10000, statement_timeout: 600000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Row text depends on session settings (time zone, date and interval styles, bytea output): fix
 * them, so a source and its copy produce the same text whatever their servers' defaults.
 */
const DETERMINISTIC_ROW_TEXT = ["SET LOCAL TimeZone = 'UTC'", "SET LOCAL DateStyle = 'ISO, YMD'", "SET LOCAL IntervalStyle = 'postgres'", 'SET LOCAL extra_float_digits = 1', "SET LOCAL bytea_output = 'hex'", "SET LOCAL lc_monetary = 'C'"];

/**
 * Sum of a 64-bit hash of each row's text over the rows the condition selects. The hash is
 * PostgreSQL's own hashtextextended (hash partitioning depends on it, so it is stable across
 * versions; a physical copy runs on the source's architecture): measured twice as fast as md5
 * here, where md5 alone cost more than reading the table. `lifeboat_row.*` never collides with
 * a column name, as a bare alias would.
 */
const rangeChecksumSql = (relation: string, condition: string) =>
  `SELECT count(*)::bigint AS rows, coalesce(sum(hashtextextended(ROW(lifeboat_row.*)::text, 0)), 0)::text AS total
   FROM ${relation} AS lifeboat_row ${condition}`;

const asChecksum = (rows: number, total: bigint) => (rows === 0 ? 'empty' : `h64:${(((total % TWO_TO_64) + TWO_TO_64) % TWO_TO_64).toString(16).padStart(16, '0')}`);

/**
 * Row count and checksum of one table, read one range of pages at a time (a TID range scan, so
 * each statement reads only its pages). Run it inside one snapshot (snapshotFacts) so the
 * ranges add up to a consistent table.
 */
async function tableChecksum(client: Client, table: string, options: ChecksumOptions): Promise<TableFacts> {
  const meta = await client.query<{ relation: string; kind: string; pages: string; version: number }>(
    `WITH RECURSIVE tree AS (SELECT $1::regclass::oid AS oid UNION ALL SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)
     SELECT $1::regclass::text AS relation, (SELECT relkind::text FROM pg_class WHERE oid = $1::regclass) AS kind,
            (SELECT coalesce(max(pg_relation_size(oid)), 0) FROM tree) / current_setting('block_size')::bigint AS pages,
            current_setting('server_version_num')::int AS version`,
    [table],
  );
  const { relation, kind } = meta.rows[0];
  const pages = Number(meta.rows[0].pages);
  // TID range scans exist from PostgreSQL 14; views and foreign tables have no pages: one statement then.
  const byRanges = meta.rows[0].version >= 140000 && ['r', 'p', 'm'].includes(kind);
  const perRange = Math.max(1, options.pagesPerRange ?? DEFAULT_PAGES_PER_RANGE);
  const ranges = byRanges ? Math.max(1, Math.ceil(pages / perRange)) : 1;
  let rows = 0;
  let total = 0n;
  options.onProgress?.({ step: 'checksum', table, rowsDone: 0, pagesDone: 0, pages });
  for (let i = 0; i < ranges; i++) {
    if (options.signal?.aborted) throw new Error(`checksum of ${table} cancelled after ${rows} rows`);
    // The last range is open-ended: pages added since `pages` was read are covered too, and an
    // inheritance child longer than its parent is read to its end.
    const condition = !byRanges ? '' : i === ranges - 1 ? `WHERE lifeboat_row.ctid >= '(${i * perRange},0)'::tid` : `WHERE lifeboat_row.ctid >= '(${i * perRange},0)'::tid AND lifeboat_row.ctid < '(${(i + 1) * perRange},0)'::tid`;
    const part = (await client.query<{ rows: string; total: string }>(rangeChecksumSql(relation, condition))).rows[0];
    rows += Number(part.rows);
    total += BigInt(part.total);
    options.onProgress?.({ step: 'checksum', table, rowsDone: rows, pagesDone: Math.min(pages, (i + 1) * perRange), pages });
  }
  return { table, rows, checksum: asChecksum(rows, total) };
}

/** Where the current transaction's snapshot sits: the transactions it sees (call it first in the transaction). */
async function snapshotPosition(client: Client): Promise<SnapshotPosition> {
  const where = (
    await client.query<{ xmax: string; running: number; committed: number; taken: Date }>(
      `SELECT s.xmax::text, s.running, s.committed, now() AS taken FROM (
         SELECT txid_snapshot_xmax(txid_current_snapshot()) AS xmax, (SELECT count(*) FROM txid_snapshot_xip(txid_current_snapshot()))::int AS running,
                (SELECT count(*) FROM generate_series(greatest(3, txid_snapshot_xmax(txid_current_snapshot()) - $1), txid_snapshot_xmax(txid_current_snapshot()) - 1) AS x
                 WHERE txid_status(x) = 'committed')::int AS committed) AS s`,
      [RECENT_TRANSACTIONS],
    )
  ).rows[0];
  return { takenAt: where.taken.toISOString(), xmax: where.xmax, inProgress: where.running, recentCommitted: where.committed };
}

/**
 * Exact row counts of the given tables at one snapshot (a read-only repeatable-read transaction),
 * with where that snapshot sits and the WAL insert position: what a backup's drills compare with.
 * Throws when a table cannot be counted.
 */
export async function countRows(endpoint: DatabaseEndpoint, tables: readonly string[]): Promise<SnapshotPosition & { lsn?: string; tables: Array<{ table: string; rows: number }> }> {
  return withDatabase(endpoint, async (client) => {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      const position = await snapshotPosition(client);
      // Not available to a role without pg_monitor-like rights on some servers: the LSN is for the record only.
      const lsn = await client
        .query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')
        .then((r) => r.rows[0].lsn)
        .catch(() => undefined);
      const counted: Array<{ table: string; rows: number }> = [];
      for (const table of tables) {
        const relation = (await client.query<{ relation: string }>('SELECT $1::regclass::text AS relation', [table])).rows[0].relation;
        counted.push({ table, rows: Number((await client.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM ${relation}`)).rows[0].n) });
      }
      await client.query('COMMIT');
      return { ...position, ...(lsn ? { lsn } : {}), tables: counted };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}

/**
 * Facts of the given tables at one snapshot (a read-only repeatable-read transaction), and where
 * that snapshot sits: the transactions it sees. A table that cannot be
 * read is listed with why, and does not stop the others.
 */
export async function snapshotFacts(client: Client, tables: readonly string[], options: ChecksumOptions = {}): Promise<{ facts: DatabaseFacts; unreadable: Array<{ table: string; reason: string }> }> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    for (const setting of DETERMINISTIC_ROW_TEXT) await client.query(setting);
    const facts: DatabaseFacts = { ...(await snapshotPosition(client)), tables: [] };
    const unreadable: Array<{ table: string; reason: string }> = [];
    for (const table of tables) {
      await client.query('SAVEPOINT lifeboat_table');
      try {
        facts.tables.push(await tableChecksum(client, table, options));
        await client.query('RELEASE SAVEPOINT lifeboat_table');
      } catch (err) {
        await client.query('ROLLBACK TO SAVEPOINT lifeboat_table');
        unreadable.push({ table, reason: (err as Error).message });
        if (options.signal?.aborted) throw err;
      }
    }
    await client.query('COMMIT');
    return { facts, unreadable };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Row count and checksum of one table (its own snapshot). */
export async function tableFacts(client: Client, table: string, options: ChecksumOptions = {}): Promise<TableFacts> {
  const { facts, unreadable } = await snapshotFacts(client, [table], options);
  if (unreadable.length) throw new Error(`cannot read ${table}: ${unreadable[0].reason}`);
  return facts.tables[0];
}

/** The facts of a live database (a restore's source), all tables in one snapshot; throws when one cannot be read. */
export async function captureFacts(endpoint: DatabaseEndpoint, tables: readonly string[], options: ChecksumOptions = {}): Promise<DatabaseFacts> {
  return withDatabase(endpoint, async (client) => {
    const { facts, unreadable } = await snapshotFacts(client, tables, options);
    if (unreadable.length) throw new Error(unreadable.map((u) => `${u.table}: ${u.reason}`).join('; '));
    return facts;
  });
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
  const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
  const checks: VerificationCheck[] = [];
  for (const fk of fks.rows) {
    const join = fk.child_cols.map((col, i) => `p.${quote(fk.parent_cols[i])} = c.${quote(col)}`).join(' AND ');
    const notNull = fk.child_cols.map((col) => `c.${quote(col)} IS NOT NULL`).join(' AND ');
    const orphans = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${fk.child} c WHERE ${notNull} AND NOT EXISTS (SELECT 1 FROM ${fk.parent} p WHERE ${join})`,
    );
    const n = Number(orphans.rows[0].n);
    checks.push({ name: `foreign key ${fk.name}`, ok: n === 0, detail: n === 0 ? `${fk.child} -> ${fk.parent}: no orphaned rows` : `${fk.child} -> ${fk.parent}: ${n} orphaned rows` });
  }
  return checks;
}

/**
 * One smoke query: a single statement over the extended protocol (Parse/Bind/Execute, which
 * refuses a second statement), inside a read-only transaction that is always rolled back.
 */
export async function runSmokeQuery(client: Client, sql: string): Promise<number> {
  return (await runReadOnlyQuery(client, sql)).rows;
}

/**
 * A smoke or validation query as runSmokeQuery runs it, with the first column of its first row
 * and how long the statement alone took (milliseconds, one decimal).
 */
export async function runReadOnlyQuery(client: Client, sql: string): Promise<{ rows: number; first: unknown; ms: number }> {
  await client.query('BEGIN READ ONLY');
  try {
    await client.query(`SET LOCAL statement_timeout = ${SMOKE_QUERY_TIMEOUT_MS}`);
    const started = process.hrtime.bigint();
    const result = await client.query({ text: sql, values: [], queryMode: 'extended', rowMode: 'array' } as QueryConfig);
    const ms = Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10;
    const firstRow = result.rows[0] as unknown[] | undefined;
    return { rows: result.rows.length, first: firstRow?.[0], ms };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

function tableCheck(facts: TableFacts, source: TableFacts | undefined): VerificationCheck {
  const name = `table ${facts.table}`;
  if (facts.rows === 0) {
    const also = source ? (source.rows === 0 ? ' (the source had none either)' : ` (the source had ${source.rows})`) : '';
    return { name, ok: false, detail: `empty${also}: a critical table without rows means lost data or a restore point from before it was filled` };
  }
  if (!source) return { name, ok: true, detail: `${facts.rows} rows, checksum ${facts.checksum}` };
  if (source.rows === facts.rows && source.checksum === facts.checksum) return { name, ok: true, detail: `${facts.rows} rows, identical to the source (checksum ${facts.checksum})` };
  const rows = source.rows === facts.rows ? `${facts.rows} rows like the source, but their contents differ` : `${facts.rows} rows where the source had ${source.rows}`;
  return { name, ok: false, detail: `${rows} (checksum ${facts.checksum}, the source's ${source.checksum})` };
}

export async function verifyDatabase(
  endpoint: DatabaseEndpoint,
  plan: VerificationPlan,
  onProgress: (progress: VerificationProgress) => void = () => undefined,
  options: Omit<ChecksumOptions, 'onProgress'> = {},
): Promise<VerificationReport> {
  return withDatabase(endpoint, async (client) => {
    const checks: VerificationCheck[] = [];
    onProgress({ step: 'connected' });
    const role = (await client.query<{ name: string; superuser: boolean }>('SELECT current_user AS name, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user')).rows[0];
    checks.push(
      role.superuser
        ? { name: 'verification role', ok: false, detail: `connected as ${role.name}, a superuser, who could write: give verification a role that can only read (verifyUser, e.g. lifeboat_verify with pg_read_all_data)` }
        : { name: 'verification role', ok: true, detail: `${role.name}, not a superuser` },
    );
    const inRecovery = (await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r;
    checks.push({ name: 'accepts writes', ok: !inRecovery, detail: inRecovery ? 'still in recovery (read-only)' : 'promoted, read-write' });

    const { facts, unreadable } = await snapshotFacts(client, plan.criticalTables, { ...options, onProgress });
    const expected = plan.expected;
    const verdict = expected?.available ? comparability(expected.facts, facts) : undefined;
    const reference = expected?.available && verdict?.comparable ? expected.facts : undefined;
    for (const table of plan.criticalTables) {
      const found = facts.tables.find((f) => f.table === table);
      if (found) checks.push(tableCheck(found, reference?.tables.find((f) => f.table === table)));
      else checks.push({ name: `table ${table}`, ok: false, detail: `cannot read it: ${unreadable.find((u) => u.table === table)?.reason ?? 'unknown reason'}` });
    }
    if (plan.recordedCounts) checks.push(rowCountsCheck(plan.recordedCounts, facts));
    if (expected) {
      if (!expected.available) checks.push({ name: 'compared with the source', ok: true, detail: `not possible: ${expected.reason}` });
      else if (verdict && !verdict.comparable) checks.push({ name: 'compared with the source', ok: true, detail: `not possible: ${verdict.reason}` });
      else {
        const differing = plan.criticalTables.filter((table) => {
          const mine = facts.tables.find((f) => f.table === table);
          const theirs = expected.facts.tables.find((f) => f.table === table);
          return !mine || !theirs || mine.rows !== theirs.rows || mine.checksum !== theirs.checksum;
        });
        checks.push(
          differing.length
            ? { name: 'compared with the source', ok: false, detail: `${differing.join(', ')} differ from the source's facts taken at ${expected.facts.takenAt}` }
            : { name: 'compared with the source', ok: true, detail: `every critical table identical to the source at ${expected.facts.takenAt}` },
        );
      }
    }

    onProgress({ step: 'foreign keys' });
    checks.push(...(await foreignKeyChecks(client)));
    for (const query of plan.smokeQueries) {
      onProgress({ step: `smoke query ${query.name}` });
      if (role.superuser) {
        checks.push({ name: `smoke query ${query.name}`, ok: false, detail: `not run: ${role.name} is a superuser` });
        continue;
      }
      try {
        const n = await runSmokeQuery(client, query.sql);
        checks.push({ name: `smoke query ${query.name}`, ok: n > 0, detail: n > 0 ? `${n} rows` : 'returned no rows' });
      } catch (err) {
        checks.push({ name: `smoke query ${query.name}`, ok: false, detail: (err as Error).message });
      }
    }
    return { ok: checks.every((c) => c.ok), checks, tables: facts.tables };
  });
}
