/**
 * The lifeboat worker. A central worker runs every workflow and the activities that need no
 * particular host, on the task queue the config names; run several for scale, they share it.
 * An agent (`--agent <name>`) runs on a database host and registers only the host-bound
 * activities (pgBackRest, pg_dump, the clusters restores make there), on that host's queue.
 * Stateless: durable state lives in Temporal, records in the catalog.
 */
import './quiet-sdk-notice';
import { ActivityInterceptorsFactory, NativeConnection, Runtime, Worker, WorkerOptions } from '@temporalio/worker';
import { createActivities, createHostBoundActivities } from './activities';
import { reportCancellationAsSuch } from './activities/cancellation';
import { beatWhileRunning } from './activities/heartbeat';
import { createPorts, Ports } from './activities/ports';
import { connectClient, connectTemporal, connectWorkerConnection, ensureSearchAttributes, lifeboatDataConverter } from './client/temporal';
import { LifeboatConfig } from './config';
import { loadLocatedConfig } from './config/locate';
import { agentTaskQueue } from './domain/agents';
import { freeLoopbackPort, metricsPortFrom, startWorkerMetrics } from './metrics/worker-metrics';
import { workflowBundlePath } from './workflow-bundle';
import { DEFAULT_SHUTDOWN_GRACE_MS, shutdownGraceFromEnv } from './worker-shutdown';

export interface LifeboatWorkerOptions {
  config: LifeboatConfig;
  connection: NativeConnection;
  ports: Ports;
  taskQueue?: string;
  /** Run as this agent: host-bound activities only, on its queue (`taskQueue` is then ignored), no workflows. */
  agent?: string;
  /** A prebuilt bundle (the worker process passes lib/workflow-bundle.js, tests build one per run); default: $LIFEBOAT_WORKFLOW_BUNDLE, else bundle src/workflows in this process. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** How long a shutting-down worker lets running activities finish before it cancels them (ms). */
  shutdownGraceMs?: number;
  /** The worker's identity in history (default: the SDK's pid@host). */
  identity?: string;
  /** More activity interceptors, after lifeboat's own (the scale benchmark times each activity with one). */
  activityInterceptors?: ActivityInterceptorsFactory[];
  /** Activities run at once (default CENTRAL_WORKER_ACTIVITY_SLOTS; the scale benchmark tries others). */
  activitySlots?: number;
}

/** Activity slots of one central worker: backups and restores are few and long, a couple each is plenty on 2 cores. */
export const CENTRAL_WORKER_ACTIVITY_SLOTS = 8;

export async function createLifeboatWorker(options: LifeboatWorkerOptions): Promise<Worker> {
  const { config, connection, ports, agent } = options;
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    ...(options.identity ? { identity: options.identity } : {}),
    ...(agent
      ? { taskQueue: agentTaskQueue(agent), activities: createHostBoundActivities(ports) }
      : {
          taskQueue: options.taskQueue ?? config.temporal.taskQueue,
          ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : prebuiltBundleFromEnv() ?? { workflowsPath: require.resolve('./workflows') }),
          activities: createActivities(ports),
        }),
    dataConverter: lifeboatDataConverter(config),
    interceptors: { activity: [beatWhileRunning, reportCancellationAsSuch, ...(options.activityInterceptors ?? [])] },
    maxConcurrentActivityTaskExecutions: options.activitySlots ?? CENTRAL_WORKER_ACTIVITY_SLOTS,
    // On shutdown, running activities get this long to finish; then they are cancelled (heartbeating ones see it and stop).
    shutdownGraceTime: options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS,
  });
}

/**
 * $LIFEBOAT_WORKFLOW_BUNDLE: a file holding the workflow bundle already built from these same
 * sources (bundleWorkflowCode's code, as the tests write it once per run): the worker then starts
 * without bundling src/workflows, which takes several seconds on a busy host. Unset, it bundles.
 */
function prebuiltBundleFromEnv(env: NodeJS.ProcessEnv = process.env): { workflowBundle: { codePath: string } } | undefined {
  const codePath = env.LIFEBOAT_WORKFLOW_BUNDLE;
  return codePath ? { workflowBundle: { codePath } } : undefined;
}

const AGENT_NAME = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** `--agent <name>` or $LIFEBOAT_AGENT: run as that agent; bad input is one sentence and exit 2. */
export function agentFromArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  const at = argv.findIndex((a) => a === '--agent' || a.startsWith('--agent='));
  const raw = at < 0 ? env.LIFEBOAT_AGENT || undefined : argv[at].includes('=') ? argv[at].slice('--agent='.length) : argv[at + 1];
  if (at >= 0 && (raw === undefined || raw.startsWith('--'))) throw Object.assign(new Error('--agent needs a name: the agent named in targets.databases[].agent.'), { exitCode: 2 });
  if (raw !== undefined && !AGENT_NAME.test(raw)) throw Object.assign(new Error(`agent name ${JSON.stringify(raw)} is not valid: use lowercase letters, digits and hyphens, as in targets.databases[].agent.`), { exitCode: 2 });
  return raw;
}

