/**
 * Deleting one backup by hand (`lifeboat backups delete`): outside the retention policy, behind a
 * two-person gate in production. The rules for what may never be deleted this way are pure, so
 * the CLI (before anything starts) and the workflow (again, just before deleting) apply the same.
 */
import type { Decision } from './approval';
import type { RegionDeletion } from './retention';

export interface BackupDeletionInput {
  /** The catalog id, or the engine's name of the backup (a pgBackRest label, a dump or set name). */
  backupId: string;
  requestedBy: string;
  reason: string;
  incidentId?: string;
  /**
   * Also remove versions under GOVERNANCE retention (s3:BypassGovernanceRetention), only after the
   * gate approved exactly this. COMPLIANCE retention is never bypassed.
   */
  bypassGovernance?: boolean;
  /** Tests: gate timings instead of the config's approvals.remindAfter/abortAfter. */
  timings?: { remindAfterMs?: number; abortAfterMs?: number };
}

/** The backup a deletion is about, as the catalog has it, with its gate settings. */
export interface BackupDeletionPlan {
  catalogId: string;
  target: string;
  environment: string;
  backupType: string;
  engine: string;
  engineBackupId: string;
  status: string;
  completedAt?: string;
  /** Where copies are: `primary: store/bucket/key` lines for the gate. */
  copies: string[];
  /** Locked buckets among them, as `region: bucket (MODE N days)`. */
  locks: string[];
  gateTimings: { remindAfterMs: number; abortAfterMs: number };
}

export type BackupDeletionOutcome = 'deleted' | 'deleted-locked-copies-remain' | 'refused' | 'rejected' | 'expired' | 'cancelled';

export interface BackupDeletionResult {
  outcome: 'deleted' | 'deleted-locked-copies-remain' | 'refused';
  regions: RegionDeletion[];
  detail: string;
  /** When locked versions stay: the date the last of them can be removed. */
  lockedUntil?: string;
}

export interface BackupDeletionReport {
  workflowId: string;
  backupId: string;
  outcome: BackupDeletionOutcome;
  requestedBy: string;
  reason: string;
  plan?: BackupDeletionPlan;
  decision?: Decision;
  result?: BackupDeletionResult;
  detail: string;
}

/** One backup of the series, as the rules see it. */
export interface SeriesMember {
  id: string;
  engineBackupId: string;
  status: string;
  completedAt?: string;
  /** Engine names of the backups this one needs (a diff's full, a file set's earlier sets). */
  dependsOn: string[];
}

export interface DeletionSubject extends SeriesMember {
  target: string;
  legalHold: boolean;
}

const LIVE = ['complete', 'verified'];

/**
 * Why this backup must not be deleted by hand, in one sentence with what to do, or undefined.
 * `series` is every backup of the same target and kind (the subject included).
 */
export function deletionRefusal(subject: DeletionSubject, series: SeriesMember[]): string | undefined {
  const name = `${subject.engineBackupId} of ${subject.target}`;
  if (subject.status === 'running') return `backup ${name} is still running: cancel its backup workflow instead, it removes what it made`;
  if (subject.status === 'expired' || subject.status === 'deleted') return `backup ${name} is already ${subject.status}: nothing to delete`;
  if (!LIVE.includes(subject.status) && subject.status !== 'failed') return `backup ${name} has status ${subject.status}, which lifeboat does not delete by hand`;
  if (subject.legalHold) return `backup ${name} is under legal hold: release the hold (the catalog's legal_hold) before deleting it`;
  // A failed backup's leftovers may always go: nothing can restore from them.
  if (subject.status === 'failed') return undefined;
  const others = series.filter((b) => b.id !== subject.id && (LIVE.includes(b.status) || b.status === 'running'));
  const dependents = others.filter((b) => b.dependsOn.includes(subject.engineBackupId));
  if (dependents.length) return `backup ${name} is needed by ${dependents.map((d) => d.engineBackupId).join(', ')}, which would be lost with it: delete those first`;
  const live = [subject, ...others.filter((b) => LIVE.includes(b.status))].sort((a, b) => (a.completedAt ?? '').localeCompare(b.completedAt ?? ''));
  if (live[live.length - 1].id === subject.id) return `backup ${name} is its newest backup, the one the RPO rests on: take a new backup first, then delete this one`;
  if (subject.status === 'verified' && !others.some((b) => b.status === 'verified')) return `backup ${name} is its only verified backup, the one a restore is known to work from: verify another backup first`;
  return undefined;
}
