/**
 * `node lib/bench/rto-prediction.js`: proves the RTO prediction on the local stack. Figures, not
 * assertions (the mocha test in test/rto-prediction-bench.test.ts runs it small and checks only
 * that the figures are made the way this page says).
 *
 *   1. the sample application's orders are brought to a base size (LIFEBOAT_BENCH_RTO_BASE_ROWS);
 *   2. full backup + restore drill at the base size;
 *   3. grown to the middle size (half way to the final factor), full backup + drill: drills at
 *      two sizes, so the model fits fixed overheads and rates;
 *   4. grown to the final size (LIFEBOAT_BENCH_RTO_GROWTH × base rows), full backup;
 *   5. predictRestore('app') (the activity, as the worker runs it) predicts the RTO now;
 *   6. a drill of that backup measures it; the error is (predicted − measured) / measured.
 * Also printed: what the model would have said from the base drill alone (one size: restore
 * and replay taken as wholly proportional), to show why drills at several sizes matter.
 * The rows added are deleted afterwards (and the tables compacted) unless LIFEBOAT_BENCH_KEEP=1.
 *
 * Environment:
 *   LIFEBOAT_BENCH_RTO_BASE_ROWS  orders at the base size (default 200000; the stack seeds 20000)
 *   LIFEBOAT_BENCH_RTO_GROWTH     final rows as a multiple of the base (default 4)
 *   LIFEBOAT_BENCH_KEEP           1: keep the grown data
 */
import '../src/quiet-sdk-notice';
import { randomUUID } from 'node:crypto';
import { Client as TemporalClient } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { Client } from 'pg';
import { createPorts, Ports } from '../src/activities/ports';
import { predictionActivities } from '../src/activities/rto-prediction';
import { findDatabaseTarget, LifeboatConfig, resolveSecret } from '../src/config';
import { loadLocatedConfig } from '../src/config/locate';
import type { DatabaseBackupResult } from '../src/domain/backup';
import type { RestoreDrillResult } from '../src/domain/drill';
import { rtoPhases } from '../src/domain/drill-report';
import { formatBytes, formatDuration } from '../src/domain/format';
import { predictRto, RtoPrediction } from '../src/domain/rto-prediction';
import { createLifeboatWorker } from '../src/worker';
import { connectTemporal, connectWorkerConnection, lifeboatDataConverter } from '../src/client/temporal';

export interface RtoBenchOptions {
  config: LifeboatConfig;
  ports: Ports;
  connection: NativeConnection;
  client: TemporalClient;
  workflowBundle?: WorkflowBundleWithSourceMap;
  target?: string;
  baseRows: number;
  growth: number;
  keep?: boolean;
  log?: (line: string) => void;
}

export interface RtoBenchDrill {
  label: string;
  drillId: string;
  orders: number;
  sizeBytes: number;
  rtoSeconds: number;
  phases: Array<{ phase: string; seconds: number }>;
}

export interface RtoBenchResult {
  drills: RtoBenchDrill[];
  prediction: RtoPrediction;
  measuredSeconds: number;
  /** (predicted − measured) / measured. */
  error: number;
  /** The prediction from the base drill alone, at the final size. */
  oneSizePrediction: RtoPrediction;
  oneSizeError: number;
}

