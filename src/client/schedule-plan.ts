/**
 * Temporal Schedules from the config, as pure data: config → the schedules lifeboat wants →
 * a comparison with what Temporal has → what `lifeboat schedules apply` creates, updates,
 * leaves alone, or reports as extra. No I/O here; src/client/schedules.ts talks to Temporal.
 *
 * One schedule per (kind, target), ids `<prefix><kind>-<target>` (prefix `lifeboat-`):
 *
 * | schedule id                          | when (config)                          | starts                                        |
 * |--------------------------------------|----------------------------------------|-----------------------------------------------|
 * | lifeboat-database-backup-<db>        | schedules.database, minus full days    | databaseBackup({ target, kind: 'diff' })      |
 * | lifeboat-database-full-backup-<db>   | schedules.full                         | databaseBackup({ target, kind: 'full' })      |
 * | lifeboat-logical-backup-<db>         | schedules.full (if logicalBackup set)  | logicalBackup({ target })                     |
 * | lifeboat-files-backup-<bucket>       | schedules.files, minus full days       | filesBackup({ target, mode: 'incremental' })  |
 * | lifeboat-files-full-backup-<bucket>  | schedules.full                         | filesBackup({ target, mode: 'full' })         |
 * | lifeboat-directory-backup-<dir>     | the target's schedule (daily 05:00)    | directoryBackup({ target })                   |
 * | lifeboat-sqlite-backup-<sqlite>      | the target's `schedule` (if set)       | sqliteBackup({ target })                      |
 * | lifeboat-retention                   | daily, 1h after the later of database/files | retention({})                            |
 * | lifeboat-restore-drill-<db>          | the target's drill.cadence, or schedules.drill (monthly) | restoreDrill({ target })    |
 * | lifeboat-restore-drill-dr-<db>       | with drill.alternateRegions: every other month of the cadence; the other schedule takes the rest | restoreDrill({ target, fromRegion: 'dr' }) |
 * | lifeboat-files-drill-<bucket>        | the target's drill.cadence, or schedules.bucketDrill (quarterly) | restoreDrill({ target }) |
 * | lifeboat-files-drill-dr-<bucket>     | as for databases, with drill.alternateRegions | restoreDrill({ target, fromRegion: 'dr' })  |
 * | lifeboat-directory-drill-<dir>       | the target's drill.cadence, or schedules.directoryDrill (quarterly) | restoreDrill({ target }) |
 * | lifeboat-sqlite-drill-<sqlite>       | the target's drill.cadence, or schedules.sqliteDrill (weekly) | restoreDrill({ target }) |
 * | lifeboat-sqlite-drill-dr-<sqlite>    | as for databases, with drill.alternateRegions | restoreDrill({ target, fromRegion: 'dr' })  |
 * | lifeboat-drill-sweeper               | hourly at schedules.drillSweeper.minute | drillSweeper({ requestedBy: 'schedule' })    |
 * | lifeboat-instance-expiry             | hourly at schedules.instanceExpiry.minute | instanceExpiry({ requestedBy: 'schedule' }) |
 * | lifeboat-compliance                  | schedules.compliance (weekly)          | complianceReport({ requestedBy: 'schedule' }) |
 * | lifeboat-failover-drill              | schedules.failoverDrill (if `failover` set) | drFailover({ mode: 'drill', ... })       |
 * | lifeboat-dynamodb-backup-<table>     | the DynamoDB target's `schedule`       | dynamodbBackup({ target })                    |
 * | lifeboat-dynamodb-drill-<table>      | schedules.drill (monthly)              | dynamodbDrill({ target })                     |
 *
 * Why these choices:
 * - A schedule's action has fixed arguments, so "full on the full schedule's days, diff on the
 *   others" is two schedules per target. The daily one skips (spec.skip) whole days on which the
 *   full schedule runs, so a Sunday has one full and no differential. A disabled full schedule
 *   skips nothing. Logical dumps (only for targets with `logicalBackup`) are a second,
 *   independent copy, not the RPO path, so they run weekly with the full backups.
 * - Daily database backups are differential, not incremental: a restore needs the last full plus
 *   one differential (never a chain of seven incrementals), and retention can drop any daily
 *   without breaking a later one. The price is daily backups that grow through the week.
 * - `enabled: false` in the config, or a workflow type this build's worker does not register,
 *   keeps the schedule declared but PAUSED, with a note
 *   that says why; apply unpauses it once both are true. A schedule paused by hand is unpaused by
 *   the next apply: the config is the truth.
 * - Overlap SKIP (a backup still running when the next is due is not doubled), catch-up window
 *   6h for backups and retention (a server back by mid-morning still takes the night's backup),
 *   7 days for drills (a drill missed during an outage runs late instead of never), 1 hour for
 *   the sweeper (the next sweep covers a missed one), pauseOnFailure off (a failed backup must
 *   not stop tomorrow's; the workflow itself alerts).
 * - Alternating regions: a schedule's arguments are fixed, so a target that alternates gets two
 *   drill schedules splitting its cadence's months in turn (primary Jan, Jul; DR Apr, Oct for a
 *   quarterly one): each copy is proven on a fixed, visible calendar, and a missed drill in one
 *   region never shifts the other's.
 * - Started workflows get the id `<scheduleId>-<timestamp>` (Temporal appends the time to the
 *   action's workflow id, which is the schedule id), typed search attributes LifeboatKind,
 *   LifeboatTarget, LifeboatEnvironment (and LifeboatBackupType for backups), a static summary
 *   for the Web UI and a memo with the config version.
 */
