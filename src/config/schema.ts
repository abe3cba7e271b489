/**
 * The lifeboat config file, declared once on zod (through the builders in fields.ts). Every
 * field's type, default, constraints and description live here; validation, default filling,
 * the TypeScript types below, docs/config.md and the JSON Schema editors use
 * (schema/lifeboat.config.schema.json) all come from this declaration. Defaults are written as
 * in the file ("15m", "{dataDir}/restores") and decoded like a value the user wrote.
 * To add an option: declare it here, run `node lib/src/config/docs.js`, commit what it writes.
 */
import { z } from 'zod';
import { PathSegment, Rule, SecretRef, TimeOfDay, t } from './fields';
import { dependenciesOf, graphProblems } from '../domain/recovery-plan';
import { whyNotReadOnly } from './read-only-sql';
import { defaultRequiredApprovals, GateName, normalizeIdentity, quorumProblem } from '../domain/approval';
import { parseEd25519PublicKey } from './public-key';

// ----- shared shapes --------------------------------------------------------------------------

const NAME = {
  pattern: /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
  hint: 'lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen (at most 63)',
};
const ROLE = { pattern: NAME.pattern, hint: 'a role name: lowercase letters, digits and hyphens, such as incident-commander' };
const IDENTITY = { pattern: /^[^\s@]+@[^\s@]+\.[^\s@]+$/, hint: 'an email-style identity such as alice@example.com' };
const BUCKET = {
  pattern: /^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
  hint: 'an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit',
};
const PREFIX = { pattern: /^(?!\/)[^\n]*$/, hint: 'an object key prefix that does not start with "/"' };
const TABLE = {
  pattern: /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/,
  hint: 'a table name, optionally schema-qualified, such as orders or public.orders',
};
const DNS_NAME = {
  pattern: /^(?=.{1,254}$)([A-Za-z0-9_](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/,
  hint: 'a fully qualified DNS name such as db.app.example.com (a trailing dot is optional)',
};
const AWS_REGION = { pattern: /^[a-z]{2}(?:-[a-z]+)+-\d+$/, hint: 'an AWS region such as eu-west-1' };
const RDS_INSTANCE = {
  pattern: /^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}$/,
  hint: 'an RDS DB instance identifier: 1 to 63 letters, digits or hyphens, starting with a letter, without two hyphens in a row',
};
const HOST_PORT = { pattern: /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$/, hint: 'host:port, such as 127.0.0.1:7233' };
const PORT = { min: 1, max: 65535 };
const KEY_ID = { pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, hint: 'a key id: letters, digits, dots, underscores and hyphens, such as 2026-11 (at most 64)' };

const stripDot = (name: string) => name.replace(/\.$/, '').toLowerCase();

const environmentRef = (description: string) =>
  t.ref({ description, to: 'environments', noun: 'environment', where: 'declared in environments' });
const storeRef = (description: string) => t.ref({ description, to: 'objectStores', noun: 'object store', where: 'declared in objectStores' });
const targetName = (description: string) =>
  t.string({ description, ...NAME, defines: { collection: 'targets', unique: true, label: 'all database and bucket targets' } });

const bucketLocation = (description: string) =>
  t.object(
    {
      store: storeRef('The object store (from `objectStores`) that holds the bucket.'),
      bucket: t.string({ description: 'Bucket name in that store.', ...BUCKET }),
    },
    { description },
  );

const objectiveOverride = {
  rpo: t
    .duration({ description: 'Recovery point objective for this target, overriding `objectives` for its kind: the most data loss acceptable.' })
    .optional(),
  rto: t
    .duration({ description: 'Recovery time objective for this target, overriding `objectives` for its kind: the longest acceptable time to restore it.' })
    .optional(),
};

const gateRoles = (gate: string) =>
  t
    .list(t.ref({ description: 'A role.', to: 'roles', noun: 'role', where: 'held by anyone in people' }), {
      description: `Roles that may approve the ${gate} gate; any one of them is enough.`,
      minItems: 1,
      unique: true,
    })
    .prefault(['incident-commander']);

const approverCount = (gate: string, byDefault = '1') =>
  t
    .integer({
      description: `Distinct people who must approve the ${gate} gate, each holding one of its roles. Default: ${byDefault}.`,
      min: 1,
    })
    .optional();

const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'] as const;

interface ScheduleDefaults {
  at: string;
  daysOfWeek?: (typeof WEEKDAYS)[number][];
  daysOfMonth?: number[];
  months?: (typeof MONTHS)[number][];
}

/** One Temporal Schedule calendar, with the defaults of the workflow it starts. */
const schedule = (description: string, defaults: ScheduleDefaults) =>
  t.object(
    {
      enabled: t.boolean('Whether the schedule runs; `false` keeps it declared but paused.').prefault(true),
      at: t.timeOfDay('Time of day the run starts, in UTC.').prefault(defaults.at),
      daysOfWeek: t
        .list(t.oneOf(WEEKDAYS, 'A day of the week.'), { description: 'Days of the week it runs on; empty means every day.', unique: true })
        .prefault(defaults.daysOfWeek ?? []),
      daysOfMonth: t
        .list(t.integer({ description: 'A day of the month.', min: 1, max: 31 }), { description: 'Days of the month it runs on; empty means every day.', unique: true })
        .prefault(defaults.daysOfMonth ?? []),
      months: t
        .list(t.oneOf(MONTHS, 'A month.'), { description: 'Months it runs in; empty means every month.', unique: true })
        .prefault(defaults.months ?? []),
    },
    {
      description,
      rules: [
        {
          says: 'A schedule names days of the week or days of the month, not both (a calendar with both runs only on days matching both).',
          check(s, report) {
            if (s.daysOfWeek.length && s.daysOfMonth.length) report('daysOfMonth', 'cannot be combined with daysOfWeek: the schedule would run only on days matching both; keep one');
          },
        },
      ],
    },
  );

/** The procedures' drill cadences: databases monthly, buckets quarterly (first day, early morning UTC). */
const DATABASE_DRILL_DEFAULTS: ScheduleDefaults = { at: '05:00', daysOfMonth: [1] };
const FAILOVER_DRILL_DEFAULTS: ScheduleDefaults = { at: '02:00', daysOfMonth: [1], months: ['march', 'september'] };
const BUCKET_DRILL_DEFAULTS: ScheduleDefaults = { at: '05:30', daysOfMonth: [1], months: ['january', 'april', 'july', 'october'] };
/** Configuration directories are drilled quarterly too, after the buckets (their archives are small: minutes). */
const DIRECTORY_DRILL_DEFAULTS: ScheduleDefaults = { at: '05:45', daysOfMonth: [1], months: ['january', 'april', 'july', 'october'] };
/**
 * SQLite targets weekly (Sunday): their backups are taken before risky operations, at moments
 * nobody schedules, so the restore path must be known good at any time; a drill costs seconds.
 */
const SQLITE_DRILL_DEFAULTS: ScheduleDefaults = { at: '05:45', daysOfWeek: ['sunday'] };

/** When a target's drills run: its kind's schedule unless `cadence` says otherwise, from one region or both in turn. */
const drillScheduleFields = (kind: string, defaults: ScheduleDefaults) => ({
  cadence: schedule(`When this ${kind}'s drills run, instead of \`schedules.${kind === 'database' ? 'drill' : kind === 'SQLite database' ? 'sqliteDrill' : 'bucketDrill'}\`; fields left out take that kind's defaults.`, defaults).optional(),
  alternateRegions: t
    .boolean('Alternate the region drilled from: the primary copy on every other scheduled drill, the DR copy on the others (two schedules splitting the months), so both copies are proven.')
    .prefault(false),
});

/** A target's drill settings: its schedule fields and what the kind's drill adds. */
const drillSettings = <Extra extends z.ZodRawShape = Record<never, never>>(kind: string, defaults: ScheduleDefaults, extra: Extra = {} as Extra) =>
  t
    .object({ ...extra, ...drillScheduleFields(kind, defaults) }, { description: `Restore drills of this ${kind}.` })
    // Every field has its default, so an absent block is an empty one.
    .prefault({} as never);

/** TLS to a Postgres server: libpq's sslmode and root certificate, for node-postgres and libpq programs alike. */
const pgTlsFields = (server: string, rootCertNote = '') => ({
  sslMode: t
    .oneOf(
      ['disable', 'require', 'verify-ca', 'verify-full'],
      `TLS to ${server}, as libpq's sslmode: verify-full checks the certificate chains to \`sslRootCert\` and names the host; verify-ca skips the name; require encrypts without checking; disable is plain text. allow and prefer (plain-text fallbacks) are not offered.`,
    )
    .prefault('verify-full'),
  sslRootCert: t.path({ description: `PEM file of the CA that signs ${server}'s certificate (default: the system's CAs).${rootCertNote}` }).optional(),
});

/** `allowInsecure: true` on an endpoint is the only way to use plain http there. */
const allowInsecure = (what: string) => t.boolean(`Allow plain http for ${what}; without it an http URL is refused. For local test stacks only.`).prefault(false);

const secretRef = (what: string) => t.secret(`${what}, read at run time from where the reference points.`);

// ----- targets --------------------------------------------------------------------------------

const rdsRestoreSettings = (region: string) =>
  t.object(
    {
      dbInstanceClass: t.string({ description: 'Instance class, such as db.m6g.large (default: the source\'s).' }).optional(),
      dbSubnetGroupName: t.string({ description: 'DB subnet group restored instances join.' }).optional(),
      vpcSecurityGroupIds: t.list(t.string({ description: 'A security group id.' }), { description: 'VPC security groups of restored instances.' }).optional(),
      dbParameterGroupName: t.string({ description: 'Parameter group of restored instances.' }).optional(),
      multiAZ: t.boolean('Restore as a Multi-AZ instance.').optional(),
      publiclyAccessible: t.boolean('Give restored instances a public address.').optional(),
      fenceSecurityGroupIds: t
        .list(t.string({ description: 'A security group id.' }), {
          description: 'Security groups without inbound rules, in the VPC of instances restored here: a failback fences the DR primary by moving it into them (RDS has no read-only switch).',
        })
        .optional(),
    },
    { description: `Where and how instances restored in the ${region} region are created.` },
  );

const databaseTarget = t.union(
  'engine',
  {
    name: targetName('Name of the target, used in commands, workflow ids, reports and the names of restored instances.'),
    environment: environmentRef('Environment the database belongs to; its approval rules apply to every restore and failover of it.'),
    database: t.string({ description: 'Database the checks connect to.' }),
    user: t.string({ description: 'Database role the checks connect as.' }).prefault('postgres'),
    password: secretRef('Password of `user`').optional(),
    verifyUser: t
      .string({
        description:
          'Role that verifications, source facts and smoke queries connect as; it must not be a superuser. Create it once on the source (restored copies inherit it): `CREATE ROLE lifeboat_verify LOGIN; GRANT pg_read_all_data TO lifeboat_verify;`.',
      })
      .prefault('lifeboat_verify'),
    verifyPassword: secretRef('Password of `verifyUser`').optional(),
    ...pgTlsFields(
      'the database (its source, and the instances restored from it, which serve the certificate their backup holds)',
      // The system's CAs do not include Amazon's RDS CAs, so the default verify-full fails on every RDS connection without it.
      ' An `rds` target under `verify-full` or `verify-ca` needs it: the system\'s CAs do not include the RDS certificate authorities, so set it to the RDS CA bundle, the global one (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem, every region\'s CAs: a failover restores in the DR region). RDS serves a certificate naming the instance endpoint, which is what lifeboat connects to, so verify-full holds.',
    ),
    criticalTables: t.list(t.string({ description: 'A table.', ...TABLE }), {
      description: 'Tables whose presence, row counts and checksums every verification and drill compares with the source.',
      minItems: 1,
      unique: true,
    }),
    smokeQueries: t
      .list(
        t.object(
          {
            name: t.string({ description: 'Name of the query in reports.', ...NAME }),
            sql: t.string({
              description:
                'One read-only SQL statement (SELECT, WITH, VALUES or TABLE); the check passes when it runs without error and returns at least one row. It runs over the extended protocol in a read-only transaction as `verifyUser`.',
            }),
          },
          {
            description: 'A smoke test.',
            rules: [
              {
                says: 'A smoke query must be one statement that only reads: no INSERT, UPDATE, DELETE, MERGE, DDL, COPY, SELECT ... INTO, FOR UPDATE/SHARE, state-changing functions or second statement.',
                check(q, report) {
                  const why = whyNotReadOnly(q.sql);
                  if (why) report('sql', `smoke query ${JSON.stringify(q.name)} is refused because ${why}: smoke queries run against restored copies and must only read, so rewrite it as a single SELECT or remove it`);
                },
              },
            ],
          },
        ),
        { description: 'Queries run against every restored copy before it is called good.' },
      )
      .prefault([]),
    cutover: t
      .object(
        {
          dnsName: t.string({ description: 'The DNS name applications connect to; cutover points it at the restored instance.', ...DNS_NAME }),
          router: t.ref({ description: 'Traffic router (from `trafficRouters`) that serves the name.', to: 'trafficRouters', noun: 'traffic router', where: 'declared in trafficRouters' }),
          ttl: t.duration({ description: 'TTL of the records cutover writes.' }).prefault('60s'),
        },
        { description: 'How applications find the database; without it, restores and failovers of this target cannot cut over.' },
      )
      .optional(),
    logicalBackup: t
      .object(
        {
          store: storeRef('The object store (from `objectStores`) logical dumps are written to, in the primary region.'),
          bucket: t.string({ description: 'Bucket the dumps are written to.', ...BUCKET }),
          prefix: t.string({ description: 'Key prefix of the dumps; each is `<prefix><target>/<backup name>.dump.gz.enc`.', ...PREFIX, minLength: 0 }).prefault('logical/'),
          encryptionKey: secretRef('The AES-256 key dumps are encrypted with (32 bytes as 64 hex characters or base64; make one with `openssl rand -hex 32`): the keyring\'s current key, which every new dump is written with. Only its fingerprint (key id) is ever recorded'),
          previousEncryptionKeys: t
            .list(
              t.object(
                {
                  keyId: t.string({ description: 'The key\'s id: the 16 hex characters `lifeboat decrypt --key-id` prints for it and dumps record; checked against the key when it is loaded.', pattern: /^[0-9a-f]{16}$/, hint: '16 lowercase hex characters, such as 3f2a9c0d1b4e5a67' }),
                  key: secretRef('The retired key (32 bytes as 64 hex characters or base64)'),
                },
                { description: 'A key dumps were once written with.' },
              ),
              { description: 'The rest of the keyring: keys rotated out of `encryptionKey`, kept so dumps written with them stay readable (restores, verification, `lifeboat decrypt`). New dumps never use them.' },
            )
            .prefault([]),
          dr: bucketLocation('Where each dump is copied in the disaster-recovery region, under the same prefix.'),
          restoreJobs: t
            .integer({
              description:
                'Parallel jobs of a logical restore (`pg_restore --jobs`). 0 (the default): one job per core of the machine running the restore when it has more than two, else 1 (on two cores `-j 2` measured no faster than one job, and the local file cost a fifth more time). Above 1, the dump is first downloaded (decrypted, checked and counted on the way) into an owner-only local file in `restoreSpoolDir`, restored from it and removed; a disk short of space falls back to streaming. 1 streams it into one pg_restore in one transaction without touching the disk. Every attempt restores into a working database of its own and renames it into place only when done, so a retry after a killed worker drops the earlier attempt\'s working database and ends its sessions before it starts over.',
              min: 0,
              max: 64,
            })
            .prefault(0),
          restoreSpoolDir: t.path({ description: 'Directory of the local file a parallel logical restore downloads the dump into (the decrypted archive, owner-only, removed after the restore); default the system temporary directory.' }).optional(),
        },
        { description: 'Logical backups (pg_dump, zstd, AES-256-GCM) of this database, besides its physical ones; without it, `logicalBackup` refuses the target.' },
      )
      .optional(),
    drill: t
      .object(
        {
          validationSql: t
            .list(
              t.object(
                {
                  name: t.string({ description: 'Name of the check in drill reports and the Web UI.', ...NAME }),
                  sql: t.string({
                    description:
                      'One read-only SQL statement (SELECT, WITH, VALUES or TABLE), run on the restored instance as `verifyUser` like a smoke query. It passes when it returns at least one row whose first column is not NULL, false, zero or empty text: write `SELECT count(*) FROM orders WHERE ...` (passes above zero) or `SELECT NOT EXISTS (...)` (passes when nothing is found).',
                  }),
                },
                {
                  description: 'A validation query.',
                  rules: [
                    {
                      says: 'A validation query must be one statement that only reads, like a smoke query.',
                      check(q, report) {
                        const why = whyNotReadOnly(q.sql);
                        if (why) report('sql', `validation query ${JSON.stringify(q.name)} is refused because ${why}: drill validation SQL runs against restored copies and must only read, so rewrite it as a single SELECT or remove it`);
                      },
                    },
                  ],
                },
              ),
              { description: "The target's own checks of a drill's restored data; a failing one fails the drill, and the report names it." },
            )
            .prefault([]),
          applicationCheck: t
            .object(
              {
                name: t.string({ description: 'Name of the check in drill reports.', ...NAME }).prefault('application-check'),
                command: t.list(t.string({ description: 'The program, then each argument.' }), {
                  description:
                    'The command, as a list of arguments (no shell). It runs on the worker with the restored instance in PGHOST, PGPORT, PGDATABASE and PGUSER (the verify role; PGPASSWORD when `verifyPassword` is set, never shown in reports), LIFEBOAT_DRILL_ID and LIFEBOAT_DRILL_TARGET, and nothing else of the worker\'s environment but PATH, HOME, LANG and TZ. Exit status 0 passes.',
                  minItems: 1,
                }),
                timeout: t.duration({ description: 'How long the command may run before it is killed and the check fails.' }).prefault('5m'),
              },
              { description: 'A command that proves the application works on the restored data (its exit status counts); its last output lines go in the report.' },
            )
            .optional(),
          keepFor: t.duration({ description: 'How long the drill instance is kept after validation (for people to look at it), then removed; cancelling the drill removes it at once.', minSeconds: 0 }).prefault('0s'),
          ...drillScheduleFields('database', DATABASE_DRILL_DEFAULTS),
        },
        {
          description: "What restore drills of this target check beyond the verifier's checks and smoke queries, and how long they keep the instance.",
          rules: [
            {
              says: 'Validation queries of a target have different names.',
              uses: ['validationSql'],
              check(d, report) {
                d.validationSql.forEach((q, i) => {
                  if (d.validationSql.findIndex((o) => o.name === q.name) < i) report(['validationSql', i, 'name'], `repeats ${JSON.stringify(q.name)}: each validation query needs its own name, so the report can say which failed`);
                });
              },
            },
          ],
        },
      )
      .prefault({}),
    ...objectiveOverride,
  },
  {
    pgbackrest: {
      agent: t
        .string({
          description:
            'The agent on the database host (`lifeboat worker start --agent <name>`), on task queue `lifeboat-agent-<name>`. What must run where the database is runs there: pgBackRest (backups, their checks and copies, restore windows), pg_dump of logical backups, and the clusters restores, drills and failovers of this target make in `restoresDir` (made, started, watched, readied for traffic and removed on that host). Orchestration, the catalog, verification over the network, DNS, AWS, approvals and notifications stay on the central workers. Without it, all of that runs on the central workers, which then need pgBackRest, the repositories and `restoresDir`. Left empty (`agent:`), as when `${NAME:-}` is unset, it is not set.',
          ...NAME,
        })
        .nullable()
        .optional(),
      stanza: t.string({ description: 'pgBackRest stanza of the cluster.', pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]*$/, hint: 'a pgBackRest stanza name' }),
      host: t.string({ description: 'Host (or socket directory) of the Postgres primary.' }),
      port: t.integer({ description: 'Port of the Postgres primary.', ...PORT }).prefault(5432),
      osUser: t.string({ description: 'OS user pgBackRest runs as, the owner of the cluster (default: the user the worker runs as).' }).optional(),
      configPath: t.path({ description: 'pgBackRest configuration file.' }).prefault('/etc/pgbackrest/pgbackrest.conf'),
      pgDataDir: t.path({ description: "The cluster's data directory (pgBackRest's pg1-path). Restores never write here." }),
      socketDir: t.path({ description: 'Unix socket directory of the cluster, if pgBackRest reaches it through one.' }).optional(),
      restoresDir: t.path({ description: 'Where restored clusters are created, one directory each; owned by osUser.' }).prefault('{dataDir}/restores'),
      restorePorts: t
        .object(
          {
            from: t.integer({ description: 'First port a restored cluster may listen on.', ...PORT }),
            to: t.integer({ description: 'Last port a restored cluster may listen on.', ...PORT }),
          },
          { description: 'Ports restored clusters listen on, each on the first free one.' },
        )
        .prefault({ from: 55440, to: 55499 }),
      drillPorts: t
        .object(
          {
            from: t.integer({ description: "First port a restore drill's cluster may listen on.", ...PORT }),
            to: t.integer({ description: "Last port a restore drill's cluster may listen on.", ...PORT }),
          },
          { description: "Ports restore drills' clusters listen on, each on the first free one: a range of their own, apart from restorePorts." },
        )
        .prefault({ from: 55500, to: 55539 }),
      primaryRepo: t.integer({ description: 'pgBackRest repository (`repoN`) in the primary region.', min: 1, max: 256 }).prefault(1),
      drRepo: t.integer({ description: 'pgBackRest repository (`repoN`) in the disaster-recovery region.', min: 1, max: 256 }).prefault(2),
      drCopy: t
        .oneOf(
          ['repository-copy', 'second-backup'],
          "How the DR copy is made. repository-copy: lifeboat streams the new set's objects and its WAL from primaryRepo's bucket to drRepo's and pgBackRest registers the set there (the default: the source is read once; both repositories S3 and unencrypted, checked at preflight and at each backup's start). second-backup: a second backup of the source into drRepo (a second full read of the source), for encrypted or non-S3 repositories.",
        )
        .prefault('repository-copy'),
    },
    rds: {
      instanceId: t.string({ description: 'DBInstanceIdentifier of the protected source instance.', ...RDS_INSTANCE }),
      region: t.string({ description: 'AWS region of the source instance.', ...AWS_REGION }),
      drRegion: t.string({ description: 'AWS region snapshots are copied to and failover restores into.', ...AWS_REGION }),
      drKmsKeyId: t.string({ description: 'KMS key (ARN, id or alias) in the DR region that snapshot copies are encrypted with.' }),
      primaryKmsKeyId: t.string({ description: "KMS key (ARN, id or alias) in the primary region that a failback's copies are encrypted with (default: the source instance's key, while the source exists)." }).optional(),
      restore: t.object({ primary: rdsRestoreSettings('primary'), dr: rdsRestoreSettings('DR') }, { description: 'Settings of restored instances, per region.' }),
    },
  },
  {
    description: 'A PostgreSQL database lifeboat backs up, restores, drills and fails over.',
    discriminatorDescription: 'Which engine protects it: pgBackRest on self-managed Postgres, or Amazon RDS snapshots.',
    rules: [
      {
        says: 'A pgBackRest target uses different repositories for the primary and DR regions.',
        uses: ['engine', 'primaryRepo', 'drRepo'],
        check(db, report) {
          if (db.engine === 'pgbackrest' && db.primaryRepo === db.drRepo) report('drRepo', `must differ from primaryRepo (both are ${db.drRepo}): the DR copy needs its own repository`);
        },
      },
      {
        says: "A pgBackRest target's drill ports are apart from its restore ports.",
        uses: ['engine', 'restorePorts', 'drillPorts'],
        check(db, report) {
          if (db.engine !== 'pgbackrest') return;
          const [r, d] = [db.restorePorts, db.drillPorts];
          if (d.from <= r.to && r.from <= d.to) report('drillPorts', `overlaps restorePorts (${r.from}-${r.to}): drills take ports from a range of their own, so give drillPorts another range`);
        },
      },
      {
        says: 'An RDS target copies to a DR region other than its own.',
        uses: ['engine', 'region', 'drRegion'],
        check(db, report) {
          if (db.engine === 'rds' && db.region === db.drRegion) report('drRegion', `must differ from region (both are ${db.region}): a copy in the same region does not survive losing it`);
        },
      },
    ],
  },
);

