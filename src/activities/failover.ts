/**
 * Activities of drFailover beyond the restore machinery it shares with pitrRestore: the plan's
 * settings, the cutover page's current records, the bucket switch with its measured lag, the
 * rollback of a name proven through DNS alone (the old primary is down, so nothing connects to
 * it), the application check, and the report in the catalog and the DR region's evidence bucket.
 * None of them reads from or writes to the primary region.
 */
import { Context } from '@temporalio/activity';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { findBucketTarget, findDatabaseTarget } from '../config';
import { LifeboatError } from '../domain/errors';
import { FailoverBucketOutcome, FailoverReport, failoverMarkdown } from '../domain/failover';
import { DnsSnapshot, InstanceDescription } from '../domain/ports';
import { PlanStepKind } from '../domain/recovery-plan';
import { TrafficChange } from '../domain/restore';
import { EvidenceLocation, EvidenceReceipt, EvidenceStore } from '../engines/evidence-store';
import { evidenceStoreFor } from './drills';
import { withHeartbeats } from './heartbeat';
import { Ports } from './ports';
import { recordRestoredThing } from './restored-instances';

/** A step as the workflow needs it, resolved from the config (durations in ms). */
export interface FailoverStepSettings {
  name: string;
  kind: PlanStepKind;
  target?: string;
  after: string[];
  /** move-name: the name to move and its router. */
  cutover?: { dnsName: string; router: string; ttlSeconds: number };
  /** check-application. */
  url?: string;
  servesFrom?: string;
  timeoutMs?: number;
  /** switch-bucket: the replica that becomes the copy served. */
  replica?: string;
  /** check-application in a drill: the application's own copy, and the DNS server (host:port) it resolves the drill names through. */
  drill?: { command: string[]; url: string; dnsServer: string };
}

export interface FailoverSettings {
  /** The environment whose gate rules apply: production when any target of the plan is. */
  environment: string;
  objectiveSeconds: number;
  steps: FailoverStepSettings[];
  gateTimings: { remindAfterMs: number; abortAfterMs: number };
}

/** The workflow run an activity works for (every change it records is that run's). */
function runOf(): { workflowId: string; runId: string } {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new LifeboatError('this activity records a failover and must run inside its workflow run.', 'NO_WORKFLOW_RUN', true);
  return run;
}

/** How long a probe of a possibly-dead region may take before it counts as unreachable. */
const PROBE_TIMEOUT_MS = 5000;

const endpointText = (e?: { host: string; port?: number }) => (e ? `${e.host}${e.port !== undefined ? `:${e.port}` : ''}` : 'nothing');

/** The newest LastModified among up to `limit` objects of a bucket (bounded: a listing of a huge bucket must not hold the failover). */
async function newestObject(s3: S3Client, bucket: string, limit = 5000): Promise<{ count: number; newest?: Date; truncated: boolean }> {
  let token: string | undefined;
  let count = 0;
  let newest: Date | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }), { abortSignal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    for (const o of page.Contents ?? []) {
      count++;
      if (o.LastModified && (!newest || o.LastModified > newest)) newest = o.LastModified;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token && count < limit);
  return { count, newest, truncated: token !== undefined };
}

/** The failover's report in the catalog and as write-once evidence (JSON + Markdown) in the DR region's bucket. */
export async function publishFailoverReport(ports: Ports, report: FailoverReport, suffix = ''): Promise<EvidenceReceipt[]> {
  const { config } = ports;
  const e = config.evidence;
  // The DR region's bucket: the primary region may be the one that is gone.
  const store = e.drStore && e.drBucket ? drEvidenceStore(ports) : evidenceStoreFor(config, ports);
  const base = `${e.prefix}failovers/${report.workflowId}/report${suffix}`;
  const receipts: EvidenceReceipt[] = [];
  receipts.push(await store.put(`${base}.json`, Buffer.from(JSON.stringify(report, null, 2)), 'application/json'));
  receipts.push(await store.put(`${base}.md`, Buffer.from(failoverMarkdown(report)), 'text/markdown; charset=utf-8'));
  return receipts;
}

function drEvidenceStore(ports: Ports): EvidenceStore {
  const e = ports.config.evidence;
  const region = ports.config.objectStores.find((s) => s.name === e.drStore)?.region ?? e.drStore!;
  const location: EvidenceLocation = { region, bucket: e.drBucket!, s3: ports.objectStore(e.drStore!) };
  return new EvidenceStore([location], { retentionDays: e.retentionDays, mode: e.lockMode });
}

