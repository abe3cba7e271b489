/**
 * The drill report as each reader gets it: JSON that parses back to the model, Markdown with the
 * sections an auditor's checklist names, and the HTML page checked the way a person sees it, in
 * headless Chromium: the verdict, the chart's bars and objective line where they should be, names
 * shown as text (never markup), nothing fetched from elsewhere, nothing wider than the window.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { DrillReport, drillReportHtml, drillReportJson, drillReportMarkdown } from '../src/domain/drill-report';
import { launchBrowser } from './helpers/browser';

/** The little of the DOM the chart check reads (the project compiles without the DOM library). */
interface BarGroup {
  getAttribute(name: string): string | null;
  querySelectorAll(selector: string): ArrayLike<{ getBoundingClientRect(): { left: number; top: number; bottom: number } }>;
}

const HOSTILE = 'orders<img src=x onerror="document.title=\'pwned\'">';
const LONG = `app-${'x'.repeat(120)}`;

function sample(overrides: Partial<DrillReport> = {}): DrillReport {
  const phases = (restore: number) => [
    { phase: 'selecting', seconds: 2 },
    { phase: 'restoring', seconds: restore },
    { phase: 'replaying-wal', seconds: 30 },
    { phase: 'validating', seconds: 45 },
  ];
  return {
    drillId: 'drill-app-2026-11-30',
    runId: '7f0c1c2e-1111-2222-3333-444455556666',
    startedAt: '2026-11-30T08:00:00.000Z',
    finishedAt: '2026-11-30T08:19:37.000Z',
    outcome: 'failed',
    target: { name: LONG, kind: 'database', engine: 'pgbackrest', environment: 'production' },
    backup: { id: '20261129-020000F', type: 'full', takenAt: '2026-11-29T02:00:00.000Z', region: 'dr', sizeBytes: 5 * 1024 ** 3, selectedBy: 'at random within the last 30 days' },
    restoredInto: { name: 'drill-app-2026-11-30', detail: `127.0.0.1:55441, drill port range, archiving off` },
    requestedBy: 'schedule lifeboat-drill-app',
    steps: [
      { phase: 'selecting', startedAt: '2026-11-30T08:00:00.000Z', seconds: 2, detail: 'random backup of 9 within 30 days' },
      { phase: 'restoring', startedAt: '2026-11-30T08:00:02.000Z', seconds: 1000, detail: '5.0 GiB at 5.1 MiB/s' },
      { phase: 'replaying-wal', startedAt: '2026-11-30T08:16:42.000Z', seconds: 30, detail: '12 segments' },
      { phase: 'validating', startedAt: '2026-11-30T08:17:12.000Z', seconds: 145, detail: '6 checks' },
    ],
    validations: [
      { name: 'row counts', method: 'count of each critical table against the count recorded at backup time', ok: true, detail: 'customers 2000 = 2000; orders 20000 = 20000' },
      { name: HOSTILE, method: 'user SQL | with a pipe', ok: false, detail: 'expected 1 row, got 0' },
    ],
    rto: { seconds: 1177, objectiveSeconds: 900 },
    rpo: { seconds: 108000, objectiveSeconds: 86400 },
    issues: ['The restore took 1000 s, more than the whole RTO objective of 15 min.'],
    recommendations: ['Restore from the primary region, or raise process-max for restores.'],
    history: [
      { drillId: 'drill-app-2026-08-30', at: '2026-08-30T08:00:00.000Z', passed: true, phases: phases(400) },
      { drillId: 'drill-app-2026-09-30', at: '2026-09-30T08:00:00.000Z', passed: true, phases: phases(520) },
      { drillId: 'drill-app-2026-10-30', at: '2026-10-30T08:00:00.000Z', passed: true, phases: phases(700) },
    ],
    ...overrides,
  };
}