const bucketTarget = t.object(
  {
    name: targetName('Name of the target, used in commands, workflow ids and reports.'),
    environment: environmentRef('Environment the bucket belongs to.'),
    source: bucketLocation('The bucket applications write to.'),
    backup: t.object(
      {
        store: storeRef('The object store (from `objectStores`) that holds the backups.'),
        bucket: t.string({ description: 'Bucket the backups are written to.', ...BUCKET }),
        prefix: t.string({ description: 'Key prefix of this target\'s backups in that bucket.', ...PREFIX, minLength: 0 }).prefault(''),
      },
      { description: 'Where versioned backups of the source go.' },
    ),
    replica: bucketLocation('The replica in the disaster-recovery region that failover serves from.'),
    drBackup: t
      .object(
        {
          store: storeRef('The object store (from `objectStores`) in the disaster-recovery region that holds the copies.'),
          bucket: t.string({ description: 'Bucket the copies are written to.', ...BUCKET }),
          prefix: t.string({ description: 'Key prefix of the copies (default: the same as `backup.prefix`).', ...PREFIX, minLength: 0 }).optional(),
        },
        { description: 'Where each backup set is copied in the disaster-recovery region (not the replica, which failover serves as is); without it, `filesBackup` refuses the target.' },
      )
      .optional(),
    legalHolds: t
      .list(
        t.object(
          {
            prefix: t.string({ description: 'Key prefix of the objects held.', ...PREFIX }),
            reason: t.string({ description: 'Why, for the audit trail (a case or ticket number).' }),
          },
          { description: 'A legal hold.' },
        ),
        { description: 'Objects under legal hold: retention never deletes their backups and copies carry an S3 legal hold.' },
      )
      .prefault([]),
    drill: drillSettings('bucket', BUCKET_DRILL_DEFAULTS, {
      hashAllUpTo: t.integer({ description: 'A restore drill reads back and hashes every restored object when the backup set holds at most this many objects; above it, `sample` of them.', min: 0 }).prefault(1000),
      sample: t.integer({ description: 'Objects a restore drill reads back and hashes (and whose metadata it checks) when the set is larger than `hashAllUpTo`; other objects in each drill.', min: 1 }).prefault(100),
    }),
    ...objectiveOverride,
  },
  {
    description: 'An S3 bucket lifeboat backs up and replicates.',
    rules: [
      {
        says: 'A bucket target does not back up into its own source bucket.',
        uses: ['source', 'backup'],
        check(b, report) {
          if (b.source.store === b.backup.store && b.source.bucket === b.backup.bucket) report(['backup', 'bucket'], `must differ from the source bucket ${b.source.bucket}`);
        },
      },
    ],
  },
);

