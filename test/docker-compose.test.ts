/**
 * docker-compose.yml is the containerized twin of the embedded stack. Docker cannot run here,
 * so this suite reads the file and holds it to src/stack/settings.ts: the same components, the
 * ports loadStackSettings() computes under the same environment names and defaults, TLS on
 * MinIO, health-ordered start-up, and a worker that sees the stack exactly as settings.ts does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../src/config';
import { DEFAULTS, ENV, loadStackSettings, RESERVED_PORTS, stackPaths, StackSettings } from '../src/stack/settings';

const repoRoot = path.resolve(__dirname, '../..');
const composeFile = path.join(repoRoot, 'docker-compose.yml');

type Env = Record<string, string>;
type PortEntry = string | number | { target: number | string; published?: number | string; host_ip?: string; protocol?: string };
type VolumeEntry = string | { type?: string; source?: string; target: string; read_only?: boolean };

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string; args?: Record<string, string> };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: PortEntry[];
  volumes?: VolumeEntry[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  network_mode?: string;
  networks?: string[] | Record<string, { aliases?: string[] } | null>;
  restart?: string;
}

interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

// --- Compose interpolation: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, $$ ------

const VARIABLE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g;

function interpolate(text: string, env: Env): string {
  return text.replace(VARIABLE, (whole: string, name?: string, op?: string, arg?: string) => {
    if (whole === '$$') return '$';
    const value = env[name as string];
    const unset = value === undefined || (op !== undefined && op.startsWith(':') && value === '');
    if (op === undefined) return value ?? '';
    if (op.endsWith('-')) return unset ? (arg as string) : value;
    if (unset) throw new Error(`compose requires ${name}: ${arg}`);
    return value;
  });
}

function references(text: string): Array<{ name: string; fallback?: string }> {
  const found: Array<{ name: string; fallback?: string }> = [];
  for (const m of text.matchAll(VARIABLE)) {
    if (m[0] === '$$') continue;
    found.push({ name: m[1], fallback: m[2]?.endsWith('-') ? m[3] : undefined });
  }
  return found;
}

function resolveDeep<T>(value: T, env: Env): T {
  if (typeof value === 'string') return interpolate(value, env) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => resolveDeep(v, env)) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveDeep(v, env)])) as T;
  return value;
}

// --- Reading services ---------------------------------------------------------------------------

function envOf(service: Service): Env {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((e) => (e.includes('=') ? [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] : [e, ''])));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

function argv(service: Service): string[] {
  const c = service.command ?? [];
  return typeof c === 'string' ? c.split(/\s+/).filter(Boolean) : c.map(String);
}

function flagValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
}

function dependsOn(service: Service): Record<string, { condition?: string }> {
  const d = service.depends_on ?? {};
  return Array.isArray(d) ? Object.fromEntries(d.map((name) => [name, {}])) : d;
}

function mounts(service: Service): Array<{ source: string; target: string; readOnly: boolean }> {
  return (service.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source ?? '', target: v.target, readOnly: v.read_only === true };
    const [source, target, mode] = v.split(':');
    return { source, target, readOnly: (mode ?? '').split(',').includes('ro') };
  });
}

function buildOf(service: Service): { context: string; dockerfile: string; args: Record<string, string> } {
  const b = service.build;
  assert.ok(b, 'the service has no build section');
  if (typeof b === 'string') return { context: b, dockerfile: 'Dockerfile', args: {} };
  return { context: b.context ?? '.', dockerfile: b.dockerfile ?? 'Dockerfile', args: b.args ?? {} };
}

function dockerfileText(service: Service): string {
  const b = buildOf(service);
  const file = path.resolve(repoRoot, b.context, b.dockerfile);
  assert.ok(fs.existsSync(file), `${path.relative(repoRoot, file)} is missing`);
  return fs.readFileSync(file, 'utf8');
}

/** The service whose container holds this service's network namespace (and publishes its ports). */
function publisherOf(services: Record<string, Service>, name: string): string {
  const mode = services[name]?.network_mode;
  return mode?.startsWith('service:') ? mode.slice('service:'.length) : name;
}

function splitOutsideBraces(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '{') depth++;
    if (ch === '}') depth--;
    if (ch === separator && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts;
}

