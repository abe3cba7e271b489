/**
 * The life of a restored instance after its restore: kept (listed, with an expiry), extended,
 * removed by hand behind a gate, or removed by the scheduled expiry after a notice. Pure, shared
 * by the catalog activities, the two workflows (instanceExpiry, instanceRemoval) and the CLI.
 *
 * The one rule that outweighs every expiry: an instance that has taken traffic (a cutover pointed
 * a name at it) is never removed by lifeboat, neither on expiry nor by `instances remove`.
 */
import type { PitrRestoreReport } from './restore';
import type { RunIdentity } from './ports';

/** One row of the catalog's restored_instances, as the CLI and the workflows see it. */
export interface RestoredInstance {
  instanceId: string;
  target: string;
  engine: string;
  /** The workflow type that made it (`pitrRestore`). */
  madeBy: string;
  owner: RunIdentity;
  /** The point its data is as of (ISO time, `latest`, `lsn:...`, `name:...`). */
  restorePoint: string;
  /** What it was restored from: the target's backups and WAL, and which region. */
  restoredFrom: string;
  endpoint?: string;
  createdAt: string;
  expiresAt: string;
  noticeSentAt?: string;
  servedTraffic: boolean;
  servedTrafficAt?: string;
  state: 'kept' | 'removed';
  removedAt?: string;
  removedBy?: string;
  removalDetail?: string;
}

/** The instance a restore report shows still exists, when it does (restored, or kept on failure). */
export function keptInstanceOf(report: PitrRestoreReport): { instanceId: string; endpoint?: { host: string; port: number }; servedTraffic: boolean } | undefined {
  const destination = report.destination;
  if (!destination) return undefined;
  const id = destination.instanceId;
  const restored = report.outcome === 'restored' || report.outcome === 'restored-and-cut-over';
  // Compensation says what it did: "kept <id> ..." (--keep, or it took traffic), or a failed rollback that keeps everything.
  const keptOnFailure = report.cleanup.some((c) => c.startsWith(`kept ${id}`) || c.startsWith('ROLLBACK FAILED'));
  if (!restored && !keptOnFailure) return undefined;
  // Any sign that a name was moved, or was about to be: treated as traffic taken (the safe side).
  const servedTraffic = !!report.cutover || !!report.traffic || report.cleanup.some((c) => c.includes('the name led clients to it') || c.startsWith('ROLLBACK FAILED'));
  return { instanceId: id, ...(destination.endpoint ? { endpoint: destination.endpoint } : {}), servedTraffic };
}

export type ExpiryVerdict =
  | { action: 'wait'; reason: string }
  | { action: 'notify'; reason: string }
  | { action: 'remove'; reason: string }
  | { action: 'keep'; reason: string };

/**
 * What the scheduled expiry does with one kept instance at `nowMs`. A notice always comes first:
 * an instance is removed only at or after its expiry AND after a notice was sent in an earlier
 * sweep (an expiry reached without one gets the notice now and goes at the next sweep).
 */
export function expiryVerdict(i: Pick<RestoredInstance, 'instanceId' | 'expiresAt' | 'noticeSentAt' | 'servedTraffic' | 'state'>, nowMs: number, noticeBeforeMs: number): ExpiryVerdict {
  if (i.state === 'removed') return { action: 'wait', reason: `${i.instanceId} is already removed` };
  if (i.servedTraffic) return { action: 'keep', reason: `${i.instanceId} has taken traffic, and lifeboat never removes such an instance` };
  const expires = Date.parse(i.expiresAt);
  // An extension clears the notice: the new expiry gets its own.
  const noticeSent = !!i.noticeSentAt;
  if (nowMs >= expires && noticeSent) return { action: 'remove', reason: `${i.instanceId} expired at ${i.expiresAt} and its notice went out at ${i.noticeSentAt}` };
  if (nowMs >= expires - noticeBeforeMs && !noticeSent) return { action: 'notify', reason: `${i.instanceId} expires at ${i.expiresAt}` };
  return { action: 'wait', reason: `${i.instanceId} expires at ${i.expiresAt}` };
}

/** Why `instances extend` / `instances remove` cannot act on this row, as one sentence, or undefined. */
export function extensionProblem(i: RestoredInstance | undefined, id: string): string | undefined {
  if (!i) return `there is no restored instance "${id}" in the catalog: \`lifeboat instances list\` shows the ids.`;
  if (i.state === 'removed') return `${id} was removed at ${i.removedAt ?? 'an earlier time'}${i.removedBy ? ` by ${i.removedBy}` : ''}, so there is nothing to extend: restore again for a new instance.`;
  return undefined;
}

export function removalProblem(i: RestoredInstance | undefined, id: string): string | undefined {
  if (!i) return `there is no restored instance "${id}" in the catalog: \`lifeboat instances list\` shows the ids.`;
  if (i.state === 'removed') return `${id} was already removed at ${i.removedAt ?? 'an earlier time'}${i.removedBy ? ` by ${i.removedBy}` : ''}: there is nothing left to remove.`;
  if (i.servedTraffic) {
    return `${id} has taken traffic${i.servedTrafficAt ? ` (since ${i.servedTrafficAt})` : ''}, and lifeboat never removes an instance that has: point the name away from it and make sure no client uses it, then remove it by hand (its data directory, or the RDS instance).`;
  }
  return undefined;
}

/** What the scheduled expiry and `instances remove` workflows take. */
export interface InstanceExpiryInput {
  requestedBy?: string;
  /** Overrides the config's restoredInstances.noticeBefore (tests). */
  noticeBeforeMs?: number;
}

export interface InstanceExpiryResult {
  startedAt: string;
  notified: string[];
  removed: Array<{ instanceId: string; detail: string }>;
  kept: Array<{ instanceId: string; reason: string }>;
  failed: Array<{ instanceId: string; problem: string }>;
}

export interface InstanceRemovalInput {
  instanceId: string;
  requestedBy: string;
  reason: string;
  incidentId?: string;
  /** Overrides of the config's gate timings (tests). */
  timings?: { remindAfterMs?: number; abortAfterMs?: number };
}

/** The catalog's answer before a removal, read again right before it. */
export interface InstanceRemovalPlan {
  instance: RestoredInstance;
  environment: string;
  production: boolean;
  gateTimings: { remindAfterMs: number; abortAfterMs: number };
}

export interface InstanceRemovalReport {
  workflowId: string;
  instanceId: string;
  outcome: 'removed' | 'rejected' | 'expired' | 'refused';
  requestedBy: string;
  reason: string;
  detail: string;
  approvedBy?: string[];
}

/** What the host found and did: `refused` when the instance turned out to have taken traffic or not to be lifeboat's. */
export interface HostRemoval {
  outcome: 'removed' | 'already-gone' | 'refused';
  detail: string;
  servedTraffic?: boolean;
}
