/**
 * Human approval gates: the rule for who may decide and the record of each decision (the
 * Temporal messages that carry decisions are in src/workflows/messages.ts). Pure and
 * deterministic: the workflow's update validators use the same rule the CLI and config checks use.
 */
export type GateName = 'restore' | 'emergencyRestore' | 'cutover' | 'failover';

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
}

export type ApproverCheck = { ok: true } | { ok: false; reason: string };

/** Longest reason lifeboat keeps on record (restore requests and decisions): a paragraph, not a pasted log. */
export const MAX_REASON_CHARS = 2000;
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

export interface DecisionInput {
  /** Identity of the person deciding, e.g. alice@example.com. */
  by: string;
  reason: string;
  /** Which gate this decision is for; defaults to the pending one. Guards against deciding a later gate by accident. */
  gate?: GateName;
}

export interface Decision {
  gate: GateName;
  decision: 'approved' | 'rejected' | 'expired';
  by: string;
  reason: string;
  /** ISO-8601, workflow time. */
  at: string;
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
  /** What the run works on, when it says (a drill: the backup under test). */
  subject?: string;
  /** Each validation as it completed (a drill's checks), in order. */
  validations?: Array<{ name: string; ok: boolean; detail: string; at: string }>;
  /** A run of a recovery plan (drFailover): each step with its state and, when a child workflow does it, the child's id. */
  planSteps?: Array<{ name: string; kind: string; state: string; detail?: string; childWorkflowId?: string }>;
}
