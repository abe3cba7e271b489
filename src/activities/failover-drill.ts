/**
 * The failover drill's building blocks, called by drFailover in drill mode: the drill zone and
 * the run's names in it, the application's own copy started against those names, and the
 * production fingerprint that proves the drill left production alone.
 *
 * Nothing here writes outside a drill zone (every DNS write passes assertDrillZoneName) or stops
 * a process it did not start (pid file plus the exact command line it recorded).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import type { Route53Client } from '@aws-sdk/client-route-53';
import { Context } from '@temporalio/activity';
import { findDatabaseTarget, resolveSecret, TrafficRouterConfig } from '../config';
import { describeError, LifeboatError } from '../domain/errors';
import { assertDrillZoneName, drillApplicationKey, DrillNameOwner, drillNameForRun, drillOwnerMark, fillDrillPlaceholders, parseDrillOwnerMark } from '../domain/failover-drill';
import { BucketListing, DatabaseFingerprint, FingerprintPart, FingerprintRecordSet, MAX_LISTED_OBJECTS, ProductionFingerprint, RepositoryFingerprint } from '../domain/production-fingerprint';
import type { PgBackRestStanzaInfo } from '../engines/pgbackrest/cli';
import { PowerDnsDrillZone } from '../engines/powerdns';
import { Route53DrillZone } from '../engines/route53-drill-zone';
import { snapshotFacts, withDatabase } from '../engines/verifier';
import { dataDir } from '../platform/host';
import { delay, isAlive, portAnswers, portIsFree, startDetached, stopPid, tailFile } from '../platform/processes';
import { pgTlsOf, Ports } from './ports';

/** The lifeboat install directory (lib/src/activities/../../..): a drill command's relative paths, like lib/src/stack/sample-app-service.js, are relative to it, whatever the worker's cwd. */
const INSTALL_DIR = path.resolve(__dirname, '../../..');

/** Where a drill application listens and is reached. */
const APP_HOST = '127.0.0.1';

export interface FailoverDrillOptions {
  /** Where drill applications keep their record, pid file and log. Default `<dataDir>/drill-apps`. */
  runDir?: string;
  /** Ports drill applications listen on. Default: the drill port range of the first pgBackRest database target. */
  appPorts?: { from: number; to: number };
  /** How long a drill application may take to listen. Default 60 s. */
  appStartTimeoutMs?: number;
  /** How long one part of the fingerprint may take before it counts as unreachable. Default 20 s. */
  fingerprintPartTimeoutMs?: number;
  /** Route53 client for drill hosted zones (tests pass one to mock at the SDK boundary). */
  route53Client?: Route53Client;
  /** Time between Route53 GetChange polls while a drill name change propagates. Default 5 s. */
  route53PollIntervalMs?: number;
}

/** What the run directory records of one drill application: enough to find it again and to prove a pid is it. */
export interface DrillApplicationRecord {
  key: string;
  workflowId: string;
  runId: string;
  step: string;
  argv: string[];
  port: number;
  url: string;
  startedAt: string;
}

/** A drill name found in a drill zone, with the run that wrote it. */
export interface OwnedDrillName {
  router: string;
  drillZone: string;
  name: string;
  owner: DrillNameOwner;
}

type DrillZoneWriter = PowerDnsDrillZone | Route53DrillZone;

const fqdn = (name: string) => (name.endsWith('.') ? name.toLowerCase() : `${name.toLowerCase()}.`);
const srvName = (name: string) => `_postgresql._tcp.${fqdn(name)}`;

/** The run id of the calling workflow when `workflowId` is that workflow; '' otherwise (the owner is then the workflow's latest run). */
function runIdOf(workflowId: string): string {
  try {
    const run = Context.current().info.workflowExecution;
    return run?.workflowId === workflowId ? run.runId : '';
  } catch {
    return '';
  }
}

function heartbeat(details?: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    /* called outside an activity (tests, the sweeper's helpers) */
  }
}

