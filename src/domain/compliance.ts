/**
 * The weekly compliance report: for every target, whether what the procedures require is true
 * today. Pure: the facts (gathered by activities from the catalog, the engines and the config)
 * and "now" come in; the judged report, its Markdown and its one-line summary go out.
 *
 * Checks per target, each `ok`, `breach` or `unknown` (facts missing, judged by nobody):
 * - recovery point: the last verified backup's age, and the RPO as the engine measures it (the
 *   WAL archive's lag where WAL is archived, the latest restorable time of a DynamoDB table's
 *   point-in-time recovery, the backup's age otherwise), against the objective;
 * - drill: the last passed drill's age against the target's drill cadence: the longest gap the
 *   calendar of its `drill.cadence`, else of its kind's drill schedule, leaves between drills (plus
 *   a day to run); monthly for DynamoDB tables, which have no drill schedule;
 * - retention: per class (daily, weekly, monthly), the periods that have a backup within the
 *   configured window against the periods the target has existed for (one period of slack, the
 *   current one, whose backup may not have run yet), and backups retention should have expired
 *   two days ago or more (retention not running);
 * - open failures: failed backups after the last verified one, failed drills after the last
 *   passed one;
 * - predicted RTO (databases with drills): the prediction against the objective.
 * Any breach makes the report a breach, which is an alert.
 */
import { formatAge, formatDuration } from './format';
import { isoWeekOf, monthOf, planRetention, RetentionPolicy } from './retention';
import type { DrillEvidence } from './drill';
import type { RtoPrediction } from './rto-prediction';

const DAY_S = 86400;
export const RETENTION_OVERDUE_DAYS = 2;

/** Drill cadences by name, in seconds: the longest interval each allows between passed drills. */
export const CADENCES: Record<string, number> = { weekly: 7 * DAY_S, monthly: 31 * DAY_S, quarterly: 92 * DAY_S, yearly: 366 * DAY_S };
/**
 * SQLite targets weekly: their backups are taken before risky operations, when nobody can wait
 * for a month's drill to learn the restore path broke (a host's sqlite3, a rotated key); their
 * drill costs seconds and a scratch file.
 */
export const DEFAULT_CADENCE = { database: 'monthly', bucket: 'quarterly', directory: 'quarterly', dynamodb: 'monthly', sqlite: 'weekly' } as const;

/** The kinds of target the report judges. */
export type ComplianceTargetKind = keyof typeof DEFAULT_CADENCE;
export type ComplianceKind = ComplianceTargetKind;

export type CheckStatus = 'ok' | 'breach' | 'unknown';
export type ComplianceCheckName = 'recovery point' | 'drill' | 'retention' | 'open failures' | 'predicted RTO';

export interface ComplianceCheck {
  name: ComplianceCheckName;
  status: CheckStatus;
  detail: string;
}

export interface TargetFacts {
  target: string;
  kind: ComplianceTargetKind;
  environment: string;
  recoveryPoint: {
    objectiveSeconds: number;
    lastVerifiedBackupAt?: string;
    /** The engine's judgement of the RPO now (WAL archive lag), when it has one. */
    measured?: { breached: boolean; detail: string };
  };
  drill: { cadenceSeconds: number; cadence: string; lastPassedAt?: string; lastPassedId?: string };
  retention: {
    policy: RetentionPolicy;
    /** Backed up on demand (no schedule, as SQLite targets before operations): no period is expected to hold a backup. */
    onDemand?: boolean;
    /** Live backups (complete or verified), any order. */
    backups: Array<{ id: string; name: string; completedAt: string; verified: boolean; series: string; legalHold?: boolean; dependsOn?: string[] }>;
  };
  openFailures: { backups: Array<{ id: string; at: string; failure: string }>; drills: Array<{ id: string; at: string; issue: string }> };
  prediction?: RtoPrediction;
}

export interface TargetCompliance {
  target: string;
  kind: ComplianceTargetKind;
  environment: string;
  ok: boolean;
  checks: ComplianceCheck[];
}

export interface ComplianceReport {
  reportId: string;
  runId: string;
  generatedAt: string;
  requestedBy: string;
  ok: boolean;
  breaches: number;
  targets: TargetCompliance[];
  summary: string;
}

export interface ComplianceReportInput {
  requestedBy?: string;
}

