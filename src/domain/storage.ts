/**
 * Storage arithmetic, pure: growth of the stored bytes, when a budget is reached (least-squares
 * line through the catalog's daily history), how many backups the retention policy keeps once it
 * has run long enough (the real retention decision, run on a synthetic series at the observed
 * cadence), and what that costs at the configured prices per storage class.
 */
import { planRetention, RetentionCandidate, RetentionPolicy } from './retention';

export const DAY_SECONDS = 86400;
/** Prices are per GiB-month, as the S3 price lists count a GB. */
export const GIB = 1024 ** 3;

export interface DailyPoint {
  /** Unix seconds. */
  at: number;
  bytes: number;
}

export interface LineFit {
  /** Bytes per day. */
  slopePerDay: number;
  /** How many daily points the line was fitted through. */
  points: number;
}

/** Least squares through the points (x in days); undefined with fewer than two distinct days. */
export function fitLine(points: readonly DailyPoint[]): LineFit | undefined {
  if (points.length < 2) return undefined;
  const xs = points.map((p) => p.at / DAY_SECONDS);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = points.reduce((a, p) => a + p.bytes, 0) / points.length;
  let sxx = 0;
  let sxy = 0;
  points.forEach((p, i) => {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (p.bytes - my);
  });
  if (sxx === 0) return undefined;
  return { slopePerDay: sxy / sxx, points: points.length };
}

/** The stored bytes `days` ago, read off the daily history (the last point at or before then; 0 before the first). */
export function bytesAt(points: readonly DailyPoint[], at: number): number {
  let found = 0;
  for (const p of points) if (p.at <= at) found = p.bytes;
  return found;
}

export type BudgetForecast =
  | { state: 'no-budget' }
  | { state: 'over'; budgetBytes: number; usedBytes: number }
  | { state: 'not-growing'; budgetBytes: number; usedBytes: number; slopePerDay: number }
  | { state: 'no-history'; budgetBytes: number; usedBytes: number }
  | { state: 'reached-at'; budgetBytes: number; usedBytes: number; slopePerDay: number; at: string; days: number };

/** When `usedBytes` growing at the fitted slope reaches the budget. */
export function forecastBudget(usedBytes: number, fit: LineFit | undefined, budgetBytes: number | undefined, now: Date): BudgetForecast {
  if (budgetBytes === undefined) return { state: 'no-budget' };
  if (usedBytes >= budgetBytes) return { state: 'over', budgetBytes, usedBytes };
  if (!fit) return { state: 'no-history', budgetBytes, usedBytes };
  if (fit.slopePerDay <= 0) return { state: 'not-growing', budgetBytes, usedBytes, slopePerDay: fit.slopePerDay };
  const days = (budgetBytes - usedBytes) / fit.slopePerDay;
  return { state: 'reached-at', budgetBytes, usedBytes, slopePerDay: fit.slopePerDay, days, at: new Date(now.getTime() + days * DAY_SECONDS * 1000).toISOString() };
}

/**
 * How many backups of one series the policy keeps in steady state: a series one backup every
 * `intervalDays`, all verified, long enough that the oldest monthly has aged out, judged by
 * planRetention at its end. Dependencies (an incremental keeping its full) are not modelled.
 */
export function steadyStateKept(policy: RetentionPolicy, intervalDays: number, now: Date): number {
  const horizonDays = Math.max(policy.daily, policy.weekly * 7, policy.monthly * 31) + 62;
  const step = Math.max(intervalDays, 1 / 96) * DAY_SECONDS * 1000;
  const candidates: RetentionCandidate[] = [];
  for (let t = now.getTime() - step / 2, i = 0; t > now.getTime() - horizonDays * DAY_SECONDS * 1000; t -= step, i++) {
    candidates.push({ id: String(i), series: 'steady', completedAt: new Date(t).toISOString(), verified: true });
  }
  return planRetention(candidates, policy, now).filter((d) => d.action === 'keep').length;
}

export interface PricedBytes {
  /** Per GiB-month, in the config's currency. */
  monthly: number;
  /** Storage classes that hold bytes but have no price in the config. */
  unpriced: string[];
}

/** The monthly cost of bytes per storage class at the configured prices. */
export function monthlyCost(bytesByClass: Readonly<Record<string, number>>, prices: Readonly<Record<string, number>>): PricedBytes {
  let monthly = 0;
  const unpriced: string[] = [];
  for (const [cls, bytes] of Object.entries(bytesByClass)) {
    if (bytes <= 0) continue;
    const price = prices[cls];
    if (price === undefined) unpriced.push(cls);
    else monthly += (bytes / GIB) * price;
  }
  return { monthly, unpriced: unpriced.sort() };
}

/** Bytes for people: 1.5 GiB, 312 KiB, 17 B. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = Math.abs(bytes);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const text = u === 0 ? String(Math.round(v)) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${bytes < 0 ? '-' : ''}${text} ${units[u]}`;
}
