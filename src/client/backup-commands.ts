/**
 * `lifeboat backup <target>`: takes a verified backup of a database target in both regions and
 * shows its progress until done (exit 0 only when it completed). `lifeboat backups list`: what
 * the catalog says was backed up, verified, or failed.
 */
import { checkDirectoryBackupOptions, directoryBackupCommand, isDirectoryTarget } from './directory-commands';
import { Client, WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import { createPorts } from '../activities/ports';
import { listBackups } from '../activities/backup';
import { findDatabaseTarget, LifeboatConfig, sqliteTargetNamed } from '../config';
import { checkSqliteBackupOptions, sqliteBackupCommand } from './sqlite-commands';
import { isDynamoDbTarget } from '../activities/dynamodb';
import { WorkflowStatus } from '../domain/approval';
import { statusQuery } from '../workflows/messages';
import { BackupListEntry, DatabaseBackupInput, DatabaseBackupKind, DatabaseBackupResult } from '../domain/backup';
import { FilesBackupInput, FilesBackupReport } from '../domain/files-backup';
import { LogicalBackupInput, LogicalBackupReport } from '../domain/logical-backup';
import { RetentionInput, RetentionReport } from '../domain/retention';
import { describeFailure } from '../workflows/failure';
import { UsageError } from './args';
import { endProgress, formatTable, line, printJson, progress } from './output';
import { formatBytes } from '../domain/format';

const KINDS: DatabaseBackupKind[] = ['full', 'diff', 'incr'];

export interface BackupCommandOptions {
  target: string;
  kind?: string;
  json: boolean;
  /** A pg_dump logical backup instead of the engine's physical one. */
  logical?: boolean;
  workflowId?: string;
  requestedBy?: string;
  pollIntervalMs?: number;
  /** How often progress is shown (ms). */
  refreshMs?: number;
}

export function parseBackupKind(kind: string | undefined): DatabaseBackupKind | undefined {
  if (kind === undefined) return undefined;
  if (!KINDS.includes(kind as DatabaseBackupKind)) throw new UsageError(`--kind takes ${KINDS.join(', ')}, not "${kind}".`);
  return kind as DatabaseBackupKind;
}

/** What `lifeboat backup` can refuse before it connects to Temporal (the same rules the command applies). */
export function checkBackupOptions(config: LifeboatConfig, o: Pick<BackupCommandOptions, 'target' | 'kind' | 'logical'>): void {
  if (isDirectoryTarget(config, o.target)) return checkDirectoryBackupOptions(o);
  const sqlite = sqliteTargetNamed(config, o.target);
  if (sqlite) return checkSqliteBackupOptions(sqlite, o);
  const bucket = config.targets.buckets.find((b) => b.name === o.target);
  if (bucket) {
    if (o.logical) throw new UsageError(`${o.target} is a bucket target; --logical applies to database targets.`);
    if (o.kind && o.kind !== 'full' && o.kind !== 'incr') throw new UsageError(`a bucket target's --kind is full or incr, not "${o.kind}".`);
    return;
  }
  findDatabaseTarget(config, o.target);
  if (o.logical && o.kind) throw new UsageError('--kind does not apply to a logical backup (always a full pg_dump).');
  parseBackupKind(o.kind);
}

/** The heartbeat details of the workflow's running activity, when it has any (progress of a wait). */
export async function pendingProgress(client: Client, workflowId: string): Promise<string | undefined> {
  const desc = await client.workflow.getHandle(workflowId).describe();
  for (const activity of desc.raw.pendingActivities ?? []) {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    try {
      // Heartbeats are encrypted like every payload: decode with the client's codecs first.
      const { payloadCodecs, payloadConverter } = client.options.loadedDataConverter;
      let decoded = payload;
      for (const codec of [...payloadCodecs].reverse()) [decoded] = await codec.decode([decoded]);
      const details = payloadConverter.fromPayload<Record<string, unknown>>(decoded);
      if (details && typeof details === 'object') {
        const percent = typeof details.percent === 'number' ? `${details.percent}% ` : '';
        if (typeof details.detail === 'string') return `${percent}${details.detail}`;
        // e.g. { copying: '2026...F', as: 'backup-...-dr' } reads as "copying 2026...F as backup-...-dr".
        return `${percent}${Object.entries(details).filter(([k]) => k !== 'percent').map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ')}`;
      }
    } catch {
      /* details in a form this client cannot read: show the phase only */
    }
  }
  return undefined;
}

/** Shows a workflow's phase and its running activity's heartbeat until it ends (through `show` when given); resolves to its result. */
export async function follow<R>(client: Client, handle: WorkflowHandle, json: boolean, refreshMs = 1000, show?: (text: string) => void): Promise<R> {
  let done = false;
  const result = handle.result().finally(() => {
    done = true;
  }) as Promise<R>;
  result.catch(() => undefined);
  let lastShown = '';
  while (!done) {
    if (!json) {
      try {
        const status = (await handle.query(statusQuery)) as WorkflowStatus;
        const note = status.timeline.at(-1)?.note ?? '';
        const detail = await pendingProgress(client, handle.workflowId).catch(() => undefined);
        const shown = `${status.phase}: ${detail ?? note}`;
        if (show) show(shown);
        else if (process.stdout.isTTY || shown !== lastShown) progress(shown);
        lastShown = shown;
      } catch {
        /* the workflow may not have started its first task yet */
      }
    }
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, refreshMs))]);
  }
  if (!json && !show) endProgress();
  return result;
}

