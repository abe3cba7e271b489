/**
 * PostgreSQL side of a table-level restore: reads a table's structure on the restored instance,
 * recreates it in a NEW schema of the live database, streams the rows across (COPY TO STDOUT
 * piped into COPY FROM STDIN, binary), and fingerprints both sides in SQL.
 *
 * The whole copy is one transaction on the live database: the schema, its ownership comment,
 * the tables, their rows, keys and indexes commit together or not at all, so a worker killed or
 * an activity cancelled mid-copy leaves no half-made schema (the server rolls back when the
 * connection goes).
 */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { LifeboatError } from '../domain/errors';
import { parseSchemaOwner, schemaOwnerComment, TableCopyPlan, TableCopyResult, TableFingerprint } from '../domain/table-restore';
import { newPgClient, PgClientConfig } from './pg-client';

export type Conn = PgClientConfig;

/** Always quoted: names were checked as plain lowercase identifiers, and quoting keeps keywords (order, user) working. */
const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
const qualified = (schema: string, table: string) => `${q(schema)}.${q(table)}`;

async function withClient<T>(conn: Conn, fn: (c: Client) => Promise<T>, signal?: AbortSignal): Promise<T> {
  const client = newPgClient({ ...conn, connectionTimeoutMillis: 10000 });
  await client.connect();
  // A cancel closes the socket: the server then aborts whatever this session was doing (and rolls back its transaction).
  const abort = () => (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  signal?.addEventListener('abort', abort, { once: true });
  try {
    if (signal?.aborted) throw signal.reason;
    return await fn(client);
  } finally {
    signal?.removeEventListener('abort', abort);
    await client.end().catch(() => undefined);
  }
}

/** Session settings under which a row's text is the same on both servers whatever their defaults. */
const CANONICAL_TEXT = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'";

export interface LiveTableFacts {
  /** Per table: 'table', 'missing' or what it is instead (a view...). */
  kinds: Record<string, 'table' | 'missing' | string>;
  liveRows: Record<string, number | undefined>;
  /** The schema's comment when it exists already (null: exists without comment). */
  schemaExists: boolean;
  schemaOwner?: { workflowId: string; runId: string };
}

const KIND_NAMES: Record<string, string> = { v: 'a view', m: 'a materialized view', f: 'a foreign table', S: 'a sequence', i: 'an index', c: 'a composite type', I: 'a partitioned index' };

async function relkindOf(c: Client, schema: string, table: string): Promise<string | undefined> {
  const rows = (await c.query<{ relkind: string }>('SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2', [schema, table])).rows;
  return rows[0]?.relkind;
}

async function schemaFacts(c: Client, schema: string): Promise<{ exists: boolean; owner?: { workflowId: string; runId: string } }> {
  const rows = (await c.query<{ comment: string | null }>("SELECT obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace WHERE nspname = $1", [schema])).rows;
  if (!rows.length) return { exists: false };
  return { exists: true, owner: parseSchemaOwner(rows[0].comment) };
}

/** What validation needs from the live database: do the tables exist, is the schema new, how many rows the tables hold now. */
export async function inspectLiveTables(conn: Conn, plan: TableCopyPlan[], intoSchema: string, countTimeoutMs = 5000): Promise<LiveTableFacts> {
  return withClient(conn, async (c) => {
    const kinds: LiveTableFacts['kinds'] = {};
    const liveRows: LiveTableFacts['liveRows'] = {};
    for (const p of plan) {
      const kind = await relkindOf(c, p.sourceSchema, p.table);
      kinds[p.source] = kind === undefined ? 'missing' : kind === 'r' || kind === 'p' ? 'table' : KIND_NAMES[kind] ?? `a relation of kind ${kind}`;
      if (kinds[p.source] !== 'table') continue;
      // Shown at the gate when quick: a count that would take long is left out, not waited for.
      await c.query(`SET statement_timeout = ${Math.max(1, Math.round(countTimeoutMs))}`);
      liveRows[p.source] = await c
        .query<{ n: string }>(`SELECT count(*) AS n FROM ${qualified(p.sourceSchema, p.table)}`)
        .then((r) => Number(r.rows[0].n))
        .catch(() => undefined);
      await c.query('SET statement_timeout = 0');
    }
    const schema = await schemaFacts(c, intoSchema);
    return { kinds, liveRows, schemaExists: schema.exists, schemaOwner: schema.owner };
  });
}

interface Column {
  name: string;
  type: string;
  notNull: boolean;
  default: string | null;
  collation: string | null;
}
interface Structure {
  relkind: string;
  /** The table's name as pg_get_indexdef writes it (search_path pg_catalog: schema-qualified). */
  regclass: string;
  columns: Column[];
  checks: Array<{ name: string; def: string }>;
  keys: Array<{ name: string; def: string }>;
  indexes: string[];
}

/** A table's structure on the restored instance, written so it reads the same in another database (every name qualified). */
async function readStructure(c: Client, p: TableCopyPlan): Promise<Structure> {
  await c.query('SET search_path = pg_catalog');
  const relkind = await relkindOf(c, p.sourceSchema, p.table);
  if (relkind !== 'r' && relkind !== 'p') {
    throw new LifeboatError(`${p.source} is not a table in the restored instance (it did not exist at the restore point, or was something else then): restore it without this table, or pick another --to.`, 'TABLE_NOT_AT_POINT', true);
  }
  const rel = qualified(p.sourceSchema, p.table);
  const regclass = (await c.query<{ r: string }>(`SELECT '${rel.replace(/'/g, "''")}'::regclass::text AS r`)).rows[0].r;
  const columns = (
    await c.query<Column>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull",
              CASE WHEN a.attgenerated = '' AND a.attidentity = '' THEN pg_get_expr(d.adbin, d.adrelid) END AS default,
              CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation
         FROM pg_attribute a
         JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         LEFT JOIN pg_collation co ON co.oid = a.attcollation
         LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
        WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum`,
      [regclass],
    )
  ).rows;
  const constraints = (await c.query<{ name: string; type: string; def: string }>(`SELECT conname AS name, contype AS type, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN ('c', 'p', 'u', 'x') ORDER BY conname`, [regclass])).rows;
  const indexes = (
    await c.query<{ def: string }>(
      `SELECT pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
        WHERE i.indrelid = $1::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = i.indrelid AND k.conindid = i.indexrelid)
        ORDER BY i.indexrelid`,
      [regclass],
    )
  ).rows.map((r) => r.def);
  await c.query('RESET search_path');
  return {
    relkind,
    regclass,
    columns,
    checks: constraints.filter((k) => k.type === 'c').map(({ name, def }) => ({ name, def })),
    keys: constraints.filter((k) => k.type !== 'c').map(({ name, def }) => ({ name, def })),
    indexes,
  };
}

/** CREATE TABLE for the copy: columns, NOT NULL, CHECK and defaults; a default that draws from a sequence is left out (the copy must not take production's numbers). */
function createTableSql(into: string, s: Structure): string {
  const columns = s.columns.map((col) => {
    const parts = [q(col.name), col.type];
    if (col.collation) parts.push(`COLLATE ${col.collation}`);
    if (col.default !== null && !/\bnextval\(/i.test(col.default)) parts.push(`DEFAULT ${col.default}`);
    if (col.notNull) parts.push('NOT NULL');
    return parts.join(' ');
  });
  const checks = s.checks.map((k) => `CONSTRAINT ${q(k.name)} ${k.def}`);
  return `CREATE TABLE ${into} (${[...columns, ...checks].join(', ')})`;
}

/** Keys and indexes, built after the rows are in (faster than maintaining them row by row). */
function afterDataSql(into: string, s: Structure): string[] {
  const keys = s.keys.map((k) => `ALTER TABLE ${into} ADD CONSTRAINT ${q(k.name)} ${k.def}`);
  const marker = ` ON ${s.regclass} USING `;
  const onlyMarker = ` ON ONLY ${s.regclass} USING `;
  const indexes = s.indexes.map((def) => {
    const at = def.indexOf(marker) >= 0 ? def.indexOf(marker) : def.indexOf(onlyMarker);
    const used = def.indexOf(marker) >= 0 ? marker : onlyMarker;
    if (at < 0) throw new LifeboatError(`an index of ${s.regclass} reads in a form lifeboat does not rewrite (${def}); restore without that table, or copy it by hand.`, 'UNSUPPORTED_INDEX', true);
    return `${def.slice(0, at)} ON ${into} USING ${def.slice(at + used.length)}`;
  });
  return [...keys, ...indexes];
}

/** Where a copy's time goes, per table: reading and creating the structure, the rows, keys and indexes, the commit. */
export type CopyPhase = 'structure' | 'data' | 'indexes' | 'commit';

/**
 * Memory for each key and index build of the copy, in kB (256 MiB), when the server's own
 * maintenance_work_mem is lower: a build whose sort fits in memory does not spill to disk. Only
 * for this transaction (SET LOCAL); parallel workers of one build share it.
 */
const BUILD_MEMORY_KB = 256 * 1024;

export interface CopyProgress {
  table?: string;
  rows: number;
  bytes: number;
}

/**
 * Copies the planned tables from the restored instance into the new schema, in one transaction
 * of the live database. A schema this run already committed (an activity retried after its
 * commit) is adopted as it is; one anybody else made is refused.
 */
export async function copyTablesIntoNewSchema(opts: {
  restored: Conn;
  live: Conn;
  plan: TableCopyPlan[];
  intoSchema: string;
  owner: { workflowId: string; runId: string; restorePoint: string; createdAt: string };
  signal?: AbortSignal;
  onProgress?: (p: CopyProgress) => void;
  /** Called as each phase ends, with its milliseconds (per table for data and indexes). */
  onPhase?: (phase: CopyPhase, ms: number, table?: string) => void;
}): Promise<TableCopyResult[]> {
  const { plan, intoSchema, owner, signal } = opts;
  const progress: CopyProgress = { rows: 0, bytes: 0 };
  let mark = Date.now();
  const phaseEnds = (phase: CopyPhase, table?: string) => {
    const now = Date.now();
    opts.onPhase?.(phase, now - mark, table);
    mark = now;
  };
  return withClient(
    opts.live,
    async (live) => {
      const existing = await schemaFacts(live, intoSchema);
      if (existing.exists) {
        if (existing.owner?.workflowId === owner.workflowId && existing.owner.runId === owner.runId) {
          // Committed by an earlier attempt of this run: complete, since it committed in one transaction.
          const results: TableCopyResult[] = [];
          for (const p of plan) results.push({ source: p.source, into: p.into, rows: Number((await live.query<{ n: string }>(`SELECT count(*) AS n FROM ${qualified(intoSchema, p.table)}`)).rows[0].n), bytes: 0 });
          return results;
        }
        throw new LifeboatError(`the schema ${intoSchema} exists in the live database and this run did not create it; lifeboat never writes into a schema it did not create: choose another --into-schema.`, 'SCHEMA_EXISTS', true);
      }
      return withClient(
        opts.restored,
        async (restored) => {
          const structures = new Map<string, Structure>();
          for (const p of plan) structures.set(p.source, await readStructure(restored, p));
          const results: TableCopyResult[] = [];
          await live.query('BEGIN');
          await live.query('SET LOCAL statement_timeout = 0');
          const buildMemory = Number((await live.query<{ kb: string }>("SELECT setting AS kb FROM pg_settings WHERE name = 'maintenance_work_mem'")).rows[0]?.kb ?? 0);
          if (buildMemory < BUILD_MEMORY_KB) await live.query(`SET LOCAL maintenance_work_mem = '${BUILD_MEMORY_KB}kB'`);
          await live.query(`CREATE SCHEMA ${q(intoSchema)}`);
          await live.query(`COMMENT ON SCHEMA ${q(intoSchema)} IS '${schemaOwnerComment(owner).replace(/'/g, "''")}'`);
          for (const p of plan) {
            const s = structures.get(p.source)!;
            const into = qualified(intoSchema, p.table);
            await live.query(createTableSql(into, s));
            phaseEnds('structure', p.source);
            progress.table = p.source;
            let bytes = 0;
            const counted = new Transform({
              transform(chunk: Buffer, _enc, done) {
                bytes += chunk.length;
                progress.bytes += chunk.length;
                done(null, chunk);
              },
            });
            // The query form: COPY <table> TO leaves generated columns out, the copy holds their values as plain columns.
            // ONLY: the table's own rows, not inheritance children's, as the fingerprint reads them; a partitioned table is read whole.
            const source = `${s.relkind === 'p' ? '' : 'ONLY '}${qualified(p.sourceSchema, p.table)}`;
            const reading = restored.query(copyTo(`COPY (SELECT * FROM ${source}) TO STDOUT (FORMAT binary)`));
            // FREEZE: the table was created in this transaction, so its rows can be written frozen
            // and all-visible; the checksum's read then sets no hint bits (no second write of every page).
            const writing = live.query(copyFrom(`COPY ${into} FROM STDIN (FORMAT binary, FREEZE)`));
            await pipeline(reading, counted, writing);
            const rows = writing.rowCount ?? 0;
            progress.rows += rows;
            opts.onProgress?.({ ...progress });
            phaseEnds('data', p.source);
            for (const sql of afterDataSql(into, s)) await live.query(sql);
            phaseEnds('indexes', p.source);
            results.push({ source: p.source, into: p.into, rows, bytes });
          }
          await live.query('COMMIT');
          phaseEnds('commit');
          return results;
        },
        signal,
      );
    },
    signal,
  );
}