import type { CalendarSpec, CalendarSpecDescription, DayOfWeek, Month, Range, ScheduleDescription, ScheduleOptions, ScheduleUpdateOptions } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import type { LifeboatConfig, ScheduleConfig } from '../config';
import { LifeboatBackupType, LifeboatEnvironment, LifeboatKind, LifeboatTarget } from '../workflows/search-attributes';

export const DEFAULT_SCHEDULE_PREFIX = 'lifeboat-';
export const SCHEDULE_TIMEZONE = 'UTC';

const HOUR_MS = 60 * 60 * 1000;
export const CATCHUP_WINDOW_MS = { backup: 6 * HOUR_MS, retention: 6 * HOUR_MS, drill: 7 * 24 * HOUR_MS, sweeper: HOUR_MS, expiry: HOUR_MS, compliance: 24 * HOUR_MS } as const;

/** The workflow types schedules start, by name: the worker registers them under these names. */
export const SCHEDULED_WORKFLOWS = {
  databaseBackup: 'databaseBackup',
  filesBackup: 'filesBackup',
  directoryBackup: 'directoryBackup',
  logicalBackup: 'logicalBackup',
  sqliteBackup: 'sqliteBackup',
  retention: 'retention',
  restoreDrill: 'restoreDrill',
  drillSweeper: 'drillSweeper',
  instanceExpiry: 'instanceExpiry',
  complianceReport: 'complianceReport',
  drFailover: 'drFailover',
  dynamodbBackup: 'dynamodbBackup',
  dynamodbDrill: 'dynamodbDrill',
} as const;

export type ScheduleKind =
  | 'database-backup'
  | 'database-full-backup'
  | 'logical-backup'
  | 'files-backup'
  | 'files-full-backup'
  | 'directory-backup'
  | 'sqlite-backup'
  | 'retention'
  | 'restore-drill'
  | 'restore-drill-dr'
  | 'files-drill'
  | 'files-drill-dr'
  | 'directory-drill'
  | 'sqlite-drill'
  | 'sqlite-drill-dr'
  | 'drill-sweeper'
  | 'instance-expiry'
  | 'compliance'
  | 'failover-drill'
  | 'dynamodb-backup'
  | 'dynamodb-drill';

const DAYS: readonly DayOfWeek[] = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'];
const MONTH_NAMES: readonly Month[] = ['JANUARY', 'FEBRUARY', 'MARCH', 'APRIL', 'MAY', 'JUNE', 'JULY', 'AUGUST', 'SEPTEMBER', 'OCTOBER', 'NOVEMBER', 'DECEMBER'];
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const ALL = {
  second: range(0, 59),
  minute: range(0, 59),
  hour: range(0, 23),
  dayOfMonth: range(1, 31),
};

/**
 * One calendar with every field spelled out as the values it matches (sorted); `year: []` means
 * any year. This is the form both the config and Temporal's description are reduced to, so two
 * calendars are equal exactly when they match the same times.
 */
export interface Calendar {
  second: number[];
  minute: number[];
  hour: number[];
  dayOfMonth: number[];
  month: Month[];
  year: number[];
  dayOfWeek: DayOfWeek[];
}

/** A schedule lifeboat wants, with everything apply needs to create or compare it. */
export interface DesiredSchedule {
  scheduleId: string;
  kind: ScheduleKind;
  target?: string;
  environment?: string;
  /** One line for people: what runs when. */
  description: string;
  calendars: Calendar[];
  skip: Calendar[];
  timezone: string;
  action: {
    workflowType: string;
    workflowId: string;
    taskQueue: string;
    args: unknown[];
    staticSummary: string;
    memo: Record<string, unknown>;
    /** Typed search attribute values by name (all KEYWORD). */
    searchAttributes: Record<string, string>;
  };
  overlap: 'SKIP';
  catchupWindowMs: number;
  pauseOnFailure: boolean;
  paused: boolean;
  note: string;
  /** Memo of the schedule itself; Temporal sets it only at creation. */
  memo: Record<string, unknown>;
}

