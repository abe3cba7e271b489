/**
 * Self-managed PostgreSQL protected by pgBackRest as a DatabaseEngine. This class is the facade:
 * it resolves the options (options.ts), wires the parts below and hands each call to the one
 * that owns it. pgBackRest is driven through its CLI as the database's OS user, never
 * re-implemented. The worker must run on the database host (pgBackRest, pg_ctl and the data
 * directories are local).
 *
 * Where things live:
 * - backups.ts: backups annotated `lifeboat-backup=<name>`, run detached and adopted on retry;
 *   verify; the DR copy (repository-copy.ts copying the set, or a second backup); expire.
 * - restores.ts: point-in-time restores into a NEW cluster under `restoresDir` (the detached
 *   restore script, which ends by starting the cluster); describe, delete, mark served traffic.
 * - clusters.ts: restored clusters' ports, pg_ctl start and stop, their state, the source guard.
 * - records.ts: the JSON record next to each restored cluster (its owner, port, point) and its files.
 * - wal.ts: the WAL archive: restore window, recovery point lag, last archived commit, LSN helpers.
 * - cutover.ts: fence and unfence the source, ready a restored instance, protect it as new primary.
 * - failback.ts: re-protect a failed-over primary in both regions, restore up to its final WAL.
 * - claims.ts: start claims (one attempt at a time starts a backup or a restore).
 * - repository.ts (`info`, which repository a region or handle means), sessions.ts (SQL), cli.ts,
 *   errors.ts (classifyPgBackRestError), files.ts, proc.ts; local.ts wires the embedded stack.
 */