/**
 * `lifeboat failover note`: a lesson appended to the failover's record. The catalog row gains it
 * and a NEW evidence object holds the report with every lesson so far; earlier objects are never rewritten.
 */
export async function appendFailoverLesson(ports: Ports, workflowId: string, by: string, text: string): Promise<{ lessons: number; evidence: EvidenceReceipt[] }> {
  const rows = await ports.catalog.query<{ report: FailoverReport; lessons: FailoverReport['lessons'] }>('SELECT report, lessons FROM failovers WHERE workflow_id = $1', [workflowId]);
  if (!rows.length) throw new LifeboatError(`no failover with the workflow id "${workflowId}" is on record: check the id with \`lifeboat failover status\`.`, 'UNKNOWN_FAILOVER', true);
  const lesson = { at: new Date().toISOString(), by, text };
  const lessons = [...(rows[0].lessons ?? []), lesson];
  const evidence = await publishFailoverReport(ports, { ...rows[0].report, lessons }, `-lesson-${lessons.length}`);
  await ports.catalog.query(`UPDATE failovers SET lessons = $2, evidence = evidence || $3::jsonb WHERE workflow_id = $1`, [workflowId, JSON.stringify(lessons), JSON.stringify(evidence)]);
  return { lessons: lessons.length, evidence };
}

