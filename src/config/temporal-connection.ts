/**
 * How lifeboat connects to Temporal: the one place every client and worker gets its address,
 * namespace, TLS and API key from.
 *
 * Settings come from four places, per setting, first found wins:
 *   1. the environment the temporal CLI reads (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
 *      TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_*);
 *   2. the temporal CLI's profile file (TEMPORAL_CONFIG_FILE or ~/.config/temporalio/temporal.toml;
 *      profile TEMPORAL_PROFILE, else `temporal.profile`, else `default`);
 *   3. lifeboat's config, section `temporal`;
 *   4. the defaults (127.0.0.1:7233, namespace default, no TLS).
 * So `temporal env`-style settings serve both tools, and an operator's environment overrides
 * the deployment's file, as it does for the temporal CLI itself. Both are read with the SDK's
 * envconfig package, so the names and the file format are exactly the CLI's.
 */
import fs from 'node:fs';
import tls from 'node:tls';
import { loadClientConfigProfile } from '@temporalio/envconfig';
import type { ClientConfigProfile, ConfigDataSource } from '@temporalio/envconfig';
import type { LifeboatConfig } from './schema';
import { resolveSecret } from './load';

export interface TemporalTls {
  serverRootCACertificate?: Buffer;
  serverNameOverride?: string;
  clientCertPair?: { crt: Buffer; key: Buffer };
}

/** What Connection.connect and NativeConnection.connect both take, plus the namespace. */
export interface TemporalConnectionSettings {
  address: string;
  namespace: string;
  tls?: TemporalTls;
  apiKey?: string;
  metadata?: Record<string, string>;
  /** Where the address came from, for error messages: `TEMPORAL_ADDRESS`, `profile default`, `temporal.address`. */
  addressFrom: string;
  /** One line for logs: address, namespace, TLS and how it authenticates; never a secret. */
  summary: string;
}

type TemporalSection = LifeboatConfig['temporal'];

/** Reads the temporal CLI's profile file and environment separately, so lifeboat's config can sit between them. */
function cliSettings(section: TemporalSection, env: NodeJS.ProcessEnv): { fromEnv: ClientConfigProfile; fromFile: ClientConfigProfile; profileName: string } {
  const vars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  const requested = env.TEMPORAL_PROFILE || section.profile;
  let fromFile: ClientConfigProfile;
  try {
    fromFile = loadClientConfigProfile({ profile: requested, disableEnv: true, overrideEnvVars: vars });
  } catch (err) {
    const file = env.TEMPORAL_CONFIG_FILE ?? '~/.config/temporalio/temporal.toml';
    throw new Error(`cannot read Temporal profile ${requested ?? 'default'} from ${file} (${(err as Error).message}): fix the file, or set TEMPORAL_PROFILE / temporal.profile to a profile it has.`);
  }
  const fromEnv = loadClientConfigProfile({ disableFile: true, overrideEnvVars: vars });
  return { fromEnv, fromFile, profileName: requested ?? 'default' };
}

function readSource(source: ConfigDataSource, what: string): Buffer {
  if ('data' in source) return Buffer.from(source.data);
  try {
    return fs.readFileSync(source.path);
  } catch (err) {
    throw new Error(`cannot read the Temporal ${what} ${source.path} (${(err as NodeJS.ErrnoException).code ?? 'error'}): fix the path or the file's permissions.`);
  }
}

