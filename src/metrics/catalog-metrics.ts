/**
 * lifeboat's metrics read from the catalog at scrape time: a restarted worker reports the truth
 * at once, several workers report the same figures, and nothing counts twice when an activity
 * is retried. Counters are counts of rows that are only ever added (a backup row's outcome is
 * final once it leaves `running`), so `increase()` works on them across worker restarts.
 * Aggregation happens in SQL: a scrape reads a few hundred rows at most, however long the history.
 */
import { drillCalendarOf, LifeboatConfig, objectivesFor } from '../config';
import type { Catalog } from '../catalog/catalog';
import { cadenceSeconds } from '../domain/compliance';
import { Labels, MetricFamily, Sample } from './exposition';
import { BACKUP_PHASES, DURATION_BUCKETS, MetricDefinition, METRICS } from './definitions';
import { DAY_SECONDS, fitLine } from '../domain/storage';
import { replicaLags, storedHistory } from './storage-history';
import { dailyTotals } from './storage-report';

type Queryable = Pick<Catalog, 'query'>;

const family = (def: MetricDefinition, samples: Sample[] = []): MetricFamily => ({ name: def.name, help: def.help, type: def.type, samples });

/** A row's text timestamp in the locations JSON, cast only when it looks like one (older rows and other engines may lack it). */
const ts = (expr: string) => `(CASE WHEN (${expr}) ~ '^\\d{4}-\\d{2}-\\d{2}T' THEN (${expr})::timestamptz END)`;
const loc = (region: string, field: string) => `b.locations->'${region}'->>'${field}'`;

/** Durations of each phase of successful backups, as [start, end] pairs per phase (see docs/metrics.md). */
const PHASE_BOUNDS: Record<(typeof BACKUP_PHASES)[number], [string, string]> = {
  backup: [`coalesce(${ts(loc('primary', 'startedAt'))}, b.started_at)`, `coalesce(${ts(loc('primary', 'completedAt'))}, b.completed_at)`],
  verify: [ts(loc('primary', 'completedAt')), ts(loc('primary', 'verifiedAt'))],
  'dr-copy': [ts(loc('dr', 'startedAt')), ts(loc('dr', 'completedAt'))],
  'dr-verify': [ts(loc('dr', 'completedAt')), ts(loc('dr', 'verifiedAt'))],
  total: ['b.started_at', 'b.verified_at'],
};

/**
 * A backup that failed, including one retention has since expired or a person deleted: those keep
 * their failure and were never verified (retention removes what failed runs left, too). Without
 * this, cleaning up a failure would turn it into a success and the counters would go backwards.
 */
const FAILED_ROW = `(b.status = 'failed' OR (b.status IN ('expired', 'deleted') AND b.verified_at IS NULL AND b.failure IS NOT NULL))`;
/** A backup that ended well: verified or complete, possibly expired or deleted since. */
const SUCCEEDED = `(b.status IN ('verified', 'complete', 'expired', 'deleted') AND NOT ${FAILED_ROW})`;
const COPY_FAILED = `(${FAILED_ROW} OR coalesce(l.value->>'failed', 'false') = 'true')`;
const COPY_BYTES = `coalesce(CASE WHEN jsonb_typeof(l.value->'sizeBytes') = 'number' THEN (l.value->>'sizeBytes')::numeric END, b.size_bytes, 0)`;
const LOCATIONS = `LEFT JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(b.locations) = 'object' THEN b.locations ELSE '{}'::jsonb END) l ON l.key IN ('primary', 'dr')`;

