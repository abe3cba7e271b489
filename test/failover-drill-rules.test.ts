/**
 * Failover drills' pure rules (no server): run-unique drill names that never leave the drill
 * zone, owner marks, placeholders, the fingerprint comparison, the sweeper's verdict on drill
 * names and applications, and the Route53 drill zone at the SDK boundary.
 */
import assert from 'node:assert/strict';
import { ChangeResourceRecordSetsCommand, GetChangeCommand, GetHostedZoneCommand, ListResourceRecordSetsCommand, Route53Client } from '@aws-sdk/client-route-53';
import { mockClient } from 'aws-sdk-client-mock';
import { failoverDrillActivities } from '../src/activities/failover-drill';
import type { Ports } from '../src/activities/ports';
import { LifeboatConfig, parseConfig } from '../src/config';
import { DrillResource, sweepVerdict } from '../src/domain/drill-sweep';
import { assertDrillZoneName, drillApplicationKey, drillNameForRun, drillOwnerMark, drillRunLabel, fillDrillPlaceholders, parseDrillOwnerMark } from '../src/domain/failover-drill';
import { compareFingerprints, ProductionFingerprint, unverifiedParts } from '../src/domain/production-fingerprint';
import fs from 'node:fs';
import path from 'node:path';

describe('failover drill names (no server)', () => {
  it('puts the run label just above the drill zone, one DNS label of at most 63 characters, distinct per workflow id', () => {
    const name = drillNameForRun('db.app.lifeboat.test.', 'lifeboat.test.', 'drill.lifeboat.test.', 'drFailover-drill-2026-03-01T02:00:00Z');
    assert.match(name, /^db\.app\.drfailover-drill-2026-03-01t02-00-00z-[0-9a-f]{8}\.drill\.lifeboat\.test\.$/);
    const long = drillRunLabel('x'.repeat(300));
    assert.ok(long.length <= 63, `label ${long} is ${long.length} characters`);
    // Ids that read alike once made DNS-safe still get their own labels.
    assert.notEqual(drillRunLabel('drill/a'), drillRunLabel('drill:a'));
    assert.equal(drillRunLabel('Run_1'), drillRunLabel('Run_1'), 'stable for one id');
    assert.match(drillRunLabel('***'), /^run-[0-9a-f]{8}$/);
  });

  it('refuses a production name outside the production zone and any name outside the drill zone', () => {
    assert.throws(() => drillNameForRun('db.other.test.', 'lifeboat.test.', 'drill.lifeboat.test.', 'w'), /outside zone lifeboat\.test\./);
    assert.throws(() => assertDrillZoneName('db.app.lifeboat.test.', 'drill.lifeboat.test.', 'lifeboat.test.'), /refusing to write db\.app\.lifeboat\.test\./);
    assert.throws(() => assertDrillZoneName('drill.lifeboat.test.', 'drill.lifeboat.test.'), /only names inside its drill zone/, 'not the drill zone apex either');
    assert.throws(() => assertDrillZoneName('x.lifeboat.test.', 'lifeboat.test.', 'lifeboat.test.'), /is the production zone itself/);
    assert.doesNotThrow(() => assertDrillZoneName('_postgresql._tcp.db.app.r-1.drill.lifeboat.test.', 'drill.lifeboat.test.', 'lifeboat.test.'));
  });

  it('marks an owner in one line any workflow id fits in, and reads back only lifeboat marks', () => {
    const owner = { workflowId: 'drill with spaces/and "quotes"', runId: 'r-1', target: 'app' };
    assert.deepEqual(parseDrillOwnerMark(drillOwnerMark(owner)), owner);
    assert.deepEqual(parseDrillOwnerMark(`"${drillOwnerMark(owner)}"`), owner, 'a TXT value, quoted');
    assert.equal(parseDrillOwnerMark('v=spf1 -all'), undefined);
    assert.notEqual(drillApplicationKey('w/1', 'check'), drillApplicationKey('w:1', 'check'));
  });

  it('fills {port}, {dnsServer} and {name:<target>}, and names an unknown placeholder', () => {
    const values = { port: 21349, dnsServer: '127.0.0.1:21270', names: { app: 'db.app.r-1.drill.lifeboat.test.' } };
    assert.equal(fillDrillPlaceholders('--port={port}', values), '--port=21349');
    assert.equal(fillDrillPlaceholders('{name:app}@{dnsServer}', values), 'db.app.r-1.drill.lifeboat.test@127.0.0.1:21270');
    assert.throws(() => fillDrillPlaceholders('{name:orders}', values), /no name for database target orders/);
    assert.throws(() => fillDrillPlaceholders('{host}', values), /unknown placeholder \{host\}/);
  });
});

