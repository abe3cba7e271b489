/**
 * How lifeboat writes sizes and durations for people: one formatter each, used by the CLI, the
 * Web UI's status board, reports and notifications alike. Pure: workflow code uses it too.
 * (The config's own duration syntax, "15m", is spelled by src/config/duration.ts.)
 */

const KIB = 1024;

/** Binary units, labelled as such: 1536 → "1.5 KiB", 5 GiB → "5.0 GiB". */
export function formatBytes(n: number | undefined): string {
  if (n === undefined) return 'size unknown';
  if (n >= KIB ** 4) return `${(n / KIB ** 4).toFixed(1)} TiB`;
  if (n >= KIB ** 3) return `${(n / KIB ** 3).toFixed(1)} GiB`;
  if (n >= KIB ** 2) return `${(n / KIB ** 2).toFixed(1)} MiB`;
  if (n >= KIB) return `${(n / KIB).toFixed(1)} KiB`;
  return `${n} B`;
}

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86400;

/**
 * A number of seconds as a person reads it. Exact (the default) keeps the two largest units:
 * 45 → "45 s", 125 → "2 min 5 s", 3720 → "1 h 2 min", 93600 → "1 d 2 h". Coarse (ages, lags)
 * rounds to one: 90 → "90 s", 1330 → "22 min", 9000 → "2.5 h", 200000 → "2.3 days".
 */
export function formatDuration(seconds: number, opts: { coarse?: boolean } = {}): string {
  const s = Math.max(0, Math.round(seconds));
  if (opts.coarse) {
    if (s < 2 * MINUTE) return `${s} s`;
    if (s < 2 * HOUR) return `${Math.round(s / MINUTE)} min`;
    if (s < 2 * DAY) return `${(s / HOUR).toFixed(1)} h`;
    return `${(s / DAY).toFixed(1)} days`;
  }
  const two = (big: number, bigUnit: string, small: number, smallUnit: string) => (small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`);
  if (s < MINUTE) return `${s} s`;
  if (s < HOUR) return two(Math.floor(s / MINUTE), 'min', s % MINUTE, 's');
  if (s < DAY) return two(Math.floor(s / HOUR), 'h', Math.floor((s % HOUR) / MINUTE), 'min');
  return two(Math.floor(s / DAY), 'd', Math.floor((s % DAY) / HOUR), 'h');
}

/** How long ago, or for how long, in coarse units; "never" when there is nothing to measure. */
export function formatAge(seconds: number | undefined): string {
  return seconds === undefined ? 'never' : formatDuration(seconds, { coarse: true });
}
