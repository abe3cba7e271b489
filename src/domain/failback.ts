/**
 * Failback: the planned way home after a failover, once the primary region is back. Per database
 * the failover kept: re-protect the DR primary into both regions, then (gate `failback`) fence it,
 * ship its final WAL, restore a NEW instance in the primary region up to that WAL, prove that it
 * holds exactly what the DR primary held, move the names home, check the application, and
 * (gate `retire`) remove the DR primary. JSON-safe: all of this lands in workflow history.
 */
import type { Decision } from './approval';
import type { FinalWal, Reprotection, SourceFence } from './ports';
import type { TrafficChange } from './restore';
import { formatDuration } from './format';

export interface FailbackInput {
  /** The drFailover workflow id this failback closes. */
  failoverId: string;
  requestedBy: string;
  reason: string;
  incidentId?: string;
  /** Tests shorten waits; production uses the config's. */
  timings?: { remindAfterMs?: number; abortAfterMs?: number; pollIntervalMs?: number; appCheckIntervalMs?: number };
}

/** One database the failover moved to the DR region, as the failback finds it in the catalog and the config. */
export interface FailbackDatabase {
  target: string;
  /** The DR primary the failover made and kept. */
  drInstanceId: string;
  drEndpoint: { host: string; port: number };
  /** The failover run recorded as the DR primary's owner: the only run whose instance a failback may retire. */
  failoverRun: { workflowId: string; runId: string };
  /** The names the failover moved to it, with their routers. */
  names: Array<{ dnsName: string; router: string; ttlSeconds: number }>;
}

export interface FailbackSettings {
  failoverId: string;
  environment: string;
  databases: FailbackDatabase[];
  /** The plan's application checks, each with the database it must be served from. */
  checks: Array<{ step: string; url: string; servesFrom?: string; timeoutMs: number }>;
  gateTimings: { remindAfterMs: number; abortAfterMs: number };
}

export type FailbackOutcome = 'failed-back' | 'rejected' | 'expired' | 'failed' | 'cancelled';

/** The proof that the restored instance holds every transaction the fenced DR primary committed. */
export interface NoLossProof {
  /** Row count per critical table on the fenced DR primary, and on the restored instance. */
  tables: Array<{ table: string; drPrimaryRows: number; restoredRows: number }>;
  /** Every table equal, and the verification's comparison passed. */
  ok: boolean;
  /** `compared`: every user table read on both sides; `final-snapshot` (RDS): the fenced instance cannot be read, the restore is from its final snapshot. */
  basis: 'compared' | 'final-snapshot';
  detail: string;
}

export interface FailbackDatabaseReport {
  target: string;
  drInstanceId: string;
  reprotection?: Reprotection;
  fence?: SourceFence;
  finalWal?: FinalWal;
  /** The new instance in the primary region. */
  restoredInstanceId?: string;
  restoredEndpoint?: { host: string; port: number };
  proof?: NoLossProof;
  names: Array<{ name: string; from: string; to: string; state: 'moved' | 'rolled-back' | 'rollback-failed' | 'not-moved'; detail: string; change?: TrafficChange }>;
  /** pgBackRest: the new primary's archiving and first backup; RDS: its protection. */
  protection?: string[];
  retired?: string;
  seconds: { reprotect?: number; writeOutage?: number; restore?: number };
}

export interface FailbackReport {
  workflowId: string;
  failoverId: string;
  outcome: FailbackOutcome;
  requestedBy: string;
  reason: string;
  incidentId?: string;
  startedAt: string;
  finishedAt: string;
  databases: FailbackDatabaseReport[];
  /** From the fence of the first DR primary to the application answering from the primary region. */
  writeOutageSeconds?: number;
  applicationServingAt?: string;
  decisions: Decision[];
  notes: string[];
  cleanup: string[];
  failure?: string;
}

/** The proof's verdict from the row counts: equal everywhere, and the verifier's comparison passed. */
export function noLossProof(tables: NoLossProof['tables'], verification: { ok: boolean; failed?: string }): NoLossProof {
  const differing = tables.filter((t) => t.drPrimaryRows !== t.restoredRows);
  const ok = differing.length === 0 && verification.ok;
  const counts = tables.map((t) => `${t.table} ${t.restoredRows}/${t.drPrimaryRows}`).join(', ');
  const detail = ok
    ? `no committed transaction lost: every table holds exactly what the fenced DR primary held (${counts || 'no critical tables'}), and the checksums match`
    : differing.length
      ? `DATA DIFFERS: ${differing.map((t) => `${t.table} has ${t.restoredRows} rows, the fenced DR primary ${t.drPrimaryRows}`).join('; ')}`
      : `the verification failed: ${verification.failed ?? 'see its checks'}`;
  return { tables, ok, basis: 'compared', detail };
}

export function failbackMarkdown(r: FailbackReport): string {
  const lines = [
    `# Failback ${r.workflowId}: ${r.outcome.toUpperCase()}`,
    '',
    `- Closes failover: ${r.failoverId}`,
    `- Requested by ${r.requestedBy}: ${r.reason}${r.incidentId ? ` (incident ${r.incidentId})` : ''}`,
    `- Started ${r.startedAt}, finished ${r.finishedAt}`,
    `- Write outage (DR primary fenced until the application answered from the primary region): ${r.writeOutageSeconds !== undefined ? formatDuration(r.writeOutageSeconds) : 'not measured'}`,
  ];
  if (r.failure) lines.push(`- Failure: ${r.failure}`);
  for (const d of r.databases) {
    lines.push('', `## ${d.target}`, '', `- DR primary: ${d.drInstanceId}`);
    if (d.reprotection) lines.push(`- Re-protected: ${d.reprotection.measures.join('; ')}`);
    if (d.fence) lines.push(`- Fence: ${d.fence.detail}`);
    if (d.finalWal) lines.push(`- Final WAL: ${d.finalWal.detail}`);
    if (d.restoredInstanceId) lines.push(`- Restored in the primary region: ${d.restoredInstanceId}${d.restoredEndpoint ? ` at ${d.restoredEndpoint.host}:${d.restoredEndpoint.port}` : ''}`);
    if (d.proof) lines.push(`- Proof: ${d.proof.detail}`);
    for (const n of d.names) lines.push(`- Name ${n.name}: ${n.from} -> ${n.to} (${n.state}): ${n.detail}`);
    if (d.protection) lines.push(`- New primary protected: ${d.protection.join('; ')}`);
    if (d.retired) lines.push(`- DR primary: ${d.retired}`);
  }
  if (r.decisions.length) lines.push('', '## Decisions', '', ...r.decisions.map((d) => `- ${d.gate}: ${d.decision} by ${d.by} at ${d.at}: ${d.reason}`));
  if (r.notes.length) lines.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  if (r.cleanup.length) lines.push('', '## Cleanup', '', ...r.cleanup.map((c) => `- ${c}`));
  return `${lines.join('\n')}\n`;
}
