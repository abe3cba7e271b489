/**
 * RTO prediction: how long a restore of a target would take now, and when its growth will make a
 * restore take longer than the RTO objective. Pure: the drills, sizes and "now" come in, the
 * prediction with what it is based on goes out.
 *
 * The model, per phase of the drills' measured RTO (selecting, validating, restoring,
 * replaying-wal, validating-data, and the time between phases the workflow spends scheduling):
 *
 *   seconds(phase) = fixed(phase) + size / rate(phase)
 *
 * - With passed drills at two or more sizes that differ by at least MIN_SIZE_SPREAD, both terms
 *   are fitted by least squares over the drills (clamped: neither term is negative), so the data
 *   decide how much of each phase is overhead and how much moves bytes.
 * - With drills at one size only the split cannot be measured: restore and WAL replay
 *   (SIZE_PROPORTIONAL_PHASES) are taken as wholly proportional to size (their measured bytes/s)
 *   and every other phase as a fixed overhead (its mean). That errs long for a growing target,
 *   the safe side for an alert, and the prediction says so.
 * - No passed drill with a known size: no prediction, and a sentence saying what to do.
 *
 * Growth: a straight line through the target's sizes over the last GROWTH_WINDOW_DAYS (sizes of
 * its backups, plus its size now). Fewer than MIN_GROWTH_POINTS points or a span under
 * MIN_GROWTH_SPAN_DAYS is not a trend: the prediction says so instead of extrapolating minutes.
 */
import { formatBytes, formatDuration } from './format';

/** Phases whose work is moving or replaying the data: proportional to size unless fitted otherwise. */
export const SIZE_PROPORTIONAL_PHASES: ReadonlySet<string> = new Set(['restoring', 'replaying-wal', 'copying']);
/** The name given to the RTO not spent in any measured phase (scheduling between activities). */
export const BETWEEN_PHASES = 'between phases';
/** Drills at sizes closer than this ratio are one size for fitting. */
export const MIN_SIZE_SPREAD = 1.25;
export const GROWTH_WINDOW_DAYS = 90;
export const MIN_GROWTH_POINTS = 3;
export const MIN_GROWTH_SPAN_DAYS = 7;
/** The most recent passed drills the model uses. */
export const MAX_DRILLS = 10;

const DAY_S = 86400;

/** One passed drill as the model sees it. */
export interface DrillSample {
  drillId: string;
  at: string;
  /** Bytes of data the drill restored (the database in the backup it restored). */
  sizeBytes: number;
  /** Where the size came from, for the basis sentence ("pgBackRest's backup info"). */
  sizeSource?: string;
  /** The drill's measured RTO in seconds (request to verified). */
  rtoSeconds: number;
  /** Seconds per phase of the RTO, in the order of the run. */
  phases: Array<{ phase: string; seconds: number }>;
}

export interface SizePoint {
  at: string;
  sizeBytes: number;
}

export interface PredictionInput {
  target: string;
  now: string;
  objectiveSeconds: number;
  /** The target's size now (what a restore would have to move), when it could be measured. */
  currentSizeBytes?: number;
  /** Where the current size came from ("pg_database_size of every database on the source"). */
  currentSizeSource?: string;
  /** Passed drills with their sizes, any order. */
  drills: DrillSample[];
  /** Sizes over time (backups), any order; only the last GROWTH_WINDOW_DAYS count. */
  sizeHistory: SizePoint[];
}

export interface PhaseModel {
  phase: string;
  /** Seconds the phase takes whatever the size. */
  fixedSeconds: number;
  /** Bytes per second of the size-dependent part; absent when the phase has none. */
  bytesPerSecond?: number;
  how: 'fitted' | 'proportional' | 'fixed';
  /** This phase's share of the predicted RTO now. */
  predictedSeconds?: number;
}

export interface GrowthProjection {
  /** Bytes per day, from the straight line through the points. */
  bytesPerDay?: number;
  points: number;
  spanDays: number;
  /** Days from now until the predicted RTO passes the objective (0 when it already does). */
  breachInDays?: number;
  /** The size at which the predicted RTO reaches the objective. */
  breachAtSizeBytes?: number;
  detail: string;
}

export type PredictionStatus = 'within' | 'breach' | 'insufficient-data';

