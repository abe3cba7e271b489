/**
 * A deployment's shape on the local stack: Temporal reached only through a mutual-TLS endpoint
 * (HAProxy, from Debian, in front of the dev server, trusting the stack's local CA), a central
 * worker and an agent connecting through it with client certificates, and a backup, a restore, a
 * drill and a logical backup whose host work runs on the target's agent alone.
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
import { agentTaskQueue, BACKUP_HOST_ACTIVITIES, LOGICAL_BACKUP_HOST_ACTIVITIES } from '../src/domain/agents';
import type { DatabaseBackupResult } from '../src/domain/backup';
import type { DrFailoverInput, FailoverReport } from '../src/domain/failover';
import type { RestoreDrillResult } from '../src/domain/drill';
import type { LogicalBackupReport } from '../src/domain/logical-backup';
import type { PitrRestoreInput, PitrRestoreReport } from '../src/domain/restore';
import { delay, waitUntil } from '../src/platform/processes';
import { ensureLocalCertificates, issueClientCertificate } from '../src/stack/tls';
import { createLifeboatWorker } from '../src/worker';
import { activityRuns, assertRouted } from './helpers/agents';
import { FAILOVER_TIMINGS, recordFailoverHistory, REQUESTER } from './helpers/failover';
import { recordHistory, removeAsItsOwner, waitForGate } from './helpers/pitr';
import { approveSigned } from './helpers/signing';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, workflowBundle } from './helpers/temporal';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');

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

  /** A central worker and the agent, each on its own connection through the endpoint and with its own identity; not yet running. */
  async function workers() {
    const client: Client = await connectClient(config, env);
    const central = await connectWorkerConnection(config, env);
    const onHost = await connectWorkerConnection(config, env);
    const centralWorker = await createLifeboatWorker({ config, connection: central.connection, ports, workflowBundle: await workflowBundle(), identity: `central-${run}` });
    const agentWorker = await createLifeboatWorker({ config, connection: onHost.connection, ports, agent, identity: `agent-${run}` });
    const close = async () => {
      await client.connection.close();
      await central.connection.close();
      await onHost.connection.close();
    };
    return { client, centralWorker, agentWorker, close };
  }
  const where = () => ({ agentQueue: agentTaskQueue(agent), agentIdentity: `agent-${run}`, centralQueue: config.temporal.taskQueue, centralIdentity: `central-${run}` });

  /** With the agent down, the workflow's first host-bound activity waits on the agent's queue: the running central worker never takes it. */
  async function heldForTheAgent(handle: WorkflowHandle, activity: string): Promise<void> {
    await waitUntil(`${activity} scheduled on the agent queue`, async () => ((await handle.describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === activity) || 'waiting', { timeoutMs: 30000 });
    await delay(2000);
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    assert.deepEqual(
      pending.map((a) => [a.activityType?.name, temporal.api.enums.v1.PendingActivityState[a.state ?? 0]]),
      [[activity, 'PENDING_ACTIVITY_STATE_SCHEDULED']],
    );
  }

  it("runs a backup through the endpoint with the target's pgBackRest work on its agent alone: held while the agent is down, done once it starts", async function () {
    this.timeout(300000);
    const { client, centralWorker, agentWorker, close } = await workers();
    let handle: WorkflowHandle | undefined;
    try {
      const result = await centralWorker.runUntil(async () => {
        handle = await client.workflow.start('databaseBackup', { taskQueue: config.temporal.taskQueue, workflowId: `agents-tls-backup-${run}`, args: [{ target: 'app', kind: 'incr', pollIntervalMs: 1000, requestedBy: 'agents-tls-test' }] });
        // With the agent down, the preflight (pgBackRest check) waits on the agent's queue; the central worker never takes it.
        await heldForTheAgent(handle, 'preflightDatabaseBackup');
        return agentWorker.runUntil(handle.result() as Promise<DatabaseBackupResult>);
      });
      assert.equal(result.status, 'verified');
      // Who ran what, from the history: every host-bound activity on the agent's queue and worker, everything else central.
      const runs = await activityRuns(handle!);
      assertRouted(runs, where(), BACKUP_HOST_ACTIVITIES);
      assert.ok(runs.some((r) => r.activity === 'recordDatabaseBackup'), 'catalog writes ran too');
      await recordHistory(handle!, 'databaseBackup-v5-agent-routed');
    } finally {
      await close();
    }
  });

  it('runs a point-in-time restore with its new cluster made, watched and kept on the agent alone: held while the agent is down, done once it starts', async function () {
    this.timeout(300000);
    const { client, centralWorker, agentWorker, close } = await workers();
    let handle: WorkflowHandle | undefined;
    let made: string | undefined;
    try {
      const result = await centralWorker.runUntil(async () => {
        handle = await client.workflow.start('pitrRestore', {
          taskQueue: config.temporal.taskQueue,
          workflowId: `agents-tls-restore-${run}`,
          args: [{ target: 'app', restorePoint: 'latest', reason: 'agents test: a restore on the host', requestedBy: 'alice@example.com', mode: 'standard', timings: { pollIntervalMs: 1000 } } satisfies PitrRestoreInput],
        });
        // Validation reads the restore window and the restores directory on the host: it waits for the agent.
        await heldForTheAgent(handle, 'validateRestore');
        return agentWorker.runUntil(async () => {
          await waitForGate(handle!, 'restore');
          await approveSigned(handle!, { by: 'bob@example.com', reason: 'agents test: approved', gate: 'restore' });
          return (await handle!.result()) as PitrRestoreReport;
        });
      });
      made = result.destination?.instanceId;
      assert.equal(result.outcome, 'restored', result.failure);
      assert.ok(result.verification?.ok, 'verified, over the network, by the central worker');
      assertRouted(await activityRuns(handle!), where(), ['validateRestore', 'restoreIntoNewInstance', 'waitUntilAvailable']);
      // The cluster is where the agent runs: in the target's restores directory.
      assert.ok(await ports.database('app').describeInstance(made!), `${made} is in the restores directory of the agent's host`);
      await recordHistory(handle!, 'pitrRestore-v4-agent-routed');
    } finally {
      if (made) await removeAsItsOwner(ports.database('app'), made);
      await close();
    }
  });

  it('runs a restore drill and a logical backup with their host work on the agent alone: the drill cluster and pg_dump there, validation, copies and reports central', async function () {
    this.timeout(300000);
    const { client, centralWorker, agentWorker, close } = await workers();
    try {
      await centralWorker.runUntil(() =>
        agentWorker.runUntil(async () => {
          const taskQueue = config.temporal.taskQueue;
          const drill = await client.workflow.start('restoreDrill', { taskQueue, workflowId: `agents-tls-drill-${run}`, args: [{ target: 'app', requestedBy: 'agents-tls-test', timings: { pollIntervalMs: 1000, keepForMs: 0 } }] });
          const dump = await client.workflow.start('logicalBackup', { taskQueue, workflowId: `agents-tls-logical-${run}`, args: [{ target: 'app', pollIntervalMs: 1000 }] });
          const [drilled, dumped] = await Promise.all([drill.result() as Promise<RestoreDrillResult>, dump.result() as Promise<LogicalBackupReport>]);
          assert.equal(drilled.report.outcome, 'passed', JSON.stringify(drilled.report.issues));
          assert.equal(dumped.outcome, 'verified', dumped.failure);
          assertRouted(await activityRuns(drill), where(), ['validateRestore', 'restoreIntoNewInstance', 'waitUntilAvailable', 'removeRestoredInstance']);
          assert.equal(await ports.database('app').describeInstance(drilled.report.restoredInto.name), undefined, 'the agent removed the drill cluster');
          assertRouted(await activityRuns(dump), where(), LOGICAL_BACKUP_HOST_ACTIVITIES);
          await recordHistory(drill, 'restoreDrill-v3-agent-routed');
          await recordHistory(dump, 'logicalBackup-v2-agent-routed');
        }),
      );
    } finally {
      await close();
    }
  });

  it("runs a failover drill with its database's restore from the DR repository on the agent alone, and the plan's orchestration central", async function () {
    this.timeout(300000);
    const { client, centralWorker, agentWorker, close } = await workers();
    try {
      await centralWorker.runUntil(() =>
        agentWorker.runUntil(async () => {
          const handle = await client.workflow.start('drFailover', {
            taskQueue: config.temporal.taskQueue,
            workflowId: `agents-tls-failover-drill-${run}`,
            args: [{ mode: 'drill', requestedBy: REQUESTER, reason: 'agents test: failover drill', timings: FAILOVER_TIMINGS } satisfies DrFailoverInput],
          });
          const report = (await handle.result()) as FailoverReport;
          assert.equal(report.outcome, 'passed', report.failure);
          const child = client.workflow.getHandle(`${handle.workflowId}.restore-app-db`);
          assertRouted(await activityRuns(child), where(), ['validateRestore', 'restoreIntoNewInstance', 'waitUntilAvailable', 'removeRestoredInstance']);
          // The parent moves drill names, starts the app's copy and checks it: nothing of it runs on the host.
          assertRouted(await activityRuns(handle), where(), []);
          await recordFailoverHistory(handle, 'drFailover-v3-drill-agent-routed');
          await recordFailoverHistory(child, 'failoverDatabase-v2-drill-agent-routed');
        }),
      );
    } finally {
      await close();
    }
  });
});
