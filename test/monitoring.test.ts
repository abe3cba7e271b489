/**
 * What ships in monitoring/ against what the workers expose: the alert rules pass their promtool
 * unit tests (synthetic series, monitoring/lifeboat-alerts.test.yml), every metric a rule or a
 * dashboard panel reads is one lifeboat defines and docs/metrics.md documents, every runbook link
 * lands on a section of docs/runbook.md, and the endpoint's text passes `promtool check metrics`.
 * Unit speed: promtool runs on files, no server. Provisioning installs promtool (Debian's
 * prometheus package); without it the promtool checks skip and say so.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { parseConfig } from '../src/config';
import { approvalFamilies } from '../src/metrics/approval-metrics';
import { METRICS, seriesNames } from '../src/metrics/definitions';
import { declaredFamilies, renderExposition, sampleValue } from '../src/metrics/exposition';
import { recoveryPointTargets } from '../src/metrics/recovery-point-metrics';
import { MetricsServer, startMetricsServer, withoutFamilies } from '../src/metrics/server';
import { freeLoopbackPort, metricsPortFrom } from '../src/metrics/worker-metrics';

const repoRoot = path.resolve(__dirname, '../..');
const monitoring = path.join(repoRoot, 'monitoring');
const read = (...p: string[]) => fs.readFileSync(path.join(repoRoot, ...p), 'utf8');

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0 ? 'promtool' : undefined;
const PROMTOOL_MISSING = 'promtool is not installed (Debian: apt-get install prometheus; scripts/provision-tools.sh installs it)';

/** Skips the test, saying why in its title (the report shows it), when promtool is absent. */
function needsPromtool(ctx: Mocha.Context): void {
  if (promtool) return;
  if (ctx.test) ctx.test.title += ` (skipped: ${PROMTOOL_MISSING})`;
  ctx.skip();
}

