/**
 * `lifeboat storage [--target <name>] [--region primary|dr] [--json]`: what backups take per region,
 * target and storage class, how fast it grows, when the budgets are reached, what the retention
 * policy costs in steady state, and how far each DR copy lags. Exit 0, or 1 when a budget is
 * already exceeded, a DR copy lags beyond storage.replicaLagLimit, or a store could not be listed.
 */
import { createPorts } from '../activities/ports';
import { findTarget, LifeboatConfig } from '../config';
import { BudgetForecast, formatBytes } from '../domain/storage';
import { formatDuration } from '../domain/format';
import { buildStorageReport, StorageReport } from '../metrics/storage-report';
import { UsageError } from './args';
import { formatTable, line, printJson } from './output';

export const STORAGE_REGIONS = ['primary', 'dr'] as const;

/** Checks what was typed before anything is read. */
export function checkStorageOptions(config: LifeboatConfig, o: { target?: string; region?: string }): void {
  if (o.region !== undefined && !(STORAGE_REGIONS as readonly string[]).includes(o.region)) {
    throw new UsageError(`--region takes primary or dr, not "${o.region}".`);
  }
  if (o.target !== undefined && !config.targets.dynamodb.some((d) => d.name === o.target)) findTarget(config, o.target);
}

/** Two decimals, or two significant digits for what a small test stack costs (0.000073). */
const money = (v: number) => (v === 0 || v >= 0.01 ? v.toFixed(2) : v.toPrecision(2));
const signed = (bytes: number) => (bytes > 0 ? `+${formatBytes(bytes)}` : bytes < 0 ? formatBytes(bytes) : '0 B');
const classes = (byClass: Record<string, number>) =>
  Object.entries(byClass)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${formatBytes(v)}`)
    .join(', ') || '-';

function budgetText(b: BudgetForecast): string {
  switch (b.state) {
    case 'no-budget':
      return 'no budget set';
    case 'over':
      return `OVER its budget of ${formatBytes(b.budgetBytes)}`;
    case 'no-history':
      return `budget ${formatBytes(b.budgetBytes)}; under two days of backups, too little to forecast`;
    case 'not-growing':
      return `budget ${formatBytes(b.budgetBytes)}; not growing, never reached at this rate`;
    case 'reached-at':
      return `budget ${formatBytes(b.budgetBytes)} reached about ${b.at.slice(0, 10)} (in ${Math.round(b.days)} days, at ${formatBytes(b.slopePerDay)}/day)`;
  }
}

export function printStorageReport(r: StorageReport): void {
  line(`Storage (${r.generatedAt})`);
  const regionRows = [['region', 'object stores', 'catalog (live sets)', '30 days', '90 days', 'budget'], ...[...r.regions, { region: 'all', ...r.total }].map((g) => [g.region, formatBytes(g.objectStoreBytes), formatBytes(g.catalogBytes), signed(g.growth30dBytes), signed(g.growth90dBytes), budgetText(g.budget)])];
  for (const row of formatTable(regionRows)) line(`  ${row}`);
  line();
  line('Per target and storage class:');
  const targetRows = [['target', 'region', 'object stores', 'by class', 'catalog', '30 days', '90 days'], ...r.targets.map((t) => [t.target, t.region, formatBytes(t.objectStoreBytes), classes(t.byClass), formatBytes(t.catalogBytes), signed(t.growth30dBytes), signed(t.growth90dBytes)])];
  for (const row of formatTable(targetRows)) line(`  ${row}`);
  line();
  const p = r.retention.policy;
  line(`Retention (daily ${p.daily}, weekly ${p.weekly}, monthly ${p.monthly}) in steady state:`);
  const itemRows = [['target', 'region', 'series', 'one every', 'kept', 'average', 'steady state'], ...r.retention.items.map((i) => [i.target, i.region, i.series, `${formatDuration(i.intervalDays * 86400)}${i.intervalBasis === 'assumed-daily' ? ' (assumed)' : ''}`, String(i.keptBackups), formatBytes(i.averageBackupBytes), formatBytes(i.steadyStateBytes)])];
  if (r.retention.items.length === 0) line('  no successful backup in the last 90 days to estimate from');
  else for (const row of formatTable(itemRows)) line(`  ${row}`);
  for (const g of r.retention.regions) line(`  ${g.region}: ${formatBytes(g.steadyStateBytes)} in steady state (WAL now ${formatBytes(g.walBytes)}), ${money(g.monthlyCost)} a month${g.unpriced.length ? ` plus unpriced ${g.unpriced.join(', ')}` : ''}`);
  const priced = Object.keys(r.retention.prices).length > 0;
  line(
    priced
      ? `  cost of the retention policy: ${money(r.retention.monthlyCost)} a month (now: ${money(r.retention.currentMonthlyCost)}) at ${Object.entries(r.retention.prices).map(([k, v]) => `${k} ${v}`).join(', ')} per GiB-month${r.retention.unpriced.length ? `; no price for ${r.retention.unpriced.join(', ')} (storage.pricePerGbMonth)` : ''}`
      : '  cost: no prices configured; set storage.pricePerGbMonth (per storage class) to see it',
  );
  line();
  if (r.replicaLag.length === 0) line('DR copies: no target has a DR copy in the catalog.');
  else {
    line('DR copy lag (newest DR copy behind the newest primary one):');
    const lagRows = r.replicaLag.map((l) => [l.target, l.seconds === null ? 'NO DR COPY' : formatDuration(l.seconds), l.overLimit ? `OVER the ${formatDuration(l.limitSeconds)} limit` : 'ok', `primary ${l.primaryNewest}${l.drNewest ? `, dr ${l.drNewest}` : ''}`]);
    for (const row of formatTable(lagRows)) line(`  ${row}`);
  }
  for (const problem of r.problems) line(`problem: ${problem}`);
  line();
  line(`Method: growth is ${r.methods.growth}; the forecast is a ${r.methods.forecast}; steady state is ${r.methods.steadyState}.`);
}

export async function storageCommand(config: LifeboatConfig, o: { target?: string; region?: string; json: boolean }): Promise<number> {
  checkStorageOptions(config, o);
  const ports = createPorts(config);
  let report: StorageReport;
  try {
    report = await buildStorageReport({ config, catalog: ports.catalog, objectStore: (name) => ports.objectStore(name) }, { target: o.target, region: o.region });
  } finally {
    await ports.close();
  }
  if (o.json) printJson(report);
  else printStorageReport(report);
  const bad = [...report.regions.map((g) => g.budget), report.total.budget].some((b) => b.state === 'over') || report.replicaLag.some((l) => l.overLimit) || report.problems.length > 0;
  return bad ? 1 : 0;
}
