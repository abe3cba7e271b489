/**
 * SQLite targets on the command line: `lifeboat backup <sqlite target> [--wait]` and
 * `lifeboat restore <sqlite target> --backup <id|latest> --into <new path>`. Everything that can
 * be refused from what was typed is refused here, in one sentence (exit 2), before connecting;
 * the workflow checks the rest (the file system where the file lives) before anything is made.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { findSqliteTarget, LifeboatConfig, requesterProblem, SqliteTarget } from '../config';
import { MAX_REASON_CHARS } from '../domain/approval';
import { formatBytes } from '../domain/format';
import { companionFiles, destinationProblem, SqliteBackupInput, SqliteBackupReport, SqliteRestoreInput } from '../domain/sqlite';
import { checkLength, UsageError } from './args';
import { failureOf, follow } from './backup-commands';
import { line, printJson } from './output';
import { CommandContext, identity, printRestoreStarted } from './recovery-commands';
import { waitPastValidation } from './restore-start';

const BACKUP_REF = /^(latest|[0-9]{1,19}|[A-Za-z0-9][A-Za-z0-9._-]{0,199})$/;

const stampNow = () => new Date().toISOString().replace(/[:.]/g, '-').toLowerCase();

/** `lifeboat backup` options a SQLite target refuses. */
export function checkSqliteBackupOptions(target: SqliteTarget, o: { kind?: string; logical?: boolean }): void {
  if (o.logical) throw new UsageError(`${target.name} is a SQLite target; --logical applies to database targets (a SQLite backup is always an online copy of the whole file).`);
  if (o.kind) throw new UsageError(`--kind does not apply to ${target.name}, a SQLite target: its backup is always an online copy of the whole file.`);
}

/** Starts a sqliteBackup and follows it; resolves to its report (rejects when it fails). */
export async function runSqliteBackup(config: LifeboatConfig, client: Client, o: { target: string; workflowId?: string; requestedBy?: string; json: boolean; refreshMs?: number; show?: (text: string) => void }): Promise<{ workflowId: string; report: Promise<SqliteBackupReport> }> {
  const target = findSqliteTarget(config, o.target);
  const workflowId = o.workflowId ?? `sqlite-backup-${target.name}-${stampNow()}`;
  const input: SqliteBackupInput = { target: target.name, ...(o.requestedBy ? { requestedBy: o.requestedBy } : {}) };
  const handle = await client.workflow.start('sqliteBackup', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `SQLite backup of ${target.name}`,
    staticDetails: `Requested by ${o.requestedBy ?? 'cli'} from the lifeboat CLI.`,
  });
  return { workflowId, report: follow<SqliteBackupReport>(client, handle, o.json, o.refreshMs ?? 1000, o.show) };
}

/** `lifeboat backup <sqlite target>`: progress, then the result; exit 0 only when verified in both regions. */
export async function sqliteBackupCommand(config: LifeboatConfig, client: Client, o: { target: string; json: boolean; workflowId?: string; requestedBy?: string; refreshMs?: number }): Promise<number> {
  const { workflowId, report } = await runSqliteBackup(config, client, o);
  if (!o.json) line(`SQLite backup ${workflowId} of ${o.target} started`);
  try {
    const r = await report;
    if (o.json) printJson(r);
    else {
      const p = r.primary!;
      line(`SQLite backup complete: ${r.target}, ${formatBytes(p.databaseBytes)} database (${Object.keys(p.tables).length} tables, integrity_check ${p.integrity}), ${formatBytes(p.sizeBytes)} encrypted at ${p.bucket}/${p.key}${r.dr ? `, copy in ${r.dr.bucket}` : ''}; catalog row ${r.catalogId}`);
    }
    return r.outcome === 'verified' ? 0 : 1;
  } catch (err) {
    if (o.json) printJson({ workflowId, ok: false, failure: failureOf(err) });
    else line(`SQLite backup FAILED: ${failureOf(err)}`);
    return 1;
  }
}

export interface SqliteRestoreOptions {
  target: string;
  backup?: string;
  into?: string;
  fromRegion?: string;
  reason: string;
  as?: string;
  workflowId?: string;
}

/**
 * Everything the CLI can refuse before connecting. The destination is checked on the path
 * (absolute, not the source) and, when the target has no agent (the file is on the workers'
 * host, which the CLI shares in a single-host setup), on this machine too; the workflow checks
 * it again where the file lives before the gate.
 */
export function prepareSqliteRestore(config: LifeboatConfig, o: SqliteRestoreOptions): { input: SqliteRestoreInput; workflowId: string } {
  const target = findSqliteTarget(config, o.target);
  if (o.backup === undefined) throw new UsageError(`restoring ${target.name}, a SQLite target, needs --backup <id|latest>: an id from \`lifeboat backups list --target ${target.name}\`, or latest.`);
  if (!BACKUP_REF.test(o.backup)) throw new UsageError(`--backup takes a backup id or name from \`lifeboat backups list --target ${target.name}\`, or latest, not "${o.backup}".`);
  if (o.into === undefined) throw new UsageError(`restoring ${target.name}, a SQLite target, needs --into <new path>: the new file to restore into (a restore never writes over the source or an existing file).`);
  const problem = destinationProblem(o.into, target.path);
  if (problem) throw new UsageError(problem);
  if (!target.agent) {
    const taken = [o.into, ...companionFiles(o.into)].find((f) => fs.existsSync(f));
    if (taken) throw new UsageError(`--into ${o.into} already exists${taken === o.into ? '' : ` (as ${path.basename(taken)})`}: a SQLite restore only makes a new file, so give a path where nothing is, or move that file away first.`);
    if (!fs.existsSync(path.dirname(o.into))) throw new UsageError(`--into ${o.into} is in ${path.dirname(o.into)}, which does not exist: create it first, or give a path in an existing directory.`);
  }
  if (o.fromRegion !== undefined && o.fromRegion !== 'primary' && o.fromRegion !== 'dr') throw new UsageError(`--from-region takes primary or dr, not "${o.fromRegion}".`);
  if (!o.reason.trim()) throw new UsageError('a restore needs --reason, for the record.');
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  const requestedBy = identity(o.as);
  const unknownRequester = requesterProblem(config, [target.environment], requestedBy);
  if (unknownRequester) throw new UsageError(`${unknownRequester}.`);
  return {
    workflowId: o.workflowId ?? `restore-sqlite-${target.name}-${stampNow()}`,
    input: {
      target: target.name,
      backup: o.backup,
      into: path.resolve(o.into),
      ...(o.fromRegion ? { fromRegion: o.fromRegion as 'primary' | 'dr' } : {}),
      requestedBy,
      reason: o.reason,
    },
  };
}

/** Starts the restore and waits for its validation: a refusal is one sentence, exit 2, with nothing made. */
export async function sqliteRestoreCommand(ctx: CommandContext, prepared: { input: SqliteRestoreInput; workflowId: string }): Promise<number> {
  const { input, workflowId } = prepared;
  const handle = await ctx.client.workflow.start('sqliteRestore', {
    taskQueue: ctx.config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `restore SQLite backup ${input.backup} of ${input.target} into ${input.into}`,
    staticDetails: `Requested by ${input.requestedBy}: ${input.reason}.`,
  });
  // A refusal while the request is checked: one sentence, exit 2, with nothing made.
  const started = await waitPastValidation(handle, { intervalMs: 500 });
  if (started.state === 'ended') {
    printRestoreStarted(ctx, workflowId, started.status);
    return started.exitCode;
  }
  return printRestoreStarted(ctx, workflowId, started.status);
}
