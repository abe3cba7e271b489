/**
 * Durations as people write them in the config file: a whole number and a unit, optionally
 * several in a row ("90s", "15m", "1h", "1h30m", "24h", "7d", "2w"), always parsed to seconds.
 */

const UNIT_SECONDS = { w: 604_800, d: 86_400, h: 3_600, m: 60, s: 1 } as const;
type Unit = keyof typeof UNIT_SECONDS;

const WHOLE = /^(?:\d+[wdhms])+$/;
const PART = /(\d+)([wdhms])/g;

/** Seconds in `text`, or undefined when it is not a duration like "15m", "1h" or "7d". */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (!WHOLE.test(trimmed)) return undefined;
  let seconds = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) seconds += Number(amount) * UNIT_SECONDS[unit as Unit];
  return Number.isSafeInteger(seconds) ? seconds : undefined;
}

/** The shortest spelling in the config's own syntax (for its messages and docs; people get src/domain/format.ts): 900 → "15m", 5400 → "1h30m", 0 → "0s". */
export function formatConfigDuration(seconds: number): string {
  if (seconds <= 0) return '0s';
  let rest = Math.round(seconds);
  let out = '';
  for (const unit of Object.keys(UNIT_SECONDS) as Unit[]) {
    const size = UNIT_SECONDS[unit];
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
