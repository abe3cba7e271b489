/**
 * Signed decisions: what a person signs when they approve or reject a gate, and the check the
 * gate (and `lifeboat audit verify`, later and offline) applies to it. Pure and synchronous, so
 * it runs in a workflow's update validator: Ed25519 and SHA-256 come from @noble (pure JS), never
 * from node:crypto, which Temporal's workflow sandbox does not have.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import type { Decision, GateName, GatePrompt } from './approval';

/** Names what the bytes are, so a signature made for anything else never passes for a decision. */
export const DECISION_PURPOSE = 'lifeboat-decision/v1';
/** A signed decision is good for at most this long: a stolen or stale signature is worth little. */
export const MAX_SIGNATURE_LIFETIME_MS = 24 * 3600 * 1000;
/** How long `lifeboat approve` makes a signature good for, unless told otherwise. */
export const DEFAULT_SIGNATURE_LIFETIME_MS = 10 * 60 * 1000;
/** Clock difference tolerated between the signer and the workflow (a signature "issued" slightly in the future). */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

/** Exactly what a person signs. Every field is compared with the workflow's own view before the signature counts. */
export interface DecisionStatement {
  purpose: typeof DECISION_PURPOSE;
  workflowId: string;
  runId: string;
  gate: GateName;
  decision: 'approved' | 'rejected';
  /** The signer, in the one form identities are compared in (normalizeIdentity). */
  by: string;
  reason: string;
  /** SHA-256 (hex) of the canonical JSON of what the gate shows: `factsDigest`. */
  factsSha256: string;
  /** Random, once per signature: the same signature is never counted twice. */
  nonce: string;
  /** ISO-8601. */
  issuedAt: string;
  expiresAt: string;
}

export interface SignedDecision {
  statement: DecisionStatement;
  /** Ed25519 signature over `statementBytes(statement)`, hex. */
  signature: string;
  /** The signer's public key (32 bytes, hex), to tell a wrong key from a damaged signature. */
  publicKey?: string;
}

/** How a gate treats signatures, resolved from the config when the gate opens (absent in policies recorded before signatures existed). */
export interface SigningPolicy {
  /** `refuse`: every decision must be signed (always so in production); `allow`: unsigned ones count too. */
  unsignedDecisions: 'refuse' | 'allow';
  /** identity (normalized) -> Ed25519 public key (32 bytes, hex), for everyone who may decide this gate. */
  keys: Record<string, string>;
}

/** JSON with object keys sorted at every level and no whitespace: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (value === undefined) return 'null';
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonical JSON has no form for a non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** The digest a signer commits to: the gate and exactly the prompt it shows (title and every fact, in order). */
export function factsDigest(gate: GateName, prompt: GatePrompt): string {
  return sha256Hex(canonicalJson({ gate, prompt: { title: prompt.title, facts: prompt.facts.map((f) => ({ label: f.label, value: f.value })) } }));
}

/** The bytes that are signed. */
export function statementBytes(statement: DecisionStatement): Uint8Array {
  return utf8ToBytes(canonicalJson(statement));
}

/** Whether `signature` is `publicKey`'s Ed25519 signature of the statement; malformed input is simply false. */
export function signatureVerifies(signed: SignedDecision, publicKeyHex: string): boolean {
  try {
    return ed25519.verify(signed.signature, statementBytes(signed.statement), publicKeyHex);
  } catch {
    return false;
  }
}

/** What the gate knows when it checks a signed decision. */
export interface SignatureContext {
  signing: SigningPolicy;
  environment: string;
  production: boolean;
  workflowId: string;
  runId: string;
  gate: GateName;
  prompt: GatePrompt;
  /** Workflow time (deterministic inside a workflow). */
  now: number;
  /** Nonces of signatures the workflow has already counted. */
  usedNonces: ReadonlySet<string>;
}

/**
 * Why a decision's signature does not count, or undefined when it does (or when the gate takes
 * unsigned decisions and none was given). `by` and `reason` are what the decision claims.
 */
