/**
 * Activities of the failback (the planned way home after a failover): what the failover left
 * (from the catalog and the instances' own records, never from the workflow's input), the
 * engine's re-protect / fence / final WAL / restore / retire steps recorded in the catalog, the
 * no-lost-transaction proof (every user table of the fenced DR primary against the restored
 * instance: rows and checksums), and the report in the catalog and both evidence buckets.
 */
import { Context } from '@temporalio/activity';
import { findDatabaseTarget, resolveSecret } from '../config';
import { LifeboatError } from '../domain/errors';
import { FailbackDatabase, FailbackReport, FailbackSettings, failbackMarkdown, noLossProof, NoLossProof } from '../domain/failback';
import type { DatabaseEngine, FinalWal, InstanceDescription, Reprotection, ResourceOwner, RunIdentity, SourceFence } from '../domain/ports';
import { captureFacts, withDatabase } from '../engines/verifier';
import { EvidenceReceipt } from '../engines/evidence-store';
import { evidenceStoreFor } from './drills';
import { withHeartbeats } from './heartbeat';
import { pgTlsOf, Ports } from './ports';

function currentRun(): RunIdentity {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new LifeboatError('this activity acts for a failback workflow run and was called outside one; start it from the failback workflow.', 'NO_WORKFLOW_RUN');
  return { workflowId: run.workflowId, runId: run.runId };
}

const endpointText = (e?: { host: string; port?: number }) => (e ? `${e.host}${e.port !== undefined ? `:${e.port}` : ''}` : 'nothing');

/** The failback methods every engine must have before a failback starts; one sentence when it lacks them. */
type FailbackEngine = Required<Pick<DatabaseEngine, 'reprotectInBothRegions' | 'fenceInstance' | 'unfenceInstance' | 'shipFinalWal' | 'restoreForFailback' | 'retireFailedOverInstance' | 'listInstances'>> & DatabaseEngine;

function failbackEngine(ports: Ports, target: string): FailbackEngine {
  const engine = ports.database(target);
  const missing = (['reprotectInBothRegions', 'fenceInstance', 'unfenceInstance', 'shipFinalWal', 'restoreForFailback', 'retireFailedOverInstance', 'listInstances'] as const).filter((m) => typeof engine[m] !== 'function');
  if (missing.length) throw new LifeboatError(`the ${engine.kind} engine of ${target} cannot fail back yet (it lacks ${missing.join(', ')}): fail back by hand: restore the DR primary's newest backup in the primary region, then move the names with \`lifeboat restore --cutover\`.`, 'FAILBACK_UNSUPPORTED');
  return engine as FailbackEngine;
}

/**
 * The catalog's word on a failover a failback would close: it exists, was a real failover that
 * failed over, and no failback of it completed. Shared by the workflow's first activity and the
 * CLI, which refuses before starting anything.
 */
export async function checkFailoverToFailBack(ports: Pick<Ports, 'catalog'>, failoverId: string): Promise<void> {
  const rows = await ports.catalog.query<{ mode: string; outcome: string }>('SELECT mode, outcome FROM failovers WHERE workflow_id = $1', [failoverId]);
  if (!rows.length) throw new LifeboatError(`no failover with the workflow id "${failoverId}" is on record: check the id with \`lifeboat failover status\`.`, 'UNKNOWN_FAILOVER');
  const row = rows[0];
  if (row.mode !== 'failover') throw new LifeboatError(`${failoverId} was a failover drill, which moved no production name: there is nothing to fail back.`, 'NOTHING_TO_FAIL_BACK');
  if (row.outcome !== 'failed-over') throw new LifeboatError(`failover ${failoverId} ended ${row.outcome}, not failed-over, so production never moved to the DR region: there is nothing to fail back.`, 'NOTHING_TO_FAIL_BACK');
  const done = await ports.catalog.query<{ workflow_id: string }>("SELECT workflow_id FROM failbacks WHERE failover_id = $1 AND outcome = 'failed-back'", [failoverId]);
  if (done.length) throw new LifeboatError(`failover ${failoverId} was already failed back by ${done[0].workflow_id}: see \`lifeboat failback status ${done[0].workflow_id}\`.`, 'ALREADY_FAILED_BACK');
}

