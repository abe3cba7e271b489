/**
 * Where every component of the embedded local stack listens and keeps its data.
 * One source of truth: `lifeboat stack`, the worker, the tests and docker-compose.yml
 * (checked by a test) all agree with these defaults and environment names.
 */
import path from 'node:path';
import { dataDir, defaultDbOsUser, HOST_ENV } from '../platform/host';

export interface RegionSettings {
  /** S3 region name MinIO announces and clients sign for. */
  region: 'primary' | 'dr';
  port: number;
  consolePort: number;
  /** Bucket pgBackRest and lifeboat write backups into, in this region. */
  backupBucket: string;
  /** Write-once (object lock) bucket for drill reports and approvals. */
  evidenceBucket: string;
  /** Application file bucket: the source in `primary`, the replica in `dr`. */
  filesBucket: string;
}

export interface StackSettings {
  dataDir: string;
  /** Loopback address every server binds to. */
  host: string;
  temporal: { port: number; uiPort: number; namespace: string; /** `lifeboat codec-server`, which the Web UI decodes payloads through. */ codecPort: number };
  minio: { accessKey: string; secretKey: string; primary: RegionSettings; dr: RegionSettings };
  postgres: {
    primaryPort: number;
    catalogPort: number;
    /** Database of the sample application on the primary cluster. */
    appDatabase: string;
    catalogDatabase: string;
    /** Superuser role lifeboat connects as (local trust authentication). */
    superuser: string;
    /** OS user that owns and runs the clusters; `postgres` refuses to run as root. */
    osUser: string;
    /** Rows seeded into the sample application's largest table. */
    seedRows: number;
    /** Ports restored clusters take, first free one each: two stacks on one machine need two ranges. */
    restorePorts: { from: number; to: number };
    /** Ports restore drills' clusters take, apart from the restores' (isolated, and never short of a restore's port). */
    drillPorts: { from: number; to: number };
  };
  pgbackrest: { stanza: string };
  dns: { port: number; apiPort: number; apiKey: string; zone: string; appDbName: string };
  /** The sample application's HTTP service. */
  app: { port: number };
  /** `stack up --with-prometheus`: a real Prometheus scraping the workers' metrics endpoints. */
  prometheus: { port: number; /** The worker's metrics port it scrapes (agents: the next ones, as `lifeboat worker start` gives them). */ metricsPort: number; scrapeIntervalSeconds: number };
}

/** Environment variable for each tunable, next to its default (documented in README.md). */
export const ENV = {
  dataDir: HOST_ENV.dataDir,
  host: 'LIFEBOAT_HOST',
  temporalPort: 'LIFEBOAT_TEMPORAL_PORT',
  temporalUiPort: 'LIFEBOAT_TEMPORAL_UI_PORT',
  temporalNamespace: 'LIFEBOAT_TEMPORAL_NAMESPACE',
  codecServerPort: 'LIFEBOAT_CODEC_SERVER_PORT',
  /** Read by lifeboat.config.yaml (temporal.codecServer.host), not by the stack: docker-compose.yml's codec server listens on 0.0.0.0. */
  codecServerHost: 'LIFEBOAT_CODEC_SERVER_HOST',
  minioAccessKey: 'LIFEBOAT_MINIO_ACCESS_KEY',
  minioSecretKey: 'LIFEBOAT_MINIO_SECRET_KEY',
  minioPrimaryPort: 'LIFEBOAT_MINIO_PRIMARY_PORT',
  minioDrPort: 'LIFEBOAT_MINIO_DR_PORT',
  pgPrimaryPort: 'LIFEBOAT_PG_PRIMARY_PORT',
  pgCatalogPort: 'LIFEBOAT_PG_CATALOG_PORT',
  pgOsUser: HOST_ENV.pgOsUser,
  seedRows: 'LIFEBOAT_SEED_ROWS',
  dnsPort: 'LIFEBOAT_DNS_PORT',
  dnsApiPort: 'LIFEBOAT_DNS_API_PORT',
  dnsApiKey: 'LIFEBOAT_DNS_API_KEY',
  restorePortFrom: 'LIFEBOAT_RESTORE_PORT_FROM',
  restorePortTo: 'LIFEBOAT_RESTORE_PORT_TO',
  drillPortFrom: 'LIFEBOAT_DRILL_PORT_FROM',
  drillPortTo: 'LIFEBOAT_DRILL_PORT_TO',
  appPort: 'LIFEBOAT_APP_PORT',
  prometheusPort: 'LIFEBOAT_PROMETHEUS_PORT',
  /** Also read by the worker (it overrides metrics.port): the stack's Prometheus scrapes this port. */
  metricsPort: 'LIFEBOAT_METRICS_PORT',
} as const;

