/**
 * What must hold after every fault, checked against the real systems rather than against what
 * lifeboat says about them: Temporal's view of each workflow, pgBackRest's own `info`, the
 * catalog's rows, the restores directory and /proc, PowerDNS answering over DNS, the source.
 */
import fs from 'node:fs';
import path from 'node:path';
import { backupNameFor, drCopyNameFor } from '../../src/domain/backup';
import { PitrRestoreReport } from '../../src/domain/restore';
import { BACKUP_ANNOTATION } from '../../src/engines/pgbackrest/backups';
import { newPgClient } from '../../src/engines/pg-client';
import { localPgBackRest } from '../../src/stack/pgbackrest';
import { localDnsRouter } from '../../src/stack/powerdns';
import { delay } from '../../src/platform/processes';
import { Stack } from '../../src/stack/stack';

export type FlightKind = 'backup' | 'restore' | 'cutover';

/** One workflow a trial started, as Temporal reports it once the trial settled. */
export interface Flight {
  kind: FlightKind;
  workflowId: string;
  /** Temporal's status name: COMPLETED, FAILED, or RUNNING when it never settled. */
  status: string;
  result?: unknown;
  failure?: string;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export const INVARIANTS = ['closed', 'one-backup', 'no-orphans', 'dns', 'source'] as const;

export const APP_TABLES = ['customers', 'products', 'orders', 'order_items'] as const;

export interface SourceFacts {
  systemId: string;
  dataDir: string;
  startedAt: string;
  counts: Record<string, number>;
}

export async function sourceFacts(stack: Stack): Promise<SourceFacts> {
  return stack.primary.withClient(stack.ctx.settings.postgres.appDatabase, async (c) => {
    const row = (
      await c.query<{ system_id: string; data_dir: string; started: string }>(
        "SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_id, current_setting('data_directory') AS data_dir, pg_postmaster_start_time()::text AS started",
      )
    ).rows[0];
    const counts: Record<string, number> = {};
    for (const table of APP_TABLES) counts[table] = Number((await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows[0].n);
    return { systemId: row.system_id, dataDir: row.data_dir, startedAt: row.started, counts };
  });
}

/** Names under the restores directory: restored clusters, their records, claims of ports and starts. */
export function restoresListing(stack: Stack): string[] {
  const dir = stack.ctx.paths.restoresDir;
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (name === 'sockets') continue;
    if (name === 'ports') {
      for (const port of fs.readdirSync(path.join(dir, 'ports'))) out.push(`ports/${port}=${fs.readFileSync(path.join(dir, 'ports', port), 'utf8').trim()}`);
      continue;
    }
    out.push(name);
  }
  return out.sort();
}

/** The instance name a restores-directory entry belongs to (`x.json`, `x.log`, `ports/55440=x` -> x). */
export function instanceOfEntry(entry: string): string {
  if (entry.startsWith('ports/')) return entry.slice(entry.indexOf('=') + 1);
  return entry.replace(/\.(json|log|starting|restore\.pid|restore\.sh|tablespaces)$/, '');
}

/** Command lines of live processes that mention `needle` (this data directory only, never another helper's). */
export function processesMentioning(needle: string): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmdline.includes(needle)) out.push({ pid: Number(entry), cmdline });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

interface BackupSetWithAnnotation {
  label: string;
  annotation?: Record<string, string>;
  database: { 'repo-key': number };
}

