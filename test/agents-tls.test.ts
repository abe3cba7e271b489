/**
 * A deployment's shape on the local stack: Temporal reached only through a mutual-TLS endpoint
 * (HAProxy, from Debian, in front of the dev server, trusting the stack's local CA), a central
 * worker and an agent connecting through it with client certificates, and a backup whose
 * pgBackRest work runs on the target's agent alone.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { createPorts, Ports } from '../src/activities/ports';
import { connectClient, connectWorkerConnection } from '../src/client/temporal';
import { LifeboatConfig, loadConfig } from '../src/config';
import { agentTaskQueue, HOST_BOUND_ACTIVITIES } from '../src/domain/agents';
import type { DatabaseBackupResult } from '../src/domain/backup';
import { delay, waitUntil } from '../src/platform/processes';
import { ensureLocalCertificates, issueClientCertificate } from '../src/stack/tls';
import { createLifeboatWorker } from '../src/worker';
import { recordHistory } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, workflowBundle } from './helpers/temporal';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');
const EventType = temporal.api.enums.v1.EventType;

function haproxyBinary(): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat('/usr/sbin')) {
    const candidate = path.join(dir, 'haproxy');
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error('haproxy is not installed: run scripts/provision-tools.sh (it installs the Debian package).');
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('Temporal over mutual TLS, and host work on the agent (real HAProxy, real stack)', function () {
  const run = randomBytes(3).toString('hex');
  const agent = `db-host-${run}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-tls-'));
  /** Nothing from this machine's temporal CLI settings leaks in: lifeboat's config alone decides. */
  const env = { TEMPORAL_CONFIG_FILE: path.join(dir, 'no-profile.toml') };
  let proxy: ChildProcess | undefined;
  let config: LifeboatConfig;
  let ports: Ports;

  before(async function () {
    this.timeout(600000);
    const stack = await useStack();
    const { settings, paths, tools } = stack.ctx;
    // The stack's CA signs the endpoint's certificate and the client certificates it accepts.
    const local = await ensureLocalCertificates(tools.openssl, paths.tls, settings.host);
    const client = await issueClientCertificate(tools.openssl, paths.tls, dir, 'lifeboat-worker');
    const pem = path.join(dir, 'endpoint.pem');
    fs.writeFileSync(pem, fs.readFileSync(local.serverCert, 'utf8') + fs.readFileSync(local.serverKey, 'utf8'), { mode: 0o600 });
    const port = await freePort();
    // TLS ends at HAProxy; the decrypted HTTP/2 (gRPC) goes on to the dev server unchanged. Long polls last about a minute.
    const cfg = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(
      cfg,
      [
        'global',
        '  maxconn 256',
        'defaults',
        '  mode tcp',
        '  timeout connect 5s',
        '  timeout client 5m',
        '  timeout server 5m',
        'frontend temporal_tls',
        `  bind 127.0.0.1:${port} ssl crt ${pem} ca-file ${local.caCert} verify required alpn h2`,
        '  default_backend temporal_dev',
        'backend temporal_dev',
        `  server dev ${settings.host}:${settings.temporal.port}`,
        '',
      ].join('\n'),
    );
    proxy = spawn(haproxyBinary(), ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proxy.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitUntil(
      'HAProxy',
      () =>
        new Promise<boolean | string>((resolve) => {
          if (proxy?.exitCode !== null) return resolve(`exited: ${stderr}`);
          const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
          socket.on('error', () => resolve('starting'));
        }),
      { timeoutMs: 15000 },
    );

    const base = loadConfig(CONFIG_FILE);
    config = {
      ...base,
      temporal: {
        ...base.temporal,
        address: `127.0.0.1:${port}`,
        taskQueue: uniqueTaskQueue('central'),
        tls: { enabled: true, serverCaFile: local.caCert, serverName: 'localhost', clientCertFile: client.cert, clientKey: `file:${client.key}` },
      },
      targets: { ...base.targets, databases: base.targets.databases.map((d) => (d.name === 'app' && d.engine === 'pgbackrest' ? { ...d, agent } : d)) },
    };
    ports = createPorts(config);
    await ports.catalog.migrate();
  });

  after(async () => {
    await ports?.close();
    proxy?.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a client without a certificate, or with one another CA signed, and says to check the TLS settings', async function () {
    this.timeout(60000);
    const stack = await useStack();
    const stranger = path.join(dir, 'stranger-ca');
    await ensureLocalCertificates(stack.ctx.tools.openssl, stranger, '127.0.0.1');
    const wrong = await issueClientCertificate(stack.ctx.tools.openssl, stranger, dir, 'intruder');
    const tls = config.temporal.tls!;
    const refused = /^Temporal at 127\.0\.0\.1:\d+ refused the TLS connection \(.+\): check the client certificate and key \(signed by a CA the server trusts\), the server CA and the server name, in the environment \(TEMPORAL_TLS_\*\), the Temporal profile or temporal\.tls\.$/;
    const withTls = (t: NonNullable<LifeboatConfig['temporal']['tls']>): LifeboatConfig => ({ ...config, temporal: { ...config.temporal, tls: t } });
    await assert.rejects(connectClient(withTls({ enabled: true, serverCaFile: tls.serverCaFile, serverName: 'localhost' }), env), { message: refused });
    await assert.rejects(connectClient(withTls({ ...tls, clientCertFile: wrong.cert, clientKey: `file:${wrong.key}` }), env), { message: refused });
    await assert.rejects(connectWorkerConnection(withTls({ ...tls, clientCertFile: wrong.cert, clientKey: `file:${wrong.key}` }), env), { message: refused });
  });

  it("runs a backup through the endpoint with the target's pgBackRest work on its agent alone: held while the agent is down, done once it starts", async function () {
    this.timeout(300000);
    const client: Client = await connectClient(config, env);
    const central = await connectWorkerConnection(config, env);
    const onHost = await connectWorkerConnection(config, env);
    const centralWorker = await createLifeboatWorker({ config, connection: central.connection, ports, workflowBundle: await workflowBundle(), identity: `central-${run}` });
    const agentWorker = await createLifeboatWorker({ config, connection: onHost.connection, ports, agent, identity: `agent-${run}` });
    let handle: WorkflowHandle | undefined;
    try {
      const result = await centralWorker.runUntil(async () => {
        handle = await client.workflow.start('databaseBackup', { taskQueue: config.temporal.taskQueue, workflowId: `agents-tls-backup-${run}`, args: [{ target: 'app', kind: 'incr', pollIntervalMs: 1000, requestedBy: 'agents-tls-test' }] });
        // With the agent down, the preflight (pgBackRest check) waits on the agent's queue; the central worker never takes it.
        await waitUntil(
          'the preflight scheduled on the agent queue',
          async () => ((await handle!.describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'preflightDatabaseBackup') || 'waiting',
          { timeoutMs: 30000 },
        );
        await delay(2000);
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        assert.deepEqual(
          pending.map((a) => [a.activityType?.name, temporal.api.enums.v1.PendingActivityState[a.state ?? 0]]),
          [['preflightDatabaseBackup', 'PENDING_ACTIVITY_STATE_SCHEDULED']],
        );
        return agentWorker.runUntil(handle.result() as Promise<DatabaseBackupResult>);
      });
      assert.equal(result.status, 'verified');

      // Who ran what, from the history: every host-bound activity on the agent's queue and worker, everything else central.
      const events = (await handle!.fetchHistory()).events ?? [];
      const scheduled = new Map(events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!]));
      const ran = events
        .filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
        .map((e) => {
          const s = scheduled.get(String(e.activityTaskStartedEventAttributes!.scheduledEventId))!;
          return { activity: s.activityType!.name!, queue: s.taskQueue!.name!, identity: e.activityTaskStartedEventAttributes!.identity! };
        });
      const hostBound: readonly string[] = HOST_BOUND_ACTIVITIES;
      const onAgent = ran.filter((r) => hostBound.includes(r.activity));
      const onCentral = ran.filter((r) => !hostBound.includes(r.activity));
      assert.deepEqual([...new Set(onAgent.map((r) => r.activity))].sort(), [...HOST_BOUND_ACTIVITIES].sort(), 'each host-bound activity ran');
      for (const r of onAgent) assert.deepEqual([r.queue, r.identity], [agentTaskQueue(agent), `agent-${run}`], `${r.activity} ran on the agent`);
      assert.ok(onCentral.some((r) => r.activity === 'recordDatabaseBackup'), 'catalog writes ran too');
      for (const r of onCentral) assert.deepEqual([r.queue, r.identity], [config.temporal.taskQueue, `central-${run}`], `${r.activity} ran centrally`);
      await recordHistory(handle!, 'databaseBackup-v5-agent-routed');
    } finally {
      await client.connection.close();
      await central.connection.close();
      await onHost.connection.close();
    }
  });
});