interface Binding {
  service: string;
  hostIp: string;
  published: number;
  target: number;
  protocol: string;
  /** Environment variables the published and target ports are written with. */
  publishedVars: string[];
  targetVars: string[];
}

function bindings(services: Record<string, Service>, env: Env): Binding[] {
  const out: Binding[] = [];
  for (const [name, service] of Object.entries(services)) {
    for (const entry of service.ports ?? []) {
      let hostIp = '';
      let published = '';
      let target = '';
      let protocol = 'tcp';
      if (typeof entry === 'object') {
        hostIp = entry.host_ip ?? '';
        published = String(entry.published ?? '');
        target = String(entry.target);
        protocol = entry.protocol ?? 'tcp';
      } else {
        const [spec, proto] = splitOutsideBraces(String(entry), '/');
        protocol = proto ?? 'tcp';
        const parts = splitOutsideBraces(spec, ':');
        [hostIp, published, target] = parts.length === 3 ? parts : parts.length === 2 ? ['', ...parts] : ['', '', parts[0]];
      }
      const vars = (raw: string) => references(raw).map((r) => r.name);
      const publishedPort = Number(interpolate(published, env));
      assert.ok(Number.isInteger(publishedPort) && publishedPort > 0, `${name} publishes ${JSON.stringify(entry)} without a fixed host port`);
      out.push({
        service: name,
        hostIp: interpolate(hostIp, env),
        published: publishedPort,
        target: Number(interpolate(target, env)),
        protocol: interpolate(protocol, env),
        publishedVars: vars(published),
        targetVars: vars(target),
      });
    }
  }
  return out;
}

interface ExpectedPort {
  component: string;
  what: string;
  port: number;
  protocol: 'tcp' | 'udp';
  /** The ENV name that moves it; the MinIO consoles follow their S3 port instead (port + 1). */
  env?: string;
  /** Port inside the container when it differs from the published one. */
  target?: number;
}

/** Every port the stack publishes, from settings.ts alone. */
function expectedPorts(s: StackSettings): ExpectedPort[] {
  return [
    { component: 'temporal', what: 'Temporal frontend', port: s.temporal.port, protocol: 'tcp', env: ENV.temporalPort },
    // The Web UI image listens on 8080 in its own container.
    { component: 'temporal-ui', what: 'Temporal Web UI', port: s.temporal.uiPort, protocol: 'tcp', env: ENV.temporalUiPort, target: 8080 },
    // The browser calls the codec server itself (the UI hands it the endpoint), so it is published too.
    { component: 'codec-server', what: 'codec server', port: s.temporal.codecPort, protocol: 'tcp', env: ENV.codecServerPort },
    { component: 'minio-primary', what: 'MinIO primary S3', port: s.minio.primary.port, protocol: 'tcp', env: ENV.minioPrimaryPort },
    { component: 'minio-primary', what: 'MinIO primary console', port: s.minio.primary.consolePort, protocol: 'tcp' },
    { component: 'minio-dr', what: 'MinIO dr S3', port: s.minio.dr.port, protocol: 'tcp', env: ENV.minioDrPort },
    { component: 'minio-dr', what: 'MinIO dr console', port: s.minio.dr.consolePort, protocol: 'tcp' },
    { component: 'postgres-primary', what: 'PostgreSQL primary', port: s.postgres.primaryPort, protocol: 'tcp', env: ENV.pgPrimaryPort },
    { component: 'postgres-catalog', what: 'PostgreSQL catalog', port: s.postgres.catalogPort, protocol: 'tcp', env: ENV.pgCatalogPort },
    { component: 'powerdns', what: 'DNS over UDP', port: s.dns.port, protocol: 'udp', env: ENV.dnsPort },
    { component: 'powerdns', what: 'DNS over TCP', port: s.dns.port, protocol: 'tcp', env: ENV.dnsPort },
    { component: 'powerdns', what: 'PowerDNS HTTP API', port: s.dns.apiPort, protocol: 'tcp', env: ENV.dnsApiPort },
  ];
}

const key = (port: number, protocol: string) => `${port}/${protocol}`;

