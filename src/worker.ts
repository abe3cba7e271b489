/**
 * The lifeboat worker: runs every workflow and activity on the task queue the config names.
 * Stateless: durable state lives in Temporal, records in the catalog. Run many for scale.
 */
import './quiet-sdk-notice';
import { Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, WorkerOptions } from '@temporalio/worker';
import { createActivities } from './activities';
import { reportCancellationAsSuch } from './activities/cancellation';
import { createPorts, Ports } from './activities/ports';
import { ensureSearchAttributes, lifeboatDataConverter } from './client/temporal';
import { LifeboatConfig } from './config';
import { loadLocatedConfig } from './config/locate';
import { DEFAULT_SHUTDOWN_GRACE_MS, shutdownGraceFromEnv } from './worker-shutdown';

export interface LifeboatWorkerOptions {
  config: LifeboatConfig;
  connection: NativeConnection;
  ports: Ports;
  taskQueue?: string;
  /** A prebuilt bundle (tests build it once); default: bundle src/workflows at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** How long a shutting-down worker lets running activities finish before it cancels them (ms). */
  shutdownGraceMs?: number;
}

export async function createLifeboatWorker(options: LifeboatWorkerOptions): Promise<Worker> {
  const { config, connection, ports } = options;
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: options.taskQueue ?? config.temporal.taskQueue,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: require.resolve('./workflows') }),
    activities: createActivities(ports),
    dataConverter: lifeboatDataConverter(config),
    interceptors: { activity: [reportCancellationAsSuch] },
    // Backups and restores are few and long: a couple of slots each is plenty on 2 cores.
    maxConcurrentActivityTaskExecutions: 8,
    // On shutdown, running activities get this long to finish; then they are cancelled (heartbeating ones see it and stop).
    shutdownGraceTime: options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS,
  });
}

async function main(): Promise<void> {
  const shutdownGraceMs = shutdownGraceFromEnv();
  // lifeboat handles the signals itself (below), so a stop is logged and drains instead of racing the SDK's own handler.
  Runtime.install({ shutdownSignals: [] });
  const { file, config } = loadLocatedConfig(process.env.LIFEBOAT_CONFIG);
  const connection = await NativeConnection.connect({ address: config.temporal.address }).catch((err: Error) => {
    throw new Error(`cannot reach Temporal at ${config.temporal.address} (${err.message}): start it with \`lifeboat stack up\` or fix temporal.address in ${file}.`);
  });
  const clientConnection = await Connection.connect({ address: config.temporal.address });
  const added = await ensureSearchAttributes(clientConnection, config.temporal.namespace);
  await clientConnection.close();
  const ports = createPorts(config);
  const { applied } = await ports.catalog.migrate();
  const worker = await createLifeboatWorker({ config, connection, ports, shutdownGraceMs });
  if (!config.temporal.encryption) process.stdout.write('lifeboat worker: temporal.encryption is not configured: workflow histories are stored in plaintext\n');
  const stop = (signal: NodeJS.Signals) => {
    if (worker.getState() !== 'RUNNING') return;
    process.stdout.write(`lifeboat worker: ${signal} received: no new tasks; running activities get ${Math.round(shutdownGraceMs / 1000)} s to finish\n`);
    worker.shutdown();
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, stop);
  process.stdout.write(
    `lifeboat worker: task queue ${config.temporal.taskQueue} on ${config.temporal.address} (namespace ${config.temporal.namespace}), config ${file}` +
      `${added.length ? `, added search attributes ${added.join(', ')}` : ''}${applied.length ? `, catalog migrations ${applied.join(', ')} applied` : ''}\n`,
  );
  try {
    await worker.run(); // returns after SIGINT/SIGTERM once in-flight tasks finish
    process.stdout.write('lifeboat worker: stopped after draining its tasks\n');
  } finally {
    await ports.close();
    await connection.close();
  }
}

if (require.main === module) {
  main().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`lifeboat worker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
