/**
 * `lifeboat backup <directory target>` (the directoryBackup workflow) and
 * `lifeboat restore <directory target> --backup <id|latest> [--into <new dir> | --in-place]`
 * (directoryRestore). What was typed is checked here before connecting; what needs the backup or
 * the host (a non-empty destination, an unknown backup) the workflow's validation refuses before
 * it writes anything, and the command shows that sentence and exits 2.
 */
import path from 'node:path';
import { Client } from '@temporalio/client';
import { findDirectoryTarget, LifeboatConfig, requesterProblem } from '../config';
import { MAX_REASON_CHARS } from '../domain/approval';
import { DirectoryBackupInput, DirectoryBackupReport, DirectoryRestoreInput, DirectoryRestoreReport } from '../domain/directory-backup';
import { LifeboatError } from '../domain/errors';
import { formatBytes } from '../domain/format';
import { checkLength, UsageError } from './args';
import { failureOf, follow } from './backup-commands';
import { line, printJson } from './output';
import { CommandContext, identity, printRestoreStarted } from './recovery-commands';
import { StartWait, waitPastValidation } from './restore-start';

/** Whether `name` is a directory target. */
export function isDirectoryTarget(config: LifeboatConfig, name: string): boolean {
  return config.targets.directories.some((d) => d.name === name);
}

export async function directoryBackupCommand(config: LifeboatConfig, client: Client, o: { target: string; kind?: string; logical?: boolean; json?: boolean; workflowId?: string; refreshMs?: number; pollIntervalMs?: number }, stamp: string): Promise<number> {
  checkDirectoryBackupOptions(o);
  const workflowId = o.workflowId ?? `directory-backup-${o.target}-${stamp}`;
  const input: DirectoryBackupInput = { target: o.target, ...(o.pollIntervalMs ? { pollIntervalMs: o.pollIntervalMs } : {}) };
  const handle = await client.workflow.start('directoryBackup', { taskQueue: config.temporal.taskQueue, workflowId, args: [input], staticSummary: `directory backup of ${o.target}` });
  if (!o.json) line(`directory backup ${workflowId} of ${o.target} started`);
  try {
    const r = await follow<DirectoryBackupReport>(client, handle, o.json ?? false, o.refreshMs);
    if (o.json) printJson(r);
    else line(`Directory backup complete: ${r.target}, ${r.primary ? `${r.primary.files} files (${formatBytes(r.primary.contentBytes)}) encrypted at ${r.primary.bucket}/${r.primary.key}` : ''}${r.dr ? `, copy in ${r.dr.bucket}` : ''}; backup ${r.backupId}, catalog row ${r.catalogId}`);
    return r.outcome === 'verified' ? 0 : 1;
  } catch (err) {
    if (o.json) printJson({ workflowId, ok: false, failure: failureOf(err) });
    else line(`directory backup FAILED: ${failureOf(err)}`);
    return 1;
  }
}

export function checkDirectoryBackupOptions(o: { target: string; kind?: string; logical?: boolean }): void {
  if (o.logical) throw new UsageError(`${o.target} is a directory target; --logical applies to database targets.`);
  if (o.kind) throw new UsageError(`${o.target} is a directory target, always archived whole; leave out --kind.`);
}

export interface DirectoryRestoreOptions {
  target: string;
  backup?: string;
  into?: string;
  inPlace: boolean;
  reason: string;
  as?: string;
  workflowId?: string;
  /** Options given that a directory restore does not take (their flag names), refused. */
  others?: string[];
  timings?: DirectoryRestoreInput['timings'];
}

