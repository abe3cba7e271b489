/** `lifeboat restore-point <target> <name>`: make a named restore point lifeboat can check restores against. */
import { WorkflowFailedError } from '@temporalio/client';
import { findDatabaseTarget } from '../config';
import type { LifeboatConfig } from '../config';
import { MAX_REASON_CHARS } from '../domain/approval';
import { LifeboatError } from '../domain/errors';
import { restorePointNameProblem } from '../domain/restore-point';
import type { RestorePointRequest, RestorePointResult } from '../domain/restore-point-request';
import { describeFailure, failureType } from '../workflows/failure';
import { checkLength, UsageError } from './args';
import { line, printJson } from './output';
import type { CommandContext } from './recovery-commands';
import { identity } from './recovery-commands';

/** Refusals that mean the person must change what they typed (exit 2), not that something broke. */
const REFUSED = new Set(['INVALID_RESTORE_POINT_REQUEST', 'RESTORE_POINT_EXISTS', 'RESTORE_POINT_UNCERTAIN', 'UNKNOWN_TARGET']);

/** Every check of what was typed, before connecting to anything. */
export function prepareRestorePoint(config: LifeboatConfig, o: { target: string; name: string; reason: string; as?: string }): { request: RestorePointRequest; workflowId: string } {
  const target = findDatabaseTarget(config, o.target);
  if (target.engine !== 'pgbackrest') throw new UsageError(`${target.name} is an ${target.engine} target, which restores to a time or "latest" only: named restore points are for pgBackRest targets.`);
  const problem = restorePointNameProblem(o.name);
  if (problem) throw new UsageError(`${problem}.`);
  if (!o.reason.trim()) throw new UsageError('a restore point needs --reason, for the record.');
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  const requestedBy = identity(o.as);
  const slug = o.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
  const workflowId = `restore-point-${target.name}-${slug || 'point'}-${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
  return { request: { target: target.name, name: o.name, requestedBy, reason: o.reason }, workflowId };
}

export async function restorePointCommand(ctx: CommandContext, prepared: { request: RestorePointRequest; workflowId: string }): Promise<number> {
  const { request, workflowId } = prepared;
  let result: RestorePointResult;
  try {
    result = await ctx.client.workflow.execute('createRestorePoint', {
      taskQueue: ctx.config.temporal.taskQueue,
      workflowId,
      args: [request],
      staticSummary: `restore point "${request.name}" on ${request.target}`,
      staticDetails: `Made by ${request.requestedBy}: ${request.reason}.`,
    });
  } catch (err) {
    const type = err instanceof WorkflowFailedError ? failureType(err) : undefined;
    if (type && REFUSED.has(type)) throw new LifeboatError(`restore point refused: ${describeFailure(err)}`, 'RESTORE_POINT_REFUSED');
    if (ctx.json) printJson({ workflowId, ok: false, failure: describeFailure(err) });
    else line(`restore point FAILED: ${describeFailure(err)}`);
    return 1;
  }
  if (ctx.json) printJson({ workflowId, ...result });
  else line(result.detail);
  return result.archived ? 0 : 1;
}
