/**
 * Parsing and judging a requested restore point. Pure, so the CLI refuses bad input before
 * starting anything and the workflow's validation applies the very same rules.
 */
import { RestorePoint, RestoreWindow } from './ports';

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$/i;
const ISO_WITHOUT_ZONE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$/;

export function parseRestorePoint(text: string, engine: string): Parsed<RestorePoint> {
  const value = text.trim();
  if (value === 'latest') return { ok: true, value: { kind: 'latest' } };
  if (value.startsWith('backup:')) {
    // A backup as it was when it ended (what a restore drill proves): pgBackRest's own set.
    const backupId = value.slice(7);
    if (engine === 'rds') {
      // An RDS snapshot identifier: a letter first, then letters, digits and single hyphens.
      if (!/^[A-Za-z](?:-?[A-Za-z0-9])*$/.test(backupId) || backupId.length > 255) return { ok: false, reason: `"${backupId}" is not an RDS snapshot identifier: write it like backup:lifeboat-orders-20261130 (see lifeboat backups list)` };
      return { ok: true, value: { kind: 'backup', backupId } };
    }
    if (engine !== 'pgbackrest') return { ok: false, reason: `${engine} targets restore to a time or "latest" only, not to a backup by its id` };
    if (!/^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/.test(backupId)) return { ok: false, reason: `"${backupId}" is not a pgBackRest backup label: write it like backup:20261130-085650F (see lifeboat backups list)` };
    return { ok: true, value: { kind: 'backup', backupId } };
  }
  if (value.startsWith('lsn:') || value.startsWith('name:')) {
    if (engine !== 'pgbackrest') return { ok: false, reason: `${engine} targets restore to a time or "latest" only, not to ${value.startsWith('lsn:') ? 'an LSN' : 'a named restore point'}` };
    if (value.startsWith('lsn:')) {
      const lsn = value.slice(4);
      return /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i.test(lsn) ? { ok: true, value: { kind: 'lsn', lsn } } : { ok: false, reason: `"${lsn}" is not an LSN: write it like lsn:0/3000028` };
    }
    const name = value.slice(5);
    if (!name) return { ok: false, reason: 'a named restore point needs its name: name:<restore point>' };
    const problem = restorePointNameProblem(name);
    if (problem) return { ok: false, reason: problem };
    return { ok: true, value: { kind: 'name', name } };
  }
  if (ISO_WITHOUT_ZONE.test(value)) {
    return { ok: false, reason: `the restore time ${value} has no time zone, so it could mean several instants: add one, e.g. ${value.length === 10 ? `${value}T00:00:00Z` : `${value}Z`} for UTC or +01:00` };
  }
  if (!ISO_WITH_ZONE.test(value) || Number.isNaN(Date.parse(value))) {
    return { ok: false, reason: `"${value}" is not a restore point: give an ISO-8601 time with a zone (2026-11-21T10:01:00Z), "latest", lsn:<lsn> or name:<restore point>` };
  }
  const impossible = impossibleCalendarField(value);
  if (impossible) return { ok: false, reason: `the restore time ${value} does not exist (${impossible}): check the date` };
  return { ok: true, value: { kind: 'time', at: new Date(Date.parse(value)).toISOString() } };
}

/**
 * What makes a written time impossible, if anything: Date.parse rolls 2026-02-30 over to
 * 2 March, a different instant from the one the person meant.
 */
function impossibleCalendarField(value: string): string | undefined {
  const [, y, mo, d, h, mi, sec, zh, zm] = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?(?:Z|[+-](\d{2}):?(\d{2}))$/i.exec(value)!.map(Number);
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (mo < 1 || mo > 12) return `there is no month ${mo}`;
  if (d < 1 || d > daysInMonth) return `${String(mo).padStart(2, '0')}/${y} has ${daysInMonth} days`;
  if (h > 23) return `hour ${h} is past 23`;
  if (mi > 59) return `minute ${mi} is past 59`;
  if (sec > 59) return `second ${sec} is past 59`;
  if (zh > 23 || zm > 59) return `the zone offset is not a real one`;
  return undefined;
}

