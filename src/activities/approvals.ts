/** Activities behind the approval gate: the policy from the config, notifications, the record. */
import { gatePolicy } from '../config';
import { Decision, GateName, GatePolicy } from '../domain/approval';
import { Notification, NotifyOutcome } from '../engines/notifier';
import { currentWorkflowId } from './context';
import { Ports } from './ports';

export function approvalActivities(ports: Ports) {
  return {
    async resolveGatePolicy(environment: string, gate: GateName, requestedBy: string): Promise<GatePolicy> {
      return gatePolicy(ports.config, environment, gate, requestedBy);
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
  };
}
