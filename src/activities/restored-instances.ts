/**
 * Activities of restored instances' life cycle: the catalog's rows (recorded when a restore
 * reports, read by the CLI and the workflows), and the removal itself, which runs on the target's
 * host (its agent) because a pgBackRest cluster lives there. Removal acts as the run that made
 * the instance: the engine refuses anything whose own record or tags name another run, anything
 * not lifeboat's, and anything that has taken traffic, whatever the catalog says.
 */
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from 'pg';
import { findDatabaseTarget, findTarget, resolveSecret } from '../config';
import { LifeboatError } from '../domain/errors';
import type { DatabaseEngine, RunIdentity } from '../domain/ports';
import { isSameRun } from '../domain/ownership';
import type { PitrRestoreReport } from '../domain/restore';
import { bucketFingerprintLines, BucketEntry, HostRemoval, InstanceRemovalPlan, keptInstanceOf, removalProblem, RestoredDetails, RestoredInstance, RestoredKind } from '../domain/restored-instances';
import { RESTORE_BUCKET_MARKER } from '../domain/files-restore';
import type { Catalog } from '../catalog/catalog';
import { objectVersionPages } from '../engines/aws-pagination';
import { removeDrillBucket } from '../engines/drill-bucket';
import { newPgClient, PgClientConfig } from '../engines/pg-client';
import { dropSchemaMadeBy } from '../engines/table-copy';
import { withHeartbeats } from './heartbeat';
import { pgTlsOf, Ports } from './ports';

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
  expires_at: Date | null;
  notice_sent_at: Date | null;
  served_traffic: boolean;
  served_traffic_at: Date | null;
  state: 'kept' | 'removed';
  removed_at: Date | null;
  removed_by: string | null;
  removal_detail: string | null;
  kind: RestoredKind;
  details: RestoredDetails | null;
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
    kind: r.kind ?? 'instance',
    details: r.details ?? {},
    target: r.target,
    engine: r.engine,
    madeBy: r.made_by,
    owner: { workflowId: r.owner_workflow_id, runId: r.owner_run_id },
    restorePoint: r.restore_point,
    restoredFrom: r.restored_from,
    createdAt: r.created_at.toISOString(),
    ...(r.expires_at ? { expiresAt: r.expires_at.toISOString() } : {}),
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
        JSON.stringify({ instanceId, by, reason, seconds, from: found.expiresAt, to: updated.expires_at?.toISOString() }),
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
    const target = findTarget(config, instance!.target);
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
      // Only what has an expiry: a DR instance serving traffic has none (expires_at is empty).
      const rows = await ports.catalog.query<Row>(`SELECT * FROM restored_instances WHERE state = 'kept' AND expires_at IS NOT NULL AND expires_at <= now() + make_interval(secs => $1) ORDER BY expires_at, instance_id`, [notice / 1000]);
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

    /** On the target's host: an instance through its engine (removeKeptInstanceWith), a bucket, database or schema by its own marks (removeRestoredThing). */
    async removeKeptInstance(instance: RestoredInstance): Promise<HostRemoval> {
      return withHeartbeats(() => ({ removing: instance.instanceId }), () => removeRestoredThing(ports, instance));
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

/** What one restore left standing, for the catalog (see recordRestoredThing). */
export interface RestoredThing {
  instanceId: string;
  kind: RestoredKind;
  target: string;
  engine: string;
  madeBy: string;
  restorePoint: string;
  restoredFrom: string;
  endpoint?: string;
  details: RestoredDetails;
  /** True for what serves traffic (a DR instance a name leads to): then it has no expiry at all. */
  servedTraffic?: boolean;
  /** The run the thing's own record names, when not this activity's (a failover's child workflow made its DR instance). */
  owner?: RunIdentity;
}

/**
 * Records what a restore (this activity's workflow run) left standing, with the config's lifetime
 * as its expiry (none when it serves traffic). Once: a retry keeps the expiry and any extension,
 * merges details, and only ever adds "took traffic".
 */
export async function recordRestoredThing(ports: Pick<Ports, 'catalog' | 'config'>, thing: RestoredThing): Promise<void> {
  const run = thing.owner ?? currentRun();
  const served = thing.servedTraffic === true;
  // A name used again after its earlier thing was removed: the old row stays on record under a longer id.
  await ports.catalog.query(
    `UPDATE restored_instances SET instance_id = instance_id || ' (removed ' || to_char(removed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ')'
      WHERE instance_id = $1 AND state = 'removed' AND owner_workflow_id <> $2`,
    [thing.instanceId, run.workflowId],
  );
  await ports.catalog.query(
    `INSERT INTO restored_instances (instance_id, kind, target, engine, made_by, owner_workflow_id, owner_run_id, restore_point, restored_from, endpoint, details, expires_at, served_traffic, served_traffic_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, CASE WHEN $13 THEN NULL ELSE now() + make_interval(secs => $12) END, $13, CASE WHEN $13 THEN now() END)
     ON CONFLICT (instance_id) DO UPDATE SET details = restored_instances.details || EXCLUDED.details,
       endpoint = COALESCE(EXCLUDED.endpoint, restored_instances.endpoint),
       served_traffic = restored_instances.served_traffic OR EXCLUDED.served_traffic,
       served_traffic_at = COALESCE(restored_instances.served_traffic_at, EXCLUDED.served_traffic_at),
       expires_at = CASE WHEN EXCLUDED.served_traffic THEN NULL ELSE restored_instances.expires_at END
     WHERE restored_instances.owner_workflow_id = EXCLUDED.owner_workflow_id`,
    [thing.instanceId, thing.kind, thing.target, thing.engine, thing.madeBy, run.workflowId, run.runId, thing.restorePoint, thing.restoredFrom, thing.endpoint ?? null, JSON.stringify(thing.details), ports.config.restoredInstances.lifetime, served],
  );
}

/** The row of a thing its own run removed (compensation after a failure): removed, with what was said. */
export async function recordRestoredThingRemoved(ports: Pick<Ports, 'catalog'>, instanceId: string, detail: string): Promise<void> {
  const run = currentRun();
  await ports.catalog.query(
    `UPDATE restored_instances SET state = 'removed', removed_at = COALESCE(removed_at, now()), removed_by = COALESCE(removed_by, $2), removal_detail = COALESCE(removal_detail, $3)
      WHERE instance_id = $1 AND owner_workflow_id = $4 AND owner_run_id = $5`,
    [instanceId, `its restore ${run.workflowId} (compensation)`, detail, run.workflowId, run.runId],
  );
}

/** Every object version and delete marker of `bucket`, with the count and bytes of its current objects. */
export async function bucketFingerprint(s3: S3Client, bucket: string): Promise<{ fingerprint: string; objects: number; bytes: number }> {
  const entries: BucketEntry[] = [];
  let objects = 0;
  let bytes = 0;
  for await (const page of objectVersionPages(s3, { Bucket: bucket })) {
    for (const v of page.Versions ?? []) {
      entries.push({ key: v.Key!, versionId: v.VersionId, etag: v.ETag, size: v.Size, lastModified: v.LastModified?.toISOString() });
      if (v.IsLatest !== false) {
        objects++;
        bytes += v.Size ?? 0;
      }
    }
    for (const m of page.DeleteMarkers ?? []) entries.push({ key: m.Key!, versionId: m.VersionId, lastModified: m.LastModified?.toISOString(), deleteMarker: true });
  }
  const hash = createHash('sha256');
  for (const l of bucketFingerprintLines(entries)) hash.update(`${l}\n`);
  return { fingerprint: hash.digest('hex'), objects, bytes };
}

/** A database target's server as the target's own user, for a restored database or schema. */
async function serverOf(ports: Pick<Ports, 'config' | 'database'>, targetName: string, database: string): Promise<PgClientConfig> {
  const target = findDatabaseTarget(ports.config, targetName);
  let endpoint: { host: string; port: number };
  if (target.engine === 'pgbackrest') endpoint = { host: target.host, port: target.port };
  else {
    const source = await ports.database(targetName).describeSource();
    if (!source.endpoint) throw new LifeboatError(`The RDS instance of ${targetName} has no endpoint now (${source.status}); lifeboat will retry.`, 'NO_ENDPOINT', false);
    endpoint = source.endpoint;
  }
  return { host: endpoint.host, port: endpoint.port, database, user: target.user, password: target.password ? resolveSecret(target.password) : undefined, tls: pgTlsOf(target) };
}

async function withPg<T>(conn: PgClientConfig, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = newPgClient(conn);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * A restored bucket, removed only when its tags name the run the catalog names AND nothing in it
 * changed since the restore verified it (the fingerprint: every version and delete marker). A
 * write, overwrite or delete since then means something used it as a bucket: it took traffic,
 * and lifeboat never removes it.
 */
export async function removeRestoredBucket(s3: S3Client, instance: Pick<RestoredInstance, 'instanceId' | 'owner' | 'details'>): Promise<HostRemoval> {
  const bucket = instance.details.bucket!;
  const id = instance.instanceId;
  let now: { fingerprint: string; objects: number } | undefined;
  try {
    now = await bucketFingerprint(s3, bucket);
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchBucket') return { outcome: 'already-gone', detail: `${id} was already gone` };
    throw err;
  }
  if (!instance.details.fingerprint) return { outcome: 'refused', detail: `left ${id} untouched: its restore never recorded the bucket's state after verifying it, so lifeboat cannot tell whether it was written to since` };
  if (now.fingerprint !== instance.details.fingerprint) {
    return { outcome: 'refused', servedTraffic: true, detail: `left ${id} untouched: its objects changed since the restore verified them (${now.objects} objects now, ${instance.details.objects ?? '?'} then), so it has taken traffic, and lifeboat never removes such a bucket` };
  }
  try {
    const done = await removeDrillBucket(s3, bucket, instance.owner, RESTORE_BUCKET_MARKER);
    return done.removed ? { outcome: 'removed', detail: `removed ${id}: ${done.detail}` } : { outcome: 'already-gone', detail: done.detail };
  } catch (err) {
    if (err instanceof LifeboatError && err.code === 'DRILL_BUCKET_NOT_OURS') return { outcome: 'refused', detail: `left ${id} untouched (${err.message.replace(/\.$/, '')})` };
    throw err;
  }
}

/**
 * People's and programs' sessions on a database. Autovacuum and other server processes do not
 * count (DROP DATABASE stops them itself), and a session that has just closed is given a few
 * seconds to leave pg_stat_activity: its backend exits a moment after the client sees the close.
 */
async function clientSessionsOn(c: Client, database: string, settleMs = 5000): Promise<number> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const n = Number(
      (await c.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'", [database])).rows[0].n,
    );
    if (n === 0 || Date.now() >= deadline) return n;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A restored database, dropped only when its comment is its run's marker and no session is connected to it (no FORCE). */
export async function removeRestoredDatabase(admin: PgClientConfig, instance: Pick<RestoredInstance, 'instanceId' | 'details'>): Promise<HostRemoval> {
  const { database, marker } = instance.details;
  const id = instance.instanceId;
  return withPg(admin, async (c) => {
    const found = (await c.query<{ comment: string | null }>("SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1", [database])).rows;
    if (!found.length) return { outcome: 'already-gone', detail: `${id} was already gone` } as HostRemoval;
    if (!marker || found[0].comment !== marker) return { outcome: 'refused', detail: `left ${id} untouched: its comment is not the marker of the restore that made it (${marker ?? 'none recorded'})` } as HostRemoval;
    const sessions = await clientSessionsOn(c, database!);
    if (sessions > 0) return { outcome: 'refused', detail: `left ${id} untouched: ${sessions} session(s) are connected to it; lifeboat never drops a database in use` } as HostRemoval;
    try {
      await c.query(`DROP DATABASE ${quoteIdent(database!)}`);
    } catch (err) {
      // 55006: someone connected in between; left for the next run, or for a person.
      if ((err as { code?: string }).code === '55006') return { outcome: 'refused', detail: `left ${id} untouched: ${(err as Error).message}` } as HostRemoval;
      throw err;
    }
    return { outcome: 'removed', detail: `dropped database ${database} (marked ${marker})` } as HostRemoval;
  });
}

/**
 * A restored schema: a table restore's is dropped by dropSchemaMadeBy (its owner comment names the
 * run); a logical restore's only when its comment is the run's marker. Either way only its tables
 * by name, then the schema without CASCADE: whatever anyone added to it or built on it keeps it.
 */
export async function removeRestoredSchema(live: PgClientConfig, instance: Pick<RestoredInstance, 'instanceId' | 'owner' | 'details'>): Promise<HostRemoval> {
  const { schema, marker, tables = [], madeFrom } = instance.details;
  const id = instance.instanceId;
  if (madeFrom === 'table-restore') {
    const said = await dropSchemaMadeBy(live, schema!, tables, instance.owner);
    if (said.startsWith('nothing to drop')) return { outcome: 'already-gone', detail: `${id} was already gone` };
    if (said.startsWith('dropped')) return { outcome: 'removed', detail: `dropped schema ${schema} and its tables ${tables.join(', ')}` };
    return { outcome: 'refused', detail: `${said.replace(/^left/, `left ${id}:`)}` };
  }
  return withPg(live, async (c) => {
    const found = (await c.query<{ comment: string | null }>("SELECT obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace WHERE nspname = $1", [schema])).rows;
    if (!found.length) return { outcome: 'already-gone', detail: `${id} was already gone` } as HostRemoval;
    if (!marker || found[0].comment !== marker) return { outcome: 'refused', detail: `left ${id} untouched: its comment is not the marker of the restore that made it (${marker ?? 'none recorded'})` } as HostRemoval;
    try {
      await c.query('BEGIN');
      if (tables.length) await c.query(`DROP TABLE IF EXISTS ${tables.map((t) => `${quoteIdent(schema!)}.${quoteIdent(t)}`).join(', ')}`);
      await c.query(`DROP SCHEMA ${quoteIdent(schema!)}`);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      if ((err as { code?: string }).code === '2BP01') return { outcome: 'refused', detail: `left ${id} untouched: ${(err as Error).message} (something was added to it or built on it)` } as HostRemoval;
      throw err;
    }
    return { outcome: 'removed', detail: `dropped schema ${schema} and its tables ${tables.join(', ') || '(none)'}` } as HostRemoval;
  });
}

/** Removes one restored thing by its kind, each by its own marks (see the functions above). */
export async function removeRestoredThing(ports: Ports, instance: RestoredInstance): Promise<HostRemoval> {
  switch (instance.kind) {
    case 'bucket':
      return removeRestoredBucket(ports.objectStore(instance.details.store!), instance);
    case 'database':
      return removeRestoredDatabase(await serverOf(ports, instance.target, findDatabaseTarget(ports.config, instance.target).database ?? 'postgres'), instance);
    case 'schema':
      return removeRestoredSchema(await serverOf(ports, instance.target, instance.details.database!), instance);
    default:
      return removeKeptInstanceWith(ports.database(instance.target), instance);
  }
}
