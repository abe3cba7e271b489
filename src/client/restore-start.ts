/**
 * The one rule for how a started restore, drill or failover ends the command that started it:
 *   0  done as asked (restored, passed, failed over), or started and waiting at its gate;
 *   1  ended without doing it: failed, verification failed, cancelled, or REJECTED or EXPIRED at
 *      a gate (a person's decision, or nobody's in time, is not bad input);
 *   2  bad usage or input: refused before anything was made (validation said no), one sentence.
 * And the one wait after starting such a workflow: until it is past validation (or has ended).
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { WorkflowStatus } from '../domain/approval';
import { LifeboatError } from '../domain/errors';
import { describeFailure, failureType } from '../workflows/failure';
import { statusQuery } from '../workflows/messages';

/** Outcomes that mean the command did what was asked. */
const DONE = new Set(['restored', 'restored-and-cut-over', 'passed', 'failed-over', 'removed']);

/** Exit code of a workflow that ended with `outcome` (undefined: a result without one, taken as done). */
export function outcomeExitCode(outcome: string | undefined): 0 | 1 {
  return outcome === undefined || DONE.has(outcome) ? 0 : 1;
}

/** Phases in which a workflow still only checks the request: a failure then is a refusal of the input. */
const CHECKING = new Set(['starting', 'validating']);

export type StartWait =
  | { state: 'running'; status?: WorkflowStatus }
  | { state: 'ended'; status?: WorkflowStatus; result: unknown; exitCode: 0 | 1 };

/** Failure types a workflow raises when it refuses the request itself (validation said no). */
const REFUSALS = new Set(['RESTORE_REFUSED', 'UNKNOWN_TARGET']);

/**
 * Whether a workflow that failed was still checking the request when it did. The polls may have
 * missed every phase (a fast workflow fails between two of them), so a closed workflow's last
 * phase is asked for (queries answer on closed workflows too); only if that cannot be read does
 * the failure's type decide. A fast verification failure is then exit 1, not a refusal.
 */
async function endedWhileChecking(handle: WorkflowHandle, seen: WorkflowStatus | undefined, err: unknown): Promise<boolean> {
  if (seen && !CHECKING.has(seen.phase)) return false;
  const last = await handle.query(statusQuery).catch(() => undefined);
  if (last) return CHECKING.has(last.phase);
  return REFUSALS.has(failureType(err) ?? '');
}

/**
 * Polls a just-started workflow until it is past validation (a gate, or work), or has ended.
 * Failed while still checking the request: thrown as RESTORE_REFUSED (exit 2, its sentence).
 * Failed later: thrown as it is (exit 1). Completed already (a gate rejected or expired at once,
 * or no gate): its report and the exit code of its outcome.
 */
export async function waitPastValidation(handle: WorkflowHandle, options: { polls?: number; intervalMs?: number; refusedPrefix?: string } = {}): Promise<StartWait> {
  const polls = options.polls ?? 240;
  const intervalMs = options.intervalMs ?? 500;
  let status: WorkflowStatus | undefined;
  for (let i = 0; i < polls; i++) {
    const desc = await handle.describe();
    if (desc.status.name !== 'RUNNING') break;
    status = await handle.query(statusQuery).catch(() => undefined);
    if (status && !CHECKING.has(status.phase)) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const desc = await handle.describe();
  if (desc.status.name === 'RUNNING') return { state: 'running', status };
  if (desc.status.name === 'COMPLETED') {
    const result = await handle.result();
    return { state: 'ended', status, result, exitCode: outcomeExitCode((result as { outcome?: string } | undefined)?.outcome) };
  }
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (await endedWhileChecking(handle, status, err)) throw new LifeboatError(`${options.refusedPrefix ?? 'restore refused: '}${describeFailure(err)}`, 'RESTORE_REFUSED');
  throw new LifeboatError(`${desc.type} ${handle.workflowId} ${desc.status.name.toLowerCase()}: ${describeFailure(err)}`, 'WORKFLOW_FAILED');
}