export async function collectCatalogMetrics(catalog: Queryable, config: LifeboatConfig, now: Date = new Date()): Promise<MetricFamily[]> {
  const nowS = now.getTime() / 1000;
  // DynamoDB tables take the database objectives unless they set their own, and drill monthly.
  const targets: Array<{ target: { name: string; drill?: { cadence?: LifeboatConfig['schedules']['drill'] } }; kind: 'database' | 'bucket' | 'directory' | 'sqlite' | 'dynamodb'; objectives: { rpo: number; rto: number } }> = [
    ...config.targets.databases.map((t) => ({ target: t, kind: 'database' as const, objectives: objectivesFor(config, t) })),
    ...config.targets.buckets.map((t) => ({ target: t, kind: 'bucket' as const, objectives: objectivesFor(config, t) })),
    ...config.targets.directories.map((t) => ({ target: t, kind: 'directory' as const, objectives: objectivesFor(config, t) })),
    // SQLite targets: their drills' last result, measured RTO and cadence (weekly by default).
    ...config.targets.sqlite.map((t) => ({ target: t, kind: 'sqlite' as const, objectives: objectivesFor(config, t) })),
    ...config.targets.dynamodb.map((t) => ({ target: t, kind: 'dynamodb' as const, objectives: { rpo: t.rpo ?? config.objectives.database.rpo, rto: t.rto ?? config.objectives.database.rto } })),
  ];

  const copies = await catalog.query<{ target: string; kind: string; region: string | null; outcome: string; n: number; bytes: number }>(
    `SELECT b.target, b.backup_type AS kind, l.key AS region, CASE WHEN ${COPY_FAILED} THEN 'failure' ELSE 'success' END AS outcome,
            count(*)::int AS n, sum(CASE WHEN ${COPY_FAILED} THEN 0 ELSE ${COPY_BYTES} END)::float8 AS bytes
     FROM backups b ${LOCATIONS}
     WHERE b.status <> 'running'
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
  );
  const backups = family(METRICS.backups, copies.map((r) => ({ labels: { target: r.target, kind: r.kind, region: r.region ?? 'none', outcome: r.outcome }, value: r.n })));
  const bytesByRegion = new Map<string, { labels: Labels; value: number }>();
  for (const r of copies) {
    if (r.outcome !== 'success' || !r.region) continue;
    const key = `${r.target}\u0000${r.region}`;
    const entry = bytesByRegion.get(key) ?? { labels: { target: r.target, region: r.region }, value: 0 };
    entry.value += r.bytes;
    bytesByRegion.set(key, entry);
  }

  const newestOutcomes = await catalog.query<{ target: string; kind: string; ok: boolean }>(
    `SELECT DISTINCT ON (b.target, b.backup_type) b.target, b.backup_type AS kind,
            NOT ${FAILED_ROW} AND NOT EXISTS (SELECT 1 FROM jsonb_each(CASE WHEN jsonb_typeof(b.locations) = 'object' THEN b.locations ELSE '{}'::jsonb END) l
                                                 WHERE l.key IN ('primary', 'dr') AND coalesce(l.value->>'failed', 'false') = 'true') AS ok
     FROM backups b WHERE b.status <> 'running'
     ORDER BY b.target, b.backup_type, coalesce(b.completed_at, b.started_at, b.created_at) DESC, b.id DESC`,
  );

  const stored = await catalog.query<{ target: string; region: string; bytes: number }>(
    `SELECT b.target, l.key AS region, sum(${COPY_BYTES})::float8 AS bytes
     FROM backups b ${LOCATIONS}
     WHERE b.status IN ('verified', 'complete') AND l.key IS NOT NULL AND coalesce(l.value->>'failed', 'false') <> 'true'
     GROUP BY 1, 2 ORDER BY 1, 2`,
  );

  const restoreCounts = await catalog.query<{ target: string; outcome: string; n: number }>(`SELECT target, outcome, count(*)::int AS n FROM restores GROUP BY 1, 2 ORDER BY 1, 2`);
  const lastVerified = new Map(
    (
      await catalog.query<{ target: string; at: Date }>(
        `SELECT target, max(coalesce(completed_at, verified_at)) AS at FROM backups WHERE status = 'verified' AND coalesce(completed_at, verified_at) IS NOT NULL GROUP BY target`,
      )
    ).map((r) => [r.target, r.at.getTime() / 1000]),
  );

  // The newest backup whose DR copy verified and recorded its lag (backups from before the lag was recorded have none).
  const drLags = await catalog.query<{ target: string; mode: string; lag: number }>(
    `SELECT DISTINCT ON (target) target, coalesce(locations->'dr'->>'copyMode', 'second-backup') AS mode, (locations->'dr'->>'lagSeconds')::float8 AS lag
     FROM backups WHERE status IN ('verified', 'complete') AND jsonb_typeof(locations->'dr'->'lagSeconds') = 'number' AND coalesce(locations->'dr'->>'verified', 'false') = 'true'
     ORDER BY target, coalesce(completed_at, verified_at, created_at) DESC, id DESC`,
  );

  const drillCounts = await catalog.query<{ target: string; outcome: string; n: number }>(`SELECT target, outcome, count(*)::int AS n FROM drills GROUP BY 1, 2 ORDER BY 1, 2`);
  const newestDrill = new Map(
    (await catalog.query<{ target: string; outcome: string }>(`SELECT DISTINCT ON (target) target, outcome FROM drills WHERE outcome <> 'cancelled' ORDER BY target, finished_at DESC`)).map((r) => [r.target, r.outcome]),
  );
  const newestPassed = new Map(
    (await catalog.query<{ target: string; at: Date; rto: number }>(`SELECT DISTINCT ON (target) target, finished_at AS at, rto_seconds AS rto FROM drills WHERE outcome = 'passed' ORDER BY target, finished_at DESC`)).map((r) => [
      r.target,
      { at: r.at.getTime() / 1000, rto: r.rto },
    ]),
  );
  const predicted = new Map(
    (
      await catalog.query<{ target: string; seconds: number }>(
        `SELECT DISTINCT ON (target) target, (report->'prediction'->>'predictedSeconds')::float8 AS seconds FROM drills
         WHERE jsonb_typeof(report->'prediction'->'predictedSeconds') = 'number' ORDER BY target, finished_at DESC`,
      )
    ).map((r) => [r.target, r.seconds]),
  );

  const deletions = await catalog.query<{ kind: string; target: string; event: string; n: number }>(
    `SELECT kind, target, event, count(*)::int AS n FROM workflow_events
     WHERE kind IN ('retention', 'backup-deletion') AND target IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
  );
  const deletionOutcome: Record<string, string> = { 'backup-expired': 'expired', 'backup-expiry-refused': 'refused', 'backup-deleted': 'deleted', 'backup-deletion-refused': 'refused' };

  const lags = await replicaLags(catalog);
  // Daily live bytes per region over 90 days, fitted over the last 7 and the whole 90.
  const history = await storedHistory(catalog, now, 90);
  const growth: Sample[] = [];
  for (const region of ['primary', 'dr', 'all']) {
    const daily = dailyTotals(history, (h) => region === 'all' || h.region === region);
    for (const [window, days] of [['7d', 7], ['90d', 90]] as const) {
      const fit = fitLine(daily.filter((p) => p.at >= nowS - days * DAY_SECONDS));
      if (fit) growth.push({ labels: { region, window }, value: fit.slopePerDay });
    }
  }
  const budgets: Sample[] = Object.entries(config.storage.regionBudgetBytes).map(([region, bytes]) => ({ labels: { region }, value: bytes }));
  if (config.storage.budgetBytes !== undefined) budgets.push({ labels: { region: 'all' }, value: config.storage.budgetBytes });

  const perTarget = (def: MetricDefinition, value: (t: (typeof targets)[number]) => number | undefined) =>
    family(
      def,
      targets.flatMap((t) => {
        const v = value(t);
        return v === undefined ? [] : [{ labels: { target: t.target.name }, value: v }];
      }),
    );

  return [
    backups,
    family(METRICS.lastBackupSuccess, newestOutcomes.map((r) => ({ labels: { target: r.target, kind: r.kind }, value: r.ok ? 1 : 0 }))),
    family(METRICS.backupBytes, [...bytesByRegion.values()]),
    family(METRICS.storedBytes, stored.map((r) => ({ labels: { target: r.target, region: r.region }, value: r.bytes }))),
    perTarget(METRICS.lastVerifiedAge, (t) => {
      const at = lastVerified.get(t.target.name);
      return at === undefined ? Infinity : Math.max(0, Math.round(nowS - at));
    }),
    perTarget(METRICS.lastVerifiedTimestamp, (t) => lastVerified.get(t.target.name)),
    family(METRICS.drCopyLag, drLags.map((r) => ({ labels: { target: r.target, mode: r.mode }, value: r.lag }))),
    // pgBackRest archives WAL continuously, always: said here from the config, where every central worker knows it.
    family(
      METRICS.continuousArchiving,
      config.targets.databases.filter((d) => d.engine === 'pgbackrest').map((d) => ({ labels: { target: d.name }, value: 1 })),
    ),
    perTarget(METRICS.rpoObjective, (t) => t.objectives.rpo),
    perTarget(METRICS.rtoObjective, (t) => t.objectives.rto),
    family(METRICS.drills, drillCounts.map((r) => ({ labels: { target: r.target, outcome: r.outcome }, value: r.n }))),
    perTarget(METRICS.drillLastSuccess, (t) => {
      const outcome = newestDrill.get(t.target.name);
      return outcome === undefined ? undefined : outcome === 'passed' ? 1 : 0;
    }),
    perTarget(METRICS.drillLastPassedAge, (t) => {
      const passed = newestPassed.get(t.target.name);
      return passed === undefined ? Infinity : Math.max(0, Math.round(nowS - passed.at));
    }),
    perTarget(METRICS.drillCadence, (t) => cadenceSeconds(drillCalendarOf(config, t.target, t.kind).calendar, t.kind).seconds),
    perTarget(METRICS.drillMeasuredRto, (t) => newestPassed.get(t.target.name)?.rto),
    perTarget(METRICS.predictedRto, (t) => predicted.get(t.target.name)),
    family(METRICS.restores, restoreCounts.map((r) => ({ labels: { target: r.target, outcome: r.outcome }, value: r.n }))),
    family(METRICS.replicaLag, lags.map((l) => ({ labels: { target: l.target }, value: Math.round(l.seconds) }))),
    family(METRICS.replicaLagLimit, [{ labels: {}, value: config.storage.replicaLagLimit }]),
    family(METRICS.storageGrowth, growth),
    family(METRICS.storageBudget, budgets),
    family(
      METRICS.retentionDeletions,
      deletions.filter((r) => r.kind === 'retention' && deletionOutcome[r.event]).map((r) => ({ labels: { target: r.target, outcome: deletionOutcome[r.event] }, value: r.n })),
    ),
    family(
      METRICS.backupDeletions,
      deletions.filter((r) => r.kind === 'backup-deletion' && deletionOutcome[r.event]).map((r) => ({ labels: { target: r.target, outcome: deletionOutcome[r.event] }, value: r.n })),
    ),
  ];
}

