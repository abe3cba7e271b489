/**
 * assessFailoverPlan(mode): the recovery plan of the config (`failover.steps`) with what each step
 * would take its data from, how old that is (the RPO a failover would give now), whether it can
 * run, and how long it is predicted to take. No side effects: it only reads (catalog, pgBackRest's
 * DR repository, the DR object store, the routers) and never creates, claims or writes anything.
 *
 * It must answer while the primary region is gone: everything of the primary region (the source
 * databases, the source buckets' store) is probed first with a short timeout, and when a probe
 * fails nothing else asks that region; the plan is then assessed from the DR side alone and says
 * "primary unreachable". Every other probe is bounded too, so the whole assessment is.
 *
 * Used by `lifeboat failover plan` (run in the CLI process) and by the drFailover workflow's
 * readiness phase and declare page (as an activity).
 */
import fs from 'node:fs';
import path from 'node:path';
import { HeadBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { findBucketTarget, findDatabaseTarget, objectivesFor, resolveSecret } from '../config';
import type { BucketTarget, DatabaseTarget, FailoverStepConfig, PgBackRestTarget, RdsTarget, TrafficRouterConfig } from '../config';
import type { BackupLocation } from '../domain/backup';
import { describeError, LifeboatError } from '../domain/errors';
import { formatAge, formatDuration } from '../domain/format';
import { criticalPath, drillNameFor, planWaves, type AssessedPlan, type PlannedStep, type StepReadiness, type StepSource } from '../domain/recovery-plan';
import { PowerDnsRouter } from '../engines/powerdns';
import { Route53Router } from '../engines/route53';
import { portAnswers, portIsFree } from '../platform/processes';
import type { Ports } from './ports';
import { predictionActivities } from './rto-prediction';

/** How long each kind of probe may take: short for the primary region (it may be gone), longer for the DR side. Injectable for tests. */
export interface FailoverPlanTimings {
  /** A probe of the primary region (a source database's port, a source bucket's store). */
  primaryProbeMs: number;
  /** A probe of the DR side (the DR repository with its WAL, the replica, a router, the prediction). */
  probeMs: number;
  /** Keys listed at most from each of a bucket's source and replica to count what the replica misses. */
  listLimit: number;
}

export const FAILOVER_PLAN_TIMINGS: FailoverPlanTimings = { primaryProbeMs: 3000, probeMs: 60_000, listLimit: 10_000 };

/**
 * Fixed estimates of the steps nothing measures yet (seconds), labelled as estimates wherever shown:
 * switching a bucket moves no data (the replica is served as it is); moving a name is one record
 * change served by the router, then clients follow within the TTL; the application check is the
 * first correct answer through the moved names.
 */
const ESTIMATES = { switchBucket: 30, moveNameServed: 30, checkApplication: 60, restoreWithoutDrills: 15 * 60 };
const ESTIMATE_BASIS = 'no measurement yet: estimate';

interface CatalogBackupRow {
  id: string;
  engine_backup_id: string;
  backup_type: string;
  completed_at: Date | null;
  locations: { primary?: BackupLocation; dr?: BackupLocation };
}

/** The newest object of a listing and every key listed, up to the limit. */
interface Listing {
  keys: Map<string, Date>;
  newest?: { key: string; at: Date };
  complete: boolean;
}

/** Rejects after `ms` with a sentence naming what took too long; the work itself is left to finish or fail on its own. */
export function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${formatDuration(ms / 1000)}`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

const secondsBetween = (later: Date, earlier: Date) => Math.max(0, Math.round((later.getTime() - earlier.getTime()) / 1000));

/** The bad-input sentence for a config without a plan (the CLI says it before connecting to anything). */
export const NO_FAILOVER_PLAN = 'the config has no `failover` block, so there is no recovery plan to assess: add `failover.steps` (see docs/config.md, "failover") and run the command again.';

export function failoverPlanActivities(ports: Ports, timings: FailoverPlanTimings = FAILOVER_PLAN_TIMINGS) {
  const { config } = ports;
  const prediction = predictionActivities(ports);

  /** Whether the primary region answers for each thing a step depends on there; every probe bounded by primaryProbeMs. */
  const probePrimary = async (steps: FailoverStepConfig[]) => {
    const databases = new Map<string, { reachable: boolean; detail: string }>();
    const stores = new Map<string, { reachable: boolean; detail: string }>();
    for (const step of steps) {
      if ((step.kind === 'restore-database' || step.kind === 'move-name') && !databases.has(step.target)) {
        const target = findDatabaseTarget(config, step.target);
        if (target.engine === 'pgbackrest') {
          const answers = await portAnswers(target.host, target.port, timings.primaryProbeMs);
          databases.set(target.name, { reachable: answers, detail: answers ? `the source ${target.host}:${target.port} answers` : `primary unreachable: the source ${target.host}:${target.port} does not answer` });
        } else {
          // RDS: the region's API is asked only by the prediction, which is bounded like every other probe.
          databases.set(target.name, { reachable: true, detail: `RDS source ${target.instanceId} in ${target.region} (not probed)` });
        }
      }
      if (step.kind === 'switch-bucket') {
        const bucket = findBucketTarget(config, step.target);
        const key = `${bucket.source.store}/${bucket.source.bucket}`;
        if (stores.has(key)) continue;
        try {
          await ports.objectStore(bucket.source.store).send(new HeadBucketCommand({ Bucket: bucket.source.bucket }), { abortSignal: AbortSignal.timeout(timings.primaryProbeMs) });
          stores.set(key, { reachable: true, detail: `the source bucket ${bucket.source.bucket} answers` });
        } catch (err) {
          stores.set(key, { reachable: false, detail: `primary unreachable: the source bucket ${bucket.source.bucket} in store ${bucket.source.store} does not answer (${describeError(err)})` });
        }
      }
    }
    return { databases, stores };
  };

  /** Ports of the range that are neither claimed by a restored instance nor taken by another server (nothing is claimed here). */
  const freePorts = async (target: PgBackRestTarget, range: { from: number; to: number }, limit = 1): Promise<number[]> => {
    const free: number[] = [];
    for (let port = range.from; port <= range.to && free.length < limit; port++) {
      if (port === target.port) continue;
      if (fs.existsSync(path.join(target.restoresDir, 'ports', String(port)))) continue;
      if (await portIsFree(target.host, port)) free.push(port);
    }
    return free;
  };

  /** The catalog's newest backup whose DR copy is verified, as drills choose from (`lifeboat backups list`). */
  const newestVerifiedDrCopy = async (targetName: string) => {
    const rows = await ports.catalog.query<CatalogBackupRow>(
      "SELECT id::text, engine_backup_id, backup_type, completed_at, locations FROM backups WHERE target = $1 AND status = 'verified' ORDER BY completed_at DESC NULLS LAST LIMIT 50",
      [targetName],
    );
    for (const row of rows) {
      const dr = row.locations.dr;
      if (dr?.handle && dr.verified !== false && !dr.failed) return { row, dr };
    }
    return undefined;
  };

  const predictedRestore = async (target: DatabaseTarget, drOnly: boolean): Promise<{ seconds: number; basis: string }> => {
    try {
      const p = await within(timings.probeMs, `the RTO prediction of ${target.name}`, prediction.predictRestore(target.name, { drOnly }));
      if (p.predictedSeconds !== undefined) return { seconds: p.predictedSeconds, basis: p.summary };
      return { seconds: ESTIMATES.restoreWithoutDrills, basis: `${ESTIMATE_BASIS} of ${formatDuration(ESTIMATES.restoreWithoutDrills)} (${p.summary})` };
    } catch (err) {
      return { seconds: ESTIMATES.restoreWithoutDrills, basis: `${ESTIMATE_BASIS} of ${formatDuration(ESTIMATES.restoreWithoutDrills)} (the prediction failed: ${describeError(err)})` };
    }
  };

  const assessPgBackRestRestore = async (target: PgBackRestTarget, mode: AssessedPlan['mode'], now: Date): Promise<{ source?: StepSource; readiness: StepReadiness }> => {
    const problems: string[] = [];
    const facts: string[] = [];
    const where = `repo${target.drRepo} (DR)`;
    const catalogCopy = await newestVerifiedDrCopy(target.name);
    if (!catalogCopy) problems.push(`the catalog has no verified DR copy of ${target.name}: run \`lifeboat backup ${target.name}\` (it copies to ${where}) and assess again`);

    let source: StepSource | undefined;
    try {
      const info = await within(timings.probeMs, `pgBackRest info of ${where}`, ports.pgbackrest(target).info(target.drRepo));
      const sets = (info?.backup ?? []).filter((b) => b.database['repo-key'] === target.drRepo && !b.error).sort((a, b) => b.timestamp.stop - a.timestamp.stop);
      const newestSet = sets[0];
      if (!newestSet) {
        problems.push(`there is no backup of stanza ${target.stanza} in ${where}: take a backup with its DR copy first`);
      } else {
        const window = await within(timings.probeMs, `the WAL archive of ${where}`, ports.database(target.name).restoreWindow('dr'));
        const newestPoint = new Date(window.latest);
        const age = secondsBetween(now, newestPoint);
        source = {
          description: `pgBackRest ${where}, ${newestSet.type} backup ${newestSet.label} + WAL to ${window.latest}`,
          newestPoint: newestPoint.toISOString(),
          ageSeconds: age,
        };
        if (catalogCopy && !sets.some((s) => s.label === catalogCopy.dr.handle.backupId)) {
          problems.push(`the catalog's newest verified DR copy ${catalogCopy.dr.handle.backupId} is no longer in ${where}: take a new backup`);
        } else if (catalogCopy) {
          const verifiedAt = catalogCopy.dr.verifiedAt ?? catalogCopy.dr.completedAt;
          facts.push(`DR copy ${catalogCopy.dr.handle.backupId} verified${verifiedAt ? ` ${formatAge(secondsBetween(now, new Date(verifiedAt)))} ago` : ''}`);
        }
        const rpo = objectivesFor(config, target).rpo;
        if (age > rpo) facts.push(`data age ${formatAge(age)} is over the RPO objective of ${formatDuration(rpo)}`);
      }
    } catch (err) {
      problems.push(`${where} could not be read (${describeError(err)}): check the DR object store and pgBackRest's repo${target.drRepo} settings`);
    }

    const range = mode === 'drill' ? target.drillPorts : target.restorePorts;
    const rangeName = mode === 'drill' ? 'drill' : 'restore';
    const free = await freePorts(target, range);
    if (free.length) facts.push(`${rangeName} port ${free[0]} free`);
    else problems.push(`no free port in the ${rangeName} port range ${range.from}-${range.to}: delete restored instances that are no longer needed or widen the range`);

    return { source, readiness: problems.length ? { ready: false, detail: problems.join('; ') } : { ready: true, detail: facts.join('; ') } };
  };

  const assessRdsRestore = async (target: RdsTarget, now: Date): Promise<{ source?: StepSource; readiness: StepReadiness }> => {
    const catalogCopy = await newestVerifiedDrCopy(target.name);
    try {
      const window = await within(timings.probeMs, `the replicated automated backups of ${target.instanceId} in ${target.drRegion}`, ports.database(target.name).restoreWindow('dr'));
      const newestPoint = new Date(window.latest);
      return {
        source: { description: `RDS automated backups of ${target.instanceId} replicated to ${target.drRegion}, restorable to ${window.latest}`, newestPoint: newestPoint.toISOString(), ageSeconds: secondsBetween(now, newestPoint) },
        readiness: { ready: true, detail: `point-in-time restore in ${target.drRegion} possible from ${window.earliest} to ${window.latest}` },
      };
    } catch (err) {
      // Without replicated automated backups a failover restores the newest snapshot copy.
      if (catalogCopy) {
        const takenAt = new Date(catalogCopy.dr.completedAt ?? catalogCopy.row.completed_at ?? now);
        return {
          source: { description: `RDS snapshot copy ${catalogCopy.dr.handle.backupId} in ${target.drRegion}`, newestPoint: takenAt.toISOString(), ageSeconds: secondsBetween(now, takenAt) },
          readiness: { ready: true, detail: `verified snapshot copy ${catalogCopy.dr.handle.backupId} in ${target.drRegion} (no point-in-time restore there: ${describeError(err)})` },
        };
      }
      return { readiness: { ready: false, detail: `nothing to restore in ${target.drRegion}: no verified snapshot copy on record and no replicated automated backups (${describeError(err)}); run \`lifeboat backup ${target.name}\`` } };
    }
  };

  const list = async (s3: S3Client, bucket: string): Promise<Listing> => {
    const keys = new Map<string, Date>();
    let newest: Listing['newest'];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, MaxKeys: Math.min(1000, timings.listLimit - keys.size) }), { abortSignal: AbortSignal.timeout(timings.probeMs) });
      for (const o of page.Contents ?? []) {
        if (!o.Key) continue;
        const at = o.LastModified ?? new Date(0);
        keys.set(o.Key, at);
        if (!newest || at > newest.at) newest = { key: o.Key, at };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token && keys.size < timings.listLimit);
    return { keys, newest, complete: token === undefined };
  };

  const assessBucket = async (bucket: BucketTarget, sourceReachable: boolean, now: Date): Promise<{ source?: StepSource; readiness: StepReadiness }> => {
    const replicaName = `${bucket.replica.bucket} in store ${bucket.replica.store}`;
    let replica: Listing;
    try {
      replica = await within(timings.probeMs, `the replica ${replicaName}`, list(ports.objectStore(bucket.replica.store), bucket.replica.bucket));
    } catch (err) {
      return { readiness: { ready: false, detail: `the replica ${replicaName} cannot be read (${describeError(err)}): create it and set up replication from ${bucket.source.bucket}` } };
    }
    const replicaNewest = replica.newest ? `, newest object ${replica.newest.at.toISOString()}` : '';
    const counted = (l: Listing) => `${l.keys.size}${l.complete ? '' : '+'} object${l.keys.size === 1 ? '' : 's'}`;
    if (!sourceReachable) {
      // Nothing can be compared: everything written after the replica's newest object may be lost.
      return {
        source: {
          description: `replica ${replicaName}: ${counted(replica)}${replicaNewest}; primary unreachable, so its lag is counted from its newest object`,
          ...(replica.newest ? { newestPoint: replica.newest.at.toISOString(), ageSeconds: secondsBetween(now, replica.newest.at) } : {}),
          replication: { replicaObjects: replica.keys.size, complete: replica.complete, sourceAnswered: false },
        },
        readiness: { ready: true, detail: `replica readable (${counted(replica)}); primary unreachable, lag not measured` },
      };
    }
    let source: Listing;
    try {
      source = await within(timings.probeMs, `the source bucket ${bucket.source.bucket}`, list(ports.objectStore(bucket.source.store), bucket.source.bucket));
    } catch (err) {
      return {
        source: { description: `replica ${replicaName}: ${counted(replica)}${replicaNewest}; the source could not be listed (${describeError(err)})`, ...(replica.newest ? { newestPoint: replica.newest.at.toISOString(), ageSeconds: secondsBetween(now, replica.newest.at) } : {}) },
        readiness: { ready: true, detail: `replica readable (${counted(replica)}); lag not measured` },
      };
    }
    // A key the replica lacks is data a failover would lose now; keys past the listing limit are not compared.
    const missing = [...source.keys].filter(([key]) => !replica.keys.has(key));
    const oldestMissing = missing.reduce<Date | undefined>((oldest, [, at]) => (!oldest || at < oldest ? at : oldest), undefined);
    const lagSeconds = source.newest && replica.newest ? secondsBetween(source.newest.at, replica.newest.at) : source.newest ? secondsBetween(now, source.newest.at) : 0;
    const ageSeconds = oldestMissing ? secondsBetween(now, oldestMissing) : 0;
    const bounded = source.complete && replica.complete ? '' : ` (first ${timings.listLimit} keys of each compared)`;
    const missingText = missing.length ? `${missing.length} object${missing.length === 1 ? '' : 's'} of the source missing from the replica` : 'every source object in the replica';
    return {
      source: {
        description: `replica ${replicaName}: ${counted(replica)}${replicaNewest}; ${missingText}${bounded}; replication lag ${formatAge(lagSeconds)}`,
        newestPoint: (oldestMissing ?? source.newest?.at ?? now).toISOString(),
        ageSeconds,
        replication: { replicaObjects: replica.keys.size, sourceObjects: source.keys.size, missingObjects: missing.length, lagSeconds, complete: source.complete && replica.complete, sourceAnswered: true },
      },
      readiness: { ready: true, detail: `replica readable; ${missingText}${bounded}` },
    };
  };

  /** Whether the drill zone exists on the router, or can be made there (the router answers and the zone is simply absent). */
  const drillZoneState = async (router: TrafficRouterConfig, drillName: string): Promise<StepReadiness> => {
    if (!router.drillZone) return { ready: false, detail: `router ${router.name} has no drillZone: give it one so a drill never writes a production name` };
    if (router.kind === 'powerdns') {
      const zoneRouter = new PowerDnsRouter({ apiUrl: router.apiUrl, apiKey: resolveSecret(router.apiKey), zone: router.drillZone, dnsServer: router.dnsServer, serverId: router.serverId });
      try {
        await within(timings.probeMs, `the drill zone ${router.drillZone}`, zoneRouter.zoneSerial());
        return { ready: true, detail: `drill zone ${router.drillZone} exists; the drill writes ${drillName}` };
      } catch (err) {
        const message = describeError(err);
        if (/HTTP 404/.test(message)) return { ready: true, detail: `drill zone ${router.drillZone} does not exist yet and can be created; the drill writes ${drillName}` };
        return { ready: false, detail: `drill zone ${router.drillZone} cannot be checked (${message})` };
      }
    }
    if (!router.drillHostedZoneId) return { ready: false, detail: `router ${router.name} has no drillHostedZoneId for ${router.drillZone}: create the hosted zone and set it` };
    try {
      await within(timings.probeMs, `the drill hosted zone ${router.drillHostedZoneId}`, new Route53Router({ hostedZoneId: router.drillHostedZoneId, region: router.region }).currentTarget(drillName));
      return { ready: true, detail: `drill hosted zone ${router.drillHostedZoneId} (${router.drillZone}) answers; the drill writes ${drillName}` };
    } catch (err) {
      return { ready: false, detail: `drill hosted zone ${router.drillHostedZoneId} cannot be read (${describeError(err)})` };
    }
  };

  const assessMoveName = async (target: DatabaseTarget, mode: AssessedPlan['mode']): Promise<{ source?: StepSource; readiness: StepReadiness; ttl: number }> => {
    const cutover = target.cutover;
    if (!cutover) return { readiness: { ready: false, detail: `${target.name} has no cutover block: add dnsName and router` }, ttl: 0 };
    const routerConfig = config.trafficRouters.find((r) => r.name === cutover.router)!;
    let current: string;
    try {
      const now = await within(timings.probeMs, `router ${routerConfig.name}`, ports.router(routerConfig.name).currentTarget(cutover.dnsName));
      current = now ? `${cutover.dnsName} points at ${now.host}${now.port ? `:${now.port}` : ''} now (TTL ${now.ttl} s)` : `${cutover.dnsName} has no address record now`;
    } catch (err) {
      return { readiness: { ready: false, detail: `router ${routerConfig.name} does not answer (${describeError(err)}): the name cannot be moved until it does` }, ttl: cutover.ttl };
    }
    const source: StepSource = { description: current };
    if (mode === 'failover') return { source, readiness: { ready: true, detail: `router ${routerConfig.name} answers` }, ttl: cutover.ttl };
    let drillName: string;
    try {
      drillName = drillNameFor(cutover.dnsName, routerConfig.zone, routerConfig.drillZone ?? '');
    } catch (err) {
      return { source, readiness: { ready: false, detail: describeError(err) }, ttl: cutover.ttl };
    }
    return { source, readiness: await drillZoneState(routerConfig, drillName), ttl: cutover.ttl };
  };

  const assessCheck = (step: Extract<FailoverStepConfig, { kind: 'check-application' }>, mode: AssessedPlan['mode']): StepReadiness => {
    let url: URL;
    try {
      url = new URL(step.url);
    } catch {
      return { ready: false, detail: `${step.url} is not a URL: write it as http(s)://host:port/path` };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ready: false, detail: `${step.url} is not http or https` };
    const after = 'checked after the names move';
    if (mode === 'failover') return { ready: true, detail: `${url.href} ${after}` };
    return step.drill
      ? { ready: true, detail: `the drill starts its own copy of the application (${step.drill.command[0]}) and checks ${step.drill.url}` }
      : { ready: true, detail: `no drill command declared: the drill checks the databases through the drill names only` };
  };

  return {
    /** The plan with sources, ages, readiness and predicted durations, judged now; reads only. */
    async assessFailoverPlan(mode: 'failover' | 'drill'): Promise<AssessedPlan> {
      const plan = config.failover;
      if (!plan) throw new LifeboatError(NO_FAILOVER_PLAN, 'NO_FAILOVER_PLAN', true);
      const now = new Date();
      const primary = await probePrimary(plan.steps);
      const unreachable = [...primary.databases.values(), ...primary.stores.values()].filter((p) => !p.reachable);

      const steps = await Promise.all(
        plan.steps.map(async (spec): Promise<PlannedStep> => {
          const base = { name: spec.name, kind: spec.kind, after: spec.after } as const;
          if (spec.kind === 'restore-database') {
            const target = findDatabaseTarget(config, spec.target);
            // With any of the primary region gone the prediction reads the DR side alone, like a failover would.
            const drOnly = unreachable.length > 0;
            const [assessed, predicted] = await Promise.all([
              target.engine === 'pgbackrest' ? assessPgBackRestRestore(target, mode, now) : assessRdsRestore(target, now),
              predictedRestore(target, drOnly),
            ]);
            const primaryNote = primary.databases.get(target.name);
            const readiness = primaryNote && !primaryNote.reachable ? { ...assessed.readiness, detail: `${assessed.readiness.detail}; ${primaryNote.detail}` } : assessed.readiness;
            return { ...base, target: spec.target, ...(assessed.source ? { source: assessed.source } : {}), readiness, predictedSeconds: predicted.seconds, predictionBasis: predicted.basis };
          }
          if (spec.kind === 'switch-bucket') {
            const bucket = findBucketTarget(config, spec.target);
            const reach = primary.stores.get(`${bucket.source.store}/${bucket.source.bucket}`);
            const assessed = await assessBucket(bucket, reach?.reachable ?? false, now);
            return { ...base, target: spec.target, ...(assessed.source ? { source: assessed.source } : {}), readiness: assessed.readiness, predictedSeconds: ESTIMATES.switchBucket, predictionBasis: `${ESTIMATE_BASIS} (the replica is served as it is; no data is copied)` };
          }
          if (spec.kind === 'move-name') {
            const target = findDatabaseTarget(config, spec.target);
            const assessed = await assessMoveName(target, mode);
            const seconds = ESTIMATES.moveNameServed + assessed.ttl;
            return {
              ...base,
              target: spec.target,
              ...(assessed.source ? { source: assessed.source } : {}),
              readiness: assessed.readiness,
              predictedSeconds: seconds,
              predictionBasis: `${ESTIMATE_BASIS} (${ESTIMATES.moveNameServed} s until the router serves the change, then the TTL of ${assessed.ttl} s)`,
            };
          }
          return {
            ...base,
            url: spec.url,
            ...(spec.servesFrom ? { servesFrom: spec.servesFrom } : {}),
            timeoutSeconds: spec.timeout,
            ...(spec.drill ? { drill: spec.drill } : {}),
            readiness: assessCheck(spec, mode),
            predictedSeconds: ESTIMATES.checkApplication,
            predictionBasis: `${ESTIMATE_BASIS} (the application's first correct answer; it may take up to ${formatDuration(spec.timeout)})`,
          };
        }),
      );

      const byName = new Map(steps.map((s) => [s.name, s]));
      const ages = steps.map((s) => s.source?.ageSeconds).filter((a): a is number => a !== undefined);
      return {
        mode,
        assessedAt: now.toISOString(),
        steps,
        waves: planWaves(steps),
        criticalPath: criticalPath(steps, (name) => byName.get(name)?.predictedSeconds),
        objectiveSeconds: config.objectives.fullSystem.rto,
        ...(ages.length ? { worstRpoSeconds: Math.max(...ages) } : {}),
        ready: steps.every((s) => s.readiness.ready),
        primary: unreachable.length
          ? { reachable: false, detail: `primary unreachable: assessed from the DR side alone (${unreachable.map((p) => p.detail.replace(/^primary unreachable: /, '')).join('; ')})` }
          : { reachable: true, detail: 'the primary region answers' },
      };
    },
  };
}