export interface SchedulePlanOptions {
  /** Schedule id prefix (default `lifeboat-`); tests use their own so runs never collide. */
  prefix?: string;
  /**
   * Workflow types the worker of this build registers. A schedule whose workflow is not among
   * them is created paused. Undefined: assume every one is registered.
   */
  registeredWorkflows?: readonly string[];
  /** Task queue of the started workflows (default: temporal.taskQueue of the config). */
  taskQueue?: string;
}

// ----- config → calendars ---------------------------------------------------------------------

const upper = <T extends string>(value: string) => value.toUpperCase() as T;
const sortDays = (days: DayOfWeek[]) => [...new Set(days)].sort((a, b) => DAYS.indexOf(a) - DAYS.indexOf(b));
const sortMonths = (months: Month[]) => [...new Set(months)].sort((a, b) => MONTH_NAMES.indexOf(a) - MONTH_NAMES.indexOf(b));
const sortNumbers = (values: number[]) => [...new Set(values)].sort((a, b) => a - b);

/** The days a schedule runs on, every time of day: what a skip calendar removes. */
function daysOf(schedule: ScheduleConfig): Pick<Calendar, 'dayOfMonth' | 'month' | 'year' | 'dayOfWeek'> {
  return {
    dayOfMonth: schedule.daysOfMonth.length ? sortNumbers(schedule.daysOfMonth) : ALL.dayOfMonth,
    month: schedule.months.length ? sortMonths(schedule.months.map((m) => upper<Month>(m))) : [...MONTH_NAMES],
    year: [],
    dayOfWeek: schedule.daysOfWeek.length ? sortDays(schedule.daysOfWeek.map((d) => upper<DayOfWeek>(d))) : [...DAYS],
  };
}

export function calendarOf(schedule: ScheduleConfig, at: { hour: number; minute: number } = schedule.at): Calendar {
  return { second: [0], minute: [at.minute], hour: [at.hour], ...daysOf(schedule) };
}

/** Every second of the days `schedule` runs on. */
export function wholeDaysOf(schedule: ScheduleConfig): Calendar {
  return { second: ALL.second, minute: ALL.minute, hour: ALL.hour, ...daysOf(schedule) };
}

// ----- calendars ↔ Temporal ------------------------------------------------------------------

/** Consecutive values as Temporal ranges (`MONDAY..SATURDAY` rather than six entries). */
function toRanges<T extends string | number>(values: T[], order: readonly T[] | undefined): Range<T>[] {
  const index = (v: T) => (order ? order.indexOf(v) : (v as number));
  const ranges: Range<T>[] = [];
  for (const value of values) {
    const last = ranges[ranges.length - 1];
    if (last && index(value) === index(last.end) + 1) last.end = value;
    else ranges.push({ start: value, end: value, step: 1 });
  }
  return ranges;
}

export function toCalendarSpec(calendar: Calendar, comment?: string): CalendarSpec {
  return {
    second: toRanges(calendar.second, undefined),
    minute: toRanges(calendar.minute, undefined),
    hour: toRanges(calendar.hour, undefined),
    dayOfMonth: toRanges(calendar.dayOfMonth, undefined),
    month: toRanges(calendar.month, MONTH_NAMES),
    year: calendar.year.length ? toRanges(calendar.year, undefined) : '*',
    dayOfWeek: toRanges(calendar.dayOfWeek, DAYS),
    ...(comment ? { comment } : {}),
  };
}

function expand<T extends string | number>(ranges: Range<T>[] | undefined, order: readonly T[] | undefined): T[] {
  const out: T[] = [];
  for (const r of ranges ?? []) {
    const start = order ? order.indexOf(r.start) : (r.start as number);
    const end = Math.max(start, order ? order.indexOf(r.end ?? r.start) : ((r.end ?? r.start) as number));
    const step = r.step > 0 ? r.step : 1;
    for (let i = start; i <= end; i += step) out.push(order ? order[i] : (i as T));
  }
  return out;
}

/** A calendar as Temporal describes it, reduced to the same form as the config's. */
export function fromCalendarDescription(d: CalendarSpecDescription): Calendar {
  return {
    second: sortNumbers(expand(d.second, undefined)),
    minute: sortNumbers(expand(d.minute, undefined)),
    hour: sortNumbers(expand(d.hour, undefined)),
    dayOfMonth: sortNumbers(expand(d.dayOfMonth, undefined)),
    month: sortMonths(expand(d.month, MONTH_NAMES)),
    year: sortNumbers(expand(d.year, undefined)),
    dayOfWeek: sortDays(expand(d.dayOfWeek, DAYS)),
  };
}

