/**
 * Failover drill mode, without servers: what `failover start --drill` asks for, the drill block
 * of the example plan as the workflow receives it, and how a drill's report reads.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { failoverActivities } from '../src/activities/failover';
import { createPorts, Ports } from '../src/activities/ports';
import { prepareFailoverStart } from '../src/client/failover-run-commands';
import { loadConfig } from '../src/config';
import { failoverMarkdown, FailoverReport } from '../src/domain/failover';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');

describe('failover drill mode (no servers)', () => {
  const config = loadConfig(CONFIG_FILE);
  let ports: Ports;
  before(() => {
    ports = createPorts(config);
  });
  after(async () => {
    await ports.close();
  });

  it('`failover start --drill` starts drFailover in drill mode under a failover-drill-... id; without --drill it stays a failover', () => {
    const drill = prepareFailoverStart(config, { drill: true, reason: 'twice-yearly rehearsal', as: 'alice@example.com' });
    assert.equal(drill.input.mode, 'drill');
    assert.match(drill.workflowId, /^failover-drill-\d{4}-/);
    const real = prepareFailoverStart(config, { drill: false, reason: 'region lost', as: 'alice@example.com' });
    assert.equal(real.input.mode, 'failover');
    assert.match(real.workflowId, /^failover-\d{4}-/);
  });

  it('gives a drill the check step\'s drill command, URL and DNS server, and a failover none of them', async () => {
    const settings = failoverActivities(ports);
    const check = (await settings.failoverSettings('drill')).steps.find((s) => s.kind === 'check-application')!;
    const router = config.trafficRouters.find((r) => r.kind === 'powerdns')!;
    assert.ok(router.kind === 'powerdns');
    assert.deepEqual(check.drill, {
      command: ['node', 'lib/src/stack/sample-app-service.js', '--port', '{port}', '--db-name', '{name:app}', '--dns', '{dnsServer}', '--database', 'app', '--user', 'lifeboat'],
      url: 'http://127.0.0.1:{port}/health',
      dnsServer: `${router.dnsServer.host}:${router.dnsServer.port}`,
    });
    const real = (await settings.failoverSettings('failover')).steps.find((s) => s.kind === 'check-application')!;
    assert.equal(real.drill, undefined);
  });

  it('a drill report says whether production changed, what could not be read, and the drill names', () => {
    const base: FailoverReport = {
      workflowId: 'failover-drill-x',
      mode: 'drill',
      outcome: 'failed',
      requestedBy: 'lifeboat-schedule',
      reason: 'scheduled failover drill',
      declaredAt: '2026-03-01T02:00:00.000Z',
      finishedAt: '2026-03-01T02:01:00.000Z',
      steps: [],
      rpo: [],
      names: [],
      buckets: [],
      decisions: [],
      notes: [],
      cleanup: [],
      drill: {
        productionDifferences: [{ part: 'DNS db.app.lifeboat.test. (router local-dns)', change: 'A 127.0.0.1 -> 127.0.0.2' }],
        unverified: ['bucket app-files-replica: unreachable both times'],
        drillNames: ['db.app.failover-drill-x-1a2b.drill.lifeboat.test.'],
      },
    };
    const md = failoverMarkdown(base);
    assert.match(md, /^# Failover drill failover-drill-x: failed/);
    assert.match(md, /- production: CHANGED during the drill: DNS db\.app\.lifeboat\.test\. \(router local-dns\): A 127\.0\.0\.1 -> 127\.0\.0\.2/);
    assert.match(md, /- not verified \(unreadable\): bucket app-files-replica: unreachable both times/);
    assert.match(md, /- drill names: db\.app\.failover-drill-x-1a2b\.drill\.lifeboat\.test\./);
    const passed = failoverMarkdown({ ...base, outcome: 'passed', drill: { productionDifferences: [], unverified: [], drillNames: [] } });
    assert.match(passed, /- production: unchanged \(fingerprints before and after the drill are equal\)/);
    assert.doesNotMatch(passed, /not verified/);
  });
});
