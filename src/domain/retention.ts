/**
 * Which backups retention keeps, as a pure function of the backups, the policy and "now".
 *
 * Backups are judged within their SERIES: one target and one kind of backup (pgBackRest or
 * another database engine, logical dumps, file backup sets), so a daily logical dump never
 * stands in for a physical backup. All calendar arithmetic is in UTC.
 *
 * Classes (a backup can have several):
 *   daily    every backup.
 *   weekly   the first backup (earliest completion) of its ISO week, Monday 00:00 to Sunday 24:00.
 *   monthly  the first backup of its calendar month.
 *
 * A backup is KEPT when any of these holds, and expires otherwise:
 *   1. it completed less than `daily` days before now;
 *   2. it is a weekly that completed less than `weekly` weeks (× 7 days) before now;
 *   3. it is a monthly that completed less than `monthly` calendar months before now
 *      (same day and time of day, N months back; the 31st clamps to the month's last day);
 *   4. it is the newest verified backup of its series (so never the last verified backup of a target);
 *   5. it is under legal hold;
 *   6. a kept backup depends on it (an incremental's base), transitively;
 *   7. its completion time is missing or not a time (nothing is deleted on a guess).
 * A FAILED backup (it never verified; its run is over) is no daily, weekly or monthly and nothing
 * restores from it: whatever it left behind (a partial pgBackRest set, a snapshot, objects,
 * incomplete uploads) expires at the next run, unless it is under legal hold or a kept backup
 * depends on it.
 * Windows are open at the old end: a backup exactly `daily` days old is no longer a daily.
 * Classification looks only at the backups it is given (complete or verified ones), so the first
 * backup of a week stays the weekly for as long as it is kept.
 */

export interface RetentionPolicy {
  /** Days every backup is kept. */
  daily: number;
  /** Weeks a weekly is kept; 0 keeps none beyond the dailies. */
  weekly: number;
  /** Calendar months a monthly is kept; 0 keeps none beyond the weeklies. */
  monthly: number;
}

export type RetentionClass = 'daily' | 'weekly' | 'monthly';

export interface RetentionCandidate {
  /** Unique among the candidates (the catalog row id). */
  id: string;
  /** Target and kind, e.g. `app/logical`; backups are judged only against their own series. */
  series: string;
  /** ISO-8601 completion time. */
  completedAt: string;
  verified: boolean;
  /** The backup failed: it never counts as a daily, weekly or monthly, and expires unless held or needed. */
  failed?: boolean;
  /** Why it is held (catalog flag or the bucket target's legal hold), when it is. */
  legalHold?: string;
  /** Ids of candidates this backup needs to be restorable (an incremental's bases). */
  dependsOn?: string[];
}

export interface RetentionDecision {
  id: string;
  series: string;
  completedAt: string;
  classes: RetentionClass[];
  action: 'keep' | 'expire';
  /** Why it is kept, or why it expires; one short phrase each. */
  reasons: string[];
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** `2026-01-19` for any time in the ISO week that starts on Monday 19 January 2026 (UTC). */
export function isoWeekOf(at: Date): string {
  const sinceMonday = (at.getUTCDay() + 6) % 7;
  const monday = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() - sinceMonday));
  return monday.toISOString().slice(0, 10);
}

/** `2026-01` */
export function monthOf(at: Date): string {
  return at.toISOString().slice(0, 7);
}

/** The same instant `months` calendar months earlier, the day clamped to the month's length. */
export function monthsBefore(at: Date, months: number): Date {
  const totalMonths = at.getUTCFullYear() * 12 + at.getUTCMonth() - months;
  const year = Math.floor(totalMonths / 12);
  const month = totalMonths - year * 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return new Date(Date.UTC(year, month, Math.min(at.getUTCDate(), lastDay), at.getUTCHours(), at.getUTCMinutes(), at.getUTCSeconds(), at.getUTCMilliseconds()));
}

/** The oldest completion time each class still keeps (exclusive). */
export function retentionCutoffs(policy: RetentionPolicy, now: Date): Record<RetentionClass, Date> {
  return {
    daily: new Date(now.getTime() - policy.daily * DAY_MS),
    weekly: new Date(now.getTime() - policy.weekly * 7 * DAY_MS),
    monthly: monthsBefore(now, policy.monthly),
  };
}