export const DEFAULTS = {
  host: '127.0.0.1',
  temporalPort: 7233,
  temporalUiPort: 8233,
  temporalNamespace: 'default',
  codecServerPort: 8234,
  codecServerHost: '127.0.0.1',
  // Local-only credentials of the embedded MinIO servers; production reads real ones from the environment.
  minioAccessKey: 'lifeboat',
  minioSecretKey: 'lifeboat-local-secret',
  minioPrimaryPort: 9100,
  minioDrPort: 9200,
  pgPrimaryPort: 55432,
  pgCatalogPort: 55433,
  seedRows: 20000,
  dnsPort: 10053,
  dnsApiPort: 18081,
  dnsApiKey: 'lifeboat-local-dns-key',
  restorePortFrom: 55440,
  restorePortTo: 55499,
  // Right after the restore range.
  drillPortFrom: 55500,
  drillPortTo: 55539,
  appPort: 18090,
  // Clear of Prometheus' own 9090 and the exporters' 91xx, which a machine may already run.
  prometheusPort: 19090,
  // The port OpenTelemetry's Prometheus exporter uses by convention.
  metricsPort: 9464,
} as const;

/** Ports other services on lifeboat's machines already hold; the defaults stay clear of them. */
export const RESERVED_PORTS = [5432, 3306, 6379, 5672, 1883, 4222] as const;

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0 || value > 65535 * 1000) {
    throw new Error(`${name}=${raw} is not a positive whole number: set it to a number (default ${fallback}) or unset it.`);
  }
  return value;
}