/** `pgbackrest info` of one repository; retried, since a region that just came back can answer slowly. */
async function setsIn(stack: Stack, repo: number): Promise<BackupSetWithAnnotation[]> {
  const cli = localPgBackRest(stack.ctx);
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const info = await cli.info(repo);
      return ((info?.backup ?? []) as unknown as BackupSetWithAnnotation[]).filter((b) => b.database['repo-key'] === repo);
    } catch (err) {
      last = err;
      await delay(3000);
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

export function restoreReport(flight: Flight): PitrRestoreReport | undefined {
  return flight.status === 'COMPLETED' ? (flight.result as PitrRestoreReport) : undefined;
}

/** Instances a completed restore of this trial owns (still there until the harness removes them). */
export function ownedInstances(flights: Flight[]): Map<string, { host: string; port: number } | undefined> {
  const owned = new Map<string, { host: string; port: number } | undefined>();
  for (const f of flights) {
    const report = restoreReport(f);
    if (report?.destination) owned.set(report.destination.instanceId, report.destination.endpoint);
  }
  return owned;
}

export interface CheckContext {
  stack: Stack;
  flights: Flight[];
  baseline: SourceFacts;
  /** Entries of the restores directory that were there before the harness started: not ours to judge. */
  preexisting: Set<string>;
}

export async function checkInvariants(ctx: CheckContext): Promise<Check[]> {
  const checks: Check[] = [];
  for (const [name, fn] of [
    ['closed', checkClosed],
    ['one-backup', checkOneBackup],
    ['no-orphans', checkNoOrphans],
    ['dns', checkDns],
    ['source', checkSource],
  ] as const) {
    try {
      checks.push({ name, ...(await fn(ctx)) });
    } catch (err) {
      checks.push({ name, ok: false, detail: `the check itself failed: ${(err as Error).message}` });
    }
  }
  return checks;
}

async function catalogQuery<R extends object>(stack: Stack, sql: string, params: unknown[]): Promise<R[]> {
  return stack.catalog.withClient(stack.ctx.settings.postgres.catalogDatabase, async (c) => (await c.query<R>(sql, params)).rows);
}

/** Every workflow completed or failed, and a failure is on record with its reason (and nothing left to clean). */
async function checkClosed({ stack, flights }: CheckContext): Promise<Omit<Check, 'name'>> {
  const problems: string[] = [];
  const seen: string[] = [];
  for (const f of flights) {
    if (f.status !== 'COMPLETED' && f.status !== 'FAILED') {
      problems.push(`${f.workflowId} is ${f.status} after the bounded wait${f.failure ? `, ${f.failure}` : ''}`);
      continue;
    }
    seen.push(`${f.kind} ${f.status.toLowerCase()}`);
    if (f.kind === 'backup') {
      const rows = await catalogQuery<{ status: string; failure: string | null }>(stack, 'SELECT status, failure FROM backups WHERE workflow_id = $1', [f.workflowId]);
      const want = f.status === 'COMPLETED' ? 'verified' : 'failed';
      if (rows.length !== 1 || rows[0].status !== want) problems.push(`${f.workflowId} ${f.status.toLowerCase()} but its catalog rows say ${JSON.stringify(rows.map((r) => r.status))}, not ["${want}"]`);
      else if (want === 'failed' && !rows[0].failure) problems.push(`${f.workflowId} failed without a reason in the catalog`);
    } else {
      const rows = await catalogQuery<{ outcome: string; report: PitrRestoreReport }>(stack, 'SELECT outcome, report FROM restores WHERE workflow_id = $1', [f.workflowId]);
      const completedOutcomes = f.kind === 'cutover' ? ['restored-and-cut-over'] : ['restored'];
      if (rows.length !== 1) problems.push(`${f.workflowId} has ${rows.length} rows in the catalog's restores`);
      else if (f.status === 'COMPLETED' && !completedOutcomes.includes(rows[0].outcome)) problems.push(`${f.workflowId} completed but the catalog says ${rows[0].outcome}`);
      else if (f.status === 'FAILED' && !['failed', 'verification-failed', 'cancelled'].includes(rows[0].outcome)) problems.push(`${f.workflowId} failed but the catalog says ${rows[0].outcome}`);
    }
  }
  return problems.length ? { ok: false, detail: problems.join('; ') } : { ok: true, detail: seen.join(', ') || 'no workflow' };
}

/** Exactly one pgBackRest set per backup workflow in each repository (found by its annotation), one catalog row. */
async function checkOneBackup({ stack, flights }: CheckContext): Promise<Omit<Check, 'name'>> {
  const backups = flights.filter((f) => f.kind === 'backup');
  if (backups.length === 0) return { ok: true, detail: 'no backup workflow in this trial' };
  const [repo1, repo2] = [await setsIn(stack, 1), await setsIn(stack, 2)];
  const problems: string[] = [];
  const seen: string[] = [];
  for (const f of backups) {
    const name = backupNameFor(f.workflowId);
    const inPrimary = repo1.filter((b) => b.annotation?.[BACKUP_ANNOTATION] === name);
    const inDr = repo2.filter((b) => b.annotation?.[BACKUP_ANNOTATION] === drCopyNameFor(name));
    const rows = await catalogQuery<{ n: string }>(stack, 'SELECT count(*)::text AS n FROM backups WHERE workflow_id = $1', [f.workflowId]);
    const catalogRows = Number(rows[0].n);
    const completed = f.status === 'COMPLETED';
    // A failed backup may have stopped before either set existed, never after making two.
    const okCount = (n: number) => (completed ? n === 1 : n <= 1);
    if (!okCount(inPrimary.length)) problems.push(`${name}: ${inPrimary.length} sets in repo1 (${inPrimary.map((b) => b.label).join(', ')})`);
    if (!okCount(inDr.length)) problems.push(`${name}: ${inDr.length} sets in repo2 (${inDr.map((b) => b.label).join(', ')})`);
    if (catalogRows !== 1) problems.push(`${name}: ${catalogRows} catalog rows`);
    seen.push(`${name}: repo1 ${inPrimary.length}, repo2 ${inDr.length}, catalog ${catalogRows}`);
  }
  return problems.length ? { ok: false, detail: problems.join('; ') } : { ok: true, detail: seen.join('; ') };
}

/** Nothing restored, claimed or running under the restores directory that no completed workflow owns. */
async function checkNoOrphans({ stack, flights, preexisting }: CheckContext): Promise<Omit<Check, 'name'>> {
  const owned = ownedInstances(flights);
  const restoresDir = stack.ctx.paths.restoresDir;
  const problems: string[] = [];
  for (const entry of restoresListing(stack)) {
    if (preexisting.has(entry)) continue;
    const instance = instanceOfEntry(entry);
    if (entry.startsWith('.wal-')) problems.push(`temporary directory ${entry} left behind`);
    else if (entry.endsWith('.starting')) problems.push(`start claim ${entry} left behind with no workflow running`);
    else if (!owned.has(instance)) problems.push(`${entry} belongs to no completed restore`);
  }
  for (const p of processesMentioning(`${restoresDir}/`)) {
    const match = p.cmdline.slice(p.cmdline.indexOf(`${restoresDir}/`) + restoresDir.length + 1).match(/^[^/\s]+/);
    const instance = match ? instanceOfEntry(match[0]) : '?';
    if (!owned.has(instance) && ![...preexisting].some((e) => instanceOfEntry(e) === instance)) problems.push(`process ${p.pid} (${p.cmdline.slice(0, 120)}) belongs to no completed restore`);
  }
  // A detached pgBackRest backup still running for a workflow that has closed is an orphan too.
  for (const f of flights.filter((x) => x.kind === 'backup')) {
    const name = backupNameFor(f.workflowId);
    for (const p of processesMentioning(`--annotation=${BACKUP_ANNOTATION}=${name}`)) problems.push(`pgBackRest process ${p.pid} still runs for the closed workflow ${f.workflowId}`);
  }
  const detail = owned.size ? `owned by completed restores: ${[...owned.keys()].join(', ')}` : 'nothing under the restores directory';
  return problems.length ? { ok: false, detail: problems.join('; ') } : { ok: true, detail };
}

/** The application's name resolves through PowerDNS to the instance that should serve it, and that instance answers. */
async function checkDns({ stack, flights }: CheckContext): Promise<Omit<Check, 'name'>> {
  const s = stack.ctx.settings;
  const cutOver = flights.map(restoreReport).find((r) => r?.cutover?.verifiedThroughDns);
  const expected = cutOver?.destination?.endpoint ?? { host: s.host, port: s.postgres.primaryPort };
  const served = await localDnsRouter(s).currentTarget(s.dns.appDbName);
  if (!served) return { ok: false, detail: `${s.dns.appDbName} does not resolve` };
  if (served.port === undefined) return { ok: false, detail: `${s.dns.appDbName} -> ${served.host} has no SRV port` };
  const answer = await serverAnswer({ host: served.host, port: served.port, database: s.postgres.appDatabase, user: s.postgres.superuser });
  const where = `${s.dns.appDbName} -> ${served.host}:${served.port}`;
  if (!answer.ok) return { ok: false, detail: `${where}, which does not serve: ${answer.detail}` };
  if (served.host !== expected.host || served.port !== expected.port) {
    return { ok: false, detail: `${where} (serving) but it should lead to ${cutOver ? 'the cut-over instance' : 'the primary'} ${expected.host}:${expected.port}` };
  }
  return { ok: true, detail: `${where} serves (${cutOver ? 'the cut-over instance' : 'the primary'})` };
}

async function serverAnswer(conn: { host: string; port: number; database: string; user: string }): Promise<{ ok: boolean; detail: string }> {
  const client = newPgClient({ ...conn, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return { ok: true, detail: 'answers' };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Same cluster (system identifier, data directory, never restarted), serving, and no application rows lost. */
async function checkSource({ stack, baseline }: CheckContext): Promise<Omit<Check, 'name'>> {
  const now = await sourceFacts(stack);
  const problems: string[] = [];
  if (now.systemId !== baseline.systemId) problems.push(`system identifier ${now.systemId}, was ${baseline.systemId}`);
  if (now.dataDir !== baseline.dataDir) problems.push(`data directory ${now.dataDir}, was ${baseline.dataDir}`);
  if (!fs.existsSync(path.join(baseline.dataDir, 'PG_VERSION'))) problems.push(`${baseline.dataDir} has no PG_VERSION any more`);
  if (now.startedAt !== baseline.startedAt) problems.push(`restarted at ${now.startedAt} (was up since ${baseline.startedAt})`);
  for (const table of APP_TABLES) {
    if (now.counts[table] < baseline.counts[table]) problems.push(`${table} has ${now.counts[table]} rows, had ${baseline.counts[table]}`);
  }
  const counts = APP_TABLES.map((t) => `${t} ${now.counts[t]}`).join(', ');
  return problems.length ? { ok: false, detail: problems.join('; ') } : { ok: true, detail: `system id ${now.systemId}, serving, ${counts}` };
}
