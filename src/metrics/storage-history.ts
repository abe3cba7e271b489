/**
 * What the catalog says about storage over time: the bytes of live backup copies per target and
 * region on each of the last days (a copy counts from its completion until retention or a person
 * removed it), the cadence and average size of each backup series, and how far the newest DR copy
 * of each target lags the newest primary one. Aggregated in SQL, like the metrics.
 */
import type { Catalog } from '../catalog/catalog';

type Queryable = Pick<Catalog, 'query'>;

const ts = (expr: string) => `(CASE WHEN (${expr}) ~ '^\\d{4}-\\d{2}-\\d{2}T' THEN (${expr})::timestamptz END)`;
/** A backup that ended well (verified or complete, possibly removed since), as the metrics count it. */
const SUCCEEDED = `(b.status IN ('verified', 'complete') OR (b.status IN ('expired', 'deleted') AND (b.verified_at IS NOT NULL OR b.failure IS NULL)))`;
const COPY_OK = `coalesce(l.value->>'failed', 'false') <> 'true'`;
const COPY_BYTES = `coalesce(CASE WHEN jsonb_typeof(l.value->'sizeBytes') = 'number' THEN (l.value->>'sizeBytes')::numeric END, b.size_bytes, 0)`;
const LOCATIONS = `JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(b.locations) = 'object' THEN b.locations ELSE '{}'::jsonb END) l ON l.key IN ('primary', 'dr')`;
/** When the copy was removed; a removed row without a recorded time counts as never stored (nothing is guessed upward). */
const REMOVED_AT = `CASE WHEN b.status IN ('expired', 'deleted') THEN coalesce(${ts(`b.details->'retention'->>'expiredAt'`)}, ${ts(`b.details->'deletion'->>'deletedAt'`)}, b.completed_at) END`;

export interface StoredDay {
  /** Unix seconds: the end of each day (UTC midnight), and the last point is now. */
  at: number;
  target: string;
  region: string;
  bytes: number;
}

export interface StoredHistory {
  /** Every point asked for (Unix seconds), whether anything was stored then or not. */
  points: number[];
  rows: StoredDay[];
}

/** Bytes of live copies per target and region at the end of each of the last `days` days, and now. */
export async function storedHistory(catalog: Queryable, now: Date, days = 90): Promise<StoredHistory> {
  const rows = await catalog.query<{ at: Date; target: string | null; region: string | null; bytes: number | null }>(
    `WITH copies AS (
       SELECT b.target, l.key AS region, ${COPY_BYTES} AS bytes, b.completed_at AS since, ${REMOVED_AT} AS until
       FROM backups b ${LOCATIONS}
       WHERE ${SUCCEEDED} AND ${COPY_OK} AND b.completed_at IS NOT NULL
     ), points AS (
       SELECT generate_series(date_trunc('day', $1::timestamptz) - make_interval(days => $2::int - 1), date_trunc('day', $1::timestamptz), interval '1 day') AS at
       UNION SELECT $1::timestamptz
     )
     SELECT p.at, c.target, c.region, sum(c.bytes)::float8 AS bytes
     FROM points p LEFT JOIN copies c ON c.since <= p.at AND (c.until IS NULL OR c.until > p.at)
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    [now.toISOString(), days],
  );
  const points = [...new Set(rows.map((r) => r.at.getTime() / 1000))].sort((a, b) => a - b);
  return {
    points,
    rows: rows.flatMap((r) => (r.target && r.region ? [{ at: r.at.getTime() / 1000, target: r.target, region: r.region, bytes: r.bytes ?? 0 }] : [])),
  };
}

export interface SeriesCadence {
  target: string;
  /** The catalog's engine column: pgbackrest, pg_dump, file-backup, rds, ... */
  series: string;
  backups: number;
  firstAt: number;
  lastAt: number;
  /** Average bytes of one successful copy, per region. */
  averageBytes: Record<string, number>;
}

/** Each series' successful backups over the last `days` days: how many, how far apart, how big. */
export async function seriesCadence(catalog: Queryable, now: Date, days = 90): Promise<SeriesCadence[]> {
  const rows = await catalog.query<{ target: string; series: string; region: string; n: number; first: Date; last: Date; avg: number }>(
    `SELECT b.target, b.engine AS series, l.key AS region, count(*)::int AS n, min(b.completed_at) AS first, max(b.completed_at) AS last, avg(${COPY_BYTES})::float8 AS avg
     FROM backups b ${LOCATIONS}
     WHERE ${SUCCEEDED} AND ${COPY_OK} AND b.completed_at > $1::timestamptz - make_interval(days => $2::int) AND b.completed_at <= $1::timestamptz
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    [now.toISOString(), days],
  );
  const bySeries = new Map<string, SeriesCadence>();
  for (const r of rows) {
    const key = `${r.target}\u0000${r.series}`;
    const s = bySeries.get(key) ?? { target: r.target, series: r.series, backups: 0, firstAt: Infinity, lastAt: -Infinity, averageBytes: {} };
    // The primary copy counts the backups (a DR copy is the same backup again).
    if (r.region === 'primary' || s.backups === 0) s.backups = Math.max(s.backups, r.n);
    s.firstAt = Math.min(s.firstAt, r.first.getTime() / 1000);
    s.lastAt = Math.max(s.lastAt, r.last.getTime() / 1000);
    s.averageBytes[r.region] = r.avg;
    bySeries.set(key, s);
  }
  return [...bySeries.values()];
}

export interface ReplicaLag {
  target: string;
  /** Seconds the newest DR copy is behind the newest primary copy (0: the DR region holds the newest); Infinity when no DR copy succeeded. */
  seconds: number;
  primaryNewest: string;
  drNewest?: string;
}

/**
 * For every target whose backups are copied to the DR region: how far its newest successful DR
 * copy is behind its newest successful primary copy, both by the time the backup was taken (its
 * primary copy's end), taken per backup series and the worst series reported. A backup still
 * running is not counted until it ends.
 */
export async function replicaLags(catalog: Queryable): Promise<ReplicaLag[]> {
  const point = `coalesce(${ts(`b.locations->'primary'->>'completedAt'`)}, b.completed_at)`;
  const rows = await catalog.query<{ target: string; primary_newest: Date | null; dr_newest: Date | null }>(
    `SELECT b.target, b.engine,
            max(${point}) FILTER (WHERE coalesce(b.locations->'primary'->>'failed', 'false') <> 'true') AS primary_newest,
            max(${point}) FILTER (WHERE b.locations ? 'dr' AND coalesce(b.locations->'dr'->>'failed', 'false') <> 'true') AS dr_newest
     FROM backups b
     WHERE b.status IN ('verified', 'complete') AND jsonb_typeof(b.locations) = 'object'
     GROUP BY 1, 2
     HAVING bool_or(b.locations ? 'dr')
     ORDER BY 1, 2`,
  );
  const byTarget = new Map<string, ReplicaLag>();
  for (const r of rows) {
    if (!r.primary_newest) continue;
    const seconds = r.dr_newest ? Math.max(0, (r.primary_newest.getTime() - r.dr_newest.getTime()) / 1000) : Infinity;
    const lag: ReplicaLag = { target: r.target, seconds, primaryNewest: r.primary_newest.toISOString(), ...(r.dr_newest ? { drNewest: r.dr_newest.toISOString() } : {}) };
    const seen = byTarget.get(r.target);
    if (!seen || lag.seconds > seen.seconds) byTarget.set(r.target, lag);
  }
  return [...byTarget.values()];
}
