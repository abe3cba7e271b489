/**
 * The lifecycle of restored clusters once pgBackRest has written them: the port each one takes
 * (claimed by a file under `<restoresDir>/ports`), starting it with pg_ctl (never archiving,
 * unless readied to take traffic), stopping it, waiting until it serves, and describing its state
 * from its record, its postmaster and its log. It also refuses any instance name that would
 * point at the protected source cluster.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describeError, LifeboatError } from '../../domain/errors';
import type { InstanceDescription } from '../../domain/ports';
import { delay, livePid, portIsFree, run } from '../../platform/processes';
import { claimHeld, claimStaleMs } from './claims';
import { shq } from './cli';
import { lastErrorLine } from './errors';
import { chownToOsUser, readTail, within } from './files';
import type { PgBackRestSetup } from './options';
import { instanceFiles, pointLabel, type InstanceFiles, type RestoreRecord } from './records';
import type { ClusterSessions } from './sessions';

/** The settings file a finished restore writes into the cluster: its presence marks the restore done. */
export const RESTORE_CONF = 'lifeboat-restore.conf';

/**
 * A restored cluster must never push WAL into the production repositories. archive_mode=off alone
 * could be undone by ALTER SYSTEM and a restart, so both settings also go on the postgres command
 * line (pg_ctl -o, kept in postmaster.opts for pg_ctl restart), which outranks postgresql.auto.conf.
 */
// No double quotes, $ or backslashes: postmaster.opts keeps each argument in double quotes for pg_ctl restart.
export const ARCHIVE_REFUSAL = "echo 'lifeboat: this is a restored instance, it must not archive WAL into the production repositories' >&2; exit 1";
export const NO_ARCHIVING_OPTIONS = `-c archive_mode=off -c ${shq(`archive_command=${ARCHIVE_REFUSAL}`)}`;

export function postmasterAlive(dataDir: string): boolean {
  return livePid(path.join(dataDir, 'postmaster.pid'), dataDir) !== undefined;
}

export class RestoredClusters {
  constructor(
    private readonly setup: Pick<PgBackRestSetup, 'source' | 'restoresDir' | 'osUser' | 'host' | 'portRange' | 'drillPortRange' | 'pgBin' | 'timings'>,
    private readonly sessions: ClusterSessions,
  ) {}

  files(instanceId: string): InstanceFiles {
    return instanceFiles(this.setup.restoresDir, instanceId);
  }

  refuseSource(instanceId: string, verb: 'delete' | 'restore into' | 'cut over to'): void {
    const dir = this.files(instanceId).dataDir;
    const sourceDir = path.resolve(this.setup.source.dataDir);
    const real = (p: string) => {
      try {
        return fs.realpathSync(p);
      } catch {
        return p;
      }
    };
    if (instanceId === this.setup.source.instanceId || real(dir) === real(sourceDir) || within(real(dir), real(sourceDir)) || within(real(sourceDir), real(dir))) {
      if (verb === 'delete') {
        throw new LifeboatError(
          `Refusing to delete ${instanceId}: it is the protected source cluster (${sourceDir}), and lifeboat deletes only instances it restored; check which instance the cleanup was asked to remove.`,
          'DELETE_SOURCE_REFUSED',
        );
      }
      if (verb === 'cut over to') {
        throw new LifeboatError(`Refusing to cut over to ${instanceId}: it is the source cluster (${sourceDir}) itself; traffic moves only to a restored instance.`, 'CUTOVER_TO_SOURCE_REFUSED');
      }
      throw new LifeboatError(
        `Refusing to restore into ${instanceId}: it is the protected source cluster (${sourceDir}), and lifeboat only restores into a new instance; choose a different destination name.`,
        'RESTORE_OVER_SOURCE',
      );
    }
  }

