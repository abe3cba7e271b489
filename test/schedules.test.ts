/**
 * `lifeboat schedules`: the pure plan (config → desired schedules → diff) as unit tests, then
 * apply/list against the stack's real Temporal dev server. Every schedule the server suite makes
 * carries a random id prefix (`lbtest-<hex>-`) and is deleted at the end.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, ScheduleDescription, ScheduleNotFoundError } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { LifeboatConfig, parseConfig } from '../src/config';
import {
  calendarText,
  canonicalJson,
  CATCHUP_WINDOW_MS,
  DesiredSchedule,
  desiredSchedules,
  fromCalendarDescription,
  planSchedules,
  SCHEDULED_WORKFLOWS,
  toCalendarSpec,
  toUpdateOptions,
  viewOfDescription,
  viewOfDesired,
} from '../src/client/schedule-plan';
import { applySchedules, ApplyReport, listPrefixed, listSchedules } from '../src/client/schedules';
import { LifeboatBackupType, LifeboatEnvironment, LifeboatKind, LifeboatTarget } from '../src/workflows/search-attributes';
import { useTemporal } from './helpers/temporal';
import fs from 'node:fs';

const repoRoot = path.resolve(__dirname, '../..');
const exampleText = fs.readFileSync(path.join(repoRoot, 'lifeboat.config.yaml'), 'utf8');
const ALL_WORKFLOWS = Object.values(SCHEDULED_WORKFLOWS);

function exampleConfig(edit?: (c: LifeboatConfig) => void): LifeboatConfig {
  const config = parseConfig(exampleText, 'lifeboat.config.yaml', { env: {}, dataDir: '/tmp/lifeboat-test-data' });
  edit?.(config);
  return config;
}

const byId = (schedules: DesiredSchedule[], suffix: string) => {
  const found = schedules.find((s) => s.scheduleId.endsWith(suffix));
  assert.ok(found, `no schedule ending in ${suffix} among ${schedules.map((s) => s.scheduleId).join(', ')}`);
  return found;
};

/** What the server gives back: every loose range spelled as { start, end, step }. */
function asDescribed(d: DesiredSchedule): Pick<ScheduleDescription, 'spec' | 'action' | 'policies' | 'state'> {
  const options = toUpdateOptions(d);
  const tight = (spec: ReturnType<typeof toCalendarSpec>) => {
    const field = (value: unknown) => (value === '*' || value === undefined ? [] : (value as Array<{ start: unknown; end: unknown; step: number }>).map((r) => ({ start: r.start, end: r.end, step: r.step })));
    return {
      second: field(spec.second),
      minute: field(spec.minute),
      hour: field(spec.hour),
      dayOfMonth: field(spec.dayOfMonth),
      month: field(spec.month),
      year: field(spec.year),
      dayOfWeek: field(spec.dayOfWeek),
      comment: '',
    } as never;
  };
  return {
    spec: { calendars: (options.spec.calendars ?? []).map(tight), skip: (options.spec.skip ?? []).map(tight), intervals: [], timezone: 'UTC' },
    action: {
      type: 'startWorkflow',
      workflowType: d.action.workflowType,
      workflowId: d.action.workflowId,
      taskQueue: d.action.taskQueue,
      args: JSON.parse(JSON.stringify(d.action.args)) as unknown[],
      memo: { ...d.action.memo },
      staticSummary: d.action.staticSummary,
      typedSearchAttributes: new TypedSearchAttributes(options.action.typedSearchAttributes as never),
    },
    policies: { overlap: 'SKIP', catchupWindow: d.catchupWindowMs, pauseOnFailure: false },
    state: { paused: d.paused, note: d.note },
  };
}

