/**
 * Pending approvals, from Temporal: the catalog records decisions, not waits, so the running
 * workflows marked LifeboatAwaitingApproval are listed through visibility, and each one's
 * status query says which gate and since when. Bounded: at most MAX_PENDING are asked.
 */
import type { Client } from '@temporalio/client';
import type { WorkflowStatus } from '../domain/approval';
import { statusQuery } from '../workflows/messages';
import { LifeboatAwaitingApproval, LifeboatKind, LifeboatTarget } from '../workflows/search-attributes';
import { MetricFamily } from './exposition';
import { METRICS } from './definitions';

/** More waiting approvals than this is itself the finding; the figures then cover the first ones listed. */
export const MAX_PENDING = 100;

export interface PendingApproval {
  /** Not a label (unbounded): for people and tests reading the list. */
  workflowId: string;
  kind: string;
  target: string;
  gate: string;
  since?: string;
  startedAt: string;
}

export async function listPendingApprovals(client: Client, queryTimeoutMs = 5000): Promise<PendingApproval[]> {
  const found: Array<{ workflowId: string; runId: string; kind: string; target: string; startedAt: string }> = [];
  const query = `${LifeboatAwaitingApproval.name} = true AND ExecutionStatus = 'Running'`;
  for await (const w of client.workflow.list({ query, pageSize: MAX_PENDING })) {
    found.push({ workflowId: w.workflowId, runId: w.runId, kind: w.typedSearchAttributes.get(LifeboatKind) ?? 'unknown', target: w.typedSearchAttributes.get(LifeboatTarget) ?? '', startedAt: w.startTime.toISOString() });
    if (found.length >= MAX_PENDING) break;
  }
  return Promise.all(
    found.map(async (w): Promise<PendingApproval> => {
      let status: WorkflowStatus | undefined;
      try {
        const handle = client.workflow.getHandle(w.workflowId, w.runId);
        status = await Promise.race([handle.query(statusQuery), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), queryTimeoutMs).unref())]);
      } catch {
        // The gate closed between the listing and the query, or no worker answers: counted with what visibility said.
      }
      const gate = status?.pendingGate;
      return { workflowId: w.workflowId, kind: w.kind, target: w.target, gate: gate?.gate ?? 'unknown', startedAt: w.startedAt, ...(gate ? { since: gate.since } : {}) };
    }),
  );
}

/** Count and oldest wait per kind, target and gate; a wait whose start is unknown counts from the workflow's start. */
export function approvalFamilies(pending: readonly PendingApproval[], now: Date = new Date()): MetricFamily[] {
  const groups = new Map<string, { labels: { kind: string; target: string; gate: string }; n: number; oldest: number }>();
  for (const p of pending) {
    const key = [p.kind, p.target, p.gate].join('\u0000');
    const age = Math.max(0, Math.round((now.getTime() - Date.parse(p.since ?? p.startedAt)) / 1000));
    const g = groups.get(key) ?? { labels: { kind: p.kind, target: p.target, gate: p.gate }, n: 0, oldest: 0 };
    g.n += 1;
    g.oldest = Math.max(g.oldest, age);
    groups.set(key, g);
  }
  const rows = [...groups.values()];
  return [
    { name: METRICS.approvalsPending.name, help: METRICS.approvalsPending.help, type: 'gauge', samples: rows.map((g) => ({ labels: g.labels, value: g.n })) },
    { name: METRICS.approvalOldestAge.name, help: METRICS.approvalOldestAge.help, type: 'gauge', samples: rows.map((g) => ({ labels: g.labels, value: g.oldest })) },
  ];
}
