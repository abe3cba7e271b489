/**
 * `lifeboat stack up | down | status`: the embedded local stack, every server real.
 * `up` is idempotent (healthy components are left alone), refuses a taken port before starting
 * anything, and on failure stops what it started so nothing is left half-made. `down` stops
 * exactly the processes this data directory's `up` started.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { migrateCatalog } from '../catalog/migrations';
import { createS3Client, ensureAbortIncompleteUploadsRule, ensureBucket } from '../engines/s3';
import { PutObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { CodecServerProcess } from './codec-server';
import { ComponentHealth, StackComponent, StackContext } from './component';
import { MinioServer } from './minio';
import { localPgBackRest, writePgBackRestConfig } from './pgbackrest';
import { PostgresCluster } from './postgres';
import { PowerDnsServer } from './powerdns';
import { PrometheusServer } from './prometheus';
import { ensureDir, livePid, portIsFree, run } from '../platform/processes';
import { SampleAppServer, seedSampleApp } from './sample-app';
import { loadStackSettings, RegionSettings, RESERVED_PORTS, stackPaths, StackPaths, StackSettings } from './settings';
import { TemporalDevServer } from './temporal';
import { knownAgents, stopWorker } from './worker-process';
import { ensureLocalCertificates } from './tls';
import { resolveTools } from './tools';

export interface Stack {
  ctx: StackContext;
  temporal: TemporalDevServer;
  minioPrimary: MinioServer;
  minioDr: MinioServer;
  catalog: PostgresCluster;
  primary: PostgresCluster;
  dns: PowerDnsServer;
  sampleApp: SampleAppServer;
  codecServer: CodecServerProcess;
  /** Part of `components` only when asked for (`stack up --with-prometheus`) or already running. */
  prometheus: PrometheusServer;
  /** In start order. */
  components: StackComponent[];
}

export interface StackOptions {
  /** Start a Prometheus too (`stack up --with-prometheus`); a running one is always managed. */
  withPrometheus?: boolean;
  /** Agents `lifeboat worker start` runs beside the worker: Prometheus scrapes one port each after the worker's. */
  agents?: number;
}

export function createStack(settings: StackSettings = loadStackSettings(), log: (line: string) => void = () => undefined, options: StackOptions = {}): Stack {
  const ctx: StackContext = { settings, paths: stackPaths(settings), tools: resolveTools(), log };
  const codecServer = new CodecServerProcess(ctx);
  const temporal = new TemporalDevServer(ctx, codecServer);
  const minioPrimary = new MinioServer(ctx, settings.minio.primary);
  const minioDr = new MinioServer(ctx, settings.minio.dr);
  const catalog = new PostgresCluster(ctx, 'catalog');
  const primary = new PostgresCluster(ctx, 'primary');
  const dns = new PowerDnsServer(ctx);
  const sampleApp = new SampleAppServer(ctx);
  const prometheus = new PrometheusServer(ctx, options.agents ?? 0);
  const components: StackComponent[] = [codecServer, temporal, minioPrimary, minioDr, catalog, primary, dns, sampleApp];
  if (options.withPrometheus || prometheus.isRunning()) components.push(prometheus);
  return { ctx, temporal, minioPrimary, minioDr, catalog, primary, dns, sampleApp, codecServer, prometheus, components };
}

export function s3ClientFor(settings: StackSettings, region: RegionSettings) {
  return createS3Client({
    region: region.region,
    endpoint: `https://${settings.host}:${region.port}`,
    accessKeyId: settings.minio.accessKey,
    secretAccessKey: settings.minio.secretKey,
    caFile: stackPaths(settings).caCert,
  });
}

/** A few recognizable objects so file backups have something real to copy. */
export const SAMPLE_OBJECTS: Array<{ key: string; body: string; contentType: string }> = [
  { key: 'invoices/2026/INV-0001.json', body: JSON.stringify({ invoice: 'INV-0001', total_cents: 12999, customer: 1 }), contentType: 'application/json' },
  { key: 'invoices/2026/INV-0002.json', body: JSON.stringify({ invoice: 'INV-0002', total_cents: 4550, customer: 2 }), contentType: 'application/json' },
  { key: 'avatars/customer-1.txt', body: 'avatar placeholder for customer 1\n', contentType: 'text/plain' },
  { key: 'exports/orders-2026-01.csv', body: 'id,customer_id,status\n1,2,paid\n2,3,shipped\n', contentType: 'text/csv' },
];