/**
 * The duration histograms (backup, drill and restore phases) over the catalog's whole history: the
 * costliest reading (every row's timings parsed from JSON), and one that changes only when a run
 * ends, so the worker reads it less often than the rest (DURATIONS_CACHE_FACTOR).
 */
export async function collectCatalogDurations(catalog: Queryable): Promise<MetricFamily[]> {
  // A copy that failed has no duration worth trending; `total` only counts backups whole in both regions.
  const copyOk = (region: string) => `coalesce(b.locations->'${region}'->>'failed', 'false') <> 'true'`;
  const phaseRegions: Record<(typeof BACKUP_PHASES)[number], string[]> = { backup: ['primary'], verify: ['primary'], 'dr-copy': ['dr'], 'dr-verify': ['dr'], total: ['primary', 'dr'] };
  const phaseRows = BACKUP_PHASES.map(
    (p) =>
      `SELECT b.target, b.backup_type AS kind, '${p}' AS phase, extract(epoch FROM (${PHASE_BOUNDS[p][1]}) - (${PHASE_BOUNDS[p][0]}))::float8 AS s
       FROM backups b WHERE ${SUCCEEDED} AND ${phaseRegions[p].map(copyOk).join(' AND ')}`,
  );
  const durations = await catalog.query<{ target: string; kind: string; phase: string; n: number; total: number; le: number[] }>(
    `WITH d AS (${phaseRows.join(' UNION ALL ')})
     SELECT target, kind, phase, count(*)::int AS n, sum(s)::float8 AS total,
            ARRAY[${DURATION_BUCKETS.map((le) => `count(*) FILTER (WHERE s <= ${le})::int`).join(', ')}] AS le
     FROM d WHERE s IS NOT NULL AND s >= 0 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
  );

  const drillPhases = await catalog.query<{ target: string; phase: string; n: number; total: number; le: number[] }>(
    `SELECT d.target, p->>'phase' AS phase, count(*)::int AS n, sum((p->>'seconds')::float8)::float8 AS total,
            ARRAY[${DURATION_BUCKETS.map((le) => `count(*) FILTER (WHERE (p->>'seconds')::float8 <= ${le})::int`).join(', ')}] AS le
     FROM drills d, jsonb_array_elements(CASE WHEN jsonb_typeof(d.phases) = 'array' THEN d.phases ELSE '[]'::jsonb END) p
     WHERE d.outcome = 'passed' AND jsonb_typeof(p->'seconds') = 'number' AND p->>'phase' IS NOT NULL
     GROUP BY 1, 2 ORDER BY 1, 2`,
  );

  // Each phase of a restore's measured RTO (report.rto.phases), and the whole RTO as phase "total".
  const restorePhases = await catalog.query<{ target: string; phase: string; n: number; total: number; le: number[] }>(
    `WITH p AS (
       SELECT r.target, ph.key AS phase, (ph.value #>> '{}')::float8 AS s
       FROM restores r, jsonb_each(CASE WHEN jsonb_typeof(r.report->'rto'->'phases') = 'object' THEN r.report->'rto'->'phases' ELSE '{}'::jsonb END) ph
       WHERE jsonb_typeof(ph.value) = 'number'
       UNION ALL
       SELECT r.target, 'total', (r.report->'rto'->>'seconds')::float8 FROM restores r WHERE jsonb_typeof(r.report->'rto'->'seconds') = 'number'
     )
     SELECT target, phase, count(*)::int AS n, sum(s)::float8 AS total,
            ARRAY[${DURATION_BUCKETS.map((le) => `count(*) FILTER (WHERE s <= ${le})::int`).join(', ')}] AS le
     FROM p WHERE s >= 0 GROUP BY 1, 2 ORDER BY 1, 2`,
  );

  return [
    {
      ...family(METRICS.phaseDuration),
      buckets: DURATION_BUCKETS,
      histograms: durations.map((r) => ({ labels: { target: r.target, kind: r.kind, phase: r.phase }, bucketCounts: r.le, count: r.n, sum: r.total })),
    },
    {
      ...family(METRICS.drillPhaseDuration),
      buckets: DURATION_BUCKETS,
      histograms: drillPhases.map((r) => ({ labels: { target: r.target, phase: r.phase }, bucketCounts: r.le, count: r.n, sum: r.total })),
    },
    {
      ...family(METRICS.restorePhaseDuration),
      buckets: DURATION_BUCKETS,
      histograms: restorePhases.map((r) => ({ labels: { target: r.target, phase: r.phase }, bucketCounts: r.le, count: r.n, sum: r.total })),
    },
  ];
}
