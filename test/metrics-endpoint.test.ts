/**
 * The worker's Prometheus endpoint on the real stack: a real worker process (lib/src/worker.js)
 * with LIFEBOAT_METRICS_PORT set takes a real incremental backup of `app` through pgBackRest into
 * both MinIO regions; one scrape of its endpoint over HTTP then carries lifeboat's figures for it,
 * read from the catalog and the WAL archive, and the Temporal SDK's own metrics of that very run.
 * About 20 s: the worker's start (it bundles the workflows) and one incremental backup.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts } from '../src/activities/ports';
import { findDatabaseTarget, loadConfig, objectivesFor } from '../src/config';
import { DatabaseBackupInput, DatabaseBackupResult } from '../src/domain/backup';
import { declaredFamilies, sampleValue } from '../src/metrics/exposition';
import { EXPOSITION_CONTENT_TYPE } from '../src/metrics/server';
import { freeLoopbackPort } from '../src/metrics/worker-metrics';
import { Stack } from '../src/stack/stack';
import { ensureFullBackup } from './helpers/backup-exists';
import { useStack } from './helpers/stack';
import { EXAMPLE_CONFIG_FILE, uniqueTaskQueue, useTemporal } from './helpers/temporal';
import { startWorkerProcess, stopWorkerProcess } from './helpers/worker-process';

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
    for (const source of ['catalog', 'temporal', 'recovery-point', 'temporal-sdk']) assert.equal(sampleValue(text, 'lifeboat_metrics_source_up', { source }), 1, source);
    const families = declaredFamilies(text);
    assert.ok(families.has('temporal_workflow_completed'), [...families].filter((f) => f.startsWith('temporal_')).join(', '));
    const completed = text.split('\n').filter((l) => l.startsWith('temporal_workflow_completed{') && l.includes(`task_queue="${taskQueue}"`) && l.includes('workflow_type="databaseBackup"'));
    assert.equal(completed.length, 1, completed.join('\n'));
    assert.ok(Number(completed[0].split(' ').pop()) >= 1);
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