export function failbackActivities(ports: Ports) {
  const { config } = ports;

  const endpointFor = (targetName: string, endpoint: { host: string; port: number }, as: 'verify' | 'owner') => {
    const t = findDatabaseTarget(config, targetName);
    const database = t.engine === 'pgbackrest' ? t.database : t.database ?? 'postgres';
    const user = as === 'verify' ? t.verifyUser : t.user;
    const secret = as === 'verify' ? t.verifyPassword : t.password;
    return { host: endpoint.host, port: endpoint.port, database, user, password: secret ? resolveSecret(secret) : undefined, tls: pgTlsOf(t) };
  };

  return {
    /**
     * What the failover left, checked before anything happens: it failed over (not a drill, not
     * rejected), no failback of it completed, each kept DR primary exists and was made by that
     * failover's child, and each name the plan moves still points at it. Refuses in one sentence.
     */
    async failbackSettings(failoverId: string, drPrimaries?: Record<string, InstanceDescription | null>): Promise<FailbackSettings> {
      await checkFailoverToFailBack(ports, failoverId);
      const plan = config.failover;
      if (!plan) throw new LifeboatError('the config has no `failover` block, so the failback cannot know which names to move home: restore the recovery plan the failover ran.', 'NO_FAILOVER_PLAN');

      const databases: FailbackDatabase[] = [];
      const environments = new Set<string>();
      for (const step of plan.steps.filter((s) => s.kind === 'restore-database')) {
        const target = findDatabaseTarget(config, step.target!);
        environments.add(target.environment);
        const engine = failbackEngine(ports, target.name);
        const childId = `${failoverId}.${step.name}`;
        // Found on the target's host (findDrPrimary, on its agent) when the workflow asked there; else here.
        const instance = drPrimaries ? drPrimaries[target.name] ?? undefined : (await engine.listInstances()).find((i) => i.owner?.workflowId === childId);
        if (!instance) throw new LifeboatError(`no instance made by ${childId} exists for ${target.name}, so there is no DR primary to fail back from: check \`lifeboat failover status ${failoverId}\`.`, 'NO_DR_PRIMARY');
        if (!instance.servedTraffic) throw new LifeboatError(`${instance.instanceId} (made by ${childId}) never served traffic, so it is not the DR primary: check \`lifeboat failover status ${failoverId}\`.`, 'NO_DR_PRIMARY');
        if (instance.status !== 'available' || !instance.endpoint) {
          throw new LifeboatError(`the DR primary ${instance.instanceId} is ${instance.status}${instance.detail ? ` (${instance.detail.replace(/[.\s]+$/, '')})` : ''}, so it cannot be re-protected: start it, then retry the failback.`, 'DR_PRIMARY_UNAVAILABLE');
        }
        const names: FailbackDatabase['names'] = [];
        for (const move of plan.steps.filter((s) => s.kind === 'move-name' && s.target === target.name)) {
          if (!target.cutover) continue;
          const c = { dnsName: target.cutover.dnsName, router: target.cutover.router, ttlSeconds: target.cutover.ttl };
          const served = await ports.router(c.router).currentTarget(c.dnsName);
          if (!served || served.host !== instance.endpoint.host || (served.port !== undefined && served.port !== instance.endpoint.port)) {
            throw new LifeboatError(
              `${c.dnsName} (step ${move.name}) points at ${endpointText(served)}, not at the DR primary ${instance.instanceId} (${endpointText(instance.endpoint)}), so someone moved it since the failover: point it back or fail back by hand.`,
              'NAME_MOVED_SINCE_FAILOVER',
            );
          }
          names.push(c);
        }
        databases.push({
          target: target.name,
          drInstanceId: instance.instanceId,
          drEndpoint: instance.endpoint,
          failoverRun: { workflowId: instance.owner!.workflowId, runId: instance.owner!.runId },
          names,
        });
      }
      if (!databases.length) throw new LifeboatError(`the recovery plan restores no database, so failover ${failoverId} has nothing to fail back.`, 'NOTHING_TO_FAIL_BACK');
      const production = [...environments].find((e) => config.environments[e]?.tier === 'production');
      return {
        failoverId,
        environment: production ?? [...environments][0],
        databases,
        checks: plan.steps
          .filter((s) => s.kind === 'check-application')
          .map((s) => ({ step: s.name, url: s.url!, ...(s.servesFrom ? { servesFrom: s.servesFrom } : {}), timeoutMs: s.timeout * 1000 })),
        gateTimings: { remindAfterMs: config.approvals.remindAfter * 1000, abortAfterMs: config.approvals.abortAfter * 1000 },
      };
    },

    /**
     * Which database targets the failover restored, and the child run of each that made its DR
     * primary: what the workflow then asks each target's host for. Refuses first, as failbackSettings does.
     */
    async failbackTargets(failoverId: string): Promise<Array<{ target: string; madeBy: string }>> {
      await checkFailoverToFailBack(ports, failoverId);
      const plan = config.failover;
      if (!plan) throw new LifeboatError('the config has no `failover` block, so the failback cannot know which names to move home: restore the recovery plan the failover ran.', 'NO_FAILOVER_PLAN');
      return plan.steps.filter((s) => s.kind === 'restore-database').map((s) => ({ target: findDatabaseTarget(config, s.target!).name, madeBy: `${failoverId}.${s.name}` }));
    },

    /** The instance the failover's child `madeBy` made for `targetName`, from the records of the host that made it, or null. */
    async findDrPrimary(targetName: string, madeBy: string): Promise<InstanceDescription | null> {
      const engine = failbackEngine(ports, targetName);
      return (await engine.listInstances()).find((i) => i.owner?.workflowId === madeBy) ?? null;
    },

    async reprotectDrPrimary(targetName: string, instanceId: string): Promise<Reprotection> {
      const engine = failbackEngine(ports, targetName);
      return withHeartbeats(() => ({ reprotecting: instanceId }), () => engine.reprotectInBothRegions(instanceId, currentRun()));
    },

    /** Fences the DR primary, recorded in source_fences first-come so a rollback can undo exactly it. */
    async fenceDrPrimary(targetName: string, instanceId: string): Promise<SourceFence> {
      const engine = failbackEngine(ports, targetName);
      const { workflowId, runId } = currentRun();
      const fence = await withHeartbeats(() => ({ fencing: instanceId }), () => engine.fenceInstance(instanceId, { workflowId, runId }));
      await ports.catalog.query(
        `INSERT INTO source_fences (workflow_id, run_id, target, instance_id, method, fence, state) VALUES ($1, $2, $3, $4, $5, $6, 'fenced')
         ON CONFLICT (workflow_id, run_id, target) DO NOTHING`,
        [workflowId, runId, targetName, fence.instanceId, fence.method, JSON.stringify(fence)],
      );
      return fence;
    },

    async unfenceDrPrimary(targetName: string, fence: SourceFence): Promise<string> {
      const engine = failbackEngine(ports, targetName);
      const { workflowId, runId } = currentRun();
      const done = await withHeartbeats(() => ({ unfencing: fence.instanceId }), () => engine.unfenceInstance(fence));
      await ports.catalog.query(`UPDATE source_fences SET state = 'unfenced', unfenced_at = now() WHERE workflow_id = $1 AND run_id = $2 AND target = $3`, [workflowId, runId, targetName]);
      return done;
    },

    async shipFinalWal(targetName: string, instanceId: string): Promise<FinalWal> {
      const engine = failbackEngine(ports, targetName);
      return withHeartbeats(() => ({ shipping: instanceId }), () => engine.shipFinalWal(instanceId));
    },

    /** A NEW instance in the primary region, named from this run, up to the final WAL; adopts its own on retry. */
    async restoreInPrimaryRegion(targetName: string, destinationId: string, finalWal: FinalWal, reprotection: Reprotection): Promise<InstanceDescription> {
      const engine = failbackEngine(ports, targetName);
      const run = currentRun();
      const owner: ResourceOwner = { ...run, restorePoint: finalWal.lsn ? `lsn:${finalWal.lsn}` : `final snapshot of ${finalWal.instanceId}`, createdAt: new Date().toISOString() };
      return withHeartbeats(() => ({ restoring: destinationId }), () => engine.restoreForFailback({ destinationId, owner, finalWal, reprotection }));
    },

    /**
     * The no-lost-transaction proof: every user table of the fenced DR primary against the
     * restored instance, row counts and checksums, read as the verify role. Every table, not only
     * the critical ones: the application's own counters (the sample app's app_writes) are in it.
     */
    async proveNoLostTransactions(targetName: string, drEndpoint: { host: string; port: number }, restoredEndpoint: { host: string; port: number }): Promise<NoLossProof> {
      if (ports.database(targetName).kind === 'rds') {
        // The fence isolates an RDS DR primary (security groups admitting no client), so nothing can read it to compare;
        // what holds instead is the order: the restore is from the final snapshot, taken after the fence and its reboot.
        return {
          tables: [],
          ok: true,
          basis: 'final-snapshot',
          detail: 'not compared table by table (the fenced RDS instance admits no client): restored from the final snapshot taken after the fence, which holds every transaction committed before it',
        };
      }
      return withHeartbeats(
        () => ({ proving: targetName }),
        async () => {
          const tables = await withDatabase(endpointFor(targetName, drEndpoint, 'verify'), async (c) =>
            (
              await c.query<{ t: string }>(
                `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`,
              )
            ).rows.map((r) => r.t),
          );
          const signal = Context.current().cancellationSignal;
          const [dr, restored] = await Promise.all([captureFacts(endpointFor(targetName, drEndpoint, 'verify'), tables, { signal }), captureFacts(endpointFor(targetName, restoredEndpoint, 'verify'), tables, { signal })]);
          const byTable = new Map(restored.tables.map((t) => [t.table, t]));
          const differing = dr.tables.filter((t) => byTable.get(t.table)?.checksum !== t.checksum).map((t) => t.table);
          return noLossProof(
            dr.tables.map((t) => ({ table: t.table, drPrimaryRows: t.rows, restoredRows: byTable.get(t.table)?.rows ?? -1 })),
            differing.length ? { ok: false, failed: `checksums differ for ${differing.join(', ')}` } : { ok: true },
          );
        },
      );
    },

    /** Removes the DR primary the failover made (its recorded owner must be that failover's child run). */
    async retireDrPrimary(targetName: string, instanceId: string, failoverRun: RunIdentity): Promise<string> {
      const engine = failbackEngine(ports, targetName);
      return withHeartbeats(() => ({ retiring: instanceId }), () => engine.retireFailedOverInstance(instanceId, failoverRun, currentRun()));
    },

    /** The report in the catalog (one row per failback) and as write-once evidence in every evidence bucket. */
    async recordFailbackReport(report: FailbackReport): Promise<EvidenceReceipt[]> {
      const { runId } = currentRun();
      await ports.catalog.query(
        `INSERT INTO failbacks (workflow_id, run_id, failover_id, outcome, requested_by, reason, write_outage_seconds, started_at, finished_at, report)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (workflow_id) DO UPDATE SET run_id = EXCLUDED.run_id, outcome = EXCLUDED.outcome, write_outage_seconds = EXCLUDED.write_outage_seconds, finished_at = EXCLUDED.finished_at, report = EXCLUDED.report`,
        [report.workflowId, runId, report.failoverId, report.outcome, report.requestedBy, report.reason, report.writeOutageSeconds ?? null, report.startedAt, report.finishedAt, JSON.stringify(report)],
      );
      const store = evidenceStoreFor(config, ports);
      const base = `${config.evidence.prefix}failbacks/${report.workflowId}/report`;
      const evidence = [
        await store.put(`${base}.json`, Buffer.from(JSON.stringify(report, null, 2)), 'application/json'),
        await store.put(`${base}.md`, Buffer.from(failbackMarkdown(report)), 'text/markdown; charset=utf-8'),
      ];
      await ports.catalog.query('UPDATE failbacks SET evidence = $2 WHERE workflow_id = $1', [report.workflowId, JSON.stringify(evidence)]);
      return evidence;
    },
  };
}
