/**
 * The restore drill's report, as auditors ask for it: identifier and date, the backup tested,
 * the environment, the steps followed, each validation with its method and result, RTO and RPO
 * against the objectives, issues found and recommendations. One model, three renderings: JSON
 * for machines, Markdown for tickets, and a self-contained HTML page (no scripts, no external
 * resources) whose chart shows the RTO history of the target, phase by phase, against the
 * objective. Pure: no I/O, so any layer can render it.
 */
import type { QueryTiming } from './drill-validation';
import { formatBytes, formatDuration } from './format';
import { predictionMarkdown, RtoPrediction } from './rto-prediction';

export type DrillOutcome = 'passed' | 'failed' | 'cancelled';

export interface DrillStep {
  /** The phase as the workflow names it: selecting, restoring, replaying-wal, starting, validating, cleaning-up. */
  phase: string;
  startedAt: string;
  seconds: number;
  detail: string;
}

export interface DrillValidation {
  name: string;
  /** How it was checked, in words: "row count against the count recorded at backup time". */
  method: string;
  ok: boolean;
  detail: string;
  seconds?: number;
}

/** One earlier drill of the same target, for the trend. */
export interface DrillHistoryEntry {
  drillId: string;
  at: string;
  passed: boolean;
  /** Seconds per phase, in the order of the run. */
  phases: Array<{ phase: string; seconds: number }>;
}

export interface DrillReport {
  drillId: string;
  runId: string;
  startedAt: string;
  finishedAt: string;
  outcome: DrillOutcome;
  target: { name: string; kind: 'database' | 'bucket' | 'directory' | 'dynamodb' | 'sqlite'; engine: string; environment: string };
  /** `objects`: how many objects a files backup set holds (bucket targets). */
  backup: { id: string; type: string; takenAt: string; region: string; sizeBytes?: number; objects?: number; selectedBy: string };
  restoredInto: { name: string; detail: string };
  requestedBy: string;
  steps: DrillStep[];
  validations: DrillValidation[];
  rto: { seconds: number; objectiveSeconds: number };
  rpo: { seconds: number; objectiveSeconds: number };
  issues: string[];
  recommendations: string[];
  /** Earlier drills of this target, oldest first; this drill is added as the last bar. */
  history: DrillHistoryEntry[];
  /** Each smoke and validation query's time on the restored instance, beside the previous drill's (queryTimingsBefore). */
  queryTimings?: QueryTiming[];
  /** The drill the timings are compared with. */
  queryTimingsBefore?: { drillId: string; at: string };
  /** The application check's exit and the last lines of its output (its verdict is among the validations). */
  applicationCheck?: { name: string; exitCode?: number; timedOut: boolean; seconds: number; outputTail: string };
  /** The RTO a restore of the target would take now and when growth breaches the objective, from the drills so far. */
  prediction?: RtoPrediction;
}

export const DRILL_REPORT_VERSION = 1;

/** Stable JSON: the version first, keys in the model's order. */
export function drillReportJson(report: DrillReport): string {
  return `${JSON.stringify({ version: DRILL_REPORT_VERSION, ...report }, null, 2)}\n`;
}

function met(actual: number, objective: number): string {
  return actual <= objective ? 'met' : 'MISSED';
}

function mdCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** ", 12 objects, 6.0 MiB" for a files set; ", 6.0 MiB" for a database backup of known size. */
function backupSize(r: DrillReport): string {
  const parts = [r.backup.objects !== undefined ? `${r.backup.objects} ${r.backup.objects === 1 ? 'object' : 'objects'}` : '', r.backup.sizeBytes !== undefined ? formatBytes(r.backup.sizeBytes) : ''].filter(Boolean);
  return parts.length ? `, ${parts.join(', ')}` : '';
}

