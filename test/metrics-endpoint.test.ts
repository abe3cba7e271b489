/**
 * The worker's Prometheus endpoint on the real stack: a real worker process (lib/src/worker.js)
 * with LIFEBOAT_METRICS_PORT set takes a real incremental backup of `app` through pgBackRest into
 * both MinIO regions; one scrape of its endpoint over HTTP then carries lifeboat's figures for it,
 * read from the catalog and the WAL archive, and the Temporal SDK's own metrics of that very run.
 * About 15 s: the worker's start (it bundles the workflows) and one incremental backup.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts } from '../src/activities/ports';
import { findDatabaseTarget, loadConfig, objectivesFor } from '../src/config';
import { DatabaseBackupInput, DatabaseBackupResult } from '../src/domain/backup';
import { approvalFamilies, listPendingApprovals, PendingApproval } from '../src/metrics/approval-metrics';
import { collectCatalogDurations, collectCatalogMetrics } from '../src/metrics/catalog-metrics';
import { declaredFamilies, renderExposition, sampleValue } from '../src/metrics/exposition';
import { EXPOSITION_CONTENT_TYPE } from '../src/metrics/server';
import { freeLoopbackPort } from '../src/metrics/worker-metrics';
import { waitUntil } from '../src/platform/processes';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { ensureFullBackup } from './helpers/backup-exists';
import { waitForGate } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { EXAMPLE_CONFIG_FILE, uniqueTaskQueue, useTemporal, gateProbeBundle } from './helpers/temporal';
import { startWorkerProcess, stopWorkerProcess } from './helpers/worker-process';
import type { GateProbeInput } from './workflows/quorum-gate';

describe('metrics endpoint (real worker process, real stack)', function () {
  const config = loadConfig(EXAMPLE_CONFIG_FILE);
  const taskQueue = uniqueTaskQueue('metrics');
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let worker: ChildProcess | undefined;
  let url: string;
  let backup: DatabaseBackupResult;
  let text: string;

  before(async function () {
    stack = await useStack();
    env = await useTemporal();
    // An incremental backup needs a full one in the primary repository to build on.
    await ensureFullBackup(stack);
    const port = await freeLoopbackPort();
    url = `http://127.0.0.1:${port}/metrics`;
    worker = await startWorkerProcess(taskQueue, EXAMPLE_CONFIG_FILE, { LIFEBOAT_METRICS_PORT: String(port) });
    const input: DatabaseBackupInput = { target: 'app', kind: 'incr', pollIntervalMs: 1000, requestedBy: 'metrics-test' };
    backup = await env.client.workflow.execute('databaseBackup', { taskQueue, workflowId: `backup-app-metrics-${randomBytes(3).toString('hex')}`, args: [input] });
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), EXPOSITION_CONTENT_TYPE);
    text = await res.text();
  });

  after(async () => {
    if (worker) await stopWorkerProcess(worker, 'SIGTERM');
  });

  it("reports the backup it just took: counted, its region's bytes, its phases, the newest of its kind a success", async () => {
    const ports = createPorts(config);
    try {
      // Every successful incremental of app the catalog holds, this one included (other suites make some too).
      const [{ n }] = await ports.catalog.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM backups WHERE target = 'app' AND backup_type = 'incr' AND status IN ('verified','complete','expired','deleted') AND locations ? 'primary' AND coalesce(locations->'primary'->>'failed', 'false') <> 'true'`,
      );
      assert.ok(n >= 1);
      assert.equal(sampleValue(text, 'lifeboat_backups_total', { target: 'app', kind: 'incr', region: 'primary', outcome: 'success' }), n);
    } finally {
      await ports.close();
    }
    assert.equal(sampleValue(text, 'lifeboat_last_backup_success', { target: 'app', kind: 'incr' }), 1);
    assert.ok(sampleValue(text, 'lifeboat_backup_bytes_total', { target: 'app', region: 'dr' })! >= backup.dr.sizeBytes!);
    const totals = sampleValue(text, 'lifeboat_backup_phase_duration_seconds_count', { target: 'app', kind: 'incr', phase: 'total' })!;
    assert.ok(totals >= 1);
    assert.equal(sampleValue(text, 'lifeboat_backup_phase_duration_seconds_bucket', { target: 'app', kind: 'incr', phase: 'total', le: '+Inf' }), totals);
  });

  it('reports the recovery point from the catalog and the WAL archive: a fresh verified backup, a lag within the RPO', () => {
    const rpo = objectivesFor(config, findDatabaseTarget(config, 'app')).rpo;
    assert.equal(sampleValue(text, 'lifeboat_rpo_objective_seconds', { target: 'app' }), rpo);
    // The newest verified backup is the one just taken: its primary copy's end, to the millisecond.
    assert.equal(sampleValue(text, 'lifeboat_last_verified_backup_timestamp_seconds', { target: 'app' }), Date.parse(backup.primary.completedAt!) / 1000);
    const age = sampleValue(text, 'lifeboat_last_verified_backup_age_seconds', { target: 'app' })!;
    assert.ok(age >= 0 && age < 120, `age ${age}`);
    assert.equal(sampleValue(text, 'lifeboat_continuous_archiving', { target: 'app' }), 1);
    const lag = sampleValue(text, 'lifeboat_recovery_point_lag_seconds', { target: 'app' })!;
    assert.ok(lag >= 0 && lag < rpo, `lag ${lag}`);
  });

  it("serves the Temporal SDK's metrics of the same run beside lifeboat's, every source up", () => {
    for (const source of ['catalog', 'catalog-durations', 'temporal', 'recovery-point', 'object-stores', 'temporal-sdk']) assert.equal(sampleValue(text, 'lifeboat_metrics_source_up', { source }), 1, source);
    const families = declaredFamilies(text);
    assert.ok(families.has('temporal_workflow_completed'), [...families].filter((f) => f.startsWith('temporal_')).join(', '));
    const completed = text.split('\n').filter((l) => l.startsWith('temporal_workflow_completed{') && l.includes(`task_queue="${taskQueue}"`) && l.includes('workflow_type="databaseBackup"'));
    assert.equal(completed.length, 1, completed.join('\n'));
    assert.ok(Number(completed[0].split(' ').pop()) >= 1);
  });

  it('computes each figure from catalog rows of every shape: failed before any copy, a failed DR copy, running, expired (inside a transaction rolled back)', async () => {
    const target = `fixture-${randomBytes(3).toString('hex')}`;
    const app = findDatabaseTarget(config, 'app');
    // The collector reports per-target gauges for the config's targets: this one joins them for the reading.
    const withFixture = { ...config, targets: { databases: [{ ...app, name: target }], buckets: [], directories: [], sqlite: [], dynamodb: [] } } as typeof config;
    const at = (s: number) => new Date(Date.parse('2026-11-20T10:00:00Z') + s * 1000).toISOString();
    const now = new Date(at(3600));
    const ports = createPorts(config);
    try {
      const text = await ports.catalog.withClient(async (c) => {
        await c.query('BEGIN');
        try {
          const row = async (name: string, kind: string, status: string, locations: object, times: { started?: number; completed?: number; verified?: number }, sizeBytes: number | null) =>
            c.query(
              `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, size_bytes, started_at, completed_at, verified_at, workflow_id)
               VALUES ($1, 'production', $2, 'pgbackrest', $3, $4, $5, $6, $7, $8, $9, $3)`,
              [target, kind, name, status, JSON.stringify(locations), sizeBytes, times.started === undefined ? null : at(times.started), times.completed === undefined ? null : at(times.completed), times.verified === undefined ? null : at(times.verified)],
            );
          const copy = (region: string, sizeBytes: number, t: number[], extra: object = {}) => ({ region, handle: { backupId: `${region}-${t[0]}` }, sizeBytes, startedAt: at(t[0]), completedAt: at(t[1]), ...(t[2] !== undefined ? { verified: true, verifiedAt: at(t[2]) } : {}), ...extra });
          // A full verified in both regions: backup 60 s, verify 30 s, DR copy 60 s, DR verify 30 s, 185 s in all.
          await row('full-1', 'full', 'verified', { primary: copy('primary', 100, [0, 60, 90]), dr: copy('dr', 90, [95, 155, 185]) }, { started: 0, completed: 60, verified: 185 }, 100);
          // An incremental verified in the primary region whose DR copy failed: the newest incremental, so not a success.
          await row('incr-1', 'incr', 'verified', { primary: copy('primary', 10, [1000, 1020, 1025]), dr: copy('dr', 0, [1030, 1040], { failed: true }) }, { started: 1000, completed: 1020, verified: 1025 }, 10);
          // A full that failed before any copy (older than full-1); one still running; an older full since expired.
          await row('full-failed', 'full', 'failed', {}, { started: -100 }, null);
          await row('full-running', 'full', 'running', { primary: { region: 'primary', handle: { backupId: 'r' } } }, { started: 2000 }, null);
          // A failure retention has since cleaned up: still a failure.
          await c.query(
            `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, started_at, workflow_id, failure)
             VALUES ($1, 'production', 'full', 'pgbackrest', 'full-failed-expired', 'expired', $2, $3, 'full-failed-expired', 'verifying: checksum mismatch')`,
            [target, JSON.stringify({ primary: { region: 'primary', handle: { backupId: 'fx' }, sizeBytes: 70 } }), at(-20000)],
          );
          await row('full-old', 'full', 'expired', { primary: { region: 'primary', handle: { backupId: 'o' } } }, { started: -9000, completed: -8880, verified: -8850 }, 50);
          for (const [kind, event] of [['retention', 'backup-expired'], ['retention', 'backup-expired'], ['retention', 'backup-expiry-refused'], ['backup-deletion', 'backup-deleted'], ['retention', 'retention-run']]) {
            await c.query('INSERT INTO workflow_events (workflow_id, kind, target, event) VALUES ($1, $2, $3, $4)', [`wf-${event}`, kind, target, event]);
          }
          const drill = (id: string, outcome: string, rto: number, finished: number, report: object) =>
            c.query(
              `INSERT INTO drills (workflow_id, run_id, target, backup_id, region, outcome, rto_seconds, rpo_seconds, phases, evidence, report, started_at, finished_at)
               VALUES ($1, 'run', $2, 'full-1', 'primary', $3, $4, 0, $5, '[]', $6, $7, $8)`,
              [id, target, outcome, rto, JSON.stringify([{ phase: 'restoring', seconds: rto * 0.75 }, { phase: 'validating', seconds: rto * 0.25 }]), JSON.stringify(report), at(finished - rto), at(finished)],
            );
          await drill('drill-passed', 'passed', 600, 1800, { prediction: { predictedSeconds: 700 } });
          await drill('drill-failed', 'failed', 0, 3000, {});
          await drill('drill-cancelled', 'cancelled', 0, 3300, {});
          const restore = (id: string, outcome: string, rto: object | undefined) =>
            c.query(`INSERT INTO restores (workflow_id, target, outcome, restore_point, requested_by, report) VALUES ($1, $2, $3, 'latest', 'metrics-test', $4)`, [id, target, outcome, JSON.stringify({ outcome, ...(rto ? { rto } : {}) })]);
          await restore(`restore-ok-${target}`, 'restored', { seconds: 175, targetSeconds: 3600, withinTarget: true, phases: { validation: 5, waitingForApproval: 100, restore: 40, walReplay: 20, verification: 10, cutover: 0 } });
          await restore(`restore-no-${target}`, 'rejected', undefined);
          const inTransaction = { query: async (sql: string, params: unknown[] = []) => (await c.query(sql, params)).rows };
          return renderExposition([...(await collectCatalogMetrics(inTransaction, withFixture, now)), ...(await collectCatalogDurations(inTransaction))]);
        } finally {
          await c.query('ROLLBACK');
        }
      });
      const v = (name: string, labels: Record<string, string>) => sampleValue(text, name, { target, ...labels });
      assert.equal(v('lifeboat_backups_total', { kind: 'full', region: 'primary', outcome: 'success' }), 2);
      assert.equal(v('lifeboat_backups_total', { kind: 'full', region: 'dr', outcome: 'success' }), 1);
      assert.equal(v('lifeboat_backups_total', { kind: 'full', region: 'none', outcome: 'failure' }), 1);
      assert.equal(v('lifeboat_backups_total', { kind: 'full', region: 'primary', outcome: 'failure' }), 1);
      assert.equal(v('lifeboat_backups_total', { kind: 'incr', region: 'primary', outcome: 'success' }), 1);
      assert.equal(v('lifeboat_backups_total', { kind: 'incr', region: 'dr', outcome: 'failure' }), 1);
      assert.equal(v('lifeboat_last_backup_success', { kind: 'full' }), 1);
      assert.equal(v('lifeboat_last_backup_success', { kind: 'incr' }), 0);
      assert.equal(v('lifeboat_backup_bytes_total', { region: 'primary' }), 160);
      assert.equal(v('lifeboat_backup_bytes_total', { region: 'dr' }), 90);
      assert.equal(v('lifeboat_backup_stored_bytes', { region: 'primary' }), 110);
      assert.equal(v('lifeboat_backup_stored_bytes', { region: 'dr' }), 90);
      const phase = (kind: string, p: string, series: string, le?: string) => v(`lifeboat_backup_phase_duration_seconds_${series}`, { kind, phase: p, ...(le ? { le } : {}) });
      assert.deepEqual([phase('full', 'backup', 'count'), phase('full', 'backup', 'sum'), phase('full', 'backup', 'bucket', '60'), phase('full', 'backup', 'bucket', '120')], [2, 180, 1, 2]);
      assert.deepEqual([phase('full', 'verify', 'sum'), phase('full', 'dr-copy', 'sum'), phase('full', 'dr-verify', 'sum'), phase('full', 'total', 'sum')], [30, 60, 30, 185 + 150]);
      // The incremental's DR copy failed: its primary phases count, its DR phases and its total do not.
      assert.deepEqual([phase('incr', 'backup', 'sum'), phase('incr', 'verify', 'sum'), phase('incr', 'dr-copy', 'count'), phase('incr', 'total', 'count')], [20, 5, undefined, undefined]);
      assert.equal(v('lifeboat_last_verified_backup_timestamp_seconds', {}), Date.parse(at(1020)) / 1000);
      assert.equal(v('lifeboat_last_verified_backup_age_seconds', {}), 3600 - 1020);
      assert.deepEqual([v('lifeboat_drills_total', { outcome: 'passed' }), v('lifeboat_drills_total', { outcome: 'failed' }), v('lifeboat_drills_total', { outcome: 'cancelled' })], [1, 1, 1]);
      assert.equal(v('lifeboat_drill_last_success', {}), 0);
      assert.equal(v('lifeboat_drill_last_passed_age_seconds', {}), 3600 - 1800);
      assert.equal(v('lifeboat_drill_measured_rto_seconds', {}), 600);
      // Phases of passed drills only: the passed one's 450 s restore and 150 s validation.
      assert.deepEqual([v('lifeboat_drill_phase_duration_seconds_count', { phase: 'restoring' }), v('lifeboat_drill_phase_duration_seconds_sum', { phase: 'restoring' }), v('lifeboat_drill_phase_duration_seconds_bucket', { phase: 'restoring', le: '300' }), v('lifeboat_drill_phase_duration_seconds_bucket', { phase: 'restoring', le: '600' })], [1, 450, 0, 1]);
      assert.equal(v('lifeboat_drill_phase_duration_seconds_sum', { phase: 'validating' }), 150);
      assert.equal(v('lifeboat_rto_predicted_seconds', {}), 700);
      assert.deepEqual([v('lifeboat_retention_deletions_total', { outcome: 'expired' }), v('lifeboat_retention_deletions_total', { outcome: 'refused' }), v('lifeboat_backup_deletions_total', { outcome: 'deleted' })], [2, 1, 1]);
      assert.deepEqual([v('lifeboat_restores_total', { outcome: 'restored' }), v('lifeboat_restores_total', { outcome: 'rejected' })], [1, 1]);
      const restorePhase = (p: string) => v('lifeboat_restore_phase_duration_seconds_sum', { phase: p });
      assert.deepEqual([restorePhase('waitingForApproval'), restorePhase('restore'), restorePhase('walReplay'), restorePhase('cutover'), restorePhase('total')], [100, 40, 20, 0, 175]);
      assert.equal(v('lifeboat_restore_phase_duration_seconds_count', { phase: 'total' }), 1, 'the rejected restore measured no RTO');
      // Rolled back: nothing of the fixture is left in the catalog.
      assert.deepEqual(await ports.catalog.query('SELECT 1 FROM backups WHERE target = $1 UNION ALL SELECT 1 FROM drills WHERE target = $1 UNION ALL SELECT 1 FROM restores WHERE target = $1', [target]), []);
    } finally {
      await ports.close();
    }
  });

  it('counts a workflow waiting at an approval gate, with its gate and how long it has waited (visibility and the status query)', async () => {
    // A test-only workflow holding one gate and nothing else (test/workflows/quorum-gate.ts).
    const bundle = await gateProbeBundle();
    const ports = createPorts(config);
    const gateQueue = uniqueTaskQueue('metrics-gate');
    const gateWorker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue: gateQueue, workflowBundle: bundle });
    const input: GateProbeInput = { environment: 'production', gate: 'failover', requestedBy: 'carol@example.com', timings: { remindAfterMs: 600000, abortAfterMs: 1200000 } };
    const handle = await env.client.workflow.start('gateProbe', { taskQueue: gateQueue, workflowId: `metrics-gate-${randomBytes(3).toString('hex')}`, args: [input] });
    try {
      await gateWorker.runUntil(async () => {
        const status = await waitForGate(handle, 'failover');
        // Visibility follows the search attribute a moment later.
        let mine: PendingApproval | undefined;
        await waitUntil('the waiting workflow in visibility', async () => {
          mine = (await listPendingApprovals(env.client)).find((p) => p.workflowId === handle.workflowId);
          return mine ? true : 'not listed yet';
        }, { timeoutMs: 20000, intervalMs: 250 });
        assert.deepEqual({ gate: mine!.gate, since: mine!.since }, { gate: 'failover', since: status.pendingGate!.since });
        const later = new Date(Date.parse(status.pendingGate!.since) + 90_000);
        const text = renderExposition(approvalFamilies([mine!], later));
        // gateProbe sets no LifeboatKind or LifeboatTarget: its kind reads "unknown", its target is empty.
        assert.equal(sampleValue(text, 'lifeboat_approvals_pending', { kind: 'unknown', target: '', gate: 'failover' }), 1);
        assert.equal(sampleValue(text, 'lifeboat_approval_pending_oldest_age_seconds', { kind: 'unknown', target: '', gate: 'failover' }), 90);
      });
    } finally {
      await handle.terminate('metrics test done').catch(() => undefined);
      await ports.close();
    }
  });

  it('passes promtool check metrics', function () {
    if (spawnSync('promtool', ['--version']).status !== 0) {
      if (this.test) this.test.title += ' (skipped: promtool is not installed; scripts/provision-tools.sh installs it)';
      return this.skip();
    }
    // The SDK names its counters without _total (as Temporal's metrics reference does), which promtool's lint flags: lifeboat's part alone is checked.
    const own = text.split('\n').filter((l) => !/^(# (HELP|TYPE) )?temporal_/.test(l)).join('\n');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: own, encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });
});