const title = (s: string) => s.charAt(0) + s.slice(1).toLowerCase();
const two = (n: number) => String(n).padStart(2, '0');
const same = (a: readonly unknown[], b: readonly unknown[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * A calendar in words, for people and for comparison: two calendars that match different times
 * never read the same ("03:00 UTC on Monday-Saturday", "all day on Sunday").
 */
export function calendarText(c: Calendar): string {
  let time: string;
  if (same(c.hour, ALL.hour) && same(c.minute, ALL.minute) && same(c.second, ALL.second)) time = 'all day';
  else if (c.hour.length === 1 && c.minute.length === 1 && same(c.second, [0])) time = `${two(c.hour[0])}:${two(c.minute[0])} UTC`;
  else if (same(c.hour, ALL.hour) && c.minute.length === 1 && same(c.second, [0])) time = `hourly at minute ${two(c.minute[0])} UTC`;
  else time = `hour ${c.hour.join(',')} minute ${c.minute.join(',')} second ${c.second.join(',')} UTC`;
  const days: string[] = [];
  if (!same(c.dayOfWeek, DAYS)) days.push(`on ${listWithRuns(c.dayOfWeek, DAYS, title)}`);
  if (!same(c.dayOfMonth, ALL.dayOfMonth)) days.push(`on day ${listWithRuns(c.dayOfMonth, undefined, String)} of the month`);
  if (!same(c.month, MONTH_NAMES)) days.push(`in ${listWithRuns(c.month, MONTH_NAMES, title)}`);
  if (c.year.length) days.push(`in ${c.year.join(', ')}`);
  if (c.dayOfWeek.length === 0 || c.dayOfMonth.length === 0 || c.month.length === 0) return `${time} never`;
  return days.length ? `${time} ${days.join(' ')}` : `${time} every day`;
}

function listWithRuns<T extends string | number>(values: T[], order: readonly T[] | undefined, name: (v: T) => string): string {
  return toRanges(values, order)
    .map((r) => {
      const length = (order ? order.indexOf(r.end) - order.indexOf(r.start) : (r.end as number) - (r.start as number)) + 1;
      if (length === 1) return name(r.start);
      if (length === 2) return `${name(r.start)}, ${name(r.end)}`;
      return `${name(r.start)}-${name(r.end)}`;
    })
    .join(', ');
}

// ----- config → desired schedules ------------------------------------------------------------

/** The later of two times of day, plus an hour (wrapping past midnight). */
function retentionTime(config: LifeboatConfig): { hour: number; minute: number } {
  const minutes = (t: { hour: number; minute: number }) => t.hour * 60 + t.minute;
  const later = Math.max(minutes(config.schedules.database.at), minutes(config.schedules.files.at)) + 60;
  return { hour: Math.floor(later / 60) % 24, minute: later % 60 };
}

export function desiredSchedules(config: LifeboatConfig, options: SchedulePlanOptions = {}): DesiredSchedule[] {
  const prefix = options.prefix ?? DEFAULT_SCHEDULE_PREFIX;
  const taskQueue = options.taskQueue ?? config.temporal.taskQueue;
  const registered = options.registeredWorkflows ? new Set(options.registeredWorkflows) : undefined;
  const { database, files, full, drill, compliance } = config.schedules;
  const fullDays = full.enabled ? [wholeDaysOf(full)] : [];
  const out: DesiredSchedule[] = [];

  const add = (spec: {
    kind: ScheduleKind;
    target?: { name: string; environment: string };
    config: { enabled: boolean };
    calendar: Calendar;
    skip?: Calendar[];
    workflowType: string;
    args: unknown;
    summary: string;
    catchupWindowMs: number;
    backupType?: string;
    /** Why this build cannot run the schedule's workflow yet: the schedule is kept declared but paused, with this reason. */
    notYetRunnable?: string;
  }) => {
    const scheduleId = `${prefix}${spec.kind}${spec.target ? `-${spec.target.name}` : ''}`;
    const skip = spec.skip ?? [];
    const when = calendarText(spec.calendar) + (skip.length ? `, except ${skip.map((s) => calendarText(s).replace(/^all day /, '')).join(' and ')}` : '');
    const reasons: string[] = [];
    if (!spec.config.enabled) reasons.push('disabled in the config (enabled: false)');
    if (spec.notYetRunnable) reasons.push(spec.notYetRunnable);
    if (registered && !registered.has(spec.workflowType)) {
      reasons.push(`the ${spec.workflowType} workflow is not deployed yet (this lifeboat build's worker does not register it); run \`lifeboat schedules apply\` again after upgrading`);
    }
    const searchAttributes: Record<string, string> = { [LifeboatKind.name]: spec.kind.replace('-full', '').replace(/-dr$/, '') };
    if (spec.target) {
      searchAttributes[LifeboatTarget.name] = spec.target.name;
      searchAttributes[LifeboatEnvironment.name] = spec.target.environment;
    }
    if (spec.backupType) searchAttributes[LifeboatBackupType.name] = spec.backupType;
    out.push({
      scheduleId,
      kind: spec.kind,
      target: spec.target?.name,
      environment: spec.target?.environment,
      description: `${spec.summary}: ${when}`,
      calendars: [spec.calendar],
      skip,
      timezone: SCHEDULE_TIMEZONE,
      action: {
        workflowType: spec.workflowType,
        workflowId: scheduleId,
        taskQueue,
        args: [spec.args],
        staticSummary: `${spec.summary} (schedule ${scheduleId}, ${when})`,
        memo: { lifeboatSchedule: scheduleId, configVersion: config.version },
        searchAttributes,
      },
      overlap: 'SKIP',
      catchupWindowMs: spec.catchupWindowMs,
      pauseOnFailure: false,
      paused: reasons.length > 0,
      note: reasons.length ? `Paused by lifeboat: ${reasons.join('; ')}.` : `Managed by lifeboat schedules apply: ${spec.summary}, ${when}.`,
      memo: { managedBy: 'lifeboat', configVersion: config.version, kind: spec.kind, ...(spec.target ? { target: spec.target.name } : {}) },
    });
  };

  for (const db of config.targets.databases) {
    const target = { name: db.name, environment: db.environment };
    add({
      kind: 'database-backup',
      target,
      config: database,
      calendar: calendarOf(database),
      skip: fullDays,
      workflowType: SCHEDULED_WORKFLOWS.databaseBackup,
      args: { target: db.name, kind: 'diff', requestedBy: 'schedule' },
      summary: `Differential backup of database ${db.name}`,
      catchupWindowMs: CATCHUP_WINDOW_MS.backup,
      backupType: 'diff',
    });
    add({
      kind: 'database-full-backup',
      target,
      config: full,
      calendar: calendarOf(full),
      workflowType: SCHEDULED_WORKFLOWS.databaseBackup,
      args: { target: db.name, kind: 'full', requestedBy: 'schedule' },
      summary: `Full backup of database ${db.name}`,
      catchupWindowMs: CATCHUP_WINDOW_MS.backup,
      backupType: 'full',
    });
    if (db.logicalBackup) {
      add({
        kind: 'logical-backup',
        target,
        config: full,
        calendar: calendarOf(full),
        workflowType: SCHEDULED_WORKFLOWS.logicalBackup,
        args: { target: db.name },
        summary: `Logical backup (pg_dump) of database ${db.name}`,
        catchupWindowMs: CATCHUP_WINDOW_MS.backup,
        backupType: 'logical',
      });
    }
  }
  for (const bucket of config.targets.buckets) {
    const target = { name: bucket.name, environment: bucket.environment };
    add({
      kind: 'files-backup',
      target,
      config: files,
      calendar: calendarOf(files),
      skip: fullDays,
      workflowType: SCHEDULED_WORKFLOWS.filesBackup,
      args: { target: bucket.name, mode: 'incremental' },
      summary: `Incremental backup of bucket ${bucket.name}`,
      catchupWindowMs: CATCHUP_WINDOW_MS.backup,
      backupType: 'files-incremental',
    });
    add({
      kind: 'files-full-backup',
      target,
      config: full,
      calendar: calendarOf(full),
      workflowType: SCHEDULED_WORKFLOWS.filesBackup,
      args: { target: bucket.name, mode: 'full' },
      summary: `Full backup of bucket ${bucket.name}`,
      catchupWindowMs: CATCHUP_WINDOW_MS.backup,
      backupType: 'files-full',
    });
  }
  for (const dir of config.targets.directories) {
    add({
      kind: 'directory-backup',
      target: { name: dir.name, environment: dir.environment },
      config: dir.schedule,
      calendar: calendarOf(dir.schedule),
      workflowType: SCHEDULED_WORKFLOWS.directoryBackup,
      args: { target: dir.name },
      summary: `Backup of configuration directory ${dir.name}`,
      catchupWindowMs: CATCHUP_WINDOW_MS.backup,
      backupType: 'directory',
    });
  }
  // SQLite targets: only those with a schedule of their own (the main use is on demand, before a risky change).
  for (const q of config.targets.sqlite) {
    if (!q.schedule) continue;
    add({
      kind: 'sqlite-backup',
      target: { name: q.name, environment: q.environment },
      config: q.schedule,
      calendar: calendarOf(q.schedule),
      workflowType: SCHEDULED_WORKFLOWS.sqliteBackup,
      args: { target: q.name, requestedBy: 'schedule' },
      summary: `Backup of SQLite database ${q.name}`,
      catchupWindowMs: CATCHUP_WINDOW_MS.backup,
      backupType: 'sqlite',
    });
  }
  // DynamoDB tables: each on its own backup schedule; drilled on the database drill cadence.
  for (const table of config.targets.dynamodb) {
    const target = { name: table.name, environment: table.environment };
    add({
      kind: 'dynamodb-backup',
      target,
      config: table.schedule,
      calendar: calendarOf(table.schedule),
      workflowType: SCHEDULED_WORKFLOWS.dynamodbBackup,
      args: { target: table.name, requestedBy: 'schedule' },
      summary: `Backup of DynamoDB table ${table.tableName} (${table.name})`,
      catchupWindowMs: CATCHUP_WINDOW_MS.backup,
      backupType: 'dynamodb',
    });
    add({
      kind: 'dynamodb-drill',
      target,
      config: drill,
      calendar: calendarOf(drill),
      workflowType: SCHEDULED_WORKFLOWS.dynamodbDrill,
      args: { target: table.name, requestedBy: 'schedule' },
      summary: `Restore drill of DynamoDB table ${table.tableName} (${table.name})`,
      catchupWindowMs: CATCHUP_WINDOW_MS.drill,
    });
  }
  add({
    kind: 'retention',
    config: { enabled: true },
    calendar: { ...calendarOf(database, retentionTime(config)), dayOfMonth: ALL.dayOfMonth, month: [...MONTH_NAMES], dayOfWeek: [...DAYS] },
    workflowType: SCHEDULED_WORKFLOWS.retention,
    args: {},
    summary: 'Retention of every target\'s backups',
    catchupWindowMs: CATCHUP_WINDOW_MS.retention,
  });
  // Drills: each target on its own cadence (or its kind's), from one region, or alternating months between the two.
  const drillsOf = (kind: 'database' | 'bucket' | 'sqlite', targets: ReadonlyArray<{ name: string; environment: string; drill: { cadence?: ScheduleConfig; alternateRegions: boolean } }>, fallback: ScheduleConfig) => {
    for (const t of targets) {
      const cadence = t.drill.cadence ?? fallback;
      const target = { name: t.name, environment: t.environment };
      const what = `Restore drill of ${kind === 'sqlite' ? 'SQLite database' : kind} ${t.name}`;
      const base = {
        target,
        config: cadence,
        // One drill workflow for both kinds: restoreDrill goes the files way for a bucket target.
        workflowType: SCHEDULED_WORKFLOWS.restoreDrill,
        catchupWindowMs: CATCHUP_WINDOW_MS.drill,
      };
      const kinds = kind === 'database' ? (['restore-drill', 'restore-drill-dr'] as const) : kind === 'sqlite' ? (['sqlite-drill', 'sqlite-drill-dr'] as const) : (['files-drill', 'files-drill-dr'] as const);
      if (!t.drill.alternateRegions) {
        add({ ...base, kind: kinds[0], calendar: calendarOf(cadence), args: { target: t.name }, summary: what });
        continue;
      }
      const [primaryMonths, drMonths] = alternateMonths(calendarOf(cadence).month);
      add({ ...base, kind: kinds[0], calendar: { ...calendarOf(cadence), month: primaryMonths }, args: { target: t.name, fromRegion: 'primary' }, summary: `${what} from the primary region` });
      add({ ...base, kind: kinds[1], calendar: { ...calendarOf(cadence), month: drMonths }, args: { target: t.name, fromRegion: 'dr' }, summary: `${what} from the DR region` });
    }
  };
  drillsOf('database', config.targets.databases, drill);
  drillsOf('bucket', config.targets.buckets, config.schedules.bucketDrill);
  // Directories: one schedule each, always the primary region's archive (restoreDrill goes the directory way for them).
  for (const d of config.targets.directories) {
    const cadence = d.drill.cadence ?? config.schedules.directoryDrill;
    add({
      kind: 'directory-drill',
      target: { name: d.name, environment: d.environment },
      config: cadence,
      calendar: calendarOf(cadence),
      workflowType: SCHEDULED_WORKFLOWS.restoreDrill,
      args: { target: d.name },
      summary: `Restore drill of configuration directory ${d.name}`,
      catchupWindowMs: CATCHUP_WINDOW_MS.drill,
    });
  }
  drillsOf('sqlite', config.targets.sqlite, config.schedules.sqliteDrill);
  const sweeper = config.schedules.drillSweeper;
  add({
    kind: 'drill-sweeper',
    config: sweeper,
    calendar: { second: [0], minute: [sweeper.minute], hour: ALL.hour, dayOfMonth: ALL.dayOfMonth, month: [...MONTH_NAMES], year: [], dayOfWeek: [...DAYS] },
    workflowType: SCHEDULED_WORKFLOWS.drillSweeper,
    args: { requestedBy: 'schedule' },
    summary: 'Drill sweeper: removes drill instances and buckets whose drill run is closed',
    catchupWindowMs: CATCHUP_WINDOW_MS.sweeper,
  });
  const expiry = config.schedules.instanceExpiry;
  add({
    kind: 'instance-expiry',
    config: expiry,
    calendar: { second: [0], minute: [expiry.minute], hour: ALL.hour, dayOfMonth: ALL.dayOfMonth, month: [...MONTH_NAMES], year: [], dayOfWeek: [...DAYS] },
    workflowType: SCHEDULED_WORKFLOWS.instanceExpiry,
    args: { requestedBy: 'schedule' },
    summary: 'Restored instance expiry: notifies, then removes kept instances past their expiry (never one that took traffic)',
    catchupWindowMs: CATCHUP_WINDOW_MS.expiry,
  });
  add({
    kind: 'compliance',
    config: compliance,
    calendar: calendarOf(compliance),
    workflowType: SCHEDULED_WORKFLOWS.complianceReport,
    args: { requestedBy: 'schedule' },
    summary: 'Compliance report of every target',
    catchupWindowMs: CATCHUP_WINDOW_MS.compliance,
  });
  // A failover drill rehearses the recovery plan, so there is none to schedule without one.
  if (config.failover) {
    const failoverDrill = config.schedules.failoverDrill;
    add({
      kind: 'failover-drill',
      config: failoverDrill,
      calendar: calendarOf(failoverDrill),
      workflowType: SCHEDULED_WORKFLOWS.drFailover,
      args: { mode: 'drill', requestedBy: 'lifeboat-schedule', reason: 'scheduled failover drill' },
      summary: 'Failover drill of the whole recovery plan (drill zones and drill instances only)',
      catchupWindowMs: CATCHUP_WINDOW_MS.drill,
    });
  }
  return out;
}

/** A drill cadence's months split in turn between the primary region (1st, 3rd, ...) and the DR region (2nd, 4th, ...). */
export function alternateMonths(months: readonly Month[]): [Month[], Month[]] {
  return [months.filter((_, i) => i % 2 === 0), months.filter((_, i) => i % 2 === 1)];
}

// ----- desired → Temporal options --------------------------------------------------------------

function searchAttributePairs(values: Record<string, string>): SearchAttributePair[] {
  const keys = [LifeboatKind, LifeboatTarget, LifeboatEnvironment, LifeboatBackupType];
  return keys.filter((k) => values[k.name] !== undefined).map((k) => ({ key: k, value: values[k.name] }) as SearchAttributePair);
}

/** What `client.schedule.handle.update` takes (everything but the id and the schedule's memo). */
export function toUpdateOptions(d: DesiredSchedule): ScheduleUpdateOptions {
  return {
    spec: {
      calendars: d.calendars.map((c) => toCalendarSpec(c, d.description)),
      skip: d.skip.map((c) => toCalendarSpec(c)),
      timezone: d.timezone,
    },
    action: {
      type: 'startWorkflow',
      workflowType: d.action.workflowType,
      workflowId: d.action.workflowId,
      taskQueue: d.action.taskQueue,
      args: d.action.args,
      staticSummary: d.action.staticSummary,
      memo: d.action.memo,
      typedSearchAttributes: searchAttributePairs(d.action.searchAttributes),
    },
    policies: { overlap: d.overlap, catchupWindow: d.catchupWindowMs, pauseOnFailure: d.pauseOnFailure },
    state: { paused: d.paused, note: d.note },
  };
}

/** What `client.schedule.create` takes. */
export function toCreateOptions(d: DesiredSchedule): ScheduleOptions {
  const update = toUpdateOptions(d);
  return { scheduleId: d.scheduleId, ...update, memo: d.memo, state: { paused: d.paused, note: d.note } };
}

// ----- comparing ---------------------------------------------------------------------------------

/** The fields apply compares, in a form where equal means "the same schedule". */
export interface ScheduleView {
  calendars: string[];
  skip: string[];
  timezone: string;
  workflowType: string;
  workflowId: string;
  taskQueue: string;
  args: unknown[];
  staticSummary: string;
  memo: Record<string, unknown>;
  searchAttributes: Record<string, string>;
  overlap: string;
  catchupWindow: string;
  pauseOnFailure: boolean;
  paused: boolean;
}

export interface FieldChange {
  field: keyof ScheduleView;
  from: unknown;
  to: unknown;
}

function duration(ms: number): string {
  if (ms % (24 * HOUR_MS) === 0) return `${ms / (24 * HOUR_MS)}d`;
  if (ms % HOUR_MS === 0) return `${ms / HOUR_MS}h`;
  if (ms % 60000 === 0) return `${ms / 60000}m`;
  return `${ms / 1000}s`;
}

export function viewOfDesired(d: DesiredSchedule): ScheduleView {
  return {
    calendars: d.calendars.map(calendarText).sort(),
    skip: d.skip.map(calendarText).sort(),
    timezone: d.timezone,
    workflowType: d.action.workflowType,
    workflowId: d.action.workflowId,
    taskQueue: d.action.taskQueue,
    args: d.action.args,
    staticSummary: d.action.staticSummary,
    memo: d.action.memo,
    searchAttributes: d.action.searchAttributes,
    overlap: d.overlap,
    catchupWindow: duration(d.catchupWindowMs),
    pauseOnFailure: d.pauseOnFailure,
    paused: d.paused,
  };
}

/** The parts of `handle.describe()` apply compares. */
export type DescribedSchedule = Pick<ScheduleDescription, 'spec' | 'action' | 'policies' | 'state'>;

export function viewOfDescription(desc: DescribedSchedule): ScheduleView {
  const attributes: Record<string, string> = {};
  const typed = desc.action.typedSearchAttributes;
  for (const pair of (Array.isArray(typed) ? typed : typed?.getAll()) ?? []) attributes[pair.key.name] = String(pair.value);
  return {
    calendars: (desc.spec.calendars ?? []).map((c) => calendarText(fromCalendarDescription(c))).sort(),
    skip: (desc.spec.skip ?? []).map((c) => calendarText(fromCalendarDescription(c))).sort(),
    timezone: desc.spec.timezone ?? '',
    workflowType: desc.action.workflowType,
    workflowId: desc.action.workflowId ?? '',
    taskQueue: desc.action.taskQueue,
    args: [...(desc.action.args ?? [])],
    staticSummary: desc.action.staticSummary ?? '',
    memo: desc.action.memo ?? {},
    searchAttributes: attributes,
    overlap: desc.policies.overlap ?? 'SKIP',
    catchupWindow: duration(desc.policies.catchupWindow),
    pauseOnFailure: desc.policies.pauseOnFailure,
    paused: desc.state.paused,
  };
}

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

export function diffSchedule(current: ScheduleView, desired: ScheduleView): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const field of Object.keys(desired) as (keyof ScheduleView)[]) {
    if (canonicalJson(current[field]) !== canonicalJson(desired[field])) changes.push({ field, from: current[field], to: desired[field] });
  }
  return changes;
}