export function resolveTemporalConnection(section: TemporalSection, env: NodeJS.ProcessEnv = process.env): TemporalConnectionSettings {
  const { fromEnv, fromFile, profileName } = cliSettings(section, env);
  const profile = `profile ${profileName}`;
  const pick = <T>(fromCli: (p: ClientConfigProfile) => T | undefined, fromConfig: T | undefined, envName: string, configName: string): { value?: T; from?: string } => {
    const e = fromCli(fromEnv);
    if (e !== undefined) return { value: e, from: envName };
    const f = fromCli(fromFile);
    if (f !== undefined) return { value: f, from: profile };
    if (fromConfig !== undefined) return { value: fromConfig, from: configName };
    return {};
  };

  const address = pick((p) => p.address, section.address, 'TEMPORAL_ADDRESS', 'temporal.address');
  const namespace = pick((p) => p.namespace, section.namespace, 'TEMPORAL_NAMESPACE', 'temporal.namespace');
  // Secrets of lifeboat's config are read only when nothing above them is set.
  const apiKeyCli = pick((p) => p.apiKey, undefined, 'TEMPORAL_API_KEY', '');
  const apiKeyValue = apiKeyCli.value ?? (section.apiKey ? resolveSecret(section.apiKey, env) : undefined);
  const apiKeyFrom = apiKeyCli.from ?? 'temporal.apiKey';

  const tlsSection = section.tls;
  const disabled = pick((p) => p.tls?.disabled, tlsSection ? !tlsSection.enabled : undefined, 'TEMPORAL_TLS', 'temporal.tls.enabled');
  const ca = pick((p) => p.tls?.serverCACert, tlsSection?.serverCaFile ? { path: tlsSection.serverCaFile } : undefined, 'TEMPORAL_TLS_SERVER_CA_CERT_*', 'temporal.tls.serverCaFile');
  const serverName = pick((p) => p.tls?.serverName, tlsSection?.serverName, 'TEMPORAL_TLS_SERVER_NAME', 'temporal.tls.serverName');
  const cert = pick((p) => p.tls?.clientCert, tlsSection?.clientCertFile ? { path: tlsSection.clientCertFile } : undefined, 'TEMPORAL_TLS_CLIENT_CERT_*', 'temporal.tls.clientCertFile');
  const keyCli = pick((p) => p.tls?.clientKey, undefined, 'TEMPORAL_TLS_CLIENT_KEY_*', '');
  const key: { value?: ConfigDataSource; from?: string } = keyCli.value
    ? keyCli
    : tlsSection?.clientKey
      ? { value: { data: resolveSecret(tlsSection.clientKey, env) }, from: 'temporal.tls.clientKey' }
      : {};
  if ((cert.value === undefined) !== (key.value === undefined)) {
    const [has, lacks] = cert.value ? [`a client certificate (${cert.from})`, 'its key'] : [`a client key (${key.from})`, 'its certificate'];
    throw new Error(`Temporal mutual TLS has ${has} but not ${lacks}: set both, from the environment, the profile or temporal.tls.`);
  }

  // TLS is on when asked for, or implied by anything only TLS can carry (as the temporal CLI does); an explicit "off" wins.
  const impliedOn = tlsSection !== undefined || ca.value !== undefined || serverName.value !== undefined || cert.value !== undefined || apiKeyValue !== undefined || fromEnv.tls !== undefined || fromFile.tls !== undefined;
  const tlsOn = disabled.value === undefined ? impliedOn : !disabled.value;
  let tls: TemporalTls | undefined;
  if (tlsOn) {
    tls = {};
    if (ca.value) tls.serverRootCACertificate = readSource(ca.value, 'server CA certificate');
    if (serverName.value) tls.serverNameOverride = serverName.value;
    if (cert.value && key.value) tls.clientCertPair = { crt: readSource(cert.value, 'client certificate'), key: readSource(key.value, 'client key') };
  }
  const metadata = { ...fromFile.grpcMeta, ...fromEnv.grpcMeta };

  const resolved: TemporalConnectionSettings = {
    address: address.value ?? '127.0.0.1:7233',
    namespace: namespace.value ?? 'default',
    addressFrom: address.from ?? 'the default',
    summary: '',
  };
  if (tls) resolved.tls = tls;
  if (apiKeyValue !== undefined) resolved.apiKey = apiKeyValue;
  if (Object.keys(metadata).length) resolved.metadata = metadata;
  const auth = [tls?.clientCertPair ? 'client certificate' : undefined, apiKeyValue !== undefined ? `API key from ${apiKeyFrom}` : undefined].filter(Boolean).join(' and ');
  resolved.summary = `${resolved.address} (namespace ${resolved.namespace}, ${tls ? `TLS${tls.serverNameOverride ? ` as ${tls.serverNameOverride}` : ''}` : 'no TLS'}${auth ? `, ${auth}` : ''})`;
  return resolved;
}

