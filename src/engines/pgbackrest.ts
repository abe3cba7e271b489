/**
 * Self-managed PostgreSQL protected by pgBackRest as a DatabaseEngine.
 *
 * pgBackRest is driven through its CLI as the database's OS user, never re-implemented:
 * - Backups are pgBackRest backups annotated `lifeboat-backup=<name>`. The annotation is what
 *   makes them idempotent: a retried activity finds its backup by name and adopts it. Backups run
 *   DETACHED (own process group, pid and log file in the run directory) so a worker crash or
 *   activity timeout does not kill them; a retried start adopts the live process.
 * - The DR copy is a second backup into the DR repository (see copyToDisasterRecovery).
 * - Point-in-time restores always go into a NEW cluster under `restoresDir`, on a free port from
 *   `portRange`, with archiving off; the restore (file copy) and the start run detached too, and
 *   the cluster replays WAL from the chosen repository when it starts. A small JSON record next to
 *   each restored cluster (`<restoresDir>/<name>.json`) says it is lifeboat's and which port it has.
 *
 * The worker must run on the database host (pgBackRest, pg_ctl and the data directories are local).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describeError, LifeboatError } from '../domain/errors';
import { describeOwner, isSameRun } from '../domain/ownership';
import type {
  BackupHandle,
  BackupKind,
  BackupProgress,
  BackupVerification,
  DatabaseEngine,
  InstanceDescription,
  NewPrimaryProtection,
  ResourceOwner,
  RecoveryPointLag,
  RestorePoint,
  RestoreRequest,
  RestoreWindow,
  RunIdentity,
  SourceFence,
} from '../domain/ports';
import { currentUser, delay, isAlive, livePid, portIsFree, run, startDetached, stopPid } from '../platform/processes';
import type { PgBackRestBackupInfo, PgBackRestCli } from './pgbackrest-cli';
import { newPgClient } from './pg-client';
import type { Client } from 'pg';
import { formatBytes } from '../domain/format';

/** The pgBackRest annotation key that carries lifeboat's backup name. */
export const BACKUP_ANNOTATION = 'lifeboat-backup';

/** The protected source cluster. */
export interface PgBackRestSource {
  /** Engine-scoped id of the source (the target name); describeInstance/deleteInstance recognize it. */
  instanceId: string;
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  /** The cluster's data directory (pgBackRest's pg1-path): restores never write here. */
  dataDir: string;
  socketDir?: string;
}

/** Durations, all injectable so tests and slow hosts can tune them. */
export interface PgBackRestTimings {
  /** How long a fresh backup or restore process is watched for an immediate failure (busy lock, bad option). */
  startWatchMs: number;
  pollMs: number;
  /** pg_ctl stop timeout for each of the fast and immediate modes, in seconds. */
  stopTimeoutSec: number;
  connectTimeoutMs: number;
  /** Timeout of short pgBackRest commands (info, repo-ls, verify, expire), in ms. */
  commandTimeoutMs: number;
  /** How long a setting change (reload) or a first archived segment may take to show, in ms. */
  settleTimeoutMs: number;
}

export const DEFAULT_TIMINGS: PgBackRestTimings = {
  startWatchMs: 10000,
  pollMs: 200,
  stopTimeoutSec: 30,
  connectTimeoutMs: 5000,
  commandTimeoutMs: 30 * 60 * 1000,
  settleTimeoutMs: 60000,
};

export interface PgBackRestEngineOptions {
  cli: PgBackRestCli;
  source: PgBackRestSource;
  /** Where restored clusters live (`<restoresDir>/<name>`); owned by the OS user. */
  restoresDir: string;
  /** Pid and log files of detached backups. */
  runDir: string;
  /** OS user that owns the clusters (default: the CLI's user, else the current user). */
  osUser?: string;
  /** PostgreSQL's bin directory, or a function naming a program in it. */
  pgBin: string | ((program: string) => string);
  /** Address restored clusters listen on (default: the source's host; 127.0.0.1 when that is a socket directory). */
  host?: string;
  /** Ports restored clusters may take (inclusive). */
  portRange?: { from: number; to: number };
  primaryRepo?: number;
  drRepo?: number;
  /** Extra server settings for restored clusters (for example shared_buffers). */
  restoreSettings?: Record<string, string | number | boolean>;
  /** How many of the newest archived WAL segments are scanned for the last commit (default 4). */
  walScanSegments?: number;
  timings?: Partial<PgBackRestTimings>;
}

type Region = 'primary' | 'dr';

/** A backup set as `info --output=json` reports it, with the fields lifeboat reads. */
interface BackupSet extends PgBackRestBackupInfo {
  annotation?: Record<string, string>;
  prior?: string | null;
  reference?: string[] | null;
}

interface StanzaInfo {
  name: string;
  status: { code: number; message: string; lock?: { backup?: { held?: boolean } } };
  backup: BackupSet[];
  archive: Array<{ id: string; min: string | null; max: string | null; database: { id: number; 'repo-key': number } }>;
  repo: Array<{ key: number; status: { code: number; message: string } }>;
  /** system-id is kept as a string: it does not fit a JavaScript number. */
  db: Array<{ id: number; 'system-id': string; version: string; 'repo-key': number }>;
}

/** What lifeboat records next to a restored cluster. */
interface RestoreRecord {
  instanceId: string;
  name: string;
  createdBy: 'lifeboat';
  createdAt: string;
  repo: number;
  fromRegion: Region;
  point: RestorePoint;
  /** The pgBackRest recovery arguments actually used (a time past the last archived commit becomes an LSN). */
  recovery: string[];
  note?: string;
  port: number;
  dataDir: string;
  socketDir: string;
  logFile: string;
  /** The workflow run that made it; records written before owners were recorded have none and are never adopted or deleted. */
  owner?: ResourceOwner;
  /** Set when a cutover pointed traffic at it: never removed automatically from then on. */
  servedTraffic?: boolean;
  servedTrafficAt?: string;
  /**
   * Set once the instance is readied to take a target's traffic: from then on it starts with
   * archive_mode on. `held`: WAL is kept but not pushed; `on`: pushed to the target's repositories.
   */
  archiving?: { state: 'held' | 'on'; since: string; owner?: { workflowId: string; runId: string } };
}

interface InstanceFiles {
  name: string;
  dataDir: string;
  record: string;
  log: string;
  pid: string;
  /** Held while one attempt decides and starts the restore. */
  claim: string;
  script: string;
  tablespaces: string;
}

interface ArchiveTail {
  segment: string;
  /** When the newest segment reached the repository. */
  archivedAt: Date;
  /** Start LSN of the last complete record in the newest segment. */
  lastRecordLsn?: string;
  /** The newest commit or abort found in the scanned segments, in microseconds since the epoch. */
  lastCommit?: { atUs: number; at: string; lsn: string };
}

const VALID_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const LABEL = /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/;
const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;
const RESTORE_CONF = 'lifeboat-restore.conf';
/** Scratch directories of WAL reads under the restores directory, and the age after which no live read owns one (a read takes seconds and writes into it as it goes). */
const WAL_SCRATCH_PREFIX = '.wal-';
const WAL_SCRATCH_STALE_MS = 10 * 60_000;
const WAL_SCRATCH_OWNER = 'owner.pid';

/** Start time of a process in clock ticks since boot (/proc/<pid>/stat field 22): tells a live owner from a reused pid. */
function processStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
const ownProcessStart = () => processStart(process.pid) ?? '';

/** False only when the scratch directory names its process and that process is gone (or its pid now belongs to another). */
function walScratchOwnerAlive(dir: string): boolean {
  let pid: number;
  let started: string | undefined;
  try {
    const [pidLine, startLine] = fs.readFileSync(path.join(dir, WAL_SCRATCH_OWNER), 'utf8').split('\n');
    pid = Number(pidLine);
    started = startLine || undefined;
  } catch {
    // Not written yet (a read just starting) or from before owners were recorded: age decides.
    return true;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return false;
  return started === undefined || processStart(pid) === started;
}
/**
 * A restored cluster must never push WAL into the production repositories. archive_mode=off alone
 * could be undone by ALTER SYSTEM and a restart, so both settings also go on the postgres command
 * line (pg_ctl -o, kept in postmaster.opts for pg_ctl restart), which outranks postgresql.auto.conf.
 */
// No double quotes, $ or backslashes: postmaster.opts keeps each argument in double quotes for pg_ctl restart.
const ARCHIVE_REFUSAL = "echo 'lifeboat: this is a restored instance, it must not archive WAL into the production repositories' >&2; exit 1";
const NO_ARCHIVING_OPTIONS = `-c archive_mode=off -c ${shq(`archive_command=${ARCHIVE_REFUSAL}`)}`;

/**
 * A file-system-safe local name for `name`: a valid name is kept; anything else is rewritten and
 * suffixed with a short hash of the original, so the mapping is deterministic and collision-free.
 */
export function localName(name: string): string {
  if (VALID_NAME.test(name)) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  let base = name.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 50).replace(/[-.]+$/, '');
  if (!base) base = 'lb';
  return `${base}-${hash}`;
}

/** Quotes a string for POSIX sh. */
function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A value for postgresql.conf. */
function confValue(value: string | number | boolean): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** An ISO time as pgBackRest and PostgreSQL both parse it (`2024-05-01 12:30:00.123+00`). */
function pgTime(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '+00');
}

function iso(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString();
}

/** The last pgBackRest or PostgreSQL error line in some output. */
function lastErrorLine(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/\bERROR: \[\d+\]/.test(lines[i]) || /\b(FATAL|PANIC):/.test(lines[i])) return lines[i].replace(/^.*?\b(ERROR|FATAL|PANIC): /, '$1: ');
  }
  return undefined;
}

