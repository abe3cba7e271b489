/**
 * The compliance report and `drills list` on the real stack: a verified backup and a passed drill
 * of `app` (the backup and drill workflows), a second target that was never drilled, the
 * complianceReport workflow judging both, its report in both regions' write-once buckets with the
 * hashes on record, `lifeboat compliance` printing it, and `lifeboat drills list` showing the
 * drill, its RTO trend, the predicted RTO now and the next drill from the Temporal schedule.
 */
import assert from 'node:assert/strict';
import { ScheduleNotFoundError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { evidenceStoreFor } from '../src/activities/drills';
import { applySchedules, listPrefixed } from '../src/client/schedules';
import { LifeboatConfig, loadConfig } from '../src/config';
import { ComplianceReportResult, complianceReportJson } from '../src/domain/compliance';
import { drillInstanceName, RestoreDrillResult } from '../src/domain/drill';
import { sha256Hex } from '../src/engines/evidence-store';
import { createLifeboatWorker } from '../src/worker';
import type { DrillListEntry } from '../src/client/drill-commands';
import { CONFIG_FILE, lifeboat } from './helpers/cli';
import { recordHistory, uniqueId } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

describe('compliance report and drills list (real worker, real stack)', function () {
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let extended: LifeboatConfig;
  let extendedPorts: Ports;
  let drill: RestoreDrillResult;
  let result: ComplianceReportResult;
  const config = loadConfig(CONFIG_FILE);
  // A second name for the same cluster, never drilled and never backed up under that name.
  const neverDrilled = uniqueId('nodrill').toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 40);
  const prefix = `${uniqueId('test-compliance').toLowerCase()}-`;

  before(async function () {
    this.timeout(1200000);
    await useStack();
    env = await useTemporal();
    ports = createPorts(config, { log: () => undefined });
    extended = structuredClone(config);
    const app = extended.targets.databases.find((d) => d.name === 'app')!;
    extended.targets.databases.push({ ...structuredClone(app), name: neverDrilled });
    const log: string[] = [];
    extendedPorts = createPorts(extended, { log: (l) => log.push(l) });
    const taskQueue = uniqueTaskQueue('compliance');
    const worker = await createLifeboatWorker({ config: extended, connection: env.nativeConnection, ports: extendedPorts, taskQueue, workflowBundle: await workflowBundle() });
    await worker.runUntil(async () => {
      await env.client.workflow.execute('databaseBackup', { taskQueue, workflowId: uniqueId('test-compliance-backup'), args: [{ target: 'app', kind: 'full', pollIntervalMs: 500, requestedBy: 'test' }] });
      drill = (await env.client.workflow.execute('restoreDrill', { taskQueue, workflowId: uniqueId('test-compliance-drill'), args: [{ target: 'app', requestedBy: 'test', timings: { pollIntervalMs: 500 } }] })) as RestoreDrillResult;
      const handle = await env.client.workflow.start('complianceReport', { taskQueue, workflowId: uniqueId('test-compliance'), args: [{ requestedBy: 'test' }] });
      result = (await handle.result()) as ComplianceReportResult;
      await recordHistory(handle, 'complianceReport-v1-breach');
    });
    assert.ok(log.some((l) => l.includes('Compliance BREACH')), `the breach is a notification:\n${log.join('\n')}`);
  });

  after(async function () {
    this.timeout(120000);
    for (const s of (await listPrefixed(env.client, prefix).catch(() => [])) ?? []) {
      await env.client.schedule
        .getHandle(s.scheduleId)
        .delete()
        .catch((err: unknown) => {
          if (!(err instanceof ScheduleNotFoundError)) throw err;
        });
    }
    await extendedPorts?.close();
    await ports?.close();
  });

  it('flags the target without a drill and passes the drill check of the one just drilled', () => {
    assert.equal(drill.report.outcome, 'passed', JSON.stringify(drill.report.issues));
    const { report } = result;
    assert.equal(report.ok, false);
    const never = report.targets.find((t) => t.target === neverDrilled)!;
    assert.equal(never.ok, false);
    const neverDrill = never.checks.find((c) => c.name === 'drill')!;
    assert.equal(neverDrill.status, 'breach');
    assert.match(neverDrill.detail, new RegExp(`^no passed restore drill of ${neverDrilled} is on record \\(cadence schedules\\.drill, on .+ at \\d\\d:\\d\\d UTC: at most \\d+ days apart, plus a day to run\\)`));
    assert.equal(never.checks.find((c) => c.name === 'recovery point')!.status, 'breach', 'never backed up under that name either');

    const app = report.targets.find((t) => t.target === 'app')!;
    const appDrill = app.checks.find((c) => c.name === 'drill')!;
    assert.equal(appDrill.status, 'ok', appDrill.detail);
    assert.match(appDrill.detail, /^last passed drill \S+ \d+ s ago, within its cadence, schedules\.drill, on .+ at \d\d:\d\d UTC: at most \d+ days apart, plus a day to run/);
    assert.deepEqual(app.checks.map((c) => c.name), ['recovery point', 'drill', 'retention', 'open failures', 'predicted RTO']);
    const predicted = app.checks.find((c) => c.name === 'predicted RTO')!;
    assert.match(predicted.detail, /^predicted RTO now: \S+ \S+ \(objective 60 min\)/);
    assert.ok(report.summary.includes(`${neverDrilled} (recovery point, drill`), report.summary);
    // The bucket target is judged too, by its kind's drill schedule (quarterly by default).
    const bucket = report.targets.find((t) => t.kind === 'bucket')!;
    assert.match(bucket.checks.find((c) => c.name === 'drill')!.detail, /schedules\.bucketDrill, on day 1 of january, april, july, october at 05:30 UTC: at most 92 days apart/);
  });

  it('writes the report to both regions\' write-once buckets, with the SHA-256 of each rendering on record', async () => {
    const { report, evidence } = result;
    assert.deepEqual(evidence.map((e) => e.format), ['json', 'md']);
    for (const e of evidence) {
      assert.deepEqual(e.copies.map((c) => c.bucket), ['lifeboat-evidence-primary', 'lifeboat-evidence-dr']);
      assert.match(e.key, new RegExp(`^compliance/${report.reportId}/report\\.${e.format}$`));
    }
    assert.equal(evidence[0].sha256, sha256Hex(Buffer.from(complianceReportJson(report), 'utf8')));
    const [row] = await ports.catalog.query<{ ok: boolean; breaches: number; evidence: typeof evidence }>('SELECT ok, breaches, evidence FROM compliance_reports WHERE workflow_id = $1', [report.reportId]);
    assert.deepEqual({ ok: row.ok, breaches: row.breaches }, { ok: false, breaches: report.breaches });
    assert.deepEqual(row.evidence.map((e) => e.sha256), evidence.map((e) => e.sha256));
    const store = evidenceStoreFor(config, ports);
    for (const e of row.evidence) {
      const checks = await store.verify({ key: e.key, sha256: e.sha256, bytes: e.bytes, contentType: '', copies: e.copies.map((c) => ({ ...c, key: e.key, mode: config.evidence.lockMode })) });
      assert.deepEqual(checks.map((c) => [c.region, c.ok]), [['primary', true], ['dr', true]], JSON.stringify(checks));
    }
  });

  it('lifeboat compliance prints the latest report, exit 1 for a breach', async () => {
    const text = await lifeboat(['compliance']);
    assert.equal(text.code, 1, text.stderr);
    assert.match(text.stdout, new RegExp(`^Compliance report ${result.report.reportId} \\(\\S+\\): BREACH, ${result.report.breaches} finding`));
    assert.match(text.stdout, new RegExp(`^${neverDrilled} \\(database, \\w+\\): BREACH$`, 'm'));
    assert.match(text.stdout, /^ {2}BREACH +drill +no passed restore drill of /m);
    assert.match(text.stdout, /^report: compliance\/\S+\/report\.\{json,md\} in lifeboat-evidence-primary \(primary\) and lifeboat-evidence-dr \(dr\); SHA-256 of the JSON [0-9a-f]{64}$/m);
    const json = await lifeboat(['compliance', '--json']);
    assert.equal(json.code, 1, json.stderr);
    assert.equal((JSON.parse(json.stdout) as ComplianceReportResult).report.reportId, result.report.reportId);
  });

  it('lifeboat drills list shows the last drill, the RTO trend, the predicted RTO now and the next scheduled drill', async () => {
    await applySchedules(env.client, config, { prefix });
    const json = await lifeboat(['drills', 'list', '--target', 'app', '--prefix', prefix, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const [entry] = JSON.parse(json.stdout) as DrillListEntry[];
    assert.equal(entry.target, 'app');
    assert.equal(entry.last?.drillId, drill.report.drillId);
    assert.equal(entry.trend.at(-1)?.rtoSeconds, drill.report.rto.seconds);
    assert.ok(entry.trend.length >= 1 && entry.trend.length <= 5);
    assert.ok(entry.prediction?.basis.drillIds.includes(drill.report.drillId), JSON.stringify(entry.prediction?.basis));
    assert.ok(entry.prediction?.predictedSeconds !== undefined && entry.prediction.currentSizeBytes! > 0);
    assert.equal(entry.nextDrill?.scheduleId, `${prefix}restore-drill-app`);
    assert.ok(Date.parse(entry.nextDrill!.at) > Date.now());

    const text = await lifeboat(['drills', 'list', '--prefix', prefix]);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.split('\n');
    assert.match(lines[0], /^target +last drill +RTO trend +predicted RTO now +next drill$/);
    const appLine = lines.find((l) => l.startsWith('app '))!;
    assert.match(appLine, /^app +passed \d{4}-\d\d-\d\d \d\d:\d\d +.+ \(objective 1 h\) +\d{4}-\d\d-\d\d 05:00 UTC$/, appLine);
    assert.ok(appLine.includes(`${drill.report.rto.seconds} s `), `the trend ends with this drill's RTO: ${appLine}`);
    assert.match(text.stdout, /^app: predicted RTO now: /m);
    assert.match(text.stdout, new RegExp(`^  last drill ${drill.report.drillId}: passed, RTO `, 'm'));
    assert.equal(drillInstanceName(drill.report.drillId).startsWith('drill-'), true);

    const bad = await lifeboat(['drills', 'list', '--target', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^lifeboat: .*nope/);
  });
});