export interface RtoPrediction {
  target: string;
  at: string;
  status: PredictionStatus;
  objectiveSeconds: number;
  currentSizeBytes?: number;
  predictedSeconds?: number;
  basis: {
    drills: number;
    drillIds: string[];
    /** Whether fixed and proportional parts were fitted from drills at different sizes. */
    fitted: boolean;
    sizes: { minBytes?: number; maxBytes?: number };
    detail: string;
  };
  phases: PhaseModel[];
  growth: GrowthProjection;
  /** The one sentence people read: "predicted RTO now: 41 min (objective 60 min); ...". */
  summary: string;
}

/** Least squares y = a + b·x with a, b ≥ 0. */
export function fitNonNegativeLine(points: Array<{ x: number; y: number }>): { a: number; b: number } {
  const n = points.length;
  if (n === 0) return { a: 0, b: 0 };
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  if (sxx === 0) return { a: Math.max(0, my), b: 0 };
  const b = sxy / sxx;
  const a = my - b * mx;
  if (b <= 0) return { a: Math.max(0, my), b: 0 };
  if (a < 0) {
    // Through the origin: the best line with no fixed part.
    const sx2 = points.reduce((s, p) => s + p.x * p.x, 0);
    const sx1y = points.reduce((s, p) => s + p.x * p.y, 0);
    return { a: 0, b: Math.max(0, sx1y / sx2) };
  }
  return { a, b };
}

/** The measured phases of a drill, plus the RTO between them, so the phases add up to the RTO. */
function phasesWithGaps(d: DrillSample): Array<{ phase: string; seconds: number }> {
  const sum = d.phases.reduce((s, p) => s + p.seconds, 0);
  const gap = Math.max(0, d.rtoSeconds - sum);
  return [...d.phases, { phase: BETWEEN_PHASES, seconds: gap }];
}

/** The phase models from the drills (most recent MAX_DRILLS with a size). */
export function fitPhases(drills: DrillSample[]): { phases: PhaseModel[]; fitted: boolean; used: DrillSample[] } {
  const used = drills
    .filter((d) => d.sizeBytes > 0 && Number.isFinite(d.sizeBytes))
    .sort((a, b) => Date.parse(b.at) - Date.parse(a.at))
    .slice(0, MAX_DRILLS);
  if (!used.length) return { phases: [], fitted: false, used };
  const sizes = used.map((d) => d.sizeBytes);
  const fitted = used.length >= 2 && Math.max(...sizes) / Math.min(...sizes) >= MIN_SIZE_SPREAD;
  const names: string[] = [];
  for (const d of [...used].reverse()) for (const p of phasesWithGaps(d)) if (!names.includes(p.phase)) names.push(p.phase);
  const phases = names.map((phase): PhaseModel => {
    // A drill without the phase spent nothing on it.
    const points = used.map((d) => ({ x: d.sizeBytes, y: phasesWithGaps(d).find((p) => p.phase === phase)?.seconds ?? 0 }));
    if (fitted) {
      const { a, b } = fitNonNegativeLine(points);
      return { phase, fixedSeconds: a, ...(b > 0 ? { bytesPerSecond: 1 / b } : {}), how: 'fitted' };
    }
    if (SIZE_PROPORTIONAL_PHASES.has(phase)) {
      const seconds = points.reduce((s, p) => s + p.y, 0);
      const bytes = points.reduce((s, p) => s + p.x, 0);
      return seconds > 0 ? { phase, fixedSeconds: 0, bytesPerSecond: bytes / seconds, how: 'proportional' } : { phase, fixedSeconds: 0, how: 'fixed' };
    }
    return { phase, fixedSeconds: points.reduce((s, p) => s + p.y, 0) / points.length, how: 'fixed' };
  });
  return { phases, fitted, used };
}

export function secondsAt(phases: PhaseModel[], sizeBytes: number): number {
  return phases.reduce((s, p) => s + p.fixedSeconds + (p.bytesPerSecond ? sizeBytes / p.bytesPerSecond : 0), 0);
}

/** Seconds per byte of the whole model: how much one more byte adds to the RTO. */
function secondsPerByte(phases: PhaseModel[]): number {
  return phases.reduce((s, p) => s + (p.bytesPerSecond ? 1 / p.bytesPerSecond : 0), 0);
}

