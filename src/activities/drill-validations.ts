/**
 * What a restore drill validates on its restored instance beyond restoring it: the row counts
 * recorded when the backup ended (recorded here too, by the backup workflow), the verifier's
 * integrity checks, each smoke and validation query timed, and the target's application check.
 * Each is its own activity so the workflow shows each validation as it completes.
 */
import { Context } from '@temporalio/activity';
import { DatabaseError } from 'pg';
import { findDatabaseTarget, resolveSecret } from '../config';
import type { DatabaseTarget } from '../config';
import { ApplicationCheckResult, DrillQuery, DrillQueryResult, DrillValidationPlan, outputTail, PreviousQueryTimings, validationVerdict } from '../domain/drill-validation';
import { describeError, LifeboatError } from '../domain/errors';
import type { InstanceDescription } from '../domain/ports';
import type { BackupRowCounts, RecordedRowCounts, VerificationSummary } from '../domain/verification';
import { countRows, DatabaseEndpoint, runReadOnlyQuery, verifyDatabase, VerificationProgress, withDatabase } from '../engines/verifier';
import { run } from '../platform/processes';
import { cancellationByWorkflow, withHeartbeats } from './heartbeat';
import { pgTlsOf, Ports } from './ports';

/** What the application check's output may keep: enough for the last lines, bounded whatever it prints. */
const CHECK_OUTPUT_BYTES = 16 * 1024;
/** The worker's environment variables an application check inherits; nothing else (no credentials of the worker's). */
const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ'];

