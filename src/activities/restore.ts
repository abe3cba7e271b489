/**
 * Activities of point-in-time restore: validate before any side effect, restore into a NEW
 * instance, wait for it, verify it, cut DNS over, prove traffic lands there, record the report.
 */
import { Context } from '@temporalio/activity';
import { findDatabaseTarget, objectivesFor, resolveSecret } from '../config';
import { MAX_INCIDENT_ID_CHARS, MAX_REASON_CHARS } from '../domain/approval';
import { LifeboatError } from '../domain/errors';
import { InstanceDescription } from '../domain/ports';
import { PitrRestoreInput, PitrRestoreReport, ValidatedRestore } from '../domain/restore';
import { checkInsideWindow, parseRestorePoint } from '../domain/restore-point';
import { VerificationSummary } from '../domain/verification';
import { verifyDatabase } from '../engines/verifier';
import { withHeartbeats } from './heartbeat';
import { Ports } from './ports';
import { newPgClient } from '../engines/pg-client';

/** A new instance's name, derived from the workflow id so a retried activity adopts its own work. */
export function destinationFor(workflowId: string): string {
  const cleaned = workflowId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  const name = /^[a-z]/.test(cleaned) ? cleaned : `r-${cleaned}`;
  return name.slice(0, 60).replace(/-$/, '');
}

function refuse(message: string, code = 'INVALID_RESTORE_REQUEST'): never {
  throw new LifeboatError(message, code, true);
}