/** Every bucket of both regions, with versioning and object lock, plus the sample objects. Idempotent. */
export async function ensureBuckets(settings: StackSettings): Promise<void> {
  for (const region of [settings.minio.primary, settings.minio.dr]) {
    const s3 = s3ClientFor(settings, region);
    try {
      await ensureBucket(s3, { name: region.backupBucket, versioning: true });
      // Parts of uploads a crashed worker never finished are removed by the store itself: a
      // lifecycle rule where the store takes one, else (MinIO) its own stale-upload purge (see minio.ts).
      await ensureAbortIncompleteUploadsRule(s3, region.backupBucket);
      await ensureBucket(s3, { name: region.filesBucket, versioning: true });
      await ensureBucket(s3, { name: region.evidenceBucket, versioning: true, objectLockDays: 30 });
      if (region.region === 'primary') {
        for (const o of SAMPLE_OBJECTS) {
          const exists = await s3.send(new HeadObjectCommand({ Bucket: region.filesBucket, Key: o.key })).then(() => true, () => false);
          if (!exists) await s3.send(new PutObjectCommand({ Bucket: region.filesBucket, Key: o.key, Body: o.body, ContentType: o.contentType }));
        }
      }
    } finally {
      s3.destroy();
    }
  }
}

/** Every port of every component (or of those given) not already running must be free, or nothing starts. */
export async function checkPorts(stack: Stack, components: StackComponent[] = stack.components): Promise<void> {
  const problems: string[] = [];
  const seen = new Map<number, string>();
  for (const component of components) {
    for (const claim of component.ports()) {
      const other = seen.get(claim.port);
      if (other) problems.push(`port ${claim.port} is configured for both ${other} and ${claim.what}: give one of them another port (${claim.env}).`);
      seen.set(claim.port, claim.what);
      if ((RESERVED_PORTS as readonly number[]).includes(claim.port)) {
        problems.push(`port ${claim.port} (${claim.what}) belongs to a service this machine already runs: choose another with ${claim.env}.`);
      }
      if (component.isRunning()) continue;
      if (!(await portIsFree(stack.ctx.settings.host, claim.port))) {
        problems.push(`port ${claim.port} (${claim.what}) is already in use by another process: stop that process or set ${claim.env} to a free port.`);
      }
    }
  }
  if (problems.length > 0) throw new Error(problems.join('\n'));
}

/** The config file refers to these (`secretRef: file:{dataDir}/secrets/...`), never to values. */
export function writeLocalSecrets(settings: StackSettings, paths: StackPaths): void {
  fs.mkdirSync(path.dirname(paths.secret('dns-api-key')), { recursive: true, mode: 0o700 });
  const secrets = { 'minio-access-key': settings.minio.accessKey, 'minio-secret-key': settings.minio.secretKey, 'dns-api-key': settings.dns.apiKey } as const;
  for (const [name, value] of Object.entries(secrets)) {
    fs.writeFileSync(paths.secret(name as keyof typeof secrets), value + '\n', { mode: 0o600 });
  }
  ensureLogicalBackupKey(path.dirname(paths.secret('dns-api-key')));
  // Made once and never replaced: histories encrypted with the key need it, and the UI holds the token.
  writeOnce(paths.secret('history-key-local-1'), randomBytes(32).toString('hex'));
  writeOnce(paths.secret('codec-server-token'), randomBytes(24).toString('base64url'));
}

