/**
 * A test-only workflow: one approval gate and nothing else, so the gate's quorum behaviour is
 * tested on the real Temporal server without a restore behind it. It is bundled on its own by
 * approval-quorum-gate.test.ts and never registered by lifeboat's worker.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../src/activities';
import type { Decision, GateName } from '../../src/domain/approval';
import { ApprovalGates, GateTimings } from '../../src/workflows/approval-gate';
import { StatusBoard } from '../../src/workflows/status-board';

const acts = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 3 } });

export interface GateProbeInput {
  environment: string;
  gate: GateName;
  requestedBy: string;
  timings: GateTimings;
}

export async function gateProbe(input: GateProbeInput): Promise<Decision> {
  const board = new StatusBoard('gateProbe', 'probe');
  const gates = new ApprovalGates(board);
  const policy = await acts.resolveGatePolicy(input.environment, input.gate, input.requestedBy);
  const decision = await gates.request(policy, { title: `probe of the ${input.gate} gate`, facts: [{ label: 'changes', value: 'nothing: a test' }] }, input.timings);
  board.enter(decision.decision, `the ${input.gate} gate was ${decision.decision}`);
  return decision;
}