/** The sentence to show: lifeboat's own, below the SDK's generic wrappers (the rule workflows use too). */
export function failureOf(err: unknown): string {
  return describeFailure(err instanceof WorkflowFailedError && err.cause ? err.cause : err);
}

/**
 * `lifeboat backup <target>`: a database target gets a pgBackRest/RDS backup (or with --logical a
 * pg_dump), a bucket target a files backup (--kind full|incr). Exit 0 only when it completed.
 */
export async function backupCommand(config: LifeboatConfig, client: Client, o: BackupCommandOptions): Promise<number> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').toLowerCase();
  const requestedBy = o.requestedBy ?? process.env.LIFEBOAT_USER ?? 'cli';
  const bucket = config.targets.buckets.find((b) => b.name === o.target);
  if (bucket) return filesBackupCommand(config, client, o, stamp);
  if (isDirectoryTarget(config, o.target)) return directoryBackupCommand(config, client, o, stamp);
  if (sqliteTargetNamed(config, o.target)) return sqliteBackupCommand(config, client, { ...o, requestedBy });
  const target = findDatabaseTarget(config, o.target);
  if (o.logical) return logicalBackupCommand(config, client, o, stamp);
  const kind = parseBackupKind(o.kind);
  const workflowId = o.workflowId ?? `backup-${target.name}-${stamp}`;
  const input: DatabaseBackupInput = { target: target.name, requestedBy };
  if (kind) input.kind = kind;
  if (o.pollIntervalMs) input.pollIntervalMs = o.pollIntervalMs;
  const handle = await client.workflow.start('databaseBackup', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `${kind ?? 'full'} backup of ${target.name}`,
    staticDetails: `Requested by ${input.requestedBy} from the lifeboat CLI.`,
  });
  if (!o.json) line(`backup ${workflowId}: ${kind ?? 'full'} backup of ${target.name} (${target.engine}) started`);
  try {
    const r = await follow<DatabaseBackupResult>(client, handle, o.json, o.refreshMs);
    if (o.json) printJson(r);
    else {
      line(`Backup complete: ${r.target} (${r.kind}, ${formatBytes(r.primary.sizeBytes)})`);
      line(`  primary: ${r.primary.handle.backupId} (${r.primary.handle.locator ?? r.primary.handle.location}), verified`);
      line(`  dr:      ${r.dr.handle.backupId} (${r.dr.handle.locator ?? r.dr.handle.location}), verified`);
      line(`  rpo before this backup: ${r.preflight.rpo.detail}`);
      line(`  catalog row ${r.catalogId}, ${r.durationSeconds} s`);
    }
    return 0;
  } catch (err) {
    if (o.json) printJson({ workflowId, ok: false, failure: failureOf(err) });
    else line(`backup FAILED: ${failureOf(err)}`);
    return 1;
  }
}

async function logicalBackupCommand(config: LifeboatConfig, client: Client, o: BackupCommandOptions, stamp: string): Promise<number> {
  if (o.kind) throw new UsageError('--kind does not apply to a logical backup (always a full pg_dump).');
  const workflowId = o.workflowId ?? `logical-backup-${o.target}-${stamp}`;
  const handle = await client.workflow.start('logicalBackup', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [{ target: o.target } satisfies LogicalBackupInput],
    staticSummary: `logical backup (pg_dump) of ${o.target}`,
  });
  if (!o.json) line(`logical backup ${workflowId} of ${o.target} started`);
  try {
    const r = await follow<LogicalBackupReport>(client, handle, o.json, o.refreshMs);
    if (o.json) printJson(r);
    else line(`Logical backup complete: ${r.target}, ${r.primary ? `${formatBytes(r.primary.sizeBytes)} encrypted at ${r.primary.bucket}/${r.primary.key}` : ''}${r.dr ? `, copy in ${r.dr.bucket}` : ''}; catalog row ${r.catalogId}`);
    return r.outcome === 'verified' ? 0 : 1;
  } catch (err) {
    if (o.json) printJson({ workflowId, ok: false, failure: failureOf(err) });
    else line(`logical backup FAILED: ${failureOf(err)}`);
    return 1;
  }
}

