/**
 * Activities of restored instances' life cycle: the catalog's rows (recorded when a restore
 * reports, read by the CLI and the workflows), and the removal itself, which runs on the target's
 * host (its agent) because a pgBackRest cluster lives there. Removal acts as the run that made
 * the instance: the engine refuses anything whose own record or tags name another run, anything
 * not lifeboat's, and anything that has taken traffic, whatever the catalog says.
 */
import { Context } from '@temporalio/activity';
import { findDatabaseTarget } from '../config';
import { LifeboatError } from '../domain/errors';
import type { DatabaseEngine } from '../domain/ports';
import { isSameRun } from '../domain/ownership';
import type { PitrRestoreReport } from '../domain/restore';
import { HostRemoval, InstanceRemovalPlan, keptInstanceOf, removalProblem, RestoredInstance } from '../domain/restored-instances';
import type { Catalog } from '../catalog/catalog';
import { withHeartbeats } from './heartbeat';
import { Ports } from './ports';

/** The catalog's record of what happened to an instance: workflow_events rows of this kind. */
export const RESTORED_INSTANCE_EVENT_KIND = 'restored-instance';

interface Row {
  instance_id: string;
  target: string;
  engine: string;
  made_by: string;
  owner_workflow_id: string;
  owner_run_id: string;
  restore_point: string;
  restored_from: string;
  endpoint: string | null;
  created_at: Date;
  expires_at: Date;
  notice_sent_at: Date | null;
  served_traffic: boolean;
  served_traffic_at: Date | null;
  state: 'kept' | 'removed';
  removed_at: Date | null;
  removed_by: string | null;
  removal_detail: string | null;
}

/** The workflow run an activity works for, as Temporal says. */
function currentRun(): { workflowId: string; runId: string } {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new LifeboatError('this activity records restored instances for a workflow run and must run inside one.', 'NO_WORKFLOW_RUN', true);
  return { workflowId: run.workflowId, runId: run.runId };
}

function fromRow(r: Row): RestoredInstance {
  const iso = (d: Date | null) => (d ? d.toISOString() : undefined);
  const out: RestoredInstance = {
    instanceId: r.instance_id,
    target: r.target,
    engine: r.engine,
    madeBy: r.made_by,
    owner: { workflowId: r.owner_workflow_id, runId: r.owner_run_id },
    restorePoint: r.restore_point,
    restoredFrom: r.restored_from,
    createdAt: r.created_at.toISOString(),
    expiresAt: r.expires_at.toISOString(),
    servedTraffic: r.served_traffic,
    state: r.state,
  };
  if (r.endpoint) out.endpoint = r.endpoint;
  if (r.notice_sent_at) out.noticeSentAt = iso(r.notice_sent_at);
  if (r.served_traffic_at) out.servedTrafficAt = iso(r.served_traffic_at);
  if (r.removed_at) out.removedAt = iso(r.removed_at);
  if (r.removed_by) out.removedBy = r.removed_by;
  if (r.removal_detail) out.removalDetail = r.removal_detail;
  return out;
}

/** Every restored instance the catalog knows, newest first; removed ones only when asked. */
export async function listRestoredInstances(catalog: Pick<Catalog, 'query'>, options: { includeRemoved?: boolean } = {}): Promise<RestoredInstance[]> {
  const rows = await catalog.query<Row>(`SELECT * FROM restored_instances ${options.includeRemoved ? '' : "WHERE state = 'kept'"} ORDER BY created_at DESC, instance_id`);
  return rows.map(fromRow);
}