describe('schedules plan (config → desired Temporal Schedules → diff)', () => {
  const config = exampleConfig();
  const desired = desiredSchedules(config, { registeredWorkflows: ALL_WORKFLOWS });

  it('declares one schedule per (kind, target) under the lifeboat- prefix', () => {
    assert.deepEqual(desired.map((d) => d.scheduleId).sort(), [
      'lifeboat-compliance',
      'lifeboat-database-backup-app',
      'lifeboat-database-full-backup-app',
      'lifeboat-drill-sweeper',
      'lifeboat-failover-drill',
      'lifeboat-files-backup-app-files',
      'lifeboat-files-drill-app-files',
      'lifeboat-files-full-backup-app-files',
      'lifeboat-instance-expiry',
      'lifeboat-logical-backup-app',
      'lifeboat-restore-drill-app',
      'lifeboat-retention',
      'lifeboat-sqlite-drill-app-sqlite',
    ]);
    for (const d of desired) {
      assert.equal(d.action.workflowId, d.scheduleId, 'workflow ids derive from the schedule id');
      assert.equal(d.action.taskQueue, config.temporal.taskQueue);
      assert.equal(d.timezone, 'UTC');
      assert.equal(d.overlap, 'SKIP');
      assert.equal(d.paused, false);
      assert.equal(d.action.memo.configVersion, config.version);
      assert.equal(d.memo.managedBy, 'lifeboat');
    }
  });

  it('starts a differential backup daily at the database time, skipping the full schedule\'s days', () => {
    const daily = byId(desired, 'database-backup-app');
    assert.equal(daily.action.workflowType, 'databaseBackup');
    assert.deepEqual(daily.action.args, [{ target: 'app', kind: 'diff', requestedBy: 'schedule' }]);
    assert.deepEqual(daily.calendars.map(calendarText), ['03:00 UTC every day']);
    assert.deepEqual(daily.skip.map(calendarText), ['all day on Sunday']);
    assert.equal(daily.catchupWindowMs, CATCHUP_WINDOW_MS.backup);
    assert.deepEqual(daily.action.searchAttributes, {
      [LifeboatKind.name]: 'database-backup',
      [LifeboatTarget.name]: 'app',
      [LifeboatEnvironment.name]: 'production',
      [LifeboatBackupType.name]: 'diff',
    });
    const full = byId(desired, 'database-full-backup-app');
    assert.deepEqual(full.action.args, [{ target: 'app', kind: 'full', requestedBy: 'schedule' }]);
    assert.deepEqual(full.calendars.map(calendarText), ['01:00 UTC on Sunday']);
    assert.deepEqual(full.skip, []);
    assert.equal(full.action.searchAttributes[LifeboatKind.name], 'database-backup');
    assert.equal(full.action.searchAttributes[LifeboatBackupType.name], 'full');
  });

  it('backs buckets up incrementally daily and fully on the full days; retention and drills get their own', () => {
    const files = byId(desired, 'files-backup-app-files');
    assert.equal(files.action.workflowType, 'filesBackup');
    assert.deepEqual(files.action.args, [{ target: 'app-files', mode: 'incremental' }]);
    assert.deepEqual(files.calendars.map(calendarText), ['04:00 UTC every day']);
    assert.deepEqual(files.skip.map(calendarText), ['all day on Sunday']);
    assert.deepEqual(byId(desired, 'files-full-backup-app-files').action.args, [{ target: 'app-files', mode: 'full' }]);

    const retention = byId(desired, 'retention');
    assert.equal(retention.action.workflowType, 'retention');
    assert.deepEqual(retention.action.args, [{}]);
    assert.deepEqual(retention.calendars.map(calendarText), ['05:00 UTC every day'], 'an hour after the later of the database and files backups');
    assert.deepEqual(retention.action.searchAttributes, { [LifeboatKind.name]: 'retention' });

    const drill = byId(desired, 'restore-drill-app');
    assert.equal(drill.action.workflowType, 'restoreDrill');
    assert.deepEqual(drill.action.args, [{ target: 'app' }]);
    assert.deepEqual(drill.calendars[0].month, ['JANUARY', 'APRIL', 'JULY', 'OCTOBER']);
    assert.deepEqual(drill.calendars[0].dayOfMonth, [1]);
    assert.equal(drill.catchupWindowMs, CATCHUP_WINDOW_MS.drill);
    assert.equal(calendarText(drill.calendars[0]), '05:00 UTC on day 1 of the month in January, April, July, October');
  });

  it('drills each kind on the procedures\' cadence by default: databases monthly, buckets quarterly, with a week\'s catch-up window', () => {
    const text = exampleText.replace(/^  (drill|bucketDrill): .*\n/gm, '');
    assert.doesNotMatch(text, /^  (drill|bucketDrill):/m);
    const defaults = desiredSchedules(parseConfig(text, 'lifeboat.config.yaml', { env: {}, dataDir: '/tmp/lifeboat-test-data' }), { registeredWorkflows: ALL_WORKFLOWS });
    const db = byId(defaults, 'restore-drill-app');
    assert.deepEqual(db.calendars.map(calendarText), ['05:00 UTC on day 1 of the month']);
    assert.equal(db.catchupWindowMs, 7 * 24 * 3600 * 1000);
    const bucket = byId(defaults, 'files-drill-app-files');
    assert.equal(bucket.action.workflowType, 'restoreDrill');
    assert.deepEqual(bucket.action.args, [{ target: 'app-files' }]);
    assert.deepEqual(bucket.calendars.map(calendarText), ['05:30 UTC on day 1 of the month in January, April, July, October']);
    assert.equal(bucket.catchupWindowMs, CATCHUP_WINDOW_MS.drill);
    assert.deepEqual(bucket.action.searchAttributes, { [LifeboatKind.name]: 'files-drill', [LifeboatTarget.name]: 'app-files', [LifeboatEnvironment.name]: 'production' });
    // Temporal gets the same window as a policy.
    assert.equal(toUpdateOptions(db).policies?.catchupWindow, CATCHUP_WINDOW_MS.drill);
  });

  it('lets a target drill on its own cadence, or alternate regions with two schedules splitting the months', () => {
    const own = desiredSchedules(
      exampleConfig((c) => {
        c.targets.databases[0].drill.cadence = { enabled: true, at: { hour: 6, minute: 45 }, daysOfWeek: ['sunday'], daysOfMonth: [], months: [] };
      }),
      { registeredWorkflows: ALL_WORKFLOWS },
    );
    assert.deepEqual(byId(own, 'restore-drill-app').calendars.map(calendarText), ['06:45 UTC on Sunday']);
    assert.deepEqual(byId(own, 'files-drill-app-files').calendars.map(calendarText), ['05:30 UTC on day 1 of the month in January, April, July, October'], 'the other target keeps its kind\'s');

    const alternating = desiredSchedules(
      exampleConfig((c) => {
        c.targets.databases[0].drill.alternateRegions = true;
        c.targets.buckets[0].drill.alternateRegions = true;
      }),
      { registeredWorkflows: ALL_WORKFLOWS },
    );
    const primary = byId(alternating, 'restore-drill-app');
    const dr = byId(alternating, 'restore-drill-dr-app');
    assert.deepEqual(primary.action.args, [{ target: 'app', fromRegion: 'primary' }]);
    assert.deepEqual(dr.action.args, [{ target: 'app', fromRegion: 'dr' }]);
    assert.deepEqual(primary.calendars.map(calendarText), ['05:00 UTC on day 1 of the month in January, July']);
    assert.deepEqual(dr.calendars.map(calendarText), ['05:00 UTC on day 1 of the month in April, October']);
    assert.equal(dr.action.workflowType, 'restoreDrill');
    assert.equal(dr.action.searchAttributes[LifeboatKind.name], 'restore-drill');
    assert.match(dr.description, /^Restore drill of database app from the DR region: /);
    assert.deepEqual(byId(alternating, 'files-drill-dr-app-files').action.args, [{ target: 'app-files', fromRegion: 'dr' }]);
    // Monthly alternates month by month: every month is drilled, from one region or the other.
    const monthly = desiredSchedules(
      exampleConfig((c) => {
        c.targets.databases[0].drill.alternateRegions = true;
        c.schedules.drill.months = [];
      }),
    );
    const months = [byId(monthly, 'restore-drill-app'), byId(monthly, 'restore-drill-dr-app')].map((d) => d.calendars[0].month);
    assert.deepEqual(months[0], ['JANUARY', 'MARCH', 'MAY', 'JULY', 'SEPTEMBER', 'NOVEMBER']);
    assert.deepEqual(months[1], ['FEBRUARY', 'APRIL', 'JUNE', 'AUGUST', 'OCTOBER', 'DECEMBER']);
  });

  it('refuses alternating regions on a cadence of one month, naming the target and the way out', () => {
    // Into app's own drill block (the example has one, with its validation SQL).
    const text = exampleText.replace(/^(      drill:\n)/m, '$1        alternateRegions: true\n        cadence: { months: [march] }\n');
    assert.notEqual(text, exampleText, 'the edit landed');
    assert.throws(
      () => parseConfig(text, 'lifeboat.config.yaml', { env: {}, dataDir: '/tmp/lifeboat-test-data' }),
      /targets\.databases\[0\]\.drill\.alternateRegions.*needs a drill cadence in at least two months, and app drills only in march/s,
    );
  });

  it('sweeps drill leftovers hourly with its own schedule and a one-hour catch-up window', () => {
    const sweeper = byId(desired, 'drill-sweeper');
    assert.equal(sweeper.action.workflowType, 'drillSweeper');
    assert.deepEqual(sweeper.action.args, [{ requestedBy: 'schedule' }]);
    assert.deepEqual(sweeper.calendars.map(calendarText), ['hourly at minute 20 UTC every day']);
    assert.equal(sweeper.catchupWindowMs, CATCHUP_WINDOW_MS.sweeper);
    assert.equal(sweeper.paused, false);
    assert.deepEqual(sweeper.action.searchAttributes, { [LifeboatKind.name]: 'drill-sweeper' });
    const off = byId(desiredSchedules(exampleConfig((c) => (c.schedules.drillSweeper.enabled = false)), { registeredWorkflows: ALL_WORKFLOWS }), 'drill-sweeper');
    assert.equal(off.paused, true);
    const spec = toCalendarSpec(sweeper.calendars[0]);
    assert.deepEqual(spec.hour, [{ start: 0, end: 23, step: 1 }]);
    assert.deepEqual(spec.minute, [{ start: 20, end: 20, step: 1 }]);
  });

  it('rehearses the recovery plan with a drFailover drill on schedules.failoverDrill, only when the config has a failover block', () => {
    const drill = byId(desired, 'failover-drill');
    assert.equal(drill.action.workflowType, 'drFailover');
    assert.deepEqual(drill.action.args, [{ mode: 'drill', requestedBy: 'lifeboat-schedule', reason: 'scheduled failover drill' }]);
    assert.equal(drill.target, undefined);
    assert.equal(drill.catchupWindowMs, CATCHUP_WINDOW_MS.drill);
    // The example config's twice-a-year calendar: 1 March and 1 September at 02:00 UTC.
    const calendar = drill.calendars[0];
    assert.deepEqual([calendar.month, calendar.dayOfMonth, calendar.hour, calendar.minute], [['MARCH', 'SEPTEMBER'], [1], [2], [0]]);
    assert.deepEqual(drill.action.searchAttributes, { [LifeboatKind.name]: 'failover-drill' });
    // drFailover runs drill mode unattended (no gates), so the schedule runs.
    assert.equal(drill.paused, false);

    const off = byId(desiredSchedules(exampleConfig((c) => (c.schedules.failoverDrill.enabled = false)), { registeredWorkflows: ALL_WORKFLOWS }), 'failover-drill');
    assert.equal(off.paused, true);
    const undeployed = byId(desiredSchedules(config, { registeredWorkflows: ALL_WORKFLOWS.filter((w) => w !== 'drFailover') }), 'failover-drill');
    assert.equal(undeployed.paused, true, 'a worker without drFailover keeps the schedule paused');
    assert.match(undeployed.note, /drFailover workflow is not deployed yet/);

    const withoutPlan = desiredSchedules(exampleConfig((c) => delete c.failover), { registeredWorkflows: ALL_WORKFLOWS });
    assert.equal(withoutPlan.some((s) => s.kind === 'failover-drill'), false, 'no recovery plan, nothing to rehearse');
  });

  it('writes Temporal calendars with upper-case names and ranges of consecutive values', () => {
    const weekdays = exampleConfig((c) => {
      c.schedules.database.daysOfWeek = ['friday', 'monday', 'tuesday', 'wednesday', 'thursday'];
      c.schedules.database.at = { hour: 2, minute: 15 };
    });
    const daily = byId(desiredSchedules(weekdays), 'database-backup-app');
    const spec = toCalendarSpec(daily.calendars[0]);
    assert.deepEqual(spec.dayOfWeek, [{ start: 'MONDAY', end: 'FRIDAY', step: 1 }]);
    assert.deepEqual(spec.hour, [{ start: 2, end: 2, step: 1 }]);
    assert.deepEqual(spec.minute, [{ start: 15, end: 15, step: 1 }]);
    assert.deepEqual(spec.month, [{ start: 'JANUARY', end: 'DECEMBER', step: 1 }]);
    assert.equal(spec.year, '*');
    assert.equal(calendarText(daily.calendars[0]), '02:15 UTC on Monday-Friday');
    const drill = toCalendarSpec(byId(desired, 'restore-drill-app').calendars[0]);
    assert.deepEqual(drill.month, ['JANUARY', 'APRIL', 'JULY', 'OCTOBER'].map((m) => ({ start: m, end: m, step: 1 })));
  });

  it('reads a described schedule back to the same view, so an unchanged schedule compares equal', () => {
    for (const d of desired) {
      const view = viewOfDescription(asDescribed(d));
      assert.deepEqual(view, viewOfDesired(d), d.scheduleId);
      const calendar = fromCalendarDescription(asDescribed(d).spec.calendars![0]);
      assert.deepEqual(calendar, d.calendars[0]);
    }
  });

  it('plans create for missing schedules, unchanged for equal ones, update with a field diff, and reports extras', () => {
    const moved = desiredSchedules(exampleConfig((c) => (c.schedules.database.at = { hour: 3, minute: 30 })), { registeredWorkflows: ALL_WORKFLOWS });
    const current = new Map(desired.filter((d) => !d.scheduleId.endsWith('retention')).map((d) => [d.scheduleId, viewOfDesired(d)]));
    const plan = planSchedules(moved, current, [
      { scheduleId: 'lifeboat-database-backup-old', managedByLifeboat: true },
      { scheduleId: 'lifeboat-hand-made', managedByLifeboat: false },
      { scheduleId: 'lifeboat-retention', managedByLifeboat: true },
    ]);
    const change = (id: string) => plan.find((p) => p.scheduleId === id);
    assert.equal(change('lifeboat-retention')?.change, 'create');
    assert.equal(change('lifeboat-database-full-backup-app')?.change, 'unchanged');
    assert.equal(change('lifeboat-files-backup-app-files')?.change, 'unchanged');
    const update = change('lifeboat-database-backup-app');
    assert.ok(update?.change === 'update');
    assert.deepEqual(update.changes.map((c) => c.field), ['calendars', 'staticSummary']);
    assert.deepEqual(update.changes[0], { field: 'calendars', from: ['03:00 UTC every day'], to: ['03:30 UTC every day'] });
    assert.deepEqual(
      plan.filter((p) => p.change === 'extra'),
      [
        { scheduleId: 'lifeboat-database-backup-old', change: 'extra', managedByLifeboat: true },
        { scheduleId: 'lifeboat-hand-made', change: 'extra', managedByLifeboat: false },
      ],
    );
  });

  it('runs the compliance report weekly (Monday 06:00 UTC) over every target, with a day of catch-up', () => {
    const compliance = byId(desired, 'compliance');
    assert.equal(compliance.action.workflowType, 'complianceReport');
    assert.deepEqual(compliance.action.args, [{ requestedBy: 'schedule' }]);
    assert.equal(compliance.target, undefined);
    assert.equal(compliance.catchupWindowMs, CATCHUP_WINDOW_MS.compliance);
    assert.equal(calendarText(compliance.calendars[0]), '06:00 UTC on Monday');
    assert.equal(compliance.paused, false);
  });

  it('keeps a disabled schedule, or one whose workflow is not deployed, paused with a note saying why', () => {
    const noDrills = exampleConfig((c) => (c.schedules.drill.enabled = false));
    const drill = byId(desiredSchedules(noDrills, { registeredWorkflows: ALL_WORKFLOWS }), 'restore-drill-app');
    assert.equal(drill.paused, true);
    assert.match(drill.note, /disabled in the config \(enabled: false\)/);

    const undeployed = desiredSchedules(config, { registeredWorkflows: ['databaseBackup', 'filesBackup', 'retention', 'logicalBackup'] });
    const pending = byId(undeployed, 'restore-drill-app');
    assert.equal(pending.paused, true);
    assert.match(pending.note, /restoreDrill workflow is not deployed yet/);
    assert.equal(byId(undeployed, 'database-backup-app').paused, false);
  });

  it('skips nothing when the full schedule is disabled, and pauses the full backups', () => {
    const noFull = desiredSchedules(exampleConfig((c) => (c.schedules.full.enabled = false)));
    assert.deepEqual(byId(noFull, 'database-backup-app').skip, []);
    assert.equal(byId(noFull, 'database-full-backup-app').paused, true);
    assert.equal(byId(noFull, 'files-full-backup-app-files').paused, true);
  });

  it('uses the injected prefix and task queue, and compares JSON regardless of key order', () => {
    const custom = desiredSchedules(config, { prefix: 'lbtest-x-', taskQueue: 'q' });
    assert.ok(custom.every((d) => d.scheduleId.startsWith('lbtest-x-') && d.action.taskQueue === 'q'));
    assert.equal(canonicalJson({ b: 1, a: { d: 2, c: 3 } }), canonicalJson({ a: { c: 3, d: 2 }, b: 1 }));
  });
});

