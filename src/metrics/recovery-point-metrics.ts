/**
 * The recovery point lag of database targets, read where their pgBackRest runs: an agent reads its
 * own targets' WAL archives, the central workers those of targets without an agent (and RDS, whose
 * LatestRestorableTime is an AWS call). Slower than the catalog (pgBackRest info and a listing of
 * the archive per target), so it has its own, longer cache.
 */
import type { DatabaseTarget } from '../config';
import type { DatabaseEngine } from '../domain/ports';
import { MetricFamily, Sample } from './exposition';
import { METRICS } from './definitions';

/** The database targets this process answers for: an agent its own, a central worker those without an agent. */
export function recoveryPointTargets(databases: readonly DatabaseTarget[], agent: string | undefined): DatabaseTarget[] {
  return databases.filter((d) => (agent ? d.engine === 'pgbackrest' && d.agent === agent : !(d.engine === 'pgbackrest' && d.agent)));
}

/**
 * One reading per target: its lag when its archive answers. Whether an RDS target archives at all
 * (automated backups on) is learnt here too: archiving 1 with its lag, 0 without. A pgBackRest
 * target always archives WAL, which the catalog source says from the config on the central
 * workers (so an agent that is down leaves "archiving, lag unknown", not "no archiving"). Throws
 * only when every target failed (the source is then down as a whole).
 */
export async function collectRecoveryPointMetrics(targets: readonly DatabaseTarget[], engineOf: (target: string) => DatabaseEngine, now: Date = new Date()): Promise<MetricFamily[]> {
  const lag: Sample[] = [];
  const archiving: Sample[] = [];
  const problems: string[] = [];
  await Promise.all(
    targets.map(async (t) => {
      const labels = { target: t.name };
      try {
        const engine = engineOf(t.name);
        const reading = engine.recoveryPointLag ? await engine.recoveryPointLag(now) : undefined;
        if (reading?.basis === 'wal-archive') lag.push({ labels, value: reading.seconds });
        if (t.engine !== 'pgbackrest') archiving.push({ labels, value: reading?.basis === 'wal-archive' ? 1 : 0 });
      } catch (err) {
        problems.push(`${t.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }),
  );
  if (targets.length > 0 && problems.length === targets.length) throw new Error(`no recovery point could be read (${problems.join('; ')})`);
  const byTarget = (a: Sample, b: Sample) => a.labels.target.localeCompare(b.labels.target);
  return [
    { name: METRICS.recoveryPointLag.name, help: METRICS.recoveryPointLag.help, type: 'gauge', samples: lag.sort(byTarget) },
    { name: METRICS.continuousArchiving.name, help: METRICS.continuousArchiving.help, type: 'gauge', samples: archiving.sort(byTarget) },
  ];
}