describe('drill report', () => {
  it('JSON: versioned, and parses back to the same report', () => {
    const report = sample();
    const parsed = JSON.parse(drillReportJson(report)) as { version: number } & DrillReport;
    assert.equal(parsed.version, 1);
    const { version: _version, ...rest } = parsed;
    assert.deepEqual(rest, report);
  });

  it('Markdown: every section of the test-report checklist, objectives judged, table cells kept whole', () => {
    const md = drillReportMarkdown(sample());
    for (const heading of ['# Restore drill drill-app-2026-11-30: FAILED', '## Steps followed', '## Validation', '## Issues found', '## Recommendations', '## RTO history']) {
      assert.ok(md.includes(`${heading}\n`), `missing ${heading}`);
    }
    assert.match(md, /- RTO: 19 min 37 s against an objective of 15 min: MISSED/);
    assert.match(md, /- RPO \(age of the backup tested\): 1 d 6 h against an objective of 1 d: MISSED/);
    assert.match(md, /5\.0 GiB/);
    // A pipe in a cell is escaped so the table keeps its columns.
    assert.match(md, /\| user SQL \\\| with a pipe \| \*\*FAILED\*\* \|/);
  });

  describe('HTML in headless Chromium', function () {
    this.timeout(120000);
    let browser: Browser;
    let dir: string;

    before(async () => {
      browser = await launchBrowser();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-report-'));
    });

    after(async () => {
      await browser?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    async function open(report: DrillReport, width = 800) {
      const file = path.join(dir, `${report.drillId}.html`);
      fs.writeFileSync(file, drillReportHtml(report));
      const page = await browser.newPage({ viewport: { width, height: 900 } });
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(`file://${file}`);
      return { page, requests, file };
    }

    it('shows the verdict, names as text, and fetches nothing from elsewhere', async () => {
      const { page, requests, file } = await open(sample());
      assert.equal(await page.locator('#outcome').innerText(), 'FAILED');
      assert.equal(await page.title(), 'Restore drill drill-app-2026-11-30: failed', 'no markup from a name ran');
      assert.equal(await page.locator('img').count(), 0);
      assert.ok((await page.locator('#validations').innerText()).includes(HOSTILE), 'the hostile name is shown as the text it is');
      assert.deepEqual(requests, [`file://${file}`], 'a self-contained page');
      await page.close();
    });

    it('draws one bar per drill, oldest left, each as tall as its RTO, and the objective line between them', async () => {
      const { page } = await open(sample());
      // The bar is the union of its phase rectangles (the group also holds the date under it).
      const bars = await page.locator('svg.rto-chart g.bar').evaluateAll((groups) =>
        (groups as unknown as BarGroup[]).map((g) => {
          const boxes = Array.from(g.querySelectorAll('rect.phase')).map((r) => r.getBoundingClientRect());
          const top = Math.min(...boxes.map((b) => b.top));
          const bottom = Math.max(...boxes.map((b) => b.bottom));
          return { drill: g.getAttribute('data-drill'), seconds: Number(g.getAttribute('data-seconds')), left: boxes[0].left, top, bottom, height: bottom - top };
        }),
      );
      assert.deepEqual(bars.map((b) => b.drill), ['drill-app-2026-08-30', 'drill-app-2026-09-30', 'drill-app-2026-10-30', 'drill-app-2026-11-30']);
      for (let i = 1; i < bars.length; i++) assert.ok(bars[i].left > bars[i - 1].left, 'oldest on the left');
      // Heights in proportion to the RTO (within a pixel of rounding), all standing on one baseline.
      const perSecond = bars[0].height / bars[0].seconds;
      for (const b of bars) {
        assert.ok(Math.abs(b.height - b.seconds * perSecond) < 1.5, `${b.drill}: ${b.height.toFixed(1)} px for ${b.seconds} s`);
        assert.ok(Math.abs(b.bottom - bars[0].bottom) < 1.5, `${b.drill} stands on the baseline`);
      }
      // The objective (900 s) lies above the bars that met it and below the one that missed it.
      const line = await page.locator('svg.rto-chart line.objective').boundingBox();
      assert.ok(line);
      for (const b of bars) {
        if (b.seconds <= 900) assert.ok(b.top > line.y, `${b.drill} (${b.seconds} s) stays below the objective line`);
        else assert.ok(b.top < line.y, `${b.drill} (${b.seconds} s) rises above the objective line`);
      }
      assert.equal(await page.locator('svg.rto-chart text', { hasText: 'failed' }).count(), 1, 'the failed drill is marked');
      await page.close();
    });

    it('fits a phone-width window without sideways scrolling, long names included', async () => {
      const { page } = await open(sample(), 400);
      const overflow = await page.evaluate(() => {
        const root = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
        return root.scrollWidth - root.clientWidth;
      });
      assert.ok(overflow <= 0, `the page is ${overflow} px wider than the window`);
      await page.close();
    });
  });
});