function checkPolicy(policy: RetentionPolicy): void {
  for (const [name, value, min] of [
    ['daily', policy.daily, 1],
    ['weekly', policy.weekly, 0],
    ['monthly', policy.monthly, 0],
  ] as const) {
    if (!Number.isInteger(value) || value < min) throw new Error(`retention.${name} must be a whole number of at least ${min}, not ${String(value)}`);
  }
}

/**
 * Decides every candidate. The result is ordered by series, then newest first: the order to
 * delete in, so what depends on a backup goes before the backup itself.
 */
export function planRetention(candidates: RetentionCandidate[], policy: RetentionPolicy, now: Date): RetentionDecision[] {
  checkPolicy(policy);
  if (Number.isNaN(now.getTime())) throw new Error('retention needs a valid "now"');
  const ids = new Set<string>();
  for (const c of candidates) {
    if (ids.has(c.id)) throw new Error(`backup ${c.id} is listed twice`);
    ids.add(c.id);
  }
  const cutoff = retentionCutoffs(policy, now);
  const time = (c: RetentionCandidate) => Date.parse(c.completedAt);
  const decisions = new Map<string, RetentionDecision & { keepReasons: string[] }>();
  const bySeries = new Map<string, RetentionCandidate[]>();
  for (const c of candidates) bySeries.set(c.series, [...(bySeries.get(c.series) ?? []), c]);

  for (const [series, all] of bySeries) {
    for (const c of all.filter((m) => m.failed)) {
      const d = { id: c.id, series, completedAt: c.completedAt, classes: [] as RetentionClass[], action: 'keep' as const, reasons: [] as string[], keepReasons: [] as string[] };
      decisions.set(c.id, d);
      if (c.legalHold) d.keepReasons.push(`legal hold: ${c.legalHold}`);
    }
    const members = all.filter((m) => !m.failed);
    const dated = members.filter((c) => !Number.isNaN(time(c))).sort((a, b) => time(a) - time(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const weeksSeen = new Set<string>();
    const monthsSeen = new Set<string>();
    const newestVerified = [...dated].reverse().find((c) => c.verified);
    for (const c of members) {
      const at = new Date(time(c));
      const d = { id: c.id, series, completedAt: c.completedAt, classes: [] as RetentionClass[], action: 'keep' as const, reasons: [] as string[], keepReasons: [] as string[] };
      decisions.set(c.id, d);
      if (Number.isNaN(at.getTime())) d.keepReasons.push(`its completion time ${JSON.stringify(c.completedAt)} is not a time`);
    }
    for (const c of dated) {
      const d = decisions.get(c.id)!;
      const at = new Date(time(c));
      d.classes.push('daily');
      const week = isoWeekOf(at);
      if (!weeksSeen.has(week)) {
        weeksSeen.add(week);
        d.classes.push('weekly');
      }
      const month = monthOf(at);
      if (!monthsSeen.has(month)) {
        monthsSeen.add(month);
        d.classes.push('monthly');
      }
      if (at > cutoff.daily) d.keepReasons.push(`daily: younger than ${policy.daily} days`);
      if (d.classes.includes('weekly') && policy.weekly > 0 && at > cutoff.weekly) d.keepReasons.push(`weekly (first of the week of ${week}): younger than ${policy.weekly} weeks`);
      if (d.classes.includes('monthly') && policy.monthly > 0 && at > cutoff.monthly) d.keepReasons.push(`monthly (first of ${month}): younger than ${policy.monthly} months`);
      if (c === newestVerified) d.keepReasons.push(`the last verified backup of ${series}`);
      if (c.legalHold) d.keepReasons.push(`legal hold: ${c.legalHold}`);
    }
  }

  // A kept backup keeps everything it needs, however old.
  const byId = new Map(candidates.map((c) => [c.id, c]));
  const queue = candidates.filter((c) => decisions.get(c.id)!.keepReasons.length > 0);
  while (queue.length) {
    const kept = queue.shift()!;
    for (const dep of kept.dependsOn ?? []) {
      const base = byId.get(dep);
      if (!base) continue;
      const d = decisions.get(dep)!;
      const reason = `needed by ${kept.id}`;
      if (d.keepReasons.includes(reason)) continue;
      const wasKept = d.keepReasons.length > 0;
      d.keepReasons.push(reason);
      if (!wasKept) queue.push(base);
    }
  }

  const out: RetentionDecision[] = [];
  for (const d of decisions.values()) {
    const { keepReasons, ...rest } = d;
    if (keepReasons.length) out.push({ ...rest, action: 'keep', reasons: keepReasons });
    else if (byId.get(d.id)?.failed) out.push({ ...rest, action: 'expire', reasons: ['a failed backup: nothing restores from it'] });
    else {
      const why = [`older than ${policy.daily} days`];
      if (d.classes.includes('weekly')) why.push(policy.weekly > 0 ? `a weekly older than ${policy.weekly} weeks` : 'weeklies are not kept');
      if (d.classes.includes('monthly')) why.push(policy.monthly > 0 ? `a monthly older than ${policy.monthly} months` : 'monthlies are not kept');
      out.push({ ...rest, action: 'expire', reasons: [why.join(', ')] });
    }
  }
  return out.sort((a, b) => (a.series < b.series ? -1 : a.series > b.series ? 1 : 0) || (Date.parse(b.completedAt) || 0) - (Date.parse(a.completedAt) || 0) || (a.id < b.id ? -1 : 1));
}

// ----- the retention workflow's input and results -----------------------------------------------

export interface RetentionInput {
  /** One target (database or bucket); default every target in the config. */
  target?: string;
  /** Plan and report only; nothing is deleted or recorded. */
  dryRun?: boolean;
  /** The time retention judges ages against (ISO-8601); default the workflow's clock. */
  now?: string;
  /**
   * Expiries per workflow run (default 100): after that many the run continues as new, so the
   * history of a retention over thousands of backups stays small.
   */
  batchSize?: number;
  /** Set by the run that continued as new: what is left, and the tallies so far. Not for callers. */
  continued?: RetentionContinuation;
}

/** What one retention run hands to the next when it continues as new. */
export interface RetentionContinuation {
  /** The plan's time and policy, so every run judges alike. */
  now: string;
  policy: RetentionPolicy;
  kept: number;
  remaining: RetentionItem[];
  /** Expiries decided so far, in all earlier runs. */
  done: number;
  expired: number;
  refused: number;
  /** One line per refused or failed expiry so far (the first 50). */
  refusals: string[];
  /** How many runs came before this one. */
  runs: number;
}

/** One catalog backup with its decision. */
/** A database set (pgBackRest and the like), not a dump or a file set: what a target's host removes. */
export function isDatabaseSet(backupType: string): boolean {
  return !backupType.startsWith('files-') && backupType !== 'logical' && backupType !== 'sqlite';
}

export interface RetentionItem extends RetentionDecision {
  /** backups.id */
  catalogId: string;
  target: string;
  backupType: string;
  engine: string;
  engineBackupId: string;
  /** Regions that hold a copy, per the catalog (`primary`, `dr`). */
  regions: string[];
}

export interface RetentionPlan {
  now: string;
  policy: RetentionPolicy;
  targets: string[];
  items: RetentionItem[];
}

export interface RegionDeletion {
  region: string;
  /** `deleted`: removed now; `absent`: already gone; `refused`: the engine or a rule said no. */
  outcome: 'deleted' | 'absent' | 'refused';
  detail: string;
  /** A copy in an object-locked bucket: when its last locked version may be deleted (kept until then). */
  lockedUntil?: string;
}

export interface ExpiryOutcome {
  catalogId: string;
  target: string;
  backupType: string;
  engineBackupId: string;
  /**
   * `expired`: every copy is gone and the row says so; `refused`: something stays (see regions);
   * `skipped`: no longer a candidate; `failed`: the activity failed for good (retention went on with the rest).
   */
  outcome: 'expired' | 'refused' | 'skipped' | 'failed';
  regions: RegionDeletion[];
  detail: string;
  /** Some copy is (or stays, for a pgBackRest set) under object lock until then. */
  lockedUntil?: string;
}

export interface RetentionReport {
  workflowId: string;
  now: string;
  dryRun: boolean;
  policy: RetentionPolicy;
  kept: RetentionItem[];
  /** What the policy expires (in a dry run: what it would). */
  toExpire: RetentionItem[];
  outcomes: ExpiryOutcome[];
  /** When the work was split over several runs (continue-as-new): the totals over all of them. */
  totals?: { runs: number; expired: number; refused: number; decided: number };
}