export async function runRtoPredictionBench(o: RtoBenchOptions): Promise<RtoBenchResult> {
  const say = o.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const target = findDatabaseTarget(o.config, o.target ?? 'app');
  if (target.engine !== 'pgbackrest') throw new Error('the RTO bench grows a local pgBackRest target');
  const pg = new Client({ host: target.host, port: target.port, database: target.database, user: target.user, password: target.password ? resolveSecret(target.password) : undefined, statement_timeout: 0 });
  await pg.connect();
  const taskQueue = `bench-rto-${randomUUID().slice(0, 8)}`;
  const worker = await createLifeboatWorker({ config: o.config, connection: o.connection, ports: o.ports, taskQueue, ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : {}) });
  const orders = async () => Number((await pg.query<{ n: string }>('SELECT count(*) AS n FROM orders')).rows[0].n);
  const startRows = await orders();
  const startMax = Number((await pg.query<{ m: string }>('SELECT coalesce(max(id), 0) AS m FROM orders')).rows[0].m);

  /** Adds orders (two lines each) until there are `rows`. */
  const growTo = async (rows: number) => {
    const have = await orders();
    if (have >= rows) return;
    const { m } = (await pg.query<{ m: string }>('SELECT max(id) AS m FROM orders')).rows[0];
    const customers = Number((await pg.query<{ n: string }>('SELECT count(*) AS n FROM customers')).rows[0].n);
    const products = Number((await pg.query<{ n: string }>('SELECT count(*) AS n FROM products')).rows[0].n);
    const add = rows - have;
    await pg.query('BEGIN');
    await pg.query(
      `INSERT INTO orders (id, customer_id, placed_at, status)
       SELECT $1::bigint + i, (i % $3::bigint) + 1, timestamptz '2026-06-01 00:00:00+00' + i * interval '7 seconds', (ARRAY['placed','paid','shipped','delivered'])[(i % 4) + 1]
       FROM generate_series(1, $2::bigint) AS i`,
      [m, add, customers],
    );
    await pg.query(
      `INSERT INTO order_items (order_id, line_no, product_id, quantity)
       SELECT $1::bigint + o, l, ((o * 7 + l * 13) % $3::bigint) + 1, (o + l) % 5 + 1
       FROM generate_series(1, $2::bigint) AS o, generate_series(1, 2) AS l`,
      [m, add, products],
    );
    await pg.query('COMMIT');
    await pg.query('ANALYZE orders, order_items');
  };

  const sizeNow = async () => Number((await pg.query<{ b: string }>('SELECT sum(pg_database_size(oid))::text AS b FROM pg_database')).rows[0].b);

  const backupAndDrill = async (label: string): Promise<RtoBenchDrill> => {
    const stamp = Date.now().toString(36);
    const backup = (await o.client.workflow.execute('databaseBackup', {
      taskQueue,
      workflowId: `bench-rto-backup-${label}-${stamp}`,
      args: [{ target: target.name, kind: 'full', pollIntervalMs: 500, requestedBy: 'bench' }],
    })) as DatabaseBackupResult;
    const drill = (await o.client.workflow.execute('restoreDrill', {
      taskQueue,
      workflowId: `bench-rto-drill-${label}-${stamp}`,
      args: [{ target: target.name, backup: 'latest', requestedBy: 'bench', timings: { pollIntervalMs: 500 } }],
    })) as RestoreDrillResult;
    if (drill.report.outcome !== 'passed') throw new Error(`the ${label} drill ${drill.report.outcome}: ${drill.report.issues.join('; ')}`);
    const info = await o.ports.pgbackrest(target).info();
    const set = info?.backup.find((b) => b.label === drill.report.backup.id);
    const d: RtoBenchDrill = { label, drillId: drill.report.drillId, orders: await orders(), sizeBytes: set?.info.size ?? 0, rtoSeconds: drill.report.rto.seconds, phases: rtoPhases(drill.report.steps) };
    say(`  ${label}: ${d.orders} orders, ${formatBytes(d.sizeBytes)} restored; backup ${backup.primary?.handle?.backupId ?? drill.report.backup.id}; drill RTO ${formatDuration(d.rtoSeconds)} (${d.phases.map((p) => `${p.phase} ${p.seconds} s`).join(', ')})`);
    return d;
  };

  try {
    return await worker.runUntil(async () => {
      const base = Math.max(o.baseRows, startRows);
      const final = Math.round(base * o.growth);
      say(`RTO prediction bench on ${target.name}: ${startRows} orders now, base ${base}, final ${final} (×${o.growth})`);
      await growTo(base);
      const d1 = await backupAndDrill('base');
      await growTo(Math.round(base * (1 + o.growth) / 2));
      const d2 = await backupAndDrill('middle');
      await growTo(final);
      const predictRestore = predictionActivities(o.ports).predictRestore;
      // The backup the next drill restores is taken first: it is what "a restore now" would restore.
      const stamp = Date.now().toString(36);
      await o.client.workflow.execute('databaseBackup', { taskQueue, workflowId: `bench-rto-backup-final-${stamp}`, args: [{ target: target.name, kind: 'full', pollIntervalMs: 500, requestedBy: 'bench' }] });
      const prediction = await predictRestore(target.name);
      say(`  prediction at ${formatBytes(prediction.currentSizeBytes)} (source now ${formatBytes(await sizeNow())}): ${prediction.summary}`);
      say(`    basis: ${prediction.basis.detail}`);
      const drill = (await o.client.workflow.execute('restoreDrill', {
        taskQueue,
        workflowId: `bench-rto-drill-final-${stamp}`,
        args: [{ target: target.name, backup: 'latest', requestedBy: 'bench', timings: { pollIntervalMs: 500 } }],
      })) as RestoreDrillResult;
      if (drill.report.outcome !== 'passed') throw new Error(`the final drill ${drill.report.outcome}: ${drill.report.issues.join('; ')}`);
      const measured = drill.report.rto.seconds;
      const predicted = prediction.predictedSeconds ?? NaN;
      const error = (predicted - measured) / measured;
      say(`  final: drill ${drill.report.drillId} measured RTO ${formatDuration(measured)} (${rtoPhases(drill.report.steps).map((p) => `${p.phase} ${p.seconds} s`).join(', ')})`);
      const oneSize = predictRto({
        target: target.name,
        now: new Date().toISOString(),
        objectiveSeconds: prediction.objectiveSeconds,
        currentSizeBytes: prediction.currentSizeBytes,
        drills: [{ drillId: d1.drillId, at: new Date().toISOString(), sizeBytes: d1.sizeBytes, rtoSeconds: d1.rtoSeconds, phases: d1.phases }],
        sizeHistory: [],
      });
      const oneSizeError = ((oneSize.predictedSeconds ?? NaN) - measured) / measured;
      say('');
      say(`predicted ${predicted} s, measured ${measured} s: error ${(error * 100).toFixed(1)} % (goal: within 20 %), from ${prediction.basis.drills} drills${prediction.basis.fitted ? ' at different sizes (fitted)' : ''}`);
      say(`from the base drill alone (one size, restore and replay proportional): predicted ${oneSize.predictedSeconds} s, error ${(oneSizeError * 100).toFixed(1)} %`);
      return { drills: [d1, d2], prediction, measuredSeconds: measured, error, oneSizePrediction: oneSize, oneSizeError };
    });
  } finally {
    if (!o.keep) {
      await pg.query('DELETE FROM orders WHERE id > $1', [startMax]).catch(() => undefined);
      await pg.query('VACUUM FULL orders, order_items').catch(() => undefined);
      await pg.query('ANALYZE orders, order_items').catch(() => undefined);
    }
    await pg.end();
  }
}

async function main(): Promise<void> {
  const { config } = loadLocatedConfig(process.env.LIFEBOAT_CONFIG);
  // The same connection settings (TLS, API key, environment, profile) as the CLI and the worker.
  const { connection } = await connectWorkerConnection(config);
  const { connection: clientConnection, settings } = await connectTemporal(config);
  const client = new TemporalClient({ connection: clientConnection, namespace: settings.namespace, dataConverter: lifeboatDataConverter(config) });
  const ports = createPorts(config, { log: () => undefined });
  try {
    await runRtoPredictionBench({
      config,
      ports,
      connection,
      client,
      baseRows: Number(process.env.LIFEBOAT_BENCH_RTO_BASE_ROWS || 200000),
      growth: Number(process.env.LIFEBOAT_BENCH_RTO_GROWTH || 4),
      keep: process.env.LIFEBOAT_BENCH_KEEP === '1',
    });
  } finally {
    await ports.close();
    await clientConnection.close();
    await connection.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
