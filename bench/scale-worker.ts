/**
 * One central worker of the scale benchmark, in its own process as a deployment runs it
 * (forked by bench/scale.ts, which talks to it over the IPC channel). It connects with lifeboat's
 * connection factory and data converter (the payload codec runs on every payload), and times
 * each activity attempt's own run time with an interceptor, reported when it stops.
 *
 * - mode `lifeboat`: `createLifeboatWorker` exactly as `lifeboat worker start` builds it (every
 *   workflow and activity, 8 activity slots unless the run asks for others), with every RDSClient in this process answered at
 *   the SDK boundary by test/helpers/rds-snapshots.ts (its snapshots in a directory both worker
 *   processes share, as they share one RDS): RDS targets back up in milliseconds, the
 *   catalog writes and the row counts on the source's endpoint (the stack's Postgres) are real.
 * - mode `noop`: a plain SDK worker with the same connection, data converter and activity slots,
 *   running bench/scale-workflows.ts (no-op activities): Temporal's floor on this machine.
 */
import '../src/quiet-sdk-notice';
import { performance } from 'node:perf_hooks';
import { RDSClient } from '@aws-sdk/client-rds';
import { ActivityInterceptorsFactory, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { mockClient } from 'aws-sdk-client-mock';
import { createPorts, Ports } from '../src/activities/ports';
import { connectWorkerConnection, lifeboatDataConverter } from '../src/client/temporal';
import { parseConfig } from '../src/config';
import { createLifeboatWorker } from '../src/worker';
import { answerSnapshotsLikeRds } from '../test/helpers/rds-snapshots';
import { ownRunTimeKey } from './scale-figures';

export interface WorkerStart {
  kind: 'start';
  mode: 'lifeboat' | 'noop';
  taskQueue: string;
  identity: string;
  configText: string;
  /** A workflow bundle written by the parent (one bundle for both workers). */
  bundlePath: string;
  endpoint: { host: string; port: number };
  describesUntilAvailable: number;
  /** The directory both workers keep the mocked RDS's snapshots in (one starts a snapshot, the other may wait for it). */
  rdsStateDir: string;
  activitySlots: number;
}

export type WorkerReport = { kind: 'ready' } | { kind: 'stopped'; runTimes: Array<[string, number]> } | { kind: 'error'; message: string };

/** Resolves once the message is handed to the IPC channel (so a disconnect after it does not drop it). */
const send = (message: WorkerReport) => new Promise<void>((resolve) => (process.send ? process.send(message, undefined, {}, () => resolve()) : resolve()));

async function serve(start: WorkerStart): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = parseConfig(start.configText, 'bench config');
  const { connection, settings } = await connectWorkerConnection(config);
  config.temporal.namespace = settings.namespace;
  const runTimes: Array<[string, number]> = [];
  const timing: ActivityInterceptorsFactory = (ctx) => ({
    inbound: {
      async execute(input, next) {
        const began = performance.now();
        try {
          return await next(input);
        } finally {
          runTimes.push([ownRunTimeKey(ctx.info.workflowExecution?.workflowId ?? '', ctx.info.activityId, ctx.info.attempt), performance.now() - began]);
        }
      },
    },
  });
  let ports: Ports | undefined;
  let worker: Worker;
  if (start.mode === 'lifeboat') {
    answerSnapshotsLikeRds(mockClient(RDSClient), { endpoint: start.endpoint, describesUntilAvailable: start.describesUntilAvailable, stateDir: start.rdsStateDir });
    // The notifier's log lines (a backup complete, an RPO warning) would be a thousand lines of output: dropped.
    ports = createPorts(config, { log: () => undefined });
    worker = await createLifeboatWorker({ config, connection, ports, taskQueue: start.taskQueue, identity: start.identity, workflowBundle: { codePath: start.bundlePath }, activityInterceptors: [timing], activitySlots: start.activitySlots });
  } else {
    worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: start.taskQueue,
      identity: start.identity,
      workflowBundle: { codePath: start.bundlePath },
      activities: { noopStep: async () => 1 },
      dataConverter: lifeboatDataConverter(config),
      interceptors: { activity: [timing] },
      maxConcurrentActivityTaskExecutions: start.activitySlots,
    });
  }
  process.on('message', (message: { kind?: string }) => {
    if (message.kind === 'stop' && worker.getState() === 'RUNNING') worker.shutdown();
  });
  const running = worker.run();
  await send({ kind: 'ready' });
  try {
    await running;
  } finally {
    await ports?.close();
    await connection.close();
  }
  await send({ kind: 'stopped', runTimes });
}

process.once('message', (start: WorkerStart) => {
  serve(start).then(
    () => process.disconnect?.(),
    async (err: unknown) => {
      process.exitCode = 1;
      await send({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      process.disconnect?.();
    },
  );
});