function runPromtool(args: string[], cwd: string): { ok: boolean; output: string } {
  const r = spawnSync(promtool!, args, { cwd, encoding: 'utf8', timeout: 60000 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

interface Rule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = (YAML.parse(read('monitoring', 'lifeboat-alerts.yml')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);

interface Panel {
  type: string;
  title: string;
  id: number;
  datasource?: { uid: string };
  targets?: Array<{ expr: string }>;
}
const dashboard = JSON.parse(read('monitoring', 'grafana-dashboard.json')) as { uid: string; panels: Panel[]; templating: { list: Array<{ name: string }> } };
const panelExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

/** Every series name an expression reads: identifiers that are not PromQL's own words or label names. */
function seriesIn(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...new Set([...noStrings.matchAll(/\b(lifeboat_[a-z_]+|temporal_[a-z_]+)\b/g)].map((m) => m[1]))];
}

const knownSeries = new Set(Object.values(METRICS).flatMap(seriesNames));
const metricsDoc = read('docs', 'metrics.md');
const documented = new Set([...metricsDoc.matchAll(/^\| `(lifeboat_[a-z_]+)` \|/gm)].map((m) => m[1]));

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
const anchorOf = (heading: string) => heading.trim().toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');

describe('monitoring: alert rules, dashboard, metric docs', () => {
  it('the alert rules pass their promtool unit tests on synthetic series', function () {
    needsPromtool(this);
    const checked = runPromtool(['check', 'rules', 'lifeboat-alerts.yml'], monitoring);
    assert.ok(checked.ok, checked.output);
    const tested = runPromtool(['test', 'rules', 'lifeboat-alerts.test.yml'], monitoring);
    assert.ok(tested.ok, tested.output);
    assert.match(tested.output, /SUCCESS/);
  });

  it('every alert the rules define is exercised by the promtool tests, firing at least once', () => {
    const tests = YAML.parse(read('monitoring', 'lifeboat-alerts.test.yml')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
    const fired = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    assert.deepEqual(rules.map((r) => r.alert).filter((a) => !fired.has(a)), []);
  });

  it('every alert has a severity, a summary, a next step and a runbook section that exists', () => {
    const runbook = read('docs', 'runbook.md');
    const anchors = new Set([...runbook.matchAll(/^## (.+)$/gm)].map((m) => anchorOf(m[1])));
    for (const r of rules) {
      assert.ok(['critical', 'warning'].includes(r.labels?.severity ?? ''), `${r.alert}: severity`);
      assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert}: summary and description`);
      const link = /\/runbook\.md#([a-z0-9-]+)$/.exec(r.annotations?.runbook_url ?? '');
      assert.ok(link, `${r.alert}: runbook_url ${r.annotations?.runbook_url}`);
      assert.ok(anchors.has(link[1]), `${r.alert}: docs/runbook.md has no section #${link[1]} (sections: ${[...anchors].join(', ')})`);
    }
  });

  it('every metric the rules and the dashboard read is defined by lifeboat and documented', () => {
    const used = [...rules.map((r) => ({ where: `rule ${r.alert}`, expr: r.expr })), ...panelExprs.map((p) => ({ where: `panel "${p.panel}"`, expr: p.expr }))];
    assert.ok(panelExprs.length >= 10, 'the dashboard has its panels');
    const unknown = used.flatMap((u) => seriesIn(u.expr).filter((s) => !knownSeries.has(s)).map((s) => `${u.where}: ${s}`));
    assert.deepEqual(unknown, []);
    const undocumented = used.flatMap((u) => seriesIn(u.expr).map((s) => s.replace(/_(bucket|sum|count)$/, '')).filter((s) => !documented.has(s)).map((s) => `${u.where}: ${s}`));
    assert.deepEqual(undocumented, []);
  });

  it('docs/metrics.md documents exactly the metrics lifeboat defines', () => {
    assert.deepEqual([...documented].sort(), Object.values(METRICS).map((m) => m.name).sort());
    for (const m of Object.values(METRICS)) {
      const row = metricsDoc.split('\n').find((l) => l.startsWith(`| \`${m.name}\` |`))!;
      const cells = row.split(' | ');
      assert.equal(cells[1], m.type, `${m.name}: type`);
      assert.equal(cells[2], m.labels.join(', '), `${m.name}: labels`);
    }
  });

  it('the dashboard is importable: unique panel ids, a datasource variable every panel uses, a target variable', () => {
    assert.equal(dashboard.uid, 'lifeboat-overview');
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual(dashboard.templating.list.map((v) => v.name), ['datasource', 'target']);
    for (const p of dashboard.panels.filter((p) => p.type !== 'row')) assert.equal(p.datasource?.uid, '${datasource}', p.title);
  });

  it("the dashboard's expressions are valid PromQL (promtool checks them as recording rules)", function () {
    needsPromtool(this);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-dashboard-'));
    try {
      const asRules = { groups: [{ name: 'dashboard', rules: panelExprs.map((p, i) => ({ record: `dashboard:panel_${i}`, expr: p.expr.replace(/\$target/g, '.*') })) }] };
      fs.writeFileSync(path.join(dir, 'dashboard-rules.yml'), YAML.stringify(asRules));
      const checked = runPromtool(['check', 'rules', 'dashboard-rules.yml'], dir);
      assert.ok(checked.ok, checked.output);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('monitoring: the exposition text', () => {
  const families = renderExposition([
    { name: METRICS.backups.name, help: METRICS.backups.help, type: 'counter', samples: [{ labels: { target: 'app', kind: 'full', region: 'primary', outcome: 'success' }, value: 3 }] },
    { name: METRICS.lastVerifiedAge.name, help: METRICS.lastVerifiedAge.help, type: 'gauge', samples: [{ labels: { target: 'odd "name"\\x' }, value: Infinity }] },
    { name: METRICS.phaseDuration.name, help: METRICS.phaseDuration.help, type: 'histogram', buckets: [5, 60], histograms: [{ labels: { target: 'app', kind: 'full', phase: 'total' }, bucketCounts: [1, 2], count: 3, sum: 250.5 }] },
    ...approvalFamilies(
      [
        { workflowId: 'r1', kind: 'pitr-restore', target: 'app', gate: 'restore', since: '2026-12-01T00:00:00Z', startedAt: '2026-11-30T23:59:00Z' },
        { workflowId: 'r2', kind: 'pitr-restore', target: 'app', gate: 'restore', since: '2026-12-01T00:20:00Z', startedAt: '2026-12-01T00:19:00Z' },
        { workflowId: 'd1', kind: 'backup-deletion', target: 'app', gate: 'unknown', startedAt: '2026-12-01T00:50:00Z' },
      ],
      new Date('2026-12-01T01:00:00Z'),
    ),
  ]);

  it('passes promtool check metrics (names, types, HELP lines)', function () {
    needsPromtool(this);
    const r = spawnSync(promtool!, ['check', 'metrics'], { input: families, encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}\n${families}`);
  });

  it('reads back: escaped labels, +Inf, cumulative buckets ending in +Inf, approvals grouped with their oldest wait', () => {
    assert.equal(sampleValue(families, 'lifeboat_backups_total', { target: 'app', kind: 'full', region: 'primary', outcome: 'success' }), 3);
    assert.equal(sampleValue(families, 'lifeboat_last_verified_backup_age_seconds', { target: 'odd "name"\\x' }), Infinity);
    assert.equal(sampleValue(families, 'lifeboat_backup_phase_duration_seconds_bucket', { target: 'app', kind: 'full', phase: 'total', le: '+Inf' }), 3);
    assert.equal(sampleValue(families, 'lifeboat_backup_phase_duration_seconds_sum', { target: 'app', kind: 'full', phase: 'total' }), 250.5);
    assert.equal(sampleValue(families, 'lifeboat_approvals_pending', { kind: 'pitr-restore', target: 'app', gate: 'restore' }), 2);
    assert.equal(sampleValue(families, 'lifeboat_approval_pending_oldest_age_seconds', { kind: 'pitr-restore', target: 'app', gate: 'restore' }), 3600);
    // A wait whose gate could not be asked counts from the workflow's start.
    assert.equal(sampleValue(families, 'lifeboat_approval_pending_oldest_age_seconds', { kind: 'backup-deletion', target: 'app', gate: 'unknown' }), 600);
  });

  it("drops a family of the SDK's text whose name lifeboat already declared, keeping the rest", () => {
    const sdk = '# HELP temporal_request x\n# TYPE temporal_request counter\ntemporal_request{a="b"} 1\n# HELP lifeboat_backups_total y\n# TYPE lifeboat_backups_total counter\nlifeboat_backups_total 9\n';
    const kept = withoutFamilies(sdk, declaredFamilies(families));
    assert.deepEqual([...declaredFamilies(kept)], ['temporal_request']);
    assert.equal(sampleValue(kept, 'temporal_request', { a: 'b' }), 1);
  });
});

describe('monitoring: the endpoint (loopback HTTP, no stack)', () => {
  const servers: MetricsServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  it('reads each source once per its cache period, reports a failing one as down and the others still, and answers 404 elsewhere', async () => {
    let catalogReads = 0;
    let lagReads = 0;
    const problems: string[] = [];
    const server = await startMetricsServer({
      host: '127.0.0.1',
      port: await freeLoopbackPort(),
      cacheMs: 60000,
      sources: [
        { name: 'catalog', collect: async () => [{ name: METRICS.rpoObjective.name, help: METRICS.rpoObjective.help, type: 'gauge', samples: [{ labels: { target: 'app' }, value: 900 + catalogReads++ }] }] },
        {
          name: 'recovery-point',
          cacheMs: 0,
          collect: async () => {
            lagReads += 1;
            throw new Error('repository unreachable');
          },
        },
      ],
      onSourceProblem: (source, problem) => problems.push(`${source}: ${problem ?? 'answers again'}`),
    });
    servers.push(server);
    const [first, second] = [await (await fetch(server.url)).text(), await (await fetch(server.url)).text()];
    assert.equal(sampleValue(first, 'lifeboat_rpo_objective_seconds', { target: 'app' }), 900);
    assert.equal(sampleValue(second, 'lifeboat_rpo_objective_seconds', { target: 'app' }), 900, 'the second scrape is served from the first reading');
    assert.equal(catalogReads, 1);
    assert.equal(lagReads, 2, 'a source with cacheMs 0 is read at every scrape');
    assert.equal(sampleValue(second, 'lifeboat_metrics_source_up', { source: 'catalog' }), 1);
    assert.equal(sampleValue(second, 'lifeboat_metrics_source_up', { source: 'recovery-point' }), 0);
    // Told once when it starts failing, not at every scrape.
    assert.deepEqual(problems, ['recovery-point: repository unreachable']);
    assert.equal((await fetch(server.url.replace('/metrics', '/'))).status, 404);
  });

  it("appends the SDK's text, and reports temporal-sdk down when its endpoint does not answer", async () => {
    const sdkPort = await freeLoopbackPort();
    const sdk = http.createServer((_, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('# HELP temporal_request requests\n# TYPE temporal_request counter\ntemporal_request{operation="Poll"} 7\n'));
    await new Promise<void>((resolve) => sdk.listen(sdkPort, '127.0.0.1', resolve));
    try {
      const server = await startMetricsServer({ host: '127.0.0.1', port: await freeLoopbackPort(), cacheMs: 1000, sources: [], sdkMetricsUrl: `http://127.0.0.1:${sdkPort}/metrics` });
      servers.push(server);
      const text = await server.scrape();
      assert.equal(sampleValue(text, 'temporal_request', { operation: 'Poll' }), 7);
      assert.equal(sampleValue(text, 'lifeboat_metrics_source_up', { source: 'temporal-sdk' }), 1);
    } finally {
      await new Promise((resolve) => sdk.close(resolve));
    }
    const orphan = await startMetricsServer({ host: '127.0.0.1', port: await freeLoopbackPort(), cacheMs: 1000, sources: [], sdkMetricsUrl: `http://127.0.0.1:${sdkPort}/metrics` });
    servers.push(orphan);
    assert.equal(sampleValue(await orphan.scrape(), 'lifeboat_metrics_source_up', { source: 'temporal-sdk' }), 0);
  });

  it('serves a family two sources emit as one (a pgBackRest target from the config, an RDS one from its reading)', async () => {
    const archiving = (target: string, value: number) => [{ name: METRICS.continuousArchiving.name, help: METRICS.continuousArchiving.help, type: 'gauge' as const, samples: [{ labels: { target }, value }] }];
    const server = await startMetricsServer({
      host: '127.0.0.1',
      port: await freeLoopbackPort(),
      cacheMs: 1000,
      sources: [
        { name: 'catalog', collect: async () => archiving('app', 1) },
        { name: 'recovery-point', collect: async () => archiving('orders-rds', 0) },
      ],
    });
    servers.push(server);
    const text = await server.scrape();
    assert.equal(text.split('\n').filter((l) => l === `# TYPE ${METRICS.continuousArchiving.name} gauge`).length, 1);
    assert.deepEqual([sampleValue(text, METRICS.continuousArchiving.name, { target: 'app' }), sampleValue(text, METRICS.continuousArchiving.name, { target: 'orders-rds' })], [1, 0]);
  });

  it('a port in use is one sentence naming it and the settings that move it', async () => {
    const port = await freeLoopbackPort();
    servers.push(await startMetricsServer({ host: '127.0.0.1', port, cacheMs: 1000, sources: [] }));
    await assert.rejects(startMetricsServer({ host: '127.0.0.1', port, cacheMs: 1000, sources: [] }), {
      message: `the metrics endpoint cannot listen on 127.0.0.1:${port} (EADDRINUSE): free that port, or set another with metrics.port or LIFEBOAT_METRICS_PORT (and metrics.host for the address).`,
    });
  });
});

describe('monitoring: config', () => {
  it('serves nothing unless a port is set; $LIFEBOAT_METRICS_PORT overrides metrics.port, and a bad one is one sentence, exit 2', () => {
    const config = parseConfig(read('lifeboat.config.yaml'), 'lifeboat.config.yaml', { env: {} });
    assert.equal(config.metrics.port, undefined);
    assert.equal(config.metrics.host, '127.0.0.1');
    assert.equal(config.metrics.cacheSeconds, 15);
    assert.equal(metricsPortFrom(config, {}), undefined);
    assert.equal(metricsPortFrom(config, { LIFEBOAT_METRICS_PORT: '9464' }), 9464);
    assert.throws(() => metricsPortFrom(config, { LIFEBOAT_METRICS_PORT: '94x' }), (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /^LIFEBOAT_METRICS_PORT is "94x", which is not a port: set it to a number from 1 to 65535, or unset it to use metrics\.port\.$/);
      return true;
    });
  });

  it('an agent reads the recovery point of its own pgBackRest targets, a central worker those of the others', () => {
    const targets = [
      { name: 'a', engine: 'pgbackrest', agent: 'db1' },
      { name: 'b', engine: 'pgbackrest' },
      { name: 'c', engine: 'rds' },
      { name: 'd', engine: 'pgbackrest', agent: 'db2' },
    ] as unknown as Parameters<typeof recoveryPointTargets>[0];
    assert.deepEqual(recoveryPointTargets(targets, undefined).map((t) => t.name), ['b', 'c']);
    assert.deepEqual(recoveryPointTargets(targets, 'db1').map((t) => t.name), ['a']);
  });
});