/** PostgreSQL keeps restore point names to 63 bytes; the characters are those every layer passes through safely. */
const RESTORE_POINT_NAME = /^[\w .:@+-]{1,63}$/;

/** Why `name` cannot be a restore point's name, or undefined when it can. */
export function restorePointNameProblem(name: string): string | undefined {
  if (RESTORE_POINT_NAME.test(name)) return undefined;
  return `"${name}" is not a restore point name pg_create_restore_point could have made: letters, digits, spaces and _.:@+-, at most 63 characters`;
}

/** A restore point lifeboat made and recorded (`lifeboat restore-point`): where it lies in the WAL. */
export interface RecordedRestorePoint {
  target: string;
  name: string;
  lsn: string;
  createdAt: string;
  createdBy: string;
}

/**
 * A named point is checked through its record: only points lifeboat made (and so knows the LSN
 * of) can be judged against the window before approval. A name without a record is refused
 * rather than discovered missing after the approval, at the end of a long WAL replay.
 */
export function checkNamedPoint(name: string, target: string, record: RecordedRestorePoint | undefined, window: RestoreWindow, now: Date): Parsed<RestorePoint> {
  if (!record) {
    return {
      ok: false,
      reason: `lifeboat has no record of a restore point named "${name}" for ${target}, so it cannot check that point before approval: restore points made with \`lifeboat restore-point ${target} <name>\` are recorded with their LSN; for one made in SQL, restore to the LSN pg_create_restore_point returned (--to lsn:<lsn>)`,
    };
  }
  const inside = checkInsideWindow({ kind: 'lsn', lsn: record.lsn }, window, now);
  if (!inside.ok) return { ok: false, reason: `restore point "${name}" (LSN ${record.lsn}, made ${record.createdAt} by ${record.createdBy}) cannot be restored: ${inside.reason}` };
  return { ok: true, value: { kind: 'name', name } };
}

/** An LSN as one comparable number (BigInt: LSNs are 64-bit). */
export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/**
 * A time or LSN restore point must lie inside the window; `now` guards against the future.
 * A named point is checked through its record (checkNamedPoint).
 */
export function checkInsideWindow(point: RestorePoint, window: RestoreWindow, now: Date): Parsed<RestorePoint> {
  if (point.kind === 'lsn') {
    const describe = `the restore window is LSN ${window.earliestLsn ?? '?'} to ${window.latestLsn ?? '?'}`;
    if (!window.earliestLsn || !window.latestLsn) return { ok: false, reason: `the WAL positions of the restore window cannot be read from the repository now, so LSN ${point.lsn} cannot be checked; restore to a time instead, or retry once \`lifeboat preflight\` passes` };
    if (lsnValue(point.lsn) < lsnValue(window.earliestLsn)) return { ok: false, reason: `LSN ${point.lsn} is before the end of the oldest backup; ${describe}: pick an LSN inside it` };
    if (lsnValue(point.lsn) > lsnValue(window.latestLsn)) return { ok: false, reason: `LSN ${point.lsn} is past the last archived WAL record; ${describe}: pick an LSN inside it, or "latest"` };
    return { ok: true, value: point };
  }
  if (point.kind !== 'time') return { ok: true, value: point };
  const at = Date.parse(point.at);
  const describe = `the restore window is ${window.earliest} to ${window.latest}`;
  if (at > now.getTime()) return { ok: false, reason: `the restore time ${point.at} is in the future (now ${now.toISOString()}); ${describe}: pick a time inside it` };
  if (at < Date.parse(window.earliest)) return { ok: false, reason: `the restore time ${point.at} is before the oldest backup; ${describe}: pick a time inside it` };
  if (at > Date.parse(window.latest)) return { ok: false, reason: `the restore time ${point.at} is after the latest archived WAL; ${describe}: pick a time inside it, or "latest"` };
  return { ok: true, value: point };
}
