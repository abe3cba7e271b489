/**
 * The pure parts of a drill's validations, no server: the rule of validation SQL, timings against
 * the previous drill, the application check's output tail, row counts recorded at backup time
 * against the restored copy, the config's drill settings and drill port range, and the report's
 * sections for timings and the application check.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigError, findDatabaseTarget, parseConfig, PgBackRestTarget } from '../src/config';
import type { DrillReport } from '../src/domain/drill-report';
import { drillReportHtml, drillReportMarkdown, rtoPhases } from '../src/domain/drill-report';
import { compareQueryTimings, outputTail, SLOWER_NOISE_MS, validationVerdict } from '../src/domain/drill-validation';
import { describeOwner } from '../src/domain/ownership';
import { BackupRowCounts, rowCountsCheck, SnapshotPosition } from '../src/domain/verification';
import { loadStackSettings } from '../src/stack/settings';

const repoRoot = path.resolve(__dirname, '../..');
const DATA_DIR = '/srv/lifeboat-test';

describe('drill checks (pure)', () => {
  describe('validation SQL: at least one row, and a first column that is not NULL, false, zero or empty', () => {
    const cases: Array<[number, unknown, boolean, RegExp]> = [
      [0, undefined, false, /^returned no rows$/],
      [1, null, false, /^1 row, the first column of the first is NULL$/],
      [1, false, false, /is false$/],
      [1, 0, false, /is 0$/],
      [1, '0', false, /is 0$/],
      [3, '0.000', false, /^3 rows, the first column of the first is 0\.000$/],
      [1, '   ', false, /is empty text$/],
      [1, true, true, /^1 row, first value true$/],
      [1, '20000', true, /^1 row, first value 20000$/],
      [2, 'paid', true, /^2 rows, first value paid$/],
      [1, '0x10', true, /first value 0x10$/],
      [1, 7, true, /first value 7$/],
      [1, { a: 1 }, true, /first value \{"a":1\}$/],
    ];
    for (const [rows, first, ok, detail] of cases) {
      it(`${rows} row(s), first ${JSON.stringify(first)}: ${ok ? 'passes' : 'fails'}`, () => {
        const verdict = validationVerdict(rows, first);
        assert.equal(verdict.ok, ok);
        assert.match(verdict.detail, detail);
      });
    }
  });

  describe('query timings against the previous drill', () => {
    const previous = {
      drillId: 'drill-1',
      at: '2026-11-01T05:00:00.000Z',
      timings: [
        { name: 'recent-orders', kind: 'smoke' as const, ms: 100 },
        { name: 'tiny', kind: 'smoke' as const, ms: 2 },
        { name: 'paid-orders', kind: 'validation' as const, ms: 40 },
      ],
    };

    it('gives each query its previous timing and ratio; over twice as slow (and past the noise floor) is an issue', () => {
      const { timings, issues } = compareQueryTimings(
        [
          { name: 'recent-orders', kind: 'smoke', ms: 250 },
          { name: 'tiny', kind: 'smoke', ms: 7 },
          { name: 'paid-orders', kind: 'validation', ms: 20 },
          { name: 'new-one', kind: 'validation', ms: 5 },
          // Same name, other kind: not the same query.
          { name: 'paid-orders', kind: 'smoke', ms: 1 },
        ],
        previous,
      );
      assert.deepEqual(timings, [
        { name: 'recent-orders', kind: 'smoke', ms: 250, previousMs: 100, ratio: 2.5, slower: true },
        { name: 'tiny', kind: 'smoke', ms: 7, previousMs: 2, ratio: 3.5 },
        { name: 'paid-orders', kind: 'validation', ms: 20, previousMs: 40, ratio: 0.5 },
        { name: 'new-one', kind: 'validation', ms: 5 },
        { name: 'paid-orders', kind: 'smoke', ms: 1 },
      ]);
      assert.equal(issues.length, 1);
      assert.match(issues[0], /^The smoke query recent-orders took 250 ms on the restored instance, 2\.5 times the 100 ms of drill drill-1: /);
      assert.ok(7 - 2 < SLOWER_NOISE_MS, 'tiny stays under the noise floor');
    });

    it('without a previous drill: timings alone, no issue', () => {
      assert.deepEqual(compareQueryTimings([{ name: 'a', kind: 'smoke', ms: 3 }], undefined), { timings: [{ name: 'a', kind: 'smoke', ms: 3 }], issues: [] });
    });
  });

  it("the application check's output: the last lines, bounded, secrets redacted", () => {
    const text = `${Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n')}\npassword s3cret-pw used\n\n`;
    const tail = outputTail(text, ['s3cret-pw']);
    assert.equal(tail.split('\n').length, 20);
    assert.equal(tail.split('\n').at(-1), 'password [redacted] used');
    assert.ok(!tail.includes('s3cret-pw'));
    assert.equal(tail.split('\n')[0], 'line 12');
    const long = outputTail('x'.repeat(5000), []);
    assert.equal(long.length, 2003);
    assert.ok(long.startsWith('...x'));
  });

  describe('row counts recorded at backup time against the restored copy', () => {
    const at = (xmax: string, recentCommitted: number, inProgress = 0): SnapshotPosition => ({ takenAt: '2026-11-30T10:00:00.000Z', xmax, inProgress, recentCommitted });
    const recorded = (position: SnapshotPosition, orders = 20000): BackupRowCounts => ({ ...position, backupId: '20261130-100000F', tables: [{ table: 'orders', rows: orders }, { table: 'customers', rows: 2000 }] });
    const restored = (position: SnapshotPosition, orders = 20000) => ({ ...position, tables: [{ table: 'orders', rows: orders }, { table: 'customers', rows: 2000 }] });

    it('equal counts at the same position pass', () => {
      const check = rowCountsCheck({ available: true, counts: recorded(at('900', 850)) }, restored(at('900', 850)));
      assert.deepEqual(check, { name: 'row counts at backup', ok: true, detail: 'every critical table has the rows recorded right after backup 20261130-100000F (orders 20000, customers 2000)' });
    });

    it('a different count at the same position fails, naming the table and both numbers', () => {
      const check = rowCountsCheck({ available: true, counts: recorded(at('900', 850)) }, restored(at('900', 850), 19990));
      assert.equal(check.ok, false);
      assert.match(check.detail, /^orders: 19990 rows where 20000 were recorded \(counted at 2026-11-30T10:00:00\.000Z, right after backup 20261130-100000F\)$/);
    });

    it('counts taken after the source committed more are not comparable: reported with both numbers, never a failure', () => {
      const later = rowCountsCheck({ available: true, counts: recorded(at('905', 855), 20005) }, restored(at('900', 850)));
      assert.equal(later.ok, true);
      assert.match(later.detail, /^not comparable: the source committed transactions between the backup's end and the count \(transaction ids 900 to 905 are not in the backup\), .*restored orders 20000 \(recorded 20005\), customers 2000$/);
      const running = rowCountsCheck({ available: true, counts: recorded(at('900', 850, 1)) }, restored(at('900', 850)));
      assert.match(running.detail, /^not comparable: 1 transaction\(s\) were running on the source when the counts were taken/);
    });

    it('no counts on record: said so', () => {
      assert.deepEqual(rowCountsCheck({ available: false, reason: 'no row counts were recorded for this backup' }, restored(at('1', 1))), {
        name: 'row counts at backup',
        ok: true,
        detail: 'not compared: no row counts were recorded for this backup',
      });
    });
  });

  describe('config: drill settings and the drill port range', () => {
    const example = YAML.parse(fs.readFileSync(path.join(repoRoot, 'lifeboat.config.yaml'), 'utf8')) as { targets: { databases: Array<Record<string, unknown>> } };
    const withApp = (edit: (app: Record<string, unknown>) => void) => {
      const doc = structuredClone(example);
      edit(doc.targets.databases[0]);
      return YAML.stringify(doc);
    };
    const problems = (text: string) => {
      try {
        parseConfig(text, 'test.yaml', { dataDir: DATA_DIR });
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.problems.map((p) => `${p.path}: ${p.message}`);
      }
      return [];
    };

    it('reads the example: validation SQL, keepFor, a drill port range apart from the restore range', () => {
      const app = findDatabaseTarget(parseConfig(withApp(() => undefined), 'test.yaml', { dataDir: DATA_DIR }), 'app') as PgBackRestTarget;
      assert.deepEqual(app.drill.validationSql.map((q) => q.name), ['paid-orders']);
      assert.equal(app.drill.keepFor, 0);
      assert.ok(app.drillPorts.from > app.restorePorts.to || app.drillPorts.to < app.restorePorts.from);
      const checked = findDatabaseTarget(
        parseConfig(
          withApp((a) => {
            a.drill = { applicationCheck: { command: ['/usr/local/bin/app-check', '--quick'] }, keepFor: '30m' };
          }),
          'test.yaml',
          { dataDir: DATA_DIR },
        ),
        'app',
      );
      assert.deepEqual(checked.drill, { validationSql: [], applicationCheck: { name: 'application-check', command: ['/usr/local/bin/app-check', '--quick'], timeout: 300 }, keepFor: 1800, alternateRegions: false });
    });

    it('refuses validation SQL that writes, repeated names, an empty command and overlapping drill ports', () => {
      const found = problems(
        withApp((a) => {
          a.drill = {
            validationSql: [
              { name: 'ok', sql: 'SELECT 1' },
              { name: 'sneaky', sql: 'WITH d AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM d' },
            ],
            applicationCheck: { command: [] },
          };
          a.drillPorts = { from: 55490, to: 55520 };
          a.restorePorts = { from: 55440, to: 55499 };
        }),
      );
      assert.deepEqual(found.sort(), [
        'targets.databases[0].drill.applicationCheck.command: must list at least one entry',
        'targets.databases[0].drill.validationSql[1].sql: validation query "sneaky" is refused because it contains DELETE: drill validation SQL runs against restored copies and must only read, so rewrite it as a single SELECT or remove it',
        'targets.databases[0].drillPorts: overlaps restorePorts (55440-55499): drills take ports from a range of their own, so give drillPorts another range',
      ]);
      // Names are checked once every query is valid.
      const repeated = withApp((a) => {
        a.drill = { validationSql: [{ name: 'ok', sql: 'SELECT 1' }, { name: 'ok', sql: 'SELECT 2' }] };
      });
      assert.deepEqual(problems(repeated), ['targets.databases[0].drill.validationSql[1].name: repeats "ok": each validation query needs its own name, so the report can say which failed']);
    });

    it('stack settings: the drill range defaults next to the restore range, moves with its variables, and refuses an overlap', () => {
      assert.deepEqual(loadStackSettings({}).postgres.drillPorts, { from: 55500, to: 55539 });
      assert.deepEqual(loadStackSettings({ LIFEBOAT_DRILL_PORT_FROM: '20350', LIFEBOAT_DRILL_PORT_TO: '20389' }).postgres.drillPorts, { from: 20350, to: 20389 });
      assert.throws(() => loadStackSettings({ LIFEBOAT_DRILL_PORT_FROM: '55450', LIFEBOAT_DRILL_PORT_TO: '55460' }), /^Error: The drill port range 55450-55460 \(LIFEBOAT_DRILL_PORT_FROM\/LIFEBOAT_DRILL_PORT_TO\) overlaps the restore port range 55440-55499: give drills a range of their own\.$/);
    });
  });

  it("an owner labelled as a drill's says so when named", () => {
    const owner = { workflowId: 'drill-app-1', runId: 'r1', restorePoint: 'backup:20261130-100000F', createdAt: '2026-11-30T10:00:00.000Z' };
    assert.match(describeOwner({ ...owner, purpose: 'drill' }), /^restore drill workflow drill-app-1 \(run r1, /);
    assert.match(describeOwner(owner), /^workflow drill-app-1 \(run r1, /);
  });

  describe('the report: query timings, the application check, the validation window', () => {
    const report: DrillReport = {
      drillId: 'drill-app-2',
      runId: 'run-2',
      startedAt: '2026-11-30T05:00:00.000Z',
      finishedAt: '2026-11-30T05:09:00.000Z',
      outcome: 'failed',
      target: { name: 'app', kind: 'database', engine: 'pgbackrest', environment: 'production' },
      backup: { id: '20261130-020000F', type: 'full', takenAt: '2026-11-30T02:00:00.000Z', region: 'primary', selectedBy: 'as the newest verified backup' },
      restoredInto: { name: 'drill-app-2', detail: '127.0.0.1:55500' },
      requestedBy: 'test',
      steps: [
        { phase: 'restoring', startedAt: '2026-11-30T05:00:00.000Z', seconds: 60, detail: 'restored' },
        { phase: 'validating-data', startedAt: '2026-11-30T05:01:00.000Z', seconds: 20, detail: 'checked' },
        { phase: 'kept-for-validation', startedAt: '2026-11-30T05:01:20.000Z', seconds: 420, detail: 'kept 7 min' },
        { phase: 'cleaning-up', startedAt: '2026-11-30T05:08:20.000Z', seconds: 5, detail: 'removed' },
      ],
      validations: [{ name: 'validation query lost-orders', method: 'validation SQL', ok: false, detail: '1 row, the first column of the first is 0' }],
      rto: { seconds: 80, objectiveSeconds: 3600 },
      rpo: { seconds: 10800, objectiveSeconds: 86400 },
      issues: [],
      recommendations: [],
      history: [],
      queryTimings: [
        { name: 'recent-orders', kind: 'smoke', ms: 250, previousMs: 100, ratio: 2.5, slower: true },
        { name: 'lost-orders', kind: 'validation', ms: 3 },
      ],
      queryTimingsBefore: { drillId: 'drill-app-1', at: '2026-11-01T05:00:00.000Z' },
      applicationCheck: { name: 'app-smoke', exitCode: 3, timedOut: false, seconds: 1, outputTail: '<script>alert(1)</script>\nno answer' },
    };

    it('Markdown and HTML show each timing beside the previous drill and the check with its output, escaped', () => {
      const md = drillReportMarkdown(report);
      assert.match(md, /^## Query timings\n\nOn the restored instance, against drill drill-app-1 \(2026-11-01T05:00:00\.000Z\)\.$/m);
      assert.match(md, /^\| recent-orders \| smoke \| 250 ms \| 100 ms \| 2\.5x \*\*slower\*\* \|$/m);
      assert.match(md, /^\| lost-orders \| validation \| 3 ms \| - \| - \|$/m);
      assert.match(md, /^## Application check app-smoke\n\nExit status 3 after 1 s\.$/m);
      const html = drillReportHtml(report);
      assert.match(html, /<table id="query-timings">/);
      assert.match(html, /<pre id="application-output">&lt;script&gt;alert\(1\)&lt;\/script&gt;\nno answer<\/pre>/);
      assert.ok(!html.includes('<script>'));
    });

    it('the validation window is not part of the RTO', () => {
      assert.deepEqual(rtoPhases(report.steps).map((p) => p.phase), ['restoring', 'validating-data']);
    });
  });
});
