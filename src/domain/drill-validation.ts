/**
 * What a restore drill checks on its restored instance beyond the verifier's integrity checks:
 * the target's smoke queries and its own validation SQL (each timed, and compared with the
 * previous drill's timing), and an optional application check. Pure: the rules and the shapes
 * that cross workflow history; the activities run them.
 */

/** A query the drill runs on the restored instance, by name; the activity reads its SQL from the config. */
export interface DrillQuery {
  name: string;
  /** `smoke`: the target's smoke query (passes with at least one row); `validation`: the target's drill validation SQL (see validationVerdict). */
  kind: 'smoke' | 'validation';
}

/** One query's result on the restored instance, with how long it took. */
export interface DrillQueryResult extends DrillQuery {
  ok: boolean;
  detail: string;
  /** Wall-clock milliseconds of the statement alone (not the connection), as the worker measured it. */
  ms: number;
  /** The statement ran to its end (whatever it returned): only then is `ms` a timing worth comparing. */
  completed: boolean;
}

/** What the drill of a target validates, read from the config when the drill starts. */
export interface DrillValidationPlan {
  queries: DrillQuery[];
  /** The application check, when the target has one: the command is read from the config when it runs. */
  applicationCheck?: { name: string; timeoutSeconds: number };
  /** How long the instance is kept after validation (`drill.keepFor`), in seconds. */
  keepForSeconds: number;
  /** The timings of the newest earlier drill of this target that recorded any. */
  previous?: PreviousQueryTimings;
}

export interface PreviousQueryTimings {
  drillId: string;
  at: string;
  timings: Array<{ name: string; kind: DrillQuery['kind']; ms: number }>;
}

/** A query's timing in this drill beside the previous drill's. */
export interface QueryTiming {
  name: string;
  kind: DrillQuery['kind'];
  ms: number;
  previousMs?: number;
  /** ms / previousMs, rounded to two decimals. */
  ratio?: number;
  /** More than SLOWER_RATIO times slower than the previous drill, by more than SLOWER_NOISE_MS: an issue, not a failure. */
  slower?: boolean;
}

/** What the application check found: its exit status counts; its output is a bounded tail. */
export interface ApplicationCheckResult {
  name: string;
  ok: boolean;
  /** The command's exit code; undefined when it did not exit by itself (timed out, not found). */
  exitCode?: number;
  timedOut: boolean;
  ms: number;
  detail: string;
  /** The last lines of its output (standard output then standard error), secrets removed. */
  outputTail: string;
}

/** A query this many times slower than in the previous drill is reported as an issue. */
export const SLOWER_RATIO = 2;
/**
 * ...and only when it is slower by at least this much: a query of 2 ms that takes 5 ms is timer
 * noise, not a regression.
 */
export const SLOWER_NOISE_MS = 50;

/**
 * The rule of a drill's validation SQL: it passes when it returns at least one row and the first
 * column of its first row is "truthy": not NULL, not false, not zero (a number, or text reading as
 * the number 0, as PostgreSQL sends bigint and numeric), not empty text. So `SELECT count(*) FROM
 * orders` passes when there are orders, `SELECT NOT EXISTS (SELECT ... orphans)` passes when
 * there are none, and `SELECT id FROM orders WHERE ...` passes when any row matches.
 */
export function validationVerdict(rowCount: number, firstValue: unknown): { ok: boolean; detail: string } {
  if (rowCount === 0) return { ok: false, detail: 'returned no rows' };
  const rows = `${rowCount} row${rowCount === 1 ? '' : 's'}`;
  if (firstValue === null || firstValue === undefined) return { ok: false, detail: `${rows}, the first column of the first is NULL` };
  if (firstValue === false) return { ok: false, detail: `${rows}, the first column of the first is false` };
  if (typeof firstValue === 'number' || typeof firstValue === 'bigint') {
    return Number(firstValue) === 0 ? { ok: false, detail: `${rows}, the first column of the first is 0` } : { ok: true, detail: `${rows}, first value ${String(firstValue)}` };
  }
  if (typeof firstValue === 'string') {
    if (firstValue.trim() === '') return { ok: false, detail: `${rows}, the first column of the first is empty text` };
    if (/^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(firstValue) && Number(firstValue) === 0) return { ok: false, detail: `${rows}, the first column of the first is ${firstValue.trim()}` };
    return { ok: true, detail: `${rows}, first value ${shorten(firstValue)}` };
  }
  return { ok: true, detail: `${rows}, first value ${firstValue === true ? 'true' : shorten(JSON.stringify(firstValue) ?? String(firstValue))}` };
}

function shorten(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 60 ? `${flat.slice(0, 57)}...` : flat;
}

/** This drill's timings beside the previous drill's, per query name and kind, and the issues they raise. */
export function compareQueryTimings(current: Array<Pick<DrillQueryResult, 'name' | 'kind' | 'ms'>>, previous: PreviousQueryTimings | undefined): { timings: QueryTiming[]; issues: string[] } {
  const issues: string[] = [];
  const timings = current.map((q): QueryTiming => {
    const before = previous?.timings.find((p) => p.name === q.name && p.kind === q.kind);
    if (!before) return { name: q.name, kind: q.kind, ms: q.ms };
    const ratio = before.ms > 0 ? Math.round((q.ms / before.ms) * 100) / 100 : undefined;
    const slower = q.ms > before.ms * SLOWER_RATIO && q.ms - before.ms >= SLOWER_NOISE_MS;
    if (slower) {
      issues.push(
        `The ${q.kind === 'smoke' ? 'smoke query' : 'validation query'} ${q.name} took ${q.ms} ms on the restored instance, ${ratio ?? 'many'} times the ${before.ms} ms of drill ${previous!.drillId}: look for a missing index, grown data or a changed plan before it slows a real recovery.`,
      );
    }
    return { name: q.name, kind: q.kind, ms: q.ms, previousMs: before.ms, ...(ratio !== undefined ? { ratio } : {}), ...(slower ? { slower } : {}) };
  });
  return { timings, issues };
}

/** The check's output as the report keeps it: the last lines, bounded, with every secret value replaced. */
export function outputTail(text: string, secrets: readonly string[], maxLines = 20, maxChars = 2000): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join('[redacted]');
  const lines = out.replace(/\s+$/, '').split('\n').slice(-maxLines).join('\n');
  return lines.length > maxChars ? `...${lines.slice(lines.length - maxChars)}` : lines;
}