export function drillValidationActivities(ports: Ports) {
  const { config } = ports;

  /** The verify role's connection to `endpoint` (never the target's own, possibly superuser, `user`). */
  const verifyEndpoint = (target: DatabaseTarget, endpoint: { host: string; port: number }): DatabaseEndpoint => ({
    host: endpoint.host,
    port: endpoint.port,
    database: target.engine === 'pgbackrest' ? target.database : (target.database ?? 'postgres'),
    user: target.verifyUser,
    password: target.verifyPassword ? resolveSecret(target.verifyPassword) : undefined,
    tls: pgTlsOf(target),
  });

  const endpointOf = (instance: InstanceDescription) => {
    if (!instance.endpoint) throw new LifeboatError(`the drill instance ${instance.instanceId} has no endpoint to validate.`, 'NO_ENDPOINT', false);
    return instance.endpoint;
  };

  /** 28000/28P01: the verify role is missing or its password is wrong; retrying cannot fix that. */
  const loginRefused = (err: unknown, target: DatabaseTarget, instanceId: string): never => {
    if (['28000', '28P01'].includes((err as { code?: string }).code ?? '')) {
      throw new LifeboatError(
        `the drill cannot log in to ${instanceId} as ${target.verifyUser} (${(err as Error).message}): create that role on the source (CREATE ROLE ${target.verifyUser} LOGIN; GRANT pg_read_all_data TO ${target.verifyUser}) or set verifyUser in the config.`,
        'VERIFY_ROLE_UNUSABLE',
        true,
      );
    }
    throw err;
  };

  return {
    /**
     * Counts the rows of the target's critical tables on the source right after a backup ended
     * and keeps them with the backup's catalog row, for its drills (see BackupRowCounts: the
     * count carries the position of its snapshot, so a drill compares only when nothing committed
     * in between). The first count is kept: a retry, later than the first, never replaces it.
     * Never fails the backup: a source it cannot read is recorded as the reason there are no counts.
     */
    async recordBackupRowCounts(targetName: string, backupName: string, backupId: string): Promise<string> {
      const target = findDatabaseTarget(config, targetName);
      const workflowId = Context.current().info.workflowExecution?.workflowId;
      if (!workflowId) throw new LifeboatError('row counts are recorded for a backup workflow run, and this activity was called outside one.', 'NO_WORKFLOW_RUN');
      let recorded: RecordedRowCounts;
      try {
        recorded = await withHeartbeats(
          () => ({ counting: target.criticalTables }),
          async (): Promise<RecordedRowCounts> => {
            const source = await ports.database(target.name).describeSource();
            if (!source.endpoint) return { available: false, reason: `the source ${source.instanceId} had no endpoint when backup ${backupId} ended (${source.status})` };
            const counted = await countRows(verifyEndpoint(target, source.endpoint), target.criticalTables);
            const counts: BackupRowCounts = { backupId, ...counted };
            return { available: true, counts };
          },
        );
      } catch (err) {
        const cancelled = cancellationByWorkflow();
        if (cancelled) throw cancelled;
        recorded = { available: false, reason: `the source could not be counted when backup ${backupId} ended (${describeError(err)})` };
      }
      const updated = await ports.catalog.query<{ row_counts: RecordedRowCounts }>(
        `UPDATE backups SET row_counts = coalesce(row_counts, $3::jsonb) WHERE workflow_id = $1 AND engine_backup_id = $2 RETURNING row_counts`,
        [workflowId, backupName, JSON.stringify(recorded)],
      );
      const kept = updated[0]?.row_counts ?? recorded;
      if (!updated.length) return `no catalog row of ${backupName} to keep the counts with`;
      return kept.available ? `counted right after ${backupId}: ${kept.counts.tables.map((t) => `${t.table} ${t.rows}`).join(', ')} (transaction ids below ${kept.counts.xmax})` : `no row counts: ${kept.reason}`;
    },

    /** What the drill of a target validates, from the config, and the previous drill's query timings. */
    async planDrillValidations(targetName: string, drillId: string): Promise<DrillValidationPlan> {
      const target = findDatabaseTarget(config, targetName);
      const queries: DrillQuery[] = [...target.smokeQueries.map((q) => ({ name: q.name, kind: 'smoke' as const })), ...target.drill.validationSql.map((q) => ({ name: q.name, kind: 'validation' as const }))];
      const [row] = await ports.catalog.query<{ workflow_id: string; started_at: Date; query_timings: PreviousQueryTimings['timings'] }>(
        `SELECT workflow_id, started_at, query_timings FROM drills
         WHERE target = $1 AND workflow_id <> $2 AND jsonb_typeof(query_timings) = 'array' AND jsonb_array_length(query_timings) > 0
         ORDER BY started_at DESC LIMIT 1`,
        [target.name, drillId],
      );
      const check = target.drill.applicationCheck;
      return {
        queries,
        ...(check ? { applicationCheck: { name: check.name, timeoutSeconds: check.timeout } } : {}),
        keepForSeconds: target.drill.keepFor,
        ...(row ? { previous: { drillId: row.workflow_id, at: row.started_at.toISOString(), timings: row.query_timings.map((t) => ({ name: t.name, kind: t.kind, ms: t.ms })) } } : {}),
      };
    },

    /**
     * The verifier's checks of the drill instance (role, promotion, critical tables read in full,
     * foreign keys) and its row counts against those recorded when the backup ended. The smoke
     * queries run on their own, timed (runDrillQuery).
     */
    async verifyDrillInstance(targetName: string, instance: InstanceDescription, backupCatalogId: string): Promise<VerificationSummary> {
      const target = findDatabaseTarget(config, targetName);
      const endpoint = endpointOf(instance);
      const [row] = await ports.catalog.query<{ row_counts: RecordedRowCounts | null }>('SELECT row_counts FROM backups WHERE id = $1', [backupCatalogId]);
      const recordedCounts: RecordedRowCounts = row?.row_counts ?? { available: false, reason: 'no row counts were recorded for this backup (lifeboat records them for backups taken from now on)' };
      let progress: VerificationProgress = { step: 'connecting' };
      return withHeartbeats(
        () => ({ verifying: progress }),
        () =>
          verifyDatabase(verifyEndpoint(target, endpoint), { criticalTables: target.criticalTables, smokeQueries: [], recordedCounts }, (p) => (progress = p), {
            signal: Context.current().cancellationSignal,
          }).catch((err: unknown) => loginRefused(err, target, instance.instanceId)),
      );
    },

    /**
     * One smoke or validation query on the drill instance, alone in a read-only transaction as
     * the verify role, timed. A query that fails or does not pass is a result, not an error; a
     * connection that fails is an error (retried).
     */
    async runDrillQuery(targetName: string, instance: InstanceDescription, query: DrillQuery): Promise<DrillQueryResult> {
      const target = findDatabaseTarget(config, targetName);
      const endpoint = endpointOf(instance);
      const sql = (query.kind === 'smoke' ? target.smokeQueries : target.drill.validationSql).find((q) => q.name === query.name)?.sql;
      if (sql === undefined) return { ...query, ok: false, ms: 0, completed: false, detail: `not run: the ${query.kind} query ${query.name} is no longer in the config` };
      return withHeartbeats(
        () => ({ running: `${query.kind} query ${query.name}` }),
        () =>
          withDatabase(verifyEndpoint(target, endpoint), async (client): Promise<DrillQueryResult> => {
            const role = (await client.query<{ name: string; superuser: boolean }>('SELECT current_user AS name, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user')).rows[0];
            if (role.superuser) return { ...query, ok: false, ms: 0, completed: false, detail: `not run: ${role.name} is a superuser, who could write` };
            const started = process.hrtime.bigint();
            try {
              const result = await runReadOnlyQuery(client, sql);
              const verdict = query.kind === 'smoke' ? { ok: result.rows > 0, detail: result.rows > 0 ? `${result.rows} rows` : 'returned no rows' } : validationVerdict(result.rows, result.first);
              return { ...query, ...verdict, ms: result.ms, completed: true };
            } catch (err) {
              // The statement's own failure (syntax, permission, timeout) is the query's result; a lost connection is retried.
              if (!(err instanceof DatabaseError) || /^(08|57P)/.test(err.code ?? '')) throw err;
              return { ...query, ok: false, ms: Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10, completed: false, detail: (err as Error).message };
            }
          }).catch((err: unknown) => loginRefused(err, target, instance.instanceId)),
      );
    },

    /**
     * The target's application check: its command, run on the worker with the drill instance's
     * connection settings (the verify role) in its environment and nothing of the worker's but
     * PATH, HOME, LANG and TZ; its exit status counts, its output is kept bounded with the
     * password removed. A timeout kills it and fails the check.
     */
    async runDrillApplicationCheck(targetName: string, instance: InstanceDescription, drillId: string): Promise<ApplicationCheckResult> {
      const target = findDatabaseTarget(config, targetName);
      const check = target.drill.applicationCheck;
      if (!check) return { name: 'application-check', ok: false, timedOut: false, ms: 0, detail: 'not run: the target has no drill.applicationCheck in the config any more', outputTail: '' };
      const conn = verifyEndpoint(target, endpointOf(instance));
      const env: NodeJS.ProcessEnv = {};
      for (const name of INHERITED_ENV) if (process.env[name] !== undefined) env[name] = process.env[name];
      Object.assign(env, { PGHOST: conn.host, PGPORT: String(conn.port), PGDATABASE: conn.database, PGUSER: conn.user, LIFEBOAT_DRILL_ID: drillId, LIFEBOAT_DRILL_TARGET: target.name });
      if (conn.password) env.PGPASSWORD = conn.password;
      const secrets = conn.password ? [conn.password] : [];
      const [program, ...args] = check.command;
      const timeoutMs = check.timeout * 1000;
      const started = Date.now();
      return withHeartbeats(
        () => ({ running: check.name, seconds: Math.round((Date.now() - started) / 1000) }),
        async (): Promise<ApplicationCheckResult> => {
          try {
            const result = await run(program, args, { env, inheritEnv: 'none', check: false, timeoutMs, maxStdoutBytes: CHECK_OUTPUT_BYTES, maxStderrBytes: CHECK_OUTPUT_BYTES });
            const ms = Date.now() - started;
            const timedOut = ms >= timeoutMs && result.code !== 0;
            const tail = outputTail([result.stdout, result.stderr].filter((s) => s.trim()).join('\n'), secrets);
            const detail = timedOut
              ? `${program} did not finish within ${check.timeout} s and was killed`
              : result.code === 0
                ? `${program} exited with 0 after ${ms} ms`
                : `${program} exited with ${result.code} after ${ms} ms${tail ? `: ${tail.split('\n').at(-1)}` : ''}`;
            return { name: check.name, ok: result.code === 0 && !timedOut, ...(timedOut ? {} : { exitCode: result.code }), timedOut, ms, detail, outputTail: tail };
          } catch (err) {
            const cancelled = cancellationByWorkflow();
            if (cancelled) throw cancelled;
            const notFound = /is not installed/.test((err as Error).message);
            const detail = notFound ? `${program} was not found on the worker (PATH ${env.PATH ?? 'unset'}): give its absolute path in drill.applicationCheck.command` : `${program} could not be started: ${outputTail(describeError(err), secrets)}`;
            return { name: check.name, ok: false, timedOut: false, ms: Date.now() - started, detail, outputTail: '' };
          }
        },
      );
    },
  };
}
