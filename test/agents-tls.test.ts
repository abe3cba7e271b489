/**
 * A deployment's shape on the local stack: Temporal reached only through a mutual-TLS endpoint
 * (HAProxy, from Debian, in front of the dev server, trusting the stack's local CA), a central
 * worker and an agent connecting through it with client certificates, and a backup, a restore, a
 * drill and a logical backup whose host work runs on the target's agent alone; so do the removal
 * of pgBackRest sets (backups delete, retention), preflight's repository check and the backup
 * sizes behind the compliance report's RTO prediction.
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
import { agentTaskQueue, BACKUP_HOST_ACTIVITIES, BACKUP_REMOVAL_HOST_ACTIVITIES, LOGICAL_BACKUP_HOST_ACTIVITIES, PREDICTION_HOST_ACTIVITIES, PREFLIGHT_HOST_ACTIVITIES } from '../src/domain/agents';
import type { BackupDeletionReport } from '../src/domain/backup-deletion';
import type { ComplianceReportResult } from '../src/domain/compliance';
import { LifeboatError } from '../src/domain/errors';
import type { BackupHandle } from '../src/domain/ports';
import type { RetentionReport } from '../src/domain/retention';
import type { DatabaseBackupResult } from '../src/domain/backup';
import type { DrFailoverInput, FailoverReport } from '../src/domain/failover';
import type { RestoreDrillResult } from '../src/domain/drill';
import type { LogicalBackupReport } from '../src/domain/logical-backup';
import type { PreflightResult } from '../src/domain/preflight';
import type { PitrRestoreInput, PitrRestoreReport } from '../src/domain/restore';
import { delay, waitUntil } from '../src/platform/processes';
import { BACKUP_ANNOTATION } from '../src/engines/pgbackrest/backups';
import { localPgBackRestEngine } from '../src/stack/local-engines';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { ensureLocalCertificates, issueClientCertificate } from '../src/stack/tls';
import { createLifeboatWorker } from '../src/worker';
import { activityRuns, assertRouted } from './helpers/agents';
import { FAILOVER_TIMINGS, recordFailoverHistory, REQUESTER } from './helpers/failover';
import { recordHistory, removeAsItsOwner, waitForGate } from './helpers/pitr';
import { removeCatalogRows } from './helpers/scratch';
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
  async function workers(config_ = config, ports_ = ports) {
    const client: Client = await connectClient(config_, env);
    const central = await connectWorkerConnection(config_, env);
    const onHost = await connectWorkerConnection(config_, env);
    const centralWorker = await createLifeboatWorker({ config: config_, connection: central.connection, ports: ports_, workflowBundle: await workflowBundle(), identity: `central-${run}` });
    const agentWorker = await createLifeboatWorker({ config: config_, connection: onHost.connection, ports: ports_, agent, identity: `agent-${run}` });
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

  it("runs a restore drill and a logical backup with their host work on the agent alone: the drill cluster, pgBackRest's sizes for the RTO prediction and pg_dump there, validation, copies and reports central", async function () {
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
          assertRouted(await activityRuns(drill), where(), ['validateRestore', 'restoreIntoNewInstance', 'waitUntilAvailable', 'removeRestoredInstance', 'readBackupSizes']);
          assert.ok(drilled.report.prediction, "the RTO prediction was made, from the sizes the agent read");
          assert.equal(await ports.database('app').describeInstance(drilled.report.restoredInto.name), undefined, 'the agent removed the drill cluster');
          assertRouted(await activityRuns(dump), where(), LOGICAL_BACKUP_HOST_ACTIVITIES);
          await recordHistory(drill, 'restoreDrill-v4-agent-routed-prediction');
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

  it("removes a target's pgBackRest sets on its agent alone, by hand after the gate and by retention, with the catalog's checks and records central", async function () {
    this.timeout(300000);
    // A staging copy of app on the agent, with three differentials of its own dated 2028: a
    // deletion by hand takes the oldest, retention as of 2030 the next, and keeps the newest
    // (the last verified). Other tests' backups of app are not this target's, so never touched.
    const target = `agents-db-${run}`;
    const seed = `agents-tls-removal-seed-${run}`;
    const app = config.targets.databases.find((d) => d.name === 'app')!;
    const caseConfig: LifeboatConfig = { ...config, targets: { ...config.targets, databases: [...config.targets.databases, { ...app, name: target, environment: 'staging', cutover: undefined }] } };
    const casePorts = createPorts(caseConfig, { log: () => undefined });
    const stack = await useStack();
    const pg = localPgBackRestEngine(stack, { timings: { startWatchMs: 3000, pollMs: 100 } });
    const handles = new Map<string, BackupHandle>();
    const rowIds = new Map<string, string>();
    const setsNamed = async (name: string) =>
      ((await localPgBackRest(stack.ctx).info(1))?.backup ?? []).filter((b) => (b as { annotation?: Record<string, string> }).annotation?.[BACKUP_ANNOTATION] === name).map((b) => b.label);
    const { client, centralWorker, agentWorker, close } = await workers(caseConfig, casePorts);
    try {
      // A differential needs a full in the repository (a fresh stack has none): one is made then, and left as its base.
      const hasFull = ((await localPgBackRest(stack.ctx).info(1))?.backup ?? []).some((b) => b.database['repo-key'] === 1 && b.type === 'full');
      for (const [n, name] of [...(hasFull ? [] : ['F']), 'D1', 'D2', 'D3'].entries()) {
        let handle: BackupHandle | undefined;
        for (let i = 0; !handle; i++) {
          handle = await pg.startBackup({ backupName: `lbtest-agents-${run}-${name}`, kind: name === 'F' ? 'full' : 'diff' }).catch(async (err: unknown) => {
            // Another suite's backup holds the stanza's lock: wait for it.
            if (!(err instanceof LifeboatError) || err.code !== 'PGBACKREST_BUSY' || i > 120) throw err;
            await delay(1000);
            return undefined;
          });
        }
        for (;;) {
          const p = await pg.backupProgress(handle);
          if (p.state === 'failed') throw new Error(`backup ${name} failed: ${p.detail}`);
          if (p.state === 'complete') {
            handle = { ...handle, backupId: p.backupId ?? handle.backupId };
            break;
          }
          await delay(300);
        }
        if (name === 'F') continue;
        handles.set(name, handle);
        const completedAt = `2028-03-0${n + 1}T03:00:00Z`; // n: 1-3 with a full first, 0-2 without: dated in order either way
        const [row] = await casePorts.catalog.query<{ id: string }>(
          `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, completed_at, verified_at, workflow_id, details)
           VALUES ($1, 'staging', 'diff', 'pgbackrest', $2, 'verified', $3, $4, $4, $5, '{}') RETURNING id::text AS id`,
          [target, handle.name, JSON.stringify({ primary: { region: 'primary', handle } }), completedAt, seed],
        );
        rowIds.set(name, row.id);
      }
      const taskQueue = caseConfig.temporal.taskQueue;
      const { deletion, retention } = await centralWorker.runUntil(() =>
        agentWorker.runUntil(async () => {
          const deletion = await client.workflow.start('backupDeletion', {
            taskQueue,
            workflowId: `agents-tls-deletion-${run}`,
            args: [{ backupId: rowIds.get('D1')!, requestedBy: 'alice@example.com', reason: 'agents test: removed on the host' }],
          });
          await waitForGate(deletion, 'backupDeletion');
          await approveSigned(deletion, { by: 'bob@example.com', reason: 'agents test: approved', gate: 'backupDeletion' });
          const deleted = (await deletion.result()) as BackupDeletionReport;
          assert.equal(deleted.outcome, 'deleted', deleted.detail);
          const retention = await client.workflow.start('retention', { taskQueue, workflowId: `agents-tls-retention-${run}`, args: [{ target, now: '2030-06-15T12:00:00Z' }] });
          const report = (await retention.result()) as RetentionReport;
          assert.deepEqual(
            report.outcomes.map((o) => [o.engineBackupId, o.outcome]),
            [[handles.get('D2')!.name, 'expired']],
          );
          assert.deepEqual(report.kept.map((k) => k.catalogId), [rowIds.get('D3')]);
          return { deletion, retention };
        }),
      );
      // pgBackRest really removed them (on the agent's host), and the catalog says so.
      assert.deepEqual(await setsNamed(handles.get('D1')!.name!), []);
      assert.deepEqual(await setsNamed(handles.get('D2')!.name!), []);
      assert.equal((await setsNamed(handles.get('D3')!.name!)).length, 1, 'the last verified set stays');
      const rows = await casePorts.catalog.query<{ id: string; status: string }>('SELECT id::text AS id, status FROM backups WHERE workflow_id = $1 ORDER BY id', [seed]);
      assert.deepEqual(rows.map((r) => r.status), ['deleted', 'expired', 'verified']);
      assertRouted(await activityRuns(deletion), where(), BACKUP_REMOVAL_HOST_ACTIVITIES.filter((a) => a === 'deleteDatabaseBackupByHand'));
      assertRouted(await activityRuns(retention), where(), BACKUP_REMOVAL_HOST_ACTIVITIES.filter((a) => a === 'expireDatabaseBackup'));
      await recordHistory(deletion, 'backupDeletion-v2-agent-routed');
      await recordHistory(retention, 'retention-v3-agent-routed');
    } finally {
      await close();
      for (const handle of [...handles.values()].reverse()) await pg.deleteBackup(handle).catch(() => undefined);
      await removeCatalogRows(casePorts.catalog, [seed]);
      await casePorts.close();
    }
  });

  it("runs a preflight with the target's pgbackrest check of both repositories on its agent alone, its database, RPO and the rest central, in one check's order", async function () {
    this.timeout(120000);
    const { client, centralWorker, agentWorker, close } = await workers();
    try {
      await centralWorker.runUntil(() =>
        agentWorker.runUntil(async () => {
          const handle = await client.workflow.start('preflight', { taskQueue: config.temporal.taskQueue, workflowId: `agents-tls-preflight-${run}`, args: [{ targets: ['app'] }] });
          const result = (await handle.result()) as PreflightResult;
          assert.equal(result.ok, true, result.problems.join('\n'));
          assert.deepEqual(
            result.checks.map((c) => c.component).filter((c) => / app\b/.test(c)),
            ['secrets of app', 'database app', 'pgbackrest app repo1 (primary)', 'pgbackrest app repo2 (dr)', 'pgbackrest app dr-copy (repo1 -> repo2)', 'rpo app'],
          );
          assertRouted(await activityRuns(handle), where(), PREFLIGHT_HOST_ACTIVITIES);
          await recordHistory(handle, 'preflight-v2-agent-routed');
        }),
      );
    } finally {
      await close();
    }
  });

  it("runs a compliance report with the target's pgBackRest backup sizes for its RTO prediction read on its agent alone, the facts, prediction and evidence central", async function () {
    this.timeout(120000);
    const { client, centralWorker, agentWorker, close } = await workers();
    try {
      await centralWorker.runUntil(() =>
        agentWorker.runUntil(async () => {
          const handle = await client.workflow.start('complianceReport', { taskQueue: config.temporal.taskQueue, workflowId: `agents-tls-compliance-${run}`, args: [{ requestedBy: 'agents-tls-test' }] });
          const { report } = (await handle.result()) as ComplianceReportResult;
          const app = report.targets.find((t) => t.target === 'app');
          assert.ok(app?.checks.some((c) => c.name === 'predicted RTO'), `app has an RTO prediction: ${JSON.stringify(app?.checks)}`);
          const runs = await activityRuns(handle);
          assertRouted(runs, where(), PREDICTION_HOST_ACTIVITIES);
          assert.equal(runs.filter((r) => r.activity === 'readBackupSizes').length, 1, 'read once, for app, the only target on the agent');
          await recordHistory(handle, 'complianceReport-v2-agent-routed');
        }),
      );
    } finally {
      await close();
    }
  });
});