export function signatureProblem(ctx: SignatureContext, verdict: 'approved' | 'rejected', claim: { by: string; reason: string; signed?: SignedDecision }, normalize: (who: string) => string): string | undefined {
  const by = normalize(claim.by);
  const signed = claim.signed;
  if (!signed) {
    if (ctx.signing.unsignedDecisions === 'allow' && !ctx.production) return undefined;
    return `unsigned decisions are refused in ${ctx.environment}: sign it with your Ed25519 key (lifeboat ${verdict === 'approved' ? 'approve' : 'reject'} --key <file>)`;
  }
  const s = signed.statement;
  if (!s || typeof s !== 'object' || typeof signed.signature !== 'string') return 'the signature is malformed: sign it again with lifeboat approve|reject --key <file>';
  const key = ctx.signing.keys[by];
  if (!key) return `${by} has no public key in the config (publicKeys), so their signature cannot be checked: add it there`;
  if (signed.publicKey !== undefined && signed.publicKey.toLowerCase() !== key.toLowerCase()) return `the decision is signed with a key that is not ${by}'s (publicKeys in the config): sign with your own key`;
  if (!signatureVerifies(signed, key)) return `the signature does not verify with ${by}'s public key: it was not made by ${by}'s key over this decision`;
  // The signature is genuine: now it must be about this very decision.
  if (s.purpose !== DECISION_PURPOSE) return `the signed statement is not a lifeboat decision (${String(s.purpose)})`;
  if (s.workflowId !== ctx.workflowId || s.runId !== ctx.runId) return `the signature is for workflow ${s.workflowId} run ${s.runId}, not this one (${ctx.workflowId} run ${ctx.runId})`;
  if (s.gate !== ctx.gate) return `the signature is for the ${s.gate} gate, not the pending ${ctx.gate} gate`;
  if (s.decision !== verdict) return `the signature says ${s.decision}, not ${verdict}`;
  if (normalize(s.by) !== by) return `the signature is by ${normalize(s.by)}, not ${by}`;
  if (s.reason !== claim.reason) return 'the signed reason differs from the reason sent: sign the reason you send';
  if (s.factsSha256 !== factsDigest(ctx.gate, ctx.prompt)) return `the signature covers other facts than the ${ctx.gate} gate shows now: check \`lifeboat status\` and sign again`;
  const issued = Date.parse(s.issuedAt);
  const expires = Date.parse(s.expiresAt);
  if (!Number.isFinite(issued) || !Number.isFinite(expires)) return 'the signed statement has no valid issuedAt/expiresAt time';
  if (expires <= ctx.now) return `the signature expired at ${s.expiresAt}: sign again`;
  if (issued > ctx.now + CLOCK_SKEW_MS) return `the signature was issued at ${s.issuedAt}, in the future: check the signer's clock`;
  if (expires - issued > MAX_SIGNATURE_LIFETIME_MS) return `the signature is good for more than ${MAX_SIGNATURE_LIFETIME_MS / 3600000} h: sign again with a shorter expiry`;
  if (!s.nonce || ctx.usedNonces.has(s.nonce)) return 'this signature was already used (a replay): sign the decision again';
  return undefined;
}

/** One gate's decision as written to the evidence bucket: everything `lifeboat audit verify` needs to re-check it offline. */
export interface DecisionEvidence {
  kind: 'lifeboat-decision-evidence/v1';
  workflowId: string;
  runId: string;
  /** Which decision of the run this is (0 for the first gate decided). */
  sequence: number;
  environment: string;
  production: boolean;
  requestedBy: string;
  gate: GateName;
  /** Exactly what the gate showed. */
  prompt: GatePrompt;
  factsSha256: string;
  unsignedDecisions: 'refuse' | 'allow';
  /** The public keys the signatures were checked with, of the people who decided. */
  publicKeys: Record<string, string>;
  /** The gate's final decision, with every approval and signature. */
  decision: Decision;
  /** Decisions refused while the gate was open (bounded). */
  refused: Array<{ at: string; by: string; reason: string }>;
}

/** A signature found in evidence, re-checked: who decided what, when, and whether it holds. */
export interface AuditedSignature {
  gate: GateName;
  decision: string;
  by: string;
  at: string;
  signed: boolean;
  ok: boolean;
  detail: string;
}

/**
 * Re-checks every decision in one evidence record, offline: each signature against the signer's
 * key, and against the record's own facts, workflow and run (expiry is judged at the decision's
 * time, not today's). An unsigned decision passes only where the gate took unsigned ones.
 */
export function auditDecisionEvidence(e: DecisionEvidence, normalize: (who: string) => string, keysNow?: Record<string, string>): AuditedSignature[] {
  const out: AuditedSignature[] = [];
  const digest = factsDigest(e.gate, e.prompt);
  for (const d of recordedDecisions(e)) {
    const base = { gate: e.gate, decision: d.decision, by: d.by, at: d.at, signed: Boolean(d.signed) };
    if (d.decision === 'expired') {
      out.push({ ...base, ok: true, detail: 'expired: nobody decided' });
      continue;
    }
    const problems: string[] = [];
    if (digest !== e.factsSha256) problems.push('the recorded facts do not give the recorded digest');
    if (!d.signed) {
      if (e.unsignedDecisions !== 'allow' || e.production) problems.push('unsigned, in an environment that refuses unsigned decisions');
    } else {
      const key = e.publicKeys[normalize(d.by)];
      const s = d.signed.statement;
      if (!key) problems.push(`no public key of ${d.by} on record`);
      else if (!signatureVerifies(d.signed, key)) problems.push(`the signature does not verify with ${d.by}'s key`);
      if (keysNow && key && keysNow[normalize(d.by)] && keysNow[normalize(d.by)] !== key) problems.push(`${d.by}'s key on record is not the one in the config now (rotated?)`);
      if (s.workflowId !== e.workflowId || s.runId !== e.runId) problems.push('signed for another workflow or run');
      if (s.gate !== e.gate || s.decision !== d.decision || normalize(s.by) !== normalize(d.by) || s.reason !== d.reason) problems.push('the signed statement differs from the recorded decision');
      if (s.factsSha256 !== digest) problems.push('signed against other facts than the gate showed');
      if (!(Date.parse(s.expiresAt) > Date.parse(d.at))) problems.push(`the signature had expired (${s.expiresAt}) when it was counted (${d.at})`);
    }
    out.push({ ...base, ok: problems.length === 0, detail: problems.length ? problems.join('; ') : d.signed ? `signature verifies with ${d.by}'s key; facts ${digest.slice(0, 12)}…` : `unsigned (allowed in ${e.environment})` });
  }
  return out;
}

