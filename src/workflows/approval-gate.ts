/**
 * The approval gate every workflow shares. Decisions arrive as updates (the caller learns at
 * once whether it was accepted, or why not) or as signals (Web UI, `temporal workflow signal`;
 * a refused signal is recorded, never silently dropped). Pending too long: a reminder through
 * the notifier; longer still: the gate expires and the workflow ends cleanly.
 */
import { condition, isCancellation, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { checkApprover, checkQuorumApprover, Decision, DecisionInput, GatePolicy, GatePrompt, MAX_REASON_CHARS, MAX_REFUSED, normalizeIdentity, requiredApprovals } from '../domain/approval';
import { DecisionEvidence, factsDigest, signatureProblem } from '../domain/signed-decision';
import { approveSignal, approveUpdate, rejectSignal, rejectUpdate } from './messages';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

const acts = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 10 } });

export interface GateTimings {
  remindAfterMs: number;
  abortAfterMs: number;
}

interface OpenGate {
  policy: GatePolicy;
  prompt: GatePrompt;
  /** How many refusals were on record when the gate opened: the ones after it belong to its evidence. */
  refusedBefore: number;
  decision?: Decision;
  /** A gate that needs several people: the approvals so far, in order, and how many of them the catalog has. */
  approvals: Decision[];
  recorded: number;
}

type Verdict = 'approved' | 'rejected';

export class ApprovalGates {
  private open?: OpenGate;
  /** Nonces of the signatures this workflow has counted: a signature counts once, ever. */
  private readonly usedNonces = new Set<string>();

  constructor(private readonly board: StatusBoard) {
    setHandler(approveUpdate, (input) => this.decide('approved', input), { validator: (input) => this.validate('approved', input) });
    setHandler(rejectUpdate, (input) => this.decide('rejected', input), { validator: (input) => this.validate('rejected', input) });
    setHandler(approveSignal, (input) => this.decideBySignal('approved', input));
    setHandler(rejectSignal, (input) => this.decideBySignal('rejected', input));
  }

  /** Synchronous, as update validators must be: throwing rejects the update with this sentence. */
  private validate(verdict: Verdict, input: DecisionInput): void {
    const reason = this.refusal(verdict, input);
    if (reason) throw new Error(reason);
  }

  private refusal(verdict: Verdict, input: DecisionInput): string | undefined {
    const open = this.open;
    if (!open || open.decision) return 'no approval is pending on this workflow right now: check `lifeboat status` for what it is doing';
    if (input.gate && input.gate !== open.policy.gate) return `the pending gate is ${open.policy.gate}, not ${input.gate}: check \`lifeboat status\` before deciding`;
    if (!input.by?.trim()) return 'a decision needs the identity of the person making it (--as or LIFEBOAT_USER)';
    if (!input.reason?.trim()) return 'a decision needs a reason, for the record (--reason)';
    if (input.reason.length > MAX_REASON_CHARS) return `the reason is ${input.reason.length} characters long, over the ${MAX_REASON_CHARS} kept on record: say it in a paragraph and link the details`;
    // The CLI refuses an unknown requester in production; a run started another way still cannot be approved.
    if (verdict === 'approved' && open.policy.unknownRequester) {
      return `${open.policy.unknownRequester} requested this, and is not in the config's people: in production only a known person's request can be approved, so reject it and ask them to request it again as themselves`;
    }
    // A quorum counts each person once; anyone allowed may still reject, approvers included.
    const check = verdict === 'approved' && requiredApprovals(open.policy) > 1 ? checkQuorumApprover(open.policy, open.approvals, input.by) : checkApprover(open.policy, input.by);
    if (!check.ok) return check.reason;
    // A policy recorded before signed decisions existed has no signing rule: roles alone, as then.
    const signing = open.policy.signing;
    if (!signing) return undefined;
    const info = workflowInfo();
    return signatureProblem(
      { signing, environment: open.policy.environment, production: open.policy.production, workflowId: info.workflowId, runId: info.runId, gate: open.policy.gate, prompt: open.prompt, now: new Date().getTime(), usedNonces: this.usedNonces },
      verdict,
      input,
      normalizeIdentity,
    );
  }

  private decide(decision: Verdict, input: DecisionInput): Decision {
    const open = this.open!;
    // Recorded in the one form identities are compared in, whatever case the decider typed.
    const given: Decision = { gate: open.policy.gate, decision, by: normalizeIdentity(input.by), reason: input.reason, at: new Date().toISOString(), ...(input.signed ? { signed: input.signed } : {}) };
    if (input.signed) this.usedNonces.add(input.signed.statement.nonce);
    const required = requiredApprovals(open.policy);
    if (required <= 1) {
      open.decision = given;
      return open.decision;
    }
    if (decision === 'approved') open.approvals.push(given);
    const approvals = [...open.approvals];
    // One rejection ends the gate; approvals end it once enough different people gave one.
    if (decision === 'rejected' || approvals.length >= required) open.decision = { ...given, approvals, required };
    this.board.pendingGate?.approvals?.push({ by: given.by, reason: given.reason, at: given.at });
    this.board.gateProgressed();
    return { ...given, approvals, required };
  }

  private decideBySignal(decision: Verdict, input: DecisionInput): void {
    const reason = this.refusal(decision, input);
    if (!reason) this.decide(decision, input);
    // Bounded: a flood of refused signals is counted, not kept (the first MAX_REFUSED say who tried what).
    else if (this.board.refused.length < MAX_REFUSED) this.board.refused.push({ at: new Date().toISOString(), by: String(input?.by ?? '(unknown)').slice(0, 200), reason });
    else this.board.refusedOverflow += 1;
  }