export function loadStackSettings(env: NodeJS.ProcessEnv = process.env): StackSettings {
  const port = (name: keyof typeof ENV, fallback: number) => {
    const value = intFrom(env, ENV[name], fallback);
    if (value > 65535) throw new Error(`${ENV[name]}=${value} is not a TCP port: use a number from 1024 to 65535.`);
    return value;
  };
  const minioPrimaryPort = port('minioPrimaryPort', DEFAULTS.minioPrimaryPort);
  const restorePorts = { from: port('restorePortFrom', DEFAULTS.restorePortFrom), to: port('restorePortTo', DEFAULTS.restorePortTo) };
  if (restorePorts.from > restorePorts.to) {
    throw new Error(`${ENV.restorePortFrom}=${restorePorts.from} is above ${ENV.restorePortTo}=${restorePorts.to}: give a range whose start is not above its end.`);
  }
  const drillPorts = { from: port('drillPortFrom', DEFAULTS.drillPortFrom), to: port('drillPortTo', DEFAULTS.drillPortTo) };
  if (drillPorts.from > drillPorts.to) {
    throw new Error(`${ENV.drillPortFrom}=${drillPorts.from} is above ${ENV.drillPortTo}=${drillPorts.to}: give a range whose start is not above its end.`);
  }
  if (drillPorts.from <= restorePorts.to && restorePorts.from <= drillPorts.to) {
    throw new Error(
      `The drill port range ${drillPorts.from}-${drillPorts.to} (${ENV.drillPortFrom}/${ENV.drillPortTo}) overlaps the restore port range ${restorePorts.from}-${restorePorts.to}: give drills a range of their own.`,
    );
  }
  const minioDrPort = port('minioDrPort', DEFAULTS.minioDrPort);
  return {
    dataDir: dataDir(env),
    host: env[ENV.host] || DEFAULTS.host,
    temporal: {
      port: port('temporalPort', DEFAULTS.temporalPort),
      uiPort: port('temporalUiPort', DEFAULTS.temporalUiPort),
      namespace: env[ENV.temporalNamespace] || DEFAULTS.temporalNamespace,
      codecPort: port('codecServerPort', DEFAULTS.codecServerPort),
    },
    minio: {
      accessKey: env[ENV.minioAccessKey] || DEFAULTS.minioAccessKey,
      secretKey: env[ENV.minioSecretKey] || DEFAULTS.minioSecretKey,
      primary: {
        region: 'primary',
        port: minioPrimaryPort,
        consolePort: minioPrimaryPort + 1,
        backupBucket: 'lifeboat-backups-primary',
        evidenceBucket: 'lifeboat-evidence-primary',
        filesBucket: 'app-files',
      },
      dr: {
        region: 'dr',
        port: minioDrPort,
        consolePort: minioDrPort + 1,
        backupBucket: 'lifeboat-backups-dr',
        evidenceBucket: 'lifeboat-evidence-dr',
        filesBucket: 'app-files-replica',
      },
    },
    postgres: {
      primaryPort: port('pgPrimaryPort', DEFAULTS.pgPrimaryPort),
      catalogPort: port('pgCatalogPort', DEFAULTS.pgCatalogPort),
      appDatabase: 'app',
      catalogDatabase: 'lifeboat_catalog',
      superuser: 'lifeboat',
      osUser: defaultDbOsUser(env),
      seedRows: intFrom(env, ENV.seedRows, DEFAULTS.seedRows),
      restorePorts,
      drillPorts,
    },
    pgbackrest: { stanza: 'app' },
    dns: {
      port: port('dnsPort', DEFAULTS.dnsPort),
      apiPort: port('dnsApiPort', DEFAULTS.dnsApiPort),
      apiKey: env[ENV.dnsApiKey] || DEFAULTS.dnsApiKey,
      zone: 'lifeboat.test.',
      appDbName: 'db.app.lifeboat.test.',
    },
    app: { port: port('appPort', DEFAULTS.appPort) },
    prometheus: { port: port('prometheusPort', DEFAULTS.prometheusPort), metricsPort: port('metricsPort', DEFAULTS.metricsPort), scrapeIntervalSeconds: 5 },
  };
}

/** Every directory and file of the stack, derived from the data directory. */
export function stackPaths(s: StackSettings) {
  const d = s.dataDir;
  return {
    root: d,
    logs: path.join(d, 'logs'),
    run: path.join(d, 'run'),
    tls: path.join(d, 'tls'),
    caCert: path.join(d, 'tls', 'ca.crt'),
    temporalDb: path.join(d, 'temporal', 'temporal.db'),
    minioData: (region: string) => path.join(d, 'minio', region, 'data'),
    minioCerts: (region: string) => path.join(d, 'minio', region, 'certs'),
    pgData: (cluster: string) => path.join(d, 'postgres', cluster),
    pgSocketDir: path.join(d, 'postgres', 'sockets'),
    pgbackrestDir: path.join(d, 'pgbackrest'),
    pgbackrestConf: path.join(d, 'pgbackrest', 'pgbackrest.conf'),
    restoresDir: path.join(d, 'restores'),
    pdnsDir: path.join(d, 'pdns'),
    pdnsDb: path.join(d, 'pdns', 'pdns.sqlite3'),
    prometheusDir: path.join(d, 'prometheus'),
    /** Local-stack credentials as files, for the config's `file:` secret references. */
    secret: (name: 'minio-access-key' | 'minio-secret-key' | 'dns-api-key' | 'history-key-local-1' | 'codec-server-token') => path.join(d, 'secrets', name),
  };
}
export type StackPaths = ReturnType<typeof stackPaths>;