/** A decision as the workflow's history carries it: an accepted approve/reject update (with the decision it returned) or a decision signal. */
export interface HistoryDecision {
  runId: string;
  /** `update`: the gate accepted it (the update completed with this decision); `signal`: delivered, the gate may have refused it. */
  via: 'update' | 'signal';
  gate?: GateName;
  decision: 'approved' | 'rejected';
  by: string;
  reason: string;
  at?: string;
  /** The signature's nonce, when the decision was signed. */
  nonce?: string;
}

/** One decision of an evidence record, with whether its audit held. */
export interface EvidenceDecision {
  runId: string;
  gate: GateName;
  decision: 'approved' | 'rejected';
  by: string;
  reason: string;
  at: string;
  nonce?: string;
  verifies: boolean;
}

/** Every decision of an evidence record, in the order auditDecisionEvidence checks them: a quorum's approvals, then a rejection. */
function recordedDecisions(e: DecisionEvidence): Decision[] {
  return e.decision.approvals?.length ? [...e.decision.approvals, ...(e.decision.decision === 'rejected' ? [e.decision] : [])] : [e.decision];
}

/**
 * Every person's decision in an evidence record (never an expiry), each with whether its audit
 * held: `audited` is auditDecisionEvidence's answer for the record, `recordOk` whether the record
 * itself belongs where it was found.
 */
export function evidenceDecisions(e: DecisionEvidence, audited: AuditedSignature[], recordOk: boolean): EvidenceDecision[] {
  return recordedDecisions(e).flatMap((d, i) =>
    d.decision === 'expired' ? [] : [{ runId: e.runId, gate: e.gate, decision: d.decision, by: d.by, reason: d.reason, at: d.at, nonce: d.signed?.statement?.nonce, verifies: recordOk && audited[i]?.ok === true }],
  );
}

/**
 * Evidence against history, both ways: every decision the history accepted (a completed update)
 * has evidence whose signature verifies, and every decision the evidence claims is one the
 * history has (an update, or a signal the gate took). Decisions are matched by run, gate,
 * verdict, person and the signature's nonce (the reason, for an unsigned one). Each mismatch is
 * one sentence.
 */
export function crossCheckHistory(history: HistoryDecision[], evidence: EvidenceDecision[], normalize: (who: string) => string): string[] {
  const key = (d: { runId: string; gate?: string; decision: string; by: string; reason: string; nonce?: string }, gate = d.gate) =>
    [d.runId, gate, d.decision, normalize(d.by), d.nonce ? `nonce:${d.nonce}` : `unsigned:${d.reason}`].join('\u0000');
  const evidenceByKey = new Map<string, EvidenceDecision>();
  for (const e of evidence) evidenceByKey.set(key(e), e);
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const h of history) {
    // A signal names its gate only when the sender did; it is for the gate its evidence says.
    const match = h.gate ? evidenceByKey.get(key(h)) : evidence.find((e) => key(e) === key(h, e.gate));
    const what = `${h.decision === 'approved' ? 'approval' : 'rejection'}${h.gate ? ` of the ${h.gate} gate` : ''} by ${normalize(h.by)}${h.at ? ` at ${h.at}` : ''} (run ${h.runId})`;
    if (match) {
      seen.add(key(match));
      if (!match.verifies) problems.push(`the history accepted the ${what}, but its evidence does not verify`);
    } else if (h.via === 'update') problems.push(`the history accepted the ${what}, but no evidence record holds it`);
    // A signal without evidence is one the gate refused (refusals are on record in the evidence, not matched here).
  }
  for (const e of evidence) {
    if (!seen.has(key(e))) problems.push(`the evidence claims the ${e.decision === 'approved' ? 'approval' : 'rejection'} of the ${e.gate} gate by ${normalize(e.by)} at ${e.at} (run ${e.runId}), which the workflow's history does not have`);
  }
  return problems;
}