/** The procedures back up application and system configuration daily at 05:00. */
const DIRECTORY_BACKUP_DEFAULTS: ScheduleDefaults = { at: '05:00' };

const directoryTarget = t.object(
  {
    name: targetName('Name of the target, used in commands, workflow ids, reports and object keys.'),
    environment: environmentRef('Environment the directory belongs to; its approval rules apply to in-place restores of it.'),
    agent: t
      .string({
        description:
          'The agent on the host where the directory lives (`lifeboat worker start --agent <name>`, task queue `lifeboat-agent-<name>`): the archive, its verification and every restore of the directory run there. Without it they run on the central workers, which then must see the directory. Left empty (`agent:`) it is not set.',
        ...NAME,
      })
      .nullable()
      .optional(),
    host: t.string({ description: 'Name of the host the directory lives on, for reports and the manifest (default: the agent\'s, else the worker\'s hostname).' }).optional(),
    path: t.path({ description: 'The directory, an absolute path on that host (such as /etc/nginx). Backups only read it; only an in-place restore behind the gate writes there.' }),
    encryptionKey: secretRef('The AES-256 key archives are encrypted with (32 bytes as 64 hex characters or base64; make one with `openssl rand -hex 32`). Only its fingerprint (key id) is ever recorded'),
    store: storeRef('The object store (from `objectStores`) archives are written to, in the primary region.'),
    bucket: t.string({ description: 'Bucket the archives are written to.', ...BUCKET }),
    prefix: t.string({ description: 'Key prefix of the archives; each is `<prefix><target>/<backup id>.lbdir.gz.enc`.', ...PREFIX, minLength: 0 }).prefault('directories/'),
    dr: bucketLocation('Where each archive is copied in the disaster-recovery region, under the same prefix.'),
    criticalFiles: t
      .list(t.string({ description: 'A path relative to the directory, such as nginx.conf or conf.d/app.conf.', pattern: /^(?!\/)(?!.*(^|\/)\.\.?(\/|$)).+$/, hint: 'a relative path inside the directory, without "." or ".." parts' }), {
        description: 'Files that must be in every backup and every restore (preflight checks them on the host; a restore without one fails verification).',
        unique: true,
      })
      .prefault([]),
    syntaxCheck: t
      .object(
        {
          command: t.list(t.string({ description: 'The program, then each argument; `{dir}` is replaced by the restored directory.' }), {
            description: 'The command, as a list of arguments (no shell), run against the restored directory (such as `[nginx, -t, -p, "{dir}", -c, "{dir}/nginx.conf"]`). It runs in that directory with LIFEBOAT_RESTORED_DIR set to it; exit status 0 passes, and its output goes in the report.',
            minItems: 1,
          }),
          timeout: t.duration({ description: 'How long the command may run before it is killed and the check fails.' }).prefault('1m'),
        },
        { description: 'A check that the restored configuration parses, run by every restore and drill before it is called good.' },
      )
      .optional(),
    schedule: schedule('When this directory is backed up: daily at 05:00 UTC by default, as the procedures ask.', DIRECTORY_BACKUP_DEFAULTS).prefault({}),
    drill: t
      .object(
        { cadence: schedule('When this directory\'s restore drills run, instead of `schedules.directoryDrill`; fields left out take that schedule\'s defaults.', DIRECTORY_DRILL_DEFAULTS).optional() },
        { description: 'Restore drills of this directory: its archive restored into a scratch directory on its host, checked (manifest, critical files, syntaxCheck), removed, the report kept as evidence. Always from the primary region\'s archive.' },
      )
      // Every field has its default, so an absent block is an empty one.
      .prefault({} as never),
    ...objectiveOverride,
  },
  {
    description: 'A configuration directory on a host (application or system configuration), archived with a manifest of path, type, mode, owner, mtime and SHA-256, encrypted, stored in both regions.',
    rules: [
      {
        says: 'A directory target names an absolute path other than /.',
        uses: ['path'],
        check(d, report) {
          if (!d.path.startsWith('/')) report('path', `${JSON.stringify(d.path)} is not absolute: give the directory's full path on its host, such as /etc/nginx`);
          else if (d.path.replace(/\/+$/, '') === '') report('path', 'is /, the whole file system: name the configuration directory itself, such as /etc/nginx');
        },
      },
    ],
  },
);

// ----- DynamoDB tables ------------------------------------------------------------------------

const DYNAMODB_TABLE = { pattern: /^[A-Za-z0-9_.-]{3,255}$/, hint: 'a DynamoDB table name: 3 to 255 letters, digits, underscores, hyphens and dots' };

const exportLocation = (region: string) =>
  t.object(
    {
      store: storeRef(`The object store (from \`objectStores\`) lifeboat reads the ${region} export bucket through.`),
      bucket: t.string({ description: `Bucket in the ${region} region the exports ${region === 'primary' ? 'are written to by DynamoDB' : 'are copied to'}.`, ...BUCKET }),
      prefix: t.string({ description: 'Key prefix of this target\'s exports in that bucket; each backup\'s export goes under `<prefix>/<backup name>/`.', ...PREFIX, minLength: 0 }).prefault('dynamodb'),
    },
    { description: `Where the exports of this table are kept in the ${region} region.` },
  );

const dynamodbTarget = t.object(
  {
    name: targetName('Name of the target, used in commands, workflow ids and reports.'),
    environment: environmentRef('Environment the table belongs to; its approval rules apply to every restore of it.'),
    region: t.string({ description: 'AWS region of the table.', ...AWS_REGION }),
    drRegion: t.string({ description: 'AWS region the exports are copied to and DR restores (ImportTable) run in.', ...AWS_REGION }),
    tableName: t.string({ description: 'The DynamoDB table lifeboat protects (point-in-time recovery must be enabled on it).', ...DYNAMODB_TABLE }),
    exports: t.object(
      { primary: exportLocation('primary'), dr: exportLocation('DR') },
      { description: 'The S3 buckets exports go to (primary) and are copied to (DR), each reached through an object store.' },
    ),
    kmsKeyId: t.string({ description: 'KMS key (ARN, id or alias) in `region` that exports and restored tables are encrypted with (default: S3-managed keys for exports, the AWS-owned key for tables).' }).optional(),
    drKmsKeyId: t.string({ description: 'KMS key (ARN, id or alias) in `drRegion` that tables imported there are encrypted with.' }).optional(),
    schedule: schedule('When this table\'s backups run (on-demand backup, export, DR copy, verification).', { at: '03:30' }).prefault({}),
    retention: t
      .object(
        {
          daily: t.integer({ description: 'Days every backup of this table is kept.', min: 1 }).prefault(7),
          weekly: t.integer({ description: 'Weeks the first backup of each ISO week is kept; 0 keeps none beyond the dailies.', min: 0 }).prefault(4),
          monthly: t.integer({ description: 'Calendar months the first backup of each month is kept; 0 keeps none beyond the weeklies.', min: 0 }).prefault(12),
        },
        { description: 'How long this table\'s backups (on-demand backup and both exports) are kept, instead of `retention`. Only backups lifeboat made (named `lifeboat-...`) are ever deleted, and never the last verified one.' },
      )
      .optional(),
    ...objectiveOverride,
  },
  {
    description: 'An Amazon DynamoDB table lifeboat backs up (on-demand backup and export to S3, copied to the DR region), restores into new tables and drills.',
    rules: [
      {
        says: 'A DynamoDB target copies to a DR region other than its own.',
        uses: ['region', 'drRegion'],
        check(d, report) {
          if (d.region === d.drRegion) report('drRegion', `must differ from region (both are ${d.region}): a copy in the same region does not survive losing it`);
        },
      },
      {
        says: 'A DynamoDB target\'s DR export bucket is not its primary export bucket.',
        uses: ['exports'],
        check(d, report) {
          if (d.exports.primary.store === d.exports.dr.store && d.exports.primary.bucket === d.exports.dr.bucket) report(['exports', 'dr', 'bucket'], `must differ from the primary export bucket ${d.exports.primary.bucket}: the DR copy needs a bucket of its own`);
        },
      },
    ],
  },
);

