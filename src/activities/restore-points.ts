/**
 * Named restore points lifeboat makes on a source and records with their LSN, so that a restore
 * to `name:<n>` is checked against the restore window before anyone approves it.
 */
import { Context } from '@temporalio/activity';
import { findDatabaseTarget, resolveSecret } from '../config';
import { MAX_REASON_CHARS } from '../domain/approval';
import { LifeboatError } from '../domain/errors';
import { RestorePointRequest, RestorePointResult } from '../domain/restore-point-request';
import { lsnValue, RecordedRestorePoint, restorePointNameProblem } from '../domain/restore-point';
import { createRestorePointOn, RestorePointNotMade } from '../engines/restore-points';
import { withHeartbeats } from './heartbeat';
import { pgTlsOf, Ports } from './ports';

interface RestorePointRow {
  target: string;
  name: string;
  lsn: string | null;
  state: 'creating' | 'created' | 'uncertain';
  attempted_at: Date | null;
  created_by: string;
  workflow_id: string;
  created_at: Date | null;
  recorded_at: Date;
}

const recorded = (row: RestorePointRow): RecordedRestorePoint => ({
  target: row.target,
  name: row.name,
  lsn: row.lsn ?? '',
  createdAt: (row.created_at ?? row.recorded_at).toISOString(),
  createdBy: row.created_by,
});

/** The restore point lifeboat made under `name` for `target`, if it finished making it. */
export async function findRecordedRestorePoint(ports: Ports, target: string, name: string): Promise<RecordedRestorePoint | undefined> {
  const rows = await ports.catalog.query<RestorePointRow>("SELECT * FROM restore_points WHERE target = $1 AND name = $2 AND state = 'created'", [target, name]);
  return rows[0] ? recorded(rows[0]) : undefined;
}

