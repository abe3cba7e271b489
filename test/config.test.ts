import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import {
  ConfigError,
  LifeboatConfig,
  findBucketTarget,
  findDatabaseTarget,
  formatConfigDuration,
  loadConfig,
  mayApprove,
  objectivesFor,
  parseConfig,
  parseDuration,
  renderConfigDocs,
  resolveSecret,
  interpolateConfigText,
} from '../src/config';
import { configDocsPath } from '../src/config/docs';
import { LifeboatError } from '../src/domain/errors';
import { SAMPLE_APP_TABLES } from '../src/stack/sample-app';
import { loadStackSettings, stackPaths } from '../src/stack/settings';

// Compiled to lib/test/: the repository root is two levels up.
const repoRoot = path.resolve(__dirname, '../..');
const DATA_DIR = '/srv/lifeboat-test';

/** A config document as the user writes it: untyped, so the tests can break it any way they like. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawDoc = Record<string, any>;

/** The smallest valid config: everything with a default left out. */
function minimal(): RawDoc {
  return {
    version: 1,
    environments: {
      production: { tier: 'production' },
      staging: { tier: 'non-production', selfApproval: true },
    },
    people: {
      'alice@example.com': ['incident-commander'],
      'bob@example.com': ['incident-commander', 'data-owner'],
      // A third commander: a production failover needs two approvers other than its requester.
      'erin@example.com': ['incident-commander'],
    },
    catalog: { host: 'catalog.internal' },
    evidence: { store: 'eu', bucket: 'acme-evidence' },
    objectStores: [
      { name: 'eu', region: 'eu-west-1' },
      { name: 'us', region: 'us-east-1' },
    ],
    targets: {
      databases: [
        {
          name: 'orders',
          environment: 'production',
          engine: 'pgbackrest',
          stanza: 'orders',
          pgDataDir: '/var/lib/postgresql/15/main',
          host: 'pg1.internal',
          database: 'orders',
          criticalTables: ['public.orders'],
        },
      ],
      buckets: [
        {
          name: 'uploads',
          environment: 'production',
          source: { store: 'eu', bucket: 'acme-uploads' },
          backup: { store: 'eu', bucket: 'acme-backups' },
          replica: { store: 'us', bucket: 'acme-uploads-dr' },
        },
      ],
    },
  };
}

const parse = (doc: unknown): LifeboatConfig => parseConfig(YAML.stringify(doc), 'test.yaml', { dataDir: DATA_DIR });