// ----- SQLite targets (pre-operation backups) ------------------------------------------------

const sqliteTarget = t.object(
  {
    name: targetName('Name of the target, used in commands (`lifeboat backup <name> --wait` before a risky change), workflow ids and reports.'),
    environment: environmentRef('Environment the database belongs to; its approval rules apply to every restore of it.'),
    agent: t
      .string({
        description:
          'The agent on the host that holds the file (`lifeboat worker start --agent <name>`): the online copy, its integrity check, the read-back checks and restores run there, with its `sqlite3`. Without it, they run on the central workers, which then need the file. Left empty (`agent:`), it is not set.',
        ...NAME,
      })
      .nullable()
      .optional(),
    path: t.path({ description: 'The database file. lifeboat only reads it (the `sqlite3` command-line shell opens it read-only and copies it with SQLite\'s online backup API), and never restores over it.' }),
    store: storeRef('The object store (from `objectStores`) backups are written to, in the primary region.'),
    bucket: t.string({ description: 'Bucket the backups are written to.', ...BUCKET }),
    prefix: t.string({ description: 'Key prefix of the backups; each is `<prefix><target>/<backup name>.sqlite.gz.enc`.', ...PREFIX, minLength: 0 }).prefault('sqlite/'),
    encryptionKey: secretRef('The AES-256 key backups are encrypted with (32 bytes as 64 hex characters or base64; `openssl rand -hex 32`), in the format of docs/encryption.md, each bound to kind `sqlite`, its target and its backup name. Only its key id is recorded'),
    dr: bucketLocation('Where each backup is copied in the disaster-recovery region, under the same prefix.'),
    schedule: schedule('When scheduled backups of this database run (`lifeboat schedules apply`); left out, it is backed up only on demand (`lifeboat backup <name>`, as before a migration).', { at: '02:30' }).optional(),
    drill: drillSettings('SQLite database', SQLITE_DRILL_DEFAULTS, {
      scratchDir: t
        .path({
          description:
            "Directory on the target's host where a restore drill makes its scratch directory (`drill-<workflow id>`, marked with the run), restores the backup into it, checks it and removes it. Created if missing; give it room for one copy of the database.",
        })
        .prefault('/var/tmp/lifeboat-drills'),
      checks: t
        .list(
          t.object(
            {
              name: t.string({ description: 'Name of the check in drill reports.', ...NAME }),
              sql: t.string({
                description:
                  'One read-only SQL statement (SELECT, WITH or VALUES), run on the restored copy with `sqlite3 -readonly`. It passes when its first row\'s first column is not NULL, 0, false or empty: write `SELECT count(*) FROM orders WHERE ...` (passes above zero) or `SELECT NOT EXISTS (...)`.',
              }),
            },
            {
              description: 'A check query.',
              rules: [
                {
                  says: 'A SQLite drill check must be one statement that only reads.',
                  check(q, report) {
                    const why = whyNotReadOnly(q.sql);
                    if (why) report('sql', `check query ${JSON.stringify(q.name)} is refused because ${why}: drill checks run against the restored copy and must only read, so rewrite it as a single SELECT or remove it`);
                  },
                },
              ],
            },
          ),
          { description: 'Queries every restore drill runs on the restored copy, besides integrity_check and the row counts.' },
        )
        .prefault([]),
    }),
  },
  { description: 'A SQLite database file lifeboat backs up (online, consistent, checked) and restores to a new path.' },
);


// ----- notifications ---------------------------------------------------------------------------

const channelRef = t.ref({ description: 'A notification channel.', to: 'notificationChannels', noun: 'notification channel', where: 'declared in notifications.channels' });
const channelList = (description: string) => t.list(channelRef, { description, unique: true }).prefault([]);

const notificationChannel = t.union(
  'kind',
  {
    name: t.string({ description: 'Name routes and escalation levels send to.', ...NAME, defines: { collection: 'notificationChannels', unique: true, label: 'notification channels' } }),
    allowInsecure: t
      .boolean('Allow sending in the clear: an http URL (slack, pagerduty) or `security: none` (email); without it they are refused. For local test receivers only.')
      .prefault(false),
  },
  {
    slack: {
      url: secretRef('The incoming-webhook URL (Slack or any Slack-compatible chat); it carries a token, so it is a secret. Checked when read: https, unless `allowInsecure`'),
    },
    pagerduty: {
      routingKey: secretRef("The integration key of the PagerDuty service (Events API v2), sent as `routing_key`"),
      url: t.url({ description: "PagerDuty's Events API v2 endpoint; another only for a proxy or a test receiver.", protocols: ['https', 'http'] }).prefault('https://events.pagerduty.com/v2/enqueue'),
    },
    email: {
      host: t.string({ description: 'SMTP relay host.' }),
      port: t.integer({ description: 'SMTP port: 587 for STARTTLS submission, 465 for implicit TLS.', ...PORT }).prefault(587),
      security: t.oneOf(['starttls', 'implicit', 'none'], 'How the connection is encrypted: STARTTLS (587), TLS from the start (465), or none (only with `allowInsecure`).').prefault('starttls'),
      caFile: t.path({ description: "PEM file of the CA that signed the relay's certificate, when it is not a public one." }).optional(),
      user: t.string({ description: 'User to authenticate as; without it no AUTH is sent.' }).optional(),
      password: secretRef('Password of `user`').optional(),
      from: t.string({ description: 'Sender address.', ...IDENTITY }),
      to: t.list(t.string({ description: 'A recipient address.', ...IDENTITY }), { description: 'Recipients of every alert sent to this channel.', minItems: 1, unique: true }),
    },
  },
  {
    description: 'One place alerts go: a Slack-compatible webhook, a PagerDuty service, or email recipients.',
    discriminatorDescription: 'What the channel is: slack, pagerduty or email.',
    rules: [
      {
        says: 'A channel that would send in the clear (a PagerDuty endpoint over http, email with security none) needs allowInsecure; an email password needs its user.',
        check(c, report) {
          if (c.kind === 'pagerduty' && c.url.startsWith('http:') && !c.allowInsecure) report('url', 'uses plain http: make it https, or set allowInsecure: true for a local test receiver');
          if (c.kind === 'email' && c.security === 'none' && !c.allowInsecure) report('security', 'is none, which sends alerts (and any password) unencrypted: use starttls or implicit, or set allowInsecure: true for a local relay');
          if (c.kind === 'email' && c.password && !c.user) report('password', 'is set without user: name the user it belongs to');
        },
      },
    ],
  },
);

// ----- the recovery plan ------------------------------------------------------------------------

const stepTarget = (description: string) => t.ref({ description, to: 'targets', noun: 'target', where: 'declared in targets' });

const failoverStep = t.union(
  'kind',
  {
    name: t.string({ description: 'Name of the step, shown in the plan, the Web UI and the report; other steps wait for it by this name.', ...NAME, defines: { collection: 'failoverSteps', unique: true, label: 'failover steps' } }),
    after: t
      .list(t.ref({ description: 'A step that must have succeeded first.', to: 'failoverSteps', noun: 'failover step', where: 'declared in failover.steps' }), {
        description: 'Steps this one waits for; a step without any starts at once.',
        unique: true,
      })
      .prefault([]),
  },
  {
    'restore-database': {
      target: stepTarget('Database target restored in the DR region from its DR copies only (pgBackRest: its `drRepo`; RDS: replicated backups or snapshot copies in `drRegion`).'),
    },
    'switch-bucket': {
      target: stepTarget('Bucket target whose DR replica (`replica`) becomes the copy served; its replication lag is measured first.'),
    },
    'move-name': {
      target: stepTarget('Database target whose `cutover.dnsName` moves to its DR instance (the previous records are kept so the change can be undone).'),
    },
    'check-application': {
      url: t.url({ description: 'URL that must answer 2xx once the names have moved; the application reaches its database through those names.', protocols: ['http', 'https'] }),
      servesFrom: stepTarget('Database target whose DR instance must be the one the application reached (the answer\'s `database.host`/`database.port`).').optional(),
      timeout: t.duration({ description: 'How long the application may take to answer correctly after the step starts.' }).prefault('5m'),
      drill: t
        .object(
          {
            command: t.list(t.string({ description: 'An argument.' }), {
              description: 'argv that starts a copy of the application against the drill names: {port} is a free drill port, {dnsServer} the router\'s DNS server (host:port), {name:<database target>} that target\'s name in the drill zone.',
              minItems: 1,
            }),
            url: t.string({ description: 'URL the drill checks on its copy; {port} as in the command.' }),
          },
          { description: 'How a failover drill runs its own copy of the application; without it a drill checks the databases through the drill names only.' },
        )
        .optional(),
    },
  },
  { description: 'One step of the recovery plan.', discriminatorDescription: 'What the step does: restore-database, switch-bucket, move-name or check-application.' },
);

// ----- the file -------------------------------------------------------------------------------

