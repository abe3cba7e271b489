/** Activities behind the approval gate: the policy from the config, notifications, the record. */
import { gatePolicy } from '../config';
import { Decision, defaultRequiredApprovals, GateName, GatePolicy } from '../domain/approval';
import { canonicalJson, DecisionEvidence } from '../domain/signed-decision';
import { Notification, NotifyOutcome } from '../engines/notifier';
import { evidenceStoreFor } from './drills';
import { currentWorkflowId } from './context';
import { Ports } from './ports';

/** The catalog's record of one approval of a quorum gate: a workflow_events row of this kind. */
export const APPROVAL_EVENT_KIND = 'approval';
/** The catalog's pointer to a decision's evidence: a workflow_events row of this kind. */
export const DECISION_EVIDENCE_EVENT_KIND = 'decision-evidence';

/** Where one gate decision's evidence lives in the evidence bucket. */
export function decisionEvidenceKey(prefix: string, e: Pick<DecisionEvidence, 'workflowId' | 'runId' | 'sequence' | 'gate'>): string {
  return `${prefix}decisions/${encodeURIComponent(e.workflowId)}/${e.runId}/${String(e.sequence).padStart(2, '0')}-${e.gate}.json`;
}

/** What became of a decision's evidence: where it is, or why it is not there (never a failure: a restore must not wait on the evidence bucket). */
export interface DecisionEvidenceOutcome {
  key?: string;
  sha256?: string;
  copies?: Array<{ region: string; bucket: string; versionId: string; retainUntil: string }>;
  problem?: string;
}

export function approvalActivities(ports: Ports) {
  return {
    /** The gate's rule from the config, with its quorum: `environments.<env>.approvers.<gate>`, else the default for the tier. */
    async resolveGatePolicy(environment: string, gate: GateName, requestedBy: string): Promise<GatePolicy> {
      const policy = gatePolicy(ports.config, environment, gate, requestedBy);
      const configured = ports.config.environments[environment]?.approvers?.[gate];
      return { ...policy, required: configured ?? defaultRequiredApprovals(gate, policy.production) };
    },

    /**
     * A gate's decision with its signatures and the facts signed, written once to every evidence
     * bucket (canonical JSON, so the bytes are the record), its location noted in the catalog.
     */
    async recordDecisionEvidence(evidence: DecisionEvidence): Promise<DecisionEvidenceOutcome> {
      try {
        const key = decisionEvidenceKey(ports.config.evidence.prefix, evidence);
        const receipt = await evidenceStoreFor(ports.config, ports).putWherePossible(key, Buffer.from(canonicalJson(evidence)), 'application/json');
        const copies = receipt.copies.map(({ region, bucket, versionId, retainUntil }) => ({ region, bucket, versionId, retainUntil }));
        const missing = receipt.missing.map((m) => `${m.bucket} (${m.region}): ${m.problem}`);
        await ports.catalog.query(
          `INSERT INTO workflow_events (workflow_id, kind, target, event, details)
           SELECT $1, $2, NULL, $3, $4::jsonb
           WHERE NOT EXISTS (SELECT 1 FROM workflow_events WHERE workflow_id = $1 AND kind = $2 AND details->>'key' = $5)`,
          [evidence.workflowId, DECISION_EVIDENCE_EVENT_KIND, `${evidence.gate} ${evidence.decision.decision}`, JSON.stringify({ key, sha256: receipt.sha256, bytes: receipt.bytes, copies, runId: evidence.runId }), key],
        );
        return { key, sha256: receipt.sha256, copies, ...(missing.length ? { problem: `not yet copied to ${missing.join('; ')}` } : {}) };
      } catch (err) {
        return { problem: (err as Error).message };
      }
    },

    /** Best effort: resolves with whether the webhook took it, never fails the workflow that asked. */
    async notify(notification: Notification): Promise<NotifyOutcome> {
      return ports.notifier.notify({ ...notification, workflowId: notification.workflowId ?? currentWorkflowId() });
    },

    /** One row per workflow and gate: a retried activity finds its row and leaves it. */
    async recordDecision(decision: Decision): Promise<void> {
      await ports.catalog.query(
        `INSERT INTO approvals (workflow_id, gate, decision, decided_by, reason, decided_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (workflow_id, gate) DO NOTHING`,
        [currentWorkflowId(), decision.gate, decision.decision, decision.by, decision.reason, decision.at],
      );
    },

    /**
     * One approval of a gate that needs several people, recorded as it comes (a workflow_events
     * row of kind `approval`; the approvals table keeps one row per gate: its final decision).
     * A retried activity finds the row of the same person and gate and leaves it.
     */
    async recordApproval(approval: Decision, progress: { received: number; required: number }): Promise<void> {
      const workflowId = currentWorkflowId();
      await ports.catalog.query(
        `INSERT INTO workflow_events (workflow_id, kind, target, event, details)
         SELECT $1, $2, NULL, $3, $4::jsonb
         WHERE NOT EXISTS (SELECT 1 FROM workflow_events WHERE workflow_id = $1 AND kind = $2 AND details->>'gate' = $5 AND details->>'by' = $6)`,
        [workflowId, APPROVAL_EVENT_KIND, `approval ${progress.received} of ${progress.required}`, JSON.stringify({ ...approval, ...progress }), approval.gate, approval.by],
      );
    },
  };
}