/** Everything the CLI can refuse without a network call; the request in the form the workflow takes. */
export function prepareDirectoryRestore(config: LifeboatConfig, o: DirectoryRestoreOptions): { input: DirectoryRestoreInput; workflowId: string } {
  const target = findDirectoryTarget(config, o.target);
  if (o.others?.length) throw new UsageError(`--${o.others[0]} does not apply to a directory target; restore ${target.name} with --backup <id|latest> and --into <new dir> or --in-place.`);
  if (o.backup === undefined || !o.backup.trim()) throw new UsageError(`restoring the directory target ${target.name} needs --backup <id|latest>: pick one from \`lifeboat backups list --target ${target.name}\`.`);
  if (o.into !== undefined && o.inPlace) throw new UsageError('give --into <new dir> or --in-place, not both.');
  if (o.into !== undefined && !path.isAbsolute(o.into)) throw new UsageError(`--into ${o.into} is not an absolute path: give the new directory's full path on ${target.host ?? target.agent ?? 'the host'}.`);
  if (!o.reason.trim()) throw new UsageError('a restore needs --reason, for the record.');
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  const requestedBy = identity(o.as);
  const unknownRequester = requesterProblem(config, [target.environment], requestedBy);
  if (unknownRequester) throw new UsageError(`${unknownRequester}.`);
  const workflowId = o.workflowId ?? `restore-directory-${target.name}-${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
  const input: DirectoryRestoreInput = {
    target: target.name,
    backup: o.backup.trim(),
    destination: o.inPlace ? { kind: 'in-place' } : { kind: 'new-dir', ...(o.into ? { path: path.resolve(o.into) } : {}) },
    requestedBy,
    reason: o.reason,
    ...(o.timings ? { timings: o.timings } : {}),
  };
  return { input, workflowId };
}

export async function directoryRestoreCommand(ctx: CommandContext, prepared: { input: DirectoryRestoreInput; workflowId: string }): Promise<number> {
  const { input, workflowId } = prepared;
  const handle = await ctx.client.workflow.start('directoryRestore', {
    taskQueue: ctx.config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `directory restore of ${input.target}${input.destination.kind === 'in-place' ? ' IN PLACE' : ''}`,
    staticDetails: `Requested by ${input.requestedBy}: ${input.reason}.`,
  });
  // Wait for validation, so a refusal shows here (exit 2) rather than only in the UI.
  let started: StartWait;
  try {
    started = await waitPastValidation(handle, { intervalMs: 250, refusedPrefix: '' });
  } catch (err) {
    if (!(err instanceof LifeboatError) || err.code !== 'WORKFLOW_FAILED') throw err;
    // Failed fast, past validation (a verification that failed at once): the same words as below.
    const failure = await handle.result().then(() => err.message, (e: unknown) => failureOf(e));
    if (ctx.json) printJson({ workflowId, ok: false, failure });
    else line(`directory restore FAILED: ${failure}`);
    return 1;
  }
  const status = started.status;
  if (started.state === 'ended') {
    const report = started.result as DirectoryRestoreReport;
    if (ctx.json) printJson(report);
    else printDirectoryRestoreReport(report);
    return report.outcome === 'restored' ? 0 : 1;
  }
  if (status?.pendingGate) return printRestoreStarted(ctx, workflowId, status, 'directory restore');
  if (!ctx.json) line(`directory restore started: ${workflowId} (${status?.subject ?? input.target})`);
  try {
    const report = await follow<DirectoryRestoreReport>(ctx.client, handle, ctx.json);
    if (ctx.json) printJson(report);
    else printDirectoryRestoreReport(report);
    return report.outcome === 'restored' ? 0 : 1;
  } catch (err) {
    if (ctx.json) printJson({ workflowId, ok: false, failure: failureOf(err) });
    else line(`directory restore FAILED: ${failureOf(err)}`);
    return 1;
  }
}

export function printDirectoryRestoreReport(r: DirectoryRestoreReport): void {
  const plan = r.plan!;
  line(`Directory restore ${r.outcome.toUpperCase()}: ${r.target} from backup ${plan.backupId} into ${plan.into.path}${plan.into.kind === 'in-place' ? ' (in place)' : ''}`);
  if (r.written) line(`  written: ${r.written.files} files, ${formatBytes(r.written.bytes)}${r.written.overwritten ? `, ${r.written.overwritten} overwritten` : ''}`);
  for (const check of r.checks) line(`  ${check.ok ? 'ok' : 'FAILED'}  ${check.name}: ${check.detail}`);
  if (r.syntaxCheckOutput) for (const l of r.syntaxCheckOutput.split('\n')) line(`    | ${l}`);
  for (const note of r.cleanup) line(`  ${note}`);
  if (r.undo) line(`  undo: ${r.undo}`);
}