function writeOnce(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/**
 * The key logical dumps are encrypted with: 32 random bytes as hex, written once. Never
 * replaced, since every dump made with it needs it to be restored.
 */
export function ensureLogicalBackupKey(secretsDir: string): string {
  const file = path.join(secretsDir, 'logical-backup-key');
  fs.mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  try {
    fs.writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return file;
}

/**
 * The example config's SQLite target (`app-sqlite`, `{dataDir}/sqlite/app.db`): a small WAL
 * database made once by the `sqlite3` shell, so preflight and `lifeboat backup app-sqlite` find
 * it; never replaced (tests and people may have written to it).
 */
export async function ensureSampleSqlite(root: string): Promise<void> {
  const file = path.join(root, 'sqlite', 'app.db');
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await run('sqlite3', [
    file,
    'PRAGMA journal_mode = WAL',
    'CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
    "INSERT OR IGNORE INTO settings VALUES ('schema_version', '1'), ('feature_flags', '{}')",
  ]);
}

export interface UpResult {
  started: string[];
  alreadyRunning: string[];
}

export async function stackUp(stack: Stack): Promise<UpResult> {
  const { ctx } = stack;
  const { settings, paths, tools } = ctx;
  // Refuse a taken port before touching anything: a refused `up` leaves nothing behind.
  await checkPorts(stack);
  fs.mkdirSync(paths.root, { recursive: true });
  // Traversable by the unprivileged Postgres user when we run as root.
  fs.chmodSync(paths.root, 0o755);
  for (const dir of [paths.logs, paths.run]) fs.mkdirSync(dir, { recursive: true });
  await ensureDir(paths.restoresDir, { owner: settings.postgres.osUser, mode: 0o755 });
  writeLocalSecrets(settings, paths);
  await ensureSampleSqlite(paths.root);
  await ensureLocalCertificates(tools.openssl, paths.tls, settings.host);
  await writePgBackRestConfig(ctx);

  const started: StackComponent[] = [];
  const alreadyRunning: string[] = [];
  const ensureRunning = async (component: StackComponent) => {
    if (component.isRunning()) {
      const health = await component.health();
      if (health.healthy || (component.accepting && (await component.accepting()))) {
        alreadyRunning.push(component.name);
        return;
      }
      ctx.log(`${component.name} is running but unhealthy (${health.detail}); restarting it`);
      await component.stop();
    }
    ctx.log(`starting ${component.name}`);
    started.push(component);
    const t0 = Date.now();
    await component.start();
    ctx.log(`${component.name} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${component.endpoint}`);
  };

  try {
    // Temporal and MinIO are independent: start them side by side.
    await Promise.all([ensureRunning(stack.codecServer), ensureRunning(stack.temporal), ensureRunning(stack.minioPrimary), ensureRunning(stack.minioDr)]);
    await ensureBuckets(settings);
    await ensureRunning(stack.catalog);
    await stack.catalog.withClient(settings.postgres.catalogDatabase, (c) => migrateCatalog(c));
    await ensureRunning(stack.primary);
    // The stanza must exist before the first WAL segment fills, or archiving starts out failing.
    const pgbackrest = localPgBackRest(ctx);
    await pgbackrest.stanzaCreate();
    const seeded = await stack.primary.withClient(settings.postgres.appDatabase, (c) => seedSampleApp(c, settings.postgres.seedRows));
    if (seeded.seeded) ctx.log(`seeded the sample application with ${settings.postgres.seedRows} orders`);
    if (!(await stack.primary.health()).healthy) {
      // Archiving failed earlier (say, MinIO was down): prove it works again, in place.
      ctx.log('WAL archiving was failing: running `pgbackrest check` to archive the backlog');
      await pgbackrest.check();
    }
    await ensureRunning(stack.dns);
    // Last: it reaches the primary through the name PowerDNS serves.
    await ensureRunning(stack.sampleApp);
    if (stack.components.includes(stack.prometheus)) {
      const wasRunning = stack.prometheus.isRunning();
      await ensureRunning(stack.prometheus);
      // Running already: the scrape targets may have changed (another metrics port, more agents).
      if (wasRunning && alreadyRunning.includes(stack.prometheus.name)) await stack.prometheus.reload();
    }
  } catch (err) {
    // Nothing half-started: stop what this `up` started, newest first.
    for (const component of started.reverse()) await component.stop().catch(() => undefined);
    throw err;
  }
  return { started: started.map((c) => c.name), alreadyRunning };
}

export async function stackDown(stack: Stack): Promise<string[]> {
  const stopped: string[] = [];
  // A worker started with `lifeboat worker start` goes first: it would only retry against a stopped stack.
  if (await stopWorker(stack.ctx)) stopped.push('worker');
  for (const agent of knownAgents(stack.ctx)) if (await stopWorker(stack.ctx, agent)) stopped.push(`agent ${agent}`);
  // Restored instances are clusters of this data directory too; they keep their data and can be started again.
  for (const name of await stopRestoredInstances(stack.ctx)) stopped.push(`restored instance ${name}`);
  for (const component of [...stack.components].reverse()) {
    if (!component.isRunning()) continue;
    stack.ctx.log(`stopping ${component.name}`);
    await component.stop();
    stopped.push(component.name);
  }
  return stopped;
}

/** Stops every running cluster under the restores directory (fast, then immediate). */
async function stopRestoredInstances(ctx: StackContext): Promise<string[]> {
  const dir = ctx.paths.restoresDir;
  if (!fs.existsSync(dir)) return [];
  const stopped: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const dataDir = path.join(dir, name);
    if (!fs.existsSync(path.join(dataDir, 'PG_VERSION')) || !livePid(path.join(dataDir, 'postmaster.pid'), dataDir)) continue;
    const pgCtl = ctx.tools.pgBin('pg_ctl');
    const asUser = ctx.settings.postgres.osUser;
    const fast = await run(pgCtl, ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop'], { asUser, check: false });
    if (fast.code !== 0) await run(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop'], { asUser, check: false });
    stopped.push(name);
  }
  return stopped;
}

export interface ComponentStatus extends ComponentHealth {
  name: string;
  running: boolean;
  endpoint: string;
}

export async function stackStatus(stack: Stack): Promise<ComponentStatus[]> {
  return Promise.all(
    stack.components.map(async (c) => {
      const running = c.isRunning();
      const health = running ? await c.health() : { healthy: false, detail: 'not running (start it with `lifeboat stack up`)' };
      return { name: c.name, running, endpoint: c.endpoint, ...health };
    }),
  );
}
