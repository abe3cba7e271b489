/**
 * Activities of point-in-time restore: validate before any side effect, restore into a NEW
 * instance, wait for it, verify it, cut DNS over, prove traffic lands there, record the report.
 */
import { Context } from '@temporalio/activity';
import { findDatabaseTarget, objectivesFor, resolveSecret } from '../config';
import { MAX_INCIDENT_ID_CHARS, MAX_REASON_CHARS } from '../domain/approval';
import { FailureType, LifeboatError } from '../domain/errors';
import { describeOwner, destinationNameProblem, restorePointLabel } from '../domain/ownership';
import { DnsSnapshot, InstanceDescription, NewPrimaryProtection, ResourceOwner, RunIdentity, SourceFence } from '../domain/ports';
import { PitrRestoreInput, PitrRestoreReport, TrafficChange, ValidatedRestore } from '../domain/restore';
import { checkInsideWindow, checkNamedPoint, parseRestorePoint } from '../domain/restore-point';
import { SourceFacts, VerificationSummary } from '../domain/verification';
import { captureFacts, verifyDatabase, VerificationProgress } from '../engines/verifier';
import { withHeartbeats } from './heartbeat';
import { recordKeptInstance } from './restored-instances';
import { findRecordedRestorePoint } from './restore-points';
import { pgTlsOf, Ports } from './ports';
import { newPgClient } from '../engines/pg-client';
import type { PgTls } from '../engines/pg-tls';

/** A new instance's name, derived from the workflow id so a retried activity adopts its own work. */
export function destinationFor(workflowId: string): string {
  const cleaned = workflowId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  const name = /^[a-z]/.test(cleaned) ? cleaned : `r-${cleaned}`;
  return name.slice(0, 60).replace(/-$/, '');
}

/** The workflow run this activity works for, as Temporal says (not as an input claims). */
function currentRun(): RunIdentity {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new LifeboatError('this activity creates and removes instances only on behalf of a workflow run, and it was called outside one; start it from a workflow.', 'NO_WORKFLOW_RUN');
  return { workflowId: run.workflowId, runId: run.runId };
}

function refuse(message: string, code: FailureType = 'INVALID_RESTORE_REQUEST'): never {
  throw new LifeboatError(message, code, true);
}

