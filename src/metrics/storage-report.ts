/**
 * The storage report `lifeboat storage` prints: bytes per region, target and storage class (object
 * stores), live backup bytes and their growth (catalog), when each budget is reached, what the
 * retention policy keeps in steady state and costs, and how far each DR copy lags.
 *
 * Methods, said in the report too:
 * - growth: the catalog's live bytes now minus 30 (90) days ago;
 * - forecast: a least-squares line through the catalog's daily live bytes of the last 90 days,
 *   its slope applied to what the object stores hold now (WAL and noncurrent versions included);
 * - steady state: planRetention run on a synthetic series at each series' observed interval
 *   (the daily schedule when the catalog has too little history), times its average copy size,
 *   plus the WAL the archive holds now; priced at the storage-class mix the stores hold now.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Catalog } from '../catalog/catalog';
import type { LifeboatConfig } from '../config';
import { BudgetForecast, bytesAt, DailyPoint, DAY_SECONDS, fitLine, forecastBudget, monthlyCost, steadyStateKept } from '../domain/storage';
import { bytesUnderPrefix, DYNAMODB_BACKUP_CLASS, StorageLocation, storageLocations } from '../engines/storage-usage';
import { replicaLags, seriesCadence, StoredHistory, storedHistory } from './storage-history';

export const STORAGE_METHODS = {
  objectStores: 'every object version (current and noncurrent) under each target\'s prefixes, summed per storage class',
  catalog: 'live backup copies (verified or complete) as the catalog records their sizes; pgBackRest WAL is not in the catalog',
  growth: 'catalog live bytes now minus 30 / 90 days ago',
  forecast: "least-squares line through the catalog's daily live bytes of the last 90 days; its slope applied to the object stores' bytes now",
  steadyState:
    "lifeboat's retention decision run on a synthetic series at each series' observed backup interval over the last 90 days (one a day when there are fewer than two backups), kept count times the average copy size, plus the pgBackRest WAL the archive holds now; priced at the storage-class mix the stores hold now, per GiB-month",
  replicaLag: "newest successful primary copy's time minus newest successful DR copy's time, per backup series, the worst series per target",
} as const;

export interface TargetStorage {
  target: string;
  region: string;
  objectStoreBytes: number;
  byClass: Record<string, number>;
  catalogBytes: number;
  growth30dBytes: number;
  growth90dBytes: number;
}

export interface RegionStorage {
  region: string;
  objectStoreBytes: number;
  byClass: Record<string, number>;
  catalogBytes: number;
  growth30dBytes: number;
  growth90dBytes: number;
  /** Bytes per day, the fitted line's slope (absent with fewer than two days of history). */
  growthPerDay?: number;
  budget: BudgetForecast;
}

export interface RetentionCost {
  target: string;
  region: string;
  series: string;
  intervalDays: number;
  intervalBasis: 'observed' | 'assumed-daily';
  keptBackups: number;
  averageBackupBytes: number;
  steadyStateBytes: number;
}

export interface StorageReport {
  generatedAt: string;
  regions: RegionStorage[];
  total: Omit<RegionStorage, 'region'>;
  targets: TargetStorage[];
  retention: {
    policy: LifeboatConfig['retention'];
    items: RetentionCost[];
    /** Steady-state bytes per region, with the WAL of pgBackRest targets. */
    regions: Array<{ region: string; steadyStateBytes: number; walBytes: number; monthlyCost: number; unpriced: string[] }>;
    monthlyCost: number;
    currentMonthlyCost: number;
    unpriced: string[];
    prices: Record<string, number>;
  };
  replicaLag: Array<{ target: string; seconds: number | null; primaryNewest: string; drNewest?: string; limitSeconds: number; overLimit: boolean }>;
  /** Places that could not be listed, or targets whose places are unknown here. */
  problems: string[];
  methods: typeof STORAGE_METHODS;
}

export interface StorageSources {
  config: LifeboatConfig;
  catalog: Pick<Catalog, 'query'>;
  objectStore: (name: string) => S3Client;
  readFile?: (file: string) => string;
}

export interface ObjectStoreReading {
  location: StorageLocation;
  bytes: Record<string, number>;
}