describe('production fingerprint comparison (no server)', () => {
  const base = (): ProductionFingerprint => ({
    takenAt: '2026-11-30T10:00:00Z',
    names: [{ router: 'local-dns', name: 'db.app.lifeboat.test.', records: { reachable: true, value: [{ name: 'db.app.lifeboat.test.', type: 'A', ttl: 30, values: ['127.0.0.1'] }] } }],
    databases: [
      {
        target: 'app',
        database: { reachable: true, value: { systemIdentifier: '7400000000000000001', timeline: 1, tables: [{ table: 'orders', rows: 10, checksum: 'c1' }] } },
        repositories: [
          { repo: 1, region: 'primary', backups: { reachable: true, value: [{ label: '20261130-010000F', stop: Date.parse('2026-11-30T01:00:00Z') / 1000 }] } },
          { repo: 2, region: 'dr', backups: { reachable: true, value: [{ label: '20261130-010000F', stop: Date.parse('2026-11-30T01:00:00Z') / 1000 }] } },
        ],
      },
    ],
    buckets: [{ target: 'app-files', side: 'source', store: 'primary', bucket: 'app-files', listing: { reachable: true, value: { count: 1, digest: 'd1', objects: [{ key: 'a.txt', etag: '"e1"', versionId: 'v1' }] } } }],
  });

  it('finds nothing between equal fingerprints', () => {
    assert.deepEqual(compareFingerprints(base(), base()), []);
    assert.deepEqual(unverifiedParts(base(), base()), []);
  });

  it('names each kind of change: a record, a table, the identity, a backup, an object', () => {
    const after = base();
    after.names[0].records = { reachable: true, value: [{ name: 'db.app.lifeboat.test.', type: 'A', ttl: 30, values: ['127.0.0.2'] }] };
    const db = after.databases[0].database;
    if (db.reachable) db.value = { systemIdentifier: '7400000000000000002', timeline: 2, tables: [{ table: 'orders', rows: 10, checksum: 'c2' }] };
    const repo = after.databases[0].repositories[1].backups;
    if (repo.reachable) repo.value = [...repo.value, { label: '20261130-010000F_20261130-020000D', stop: Date.parse('2026-11-30T02:00:00Z') / 1000 }];
    after.buckets[0].listing = { reachable: true, value: { count: 2, digest: 'd2', objects: [{ key: 'a.txt', etag: '"e1"', versionId: 'v1' }, { key: 'b.txt', etag: '"e2"', versionId: 'v2' }] } };
    const changes = compareFingerprints(base(), after).map((d) => `${d.part}: ${d.change}`);
    assert.deepEqual(changes, [
      'DNS db.app.lifeboat.test. (router local-dns): record sets changed A db.app.lifeboat.test. ttl 30 [127.0.0.1] -> A db.app.lifeboat.test. ttl 30 [127.0.0.2]',
      'database app: system identifier 7400000000000000001 -> 7400000000000000002 (a different cluster answers)',
      'database app: timeline 1 -> 2 (it was promoted or restored)',
      'database app: table orders: same 10 rows, contents changed (checksum c1 -> c2)',
      'pgBackRest repo2 (dr) of app: backups added 20261130-010000F_20261130-020000D (stopped 2026-11-30T02:00:00.000Z)',
      'bucket app-files source primary/app-files: object versions added b.txt (version v2, ETag "e2")',
    ]);
  });

  it('treats unreachable both times as equal but says so; reachable only once is a difference', () => {
    const down = (fp: ProductionFingerprint) => {
      fp.databases[0].repositories[0].backups = { reachable: false, detail: 'unreachable: the primary MinIO does not answer' };
      return fp;
    };
    assert.deepEqual(compareFingerprints(down(base()), down(base())), []);
    assert.deepEqual(unverifiedParts(down(base()), down(base())), [
      'pgBackRest repo1 (primary) of app was unreachable both times (unreachable: the primary MinIO does not answer): equal by assumption, not proven untouched',
    ]);
    assert.deepEqual(compareFingerprints(base(), down(base())), [
      { part: 'pgBackRest repo1 (primary) of app', change: 'could not be read after (unreachable: the primary MinIO does not answer), so it cannot be shown untouched' },
    ]);
  });
});