/** Where one rendering of a compliance report lives, with the hash the catalog keeps. */
export interface ComplianceEvidence extends DrillEvidence {
  format: 'json' | 'md';
}

export interface ComplianceReportResult {
  report: ComplianceReport;
  evidence: ComplianceEvidence[];
}

export const COMPLIANCE_REPORT_VERSION = 1;

/** A calendar from the config's `schedule` shape (`at` does not change the gaps between runs). */
export interface ScheduleCalendar {
  daysOfWeek: readonly string[];
  daysOfMonth: readonly number[];
  months: readonly string[];
}

const WEEKDAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const MONTH_NAMES = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];

/**
 * The longest gap, in whole days, a calendar leaves between two runs: its run days walked over
 * 28 fixed years, after which dates and weekdays repeat (until 2100), so a schedule on the 31st,
 * on 29 February or in two months of the year gets its true worst case. Pure: no clock is read.
 */
export function scheduleGapDays(s: ScheduleCalendar): number {
  const weekdays = new Set(s.daysOfWeek.map((d) => WEEKDAY_NAMES.indexOf(d.toLowerCase())));
  const months = new Set(s.months.map((m) => MONTH_NAMES.indexOf(m.toLowerCase())));
  const dates = new Set(s.daysOfMonth);
  const start = Date.UTC(2024, 0, 1);
  const days = 7 * 1461;
  let first: number | undefined;
  let last: number | undefined;
  let gap = 0;
  for (let i = 0; i < days; i++) {
    const d = new Date(start + i * DAY_S * 1000);
    const runs = (!weekdays.size || weekdays.has(d.getUTCDay())) && (!months.size || months.has(d.getUTCMonth())) && (!dates.size || dates.has(d.getUTCDate()));
    if (!runs) continue;
    if (last !== undefined) gap = Math.max(gap, i - last);
    first ??= i;
    last = i;
  }
  // No run day at all (31 February): never runs, which no cadence can be judged by.
  if (first === undefined || last === undefined) return Infinity;
  // Across the end of the walk back to its start: the calendar repeats.
  return Math.max(gap, first + days - last, 1);
}

/** A calendar in words, as a person checks it against the config. */
export function describeCalendar(s: ScheduleCalendar & { at?: { hour: number; minute: number } }): string {
  const on = s.daysOfWeek.length ? `on ${s.daysOfWeek.join(', ')}` : s.daysOfMonth.length ? `on day ${s.daysOfMonth.join(', ')}` : 'every day';
  const months = s.months.length ? ` of ${s.months.join(', ')}` : s.daysOfMonth.length ? ' of every month' : '';
  const two = (n: number) => String(n).padStart(2, '0');
  return `${on}${months}${s.at ? ` at ${two(s.at.hour)}:${two(s.at.minute)} UTC` : ''}`;
}

const isCalendar = (v: unknown): v is ScheduleCalendar & { at?: { hour: number; minute: number } } =>
  typeof v === 'object' && v !== null && ['daysOfWeek', 'daysOfMonth', 'months'].every((k) => Array.isArray((v as Record<string, unknown>)[k]));

/**
 * A cadence from the config: a schedule (a target's `drill.cadence`, or its kind's drill schedule;
 * named by `source`), a name (monthly), or seconds (a parsed duration). A schedule allows the
 * longest gap its calendar leaves plus a day for the drill itself to run and pass.
 */
export function cadenceSeconds(value: unknown, kind: ComplianceTargetKind, source?: string): { seconds: number; cadence: string } {
  if (isCalendar(value)) {
    const gap = scheduleGapDays(value);
    return { seconds: (gap + 1) * DAY_S, cadence: `${source ? `${source}, ` : ''}${describeCalendar(value)}: at most ${gap} days apart, plus a day to run` };
  }
  if (typeof value === 'number' && value > 0) return { seconds: value, cadence: `every ${formatDuration(value, { coarse: true })}` };
  if (typeof value === 'string' && CADENCES[value.toLowerCase()]) return { seconds: CADENCES[value.toLowerCase()], cadence: value.toLowerCase() };
  const name = DEFAULT_CADENCE[kind];
  return { seconds: CADENCES[name], cadence: `${name} (the default for ${kind === 'dynamodb' ? 'DynamoDB tables' : `${kind}s`})` };
}

const ageOf = (at: string | undefined, now: number) => (at ? Math.max(0, Math.round((now - Date.parse(at)) / 1000)) : undefined);

