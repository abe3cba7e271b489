/**
 * The life of an instance a restore left standing (the catalog's restored_instances).
 *
 * instanceExpiry, started hourly by its Temporal Schedule (lifeboat-instance-expiry), or by hand:
 *   kept instances due within the notice window -> notice through the notifier (once per expiry)
 *   -> those past their expiry whose notice went out in an earlier sweep: the catalog read again,
 *      then removed on the target's host as the run that made them -> recorded, notified.
 * A schedule rather than a workflow per instance: an extension is then a catalog update the next
 * sweep reads (no signal to a timer that may be lost with its run), a sweep missed while Temporal
 * was down is caught up by the next, and there are no histories that live for days.
 *
 * instanceRemoval, `lifeboat instances remove <id>`: the catalog's answer -> gate instanceRemoval
 * in a production-tier environment (none elsewhere) -> the catalog read again -> removed on the
 * host -> recorded, notified.
 *
 * Neither ever removes an instance that has taken traffic, nor one whose own record (on the host,
 * or RDS tags) does not name the run the catalog names: the engine checks both just before it deletes.
 */
import { ActivityOptions, ApplicationFailure, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { expiryVerdict, HostRemoval, InstanceExpiryInput, InstanceExpiryResult, InstanceRemovalInput, InstanceRemovalPlan, InstanceRemovalReport, RestoredInstance } from '../domain/restored-instances';
import { ApprovalGates } from './approval-gate';
import { describeFailure } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { LifeboatEnvironment, LifeboatIncidentId, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const REMOVAL: ActivityOptions = { startToCloseTimeout: '30 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 3, initialInterval: '5 seconds' } };

const now = () => new Date().getTime();

/** Removes one instance on its host (the agent's queue when the target has one), then records what happened. */
async function removeOnHost(instance: RestoredInstance, by: string): Promise<HostRemoval> {
  const queue = await agentQueueOf(instance.target);
  const removal = await onHost(REMOVAL, queue).removeKeptInstance.executeWithOptions({ summary: `Remove ${instance.instanceId}${queue ? ' on its agent' : ''}` }, [instance]);
  await quick.recordInstanceOutcome.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Record what became of ${instance.instanceId}` }, [instance.instanceId, removal, by]);
  return removal;
}

const extendHint = (id: string) => `keep it longer with: lifeboat instances extend ${id} --by 3d`;

export async function instanceExpiry(input: InstanceExpiryInput = {}): Promise<InstanceExpiryResult> {
  const board = new StatusBoard('instance expiry', 'all targets');
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'instance-expiry' },
    { key: LifeboatTarget, value: 'all' },
  ]);
  const result: InstanceExpiryResult = { startedAt: board.startedAt, notified: [], removed: [], kept: [], failed: [] };
  board.enter('finding', 'looking for restored instances whose notice or expiry is due');
  const due = await quick.dueRestoredInstances.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Find restored instances due for notice or removal' }, [input.noticeBeforeMs]);

  for (const instance of due.instances) {
    const verdict = expiryVerdict(instance, now(), due.noticeBeforeMs);
    if (verdict.action === 'wait') continue;
    if (verdict.action === 'keep') {
      result.kept.push({ instanceId: instance.instanceId, reason: verdict.reason });
      continue;
    }
    if (verdict.action === 'notify') {
      board.enter('notifying', verdict.reason);
      await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Notice: ${instance.instanceId} expires at ${instance.expiresAt}` }, [
        {
          severity: 'warning',
          title: `Restored instance ${instance.instanceId} will be removed after ${instance.expiresAt}`,
          text: `${instance.instanceId} (${instance.target}, restored to ${instance.restorePoint}${instance.endpoint ? `, at ${instance.endpoint}` : ''}) expires at ${instance.expiresAt} and is removed by the first expiry run after that; ${extendHint(instance.instanceId)}.`,
          target: instance.target,
        },
      ]);
      await quick.markExpiryNoticeSent.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Note the notice of ${instance.instanceId}` }, [instance.instanceId, instance.expiresAt!]);
      result.notified.push(instance.instanceId);
      continue;
    }
    // Removal: the catalog read again (extended or removed since the list, or found to have taken traffic: left alone).
    let current: RestoredInstance;
    try {
      current = (await quick.planInstanceRemoval.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Check ${instance.instanceId} again` }, [instance.instanceId])).instance;
    } catch (err) {
      result.kept.push({ instanceId: instance.instanceId, reason: describeFailure(err) });
      continue;
    }
    const again = expiryVerdict(current, now(), due.noticeBeforeMs);
    if (again.action !== 'remove') {
      result.kept.push({ instanceId: instance.instanceId, reason: again.reason });
      continue;
    }
    board.enter('removing', `removing ${instance.instanceId}: ${again.reason}`);
    try {
      const removal = await removeOnHost(current, `instance expiry ${workflowInfo().workflowId}`);
      if (removal.outcome === 'refused') {
        result.kept.push({ instanceId: instance.instanceId, reason: removal.detail });
        await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Tell why ${instance.instanceId} stays` }, [
          { severity: 'warning', title: `Restored instance ${instance.instanceId} was NOT removed on expiry`, text: `${removal.detail}.`, target: instance.target },
        ]);
        continue;
      }
      result.removed.push({ instanceId: instance.instanceId, detail: removal.detail });
      await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Tell that ${instance.instanceId} was removed` }, [
        { severity: 'info', title: `Restored instance ${instance.instanceId} removed on expiry`, text: `${again.reason}; ${removal.detail}.`, target: instance.target },
      ]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      const problem = describeFailure(err);
      result.failed.push({ instanceId: instance.instanceId, problem });
      await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Tell that ${instance.instanceId} could not be removed` }, [
        { severity: 'critical', title: `Restored instance ${instance.instanceId} could not be removed on expiry`, text: `${problem}; the next expiry run tries again.`, target: instance.target },
      ]);
    }
  }
  board.enter('done', `${result.notified.length} notified, ${result.removed.length} removed, ${result.kept.length} kept, ${result.failed.length} failed`);
  return result;
}

export async function instanceRemoval(input: InstanceRemovalInput): Promise<InstanceRemovalReport> {
  const { workflowId } = workflowInfo();
  const board = new StatusBoard('instance removal', input.instanceId);
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([{ key: LifeboatKind, value: 'instance-removal' }, ...(input.incidentId ? [{ key: LifeboatIncidentId, value: input.incidentId }] : [])]);
  const report = (outcome: InstanceRemovalReport['outcome'], detail: string, extra: Partial<InstanceRemovalReport> = {}): InstanceRemovalReport => ({
    workflowId,
    instanceId: input.instanceId,
    outcome,
    requestedBy: input.requestedBy,
    reason: input.reason,
    detail,
    ...extra,
  });
  const check = async (when: string): Promise<InstanceRemovalPlan> => {
    try {
      return await quick.planInstanceRemoval.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Check that ${input.instanceId} may be removed (${when})` }, [input.instanceId]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      board.enter('refused', describeFailure(err));
      throw ApplicationFailure.create({ message: `${input.instanceId} cannot be removed: ${describeFailure(err)}`, type: 'INSTANCE_REMOVAL_REFUSED', nonRetryable: true, details: [report('refused', describeFailure(err))] });
    }
  };

  board.enter('checking', `finding ${input.instanceId} in the catalog`);
  const plan = await check('before the gate');
  const i = plan.instance;
  upsertSearchAttributes([
    { key: LifeboatTarget, value: i.target },
    { key: LifeboatEnvironment, value: plan.environment },
  ]);

  let approvedBy: string[] | undefined;
  if (plan.production) {
    const policy = await quick.resolveGatePolicy.executeWithOptions({ startToCloseTimeout: '15 seconds', summary: 'Who approves an instance removal' }, [plan.environment, 'instanceRemoval', input.requestedBy]);
    const t = input.timings ?? {};
    const decision = await gates.request(
      policy,
      {
        title: `REMOVE restored instance ${i.instanceId} of ${i.target}`,
        facts: [
          { label: 'Instance', value: `${i.instanceId} (${i.engine}${i.endpoint ? `, at ${i.endpoint}` : ''})` },
          { label: 'Data as of', value: `${i.restorePoint}, from ${i.restoredFrom}` },
          { label: 'Made by', value: `${i.madeBy} ${i.owner.workflowId} (run ${i.owner.runId}) at ${i.createdAt}` },
          { label: 'Expires', value: i.expiresAt ?? 'never on its own' },
          { label: 'Traffic', value: 'never pointed at it (lifeboat checks again on the host before removing)' },
          { label: 'Requested by', value: `${input.requestedBy}: ${input.reason}` },
        ],
      },
      { remindAfterMs: t.remindAfterMs ?? plan.gateTimings.remindAfterMs, abortAfterMs: t.abortAfterMs ?? plan.gateTimings.abortAfterMs },
    );
    if (decision.decision !== 'approved') {
      const detail = `the instanceRemoval gate was ${decision.decision} (${decision.by}: ${decision.reason}); nothing was removed`;
      board.enter(decision.decision, detail);
      return report(decision.decision === 'rejected' ? 'rejected' : 'expired', detail);
    }
    approvedBy = (decision.approvals ?? [decision]).map((d) => d.by);
  }

  // Read again after the gate: taken traffic or removed while the gate waited is refused now.
  const current = (await check('after the gate')).instance;
  board.enter('removing', `removing ${i.instanceId} on its host`);
  const removal = await removeOnHost(current, input.requestedBy);
  const detail = removal.outcome === 'refused' ? `nothing was removed: ${removal.detail}` : removal.detail;
  await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: instance removal' }, [
    {
      severity: removal.outcome === 'refused' ? 'warning' : 'info',
      title: `Restored instance ${i.instanceId} ${removal.outcome === 'refused' ? 'NOT removed' : 'removed by hand'}`,
      text: `${detail}.\nRequested by ${input.requestedBy} (${input.reason})${approvedBy ? `; approved by ${approvedBy.join(', ')}` : ''}.`,
      target: i.target,
    },
  ]);
  board.enter(removal.outcome === 'refused' ? 'refused' : 'done', detail);
  return report(removal.outcome === 'refused' ? 'refused' : 'removed', detail, approvedBy ? { approvedBy } : {});
}
