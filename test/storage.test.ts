/**
 * `lifeboat storage` without a server: the arithmetic (growth line, budget date, what retention
 * keeps in steady state, cost), where each target's backups are found (the config and pgBackRest's
 * own config file), the S3 listing per storage class at the SDK boundary (aws-sdk-client-mock,
 * pages shaped like S3's ListObjectVersions replies), and the CLI's refusals of bad input.
 * The figures on a real stack after a real backup: test/storage-stack.test.ts.
 */
import assert from 'node:assert/strict';
import { ListObjectVersionsCommand, type ListObjectVersionsCommandInput, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { loadConfig } from '../src/config';
import { planRetention } from '../src/domain/retention';
import { DAY_SECONDS, fitLine, forecastBudget, formatBytes, GIB, monthlyCost, steadyStateKept } from '../src/domain/storage';
import { bytesUnderPrefix, parsePgBackRestConfig, storageLocations, storeOfRepo } from '../src/engines/storage-usage';
import { dailyTotals } from '../src/metrics/storage-report';
import { CONFIG_FILE as EXAMPLE_CONFIG_FILE, lifeboat } from './helpers/cli';

const NOW = new Date('2026-12-01T12:00:00Z');
const nowS = NOW.getTime() / 1000;

describe('storage arithmetic', () => {
  it('fits a least-squares line in bytes per day and dates the budget from it', () => {
    const points = [0, 1, 2, 3].map((d) => ({ at: nowS - (3 - d) * DAY_SECONDS, bytes: 1000 + d * 500 + (d === 2 ? 60 : 0) }));
    const fit = fitLine(points)!;
    // Slope of (0,1000) (1,1500) (2,2060) (3,2500): sxy / sxx = 2530 / 5.
    assert.equal(fit.slopePerDay, 506);
    assert.equal(fit.points, 4);
    assert.equal(fitLine(points.slice(0, 1)), undefined, 'one day is no line');
    const forecast = forecastBudget(2500, fit, 2500 + 506 * 10, NOW);
    assert.equal(forecast.state, 'reached-at');
    assert.ok(forecast.state === 'reached-at' && Math.abs(forecast.days - 10) < 1e-9 && forecast.at === '2026-12-11T12:00:00.000Z');
    assert.deepEqual(forecastBudget(3000, fit, 2000, NOW), { state: 'over', budgetBytes: 2000, usedBytes: 3000 });
    assert.equal(forecastBudget(100, { slopePerDay: -5, points: 9 }, 2000, NOW).state, 'not-growing');
    assert.equal(forecastBudget(100, undefined, 2000, NOW).state, 'no-history');
    assert.deepEqual(forecastBudget(100, fit, undefined, NOW), { state: 'no-budget' });
  });

  it('counts the history from the first day anything was stored: a later empty day is 0, the days before are no history', () => {
    const d = (n: number) => nowS - n * DAY_SECONDS;
    const history = {
      points: [d(4), d(3), d(2), d(1), d(0)],
      rows: [
        { at: d(3), target: 'app', region: 'primary', bytes: 100 },
        { at: d(3), target: 'app', region: 'dr', bytes: 90 },
        { at: d(1), target: 'app', region: 'primary', bytes: 300 },
        { at: d(0), target: 'files', region: 'primary', bytes: 50 },
      ],
    };
    assert.deepEqual(
      dailyTotals(history, (r) => r.region === 'primary').map((p) => p.bytes),
      [100, 0, 300, 50],
    );
    assert.deepEqual(dailyTotals(history, (r) => r.target === 'none'), []);
  });

  it("keeps in steady state what lifeboat's retention keeps, counted by hand for the default policy", () => {
    // Daily backups at midnight, judged at noon on Tuesday 1 December: 7 dailies (25 Nov - 1 Dec);
    // the weeklies of 23, 16 and 9 Nov (30 Nov's is a daily; 2 Nov's is older than 28 days);
    // the monthlies of 1 Jan - 1 Nov 2026 (1 Dec's is a daily; 1 Dec 2025 is older than 12 months).
    assert.equal(steadyStateKept({ daily: 7, weekly: 4, monthly: 12 }, 1, NOW), 7 + 3 + 11);
    assert.equal(steadyStateKept({ daily: 7, weekly: 0, monthly: 0 }, 1, NOW), 7);
    assert.equal(steadyStateKept({ daily: 7, weekly: 0, monthly: 0 }, 0.5, NOW), 14, 'two a day keep twice as many dailies');
    assert.equal(steadyStateKept({ daily: 1, weekly: 0, monthly: 3 }, 1, NOW), 3);
    // The same decision function retention runs: a series it judges directly agrees.
    const series = Array.from({ length: 30 }, (_, i) => ({ id: String(i), series: 's', completedAt: new Date(NOW.getTime() - (i + 0.5) * DAY_SECONDS * 1000).toISOString(), verified: true }));
    assert.equal(planRetention(series, { daily: 7, weekly: 0, monthly: 0 }, NOW).filter((d) => d.action === 'keep').length, 7);
  });

  it('prices bytes per storage class per GiB-month and names the classes without a price', () => {
    const cost = monthlyCost({ STANDARD: 10 * GIB, STANDARD_IA: 4 * GIB, GLACIER: GIB, DEEP_ARCHIVE: 0 }, { STANDARD: 0.023, STANDARD_IA: 0.0125 });
    assert.ok(Math.abs(cost.monthly - (0.23 + 0.05)) < 1e-12, String(cost.monthly));
    assert.deepEqual(cost.unpriced, ['GLACIER'], 'a class holding nothing needs no price');
    assert.deepEqual([formatBytes(0), formatBytes(1536), formatBytes(5 * GIB), formatBytes(-2048)], ['0 B', '1.50 KiB', '5.00 GiB', '-2.00 KiB']);
  });
});

describe('storage locations', () => {
  const config = loadConfig(EXAMPLE_CONFIG_FILE);
  // What `stack up` writes (src/stack/pgbackrest.ts), with the example config's store ports.
  const primaryPort = new URL(config.objectStores.find((s) => s.name === 'primary')!.endpoint!).port;
  const drPort = new URL(config.objectStores.find((s) => s.name === 'dr')!.endpoint!).port;
  const conf = [
    '[global]',
    'repo1-type=s3',
    'repo1-path=/pgbackrest',
    'repo1-s3-bucket=lifeboat-backups-primary',
    'repo1-s3-endpoint=localhost',
    `repo1-storage-port=${primaryPort}`,
    'repo1-s3-region=primary',
    'repo2-type=s3',
    'repo2-path=/pgbackrest',
    'repo2-s3-bucket=lifeboat-backups-dr',
    'repo2-s3-endpoint=localhost',
    `repo2-storage-port=${drPort}`,
    'repo2-s3-region=dr',
    '',
    '[other]',
    'repo1-path=/elsewhere',
    '',
    '[app]',
    'pg1-path=/var/lib/postgresql/16/main',
  ].join('\n');

  it("finds a pgBackRest target's sets and WAL in each region's repository, logical dumps and file sets from the config", () => {
    const { locations, unknown } = storageLocations(config, () => conf);
    assert.deepEqual(unknown, []);
    assert.deepEqual(
      locations.map((l) => `${l.target} ${l.region} ${l.what} ${l.store} s3://${l.bucket}/${l.prefix}`),
      [
        'app primary pgbackrest-sets primary s3://lifeboat-backups-primary/pgbackrest/backup/app/',
        'app primary pgbackrest-wal primary s3://lifeboat-backups-primary/pgbackrest/archive/app/',
        'app dr pgbackrest-sets dr s3://lifeboat-backups-dr/pgbackrest/backup/app/',
        'app dr pgbackrest-wal dr s3://lifeboat-backups-dr/pgbackrest/archive/app/',
        'app primary logical primary s3://lifeboat-backups-primary/logical/app/',
        'app dr logical dr s3://lifeboat-backups-dr/logical/app/',
        'app-files primary files primary s3://lifeboat-backups-primary/files/app-files/',
        'app-files dr files dr s3://lifeboat-backups-dr/files/app-files/',
      ],
    );
    // Another stanza's section does not leak into this one's options.
    assert.equal(parsePgBackRestConfig(conf, 'app').get('repo1-path'), '/pgbackrest');
    assert.equal(parsePgBackRestConfig(conf, 'other').get('repo1-path'), '/elsewhere');
  });

  it('matches an AWS repository (no endpoint) to the store in its region, and says when the config file cannot be read', () => {
    const aws = [{ name: 'eu', region: 'eu-west-1' }, { name: 'us', region: 'us-east-1' }] as unknown as typeof config.objectStores;
    assert.equal(storeOfRepo(new Map([['repo2-s3-region', 'us-east-1'], ['repo2-s3-bucket', 'b']]), 2, aws), 'us');
    const { locations, unknown } = storageLocations(config, () => {
      throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    });
    assert.ok(!locations.some((l) => l.what.startsWith('pgbackrest')));
    assert.equal(unknown.length, 1);
    assert.match(unknown[0].why, /^its pgBackRest config .*pgbackrest\.conf cannot be read here \(EACCES\): run this where pgBackRest runs$/);
  });
});

describe('storage listing at the S3 boundary (aws-sdk-client-mock)', () => {
  const client = new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' } });
  const s3 = mockClient(client);
  after(() => s3.restore());

  it('sums every version, current and noncurrent, per storage class across ListObjectVersions pages', async () => {
    const OWNER = { ID: '75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a', DisplayName: 'lifeboat' };
    const at = new Date('2026-11-20T03:00:00.000Z');
    const v = (Key: string, Size: number, StorageClass: string | undefined, IsLatest: boolean) => ({ Key, VersionId: `${Key}-${Size}`, IsLatest, ETag: '"9b2cf535f27731c974343645a3985328"', Size, LastModified: at, Owner: OWNER, ...(StorageClass ? { StorageClass: StorageClass as 'STANDARD' } : {}) });
    const requests: Array<Pick<ListObjectVersionsCommandInput, 'Prefix' | 'KeyMarker' | 'VersionIdMarker'>> = [];
    s3.on(ListObjectVersionsCommand).callsFake(async (input: ListObjectVersionsCommandInput) => {
      requests.push({ Prefix: input.Prefix, KeyMarker: input.KeyMarker, VersionIdMarker: input.VersionIdMarker });
      const common = { Name: 'orders-backups', Prefix: input.Prefix, MaxKeys: 3, $metadata: { httpStatusCode: 200 } };
      if (!input.KeyMarker) {
        return {
          ...common,
          IsTruncated: true,
          Versions: [v('pgbackrest/backup/orders/20261120-030000F/pg_data/base/1/1259.zst', 40000, 'STANDARD', true), v('pgbackrest/backup/orders/20261120-030000F/pg_data/base/1/1259.zst', 39000, 'STANDARD', false)],
          // A delete marker has no size and costs nothing.
          DeleteMarkers: [{ Key: 'pgbackrest/backup/orders/old.manifest', VersionId: 'null', IsLatest: true, LastModified: at, Owner: OWNER }],
          NextKeyMarker: 'pgbackrest/backup/orders/old.manifest',
          NextVersionIdMarker: 'null',
        };
      }
      return {
        ...common,
        IsTruncated: false,
        KeyMarker: input.KeyMarker,
        VersionIdMarker: input.VersionIdMarker,
        Versions: [v('pgbackrest/backup/orders/20261001-030000F/pg_data/base/1/1259.zst', 300000, 'GLACIER_IR', true), v('pgbackrest/backup/orders/20261101-030000F/backup.manifest', 5000, 'STANDARD_IA', true), v('pgbackrest/backup/orders/x', 7, undefined, true)],
      };
    });
    const usage = await bytesUnderPrefix(client, 'orders-backups', 'pgbackrest/backup/orders/');
    assert.deepEqual(usage, { bytes: { STANDARD: 79007, GLACIER_IR: 300000, STANDARD_IA: 5000 }, versions: 5 });
    assert.deepEqual(requests, [
      { Prefix: 'pgbackrest/backup/orders/', KeyMarker: undefined, VersionIdMarker: undefined },
      { Prefix: 'pgbackrest/backup/orders/', KeyMarker: 'pgbackrest/backup/orders/old.manifest', VersionIdMarker: 'null' },
    ]);
  });
});

describe('lifeboat storage: bad input (no server)', () => {
  it('refuses a region that is not primary or dr: one sentence, exit 2, nothing read', async () => {
    const r = await lifeboat(['storage', '--region', 'eu-west-1']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr.trim(), /^lifeboat: --region takes primary or dr, not "eu-west-1"\.$/);
  });

  it('refuses a target the config does not name, with a guess: exit 2', async () => {
    const r = await lifeboat(['storage', '--target', 'ap']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /"ap".*did you mean "app"\?/);
  });

  it('refuses a budget that is not a whole number of bytes, naming the key: exit 2', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-storage-'));
    try {
      const file = path.join(dir, 'lifeboat.config.yaml');
      fs.writeFileSync(file, fs.readFileSync(EXAMPLE_CONFIG_FILE, 'utf8').replace('budgetBytes: 10737418240', 'budgetBytes: 10GB'));
      const r = await lifeboat(['storage', '--config', file]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /storage\.budgetBytes.*must be a whole number \(got "10GB"\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
