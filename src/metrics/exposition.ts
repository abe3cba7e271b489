/**
 * The Prometheus text exposition format (version 0.0.4), written by hand: lifeboat's metrics are
 * computed from the catalog at scrape time, histograms included (their buckets are counted in
 * SQL), which a client library that only observes values one by one cannot express.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

export type Labels = Record<string, string>;

export interface Sample {
  labels: Labels;
  value: number;
}

export interface HistogramSample {
  labels: Labels;
  /** Cumulative counts per upper bound, in the order of the family's `buckets`. */
  bucketCounts: number[];
  count: number;
  sum: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples?: Sample[];
  /** Histograms only: the upper bounds (+Inf is added). */
  buckets?: number[];
  histograms?: HistogramSample[];
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return pairs.length ? `{${pairs.join(',')}}` : '';
}

/** One family: HELP, TYPE and its samples (a family without samples still says what it is). */
export function renderFamily(f: MetricFamily): string {
  const lines = [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`];
  for (const s of f.samples ?? []) lines.push(`${f.name}${labelText(s.labels)} ${formatValue(s.value)}`);
  for (const h of f.histograms ?? []) {
    (f.buckets ?? []).forEach((le, i) => lines.push(`${f.name}_bucket${labelText(h.labels, ['le', formatValue(le)])} ${h.bucketCounts[i]}`));
    lines.push(`${f.name}_bucket${labelText(h.labels, ['le', '+Inf'])} ${h.count}`);
    lines.push(`${f.name}_sum${labelText(h.labels)} ${formatValue(h.sum)}`);
    lines.push(`${f.name}_count${labelText(h.labels)} ${h.count}`);
  }
  return lines.join('\n') + '\n';
}

export function renderExposition(families: readonly MetricFamily[]): string {
  return families.map(renderFamily).join('');
}

/** Every family name a text exposition declares with `# TYPE` (what a scrape offers). */
export function declaredFamilies(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]));
}

/** One sample line's value, or undefined: `name{a="b",...} value` with exactly these labels. */
export function sampleValue(text: string, name: string, labels: Labels): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found: Labels = {};
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found[pair[1]] = pair[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    const keys = Object.keys(labels);
    if (keys.length === Object.keys(found).length && keys.every((k) => found[k] === labels[k])) return m[3] === '+Inf' ? Infinity : Number(m[3]);
  }
  return undefined;
}