export function failoverActivities(ports: Ports) {
  const { config } = ports;

  /** host:port of the DNS server that serves the drill names: the router of the served target's name (else the first PowerDNS router). */
  const drillDnsServer = (servesFrom?: string): string => {
    const routerName = servesFrom ? findDatabaseTarget(config, servesFrom).cutover?.router : undefined;
    const router = config.trafficRouters.find((r) => r.name === routerName && r.kind === 'powerdns') ?? config.trafficRouters.find((r) => r.kind === 'powerdns');
    return router?.kind === 'powerdns' ? `${router.dnsServer.host}:${router.dnsServer.port}` : '';
  };

  return {
    /** The plan as the workflow runs it, from the config; refuses what cannot run before anything happens. */
    async failoverSettings(mode: 'failover' | 'drill'): Promise<FailoverSettings> {
      const failover = config.failover;
      if (!failover) throw new LifeboatError('the config has no `failover` block, so there is no recovery plan to run: declare failover.steps (see docs/config.md).', 'NO_FAILOVER_PLAN', true);
      const environments = new Set<string>();
      const steps = failover.steps.map((s): FailoverStepSettings => {
        const base = { name: s.name, kind: s.kind, after: [...s.after] } as FailoverStepSettings;
        if (s.kind === 'restore-database' || s.kind === 'move-name') {
          const db = findDatabaseTarget(config, s.target);
          environments.add(db.environment);
          base.target = db.name;
          if (s.kind === 'move-name' && db.cutover) base.cutover = { dnsName: db.cutover.dnsName, router: db.cutover.router, ttlSeconds: db.cutover.ttl };
        } else if (s.kind === 'switch-bucket') {
          const b = findBucketTarget(config, s.target);
          environments.add(b.environment);
          base.target = b.name;
          base.replica = `${b.replica.bucket} (store ${b.replica.store})`;
        } else {
          base.url = s.url;
          base.servesFrom = s.servesFrom;
          base.timeoutMs = s.timeout * 1000;
          if (mode === 'drill' && s.drill) base.drill = { command: [...s.drill.command], url: s.drill.url, dnsServer: drillDnsServer(s.servesFrom) };
        }
        return base;
      });
      const production = [...environments].find((e) => config.environments[e]?.tier === 'production');
      return {
        environment: production ?? [...environments][0] ?? Object.keys(config.environments)[0],
        objectiveSeconds: config.objectives.fullSystem.rto,
        steps,
        gateTimings: { remindAfterMs: config.approvals.remindAfter * 1000, abortAfterMs: config.approvals.abortAfter * 1000 },
      };
    },

    /** What each name answers now through DNS (for the cutover page), without changing anything. */
    async currentNameTargets(names: Array<{ dnsName: string; router: string }>): Promise<Record<string, string>> {
      const out: Record<string, string> = {};
      for (const n of names) {
        try {
          out[n.dnsName] = endpointText(await ports.router(n.router).currentTarget(n.dnsName));
        } catch (err) {
          out[n.dnsName] = `unknown (${(err as Error).message})`;
        }
      }
      return out;
    },

    /**
     * The replica becomes the copy served. Its lag is measured against the source when the source
     * answers (bounded), else from the replica alone. The bucket targets carry no name to move,
     * so what applications read from is their own configuration: the outcome says so.
     */
    async switchBucketToReplica(step: string, targetName: string, drill = false): Promise<FailoverBucketOutcome> {
      const target = findBucketTarget(config, targetName);
      return withHeartbeats(
        () => ({ measuring: targetName }),
        async () => {
          const replica = await newestObject(ports.objectStore(target.replica.store), target.replica.bucket);
          const source = await newestObject(ports.objectStore(target.source.store), target.source.bucket).catch((err: Error) => err);
          const replicaName = `${target.replica.bucket} (store ${target.replica.store})`;
          // A drill only measures: nothing is served from the replica because of it.
          const served = drill
            ? `${replicaName} measured, not switched (a drill): the source stays the copy served`
            : `${replicaName} is now the copy to serve; lifeboat has no bucket name to move for ${targetName}, so applications read it through their own configuration`;
          const bounded = replica.truncated ? ` (first ${replica.count} objects)` : '';
          if (source instanceof Error) {
            return { step, target: targetName, replica: replicaName, detail: `${served}. The source ${target.source.bucket} does not answer (${source.message}); the replica holds ${replica.count} objects${bounded}, newest written ${replica.newest?.toISOString() ?? 'never'}.` };
          }
          const lagSeconds = source.newest && replica.newest ? Math.max(0, Math.round((source.newest.getTime() - replica.newest.getTime()) / 1000)) : source.newest ? undefined : 0;
          const missing = Math.max(0, source.count - replica.count);
          return {
            step,
            target: targetName,
            replica: replicaName,
            ...(lagSeconds !== undefined ? { lagSeconds } : {}),
            detail: `${served}. Replication lag ${lagSeconds ?? 'unknown'} s (newest object: source ${source.newest?.toISOString() ?? 'none'}, replica ${replica.newest?.toISOString() ?? 'none'}); ${missing} fewer objects in the replica${bounded}.`,
          };
        },
      );
    },

    /**
     * Puts the name back as recorded and proves it through DNS: the authoritative server answers
     * the previous records again. Nothing connects through it: the previous server is the
     * primary, which a failover expects to be down.
     */
    async rollBackFailoverName(change: TrafficChange): Promise<string> {
      const router = ports.router(change.router);
      const previous: DnsSnapshot = change.previous;
      return withHeartbeats(
        () => ({ rollingBack: change.name }),
        async () => {
          await router.restoreSnapshot(previous);
          const served = await router.currentTarget(change.name);
          const want = previous.endpoint;
          if (!want) {
            if (served) throw new LifeboatError(`${change.name} still resolves to ${endpointText(served)} after putting back "no record"; lifeboat retries.`, 'TRAFFIC_ROLLBACK_FAILED');
          } else if (!served || served.host !== want.host || (want.port !== undefined && served.port !== want.port)) {
            throw new LifeboatError(`${change.name} resolves to ${endpointText(served)}, not back to ${endpointText(want)}; lifeboat retries.`, 'TRAFFIC_ROLLBACK_FAILED');
          }
          const { workflowId, runId } = runOf();
          const detail = `${change.name} answers ${endpointText(want)} again through DNS, as before the failover`;
          await ports.catalog.query(`UPDATE traffic_changes SET rolled_back_at = now(), state = 'rolled-back', detail = $4 WHERE workflow_id = $1 AND run_id = $2 AND name = $3`, [workflowId, runId, change.name, detail]);
          return detail;
        },
      );
    },

    /**
     * Polls the application's URL until it answers 2xx and, with `expect`, its answer's database
     * host and port are that endpoint; returns when it first answered so (the RTO's end).
     */
    async checkApplication(check: { url: string; expect?: { host: string; port: number }; timeoutMs: number; intervalMs: number }): Promise<{ ok: boolean; firstCorrectAt?: string; attempts: number; detail: string }> {
      const ctx = Context.current();
      const deadline = Date.now() + check.timeoutMs;
      let attempts = 0;
      let last = 'no answer yet';
      for (;;) {
        attempts++;
        try {
          const res = await fetch(check.url, { signal: AbortSignal.timeout(Math.min(PROBE_TIMEOUT_MS * 2, Math.max(1000, check.timeoutMs))) });
          const text = await res.text();
          let body: { database?: { host?: string; port?: number } } | undefined;
          try {
            body = JSON.parse(text) as typeof body;
          } catch {
            body = undefined;
          }
          const db = body?.database;
          if (!res.ok) last = `HTTP ${res.status}: ${text.slice(0, 200)}`;
          else if (check.expect && (db?.host !== check.expect.host || Number(db?.port) !== check.expect.port)) last = `answered 2xx from database ${endpointText(db?.host ? { host: db.host, port: db.port } : undefined)}, not the DR instance ${endpointText(check.expect)}`;
          else {
            const at = new Date().toISOString();
            return { ok: true, firstCorrectAt: at, attempts, detail: `${check.url} answered HTTP ${res.status}${check.expect ? ` from ${endpointText(check.expect)}, the instance this run restored` : ''} after ${attempts} attempt(s)` };
          }
        } catch (err) {
          last = (err as Error).message;
        }
        ctx.heartbeat({ attempts, last });
        if (Date.now() + check.intervalMs > deadline) return { ok: false, attempts, detail: `${check.url} did not answer correctly within ${Math.round(check.timeoutMs / 1000)} s (${attempts} attempts; last: ${last})` };
        await ctx.sleep(check.intervalMs);
      }
    },

    /** The report in the catalog (one row per workflow) and as evidence; the evidence receipts are kept with the row. */
    async recordFailoverReport(report: FailoverReport): Promise<EvidenceReceipt[]> {
      const { runId } = runOf();
      await ports.catalog.query(
        `INSERT INTO failovers (workflow_id, run_id, mode, outcome, requested_by, reason, incident_id, rto_seconds, declared_at, finished_at, report)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (workflow_id) DO UPDATE SET run_id = EXCLUDED.run_id, outcome = EXCLUDED.outcome, rto_seconds = EXCLUDED.rto_seconds, finished_at = EXCLUDED.finished_at, report = EXCLUDED.report`,
        [report.workflowId, runId, report.mode, report.outcome, report.requestedBy, report.reason, report.incidentId ?? null, report.rto?.seconds ?? null, report.declaredAt, report.finishedAt, JSON.stringify(report)],
      );
      await recordDrInstances(ports, report);
      const evidence = await publishFailoverReport(ports, report);
      await ports.catalog.query('UPDATE failovers SET evidence = $2 WHERE workflow_id = $1', [report.workflowId, JSON.stringify(evidence)]);
      return evidence;
    },
  };
}