/** Each server is configured to listen on the port settings.ts gives it. */
function assertListening(services: Record<string, Service>, s: StackSettings, opts: { consoles: boolean }): void {
  for (const region of [s.minio.primary, s.minio.dr]) {
    const args = argv(services[`minio-${region.region}`]);
    assert.equal(flagValue(args, '--address'), `:${region.port}`, `minio-${region.region} --address`);
    if (opts.consoles) assert.equal(flagValue(args, '--console-address'), `:${region.consolePort}`, `minio-${region.region} --console-address`);
  }
  assert.equal(envOf(services['postgres-primary']).PGPORT, String(s.postgres.primaryPort));
  assert.equal(envOf(services['postgres-catalog']).PGPORT, String(s.postgres.catalogPort));
  const dns = argv(services.powerdns);
  assert.match(flagValue(dns, '--local-address') ?? '', new RegExp(`:${s.dns.port}$`), 'powerdns --local-address');
  assert.equal(flagValue(dns, '--webserver-port'), String(s.dns.apiPort), 'powerdns --webserver-port');
  assert.equal(envOf(services.temporal).FRONTEND_GRPC_PORT, String(s.temporal.port), 'temporal FRONTEND_GRPC_PORT');
}

/** Every name the worker resolves `temporal` through: its own network entry or an alias of its namespace holder. */
function namesInNetwork(services: Record<string, Service>, holder: string): string[] {
  const networks = services[holder].networks;
  const aliases = networks && !Array.isArray(networks) ? Object.values(networks).flatMap((n) => n?.aliases ?? []) : [];
  return [holder, ...aliases];
}