/** Every problem as `path: message`, or a failure if the document is valid. */
function problemsOf(doc: unknown): string[] {
  const text = typeof doc === 'string' ? doc : YAML.stringify(doc);
  try {
    parseConfig(text, 'test.yaml', { dataDir: DATA_DIR });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('the config was accepted, but it is invalid');
}

/** A fresh minimal config changed by `edit`. */
function edited(edit: (c: RawDoc) => void): RawDoc {
  const c = minimal();
  edit(c);
  return c;
}

describe('config', () => {
  describe('the example lifeboat.config.yaml', () => {
    let config: LifeboatConfig;
    // The example follows the same variables as the stack (${VAR:-default}), so compare with the live settings.
    const stack = loadStackSettings();
    before(() => {
      config = loadConfig(path.join(repoRoot, 'lifeboat.config.yaml'), { dataDir: DATA_DIR });
    });

    it('loads, with {dataDir} expanded in paths', () => {
      const app = findDatabaseTarget(config, 'app');
      assert.equal(app.engine, 'pgbackrest');
      assert.ok(app.engine === 'pgbackrest');
      assert.equal(app.configPath, `${DATA_DIR}/pgbackrest/pgbackrest.conf`);
      assert.deepEqual(
        config.objectStores.map((s) => s.caFile),
        [`${DATA_DIR}/tls/ca.crt`, `${DATA_DIR}/tls/ca.crt`],
      );
      assert.equal(config.environments.production.selfApproval, false);
      assert.equal(config.environments.staging.selfApproval, true);
    });

    it('describes the embedded local stack with its default settings', () => {
      const app = findDatabaseTarget(config, 'app');
      assert.ok(app.engine === 'pgbackrest');
      assert.equal(app.stanza, stack.pgbackrest.stanza);
      assert.equal(app.host, stack.host);
      assert.equal(app.port, stack.postgres.primaryPort);
      assert.equal(app.database, stack.postgres.appDatabase);
      assert.equal(app.user, stack.postgres.superuser);
      assert.deepEqual(app.criticalTables, [...SAMPLE_APP_TABLES]);
      assert.deepEqual(app.cutover && { dnsName: app.cutover.dnsName, router: app.cutover.router }, { dnsName: stack.dns.appDbName, router: 'local-dns' });

      const [primary, dr] = config.objectStores;
      assert.deepEqual([primary.name, primary.region, primary.endpoint], ['primary', stack.minio.primary.region, `https://${stack.host}:${stack.minio.primary.port}`]);
      assert.deepEqual([dr.name, dr.region, dr.endpoint], ['dr', stack.minio.dr.region, `https://${stack.host}:${stack.minio.dr.port}`]);
      // The secrets `lifeboat stack up` writes into the data directory, by reference.
      const secrets = stackPaths({ ...stack, dataDir: DATA_DIR });
      assert.equal(primary.credentials?.accessKeyId, `file:${secrets.secret('minio-access-key')}`);
      assert.equal(dr.credentials?.secretAccessKey, `file:${secrets.secret('minio-secret-key')}`);

      const files = findBucketTarget(config, 'app-files');
      assert.deepEqual(files.source, { store: 'primary', bucket: stack.minio.primary.filesBucket });
      assert.deepEqual(files.replica, { store: 'dr', bucket: stack.minio.dr.filesBucket });
      assert.equal(files.backup.bucket, stack.minio.primary.backupBucket);
      assert.deepEqual(config.evidence, { store: 'primary', bucket: stack.minio.primary.evidenceBucket, prefix: '', drStore: 'dr', drBucket: stack.minio.dr.evidenceBucket, retentionDays: 400, lockMode: 'GOVERNANCE' });

      assert.deepEqual(
        { host: config.catalog.host, port: config.catalog.port, database: config.catalog.database, user: config.catalog.user },
        { host: stack.host, port: stack.postgres.catalogPort, database: stack.postgres.catalogDatabase, user: stack.postgres.superuser },
      );
      assert.equal(config.temporal.address, `${stack.host}:${stack.temporal.port}`);
      assert.equal(config.temporal.namespace, stack.temporal.namespace);

      const router = config.trafficRouters[0];
      assert.ok(router.kind === 'powerdns');
      assert.equal(router.zone, stack.dns.zone);
      assert.equal(router.apiUrl, `http://${stack.host}:${stack.dns.apiPort}`);
      assert.deepEqual(router.dnsServer, { host: stack.host, port: stack.dns.port });
      assert.equal(router.apiKey, `file:${secrets.secret('dns-api-key')}`);
    });

    it('loads as JSON too, to the same result', () => {
      const text = fs.readFileSync(path.join(repoRoot, 'lifeboat.config.yaml'), 'utf8');
      // Interpolated first: `${VAR:-default}` is text substitution, before any YAML or JSON parsing.
      const json = JSON.stringify(YAML.parse(interpolateConfigText(text).text), null, 2);
      assert.deepEqual(parseConfig(json, 'lifeboat.config.json', { dataDir: DATA_DIR }), config);
    });
  });

  describe('defaults', () => {
    let config: LifeboatConfig;
    before(() => {
      config = parse(minimal());
    });

    it('fills RPO/RTO objectives, in seconds', () => {
      assert.deepEqual(config.objectives, {
        database: { rpo: 15 * 60, rto: 3600 },
        files: { rpo: 24 * 3600, rto: 3600 },
        fullSystem: { rto: 4 * 3600 },
      });
    });

    it('fills retention, schedules and approval timings', () => {
      assert.deepEqual(config.retention, { daily: 7, weekly: 4, monthly: 12 });
      assert.deepEqual(config.schedules, {
        database: { enabled: true, at: { hour: 3, minute: 0 }, daysOfWeek: [], daysOfMonth: [], months: [] },
        files: { enabled: true, at: { hour: 4, minute: 0 }, daysOfWeek: [], daysOfMonth: [], months: [] },
        full: { enabled: true, at: { hour: 1, minute: 0 }, daysOfWeek: ['sunday'], daysOfMonth: [], months: [] },
        drill: { enabled: true, at: { hour: 5, minute: 0 }, daysOfWeek: [], daysOfMonth: [1], months: [] },
        bucketDrill: { enabled: true, at: { hour: 5, minute: 30 }, daysOfWeek: [], daysOfMonth: [1], months: ['january', 'april', 'july', 'october'] },
        directoryDrill: { enabled: true, at: { hour: 5, minute: 45 }, daysOfWeek: [], daysOfMonth: [1], months: ['january', 'april', 'july', 'october'] },
        sqliteDrill: { enabled: true, at: { hour: 5, minute: 45 }, daysOfWeek: ['sunday'], daysOfMonth: [], months: [] },
        drillSweeper: { enabled: true, minute: 20 },
        instanceExpiry: { enabled: true, minute: 50 },
        compliance: { enabled: true, at: { hour: 6, minute: 0 }, daysOfWeek: ['monday'], daysOfMonth: [], months: [] },
        failoverDrill: { enabled: true, at: { hour: 2, minute: 0 }, daysOfWeek: [], daysOfMonth: [1], months: ['march', 'september'] },
      });
      assert.deepEqual(config.approvals, { remindAfter: 15 * 60, abortAfter: 2 * 3600 });
      assert.deepEqual(config.restoredInstances, { lifetime: 7 * 86400, noticeBefore: 86400 });
      assert.deepEqual(config.temporal, { address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'lifeboat' });
      assert.deepEqual(config.notifications, {});
      assert.deepEqual(config.trafficRouters, []);
    });

    it('fills environment gates and the self-approval rule', () => {
      assert.deepEqual(config.environments.production, {
        tier: 'production',
        selfApproval: false,
        unsignedDecisions: 'refuse',
        gates: { restore: ['incident-commander'], emergencyRestore: ['incident-commander'], cutover: ['incident-commander'], failover: ['incident-commander'], failback: ['incident-commander'], retire: ['incident-commander'], backupDeletion: ['incident-commander'], instanceRemoval: ['incident-commander'] },
        approvers: {},
      });
    });

    it('fills target defaults', () => {
      assert.deepEqual(findDatabaseTarget(config, 'orders'), {
        name: 'orders',
        environment: 'production',
        engine: 'pgbackrest',
        stanza: 'orders',
        host: 'pg1.internal',
        port: 5432,
        database: 'orders',
        user: 'postgres',
        verifyUser: 'lifeboat_verify',
        criticalTables: ['public.orders'],
        smokeQueries: [],
        sslMode: 'verify-full',
        configPath: '/etc/pgbackrest/pgbackrest.conf',
        pgDataDir: '/var/lib/postgresql/15/main',
        restoresDir: `${DATA_DIR}/restores`,
        restorePorts: { from: 55440, to: 55499 },
        drillPorts: { from: 55500, to: 55539 },
        drill: { validationSql: [], keepFor: 0, alternateRegions: false },
        primaryRepo: 1,
        drRepo: 2,
        drCopy: 'repository-copy',
      });
      assert.deepEqual(findBucketTarget(config, 'uploads').backup, { store: 'eu', bucket: 'acme-backups', prefix: '' });
      assert.deepEqual(findBucketTarget(config, 'uploads').legalHolds, []);
      assert.deepEqual(findBucketTarget(config, 'uploads').drill, { alternateRegions: false, hashAllUpTo: 1000, sample: 100 });
      assert.deepEqual(config.catalog, { host: 'catalog.internal', port: 5432, database: 'lifeboat_catalog', user: 'lifeboat', sslMode: 'verify-full' });
    });

    it('lets a target override the objectives of its kind', () => {
      const c = parse(
        edited((c) => {
          c.targets.databases[0].rpo = '5m';
        }),
      );
      assert.deepEqual(objectivesFor(c, findDatabaseTarget(c, 'orders')), { rpo: 300, rto: 3600 });
      assert.deepEqual(objectivesFor(c, findBucketTarget(c, 'uploads')), { rpo: 86400, rto: 3600 });
    });

    it('accepts an RDS target and fills its restore settings', () => {
      const c = parse(
        edited((c) => {
          c.targets.databases.push({
            name: 'billing',
            environment: 'staging',
            engine: 'rds',
            instanceId: 'billing-db',
            region: 'eu-west-1',
            drRegion: 'eu-central-1',
            drKmsKeyId: 'alias/lifeboat-dr',
            database: 'billing',
            criticalTables: ['invoices'],
            restore: { dr: { dbInstanceClass: 'db.m6g.large' } },
          });
        }),
      );
      const billing = findDatabaseTarget(c, 'billing');
      assert.ok(billing.engine === 'rds');
      assert.deepEqual([billing.instanceId, billing.region, billing.drRegion], ['billing-db', 'eu-west-1', 'eu-central-1']);
      assert.deepEqual(billing.restore, { primary: {}, dr: { dbInstanceClass: 'db.m6g.large' } });
    });
  });

  describe('durations', () => {
    it('parse to seconds', () => {
      const cases: Array<[string, number]> = [
        ['90s', 90],
        ['15m', 900],
        ['1h', 3600],
        ['24h', 86400],
        ['7d', 604800],
        ['2w', 1209600],
        ['1h30m', 5400],
      ];
      for (const [text, seconds] of cases) assert.equal(parseDuration(text), seconds, text);
    });

    it('refuse what has no unit or is not a duration', () => {
      for (const text of ['15', '1.5h', 'h', '', '15 m', '-1h', '1y', '1h 30m', 'PT1H']) assert.equal(parseDuration(text), undefined, JSON.stringify(text));
    });

    it('format back to their shortest spelling', () => {
      assert.deepEqual([900, 5400, 86400, 604800, 0].map(formatConfigDuration), ['15m', '1h30m', '1d', '1w', '0s']);
    });

    it('load as seconds wherever the file has one', () => {
      const c = parse(
        edited((c) => {
          c.approvals = { remindAfter: '90s', abortAfter: '1h30m' };
          c.objectives = { files: { rpo: '7d' } };
        }),
      );
      assert.deepEqual(c.approvals, { remindAfter: 90, abortAfter: 5400 });
      assert.equal(c.objectives.files.rpo, 604800);
    });
  });

  describe('errors', () => {
    // Each case breaks one thing in a valid file; the loader must report exactly that, at that path.
    const cases: Array<[string, (c: RawDoc) => void, string[]]> = [
      ['a missing required key', (c) => delete c.targets.databases[0].stanza, ['targets.databases[0].stanza: is required']],
      ['a wrong type', (c) => (c.retention = { daily: 'seven' }), ['retention.daily: must be a whole number (got "seven")']],
      ['an unknown engine', (c) => (c.targets.databases[0].engine = 'mysql'), ['targets.databases[0].engine: must be one of pgbackrest, rds (got "mysql")']],
      [
        'a malformed name',
        (c) => (c.targets.databases[0].name = 'Orders_DB'),
        ['targets.databases[0].name: must be lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen (at most 63) (got "Orders_DB")'],
      ],
      ['a number out of range', (c) => (c.targets.databases[0].port = 70000), ['targets.databases[0].port: must be at most 65535 (got 70000)']],
      ['a duration without unit', (c) => (c.objectives = { database: { rto: 60 } }), ['objectives.database.rto: must be a duration with a unit, like 15m, 1h, 24h or 7d (got 60)']],
      ['an RPO of zero', (c) => (c.objectives = { database: { rpo: '0m' } }), ['objectives.database.rpo: must be longer than zero (got "0m")']],
      ['a bad time of day', (c) => (c.schedules = { drill: { at: '3am' } }), ['schedules.drill.at: must be a 24-hour UTC time written HH:MM, like "03:00" (got "3am")']],
      ['an empty list that needs entries', (c) => (c.targets.databases[0].criticalTables = []), ['targets.databases[0].criticalTables: must list at least one entry']],
      ['a repeated list entry', (c) => (c.targets.databases[0].criticalTables = ['orders', 'orders']), ['targets.databases[0].criticalTables[1]: repeats "orders" from targets.databases[0].criticalTables[0]']],
      ['a malformed map key', (c) => (c.people.alice = ['incident-commander']), ['people.alice: is not a valid identity: it must be an email-style identity such as alice@example.com']],
      ['an unknown key, with a suggestion', (c) => (c.targets.databases[0].stanzza = 'x'), ['targets.databases[0].stanzza: unknown key; did you mean "stanza"?']],
      [
        'an unknown key, without a likely match',
        (c) => (c.retention = { yearly: 2 }),
        ['retention.yearly: unknown key (allowed here: daily, weekly, monthly)'],
      ],
      ['a key of the other engine', (c) => (c.targets.databases[0].drKmsKeyId = 'alias/x'), ['targets.databases[0].drKmsKeyId: is not used with engine pgbackrest (it belongs to engine rds)']],
      [
        'a secret written as a value',
        (c) => (c.catalog.password = 'hunter2'),
        ['catalog.password: must be a secret reference written `secretRef: env:NAME` or `secretRef: file:/absolute/path` (the path may start with {dataDir}) (got a plain string): secrets never go in this file, only where to read them'],
      ],
      ['a malformed secret reference', (c) => (c.catalog.password = { secretRef: 'vault:db' }), ['catalog.password.secretRef: must be env:NAME or file:/absolute/path (got "vault:db")']],
      [
        'a relative path',
        (c) => (c.targets.databases[0].configPath = 'pgbackrest.conf'),
        ['targets.databases[0].configPath: must be an absolute path, or start with a placeholder such as {dataDir} (got "pgbackrest.conf")'],
      ],
      ['an unknown path placeholder', (c) => (c.objectStores[0].caFile = '{home}/ca.crt'), ['objectStores[0].caFile: uses unknown placeholder {home} (known: {dataDir})']],
      ['a URL carrying credentials', (c) => (c.objectStores[0].endpoint = 'https://key:secret@s3.internal'), ['objectStores[0].endpoint: must not carry credentials: give them as secret references instead']],
      [
        'a duplicate target name across kinds',
        (c) => (c.targets.buckets[0].name = 'orders'),
        ['targets.buckets[0].name: "orders" is already the name of targets.databases[0]: names must be unique'],
      ],
      [
        'a target in an unknown environment',
        (c) => (c.targets.databases[0].environment = 'prod'),
        ['targets.databases[0].environment: environment "prod" is not declared in environments (known: production, staging)'],
      ],
      [
        'a bucket in an unknown object store',
        (c) => (c.targets.buckets[0].replica.store = 'uss'),
        ['targets.buckets[0].replica.store: object store "uss" is not declared in objectStores (known: eu, us; did you mean "us"?)'],
      ],
      [
        'a cutover through an undeclared router',
        (c) => (c.targets.databases[0].cutover = { dnsName: 'db.acme.com', router: 'dns' }),
        ['targets.databases[0].cutover.router: traffic router "dns" is not declared in trafficRouters (none is declared)'],
      ],
      [
        'a gate role nobody holds',
        (c) => (c.environments.staging.gates = { restore: ['dba'] }),
        ['environments.staging.gates.restore[0]: role "dba" is not held by anyone in people (known: incident-commander, data-owner)'],
      ],
      [
        'self-approval in production',
        (c) => (c.environments.production.selfApproval = true),
        ['environments.production.selfApproval: must be false in a production environment: production approvals need someone other than the requester'],
      ],
      ['an environment named production of another tier', (c) => (c.environments.production.tier = 'non-production'), ['environments.production.tier: must be production for the environment named production']],
      [
        'a production gate only one person can approve',
        (c) => (c.environments.production.gates = { cutover: ['data-owner'] }),
        [
          'environments.production.gates.cutover: only bob@example.com holds a role that approves this gate (data-owner), and production approvals need someone other than the requester: give a second person one of these roles',
        ],
      ],
      ['a reminder after the abort', (c) => (c.approvals = { remindAfter: '3h' }), ['approvals.remindAfter: must be shorter than abortAfter, or the gate aborts before anyone is reminded']],
      [
        'a full-system RTO shorter than a part',
        (c) => (c.objectives = { fullSystem: { rto: '30m' } }),
        ['objectives.fullSystem.rto: must be at least as long as objectives.database.rto and objectives.files.rto: the full system includes them'],
      ],
      [
        'a schedule with days of week and month',
        (c) => (c.schedules = { files: { daysOfWeek: ['monday'], daysOfMonth: [1] } }),
        ['schedules.files.daysOfMonth: cannot be combined with daysOfWeek: the schedule would run only on days matching both; keep one'],
      ],
      ['the same pgBackRest repository twice', (c) => (c.targets.databases[0].drRepo = 1), ['targets.databases[0].drRepo: must differ from primaryRepo (both are 1): the DR copy needs its own repository']],
      [
        'an RDS DR region equal to its own',
        (c) =>
          (c.targets.databases[0] = {
            name: 'orders',
            environment: 'production',
            engine: 'rds',
            instanceId: 'orders',
            region: 'eu-west-1',
            drRegion: 'eu-west-1',
            drKmsKeyId: 'alias/dr',
            database: 'orders',
            criticalTables: ['orders'],
          }),
        ['targets.databases[0].drRegion: must differ from region (both are eu-west-1): a copy in the same region does not survive losing it'],
      ],
      [
        'a replica in the source region',
        (c) => (c.objectStores[1].region = 'eu-west-1'),
        ['targets.buckets[0].replica.store: is in region eu-west-1 like the source: a replica in the same region does not survive losing it'],
      ],
      ['a backup into the source bucket', (c) => (c.targets.buckets[0].backup.bucket = 'acme-uploads'), ['targets.buckets[0].backup.bucket: must differ from the source bucket acme-uploads']],
      [
        'two bucket targets sharing backup prefixes',
        (c) =>
          c.targets.buckets.push({
            name: 'avatars',
            environment: 'staging',
            source: { store: 'eu', bucket: 'acme-avatars' },
            backup: { store: 'eu', bucket: 'acme-backups', prefix: 'avatars/' },
            replica: { store: 'us', bucket: 'acme-avatars-dr' },
          }),
        ['targets.buckets[1].backup.prefix: "avatars/" overlaps the backups of targets.buckets[0] (prefix "") in bucket acme-backups: give each target its own prefix'],
      ],
      [
        'a cutover name outside the router zone',
        (c) => {
          c.trafficRouters = [{ name: 'dns', kind: 'route53', zone: 'acme.com', hostedZoneId: 'Z0123456789ABC' }];
          c.targets.databases[0].cutover = { dnsName: 'db.acme.org', router: 'dns' };
        },
        ['targets.databases[0].cutover.dnsName: db.acme.org is outside zone acme.com of traffic router dns'],
      ],
      ...(
        [
          ['a smoke query that deletes', 'DELETE FROM orders', 'it starts with DELETE, not SELECT, WITH, VALUES or TABLE'],
          ['a smoke query with a second statement', 'SELECT 1; DROP TABLE orders', 'it holds more than one statement (a ";" before the end)'],
          ['a smoke query that writes through a CTE', 'WITH gone AS (DELETE FROM orders RETURNING id) SELECT id FROM gone', 'it contains DELETE'],
          ['a smoke query that updates through a CTE', 'WITH x AS (UPDATE orders SET status = $$x$$ RETURNING id) SELECT 1', 'it contains UPDATE'],
          ['a smoke query that merges', 'MERGE INTO orders o USING x ON o.id = x.id WHEN MATCHED THEN DELETE', 'it starts with MERGE, not SELECT, WITH, VALUES or TABLE'],
          ['a smoke query that creates a table from a SELECT', 'SELECT * INTO orders_copy FROM orders', 'it writes its result into a table (INTO)'],
          ['a smoke query that locks rows', 'SELECT id FROM orders FOR UPDATE', 'it locks rows (FOR UPDATE)'],
          ['a smoke query that copies in', "COPY orders FROM '/tmp/orders.csv'", 'it starts with COPY, not SELECT, WITH, VALUES or TABLE'],
          ['a smoke query that grants', 'GRANT ALL ON orders TO public', 'it starts with GRANT, not SELECT, WITH, VALUES or TABLE'],
          ['a smoke query that truncates', 'TRUNCATE orders', 'it starts with TRUNCATE, not SELECT, WITH, VALUES or TABLE'],
          ['a smoke query that alters', 'ALTER TABLE orders ADD COLUMN x int', 'it starts with ALTER, not SELECT, WITH, VALUES or TABLE'],
          ['a smoke query that advances a sequence', "SELECT nextval('orders_id_seq')", 'it calls nextval(), which changes state'],
        ] as const
      ).map(([what, sql, why]): [string, (c: RawDoc) => void, string[]] => [
        what,
        (c) => (c.targets.databases[0].smokeQueries = [{ name: 'check', sql }]),
        [`targets.databases[0].smokeQueries[0].sql: smoke query "check" is refused because ${why}: smoke queries run against restored copies and must only read, so rewrite it as a single SELECT or remove it`],
      ]),
      [
        'an unknown engine, with the keys every engine has still checked',
        (c) => Object.assign(c.targets.databases[0], { name: 'Orders_DB', environment: 'prod', engine: 'mysql' }),
        [
          'targets.databases[0].name: must be lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen (at most 63) (got "Orders_DB")',
          'targets.databases[0].environment: environment "prod" is not declared in environments (known: production, staging)',
          'targets.databases[0].engine: must be one of pgbackrest, rds (got "mysql")',
        ],
      ],
      [
        'an unknown router kind, whose name still counts',
        (c) => {
          c.trafficRouters = [{ name: 'dns', kind: 'bind', zone: 'acme.com' }];
          c.targets.databases[0].cutover = { dnsName: 'db.acme.com', router: 'dns' };
        },
        ['trafficRouters[0].kind: must be one of powerdns, route53 (got "bind")'],
      ],
      ['no targets at all', (c) => (c.targets = {}), ['targets: declares no database or bucket target: add at least one, or lifeboat has nothing to protect']],
      ['a wrong version', (c) => (c.version = 2), ['version: must be 1 (got 2)']],
    ];

    for (const [what, edit, expected] of cases) {
      it(`reports ${what} with its path`, () => {
        assert.deepEqual(problemsOf(edited(edit)), expected);
      });
    }

    it('lists every problem at once, in file order, with lines', () => {
      const text = [
        'version: 1',
        'environments:',
        '  production: { tier: production }',
        'people:',
        '  alice@example.com: [incident-commander]',
        '  bob@example.com: [incident-commander]',
        '  erin@example.com: [incident-commander]',
        'objectives:',
        '  database: { rpo: 0m }',
        'catalog: { host: db }',
        'evidence: { store: eu, bucket: acme-evidence }',
        'objectStores:',
        '  - { name: eu, region: eu-west-1 }',
        'targets:',
        '  databases:',
        '    - { name: a, environment: production, engine: pgbackrest, stanza: a, host: h, database: a, pgDataDir: /pg/a, criticalTables: [t] }',
        '    - { name: b, environment: production, engine: mysql, database: b, criticalTables: [t] }',
        'retension: { daily: 3 }',
        '',
      ].join('\n');
      let error: unknown;
      try {
        parseConfig(text, 'lifeboat.config.yaml');
      } catch (err) {
        error = err;
      }
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(
        error.problems.map((p) => [p.line, `${p.path}: ${p.message}`]),
        [
          [9, 'objectives.database.rpo: must be longer than zero (got "0m")'],
          [17, 'targets.databases[1].engine: must be one of pgbackrest, rds (got "mysql")'],
          [18, 'retension: unknown key; did you mean "retention"?'],
        ],
      );
      assert.ok(error.message.startsWith('lifeboat.config.yaml has 3 problems; lifeboat will not run until they are fixed:\n'), error.message);
      assert.ok(error.message.includes('  - targets.databases[1].engine: must be one of pgbackrest, rds (got "mysql") (lifeboat.config.yaml:17:'), error.message);
      assert.ok(error instanceof LifeboatError);
      assert.equal(error.code, 'CONFIG_INVALID');
      assert.equal(error.nonRetryable, true);
    });

    it('accepts read-only smoke queries, whatever their literals and comments say, and names a writing one with its line', () => {
      const readOnly = [
        'SELECT id FROM orders ORDER BY placed_at DESC LIMIT 10',
        'SELECT 1;',
        "SELECT 'DELETE FROM orders; DROP TABLE x' AS note -- not SQL: INSERT",
        'WITH recent AS (SELECT id FROM orders LIMIT 5) SELECT count(*) FROM recent',
        'SELECT /* a nested /* ; */ comment; UPDATE */ "update", $q$; TRUNCATE$q$ FROM orders',
        'VALUES (1)',
        'TABLE orders',
        '(SELECT 1) UNION (SELECT 2)',
      ];
      const c = parse(edited((d) => (d.targets.databases[0].smokeQueries = readOnly.map((sql, i) => ({ name: `q${i}`, sql })))));
      assert.deepEqual(findDatabaseTarget(c, 'orders').smokeQueries.map((q) => q.sql), readOnly);

      const text = YAML.stringify(edited((d) => (d.targets.databases[0].smokeQueries = [{ name: 'fine', sql: 'SELECT 1' }, { name: 'purge', sql: 'SELECT 1; DELETE FROM orders' }])));
      const line = text.split('\n').findIndex((l) => l.includes('DELETE FROM orders')) + 1;
      assert.throws(
        () => parseConfig(text, 'lifeboat.config.yaml', { dataDir: DATA_DIR }),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.problems.length === 1 &&
          err.problems[0].line === line &&
          err.message.includes(`targets.databases[0].smokeQueries[1].sql: smoke query "purge" is refused because it holds more than one statement`) &&
          err.message.includes(`(lifeboat.config.yaml:${line}:`),
      );
    });

    it('refuses unknown keys anywhere, a typo at the top level included', () => {
      // Listed in file order: the new top-level key is written last.
      assert.deepEqual(
        problemsOf(
          edited((c) => {
            c.schedule = { drill: { at: '02:00' } };
            c.objectStores[0].endpont = 'https://s3.internal';
            c.environments.production.gates = { restor: ['incident-commander'] };
          }),
        ),
        [
          'environments.production.gates.restor: unknown key; did you mean "restore"?',
          'objectStores[0].endpont: unknown key; did you mean "endpoint"?',
          'schedule: unknown key; did you mean "schedules"?',
        ],
      );
    });

    it('reports YAML syntax errors and duplicate keys with their line', () => {
      let error: unknown;
      try {
        parseConfig('version: 1\npeople:\n  a@b.c: [x]\n  a@b.c: [y]\n', 'dup.yaml');
      } catch (err) {
        error = err;
      }
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(
        error.problems.map((p) => [p.path, p.line, p.message]),
        [['(YAML)', 4, 'Map keys must be unique: fix the syntax']],
      );
      assert.throws(() => parseConfig('targets: [1\nversion: 1\n', 'broken.yaml'), (err: unknown) => err instanceof ConfigError && err.problems.every((p) => p.path === '(YAML)' && p.line !== undefined));
    });

    it('refuses an empty file and a missing one with what to do', () => {
      assert.deepEqual(problemsOf(''), ['(top level): the file is empty: start from lifeboat.config.yaml at the root of the lifeboat repository']);
      const missing = path.join(os.tmpdir(), 'lifeboat-no-such-config.yaml');
      assert.throws(
        () => loadConfig(missing),
        (err: unknown) => err instanceof LifeboatError && err.code === 'CONFIG_UNREADABLE' && err.message.includes(`${missing} (ENOENT)`),
      );
    });
  });

  describe('the recovery plan (failover.steps)', () => {
    /** minimal() with a name to move and a plan over both targets. */
    const withPlan = (edit: (c: RawDoc) => void = () => undefined) =>
      edited((c) => {
        c.trafficRouters = [{ name: 'dns', kind: 'powerdns', zone: 'example.com.', drillZone: 'drill.example.com.', apiUrl: 'https://dns:8081', apiKey: { secretRef: 'env:K' }, dnsServer: { host: 'dns' } }];
        c.targets.databases[0].cutover = { dnsName: 'db.orders.example.com.', router: 'dns' };
        c.failover = {
          steps: [
            { name: 'db', kind: 'restore-database', target: 'orders' },
            { name: 'files', kind: 'switch-bucket', target: 'uploads' },
            { name: 'name', kind: 'move-name', target: 'orders', after: ['db'] },
            { name: 'app', kind: 'check-application', url: 'http://app.example.com/health', servesFrom: 'orders', after: ['name', 'files'] },
          ],
        };
        edit(c);
      });

    it('accepts a plan that can run, with its defaults', () => {
      const config = parse(withPlan());
      assert.deepEqual(config.failover?.steps.map((s) => [s.name, s.after]), [['db', []], ['files', []], ['name', ['db']], ['app', ['name', 'files']]]);
      assert.equal(config.failover?.steps[3].kind === 'check-application' && config.failover.steps[3].timeout, 300);
      assert.deepEqual(config.schedules.failoverDrill.months, ['march', 'september']);
    });

    it('refuses a cycle, naming the circle', () => {
      assert.deepEqual(problemsOf(withPlan((c) => (c.failover.steps[0].after = ['app']))), [
        'failover.steps: steps wait for each other in a circle (db -> app -> name -> db), so none of them could ever start: break the circle',
      ]);
    });

    it('refuses a step depending on a missing step or target, or on a target of the wrong kind', () => {
      assert.match(problemsOf(withPlan((c) => (c.failover.steps[2].after = ['dbb'])))[0], /failover.steps\[2\].after\[0\]: failover step "dbb" is not declared in failover.steps .*did you mean "db"/);
      assert.match(problemsOf(withPlan((c) => (c.failover.steps[0].target = 'payments')))[0], /failover.steps\[0\].target: target "payments" is not declared/);
      assert.deepEqual(problemsOf(withPlan((c) => (c.failover.steps[1].target = 'orders'))), [
        'failover.steps[1].target: names orders, which is not a bucket target, and a switch-bucket step works on a bucket: name one of uploads',
      ]);
    });

    it('refuses a name without a router or drill zone, and a move before its restore', () => {
      assert.deepEqual(problemsOf(withPlan((c) => delete c.targets.databases[0].cutover)), [
        'failover.steps[2].target: orders has no DNS name to move (no `cutover` block with dnsName and router): add one to the target, or drop this step',
      ]);
      assert.match(problemsOf(withPlan((c) => delete c.trafficRouters[0].drillZone)).join('\n'), /router dns, which has no drillZone, so failover drills could not rehearse this step without writing a production name/);
      assert.deepEqual(problemsOf(withPlan((c) => (c.failover.steps[2].after = []))), [
        'failover.steps[2].after: must wait for db (the restore of orders), or the name would move before the instance exists: add it to after',
      ]);
      assert.match(problemsOf(withPlan((c) => {
            c.failover.steps.splice(0, 1);
            c.failover.steps[1].after = [];
          })).join('\n'), /no restore-database step restores orders: add one/);
    });

    it('refuses a drill command or URL with a placeholder a drill does not fill', () => {
      const drill = (command: string[], url = 'http://127.0.0.1:{port}/health') => withPlan((c) => (c.failover.steps[3].drill = { command, url }));
      const accepted = parse(drill(['app', '--port', '{port}', '--db', '{name:orders}', '--dns', '{dnsServer}'])).failover?.steps[3];
      assert.deepEqual(accepted?.kind === 'check-application' && accepted.drill?.command, ['app', '--port', '{port}', '--db', '{name:orders}', '--dns', '{dnsServer}']);
      assert.deepEqual(problemsOf(drill(['app', '--db', '{name:payments}'], 'http://127.0.0.1:{prot}/health')), [
        'failover.steps[3].drill.command[2]: uses {name:payments}, but no move-name step of the plan moves payments, so a drill writes no drill name for it: add that step or name a moved database',
        'failover.steps[3].drill.url: uses {prot}, but a drill fills only {port}, {dnsServer} and {name:<database>}: use one of them',
      ]);
    });

    it('refuses an application check that could run before the names move', () => {
      assert.deepEqual(problemsOf(withPlan((c) => (c.failover.steps[3].after = ['files']))), [
        'failover.steps[3].after: does not wait for name, so it could check the application before its names move: add them to after',
      ]);
    });
  });

  describe('lookups', () => {
    let config: LifeboatConfig;
    before(() => {
      config = parse(minimal());
    });

    it('findDatabaseTarget names the known targets when the name is unknown', () => {
      assert.equal(findDatabaseTarget(config, 'orders').name, 'orders');
      assert.throws(() => findDatabaseTarget(config, 'ordres'), { name: 'LifeboatError', message: 'No database target is named "ordres" (did you mean "orders"?); the config declares orders.' });
      assert.throws(() => findDatabaseTarget(config, 'billing'), { message: 'No database target is named "billing"; the config declares orders.' });
      assert.throws(() => findDatabaseTarget(config, 'uploads'), { message: '"uploads" is a bucket target, not a database target; the database targets are: orders.' });
    });

    it('mayApprove holds production to a second person and checks roles', () => {
      const ask = (environment: string, approver: string, requester: string) => mayApprove(config, { environment, gate: 'restore', approver, requester });
      assert.deepEqual(ask('production', 'alice@example.com', 'bob@example.com'), { ok: true });
      assert.deepEqual(ask('production', 'alice@example.com', 'alice@example.com'), {
        ok: false,
        reason: 'alice@example.com requested this and cannot approve it in production: someone else must',
      });
      assert.deepEqual(ask('staging', 'alice@example.com', 'alice@example.com'), { ok: true });
      assert.deepEqual(ask('staging', 'mallory@example.com', 'alice@example.com'), {
        ok: false,
        reason: 'mallory@example.com does not hold a role that approves the restore gate in staging (incident-commander)',
      });
    });

    it('resolveSecret reads environment variables and files, and says what is missing', () => {
      assert.equal(resolveSecret('env:LB_TEST_SECRET', { LB_TEST_SECRET: 's3cr3t' }), 's3cr3t');
      assert.throws(() => resolveSecret('env:LB_TEST_SECRET', {}), { message: "The secret reference env:LB_TEST_SECRET points at an unset environment variable: set LB_TEST_SECRET in the worker's environment." });
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-config-'));
      try {
        fs.writeFileSync(path.join(dir, 'token'), 'from-file\n', { mode: 0o600 });
        assert.equal(resolveSecret(`file:${dir}/token`), 'from-file');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('docs/config.md', () => {
    it('is up to date with the schema (regenerate: node lib/src/config/docs.js)', () => {
      const committed = fs.readFileSync(configDocsPath(repoRoot), 'utf8');
      assert.equal(committed, renderConfigDocs());
    });

    it('documents every key with its default', () => {
      const docs = renderConfigDocs();
      for (const row of [
        '| `objectives.database.rpo` | duration | `15m` |',
        '| `objectives.fullSystem.rto` | duration | `4h` |',
        '| `retention.monthly` | integer | `12` |',
        '| `schedules.drill.months` | list, each one of',
        '| `targets.databases[].engine` | one of `pgbackrest`, `rds` | **required** |',
        '| `targets.databases[].drKmsKeyId` | string | **required** |',
        '| `notifications.webhook.url` | secret reference | **required** |',
      ]) {
        assert.ok(docs.includes(row), `docs/config.md lacks a row starting ${row}`);
      }
    });
  });
});

