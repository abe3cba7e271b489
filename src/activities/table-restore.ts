/**
 * Activities of the table-level restore: check the tables and the new schema against the live
 * database before anything exists, copy the tables from the temporary restored instance into the
 * new schema, fingerprint both sides, drop the schema in compensation (only this run's), record
 * the report. The temporary instance itself is made and removed by the restore activities.
 */
import { Context } from '@temporalio/activity';
import { findDatabaseTarget, resolveSecret } from '../config';
import { FailureType, LifeboatError } from '../domain/errors';
import { restorePointLabel } from '../domain/ownership';
import { InstanceDescription } from '../domain/ports';
import { ValidatedRestore } from '../domain/restore';
import { intoSchemaProblem, planTableCopies, TableCheck, TableCopyPlan, TableCopyResult, TableRestoreInput, TableRestoreReport } from '../domain/table-restore';
import { copyTablesIntoNewSchema, CopyProgress, dropSchemaMadeBy, fingerprintTable, inspectLiveTables } from '../engines/table-copy';
import { recordRestoredThing } from './restored-instances';
import { restoredThingId } from '../domain/restored-instances';
import { withHeartbeats } from './heartbeat';
import { pgTlsOf, Ports } from './ports';

function runOf(): { workflowId: string; runId: string } {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new LifeboatError('this activity changes the live database only on behalf of a workflow run, and it was called outside one; start it from a workflow.', 'NO_WORKFLOW_RUN', true);
  return { workflowId: run.workflowId, runId: run.runId };
}

const refuse = (message: string, code: FailureType = 'INVALID_RESTORE_REQUEST'): never => {
  throw new LifeboatError(message, code, true);
};

