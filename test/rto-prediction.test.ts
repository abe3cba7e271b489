/** The RTO prediction model: fixed overheads vs size-proportional phases, growth, honesty about data. No server needed. */
import assert from 'node:assert/strict';
import { DrillSample, fitNonNegativeLine, inAbout, predictRto, secondsAt } from '../src/domain/rto-prediction';
import { drillReportHtml, drillReportMarkdown, DrillReport } from '../src/domain/drill-report';

const GIB = 1024 ** 3;
const NOW = '2026-11-30T12:00:00.000Z';
const daysAgo = (d: number) => new Date(Date.parse(NOW) - d * 86400000).toISOString();

/** A drill whose phases follow a known law: restore 60 s + 100 s/GiB, replay 20 s/GiB, fixed 30 s and 10 s. */
function drill(id: string, sizeBytes: number, at = daysAgo(1), extra = 0): DrillSample {
  const gib = sizeBytes / GIB;
  const phases = [
    { phase: 'selecting', seconds: 2 },
    { phase: 'validating', seconds: 8 },
    { phase: 'restoring', seconds: 60 + 100 * gib },
    { phase: 'replaying-wal', seconds: 20 * gib },
    { phase: 'validating-data', seconds: 30 },
  ];
  const sum = phases.reduce((s, p) => s + p.seconds, 0);
  return { drillId: id, at, sizeBytes, rtoSeconds: sum + extra, phases };
}

