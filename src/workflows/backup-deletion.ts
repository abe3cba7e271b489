/**
 * backupDeletion: `lifeboat backups delete <backup-id>`, one backup removed by hand.
 *
 *   plan (the catalog's row, the refusal rules) -> gate `backupDeletion` (two people in
 *     production) -> delete that backup in every region (rules checked again) -> notify
 *
 * Nothing is touched before the gate opens. Locked copies are not removed early: the result says
 * until when they stay. Governance retention is bypassed only when the request asked for it and
 * the gate showed that before it was approved.
 */
import { ActivityOptions, ApplicationFailure, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { BackupDeletionInput, BackupDeletionPlan, BackupDeletionReport } from '../domain/backup-deletion';
import { isDatabaseSet } from '../domain/retention';
import { ApprovalGates } from './approval-gate';
import { describeFailure } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { LifeboatEnvironment, LifeboatIncidentId, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const LONG: ActivityOptions = { startToCloseTimeout: '2 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 } };
const long = proxyActivities<Activities>(LONG);

export async function backupDeletion(input: BackupDeletionInput): Promise<BackupDeletionReport> {
  const { workflowId } = workflowInfo();
  const board = new StatusBoard('backupDeletion', input.backupId);
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([{ key: LifeboatKind, value: 'backup-deletion' }, ...(input.incidentId ? [{ key: LifeboatIncidentId, value: input.incidentId }] : [])]);
  const report = (outcome: BackupDeletionReport['outcome'], detail: string, extra: Partial<BackupDeletionReport> = {}): BackupDeletionReport => ({
    workflowId,
    backupId: input.backupId,
    outcome,
    requestedBy: input.requestedBy,
    reason: input.reason,
    detail,
    ...extra,
  });

  board.enter('checking', `finding backup ${input.backupId} in the catalog and checking it may be deleted`);
  let plan: BackupDeletionPlan;
  try {
    plan = await quick.planBackupDeletion.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Check that backup ${input.backupId} may be deleted` }, [input.backupId]);
  } catch (err) {
    if (isCancellation(err)) throw err;
    board.enter('refused', describeFailure(err));
    throw ApplicationFailure.create({ message: `backup ${input.backupId} cannot be deleted: ${describeFailure(err)}`, type: 'DELETION_REFUSED', nonRetryable: true, details: [report('refused', describeFailure(err))] });
  }
  upsertSearchAttributes([
    { key: LifeboatTarget, value: plan.target },
    { key: LifeboatEnvironment, value: plan.environment },
  ]);

  const policy = await quick.resolveGatePolicy.executeWithOptions({ startToCloseTimeout: '15 seconds', summary: 'Who approves a backup deletion' }, [plan.environment, 'backupDeletion', input.requestedBy]);
  const t = input.timings ?? {};
  const decision = await gates.request(
    policy,
    {
      title: `DELETE backup ${plan.engineBackupId} of ${plan.target} (${plan.backupType})`,
      facts: [
        { label: 'Backup', value: `${plan.engineBackupId} (catalog id ${plan.catalogId}, ${plan.status}${plan.completedAt ? `, completed ${plan.completedAt}` : ''})` },
        { label: 'Copies deleted', value: plan.copies.join('; ') || 'none recorded' },
        { label: 'Object lock', value: plan.locks.length ? `${plan.locks.join('; ')}: locked versions stay until their retain-until date${input.bypassGovernance ? '; GOVERNANCE retention WILL BE BYPASSED' : ''}` : 'none of its buckets is declared locked' },
        { label: 'Requested by', value: `${input.requestedBy}: ${input.reason}` },
      ],
    },
    { remindAfterMs: t.remindAfterMs ?? plan.gateTimings.remindAfterMs, abortAfterMs: t.abortAfterMs ?? plan.gateTimings.abortAfterMs },
  );
  if (decision.decision !== 'approved') {
    const detail = `the backupDeletion gate was ${decision.decision} (${decision.by}: ${decision.reason}); nothing was deleted`;
    board.enter(decision.decision, detail);
    return report(decision.decision === 'rejected' ? 'rejected' : 'expired', detail, { plan, decision });
  }

  board.enter('deleting', `deleting backup ${plan.engineBackupId} of ${plan.target} in every region`);
  const approvedBy = (decision.approvals ?? [decision]).map((d) => d.by);
  // A database set of a target on an agent is removed by pgBackRest on that host (patch
  // host-work-on-agents); dumps, file sets and targets without an agent stay here.
  const queue = isDatabaseSet(plan.backupType) ? await agentQueueOf(plan.target) : undefined;
  const request = { reason: input.reason, requestedBy: input.requestedBy, approvedBy, bypassGovernance: input.bypassGovernance === true };
  const options: ActivityOptions = { startToCloseTimeout: '2 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Delete backup ${plan.engineBackupId} of ${plan.target}${queue ? ' on its agent' : ''}` };
  const result = queue
    ? await onHost(LONG, queue).deleteDatabaseBackupByHand.executeWithOptions(options, [plan.catalogId, request])
    : await long.deleteBackupByHand.executeWithOptions(options, [plan.catalogId, request]);
  const outcome = result.outcome;
  const detail =
    outcome === 'refused'
      ? `nothing more was deleted: ${result.detail}`
      : outcome === 'deleted-locked-copies-remain'
        ? `deleted; locked versions stay until ${result.lockedUntil}: ${result.detail}`
        : `deleted: ${result.detail}`;
  await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup deletion' }, [
    {
      severity: 'warning',
      title: `Backup ${plan.engineBackupId} of ${plan.target} ${outcome === 'refused' ? 'NOT deleted' : 'deleted by hand'}`,
      text: `${detail}\nRequested by ${input.requestedBy} (${input.reason}); approved by ${approvedBy.join(', ')}.`,
      target: plan.target,
    },
  ]);
  board.enter(outcome === 'refused' ? 'refused' : 'done', detail);
  return report(outcome, detail, { plan, decision, result });
}