/**
 * Count and checksum of a table's rows, in SQL: the md5 of each row's text, its two halves
 * summed as numbers. Order does not matter (no sort of a large table), a changed, missing or
 * extra row changes the sums. `only`: the table's own rows, as COPY <table> reads them.
 */
export async function fingerprintTable(conn: Conn, schema: string, table: string, signal?: AbortSignal): Promise<TableFingerprint> {
  return withClient(
    conn,
    async (c) => {
      await c.query(CANONICAL_TEXT);
      const kind = await relkindOf(c, schema, table);
      if (kind !== 'r' && kind !== 'p') throw new LifeboatError(`${schema}.${table} is not there to check.`, 'TABLE_MISSING', true);
      const rel = `${kind === 'r' ? 'ONLY ' : ''}${qualified(schema, table)}`;
      const row = (
        await c.query<{ rows: string; a: string; b: string }>(
          `SELECT count(*) AS rows, coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)::text AS a, coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)::text AS b
             FROM (SELECT md5(t::text) AS h FROM ${rel} AS t) rows`,
        )
      ).rows[0];
      return { rows: Number(row.rows), checksum: `${row.a}:${row.b}` };
    },
    signal,
  );
}

/**
 * Compensation: drops the schema only when its comment names this run as its maker (written in
 * the transaction that created it), and only with what this run put in it: its tables by name,
 * then the schema without CASCADE, so nothing anybody added or built on it goes with it.
 * Missing is success; anything else is left and said so.
 */
export async function dropSchemaMadeBy(conn: Conn, schema: string, tables: string[], by: { workflowId: string; runId: string }): Promise<string> {
  return withClient(conn, async (c) => {
    const facts = await schemaFacts(c, schema);
    if (!facts.exists) return `nothing to drop: the schema ${schema} was never created`;
    if (!facts.owner || facts.owner.workflowId !== by.workflowId || facts.owner.runId !== by.runId) {
      return `left the schema ${schema} untouched (this run did not create it)`;
    }
    try {
      await c.query('BEGIN');
      if (tables.length) await c.query(`DROP TABLE IF EXISTS ${tables.map((t) => qualified(schema, t)).join(', ')}`);
      await c.query(`DROP SCHEMA ${q(schema)}`);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      // 2BP01: something else depends on it or was put in it; that is not this run's to remove.
      if ((err as { code?: string }).code === '2BP01') return `left the schema ${schema} in place: ${(err as Error).message}; drop it by hand once that is resolved`;
      throw err;
    }
    return `dropped the schema ${schema} this run had created`;
  });
}