describe('drill sweeper on failover drill leftovers (no server)', () => {
  const owner = { workflowId: 'drFailover-drill-1', runId: 'r1' };
  const name: DrillResource = { kind: 'drill-name', router: 'local-dns', zone: 'drill.lifeboat.test.', name: 'db.app.x-1.drill.lifeboat.test.', owner, createdByLifeboat: true };
  const app: DrillResource = { kind: 'drill-application', key: 'k', name: 'drill-app-k', step: 'check', port: 21349, running: true, owner, createdByLifeboat: true };
  const closed = { state: 'closed', workflowType: 'drFailover', status: 'TERMINATED' } as const;

  it('removes a drill name and an application copy whose drFailover run is closed, keeps a running one\'s', () => {
    assert.equal(sweepVerdict(name, closed).action, 'remove');
    assert.equal(sweepVerdict(app, closed).action, 'remove');
    assert.equal(sweepVerdict(name, { state: 'running', workflowType: 'drFailover' }).action, 'keep');
  });

  it('removes a failover drill\'s instance (a failoverDatabase child\'s, named drill-...) but never one that served traffic or is not named as a drill', () => {
    const instance: DrillResource = { kind: 'database-instance', target: 'app', name: 'drill-drfailover-1-app', status: 'available', owner, createdByLifeboat: true };
    const child = { state: 'closed', workflowType: 'failoverDatabase', status: 'COMPLETED' } as const;
    assert.equal(sweepVerdict(instance, child).action, 'remove');
    assert.equal(sweepVerdict({ ...instance, servedTraffic: true }, child).action, 'report');
    assert.equal(sweepVerdict({ ...instance, name: 'failover-app-1' }, child).action, 'keep');
  });

  it('leaves a name outside its drill zone, and reports an owner that is not a drill', () => {
    assert.equal(sweepVerdict({ ...name, name: 'db.app.lifeboat.test.' }, closed).action, 'keep');
    assert.equal(sweepVerdict(name, { state: 'closed', workflowType: 'pitrRestore', status: 'COMPLETED' }).action, 'report');
  });
});