const fields = {
  version: t.oneOf([1], 'Version of this file\'s format.'),
  environments: t.dict(
    t.object(
      {
        tier: t.oneOf(['production', 'non-production'], 'Production approvals always need someone other than the requester.'),
        selfApproval: t.boolean('Whether a requester may approve their own request (never in production).').prefault(false),
        unsignedDecisions: t
          .oneOf(['refuse', 'allow'], 'Whether a decision without an Ed25519 signature (a Web UI signal, `lifeboat approve` without `--key`) counts: `refuse` records and ignores it; `allow` is for non-production environments only.')
          .prefault('refuse'),
        gates: t.object(
          {
            restore: gateRoles('restore (a standard point-in-time restore into a new instance; typically backup or data owners)'),
            emergencyRestore: gateRoles('emergency restore (a point-in-time restore during an incident; typically incident commanders)'),
            cutover: gateRoles('cutover (moving application traffic to a restored copy)'),
            failover: gateRoles('failover (declaring a disaster and restoring in the DR region)'),
            failback: gateRoles('failback (the planned switch back to the primary region: fences the DR primary, restores it there, moves the names home)'),
            retire: gateRoles('retire (removing the DR primary once a failback moved its traffic home)'),
            backupDeletion: gateRoles('backup deletion (`lifeboat backups delete`: removing one backup by hand, outside the retention policy)'),
            instanceRemoval: gateRoles('instance removal (`lifeboat instances remove`: removing an instance a restore left standing, in a production-tier environment)'),
          },
          { description: 'Who approves each gate of a workflow in this environment.' },
        ),
        approvers: t
          .object(
            {
              restore: approverCount('restore'),
              emergencyRestore: approverCount('emergency restore'),
              cutover: approverCount('cutover'),
              failover: approverCount('failover', '2 in a production-tier environment (the incident commander is two people there), 1 elsewhere'),
              failback: approverCount('failback'),
              retire: approverCount('retire'),
              backupDeletion: approverCount('backup deletion', '2 in a production-tier environment (nobody destroys a backup alone), 1 elsewhere'),
              instanceRemoval: approverCount('instance removal'),
            },
            { description: 'How many different people must approve each gate in this environment before it opens (a quorum).' },
          )
          .prefault({}),
      },
      {
        description: 'An environment.',
        rules: [
          {
            says: 'A production environment never lets the requester approve their own request.',
            uses: ['tier', 'selfApproval'],
            check(env, report) {
              if (env.tier === 'production' && env.selfApproval) report('selfApproval', 'must be false in a production environment: production approvals need someone other than the requester');
            },
          },
          {
            says: 'A production environment never takes unsigned decisions.',
            uses: ['tier', 'unsignedDecisions'],
            check(env, report) {
              if (env.tier === 'production' && env.unsignedDecisions === 'allow') report('unsignedDecisions', 'must be refuse in a production environment: every production decision is signed with the decider\'s key');
            },
          },
        ],
      },
    ),
    {
      description: 'Environments targets belong to, with who approves what in each.',
      keyPattern: NAME.pattern,
      keyHint: NAME.hint,
      keyLabel: 'environment',
      defines: 'environments',
      minEntries: 1,
    },
  ),
  people: t.dict(
    t.list(t.string({ description: 'A role.', ...ROLE, defines: { collection: 'roles', unique: false, label: 'roles' } }), {
      description: 'Roles of the person.',
      minItems: 1,
      unique: true,
    }),
    {
      description:
        'Who holds which roles (backup-owner, data-owner, incident-commander, ...). Approvals check the approver\'s identity against this map, and in a production-tier environment whoever requests a restore, failover, failback or backup deletion must be in it. Identities compare trimmed and case-insensitively, so two entries that differ only in case are refused.',
      keyPattern: IDENTITY.pattern,
      keyHint: IDENTITY.hint,
      keyLabel: 'identity',
      minEntries: 1,
    },
  ),
  publicKeys: t
    .dict(
      t.string({ description: 'The person\'s Ed25519 public key: the `ssh-ed25519 AAAA…` line of their .pub file, or a PEM `BEGIN PUBLIC KEY` block.' }),
      {
        description:
          'Each person\'s Ed25519 public key: `lifeboat approve|reject --key` signs decisions with the private half (a key file, or `--key ssh-agent`: the agent\'s key matching this one), and the gate checks the signature with this one.',
        keyPattern: IDENTITY.pattern,
        keyHint: IDENTITY.hint,
        keyLabel: 'identity',
      },
    )
    .prefault({}),
  approvals: t.object(
    {
      remindAfter: t.duration({ description: 'A pending gate sends a reminder through the notifier after this long.' }).prefault('15m'),
      abortAfter: t.duration({ description: 'A gate nobody decides on aborts the workflow cleanly after this long.' }).prefault('2h'),
    },
    {
      description: 'Timings of the approval gates.',
      rules: [
        {
          says: 'Approval reminders come before the abort.',
          check(a, report) {
            if (a.remindAfter >= a.abortAfter) report('remindAfter', 'must be shorter than abortAfter, or the gate aborts before anyone is reminded');
          },
        },
      ],
    },
  ),
  objectives: t.object(
    {
      database: t.object(
        {
          rpo: t.duration({ description: 'Most data loss acceptable for a database.' }).prefault('15m'),
          rto: t.duration({ description: 'Longest acceptable time to restore a database.' }).prefault('1h'),
        },
        { description: 'Objectives of database targets.' },
      ),
      files: t.object(
        {
          rpo: t.duration({ description: 'Most data loss acceptable for a bucket.' }).prefault('24h'),
          rto: t.duration({ description: 'Longest acceptable time to restore a bucket.' }).prefault('1h'),
        },
        { description: 'Objectives of bucket targets.' },
      ),
      fullSystem: t.object(
        { rto: t.duration({ description: 'Longest acceptable time for a full disaster-recovery failover, every target included.' }).prefault('4h') },
        { description: 'Objective of the whole system.' },
      ),
    },
    {
      description: 'Recovery point and time objectives (RPO, RTO). Drills and restores measure against them; a target may override its kind\'s.',
      rules: [
        {
          says: 'The full-system RTO is at least as long as the database and file RTOs.',
          check(o, report) {
            const longest = Math.max(o.database.rto, o.files.rto);
            if (o.fullSystem.rto < longest) report(['fullSystem', 'rto'], 'must be at least as long as objectives.database.rto and objectives.files.rto: the full system includes them');
          },
        },
      ],
    },
  ),
  retention: t.object(
    {
      daily: t.integer({ description: 'Days every backup is kept (7 keeps a week of them).', min: 1 }).prefault(7),
      weekly: t.integer({ description: 'Weeks a weekly backup, the first of its ISO week (Monday to Sunday, UTC), is kept (4 keeps about a month); 0 keeps none beyond the dailies.', min: 0 }).prefault(4),
      monthly: t.integer({ description: 'Calendar months a monthly backup, the first of its month (UTC), is kept (12 keeps a year); 0 keeps none beyond the weeklies.', min: 0 }).prefault(12),
    },
    {
      description:
        'How long the `retention` workflow keeps backups, counted separately for each target and kind (pgBackRest, logical dumps, file backup sets), in both regions. It never deletes the last verified backup of a target and kind, a backup a kept one depends on, or anything under legal hold.',
    },
  ),
  schedules: t.object(
    {
      database: schedule('Database backups.', { at: '03:00' }),
      files: schedule('Bucket backups.', { at: '04:00' }),
      full: schedule('Full backups of everything.', { at: '01:00', daysOfWeek: ['sunday'] }),
      drill: schedule('Restore drills of database targets (restore, verify, measure, report, clean up): monthly by default, as the procedures ask; a target\'s `drill.cadence` overrides it.', DATABASE_DRILL_DEFAULTS),
      sqliteDrill: schedule(
        'Restore drills of SQLite targets (restore into a scratch directory on the host, integrity_check, row counts, check queries, report, clean up): weekly by default, because their backups are taken before risky operations at any time and the restore path must be known good then; a target\'s `drill.cadence` overrides it.',
        SQLITE_DRILL_DEFAULTS,
      ),
      bucketDrill: schedule('Restore drills of bucket targets (restore into a scratch bucket, verify, report, clean up): quarterly by default, as the procedures ask; a target\'s `drill.cadence` overrides it.', BUCKET_DRILL_DEFAULTS),
      directoryDrill: schedule('Restore drills of configuration directory targets (restore into a scratch directory on the host, verify every file, the critical files and the syntax check, report, clean up): quarterly by default, as for buckets; a target\'s `drill.cadence` overrides it.', DIRECTORY_DRILL_DEFAULTS),
      drillSweeper: t.object(
        {
          enabled: t.boolean('Whether the sweeper runs; `false` keeps its schedule declared but paused.').prefault(true),
          minute: t.integer({ description: 'Minute of every hour the sweeper starts at (UTC).', min: 0, max: 59 }).prefault(20),
        },
        { description: 'The hourly drill sweeper: removes drill instances and scratch buckets whose drill run is closed, and reports any whose owner it cannot tell.' },
      ),
      instanceExpiry: t.object(
        {
          enabled: t.boolean('Whether the expiry runs; `false` keeps its schedule declared but paused.').prefault(true),
          minute: t.integer({ description: 'Minute of every hour the expiry starts at (UTC).', min: 0, max: 59 }).prefault(50),
        },
        { description: 'The hourly expiry of restored instances (`instanceExpiry`): sends each kept instance its notice, then removes those past their expiry; never one that has taken traffic.' },
      ),
      failoverDrill: schedule('Failover drills of the whole recovery plan (`failover`): everything restored in the DR region into drill instances, names moved only in drill zones, the application checked, measured against the full-system RTO, cleaned up. Twice a year by default.', FAILOVER_DRILL_DEFAULTS),
      compliance: schedule('The compliance report: backups against RPO, drills against their cadence, retention, open failures, predicted RTO; written to the evidence buckets.', { at: '06:00', daysOfWeek: ['monday'] }),
    },
    { description: 'When Temporal Schedules start each workflow (`lifeboat schedules apply`). All times are UTC.' },
  ),
  restoredInstances: t
    .object(
      {
        lifetime: t.duration({ description: 'How long an instance a restore leaves standing is kept before the hourly expiry removes it (`lifeboat instances extend` moves it on). Never one that has taken traffic.', minSeconds: 1 }).prefault('7d'),
        noticeBefore: t.duration({ description: 'How long before its removal the expiry notifies (through the notifier); an instance is never removed before its notice went out.', minSeconds: 0 }).prefault('1d'),
      },
      { description: 'The life of restored instances after their restore: listed by `lifeboat instances list`, removed on expiry after a notice.' },
    )
    .prefault({}),
  notifications: t.object(
    {
      webhook: t
        .object(
          {
            url: secretRef('The webhook URL (Slack, PagerDuty or any endpoint taking JSON); it carries a token, so it is a secret. Checked when read: https, unless `allowInsecure`'),
            allowInsecure: allowInsecure('the webhook'),
          },
          { description: 'JSON webhook every notification is posted to as it happens, besides the log (not grouped, not escalated: for that, use `channels`, `routes` and `escalation`).' },
        )
        .optional(),
      webUiUrl: t
        .url({
          description:
            "Base address of the Temporal Web UI (such as https://temporal.example.com): every alert links to the workflow it is about there. Left out, `$LIFEBOAT_UI_URL`, else port 8233 on `temporal.address`'s host.",
          protocols: ['http', 'https'],
        })
        .optional(),
      channels: t
        .list(notificationChannel, {
          description: 'Where alerts can go, each named once; `routes` and `escalation` send to them by name.',
        })
        .optional(),
      routes: t
        .object(
          {
            info: channelList('Channels told of every info notification (a backup completed).'),
            warning: channelList('Channels told of every warning (RPO breached, approval still pending).'),
            critical: channelList(
              'Channels told first of a critical alert (a backup or drill failed): level 0 of its escalation. A repeat of the same target and cause while the alert is open joins it instead of paging again.',
            ),
          },
          { description: 'Which channels each severity goes to.' },
        )
        .optional(),
      escalation: t
        .object(
          {
            steps: t
              .list(
                t.object(
                  {
                    name: t.string({ description: 'Who this level reaches, as people say it (backup administrators, the on-call manager).' }),
                    after: t.duration({ description: 'How long after the previous level an alert nobody acknowledged reaches this one.' }).prefault('30m'),
                    channels: t.list(channelRef, { description: 'Channels this level sends the alert to.', minItems: 1, unique: true }),
                  },
                  { description: 'One level of the escalation path.' },
                ),
                { description: 'The levels after `routes.critical`, in order: operations first, backup administrators after 30 minutes, a manager after another 30, for example. Empty: no escalation beyond level 0.' },
              )
              .prefault([]),
            holdAcknowledged: t
              .duration({ description: 'How long an acknowledged alert stays open, taking repeats of its cause without paging, unless its cause clears first.' })
              .prefault('24h'),
          },
          { description: 'The `alertEscalation` workflow every critical alert runs: each level in turn until someone runs `lifeboat ack <alert>`.' },
        )
        .optional(),
    },
    { description: 'Where notifications go. They are always logged.' },
  ),
  metrics: t.object(
    {
      port: t
        .integer({
          description:
            "Port of the worker's Prometheus endpoint (`http://<host>:<port>/metrics`): lifeboat's metrics, computed from the catalog (see docs/metrics.md), followed by the Temporal SDK's own. Left out, no endpoint is served. An agent serves the recovery point lag of its own targets and the SDK's metrics, on the same port: give it another with `LIFEBOAT_METRICS_PORT` when it shares a host with a worker.",
          ...PORT,
        })
        .optional(),
      host: t.string({ description: 'Address the metrics endpoint listens on; 0.0.0.0 for a Prometheus on another host.' }).prefault('127.0.0.1'),
      cacheSeconds: t
        .integer({ description: 'How long one reading of the catalog and of the pending approvals serves scrapes: several Prometheus servers, or a short scrape interval, cost one reading per period.', min: 1, max: 300 })
        .prefault(15),
      recoveryPointSeconds: t
        .integer({ description: "How long one reading of the targets' recovery point lag (pgBackRest's WAL archive, RDS's LatestRestorableTime) serves scrapes: each reading runs pgBackRest or calls AWS once per target.", min: 10, max: 3600 })
        .prefault(60),
      temporalSdk: t.boolean("Include the Temporal SDK's runtime metrics (workflow and activity task latencies, slots, sticky cache, polls), prefixed `temporal_`.").prefault(true),
    },
    { description: 'The Prometheus endpoint of the workers and agents (`docs/metrics.md` lists every metric; `monitoring/` holds the alert rules and a Grafana dashboard).' },
  ),
  storage: t.object(
    {
      budgetBytes: t
        .integer({ description: 'Bytes all backups may take in every region together (object stores: backup sets, WAL, noncurrent versions). `lifeboat storage` forecasts when this is reached; left out, no global budget is forecast.', min: 1 })
        .optional(),
      regionBudgetBytes: t
        .dict(t.integer({ description: 'Bytes the backups may take in this region.', min: 1 }), {
          description: 'A budget per region (`primary`, `dr`), forecast like `budgetBytes`.',
          keyPattern: /^(primary|dr)$/,
          keyHint: 'primary or dr',
          keyLabel: 'region',
        })
        .prefault({}),
      pricePerGbMonth: t
        .dict(t.decimal({ description: 'Price of one GiB stored for a month in this storage class, in your currency.', min: 0 }), {
          description:
            'What one GiB-month costs per S3 storage class (`STANDARD`, `STANDARD_IA`, `GLACIER_IR`, ...; MinIO reports `STANDARD`), for the cost of the retention policy in `lifeboat storage`. A class without a price is reported as unpriced, never guessed.',
          keyPattern: /^[A-Z][A-Z0-9_]*$/,
          keyHint: 'an S3 storage class in capitals, such as STANDARD or STANDARD_IA',
          keyLabel: 'storage class',
        })
        .prefault({}),
      replicaLagLimit: t
        .duration({ description: 'How far the newest backup copy in the DR region may lag the newest in the primary region (`lifeboat_replica_lag_seconds`) before `LifeboatReplicaLagOverLimit` fires.' })
        .prefault('1h'),
      objectStoreSeconds: t
        .integer({ description: "How long one listing of the backup buckets (bytes per target, region and storage class) serves the metrics endpoint's scrapes: each reading lists every object version under the targets' prefixes.", min: 60, max: 86400 })
        .prefault(600),
    },
    { description: 'Storage budgets, prices and replication limits: `lifeboat storage` and the storage metrics (docs/metrics.md).' },
  ),
  temporal: t.object(
    {
      address: t.string({ description: 'Temporal frontend address.', ...HOST_PORT }).prefault('127.0.0.1:7233'),
      namespace: t.string({ description: 'Temporal namespace.' }).prefault('default'),
      taskQueue: t.string({ description: 'Task queue of the central workers: orchestration, catalog, AWS and DNS work. Host-bound work goes to agents (`targets.databases[].agent`).' }).prefault('lifeboat'),
      profile: t
        .string({ description: "Profile of the temporal CLI's config file (`TEMPORAL_CONFIG_FILE`, default ~/.config/temporalio/temporal.toml) to read connection settings from; `TEMPORAL_PROFILE` overrides it. Without it, the file's `default` profile is read when there is one." })
        .optional(),
      tls: t
        .object(
          {
            enabled: t.boolean('Connect over TLS (on when this section is present; `false` turns it off).').prefault(true),
            serverCaFile: t.path({ description: "PEM file of the CA that signed the server's certificate (default: the system's CAs)." }).optional(),
            serverName: t.string({ description: "Name to check the server's certificate against, when it differs from the address's host." }).optional(),
            clientCertFile: t.path({ description: 'PEM client certificate for mutual TLS.' }).optional(),
            clientKey: secretRef('PEM private key of `clientCertFile`').optional(),
          },
          {
            description: 'TLS to the Temporal frontend, mutual TLS with a client certificate.',
            rules: [
              {
                says: 'A client certificate needs its key, and a key its certificate.',
                uses: ['clientCertFile', 'clientKey'],
                check(tls, report) {
                  if ((tls.clientCertFile === undefined) !== (tls.clientKey === undefined)) report(tls.clientCertFile === undefined ? 'clientCertFile' : 'clientKey', 'is needed with the other of clientCertFile and clientKey: mutual TLS needs both the certificate and its key');
                },
              },
            ],
          },
        )
        .optional(),
      encryption: t
        .object(
          {
            currentKey: t.string({ description: 'Id of the key new payloads are encrypted with; one of `keys`.', ...KEY_ID }),
            keys: t.dict(
              secretRef('An AES-256 key: 32 bytes as 64 hex characters or base64 (make one with `openssl rand -hex 32`)'),
              {
                description: 'Every key a retained history may be encrypted with, by key id. To rotate: add a new key, make it `currentKey`, and keep the old one as long as histories it encrypted are kept.',
                keyPattern: KEY_ID.pattern,
                keyHint: KEY_ID.hint,
                keyLabel: 'key id',
                minEntries: 1,
              },
            ),
          },
          {
            description:
              'Encryption of workflow inputs, results, signals, queries, memos and failure messages in Temporal (AES-256-GCM, each payload naming its key id). Every lifeboat client and worker uses it; search attributes stay readable (see the README, "Encrypted history"). Left out, histories are plaintext.',
            rules: [
              {
                says: '`currentKey` is one of `keys`.',
                uses: ['currentKey', 'keys'],
                check(e, report) {
                  if (!(e.currentKey in e.keys)) report('currentKey', `is ${JSON.stringify(e.currentKey)}, which is not in keys (${Object.keys(e.keys).join(', ')}): add it there or name one of those`);
                },
              },
            ],
          },
        )
        .optional(),
      apiKey: secretRef('API key (Temporal Cloud); sent as a bearer token, and turns TLS on').optional(),
      codecServer: t
        .object(
          {
            host: t.string({ description: 'Address `lifeboat codec-server` listens on.' }).prefault('127.0.0.1'),
            port: t.integer({ description: 'Port `lifeboat codec-server` listens on.', ...PORT }).prefault(8234),
            uiOrigin: t.url({ description: 'Origin of the Temporal Web UI (scheme, host and port, such as https://temporal.example.com): the only origin browsers may call the codec server from (CORS).', protocols: ['http', 'https'] }),
            token: secretRef('Bearer token every /encode and /decode request must carry (`Authorization: Bearer <token>`, or the `/t/<token>` path prefix for a Web UI that cannot send headers)'),
          },
          { description: 'The codec server that lets the Temporal Web UI (and `temporal --codec-endpoint`) show encrypted payloads decoded: `lifeboat codec-server`. Needs `encryption`.' },
        )
        .optional(),
    },
    {
      description:
        'The Temporal service lifeboat runs on. Every setting can also come from the temporal CLI\'s environment variables (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS*`) and profile file; precedence per setting: environment, then profile, then this section, then the defaults.',
      rules: [
        {
          says: 'A codec server needs `encryption`: it serves that keyring.',
          uses: ['codecServer', 'encryption'],
          check(c, report) {
            if (c.codecServer && !c.encryption) report('codecServer', 'needs temporal.encryption: a codec server serves that keyring, so declare the keys or remove codecServer');
          },
        },
      ],
    },
  ),
  catalog: t.object(
    {
      host: t.string({ description: 'Host of the catalog database.' }),
      port: t.integer({ description: 'Port of the catalog database.', ...PORT }).prefault(5432),
      database: t.string({ description: 'Name of the catalog database.' }).prefault('lifeboat_catalog'),
      user: t.string({ description: 'Role lifeboat connects as.' }).prefault('lifeboat'),
      password: secretRef('Password of `user`').optional(),
      ...pgTlsFields('the catalog database'),
    },
    { description: 'lifeboat\'s own records (backups, verifications, drills, approvals) in Postgres.' },
  ),
  evidence: t.object(
    {
      store: storeRef('The object store (from `objectStores`) that holds the evidence bucket.'),
      bucket: t.string({ description: 'A write-once (object lock) bucket for drill reports and approval records.', ...BUCKET }),
      prefix: t.string({ description: 'Key prefix of everything lifeboat writes there.', ...PREFIX, minLength: 0 }).prefault(''),
      drStore: storeRef('The object store in the disaster-recovery region that holds the second copy of every report.').optional(),
      drBucket: t.string({ description: 'The write-once bucket in `drStore` for the second copy.', ...BUCKET }).optional(),
      retentionDays: t.integer({ description: 'How long each report stays undeletable (object-lock retention): the compliance period.', min: 1, max: 36500 }).prefault(400),
      lockMode: t.oneOf(['COMPLIANCE', 'GOVERNANCE'], 'COMPLIANCE: nobody can delete a report early; GOVERNANCE: privileged users can (for test stacks).').prefault('COMPLIANCE'),
    },
    {
      description: 'Where reports and approval records are kept for auditors.',
      rules: [
        {
          says: 'The second copy needs both its store and its bucket.',
          uses: ['drStore', 'drBucket'],
          check(e, report) {
            if ((e.drStore === undefined) !== (e.drBucket === undefined)) report(e.drStore === undefined ? 'drStore' : 'drBucket', 'is needed with the other of drStore and drBucket: the second copy of every report needs both');
          },
        },
      ],
    },
  ),
  backupBuckets: t
    .list(
      t.object(
        {
          store: storeRef('The object store (from `objectStores`) that holds the bucket: the region.'),
          bucket: t.string({ description: 'A bucket backups are written to (a logical dump bucket, a bucket target\'s backup or DR copy bucket, a pgBackRest repository bucket).', ...BUCKET }),
          objectLock: t.object(
            {
              mode: t.oneOf(['governance', 'compliance'], 'compliance: nobody, not even the account root, can delete or shorten a locked version before its date; governance: only someone allowed to bypass governance retention can (lifeboat never does).'),
              days: t.integer({ description: 'Default retention of every object version written to the bucket, in days: the lock the bucket applies by itself. At most `retention.daily`, so every backup the policy expires is already unlocked.', min: 1, max: 36500 }),
            },
            { description: 'S3 Object Lock on the bucket (write-once backups). The lock can only be turned on when the bucket is created; `lifeboat preflight` checks it is on with this mode and retention.' },
          ),
          pgbackrestRepo: t.integer({ description: 'The pgBackRest repository (`repoN`, as in database targets\' primaryRepo/drRepo) stored in this bucket, so retention and `lifeboat backups delete` can say how long its expired sets stay under the lock.', min: 1, max: 256 }).optional(),
        },
        { description: 'A backup bucket and its object lock.' },
      ),
      { description: 'Backup buckets that are write-once (S3 Object Lock). Retention and `lifeboat backups delete` never delete a locked version before its retain-until date (they report it) and never bypass governance retention.' },
    )
    .prefault([]),
  objectStores: t.list(
    t.object(
      {
        name: t.string({ description: 'Name other sections refer to the store by.', ...NAME, defines: { collection: 'objectStores', unique: true, label: 'object stores' } }),
        region: t.string({ description: 'Region the store signs requests for and lives in (an AWS region, or a MinIO region name).' }),
        endpoint: t.url({ description: 'S3 endpoint; leave out for AWS S3 itself.', protocols: ['http', 'https'] }).optional(),
        caFile: t.path({ description: 'PEM file of a CA to trust for the endpoint, besides the system\'s.' }).optional(),
        allowInsecure: allowInsecure('this endpoint'),
        credentials: t
          .object(
            { accessKeyId: secretRef('Access key id'), secretAccessKey: secretRef('Secret access key') },
            { description: 'Static credentials; leave out to use the default AWS credential chain (instance role, environment, profile).' },
          )
          .optional(),
      },
      {
        description: 'An S3-compatible object store in one region.',
        rules: [
          {
            says: 'An http endpoint needs allowInsecure.',
            uses: ['endpoint', 'allowInsecure'],
            check(store, report) {
              if (store.endpoint?.startsWith('http:') && !store.allowInsecure) report('endpoint', 'is plain http: use https, or set allowInsecure: true on this object store to accept an unencrypted endpoint');
            },
          },
        ],
      },
    ),
    { description: 'Object stores (S3 regions or MinIO servers) buckets and backups live in.', minItems: 1 },
  ),
  trafficRouters: t
    .list(
      t.union(
        'kind',
        {
          name: t.string({ description: 'Name targets refer to the router by.', ...NAME, defines: { collection: 'trafficRouters', unique: true, label: 'traffic routers' } }),
          zone: t.string({ description: 'DNS zone that holds the names this router moves.', ...DNS_NAME }),
          drillZone: t
            .string({ description: 'A zone of its own where failover drills write their copies of this router\'s names (db.app.<drillZone>), so a drill never writes a production name. On Route53 a separate hosted zone: see `drillHostedZoneId`.', ...DNS_NAME })
            .optional(),
        },
        {
          powerdns: {
            apiUrl: t.url({ description: 'PowerDNS HTTP API base URL.', protocols: ['http', 'https'] }),
            apiKey: secretRef('PowerDNS API key'),
            allowInsecure: allowInsecure('the API (`apiUrl`)'),
            serverId: t.string({ description: 'PowerDNS server id in API paths.' }).prefault('localhost'),
            dnsServer: t.object(
              {
                host: t.string({ description: 'Address of the authoritative DNS server.' }),
                port: t.integer({ description: 'DNS port.', ...PORT }).prefault(53),
              },
              { description: 'The authoritative server cutover asks to confirm a change is served.' },
            ),
          },
          route53: {
            hostedZoneId: t.string({ description: 'Route53 hosted zone id.', pattern: /^(\/hostedzone\/)?Z[A-Z0-9]{1,32}$/, hint: 'a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ' }),
            region: t.string({ description: 'Region the Route53 client signs for.', ...AWS_REGION }).prefault('us-east-1'),
            drillHostedZoneId: t
              .string({ description: 'Route53 hosted zone id of `drillZone`.', pattern: /^(\/hostedzone\/)?Z[A-Z0-9]{1,32}$/, hint: 'a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ' })
              .optional(),
          },
        },
        {
          description: 'A DNS service cutover uses.',
          discriminatorDescription: 'PowerDNS (HTTP API) or Amazon Route53.',
          rules: [
            {
              says: 'A PowerDNS API over http needs allowInsecure.',
              uses: ['kind', 'apiUrl', 'allowInsecure'],
              check(r, report) {
                if (r.kind === 'powerdns' && r.apiUrl.startsWith('http:') && !r.allowInsecure) report('apiUrl', 'is plain http: use https, or set allowInsecure: true on this router to send its API key unencrypted');
              },
            },
          ],
        },
      ),
      { description: 'DNS services that move application names during cutover.' },
    )
    .prefault([]),
  failover: t
    .object(
      {
        steps: t.list(failoverStep, {
          description: 'The recovery plan: what a failover (and a failover drill) does, in dependency order. Steps whose dependencies are done run in parallel.',
          minItems: 1,
        }),
      },
      { description: 'Full disaster-recovery failover: the recovery plan `lifeboat failover plan | start` runs, in the procedure\'s order (databases, file storage, names, the application).' },
    )
    .optional(),
  targets: t.object(
    {
      databases: t.list(databaseTarget, { description: 'PostgreSQL databases.' }).prefault([]),
      buckets: t.list(bucketTarget, { description: 'S3 buckets.' }).prefault([]),
      directories: t.list(directoryTarget, { description: 'Configuration directories on hosts.' }).prefault([]),
      sqlite: t.list(sqliteTarget, { description: 'SQLite database files (pre-operation backups, restores to a new path).' }).prefault([]),
      dynamodb: t.list(dynamodbTarget, { description: 'Amazon DynamoDB tables.' }).prefault([]),
    },
    { description: 'What lifeboat protects.' },
  ),
};