async function filesBackupCommand(config: LifeboatConfig, client: Client, o: BackupCommandOptions, stamp: string): Promise<number> {
  if (o.logical) throw new UsageError(`${o.target} is a bucket target; --logical applies to database targets.`);
  if (o.kind && o.kind !== 'full' && o.kind !== 'incr') throw new UsageError(`a bucket target's --kind is full or incr, not "${o.kind}".`);
  const input: FilesBackupInput = { target: o.target };
  if (o.kind) input.mode = o.kind === 'full' ? 'full' : 'incremental';
  const workflowId = o.workflowId ?? `files-backup-${o.target}-${stamp}`;
  const handle = await client.workflow.start('filesBackup', { taskQueue: config.temporal.taskQueue, workflowId, args: [input], staticSummary: `files backup of ${o.target}` });
  if (!o.json) line(`files backup ${workflowId} of ${o.target} started`);
  try {
    const r = await follow<FilesBackupReport>(client, handle, o.json, o.refreshMs);
    if (o.json) printJson(r);
    else line(`Files backup complete: ${r.target} (${r.plan?.mode ?? ''}), ${r.drCopy ? `${r.drCopy.copied} objects copied to DR, ${r.drCopy.skipped} already there` : ''}; catalog row ${r.catalogId}`);
    return r.outcome === 'verified' ? 0 : 1;
  } catch (err) {
    if (o.json) printJson({ workflowId, ok: false, failure: failureOf(err) });
    else line(`files backup FAILED: ${failureOf(err)}`);
    return 1;
  }
}

/** `lifeboat retention [--target] [--dry-run]`: what the policy expires, and (without --dry-run) expiring it. */
export async function retentionCommand(config: LifeboatConfig, client: Client, o: { target?: string; dryRun: boolean; json: boolean }): Promise<number> {
  const workflowId = `retention-${o.dryRun ? 'dry-run-' : ''}${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
  const handle = await client.workflow.start('retention', { taskQueue: config.temporal.taskQueue, workflowId, args: [{ target: o.target, dryRun: o.dryRun } satisfies RetentionInput] });
  try {
    const r = await follow<RetentionReport>(client, handle, o.json);
    if (o.json) printJson(r);
    else {
      line(`retention ${o.dryRun ? '(dry run) ' : ''}as of ${r.now}: keeps ${r.kept.length}, ${o.dryRun ? 'would expire' : 'expires'} ${r.toExpire.length}`);
      for (const item of r.toExpire) line(`  ${o.dryRun ? 'would expire' : 'expire'} ${item.target} ${item.backupType} ${item.engineBackupId}`);
      for (const out of r.outcomes) line(`  ${out.outcome.padEnd(8)} ${out.target} ${out.backupType} ${out.engineBackupId}: ${out.detail}`);
    }
    return r.outcomes.some((x) => x.outcome === 'failed') ? 1 : 0;
  } catch (err) {
    if (o.json) printJson({ workflowId, ok: false, failure: failureOf(err) });
    else line(`retention FAILED: ${failureOf(err)}`);
    return 1;
  }
}

function when(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}

/** "proven 2026-11-30", "restore failed 2026-11-30", or "-" for a backup no drill has tested. */
export function drillCell(drill: BackupListEntry['drill']): string {
  if (!drill) return '-';
  const day = drill.at ? ` ${drill.at.slice(0, 10)}` : '';
  return drill.outcome === 'proven' ? `proven${day}` : `restore failed${day}`;
}

/** `lifeboat backups list` as lines: a header and a row per backup, columns as wide as their content. */
export function backupRows(rows: readonly BackupListEntry[]): string[] {
  return formatTable([
    ['status', 'target', 'kind', 'size', 'completed', 'dr lag', 'primary / dr', 'drill'],
    ...rows.map((r) => [
      r.status,
      r.target,
      r.kind,
      r.sizeBytes !== undefined ? formatBytes(r.sizeBytes) : '-',
      when(r.completedAt),
      r.drLagSeconds !== undefined ? `${r.drLagSeconds} s` : '-',
      `${r.primary ?? '-'} / ${r.dr ?? '-'}${r.failure ? `  (${r.failure})` : ''}`,
      drillCell(r.drill),
    ]),
  ]);
}

export async function backupsListCommand(config: LifeboatConfig, o: { target?: string; json: boolean; limit?: number }): Promise<number> {
  if (o.target && !isDirectoryTarget(config, o.target) && !sqliteTargetNamed(config, o.target) && !isDynamoDbTarget(config, o.target)) findDatabaseTarget(config, o.target);
  const ports = createPorts(config);
  try {
    const rows = await listBackups(ports, { target: o.target, limit: o.limit });
    if (o.json) {
      printJson(rows);
      return 0;
    }
    if (rows.length === 0) {
      line(`no database backups in the catalog${o.target ? ` for ${o.target}` : ''}; take one with \`lifeboat backup <target>\`.`);
      return 0;
    }
    for (const row of backupRows(rows)) line(row);
    return 0;
  } finally {
    await ports.close();
  }
}
