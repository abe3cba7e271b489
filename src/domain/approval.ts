/**
 * Human approval gates: the rule for who may decide and the record of each decision (the
 * Temporal messages that carry decisions are in src/workflows/messages.ts). Pure and
 * deterministic: the workflow's update validators use the same rule the CLI and config checks use.
 */
import type { SignedDecision, SigningPolicy } from './signed-decision';

export type GateName = 'restore' | 'emergencyRestore' | 'cutover' | 'failover' | 'failback' | 'retire' | 'backupDeletion' | 'instanceRemoval';

/** Everything needed to judge an approver, resolved from the config when the workflow starts. */
export interface GatePolicy {
  gate: GateName;
  environment: string;
  production: boolean;
  /** Whether the requester may approve their own request (never in production). */
  selfApproval: boolean;
  requestedBy: string;
  /** Any one of these roles may decide. */
  allowedRoles: string[];
  /** identity -> roles, for everyone who holds a role this gate accepts. */
  roster: Record<string, string[]>;
  /**
   * How many distinct people must approve (a quorum), default 1. Optional because policies
   * recorded in workflow histories before quorums existed have no such field: read it through
   * `requiredApprovals`.
   */
  required?: number;
  /**
   * How decisions must be signed, and everyone's public key. Absent in policies recorded before
   * signed decisions existed: those gates check roles only, as they did.
   */
  signing?: SigningPolicy;
  /**
   * Set when a production request names a requester who is not in `people` (a workflow started
   * by hand, past the CLI's check): nobody may approve it, anyone allowed may reject it. Absent
   * in policies recorded before this rule, which then behave as they did.
   */
  unknownRequester?: string;
}

export type ApproverCheck = { ok: true } | { ok: false; reason: string };

/** Longest reason lifeboat keeps on record (restore requests and decisions): a paragraph, not a pasted log. */
export const MAX_REASON_CHARS = 2000;
/** Refused decisions a workflow keeps in its state; more are only counted. */
export const MAX_REFUSED = 50;

/** Longest incident id: ticket ids are short. */
export const MAX_INCIDENT_ID_CHARS = 128;

/**
 * The one form of an identity lifeboat compares and records: trimmed and lower-case, so
 * " Alice@Example.com" and "alice@example.com" are the same person everywhere (email-style
 * identities are case-insensitive in practice, and a requester must not approve their own
 * request by changing the case of their name).
 */
export function normalizeIdentity(identity: string): string {
  return identity.trim().toLowerCase();
}

export function checkApprover(policy: GatePolicy, approverAsGiven: string): ApproverCheck {
  const approver = normalizeIdentity(approverAsGiven);
  const held = Object.entries(policy.roster)
    .filter(([who]) => normalizeIdentity(who) === approver)
    .flatMap(([, roles]) => roles);
  if (!held.some((role) => policy.allowedRoles.includes(role))) {
    return { ok: false, reason: `${approver} does not hold a role that approves the ${policy.gate} gate in ${policy.environment} (${policy.allowedRoles.join(', ')})` };
  }
  if ((policy.production || !policy.selfApproval) && approver === normalizeIdentity(policy.requestedBy)) {
    return { ok: false, reason: `${approver} requested this and cannot approve it in ${policy.environment}: someone else must` };
  }
  return { ok: true };
}

/**
 * Distinct approvals a gate needs when the config does not say: in production a failover and a
 * backup deletion by hand need two people (the procedures' "backup deletion requires MFA": one
 * person alone can never destroy a backup), every other gate one.
 */
export function defaultRequiredApprovals(gate: GateName, production: boolean): number {
  return (gate === 'failover' || gate === 'backupDeletion') && production ? 2 : 1;
}

/** The policy's quorum: 1 for a policy recorded before quorums existed. */
export function requiredApprovals(policy: Pick<GatePolicy, 'required'>): number {
  return policy.required ?? 1;
}

/** How many people could ever approve a gate: everyone holding an allowed role, less the requester wherever the requester may not approve their own request. */
export function possibleApprovers(eligible: { people: number; requesterExcluded: boolean }): number {
  return Math.max(0, eligible.people - (eligible.requesterExcluded ? 1 : 0));
}

/**
 * Why a quorum can never be met, or undefined when it can: below one, or more than
 * `possibleApprovers` ("only 1 can ever approve (...)", for the caller to put after what it asks).
 */
