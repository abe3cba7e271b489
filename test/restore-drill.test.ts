/**
 * The restore drill end to end on the real stack: a verified backup (taken by the backup
 * workflow) restored into a drill instance of its own, validated, removed, and its report written
 * to both regions' write-once buckets with the hashes in the catalog. A drill whose validation
 * fails is a failed drill with the same evidence, a critical notification, and the backup marked.
 */
import assert from 'node:assert/strict';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { drillActivities } from '../src/activities/drills';
import { LifeboatConfig, loadConfig } from '../src/config';
import type { DatabaseBackupResult } from '../src/domain/backup';
import { drillInstanceName, RestoreDrillInput, RestoreDrillResult } from '../src/domain/drill';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { createLifeboatWorker } from '../src/worker';
import { CONFIG_FILE, lifeboat } from './helpers/cli';
import { recordHistory, removeAsItsOwner, uniqueId } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

describe('restore drill (real worker, real stack)', function () {
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let engine: PgBackRestEngine;
  let backup: DatabaseBackupResult;
  const config = loadConfig(CONFIG_FILE);
  const drilled: string[] = [];

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    ports = createPorts(config, { log: () => undefined });
    engine = ports.database('app') as PgBackRestEngine;
    // A verified backup in both regions, as the catalog records it: what a drill chooses from.
    const taskQueue = uniqueTaskQueue('drill-backup');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    backup = (await worker.runUntil(env.client.workflow.execute('databaseBackup', { taskQueue, workflowId: uniqueId('test-drill-backup'), args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'test' }] }))) as DatabaseBackupResult;
  });

  after(async function () {
    this.timeout(300000);
    // A drill removes its own instance; this only catches one a failed assertion left.
    for (const id of drilled) {
      if (await engine.describeInstance(id)) await removeAsItsOwner(engine, id).catch((err: unknown) => console.error(`cleanup of ${id}: ${String(err)}`));
    }
    await ports?.close();
  });

  async function runDrill(workflowId: string, input: RestoreDrillInput, withConfig: LifeboatConfig = config, log?: string[]): Promise<RestoreDrillResult> {
    drilled.push(drillInstanceName(workflowId));
    const workerPorts = withConfig === config ? ports : createPorts(withConfig, { log: (l) => log?.push(l) });
    const taskQueue = uniqueTaskQueue('drill');
    const worker = await createLifeboatWorker({ config: withConfig, connection: env.nativeConnection, ports: workerPorts, taskQueue, workflowBundle: await workflowBundle() });
    try {
      return await worker.runUntil(async () => {
        const handle = await env.client.workflow.start('restoreDrill', { taskQueue, workflowId, args: [input] });
        const result = (await handle.result()) as RestoreDrillResult;
        await recordHistory(handle, `restoreDrill-v1-${result.report.outcome}`);
        return result;
      });
    } finally {
      if (workerPorts !== ports) await workerPorts.close();
    }
  }

  it('proves the latest backup: restored, validated, removed, and the report in both regions with its hashes on record', async () => {
    const workflowId = uniqueId('test-drill-latest');
    const { report, evidence } = await runDrill(workflowId, { target: 'app', requestedBy: 'test' });
    assert.equal(report.outcome, 'passed', JSON.stringify(report.issues));
    assert.equal(report.backup.id, backup.primary.handle.backupId);
    assert.equal(report.backup.region, 'primary');
    assert.deepEqual(report.steps.map((s) => s.phase), ['selecting', 'validating', 'restoring', 'replaying-wal', 'validating-data', 'cleaning-up']);
    assert.ok(report.validations.length >= 6, JSON.stringify(report.validations));
    assert.ok(report.validations.every((v) => v.ok), JSON.stringify(report.validations.filter((v) => !v.ok)));
    assert.ok(report.validations.some((v) => v.name.startsWith('table ')) && report.validations.some((v) => v.name.startsWith('smoke query ')));
    assert.ok(report.rto.seconds > 0 && report.rto.objectiveSeconds > 0);
    assert.ok(report.rpo.seconds >= 0);
    assert.match(report.steps.at(-1)!.detail, /removed/i);
    assert.equal(await engine.describeInstance(drillInstanceName(workflowId)), undefined, 'the drill instance is gone');

    assert.deepEqual(evidence.map((e) => e.format), ['json', 'md', 'html']);
    for (const e of evidence) assert.deepEqual(e.copies.map((c) => c.bucket), ['lifeboat-evidence-primary', 'lifeboat-evidence-dr']);
    const checks = await drillActivities(ports).verifyDrillEvidence(workflowId);
    assert.equal(checks.length, 6);
    assert.ok(checks.every((c) => c.ok), JSON.stringify(checks.filter((c) => !c.ok)));

    const [row] = await ports.catalog.query<{ outcome: string; backup_id: string; evidence: unknown[] }>('SELECT outcome, backup_id, evidence FROM drills WHERE workflow_id = $1', [workflowId]);
    assert.deepEqual({ outcome: row.outcome, backup: row.backup_id, copies: row.evidence.length }, { outcome: 'passed', backup: backup.primary.handle.backupId, copies: 3 });
    const [marked] = await ports.catalog.query<{ drill_outcome: string }>('SELECT drill_outcome FROM backups WHERE id = $1', [backup.catalogId]);
    assert.equal(marked.drill_outcome, 'proven');
  });

  it('a drill whose validation fails is a failed drill: instance removed, report written, critical notification, the backup marked', async () => {
    const workflowId = uniqueId('test-drill-fails');
    // The same stack, with a critical table the backup cannot have.
    const broken = structuredClone(config);
    const app = broken.targets.databases.find((d) => d.name === 'app')!;
    app.criticalTables = [...app.criticalTables, 'public.lbtest_never_created'];
    const log: string[] = [];
    const { report, evidence } = await runDrill(workflowId, { target: 'app', backup: backup.primary.handle.backupId, requestedBy: 'test' }, broken, log);
    assert.equal(report.outcome, 'failed');
    assert.match(report.issues[0], /^validation failed: table public\.lbtest_never_created: /);
    assert.ok(report.recommendations.some((r) => r.startsWith(`Do not count on backup ${backup.primary.handle.backupId}`)));
    assert.equal(await engine.describeInstance(drillInstanceName(workflowId)), undefined, 'the drill instance is gone');
    assert.equal(evidence.length, 3);
    assert.ok(log.some((l) => l.includes('Restore drill FAILED: app')), log.join('\n'));
    const [marked] = await ports.catalog.query<{ drill_outcome: string }>('SELECT drill_outcome FROM backups WHERE id = $1', [backup.catalogId]);
    assert.equal(marked.drill_outcome, 'restore failed');
  });

  it('through the CLI: drill run follows the drill to its verdict, drill report prints it and checks every copy, bad input is refused', async () => {
    const taskQueue = uniqueTaskQueue('drill-cli');
    const workflowId = uniqueId('test-drill-cli');
    drilled.push(drillInstanceName(workflowId));
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    await worker.runUntil(async () => {
      const run = await lifeboat(['drill', 'run', 'app', '--backup', 'random', '--from-region', 'dr', '--id', workflowId, '--as', 'carol@example.com'], { LIFEBOAT_TASK_QUEUE: taskQueue });
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, new RegExp(`^Restore drill PASSED: app, backup \\S+ \\((full|diff|incr), dr region, chosen at random among the \\d+ verified backups of the last 30 days\\)$`, 'm'));
      assert.match(run.stdout, /^  report: drills\/app\/test-drill-cli-\S+\/report\.\{json,md,html\} in lifeboat-evidence-primary \(primary\) and lifeboat-evidence-dr \(dr\); SHA-256 of the JSON [0-9a-f]{64}$/m);
    });
    const verified = await lifeboat(['drill', 'report', workflowId, '--verify']);
    assert.equal(verified.code, 0, `${verified.stdout}\n${verified.stderr}`);
    assert.equal(verified.stdout.trim().split('\n').filter((l) => l.startsWith('ok  ')).length, 6, verified.stdout);
    const md = await lifeboat(['drill', 'report', workflowId, '--format', 'md']);
    assert.equal(md.code, 0, md.stderr);
    assert.match(md.stdout, new RegExp(`^# Restore drill ${workflowId}: PASSED\n`));
    const bad = await lifeboat(['drill', 'run', 'app', '--backup', 'yesterday', '--as', 'carol@example.com']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, 'lifeboat: --backup takes latest, random or a backup\'s id (like 20261130-085650F, see `lifeboat backups list`), not "yesterday".\n');
  });
});