type Root = z.output<z.ZodObject<typeof fields, z.core.$strict>>;

const rootRules: Rule<Root>[] = [
  {
    says: 'No two people differ only in the case or spacing of their identity (identities are compared case-insensitively).',
    uses: ['people', 'publicKeys'],
    check(c, report) {
      for (const field of ['people', 'publicKeys'] as const) {
        const seen = new Map<string, string>();
        for (const who of Object.keys(c[field])) {
          const earlier = seen.get(normalizeIdentity(who));
          if (earlier !== undefined) report([field, who], `is the same identity as ${earlier} (identities are compared case-insensitively): keep one entry`);
          else seen.set(normalizeIdentity(who), who);
        }
      }
    },
  },
  {
    says: 'Every public key is a valid Ed25519 key of someone in `people`.',
    uses: ['people', 'publicKeys'],
    check(c, report) {
      const people = new Set(Object.keys(c.people).map(normalizeIdentity));
      for (const [who, key] of Object.entries(c.publicKeys)) {
        if (!people.has(normalizeIdentity(who))) report(['publicKeys', who], `is not in people: add the person there, or remove the key`);
        const parsed = parseEd25519PublicKey(key);
        if (!parsed.ok) report(['publicKeys', who], parsed.problem);
      }
    },
  },
  {
    says: 'The file declares at least one target.',
    uses: ['targets.databases', 'targets.buckets', 'targets.directories', 'targets.sqlite', 'targets.dynamodb'],
    check(c, report) {
      const kinds = [c.targets.databases, c.targets.buckets, c.targets.directories, c.targets.sqlite, c.targets.dynamodb];
      if (kinds.every((k) => !k.length)) report('targets', 'declares no database or bucket target: add at least one, or lifeboat has nothing to protect');
    },
  },
  {
    says: 'The environment named `production` has tier `production`.',
    uses: ['environments'],
    check(c, report) {
      const prod = c.environments.production;
      if (prod && prod.tier !== 'production') report(['environments', 'production', 'tier'], 'must be production for the environment named production');
    },
  },
  {
    says: 'In a production environment at least two people can approve each gate, so a request never waits on its own requester.',
    uses: ['environments', 'people'],
    check(c, report) {
      for (const [envName, env] of Object.entries(c.environments)) {
        if (env.tier !== 'production') continue;
        for (const [gate, roles] of Object.entries(env.gates)) {
          const approvers = Object.entries(c.people)
            .filter(([, held]) => held.some((role) => roles.includes(role)))
            .map(([who]) => who);
          if (approvers.length >= 2) continue;
          const who = approvers.length ? `only ${approvers[0]} holds` : 'no one holds';
          report(['environments', envName, 'gates', gate], `${who} a role that approves this gate (${roles.join(', ')}), and production approvals need someone other than the requester: give a second person one of these roles`);
        }
      }
    },
  },
  {
    says: 'Each gate\'s quorum (`approvers`, or its default) can be met: no more approvers than people holding one of its roles, less the requester wherever the requester may not approve.',
    uses: ['environments', 'people'],
    check(c, report) {
      for (const [envName, env] of Object.entries(c.environments)) {
        const production = env.tier === 'production';
        for (const gate of Object.keys(env.gates) as GateName[]) {
          const configured = env.approvers[gate];
          const required = configured ?? defaultRequiredApprovals(gate, production);
          const roles = env.gates[gate];
          const people = Object.values(c.people).filter((held) => held.some((role) => roles.includes(role))).length;
          const problem = quorumProblem(required, { people, requesterExcluded: production || !env.selfApproval });
          if (!problem) continue;
          if (configured !== undefined) report(['environments', envName, 'approvers', gate], `${problem}: lower it, or give more people one of the gate's roles`);
          else report(['environments', envName, 'gates', gate], `${problem.replace(/^asks for/, `by default in a ${env.tier} environment asks for`)}: give another person one of these roles (${roles.join(', ')}), or set approvers.${gate} to the number you accept`);
        }
      }
    },
  },
  {
    says: 'A locked backup bucket\'s retention is at most what the retention policy keeps every backup, so expiry is never held up by the lock.',
    uses: ['backupBuckets', 'retention.daily'],
    check(c, report) {
      c.backupBuckets.forEach((b, i) => {
        if (b.objectLock.days > c.retention.daily) {
          report(['backupBuckets', i, 'objectLock', 'days'], `is ${b.objectLock.days}, longer than retention.daily (${c.retention.daily}): backups the policy expires would still be locked; lower the lock, or raise retention.daily to keep every backup as long as it is locked`);
        }
      });
    },
  },
  {
    says: 'A backup bucket is declared once per object store.',
    uses: ['backupBuckets'],
    check(c, report) {
      const seen = new Set<string>();
      c.backupBuckets.forEach((b, i) => {
        const key = `${b.store}/${b.bucket}`;
        if (seen.has(key)) report(['backupBuckets', i, 'bucket'], `declares ${b.bucket} in ${b.store} a second time: keep one entry per bucket`);
        seen.add(key);
      });
    },
  },
  {
    says: 'A database\'s cutover name lies inside the zone of its traffic router.',
    uses: ['targets.databases', 'trafficRouters'],
    check(c, report) {
      c.targets.databases.forEach((db, i) => {
        if (!db.cutover) return;
        const router = c.trafficRouters.find((r) => r.name === db.cutover?.router);
        if (!router) return;
        const zone = stripDot(router.zone);
        const name = stripDot(db.cutover.dnsName);
        if (name !== zone && !name.endsWith(`.${zone}`)) report(['targets', 'databases', i, 'cutover', 'dnsName'], `${db.cutover.dnsName} is outside zone ${router.zone} of traffic router ${router.name}`);
      });
    },
  },
  {
    says: 'A bucket\'s DR replica lives in another region than its source.',
    uses: ['targets.buckets', 'objectStores'],
    check(c, report) {
      const regionOf = new Map(c.objectStores.map((s) => [s.name, s.region]));
      c.targets.buckets.forEach((b, i) => {
        const region = regionOf.get(b.source.store);
        if (region !== undefined && region === regionOf.get(b.replica.store)) {
          report(['targets', 'buckets', i, 'replica', 'store'], `is in region ${region} like the source: a replica in the same region does not survive losing it`);
        }
      });
    },
  },
  {
    says: 'Copies for the disaster-recovery region (a database\'s `logicalBackup.dr`, a bucket\'s `drBackup`) live in another region than the backups they copy.',
    uses: ['targets.databases', 'targets.buckets', 'objectStores'],
    check(c, report) {
      const regionOf = new Map(c.objectStores.map((s) => [s.name, s.region]));
      const sameRegion = (a: string, b: string) => regionOf.get(a) !== undefined && regionOf.get(a) === regionOf.get(b);
      c.targets.databases.forEach((db, i) => {
        const lb = db.logicalBackup;
        if (lb && sameRegion(lb.store, lb.dr.store)) {
          report(['targets', 'databases', i, 'logicalBackup', 'dr', 'store'], `is in region ${regionOf.get(lb.store)} like logicalBackup.store: a copy in the same region does not survive losing it`);
        }
      });
      c.targets.buckets.forEach((b, i) => {
        if (b.drBackup && sameRegion(b.backup.store, b.drBackup.store)) {
          report(['targets', 'buckets', i, 'drBackup', 'store'], `is in region ${regionOf.get(b.backup.store)} like backup.store: a copy in the same region does not survive losing it`);
        }
      });
    },
  },
  {
    says: "A SQLite target's DR copy (`dr`) lives in another region than its backups, and no two SQLite targets share a file.",
    uses: ['targets.sqlite', 'objectStores'],
    check(c, report) {
      const regionOf = new Map(c.objectStores.map((s) => [s.name, s.region]));
      c.targets.sqlite.forEach((q, i) => {
        if (regionOf.get(q.store) !== undefined && regionOf.get(q.store) === regionOf.get(q.dr.store)) {
          report(['targets', 'sqlite', i, 'dr', 'store'], `is in region ${regionOf.get(q.store)} like store: a copy in the same region does not survive losing it`);
        }
        const first = c.targets.sqlite.findIndex((o) => o.path === q.path);
        if (first < i) report(['targets', 'sqlite', i, 'path'], `is the file of targets.sqlite[${first}] (${c.targets.sqlite[first].name}) too: declare each database file once`);
      });
    },
  },
  {
    says: 'Bucket targets that share a backup bucket use prefixes that do not overlap.',
    uses: ['targets.buckets'],
    check(c, report) {
      const seen: Array<{ at: number; store: string; bucket: string; prefix: string }> = [];
      c.targets.buckets.forEach((b, i) => {
        const clash = seen.find((s) => s.store === b.backup.store && s.bucket === b.backup.bucket && (s.prefix.startsWith(b.backup.prefix) || b.backup.prefix.startsWith(s.prefix)));
        if (clash) {
          const where: PathSegment[] = ['targets', 'buckets', i, 'backup', 'prefix'];
          report(where, `${JSON.stringify(b.backup.prefix)} overlaps the backups of targets.buckets[${clash.at}] (prefix ${JSON.stringify(clash.prefix)}) in bucket ${b.backup.bucket}: give each target its own prefix`);
        } else {
          seen.push({ at: i, store: b.backup.store, bucket: b.backup.bucket, prefix: b.backup.prefix });
        }
      });
    },
  },
  {
    says: 'A target that alternates drill regions drills in at least two months (one schedule takes every other month of its cadence from each region).',
    uses: ['targets.databases', 'targets.buckets', 'schedules.drill', 'schedules.bucketDrill'],
    check(c, report) {
      const kinds = [
        ['databases', c.targets.databases, c.schedules.drill],
        ['buckets', c.targets.buckets, c.schedules.bucketDrill],
      ] as const;
      for (const [kind, targets, fallback] of kinds) {
        targets.forEach((target, i) => {
          const months = (target.drill.cadence ?? fallback).months;
          if (target.drill.alternateRegions && months.length === 1) {
            report(['targets', kind, i, 'drill', 'alternateRegions'], `needs a drill cadence in at least two months, and ${target.name} drills only in ${months[0]}: add months to its drill cadence, or drop alternateRegions`);
          }
        });
      }
    },
  },
];