describe('docker-compose.yml', () => {
  const text = fs.readFileSync(composeFile, 'utf8');
  const raw = parse(text, { merge: true }) as ComposeFile;
  const services = raw.services;
  const resolved = resolveDeep(services, {});
  const defaults = loadStackSettings({});
  const envNames = new Set<string>(Object.values(ENV));
  const components = ['temporal', 'temporal-ui', 'codec-server', 'temporal-postgresql', 'minio-primary', 'minio-dr', 'postgres-primary', 'postgres-catalog', 'powerdns', 'worker'];

  it('runs every component of the stack, from pinned images or local builds', () => {
    for (const name of [...components, 'certs']) assert.ok(services[name], `service ${name} is missing`);
    assert.match(services.temporal.image ?? '', /^temporalio\/auto-setup:\d+\.\d+/);
    assert.match(services['temporal-ui'].image ?? '', /^temporalio\/ui:\d+\.\d+/);
    assert.match(services['temporal-postgresql'].image ?? '', /^postgres:\d+/);
    assert.match(services.powerdns.image ?? '', /^powerdns\/pdns-auth-\d+:\d/);
    // Temporal persists to its own Postgres, not to a database of the stack.
    const t = envOf(services.temporal);
    assert.equal(t.POSTGRES_SEEDS ?? t.SQL_HOST, 'temporal-postgresql');
    assert.equal(dependsOn(services.temporal)['temporal-postgresql']?.condition, 'service_healthy');
    for (const [name, service] of Object.entries(services)) {
      if (service.build) continue;
      assert.ok(service.image, `${name} has neither an image nor a build`);
      const tag = service.image.split('/').pop()?.split(':')[1];
      assert.ok(tag && tag !== 'latest', `${name} must pin its image (${service.image})`);
    }
  });

  it('uses only environment names from ENV, each defaulting to its DEFAULTS value', () => {
    const refs = references(text);
    assert.ok(refs.length > 0);
    const defaultOf = new Map<string, string>(
      Object.entries(ENV).flatMap(([k, name]) => (k in DEFAULTS ? [[name, String(DEFAULTS[k as keyof typeof DEFAULTS])]] : [])),
    );
    for (const ref of refs) {
      assert.ok(envNames.has(ref.name), `\${${ref.name}} is not an environment name of src/stack/settings.ts ENV`);
      assert.notEqual(ref.fallback, undefined, `\${${ref.name}} needs a default so the file works with no environment`);
      if (defaultOf.has(ref.name)) assert.equal(ref.fallback, defaultOf.get(ref.name), `default of \${${ref.name}}`);
    }
    assert.doesNotMatch(text.replace(/\$\$/g, ''), /\$[A-Za-z_]/, 'write variables as ${NAME:-default}');
    for (const [name, service] of Object.entries(services)) {
      for (const k of Object.keys(envOf(service)).filter((k) => k.startsWith('LIFEBOAT_'))) {
        assert.ok(envNames.has(k), `${name} sets ${k}, which is not in ENV`);
      }
    }
  });

  it('publishes exactly the ports loadStackSettings({}) computes, on LIFEBOAT_HOST', () => {
    const expected = expectedPorts(defaults);
    const actual = bindings(services, {});
    assert.deepEqual(actual.map((b) => key(b.published, b.protocol)).sort(), expected.map((e) => key(e.port, e.protocol)).sort());
    for (const e of expected) {
      const b = actual.find((x) => x.published === e.port && x.protocol === e.protocol);
      assert.ok(b, `${e.what} (${key(e.port, e.protocol)}) is not published`);
      assert.equal(b.service, publisherOf(services, e.component), `${e.what} must be published by the container ${e.component} runs in`);
      assert.equal(b.hostIp, defaults.host, `${e.what} is published on ${b.hostIp || 'every address'}, not ${defaults.host}`);
      // Inside the shared namespace a server listens on its own port, as on the embedded stack.
      assert.equal(b.target, e.target ?? e.port, `${e.what} container port`);
      assert.deepEqual(b.publishedVars, e.env ? [e.env] : [], `${e.what} host port is written with ${e.env ? `\${${e.env}}` : 'no variable'}`);
    }
    assertListening(resolved, defaults, { consoles: true });
  });

  it('moves every port with its ENV variable, as loadStackSettings does', () => {
    const moved: Env = {
      [ENV.host]: '127.0.0.2',
      [ENV.temporalPort]: '17233',
      [ENV.temporalUiPort]: '18233',
      [ENV.codecServerPort]: '18234',
      [ENV.minioPrimaryPort]: '19100',
      [ENV.minioDrPort]: '19300',
      [ENV.pgPrimaryPort]: '56432',
      [ENV.pgCatalogPort]: '56433',
      [ENV.dnsPort]: '20053',
      [ENV.dnsApiPort]: '28081',
    };
    const s = loadStackSettings(moved);
    const actual = bindings(services, moved);
    for (const e of expectedPorts(s).filter((x) => x.env)) {
      const b = actual.find((x) => x.publishedVars.includes(e.env as string) && x.protocol === e.protocol);
      assert.ok(b, `no published port is written with \${${e.env}} (${e.what})`);
      assert.equal(b.published, e.port, e.what);
      assert.equal(b.target, e.target ?? e.port, `${e.what} container port`);
      assert.equal(b.hostIp, s.host, `${e.what} host address follows ${ENV.host}`);
    }
    // The consoles cannot follow (compose has no arithmetic): they stay on the default S3 port + 1.
    assertListening(resolveDeep(services, moved), s, { consoles: false });
  });

  it('publishes no reserved port and no port twice', () => {
    const actual = bindings(services, {});
    for (const b of actual) {
      assert.ok(!(RESERVED_PORTS as readonly number[]).includes(b.published), `${b.service} publishes reserved port ${b.published}`);
    }
    const keys = actual.map((b) => `${b.hostIp}:${key(b.published, b.protocol)}`);
    assert.equal(new Set(keys).size, keys.length, `a port is published twice: ${keys.join(', ')}`);
  });

  it('runs one MinIO server per region with TLS certificates from the certs one-shot', () => {
    const certs = resolved.certs;
    const tlsMount = mounts(certs).find((m) => m.source === 'tls');
    assert.ok(tlsMount && !tlsMount.readOnly, 'certs writes the tls volume');
    assert.equal(certs.restart, 'no');
    assert.ok(raw.volumes && 'tls' in raw.volumes, 'tls is a named volume');
    const certsDockerfile = dockerfileText(certs);
    assert.match(certsDockerfile, /openssl/);
    const script = fs.readFileSync(path.join(repoRoot, buildOf(certs).context, 'make-certs.sh'), 'utf8');
    for (const needle of ['openssl req -x509', 'openssl x509 -req', 'public.crt', 'private.key', 'CAs', 'subjectAltName']) {
      assert.ok(script.includes(needle), `make-certs.sh should contain ${needle}`);
    }

    const dataVolumes = new Set<string>();
    for (const region of [defaults.minio.primary, defaults.minio.dr]) {
      const name = `minio-${region.region}`;
      const minio = resolved[name];
      const env = envOf(minio);
      assert.equal(env.MINIO_REGION, region.region, `${name} MINIO_REGION`);
      assert.equal(env.MINIO_SITE_REGION, region.region, `${name} MINIO_SITE_REGION`);
      assert.equal(env.MINIO_ROOT_USER, defaults.minio.accessKey);
      assert.equal(env.MINIO_ROOT_PASSWORD, defaults.minio.secretKey);
      const args = argv(minio);
      assert.equal(args[0], 'server');
      const certsDir = flagValue(args, '--certs-dir');
      assert.ok(certsDir, `${name} runs without --certs-dir, so without TLS`);
      const tls = mounts(minio).find((m) => m.source === 'tls');
      assert.ok(tls, `${name} does not mount the tls volume`);
      assert.ok(tls.readOnly, `${name} mounts the certificates read-only`);
      assert.ok(certsDir === tls.target || certsDir.startsWith(`${tls.target}/`), `${name} --certs-dir ${certsDir} is outside the tls volume (${tls.target})`);
      assert.ok(script.includes(path.posix.relative(tlsMount.target, certsDir)), `make-certs.sh does not fill ${certsDir}`);
      assert.equal(dependsOn(minio).certs?.condition, 'service_completed_successfully', `${name} must wait for its certificates`);
      const health = [minio.healthcheck?.test ?? []].flat().join(' ');
      assert.match(health, new RegExp(`https://localhost:${region.port}/`), `${name} healthcheck speaks TLS on its port`);
      assert.match(health, /--cacert/, `${name} healthcheck verifies the certificate`);
      const data = mounts(minio).filter((m) => m.source !== 'tls').map((m) => m.source);
      assert.equal(data.length, 1, `${name} keeps its data in one volume`);
      dataVolumes.add(data[0]);
    }
    assert.equal(dataVolumes.size, 2, 'each region has its own data volume');
  });

  it('builds MinIO at the version package.json pins for the embedded stack', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { lifeboatTools: { minio: { module: string; version: string } } };
    for (const name of ['minio-primary', 'minio-dr']) {
      assert.equal(buildOf(services[name]).args.MINIO_VERSION, pkg.lifeboatTools.minio.version, `${name} MINIO_VERSION`);
      const dockerfile = dockerfileText(services[name]);
      assert.ok(dockerfile.includes(`${pkg.lifeboatTools.minio.module}@\${MINIO_VERSION}`), 'deploy/minio/Dockerfile installs the pinned module');
    }
  });

  it('runs PostgreSQL 15 with pgBackRest: the primary, and the catalog as a separate service', () => {
    const workerSettings = loadStackSettings(envOf(resolved.worker));
    const paths = stackPaths(workerSettings);
    for (const name of ['postgres-primary', 'postgres-catalog']) {
      const dockerfile = dockerfileText(services[name]);
      assert.equal(buildOf(services[name]).context, 'deploy/postgres');
      assert.match(dockerfile, /^FROM debian:bookworm\b/m);
      assert.match(dockerfile, /apt-get install[^\n]*\bpostgresql-15\b/);
      assert.match(dockerfile, /apt-get install[^\n]*\bpgbackrest\b/);
    }
    const primary = resolved['postgres-primary'];
    const catalog = resolved['postgres-catalog'];
    assert.deepEqual(argv(primary), ['primary']);
    assert.deepEqual(argv(catalog), ['catalog']);
    const p = envOf(primary);
    assert.equal(p.PGUSER, defaults.postgres.superuser);
    assert.equal(p.PGDATABASE, defaults.postgres.appDatabase);
    assert.equal(p.PGBACKREST_STANZA, defaults.pgbackrest.stanza);
    // The worker's pgBackRest finds the cluster, socket and config where stackPaths() says.
    assert.equal(p.PGDATA, paths.pgData('primary'));
    assert.equal(p.PGHOST, paths.pgSocketDir);
    assert.equal(p.PGBACKREST_CONFIG, paths.pgbackrestConf);
    const c = envOf(catalog);
    assert.equal(c.PGUSER, defaults.postgres.superuser);
    assert.equal(c.PGDATABASE, defaults.postgres.catalogDatabase);
    assert.equal(c.PGDATA, paths.pgData('catalog'));

    const sharedData = mounts(primary).find((m) => m.target === workerSettings.dataDir);
    assert.ok(sharedData, `postgres-primary mounts the data directory the worker uses (${workerSettings.dataDir})`);
    assert.ok(mounts(resolved.worker).some((m) => m.source === sharedData.source && m.target === workerSettings.dataDir), 'the worker mounts the same volume');
    // The catalog survives the loss of the primary: nothing of the primary's underneath it.
    const primaryVolumes = new Set(mounts(primary).map((m) => m.source));
    for (const m of mounts(catalog)) assert.ok(!primaryVolumes.has(m.source) || m.source === 'tls', `the catalog shares volume ${m.source} with the primary`);
    assert.ok(mounts(catalog).some((m) => c.PGDATA === m.target || c.PGDATA.startsWith(`${m.target}/`)), 'the catalog keeps its data in a volume');
    assert.equal(dependsOn(catalog)['postgres-primary'], undefined, 'the catalog must not depend on the primary');
  });

  it('builds the worker from deploy/worker/Dockerfile and gives it only ENV names, as settings.ts reads them', () => {
    const worker = resolved.worker;
    const build = buildOf(services.worker);
    assert.equal(build.dockerfile, 'deploy/worker/Dockerfile');
    assert.equal(path.resolve(repoRoot, build.context), repoRoot, 'the worker builds from the repository root');
    const dockerfile = dockerfileText(services.worker);
    assert.match(dockerfile, /^FROM node:20-bookworm\b/m);
    assert.match(dockerfile, /^RUN npm ci\b/m);
    assert.match(dockerfile, /^CMD \["node", "lib\/src\/worker\.js"\]/m);

    const env = envOf(worker);
    assert.equal(env.TEMPORAL_ADDRESS, `temporal:${defaults.temporal.port}`);
    const allowed = new Set(['TEMPORAL_ADDRESS', 'NODE_EXTRA_CA_CERTS']);
    for (const k of Object.keys(env)) assert.ok(envNames.has(k) || allowed.has(k), `the worker gets ${k}, which is not an ENV name`);
    const needed = [ENV.host, ENV.dataDir, ENV.temporalNamespace, ENV.minioAccessKey, ENV.minioSecretKey, ENV.minioPrimaryPort, ENV.minioDrPort, ENV.pgPrimaryPort, ENV.pgCatalogPort, ENV.dnsPort, ENV.dnsApiPort, ENV.dnsApiKey];
    for (const k of needed) assert.ok(k in env, `the worker needs ${k}`);

    // What settings.ts makes of the worker's environment is the default stack, data dir aside.
    const ws = loadStackSettings(env);
    const comparable = (s: StackSettings) => ({ ...s, dataDir: '', postgres: { ...s.postgres, osUser: '' } });
    assert.deepEqual(comparable(ws), comparable(defaults));
    const paths = stackPaths(ws);
    assert.equal(env.NODE_EXTRA_CA_CERTS, paths.caCert);
    assert.ok(mounts(worker).some((m) => m.source === 'tls' && m.target === paths.tls), `the worker sees the CA at ${paths.caCert}`);

    // Credentials the worker holds are the ones the servers run with.
    assert.equal(envOf(resolved['minio-primary']).MINIO_ROOT_USER, ws.minio.accessKey);
    assert.equal(envOf(resolved['minio-dr']).MINIO_ROOT_PASSWORD, ws.minio.secretKey);
    assert.equal(envOf(resolved.powerdns).PDNS_AUTH_API_KEY, ws.dns.apiKey);

    // Every server settings.ts addresses through LIFEBOAT_HOST shares the worker's namespace.
    const holder = publisherOf(services, 'worker');
    for (const name of ['temporal', 'minio-primary', 'minio-dr', 'postgres-primary', 'postgres-catalog', 'powerdns']) {
      assert.equal(publisherOf(services, name), holder, `${name} is not reachable on ${ws.host} from the worker`);
    }
    assert.ok(namesInNetwork(services, publisherOf(services, 'temporal')).includes(env.TEMPORAL_ADDRESS.split(':')[0]), 'TEMPORAL_ADDRESS names the Temporal container');
    assert.equal(envOf(resolved['temporal-ui']).TEMPORAL_ADDRESS, env.TEMPORAL_ADDRESS);
  });

  it("gives the worker a config file whose addresses are servers in the worker's namespace", () => {
    // The worker reads lifeboat.config.yaml (baked into the image); inside the shared namespace
    // its 127.0.0.1 addresses must be the compose servers.
    assert.match(dockerfileText(services.worker), /^COPY lifeboat\.config\.yaml /m);
    // Interpolated with the worker's own environment, as the worker will read it.
    const config = parseConfig(fs.readFileSync(path.join(repoRoot, 'lifeboat.config.yaml'), 'utf8'), 'lifeboat.config.yaml', { env: envOf(resolved.worker) });
    const ws = loadStackSettings(envOf(resolved.worker));
    assert.equal(config.temporal.address, `${ws.host}:${ws.temporal.port}`);
    assert.deepEqual([config.catalog.host, config.catalog.port], [ws.host, ws.postgres.catalogPort]);
    for (const region of [ws.minio.primary, ws.minio.dr]) {
      assert.equal(config.objectStores.find((o) => o.region === region.region)?.endpoint, `https://${ws.host}:${region.port}`, `object store ${region.region}`);
    }
  });

  it('orders start-up with healthchecks and depends_on conditions', () => {
    const conditions = new Set(['service_started', 'service_healthy', 'service_completed_successfully']);
    for (const [name, service] of Object.entries(services)) {
      assert.ok(!Array.isArray(service.depends_on), `${name}: give each dependency a condition`);
      for (const [dep, spec] of Object.entries(dependsOn(service))) {
        assert.ok(services[dep], `${name} depends on unknown service ${dep}`);
        assert.ok(spec.condition && conditions.has(spec.condition), `${name} -> ${dep} has no valid condition`);
        if (spec.condition === 'service_healthy') assert.ok(services[dep].healthcheck?.test, `${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
        if (spec.condition === 'service_completed_successfully') assert.equal(services[dep].restart, 'no', `${dep} is a one-shot and must not restart`);
      }
      const mode = service.network_mode;
      if (mode?.startsWith('service:')) assert.ok(dependsOn(service)[mode.slice(8)], `${name} must depend on ${mode.slice(8)}, whose network it joins`);
    }
    for (const name of ['temporal', 'temporal-postgresql', 'minio-primary', 'minio-dr', 'postgres-primary', 'postgres-catalog', 'powerdns']) {
      assert.ok(services[name].healthcheck?.test, `${name} has no healthcheck`);
    }
    const closure = (start: string): Set<string> => {
      const seen = new Set<string>();
      const visit = (n: string) => Object.keys(dependsOn(services[n])).forEach((d) => !seen.has(d) && (seen.add(d), visit(d)));
      visit(start);
      return seen;
    };
    for (const name of Object.keys(services)) assert.ok(!closure(name).has(name), `${name} depends on itself`);
    const workerNeeds = closure('worker');
    for (const name of components.filter((c) => c !== 'worker' && c !== 'temporal-ui' && c !== 'codec-server')) assert.ok(workerNeeds.has(name), `the worker starts before ${name}`);
    assert.equal(dependsOn(services.worker).temporal?.condition, 'service_healthy');
  });

  it("stack-init's imports exist in the compiled sources", () => {
    const init = resolved['stack-init'];
    assert.ok(init, 'the stack-init one-shot is missing');
    assert.equal(init.restart, 'no');
    const script = argv(init).find((a) => a.endsWith('.mjs'));
    assert.ok(script, 'stack-init runs a .mjs script');
    const file = path.join(repoRoot, script);
    const imports = fs.readFileSync(file, 'utf8').split('\n').filter((line) => /^import .* from '[^']+';$/.test(line));
    assert.ok(imports.some((line) => line.includes('lib/src/')), 'stack-init reuses the compiled project code');
    // Node reports a missing named export (e.g. a renamed function) as a SyntaxError at import.
    const result = spawnSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', imports.join('\n')], { cwd: path.dirname(file), encoding: 'utf8', timeout: 30000 });
    assert.equal(result.status, 0, `importing what stack-init imports failed:\n${result.stderr}`);
  });

  it('runs `lifeboat codec-server` with the stack\'s keyring and points the Web UI at it, the token in the endpoint\'s path', () => {
    const codec = resolved['codec-server'];
    assert.ok(codec, 'the codec-server service is missing');
    // The worker image, its compiled codec server, the config the worker reads.
    assert.deepEqual(buildOf(services['codec-server']), buildOf(services.worker));
    assert.deepEqual(argv(codec), ['node', 'lib/src/codec-server.js']);
    assert.ok(fs.existsSync(path.join(repoRoot, 'lib/src/codec-server.js')), 'lib/src/codec-server.js is not built');
    const env = envOf(codec);
    const cs = loadStackSettings(env);
    const config = parseConfig(fs.readFileSync(path.join(repoRoot, 'lifeboat.config.yaml'), 'utf8'), 'lifeboat.config.yaml', { env });
    assert.ok(config.temporal.encryption && config.temporal.codecServer, 'the config declares the keyring and the codec server');
    // It listens on every address of the shared namespace (a published port does not reach its loopback), on the published port.
    assert.equal(config.temporal.codecServer.host, '0.0.0.0');
    assert.equal(config.temporal.codecServer.port, cs.temporal.codecPort);
    assert.equal(publisherOf(services, 'codec-server'), publisherOf(services, 'worker'));
    // CORS lets the browser call it from the UI's published origin only.
    const ui = resolved['temporal-ui'];
    const uiBinding = bindings(services, {}).find((b) => b.service === 'temporal-ui');
    assert.ok(uiBinding);
    assert.equal(config.temporal.codecServer.uiOrigin, `http://${uiBinding.hostIp}:${uiBinding.published}`);
    // The keys and the token are the data volume's, where stack-init writes them.
    assert.ok(stackPaths(cs).secret('codec-server-token').startsWith(`${cs.dataDir}/`));
    assert.ok(mounts(codec).some((m) => m.source === 'lifeboat-data' && m.target === cs.dataDir), `the codec server reads its keys under ${cs.dataDir}`);
    assert.equal(dependsOn(codec)['stack-init']?.condition, 'service_completed_successfully');
    assert.ok(codec.healthcheck?.test, 'the codec server has a healthcheck');

    // The Web UI waits for it and gets its endpoint, with the token read from the one file it is given.
    assert.equal(dependsOn(ui)['codec-server']?.condition, 'service_healthy');
    const entry = Array.isArray(ui.entrypoint) ? ui.entrypoint.join(' ') : String(ui.entrypoint ?? '');
    const endpoint = /export TEMPORAL_CODEC_ENDPOINT="([^"]+)" && exec \.\/start-ui-server\.sh$/.exec(entry);
    assert.ok(endpoint, `the UI's entrypoint sets TEMPORAL_CODEC_ENDPOINT and starts the UI: ${entry}`);
    const tokenFile = /^http:\/\/127\.0\.0\.1:(\d+)\/t\/\$\(cat (\S+)\)$/.exec(endpoint[1]);
    assert.ok(tokenFile, `the endpoint is the codec server's, the token in its path: ${endpoint[1]}`);
    assert.equal(Number(tokenFile[1]), cs.temporal.codecPort);
    const uiMount = mounts(ui).find((m) => tokenFile[2].startsWith(`${m.target}/`));
    assert.ok(uiMount && uiMount.readOnly, 'the UI reads the token from a read-only volume');
    assert.ok(!mounts(ui).some((m) => m.source === 'lifeboat-data'), 'the UI never mounts the data volume (the history keys)');
    assert.ok(mounts(resolved['stack-init']).some((m) => m.source === uiMount.source && !m.readOnly), 'stack-init writes that volume');
    const init = fs.readFileSync(path.join(repoRoot, 'deploy/worker/stack-init.mjs'), 'utf8');
    assert.ok(init.includes(`'${tokenFile[2]}'`) && init.includes("paths.secret('codec-server-token')"), 'stack-init copies the codec server\'s token to the file the UI reads');
    assert.match(dockerfileText(services.worker), new RegExp(`chown -R postgres:postgres .*${uiMount.target.replace(/[/.-]/g, '\\$&')}`), 'the worker image owns the mount point, so stack-init may write it');
  });
});