import { describeError } from '../../domain/errors';
import type {
  BackupHandle,
  BackupKind,
  BackupProgress,
  BackupVerification,
  DatabaseEngine,
  InstanceDescription,
  FinalWal,
  NewPrimaryProtection,
  RecoveryPointLag,
  Reprotection,
  RestoreRequest,
  RestoreWindow,
  RunIdentity,
  SourceFence,
} from '../../domain/ports';
import { Backups } from './backups';
import { postmasterAlive, RestoredClusters } from './clusters';
import { Cutover } from './cutover';
import { Failback } from './failback';
import { resolveSetup, type DrCopyMode, type PgBackRestEngineOptions, type PgBackRestSource, type PgBackRestTimings, type Region } from './options';
import { Repositories } from './repository';
import type { RepositoryCopyProgress } from './repository-copy';
import { Restores } from './restores';
import { ClusterSessions } from './sessions';
import { WalArchive } from './wal';

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
  readonly drCopy: DrCopyMode;
  readonly timings: PgBackRestTimings;
  private readonly sessions: ClusterSessions;
  private readonly clusters: RestoredClusters;
  private readonly backups: Backups;
  private readonly wal: WalArchive;
  private readonly restores: Restores;
  private readonly cutover: Cutover;
  private readonly failback: Failback;

  constructor(options: PgBackRestEngineOptions) {
    const setup = resolveSetup(options);
    this.source = setup.source;
    this.restoresDir = setup.restoresDir;
    this.runDir = setup.runDir;
    this.osUser = setup.osUser;
    this.host = setup.host;
    this.portRange = setup.portRange;
    this.primaryRepo = setup.primaryRepo;
    this.drRepo = setup.drRepo;
    this.drCopy = setup.drCopy;
    this.timings = setup.timings;
    const repositories = new Repositories(setup);
    this.sessions = new ClusterSessions(setup);
    this.clusters = new RestoredClusters(setup, this.sessions);
    this.backups = new Backups(setup, repositories, this.sessions);
    this.wal = new WalArchive(setup, repositories, this.sessions);
    this.restores = new Restores(setup, repositories, this.clusters, this.wal);
    this.cutover = new Cutover(setup, this.sessions, this.clusters, this.backups);
    this.failback = new Failback(setup, this.cutover, this.backups, this.restores);
  }

  // ---------------------------------------------------------------- source

  async describeSource(): Promise<InstanceDescription> {
    const s = this.source;
    const base: InstanceDescription = { instanceId: s.instanceId, status: 'unreachable', endpoint: { host: s.host, port: s.port }, createdByLifeboat: false };
    try {
      const facts = await this.sessions.facts(s.port, s.host);
      return { ...base, ...facts };
    } catch (err) {
      const running = postmasterAlive(s.dataDir);
      return {
        ...base,
        status: running ? 'unreachable' : 'stopped',
        detail: `The source ${s.instanceId} does not answer on ${s.host}:${s.port} (${describeError(err)}).`,
      };
    }
  }

  // ---------------------------------------------------------------- backups (backups.ts)

  startBackup(request: { backupName: string; kind: BackupKind }): Promise<BackupHandle> {
    return this.backups.startBackup(request);
  }

  backupProgress(handle: BackupHandle): Promise<BackupProgress> {
    return this.backups.backupProgress(handle);
  }

  stopBackup(handle: BackupHandle): Promise<void> {
    return this.backups.stopBackup(handle);
  }

  verifyBackup(handle: BackupHandle): Promise<BackupVerification> {
    return this.backups.verifyBackup(handle);
  }

  copyToDisasterRecovery(handle: BackupHandle, request: { copyName: string; onProgress?: (progress: RepositoryCopyProgress) => void }): Promise<BackupHandle> {
    return this.backups.copyToDisasterRecovery(handle, request);
  }

  awaitBackupChange(handle: BackupHandle, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.backups.awaitBackupChange(handle, timeoutMs, signal);
  }

  deleteBackup(handle: BackupHandle, options?: { copiedBase?: boolean }): Promise<void> {
    return this.backups.deleteBackup(handle, options);
  }

  // ---------------------------------------------------------------- WAL archive (wal.ts)

  restoreWindow(fromRegion: Region = 'primary'): Promise<RestoreWindow> {
    return this.wal.restoreWindow(fromRegion);
  }

  recoveryPointLag(now: Date = new Date()): Promise<RecoveryPointLag | undefined> {
    return this.wal.recoveryPointLag(now);
  }

  // ---------------------------------------------------------------- point-in-time restore (restores.ts)

  startRestore(request: RestoreRequest): Promise<InstanceDescription> {
    return this.restores.startRestore(request);
  }

  awaitInstanceChange(instanceId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.restores.awaitInstanceChange(instanceId, timeoutMs, signal);
  }

  async describeInstance(instanceId: string): Promise<InstanceDescription | undefined> {
    if (instanceId === this.source.instanceId) return this.describeSource();
    return this.restores.describeInstance(instanceId);
  }

  listInstances(): Promise<InstanceDescription[]> {
    return this.restores.listInstances();
  }

  deleteInstance(instanceId: string, by: RunIdentity): Promise<void> {
    return this.restores.deleteInstance(instanceId, by);
  }

  markServedTraffic(instanceId: string): Promise<void> {
    return this.restores.markServedTraffic(instanceId);
  }

  /** Public for operators and tests: where the files of a restored instance live. */
  restoreFiles(instanceId: string): { dataDir: string; record: string; log: string; pid: string } {
    const f = this.clusters.files(instanceId);
    return { dataDir: f.dataDir, record: f.record, log: f.log, pid: f.pid };
  }

  // ---------------------------------------------------------------- cutover: fence, serve, protect (cutover.ts)

  fenceSource(owner: { workflowId: string; runId: string }): Promise<SourceFence> {
    return this.cutover.fenceSource(owner);
  }

  unfenceSource(fence: SourceFence): Promise<string> {
    return this.cutover.unfenceSource(fence);
  }

  prepareToServe(instanceId: string): Promise<string> {
    return this.cutover.prepareToServe(instanceId);
  }

  protectAsNewPrimary(instanceId: string, owner: { workflowId: string; runId: string }): Promise<NewPrimaryProtection> {
    return this.cutover.protectAsNewPrimary(instanceId, owner);
  }

  // ---------------------------------------------------------------- failback (failback.ts, cutover.ts)

  reprotectInBothRegions(instanceId: string, owner: RunIdentity): Promise<Reprotection> {
    return this.failback.reprotectInBothRegions(instanceId, owner);
  }

  fenceInstance(instanceId: string, owner: RunIdentity): Promise<SourceFence> {
    return this.cutover.fenceInstance(instanceId, owner);
  }

  unfenceInstance(fence: SourceFence): Promise<string> {
    return this.cutover.unfenceInstance(fence);
  }

  shipFinalWal(instanceId: string): Promise<FinalWal> {
    return this.cutover.shipFinalWal(instanceId);
  }

  restoreForFailback(request: Omit<RestoreRequest, 'point' | 'fromRegion'> & { finalWal: FinalWal; reprotection: Reprotection }): Promise<InstanceDescription> {
    return this.failback.restoreForFailback(request);
  }

  retireFailedOverInstance(instanceId: string, failoverRun: RunIdentity, by: RunIdentity): Promise<string> {
    return this.restores.retireFailedOverInstance(instanceId, failoverRun, by);
  }
}