/** "in about 7 months", "in about 3 weeks", "in about 12 days", "in about 2.5 years". */
export function inAbout(days: number): string {
  if (days < 1) return 'within a day';
  if (days < 21) return `in about ${Math.round(days)} day${Math.round(days) === 1 ? '' : 's'}`;
  if (days < 60) return `in about ${Math.round(days / 7)} weeks`;
  if (days < 730) return `in about ${Math.round(days / 30.4)} months`;
  return `in about ${(days / 365).toFixed(1)} years`;
}

/** Minutes for an RTO a person compares with an objective (seconds when under two minutes). */
function rtoText(seconds: number): string {
  return formatDuration(seconds, { coarse: true });
}

export function projectGrowth(history: SizePoint[], now: string, currentSizeBytes: number | undefined): { points: SizePoint[]; bytesPerDay?: number; spanDays: number; why?: string } {
  const nowMs = Date.parse(now);
  const from = nowMs - GROWTH_WINDOW_DAYS * DAY_S * 1000;
  const points = history.filter((p) => Number.isFinite(p.sizeBytes) && p.sizeBytes > 0 && Date.parse(p.at) >= from && Date.parse(p.at) <= nowMs);
  if (currentSizeBytes !== undefined) points.push({ at: now, sizeBytes: currentSizeBytes });
  points.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const spanDays = points.length ? (Date.parse(points[points.length - 1].at) - Date.parse(points[0].at)) / (DAY_S * 1000) : 0;
  if (points.length < MIN_GROWTH_POINTS || spanDays < MIN_GROWTH_SPAN_DAYS) {
    return { points, spanDays, why: `${points.length} size${points.length === 1 ? '' : 's'} over ${spanDays < 1 ? 'less than a day' : `${spanDays.toFixed(1)} days`} of the last ${GROWTH_WINDOW_DAYS} days is not a growth trend (at least ${MIN_GROWTH_POINTS} over ${MIN_GROWTH_SPAN_DAYS} days)` };
  }
  // An unclamped line: a shrinking target has a negative slope, and says so.
  const xs = points.map((p) => (Date.parse(p.at) - nowMs) / (DAY_S * 1000));
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length;
  const my = points.reduce((s, p) => s + p.sizeBytes, 0) / points.length;
  const sxx = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  const sxy = xs.reduce((s, x, i) => s + (x - mx) * (points[i].sizeBytes - my), 0);
  return { points, spanDays, bytesPerDay: sxx > 0 ? sxy / sxx : 0 };
}