describe('Route53 drill zone at the SDK boundary (no server)', () => {
  const exampleText = fs.readFileSync(path.resolve(__dirname, '../../lifeboat.config.yaml'), 'utf8');
  const ZONE = 'Z0DRILL0000000000001';
  const client = new Route53Client({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } });
  const route53 = mockClient(client);
  const config: LifeboatConfig = parseConfig(exampleText, 'lifeboat.config.yaml', { env: {}, dataDir: '/tmp/lifeboat-test-data' });
  config.trafficRouters = [{ name: 'aws-dns', kind: 'route53', zone: 'example.com.', drillZone: 'drill.example.com.', hostedZoneId: 'Z0PROD00000000000001', drillHostedZoneId: ZONE, region: 'us-east-1' }];
  const activities = failoverDrillActivities({ config } as Ports, { route53Client: client });

  afterEach(() => route53.reset());

  it('ensureDrillZone accepts the hosted zone named as the drill zone and refuses another one, without retry', async () => {
    route53.on(GetHostedZoneCommand, { Id: ZONE }).resolves({ HostedZone: { Id: `/hostedzone/${ZONE}`, Name: 'drill.example.com.', CallerReference: 'x' }, DelegationSet: { NameServers: ['ns-1.awsdns-01.org'] } });
    assert.equal(await activities.ensureDrillZone('aws-dns'), 'drill.example.com.');
    route53.on(GetHostedZoneCommand, { Id: ZONE }).resolves({ HostedZone: { Id: `/hostedzone/${ZONE}`, Name: 'example.com.', CallerReference: 'x' } });
    await assert.rejects(activities.ensureDrillZone('aws-dns'), (err: Error & { nonRetryable?: boolean }) => /is example\.com\., not the drill zone drill\.example\.com\./.test(err.message) && err.nonRetryable === true);
  });

  it('pointDrillName writes A, SRV and the owner TXT in the drill hosted zone only, and waits for INSYNC', async () => {
    route53.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: '/change/C1', Status: 'PENDING', SubmittedAt: new Date() } });
    route53.on(GetChangeCommand).resolvesOnce({ ChangeInfo: { Id: '/change/C1', Status: 'PENDING', SubmittedAt: new Date() } }).resolves({ ChangeInfo: { Id: '/change/C1', Status: 'INSYNC', SubmittedAt: new Date() } });
    const drillActivities = failoverDrillActivities({ config } as Ports, { route53Client: client, route53PollIntervalMs: 10 });
    const { drillName } = await drillActivities.pointDrillName({ workflowId: 'drFailover-aws-1', router: 'aws-dns', target: 'app', productionName: 'db.example.com.', endpoint: { host: '10.1.2.3', port: 5432 }, ttlSeconds: 30 });
    assert.match(drillName, /^db\.drfailover-aws-1-[0-9a-f]{8}\.drill\.example\.com\.$/);
    const calls = route53.commandCalls(ChangeResourceRecordSetsCommand);
    assert.equal(calls.length, 1);
    const input = calls[0].args[0].input;
    assert.equal(input.HostedZoneId, ZONE, 'never the production hosted zone');
    assert.deepEqual(
      input.ChangeBatch?.Changes?.map((c) => [c.Action, c.ResourceRecordSet?.Type, c.ResourceRecordSet?.Name, c.ResourceRecordSet?.ResourceRecords?.[0].Value]),
      [
        ['UPSERT', 'A', drillName, '10.1.2.3'],
        ['UPSERT', 'SRV', `_postgresql._tcp.${drillName}`, `0 0 5432 ${drillName}`],
        ['UPSERT', 'TXT', drillName, `"${drillOwnerMark({ workflowId: 'drFailover-aws-1', runId: '', target: 'app' })}"`],
      ],
    );
    assert.equal(route53.commandCalls(GetChangeCommand).length, 2);
  });

  it('removeDrillNames deletes exactly the record sets of the run\'s names, and nothing of another run', async () => {
    const mine = 'db.mine-1.drill.example.com.';
    const theirs = 'db.theirs-1.drill.example.com.';
    const txt = (workflowId: string) => [{ Value: `"${drillOwnerMark({ workflowId, runId: 'r', target: 'app' })}"` }];
    route53.on(ListResourceRecordSetsCommand).resolves({
      IsTruncated: false,
      MaxItems: 100,
      ResourceRecordSets: [
        { Name: 'drill.example.com.', Type: 'NS', TTL: 172800, ResourceRecords: [{ Value: 'ns-1.awsdns-01.org.' }] },
        { Name: mine, Type: 'A', TTL: 30, ResourceRecords: [{ Value: '10.1.2.3' }] },
        { Name: mine, Type: 'TXT', TTL: 30, ResourceRecords: txt('drFailover-mine') },
        { Name: theirs, Type: 'A', TTL: 30, ResourceRecords: [{ Value: '10.9.9.9' }] },
        { Name: theirs, Type: 'TXT', TTL: 30, ResourceRecords: txt('drFailover-theirs') },
        { Name: `_postgresql._tcp.${mine}`, Type: 'SRV', TTL: 30, ResourceRecords: [{ Value: `0 0 5432 ${mine}` }] },
        { Name: `_postgresql._tcp.${theirs}`, Type: 'SRV', TTL: 30, ResourceRecords: [{ Value: `0 0 5432 ${theirs}` }] },
      ],
    });
    route53.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: '/change/C2', Status: 'INSYNC', SubmittedAt: new Date() } });
    assert.deepEqual(await activities.removeDrillNames('drFailover-mine'), [mine]);
    const changes = route53.commandCalls(ChangeResourceRecordSetsCommand).flatMap((c) => c.args[0].input.ChangeBatch?.Changes ?? []);
    assert.deepEqual(changes.map((c) => [c.Action, c.ResourceRecordSet?.Type, c.ResourceRecordSet?.Name]).sort(), [
      ['DELETE', 'A', mine],
      ['DELETE', 'SRV', `_postgresql._tcp.${mine}`],
      ['DELETE', 'TXT', mine],
    ]);
    assert.ok(changes.every((c) => c.ResourceRecordSet?.TTL === 30 && c.ResourceRecordSet.ResourceRecords?.length === 1), 'deleted exactly as listed');
  });
});
