/**
 * `node lib/bench/metrics.js`: what one reading of the metrics endpoint costs, side by side with
 * the same facts read by hand, on the local stack. Figures, not assertions.
 *
 *   (a) the catalog readings (collectCatalogMetrics every 15 s, collectCatalogDurations: the
 *       duration histograms, every 5 min)
 *       against one plain `SELECT target, backup_type, status, count(*) ... GROUP BY` (the least
 *       anyone would ask of the catalog for backup counts alone), as the backups table grows:
 *       synthetic backup rows are added inside a transaction that is rolled back, so nothing stays;
 *   (b) the recovery point reading of `app` (collectRecoveryPointMetrics: pgBackRest info, a
 *       listing of the archive, the source's insert position) against `pgbackrest info --repo=1`
 *       by hand.
 * Each figure is the median of LIFEBOAT_BENCH_METRICS_RUNS runs (default 5).
 *
 * Environment:
 *   LIFEBOAT_BENCH_METRICS_ROWS  comma-separated table sizes (default 1000,10000; 100000 by hand)
 *   LIFEBOAT_BENCH_METRICS_RUNS  runs per figure (default 5)
 */
import '../src/quiet-sdk-notice';
import { createPorts } from '../src/activities/ports';
import { loadLocatedConfig } from '../src/config/locate';
import { collectCatalogDurations, collectCatalogMetrics } from '../src/metrics/catalog-metrics';
import { renderExposition } from '../src/metrics/exposition';
import { collectRecoveryPointMetrics } from '../src/metrics/recovery-point-metrics';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { createStack } from '../src/stack/stack';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(runs: number, fn: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return median(ms);
}

async function main(): Promise<void> {
  const sizes = (process.env.LIFEBOAT_BENCH_METRICS_ROWS ?? '1000,10000').split(',').map(Number);
  const runs = Number(process.env.LIFEBOAT_BENCH_METRICS_RUNS ?? 5);
  const { config } = loadLocatedConfig(process.env.LIFEBOAT_CONFIG);
  const ports = createPorts(config);
  const stack = createStack();
  try {
    process.stdout.write(`(a) catalog reading, median of ${runs} (synthetic rows added in a transaction, rolled back)\n`);
    process.stdout.write('| backups rows | collectCatalogMetrics (every 15 s) | collectCatalogDurations (every 5 min) | by hand: one GROUP BY count | exposition size |\n|---|---|---|---|---|\n');
    for (const rows of sizes) {
      await ports.catalog.withClient(async (c) => {
        await c.query('BEGIN');
        try {
          const [{ existing }] = (await c.query<{ existing: number }>('SELECT count(*)::int AS existing FROM backups')).rows;
          const add = Math.max(0, rows - existing);
          // Ten targets, a third incremental, one in twenty failed, both regions with times and sizes: the shape the workflows record.
          await c.query(
            `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, size_bytes, started_at, completed_at, verified_at, workflow_id)
             SELECT 'bench-' || (i % 10), 'production', CASE WHEN i % 3 = 0 THEN 'incr' ELSE 'full' END, 'pgbackrest', 'bench-' || i,
                    CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'verified' END,
                    jsonb_build_object(
                      'primary', jsonb_build_object('region', 'primary', 'sizeBytes', 1000 + i, 'startedAt', to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'completedAt', to_char(t + interval '60 s', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'verifiedAt', to_char(t + interval '90 s', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
                      'dr', jsonb_build_object('region', 'dr', 'sizeBytes', 1000 + i, 'startedAt', to_char(t + interval '95 s', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'completedAt', to_char(t + interval '155 s', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'verifiedAt', to_char(t + interval '185 s', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))),
                    1000 + i, t, t + interval '60 s', t + interval '185 s', 'bench-wf-' || i
             FROM generate_series(1, $1::int) AS i, LATERAL (SELECT now() - (i || ' hours')::interval AS t) AS at`,
            [add],
          );
          const catalog = { query: async (sql: string, params: unknown[] = []) => (await c.query(sql, params)).rows };
          let bytes = 0;
          const collector = await timed(runs, async () => (bytes = renderExposition(await collectCatalogMetrics(catalog, config)).length));
          let durationBytes = 0;
          const durations = await timed(runs, async () => (durationBytes = renderExposition(await collectCatalogDurations(catalog)).length));
          const byHand = await timed(runs, () => c.query('SELECT target, backup_type, status, count(*) FROM backups GROUP BY 1, 2, 3'));
          process.stdout.write(`| ${existing + add} | ${collector.toFixed(1)} ms | ${durations.toFixed(1)} ms | ${byHand.toFixed(1)} ms | ${((bytes + durationBytes) / 1024).toFixed(1)} KiB |\n`);
        } finally {
          await c.query('ROLLBACK');
        }
      });
    }

    const app = config.targets.databases.find((d) => d.name === 'app');
    if (app) {
      const reading = await timed(runs, () => collectRecoveryPointMetrics([app], (t) => ports.database(t)));
      const byHand = await timed(runs, () => localPgBackRest(stack.ctx).info(1));
      process.stdout.write(`\n(b) recovery point of app, median of ${runs}: collectRecoveryPointMetrics ${reading.toFixed(0)} ms; by hand, pgbackrest info --repo=1 ${byHand.toFixed(0)} ms\n`);
    }
  } finally {
    await ports.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/metrics: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