  async start(record: RestoreRecord): Promise<void> {
    const { osUser, pgBin } = this.setup;
    fs.appendFileSync(record.logFile, `lifeboat: starting PostgreSQL on port ${record.port}\n`);
    await chownToOsUser(osUser, record.logFile);
    const started = await run(pgBin('pg_ctl'), ['-D', record.dataDir, '-l', record.logFile, ...startOptions(record), '-W', 'start'], { asUser: osUser, check: false });
    if (started.code !== 0 && !postmasterAlive(record.dataDir)) {
      throw new LifeboatError(`PostgreSQL of restored instance ${record.instanceId} did not start (${(lastErrorLine(readTail(record.logFile)) ?? started.stderr.trim()) || 'no reason given'}); see ${record.logFile}.`, 'INSTANCE_START_FAILED', false);
    }
  }

  async stop(dataDir: string): Promise<void> {
    if (!postmasterAlive(dataDir)) return;
    const { osUser, pgBin, timings } = this.setup;
    const pgCtl = pgBin('pg_ctl');
    const t = String(timings.stopTimeoutSec);
    const fast = await run(pgCtl, ['-D', dataDir, '-m', 'fast', '-w', '-t', t, 'stop'], { asUser: osUser, check: false });
    if (fast.code !== 0 && postmasterAlive(dataDir)) {
      await run(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', '-t', t, 'stop'], { asUser: osUser, check: false });
    }
  }

  async waitUntilServing(record: RestoreRecord): Promise<void> {
    const { host, timings } = this.setup;
    const deadline = Date.now() + timings.settleTimeoutMs;
    for (;;) {
      const state = await this.sessions.facts(record.port, host).catch(() => undefined);
      if (state?.status === 'available') return;
      if (Date.now() > deadline || (!postmasterAlive(record.dataDir) && startupFailure(readTail(record.logFile)))) {
        throw new LifeboatError(`Restored instance ${record.instanceId} does not accept connections after its restart (${state?.status ?? 'no answer'}); see ${record.logFile}.`, 'INSTANCE_START_FAILED', false);
      }
      await delay(timings.pollMs);
    }
  }

  async describe(record: RestoreRecord): Promise<InstanceDescription> {
    const { host, timings } = this.setup;
    const files = this.files(record.instanceId);
    const base: InstanceDescription = { instanceId: record.instanceId, status: 'unknown', endpoint: { host, port: record.port }, createdByLifeboat: true };
    if (record.owner) base.owner = record.owner;
    if (record.servedTraffic) base.servedTraffic = true;
    if (livePid(files.pid, files.script) !== undefined || claimHeld(files.claim, claimStaleMs(timings))) {
      return { ...base, status: 'restoring', detail: `pgBackRest is restoring ${record.instanceId} from repo${record.repo} (log: ${record.logFile}).` };
    }
    if (!fs.existsSync(path.join(record.dataDir, RESTORE_CONF))) {
      const reason = lastErrorLine(readTail(record.logFile));
      return { ...base, status: 'failed', detail: `The restore of ${record.instanceId} from repo${record.repo} did not finish${reason ? `: ${reason}` : ''} (log: ${record.logFile}); delete the instance and restore again.` };
    }
    // Only this cluster's own postmaster counts: something else may answer on a port it left.
    if (!postmasterAlive(record.dataDir)) {
      const failure = startupFailure(readTail(record.logFile));
      if (failure) {
        return { ...base, status: 'failed', detail: `PostgreSQL of restored instance ${record.instanceId} stopped during recovery: ${failure} (log: ${record.logFile}).` };
      }
      // The restore script ends by exec'ing pg_ctl (its command line names the data directory, not the script): PostgreSQL is still being started.
      if (livePid(files.pid, files.dataDir) !== undefined) return { ...base, status: 'starting', detail: `PostgreSQL of restored instance ${record.instanceId} is being started (log: ${record.logFile}).` };
      // Said since the last start (a port another process took, a full disk): the reason it is down.
      const lastError = stopReason(readTail(record.logFile));
      return { ...base, status: 'stopped', detail: `PostgreSQL of restored instance ${record.instanceId} is not running${lastError ? ` (${lastError})` : ''} (log: ${record.logFile}).` };
    }
    try {
      const facts = await this.sessions.facts(record.port, host);
      const detail = facts.status === 'replaying-wal' ? `PostgreSQL is replaying WAL towards ${record.note ? 'the end of the archive' : pointLabel(record.point)}.` : record.note;
      return { ...base, ...facts, ...(detail ? { detail } : {}) };
    } catch (err) {
      return { ...base, status: 'starting', detail: `PostgreSQL is starting and replaying WAL (${describeError(err)}).` };
    }
  }

  /** A free port from the range (a drill's from the drill range), claimed by an exclusive file so two restores never share one. */
  async claimPort(name: string, purpose?: 'drill'): Promise<number> {
    const { restoresDir, source, host } = this.setup;
    const portRange = purpose === 'drill' ? this.setup.drillPortRange : this.setup.portRange;
    const dir = path.join(restoresDir, 'ports');
    fs.mkdirSync(dir, { recursive: true });
    for (let port = portRange.from; port <= portRange.to; port++) {
      if (port === source.port) continue;
      const claim = this.portClaim(port);
      try {
        const owner = fs.readFileSync(claim, 'utf8').trim();
        if (owner === name) return port;
        // A claim whose instance record is gone is stale (removed by hand): free it.
        if (fs.existsSync(path.join(restoresDir, `${owner}.json`))) continue;
        fs.rmSync(claim, { force: true });
      } catch {
        /* unclaimed */
      }
      if (!(await portIsFree(host, port))) continue;
      try {
        fs.writeFileSync(claim, `${name}\n`, { flag: 'wx' });
        return port;
      } catch {
        continue;
      }
    }
    throw new LifeboatError(
      `Every port from ${portRange.from} to ${portRange.to} (the ${purpose === 'drill' ? 'drill' : 'restore'} port range) is taken by restored instances or other servers; delete restored instances that are no longer needed or widen the port range.`,
      'NO_FREE_PORT',
      false,
    );
  }

  portClaim(port: number): string {
    return path.join(this.setup.restoresDir, 'ports', String(port));
  }
}

/**
 * Command-line settings of a start (they win over every file). A cut-over instance keeps
 * archive_mode on; what it pushes, if anything, is its archive_command (ALTER SYSTEM).
 */
function startOptions(record: RestoreRecord): string[] {
  // Only an instance readied to take traffic may archive; every other start refuses on the command line.
  return record.archiving ? ['-o', '-c archive_mode=on'] : ['-o', NO_ARCHIVING_OPTIONS];
}

/** The log since lifeboat last started PostgreSQL: what an earlier start said does not explain this one. */
function sinceLastStart(log: string): string {
  const lastStart = Math.max(log.lastIndexOf('lifeboat: starting'), log.lastIndexOf('lifeboat: restore finished'));
  return lastStart >= 0 ? log.slice(lastStart) : log;
}

/** Why the postmaster went down, when it said so since its last start; refusals of single connections are no reason. */
function stopReason(log: string): string | undefined {
  const line = sinceLastStart(log)
    .split('\n')
    .reverse()
    .find((l) => /\b(FATAL|PANIC):/.test(l) && !/\w+@\w+/.test(l.split(/FATAL|PANIC/)[0]) && !/the database system is|not yet accepting connections|terminating connection|connection to client/.test(l));
  return line?.trim().replace(/^.*?\b(FATAL|PANIC):\s*/, '$1: ');
}

/** Why PostgreSQL stopped during recovery, if its log says so since the last start. */
function startupFailure(log: string): string | undefined {
  const since = sinceLastStart(log);
  if (!/aborting startup|startup process .* exited with exit code|PANIC:|terminated by signal/.test(since)) return undefined;
  const fatal = since.split('\n').reverse().find((l) => /\b(FATAL|PANIC):/.test(l) && !/\w+@\w+/.test(l.split(/FATAL|PANIC/)[0]));
  return fatal ? fatal.replace(/^.*?\b(FATAL|PANIC):\s*/, '') : 'the startup process failed';
}