export function restorePointActivities(ports: Ports) {
  const { config } = ports;
  const refuse = (message: string, code: 'INVALID_RESTORE_POINT_REQUEST' | 'RESTORE_POINT_EXISTS' | 'RESTORE_POINT_UNCERTAIN' = 'INVALID_RESTORE_POINT_REQUEST'): never => {
    throw new LifeboatError(message, code, true);
  };

  return {
    /**
     * Makes the restore point on the target's source, records it with its LSN, and waits (a
     * bounded time) until its WAL is archived. The name is claimed in the catalog first, so two
     * requests for one name cannot both make it; a retry of the same workflow carries on.
     */
    async createRestorePoint(request: RestorePointRequest): Promise<RestorePointResult> {
      const run = Context.current().info.workflowExecution;
      if (!run) throw new LifeboatError('a restore point is made on behalf of a workflow run, and this activity was called outside one; start it with `lifeboat restore-point`.', 'NO_WORKFLOW_RUN');
      const target = findDatabaseTarget(config, request.target);
      if (target.engine !== 'pgbackrest') refuse(`${target.name} is an ${target.engine} target, which restores to a time or "latest" only: there are no named restore points to make.`);
      const problem = restorePointNameProblem(request.name);
      if (problem) refuse(`${problem}.`);
      if (!request.requestedBy?.trim()) refuse('a restore point needs the identity of who makes it (--as or LIFEBOAT_USER).');
      if (!request.reason?.trim()) refuse('a restore point needs a reason, for the record (--reason).');
      if (request.reason.length > MAX_REASON_CHARS) refuse(`the reason is ${request.reason.length} characters long, over the ${MAX_REASON_CHARS} lifeboat keeps on record.`);

      await ports.catalog.query(
        `INSERT INTO restore_points (target, name, state, created_by, reason, workflow_id, run_id) VALUES ($1, $2, 'creating', $3, $4, $5, $6) ON CONFLICT (target, name) DO NOTHING`,
        [target.name, request.name, request.requestedBy, request.reason, run.workflowId, run.runId],
      );
      const [row] = await ports.catalog.query<RestorePointRow>('SELECT * FROM restore_points WHERE target = $1 AND name = $2', [target.name, request.name]);
      if (row.workflow_id !== run.workflowId) {
        refuse(
          `${target.name} already has a restore point named "${request.name}" (${row.lsn ? `LSN ${row.lsn}, ` : ''}made ${(row.created_at ?? row.recorded_at).toISOString()} by ${row.created_by}); names are unique per target, so a restore to it is never ambiguous: choose another name.`,
          'RESTORE_POINT_EXISTS',
        );
      }
      const engine = ports.database(target.name);
      let made: { lsn: string; createdAt: string; walFile: string };
      if (row.state === 'created' && row.lsn) {
        made = { lsn: row.lsn, createdAt: row.created_at!.toISOString(), walFile: '' };
      } else {
        const source = await engine.describeSource();
        if (!source.endpoint) throw new LifeboatError(`The source ${source.instanceId} of ${target.name} has no endpoint (${source.status}), so no restore point can be made on it now; start it and try again.`, 'SOURCE_UNAVAILABLE', false);
        // Claimed once: an attempt that finds the claim taken may follow one that made the point
        // and died before recording it, and a second point of the same name would not be the one
        // PostgreSQL stops at. Refusing keeps every name lifeboat restores to unambiguous.
        const claimed = await ports.catalog.query(
          "UPDATE restore_points SET attempted_at = now() WHERE target = $1 AND name = $2 AND state = 'creating' AND attempted_at IS NULL RETURNING id",
          [target.name, request.name],
        );
        if (!claimed.length) {
          await ports.catalog.query("UPDATE restore_points SET state = 'uncertain' WHERE target = $1 AND name = $2 AND state = 'creating'", [target.name, request.name]);
          refuse(
            `an earlier attempt to make the restore point "${request.name}" on ${target.name} stopped before its LSN was recorded, so it may exist without lifeboat knowing where; a second point of the same name would be ambiguous, so this name is set aside: make the point again under another name.`,
            'RESTORE_POINT_UNCERTAIN',
          );
        }
        try {
          made = await createRestorePointOn(
            { host: source.endpoint.host, port: source.endpoint.port, database: target.database, user: target.user, password: target.password ? resolveSecret(target.password) : undefined, tls: pgTlsOf(target) },
            request.name,
          );
        } catch (err) {
          // Nothing was made: the next attempt may claim the name again.
          if (err instanceof RestorePointNotMade) await ports.catalog.query("UPDATE restore_points SET attempted_at = NULL WHERE target = $1 AND name = $2 AND state = 'creating'", [target.name, request.name]);
          throw err;
        }
        await ports.catalog.query("UPDATE restore_points SET lsn = $3, state = 'created', created_at = $4 WHERE target = $1 AND name = $2", [target.name, request.name, made.lsn, made.createdAt]);
      }

      // Restorable once the repository holds the WAL up to the point: wait for that, a bounded time.
      const waitMs = request.archiveWaitMs ?? 120000;
      const deadline = Date.now() + waitMs;
      let latest: string | undefined;
      const archived = await withHeartbeats(
        () => ({ restorePoint: request.name, lsn: made.lsn, archivedUpTo: latest ?? 'unknown' }),
        async () => {
          for (;;) {
            latest = (await engine.restoreWindow('primary').catch(() => undefined))?.latestLsn;
            if (latest && lsnValue(latest) >= lsnValue(made.lsn)) return true;
            if (Date.now() >= deadline) return false;
            await Context.current().sleep(1000);
          }
        },
      );
      return {
        target: target.name,
        name: request.name,
        lsn: made.lsn,
        createdAt: made.createdAt,
        createdBy: request.requestedBy,
        walFile: made.walFile,
        archived,
        detail: archived
          ? `restore point "${request.name}" is at LSN ${made.lsn} on ${target.name} and archived: restore to it with --to name:${request.name}.`
          : `restore point "${request.name}" is at LSN ${made.lsn} on ${target.name}, but its WAL${made.walFile ? ` (${made.walFile})` : ''} had not reached the repository after ${Math.round(waitMs / 1000)} s: check WAL archiving (lifeboat preflight); a restore to it is refused until it arrives.`,
      };
    },
  };
}
