/**
 * Named restore points on a PostgreSQL source: `pg_create_restore_point` marks a place in the
 * WAL that a later recovery can stop at by name. The WAL switch that follows closes the current
 * segment, so the point reaches the archive (and so the restore window) within the archiver's
 * next run instead of whenever the segment fills up.
 */

import { LifeboatError } from '../domain/errors';
import { newPgClient, PgClientConfig } from './pg-client';

export interface CreatedRestorePoint {
  lsn: string;
  createdAt: string;
  /** The WAL segment holding the point: restorable once it is archived. */
  walFile: string;
}

/**
 * A failure that happened before the point was asked for: nothing was made, so the name is free
 * to try again. Any later failure leaves it unknown whether the point exists.
 */
export class RestorePointNotMade extends LifeboatError {}

export async function createRestorePointOn(conn: PgClientConfig, name: string): Promise<CreatedRestorePoint> {
  const client = newPgClient({ ...conn, connectionTimeoutMillis: 10000 });
  let asked = false;
  try {
    await client.connect();
    const { rows } = await client.query<{ in_recovery: boolean; level: string }>("SELECT pg_is_in_recovery() AS in_recovery, current_setting('wal_level') AS level");
    if (rows[0].in_recovery) {
      throw new LifeboatError(`${conn.host}:${conn.port} is a standby in recovery, where restore points cannot be made; make it on the primary.`, 'RESTORE_POINT_ON_STANDBY');
    }
    if (rows[0].level === 'minimal') {
      throw new LifeboatError(`${conn.host}:${conn.port} runs with wal_level = minimal, which keeps no restore points; set wal_level to replica (what WAL archiving needs anyway).`, 'RESTORE_POINT_WAL_LEVEL');
    }
    asked = true;
    const made = (await client.query<{ lsn: string; at: Date; file: string }>('SELECT p::text AS lsn, now() AS at, pg_walfile_name(p) AS file FROM pg_create_restore_point($1) AS p', [name])).rows[0];
    await client.query('SELECT pg_switch_wal()');
    return { lsn: made.lsn, createdAt: made.at.toISOString(), walFile: made.file };
  } catch (err) {
    if (err instanceof LifeboatError) throw asked ? err : new RestorePointNotMade(err.message, err.code, err.nonRetryable);
    const code = (err as { code?: string }).code;
    if (code === '42501') {
      throw new RestorePointNotMade(`${conn.user} may not make restore points on ${conn.host}:${conn.port} (${(err as Error).message}): grant it EXECUTE on pg_create_restore_point and pg_switch_wal, or use a superuser.`, 'PERMISSION_DENIED');
    }
    const Failure = asked ? LifeboatError : RestorePointNotMade;
    throw new Failure(`The restore point "${name}" could not be made on ${conn.host}:${conn.port}: ${(err as Error).message}; check that the source is up and try again.`, 'RESTORE_POINT_FAILED', false);
  } finally {
    await client.end().catch(() => undefined);
  }
}