async function main(): Promise<void> {
  const agent = agentFromArgs(process.argv.slice(2));
  const shutdownGraceMs = shutdownGraceFromEnv();
  const { file, config } = loadLocatedConfig(process.env.LIFEBOAT_CONFIG);
  const metricsPort = metricsPortFrom(config);
  // The SDK's Rust core serves its own metrics on a loopback port; lifeboat's endpoint appends them (one endpoint per worker).
  const sdkMetricsPort = metricsPort !== undefined && config.metrics.temporalSdk ? await freeLoopbackPort() : undefined;
  // lifeboat handles the signals itself (below), so a stop is logged and drains instead of racing the SDK's own handler.
  Runtime.install({
    shutdownSignals: [],
    ...(sdkMetricsPort ? { telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${sdkMetricsPort}`, useSecondsForDurations: true } } } } : {}),
  });
  if (agent && !config.targets.databases.some((d) => d.engine === 'pgbackrest' && d.agent === agent)) {
    throw Object.assign(new Error(`no target in ${file} names agent ${agent}: set targets.databases[].agent to it, or start the agent under the name a target gives.`), { exitCode: 2 });
  }
  const { connection, settings } = await connectWorkerConnection(config);
  // The environment or a Temporal profile may name another namespace than the file: the worker uses what it connected with.
  config.temporal.namespace = settings.namespace;
  let added: string[] = [];
  if (!agent) {
    const client = await connectTemporal(config);
    added = await ensureSearchAttributes(client.connection, settings.namespace);
    await client.connection.close();
  }
  const ports = createPorts(config);
  // Pending approvals are read through visibility: a central worker keeps a client for that.
  const metricsClient = metricsPort !== undefined && !agent ? await connectClient(config) : undefined;
  // Listening comes before the migrations and the worker: a port in use stops the start before anything changes.
  const metrics =
    metricsPort === undefined
      ? undefined
      : await startWorkerMetrics({
          config,
          port: metricsPort,
          ...(agent ? { agent } : { catalog: ports.catalog, client: metricsClient, objectStore: (name: string) => ports.objectStore(name) }),
          engineOf: (target) => ports.database(target),
          ...(sdkMetricsPort ? { sdkMetricsUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics` } : {}),
          log: (line) => process.stdout.write(line),
        });
  // The catalog's schema is the central workers' to migrate; an agent only uses it.
  const { applied } = agent ? { applied: [] as string[] } : await ports.catalog.migrate();
  // Bundled ahead of time, or in a child process now: bundling here would stay in this process's memory (src/workflow-bundle.ts).
  const workflowBundle = agent ? undefined : { codePath: await workflowBundlePath(process.env, (line) => process.stdout.write(line)) };
  const worker = await createLifeboatWorker({ config, connection, ports, shutdownGraceMs, agent, ...(workflowBundle ? { workflowBundle } : {}) });
  if (!config.temporal.encryption) process.stdout.write('lifeboat worker: temporal.encryption is not configured: workflow histories are stored in plaintext\n');
  const stop = (signal: NodeJS.Signals) => {
    if (worker.getState() !== 'RUNNING') return;
    process.stdout.write(`lifeboat worker: ${signal} received: no new tasks; running activities get ${Math.round(shutdownGraceMs / 1000)} s to finish\n`);
    worker.shutdown();
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, stop);
  const queue = agent ? agentTaskQueue(agent) : config.temporal.taskQueue;
  process.stdout.write(
    `lifeboat worker: task queue ${queue}${agent ? ` (agent ${agent}: host-bound activities only)` : ''} on ${settings.summary}, config ${file}` +
      `${added.length ? `, added search attributes ${added.join(', ')}` : ''}${applied.length ? `, catalog migrations ${applied.join(', ')} applied` : ''}` +
      `${metrics ? `, metrics at ${metrics.url}` : ''}\n`,
  );
  try {
    await worker.run(); // returns after SIGINT/SIGTERM once in-flight tasks finish
    process.stdout.write('lifeboat worker: stopped after draining its tasks\n');
  } finally {
    await metrics?.close();
    await metricsClient?.connection.close();
    await ports.close();
    await connection.close();
  }
}

if (require.main === module) {
  main().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`lifeboat worker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit((err as { exitCode?: number }).exitCode ?? 1);
  });
}
