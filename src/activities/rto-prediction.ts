/**
 * predictRestore(target): the RTO a restore of the target would take now, from its passed drills
 * (seconds per phase, from the catalog's drills table), the size of what each drill restored, the
 * target's size now and its growth over the last 90 days (src/domain/rto-prediction.ts models it).
 *
 * Sizes are the size of the database, not of the stored (compressed, differential) backup:
 * - pgBackRest: the size of the database in each backup set, from `pgbackrest info` (the same
 *   measure as the size now: pg_database_size over the cluster, asked of the source);
 * - RDS and buckets: the size the catalog recorded for the backup (an RDS snapshot's full size,
 *   a bucket backup's bytes); a bucket's size now is its newest verified backup's.
 * A drill whose backup's size is no longer known (expired from the repository) is left out.
 *
 * With `drOnly` (the failover plan when the primary region does not answer) nothing of the
 * primary region is asked: sizes come from the DR repository alone (a drill of a primary backup
 * counts through its DR copy) and the size now is the newest DR backup's.
 */
import { findTarget, objectivesFor, resolveSecret } from '../config';
import type { DrillSample, RtoPrediction, SizePoint } from '../domain/rto-prediction';
import { GROWTH_WINDOW_DAYS, MAX_DRILLS, predictRto } from '../domain/rto-prediction';
import { describeError } from '../domain/errors';
import { clusterSizeBytes } from '../engines/database-size';
import { pgTlsOf, Ports } from './ports';

interface DrillRow {
  workflow_id: string;
  started_at: Date;
  rto_seconds: number;
  phases: Array<{ phase: string; seconds: number }>;
  backup_id: string;
  dr_backup_id: string | null;
  size_bytes: string | null;
}

interface BackupSizeRow {
  engine_backup_id: string;
  backup_id: string | null;
  dr_backup_id: string | null;
  completed_at: Date;
  size_bytes: string | null;
}

/**
 * pgBackRest's io-timeout for the prediction's info reads: a few small files per repository, for
 * which 5 s without a byte is an outage, not a slow answer; a repository that refuses connections
 * then costs about 20 s (pgBackRest retries each of four files until the timeout), not 4 minutes.
 */
const PREDICTION_INFO_IO_TIMEOUT_SECONDS = 5;

/** Database size per backup label from pgBackRest's info, and the repositories that could not be read: what a target's agent reads for a prediction. */
export interface BackupSizesRead {
  sizes: Record<string, { bytes: number; at: string }>;
  problems: string[];
}