describe('schedules apply/list against the real Temporal dev server', function () {
  const prefix = `lbtest-${randomBytes(4).toString('hex')}-`;
  const taskQueue = `test-schedules-${prefix}`;
  const options = { prefix, registeredWorkflows: ALL_WORKFLOWS, taskQueue };
  let client: Client;
  const made = new Set<string>();

  const statuses = (report: ApplyReport) => Object.fromEntries(report.results.map((r) => [r.scheduleId.slice(prefix.length), r.status]));
  const describe_ = (suffix: string) => client.schedule.getHandle(`${prefix}${suffix}`).describe();
  const conflictTokens = async (ids: string[]) =>
    Object.fromEntries(await Promise.all(ids.map(async (id) => [id, Buffer.from((await client.schedule.getHandle(id).describe()).raw.conflictToken ?? []).toString('hex')])));
  /** Schedule listing is eventually consistent: wait until it shows (or stops showing) `id`. */
  async function untilListed(id: string, present = true): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const listed = (await listPrefixed(client, prefix)).some((s) => s.scheduleId === id);
      if (listed === present) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.fail(`schedule ${id} ${present ? 'never appeared in' : 'never left'} the listing`);
  }

  before(async function () {
    this.timeout(600000);
    client = (await useTemporal()).client;
  });

  after(async function () {
    this.timeout(60000);
    if (!client) return;
    for (const s of await listPrefixed(client, prefix).catch(() => [])) made.add(s.scheduleId);
    for (const id of made) {
      await client.schedule
        .getHandle(id)
        .delete()
        .catch((err: unknown) => {
          if (!(err instanceof ScheduleNotFoundError)) throw err;
        });
    }
  });

  it('creates every schedule: calendar, overlap SKIP, catch-up window, action with workflow type, args, task queue, search attributes', async () => {
    const report = await applySchedules(client, exampleConfig(), options);
    for (const r of report.results) made.add(r.scheduleId);
    assert.deepEqual(statuses(report), {
      'database-backup-app': 'created',
      'database-full-backup-app': 'created',
      'logical-backup-app': 'created',
      'files-backup-app-files': 'created',
      'files-full-backup-app-files': 'created',
      retention: 'created',
      'restore-drill-app': 'created',
      'files-drill-app-files': 'created',
      'sqlite-drill-app-sqlite': 'created',
      'drill-sweeper': 'created',
      'instance-expiry': 'created',
      compliance: 'created',
      'failover-drill': 'created',
    });

    const daily = await describe_('database-backup-app');
    assert.equal(daily.spec.timezone, 'UTC');
    assert.equal(daily.spec.calendars?.length, 1);
    const cal = daily.spec.calendars![0];
    assert.deepEqual(cal.hour, [{ start: 3, end: 3, step: 1 }]);
    assert.deepEqual(cal.minute, [{ start: 0, end: 0, step: 1 }]);
    assert.deepEqual(cal.dayOfWeek, [{ start: 'SUNDAY', end: 'SATURDAY', step: 1 }]);
    assert.deepEqual(daily.spec.skip?.[0].dayOfWeek, [{ start: 'SUNDAY', end: 'SUNDAY', step: 1 }]);
    assert.equal(daily.policies.overlap, 'SKIP');
    assert.equal(daily.policies.catchupWindow, CATCHUP_WINDOW_MS.backup);
    assert.equal(daily.state.paused, false);
    assert.equal(daily.action.workflowType, 'databaseBackup');
    assert.deepEqual(daily.action.args, [{ target: 'app', kind: 'diff', requestedBy: 'schedule' }]);
    assert.equal(daily.action.taskQueue, taskQueue);
    assert.equal(daily.action.workflowId, `${prefix}database-backup-app`);
    assert.match(daily.action.staticSummary ?? '', /Differential backup of database app/);
    assert.deepEqual(daily.action.memo, { lifeboatSchedule: `${prefix}database-backup-app`, configVersion: 1 });
    assert.equal(daily.memo?.managedBy, 'lifeboat');
    const attrs = daily.action.typedSearchAttributes as TypedSearchAttributes;
    assert.equal(attrs.get(LifeboatKind), 'database-backup');
    assert.equal(attrs.get(LifeboatTarget), 'app');
    assert.equal(attrs.get(LifeboatEnvironment), 'production');
    assert.equal(attrs.get(LifeboatBackupType), 'diff');
    // The next runs are 03:00 UTC and never on a Sunday (the full backup's day).
    assert.ok(daily.info.nextActionTimes.length > 0);
    for (const t of daily.info.nextActionTimes) {
      assert.equal(t.toISOString().slice(11, 19), '03:00:00');
      assert.notEqual(t.getUTCDay(), 0);
    }

    const drill = await describe_('restore-drill-app');
    assert.deepEqual(drill.spec.calendars![0].month.map((r) => r.start), ['JANUARY', 'APRIL', 'JULY', 'OCTOBER']);
    assert.deepEqual(drill.action.args, [{ target: 'app' }]);
    assert.equal(drill.action.workflowType, 'restoreDrill');
    for (const t of drill.info.nextActionTimes) assert.ok([0, 3, 6, 9].includes(t.getUTCMonth()) && t.getUTCDate() === 1, t.toISOString());

    const sweeper = await describe_('drill-sweeper');
    assert.equal(sweeper.action.workflowType, 'drillSweeper');
    assert.equal(sweeper.policies.catchupWindow, CATCHUP_WINDOW_MS.sweeper);
    assert.equal(drill.policies.catchupWindow, CATCHUP_WINDOW_MS.drill);
    // Hourly: consecutive runs an hour apart, each at minute 20.
    const next = sweeper.info.nextActionTimes;
    assert.ok(next.length >= 2);
    for (const t of next) assert.equal(t.toISOString().slice(14, 19), '20:00');
    assert.equal(next[1].getTime() - next[0].getTime(), 3600 * 1000);

    const full = await describe_('files-full-backup-app-files');
    assert.deepEqual(full.action.args, [{ target: 'app-files', mode: 'full' }]);
    for (const t of full.info.nextActionTimes) assert.equal(t.getUTCDay(), 0);
  });

  it('applied again, reports every schedule unchanged and changes nothing on the server', async () => {
    const ids = [...made];
    const before = await conflictTokens(ids);
    const report = await applySchedules(client, exampleConfig(), options);
    assert.ok(report.results.every((r) => r.status === 'unchanged'), JSON.stringify(statuses(report)));
    assert.deepEqual(await conflictTokens(ids), before);
  });

  it('reports a changed time as updated with the diff (dry run changes nothing), and the update lands', async () => {
    const moved = exampleConfig((c) => (c.schedules.database.at = { hour: 3, minute: 30 }));
    const dry = await applySchedules(client, moved, { ...options, dryRun: true });
    const dryDaily = dry.results.find((r) => r.scheduleId === `${prefix}database-backup-app`);
    assert.equal(dryDaily?.status, 'updated');
    assert.deepEqual((await describe_('database-backup-app')).spec.calendars![0].minute, [{ start: 0, end: 0, step: 1 }]);

    const report = await applySchedules(client, moved, options);
    const st = statuses(report);
    assert.equal(st['database-backup-app'], 'updated');
    assert.ok(Object.entries(st).every(([id, s]) => id === 'database-backup-app' || s === 'unchanged'), JSON.stringify(st));
    const daily = report.results.find((r) => r.scheduleId === `${prefix}database-backup-app`)!;
    assert.deepEqual(daily.changes?.find((c) => c.field === 'calendars'), { field: 'calendars', from: ['03:00 UTC every day'], to: ['03:30 UTC every day'] });
    const described = await describe_('database-backup-app');
    assert.deepEqual(described.spec.calendars![0].minute, [{ start: 30, end: 30, step: 1 }]);
    assert.equal(described.policies.overlap, 'SKIP');
    assert.equal((await applySchedules(client, moved, options)).results.every((r) => r.status === 'unchanged'), true);
  });

  it('pauses a disabled drill schedule with a note, and unpauses it when enabled again', async () => {
    const off = await applySchedules(client, exampleConfig((c) => { c.schedules.database.at = { hour: 3, minute: 30 }; c.schedules.drill.enabled = false; }), options);
    const drillResult = off.results.find((r) => r.scheduleId === `${prefix}restore-drill-app`)!;
    assert.equal(drillResult.status, 'updated');
    assert.deepEqual(drillResult.changes?.map((c) => c.field), ['paused']);
    const paused = await describe_('restore-drill-app');
    assert.equal(paused.state.paused, true);
    assert.match(paused.state.note ?? '', /enabled: false/);

    await applySchedules(client, exampleConfig(), options);
    assert.equal((await describe_('restore-drill-app')).state.paused, false);
  });

  it('reports schedules the config no longer has, deletes them only with prune, and never one lifeboat did not make', async () => {
    const handMade = `${prefix}hand-made`;
    await client.schedule.create({
      scheduleId: handMade,
      spec: { calendars: [{ hour: 2 }] },
      action: { type: 'startWorkflow', workflowType: 'somethingElse', taskQueue, args: [] },
      state: { paused: true },
    });
    made.add(handMade);
    // Its own precondition (apply is idempotent), so the test also runs on its own.
    await applySchedules(client, exampleConfig(), options);
    const filesId = `${prefix}files-backup-app-files`;
    await untilListed(filesId);
    await untilListed(handMade);
    const noBuckets = exampleConfig((c) => (c.targets.buckets = []));

    const reported = await applySchedules(client, noBuckets, options);
    const st = statuses(reported);
    assert.equal(st['files-backup-app-files'], 'extra');
    assert.equal(st['files-full-backup-app-files'], 'extra');
    assert.equal(st['hand-made'], 'extra');
    assert.equal(reported.results.find((r) => r.scheduleId === handMade)?.managedByLifeboat, false);
    await client.schedule.getHandle(filesId).describe(); // still there

    const pruned = statuses(await applySchedules(client, noBuckets, { ...options, prune: true }));
    assert.equal(pruned['files-backup-app-files'], 'deleted');
    assert.equal(pruned['files-full-backup-app-files'], 'deleted');
    assert.equal(pruned['hand-made'], 'extra');
    await assert.rejects(client.schedule.getHandle(filesId).describe(), ScheduleNotFoundError);
    await client.schedule.getHandle(handMade).describe(); // left alone

    // Back in the config, it is created again.
    await untilListed(filesId, false);
    assert.equal(statuses(await applySchedules(client, exampleConfig(), options))['files-backup-app-files'], 'created');
  });

  it('lists the schedules with their next run times, and the CLI prints the plan as JSON', async () => {
    const listing = await listSchedules(client, prefix);
    const daily = listing.find((s) => s.scheduleId === `${prefix}database-backup-app`);
    assert.ok(daily, 'the daily database backup is listed');
    assert.deepEqual(daily.calendars, ['03:00 UTC every day']);
    assert.deepEqual(daily.skip, ['all day on Sunday']);
    assert.ok(daily.nextRuns.length > 0 && daily.nextRuns.every((t) => t.endsWith('T03:00:00.000Z')));

    const { stdout } = await promisify(execFile)(process.execPath, [path.join(repoRoot, 'bin/lifeboat.js'), 'schedules', 'apply', '--dry-run', '--json', '--prefix', prefix], {
      cwd: repoRoot,
      env: { ...process.env, LIFEBOAT_CONFIG: path.join(repoRoot, 'lifeboat.config.yaml') },
    });
    const report = JSON.parse(stdout) as ApplyReport;
    assert.equal(report.dryRun, true);
    assert.equal(report.prefix, prefix);
    // The CLI uses the config's task queue, not the test's: every schedule would be updated, none created.
    assert.ok(report.results.filter((r) => r.status !== 'extra').every((r) => r.status === 'updated' && r.changes?.some((c) => c.field === 'taskQueue')), stdout);
    assert.equal((await describe_('database-backup-app')).action.taskQueue, taskQueue, 'a dry run changes nothing');
  });
});