export function restoreActivities(ports: Ports) {
  const { config } = ports;

  const databaseEndpoint = (targetName: string, endpoint: { host: string; port: number }) => {
    const target = findDatabaseTarget(config, targetName);
    const database = target.engine === 'pgbackrest' ? target.database : target.database ?? 'postgres';
    return { host: endpoint.host, port: endpoint.port, database, user: target.user, password: target.password ? resolveSecret(target.password) : undefined };
  };

  /** Who answers at an endpoint: the server's start time and port tell two instances apart even when they share a system id. */
  const fingerprint = async (conn: { host: string; port: number; database: string; user: string; password?: string }) => {
    const client = newPgClient({ ...conn, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      const row = (await client.query<{ started: string; port: string }>("SELECT pg_postmaster_start_time()::text AS started, current_setting('port') AS port")).rows[0];
      return `${row.started}@${row.port}`;
    } finally {
      await client.end();
    }
  };

  return {
    /** Every check that must pass before anything is created; each refusal is one sentence. */
    async validateRestore(input: PitrRestoreInput, workflowId: string): Promise<ValidatedRestore> {
      const target = findDatabaseTarget(config, input.target);
      if (!input.requestedBy?.trim()) refuse('a restore needs the identity of who asks for it (--as or LIFEBOAT_USER).');
      if (!input.reason?.trim()) refuse('a restore needs a reason, for the record (--reason).');
      if (input.reason.length > MAX_REASON_CHARS) refuse(`the reason is ${input.reason.length} characters long, over the ${MAX_REASON_CHARS} lifeboat keeps on record: say it in a paragraph and link the details.`);
      if (input.incidentId && input.incidentId.length > MAX_INCIDENT_ID_CHARS) refuse(`the incident id is ${input.incidentId.length} characters long, over ${MAX_INCIDENT_ID_CHARS}: give the ticket id, not its text.`);
      const parsed = parseRestorePoint(input.restorePoint, target.engine);
      if (!parsed.ok) refuse(`${parsed.reason}.`, 'INVALID_RESTORE_POINT');
      const engine = ports.database(target.name);
      const window = await engine.restoreWindow(input.fromRegion);
      const inside = checkInsideWindow(parsed.value, window, new Date());
      if (!inside.ok) refuse(`${inside.reason}.`, 'OUTSIDE_RESTORE_WINDOW');

      const destinationId = input.destination ?? destinationFor(workflowId);
      let source: InstanceDescription;
      try {
        source = await engine.describeSource();
      } catch (err) {
        // Restoring a lost primary is the point: an unreachable source is noted, not fatal.
        source = { instanceId: target.name, status: `unreachable: ${(err as Error).message}`, createdByLifeboat: false };
      }
      if (destinationId === target.name || destinationId === source.instanceId) {
        refuse(`the destination "${destinationId}" is the source itself; lifeboat restores only into a new instance: choose another --destination.`, 'DESTINATION_IS_SOURCE');
      }
      const existing = await engine.describeInstance(destinationId);
      if (existing && !existing.createdByLifeboat) {
        refuse(`an instance named "${destinationId}" already exists and lifeboat did not create it; restoring there could overwrite someone's data: choose another --destination.`, 'DESTINATION_EXISTS');
      }
      if (existing?.endpoint && source.endpoint && existing.endpoint.host === source.endpoint.host && existing.endpoint.port === source.endpoint.port) {
        refuse(`the destination "${destinationId}" answers at the source's address ${source.endpoint.host}:${source.endpoint.port}: choose another --destination.`, 'DESTINATION_IS_SOURCE');
      }

      const t = input.timings ?? {};
      return {
        target: target.name,
        environment: target.environment,
        engine: target.engine,
        point: parsed.value,
        pointTime: parsed.value.kind === 'time' ? parsed.value.at : parsed.value.kind === 'latest' ? window.latest : undefined,
        window,
        destinationId,
        source,
        rtoTargetSeconds: objectivesFor(config, target).rto,
        timings: {
          remindAfterMs: t.remindAfterMs ?? config.approvals.remindAfter * 1000,
          abortAfterMs: t.abortAfterMs ?? config.approvals.abortAfter * 1000,
          pollIntervalMs: t.pollIntervalMs ?? 5000,
        },
        cutover: target.cutover ? { dnsName: target.cutover.dnsName, router: target.cutover.router, ttlSeconds: target.cutover.ttl } : undefined,
      };
    },

    /** Restores into the new instance and starts it; a retry adopts the instance it already made. */
    async restoreIntoNewInstance(v: ValidatedRestore, fromRegion?: 'primary' | 'dr'): Promise<InstanceDescription> {
      const engine = ports.database(v.target);
      const started = Date.now();
      return withHeartbeats(
        () => ({ phase: 'restoring', destination: v.destinationId, seconds: Math.round((Date.now() - started) / 1000) }),
        () => engine.startRestore({ destinationId: v.destinationId, point: v.point, fromRegion }),
      );
    },

    /** Polls until the instance is available (WAL replayed and promoted), heartbeating its state. */
    async waitUntilAvailable(targetName: string, instanceId: string, pollIntervalMs: number): Promise<InstanceDescription> {
      const engine = ports.database(targetName);
      const ctx = Context.current();
      for (;;) {
        const instance = await engine.describeInstance(instanceId);
        if (!instance) throw new LifeboatError(`the restored instance ${instanceId} disappeared while starting: check the engine's logs.`, 'INSTANCE_LOST', false);
        ctx.heartbeat({ instanceId, status: instance.status });
        if (instance.status === 'available') return instance;
        if (/fail|incompatible|error/i.test(instance.status)) {
          throw new LifeboatError(`the restored instance ${instanceId} failed to start (${instance.status}): see its log.`, 'RESTORE_FAILED', true);
        }
        await ctx.sleep(pollIntervalMs);
      }
    },

    async verifyRestoredInstance(targetName: string, instance: InstanceDescription): Promise<VerificationSummary> {
      const target = findDatabaseTarget(config, targetName);
      if (!instance.endpoint) throw new LifeboatError(`the restored instance ${instance.instanceId} has no endpoint to verify.`, 'NO_ENDPOINT', false);
      let step = 'connecting';
      return withHeartbeats(
        () => ({ verifying: step }),
        () => verifyDatabase(databaseEndpoint(targetName, instance.endpoint!), { criticalTables: target.criticalTables, smokeQueries: target.smokeQueries }, (s) => (step = s)),
      );
    },

    /** Removes an instance this workflow created. Missing is success, the source is refused by the engine. */
    async removeRestoredInstance(targetName: string, instanceId: string): Promise<string> {
      await withHeartbeats(() => ({ removing: instanceId }), () => ports.database(targetName).deleteInstance(instanceId));
      return `removed restored instance ${instanceId}`;
    },

    async pointDnsAt(cutover: { dnsName: string; router: string; ttlSeconds: number }, endpoint: { host: string; port: number }): Promise<{ changeId: string }> {
      return ports.router(cutover.router).pointAt(cutover.dnsName, endpoint, cutover.ttlSeconds);
    },

    /** Resolves the name as a client would and connects through it: it must reach the restored instance. */
    async verifyThroughDns(targetName: string, cutover: { dnsName: string; router: string }, endpoint: { host: string; port: number }): Promise<{ ok: boolean; detail: string }> {
      const served = await ports.router(cutover.router).currentTarget(cutover.dnsName);
      if (!served) return { ok: false, detail: `${cutover.dnsName} does not resolve` };
      const viaDns = { host: served.host, port: served.port ?? endpoint.port };
      const [expected, reached] = await Promise.all([fingerprint(databaseEndpoint(targetName, endpoint)), fingerprint(databaseEndpoint(targetName, viaDns))]);
      return expected === reached
        ? { ok: true, detail: `${cutover.dnsName} -> ${viaDns.host}:${viaDns.port} reaches the restored instance` }
        : { ok: false, detail: `${cutover.dnsName} -> ${viaDns.host}:${viaDns.port} reaches another server than the restored instance` };
    },

    async recordRestoreReport(report: PitrRestoreReport): Promise<void> {
      await ports.catalog.query(
        `INSERT INTO restores (workflow_id, target, outcome, restore_point, destination, requested_by, report) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (workflow_id) DO UPDATE SET outcome = EXCLUDED.outcome, destination = EXCLUDED.destination, report = EXCLUDED.report`,
        [report.workflowId, report.target, report.outcome, report.restorePoint, report.destination?.instanceId ?? null, report.requestedBy, JSON.stringify(report)],
      );
    },
  };
}
