/**
 * Table-level restore: a few tables as they were at a point in time, copied into a NEW schema of
 * the live database next to production, checked row by row against a temporary restored
 * instance that is removed afterwards. Pure: the CLI, the activities and the workflow share
 * these rules and their sentences.
 */
import { Decision } from './approval';
import { PitrRestoreInput } from './restore';

/**
 * Identifiers lifeboat writes without quoting: lowercase, as PostgreSQL folds an unquoted name.
 * A name needing quotes (capitals, spaces) is refused rather than guessed at; ASCII only, so characters are bytes.
 */
const IDENTIFIER = /^[a-z_][a-z0-9_$]*$/;
const IDENTIFIER_MAX_BYTES = 63;
export const IDENTIFIER_RULE = 'lowercase letters, digits, _ and $, starting with a letter or _, at most 63 characters';

/** A table as asked for (`orders` means `public.orders`), and where its copy goes. */
export interface TableCopyPlan {
  /** Schema-qualified source table, e.g. public.orders. */
  source: string;
  sourceSchema: string;
  table: string;
  /** Schema-qualified copy in the new schema, e.g. recovered_inc42.orders. */
  into: string;
  /** Rows the live table holds now (at validation), when counting was quick enough; shown at the gate. */
  liveRows?: number;
}

export interface TableRestoreInput extends Omit<PitrRestoreInput, 'cutover' | 'purpose'> {
  /** As typed: `orders` or `schema.orders`. */
  tables: string[];
  /** The new schema of the live database the copies go into; must not exist. */
  intoSchema: string;
}

export interface TableCopyResult {
  source: string;
  into: string;
  rows: number;
  /** Bytes of COPY data streamed from the temporary instance. */
  bytes: number;
}

/** One side of a table's check: count and a checksum over every row, computed in SQL. */
export interface TableFingerprint {
  rows: number;
  checksum: string;
}

export interface TableCheck {
  source: string;
  into: string;
  restored: TableFingerprint;
  copy: TableFingerprint;
  ok: boolean;
}

export type TableRestoreOutcome = 'restored' | 'rejected' | 'expired' | 'verification-failed' | 'failed' | 'cancelled';

export interface TableRestorePhases {
  validation: number;
  waitingForApproval: number;
  /** The temporary instance restored and replayed to the point. */
  restore: number;
  copy: number;
  verify: number;
  cleanup: number;
}

export interface TableRestoreReport {
  workflowId: string;
  outcome: TableRestoreOutcome;
  target: string;
  requestedBy: string;
  reason: string;
  incidentId?: string;
  restorePoint: string;
  intoSchema: string;
  tables: TableCopyPlan[];
  /** The temporary instance the rows came from (removed unless kept). */
  temporaryInstance?: string;
  copies?: TableCopyResult[];
  checks?: TableCheck[];
  /** What of each table's structure was copied, and what not. */
  copied: string;
  phases: TableRestorePhases;
  decisions: Decision[];
  cleanup: string[];
  failure?: string;
  undelivered?: string[];
}

/** Said at the gate and in the report: the copy is for reading and merging back, never wired into production. */
export const WHAT_IS_COPIED =
  'columns with their types, NOT NULL, CHECK constraints, defaults, primary keys, unique constraints and indexes; not copied: foreign keys, triggers, ' +
  'defaults that draw from a sequence (the copy must not take numbers from production), grants and row-level security. The schema belongs to the role lifeboat connects as; no other role can read it until granted.';

/** Why `name` cannot be an identifier lifeboat writes, or undefined. */
export function identifierProblem(name: string): string | undefined {
  if (!IDENTIFIER.test(name)) return `use ${IDENTIFIER_RULE}`;
  if (name.length > IDENTIFIER_MAX_BYTES) return `it is longer than ${IDENTIFIER_MAX_BYTES} characters`;
  return undefined;
}

/** Why a schema name cannot be the new schema, or undefined. */
export function intoSchemaProblem(schema: string): string | undefined {
  const shown = JSON.stringify(schema.length > 80 ? `${schema.slice(0, 80)}...` : schema);
  const bad = identifierProblem(schema);
  if (bad) return `--into-schema ${shown} is not a valid schema name: ${bad}.`;
  if (schema.startsWith('pg_') || schema === 'public' || schema === 'information_schema') return `--into-schema ${shown} is a name PostgreSQL or every database already uses: name a new schema, such as recovered_<incident>.`;
  return undefined;
}

/**
 * The tables as typed, each schema-qualified, with where its copy goes; or the sentence saying
 * what is wrong with the list.
 */
export function planTableCopies(tables: string[], intoSchema: string): { ok: true; plan: TableCopyPlan[] } | { ok: false; reason: string } {
  const names = tables.map((t) => t.trim()).filter((t) => t !== '');
  if (!names.length) return { ok: false, reason: '--tables names no table: give them comma-separated, such as --tables orders,order_items.' };
  const plan: TableCopyPlan[] = [];
  for (const name of names) {
    const parts = name.split('.');
    const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
    if (parts.length > 2) return { ok: false, reason: `the table ${shown} has more than one dot: give table or schema.table.` };
    const [sourceSchema, table] = parts.length === 2 ? parts : ['public', parts[0]];
    for (const part of [sourceSchema, table]) {
      const bad = identifierProblem(part);
      if (bad) return { ok: false, reason: `the table ${shown} is not a name lifeboat restores: ${bad}.` };
    }
    const source = `${sourceSchema}.${table}`;
    if (plan.some((p) => p.source === source)) return { ok: false, reason: `--tables names ${source} twice: name each table once.` };
    const clash = plan.find((p) => p.table === table);
    if (clash) return { ok: false, reason: `${clash.source} and ${source} would both become ${intoSchema}.${table}: restore them in separate runs, into separate schemas.` };
    plan.push({ source, sourceSchema, table, into: `${intoSchema}.${table}` });
  }
  return { ok: true, plan };
}

/** The gate's line for one table: exactly what goes where. */
export function describeCopy(p: TableCopyPlan): string {
  return `${p.source} -> ${p.into}${p.liveRows !== undefined ? ` (the live ${p.source} holds ${p.liveRows} rows now)` : ''}`;
}

/** Whether a schema's comment says this run made it (written in the transaction that created it). */
export const SCHEMA_OWNER_PREFIX = 'lifeboat table restore: ';
export function schemaOwnerComment(owner: { workflowId: string; runId: string; restorePoint: string; createdAt: string }): string {
  return `${SCHEMA_OWNER_PREFIX}${JSON.stringify(owner)}`;
}
export function parseSchemaOwner(comment: string | null | undefined): { workflowId: string; runId: string; restorePoint?: string; createdAt?: string } | undefined {
  if (!comment?.startsWith(SCHEMA_OWNER_PREFIX)) return undefined;
  try {
    const parsed = JSON.parse(comment.slice(SCHEMA_OWNER_PREFIX.length)) as { workflowId?: unknown; runId?: unknown; restorePoint?: string; createdAt?: string };
    return typeof parsed.workflowId === 'string' && typeof parsed.runId === 'string' ? { ...parsed, workflowId: parsed.workflowId, runId: parsed.runId } : undefined;
  } catch {
    return undefined;
  }
}