/** Resolves with the promise's value, or rejects after `ms` saying what took too long. */
async function within<T>(ms: number, what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${Math.round(ms / 1000)} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function part<T>(ms: number, what: string, work: () => Promise<T>): Promise<FingerprintPart<T>> {
  try {
    return { reachable: true, value: await within(ms, what, work) };
  } catch (err) {
    return { reachable: false, detail: `unreachable: ${describeError(err)}` };
  }
}

export function failoverDrillActivities(ports: Ports, options: FailoverDrillOptions = {}) {
  const { config } = ports;
  const runDir = options.runDir ?? path.join(dataDir(), 'drill-apps');
  const partTimeoutMs = options.fingerprintPartTimeoutMs ?? 20000;

  const routerConfig = (name: string): TrafficRouterConfig => {
    const r = config.trafficRouters.find((x) => x.name === name);
    if (!r) throw new LifeboatError(`traffic router "${name}" is not in the config: declare it under trafficRouters.`, 'UNKNOWN_ROUTER');
    return r;
  };

  /** The router's drill zone and a writer that can touch nothing outside it. */
  const drillZoneOf = (name: string): { router: TrafficRouterConfig; drillZone: string; writer: DrillZoneWriter } => {
    const router = routerConfig(name);
    if (!router.drillZone) throw new LifeboatError(`traffic router ${name} has no drillZone, so a failover drill has nowhere to write its names: give it a drillZone.`, 'NO_DRILL_ZONE');
    const drillZone = fqdn(router.drillZone);
    const guard = (record: string) => {
      try {
        assertDrillZoneName(record, drillZone, router.zone);
      } catch (err) {
        throw new LifeboatError(`${(err as Error).message}.`, 'OUTSIDE_DRILL_ZONE');
      }
    };
    if (router.kind === 'powerdns') {
      const settings = { apiUrl: router.apiUrl, apiKey: resolveSecret(router.apiKey), zone: drillZone, dnsServer: router.dnsServer, serverId: router.serverId };
      return { router, drillZone, writer: new PowerDnsDrillZone(settings, guard) };
    }
    if (!router.drillHostedZoneId) throw new LifeboatError(`Route53 router ${name} has a drillZone but no drillHostedZoneId: create ${drillZone} as its own hosted zone and set its id.`, 'NO_DRILL_ZONE');
    return { router, drillZone, writer: new Route53DrillZone({ hostedZoneId: router.drillHostedZoneId, zoneName: drillZone, region: router.region, client: options.route53Client, pollIntervalMs: options.route53PollIntervalMs }, guard) };
  };

  /** Every drill name in the router's drill zone that carries a lifeboat owner mark. */
  const ownedNames = async (routerName: string): Promise<OwnedDrillName[]> => {
    const { drillZone, writer } = drillZoneOf(routerName);
    const found = new Map<string, OwnedDrillName>();
    if (writer instanceof PowerDnsDrillZone) {
      for (const set of await writer.recordSets()) {
        if (set.type !== 'A') continue;
        const owner = set.comments.map(parseDrillOwnerMark).find((o) => o !== undefined);
        if (owner) found.set(fqdn(set.name), { router: routerName, drillZone, name: fqdn(set.name), owner });
      }
    } else {
      for (const { name, marks } of await writer.ownerMarks()) {
        const owner = marks.map(parseDrillOwnerMark).find((o) => o !== undefined);
        if (owner) found.set(fqdn(name), { router: routerName, drillZone, name: fqdn(name), owner });
      }
    }
    return [...found.values()];
  };

  /** Removes one owned drill name's records, re-reading the mark first: a name rewritten since by another run is left alone. */
  const removeOwnedName = async (routerName: string, name: string, owner: Pick<DrillNameOwner, 'workflowId'> & { runId?: string }): Promise<boolean> => {
    const { writer } = drillZoneOf(routerName);
    const mine = (marks: string[]) =>
      marks.map(parseDrillOwnerMark).some((o) => o !== undefined && o.workflowId === owner.workflowId && (!owner.runId || !o.runId || o.runId === owner.runId));
    if (writer instanceof PowerDnsDrillZone) {
      const sets = (await writer.recordSets()).filter((s) => (fqdn(s.name) === fqdn(name) && s.type === 'A') || (fqdn(s.name) === srvName(name) && s.type === 'SRV'));
      const owned = sets.filter((s) => mine(s.comments));
      await writer.removeRecordSets(owned.map((s) => ({ name: s.name, type: s.type })));
      return owned.length > 0;
    }
    const sets = await writer.recordSets();
    const txt = sets.find((s) => fqdn(s.Name ?? '') === fqdn(name) && s.Type === 'TXT');
    if (!txt || !mine((txt.ResourceRecords ?? []).map((r) => (r.Value ?? '').replace(/^"(.*)"$/, '$1')))) return false;
    const doomed = sets.filter((s) => (fqdn(s.Name ?? '') === fqdn(name) && ['A', 'TXT'].includes(s.Type ?? '')) || (fqdn(s.Name ?? '') === srvName(name) && s.Type === 'SRV'));
    await writer.removeRecordSets(doomed);
    return true;
  };

  // ----- drill applications ---------------------------------------------------------------------

  const appFiles = (key: string) => ({ record: path.join(runDir, `${key}.json`), pid: path.join(runDir, `${key}.pid`), log: path.join(runDir, `${key}.log`) });

  const readRecord = (file: string): DrillApplicationRecord | undefined => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as DrillApplicationRecord;
    } catch {
      return undefined;
    }
  };

  /** The recorded process if it is alive and its command line is exactly the one recorded (never a reused pid). */
  const livePidOf = (record: DrillApplicationRecord): number | undefined => {
    let pid: number;
    try {
      pid = Number(fs.readFileSync(appFiles(record.key).pid, 'utf8').trim());
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s, i, all) => i < all.length - 1 || s !== '');
      return cmdline.length === record.argv.length && cmdline.every((arg, i) => arg === record.argv[i]) ? pid : undefined;
    } catch {
      return undefined;
    }
  };

  const appPorts = (): { from: number; to: number } => {
    if (options.appPorts) return options.appPorts;
    const db = config.targets.databases.find((d) => d.engine === 'pgbackrest');
    if (db?.engine === 'pgbackrest') return db.drillPorts;
    throw new LifeboatError('no drill port range to start a drill application on: declare a pgBackRest database target with drillPorts.', 'NO_DRILL_PORTS');
  };

  /** Every drill application the run directory records. */
  const drillApplications = (): DrillApplicationRecord[] => {
    let files: string[];
    try {
      files = fs.readdirSync(runDir).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    return files.map((f) => readRecord(path.join(runDir, f))).filter((r): r is DrillApplicationRecord => r !== undefined);
  };

  /** Stops the recorded process (only if it is still the one recorded) and forgets it; the log stays. */
  const stopRecorded = async (record: DrillApplicationRecord): Promise<string> => {
    const files = appFiles(record.key);
    const pid = livePidOf(record);
    if (pid) await stopPid(pid, 10000);
    fs.rmSync(files.pid, { force: true });
    fs.rmSync(files.record, { force: true });
    return pid ? `stopped drill application ${record.step} of ${record.workflowId} (pid ${pid}, port ${record.port})` : `drill application ${record.step} of ${record.workflowId} was not running`;
  };

  return {
    /** The router's drill zone exists: returns its name (with the trailing dot). The production zone is never touched. */
    async ensureDrillZone(router: string): Promise<string> {
      const { router: r, drillZone, writer } = drillZoneOf(router);
      if (writer instanceof PowerDnsDrillZone) {
        const host = r.kind === 'powerdns' && net.isIPv4(r.dnsServer.host) ? r.dnsServer.host : APP_HOST;
        await writer.ensure(host);
      } else {
        await writer.ensure();
      }
      return drillZone;
    },

    /**
     * Writes the run's copy of a production name in the drill zone (A and SRV, marked with the
     * owner run) pointing at `endpoint`, and waits until it is served. Idempotent: a retry
     * rewrites the same records.
     */
    async pointDrillName(input: {
      workflowId: string;
      router: string;
      target: string;
      productionName: string;
      endpoint: { host: string; port: number };
      ttlSeconds: number;
    }): Promise<{ drillName: string }> {
      if (!input.workflowId) throw new LifeboatError('pointDrillName needs the drill run\'s workflow id: pass workflowId.', 'BAD_INPUT');
      if (!Number.isInteger(input.endpoint?.port) || input.endpoint.port < 1 || input.endpoint.port > 65535) {
        throw new LifeboatError(`the drill endpoint's port ${String(input.endpoint?.port)} is not a TCP port: pass 1-65535.`, 'BAD_INPUT');
      }
      if (!Number.isInteger(input.ttlSeconds) || input.ttlSeconds < 1) throw new LifeboatError(`ttlSeconds ${String(input.ttlSeconds)} is not a positive whole number of seconds: pass one.`, 'BAD_INPUT');
      const { router, drillZone, writer } = drillZoneOf(input.router);
      let drillName: string;
      try {
        drillName = drillNameForRun(input.productionName, router.zone, drillZone, input.workflowId);
      } catch (err) {
        throw new LifeboatError(`${(err as Error).message}.`, 'OUTSIDE_DRILL_ZONE');
      }
      const owner: DrillNameOwner = { workflowId: input.workflowId, runId: runIdOf(input.workflowId), target: input.target };
      await writer.writeName(drillName, input.endpoint, input.ttlSeconds, drillOwnerMark(owner));
      return { drillName };
    },

    /** Removes every drill name the run wrote, in every router's drill zone; returns them. Idempotent. */
    async removeDrillNames(workflowId: string): Promise<string[]> {
      const removed: string[] = [];
      for (const r of config.trafficRouters) {
        if (!r.drillZone) continue;
        for (const owned of await ownedNames(r.name)) {
          if (owned.owner.workflowId !== workflowId) continue;
          if (await removeOwnedName(r.name, owned.name, { workflowId })) removed.push(owned.name);
        }
      }
      return removed;
    },

    /**
     * Starts the application's own copy for a drill step, detached, with its record, pid file and
     * log under the run directory, and waits until it listens. A retry finds the one already
     * running and returns it.
     */
    async startDrillApplication(input: { workflowId: string; step: string; command: string[]; url: string; names: Record<string, string>; dnsServer: string }): Promise<{ pid: number; port: number; url: string }> {
      if (!input.command?.length) throw new LifeboatError(`the drill application of step ${input.step} has no command: give the step's drill.command.`, 'BAD_INPUT');
      const key = drillApplicationKey(input.workflowId, input.step);
      const files = appFiles(key);
      fs.mkdirSync(runDir, { recursive: true });
      const existing = readRecord(files.record);
      if (existing) {
        const pid = livePidOf(existing);
        if (pid) return { pid, port: existing.port, url: existing.url };
        fs.rmSync(files.pid, { force: true });
      }

      // From the top of the range down: drill clusters take theirs from the bottom up.
      const range = appPorts();
      const taken = new Set(drillApplications().filter((r) => r.key !== key && livePidOf(r)).map((r) => r.port));
      let port: number | undefined;
      for (let p = range.to; p >= range.from && port === undefined; p--) {
        if (!taken.has(p) && (await portIsFree(APP_HOST, p))) port = p;
      }
      if (port === undefined) throw new LifeboatError(`every port from ${range.from} to ${range.to} (the drill port range) is taken: stop leftover drills or widen drillPorts.`, 'NO_FREE_PORT', false);

      let argv: string[];
      let url: string;
      try {
        const values = { port, dnsServer: input.dnsServer, names: input.names };
        argv = input.command.map((arg) => fillDrillPlaceholders(arg, values));
        url = fillDrillPlaceholders(input.url, values);
      } catch (err) {
        throw new LifeboatError(`${(err as Error).message}.`, 'BAD_INPUT');
      }
      const record: DrillApplicationRecord = { key, workflowId: input.workflowId, runId: runIdOf(input.workflowId), step: input.step, argv, port, url, startedAt: new Date().toISOString() };
      // The record comes first: a worker lost between it and the start leaves nothing unattributed.
      fs.writeFileSync(files.record, JSON.stringify(record, null, 2));
      const pid = startDetached(argv[0], argv.slice(1), { logFile: files.log, pidFile: files.pid, cwd: INSTALL_DIR });

      const deadline = Date.now() + (options.appStartTimeoutMs ?? 60000);
      for (;;) {
        if (!isAlive(pid) || !livePidOf(record)) {
          throw new LifeboatError(`the drill application of step ${input.step} exited before it listened on port ${port}: ${tailFile(files.log, 5) || 'no output'}`, 'DRILL_APPLICATION_FAILED', false);
        }
        if (await portAnswers(APP_HOST, port)) return { pid, port, url };
        if (Date.now() > deadline) {
          await stopRecorded(record);
          throw new LifeboatError(`the drill application of step ${input.step} did not listen on port ${port} within ${Math.round((options.appStartTimeoutMs ?? 60000) / 1000)} s (stopped): ${tailFile(files.log, 5) || 'no output'}`, 'DRILL_APPLICATION_FAILED', false);
        }
        heartbeat({ waitingFor: `port ${port}` });
        await delay(200);
      }
    },

    /** Stops the drill application of that run and step, only if the recorded pid is still that command. Idempotent. */
    async stopDrillApplication(workflowId: string, step: string): Promise<string> {
      const key = drillApplicationKey(workflowId, step);
      const record = readRecord(appFiles(key).record);
      if (!record) return `no drill application of step ${step} recorded for ${workflowId}`;
      return stopRecorded(record);
    },

    /**
     * What a failover drill must leave exactly as it was, read-only: the production records of the
     * names, each source database (identity, timeline, critical tables, as the verify role), its
     * pgBackRest repositories' backup lists, and each bucket's listing in source and replica. A
     * part its region cannot answer for within the part timeout is `unreachable`.
     */
    async fingerprintProduction(input: { databases: string[]; buckets: string[]; names: Array<{ router: string; name: string }> }): Promise<ProductionFingerprint> {
      const fingerprint: ProductionFingerprint = { takenAt: new Date().toISOString(), names: [], databases: [], buckets: [] };
      for (const n of input.names) {
        routerConfig(n.router);
        const records = await part(partTimeoutMs, `the DNS records of ${n.name}`, async () => {
          const snapshot = await ports.router(n.router).snapshot(n.name);
          return snapshot.records.map((r): FingerprintRecordSet => ({ name: fqdn(r.name), type: r.type, ...(r.ttl !== undefined ? { ttl: r.ttl } : {}), values: [...r.values].sort() }));
        });
        fingerprint.names.push({ router: n.router, name: fqdn(n.name), records });
        heartbeat({ fingerprint: `name ${n.name}` });
      }

      for (const name of input.databases) {
        const target = findDatabaseTarget(config, name);
        const database = await part(partTimeoutMs, `database ${name}`, async (): Promise<DatabaseFingerprint> => {
          if (target.engine !== 'pgbackrest') throw new Error(`fingerprints of ${target.engine} targets are not read yet`);
          const endpoint = { host: target.host, port: target.port, database: target.database, user: target.verifyUser, password: target.verifyPassword ? resolveSecret(target.verifyPassword) : undefined, tls: pgTlsOf(target) };
          return withDatabase(endpoint, async (client) => {
            const control = await client.query<{ system_identifier: string; timeline_id: number }>(
              'SELECT s.system_identifier::text AS system_identifier, c.timeline_id FROM pg_control_system() s, pg_control_checkpoint() c',
            );
            const { facts, unreadable } = await snapshotFacts(client, target.criticalTables);
            if (unreadable.length) throw new Error(`cannot read ${unreadable.map((u) => `${u.table} (${u.reason})`).join(', ')}`);
            return { systemIdentifier: control.rows[0].system_identifier, timeline: Number(control.rows[0].timeline_id), tables: facts.tables.map((t) => ({ table: t.table, rows: t.rows, checksum: t.checksum })) };
          });
        });
        const repositories: RepositoryFingerprint[] = [];
        if (target.engine === 'pgbackrest') {
          const cli = ports.pgbackrest(target);
          for (const [repo, region] of [
            [target.primaryRepo, 'primary'],
            [target.drRepo, 'dr'],
          ] as const) {
            const backups = await part(partTimeoutMs, `pgBackRest repo${repo} of ${name}`, async () => {
              const result = await cli.exec('info', ['--output=json', `--repo=${repo}`], { timeoutMs: partTimeoutMs });
              const stanza = (JSON.parse(result.stdout) as PgBackRestStanzaInfo[]).find((s) => s.name === target.stanza);
              if (!stanza) throw new Error(`stanza ${target.stanza} is not in repo${repo}`);
              const status = stanza.repo?.find((r) => r.key === repo)?.status ?? stanza.status;
              // 0 ok, 2 no backups yet: both are a readable repository; anything else is pgBackRest failing to read it.
              if (status.code !== 0 && status.code !== 2) throw new Error(`pgBackRest says: ${status.message}`);
              return stanza.backup.filter((b) => b.database['repo-key'] === repo).map((b) => ({ label: b.label, stop: b.timestamp.stop }));
            });
            repositories.push({ repo, region, backups });
          }
        }
        fingerprint.databases.push({ target: name, database, repositories });
        heartbeat({ fingerprint: `database ${name}` });
      }

      for (const name of input.buckets) {
        const target = config.targets.buckets.find((b) => b.name === name);
        if (!target) throw new LifeboatError(`bucket target "${name}" is not in the config: name one of targets.buckets.`, 'UNKNOWN_TARGET');
        for (const side of ['source', 'replica'] as const) {
          const where = target[side];
          const listing = await part(partTimeoutMs, `bucket ${where.store}/${where.bucket}`, () => listBucket(ports.objectStore(where.store), where.bucket, partTimeoutMs));
          fingerprint.buckets.push({ target: name, side, store: where.store, bucket: where.bucket, listing });
          heartbeat({ fingerprint: `bucket ${where.bucket}` });
        }
      }
      return fingerprint;
    },

    /** For the drill sweeper: every drill name with its owner run, in one router's drill zone or (no router) in all of them. */
    async listOwnedDrillNames(router?: string): Promise<OwnedDrillName[]> {
      const all: OwnedDrillName[] = [];
      for (const r of config.trafficRouters) if (r.drillZone && (router === undefined || r.name === router)) all.push(...(await ownedNames(r.name)));
      return all;
    },

    /** For the drill sweeper: removes one drill name if it is still marked as that owner's. */
    async removeOwnedDrillName(routerName: string, name: string, owner: { workflowId: string; runId: string }): Promise<boolean> {
      return removeOwnedName(routerName, name, owner);
    },

    /** For the drill sweeper: every drill application recorded, and whether it still runs. */
    async listDrillApplications(): Promise<Array<DrillApplicationRecord & { running: boolean; pid?: number }>> {
      return drillApplications().map((r) => {
        const pid = livePidOf(r);
        return { ...r, running: pid !== undefined, ...(pid ? { pid } : {}) };
      });
    },

    /** For the drill sweeper: stops one recorded drill application (if it is still that owner's and that process) and forgets it. */
    async stopRecordedDrillApplication(key: string, owner: { workflowId: string; runId: string }): Promise<string> {
      const record = readRecord(appFiles(key).record);
      if (!record) return `drill application ${key} is no longer recorded`;
      if (record.workflowId !== owner.workflowId || (record.runId && owner.runId && record.runId !== owner.runId)) {
        return `drill application ${key} now belongs to ${record.workflowId} run ${record.runId}, so it stays`;
      }
      return stopRecorded(record);
    },
  };
}

/** Every object version and delete marker of the bucket, as a listing with a digest; an abort bounds each page. */
async function listBucket(s3: S3Client, bucket: string, timeoutMs: number): Promise<BucketListing> {
  const entries: Array<{ key: string; etag: string; versionId: string }> = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }), { abortSignal: AbortSignal.timeout(timeoutMs) });
    for (const v of page.Versions ?? []) entries.push({ key: v.Key ?? '', etag: v.ETag ?? '', versionId: v.VersionId ?? 'null' });
    for (const m of page.DeleteMarkers ?? []) entries.push({ key: m.Key ?? '', etag: 'delete-marker', versionId: m.VersionId ?? 'null' });
    if (!page.IsTruncated || !page.NextKeyMarker) break;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
  entries.sort((a, b) => (a.key === b.key ? a.versionId.localeCompare(b.versionId) : a.key < b.key ? -1 : 1));
  const digest = createHash('sha256');
  for (const e of entries) digest.update(`${e.key}\0${e.etag}\0${e.versionId}\n`);
  return { count: entries.length, digest: digest.digest('hex'), ...(entries.length <= MAX_LISTED_OBJECTS ? { objects: entries } : {}) };
}