/** Lists every location (in parallel, a few at a time); a location that fails is a problem line, not a failure. */
export async function readObjectStores(s: StorageSources, only?: { target?: string; region?: string }): Promise<{ readings: ObjectStoreReading[]; problems: string[] }> {
  const { locations, unknown } = storageLocations(s.config, s.readFile);
  const wanted = locations.filter((l) => (!only?.target || l.target === only.target) && (!only?.region || l.region === only.region));
  const problems = unknown.filter((u) => !only?.target || u.target === only.target).map((u) => `${u.target}: ${u.why}`);
  const readings: ObjectStoreReading[] = [];
  const queue = [...wanted];
  await Promise.all(
    Array.from({ length: Math.min(4, queue.length) }, async () => {
      for (let l = queue.shift(); l; l = queue.shift()) {
        try {
          readings.push({ location: l, bytes: (await bytesUnderPrefix(s.objectStore(l.store), l.bucket, l.prefix)).bytes });
        } catch (err) {
          problems.push(`${l.target} (${l.region}): listing s3://${l.bucket}/${l.prefix} in ${l.store} failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }),
  );
  readings.push(...(await dynamoDbOnDemandReadings(s, only)));
  readings.sort((a, b) => `${a.location.target}/${a.location.region}/${a.location.what}`.localeCompare(`${b.location.target}/${b.location.region}/${b.location.what}`));
  return { readings, problems };
}

/**
 * The on-demand backups of each DynamoDB target as their own storage class: DynamoDB keeps and
 * bills them in the table's region, outside any bucket, so their size is the one each live backup
 * recorded in the catalog (DynamoDB's BackupSizeBytes when it became AVAILABLE).
 */
async function dynamoDbOnDemandReadings(s: StorageSources, only?: { target?: string; region?: string }): Promise<ObjectStoreReading[]> {
  const tables = s.config.targets.dynamodb.filter((t) => !only?.target || t.name === only.target);
  if (!tables.length || (only?.region && only.region !== 'primary')) return [];
  const rows = await s.catalog.query<{ target: string; bytes: number }>(
    `SELECT target, sum(coalesce(size_bytes, 0))::float8 AS bytes FROM backups
     WHERE target = ANY($1) AND engine = 'dynamodb' AND status IN ('verified', 'complete') AND locations->'primary' ? 'backupArn' GROUP BY target`,
    [tables.map((t) => t.name)],
  );
  const bytes = new Map(rows.map((r) => [r.target, r.bytes]));
  return tables.map((t) => ({
    location: { target: t.name, region: 'primary' as const, what: 'dynamodb-on-demand', store: `dynamodb:${t.region}`, bucket: '', prefix: '' },
    bytes: { [DYNAMODB_BACKUP_CLASS]: bytes.get(t.name) ?? 0 },
  }));
}

/** primary before dr, then any other region by name. */
const regionOrder = (region: string) => (region === 'primary' ? 0 : region === 'dr' ? 1 : 2);
const add = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  return into;
};
const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/**
 * Daily totals of the history rows that pass `keep`, from the first day anything was stored on: a
 * day with nothing stored after that is a 0, the days before it are no history (the forecast is
 * not dragged down by the time before lifeboat took its first backup).
 */
export function dailyTotals(history: StoredHistory, keep: (row: { target: string; region: string }) => boolean): DailyPoint[] {
  const byAt = new Map<number, number>();
  for (const h of history.rows) if (keep(h)) byAt.set(h.at, (byAt.get(h.at) ?? 0) + h.bytes);
  const first = history.points.findIndex((at) => byAt.has(at));
  return first < 0 ? [] : history.points.slice(first).map((at) => ({ at, bytes: byAt.get(at) ?? 0 }));
}

export async function buildStorageReport(s: StorageSources, options: { now?: Date; target?: string; region?: string } = {}): Promise<StorageReport> {
  const now = options.now ?? new Date();
  const nowS = now.getTime() / 1000;
  const { config } = s;
  const inScope = (row: { target: string; region: string }) => (!options.target || row.target === options.target) && (!options.region || row.region === options.region);

  const [history, cadences, lags, stores] = await Promise.all([
    storedHistory(s.catalog, now),
    seriesCadence(s.catalog, now),
    replicaLags(s.catalog),
    readObjectStores(s, { target: options.target, region: options.region }),
  ]);

  const growth = (points: DailyPoint[]) => {
    const current = points.length ? points[points.length - 1].bytes : 0;
    return { current, growth30dBytes: current - bytesAt(points, nowS - 30 * DAY_SECONDS), growth90dBytes: current - bytesAt(points, nowS - 90 * DAY_SECONDS) };
  };

  // Per target and region.
  const pairs = new Map<string, { target: string; region: string }>();
  for (const r of stores.readings) pairs.set(`${r.location.target}\u0000${r.location.region}`, { target: r.location.target, region: r.location.region });
  for (const h of history.rows) if (inScope(h)) pairs.set(`${h.target}\u0000${h.region}`, { target: h.target, region: h.region });
  const targets: TargetStorage[] = [...pairs.values()]
    .sort((a, b) => a.target.localeCompare(b.target) || regionOrder(a.region) - regionOrder(b.region))
    .map(({ target, region }) => {
      const byClass = stores.readings.filter((r) => r.location.target === target && r.location.region === region).reduce((acc, r) => add(acc, r.bytes), {} as Record<string, number>);
      const g = growth(dailyTotals(history, (h) => h.target === target && h.region === region));
      return { target, region, objectStoreBytes: sum(byClass), byClass, catalogBytes: g.current, growth30dBytes: g.growth30dBytes, growth90dBytes: g.growth90dBytes };
    });

  const aggregate = (keep: (row: { target: string; region: string }) => boolean, budgetBytes: number | undefined) => {
    const rows = targets.filter(keep);
    const byClass = rows.reduce((acc, t) => add(acc, t.byClass), {} as Record<string, number>);
    const points = dailyTotals(history, (h) => inScope(h) && keep(h));
    const g = growth(points);
    const fit = fitLine(points);
    const objectStoreBytes = sum(byClass);
    // The bill is what the stores hold; without a listing (RDS only, say), the catalog's figure.
    const used = objectStoreBytes > 0 ? objectStoreBytes : g.current;
    return {
      objectStoreBytes,
      byClass,
      catalogBytes: g.current,
      growth30dBytes: g.growth30dBytes,
      growth90dBytes: g.growth90dBytes,
      ...(fit ? { growthPerDay: fit.slopePerDay } : {}),
      budget: forecastBudget(used, fit, budgetBytes, now),
    };
  };
  const regionNames = [...new Set(['primary', 'dr', ...targets.map((t) => t.region)])].filter((r) => !options.region || r === options.region);
  const regions: RegionStorage[] = regionNames.map((region) => ({ region, ...aggregate((r) => r.region === region, config.storage.regionBudgetBytes[region]) }));
  const total = aggregate(() => true, options.region || options.target ? undefined : config.storage.budgetBytes);

  // Retention in steady state, per series and region.
  const items: RetentionCost[] = [];
  for (const c of cadences) {
    for (const [region, averageBackupBytes] of Object.entries(c.averageBytes)) {
      if (!inScope({ target: c.target, region })) continue;
      const observed = c.backups >= 2 && c.lastAt - c.firstAt >= 3600;
      const intervalDays = observed ? (c.lastAt - c.firstAt) / DAY_SECONDS / (c.backups - 1) : 1;
      const keptBackups = steadyStateKept(config.retention, intervalDays, now);
      items.push({ target: c.target, region, series: c.series, intervalDays, intervalBasis: observed ? 'observed' : 'assumed-daily', keptBackups, averageBackupBytes, steadyStateBytes: keptBackups * averageBackupBytes });
    }
  }
  items.sort((a, b) => a.target.localeCompare(b.target) || regionOrder(a.region) - regionOrder(b.region) || a.series.localeCompare(b.series));
  const prices = config.storage.pricePerGbMonth;
  const retentionRegions = regions.map((r) => {
    const walBytes = stores.readings.filter((x) => x.location.region === r.region && x.location.what === 'pgbackrest-wal').reduce((a, x) => a + sum(x.bytes), 0);
    const steadyStateBytes = items.filter((i) => i.region === r.region).reduce((a, i) => a + i.steadyStateBytes, 0) + walBytes;
    // Spread over the classes in the proportions the stores hold now (all STANDARD when nothing is listed).
    const listed = sum(r.byClass);
    const mix = listed > 0 ? Object.fromEntries(Object.entries(r.byClass).map(([k, v]) => [k, (v / listed) * steadyStateBytes])) : { STANDARD: steadyStateBytes };
    const cost = monthlyCost(mix, prices);
    return { region: r.region, steadyStateBytes, walBytes, monthlyCost: cost.monthly, unpriced: cost.unpriced };
  });
  const current = monthlyCost(total.byClass, prices);
  const unpriced = [...new Set([...retentionRegions.flatMap((r) => r.unpriced), ...current.unpriced])].sort();

  const limit = config.storage.replicaLagLimit;
  const replicaLag = lags
    .filter((l) => !options.target || l.target === options.target)
    .map((l) => ({ target: l.target, seconds: Number.isFinite(l.seconds) ? l.seconds : null, primaryNewest: l.primaryNewest, ...(l.drNewest ? { drNewest: l.drNewest } : {}), limitSeconds: limit, overLimit: l.seconds > limit }));

  return {
    generatedAt: now.toISOString(),
    regions,
    total,
    targets,
    retention: {
      policy: config.retention,
      items,
      regions: retentionRegions,
      monthlyCost: retentionRegions.reduce((a, r) => a + r.monthlyCost, 0),
      currentMonthlyCost: current.monthly,
      unpriced,
      prices,
    },
    replicaLag,
    problems: stores.problems,
    methods: STORAGE_METHODS,
  };
}