export function quorumProblem(required: number, eligible: { people: number; requesterExcluded: boolean }): string | undefined {
  if (!Number.isInteger(required) || required < 1) return `must be a whole number of at least 1 (got ${required}): a gate needs someone to approve it`;
  const able = possibleApprovers(eligible);
  if (required <= able) return undefined;
  const why = eligible.requesterExcluded ? `${eligible.people} people hold one of its roles, and the requester may be one of them and cannot approve` : `${eligible.people} people hold one of its roles`;
  return `asks for ${required} approvers, but only ${able} can ever approve (${why})`;
}

/**
 * Whether this approver may add their approval to a quorum gate's approvals so far: the role
 * rule of `checkApprover`, and no person counted twice.
 */
export function checkQuorumApprover(policy: GatePolicy, approvals: ReadonlyArray<Pick<Decision, 'by'>>, approverAsGiven: string): ApproverCheck {
  const check = checkApprover(policy, approverAsGiven);
  if (!check.ok) return check;
  const approver = normalizeIdentity(approverAsGiven);
  if (approvals.some((a) => normalizeIdentity(a.by) === approver)) {
    const remaining = requiredApprovals(policy) - approvals.length;
    return { ok: false, reason: `${approver} has already approved the ${policy.gate} gate, which needs ${requiredApprovals(policy)} different people: ${remaining} more must come from someone else` };
  }
  return { ok: true };
}

/** "approval 1 of 2 recorded; waiting for one more": what a quorum gate's progress reads as, or undefined when the gate is decided. */
export function describeQuorumProgress(decision: Pick<Decision, 'decision' | 'approvals' | 'required'>): string | undefined {
  const required = decision.required ?? 1;
  const received = decision.approvals?.length ?? 0;
  if (decision.decision !== 'approved' || required <= 1 || received >= required) return undefined;
  const remaining = required - received;
  return `approval ${received} of ${required} recorded; waiting for ${remaining === 1 ? 'one more' : `${remaining} more`}`;
}

export interface DecisionInput {
  /** Identity of the person deciding, e.g. alice@example.com. */
  by: string;
  reason: string;
  /** Which gate this decision is for; defaults to the pending one. Guards against deciding a later gate by accident. */
  gate?: GateName;
  /** The decision signed with the decider's Ed25519 key (`lifeboat approve|reject --key`). */
  signed?: SignedDecision;
}

export interface Decision {
  gate: GateName;
  decision: 'approved' | 'rejected' | 'expired';
  by: string;
  reason: string;
  /** ISO-8601, workflow time. */
  at: string;
  /**
   * A gate that needs several people: every approval so far, in order. On the gate's final
   * decision this keeps each approver on record; on the answer to one approval of a gate still
   * open it tells how far the gate is (see `describeQuorumProgress`).
   */
  approvals?: Decision[];
  /** A gate that needs several people: how many distinct approvals it needs. */
  required?: number;
  /** The signed statement this decision was made with, when it was signed. */
  signed?: SignedDecision;
}

/** What a pending gate will do if approved, shown in the status query and the Web UI. */
export interface GatePrompt {
  title: string;
  /** Facts a person needs: target, restore point, destination, what stays untouched. */
  facts: Array<{ label: string; value: string }>;
}

export interface PendingGate {
  gate: GateName;
  prompt: GatePrompt;
  allowedRoles: string[];
  requestedBy: string;
  since: string;
  remindAt: string;
  abortAt: string;
  reminded: boolean;
  /** A gate that needs several people: how many, and the approvals given so far (absent for a one-person gate). */
  required?: number;
  approvals?: Array<{ by: string; reason: string; at: string }>;
}

export interface TimelineEntry {
  at: string;
  phase: string;
  note: string;
}

/** The answer to the `status` query, for the CLI (`lifeboat status`) and the Web UI. */
export interface WorkflowStatus {
  kind: string;
  target: string;
  phase: string;
  startedAt: string;
  rtoTargetSeconds?: number;
  pendingGate?: PendingGate;
  decisions: Decision[];
  timeline: TimelineEntry[];
  /** Refused signals: a decision sent without the right to make it. */
  refused: Array<{ at: string; by: string; reason: string }>;
  /** Refused signals beyond the MAX_REFUSED kept: counted, not kept (a flood cannot grow the state without limit). */
  refusedOverflow?: number;
  /** What the run works on, when it says (a drill: the backup under test). */
  subject?: string;
  /** Each validation as it completed (a drill's checks), in order. */
  validations?: Array<{ name: string; ok: boolean; detail: string; at: string }>;
  /** A run of a recovery plan (drFailover): each step with its state and, when a child workflow does it, the child's id. */
  planSteps?: Array<{ name: string; kind: string; state: string; detail?: string; childWorkflowId?: string }>;
}