function readTail(file: string, bytes = 64 * 1024): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.max(0, size - bytes);
      const buf = Buffer.alloc(size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** Turns a pgBackRest failure into a one-sentence LifeboatError that says what to do. */
export function classifyPgBackRestError(err: unknown, doing: string): LifeboatError {
  if (err instanceof LifeboatError) return err;
  const text = describeError(err);
  const line = lastErrorLine(text) ?? text.split('\n').filter(Boolean).slice(-1)[0] ?? text;
  const code = /\[(\d+)\]/.exec(line)?.[1];
  const said = line.replace(/\s+/g, ' ').replace(/[.\s]+$/, '');
  if (code === '050' || /unable to acquire lock/.test(text)) {
    return new LifeboatError(`pgBackRest is busy with another backup or expire of this stanza while ${doing}; lifeboat will retry when it finishes.`, 'PGBACKREST_BUSY', false);
  }
  if (/is not installed/.test(text)) return new LifeboatError(describeError(err), 'TOOL_MISSING');
  if (code === '075' && /cannot be expired until another full backup/.test(text)) {
    return new LifeboatError(`pgBackRest refused ${doing} because it is the only full backup in that repository (${said}); take another full backup first.`, 'LAST_FULL_BACKUP');
  }
  if (/no backup set found|unable to find backup set/.test(text)) {
    return new LifeboatError(`pgBackRest found no backup to restore from while ${doing} (${said}); take a backup into that repository first or choose a later restore point.`, 'NO_BACKUP_TO_RESTORE');
  }
  if (/stanza-create|missing stanza|does not exist.*stanza|archive\.info|backup\.info/.test(text) && /missing|does not exist|unable to (open|load)/.test(text)) {
    return new LifeboatError(`pgBackRest has no stanza in that repository while ${doing} (${said}); run \`pgbackrest stanza-create\` for the stanza and try again.`, 'STANZA_MISSING');
  }
  if (code && ['031', '032', '033', '034', '035', '036', '037', '042', '047', '091'].includes(code)) {
    return new LifeboatError(`pgBackRest rejected its configuration while ${doing} (${said}); fix the pgBackRest configuration or the lifeboat config and try again.`, 'PGBACKREST_CONFIG');
  }
  if (/permission denied/i.test(text)) {
    return new LifeboatError(`Permission was denied while ${doing} (${said}); run the worker as root or as the database's OS user and check the ownership of the pgBackRest and data directories.`, 'PERMISSION_DENIED');
  }
  return new LifeboatError(`pgBackRest failed while ${doing} (${said}); lifeboat will retry, and if it keeps failing check the pgBackRest log.`, 'PGBACKREST_FAILED', false);
}

export class PgBackRestEngine implements DatabaseEngine {
  readonly kind = 'pgbackrest' as const;
  readonly source: PgBackRestSource;
  readonly restoresDir: string;
  readonly runDir: string;
  readonly osUser: string;
  readonly host: string;
  readonly portRange: { from: number; to: number };
  readonly primaryRepo: number;
  readonly drRepo: number;
  readonly timings: PgBackRestTimings;
  private readonly cli: PgBackRestCli;
  private readonly pgBin: (program: string) => string;
  private readonly restoreSettings: Record<string, string | number | boolean>;
  private readonly walScanSegments: number;

  constructor(options: PgBackRestEngineOptions) {
    this.cli = options.cli;
    this.source = options.source;
    this.restoresDir = path.resolve(options.restoresDir);
    this.runDir = path.resolve(options.runDir);
    this.osUser = options.osUser ?? options.cli.options.osUser ?? currentUser();
    const bin = options.pgBin;
    this.pgBin = typeof bin === 'function' ? bin : (program: string) => path.join(bin, program);
    // Restored clusters listen on TCP: a source reached through its socket directory gives loopback.
    const host = options.host ?? options.source.host;
    this.host = host.startsWith('/') ? '127.0.0.1' : host;
    this.portRange = options.portRange ?? { from: 55440, to: 55499 };
    this.primaryRepo = options.primaryRepo ?? 1;
    this.drRepo = options.drRepo ?? 2;
    this.restoreSettings = options.restoreSettings ?? {};
    this.walScanSegments = options.walScanSegments ?? 4;
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
    if (this.primaryRepo === this.drRepo) {
      throw new LifeboatError(`The pgBackRest target ${this.source.instanceId} uses repo${this.primaryRepo} for both regions; give the DR region its own repository (drRepo) in the lifeboat config.`, 'INVALID_CONFIG');
    }
    const sourceDir = path.resolve(this.source.dataDir);
    if (within(this.restoresDir, sourceDir) || within(sourceDir, this.restoresDir)) {
      throw new LifeboatError(`The restores directory ${this.restoresDir} overlaps the source data directory ${sourceDir}; restores must never write into the source, so choose a separate restores directory.`, 'INVALID_CONFIG');
    }
    if (this.portRange.from > this.portRange.to) {
      throw new LifeboatError(`The port range ${this.portRange.from}-${this.portRange.to} for restored clusters is empty; give a range whose start is not above its end.`, 'INVALID_CONFIG');
    }
  }

  // ---------------------------------------------------------------- source

  async describeSource(): Promise<InstanceDescription> {
    const s = this.source;
    const base: InstanceDescription = { instanceId: s.instanceId, status: 'unreachable', endpoint: { host: s.host, port: s.port }, createdByLifeboat: false };
    try {
      const facts = await this.query(s.port, s.host);
      return { ...base, ...facts };
    } catch (err) {
      const running = livePid(path.join(s.dataDir, 'postmaster.pid'), s.dataDir) !== undefined;
      return {
        ...base,
        status: running ? 'unreachable' : 'stopped',
        detail: `The source ${s.instanceId} does not answer on ${s.host}:${s.port} (${describeError(err)}).`,
      };
    }
  }

  // ---------------------------------------------------------------- backups

  async startBackup(request: { backupName: string; kind: BackupKind }): Promise<BackupHandle> {
    // pgBackRest's smallest self-contained backup is a full one; an RDS-style "snapshot" is a full.
    const type = request.kind === 'snapshot' ? 'full' : request.kind;
    return this.backupInto(this.primaryRepo, request.backupName, type);
  }

  async backupProgress(handle: BackupHandle): Promise<BackupProgress> {
    const repo = this.repoOf(handle);
    const name = handle.name ?? (LABEL.test(handle.backupId) ? undefined : handle.backupId);
    const files = name ? this.backupFiles(repo, name) : undefined;
    // The process first, then the repository: a backup that finishes in between shows in info.
    const pid = files ? livePid(files.pid, files.marker) : undefined;
    const set = await this.findBackup(repo, handle);
    const what = `${name ? `backup ${name}` : `backup ${handle.backupId}`} in repo${repo} (${this.regionOfRepo(repo)})`;
    if (set) {
      if (files && pid === undefined) removeFiles(files.pid, files.log);
      const progress: BackupProgress = {
        state: 'complete',
        percent: 100,
        detail: `pgBackRest ${set.type} ${what} is complete as ${set.label}: ${formatBytes(set.info.size)} of data, ${formatBytes(set.info.repository.delta)} stored.`,
        sizeBytes: set.info.repository.delta,
        startedAt: iso(set.timestamp.start),
        completedAt: iso(set.timestamp.stop),
        backupId: set.label,
      };
      if (set.error) progress.detail += ' pgBackRest reported page checksum errors: verification will fail.';
      return progress;
    }
    if (pid !== undefined && files) {
      const percent = await this.runningPercent();
      const progress: BackupProgress = {
        state: 'running',
        detail: `pgBackRest ${what} is running${percent !== undefined ? ` (${percent}% copied)` : ''}.`,
        // Anything pgBackRest does moves one of these; a hung pgBackRest (alive, stuck) moves none.
        activity: [percent ?? '', fileSize(files.log), processGroupWork(pid)].join('/'),
      };
      if (percent !== undefined) progress.percent = percent;
      const started = fileTime(files.pid);
      if (started) progress.startedAt = started;
      return progress;
    }
    const failure = files ? lastErrorLine(readTail(files.log)) : undefined;
    return {
      state: 'failed',
      detail: failure
        ? `pgBackRest ${what} failed: ${failure} (log: ${files!.log}); take a new backup.`
        : `There is no ${what} and no pgBackRest process making it; it failed or was expired, so take a new backup.`,
    };
  }

  /**
   * Stops the pgBackRest process making this backup, if one runs (a hung backup, or a cancelled
   * workflow's). SIGCONT too, so a stopped process can act on SIGTERM: pgBackRest then ends its
   * helpers and frees the stanza's lock; an unfinished set is cleaned or resumed by the next backup.
   */
  async stopBackup(handle: BackupHandle): Promise<void> {
    const repo = this.repoOf(handle);
    const name = handle.name ?? (LABEL.test(handle.backupId) ? undefined : handle.backupId);
    const files = name ? this.backupFiles(repo, name) : undefined;
    const pid = files ? livePid(files.pid, files.marker) : undefined;
    if (pid === undefined) return;
    const stopping = stopPid(pid, 10000);
    try {
      process.kill(-pid, 'SIGCONT');
    } catch {
      /* already gone */
    }
    await stopping;
  }

  async verifyBackup(handle: BackupHandle): Promise<BackupVerification> {
    const repo = this.repoOf(handle);
    const where = `repo${repo} (${this.regionOfRepo(repo)})`;
    const checks: BackupVerification['checks'] = [];
    const info = await this.stanzaInfo(repo, 'verifying a backup');
    const set = info ? this.matchBackup(info, repo, handle) : undefined;
    if (!set || !info) {
      checks.push({ name: 'backup-set', ok: false, detail: `There is no finished backup ${handle.name ?? handle.backupId} in ${where}.` });
      return { ok: false, checks };
    }
    checks.push({
      name: 'backup-set',
      ok: true,
      detail: `Backup set ${set.label} (${set.type}) exists in ${where}: taken ${iso(set.timestamp.start)} to ${iso(set.timestamp.stop)}, WAL ${set.archive.start} to ${set.archive.stop}.`,
    });
    checks.push({
      name: 'page-checksums',
      ok: set.error !== true,
      detail:
        set.error === true
          ? `pgBackRest found page checksum errors while taking ${set.label}; check the source for corruption and take a new backup.`
          : set.error === false
            ? 'pgBackRest found no page checksum errors while copying the data files.'
            : 'pgBackRest did not check page checksums for this backup.',
    });

    // `verify --set` reads back every file of the set and the WAL in the archive. pgBackRest 2.45
    // documents --set of verify as internal; should a version refuse it, the whole repository is verified.
    const verifyArgs = [`--repo=${repo}`, '--output=text', '--verbose', '--log-level-console=warn'];
    const runVerify = (extra: string[]) =>
      this.cli.exec('verify', [...verifyArgs, ...extra], { check: false, timeoutMs: this.timings.commandTimeoutMs }).catch((err: unknown) => ({ code: -1, stdout: '', stderr: describeError(err) }));
    let verify = await runVerify([`--set=${set.label}`]);
    if (verify.code !== 0 && /option '?set'? .*(not valid|invalid)|invalid option '--set'/i.test(`${verify.stdout}${verify.stderr}`)) verify = await runVerify([]);
    checks.push(summarizeVerify(verify, set.label));

    // The backup must be of the source's data: compare system identifiers when the source answers.
    const db = info.db.find((d) => d.id === set.database.id && d['repo-key'] === set.database['repo-key']);
    let sourceId: string | undefined;
    try {
      sourceId = (await this.query(this.source.port, this.source.host)).identity;
    } catch {
      sourceId = undefined;
    }
    checks.push({
      name: 'source-identity',
      ok: !!db && (!sourceId || db['system-id'] === sourceId),
      detail: !db
        ? `pgBackRest lists no database entry for ${set.label}.`
        : !sourceId
          ? `Taken of the cluster with system identifier ${db['system-id']} (source not reachable to compare).`
          : db['system-id'] === sourceId
            ? `Taken of the source cluster (system identifier ${sourceId}).`
            : `Taken of the cluster with system identifier ${db['system-id']}, but the source now has ${sourceId}: the source was re-initialized since.`,
    });
    return { ok: checks.every((c) => c.ok), checks };
  }

  /**
   * pgBackRest 2.45 cannot copy a backup set from one repository to another. What the DR region
   * needs is a complete, restorable backup set in its own repository plus the WAL after it; the
   * WAL is already archived to every repository by archive-push. So the "copy" is a second backup
   * of the source, of the same type, taken straight into the DR repository and annotated with
   * copyName (a diff or incr becomes a full when the DR repository has no full yet). It is a
   * backup of the source as of now, not a byte copy of the primary one, and it needs the source up.
   */
  async copyToDisasterRecovery(handle: BackupHandle, request: { copyName: string }): Promise<BackupHandle> {
    const repo = this.repoOf(handle);
    if (repo === this.drRepo) {
      throw new LifeboatError(`Backup ${handle.name ?? handle.backupId} is already in the DR repository repo${repo}; only backups in the primary repository repo${this.primaryRepo} are copied.`, 'INVALID_BACKUP_HANDLE');
    }
    const original = await this.findBackup(repo, handle);
    if (!original) {
      const progress = await this.backupProgress(handle);
      if (progress.state === 'running') {
        throw new LifeboatError(`Backup ${handle.name ?? handle.backupId} is still running in repo${repo}; lifeboat copies it to the DR repository when it has finished.`, 'BACKUP_NOT_FINISHED', false);
      }
      throw new LifeboatError(`Backup ${handle.name ?? handle.backupId} does not exist in repo${repo}, so it cannot be copied to the DR repository; take a new backup.`, 'BACKUP_NOT_FOUND');
    }
    return this.backupInto(this.drRepo, request.copyName, original.type);
  }

  async deleteBackup(handle: BackupHandle): Promise<void> {
    const repo = this.repoOf(handle);
    const name = handle.name ?? (LABEL.test(handle.backupId) ? undefined : handle.backupId);
    const files = name ? this.backupFiles(repo, name) : undefined;
    // A backup still running is stopped first (a cancelled workflow compensating), then expired if it made it.
    const pid = files ? livePid(files.pid, files.marker) : undefined;
    if (pid !== undefined) await stopPid(pid);
    const info = await this.stanzaInfo(repo, 'deleting a backup');
    const set = info ? this.matchBackup(info, repo, handle) : undefined;
    if (files) removeFiles(files.pid, files.log);
    if (!set || !info) return;
    if (!set.annotation?.[BACKUP_ANNOTATION]) {
      throw new LifeboatError(
        `Backup ${set.label} in repo${repo} has no ${BACKUP_ANNOTATION} annotation, so lifeboat did not make it and will not expire it; remove it from the catalog or expire it by hand if it is really unwanted.`,
        'NOT_MANAGED_BY_LIFEBOAT',
      );
    }
    // pgBackRest expires a set together with every backup that depends on it: never silently.
    const dependents = info.backup.filter((b) => b.database['repo-key'] === repo && b.label !== set.label && (b.prior === set.label || b.reference?.includes(set.label)));
    if (dependents.length > 0) {
      throw new LifeboatError(
        `Backup ${set.label} in repo${repo} is the base of ${dependents.map((d) => d.label).join(', ')}, which pgBackRest would expire with it; delete those backups first.`,
        'BACKUP_HAS_DEPENDENTS',
      );
    }
    // pgBackRest requires every new label to sort after every label it has seen: once the newest
    // full is gone, a diff or incr on an older full would be refused until the next full backup.
    const fulls = info.backup.filter((b) => b.database['repo-key'] === repo && b.type === 'full').sort((a, b) => a.label.localeCompare(b.label));
    if (set.type === 'full' && fulls.length > 1 && fulls[fulls.length - 1].label === set.label) {
      throw new LifeboatError(
        `Backup ${set.label} is the newest full backup in repo${repo}, and expiring it would make pgBackRest refuse differential and incremental backups until the next full one; take a new full backup first, then delete this one.`,
        'NEWEST_FULL_BACKUP',
      );
    }
    try {
      await this.cli.exec('expire', [`--repo=${repo}`, `--set=${set.label}`, '--log-level-console=warn'], { timeoutMs: this.timings.commandTimeoutMs });
    } catch (err) {
      throw classifyPgBackRestError(err, `expiring backup ${set.label} from repo${repo}`);
    }
  }

  // ---------------------------------------------------------------- point-in-time restore

  /**
   * earliest: when the oldest backup set in the region's repository finished (a restore cannot
   * stop before its backup is consistent). latest: when the newest WAL segment reached that
   * repository (pgBackRest's repo-ls time, whole seconds), or the last archived commit when
   * pg_waldump finds one later than that. Everything is read from the repository alone, so this
   * works while the source is down. A time between the last archived commit and `latest` is
   * restorable: startRestore turns it into "everything archived" (see resolveRecovery).
   */
  async restoreWindow(fromRegion: Region = 'primary'): Promise<RestoreWindow> {
    const repo = fromRegion === 'dr' ? this.drRepo : this.primaryRepo;
    const where = `repo${repo} (${fromRegion})`;
    const info = await this.stanzaInfo(repo, `reading the restore window of ${where}`);
    const sets = (info?.backup ?? []).filter((b) => b.database['repo-key'] === repo && !b.error).sort((a, b) => a.timestamp.stop - b.timestamp.stop);
    if (!info || sets.length === 0) {
      throw new LifeboatError(`There is no backup of stanza ${this.cli.options.stanza} in ${where}, so nothing can be restored from it; take a backup${fromRegion === 'dr' ? ' and its DR copy' : ''} first.`, 'NO_BACKUPS');
    }
    const earliest = new Date(sets[0].timestamp.stop * 1000);
    let latest = new Date(sets[sets.length - 1].timestamp.stop * 1000);
    const tail = await this.archiveTail(repo, info).catch(() => undefined);
    if (tail && tail.archivedAt > latest) latest = tail.archivedAt;
    // The repository keeps whole seconds: the last commit can be later than the segment's time.
    if (tail?.lastCommit && tail.lastCommit.atUs > latest.getTime() * 1000) latest = new Date(Math.ceil(tail.lastCommit.atUs / 1000));
    // In WAL positions: a restore stops no earlier than its backup's end, and no later than the last archived record.
    const earliestLsn = sets[0].lsn?.stop;
    return { earliest: earliest.toISOString(), latest: latest.toISOString(), ...(earliestLsn ? { earliestLsn } : {}), ...(tail?.lastRecordLsn ? { latestLsn: tail.lastRecordLsn } : {}) };
  }

  /**
   * The data lost if the source died now: none when the source has written no WAL past the newest
   * segment in the primary repository (an idle database after its last archive), otherwise the
   * time since that segment arrived. Read from the repository, plus the source's insert position
   * when it answers (when it does not, the lag is counted from the segment: the safe side).
   */
  async recoveryPointLag(now: Date = new Date()): Promise<RecoveryPointLag | undefined> {
    const repo = this.primaryRepo;
    const where = `repo${repo} (${this.regionOfRepo(repo)})`;
    const info = await this.stanzaInfo(repo, `reading the WAL archive of ${where}`);
    const newest = info ? await this.newestSegment(info, repo) : undefined;
    if (!newest) return undefined;
    let insertLsn: string | undefined;
    try {
      insertLsn = await this.currentInsertLsn();
    } catch {
      insertLsn = undefined;
    }
    const at = newest.archivedAt.toISOString();
    if (insertLsn && lsnValue(insertLsn) <= segmentEnd(newest.segment)) {
      return { seconds: 0, basis: 'wal-archive', at, detail: `Every write of ${this.source.instanceId} is archived in ${where} (newest WAL segment ${newest.segment} at ${at}; the source is at ${insertLsn}).` };
    }
    const seconds = Math.max(0, Math.round((now.getTime() - newest.archivedAt.getTime()) / 1000));
    return {
      seconds,
      basis: 'wal-archive',
      at,
      detail: `The newest WAL segment of ${this.source.instanceId} in ${where}, ${newest.segment}, arrived ${seconds} s ago (${at})${insertLsn ? `; the source has written on to ${insertLsn}` : '; the source did not answer'}.`,
    };
  }

  async startRestore(request: RestoreRequest): Promise<InstanceDescription> {
    this.refuseSource(request.destinationId, 'restore into');
    if (!VALID_NAME.test(request.destinationId)) {
      // Never rewritten into another name: the caller must name the instance it means.
      throw new LifeboatError(`"${request.destinationId}" cannot name a restored instance (letters, digits and _.- only, starting with a letter or digit, at most 63 characters); choose another destination name.`, 'INVALID_DESTINATION');
    }
    const point = validatePoint(request.point);
    const files = this.instanceFiles(request.destinationId);
    await this.ensureRestoresDir();
    // One starter per instance: an attempt racing its own earlier attempt waits for it; another run's start is refused.
    if (!claimFile(files.claim, this.claimStaleMs(), request.owner)) {
      const claimant = claimOwner(files.claim);
      if (claimant && !isSameRun(claimant, request.owner)) {
        throw new LifeboatError(
          `Instance ${request.destinationId} is being restored right now by workflow ${claimant.workflowId} (run ${claimant.runId}), not by this workflow run; lifeboat will neither adopt nor delete it: choose another destination name.`,
          'INSTANCE_OWNED_ELSEWHERE',
        );
      }
      return { instanceId: request.destinationId, status: 'restoring', createdByLifeboat: true, owner: request.owner, detail: `Another attempt is starting the restore of ${request.destinationId}.` };
    }
    try {
      return await this.restoreOnce(request, point, files);
    } finally {
      fs.rmSync(files.claim, { force: true });
    }
  }

  private async restoreOnce(request: RestoreRequest, point: RestorePoint, files: InstanceFiles): Promise<InstanceDescription> {
    const fromRegion: Region = request.fromRegion ?? 'primary';
    const repo = fromRegion === 'dr' ? this.drRepo : this.primaryRepo;
    const existing = readRecord(files.record);

    if (existing) {
      // Only this run's own work is adopted (or cleaned and redone); anything else is left exactly as it is.
      if (!existing.owner) {
        throw new LifeboatError(
          `Instance ${existing.instanceId} already exists, restored by lifeboat before owners were recorded, so no workflow run can prove it made it; lifeboat will neither adopt nor delete it: choose another destination name.`,
          'INSTANCE_OWNED_ELSEWHERE',
        );
      }
      if (!isSameRun(existing.owner, request.owner)) {
        throw new LifeboatError(
          `Instance ${existing.instanceId} already exists and belongs to ${describeOwner(existing.owner)}, not to this workflow run; lifeboat will neither adopt nor delete it: choose another destination name.`,
          'INSTANCE_OWNED_ELSEWHERE',
        );
      }
      if (existing.instanceId !== request.destinationId) {
        throw new LifeboatError(
          `The restore directory ${files.dataDir} belongs to instance ${existing.instanceId}, not ${request.destinationId}; choose another destination name.`,
          'INSTANCE_NAME_CONFLICT',
        );
      }
      if (existing.repo !== repo || JSON.stringify(existing.point) !== JSON.stringify(point)) {
        throw new LifeboatError(
          `Instance ${request.destinationId} already exists, restored from repo${existing.repo} to ${pointLabel(existing.point)}, not from repo${repo} to ${pointLabel(point)}; choose another destination name or delete that instance first.`,
          'INSTANCE_NAME_CONFLICT',
        );
      }
      if (livePid(files.pid, files.script) !== undefined) return this.describeRecord(existing);
      if (fs.existsSync(path.join(files.dataDir, RESTORE_CONF))) {
        // Restored earlier; adopt it, starting it again when it is down.
        if (!this.postmasterAlive(files.dataDir)) await this.startCluster(existing);
        return this.describeRecord(existing);
      }
      // Half-made by an attempt that died before the restore finished: clean it and redo it.
      await this.stopCluster(files.dataDir);
      fs.rmSync(files.dataDir, { recursive: true, force: true });
      fs.rmSync(files.tablespaces, { recursive: true, force: true });
    } else if (fs.existsSync(files.dataDir)) {
      throw new LifeboatError(`${files.dataDir} already exists but lifeboat has no record of restoring it; lifeboat will not touch it, so choose another destination name or remove that directory by hand.`, 'INSTANCE_NAME_CONFLICT');
    }

    const { recovery, note } = await this.resolveRecovery(point, repo);
    const port = existing?.port ?? (await this.claimPort(files.name));
    const record: RestoreRecord = {
      instanceId: request.destinationId,
      name: files.name,
      createdBy: 'lifeboat',
      createdAt: existing?.createdAt ?? new Date().toISOString(),
      owner: existing?.owner ?? request.owner,
      repo,
      fromRegion,
      point,
      recovery,
      port,
      dataDir: files.dataDir,
      socketDir: path.join(this.restoresDir, 'sockets', String(port)),
      logFile: files.log,
    };
    if (note) record.note = note;
    // The record comes first: whatever exists under this name from now on is lifeboat's.
    writeJson(files.record, record);
    fs.writeFileSync(files.log, '');
    fs.writeFileSync(files.script, this.restoreScript(record), { mode: 0o755 });
    await this.chownToOsUser(files.log, files.script);
    const pid = startDetached('/bin/sh', [files.script], { logFile: files.log, pidFile: files.pid, asUser: this.osUser });

    // Watch the first moments: a wrong option or missing backup fails at once and says why.
    const deadline = Date.now() + this.timings.startWatchMs;
    while (Date.now() < deadline && isAlive(pid) && !/restore backup set|restore size/.test(readTail(files.log))) await delay(this.timings.pollMs);
    if (!isAlive(pid) && !fs.existsSync(path.join(files.dataDir, RESTORE_CONF))) {
      throw classifyPgBackRestError(new Error(readTail(files.log)), `restoring ${request.destinationId} from repo${repo}`);
    }
    return this.describeRecord(record);
  }

  async describeInstance(instanceId: string): Promise<InstanceDescription | undefined> {
    if (instanceId === this.source.instanceId) return this.describeSource();
    const files = this.instanceFiles(instanceId);
    const record = readRecord(files.record);
    if (!record) {
      if (claimHeld(files.claim, this.claimStaleMs())) return { instanceId, status: 'restoring', createdByLifeboat: true, detail: `An attempt is starting the restore of ${instanceId}.` };
      if (!fs.existsSync(files.dataDir)) return undefined;
      return { instanceId, status: 'unknown', createdByLifeboat: false, detail: `${files.dataDir} exists but lifeboat has no record of it.` };
    }
    return this.describeRecord(record);
  }

  async deleteInstance(instanceId: string, by: RunIdentity): Promise<void> {
    this.refuseSource(instanceId, 'delete');
    const files = this.instanceFiles(instanceId);
    // An attempt still starting this restore (cancelled, but its activity runs on) would create the
    // instance after this delete: wait for it to finish, then delete what it made. Another run's start is not ours to wait for.
    if (claimHeld(files.claim, this.claimStaleMs())) {
      const claimant = claimOwner(files.claim);
      if (claimant && !isSameRun(claimant, by)) {
        throw new LifeboatError(
          `Refusing to delete ${instanceId}: workflow ${claimant.workflowId} (run ${claimant.runId}) is restoring it, not workflow ${by.workflowId} run ${by.runId}; lifeboat deletes only what the same run created.`,
          'NOT_OWNER',
        );
      }
      throw new LifeboatError(`The restore of ${instanceId} is still being started by another attempt; lifeboat will retry the delete once it has finished.`, 'INSTANCE_STARTING', false);
    }
    const record = readRecord(files.record);
    if (!record) {
      if (fs.existsSync(files.dataDir)) {
        throw new LifeboatError(`Refusing to delete ${files.dataDir}: lifeboat has no record of creating it; remove it by hand if it really is a leftover.`, 'NOT_MANAGED_BY_LIFEBOAT');
      }
      fs.rmSync(files.claim, { force: true });
      return;
    }
    refuseUnlessOwnedBy(instanceId, record, by);
    fs.rmSync(files.claim, { force: true });
    const restorePid = livePid(files.pid, files.script);
    if (restorePid !== undefined) await stopPid(restorePid);
    await this.stopCluster(files.dataDir);
    if (this.postmasterAlive(files.dataDir)) {
      throw new LifeboatError(`PostgreSQL in ${files.dataDir} did not stop, so it was not deleted; lifeboat will retry, and if it persists stop it by hand.`, 'INSTANCE_WILL_NOT_STOP', false);
    }
    for (const target of [files.dataDir, files.tablespaces, record.socketDir, files.script, files.pid, files.claim, files.log, this.portClaim(record.port)]) {
      fs.rmSync(target, { recursive: true, force: true });
    }
    // The record goes last: until then a retry knows what to clean up.
    fs.rmSync(files.record, { force: true });
  }

  async markServedTraffic(instanceId: string): Promise<void> {
    const files = this.instanceFiles(instanceId);
    const record = readRecord(files.record);
    if (!record) {
      throw new LifeboatError(`There is no restored instance ${instanceId} to point traffic at; check the instance name of the cutover.`, 'INSTANCE_NOT_FOUND');
    }
    if (record.servedTraffic) return;
    writeJson(files.record, { ...record, servedTraffic: true, servedTrafficAt: new Date().toISOString() } satisfies RestoreRecord);
  }

  // ---------------------------------------------------------------- cutover: fence, serve, protect

  /**
   * Fences the source: default_transaction_read_only on (ALTER SYSTEM, reloaded), then every
   * client session but pgBackRest's ended, so what reconnects is read-only. A client that
   * explicitly opens a read-write transaction could still write; stopping the source is the
   * stricter fence, left to the operator because it also stops reads. The setting it replaced is
   * kept in a marker file first, so a retried fence still knows what to put back.
   */
  async fenceSource(owner: { workflowId: string; runId: string }): Promise<SourceFence> {
    const s = this.source;
    const markerFile = path.join(this.runDir, 'source-fence.json');
    const at = new Date().toISOString();
    try {
      return await this.withCluster(s.port, s.host, async (c) => {
        const before = (await c.query<{ setting: string; source: string }>("SELECT setting, source FROM pg_settings WHERE name = 'default_transaction_read_only'")).rows[0];
        const marker = readJsonFile<{ owner: { workflowId: string; runId: string }; previous: Record<string, string> }>(markerFile);
        const retried = marker?.owner.workflowId === owner.workflowId && marker.owner.runId === owner.runId;
        const previous = retried ? marker.previous : { default_transaction_read_only: before.setting, source: before.source };
        fs.mkdirSync(this.runDir, { recursive: true });
        writeJson(markerFile, { owner, previous, at });
        await c.query('ALTER SYSTEM SET default_transaction_read_only = on');
        await c.query('SELECT pg_reload_conf()');
        await this.waitForSetting(s.port, s.host, 'default_transaction_read_only', 'on');
        const ended = (
          await c.query<{ n: string }>(
            `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND coalesce(application_name, '') NOT LIKE 'pgBackRest%'`,
          )
        ).rows[0].n;
        return {
          instanceId: s.instanceId,
          method: 'read-only' as const,
          at,
          detail: `${s.instanceId} at ${s.host}:${s.port} is read-only (default_transaction_read_only = on) and ${ended} client session(s) were ended`,
          previous,
          sessionsEnded: Number(ended),
          undoCommand: `psql -h ${shq(s.host)} -p ${s.port} -U ${shq(s.user)} -d ${shq(s.database)} -c 'ALTER SYSTEM RESET default_transaction_read_only' -c 'SELECT pg_reload_conf()'`,
        };
      });
    } catch (err) {
      if (!this.postmasterAlive(s.dataDir)) {
        return { instanceId: s.instanceId, method: 'none', at, detail: `${s.instanceId} is not running, so no client can write to it; nothing was changed` };
      }
      throw new LifeboatError(
        `lifeboat could not make the source ${s.instanceId} read-only (${describeError(err)}), so traffic was not moved: check that it answers as ${s.user} on ${s.host}:${s.port}, or stop it by hand, then retry.`,
        'FENCE_FAILED',
        false,
      );
    }
  }

  async unfenceSource(fence: SourceFence): Promise<string> {
    const s = this.source;
    if (fence.method !== 'read-only') return `nothing to undo on ${fence.instanceId}: ${fence.detail}`;
    const markerFile = path.join(this.runDir, 'source-fence.json');
    if (fence.previous?.default_transaction_read_only === 'on') {
      fs.rmSync(markerFile, { force: true });
      return `${s.instanceId} stays read-only, as it was before the fence`;
    }
    await this.withCluster(s.port, s.host, async (c) => {
      await c.query('ALTER SYSTEM RESET default_transaction_read_only');
      await c.query('SELECT pg_reload_conf()');
    });
    await this.waitForSetting(s.port, s.host, 'default_transaction_read_only', 'off');
    if (readJsonFile<{ at: string }>(markerFile)?.at === fence.at) fs.rmSync(markerFile, { force: true });
    return `${s.instanceId} at ${s.host}:${s.port} accepts writes again (default_transaction_read_only reset)`;
  }

  /**
   * Restarts the restored instance with archive_mode on and an empty archive_command: PostgreSQL
   * then keeps every WAL segment until a command is set, and pushes nothing. Traffic has not
   * moved yet, so the restart costs nobody a connection, and a rollback leaves the repositories
   * untouched.
   */
  async prepareToServe(instanceId: string): Promise<string> {
    const { files, record } = this.cutoverRecord(instanceId);
    if (record.archiving && this.postmasterAlive(record.dataDir) && (await this.settingOf(record, 'archive_mode')) === 'on') {
      return `${instanceId} already keeps its WAL for archiving (archive_mode on since ${record.archiving.since})`;
    }
    if (!this.postmasterAlive(record.dataDir)) await this.startCluster(record);
    await this.waitUntilServing(record);
    await this.withCluster(record.port, this.host, (c) => c.query("ALTER SYSTEM SET archive_command = ''"));
    record.archiving = { state: 'held', since: new Date().toISOString() };
    writeJson(files.record, record);
    await this.stopCluster(record.dataDir);
    await this.startCluster(record);
    await this.waitUntilServing(record);
    const mode = await this.settingOf(record, 'archive_mode');
    if (mode !== 'on') {
      throw new LifeboatError(`Restored instance ${instanceId} restarted with archive_mode ${mode}, not on, so its WAL would not be kept for the target's repositories; see ${record.logFile}.`, 'ARCHIVING_NOT_READY', false);
    }
    return `${instanceId} restarted with archive_mode on; its WAL is kept, nothing is pushed until it takes traffic`;
  }

  /**
   * The cut-over instance becomes the target's primary: its WAL goes to the stanza's repositories
   * on its own timeline (the timeline's history file first, then a switched segment proves the
   * archive command works), and a full backup of it starts into the primary repository.
   */
  async protectAsNewPrimary(instanceId: string, owner: { workflowId: string; runId: string }): Promise<NewPrimaryProtection> {
    let { files, record } = this.cutoverRecord(instanceId);
    if (!record.archiving || !this.postmasterAlive(record.dataDir)) {
      await this.prepareToServe(instanceId);
      ({ files, record } = this.cutoverRecord(instanceId));
    }
    const { binary, configPath, stanza } = this.cli.options;
    const pgOptions = [`--pg1-path=${record.dataDir}`, `--pg1-port=${record.port}`, `--pg1-socket-path=${record.socketDir}`];
    const push = [binary, `--config=${configPath}`, `--stanza=${stanza}`, `--pg1-path=${record.dataDir}`, 'archive-push'];
    const archiveCommand = `${push.map(shq).join(' ')} "%p"`;
    const walFile = await this.withCluster(record.port, this.host, async (c) => {
      await c.query(`ALTER SYSTEM SET archive_command = ${c.escapeLiteral(archiveCommand)}`);
      await c.query('SELECT pg_reload_conf()');
      return (await c.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0].f;
    });
    await this.waitForSetting(record.port, this.host, 'archive_command', archiveCommand);
    const timeline = parseInt(walFile.slice(0, 8), 16);
    const measures = [`WAL archived by pgBackRest (stanza ${stanza}) into every repository on timeline ${timeline}`];
    // Promoted while archiving was off, the timeline's history file was never queued; restores
    // that follow this timeline need it, so it goes first.
    const history = `${walFile.slice(0, 8)}.history`;
    if (timeline > 1 && fs.existsSync(path.join(record.dataDir, 'pg_wal', history))) {
      try {
        await run(binary, [`--config=${configPath}`, `--stanza=${stanza}`, `--pg1-path=${record.dataDir}`, '--log-level-console=warn', 'archive-push', path.join(record.dataDir, 'pg_wal', history)], {
          asUser: this.osUser,
          timeoutMs: this.timings.commandTimeoutMs,
        });
      } catch (err) {
        throw classifyPgBackRestError(err, `archiving the history file ${history} of ${instanceId}`);
      }
      measures.push(`timeline history ${history} archived`);
    }
    const switched = await this.withCluster(record.port, this.host, async (c) => (await c.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')).rows[0].f);
    await this.waitUntilArchived(record, switched);
    measures.push(`segment ${switched} archived`);
    record.archiving = { state: 'on', since: record.archiving?.since ?? new Date().toISOString(), owner };
    writeJson(files.record, record);
    const backup = await this.backupInto(this.primaryRepo, `new-primary-${localName(owner.workflowId)}`, 'full', pgOptions);
    measures.push(`full backup ${backup.backupId} started into repo${this.primaryRepo}`);
    return { instanceId, endpoint: { host: this.host, port: record.port }, dataDir: record.dataDir, timeline, measures, backup };
  }

  private cutoverRecord(instanceId: string): { files: InstanceFiles; record: RestoreRecord } {
    this.refuseSource(instanceId, 'cut over to');
    const files = this.instanceFiles(instanceId);
    const record = readRecord(files.record);
    if (!record) throw new LifeboatError(`There is no restored instance ${instanceId} (no ${files.record}), so traffic cannot move to it; check the instance name.`, 'INSTANCE_NOT_FOUND');
    return { files, record };
  }

  private async withCluster<T>(port: number, host: string, fn: (c: Client) => Promise<T>): Promise<T> {
    const s = this.source;
    const client = newPgClient({ host, port, user: s.user, password: s.password, database: s.database, connectionTimeoutMillis: this.timings.connectTimeoutMs, application_name: 'lifeboat' });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async settingOf(record: RestoreRecord, name: string): Promise<string> {
    return this.withCluster(record.port, this.host, async (c) => (await c.query<{ v: string }>('SELECT current_setting($1) AS v', [name])).rows[0].v);
  }

  /** A reload is asynchronous: waits until a new session sees the value. */
  private async waitForSetting(port: number, host: string, name: string, value: string): Promise<void> {
    const deadline = Date.now() + this.timings.settleTimeoutMs;
    let seen = '';
    for (;;) {
      seen = await this.withCluster(port, host, async (c) => (await c.query<{ v: string }>('SELECT current_setting($1) AS v', [name])).rows[0].v);
      if (seen === value) return;
      if (Date.now() > deadline) throw new LifeboatError(`${name} on ${host}:${port} is still ${JSON.stringify(seen)} after a reload, not ${JSON.stringify(value)}; check the server's log.`, 'SETTING_NOT_APPLIED', false);
      await delay(this.timings.pollMs);
    }
  }

  private async waitUntilServing(record: RestoreRecord): Promise<void> {
    const deadline = Date.now() + this.timings.settleTimeoutMs;
    for (;;) {
      const state = await this.query(record.port, this.host).catch(() => undefined);
      if (state?.status === 'available') return;
      if (Date.now() > deadline || (!this.postmasterAlive(record.dataDir) && startupFailure(readTail(record.logFile)))) {
        throw new LifeboatError(`Restored instance ${record.instanceId} does not accept connections after its restart (${state?.status ?? 'no answer'}); see ${record.logFile}.`, 'INSTANCE_START_FAILED', false);
      }
      await delay(this.timings.pollMs);
    }
  }

  private async waitUntilArchived(record: RestoreRecord, segment: string): Promise<void> {
    const deadline = Date.now() + this.timings.settleTimeoutMs;
    for (;;) {
      const s = await this.withCluster(record.port, this.host, async (c) => (await c.query<{ last: string | null; failed: string | null }>('SELECT last_archived_wal AS last, last_failed_wal AS failed FROM pg_stat_archiver')).rows[0]);
      if (s.last && s.last >= segment && !s.last.endsWith('.history')) return;
      if (Date.now() > deadline) {
        const why = s.failed ? `the archive command failed on ${s.failed}: ${lastErrorLine(readTail(record.logFile)) ?? 'see the log'}` : 'nothing was archived yet';
        throw new LifeboatError(`Restored instance ${record.instanceId} did not archive ${segment} within ${Math.round(this.timings.settleTimeoutMs / 1000)} s (${why}); see ${record.logFile}.`, 'ARCHIVING_FAILED', false);
      }
      await delay(this.timings.pollMs);
    }
  }

  // ---------------------------------------------------------------- backups: helpers

  /** Starts (or adopts) the backup named `name` into `repo`. */
  private async backupInto(repo: number, name: string, type: 'full' | 'diff' | 'incr', pgOptions: string[] = []): Promise<BackupHandle> {
    if (!name || /[\n\r\0]/.test(name)) {
      throw new LifeboatError(`The backup name ${JSON.stringify(name)} is empty or has control characters; derive it from the workflow id.`, 'INVALID_BACKUP_NAME');
    }
    const files = this.backupFiles(repo, name);
    const pending: BackupHandle = { engine: 'pgbackrest', backupId: name, name, location: this.regionOfRepo(repo), locator: `repo${repo}` };
    const running = livePid(files.pid, files.marker);
    const info = await this.stanzaInfo(repo, `looking for backup ${name}`);
    const found = info ? this.matchBackup(info, repo, pending) : undefined;
    if (found) {
      if (running === undefined) removeFiles(files.pid, files.log);
      return { ...pending, backupId: found.label };
    }
    if (running !== undefined) return pending;
    if (info?.status.lock?.backup?.held) {
      throw new LifeboatError(`Another pgBackRest backup or expire of stanza ${this.cli.options.stanza} is running, so backup ${name} cannot start yet; lifeboat will retry when it finishes.`, 'PGBACKREST_BUSY', false);
    }

    fs.mkdirSync(this.runDir, { recursive: true });
    // One starter per name: an attempt racing its own earlier attempt adopts instead of starting twice.
    const claim = `${files.pid}.starting`;
    if (!claimFile(claim, this.claimStaleMs())) return pending;
    try {
      fs.writeFileSync(files.log, '');
      const { binary, configPath, stanza } = this.cli.options;
      const args = [`--config=${configPath}`, `--stanza=${stanza}`, `--repo=${repo}`, `--type=${type}`, ...pgOptions, files.annotation, '--log-level-console=info', 'backup'];
      const pid = startDetached(binary, args, { logFile: files.log, pidFile: files.pid, asUser: this.osUser });

      // Watch until the backup is under way (or dead): a busy lock or bad option fails at once.
      const deadline = Date.now() + this.timings.startWatchMs;
      while (Date.now() < deadline && isAlive(pid) && !/backup start archive|new backup label/.test(readTail(files.log))) await delay(this.timings.pollMs);
      if (!isAlive(pid)) {
        const done = await this.findBackup(repo, pending);
        if (done) return { ...pending, backupId: done.label };
        throw classifyPgBackRestError(new Error(readTail(files.log) || 'the backup process exited without output'), `starting backup ${name} into repo${repo}`);
      }
      return pending;
    } finally {
      fs.rmSync(claim, { force: true });
    }
  }

  /** A start claim older than this belongs to an attempt that died while starting. */
  private claimStaleMs(): number {
    return this.timings.startWatchMs + 5 * 60 * 1000;
  }

  private backupFiles(repo: number, name: string) {
    const base = path.join(this.runDir, `pgbackrest-backup-repo${repo}-${localName(name)}`);
    const annotation = `--annotation=${BACKUP_ANNOTATION}=${name}`;
    // The marker guards against pid reuse; it includes what follows the annotation on the command line.
    return { pid: `${base}.pid`, log: `${base}.log`, annotation, marker: `${annotation} --log-level-console=info backup` };
  }

  private async findBackup(repo: number, handle: BackupHandle): Promise<BackupSet | undefined> {
    const info = await this.stanzaInfo(repo, `looking up backup ${handle.name ?? handle.backupId}`);
    return info ? this.matchBackup(info, repo, handle) : undefined;
  }

  private matchBackup(info: StanzaInfo, repo: number, handle: BackupHandle): BackupSet | undefined {
    const inRepo = info.backup.filter((b) => b.database['repo-key'] === repo);
    if (handle.name) return inRepo.find((b) => b.annotation?.[BACKUP_ANNOTATION] === handle.name);
    return inRepo.find((b) => b.label === handle.backupId) ?? inRepo.find((b) => b.annotation?.[BACKUP_ANNOTATION] === handle.backupId);
  }

  /** `info --output=json` for one repository; system-id stays exact as a string. */
  private async stanzaInfo(repo: number | undefined, doing: string): Promise<StanzaInfo | undefined> {
    let stdout: string;
    try {
      stdout = (await this.cli.exec('info', ['--output=json', '--log-level-console=warn', ...(repo ? [`--repo=${repo}`] : [])], { timeoutMs: this.timings.commandTimeoutMs })).stdout;
    } catch (err) {
      throw classifyPgBackRestError(err, doing);
    }
    const stanzas = JSON.parse(stdout.replace(/"system-id":(\d+)/g, '"system-id":"$1"')) as StanzaInfo[];
    return stanzas.find((s) => s.name === this.cli.options.stanza);
  }

  /** pgBackRest reports a running backup's progress only in its text output. */
  private async runningPercent(): Promise<number | undefined> {
    try {
      const text = (await this.cli.exec('info', ['--log-level-console=warn'], { timeoutMs: this.timings.commandTimeoutMs })).stdout;
      const m = /backup\/expire running - (\d+(?:\.\d+)?)% complete/.exec(text);
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  private repoOf(handle: BackupHandle): number {
    const locator = /^repo(\d+)$/.exec(handle.locator ?? '');
    const repo = locator ? Number(locator[1]) : handle.location === 'primary' ? this.primaryRepo : handle.location === 'dr' ? this.drRepo : undefined;
    if (handle.engine !== 'pgbackrest' || (repo !== this.primaryRepo && repo !== this.drRepo)) {
      throw new LifeboatError(
        `Backup ${handle.name ?? handle.backupId} is a ${handle.engine} backup in ${handle.locator ?? handle.location}, not in repo${this.primaryRepo} or repo${this.drRepo} of ${this.source.instanceId}; check the catalog entry and the target's repositories in the config.`,
        'INVALID_BACKUP_HANDLE',
      );
    }
    return repo;
  }

  /** pgBackRest's command line for commands that take a positional argument after the command. */
  private pgbackrestArgv(command: string, options: string[], positional: string[] = []): [string, string[]] {
    const { binary, configPath, stanza } = this.cli.options;
    return [binary, [`--config=${configPath}`, `--stanza=${stanza}`, ...options, command, ...positional]];
  }

  private regionOfRepo(repo: number): Region {
    return repo === this.drRepo ? 'dr' : 'primary';
  }

  // ---------------------------------------------------------------- restores: helpers

  private instanceFiles(instanceId: string): InstanceFiles {
    const name = localName(instanceId);
    const base = path.join(this.restoresDir, name);
    return {
      name,
      dataDir: base,
      record: `${base}.json`,
      log: `${base}.log`,
      pid: `${base}.restore.pid`,
      claim: `${base}.starting`,
      script: `${base}.restore.sh`,
      tablespaces: `${base}.tablespaces`,
    };
  }

  /** The restores directory belongs to the OS user: the restore itself runs as that user. */
  private async ensureRestoresDir(): Promise<void> {
    if (fs.existsSync(this.restoresDir)) return;
    fs.mkdirSync(this.restoresDir, { recursive: true, mode: 0o755 });
    await this.chownToOsUser(this.restoresDir);
  }

  /** Public for operators and tests: where the files of a restored instance live. */
  restoreFiles(instanceId: string): { dataDir: string; record: string; log: string; pid: string } {
    const f = this.instanceFiles(instanceId);
    return { dataDir: f.dataDir, record: f.record, log: f.log, pid: f.pid };
  }

  private refuseSource(instanceId: string, verb: 'delete' | 'restore into' | 'cut over to'): void {
    const dir = this.instanceFiles(instanceId).dataDir;
    const sourceDir = path.resolve(this.source.dataDir);
    const real = (p: string) => {
      try {
        return fs.realpathSync(p);
      } catch {
        return p;
      }
    };
    if (instanceId === this.source.instanceId || real(dir) === real(sourceDir) || within(real(dir), real(sourceDir)) || within(real(sourceDir), real(dir))) {
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

  /**
   * The pgBackRest recovery options for a point. A time after the last archived commit cannot
   * be "reached" (PostgreSQL stops with "recovery ended before configured recovery target was
   * reached"), yet its meaning is clear: everything archived. So such a time is pinned to the
   * last complete WAL record archived now, as an LSN, which also keeps WAL archived later (the
   * source may still be running) out of the restore.
   */
  private async resolveRecovery(point: RestorePoint, repo: number): Promise<{ recovery: string[]; note?: string }> {
    switch (point.kind) {
      case 'latest':
        return { recovery: ['--type=default'] };
      case 'lsn':
        return { recovery: ['--type=lsn', `--target=${point.lsn}`, '--target-action=promote'] };
      case 'name':
        return { recovery: ['--type=name', `--target=${point.name}`, '--target-action=promote'] };
      case 'time': {
        const at = new Date(point.at);
        const atUs = at.getTime() * 1000;
        const tail = await this.archiveTail(repo).catch(() => undefined);
        if (tail?.lastRecordLsn) {
          const past = tail.lastCommit ? atUs >= tail.lastCommit.atUs : at >= tail.archivedAt;
          if (past) {
            return {
              recovery: ['--type=lsn', `--target=${tail.lastRecordLsn}`, '--target-action=promote'],
              note: `${at.toISOString()} is after the last archived commit${tail.lastCommit ? ` (${tail.lastCommit.at})` : ''}, so the restore replays everything archived, up to ${tail.lastRecordLsn} in ${tail.segment}.`,
            };
          }
        }
        return { recovery: ['--type=time', `--target=${pgTime(at)}`, '--target-action=promote'] };
      }
    }
  }

  /** The newest archived segment of the repository's current database, with its arrival time. */
  private async newestSegment(info: StanzaInfo, repo: number): Promise<{ archiveId: string; segment: string; file: string; archivedAt: Date } | undefined> {
    const archive = info.archive.filter((a) => a.database['repo-key'] === repo && a.max).sort((a, b) => b.database.id - a.database.id)[0];
    if (!archive?.max) return undefined;
    const file = await this.archiveFile(repo, archive.id, archive.max);
    return file ? { archiveId: archive.id, segment: archive.max, ...file } : undefined;
  }

  private async archiveFile(repo: number, archiveId: string, segment: string): Promise<{ file: string; archivedAt: Date } | undefined> {
    const dir = `archive/${this.cli.options.stanza}/${archiveId}/${segment.slice(0, 16)}`;
    const result = await run(...this.pgbackrestArgv('repo-ls', [`--repo=${repo}`, '--output=json', `--filter=^${segment}-`, '--log-level-console=warn'], [dir]), {
      asUser: this.osUser,
      timeoutMs: this.timings.commandTimeoutMs,
    });
    const entries = JSON.parse(result.stdout) as Record<string, { type: string; time?: number }>;
    const name = Object.keys(entries).find((k) => k !== '.' && entries[k].type === 'file');
    if (!name) return undefined;
    return { file: `${dir}/${name}`, archivedAt: new Date((entries[name].time ?? 0) * 1000) };
  }

  /**
   * The end of the archive: the newest segment, its last complete record and the newest commit
   * in the last few segments, read with pg_waldump from the repository (no source needed).
   */
  private async archiveTail(repo: number, known?: StanzaInfo): Promise<ArchiveTail | undefined> {
    const info = known ?? (await this.stanzaInfo(repo, 'reading the end of the WAL archive'));
    const newest = info ? await this.newestSegment(info, repo) : undefined;
    if (!newest) return undefined;
    const tail: ArchiveTail = { segment: newest.segment, archivedAt: newest.archivedAt };
    await this.ensureRestoresDir();
    this.sweepStaleWalDirs();
    const tmp = fs.mkdtempSync(path.join(this.restoresDir, WAL_SCRATCH_PREFIX));
    try {
      // Names its process: a later read removes the directory at once when that process is gone.
      fs.writeFileSync(path.join(tmp, WAL_SCRATCH_OWNER), `${process.pid}\n${ownProcessStart()}\n`);
      await this.chownToOsUser(tmp);
      let segment = newest.segment;
      let file: string | undefined = newest.file;
      for (let i = 0; i < this.walScanSegments && file; i++) {
        const records = await this.walRecords(repo, file, segment, tmp);
        if (i === 0) tail.lastRecordLsn = records.at(-1)?.lsn;
        const commit = [...records].reverse().find((r) => r.commit);
        if (commit?.commit) {
          tail.lastCommit = { ...commit.commit, lsn: commit.lsn };
          break;
        }
        const prev = previousSegment(segment);
        if (!prev) break;
        segment = prev;
        file = (await this.archiveFile(repo, newest.archiveId, segment))?.file;
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return tail;
  }

  /**
   * Removes scratch directories of WAL reads whose process was killed (a `finally` never runs
   * after kill -9): at once when the process it names is gone, else once it is old, since a fresh
   * one may belong to a read still running in another worker.
   */
  private sweepStaleWalDirs(now = Date.now()): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.restoresDir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.startsWith(WAL_SCRATCH_PREFIX)) continue;
      const dir = path.join(this.restoresDir, name);
      try {
        if (!walScratchOwnerAlive(dir) || now - fs.statSync(dir).mtimeMs > WAL_SCRATCH_STALE_MS) fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        // Removed meanwhile by another sweep, or not ours to remove: the next sweep tries again.
      }
    }
  }

  private async walRecords(repo: number, file: string, segment: string, tmp: string): Promise<Array<{ lsn: string; commit?: { atUs: number; at: string } }>> {
    const decompress = file.endsWith('.zst') ? 'zstd -dcq' : file.endsWith('.gz') ? 'gzip -dc' : file.endsWith('.lz4') ? 'lz4 -dcq' : file.endsWith('.bz2') ? 'bzip2 -dc' : 'cat';
    const out = path.join(tmp, segment);
    const [binary, args] = this.pgbackrestArgv('repo-get', [`--repo=${repo}`, '--log-level-console=warn'], [file]);
    const get = [binary, ...args].map(shq).join(' ');
    await run('/bin/sh', ['-c', `${get} | ${decompress} > ${shq(out)}`], { asUser: this.osUser, timeoutMs: this.timings.commandTimeoutMs });
    // pg_waldump stops with an error at the end of the segment; the records before it count.
    const dump = await run(this.pgBin('pg_waldump'), ['--path', tmp, segment], { asUser: this.osUser, check: false, env: { TZ: 'UTC' }, timeoutMs: this.timings.commandTimeoutMs });
    fs.rmSync(out, { force: true });
    const records: Array<{ lsn: string; commit?: { atUs: number; at: string } }> = [];
    for (const line of dump.stdout.split('\n')) {
      const lsn = /\blsn: ([0-9A-F]+)\/([0-9A-F]+)/.exec(line);
      if (!lsn) continue;
      const record: { lsn: string; commit?: { atUs: number; at: string } } = { lsn: `${lsn[1].replace(/^0+(?=.)/, '')}/${lsn[2].replace(/^0+(?=.)/, '')}` };
      const commit = /desc: (?:COMMIT|ABORT)\S*\s.*?(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))? UTC/.exec(line);
      if (commit && /rmgr: Transaction/.test(line)) {
        const micros = Number((commit[3] ?? '').padEnd(6, '0'));
        const seconds = Date.parse(`${commit[1]}T${commit[2]}Z`);
        record.commit = { atUs: seconds * 1000 + micros, at: `${commit[1]}T${commit[2]}.${String(micros).padStart(6, '0')}Z` };
      }
      records.push(record);
    }
    return records;
  }

  /**
   * The detached restore: pgBackRest writes the cluster, then the cluster gets its own settings
   * (port, socket, no archiving) through an include that wins over the source's settings, and
   * pg_ctl starts it; WAL replay happens in PostgreSQL from there. The settings file is written
   * last, atomically: its presence marks a finished restore.
   */
  private restoreScript(record: RestoreRecord): string {
    const { binary, configPath, stanza } = this.cli.options;
    const dir = record.dataDir;
    const files = this.instanceFiles(record.instanceId);
    const restore = [
      binary,
      `--config=${configPath}`,
      `--stanza=${stanza}`,
      `--repo=${record.repo}`,
      `--pg1-path=${dir}`,
      // Tablespaces too go under the restores directory, never back to the source's locations.
      `--tablespace-map-all=${files.tablespaces}`,
      '--archive-mode=off',
      ...record.recovery,
      '--log-level-console=info',
      'restore',
    ];
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: this.host,
      port: record.port,
      unix_socket_directories: record.socketDir,
      cluster_name: `lifeboat-${record.name}`.slice(0, 63),
      archive_mode: false,
      archive_command: ARCHIVE_REFUSAL,
      hot_standby: true,
      ...this.restoreSettings,
    };
    const conf = [`# Written by lifeboat for restored instance ${record.instanceId}; it overrides the source's settings.`, ...Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`)].join('\n');
    return [
      '#!/bin/sh',
      '# lifeboat: restore of one instance; safe to rerun only after its directory is removed.',
      'set -eu',
      `echo "lifeboat: restoring ${record.name} from repo${record.repo} (${pointLabel(record.point).replace(/["$`\\]/g, '')})"`,
      `mkdir -p ${shq(record.socketDir)}`,
      `mkdir -p -m 700 ${shq(dir)}`,
      restore.map(shq).join(' '),
      `[ -f ${shq(`${dir}/postgresql.conf`)} ] || : > ${shq(`${dir}/postgresql.conf`)}`,
      `printf '\\n# Added by lifeboat: settings of this restored instance.\\ninclude %s\\n' ${shq(`'${RESTORE_CONF}'`)} >> ${shq(`${dir}/postgresql.conf`)}`,
      `cat > ${shq(`${dir}/${RESTORE_CONF}.tmp`)} <<'LIFEBOAT_CONF_EOF'`,
      conf,
      'LIFEBOAT_CONF_EOF',
      `mv ${shq(`${dir}/${RESTORE_CONF}.tmp`)} ${shq(`${dir}/${RESTORE_CONF}`)}`,
      `echo "lifeboat: restore finished; starting PostgreSQL on port ${record.port}"`,
      // Waits a moment so the postmaster is up (or has failed) when this process ends.
      `exec ${shq(this.pgBin('pg_ctl'))} -D ${shq(dir)} -l ${shq(record.logFile)} -o ${shq(NO_ARCHIVING_OPTIONS)} -w -t 5 start`,
      '',
    ].join('\n');
  }

  private async startCluster(record: RestoreRecord): Promise<void> {
    fs.appendFileSync(record.logFile, `lifeboat: starting PostgreSQL on port ${record.port}\n`);
    await this.chownToOsUser(record.logFile);
    const started = await run(this.pgBin('pg_ctl'), ['-D', record.dataDir, '-l', record.logFile, ...this.startOptions(record), '-W', 'start'], { asUser: this.osUser, check: false });
    if (started.code !== 0 && !this.postmasterAlive(record.dataDir)) {
      throw new LifeboatError(`PostgreSQL of restored instance ${record.instanceId} did not start (${(lastErrorLine(readTail(record.logFile)) ?? started.stderr.trim()) || 'no reason given'}); see ${record.logFile}.`, 'INSTANCE_START_FAILED', false);
    }
  }

  /**
   * Command-line settings of a start (they win over every file). A cut-over instance keeps
   * archive_mode on; what it pushes, if anything, is its archive_command (ALTER SYSTEM).
   */
  private startOptions(record: RestoreRecord): string[] {
    // Only an instance readied to take traffic may archive; every other start refuses on the command line.
    return record.archiving ? ['-o', '-c archive_mode=on'] : ['-o', NO_ARCHIVING_OPTIONS];
  }

  private async stopCluster(dataDir: string): Promise<void> {
    if (!this.postmasterAlive(dataDir)) return;
    const pgCtl = this.pgBin('pg_ctl');
    const t = String(this.timings.stopTimeoutSec);
    const fast = await run(pgCtl, ['-D', dataDir, '-m', 'fast', '-w', '-t', t, 'stop'], { asUser: this.osUser, check: false });
    if (fast.code !== 0 && this.postmasterAlive(dataDir)) {
      await run(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', '-t', t, 'stop'], { asUser: this.osUser, check: false });
    }
  }

  private postmasterAlive(dataDir: string): boolean {
    return livePid(path.join(dataDir, 'postmaster.pid'), dataDir) !== undefined;
  }

  private async describeRecord(record: RestoreRecord): Promise<InstanceDescription> {
    const files = this.instanceFiles(record.instanceId);
    const base: InstanceDescription = { instanceId: record.instanceId, status: 'unknown', endpoint: { host: this.host, port: record.port }, createdByLifeboat: true };
    if (record.owner) base.owner = record.owner;
    if (record.servedTraffic) base.servedTraffic = true;
    if (livePid(files.pid, files.script) !== undefined || claimHeld(files.claim, this.claimStaleMs())) {
      return { ...base, status: 'restoring', detail: `pgBackRest is restoring ${record.instanceId} from repo${record.repo} (log: ${record.logFile}).` };
    }
    if (!fs.existsSync(path.join(record.dataDir, RESTORE_CONF))) {
      const reason = lastErrorLine(readTail(record.logFile));
      return { ...base, status: 'failed', detail: `The restore of ${record.instanceId} from repo${record.repo} did not finish${reason ? `: ${reason}` : ''} (log: ${record.logFile}); delete the instance and restore again.` };
    }
    // Only this cluster's own postmaster counts: something else may answer on a port it left.
    if (!this.postmasterAlive(record.dataDir)) {
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
      const facts = await this.query(record.port, this.host);
      const detail = facts.status === 'replaying-wal' ? `PostgreSQL is replaying WAL towards ${record.note ? 'the end of the archive' : pointLabel(record.point)}.` : record.note;
      return { ...base, ...facts, ...(detail ? { detail } : {}) };
    } catch (err) {
      return { ...base, status: 'starting', detail: `PostgreSQL is starting and replaying WAL (${describeError(err)}).` };
    }
  }

  /** The source's current WAL insert position. */
  private async currentInsertLsn(): Promise<string> {
    const s = this.source;
    const client = newPgClient({ host: s.host, port: s.port, user: s.user, password: s.password, database: s.database, connectionTimeoutMillis: this.timings.connectTimeoutMs });
    await client.connect();
    try {
      return (await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Status, identity and version of the cluster answering on host:port. */
  private async query(port: number, host: string): Promise<Pick<InstanceDescription, 'status' | 'identity' | 'engineVersion'>> {
    const s = this.source;
    const client = newPgClient({ host, port, user: s.user, password: s.password, database: s.database, connectionTimeoutMillis: this.timings.connectTimeoutMs });
    await client.connect();
    try {
      const r = await client.query<{ system_identifier: string; in_recovery: boolean; version: string }>(
        "SELECT system_identifier::text AS system_identifier, pg_is_in_recovery() AS in_recovery, current_setting('server_version') AS version FROM pg_control_system()",
      );
      const row = r.rows[0];
      return { status: row.in_recovery ? 'replaying-wal' : 'available', identity: row.system_identifier, engineVersion: row.version.split(' ')[0] };
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** A free port from the range, claimed by an exclusive file so two restores never share one. */
  private async claimPort(name: string): Promise<number> {
    const dir = path.join(this.restoresDir, 'ports');
    fs.mkdirSync(dir, { recursive: true });
    for (let port = this.portRange.from; port <= this.portRange.to; port++) {
      if (port === this.source.port) continue;
      const claim = this.portClaim(port);
      try {
        const owner = fs.readFileSync(claim, 'utf8').trim();
        if (owner === name) return port;
        // A claim whose instance record is gone is stale (removed by hand): free it.
        if (fs.existsSync(path.join(this.restoresDir, `${owner}.json`))) continue;
        fs.rmSync(claim, { force: true });
      } catch {
        /* unclaimed */
      }
      if (!(await portIsFree(this.host, port))) continue;
      try {
        fs.writeFileSync(claim, `${name}\n`, { flag: 'wx' });
        return port;
      } catch {
        continue;
      }
    }
    throw new LifeboatError(
      `Every port from ${this.portRange.from} to ${this.portRange.to} is taken by restored instances or other servers; delete restored instances that are no longer needed or widen the port range.`,
      'NO_FREE_PORT',
      false,
    );
  }

  private portClaim(port: number): string {
    return path.join(this.restoresDir, 'ports', String(port));
  }

  private async chownToOsUser(...paths: string[]): Promise<void> {
    if (this.osUser === currentUser()) return;
    await run('chown', [`${this.osUser}:`, ...paths]);
  }
}

// ---------------------------------------------------------------- pure helpers

function within(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

function readRecord(file: string): RestoreRecord | undefined {
  try {
    const record = JSON.parse(fs.readFileSync(file, 'utf8')) as RestoreRecord;
    return record.createdBy === 'lifeboat' ? record : undefined;
  } catch {
    return undefined;
  }
}

function readJsonFile<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function writeJson(file: string, value: unknown): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

/** Deletion is for the run that made the instance, and never for one that has served traffic. */
function refuseUnlessOwnedBy(instanceId: string, record: RestoreRecord, by: RunIdentity): void {
  if (!record.owner) {
    throw new LifeboatError(
      `Refusing to delete ${instanceId}: it was restored before lifeboat recorded owners, so no workflow run can prove it made it; remove it by hand if it really is unwanted.`,
      'NOT_OWNER',
    );
  }
  if (!isSameRun(record.owner, by)) {
    throw new LifeboatError(
      `Refusing to delete ${instanceId}: it belongs to ${describeOwner(record.owner)}, not to workflow ${by.workflowId} run ${by.runId}; remove it by hand if it really is unwanted.`,
      'NOT_OWNER',
    );
  }
  if (record.servedTraffic) {
    throw new LifeboatError(
      `Refusing to delete ${instanceId}: it has served traffic since ${record.servedTrafficAt ?? 'a cutover'}, and lifeboat never removes such an instance automatically; move traffic elsewhere and remove it by hand when it is no longer needed.`,
      'SERVED_TRAFFIC',
    );
  }
}

/** Creates `file` exclusively (holding this process's pid, then the claiming run); a claim older than `staleMs` is taken over. */
function claimFile(file: string, staleMs: number, by?: RunIdentity): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n${by ? `${by.workflowId}\n${by.runId}\n` : ''}`, { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (claimHeld(file, staleMs)) return false;
      fs.rmSync(file, { force: true });
    }
  }
  return false;
}

/**
 * Whether a claim is held: younger than `staleMs` and its process (the worker that wrote it, on
 * this host) still alive. A worker killed mid-start leaves its claim behind; the retry on
 * another worker must take it over at once, not wait minutes for it to go stale.
 */
function claimHeld(file: string, staleMs: number): boolean {
  try {
    if (Date.now() - fs.statSync(file).mtimeMs >= staleMs) return false;
    const pid = Number(fs.readFileSync(file, 'utf8').split('\n')[0].trim());
    return !Number.isInteger(pid) || pid <= 0 || isAlive(pid);
  } catch {
    return false;
  }
}

/** The workflow run a claim was written for, when it says. */
function claimOwner(file: string): RunIdentity | undefined {
  try {
    const [, workflowId, runId] = fs.readFileSync(file, 'utf8').split('\n');
    return workflowId && runId ? { workflowId, runId } : undefined;
  } catch {
    return undefined;
  }
}

function removeFiles(...files: string[]): void {
  for (const file of files) fs.rmSync(file, { force: true });
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * CPU ticks plus bytes read and written by every process of a process group (a detached backup
 * leads its own): a measure of work done that only stands still when the processes do.
 * Bytes need /proc/<pid>/io, readable by the same user or root; CPU ticks are readable by anyone.
 */
export function processGroupWork(pgid: number): number {
  let total = 0;
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): state ppid pgrp ... utime(14) stime(15).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      total += Number(fields[11]) + Number(fields[12]);
      try {
        const io = fs.readFileSync(`/proc/${entry}/io`, 'utf8');
        for (const m of io.matchAll(/^(rchar|wchar): (\d+)$/gm)) total += Number(m[2]);
      } catch {
        /* not ours to read: CPU ticks still count */
      }
    } catch {
      /* the process ended while we looked */
    }
  }
  return total;
}

function fileTime(file: string): string | undefined {
  try {
    return fs.statSync(file).mtime.toISOString();
  } catch {
    return undefined;
  }
}

function pointLabel(point: RestorePoint): string {
  switch (point.kind) {
    case 'time':
      return point.at;
    case 'latest':
      return 'the latest archived point';
    case 'lsn':
      return `LSN ${point.lsn}`;
    case 'name':
      return `restore point "${point.name}"`;
  }
}

function validatePoint(point: RestorePoint): RestorePoint {
  switch (point.kind) {
    case 'time': {
      const at = new Date(point.at);
      if (Number.isNaN(at.getTime())) {
        throw new LifeboatError(`The restore time "${point.at}" is not a valid ISO-8601 time; give a time such as 2024-05-01T12:30:00Z.`, 'INVALID_RESTORE_POINT');
      }
      return { kind: 'time', at: at.toISOString() };
    }
    case 'lsn':
      if (!LSN.test(point.lsn)) throw new LifeboatError(`The restore LSN "${point.lsn}" is not a PostgreSQL LSN; give one such as 0/3000060.`, 'INVALID_RESTORE_POINT');
      return point;
    case 'name':
      if (!/^[\w .:@+-]{1,63}$/.test(point.name)) {
        throw new LifeboatError(`The restore point name "${point.name}" is not usable; give the name passed to pg_create_restore_point (letters, digits, spaces and _.:@+-, at most 63 characters).`, 'INVALID_RESTORE_POINT');
      }
      return point;
    case 'latest':
      return point;
    default:
      throw new LifeboatError(`The restore point ${JSON.stringify(point)} is not a time, LSN, name or latest; request one of those.`, 'INVALID_RESTORE_POINT');
  }
}

/** An LSN (`16/B374D848`) as a number of bytes. */
function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/** The LSN just past the end of a WAL segment (16 MiB segments). */
function segmentEnd(segment: string): bigint {
  const log = BigInt(`0x${segment.slice(8, 16)}`);
  const seg = BigInt(`0x${segment.slice(16)}`);
  return (log << 32n) + (seg + 1n) * 16n * 1024n * 1024n;
}

/** The segment before `segment` (16 MiB segments; undefined at the very start). */
function previousSegment(segment: string): string | undefined {
  if (!/^[0-9A-F]{24}$/.test(segment)) return undefined;
  const tli = segment.slice(0, 8);
  let log = parseInt(segment.slice(8, 16), 16);
  let seg = parseInt(segment.slice(16), 16);
  if (seg > 0) seg -= 1;
  else if (log > 0) {
    log -= 1;
    seg = 0xff;
  } else return undefined;
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${tli}${hex(log)}${hex(seg)}`;
}

/** What `pgbackrest verify --set` found, as one check. */
function summarizeVerify(result: { code: number; stdout: string; stderr: string }, label: string): { name: string; ok: boolean; detail: string } {
  const text = `${result.stdout}\n${result.stderr}`;
  const backup = new RegExp(`backup: ${label.replace(/[-_]/g, '[-_]')}, status: (\\S+?),? total files checked: (\\d+), total valid files: (\\d+)`).exec(text);
  const wal = /total WAL checked: (\d+), total valid WAL: (\d+)/.exec(text);
  // pgBackRest 2.45 ignores --set and reports every backup in the repository: only this set's own
  // counts (the line after its `backup:` line) and the archive's count, so a broken older backup
  // does not fail the verification of a good one (nor hide a problem in this one).
  const counts = /^\s*missing: (\d+), checksum invalid: (\d+), size invalid: (\d+), other: (\d+)/;
  const lines = text.split('\n');
  const countsAfter = (index: number) => (index >= 0 && index + 1 < lines.length ? counts.exec(lines[index + 1]) : null);
  const own = countsAfter(lines.findIndex((l) => new RegExp(`backup: ${label.replace(/[-_]/g, '[-_]')}, status: `).test(l)));
  const walCounts = lines.map((l, i) => (/archiveId: .*total WAL checked/.test(l) ? countsAfter(i) : null));
  const problems = [own, ...walCounts].some((m) => m !== null && m.slice(1).some((n) => Number(n) > 0));
  // A non-zero exit can come from another set; this set's own verdict decides.
  const ok = backup?.[1] === 'valid' && !problems;
  if (!backup) {
    const error = lastErrorLine(text);
    return { name: 'repository-verify', ok: false, detail: `pgbackrest verify did not report on ${label}${error ? `: ${error}` : ` (exit code ${result.code})`}.` };
  }
  const walPart = wal ? `; ${wal[2]} of ${wal[1]} WAL segments valid` : '';
  return {
    name: 'repository-verify',
    ok,
    detail: ok
      ? `pgbackrest verify read ${backup[3]} of ${backup[2]} files of ${label} back from the repository and found them valid${walPart}.`
      : `pgbackrest verify found ${label} ${backup[1]}: ${backup[3]} of ${backup[2]} files valid${walPart}${problems ? ', with missing or invalid files' : ''}.`,
  };
}

/** Why PostgreSQL stopped during recovery, if its log says so since the last start. */
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

function startupFailure(log: string): string | undefined {
  const since = sinceLastStart(log);
  if (!/aborting startup|startup process .* exited with exit code|PANIC:|terminated by signal/.test(since)) return undefined;
  const fatal = since.split('\n').reverse().find((l) => /\b(FATAL|PANIC):/.test(l) && !/\w+@\w+/.test(l.split(/FATAL|PANIC/)[0]));
  return fatal ? fatal.replace(/^.*?\b(FATAL|PANIC):\s*/, '') : 'the startup process failed';
}
