/**
 * The object stores' side of the storage metrics: bytes per target, region and storage class, and
 * what follows from them (when the budgets are reached, the retention policy's steady state and
 * cost). A listing reads every object version under every target's prefixes, so one reading
 * serves storage.objectStoreSeconds (10 min by default); the central workers serve it.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Catalog } from '../catalog/catalog';
import type { LifeboatConfig } from '../config';
import { DAY_SECONDS } from '../domain/storage';
import { buildStorageReport } from './storage-report';
import { MetricFamily, Sample } from './exposition';
import { METRICS } from './definitions';

const family = (def: (typeof METRICS)[keyof typeof METRICS], samples: Sample[]): MetricFamily => ({ name: def.name, help: def.help, type: def.type, samples });

export async function collectStorageMetrics(config: LifeboatConfig, catalog: Pick<Catalog, 'query'>, objectStore: (name: string) => S3Client, now: Date = new Date()): Promise<MetricFamily[]> {
  const report = await buildStorageReport({ config, catalog, objectStore }, { now });
  // A store that cannot be listed makes the source down (its figures would be short), not zero.
  if (report.problems.length > 0) throw new Error(report.problems.join('; '));
  const bytes = report.targets.flatMap((t) => Object.entries(t.byClass).map(([cls, v]) => ({ labels: { target: t.target, region: t.region, storage_class: cls }, value: v })));
  const reached: Sample[] = [];
  for (const g of [...report.regions, { region: 'all', ...report.total }]) {
    const b = g.budget;
    if (b.state === 'over') reached.push({ labels: { region: g.region }, value: 0 });
    else if (b.state === 'not-growing') reached.push({ labels: { region: g.region }, value: Infinity });
    else if (b.state === 'reached-at') reached.push({ labels: { region: g.region }, value: Math.round(b.days * DAY_SECONDS) });
  }
  const priced = Object.keys(config.storage.pricePerGbMonth).length > 0;
  return [
    family(METRICS.storageBytes, bytes),
    family(METRICS.storageBudgetReached, reached),
    family(METRICS.retentionSteadyState, report.retention.regions.map((r) => ({ labels: { region: r.region }, value: Math.round(r.steadyStateBytes) }))),
    family(METRICS.retentionMonthlyCost, priced ? report.retention.regions.map((r) => ({ labels: { region: r.region }, value: Number(r.monthlyCost.toFixed(4)) })) : []),
  ];
}
