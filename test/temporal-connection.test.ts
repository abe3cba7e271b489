/**
 * Where lifeboat's Temporal connection settings come from (src/config/temporal-connection.ts):
 * the temporal CLI's environment, then its profile file, then lifeboat's config, then defaults.
 * No server: the settings are resolved, not used (test/agents-tls.test.ts connects for real).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hostTaskQueueIn } from '../src/activities/agents';
import { LifeboatConfig, loadConfig } from '../src/config';
import { describeConnectFailure, resolveTemporalConnection } from '../src/config/temporal-connection';
import { agentTaskQueue, HOST_BOUND_ACTIVITIES } from '../src/domain/agents';
import { agentFromArgs } from '../src/worker';

type Section = LifeboatConfig['temporal'];
const base: Section = { address: '10.0.0.1:7233', namespace: 'lifeboat-ns', taskQueue: 'lifeboat' };

describe('Temporal connection settings', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-temporal-'));
  const file = (name: string, text: string, mode = 0o600) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text, { mode });
    return f;
  };
  const ca = file('ca.pem', 'CA PEM');
  const crt = file('client.pem', 'CLIENT CERT');
  const key = file('client.key', 'CLIENT KEY');
  const toml = file(
    'temporal.toml',
    `[profile.default]\naddress = "profile-default:7233"\n\n[profile.cloud]\naddress = "ns.acct.tmprl.cloud:7233"\nnamespace = "ns.acct"\napi_key = "profile-key"\n\n[profile.mtls]\naddress = "mtls:7233"\n[profile.mtls.tls]\nserver_name = "frontend.internal"\nserver_ca_cert_path = "${ca}"\nclient_cert_path = "${crt}"\nclient_key_path = "${key}"\n`,
  );
  /** An environment that sees no profile file unless a test names one. */
  const noFile = { TEMPORAL_CONFIG_FILE: path.join(dir, 'absent.toml') };
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('uses lifeboat\'s config when neither the environment nor a profile says otherwise, without TLS', () => {
    const s = resolveTemporalConnection(base, noFile);
    assert.equal(s.address, '10.0.0.1:7233');
    assert.equal(s.namespace, 'lifeboat-ns');
    assert.equal(s.tls, undefined);
    assert.equal(s.apiKey, undefined);
    assert.equal(s.addressFrom, 'temporal.address');
    assert.equal(s.summary, '10.0.0.1:7233 (namespace lifeboat-ns, no TLS)');
  });

  it('takes the profile file over the config, and the environment over both, setting by setting', () => {
    const fromProfile = resolveTemporalConnection(base, { TEMPORAL_CONFIG_FILE: toml });
    assert.equal(fromProfile.address, 'profile-default:7233');
    assert.equal(fromProfile.addressFrom, 'profile default');
    assert.equal(fromProfile.namespace, 'lifeboat-ns', 'the default profile names no namespace: the config\'s stays');
    const fromEnv = resolveTemporalConnection(base, { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_ADDRESS: 'env:7233', TEMPORAL_NAMESPACE: 'env-ns' });
    assert.deepEqual([fromEnv.address, fromEnv.namespace, fromEnv.addressFrom], ['env:7233', 'env-ns', 'TEMPORAL_ADDRESS']);
  });

  it('reads the profile the config names, TEMPORAL_PROFILE over it; an API key turns TLS on', () => {
    const cloud = resolveTemporalConnection({ ...base, profile: 'cloud' }, { TEMPORAL_CONFIG_FILE: toml });
    assert.deepEqual([cloud.address, cloud.namespace, cloud.apiKey], ['ns.acct.tmprl.cloud:7233', 'ns.acct', 'profile-key']);
    assert.deepEqual(cloud.tls, {});
    assert.match(cloud.summary, /TLS, API key from profile cloud\)$/);
    const mtls = resolveTemporalConnection({ ...base, profile: 'cloud' }, { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'mtls' });
    assert.equal(mtls.address, 'mtls:7233');
    assert.equal(mtls.tls?.serverNameOverride, 'frontend.internal');
    assert.equal(mtls.tls?.serverRootCACertificate?.toString(), 'CA PEM');
    assert.deepEqual([mtls.tls?.clientCertPair?.crt.toString(), mtls.tls?.clientCertPair?.key.toString()], ['CLIENT CERT', 'CLIENT KEY']);
  });

  it('builds mutual TLS from temporal.tls, the key through its secret reference', () => {
    const s = resolveTemporalConnection({ ...base, tls: { enabled: true, serverCaFile: ca, serverName: 'temporal.internal', clientCertFile: crt, clientKey: `file:${key}` } }, noFile);
    assert.equal(s.tls?.serverNameOverride, 'temporal.internal');
    assert.equal(s.tls?.clientCertPair?.key.toString(), 'CLIENT KEY');
    assert.equal(s.summary, '10.0.0.1:7233 (namespace lifeboat-ns, TLS as temporal.internal, client certificate)');
    const apiKey = resolveTemporalConnection({ ...base, apiKey: 'env:MY_TEMPORAL_KEY' }, { ...noFile, MY_TEMPORAL_KEY: 'secret-value' });
    assert.equal(apiKey.apiKey, 'secret-value');
    assert.ok(!apiKey.summary.includes('secret-value'), 'the summary never shows the key');
  });

  it('lets TEMPORAL_TLS=false turn TLS off, and the environment\'s client certificate replace the config\'s', () => {
    const off = resolveTemporalConnection({ ...base, tls: { enabled: true, serverCaFile: ca } }, { ...noFile, TEMPORAL_TLS: 'false' });
    assert.equal(off.tls, undefined);
    const other = file('other.pem', 'OTHER CERT');
    const otherKey = file('other.key', 'OTHER KEY');
    const s = resolveTemporalConnection({ ...base, tls: { enabled: true, clientCertFile: crt, clientKey: `file:${key}` } }, { ...noFile, TEMPORAL_TLS_CLIENT_CERT_PATH: other, TEMPORAL_TLS_CLIENT_KEY_PATH: otherKey });
    assert.deepEqual([s.tls?.clientCertPair?.crt.toString(), s.tls?.clientCertPair?.key.toString()], ['OTHER CERT', 'OTHER KEY']);
  });

  it('refuses, in one sentence, a certificate without its key, an unreadable file and an unknown profile', () => {
    assert.throws(() => resolveTemporalConnection(base, { ...noFile, TEMPORAL_TLS_CLIENT_CERT_PATH: crt }), {
      message: 'Temporal mutual TLS has a client certificate (TEMPORAL_TLS_CLIENT_CERT_*) but not its key: set both, from the environment, the profile or temporal.tls.',
    });
    assert.throws(() => resolveTemporalConnection({ ...base, tls: { enabled: true, serverCaFile: path.join(dir, 'missing.pem') } }, noFile), {
      message: `cannot read the Temporal server CA certificate ${path.join(dir, 'missing.pem')} (ENOENT): fix the path or the file's permissions.`,
    });
    assert.throws(() => resolveTemporalConnection({ ...base, profile: 'nope' }, { TEMPORAL_CONFIG_FILE: toml }), /^Error: cannot read Temporal profile nope from .*temporal\.toml \(Profile 'nope' not found in config data\): fix the file, or set TEMPORAL_PROFILE \/ temporal\.profile to a profile it has\.$/);
  });

  it('says what to fix when connecting fails: the TLS settings, or the address where it came from', () => {
    const s = resolveTemporalConnection(base, { ...noFile, TEMPORAL_ADDRESS: '10.9.9.9:7233' });
    assert.equal(describeConnectFailure(s, new Error('14 UNAVAILABLE: No connection established')), 'cannot reach Temporal at 10.9.9.9:7233 (14 UNAVAILABLE: No connection established): start it with `lifeboat stack up` or fix or unset TEMPORAL_ADDRESS.');
    assert.match(describeConnectFailure(s, new Error('SSL alert number 116')), /^Temporal at 10\.9\.9\.9:7233 refused the TLS connection \(SSL alert number 116\): check the client certificate and key/);
  });
});