describe('RTO prediction model', () => {
  it('fits a line with neither term negative', () => {
    const exact = fitNonNegativeLine([{ x: 1, y: 12 }, { x: 2, y: 14 }, { x: 4, y: 18 }]);
    assert.ok(Math.abs(exact.a - 10) < 1e-9 && Math.abs(exact.b - 2) < 1e-9);
    // Falling with size: no size-dependent part, the mean as overhead.
    assert.deepEqual(fitNonNegativeLine([{ x: 1, y: 10 }, { x: 2, y: 8 }]), { a: 9, b: 0 });
    // A negative intercept: the best line through the origin instead.
    const origin = fitNonNegativeLine([{ x: 1, y: 1 }, { x: 2, y: 5 }]);
    assert.equal(origin.a, 0);
    assert.ok(Math.abs(origin.b - 11 / 5) < 1e-9);
  });

  it('separates fixed overheads from size-proportional phases when drills ran at different sizes', () => {
    const p = predictRto({ target: 'app', now: NOW, objectiveSeconds: 3600, currentSizeBytes: 10 * GIB, drills: [drill('d1', 1 * GIB, daysAgo(60), 5), drill('d2', 2 * GIB, daysAgo(30), 5), drill('d3', 4 * GIB, daysAgo(2), 5)], sizeHistory: [] });
    assert.equal(p.status, 'within');
    assert.equal(p.basis.fitted, true);
    assert.equal(p.basis.drills, 3);
    // 2 + 8 + 60 + 30 + 5 fixed; 120 s per GiB: 105 + 1200 at 10 GiB.
    assert.equal(p.predictedSeconds, 1305);
    const restoring = p.phases.find((x) => x.phase === 'restoring')!;
    assert.ok(Math.abs(restoring.fixedSeconds - 60) < 1e-6);
    assert.ok(Math.abs(restoring.bytesPerSecond! - GIB / 100) < 1);
    const validating = p.phases.find((x) => x.phase === 'validating-data')!;
    assert.equal(validating.bytesPerSecond, undefined);
    assert.ok(Math.abs(validating.fixedSeconds - 30) < 1e-6);
    assert.equal(p.phases.find((x) => x.phase === 'between phases')!.fixedSeconds, 5);
    assert.match(p.basis.detail, /fitted from 3 passed drills at 1\.0 GiB to 4\.0 GiB/);
    assert.match(p.summary, /^predicted RTO now: 22 min \(objective 60 min\)/);
  });

  it('from drills at one size, takes restore and replay as proportional and says so', () => {
    const one = drill('d1', 2 * GIB);
    const p = predictRto({ target: 'app', now: NOW, objectiveSeconds: 3600, currentSizeBytes: 4 * GIB, drills: [one], sizeHistory: [] });
    assert.equal(p.basis.fitted, false);
    // restoring 260 s and replay 40 s at 2 GiB double at 4 GiB; 40 s fixed stays.
    assert.equal(p.predictedSeconds, 40 + 600);
    assert.equal(p.phases.find((x) => x.phase === 'restoring')!.how, 'proportional');
    assert.equal(p.phases.find((x) => x.phase === 'validating')!.how, 'fixed');
    assert.match(p.basis.detail, /from 1 passed drill at 2\.0 GiB only: restore and WAL replay taken as proportional/);
    assert.match(p.summary, /Based on 1 passed drill at one size\./);
  });

  it('says there is no prediction without a drill or a size, and why', () => {
    const none = predictRto({ target: 'app', now: NOW, objectiveSeconds: 3600, currentSizeBytes: GIB, drills: [], sizeHistory: [] });
    assert.equal(none.status, 'insufficient-data');
    assert.equal(none.predictedSeconds, undefined);
    assert.match(none.summary, /predicted RTO now: unknown \(objective 60 min\): no passed drill of app .* `lifeboat drill run app`/);
    const noSize = predictRto({ target: 'app', now: NOW, objectiveSeconds: 3600, drills: [drill('d1', GIB)], sizeHistory: [] });
    assert.equal(noSize.status, 'insufficient-data');
    assert.match(noSize.summary, /current size of app could not be measured/);
  });

  it('projects when growth breaches the objective, in words', () => {
    const drills = [drill('d1', 1 * GIB, daysAgo(80)), drill('d2', 3 * GIB, daysAgo(5))];
    // Growing 0.05 GiB a day for 90 days, 5 GiB now.
    const history = Array.from({ length: 10 }, (_, i) => ({ at: daysAgo(90 - i * 10), sizeBytes: (5 - 0.05 * (90 - i * 10)) * GIB }));
    const p = predictRto({ target: 'app', now: NOW, objectiveSeconds: 3600, currentSizeBytes: 5 * GIB, drills, sizeHistory: history });
    // 100 s fixed + 120 s/GiB reaches 3600 s at 29.17 GiB: (29.17 - 5) / 0.05 = 483 days.
    assert.equal(p.status, 'within');
    assert.ok(Math.abs(p.growth.breachInDays! - 483.3) < 1, String(p.growth.breachInDays));
    assert.match(p.summary, /at the last 90 days' growth it breaches in about 16 months/);
    assert.ok(Math.abs(secondsAt(p.phases, p.growth.breachAtSizeBytes!) - 3600) < 1);
  });

  it('raises a breach when the prediction is past the objective now', () => {
    const p = predictRto({ target: 'app', now: NOW, objectiveSeconds: 600, currentSizeBytes: 8 * GIB, drills: [drill('d1', 1 * GIB, daysAgo(30)), drill('d2', 2 * GIB)], sizeHistory: [] });
    assert.equal(p.status, 'breach');
    assert.equal(p.growth.breachInDays, 0);
    assert.match(p.summary, /OVER THE OBJECTIVE; it is past the objective NOW/);
  });

  it('does not call minutes of history a growth trend, and a shrinking target never breaches by growth', () => {
    const drills = [drill('d1', GIB)];
    const recent = [{ at: daysAgo(0.01), sizeBytes: 0.5 * GIB }, { at: daysAgo(0.005), sizeBytes: 0.8 * GIB }];
    const short = predictRto({ target: 'app', now: NOW, objectiveSeconds: 3600, currentSizeBytes: GIB, drills, sizeHistory: recent });
    assert.equal(short.growth.bytesPerDay, undefined);
    assert.match(short.summary, /no growth projection yet \(3 sizes over less than a day of the last 90 days is not a growth trend/);
    const shrinking = Array.from({ length: 5 }, (_, i) => ({ at: daysAgo(80 - i * 20), sizeBytes: (2 - i * 0.2) * GIB }));
    const p = predictRto({ target: 'app', now: NOW, objectiveSeconds: 3600, currentSizeBytes: GIB, drills, sizeHistory: shrinking });
    assert.ok(p.growth.bytesPerDay! < 0);
    assert.equal(p.growth.breachInDays, undefined);
    assert.match(p.summary, /does not breach/);
  });

  it('uses only the most recent drills and ignores those without a size', () => {
    const many = Array.from({ length: 14 }, (_, i) => drill(`d${i}`, (1 + i) * GIB, daysAgo(100 - i)));
    many.push({ ...drill('nosize', GIB), sizeBytes: 0 });
    const p = predictRto({ target: 'app', now: NOW, objectiveSeconds: 36000, currentSizeBytes: GIB, drills: many, sizeHistory: [] });
    assert.equal(p.basis.drills, 10);
    assert.ok(!p.basis.drillIds.includes('d0') && !p.basis.drillIds.includes('nosize'));
  });

  it('words time the way people plan', () => {
    assert.deepEqual([0.5, 1, 12, 30, 210, 1000].map(inAbout), ['within a day', 'in about 1 day', 'in about 12 days', 'in about 4 weeks', 'in about 7 months', 'in about 2.7 years']);
  });

  it('shows in the drill report (Markdown and HTML)', () => {
    const prediction = predictRto({ target: 'app', now: NOW, objectiveSeconds: 3600, currentSizeBytes: 2 * GIB, drills: [drill('d1', GIB)], sizeHistory: [] });
    const report: DrillReport = {
      drillId: 'drill-app-1', runId: 'r', startedAt: NOW, finishedAt: NOW, outcome: 'passed',
      target: { name: 'app', kind: 'database', engine: 'pgbackrest', environment: 'staging' },
      backup: { id: 'b', type: 'full', takenAt: NOW, region: 'primary', selectedBy: 'latest' },
      restoredInto: { name: 'drill-app-1', detail: 'x' }, requestedBy: 't', steps: [], validations: [],
      rto: { seconds: 10, objectiveSeconds: 3600 }, rpo: { seconds: 10, objectiveSeconds: 900 }, issues: [], recommendations: [], history: [], prediction,
    };
    const md = drillReportMarkdown(report);
    assert.match(md, /## RTO prediction\n\npredicted RTO now: \d+ min \(objective 60 min\)/);
    assert.match(md, /\| restoring \| 0 s \| [\d.]+ MiB\/s \|/);
    const html = drillReportHtml(report);
    assert.match(html, /<p id="prediction" class="ok" data-status="within">predicted RTO now:/);
    assert.match(html, /<table id="prediction-phases">/);
    assert.doesNotMatch(drillReportMarkdown({ ...report, prediction: undefined }), /RTO prediction/);
  });
});
