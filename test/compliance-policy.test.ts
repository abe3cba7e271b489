/** The compliance report's judgement, as a pure function of the facts and "now". No server needed. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { drillCalendarOf, loadConfig } from '../src/config';
import { buildComplianceReport, cadenceSeconds, complianceReportMarkdown, judgeTarget, ScheduleCalendar, scheduleGapDays, TargetFacts } from '../src/domain/compliance';

const NOW = Date.parse('2026-11-30T12:00:00.000Z');
const daysAgo = (d: number) => new Date(NOW - d * 86400000).toISOString();

function facts(over: Partial<TargetFacts> = {}): TargetFacts {
  return {
    target: 'app',
    kind: 'database',
    environment: 'staging',
    recoveryPoint: { objectiveSeconds: 900, lastVerifiedBackupAt: daysAgo(0.5), measured: { breached: false, detail: 'WAL archive lag 12 s' } },
    drill: { cadenceSeconds: 31 * 86400, cadence: 'monthly', lastPassedAt: daysAgo(10), lastPassedId: 'drill-app-1' },
    retention: { policy: { daily: 7, weekly: 4, monthly: 12 }, backups: [{ id: '1', name: 'b1', completedAt: daysAgo(0.5), verified: true, series: 'physical' }] },
    openFailures: { backups: [], drills: [] },
    ...over,
  };
}
const check = (f: TargetFacts, name: string) => judgeTarget(f, NOW).checks.find((c) => c.name === name)!;

describe('compliance judgement', () => {
  it('passes a target with a fresh backup, a recent drill and nothing open', () => {
    const t = judgeTarget(facts(), NOW);
    assert.equal(t.ok, true, JSON.stringify(t.checks));
    assert.deepEqual(t.checks.map((c) => [c.name, c.status]), [['recovery point', 'ok'], ['drill', 'ok'], ['retention', 'ok'], ['open failures', 'ok']]);
  });

  it('flags a target without a recent drill, and one never drilled', () => {
    const old = check(facts({ drill: { cadenceSeconds: 31 * 86400, cadence: 'monthly', lastPassedAt: daysAgo(40), lastPassedId: 'drill-app-0' } }), 'drill');
    assert.equal(old.status, 'breach');
    assert.match(old.detail, /last passed drill drill-app-0 40\.0 days ago, OVERDUE for its cadence, monthly/);
    const never = check(facts({ drill: { cadenceSeconds: 92 * 86400, cadence: 'quarterly' } }), 'drill');
    assert.equal(never.status, 'breach');
    assert.match(never.detail, /no passed restore drill of app is on record .* `lifeboat drill run app`/);
  });

  it('takes the cadence from the target, else monthly for databases and quarterly for buckets', () => {
    assert.deepEqual(cadenceSeconds(undefined, 'database'), { seconds: 31 * 86400, cadence: 'monthly (the default for databases)' });
    assert.deepEqual(cadenceSeconds(undefined, 'bucket'), { seconds: 92 * 86400, cadence: 'quarterly (the default for buckets)' });
    assert.deepEqual(cadenceSeconds('Weekly', 'database'), { seconds: 7 * 86400, cadence: 'weekly' });
    assert.equal(cadenceSeconds(14 * 86400, 'bucket').seconds, 14 * 86400);
  });

  it('judges a drill schedule by the longest gap its calendar leaves, plus a day to run', () => {
    const calendar = (c: Partial<ScheduleCalendar>): ScheduleCalendar => ({ daysOfWeek: [], daysOfMonth: [], months: [], ...c });
    assert.equal(scheduleGapDays(calendar({})), 1);
    assert.equal(scheduleGapDays(calendar({ daysOfWeek: ['sunday'] })), 7);
    assert.equal(scheduleGapDays(calendar({ daysOfWeek: ['monday', 'friday'] })), 4);
    assert.equal(scheduleGapDays(calendar({ daysOfMonth: [1] })), 31);
    assert.equal(scheduleGapDays(calendar({ daysOfMonth: [1, 15] })), 17);
    // Only months with a 31st: 31 March to 31 May is 61 days.
    assert.equal(scheduleGapDays(calendar({ daysOfMonth: [31] })), 61);
    assert.equal(scheduleGapDays(calendar({ daysOfMonth: [1], months: ['january', 'april', 'july', 'october'] })), 92);
    assert.equal(scheduleGapDays(calendar({ daysOfMonth: [1], months: ['march', 'september'] })), 184);
    // 29 February: once in four years; a Friday the 13th, at most 14 months apart.
    assert.equal(scheduleGapDays(calendar({ daysOfMonth: [29], months: ['february'] })), 1461);
    assert.equal(scheduleGapDays(calendar({ daysOfMonth: [13], daysOfWeek: ['friday'] })), 427);
    assert.equal(scheduleGapDays(calendar({ daysOfMonth: [30], months: ['february'] })), Infinity);
    const weekly = cadenceSeconds({ at: { hour: 5, minute: 45 }, daysOfWeek: ['sunday'], daysOfMonth: [], months: [] }, 'sqlite', 'schedules.sqliteDrill');
    assert.deepEqual(weekly, { seconds: 8 * 86400, cadence: 'schedules.sqliteDrill, on sunday at 05:45 UTC: at most 7 days apart, plus a day to run' });
    const quarterly = cadenceSeconds({ at: { hour: 5, minute: 30 }, daysOfWeek: [], daysOfMonth: [1], months: ['january', 'april', 'july', 'october'] }, 'bucket', "files's drill.cadence");
    assert.deepEqual(quarterly, { seconds: 93 * 86400, cadence: "files's drill.cadence, on day 1 of january, april, july, october at 05:30 UTC: at most 92 days apart, plus a day to run" });
  });

  it('takes a target\'s drill calendar from its own drill.cadence, else its kind\'s drill schedule, none for DynamoDB', () => {
    const config = loadConfig(path.resolve(__dirname, '../../lifeboat.config.yaml'), { dataDir: '/tmp/lifeboat-compliance-policy' });
    const app = config.targets.databases[0];
    assert.deepEqual(drillCalendarOf(config, { ...app, drill: undefined }, 'database'), { calendar: config.schedules.drill, source: 'schedules.drill' });
    const own = { ...config.schedules.drill, daysOfMonth: [], daysOfWeek: ['monday' as const] };
    assert.deepEqual(drillCalendarOf(config, { name: 'x', drill: { cadence: own } }, 'database'), { calendar: own, source: "x's drill.cadence" });
    assert.deepEqual(drillCalendarOf(config, { name: 'y' }, 'sqlite').source, 'schedules.sqliteDrill');
    assert.deepEqual(drillCalendarOf(config, { name: 'z' }, 'dynamodb'), {});
  });

  it('judges the recovery point by the engine when it measures one, else by the backup age', () => {
    assert.equal(check(facts({ recoveryPoint: { objectiveSeconds: 900, lastVerifiedBackupAt: daysAgo(0.5), measured: { breached: true, detail: 'archive 2 h behind' } } }), 'recovery point').status, 'breach');
    const bucket = facts({ kind: 'bucket', recoveryPoint: { objectiveSeconds: 86400, lastVerifiedBackupAt: daysAgo(2) } });
    assert.match(check(bucket, 'recovery point').detail, /beyond the RPO of 24\.0 h/);
    assert.equal(check(facts({ recoveryPoint: { objectiveSeconds: 900 } }), 'recovery point').status, 'breach');
  });

  it('compares retention as found with retention as configured', () => {
    // 40 days of history but backups only on the last 3 days: the dailies are short.
    const backups = [40, 2, 1, 0.2].map((d, i) => ({ id: String(i), name: `b${i}`, completedAt: daysAgo(d), verified: true, series: 'physical' }));
    const short = check(facts({ retention: { policy: { daily: 7, weekly: 4, monthly: 12 }, backups } }), 'retention');
    assert.equal(short.status, 'breach');
    assert.match(short.detail, /daily: 3 of 7 configured \(SHORT: at least 6 expected/);
    // A daily backup 20 days old that is neither weekly nor monthly: retention should have removed it.
    const daily = Array.from({ length: 8 }, (_, i) => ({ id: `d${i}`, name: `d${i}`, completedAt: daysAgo(i + 0.2), verified: true, series: 'physical' }));
    const stale = [...daily, { id: 'x', name: 'x', completedAt: '2026-11-11T13:00:00.000Z', verified: true, series: 'physical' }, { id: 'w', name: 'w', completedAt: '2026-11-09T01:00:00.000Z', verified: true, series: 'physical' }, { id: 'm', name: 'm', completedAt: '2026-11-01T01:00:00.000Z', verified: true, series: 'physical' }];
    const overdue = check(facts({ retention: { policy: { daily: 7, weekly: 4, monthly: 12 }, backups: stale } }), 'retention');
    assert.match(overdue.detail, /1 backup retention should have expired 2\+ days ago still on record/);
    assert.equal(overdue.status, 'breach');
    assert.equal(check(facts({ retention: { policy: { daily: 7, weekly: 4, monthly: 12 }, backups: [] } }), 'retention').status, 'unknown');
  });

  it('reports failures not followed by a success', () => {
    const c = check(facts({ openFailures: { backups: [{ id: '20261130-010000F', at: daysAgo(1), failure: 'repo unreachable' }], drills: [{ id: 'drill-app-9', at: daysAgo(2), issue: 'validation failed' }] } }), 'open failures');
    assert.equal(c.status, 'breach');
    assert.match(c.detail, /backup 20261130-010000F failed .* \(repo unreachable\) and no verified backup since; drill drill-app-9 failed/);
  });

  it('adds up breaches into one report and its Markdown', () => {
    const r = buildComplianceReport([facts(), facts({ target: 'db2', drill: { cadenceSeconds: 86400, cadence: 'daily' } })], { reportId: 'compliance-1', runId: 'r', generatedAt: new Date(NOW).toISOString(), requestedBy: 'test' });
    assert.equal(r.ok, false);
    assert.equal(r.breaches, 1);
    assert.equal(r.summary, '1 breach in 1 of 2 targets: db2 (drill)');
    const md = complianceReportMarkdown(r);
    assert.match(md, /^# Compliance report compliance-1: BREACH/);
    assert.match(md, /## db2 \(database, staging\): BREACH\n\n\| check \| status \| detail \|\n\|---\|---\|---\|\n\| recovery point \| ok \|/);
    assert.match(md, /\| drill \| \*\*BREACH\*\* \|/);
  });
});