/**
 * The DR instances a real failover kept (not a drill's, which it always removes) go on the
 * restored instances' list. One a name leads to serves traffic: it gets no expiry, and the expiry
 * and \`instances remove\` never touch it (the engine's own record says so too). Found through the
 * engine by the child workflow that made each; an engine that cannot list leaves it off the list,
 * which only means nothing expires it.
 */
async function recordDrInstances(ports: Ports, report: FailoverReport): Promise<void> {
  if (report.mode !== 'failover') return;
  for (const step of report.steps) {
    if (step.kind !== 'restore-database' || !step.target || !step.childWorkflowId) continue;
    let instances: InstanceDescription[] = [];
    try {
      instances = (await ports.database(step.target).listInstances?.()) ?? [];
    } catch {
      continue;
    }
    for (const i of instances.filter((x) => x.owner?.workflowId === step.childWorkflowId && !!x.owner?.runId)) {
      const target = findDatabaseTarget(ports.config, step.target);
      const served = i.servedTraffic === true || report.names.some((n) => n.target === step.target && n.state === 'moved');
      await recordRestoredThing(ports, {
        instanceId: i.instanceId,
        kind: 'dr-instance',
        target: step.target,
        engine: target.engine,
        madeBy: 'drFailover',
        owner: { workflowId: i.owner!.workflowId, runId: i.owner!.runId },
        restorePoint: i.restoredTo ?? report.rpo.find((r) => r.target === step.target)?.recoveredTo ?? 'latest in the DR region',
        restoredFrom: `the DR copies of ${step.target} (failover ${report.workflowId})`,
        ...(i.endpoint ? { endpoint: `${i.endpoint.host}:${i.endpoint.port}` } : {}),
        details: {},
        servedTraffic: served,
      });
    }
  }
}
