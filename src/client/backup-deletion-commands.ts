/**
 * `lifeboat backups delete <backup-id>`: one backup removed by hand, behind the backupDeletion
 * gate (two people in production). What was typed and what the catalog says are checked here,
 * before anything starts (exit 2); the workflow checks again before it deletes.
 */
import { LifeboatConfig, requesterProblem } from '../config';
import { BackupDeletionInput, BackupDeletionPlan } from '../domain/backup-deletion';
import { MAX_INCIDENT_ID_CHARS, MAX_REASON_CHARS } from '../domain/approval';
import { LifeboatError } from '../domain/errors';
import { createPorts } from '../activities/ports';
import { checkBackupDeletion } from '../activities/backup-deletion';
import { checkLength, UsageError } from './args';
import { CommandContext, identity } from './recovery-commands';
import { line, printJson, uiLink } from './output';

export interface BackupDeleteOptions {
  backupId: string;
  reason: string;
  incident?: string;
  as?: string;
  bypassGovernance?: boolean;
  workflowId?: string;
}

/** Every check of what was typed, before anything connects. */
export function prepareBackupDelete(o: BackupDeleteOptions): { input: BackupDeletionInput; workflowId: string } {
  if (!/^[\w.:@+-]{1,200}$/.test(o.backupId)) throw new UsageError(`"${o.backupId}" is not a backup id: give the catalog id or the backup name \`lifeboat backups list\` shows.`);
  if (!o.reason.trim()) throw new UsageError('deleting a backup needs --reason, for the record (why this backup, why now).');
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  checkLength('--incident', o.incident, MAX_INCIDENT_ID_CHARS, 'give the ticket id, not its text');
  const requestedBy = identity(o.as);
  const workflowId = o.workflowId ?? `backup-deletion-${o.backupId.toLowerCase().replace(/[^a-z0-9-]+/g, '-')}-${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
  return {
    workflowId,
    input: { backupId: o.backupId, requestedBy, reason: o.reason, ...(o.incident?.trim() ? { incidentId: o.incident.trim() } : {}), ...(o.bypassGovernance ? { bypassGovernance: true } : {}) },
  };
}

/** The catalog's answer: an unknown backup, or one the rules keep, is refused in one sentence (exit 2). */
async function planOrRefuse(config: LifeboatConfig, backupId: string): Promise<BackupDeletionPlan> {
  const ports = createPorts(config);
  try {
    return await checkBackupDeletion(ports, backupId);
  } catch (err) {
    if (err instanceof LifeboatError) throw new UsageError(`${err.message}.`);
    throw err;
  } finally {
    await ports.close();
  }
}

export async function backupDeleteCommand(ctx: CommandContext, prepared: { input: BackupDeletionInput; workflowId: string }): Promise<number> {
  const { input, workflowId } = prepared;
  const plan = await planOrRefuse(ctx.config, input.backupId);
  // Which environment the backup belongs to is the catalog's answer: checked here, before the workflow starts.
  const unknownRequester = requesterProblem(ctx.config, [plan.environment], input.requestedBy);
  if (unknownRequester) throw new UsageError(`${unknownRequester}.`);
  await ctx.client.workflow.start('backupDeletion', {
    taskQueue: ctx.config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `DELETE backup ${plan.engineBackupId} of ${plan.target}`,
    staticDetails: `Requested by ${input.requestedBy}: ${input.reason}.`,
  });
  const link = uiLink(ctx.uiBase, ctx.config.temporal.namespace, workflowId);
  if (ctx.json) {
    printJson({ workflowId, plan, ui: link });
    return 0;
  }
  line(`backup deletion started: ${workflowId}`);
  line(`backup:  ${plan.engineBackupId} of ${plan.target} (${plan.backupType}, catalog id ${plan.catalogId}, ${plan.status})`);
  for (const c of plan.copies) line(`copy:    ${c}`);
  for (const l of plan.locks) line(`locked:  ${l}: locked versions stay until their retain-until date`);
  line(`next: the backupDeletion gate: lifeboat approve ${workflowId} --gate backupDeletion --reason "..." --as <identity> --key <your private key> (two different people in production)`);
  line(`status: lifeboat status ${workflowId}`);
  line(`Web UI: ${link}`);
  return 0;
}