/** The options Connection.connect and NativeConnection.connect share. */
export function connectionOptions(settings: TemporalConnectionSettings): { address: string; tls?: TemporalTls; apiKey?: string; metadata?: Record<string, string> } {
  return {
    address: settings.address,
    ...(settings.tls ? { tls: settings.tls } : {}),
    ...(settings.apiKey !== undefined ? { apiKey: settings.apiKey } : {}),
    ...(settings.metadata ? { metadata: settings.metadata } : {}),
  };
}

/** One sentence for a failed connection: what failed and what to do, TLS problems named as such. */
export function describeConnectFailure(settings: TemporalConnectionSettings, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const where = `Temporal at ${settings.address}`;
  if (/certificate|handshake|ssl|tls|alert|unknown ca|peer/i.test(message)) {
    return `${where} refused the TLS connection (${message}): check the client certificate and key (signed by a CA the server trusts), the server CA and the server name, in the environment (TEMPORAL_TLS_*), the Temporal profile or temporal.tls.`;
  }
  if (/unauthenticated|permission denied|api key|authorization/i.test(message)) {
    return `${where} refused lifeboat's credentials (${message}): check the API key (TEMPORAL_API_KEY or temporal.apiKey) and its access to namespace ${settings.namespace}.`;
  }
  const from = settings.addressFrom;
  const fix =
    from === 'temporal.address' ? 'fix temporal.address in the config'
    : from === 'TEMPORAL_ADDRESS' ? 'fix or unset TEMPORAL_ADDRESS'
    : from.startsWith('profile ') ? `fix the address of ${from} in the temporal CLI's config file`
    : 'set temporal.address in the config';
  return `cannot reach ${where} (${message}): start it with \`lifeboat stack up\` or ${fix}.`;
}

/**
 * Why a TLS connection failed, asked of the server directly: under TLS 1.3 a server refuses a
 * client certificate only after the handshake, so gRPC sees a closed connection and no reason.
 * A plain TLS connection with the same settings hears the server's alert. Undefined when the
 * probe connects and the server keeps it open (the failure lies elsewhere).
 */
export function probeTls(settings: TemporalConnectionSettings, timeoutMs = 3000): Promise<string | undefined> {
  const t = settings.tls;
  if (!t) return Promise.resolve(undefined);
  const [host, port] = splitAddress(settings.address);
  return new Promise((resolve) => {
    let settled = false;
    const done = (why: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const socket = tls.connect({
      host,
      port,
      servername: t.serverNameOverride ?? (/^[\d.]+$|:/.test(host) ? undefined : host),
      ALPNProtocols: ['h2'],
      ...(t.serverRootCACertificate ? { ca: t.serverRootCACertificate } : {}),
      ...(t.clientCertPair ? { cert: t.clientCertPair.crt, key: t.clientCertPair.key } : {}),
    });
    // After the handshake the server has the certificate; its refusal follows within a round trip.
    socket.on('secureConnect', () => setTimeout(() => done(undefined), 500));
    // OpenSSL's messages carry the alert in the middle of a library trace: keep the alert.
    socket.on('error', (err) => done(/alert ([a-z0-9 ]+)/i.exec(err.message)?.[1].trim().replace(/^/, 'the server sent TLS alert: ') ?? err.message.replace(/\s+/g, ' ').trim()));
    socket.on('end', () => done('the server closed the connection right after the TLS handshake (it refused the client certificate, or TLS is not what it expects)'));
    const timer = setTimeout(() => done(undefined), timeoutMs);
  });
}

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at).replace(/^\[|\]$/g, ''), Number(address.slice(at + 1))];
}

/** describeConnectFailure, with the server's own reason when TLS is on and gRPC gave none. */
export async function explainConnectFailure(settings: TemporalConnectionSettings, err: unknown): Promise<string> {
  const first = describeConnectFailure(settings, err);
  if (!settings.tls || !first.startsWith('cannot reach')) return first;
  const why = await probeTls(settings).catch(() => undefined);
  return why ? describeConnectFailure(settings, new Error(why)) : first;
}
