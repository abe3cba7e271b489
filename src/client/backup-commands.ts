/**
 * `lifeboat backup <target>`: takes a verified backup of a database target in both regions and
 * shows its progress until done (exit 0 only when it completed). `lifeboat backups list`: what
 * the catalog says was backed up, verified, or failed.
 */
import { Client, WorkflowFailedError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { createPorts } from '../activities/ports';
import { listBackups } from '../activities/backup';
import { findDatabaseTarget, LifeboatConfig } from '../config';
import { statusQuery, WorkflowStatus } from '../domain/approval';
import { DatabaseBackupInput, DatabaseBackupKind, DatabaseBackupResult, formatBytes } from '../domain/backup';
import { UsageError } from './args';
import { endProgress, line, printJson, progress, rootCause } from './output';

const KINDS: DatabaseBackupKind[] = ['full', 'diff', 'incr'];

export interface BackupCommandOptions {
  target: string;
  kind?: string;
  json: boolean;
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

/** The heartbeat details of the workflow's running activity, when it has any (progress of a wait). */
async function pendingProgress(client: Client, workflowId: string): Promise<string | undefined> {
  const desc = await client.workflow.getHandle(workflowId).describe();
  for (const activity of desc.raw.pendingActivities ?? []) {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    try {
      const details = defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload);
      if (details && typeof details === 'object') {
        const percent = typeof details.percent === 'number' ? `${details.percent}% ` : '';
        if (typeof details.detail === 'string') return `${percent}${details.detail}`;
        return `${percent}${JSON.stringify(details)}`;
      }
    } catch {
      /* details in a form this client cannot read: show the phase only */
    }
  }
  return undefined;
}

export async function backupCommand(config: LifeboatConfig, client: Client, o: BackupCommandOptions): Promise<number> {
  const target = findDatabaseTarget(config, o.target);
  const kind = parseBackupKind(o.kind);
  const workflowId = o.workflowId ?? `backup-${target.name}-${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
  const input: DatabaseBackupInput = { target: target.name, requestedBy: o.requestedBy ?? process.env.LIFEBOAT_USER ?? 'cli' };
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

  let done = false;
  const result = handle.result().finally(() => {
    done = true;
  }) as Promise<DatabaseBackupResult>;
  result.catch(() => undefined);
  let lastShown = '';
  while (!done) {
    if (!o.json) {
      try {
        const status = (await handle.query(statusQuery)) as WorkflowStatus;
        const note = status.timeline.at(-1)?.note ?? '';
        const detail = await pendingProgress(client, workflowId).catch(() => undefined);
        const shown = `${status.phase}: ${detail ?? note}`;
        if (process.stdout.isTTY || shown !== lastShown) progress(shown);
        lastShown = shown;
      } catch {
        /* the workflow may not have started its first task yet */
      }
    }
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, o.refreshMs ?? 1000))]);
  }
  if (!o.json) endProgress();
  try {
    const r = await result;
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
    const message = err instanceof WorkflowFailedError ? rootCause(err.cause ?? err) : rootCause(err);
    const top = err instanceof WorkflowFailedError && err.cause ? err.cause.message : message;
    if (o.json) printJson({ workflowId, ok: false, failure: top });
    else line(`backup FAILED: ${top}`);
    return 1;
  }
}

function when(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}

export async function backupsListCommand(config: LifeboatConfig, o: { target?: string; json: boolean; limit?: number }): Promise<number> {
  if (o.target) findDatabaseTarget(config, o.target);
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
    line(['status'.padEnd(9), 'target'.padEnd(10), 'kind'.padEnd(5), 'size'.padEnd(10), 'completed'.padEnd(21), 'primary / dr'].join(' '));
    for (const r of rows) {
      line(
        [
          r.status.padEnd(9),
          r.target.padEnd(10),
          r.kind.padEnd(5),
          (r.sizeBytes !== undefined ? formatBytes(r.sizeBytes) : '-').padEnd(10),
          when(r.completedAt).padEnd(21),
          `${r.primary ?? '-'} / ${r.dr ?? '-'}${r.failure ? `  (${r.failure})` : ''}`,
        ].join(' '),
      );
    }
    return 0;
  } finally {
    await ports.close();
  }
}