describe('agents', () => {
  it('name their task queue after the agent, and take the host-bound activities only', () => {
    assert.equal(agentTaskQueue('db-eu-1'), 'lifeboat-agent-db-eu-1');
    assert.ok(HOST_BOUND_ACTIVITIES.includes('startDatabaseBackup'));
    assert.ok(!(HOST_BOUND_ACTIVITIES as readonly string[]).includes('recordDatabaseBackup'), 'catalog writes stay central');
  });

  it('take what must run on the host (pgBackRest, pg_dump, the restored clusters) and nothing that needs no particular host', () => {
    const hostBound: readonly string[] = HOST_BOUND_ACTIVITIES;
    for (const a of ['validateRestore', 'restoreIntoNewInstance', 'waitUntilAvailable', 'removeRestoredInstance', 'markServedTraffic', 'fenceSource', 'protectAsNewPrimary', 'dumpDatabase', 'verifyDump', 'findDrPrimary', 'restoreInPrimaryRegion', 'retireDrPrimary', 'expireDatabaseBackup', 'deleteDatabaseBackupByHand', 'checkRepositories', 'readBackupSizes']) {
      assert.ok(hostBound.includes(a), `${a} runs on the host`);
    }
    // Over the network, in the catalog, at AWS or DNS, or a person's: central.
    for (const a of ['hostTaskQueueOf', 'verifyRestoredInstance', 'captureSourceFacts', 'recordRestoreReport', 'moveTraffic', 'verifyThroughDns', 'resolveGatePolicy', 'notify', 'copyDumpToDr', 'proveNoLostTransactions', 'failbackSettings', 'failbackTargets', 'selectDrillBackup', 'publishDrillReport', 'expireBackup', 'deleteBackupByHand', 'planRetention', 'planBackupDeletion', 'checkDatabaseTarget', 'checkObjectStore', 'predictRestore']) {
      assert.ok(!hostBound.includes(a), `${a} stays central`);
    }
    assert.equal(new Set(hostBound).size, hostBound.length, 'each once');
  });

  it("route a pgBackRest target's host work to its agent's queue, and any other target's to the central queue", () => {
    const example = loadConfig(path.resolve(__dirname, '../../lifeboat.config.yaml'), { env: {} });
    const app = example.targets.databases.find((d) => d.name === 'app')!;
    assert.ok(app.engine === 'pgbackrest' && !app.agent, 'the example names no agent unless LIFEBOAT_APP_AGENT does');
    assert.equal(hostTaskQueueIn(example, 'app'), null);
    const withAgent = loadConfig(path.resolve(__dirname, '../../lifeboat.config.yaml'), { env: { LIFEBOAT_APP_AGENT: 'app-host' } });
    assert.equal(hostTaskQueueIn(withAgent, 'app'), 'lifeboat-agent-app-host');
    assert.equal(hostTaskQueueIn(withAgent, 'no-such-target'), null, 'the workflow refuses an unknown target in its own words');
    const rds = { ...withAgent, targets: { ...withAgent.targets, databases: withAgent.targets.databases.map((d) => ({ ...d, engine: 'rds' })) } } as unknown as LifeboatConfig;
    assert.equal(hostTaskQueueIn(rds, 'app'), null);
  });

  it('read --agent or LIFEBOAT_AGENT, and refuse a missing or malformed name with exit 2', () => {
    assert.equal(agentFromArgs(['--agent', 'db-1'], {}), 'db-1');
    assert.equal(agentFromArgs(['--agent=db-2'], {}), 'db-2');
    assert.equal(agentFromArgs([], { LIFEBOAT_AGENT: 'db-3' }), 'db-3');
    assert.equal(agentFromArgs([], {}), undefined);
    assert.throws(() => agentFromArgs(['--agent'], {}), (err: Error & { exitCode?: number }) => err.exitCode === 2 && err.message === '--agent needs a name: the agent named in targets.databases[].agent.');
    assert.throws(() => agentFromArgs(['--agent', 'DB_1'], {}), { message: 'agent name "DB_1" is not valid: use lowercase letters, digits and hyphens, as in targets.databases[].agent.' });
  });
});