export function restoreActivities(ports: Ports) {
  const { config } = ports;

  const databaseEndpoint = (targetName: string, endpoint: { host: string; port: number }) => {
    const target = findDatabaseTarget(config, targetName);
    const database = target.engine === 'pgbackrest' ? target.database : target.database ?? 'postgres';
    return { host: endpoint.host, port: endpoint.port, database, user: target.user, password: target.password ? resolveSecret(target.password) : undefined, tls: pgTlsOf(target) };
  };

  /** Verification reads as its own role, never as the target's (possibly superuser) `user`. */
  const verifyEndpoint = (targetName: string, endpoint: { host: string; port: number }) => {
    const target = findDatabaseTarget(config, targetName);
    return { ...databaseEndpoint(targetName, endpoint), user: target.verifyUser, password: target.verifyPassword ? resolveSecret(target.verifyPassword) : undefined };
  };

  /** Who answers at an endpoint: the server's start time and port tell two instances apart even when they share a system id. */
  const fingerprint = async (conn: { host: string; port: number; database: string; user: string; password?: string; tls?: PgTls }) => {
    const client = newPgClient({ ...conn, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      const row = (await client.query<{ started: string; port: string }>("SELECT pg_postmaster_start_time()::text AS started, current_setting('port') AS port")).rows[0];
      return `${row.started}@${row.port}`;
    } finally {
      await client.end();
    }
  };

  /** The workflow run an activity works for: owner of every change it records. */
  const owner = () => {
    const run = Context.current().info.workflowExecution;
    if (!run) throw new LifeboatError('this activity records changes for a workflow run and must run inside one.', 'NO_WORKFLOW_RUN', true);
    return { workflowId: run.workflowId, runId: run.runId };
  };

  interface TrafficRow {
    router: string;
    name: string;
    previous_value: DnsSnapshot;
    new_value: TrafficChange['next'];
    repair_command: string;
    recorded_at: Date;
  }
  const trafficChangeOf = (row: TrafficRow): TrafficChange => ({
    router: row.router,
    name: row.name,
    previous: row.previous_value,
    next: row.new_value,
    repairCommand: row.repair_command,
    recordedAt: row.recorded_at.toISOString(),
  });
  const setTrafficState = async (change: TrafficChange, state: 'applied' | 'rolled-back' | 'rollback-failed', detail?: string) => {
    const { workflowId, runId } = owner();
    const stamp = state === 'applied' ? 'applied_at = now(),' : state === 'rolled-back' ? 'rolled_back_at = now(),' : '';
    await ports.catalog.query(`UPDATE traffic_changes SET ${stamp} state = $4, detail = $5 WHERE workflow_id = $1 AND run_id = $2 AND name = $3`, [workflowId, runId, change.name, state, detail ?? null]);
  };
  const describeEndpoint = (e?: { host: string; port?: number }) => (e ? `${e.host}${e.port !== undefined ? `:${e.port}` : ''}` : 'nothing');

  return {
    /** Every check that must pass before anything is created; each refusal is one sentence. */
    async validateRestore(input: PitrRestoreInput, workflowId: string): Promise<ValidatedRestore> {
      return withHeartbeats(
        () => ({ validating: input.target }),
        async () => {
          const target = findDatabaseTarget(config, input.target);
          if (!input.requestedBy?.trim()) refuse('a restore needs the identity of who asks for it (--as or LIFEBOAT_USER).');
          if (!input.reason?.trim()) refuse('a restore needs a reason, for the record (--reason).');
          if (input.reason.length > MAX_REASON_CHARS) refuse(`the reason is ${input.reason.length} characters long, over the ${MAX_REASON_CHARS} lifeboat keeps on record: say it in a paragraph and link the details.`);
          if (input.incidentId && input.incidentId.length > MAX_INCIDENT_ID_CHARS) refuse(`the incident id is ${input.incidentId.length} characters long, over ${MAX_INCIDENT_ID_CHARS}: give the ticket id, not its text.`);
          const parsed = parseRestorePoint(input.restorePoint, target.engine);
          if (!parsed.ok) refuse(`${parsed.reason}.`, 'INVALID_RESTORE_POINT');
          const engine = ports.database(target.name);
          const window = await engine.restoreWindow(input.fromRegion);
          const point = parsed.value;
          const named = point.kind === 'name' ? { record: await findRecordedRestorePoint(ports, target.name, point.name) } : undefined;
          const inside = point.kind === 'name' ? checkNamedPoint(point.name, target.name, named?.record, window, new Date()) : checkInsideWindow(point, window, new Date());
          if (!inside.ok) refuse(`${inside.reason}.`, named && !named.record ? 'UNKNOWN_RESTORE_POINT' : 'OUTSIDE_RESTORE_WINDOW');

          const destinationId = input.destination ?? destinationFor(workflowId);
          const badName = destinationNameProblem(destinationId);
          if (badName) refuse(badName, 'INVALID_DESTINATION');
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
          if (existing?.endpoint && source.endpoint && existing.endpoint.host === source.endpoint.host && existing.endpoint.port === source.endpoint.port) {
            refuse(`the destination "${destinationId}" answers at the source's address ${source.endpoint.host}:${source.endpoint.port}: choose another --destination.`, 'DESTINATION_IS_SOURCE');
          }
          // --destination names a NEW instance: whoever made an existing one (another run, an earlier run of a reused --id, a person), it is left alone.
          if (existing && !existing.createdByLifeboat) {
            refuse(`an instance named "${destinationId}" already exists and lifeboat did not create it; restoring there could overwrite someone's data: choose another --destination.`, 'DESTINATION_EXISTS');
          }
          if (existing) {
            const whose = existing.owner ? describeOwner(existing.owner) : 'an earlier lifeboat restore';
            refuse(`an instance named "${destinationId}" already exists, made by ${whose}; a restore goes into a NEW instance and never reuses one: choose another --destination${input.destination ? '' : ' or another --id'}.`, 'DESTINATION_EXISTS');
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
              ...(t.settleAfterCutoverMs ? { settleAfterCutoverMs: t.settleAfterCutoverMs } : {}),
            },
            // A drill's instance is never put behind the target's production name.
            cutover: target.cutover && input.purpose !== 'drill' ? { dnsName: target.cutover.dnsName, router: target.cutover.router, ttlSeconds: target.cutover.ttl } : undefined,
            ...(input.purpose === 'drill' ? { purpose: input.purpose } : {}),
          };
        },
      );
    },

    /**
     * Restores into the new instance and starts it, recording this workflow run as its owner; a
     * retry adopts only the instance this run already made. `latest` is resolved here, when the
     * restore runs, not at validation (which may be hours earlier, before a gate): the result's
     * `restoredTo` says which point it became.
     */
    async restoreIntoNewInstance(v: ValidatedRestore, fromRegion?: 'primary' | 'dr'): Promise<InstanceDescription> {
      const engine = ports.database(v.target);
      const ctx = Context.current();
      const started = Date.now();
      // From the activity's own context, not from its input: the owner cannot be claimed by passing another run's id.
      const owner: ResourceOwner = { ...currentRun(), restorePoint: restorePointLabel(v.point), createdAt: new Date().toISOString(), ...(v.purpose === 'drill' ? { purpose: v.purpose } : {}) };
      // A retry keeps the point its first attempt resolved (carried in the heartbeat), so the report names the instance's real point.
      const earlier = (ctx.info.heartbeatDetails as { restoredTo?: string } | undefined)?.restoredTo;
      const restoredTo = v.point.kind === 'latest' ? earlier ?? (await engine.restoreWindow(fromRegion)).latest : v.pointTime;
      const instance = await withHeartbeats(
        () => ({ phase: 'restoring', destination: v.destinationId, restoredTo, seconds: Math.round((Date.now() - started) / 1000) }),
        () => engine.startRestore({ destinationId: v.destinationId, point: v.point, fromRegion, owner }),
      );
      return restoredTo ? { ...instance, restoredTo } : instance;
    },

    /**
     * Polls until the instance is available (WAL replayed and promoted), heartbeating its state.
     * Not RDS's waitUntilDBInstanceAvailable: a restore runs for hours and must heartbeat its
     * status on each poll, and the wait serves every engine (a local pgBackRest restore too).
     */
    async waitUntilAvailable(targetName: string, instanceId: string, pollIntervalMs: number): Promise<InstanceDescription> {
      const engine = ports.database(targetName);
      const ctx = Context.current();
      // Beats on a timer too, not only once per poll: a poll interval or a slow describe longer
      // than the heartbeat timeout (15 s, so a crashed worker is noticed fast) must not fail the wait.
      let status = 'unknown';
      return withHeartbeats(() => ({ instanceId, status }), async () => {
        for (;;) {
          const instance = await engine.describeInstance(instanceId);
          if (!instance) throw new LifeboatError(`the restored instance ${instanceId} disappeared while starting: check the engine's logs.`, 'INSTANCE_LOST', false);
          status = instance.status;
          ctx.heartbeat({ instanceId, status: instance.status });
          if (instance.status === 'available') return instance;
          if (/fail|incompatible|error/i.test(instance.status)) {
            // The engine's reason goes into the failure: the instance (and its log) is removed afterwards, the report stays.
            const reason = instance.detail ? `: ${instance.detail.replace(/[.\s]+$/, '')}` : '; see its log';
            throw new LifeboatError(`the restored instance ${instanceId} failed to start (${instance.status})${reason}.`, 'RESTORE_FAILED', true);
          }
          // Stopped with no restore process left: nothing will start it, and retrying this wait reads the same state.
          if (instance.status === 'stopped') {
            const reason = (instance.detail ?? 'the engine gives no reason').replace(/[.\s]+$/, '');
            throw new LifeboatError(
              `The restored instance ${instanceId} stopped before it became available: ${reason}; read its log, then delete it and run the restore again.`,
              'RESTORED_INSTANCE_STOPPED',
              true,
            );
          }
          if (engine.awaitInstanceChange) {
            // Woken by the restore's own log (restore done, PostgreSQL up or down), at the latest after the poll interval.
            await engine.awaitInstanceChange(instanceId, pollIntervalMs, ctx.cancellationSignal);
            if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
          } else await ctx.sleep(pollIntervalMs);
        }
      });
    },

    /**
     * The source's critical tables now, in one read-only snapshot, as the verify role: what a
     * restore to `latest` must hold when nothing is written meanwhile (verification decides
     * whether that held). Never fails: an unreachable source is the usual case in a disaster.
     */
    async captureSourceFacts(targetName: string): Promise<SourceFacts> {
      const target = findDatabaseTarget(config, targetName);
      let progress: VerificationProgress = { step: 'describing the source' };
      return withHeartbeats(
        () => ({ sourceFacts: progress }),
        async (): Promise<SourceFacts> => {
          try {
            const source = await ports.database(target.name).describeSource();
            if (!source.endpoint) return { available: false, reason: `the source ${source.instanceId} has no endpoint (${source.status})` };
            const facts = await captureFacts(verifyEndpoint(targetName, source.endpoint), target.criticalTables, { onProgress: (p) => (progress = p), signal: Context.current().cancellationSignal });
            return { available: true, facts };
          } catch (err) {
            if (Context.current().cancellationSignal.aborted) throw err;
            return { available: false, reason: `the source could not be read (${(err as Error).message})` };
          }
        },
      );
    },

    /** Checks the restored instance as the verify role; `sourceFacts` (from captureSourceFacts) are compared where they describe the restore point. */
    async verifyRestoredInstance(targetName: string, instance: InstanceDescription, sourceFacts?: SourceFacts): Promise<VerificationSummary> {
      const target = findDatabaseTarget(config, targetName);
      if (!instance.endpoint) throw new LifeboatError(`the restored instance ${instance.instanceId} has no endpoint to verify.`, 'NO_ENDPOINT', false);
      let progress: VerificationProgress = { step: 'connecting' };
      return withHeartbeats(
        () => ({ verifying: progress }),
        () =>
          verifyDatabase(verifyEndpoint(targetName, instance.endpoint!), { criticalTables: target.criticalTables, smokeQueries: target.smokeQueries, expected: sourceFacts }, (p) => (progress = p), {
            signal: Context.current().cancellationSignal,
          }).catch((err: unknown) => {
            // 28000/28P01: the role is missing or its password wrong; retrying cannot fix that.
            if (['28000', '28P01'].includes((err as { code?: string }).code ?? '')) {
              throw new LifeboatError(
                `verification cannot log in to ${instance.instanceId} as ${target.verifyUser} (${(err as Error).message}): create that role on the source (CREATE ROLE ${target.verifyUser} LOGIN; GRANT pg_read_all_data TO ${target.verifyUser}) or set verifyUser in the config.`,
                'VERIFY_ROLE_UNUSABLE',
                true,
              );
            }
            throw err;
          }),
      );
    },

    /**
     * Compensation: removes the instance only when this workflow run created it. Anything else
     * (another run's, a reused --id's earlier run's, one that has served traffic) is left as it is
     * and the returned line says why; missing is success; the engine refuses the source.
     */
    async removeRestoredInstance(targetName: string, instanceId: string): Promise<string> {
      const engine = ports.database(targetName);
      const existed = (await engine.describeInstance(instanceId)) !== undefined;
      try {
        await withHeartbeats(() => ({ removing: instanceId }), () => engine.deleteInstance(instanceId, currentRun()));
      } catch (err) {
        if (err instanceof LifeboatError && ['NOT_OWNER', 'SERVED_TRAFFIC', 'NOT_MANAGED_BY_LIFEBOAT'].includes(err.code)) return `left ${instanceId} untouched (${err.message.replace(/\.$/, '')})`;
        throw err;
      }
      return existed ? `removed restored instance ${instanceId}` : `nothing to remove: ${instanceId} was never created`;
    },

    /** Called right before a cutover points a name at the instance: from then on nothing removes it automatically. */
    async markServedTraffic(targetName: string, instanceId: string): Promise<void> {
      await ports.database(targetName).markServedTraffic(instanceId);
    },

    async pointDnsAt(cutover: { dnsName: string; router: string; ttlSeconds: number }, endpoint: { host: string; port: number }): Promise<{ changeId: string }> {
      return ports.router(cutover.router).pointAt(cutover.dnsName, endpoint, cutover.ttlSeconds);
    },

    /**
     * Reads and records the name's records before the cutover changes them (catalog first, then
     * history through the result). A retry returns what the first attempt recorded, never the new value.
     */
    async recordTrafficBefore(targetName: string, cutover: { dnsName: string; router: string; ttlSeconds: number }, endpoint: { host: string; port: number }): Promise<TrafficChange> {
      return withHeartbeats(
        () => ({ recording: cutover.dnsName }),
        async () => {
          const { workflowId, runId } = owner();
          const select = () =>
            ports.catalog.query<TrafficRow>('SELECT router, name, previous_value, new_value, repair_command, recorded_at FROM traffic_changes WHERE workflow_id = $1 AND run_id = $2 AND name = $3', [workflowId, runId, cutover.dnsName]);
          const known = (await select())[0];
          if (known) return trafficChangeOf(known);
          const router = ports.router(cutover.router);
          const previous = await router.snapshot(cutover.dnsName);
          const next = { host: endpoint.host, port: endpoint.port, ttl: cutover.ttlSeconds };
          await ports.catalog.query(
            `INSERT INTO traffic_changes (workflow_id, run_id, target, router, name, previous_value, new_value, repair_command, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'recorded')
             ON CONFLICT (workflow_id, run_id, name) DO NOTHING`,
            [workflowId, runId, targetName, cutover.router, cutover.dnsName, JSON.stringify(previous), JSON.stringify(next), router.repairCommand(previous, next)],
          );
          return trafficChangeOf((await select())[0]);
        },
      );
    },

    /** Points the name at the restored instance (the previous value is already on record). */
    async moveTraffic(change: TrafficChange): Promise<{ changeId: string }> {
      return withHeartbeats(
        () => ({ moving: change.name }),
        async () => {
          const moved = await ports.router(change.router).pointAt(change.name, { host: change.next.host, port: change.next.port }, change.next.ttl);
          await setTrafficState(change, 'applied', `change ${moved.changeId}`);
          return moved;
        },
      );
    },

    /**
     * Puts the name back as it was recorded, then proves it through DNS: the name resolves to
     * the previous endpoint again, and a connection through it reaches a server that is not the
     * restored instance.
     */
    async rollBackTraffic(targetName: string, change: TrafficChange, restored: { host: string; port: number }): Promise<string> {
      const router = ports.router(change.router);
      const previous = change.previous.endpoint;
      try {
        await router.restoreSnapshot(change.previous);
        const served = await router.currentTarget(change.name);
        if (!previous) {
          if (served) throw new Error(`${change.name} still resolves to ${describeEndpoint(served)} after putting back "no record"`);
        } else {
          if (!served || served.host !== previous.host || (previous.port !== undefined && served.port !== previous.port)) {
            throw new Error(`${change.name} resolves to ${describeEndpoint(served)}, not back to ${describeEndpoint(previous)}`);
          }
          const viaDns = { host: served.host, port: served.port ?? previous.port ?? restored.port };
          const reached = await fingerprint(databaseEndpoint(targetName, viaDns)).catch((err: Error) => {
            throw new Error(`${change.name} -> ${describeEndpoint(viaDns)} does not answer (${err.message})`);
          });
          const restoredPrint = await fingerprint(databaseEndpoint(targetName, restored)).catch(() => undefined);
          if (reached === restoredPrint) throw new Error(`${change.name} -> ${describeEndpoint(viaDns)} still reaches the restored instance`);
        }
        const detail = `${change.name} points back at ${describeEndpoint(previous)} and ${previous ? 'a connection through it reaches the previous server' : 'does not resolve, as before'}`;
        await setTrafficState(change, 'rolled-back', detail);
        return detail;
      } catch (err) {
        const detail = `rolling ${change.name} back to ${describeEndpoint(previous)} failed: ${(err as Error).message}`;
        await setTrafficState(change, 'rollback-failed', detail).catch(() => undefined);
        throw new LifeboatError(`${detail}; lifeboat will retry.`, 'TRAFFIC_ROLLBACK_FAILED', false);
      }
    },

    /** Makes the source unwritable before traffic moves; recorded so a rollback can undo it. */
    async fenceSource(targetName: string): Promise<SourceFence> {
      const { workflowId, runId } = owner();
      const fence = await withHeartbeats(() => ({ fencing: targetName }), () => ports.database(targetName).fenceSource({ workflowId, runId }));
      await ports.catalog.query(
        `INSERT INTO source_fences (workflow_id, run_id, target, instance_id, method, fence, state) VALUES ($1, $2, $3, $4, $5, $6, 'fenced')
         ON CONFLICT (workflow_id, run_id, target) DO NOTHING`,
        [workflowId, runId, targetName, fence.instanceId, fence.method, JSON.stringify(fence)],
      );
      return fence;
    },

    async unfenceSource(targetName: string, fence: SourceFence): Promise<string> {
      const { workflowId, runId } = owner();
      const done = await withHeartbeats(() => ({ unfencing: targetName }), () => ports.database(targetName).unfenceSource(fence));
      await ports.catalog.query(`UPDATE source_fences SET state = 'unfenced', unfenced_at = now() WHERE workflow_id = $1 AND run_id = $2 AND target = $3`, [workflowId, runId, targetName]);
      return done;
    },

    async prepareToServe(targetName: string, instanceId: string): Promise<string> {
      return withHeartbeats(() => ({ preparing: instanceId }), () => ports.database(targetName).prepareToServe(instanceId));
    },

    /** The instance now serves the target: protect it, and record it as the target's source. */
    async protectAsNewPrimary(targetName: string, instanceId: string): Promise<NewPrimaryProtection> {
      const { workflowId, runId } = owner();
      const protection = await withHeartbeats(() => ({ protecting: instanceId }), () => ports.database(targetName).protectAsNewPrimary(instanceId, { workflowId, runId }));
      await ports.catalog.withClient(async (c) => {
        await c.query('BEGIN');
        try {
          await c.query('UPDATE target_sources SET until = now() WHERE target = $1 AND until IS NULL AND NOT (workflow_id = $2 AND run_id = $3)', [targetName, workflowId, runId]);
          await c.query(
            `INSERT INTO target_sources (target, instance_id, endpoint, data_dir, protection, workflow_id, run_id) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (workflow_id, run_id, target) DO NOTHING`,
            [targetName, protection.instanceId, protection.endpoint ? describeEndpoint(protection.endpoint) : null, protection.dataDir ?? null, JSON.stringify(protection), workflowId, runId],
          );
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK');
          throw err;
        }
      });
      return protection;
    },

    /** Resolves the name as a client would and connects through it: it must reach the restored instance. */
    async verifyThroughDns(targetName: string, cutover: { dnsName: string; router: string }, endpoint: { host: string; port: number }): Promise<{ ok: boolean; detail: string }> {
      return withHeartbeats(
        () => ({ verifying: cutover.dnsName }),
        async () => {
          const served = await ports.router(cutover.router).currentTarget(cutover.dnsName);
          if (!served) return { ok: false, detail: `${cutover.dnsName} does not resolve` };
          const viaDns = { host: served.host, port: served.port ?? endpoint.port };
          let expected: string;
          let reached: string;
          try {
            [expected, reached] = await Promise.all([fingerprint(databaseEndpoint(targetName, endpoint)), fingerprint(databaseEndpoint(targetName, viaDns))]);
          } catch (err) {
            // Nobody answering through the name is a failed cutover, not a reason to retry with traffic on it.
            return { ok: false, detail: `${cutover.dnsName} -> ${viaDns.host}:${viaDns.port} does not answer as the restored instance (${(err as Error).message})` };
          }
          return expected === reached
            ? { ok: true, detail: `${cutover.dnsName} -> ${viaDns.host}:${viaDns.port} reaches the restored instance` }
            : { ok: false, detail: `${cutover.dnsName} -> ${viaDns.host}:${viaDns.port} reaches another server than the restored instance` };
        },
      );
    },

    async recordRestoreReport(report: PitrRestoreReport): Promise<void> {
      await ports.catalog.query(
        `INSERT INTO restores (workflow_id, target, outcome, restore_point, destination, requested_by, report) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (workflow_id) DO UPDATE SET outcome = EXCLUDED.outcome, destination = EXCLUDED.destination, report = EXCLUDED.report`,
        [report.workflowId, report.target, report.outcome, report.restorePoint, report.destination?.instanceId ?? null, report.requestedBy, JSON.stringify(report)],
      );
      // An instance the restore leaves standing gets its row, with its expiry (`lifeboat instances list`).
      await recordKeptInstance(ports, report);
    },
  };
}