export function predictionActivities(ports: Ports) {
  const { config } = ports;

  /**
   * Database size per backup label, as pgBackRest's info reports it, read from each repository
   * on its own and side by side: a region whose object store is down (a drill from the DR region
   * during an outage) costs seconds and leaves the other region's sizes, instead of holding
   * the whole read for minutes. Each repository that could not be read is named in `problems`.
   * `drOnly` reads the DR repository alone (a failover assessment with the primary region gone).
   */
  const pgBackRestSizes = async (targetName: string, drOnly: boolean, problems: string[]): Promise<Map<string, { bytes: number; at: string }>> => {
    const target = findTarget(config, targetName);
    const sizes = new Map<string, { bytes: number; at: string }>();
    if (!('engine' in target) || target.engine !== 'pgbackrest') return sizes;
    const cli = ports.pgbackrest(target);
    const repos = [
      ...(drOnly ? [] : [{ repo: target.primaryRepo, region: 'primary' }]),
      { repo: target.drRepo, region: 'dr' },
    ];
    const infos = await Promise.all(
      repos.map(({ repo }) => cli.info(repo, { ioTimeoutSeconds: PREDICTION_INFO_IO_TIMEOUT_SECONDS }).then((info) => ({ info, err: undefined as unknown }), (err: unknown) => ({ info: undefined, err }))),
    );
    infos.forEach(({ info, err }, i) => {
      const where = `repo${repos[i].repo} (${repos[i].region})`;
      const status = info?.repo.find((r) => r.key === repos[i].repo)?.status;
      if (err !== undefined) problems.push(`pgBackRest's backup info of ${where} could not be read (${describeError(err)})`);
      else if (status && status.code !== 0) problems.push(`pgBackRest's backup info of ${where} could not be read (${status.message})`);
      for (const set of info?.backup ?? []) {
        if (set.database['repo-key'] === repos[i].repo) sizes.set(set.label, { bytes: set.info.size, at: new Date(set.timestamp.stop * 1000).toISOString() });
      }
    });
    return sizes;
  };

  return {
    /** pgBackRest's backup sizes of a target, read on its host (its agent), where its configuration names the repositories. */
    async readBackupSizes(targetName: string, drOnly = false): Promise<BackupSizesRead> {
      const problems: string[] = [];
      const sizes = await pgBackRestSizes(targetName, drOnly, problems);
      return { sizes: Object.fromEntries(sizes), problems };
    },

    /**
     * The RTO a restore of the target would take now. `sizesRead`: pgBackRest's sizes as its
     * agent read them (readBackupSizes); without it they are read here.
     */
    async predictRestore(targetName: string, options: { drOnly?: boolean; sizesRead?: BackupSizesRead } = {}): Promise<RtoPrediction> {
      const drOnly = options.drOnly === true;
      const target = findTarget(config, targetName);
      const objective = objectivesFor(config, target).rto;
      const isPgBackRest = 'engine' in target && target.engine === 'pgbackrest';
      const now = new Date().toISOString();
      const problems: string[] = [];

      if (options.sizesRead) problems.push(...options.sizesRead.problems);
      const labelSizes = !isPgBackRest
        ? new Map<string, { bytes: number; at: string }>()
        : options.sizesRead
          ? new Map(Object.entries(options.sizesRead.sizes))
          : await pgBackRestSizes(target.name, drOnly, problems);

      const drillRows = await ports.catalog.query<DrillRow>(
        `SELECT d.workflow_id, d.started_at, d.rto_seconds, d.phases, d.backup_id, b.locations->'dr'->'handle'->>'backupId' AS dr_backup_id, b.size_bytes::text AS size_bytes
         FROM drills d LEFT JOIN backups b ON b.id = d.backup_catalog_id
         WHERE d.target = $1 AND d.outcome = 'passed' ORDER BY d.started_at DESC LIMIT $2`,
        [target.name, MAX_DRILLS * 3],
      );
      const drills: DrillSample[] = [];
      for (const r of drillRows) {
        // The DR copy of the drilled backup holds the same database: its size stands in when only the DR repository is read.
        const fromRepo = labelSizes.get(r.backup_id) ?? (r.dr_backup_id ? labelSizes.get(r.dr_backup_id) : undefined);
        const sizeBytes = isPgBackRest ? fromRepo?.bytes : r.size_bytes !== null ? Number(r.size_bytes) : undefined;
        if (!sizeBytes) continue;
        drills.push({
          drillId: r.workflow_id,
          at: r.started_at.toISOString(),
          sizeBytes,
          sizeSource: isPgBackRest ? "pgBackRest's backup info" : 'the catalog',
          rtoSeconds: r.rto_seconds,
          phases: r.phases,
        });
      }

      const since = new Date(Date.now() - GROWTH_WINDOW_DAYS * 86400000);
      const backupRows = await ports.catalog.query<BackupSizeRow>(
        `SELECT engine_backup_id, locations->'primary'->'handle'->>'backupId' AS backup_id, locations->'dr'->'handle'->>'backupId' AS dr_backup_id, completed_at, size_bytes::text AS size_bytes
         FROM backups WHERE target = $1 AND status IN ('verified','complete') AND completed_at >= $2 ORDER BY completed_at`,
        [target.name, since],
      );
      const sizeHistory: SizePoint[] = [];
      for (const b of backupRows) {
        const bytes = isPgBackRest ? (labelSizes.get(b.backup_id ?? '') ?? labelSizes.get(b.engine_backup_id) ?? labelSizes.get(b.dr_backup_id ?? ''))?.bytes : b.size_bytes !== null ? Number(b.size_bytes) : undefined;
        if (bytes) sizeHistory.push({ at: b.completed_at.toISOString(), sizeBytes: bytes });
      }

      let currentSizeBytes: number | undefined;
      let currentSizeSource: string | undefined;
      if ('engine' in target && drOnly) {
        // The source is in the primary region: the newest backup the DR region holds is what a failover restores.
        const newest = isPgBackRest ? [...labelSizes.entries()].sort((a, b) => Date.parse(b[1].at) - Date.parse(a[1].at))[0] : undefined;
        const fromCatalog = [...sizeHistory].pop();
        if (newest) {
          currentSizeBytes = newest[1].bytes;
          currentSizeSource = `the newest backup in the DR repository, ${newest[0]} (the primary region does not answer)`;
        } else if (fromCatalog) {
          currentSizeBytes = fromCatalog.sizeBytes;
          currentSizeSource = `its newest verified backup, ${fromCatalog.at} (the primary region does not answer)`;
        }
      } else if ('engine' in target) {
        try {
          const source = await ports.database(target.name).describeSource();
          if (!source.endpoint) throw new Error(`the source ${source.instanceId} has no endpoint`);
          const database = target.engine === 'pgbackrest' ? target.database : target.database ?? 'postgres';
          const size = await clusterSizeBytes({ host: source.endpoint.host, port: source.endpoint.port, database, user: target.user, password: target.password ? resolveSecret(target.password) : undefined, tls: pgTlsOf(target) });
          currentSizeBytes = size.bytes;
          currentSizeSource = `pg_database_size of the ${size.databases} databases on the source`;
        } catch (err) {
          problems.push(`the source's size could not be measured (${describeError(err)})`);
        }
      } else {
        const newest = [...sizeHistory].pop();
        if (newest) {
          currentSizeBytes = newest.sizeBytes;
          currentSizeSource = `its newest verified backup, ${newest.at}`;
        }
      }

      const prediction = predictRto({ target: target.name, now, objectiveSeconds: objective, currentSizeBytes, currentSizeSource, drills, sizeHistory: currentSizeSource?.startsWith('its newest') ? sizeHistory.slice(0, -1) : sizeHistory });
      if (problems.length) prediction.basis.detail += `; ${problems.join('; ')}`;
      return prediction;
    },
  };
}