function recoveryPointCheck(f: TargetFacts, now: number): ComplianceCheck {
  const rp = f.recoveryPoint;
  const age = ageOf(rp.lastVerifiedBackupAt, now);
  if (age === undefined) return { name: 'recovery point', status: 'breach', detail: `no verified backup of ${f.target} is on record: take one (lifeboat backup ${f.target})` };
  const last = `last verified backup ${formatAge(age)} ago (${rp.lastVerifiedBackupAt})`;
  if (rp.measured) return { name: 'recovery point', status: rp.measured.breached ? 'breach' : 'ok', detail: `${last}; ${rp.measured.detail}` };
  const breached = age > rp.objectiveSeconds;
  return { name: 'recovery point', status: breached ? 'breach' : 'ok', detail: `${last}, ${breached ? 'beyond' : 'within'} the RPO of ${formatAge(rp.objectiveSeconds)}` };
}

function drillCheck(f: TargetFacts, now: number): ComplianceCheck {
  const d = f.drill;
  const age = ageOf(d.lastPassedAt, now);
  if (age === undefined) return { name: 'drill', status: 'breach', detail: `no passed restore drill of ${f.target} is on record (cadence ${d.cadence}): run \`lifeboat drill run ${f.target}\`` };
  const breached = age > d.cadenceSeconds;
  return {
    name: 'drill',
    status: breached ? 'breach' : 'ok',
    detail: `last passed drill ${d.lastPassedId ?? ''} ${formatAge(age)} ago, ${breached ? 'OVERDUE for' : 'within'} its cadence, ${d.cadence} (${formatAge(d.cadenceSeconds)})`.replace('drill  ', 'drill '),
  };
}

/** Whole periods between two instants (days, ISO weeks, calendar months). */
function periodsBetween(from: Date, to: Date, unit: 'day' | 'week' | 'month'): number {
  if (unit === 'day') return Math.floor((to.getTime() - from.getTime()) / (DAY_S * 1000));
  if (unit === 'week') return Math.floor((Date.parse(isoWeekOf(to)) - Date.parse(isoWeekOf(from))) / (7 * DAY_S * 1000));
  return (to.getUTCFullYear() - from.getUTCFullYear()) * 12 + to.getUTCMonth() - from.getUTCMonth();
}

function retentionCheck(f: TargetFacts, nowMs: number): ComplianceCheck {
  const { policy, backups } = f.retention;
  const now = new Date(nowMs);
  const dated = backups.filter((b) => !Number.isNaN(Date.parse(b.completedAt)));
  if (!dated.length) return { name: 'retention', status: 'unknown', detail: 'no backups on record to judge retention by' };
  const first = new Date(Math.min(...dated.map((b) => Date.parse(b.completedAt))));
  const classes: Array<{ name: string; unit: 'day' | 'week' | 'month'; keep: number; key: (d: Date) => string; windowStart: Date }> = [
    { name: 'daily', unit: 'day', keep: policy.daily, key: (d) => d.toISOString().slice(0, 10), windowStart: new Date(nowMs - policy.daily * DAY_S * 1000) },
    { name: 'weekly', unit: 'week', keep: policy.weekly, key: isoWeekOf, windowStart: new Date(nowMs - policy.weekly * 7 * DAY_S * 1000) },
    { name: 'monthly', unit: 'month', keep: policy.monthly, key: monthOf, windowStart: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - policy.monthly + 1, 1)) },
  ];
  const parts: string[] = [];
  let short = false;
  for (const c of classes) {
    if (c.keep === 0) {
      parts.push(`${c.name}: none configured`);
      continue;
    }
    const periods = new Set(dated.filter((b) => Date.parse(b.completedAt) > c.windowStart.getTime()).map((b) => c.key(new Date(b.completedAt))));
    const expected = Math.max(0, Math.min(c.keep, periodsBetween(first, now, c.unit) + 1) - 1);
    const isShort = periods.size < expected && !f.retention.onDemand;
    if (isShort) short = true;
    parts.push(`${c.name}: ${periods.size} of ${c.keep} configured${isShort ? ` (SHORT: at least ${expected} expected since the first backup on ${first.toISOString().slice(0, 10)})` : ''}`);
  }
  // What retention should have expired two days ago and still exists: retention is not running.
  const earlier = new Date(nowMs - RETENTION_OVERDUE_DAYS * DAY_S * 1000);
  // Newer backups join the plan too: what they depend on is kept.
  const idByName = new Map(dated.map((b) => [`${b.series}\n${b.name}`, b.id]));
  const overdue = planRetention(
    dated.map((b) => ({
      id: b.id,
      series: b.series,
      completedAt: b.completedAt,
      verified: b.verified,
      ...(b.legalHold ? { legalHold: 'legal hold' } : {}),
      dependsOn: (b.dependsOn ?? []).map((n) => idByName.get(`${b.series}\n${n}`)).filter((id): id is string => id !== undefined),
    })),
    policy,
    earlier,
  ).filter((d) => d.action === 'expire');
  if (overdue.length) parts.push(`${overdue.length} backup${overdue.length === 1 ? '' : 's'} retention should have expired ${RETENTION_OVERDUE_DAYS}+ days ago still on record (is the retention schedule running?)`);
  return { name: 'retention', status: short || overdue.length ? 'breach' : 'ok', detail: `${parts.join('; ')}; ${dated.length} backups on record${f.retention.onDemand ? ' (backed up on demand: periods without a backup are not a breach)' : ''}` };
}