export async function findRestoredInstance(catalog: Pick<Catalog, 'query'>, instanceId: string): Promise<RestoredInstance | undefined> {
  const rows = await catalog.query<Row>('SELECT * FROM restored_instances WHERE instance_id = $1', [instanceId]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/**
 * Moves the expiry on by `seconds` (from the expiry, or from now when it has passed) and clears
 * the notice, so the new expiry gets one. Refused with one sentence for an unknown or removed id.
 */
export async function extendRestoredInstance(catalog: Pick<Catalog, 'withClient'>, instanceId: string, seconds: number, by: string, reason: string): Promise<RestoredInstance> {
  return catalog.withClient(async (c) => {
    await c.query('BEGIN');
    try {
      const rows = (await c.query<Row>('SELECT * FROM restored_instances WHERE instance_id = $1 FOR UPDATE', [instanceId])).rows;
      const found = rows[0] ? fromRow(rows[0]) : undefined;
      if (!found) throw new LifeboatError(`there is no restored instance "${instanceId}" in the catalog: \`lifeboat instances list\` shows the ids.`, 'INSTANCE_NOT_FOUND');
      if (found.state === 'removed') throw new LifeboatError(`${instanceId} was removed at ${found.removedAt}${found.removedBy ? ` by ${found.removedBy}` : ''}, so there is nothing to extend: restore again for a new instance.`, 'INSTANCE_REMOVED');
      const updated = (
        await c.query<Row>(
          `UPDATE restored_instances SET expires_at = GREATEST(expires_at, now()) + make_interval(secs => $2), notice_sent_at = NULL,
             extensions = extensions || jsonb_build_array(jsonb_build_object('by', $3::text, 'reason', $4::text, 'seconds', $2::int, 'at', now(), 'from', expires_at))
           WHERE instance_id = $1 RETURNING *`,
          [instanceId, seconds, by, reason],
        )
      ).rows[0];
      await c.query('INSERT INTO workflow_events (workflow_id, kind, target, event, details) VALUES ($1, $2, $3, $4, $5)', [
        found.owner.workflowId,
        RESTORED_INSTANCE_EVENT_KIND,
        found.target,
        'extended',
        JSON.stringify({ instanceId, by, reason, seconds, from: found.expiresAt, to: updated.expires_at.toISOString() }),
      ]);
      await c.query('COMMIT');
      return fromRow(updated);
    } catch (err) {
      await c.query('ROLLBACK');
      throw err;
    }
  });
}

/**
 * Removes a kept instance on the host that holds it, as the run the catalog names as its maker.
 * Looked at once more first: gone is success; one that says it took traffic, or whose own record
 * names another run (or none), is refused and left exactly as it is.
 */
export async function removeKeptInstanceWith(engine: Pick<DatabaseEngine, 'describeInstance' | 'deleteInstance'>, instance: Pick<RestoredInstance, 'instanceId' | 'owner'>): Promise<HostRemoval> {
  const id = instance.instanceId;
  const now = await engine.describeInstance(id);
  if (!now) return { outcome: 'already-gone', detail: `${id} was already gone` };
  if (!now.createdByLifeboat || !now.owner) return { outcome: 'refused', detail: `left ${id} untouched: its own record does not show lifeboat made it` };
  if (!isSameRun(now.owner, instance.owner)) {
    return { outcome: 'refused', detail: `left ${id} untouched: its own record names workflow ${now.owner.workflowId} run ${now.owner.runId}, not ${instance.owner.workflowId} run ${instance.owner.runId} as the catalog does` };
  }
  if (now.servedTraffic) return { outcome: 'refused', servedTraffic: true, detail: `left ${id} untouched: it has taken traffic, and lifeboat never removes such an instance` };
  try {
    await engine.deleteInstance(id, instance.owner);
  } catch (err) {
    if (err instanceof LifeboatError && ['NOT_OWNER', 'SERVED_TRAFFIC', 'NOT_MANAGED_BY_LIFEBOAT', 'DELETE_SOURCE_REFUSED'].includes(err.code)) {
      return { outcome: 'refused', ...(err.code === 'SERVED_TRAFFIC' ? { servedTraffic: true } : {}), detail: `left ${id} untouched (${err.message.replace(/\.$/, '')})` };
    }
    throw err;
  }
  return { outcome: 'removed', detail: `removed ${id} (was ${now.status}${now.endpoint ? ` at ${now.endpoint.host}:${now.endpoint.port}` : ''})` };
}

/**
 * The instance a restore report shows is still standing, recorded with its expiry; called when
 * pitrRestore records its report (an activity's work, so no workflow changed). Once: a retry or a
 * later report keeps the expiry and any extension, and only ever adds "took traffic".
 */
export async function recordKeptInstance(ports: Pick<Ports, 'catalog' | 'config'>, report: PitrRestoreReport): Promise<void> {
  const kept = keptInstanceOf(report);
  if (!kept) return;
  const run = currentRun();
  const target = findDatabaseTarget(ports.config, report.target);
  const endpoint = kept.endpoint ? `${kept.endpoint.host}:${kept.endpoint.port}` : null;
  await ports.catalog.query(
    `INSERT INTO restored_instances (instance_id, target, engine, made_by, owner_workflow_id, owner_run_id, restore_point, restored_from, endpoint, expires_at, served_traffic, served_traffic_at)
     VALUES ($1, $2, $3, 'pitrRestore', $4, $5, $6, $7, $8, now() + make_interval(secs => $9), $10, CASE WHEN $10 THEN now() END)
     ON CONFLICT (instance_id) DO UPDATE SET endpoint = COALESCE(EXCLUDED.endpoint, restored_instances.endpoint),
       served_traffic = restored_instances.served_traffic OR EXCLUDED.served_traffic,
       served_traffic_at = COALESCE(restored_instances.served_traffic_at, EXCLUDED.served_traffic_at)`,
    [kept.instanceId, report.target, target.engine, run.workflowId, run.runId, report.restorePoint, `the backups and WAL of ${report.target}`, endpoint, ports.config.restoredInstances.lifetime, kept.servedTraffic],
  );
}

export function restoredInstanceActivities(ports: Ports) {
  const { config } = ports;

  const plan = async (instanceId: string): Promise<InstanceRemovalPlan> => {
    const instance = await findRestoredInstance(ports.catalog, instanceId);
    const problem = removalProblem(instance, instanceId);
    if (problem) throw new LifeboatError(problem, 'INSTANCE_REMOVAL_REFUSED');
    const target = findDatabaseTarget(config, instance!.target);
    const env = config.environments[target.environment];
    return {
      instance: instance!,
      environment: target.environment,
      production: env?.tier === 'production',
      gateTimings: { remindAfterMs: config.approvals.remindAfter * 1000, abortAfterMs: config.approvals.abortAfter * 1000 },
    };
  };

  return {
    /** Kept instances whose notice or removal may be due within `noticeBeforeMs` (the config's noticeBefore by default), with it. */
    async dueRestoredInstances(noticeBeforeMs?: number): Promise<{ noticeBeforeMs: number; instances: RestoredInstance[] }> {
      const notice = noticeBeforeMs ?? config.restoredInstances.noticeBefore * 1000;
      const rows = await ports.catalog.query<Row>(`SELECT * FROM restored_instances WHERE state = 'kept' AND expires_at <= now() + make_interval(secs => $1) ORDER BY expires_at, instance_id`, [notice / 1000]);
      return { noticeBeforeMs: notice, instances: rows.map(fromRow) };
    },

    /** Sent: the instance may be removed at its expiry from the next sweep on (an extension clears it, and a notice for an expiry since moved is not noted). */
    async markExpiryNoticeSent(instanceId: string, expiresAt: string): Promise<void> {
      await ports.catalog.query(`UPDATE restored_instances SET notice_sent_at = now() WHERE instance_id = $1 AND date_trunc('milliseconds', expires_at) = $2::timestamptz AND notice_sent_at IS NULL`, [instanceId, expiresAt]);
    },

    /** The catalog's answer right before a removal: refused (one sentence) when unknown, removed, or it took traffic. */
    async planInstanceRemoval(instanceId: string): Promise<InstanceRemovalPlan> {
      return plan(instanceId);
    },

    /** On the target's host: see removeKeptInstanceWith. */
    async removeKeptInstance(instance: RestoredInstance): Promise<HostRemoval> {
      const engine = ports.database(instance.target);
      return withHeartbeats(() => ({ removing: instance.instanceId }), () => removeKeptInstanceWith(engine, instance));
    },

    /** The outcome on record: removed (with by whom), or found to have taken traffic (never removed from then on). */
    async recordInstanceOutcome(instanceId: string, removal: HostRemoval, by: string): Promise<void> {
      const run = currentRun();
      if (removal.outcome === 'removed' || removal.outcome === 'already-gone') {
        await ports.catalog.query(`UPDATE restored_instances SET state = 'removed', removed_at = COALESCE(removed_at, now()), removed_by = COALESCE(removed_by, $2), removal_detail = COALESCE(removal_detail, $3) WHERE instance_id = $1`, [
          instanceId,
          by,
          removal.detail,
        ]);
      } else if (removal.servedTraffic) {
        await ports.catalog.query(`UPDATE restored_instances SET served_traffic = true, served_traffic_at = COALESCE(served_traffic_at, now()) WHERE instance_id = $1`, [instanceId]);
      }
      await ports.catalog.query(
        `INSERT INTO workflow_events (workflow_id, kind, target, event, details)
         SELECT $1, $2, (SELECT target FROM restored_instances WHERE instance_id = $3), $4, $5::jsonb
         WHERE NOT EXISTS (SELECT 1 FROM workflow_events WHERE workflow_id = $1 AND kind = $2 AND event = $4 AND details->>'instanceId' = $3)`,
        [run.workflowId, RESTORED_INSTANCE_EVENT_KIND, instanceId, removal.outcome, JSON.stringify({ instanceId, by, detail: removal.detail, runId: run.runId })],
      );
    },
  };
}
