/**
 * Directory drills as drill evidence, on the real stack through the real CLI: `drill run <dir>`
 * goes through restoreDrill, restores the archive into a marked scratch directory, checks it,
 * removes it, and publishes the report (drills row, `drill report` in md/json/html, --verify,
 * `drills list`); a failing syntax check and a damaged archive each fail the drill with a report
 * saying why, the scratch directory gone; an unknown target is one sentence, exit 2; the drill
 * sweeper removes a scratch directory of a closed drill run and leaves a running run's and an
 * unmarked one alone.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { createPorts, Ports } from '../src/activities/ports';
import { interpolateConfigText, LifeboatConfig, loadConfig } from '../src/config';
import { STAGING_MARK_FILE } from '../src/domain/directory-backup';
import { DRILL_OWNER_FILE } from '../src/domain/directory-drill';
import type { RestoreDrillResult } from '../src/domain/drill';
import type { DrillReport } from '../src/domain/drill-report';
import type { DrillSweepResult } from '../src/domain/drill-sweep';
import { createLifeboatWorker } from '../src/worker';
import { lifeboat } from './helpers/cli';
import { recordHistory } from './helpers/pitr';
import { EXAMPLE_CONFIG, purge, removeCatalogRows } from './helpers/scratch';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

describe('directory drills: restoreDrill with evidence, failures, the sweeper (real worker, real stack, real CLI)', function () {
  const id = randomBytes(4).toString('hex');
  const target = `lbtest-ddrill-${id}`;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `lifeboat-ddrill-${id}-`));
  const source = path.join(root, 'etc-app');
  const configFile = path.join(root, 'lifeboat.yaml');
  const failFlag = path.join(root, 'fail-syntax');
  const prefix = 'directories/';
  const workflowIds: string[] = [];
  const scratch: string[] = [];
  let env: TestWorkflowEnvironment;
  let config: LifeboatConfig;
  let ports: Ports;
  let backupId: string;

  const worker = async (name: string) => createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue: uniqueTaskQueue(name), workflowBundle: await workflowBundle() });
  const cli = (args: string[], taskQueue?: string) => lifeboat([...args, '--config', configFile], taskQueue ? { LIFEBOAT_TASK_QUEUE: taskQueue } : {});
  const drillRow = async (workflowId: string) =>
    (await ports.catalog.query<{ outcome: string; backup_id: string; report: DrillReport }>('SELECT outcome, backup_id, report FROM drills WHERE workflow_id = $1', [workflowId]))[0];
  const leftovers = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(`lifeboat-drill-${target}-`));

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    fs.mkdirSync(path.join(source, 'conf.d'), { recursive: true });
    fs.writeFileSync(path.join(source, 'app.conf'), 'include conf.d/*.conf;\nlisten 8080;\n');
    fs.writeFileSync(path.join(source, 'conf.d/site.conf'), 'server_name example.com;\n');
    fs.chmodSync(path.join(source, 'conf.d/site.conf'), 0o640);
    const keyFile = path.join(root, 'dir.key');
    fs.writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
    const doc = YAML.parse(interpolateConfigText(fs.readFileSync(EXAMPLE_CONFIG, 'utf8')).text) as { targets: Record<string, unknown[]> };
    doc.targets.directories = [
      {
        name: target,
        environment: 'staging',
        path: source,
        encryptionKey: { secretRef: `file:${keyFile}` },
        store: 'primary',
        bucket: 'lifeboat-backups-primary',
        prefix,
        dr: { store: 'dr', bucket: 'lifeboat-backups-dr' },
        criticalFiles: ['app.conf'],
        // Fails while the flag file exists: the drill's verdict must follow the syntax check.
        syntaxCheck: { command: ['sh', '-c', `test ! -e ${failFlag} && grep -q "^listen " "{dir}/app.conf" && echo syntax ok || { echo "app.conf: unexpected token" >&2; exit 3; }`] },
      },
    ];
    fs.writeFileSync(configFile, YAML.stringify(doc));
    config = loadConfig(configFile);
    ports = createPorts(config, { log: () => undefined });
    const w = await worker('ddrill-backup');
    backupId = `test-ddrill-backup-${id}`;
    workflowIds.push(backupId);
    await w.runUntil(async () => {
      const run = await cli(['backup', target, '--id', backupId], w.options.taskQueue);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    });
  });

  after(async function () {
    this.timeout(300000);
    if (!ports) return;
    await purge(ports.objectStore('primary'), 'lifeboat-backups-primary', `${prefix}${target}/`);
    await purge(ports.objectStore('dr'), 'lifeboat-backups-dr', `${prefix}${target}/`);
    // Drill rows first: they refer to the backup they drilled.
    await ports.catalog.query('DELETE FROM drills WHERE workflow_id = ANY($1)', [workflowIds]);
    await removeCatalogRows(ports.catalog, workflowIds);
    await ports.close();
    for (const d of scratch) fs.rmSync(d, { recursive: true, force: true });
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('an unknown target is one sentence, exit 2, before anything starts', async function () {
    this.timeout(60000);
    const run = await cli(['drill', 'run', `${target}-nope`]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr.trim(), new RegExp(`^lifeboat: No database, bucket, directory or SQLite target is named "${target}-nope"( \\(did you mean "${target}"\\?\\))?; the config declares [^\\n]*${target}[^\\n]*\\.$`));
    assert.equal(run.stdout, '');
  });

  it('passes: the report is evidence (drills row, md/json/html through the CLI, --verify), in drills list, the backup proven', async function () {
    this.timeout(300000);
    const w = await worker('ddrill-pass');
    const workflowId = `test-ddrill-pass-${id}`;
    workflowIds.push(workflowId);
    await w.runUntil(async () => {
      const run = await cli(['drill', 'run', target, '--id', workflowId, '--as', 'carol@example.com'], w.options.taskQueue);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, new RegExp(`^Restore drill PASSED: ${target}, backup ${backupId} \\(directory, primary region, chosen as the newest verified backup\\)$`, 'm'));
      assert.match(run.stdout, /validations: 3 of 3 passed/);
      await recordHistory(env.client.workflow.getHandle(workflowId), 'restoreDrill-v2-directory-passed');
    });
    assert.deepEqual(leftovers(), [], 'no scratch directory is left');
    const row = await drillRow(workflowId);
    assert.equal(row.outcome, 'passed');
    assert.equal(row.backup_id, backupId);

    const md = await cli(['drill', 'report', workflowId, '--format', 'md']);
    assert.equal(md.code, 0, md.stderr);
    assert.match(md.stdout, new RegExp(`^- Target: ${target} \\(directory, directory-archive\\), environment staging$`, 'm'));
    assert.match(md.stdout, /syntax-check/);
    assert.match(md.stdout, /syntax ok/);
    const json = await cli(['drill', 'report', workflowId, '--format', 'json']);
    const report = JSON.parse(json.stdout) as DrillReport;
    assert.deepEqual(report.validations.map((v) => [v.name, v.ok]), [['manifest', true], ['critical-files', true], ['syntax-check', true]]);
    assert.deepEqual(report.steps.map((s) => s.phase), ['selecting', 'validating', 'restoring', 'validating-data', 'cleaning-up']);
    assert.match(report.steps.find((s) => s.phase === 'cleaning-up')!.detail, /^removed \S+lifeboat-drill-\S+, which this run made$/);
    const html = await cli(['drill', 'report', workflowId, '--format', 'html']);
    assert.match(html.stdout, new RegExp(`${target} \\(directory, directory-archive\\)`));
    const verify = await cli(['drill', 'report', workflowId, '--verify']);
    assert.equal(verify.code, 0, `${verify.stdout}\n${verify.stderr}`);
    assert.equal(verify.stdout.trim().split('\n').filter((l) => l.startsWith('ok')).length, 6, verify.stdout);

    const list = await cli(['drills', 'list', '--target', target, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const [entry] = JSON.parse(list.stdout) as Array<{ kind: string; last?: { drillId: string; outcome: string } }>;
    assert.deepEqual([entry.kind, entry.last?.drillId, entry.last?.outcome], ['directory', workflowId, 'passed']);
    const [marked] = await ports.catalog.query<{ drill_outcome: string }>('SELECT drill_outcome FROM backups WHERE workflow_id = $1', [backupId]);
    assert.equal(marked.drill_outcome, 'proven');
  });

  it('a failing syntax check fails the drill: exit 1, the report says why, the scratch directory removed', async function () {
    this.timeout(300000);
    fs.writeFileSync(failFlag, '');
    const w = await worker('ddrill-syntax');
    const workflowId = `test-ddrill-syntax-${id}`;
    workflowIds.push(workflowId);
    try {
      await w.runUntil(async () => {
        const run = await cli(['drill', 'run', target, '--id', workflowId], w.options.taskQueue);
        assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
        assert.match(run.stdout, /Restore drill FAILED/);
        assert.match(run.stdout, /issue: validation failed: syntax-check: sh -c .* exited 3; output: app\.conf: unexpected token/);
        await recordHistory(env.client.workflow.getHandle(workflowId), 'restoreDrill-v2-directory-syntax-failed');
      });
    } finally {
      fs.rmSync(failFlag, { force: true });
    }
    assert.deepEqual(leftovers(), []);
    const row = await drillRow(workflowId);
    assert.equal(row.outcome, 'failed');
    const md = await cli(['drill', 'report', workflowId]);
    assert.match(md.stdout, /app\.conf: unexpected token/);
    assert.match(md.stdout, new RegExp(`Do not count on backup ${backupId}`));
  });

  it('a damaged archive fails the drill: the report names the damage, the backup is marked "restore failed"', async function () {
    this.timeout(300000);
    const s3 = ports.objectStore('primary');
    const key = `${prefix}${target}/${backupId}.lbdir.gz.enc`;
    const body = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'lifeboat-backups-primary', Key: key }))).Body!.transformToByteArray());
    body[body.length - 40] ^= 0xff; // one flipped byte inside the encrypted payload
    await s3.send(new PutObjectCommand({ Bucket: 'lifeboat-backups-primary', Key: key, Body: body }));
    const w = await worker('ddrill-damaged');
    const workflowId = `test-ddrill-damaged-${id}`;
    workflowIds.push(workflowId);
    let result!: RestoreDrillResult;
    await w.runUntil(async () => {
      const run = await cli(['drill', 'run', target, '--id', workflowId, '--json'], w.options.taskQueue);
      assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
      result = JSON.parse(run.stdout) as RestoreDrillResult;
    });
    assert.equal(result.report.outcome, 'failed');
    assert.ok(result.report.issues[0].length > 20, result.report.issues.join('\n'));
    assert.deepEqual(result.report.validations.filter((v) => v.ok), [], 'nothing is called proven');
    assert.equal(result.evidence.length, 3);
    assert.deepEqual(leftovers(), []);
    const json = await cli(['drill', 'report', workflowId, '--format', 'json']);
    assert.deepEqual((JSON.parse(json.stdout) as DrillReport).issues, result.report.issues);
    const [marked] = await ports.catalog.query<{ drill_outcome: string }>('SELECT drill_outcome FROM backups WHERE workflow_id = $1', [backupId]);
    assert.equal(marked.drill_outcome, 'restore failed');
  });

  it('the sweeper removes the scratch directory of a closed drill run; a running run\'s and an unmarked one stay', async function () {
    this.timeout(300000);
    // Two restoreDrill runs on a queue no worker serves: one terminated (closed), one left running.
    const idle = uniqueTaskQueue('ddrill-nobody');
    const closed = await env.client.workflow.start('restoreDrill', { taskQueue: idle, workflowId: `test-ddrill-closed-${id}`, args: [{ target, requestedBy: 'test' }] });
    const running = await env.client.workflow.start('restoreDrill', { taskQueue: idle, workflowId: `test-ddrill-running-${id}`, args: [{ target, requestedBy: 'test' }] });
    await closed.terminate('a drill killed mid-restore, for the sweeper test');
    const staged = (name: string, owner?: { workflowId: string; runId: string }) => {
      const dir = path.join(os.tmpdir(), `lifeboat-drill-${target}-${name}`);
      fs.mkdirSync(path.join(dir, 'conf.d'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'app.conf'), 'listen 8080;\n');
      if (owner) {
        fs.writeFileSync(path.join(dir, STAGING_MARK_FILE), owner.runId);
        fs.writeFileSync(path.join(dir, DRILL_OWNER_FILE), JSON.stringify({ ...owner, target, createdAt: new Date().toISOString() }));
      }
      scratch.push(dir);
      return dir;
    };
    const ofClosed = staged('closed', { workflowId: closed.workflowId, runId: closed.firstExecutionRunId });
    const ofRunning = staged('running', { workflowId: running.workflowId, runId: running.firstExecutionRunId });
    const unmarked = staged('unmarked');
    const w = await worker('ddrill-sweep');
    const sweepId = `test-ddrill-sweep-${id}`;
    workflowIds.push(sweepId);
    let result!: DrillSweepResult;
    try {
      await w.runUntil(async () => {
        const handle = await env.client.workflow.start('drillSweeper', { taskQueue: w.options.taskQueue, workflowId: sweepId, args: [{ requestedBy: 'test' }] });
        result = (await handle.result()) as DrillSweepResult;
        await recordHistory(handle, 'drillSweeper-v3-directory-scratch');
      });
    } finally {
      await running.terminate('the sweeper test is over').catch(() => undefined);
    }
    const mine = (r: { resource: { name: string } }) => r.resource.name.startsWith(`lifeboat-drill-${target}-`);
    assert.deepEqual(result.removed.filter(mine).map((r) => r.resource.name), [path.basename(ofClosed)]);
    assert.deepEqual(result.kept.filter(mine).map((r) => r.resource.name), [path.basename(ofRunning)]);
    assert.deepEqual(result.reported.filter(mine).map((r) => r.resource.name), [path.basename(unmarked)]);
    assert.equal(fs.existsSync(ofClosed), false, 'the closed run\'s scratch directory is removed');
    assert.equal(fs.existsSync(path.join(ofRunning, 'app.conf')), true, 'the running run\'s is left as it was');
    assert.equal(fs.existsSync(path.join(unmarked, 'app.conf')), true, 'the unmarked one is left as it was');
    const [event] = await ports.catalog.query<{ details: { name: string } }>("SELECT details FROM workflow_events WHERE workflow_id = $1 AND kind = 'drill-sweep'", [sweepId]);
    assert.equal(event.details.name, path.basename(ofClosed));
  });
});