function failuresCheck(f: TargetFacts): ComplianceCheck {
  const { backups, drills } = f.openFailures;
  if (!backups.length && !drills.length) return { name: 'open failures', status: 'ok', detail: 'none: every failure was followed by a success' };
  const parts = [
    ...backups.map((b) => `backup ${b.id} failed ${b.at} (${b.failure}) and no verified backup since`),
    ...drills.map((d) => `drill ${d.id} failed ${d.at} (${d.issue}) and no passed drill since`),
  ];
  return { name: 'open failures', status: 'breach', detail: parts.join('; ') };
}

function predictionCheck(p: RtoPrediction): ComplianceCheck {
  return { name: 'predicted RTO', status: p.status === 'breach' ? 'breach' : p.status === 'within' ? 'ok' : 'unknown', detail: p.summary };
}

export function judgeTarget(f: TargetFacts, nowMs: number): TargetCompliance {
  const checks = [recoveryPointCheck(f, nowMs), drillCheck(f, nowMs), retentionCheck(f, nowMs), failuresCheck(f)];
  if (f.prediction) checks.push(predictionCheck(f.prediction));
  return { target: f.target, kind: f.kind, environment: f.environment, ok: checks.every((c) => c.status !== 'breach'), checks };
}

export function buildComplianceReport(facts: TargetFacts[], meta: { reportId: string; runId: string; generatedAt: string; requestedBy: string }): ComplianceReport {
  const nowMs = Date.parse(meta.generatedAt);
  const targets = facts.map((f) => judgeTarget(f, nowMs));
  const breaches = targets.reduce((n, t) => n + t.checks.filter((c) => c.status === 'breach').length, 0);
  const failing = targets.filter((t) => !t.ok);
  const summary = breaches
    ? `${breaches} breach${breaches === 1 ? '' : 'es'} in ${failing.length} of ${targets.length} targets: ${failing.map((t) => `${t.target} (${t.checks.filter((c) => c.status === 'breach').map((c) => c.name).join(', ')})`).join('; ')}`
    : `all ${targets.length} targets compliant`;
  return { ...meta, ok: breaches === 0, breaches, targets, summary };
}

export function complianceReportJson(r: ComplianceReport): string {
  return `${JSON.stringify({ version: COMPLIANCE_REPORT_VERSION, ...r }, null, 2)}\n`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
const label = (s: CheckStatus) => (s === 'ok' ? 'ok' : s === 'breach' ? '**BREACH**' : 'unknown');

export function complianceReportMarkdown(r: ComplianceReport): string {
  const lines = [`# Compliance report ${r.reportId}: ${r.ok ? 'COMPLIANT' : 'BREACH'}`, '', `- Generated: ${r.generatedAt} (run ${r.runId}), requested by ${r.requestedBy}`, `- Summary: ${r.summary}`];
  for (const t of r.targets) {
    lines.push('', `## ${t.target} (${t.kind}, ${t.environment}): ${t.ok ? 'compliant' : 'BREACH'}`, '', '| check | status | detail |', '|---|---|---|');
    for (const c of t.checks) lines.push(`| ${c.name} | ${label(c.status)} | ${cell(c.detail)} |`);
  }
  return `${lines.join('\n')}\n`;
}