// ----- the plan ------------------------------------------------------------------------------------

export type PlannedChange =
  | { scheduleId: string; change: 'create'; desired: DesiredSchedule }
  | { scheduleId: string; change: 'update'; desired: DesiredSchedule; changes: FieldChange[] }
  | { scheduleId: string; change: 'unchanged'; desired: DesiredSchedule }
  | { scheduleId: string; change: 'extra'; managedByLifeboat: boolean };

/**
 * What apply does: `current` has the view of every desired schedule Temporal already has,
 * `existing` the ids (with whether lifeboat made them) of every schedule under the prefix.
 */
export function planSchedules(
  desired: DesiredSchedule[],
  current: ReadonlyMap<string, ScheduleView>,
  existing: ReadonlyArray<{ scheduleId: string; managedByLifeboat: boolean }>,
): PlannedChange[] {
  const plan: PlannedChange[] = desired.map((d) => {
    const now = current.get(d.scheduleId);
    if (!now) return { scheduleId: d.scheduleId, change: 'create', desired: d };
    const changes = diffSchedule(now, viewOfDesired(d));
    return changes.length ? { scheduleId: d.scheduleId, change: 'update', desired: d, changes } : { scheduleId: d.scheduleId, change: 'unchanged', desired: d };
  });
  const wanted = new Set(desired.map((d) => d.scheduleId));
  const extras = existing.filter((e) => !wanted.has(e.scheduleId)).sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
  const seen = new Set<string>();
  for (const e of extras) {
    if (seen.has(e.scheduleId)) continue;
    seen.add(e.scheduleId);
    plan.push({ scheduleId: e.scheduleId, change: 'extra', managedByLifeboat: e.managedByLifeboat });
  }
  return plan;
}

/** A change in one line: `calendars: ["03:00 UTC every day"] → ["03:30 UTC every day"]`. */
export function formatChange(c: FieldChange): string {
  return `${c.field}: ${JSON.stringify(c.from)} → ${JSON.stringify(c.to)}`;
}
