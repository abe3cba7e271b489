/**
 * The approval gate every workflow shares. Decisions arrive as updates (the caller learns at
 * once whether it was accepted, or why not) or as signals (Web UI, `temporal workflow signal`;
 * a refused signal is recorded, never silently dropped). Pending too long: a reminder through
 * the notifier; longer still: the gate expires and the workflow ends cleanly.
 */
import { condition, isCancellation, patched, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { checkApprover, Decision, DecisionInput, GatePolicy, GatePrompt, MAX_REASON_CHARS, normalizeIdentity } from '../domain/approval';
import { approveSignal, approveUpdate, rejectSignal, rejectUpdate } from './messages';
import { StatusBoard } from './status-board';

const acts = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 10 } });

export interface GateTimings {
  remindAfterMs: number;
  abortAfterMs: number;
}

interface OpenGate {
  policy: GatePolicy;
  decision?: Decision;
}

export class ApprovalGates {
  private open?: OpenGate;

  constructor(private readonly board: StatusBoard) {
    setHandler(approveUpdate, (input) => this.decide('approved', input), { validator: (input) => this.validate(input) });
    setHandler(rejectUpdate, (input) => this.decide('rejected', input), { validator: (input) => this.validate(input) });
    setHandler(approveSignal, (input) => this.decideBySignal('approved', input));
    setHandler(rejectSignal, (input) => this.decideBySignal('rejected', input));
  }

  /** Synchronous, as update validators must be: throwing rejects the update with this sentence. */
  private validate(input: DecisionInput): void {
    const reason = this.refusal(input);
    if (reason) throw new Error(reason);
  }

  private refusal(input: DecisionInput): string | undefined {
    const open = this.open;
    if (!open || open.decision) return 'no approval is pending on this workflow right now: check `lifeboat status` for what it is doing';
    if (input.gate && input.gate !== open.policy.gate) return `the pending gate is ${open.policy.gate}, not ${input.gate}: check \`lifeboat status\` before deciding`;
    if (!input.by?.trim()) return 'a decision needs the identity of the person making it (--as or LIFEBOAT_USER)';
    if (!input.reason?.trim()) return 'a decision needs a reason, for the record (--reason)';
    if (input.reason.length > MAX_REASON_CHARS) return `the reason is ${input.reason.length} characters long, over the ${MAX_REASON_CHARS} kept on record: say it in a paragraph and link the details`;
    const check = checkApprover(open.policy, input.by);
    return check.ok ? undefined : check.reason;
  }

  private decide(decision: 'approved' | 'rejected', input: DecisionInput): Decision {
    const open = this.open!;
    // Recorded in the one form identities are compared in, whatever case the decider typed.
    open.decision = { gate: open.policy.gate, decision, by: normalizeIdentity(input.by), reason: input.reason, at: new Date().toISOString() };
    return open.decision;
  }

  private decideBySignal(decision: 'approved' | 'rejected', input: DecisionInput): void {
    const reason = this.refusal(input);
    if (reason) this.board.refused.push({ at: new Date().toISOString(), by: input?.by ?? '(unknown)', reason });
    else this.decide(decision, input);
  }

  /** Waits for a decision on one gate; the decision (approved, rejected or expired) is recorded in the catalog. */
  async request(policy: GatePolicy, prompt: GatePrompt, timings: GateTimings): Promise<Decision> {
    const since = new Date();
    this.open = { policy };
    const open = this.open;
    const at = (ms: number) => new Date(since.getTime() + ms).toISOString();
    this.board.setPendingGate({
      gate: policy.gate,
      prompt,
      allowedRoles: policy.allowedRoles,
      requestedBy: policy.requestedBy,
      since: since.toISOString(),
      remindAt: at(timings.remindAfterMs),
      abortAt: at(timings.abortAfterMs),
      reminded: false,
    });
    this.board.enter(`awaiting-approval`, `waiting for the ${policy.gate} gate: ${prompt.title}`);

    let decided = await condition(() => open.decision !== undefined, timings.remindAfterMs, { summary: `Wait for the ${policy.gate} decision until the reminder` });
    if (!decided) {
      this.board.pendingGate!.reminded = true;
      // Best effort: the notify activity does not fail on a webhook outage, and should it fail otherwise the gate goes on.
      const reminder = acts.notify
        .executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Remind approvers of the ${policy.gate} gate` }, [
          {
            severity: 'warning',
            title: `Approval still pending: ${prompt.title}`,
            text: `The ${policy.gate} gate has waited since ${since.toISOString()}; any of ${policy.allowedRoles.join(', ')} can decide. It aborts at ${at(timings.abortAfterMs)}.`,
            target: this.board.target,
          },
        ])
        .catch((err: unknown) => {
          if (isCancellation(err)) throw err;
        });
      // A slow webhook must not hold a decision or move the expiry: the reminder goes out beside the wait.
      if (!patched('gate-reminder-beside-the-wait')) await reminder;
      else reminder.catch(() => undefined);
      decided = await condition(() => open.decision !== undefined, Math.max(0, timings.abortAfterMs - timings.remindAfterMs), { summary: `Wait for the ${policy.gate} decision until the gate expires` });
    }
    const decision: Decision = open.decision ?? {
      gate: policy.gate,
      decision: 'expired',
      by: 'lifeboat',
      reason: `no decision within ${Math.round(timings.abortAfterMs / 1000)} s`,
      at: new Date().toISOString(),
    };
    open.decision = decision;
    this.board.setPendingGate(undefined);
    this.board.decisions.push(decision);
    await acts.recordDecision.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Record the ${policy.gate} decision` }, [decision]);
    return decision;
  }
}