export function predictRto(input: PredictionInput): RtoPrediction {
  const objective = input.objectiveSeconds;
  const { phases, fitted, used } = fitPhases(input.drills);
  const sizes = used.map((d) => d.sizeBytes);
  const sizeRange = sizes.length ? { minBytes: Math.min(...sizes), maxBytes: Math.max(...sizes) } : {};
  const sizeSources = [...new Set(used.map((d) => d.sizeSource).filter((s): s is string => !!s))];
  const growthFit = projectGrowth(input.sizeHistory, input.now, input.currentSizeBytes);
  const base = { target: input.target, at: input.now, objectiveSeconds: objective, ...(input.currentSizeBytes !== undefined ? { currentSizeBytes: input.currentSizeBytes } : {}) };

  if (!used.length || input.currentSizeBytes === undefined) {
    const why = !used.length
      ? `no passed drill of ${input.target} with a known size is on record: run \`lifeboat drill run ${input.target}\` and the next prediction has one`
      : `the current size of ${input.target} could not be measured`;
    return {
      ...base,
      status: 'insufficient-data',
      basis: { drills: used.length, drillIds: used.map((d) => d.drillId), fitted: false, sizes: sizeRange, detail: why },
      phases,
      growth: { points: growthFit.points.length, spanDays: growthFit.spanDays, detail: 'no growth projection without an RTO model' },
      summary: `predicted RTO now: unknown (objective ${rtoText(objective)}): ${why}.`,
    };
  }

  const size = input.currentSizeBytes;
  const predicted = secondsAt(phases, size);
  for (const p of phases) p.predictedSeconds = p.fixedSeconds + (p.bytesPerSecond ? size / p.bytesPerSecond : 0);
  const perByte = secondsPerByte(phases);
  const fixed = phases.reduce((s, p) => s + p.fixedSeconds, 0);
  const breachAtSizeBytes = perByte > 0 && fixed < objective ? (objective - fixed) / perByte : undefined;

  const growth: GrowthProjection = { points: growthFit.points.length, spanDays: Number(growthFit.spanDays.toFixed(1)), detail: '' };
  let growthText: string;
  if (predicted > objective) {
    growth.breachInDays = 0;
    growth.detail = 'the predicted RTO is already past the objective';
    growthText = 'it is past the objective NOW';
  } else if (growthFit.bytesPerDay === undefined) {
    growth.detail = growthFit.why!;
    growthText = `no growth projection yet (${growthFit.why})`;
  } else {
    growth.bytesPerDay = Math.round(growthFit.bytesPerDay);
    if (breachAtSizeBytes === undefined) {
      growth.detail = fixed >= objective ? 'the fixed overheads alone reach the objective' : 'the RTO does not depend on size in the drills so far';
      growthText = `growth of ${formatBytes(Math.max(0, growth.bytesPerDay))}/day does not move it (${growth.detail})`;
    } else if (growthFit.bytesPerDay <= 0) {
      growth.breachAtSizeBytes = Math.round(breachAtSizeBytes);
      growth.detail = `the target did not grow over the last ${GROWTH_WINDOW_DAYS} days; it breaches at ${formatBytes(breachAtSizeBytes)}`;
      growthText = `at the last ${GROWTH_WINDOW_DAYS} days' growth (none) it does not breach; it would at ${formatBytes(breachAtSizeBytes)}`;
    } else {
      const days = (breachAtSizeBytes - size) / growthFit.bytesPerDay;
      growth.breachAtSizeBytes = Math.round(breachAtSizeBytes);
      growth.breachInDays = Math.max(0, Number(days.toFixed(1)));
      growth.detail = `growing ${formatBytes(growthFit.bytesPerDay)}/day (${growthFit.points.length} sizes over ${growth.spanDays} days), it reaches ${formatBytes(breachAtSizeBytes)} ${inAbout(days)}`;
      growthText = `at the last ${GROWTH_WINDOW_DAYS} days' growth it breaches ${inAbout(days)}`;
    }
  }

  const drillsText = `${used.length} passed drill${used.length === 1 ? '' : 's'}`;
  const detail = fitted
    ? `fitted from ${drillsText} at ${formatBytes(sizeRange.minBytes)} to ${formatBytes(sizeRange.maxBytes)}: fixed overhead ${rtoText(fixed)}, plus ${rtoText(perByte * 1024 ** 3)} per GiB`
    : `from ${drillsText} at ${formatBytes(sizeRange.maxBytes)} only: restore and WAL replay taken as proportional to size, every other phase as fixed (${rtoText(fixed)}); drills at other sizes would measure the split`;
  const status: PredictionStatus = predicted > objective ? 'breach' : 'within';
  return {
    ...base,
    status,
    predictedSeconds: Math.round(predicted),
    basis: {
      drills: used.length,
      drillIds: used.map((d) => d.drillId),
      fitted,
      sizes: sizeRange,
      detail: `${detail}; size now ${formatBytes(size)}${input.currentSizeSource ? ` (${input.currentSizeSource})` : ''}${sizeSources.length ? `, drill sizes from ${sizeSources.join(' and ')}` : ''}`,
    },
    phases,
    growth,
    summary: `predicted RTO now: ${rtoText(predicted)} (objective ${rtoText(objective)})${status === 'breach' ? ', OVER THE OBJECTIVE' : ''}; ${growthText}. Based on ${drillsText}${fitted ? '' : ' at one size'}.`,
  };
}

/** The prediction as Markdown lines (a report's section). */
export function predictionMarkdown(p: RtoPrediction): string[] {
  const lines = [`${p.summary}`, '', `- Basis: ${p.basis.detail}.`, `- Growth: ${p.growth.detail}.`];
  if (p.phases.length) {
    lines.push('', '| phase | fixed | rate | now |', '|---|---|---|---|');
    for (const ph of p.phases) {
      lines.push(`| ${ph.phase} | ${formatDuration(ph.fixedSeconds)} | ${ph.bytesPerSecond ? `${formatBytes(ph.bytesPerSecond)}/s` : '-'} | ${ph.predictedSeconds !== undefined ? formatDuration(ph.predictedSeconds) : '-'} |`);
    }
  }
  return lines;
}
