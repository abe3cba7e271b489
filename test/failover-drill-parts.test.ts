/**
 * The failover drill's building blocks on the real stack (PowerDNS, PostgreSQL, pgBackRest, both
 * MinIO servers, Temporal): the drill zone, the run's drill names (and nothing of production),
 * the application's own copy against a drill name, the production fingerprint, and the drill
 * sweeper on what a lost failover drill leaves behind.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as dns } from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { MockActivityEnvironment, TestWorkflowEnvironment } from '@temporalio/testing';
import { failoverDrillActivities } from '../src/activities/failover-drill';
import { createPorts, Ports } from '../src/activities/ports';
import { loadConfig } from '../src/config';
import type { DrillSweepResult } from '../src/domain/drill-sweep';
import { assertDrillZoneName, drillApplicationKey } from '../src/domain/failover-drill';
import { compareFingerprints, unverifiedParts } from '../src/domain/production-fingerprint';
import { CommentedRrset, PowerDnsDrillZone } from '../src/engines/powerdns';
import { withDatabase } from '../src/engines/verifier';
import { isAlive, portIsFree } from '../src/platform/processes';
import { loadStackSettings } from '../src/stack/settings';
import { createLifeboatWorker } from '../src/worker';
import { CONFIG_FILE } from './helpers/cli';
import { uniqueId } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const PRODUCTION_NAME = 'db.app.lifeboat.test.';
const DRILL_ZONE = 'drill.lifeboat.test.';
const PROBE_APP = path.resolve(__dirname, 'fixtures/drill-probe-app.js');

describe('failover drill parts (real stack)', function () {
  const config = loadConfig(CONFIG_FILE);
  const settings = loadStackSettings();
  const dnsServer = `${settings.host}:${settings.dns.port}`;
  const primary = { host: settings.host, port: settings.postgres.primaryPort };
  const resolver = new dns.Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([dnsServer]);
  const tag = randomBytes(3).toString('hex');
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let activities: ReturnType<typeof failoverDrillActivities>;
  const runsToClean = new Set<string>();
  const appsToStop: Array<[string, string]> = [];

  /** Reads a zone's record sets through the API; the guard refuses every write, so this can only read. */
  const zoneReader = (zone: string) =>
    new PowerDnsDrillZone({ apiUrl: `http://${settings.host}:${settings.dns.apiPort}`, apiKey: settings.dns.apiKey, zone, dnsServer: { host: settings.host, port: settings.dns.port } }, (name) => {
      throw new Error(`the test's zone reader never writes (${name})`);
    });
  const productionZone = async (): Promise<CommentedRrset[]> => (await zoneReader('lifeboat.test.').recordSets()).sort((a, b) => `${a.name} ${a.type}`.localeCompare(`${b.name} ${b.type}`));
  /** What the stack's PowerDNS answers for a name: address and port, or undefined. */
  const served = async (name: string): Promise<{ host: string; port: number } | undefined> => {
    try {
      const [a] = await resolver.resolve4(name);
      const [srv] = await resolver.resolveSrv(`_postgresql._tcp.${name}`);
      return { host: a, port: srv.port };
    } catch (err) {
      if (['ENOTFOUND', 'ENODATA'].includes((err as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw err;
    }
  };
  /** The activity run as a workflow's (workflow id and run id in its context), as drFailover would call it. */
  const asRun = (workflowId: string, runId: string) => {
    const activityEnv = new MockActivityEnvironment({ workflowExecution: { workflowId, runId } } as never);
    return <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => activityEnv.run(fn, ...args) as Promise<R>;
  };

  before(async function () {
    this.timeout(900000);
    await useStack();
    env = await useTemporal();
    ports = createPorts(config);
    activities = failoverDrillActivities(ports, { appStartTimeoutMs: 30000, fingerprintPartTimeoutMs: 30000 });
  });

  after(async function () {
    this.timeout(120000);
    for (const [workflowId, step] of appsToStop) await activities?.stopDrillApplication(workflowId, step).catch(() => undefined);
    for (const id of runsToClean) await activities?.removeDrillNames(id).catch(() => undefined);
    await ports?.close();
  });

  it('ensureDrillZone creates the drill zone once and leaves the production zone alone', async () => {
    const before = await productionZone();
    assert.equal(await activities.ensureDrillZone('local-dns'), DRILL_ZONE);
    const drillZoneSets = await zoneReader(DRILL_ZONE).recordSets();
    assert.ok(drillZoneSets.some((s) => s.type === 'SOA'), 'the drill zone exists on the server');
    assert.equal(await activities.ensureDrillZone('local-dns'), DRILL_ZONE, 'a second call adopts it');
    assert.deepEqual(await zoneReader(DRILL_ZONE).recordSets(), drillZoneSets, 'and changes nothing in it');
    assert.deepEqual(await productionZone(), before);
  });

  it('pointDrillName writes A and SRV in the drill zone, marked with the run, served by PowerDNS; the production name is untouched', async () => {
    const before = await productionZone();
    const servedBefore = await served(PRODUCTION_NAME);
    const workflowId = `drFailover-test-${tag}-point`;
    runsToClean.add(workflowId);
    const { drillName } = await asRun(workflowId, 'run-point')(activities.pointDrillName, {
      workflowId,
      router: 'local-dns',
      target: 'app',
      productionName: PRODUCTION_NAME,
      endpoint: { host: '127.0.0.1', port: 21399 },
      ttlSeconds: 5,
    });
    assert.match(drillName, new RegExp(`^db\\.app\\.drfailover-test-${tag}-point-[0-9a-f]{8}\\.drill\\.lifeboat\\.test\\.$`));
    assert.deepEqual(await served(drillName), { host: '127.0.0.1', port: 21399 });
    const sets = (await zoneReader(DRILL_ZONE).recordSets()).filter((s) => s.name === drillName || s.name === `_postgresql._tcp.${drillName}`);
    assert.deepEqual(sets.map((s) => [s.type, s.records, s.ttl]).sort(), [
      ['A', ['127.0.0.1'], 5],
      ['SRV', [`0 0 21399 ${drillName}`], 5],
    ]);
    for (const s of sets) assert.deepEqual(s.comments, [`lifeboat-drill-owner workflowId=${workflowId} runId=run-point target=app`]);
    // Idempotent: a retry rewrites the same records.
    await asRun(workflowId, 'run-point')(activities.pointDrillName, { workflowId, router: 'local-dns', target: 'app', productionName: PRODUCTION_NAME, endpoint: { host: '127.0.0.1', port: 21399 }, ttlSeconds: 5 });
    assert.deepEqual(await productionZone(), before, 'production records exactly as before');
    assert.deepEqual(await served(PRODUCTION_NAME), servedBefore);
    assert.deepEqual(await activities.removeDrillNames(workflowId), [drillName]);
    assert.equal(await served(drillName), undefined);
  });

  it('refuses a name outside the drill zone, at the activity and at the zone writer, writing nothing', async () => {
    const before = await productionZone();
    await assert.rejects(
      activities.pointDrillName({ workflowId: `drFailover-test-${tag}-outside`, router: 'local-dns', target: 'app', productionName: 'db.app.example.org.', endpoint: { host: '127.0.0.1', port: 21399 }, ttlSeconds: 5 }),
      /db\.app\.example\.org\. is outside zone lifeboat\.test\./,
    );
    // The writer itself, given a production name: its guard refuses before any API call.
    const writer = new PowerDnsDrillZone(
      { apiUrl: `http://${settings.host}:${settings.dns.apiPort}`, apiKey: settings.dns.apiKey, zone: DRILL_ZONE, dnsServer: { host: settings.host, port: settings.dns.port } },
      (name) => assertDrillZoneName(name, DRILL_ZONE, 'lifeboat.test.'),
    );
    await assert.rejects(writer.writeName(PRODUCTION_NAME, { host: '127.0.0.2', port: 21399 }, 5, 'x'), /refusing to write db\.app\.lifeboat\.test\.: a failover drill writes only names inside its drill zone/);
    await assert.rejects(writer.removeRecordSets([{ name: PRODUCTION_NAME, type: 'A' }]), /refusing to write db\.app\.lifeboat\.test\./);
    assert.deepEqual(await productionZone(), before);
  });

  it('removeDrillNames removes only its run\'s names, and again finds nothing to remove', async () => {
    const [one, two] = [`drFailover-test-${tag}-one`, `drFailover-test-${tag}-two`];
    runsToClean.add(one).add(two);
    const point = (workflowId: string, port: number) =>
      asRun(workflowId, `run-${workflowId}`)(activities.pointDrillName, { workflowId, router: 'local-dns', target: 'app', productionName: PRODUCTION_NAME, endpoint: { host: '127.0.0.1', port }, ttlSeconds: 5 });
    const nameOne = (await point(one, 21391)).drillName;
    const nameTwo = (await point(two, 21392)).drillName;
    assert.notEqual(nameOne, nameTwo);
    assert.deepEqual(await activities.removeDrillNames(one), [nameOne]);
    assert.equal(await served(nameOne), undefined);
    assert.deepEqual(await served(nameTwo), { host: '127.0.0.1', port: 21392 }, 'the other run\'s name stays');
    assert.deepEqual(await activities.removeDrillNames(one), []);
    assert.deepEqual(await activities.removeDrillNames(two), [nameTwo]);
  });

  it('starts the application\'s copy against a drill name pointing at the primary: it answers /health through the name, a retry finds it, stop ends it', async () => {
    const workflowId = `drFailover-test-${tag}-app`;
    runsToClean.add(workflowId);
    const { drillName } = await activities.pointDrillName({ workflowId, router: 'local-dns', target: 'app', productionName: PRODUCTION_NAME, endpoint: primary, ttlSeconds: 5 });
    const input = {
      workflowId,
      step: 'check-sample-app',
      command: [process.execPath, PROBE_APP, '--port', '{port}', '--db-name', '{name:app}', '--dns', '{dnsServer}', '--database', 'app', '--user', 'lifeboat_verify'],
      url: 'http://127.0.0.1:{port}/health',
      names: { app: drillName },
      dnsServer,
    };
    appsToStop.push([workflowId, input.step]);
    const started = await activities.startDrillApplication(input);
    const drillPorts = config.targets.databases[0].engine === 'pgbackrest' ? config.targets.databases[0].drillPorts : undefined;
    assert.ok(drillPorts && started.port >= drillPorts.from && started.port <= drillPorts.to, `port ${started.port} is from the drill port range`);
    assert.equal(started.url, `http://127.0.0.1:${started.port}/health`);
    const res = await fetch(started.url, { signal: AbortSignal.timeout(15000) });
    const body = (await res.json()) as { ok: boolean; database: { host: string; port: number; serverPort: number } };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.deepEqual(body.database, { host: primary.host, port: primary.port, serverPort: primary.port }, 'it reached the primary through the drill name');

    assert.deepEqual(await activities.startDrillApplication(input), started, 'a retry finds the running copy');
    const record = JSON.parse(fs.readFileSync(path.join(settings.dataDir, 'drill-apps', `${drillApplicationKey(workflowId, input.step)}.json`), 'utf8')) as { argv: string[] };
    assert.ok(record.argv.includes(drillName.replace(/\.$/, '')) && record.argv.includes(dnsServer), 'placeholders filled');

    assert.match(await activities.stopDrillApplication(workflowId, input.step), new RegExp(`stopped drill application check-sample-app of ${workflowId} \\(pid ${started.pid}`));
    assert.equal(isAlive(started.pid), false);
    assert.equal(await portIsFree('127.0.0.1', started.port), true);
    assert.match(await activities.stopDrillApplication(workflowId, input.step), /no drill application of step check-sample-app recorded/);
    assert.deepEqual(await activities.removeDrillNames(workflowId), [drillName]);
  });

  it('fingerprints production: unchanged across a read-only period, changed after a write, a DNS change and a new object, each named', async () => {
    const input = { databases: ['app'], buckets: ['app-files'], names: [{ router: 'local-dns', name: PRODUCTION_NAME }] };
    const first = await activities.fingerprintProduction(input);
    const db = first.databases[0];
    assert.ok(db.database.reachable, `the source is read: ${JSON.stringify(db.database)}`);
    assert.deepEqual(db.database.value.tables.map((t) => t.table), ['customers', 'products', 'orders', 'order_items']);
    assert.deepEqual(db.repositories.map((r) => [r.repo, r.region, r.backups.reachable]), [[1, 'primary', true], [2, 'dr', true]]);
    assert.deepEqual(first.buckets.map((b) => [b.side, b.listing.reachable]), [['source', true], ['replica', true]]);
    assert.ok(first.names[0].records.reachable && first.names[0].records.value.some((r) => r.type === 'A'));

    // Read-only period: reads of the source change nothing.
    const target = config.targets.databases[0];
    const verify = { host: primary.host, port: primary.port, database: 'app', user: target.verifyUser };
    await withDatabase(verify, (c) => c.query('SELECT count(*) FROM orders'));
    const second = await activities.fingerprintProduction(input);
    assert.deepEqual(compareFingerprints(first, second), []);
    assert.deepEqual(unverifiedParts(first, second), []);

    // A real write on the source, a DNS change of the production name, a new object in the source bucket.
    const writer = { ...verify, user: target.user };
    const orderId = 900000000 + Math.floor(Math.random() * 1000000);
    const bucket = config.targets.buckets.find((b) => b.name === 'app-files')!.source;
    const s3 = ports.objectStore(bucket.store);
    const key = `lbtest-fingerprint-${tag}.txt`;
    const router = ports.router('local-dns');
    const snapshot = await router.snapshot(PRODUCTION_NAME);
    try {
      await withDatabase(writer, (c) => c.query(`INSERT INTO orders (id, customer_id, placed_at, status) SELECT $1, min(id), now(), 'lbtest' FROM customers`, [orderId]));
      await router.pointAt(PRODUCTION_NAME, { host: primary.host, port: primary.port + 1 }, 30);
      await s3.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: key, Body: 'fingerprint test' }));
      const third = await activities.fingerprintProduction(input);
      const changes = compareFingerprints(second, third);
      const parts = changes.map((c) => c.part);
      assert.ok(parts.includes(`DNS ${PRODUCTION_NAME} (router local-dns)`), JSON.stringify(changes));
      assert.ok(changes.some((c) => c.part === 'database app' && /table orders: \d+ rows -> \d+ rows/.test(c.change)), JSON.stringify(changes));
      assert.ok(changes.some((c) => c.part === `bucket app-files source ${bucket.store}/${bucket.bucket}` && c.change.includes(`added ${key}`)), JSON.stringify(changes));
      assert.ok(changes.some((c) => c.part.startsWith('DNS') && /SRV/.test(c.change) && c.change.includes(String(primary.port + 1))), 'the SRV change is named with its new port');
    } finally {
      await withDatabase(writer, (c) => c.query('DELETE FROM orders WHERE id = $1', [orderId]));
      await router.restoreSnapshot(snapshot);
      await s3.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: key }));
    }
  });

  it('says which parts are unreachable, within the part timeout, when the primary region does not answer', async () => {
    // The primary region as a drill with the region down sees it: nothing listens where its database and object store were.
    const closedPort = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const down = structuredClone(config);
    const primaryStore = down.objectStores.find((o) => o.name === 'primary')!;
    primaryStore.endpoint = `https://127.0.0.1:${closedPort}`;
    const db = down.targets.databases[0];
    if (db.engine === 'pgbackrest') db.port = closedPort;
    const downPorts = createPorts(down);
    try {
      const drill = failoverDrillActivities(downPorts, { fingerprintPartTimeoutMs: 5000 });
      const input = { databases: ['app'], buckets: ['app-files'], names: [{ router: 'local-dns', name: PRODUCTION_NAME }] };
      const startedAt = Date.now();
      const [first, second] = [await drill.fingerprintProduction(input), await drill.fingerprintProduction(input)];
      assert.ok(Date.now() - startedAt < 90000, `two fingerprints took ${Date.now() - startedAt} ms`);
      assert.equal(first.databases[0].database.reachable, false);
      assert.deepEqual(first.buckets.map((b) => [b.side, b.listing.reachable]), [['source', false], ['replica', true]]);
      assert.equal(first.names[0].records.reachable, true);
      assert.deepEqual(compareFingerprints(first, second), [], 'unreachable both times counts as equal');
      const unverified = unverifiedParts(first, second);
      assert.ok(unverified.some((u) => u.startsWith('database app was unreachable both times')), unverified.join('\n'));
      assert.ok(unverified.some((u) => u.startsWith(`bucket app-files source primary/`)), unverified.join('\n'));
    } finally {
      await downPorts.close();
    }
  });

  it('the drill sweeper removes a closed drFailover run\'s drill names and application copy, and leaves an open run\'s alone', async function () {
    this.timeout(300000);
    const idle = uniqueTaskQueue('failover-drill-idle');
    const closedId = uniqueId(`drFailover-test-${tag}-closed`);
    const openId = uniqueId(`drFailover-test-${tag}-open`);
    runsToClean.add(closedId).add(openId);
    // drFailover runs nobody works on: one terminated (a drill lost with its worker), one still open.
    const closed = await env.client.workflow.start('drFailover', { taskQueue: idle, workflowId: closedId, args: [{ mode: 'drill', requestedBy: 'test', reason: 'sweeper test' }] });
    const open = await env.client.workflow.start('drFailover', { taskQueue: idle, workflowId: openId, args: [{ mode: 'drill', requestedBy: 'test', reason: 'sweeper test' }] });
    try {
      const leave = async (workflowId: string, runId: string) => {
        const run = asRun(workflowId, runId);
        const { drillName } = await run(activities.pointDrillName, { workflowId, router: 'local-dns', target: 'app', productionName: PRODUCTION_NAME, endpoint: primary, ttlSeconds: 5 });
        const app = await run(activities.startDrillApplication, {
          workflowId,
          step: 'check-sample-app',
          command: [process.execPath, PROBE_APP, '--port', '{port}', '--db-name', '{name:app}', '--dns', '{dnsServer}', '--database', 'app', '--user', 'lifeboat_verify'],
          url: 'http://127.0.0.1:{port}/health',
          names: { app: drillName },
          dnsServer,
        });
        appsToStop.push([workflowId, 'check-sample-app']);
        return { drillName, app };
      };
      const lost = await leave(closedId, closed.firstExecutionRunId);
      const kept = await leave(openId, open.firstExecutionRunId);
      await closed.terminate('test: a failover drill lost without its cleanup');

      const queue = uniqueTaskQueue('failover-drill-sweep');
      const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue: queue, workflowBundle: await workflowBundle() });
      const result = (await worker.runUntil(env.client.workflow.execute('drillSweeper', { taskQueue: queue, workflowId: uniqueId('test-failover-drill-sweep'), args: [{ requestedBy: 'test' }] }))) as DrillSweepResult;

      const removed = result.removed.map((s) => s.resource.name);
      assert.ok(removed.includes(lost.drillName), `removed: ${removed.join(', ')}`);
      assert.ok(removed.includes(`drill-app-${drillApplicationKey(closedId, 'check-sample-app')}`), `removed: ${removed.join(', ')}`);
      assert.equal(await served(lost.drillName), undefined, 'the lost drill\'s name is gone');
      assert.equal(isAlive(lost.app.pid), false, 'the lost drill\'s application copy is stopped');

      const keptNames = result.kept.map((s) => s.resource.name);
      assert.ok(keptNames.includes(kept.drillName) && keptNames.includes(`drill-app-${drillApplicationKey(openId, 'check-sample-app')}`), `kept: ${keptNames.join(', ')}`);
      assert.deepEqual(await served(kept.drillName), primary, 'the open drill\'s name stays');
      assert.equal(isAlive(kept.app.pid), true, 'the open drill\'s application copy still runs');
    } finally {
      await open.terminate('test over').catch(() => undefined);
      await closed.terminate('test over').catch(() => undefined);
    }
  });
});