/** The recovery plan can run: its graph, the kinds of targets its steps name, and what moving a name needs. */
const planRules: Rule<Root>[] = [
  {
    says: 'The recovery plan\'s steps wait only for steps of the plan, never for themselves or in a circle.',
    uses: ['failover.steps'],
    check(c, report) {
      if (!c.failover) return;
      for (const problem of graphProblems(c.failover.steps)) report(['failover', 'steps'], problem);
    },
  },
  {
    says: 'Each recovery plan step names a target of the kind it works on, and restores or moves each database once.',
    uses: ['failover.steps', 'targets.databases', 'targets.buckets'],
    check(c, report) {
      if (!c.failover) return;
      const databases = new Set(c.targets.databases.map((d) => d.name));
      const buckets = new Set(c.targets.buckets.map((b) => b.name));
      const seen = new Map<string, string>();
      c.failover.steps.forEach((step, i) => {
        const where: PathSegment[] = ['failover', 'steps', i, 'target'];
        if (step.kind === 'restore-database' || step.kind === 'move-name') {
          if (!databases.has(step.target)) report(where, `names ${step.target}, which is not a database target, and a ${step.kind} step works on a database: name one of ${[...databases].join(', ') || '(none declared)'}`);
        }
        if (step.kind === 'switch-bucket' && !buckets.has(step.target)) report(where, `names ${step.target}, which is not a bucket target, and a switch-bucket step works on a bucket: name one of ${[...buckets].join(', ') || '(none declared)'}`);
        if (step.kind === 'check-application') return;
        const key = `${step.kind}:${step.target}`;
        const earlier = seen.get(key);
        if (earlier) report(where, `${step.target} already has a ${step.kind} step (${earlier}): one step per target and kind`);
        else seen.set(key, step.name);
      });
    },
  },
  {
    says: 'A move-name step\'s database has a DNS name and a router with a drill zone, and waits for that database\'s restore.',
    uses: ['failover.steps', 'targets.databases', 'trafficRouters'],
    check(c, report) {
      if (!c.failover || graphProblems(c.failover.steps).length) return;
      const steps = c.failover.steps;
      steps.forEach((step, i) => {
        if (step.kind !== 'move-name') return;
        const db = c.targets.databases.find((d) => d.name === step.target);
        if (!db) return;
        if (!db.cutover) {
          report(['failover', 'steps', i, 'target'], `${db.name} has no DNS name to move (no \`cutover\` block with dnsName and router): add one to the target, or drop this step`);
          return;
        }
        const router = c.trafficRouters.find((r) => r.name === db.cutover!.router);
        if (router && !router.drillZone) report(['failover', 'steps', i, 'target'], `${db.name}'s name is served by traffic router ${router.name}, which has no drillZone, so failover drills could not rehearse this step without writing a production name: give the router a drillZone`);
        const restore = steps.find((s) => s.kind === 'restore-database' && s.target === step.target);
        if (!restore) report(['failover', 'steps', i, 'target'], `moves ${db.cutover.dnsName} to the DR instance of ${db.name}, but no restore-database step restores ${db.name}: add one`);
        else if (!dependenciesOf(steps, step.name).has(restore.name)) report(['failover', 'steps', i, 'after'], `must wait for ${restore.name} (the restore of ${db.name}), or the name would move before the instance exists: add it to after`);
      });
    },
  },
  {
    says: 'A check-application step waits for what its application needs: the names the plan moves, and the restore of the database it must be served from.',
    uses: ['failover.steps'],
    check(c, report) {
      if (!c.failover || graphProblems(c.failover.steps).length) return;
      const steps = c.failover.steps;
      steps.forEach((step, i) => {
        if (step.kind !== 'check-application') return;
        const before = dependenciesOf(steps, step.name);
        const moves = steps.filter((s) => s.kind === 'move-name' && !before.has(s.name));
        if (moves.length) report(['failover', 'steps', i, 'after'], `does not wait for ${moves.map((m) => m.name).join(', ')}, so it could check the application before its names move: add them to after`);
        if (!step.servesFrom) return;
        const restore = steps.find((s) => s.kind === 'restore-database' && s.target === step.servesFrom);
        if (!restore) report(['failover', 'steps', i, 'servesFrom'], `${step.servesFrom} is not restored by any restore-database step of the plan: name a restored database, or add its restore`);
      });
    },
  },
  {
    says: 'A check-application step\'s drill command and URL use only the placeholders a drill fills: {port}, {dnsServer}, and {name:<database>} of a database whose name the plan moves.',
    uses: ['failover.steps'],
    check(c, report) {
      if (!c.failover) return;
      const moved = new Set(c.failover.steps.filter((s) => s.kind === 'move-name').map((s) => s.target));
      c.failover.steps.forEach((step, i) => {
        if (step.kind !== 'check-application' || !step.drill) return;
        const texts: Array<[Array<string | number>, string]> = [...step.drill.command.map((arg, j): [Array<string | number>, string] => [['command', j], arg]), [['url'], step.drill.url]];
        for (const [where, text] of texts) {
          for (const [, inner] of text.matchAll(/\{([^{}]+)\}/g)) {
            if (inner === 'port' || inner === 'dnsServer') continue;
            if (inner.startsWith('name:') && moved.has(inner.slice('name:'.length))) continue;
            const why = inner.startsWith('name:')
              ? `no move-name step of the plan moves ${inner.slice('name:'.length)}, so a drill writes no drill name for it: add that step or name a moved database`
              : 'a drill fills only {port}, {dnsServer} and {name:<database>}: use one of them';
            report(['failover', 'steps', i, 'drill', ...where], `uses {${inner}}, but ${why}`);
          }
        }
      });
    },
  },
];