export function tableRestoreActivities(ports: Ports) {
  const { config } = ports;

  /** The target's own role (it creates the schema), at an endpoint: the live source or the restored instance. */
  const connectionTo = (targetName: string, endpoint: { host: string; port: number }) => {
    const target = findDatabaseTarget(config, targetName);
    const database = target.engine === 'pgbackrest' ? target.database : target.database ?? 'postgres';
    return { host: endpoint.host, port: endpoint.port, database, user: target.user, password: target.password ? resolveSecret(target.password) : undefined, tls: pgTlsOf(target) };
  };

  /** The live database: where the tables are now and where the new schema goes. */
  const live = async (targetName: string) => {
    const source = await ports.database(targetName).describeSource();
    if (!source.endpoint || source.status === 'stopped') {
      refuse(`the live database of ${targetName} does not answer (${source.status}); a table restore copies into it: restore the whole database with \`lifeboat restore ${targetName} --to <time>\` instead.`, 'LIVE_DATABASE_UNREACHABLE');
    }
    return connectionTo(targetName, source.endpoint!);
  };

  return {
    /**
     * Checks the tables exist in the live database and the schema does not, before anything is
     * created; each refusal is one sentence. Returns the plan with the live tables' row counts for the gate.
     */
    async validateTableRestore(input: Pick<TableRestoreInput, 'target' | 'tables' | 'intoSchema'>): Promise<TableCopyPlan[]> {
      return withHeartbeats(
        () => ({ validatingTables: input.tables }),
        async () => {
          const badSchema = intoSchemaProblem(input.intoSchema);
          if (badSchema) refuse(badSchema);
          const planned = planTableCopies(input.tables, input.intoSchema);
          if (!planned.ok) return refuse(planned.reason);
          let facts: Awaited<ReturnType<typeof inspectLiveTables>>;
          const conn = await live(input.target);
          try {
            facts = await inspectLiveTables(conn, planned.plan, input.intoSchema);
          } catch (err) {
            return refuse(`the live database of ${input.target} could not be read to check the tables (${(err as Error).message}); a table restore copies into it, so it must answer.`, 'LIVE_DATABASE_UNREACHABLE');
          }
          for (const p of planned.plan) {
            const kind = facts.kinds[p.source];
            if (kind === 'missing') refuse(`the table ${p.source} does not exist in the database of ${input.target}: check the name (\\dt ${p.sourceSchema}.*), or, for a dropped table, restore the whole database with \`lifeboat restore ${input.target} --to <time>\`.`, 'UNKNOWN_TABLE');
            if (kind !== 'table') refuse(`${p.source} is ${kind}, not a table: a table restore copies tables only.`, 'UNKNOWN_TABLE');
          }
          if (facts.schemaExists) refuse(`the schema ${input.intoSchema} already exists in the database of ${input.target}; a table restore creates a NEW schema and never writes into an existing one: choose another --into-schema.`, 'SCHEMA_EXISTS');
          return planned.plan.map((p) => ({ ...p, liveRows: facts.liveRows[p.source] }));
        },
      );
    },

    /** Tables from the restored instance into the new schema of the live database, in one transaction (see engines/table-copy). */
    async copyTablesFromRestored(v: ValidatedRestore, instance: InstanceDescription, plan: TableCopyPlan[], intoSchema: string): Promise<TableCopyResult[]> {
      if (!instance.endpoint) throw new LifeboatError(`the restored instance ${instance.instanceId} has no endpoint to copy from.`, 'NO_ENDPOINT', false);
      const ctx = Context.current();
      const owner = { ...runOf(), restorePoint: restorePointLabel(v.point), createdAt: new Date().toISOString() };
      let progress: CopyProgress = { rows: 0, bytes: 0 };
      return withHeartbeats(
        () => ({ copying: progress }),
        async () =>
          copyTablesIntoNewSchema({
            restored: connectionTo(v.target, instance.endpoint!),
            live: await live(v.target),
            plan,
            intoSchema,
            owner,
            signal: ctx.cancellationSignal,
            onProgress: (p) => (progress = p),
          }),
        5000,
      );
    },

    /** Count and checksum of each table on the restored instance and of its copy, computed in SQL on each side, side by side. */
    async checkTableCopies(targetName: string, instance: InstanceDescription, plan: TableCopyPlan[], intoSchema: string): Promise<TableCheck[]> {
      if (!instance.endpoint) throw new LifeboatError(`the restored instance ${instance.instanceId} has no endpoint to check against.`, 'NO_ENDPOINT', false);
      const signal = Context.current().cancellationSignal;
      const restored = connectionTo(targetName, instance.endpoint);
      const liveConn = await live(targetName);
      return withHeartbeats(
        () => ({ checking: plan.map((p) => p.into) }),
        () =>
          Promise.all(
            plan.map(async (p) => {
              const [a, b] = await Promise.all([fingerprintTable(restored, p.sourceSchema, p.table, signal), fingerprintTable(liveConn, intoSchema, p.table, signal)]);
              return { source: p.source, into: p.into, restored: a, copy: b, ok: a.rows === b.rows && a.checksum === b.checksum };
            }),
          ),
      );
    },

    /** Compensation: the new schema goes only if this run made it, with only what this run put in it. */
    async dropRestoredSchema(targetName: string, intoSchema: string, plan: TableCopyPlan[]): Promise<string> {
      const by = runOf();
      return withHeartbeats(() => ({ dropping: intoSchema }), async () => dropSchemaMadeBy(await live(targetName), intoSchema, plan.map((p) => p.table), by));
    },

    async recordTableRestoreReport(report: TableRestoreReport): Promise<void> {
      await ports.catalog.query(
        `INSERT INTO restores (workflow_id, target, outcome, restore_point, destination, requested_by, report) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (workflow_id) DO UPDATE SET outcome = EXCLUDED.outcome, destination = EXCLUDED.destination, report = EXCLUDED.report`,
        [report.workflowId, report.target, report.outcome, report.restorePoint, `schema ${report.intoSchema}`, report.requestedBy, JSON.stringify({ kind: 'table-restore', ...report })],
      );
      // The new schema in the live database gets its life cycle: listed, extendable, removed (its tables, then it) on expiry.
      if (report.outcome === 'restored') {
        const target = findDatabaseTarget(config, report.target);
        const database = target.engine === 'pgbackrest' ? target.database : target.database ?? 'postgres';
        await recordRestoredThing(ports, {
          instanceId: restoredThingId('schema', { target: report.target, database, schema: report.intoSchema }),
          kind: 'schema',
          target: report.target,
          engine: target.engine,
          madeBy: 'tableRestore',
          restorePoint: report.restorePoint,
          restoredFrom: `the backups and WAL of ${report.target}, tables ${report.tables.map((t) => t.source).join(', ')}`,
          details: { database, schema: report.intoSchema, tables: report.tables.map((t) => t.table), madeFrom: 'table-restore' },
        });
      }
    },
  };
}

