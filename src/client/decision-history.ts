/**
 * The decisions a workflow's history holds, for `lifeboat audit verify` to hold the evidence
 * against: each approve/reject update the workflow accepted (with the decision it returned) and
 * each decision signal, decoded with the client's data converter (payloads are encrypted).
 */
import { Client } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import type { Decision, DecisionInput } from '../domain/approval';
import type { HistoryDecision } from '../domain/signed-decision';
import { approveSignal, approveUpdate, rejectSignal, rejectUpdate } from '../workflows/messages';

const UPDATES = new Set<string>([approveUpdate.name, rejectUpdate.name]);
const SIGNALS: Record<string, 'approved' | 'rejected'> = { [approveSignal.name]: 'approved', [rejectSignal.name]: 'rejected' };

export async function decisionsInHistory(client: Client, workflowId: string, runId: string): Promise<HistoryDecision[]> {
  const converter = client.options.loadedDataConverter;
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const updateNames = new Map<string, string>();
  const out: HistoryDecision[] = [];
  for (const event of history.events ?? []) {
    const accepted = event.workflowExecutionUpdateAcceptedEventAttributes;
    if (accepted?.acceptedRequest?.meta?.updateId && accepted.acceptedRequest.input?.name) updateNames.set(accepted.acceptedRequest.meta.updateId, accepted.acceptedRequest.input.name);
    const completed = event.workflowExecutionUpdateCompletedEventAttributes;
    if (completed?.meta?.updateId && UPDATES.has(updateNames.get(completed.meta.updateId) ?? '') && completed.outcome?.success) {
      const d = await decodeFromPayloadsAtIndex<Decision>(converter, 0, completed.outcome.success.payloads);
      if (d && (d.decision === 'approved' || d.decision === 'rejected')) out.push({ runId, via: 'update', gate: d.gate, decision: d.decision, by: d.by, reason: d.reason, at: d.at, nonce: d.signed?.statement?.nonce });
    }
    const signaled = event.workflowExecutionSignaledEventAttributes;
    const verdict = signaled?.signalName ? SIGNALS[signaled.signalName] : undefined;
    if (verdict) {
      const input = await decodeFromPayloadsAtIndex<DecisionInput>(converter, 0, signaled!.input?.payloads).catch(() => undefined);
      if (input && typeof input.by === 'string') out.push({ runId, via: 'signal', gate: input.gate, decision: verdict, by: input.by, reason: String(input.reason ?? ''), nonce: input.signed?.statement?.nonce });
    }
  }
  return out;
}