  /** Waits for a decision on one gate; the decision (approved, rejected or expired) is recorded in the catalog. */
  async request(policy: GatePolicy, prompt: GatePrompt, timings: GateTimings): Promise<Decision> {
    const since = new Date();
    this.open = { policy, prompt, refusedBefore: this.board.refused.length, approvals: [], recorded: 0 };
    const open = this.open;
    const required = requiredApprovals(policy);
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
      ...(required > 1 ? { required, approvals: [] } : {}),
    });
    this.board.enter(`awaiting-approval`, `waiting for the ${policy.gate} gate: ${prompt.title}`);

    let decided = await this.waitForDecision(open, timings.remindAfterMs, `Wait for the ${policy.gate} decision until the reminder`);
    if (!decided) {
      this.board.pendingGate!.reminded = true;
      // Best effort: the notify activity does not fail on a webhook outage, and should it fail otherwise the gate goes on.
      const reminder = acts.notify
        .executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Remind approvers of the ${policy.gate} gate` }, [
          {
            severity: 'warning',
            title: `Approval still pending: ${prompt.title}`,
            text: `The ${policy.gate} gate has waited since ${since.toISOString()}; ${required > 1 ? `${required} different people among ${policy.allowedRoles.join(', ')} must approve (${open.approvals.length} so far)` : `any of ${policy.allowedRoles.join(', ')} can decide`}. It aborts at ${at(timings.abortAfterMs)}.`,
            target: this.board.target,
          },
        ])
        .catch((err: unknown) => {
          if (isCancellation(err)) throw err;
        });
      // A slow webhook must not hold a decision or move the expiry: the reminder goes out beside the wait.
      if (!patched('gate-reminder-beside-the-wait')) await reminder;
      else reminder.catch(() => undefined);
      decided = await this.waitForDecision(open, Math.max(0, timings.abortAfterMs - timings.remindAfterMs), `Wait for the ${policy.gate} decision until the gate expires`);
    }
    const decision: Decision = open.decision ?? {
      gate: policy.gate,
      decision: 'expired',
      by: 'lifeboat',
      reason: `no decision within ${Math.round(timings.abortAfterMs / 1000)} s`,
      at: new Date().toISOString(),
      ...(required > 1 ? { reason: `${open.approvals.length} of ${required} approvals within ${Math.round(timings.abortAfterMs / 1000)} s`, approvals: [...open.approvals], required } : {}),
    };
    open.decision = decision;
    this.board.setPendingGate(undefined);
    this.board.decisions.push(decision);
    await acts.recordDecision.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Record the ${policy.gate} decision` }, [decision]);
    if (patched('signed-decisions-evidence')) await this.writeEvidence(open, decision);
    return decision;
  }

  /**
   * The decision, its signatures and the facts they were made against, to the write-once evidence
   * bucket, for `lifeboat audit verify`. Best effort: an evidence outage is noted on the timeline,
   * never holds a restore at the worst hour.
   */
  private async writeEvidence(open: OpenGate, decision: Decision): Promise<void> {
    const info = workflowInfo();
    const signers = [decision, ...(decision.approvals ?? [])].map((d) => d.by);
    const evidence: DecisionEvidence = {
      kind: 'lifeboat-decision-evidence/v1',
      workflowId: info.workflowId,
      runId: info.runId,
      sequence: this.board.decisions.length,
      environment: open.policy.environment,
      production: open.policy.production,
      requestedBy: open.policy.requestedBy,
      gate: open.policy.gate,
      prompt: open.prompt,
      factsSha256: factsDigest(open.policy.gate, open.prompt),
      unsignedDecisions: open.policy.signing?.unsignedDecisions ?? 'allow',
      publicKeys: Object.fromEntries(Object.entries(open.policy.signing?.keys ?? {}).filter(([who]) => signers.includes(who))),
      decision,
      refused: this.board.refused.slice(open.refusedBefore),
    };
    const outcome = await acts.recordDecisionEvidence.executeWithOptions({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 3 }, summary: `Write the ${open.policy.gate} decision to the evidence bucket` }, [evidence]);
    if (outcome.problem) this.board.enter(this.board.phase, `the ${open.policy.gate} decision is not in the evidence bucket: ${outcome.problem}`);
  }

  /**
   * Waits up to `timeoutMs` for the gate's decision. A one-person gate waits exactly as it always
   * has (one condition: recorded histories replay). A quorum gate also wakes for each approval,
   * to record it in the catalog as it comes, and waits on for the rest.
   */
  private async waitForDecision(open: OpenGate, timeoutMs: number, summary: string): Promise<boolean> {
    if (requiredApprovals(open.policy) <= 1) return condition(() => open.decision !== undefined, timeoutMs, { summary });
    const deadline = new Date().getTime() + timeoutMs;
    for (;;) {
      const left = deadline - new Date().getTime();
      const woke = left > 0 && (await condition(() => open.decision !== undefined || open.recorded < open.approvals.length, left, { summary }));
      while (open.recorded < open.approvals.length) {
        const approval = open.approvals[open.recorded];
        const progress = { received: open.recorded + 1, required: requiredApprovals(open.policy) };
        await acts.recordApproval.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Record approval ${progress.received} of ${progress.required} of the ${open.policy.gate} gate` }, [approval, progress]);
        open.recorded += 1;
      }
      if (open.decision) return true;
      if (!woke) return false;
    }
  }
}
