/**
 * Monitoring on the real stack, as a person meets it: a real worker process with its metrics
 * endpoint takes a real incremental backup of `app` into both MinIO regions; then
 * - `lifeboat storage` (the CLI's real output, JSON and for people) reports it from the catalog
 *   and the object stores, and a DR copy that lags (catalog rows committed for the test, removed after);
 * - `lifeboat stack up --with-prometheus` starts a real Prometheus that scrapes that worker and
 *   loads the shipped rules, and a lifeboat metric reads back through /api/v1/query;
 * - a backup that really fails (a target whose pgBackRest stanza does not exist) and a real
 *   restore drill move the series a person looks at.
 * About 2-3 minutes: the worker's start, one incremental backup, one drill.
 */
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { createPorts } from '../src/activities/ports';
import { LifeboatConfig, loadConfig } from '../src/config';
import { DatabaseBackupInput, DatabaseBackupResult } from '../src/domain/backup';
import type { RestoreDrillResult } from '../src/domain/drill';
import { formatDuration } from '../src/domain/format';
import { formatBytes } from '../src/domain/storage';
import { collectCatalogDurations } from '../src/metrics/catalog-metrics';
import { sampleValue } from '../src/metrics/exposition';
import { freeLoopbackPort } from '../src/metrics/worker-metrics';
import { waitUntil } from '../src/platform/processes';
import { loadStackSettings } from '../src/stack/settings';
import { createStack, Stack } from '../src/stack/stack';
import type { StorageReport } from '../src/metrics/storage-report';
import { createLifeboatWorker } from '../src/worker';
import { ensureFullBackup } from './helpers/backup-exists';
import { lifeboat, ROOT } from './helpers/cli';
import { useStack } from './helpers/stack';
import { EXAMPLE_CONFIG_FILE, uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';
import { startWorkerProcess, stopWorkerProcess } from './helpers/worker-process';

describe('monitoring on the real stack: storage, Prometheus, a failed backup, a drill', function () {
  const config = loadConfig(EXAMPLE_CONFIG_FILE);
  const taskQueue = uniqueTaskQueue('monitoring');
  const run = randomBytes(3).toString('hex');
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let worker: ChildProcess | undefined;
  let metricsPort: number;
  let backup: DatabaseBackupResult;

  /** One scrape of the worker's endpoint. */
  const scrape = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  /** Scrapes until `check` holds (the catalog reading is cached for metrics.cacheSeconds). */
  const scrapeUntil = async (what: string, check: (text: string) => boolean): Promise<string> => {
    let text = '';
    await waitUntil(what, async () => ((text = await scrape()), check(text) || 'not yet'), { timeoutMs: 60000, intervalMs: 1000 });
    return text;
  };

  before(async () => {
    stack = await useStack();
    env = await useTemporal();
    await ensureFullBackup(stack);
    metricsPort = await freeLoopbackPort();
    worker = await startWorkerProcess(taskQueue, EXAMPLE_CONFIG_FILE, { LIFEBOAT_METRICS_PORT: String(metricsPort) });
    const input: DatabaseBackupInput = { target: 'app', kind: 'incr', pollIntervalMs: 1000, requestedBy: 'monitoring-test' };
    backup = await env.client.workflow.execute('databaseBackup', { taskQueue, workflowId: `backup-app-monitoring-${run}`, args: [input] });
  });

  after(async () => {
    if (worker) await stopWorkerProcess(worker, 'SIGTERM');
  });

  describe('lifeboat storage after a backup', () => {
    it('--json: the catalog bytes of the live copies, the object stores per storage class, no lag for app', async () => {
      const r = await lifeboat(['storage', '--json']);
      assert.ok(r.code === 0 || r.code === 1, r.stderr);
      const report = JSON.parse(r.stdout) as StorageReport;
      const ports = createPorts(config);
      try {
        for (const region of ['primary', 'dr']) {
          const [{ bytes }] = await ports.catalog.query<{ bytes: number }>(
            `SELECT coalesce(sum(coalesce((locations->$1->>'sizeBytes')::numeric, size_bytes)), 0)::float8 AS bytes FROM backups
             WHERE target = 'app' AND status IN ('verified', 'complete') AND locations ? $1 AND coalesce(locations->$1->>'failed', 'false') <> 'true'`,
            [region],
          );
          const row = report.targets.find((t) => t.target === 'app' && t.region === region)!;
          assert.ok(row, `app ${region} is reported`);
          assert.equal(row.catalogBytes, bytes, `app ${region}: the catalog's live bytes`);
          // MinIO keeps everything as STANDARD: sets, WAL and noncurrent versions all there.
          assert.deepEqual(Object.keys(row.byClass), ['STANDARD']);
          assert.equal(row.objectStoreBytes, row.byClass.STANDARD);
          // The stores hold at least the new incremental's copy in this region, and the WAL besides.
          assert.ok(row.objectStoreBytes > (region === 'primary' ? backup.primary.sizeBytes! : backup.dr.sizeBytes!), `${region}: ${row.objectStoreBytes}`);
        }
      } finally {
        await ports.close();
      }
      const lag = report.replicaLag.find((l) => l.target === 'app')!;
      assert.deepEqual({ seconds: lag.seconds, overLimit: lag.overLimit, limitSeconds: lag.limitSeconds }, { seconds: 0, overLimit: false, limitSeconds: 3600 });
      // The worst series is reported; with every series at lag 0 that may be another series of app
      // (the suite's logical or incremental backups), never one newer than the backup just taken.
      assert.ok(Date.parse(lag.primaryNewest) <= Date.parse(backup.primary.completedAt!), `${lag.primaryNewest} is not after the backup just taken`);
      assert.equal(lag.drNewest, lag.primaryNewest, 'lag 0: the newest DR copy of that series is as new as its primary copy');
      assert.equal(report.retention.prices.STANDARD, 0.023);
      const primary = report.retention.regions.find((g) => g.region === 'primary')!;
      assert.ok(primary.steadyStateBytes > 0 && primary.walBytes > 0);
      assert.ok(Math.abs(primary.monthlyCost - (primary.steadyStateBytes / 1024 ** 3) * 0.023) < 1e-9, 'all STANDARD, at 0.023 per GiB-month');
      assert.deepEqual(report.problems, []);
    });

    it('for people: a line per region, target and class, and the methods said', async () => {
      const r = await lifeboat(['storage', '--target', 'app']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const json = JSON.parse((await lifeboat(['storage', '--target', 'app', '--json'])).stdout) as StorageReport;
      const primary = json.targets.find((t) => t.target === 'app' && t.region === 'primary')!;
      assert.match(r.stdout, new RegExp(`^  app +primary +\\S+ \\S+ +STANDARD \\S+ \\S+ +${formatBytes(primary.catalogBytes).replace('.', '\\.')} `, 'm'));
      assert.match(r.stdout, /^  primary +\S+ \S+ +\S+ \S+ .*budget 5\.00 GiB/m);
      assert.match(r.stdout, /^  app +0 s +ok +primary \S+, dr \S+$/m);
      assert.match(r.stdout, /^Method: growth is catalog live bytes now minus 30 \/ 90 days ago; the forecast is a least-squares line/m);
    });

    it('a DR copy that failed: the lag is the time between the two newest copies, over the limit, exit 1', async () => {
      const target = `storage-fixture-${run}`;
      const ports = createPorts(config);
      const day = 86400_000;
      const now = Date.now();
      const at = (msAgo: number) => new Date(now - msAgo).toISOString();
      const copy = (region: string, bytes: number, msAgo: number, extra: object = {}) => ({ region, handle: { backupId: `${region}-${msAgo}` }, sizeBytes: bytes, startedAt: at(msAgo + 60000), completedAt: at(msAgo), ...extra });
      try {
        const row = (name: string, kind: string, status: string, locations: object, msAgo: number, details: object = {}) =>
          ports.catalog.query(
            `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, size_bytes, started_at, completed_at, verified_at, workflow_id, details)
             VALUES ($1, 'production', $2, 'pgbackrest', $3, $4, $5, 0, $6, $6, $6, $3, $7)`,
            [target, kind, `${target}-${name}`, status, JSON.stringify(locations), at(msAgo), JSON.stringify(details)],
          );
        await row('full', 'full', 'verified', { primary: copy('primary', 1000, 2 * day), dr: copy('dr', 1000, 2 * day - 60000) }, 2 * day);
        await row('incr', 'incr', 'verified', { primary: copy('primary', 2000, day), dr: copy('dr', 0, day - 60000, { failed: true }) }, day);
        // Expired 35 days ago after 5 days: in the 90-day history, not in the 30-day one.
        await row('old', 'full', 'expired', { primary: copy('primary', 500, 40 * day) }, 40 * day, { retention: { expiredAt: at(35 * day) } });
        const r = await lifeboat(['storage', '--json']);
        assert.equal(r.code, 1, `a lag over its limit is exit 1: ${r.stderr}`);
        const report = JSON.parse(r.stdout) as StorageReport;
        const lag = report.replicaLag.find((l) => l.target === target)!;
        assert.deepEqual({ seconds: lag.seconds, overLimit: lag.overLimit, primaryNewest: lag.primaryNewest, drNewest: lag.drNewest }, { seconds: 86400, overLimit: true, primaryNewest: at(day), drNewest: at(2 * day) });
        const t = (region: string) => report.targets.find((x) => x.target === target && x.region === region)!;
        assert.deepEqual([t('primary').catalogBytes, t('primary').growth30dBytes, t('primary').growth90dBytes], [3000, 3000, 3000]);
        assert.deepEqual([t('dr').catalogBytes, t('dr').growth30dBytes], [1000, 1000]);
        const people = await lifeboat(['storage']);
        assert.equal(people.code, 1);
        assert.match(people.stdout, new RegExp(`^  ${target} +${formatDuration(86400)} +OVER the ${formatDuration(3600)} limit +primary ${at(day)}, dr ${at(2 * day)}$`, 'm'));
      } finally {
        await ports.catalog.query('DELETE FROM backups WHERE target = $1', [target]);
        await ports.close();
      }
    });
  });

  describe('a real Prometheus (stack up --with-prometheus)', () => {
    const settings = () => loadStackSettings({ ...process.env, LIFEBOAT_METRICS_PORT: String(metricsPort) });
    const api = (p: string) => `http://${settings().host}:${settings().prometheus.port}${p}`;
    after(async () => {
      // Left as the stack was: Prometheus runs only when someone asks for it.
      await createStack(settings()).prometheus.stop();
    });

    it('scrapes the worker after a backup: a lifeboat metric reads back through /api/v1/query, and the shipped rules are loaded', async () => {
      const up = await lifeboat(['stack', 'up', '--with-prometheus', '--json'], { LIFEBOAT_METRICS_PORT: String(metricsPort) });
      assert.equal(up.code, 0, up.stdout + up.stderr);
      const status = (JSON.parse(up.stdout) as { status: Array<{ name: string; healthy: boolean; detail: string }> }).status.find((s) => s.name === 'prometheus')!;
      assert.ok(status.healthy, status.detail);
      assert.match(status.detail, new RegExp(`scraping 127\\.0\\.0\\.1:${metricsPort}`));

      const ports = createPorts(config);
      let n: number;
      try {
        [{ n }] = await ports.catalog.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM backups WHERE target = 'app' AND backup_type = 'incr' AND status IN ('verified','complete','expired','deleted') AND locations ? 'primary' AND coalesce(locations->'primary'->>'failed', 'false') <> 'true'`,
        );
      } finally {
        await ports.close();
      }
      const query = 'lifeboat_backups_total{target="app",kind="incr",region="primary",outcome="success"}';
      let result: Array<{ metric: Record<string, string>; value: [number, string] }> = [];
      await waitUntil('the series in Prometheus', async () => {
        const body = (await (await fetch(api(`/api/v1/query?query=${encodeURIComponent(query)}`))).json()) as { status: string; data: { result: typeof result } };
        result = body.data.result;
        return result.length === 1 || `no sample yet (${JSON.stringify(body)})`;
      }, { timeoutMs: 60000, intervalMs: 1000 });
      assert.equal(result[0].metric.instance, `127.0.0.1:${metricsPort}`);
      assert.equal(result[0].metric.job, 'lifeboat');
      assert.equal(Number(result[0].value[1]), n);

      const rules = (await (await fetch(api('/api/v1/rules'))).json()) as { data: { groups: Array<{ name: string; file: string; rules: Array<{ name: string; health: string; type: string }> }> } };
      const shipped = (YAML.parse(fs.readFileSync(path.join(ROOT, 'monitoring', 'lifeboat-alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> }).groups.flatMap((g) => g.rules.map((r) => r.alert));
      const group = rules.data.groups.find((g) => g.name === 'lifeboat')!;
      assert.equal(group.file, path.join(ROOT, 'monitoring', 'lifeboat-alerts.yml'));
      assert.deepEqual(group.rules.map((r) => r.name), shipped);
      assert.ok(group.rules.every((r) => r.type === 'alerting' && r.health !== 'err'), JSON.stringify(group.rules.filter((r) => r.health === 'err')));
    });
  });

  describe('metrics after a failed backup and after a drill', () => {
    it('a backup that fails (its stanza does not exist): failure counted for the target, its newest backup not a success', async () => {
      const broken = `broken-${run}`;
      const extended: LifeboatConfig = structuredClone(config);
      const app = extended.targets.databases.find((d) => d.name === 'app')!;
      extended.targets.databases.push({ ...structuredClone(app), name: broken, stanza: `missing-${run}` } as typeof app);
      const ports = createPorts(extended, { log: () => undefined });
      const brokenQueue = uniqueTaskQueue('monitoring-broken');
      try {
        const w = await createLifeboatWorker({ config: extended, connection: env.nativeConnection, ports, taskQueue: brokenQueue, workflowBundle: await workflowBundle() });
        const err = await w.runUntil(
          env.client.workflow
            .execute('databaseBackup', { taskQueue: brokenQueue, workflowId: `backup-${broken}`, args: [{ target: broken, kind: 'full', pollIntervalMs: 500, requestedBy: 'monitoring-test' }] })
            .then(
              () => assert.fail('a backup of a missing stanza fails'),
              (e: unknown) => e,
            ),
        );
        assert.ok(err instanceof WorkflowFailedError, String(err));
        const [row] = await ports.catalog.query<{ status: string; locations: object }>('SELECT status, locations FROM backups WHERE target = $1', [broken]);
        assert.equal(row?.status, 'failed');
        const text = await scrapeUntil('the failure in the metrics', (t) => sampleValue(t, 'lifeboat_last_backup_success', { target: broken, kind: 'full' }) !== undefined);
        const regions = Object.keys(row.locations).filter((k) => k === 'primary' || k === 'dr');
        // Failed before any copy was made (region none), or with its primary copy begun.
        const region = regions.length === 0 ? 'none' : regions[0];
        assert.equal(sampleValue(text, 'lifeboat_backups_total', { target: broken, kind: 'full', region, outcome: 'failure' }), 1);
        assert.equal(sampleValue(text, 'lifeboat_backups_total', { target: broken, kind: 'full', region, outcome: 'success' }), undefined);
        assert.equal(sampleValue(text, 'lifeboat_last_backup_success', { target: broken, kind: 'full' }), 0);
        assert.equal(sampleValue(text, 'lifeboat_backup_bytes_total', { target: broken, region: 'primary' }), undefined, 'a failure adds no bytes');
        // app's figures are untouched by another target's failure.
        assert.equal(sampleValue(text, 'lifeboat_last_backup_success', { target: 'app', kind: 'incr' }), 1);
      } finally {
        await ports.catalog.query('DELETE FROM backups WHERE target = $1', [broken]);
        await ports.close();
      }
    });

    it("a drill of app: counted as passed, app's last drill a success, its measured RTO and its age", async () => {
      const drill = (await env.client.workflow.execute('restoreDrill', { taskQueue, workflowId: `drill-app-monitoring-${run}`, args: [{ target: 'app', requestedBy: 'monitoring-test', timings: { pollIntervalMs: 500 } }] })) as RestoreDrillResult;
      assert.equal(drill.report.outcome, 'passed');
      const ports = createPorts(config);
      let passed: number;
      let newest: { id: string; rto: number };
      try {
        [{ n: passed }] = await ports.catalog.query<{ n: number }>(`SELECT count(*)::int AS n FROM drills WHERE target = 'app' AND outcome = 'passed'`);
        [newest] = await ports.catalog.query<{ id: string; rto: number }>(`SELECT workflow_id AS id, rto_seconds AS rto FROM drills WHERE target = 'app' AND outcome = 'passed' ORDER BY finished_at DESC LIMIT 1`);
      } finally {
        await ports.close();
      }
      assert.equal(newest.id, drill.report.drillId);
      const text = await scrapeUntil('the drill in the metrics', (t) => sampleValue(t, 'lifeboat_drills_total', { target: 'app', outcome: 'passed' }) === passed);
      assert.equal(sampleValue(text, 'lifeboat_drill_last_success', { target: 'app' }), 1);
      assert.equal(sampleValue(text, 'lifeboat_drill_measured_rto_seconds', { target: 'app' }), drill.report.rto.seconds);
      assert.equal(drill.report.rto.seconds, newest.rto);
      const age = sampleValue(text, 'lifeboat_drill_last_passed_age_seconds', { target: 'app' })!;
      assert.ok(age >= 0 && age < 120, `age ${age}`);
      if (drill.report.prediction) assert.equal(sampleValue(text, 'lifeboat_rto_predicted_seconds', { target: 'app' }), drill.report.prediction.predictedSeconds);
      // The phase histograms are read every 20 cache periods (5 min), so the drill's phases are read here as that reading makes them.
      const durations = createPorts(config);
      try {
        const histogram = (await collectCatalogDurations(durations.catalog)).find((f) => f.name === 'lifeboat_drill_phase_duration_seconds')!;
        const mine = histogram.histograms!.filter((h) => h.labels.target === 'app');
        const phases = new Set(drill.report.steps.map((st) => st.phase));
        assert.ok(mine.length >= 1 && mine.every((h) => h.count >= 1), JSON.stringify(mine));
        assert.ok(mine.some((h) => phases.has(h.labels.phase)), `the drill's phases ${[...phases].join(', ')} are among ${mine.map((h) => h.labels.phase).join(', ')}`);
      } finally {
        await durations.close();
      }
    });
  });
});
