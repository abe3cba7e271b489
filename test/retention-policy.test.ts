/**
 * The pure retention rules (src/domain/retention.ts): classification into daily/weekly/monthly,
 * the windows, and the protections (last verified, legal hold, dependencies). No stack needed.
 */
import assert from 'node:assert/strict';
import { isDatabaseSet, isoWeekOf, monthOf, monthsBefore, planRetention, RetentionCandidate, RetentionDecision } from '../src/domain/retention';

const POLICY = { daily: 7, weekly: 4, monthly: 12 };
const NOW = new Date('2026-03-31T12:00:00Z'); // a Tuesday

function daysBefore(at: Date, days: number, hourUtc = 3): string {
  const d = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() - days, hourUtc));
  return d.toISOString();
}

const byId = (decisions: RetentionDecision[]) => new Map(decisions.map((d) => [d.id, d]));
const kept = (decisions: RetentionDecision[]) => decisions.filter((d) => d.action === 'keep').map((d) => d.id).sort();

describe('retention policy (pure rules)', () => {
  it('groups by ISO week (Monday to Sunday, UTC) and calendar month', () => {
    assert.equal(isoWeekOf(new Date('2026-03-29T23:59:59Z')), '2026-03-23'); // Sunday belongs to the week before
    assert.equal(isoWeekOf(new Date('2026-03-30T00:00:00Z')), '2026-03-30'); // Monday starts a week
    assert.equal(isoWeekOf(new Date('2026-01-01T10:00:00Z')), '2025-12-29'); // weeks cross years
    assert.equal(monthOf(new Date('2026-02-28T23:00:00Z')), '2026-02');
    assert.equal(monthsBefore(new Date('2026-03-31T12:00:00Z'), 1).toISOString(), '2026-02-28T12:00:00.000Z');
    assert.equal(monthsBefore(new Date('2026-03-31T12:00:00Z'), 12).toISOString(), '2025-03-31T12:00:00.000Z');
    assert.equal(monthsBefore(new Date('2026-01-15T00:00:00Z'), 13).toISOString(), '2024-12-15T00:00:00.000Z');
  });

  it('keeps 7 dailies, the weeklies of 4 weeks and the monthlies of 12 months out of 400 days of daily backups', () => {
    const candidates: RetentionCandidate[] = Array.from({ length: 400 }, (_, i) => ({ id: daysBefore(NOW, i).slice(0, 10), series: 'app/logical', completedAt: daysBefore(NOW, i), verified: true }));
    const decisions = planRetention(candidates, POLICY, NOW);
    assert.deepEqual(kept(decisions), [
      // monthlies: the first backup of each of the last 12 months (2025-04 .. 2026-03)
      '2025-04-01', '2025-05-01', '2025-06-01', '2025-07-01', '2025-08-01', '2025-09-01', '2025-10-01', '2025-11-01', '2025-12-01', '2026-01-01', '2026-02-01', '2026-03-01',
      // weeklies (Mondays) younger than 4 weeks that are not also dailies
      '2026-03-09', '2026-03-16', '2026-03-23',
      // dailies: younger than 7 days (2026-03-24T03:00 is older than 2026-03-24T12:00)
      '2026-03-25', '2026-03-26', '2026-03-27', '2026-03-28', '2026-03-29', '2026-03-30', '2026-03-31',
    ]);
    const d = byId(decisions);
    assert.deepEqual(d.get('2026-03-30')!.classes, ['daily', 'weekly']);
    assert.deepEqual(d.get('2026-03-01')!.classes, ['daily', 'monthly']);
    assert.match(d.get('2026-03-31')!.reasons.join(' | '), /daily: younger than 7 days.*last verified backup of app\/logical/);
    assert.match(d.get('2026-03-16')!.reasons[0], /^weekly \(first of the week of 2026-03-16\)/);
    assert.match(d.get('2025-04-01')!.reasons[0], /^monthly \(first of 2025-04\)/);
    assert.equal(d.get('2026-03-02')!.action, 'expire'); // a Monday 29.4 days old
    assert.equal(d.get('2025-03-01')!.action, 'expire'); // a monthly older than 12 months
    assert.match(d.get('2026-03-24')!.reasons[0], /older than 7 days/);
    // Newest first within the series: the order to delete in.
    assert.deepEqual(decisions.slice(0, 3).map((x) => x.id), ['2026-03-31', '2026-03-30', '2026-03-29']);
  });

  it('classifies the first backup of a week or month by completion time, not by input order', () => {
    const candidates: RetentionCandidate[] = [
      { id: 'later', series: 's', completedAt: '2026-01-07T10:00:00Z', verified: true },
      { id: 'first', series: 's', completedAt: '2026-01-06T10:00:00Z', verified: true },
      { id: 'year-start', series: 's', completedAt: '2026-01-01T10:00:00Z', verified: true },
    ];
    const d = byId(planRetention(candidates, POLICY, NOW));
    assert.deepEqual(d.get('first')!.classes, ['daily', 'weekly']);
    assert.deepEqual(d.get('later')!.classes, ['daily']);
    assert.deepEqual(d.get('year-start')!.classes, ['daily', 'weekly', 'monthly']);
  });

  it('treats the windows as open at the old end', () => {
    const exactly7Days = new Date(NOW.getTime() - 7 * 86400000).toISOString();
    const justUnder = new Date(NOW.getTime() - 7 * 86400000 + 1).toISOString();
    const d = byId(
      planRetention(
        [
          { id: 'newest', series: 's', completedAt: NOW.toISOString(), verified: true },
          { id: 'edge', series: 's', completedAt: exactly7Days, verified: true },
          { id: 'inside', series: 's', completedAt: justUnder, verified: true },
        ],
        { daily: 7, weekly: 0, monthly: 0 },
        NOW,
      ),
    );
    assert.equal(d.get('inside')!.action, 'keep');
    assert.equal(d.get('edge')!.action, 'expire');
    assert.match(d.get('edge')!.reasons[0], /weeklies are not kept/);
  });

  it('never expires the newest verified backup of a series, even when every backup is old', () => {
    const old = (n: number) => daysBefore(NOW, 800 + n);
    const decisions = planRetention(
      [
        { id: 'newest-unverified', series: 'app/logical', completedAt: old(0), verified: false },
        { id: 'verified', series: 'app/logical', completedAt: old(1), verified: true },
        { id: 'older-verified', series: 'app/logical', completedAt: old(2), verified: true },
        // Another series: its own newest verified backup is kept, the logical one does not count for it.
        { id: 'files-old', series: 'app/files', completedAt: old(3), verified: true },
        { id: 'files-older', series: 'app/files', completedAt: old(4), verified: true },
      ],
      POLICY,
      NOW,
    );
    assert.deepEqual(kept(decisions), ['files-old', 'verified']);
    assert.deepEqual(byId(decisions).get('verified')!.reasons, ['the last verified backup of app/logical']);
  });

  it('keeps backups under legal hold and everything a kept backup depends on, transitively', () => {
    const old = (n: number) => daysBefore(NOW, 400 + n);
    const decisions = planRetention(
      [
        { id: 'newest', series: 'f', completedAt: daysBefore(NOW, 0), verified: true, dependsOn: ['full-b'] },
        { id: 'incr-2', series: 'f', completedAt: old(1), verified: true, dependsOn: ['incr-1', 'full-a'], legalHold: 'LEGAL-17' },
        { id: 'incr-1', series: 'f', completedAt: old(2), verified: true, dependsOn: ['full-a'] },
        { id: 'full-a', series: 'f', completedAt: old(3), verified: true },
        { id: 'full-b', series: 'f', completedAt: old(4), verified: true },
        { id: 'orphan', series: 'f', completedAt: old(5), verified: true },
        { id: 'not-a-time', series: 'f', completedAt: 'yesterday', verified: true },
      ],
      POLICY,
      NOW,
    );
    const d = byId(decisions);
    assert.deepEqual(kept(decisions), ['full-a', 'full-b', 'incr-1', 'incr-2', 'newest', 'not-a-time']);
    assert.deepEqual(d.get('incr-2')!.reasons, ['legal hold: LEGAL-17']);
    assert.deepEqual(d.get('incr-1')!.reasons, ['needed by incr-2']);
    assert.deepEqual(d.get('full-a')!.reasons, ['needed by incr-2', 'needed by incr-1']);
    assert.deepEqual(d.get('full-b')!.reasons, ['needed by newest']);
    assert.match(d.get('not-a-time')!.reasons[0], /is not a time/);
    assert.equal(d.get('orphan')!.action, 'expire');
  });

  it('refuses a bad policy or duplicate ids', () => {
    assert.throws(() => planRetention([], { daily: 0, weekly: 4, monthly: 12 }, NOW), /retention.daily/);
    assert.throws(() => planRetention([], { daily: 7, weekly: -1, monthly: 12 }, NOW), /retention.weekly/);
    const c = { id: 'x', series: 's', completedAt: NOW.toISOString(), verified: true };
    assert.throws(() => planRetention([c, c], POLICY, NOW), /listed twice/);
  });

  it("tells a database set (removed on its target's host) from a dump or a file set (S3 objects, removed centrally)", () => {
    for (const t of ['full', 'diff', 'incr', 'snapshot']) assert.equal(isDatabaseSet(t), true, t);
    for (const t of ['logical', 'files-full', 'files-incremental']) assert.equal(isDatabaseSet(t), false, t);
  });
});