export function drillReportMarkdown(r: DrillReport): string {
  const lines: string[] = [];
  lines.push(`# Restore drill ${r.drillId}: ${r.outcome.toUpperCase()}`, '');
  lines.push(`- Target: ${r.target.name} (${r.target.kind}, ${r.target.engine}), environment ${r.target.environment}`);
  lines.push(`- Date: ${r.startedAt} to ${r.finishedAt} (run ${r.runId}), requested by ${r.requestedBy}`);
  lines.push(`- Backup tested: ${r.backup.id} (${r.backup.type}, taken ${r.backup.takenAt}, region ${r.backup.region}${backupSize(r)}), chosen ${r.backup.selectedBy}`);
  lines.push(`- Restored into: ${r.restoredInto.name}: ${r.restoredInto.detail}`);
  lines.push(`- RTO: ${formatDuration(r.rto.seconds)} against an objective of ${formatDuration(r.rto.objectiveSeconds)}: ${met(r.rto.seconds, r.rto.objectiveSeconds)}`);
  lines.push(`- RPO (age of the backup tested): ${formatDuration(r.rpo.seconds)} against an objective of ${formatDuration(r.rpo.objectiveSeconds)}: ${met(r.rpo.seconds, r.rpo.objectiveSeconds)}`, '');
  lines.push('## Steps followed', '', '| phase | started | took | detail |', '|---|---|---|---|');
  for (const s of r.steps) lines.push(`| ${mdCell(s.phase)} | ${s.startedAt} | ${formatDuration(s.seconds)} | ${mdCell(s.detail)} |`);
  lines.push('', '## Validation', '', '| check | method | result | detail |', '|---|---|---|---|');
  for (const v of r.validations) lines.push(`| ${mdCell(v.name)} | ${mdCell(v.method)} | ${v.ok ? 'passed' : '**FAILED**'} | ${mdCell(v.detail)} |`);
  if (r.queryTimings?.length) {
    const before = r.queryTimingsBefore ? `drill ${r.queryTimingsBefore.drillId} (${r.queryTimingsBefore.at})` : 'no earlier drill with timings';
    lines.push('', '## Query timings', '', `On the restored instance, against ${before}.`, '', '| query | kind | this drill | previous | ratio |', '|---|---|---|---|---|');
    for (const q of r.queryTimings) lines.push(`| ${mdCell(q.name)} | ${q.kind} | ${q.ms} ms | ${q.previousMs !== undefined ? `${q.previousMs} ms` : '-'} | ${q.ratio !== undefined ? `${q.ratio}x${q.slower ? ' **slower**' : ''}` : '-'} |`);
  }
  if (r.applicationCheck) {
    const a = r.applicationCheck;
    lines.push('', `## Application check ${a.name}`, '', `${a.timedOut ? 'Timed out' : `Exit status ${a.exitCode ?? 'none'}`} after ${formatDuration(a.seconds)}.`, '', '```', ...(a.outputTail ? a.outputTail.replace(/```/g, "'''").split('\n') : ['(no output)']), '```');
  }
  lines.push('', '## Issues found', '', ...(r.issues.length ? r.issues.map((i) => `- ${i}`) : ['None.']));
  lines.push('', '## Recommendations', '', ...(r.recommendations.length ? r.recommendations.map((i) => `- ${i}`) : ['None.']));
  lines.push('', '## RTO history', '', '| drill | date | result | RTO |', '|---|---|---|---|');
  for (const h of withThisDrill(r)) lines.push(`| ${mdCell(h.drillId)} | ${h.at} | ${h.passed ? 'passed' : 'failed'} | ${formatDuration(total(h))} |`);
  if (r.prediction) lines.push('', '## RTO prediction', '', ...predictionMarkdown(r.prediction).map((l) => (l.startsWith('|') ? l : mdLine(l))));
  return `${lines.join('\n')}\n`;
}

function mdLine(text: string): string {
  return text.replace(/\r?\n/g, ' ');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function total(h: DrillHistoryEntry): number {
  return h.phases.reduce((sum, p) => sum + p.seconds, 0);
}

/** Steps after the data was proven (removing the drill's instance) are not part of the RTO. */
export const AFTER_RTO_PHASES = new Set(['kept-for-validation', 'cleaning-up']);

/** The phases of a drill that make up its RTO, as the chart and the history keep them. */
export function rtoPhases(steps: DrillStep[]): Array<{ phase: string; seconds: number }> {
  return steps.filter((s) => !AFTER_RTO_PHASES.has(s.phase)).map((s) => ({ phase: s.phase, seconds: s.seconds }));
}

/** The history with this drill as its last entry (the chart's rightmost bar). */
function withThisDrill(r: DrillReport): DrillHistoryEntry[] {
  const own: DrillHistoryEntry = { drillId: r.drillId, at: r.startedAt, passed: r.outcome === 'passed', phases: rtoPhases(r.steps) };
  return [...r.history.filter((h) => h.drillId !== r.drillId), own];
}

/** Colours per phase that stay apart for common colour blindness (Okabe-Ito). */
const PHASE_COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];

/**
 * The RTO chart: one stacked bar per drill (phases in colour, oldest left), the objective as a
 * dashed line. Inline SVG with its own text, so it reads the same printed or archived.
 */
export function rtoChartSvg(r: DrillReport, maxBars = 12): string {
  const drills = withThisDrill(r).slice(-maxBars);
  const phases = [...new Set(drills.flatMap((d) => d.phases.map((p) => p.phase)))];
  const colour = (phase: string) => PHASE_COLOURS[phases.indexOf(phase) % PHASE_COLOURS.length];
  const width = 720;
  const height = 300;
  const left = 72;
  const right = 16;
  const top = 16;
  const bottom = 72;
  const plotH = height - top - bottom;
  const plotW = width - left - right;
  const scaleMax = Math.max(r.rto.objectiveSeconds, ...drills.map(total)) * 1.1 || 1;
  const y = (seconds: number) => top + plotH - (seconds / scaleMax) * plotH;
  const slot = plotW / Math.max(drills.length, 1);
  const barW = Math.min(48, slot * 0.6);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="rto-title" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" class="rto-chart">`);
  parts.push(`<title id="rto-title">RTO of the last ${drills.length} drills of ${escapeHtml(r.target.name)}, per phase, against the objective of ${escapeHtml(formatDuration(r.rto.objectiveSeconds))}</title>`);
  // Axis with three gridlines, labelled in durations.
  for (const fraction of [0, 0.5, 1]) {
    const s = Math.round(scaleMax * fraction);
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${y(s).toFixed(1)}" y2="${y(s).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 6}" y="${(y(s) + 4).toFixed(1)}" text-anchor="end" font-size="11">${escapeHtml(formatDuration(s, { coarse: true }))}</text>`);
  }
  drills.forEach((d, i) => {
    const x = left + slot * i + (slot - barW) / 2;
    let base = 0;
    parts.push(`<g class="bar" data-drill="${escapeHtml(d.drillId)}" data-seconds="${total(d)}">`);
    for (const p of d.phases) {
      const y0 = y(base);
      const y1 = y(base + p.seconds);
      parts.push(`<rect class="phase" data-phase="${escapeHtml(p.phase)}" x="${x.toFixed(1)}" y="${y1.toFixed(1)}" width="${barW.toFixed(1)}" height="${Math.max(0, y0 - y1).toFixed(1)}" fill="${colour(p.phase)}"><title>${escapeHtml(`${d.drillId} ${p.phase}: ${formatDuration(p.seconds)}`)}</title></rect>`);
      base += p.seconds;
    }
    if (!d.passed) parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(y(base) - 4).toFixed(1)}" text-anchor="middle" font-size="11" fill="#D55E00">failed</text>`);
    parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${height - bottom + 14}" text-anchor="middle" font-size="10">${escapeHtml(d.at.slice(0, 10))}</text>`);
    parts.push('</g>');
  });
  const objectiveY = y(r.rto.objectiveSeconds).toFixed(1);
  parts.push(`<line class="objective" x1="${left}" x2="${width - right}" y1="${objectiveY}" y2="${objectiveY}" stroke="#D55E00" stroke-width="2" stroke-dasharray="6 4"/>`);
  // Legend under the dates: the phases, then the objective (labelled here, so it never covers a bar).
  phases.forEach((phase, i) => {
    const lx = left + i * 100;
    parts.push(`<rect x="${lx}" y="${height - 30}" width="10" height="10" fill="${colour(phase)}"/><text x="${lx + 14}" y="${height - 21}" font-size="11">${escapeHtml(phase)}</text>`);
  });
  const ox = left + phases.length * 100;
  parts.push(`<line x1="${ox}" x2="${ox + 18}" y1="${height - 25}" y2="${height - 25}" stroke="#D55E00" stroke-width="2" stroke-dasharray="6 4"/>`);
  parts.push(`<text x="${ox + 22}" y="${height - 21}" font-size="11" fill="#D55E00">RTO objective ${escapeHtml(formatDuration(r.rto.objectiveSeconds))}</text>`);
  parts.push('</svg>');
  return parts.join('');
}

/** The query timings table and the application check's output, when the drill has them. */
function queryTimingsHtml(r: DrillReport): string {
  const e = escapeHtml;
  const parts: string[] = [];
  if (r.queryTimings?.length) {
    const before = r.queryTimingsBefore ? `drill ${e(r.queryTimingsBefore.drillId)} (${e(r.queryTimingsBefore.at)})` : 'no earlier drill with timings';
    parts.push(`<h2>Query timings</h2>\n<p>On the restored instance, against ${before}.</p>`);
    parts.push('<table id="query-timings"><tr><th>query</th><th>kind</th><th>this drill</th><th>previous</th><th>ratio</th></tr>');
    for (const q of r.queryTimings) {
      const ratio = q.ratio !== undefined ? `${q.ratio}x${q.slower ? ' <span class="bad">slower</span>' : ''}` : '-';
      parts.push(`<tr><td>${e(q.name)}</td><td>${q.kind}</td><td>${q.ms} ms</td><td>${q.previousMs !== undefined ? `${q.previousMs} ms` : '-'}</td><td>${ratio}</td></tr>`);
    }
    parts.push('</table>');
  }
  if (r.applicationCheck) {
    const a = r.applicationCheck;
    parts.push(`<h2>Application check ${e(a.name)}</h2>\n<p>${a.timedOut ? 'Timed out' : `Exit status ${a.exitCode ?? 'none'}`} after ${e(formatDuration(a.seconds))}.</p>`);
    parts.push(`<pre id="application-output">${e(a.outputTail || '(no output)')}</pre>`);
  }
  return parts.join('\n');
}

function predictionHtml(p: RtoPrediction): string {
  const e = escapeHtml;
  const cls = p.status === 'breach' ? 'bad' : p.status === 'within' ? 'ok' : '';
  const rows = p.phases
    .map((ph) => `<tr><td>${e(ph.phase)}</td><td>${e(formatDuration(ph.fixedSeconds))}</td><td>${ph.bytesPerSecond ? e(`${formatBytes(ph.bytesPerSecond)}/s`) : '-'}</td><td>${ph.predictedSeconds !== undefined ? e(formatDuration(ph.predictedSeconds)) : '-'}</td></tr>`)
    .join('\n');
  return `<h2>RTO prediction</h2>
<p id="prediction" class="${cls}" data-status="${e(p.status)}">${e(p.summary)}</p>
<ul><li>Basis: ${e(p.basis.detail)}.</li><li>Growth: ${e(p.growth.detail)}.</li></ul>
${rows ? `<table id="prediction-phases"><tr><th>phase</th><th>fixed</th><th>rate</th><th>now</th></tr>\n${rows}\n</table>` : ''}`;
}

export function drillReportHtml(r: DrillReport): string {
  const e = escapeHtml;
  const row = (cells: string[]) => `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
  const verdict = (ok: boolean) => (ok ? '<span class="ok">passed</span>' : '<span class="bad">FAILED</span>');
  const objective = (label: string, x: { seconds: number; objectiveSeconds: number }) =>
    `<tr><th>${label}</th><td>${e(formatDuration(x.seconds))} against ${e(formatDuration(x.objectiveSeconds))}: ${x.seconds <= x.objectiveSeconds ? '<span class="ok">met</span>' : '<span class="bad">MISSED</span>'}</td></tr>`;
  const list = (items: string[]) => (items.length ? `<ul>${items.map((i) => `<li>${e(i)}</li>`).join('')}</ul>` : '<p>None.</p>');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Restore drill ${e(r.drillId)}: ${e(r.outcome)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#111}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;table-layout:fixed}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f4f4f4}#summary th{width:30%}.ok{color:#006b3c;font-weight:600}.bad{color:#b00020;font-weight:700}
.outcome-passed{border-left:6px solid #009E73;padding-left:.6rem}.outcome-failed,.outcome-cancelled{border-left:6px solid #D55E00;padding-left:.6rem}
svg{max-width:100%;height:auto}pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f8f8f8;padding:.5rem}
</style></head>
<body>
<h1 class="outcome-${e(r.outcome)}">Restore drill ${e(r.drillId)}: <span class="${r.outcome === 'passed' ? 'ok' : 'bad'}" id="outcome">${e(r.outcome.toUpperCase())}</span></h1>
<table id="summary">
<tr><th>Target</th><td>${e(r.target.name)} (${e(r.target.kind)}, ${e(r.target.engine)}), environment ${e(r.target.environment)}</td></tr>
<tr><th>Date</th><td>${e(r.startedAt)} to ${e(r.finishedAt)}; run ${e(r.runId)}; requested by ${e(r.requestedBy)}</td></tr>
<tr><th>Backup tested</th><td>${e(r.backup.id)} (${e(r.backup.type)}, taken ${e(r.backup.takenAt)}, region ${e(r.backup.region)}${e(backupSize(r))}), chosen ${e(r.backup.selectedBy)}</td></tr>
<tr><th>Restored into</th><td>${e(r.restoredInto.name)}: ${e(r.restoredInto.detail)}</td></tr>
${objective('RTO', r.rto)}
${objective('RPO (age of the backup)', r.rpo)}
</table>
<h2>RTO history</h2>
${rtoChartSvg(r)}
${r.prediction ? predictionHtml(r.prediction) : ''}
<h2>Steps followed</h2>
<table id="steps"><tr><th>phase</th><th>started</th><th>took</th><th>detail</th></tr>
${r.steps.map((s) => row([e(s.phase), e(s.startedAt), e(formatDuration(s.seconds)), e(s.detail)])).join('\n')}
</table>
<h2>Validation</h2>
<table id="validations"><tr><th>check</th><th>method</th><th>result</th><th>detail</th></tr>
${r.validations.map((v) => row([e(v.name), e(v.method), verdict(v.ok), e(v.detail)])).join('\n')}
</table>
${queryTimingsHtml(r)}
<h2>Issues found</h2>
${list(r.issues)}
<h2>Recommendations</h2>
${list(r.recommendations)}
</body></html>
`;
}