/** The whole file. */
export const configSchema = t.document(fields, {
  description: 'The lifeboat config file.',
  rules: [...rootRules, ...planRules],
});

// ----- the loaded config's types ---------------------------------------------------------------

/** A loaded config: every default filled in, durations in seconds, paths expanded. */
export type LifeboatConfig = z.output<typeof configSchema>;
export type EnvironmentConfig = LifeboatConfig['environments'][string];
export type ApprovalTimings = LifeboatConfig['approvals'];
export type Objectives = LifeboatConfig['objectives'];
export type ScheduleName = keyof LifeboatConfig['schedules'];
/** One calendar schedule (every schedule but the hourly drill sweeper's). */
export type ScheduleConfig = LifeboatConfig['schedules']['database'];
export type ObjectStoreConfig = LifeboatConfig['objectStores'][number];
export type TrafficRouterConfig = LifeboatConfig['trafficRouters'][number];
export type DatabaseTarget = LifeboatConfig['targets']['databases'][number];
export type PgBackRestTarget = Extract<DatabaseTarget, { engine: 'pgbackrest' }>;
export type RdsTarget = Extract<DatabaseTarget, { engine: 'rds' }>;
export type BucketTarget = LifeboatConfig['targets']['buckets'][number];
export type DirectoryTarget = LifeboatConfig['targets']['directories'][number];
export type SqliteTarget = LifeboatConfig['targets']['sqlite'][number];
export type DynamoDbTarget = LifeboatConfig['targets']['dynamodb'][number];
export type FailoverConfig = NonNullable<LifeboatConfig['failover']>;
export type FailoverStepConfig = FailoverConfig['steps'][number];
export type { SecretRef, TimeOfDay };
