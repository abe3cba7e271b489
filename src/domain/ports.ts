/**
 * The ports activities talk to. Each has a local engine that runs on the embedded stack and an
 * AWS engine tested at the SDK boundary; every engine passes the same contract tests.
 * Only plain JSON-safe data crosses these interfaces (it ends up in workflow history):
 * times are ISO-8601 strings, sizes are numbers of bytes, never secrets.
 */

export type DatabaseEngineKind = 'pgbackrest' | 'rds';

/** What lifeboat knows about a live database instance. */
export interface InstanceDescription {
  /** Engine-scoped id: an RDS DBInstanceIdentifier, or a local cluster name. */
  instanceId: string;
  /** `available`, `creating`, `backing-up`, `stopped`, `failed`, `deleting`, ... as the engine says. */
  status: string;
  endpoint?: { host: string; port: number };
  /** Stable identity of the data itself: Postgres system identifier, or the RDS DbiResourceId. */
  identity?: string;
  engineVersion?: string;
  /** True when lifeboat created this instance (a restore or drill), false for a protected source. */
  createdByLifeboat: boolean;
  /** One sentence on the status when the engine has more to say (why it failed, what it waits for). */
  detail?: string;
  /** The workflow run that created it, as recorded on the instance (absent for sources and unknown instances). */
  owner?: ResourceOwner;
  /** True once traffic was pointed at it: lifeboat never removes it automatically from then on. */
  servedTraffic?: boolean;
  /** The point in time its data is as of, when known (a `latest` restore resolved when it ran). */
  restoredTo?: string;
}

/**
 * Who made a resource: recorded on everything lifeboat creates (restore record, RDS tags), so an
 * activity adopts and deletes only what its own workflow run made and names the owner otherwise.
 */
export interface ResourceOwner {
  workflowId: string;
  runId: string;
  /** The restore point as requested: an ISO time, `latest`, `lsn:<lsn>` or `name:<name>`. */
  restorePoint: string;
  createdAt: string;
  /**
   * `drill`: a restore drill's instance, labelled so on the instance (restore record, RDS tag),
   * taking its port from the drill range, removed by its drill; absent for a restore's.
   */
  purpose?: 'drill';
}

/** The workflow run acting on a resource; it must be the one that created it. */
export type RunIdentity = Pick<ResourceOwner, 'workflowId' | 'runId'>;

export type BackupKind = 'full' | 'diff' | 'incr' | 'snapshot';

export interface BackupHandle {
  engine: DatabaseEngineKind;
  /** pgBackRest backup label, or RDS DBSnapshotIdentifier. */
  backupId: string;
  /** Region or repository the backup lives in: `primary`/`dr` locally, an AWS region on RDS. */
  location: string;
  /** RDS snapshot ARN, or `repo1`/`repo2` for pgBackRest. */
  locator?: string;
  /**
   * The name lifeboat gave the backup (pgBackRest: its `lifeboat-backup` annotation). A pgBackRest
   * backup gets its label only when it finishes; until then backupId holds this name and the
   * engine resolves the backup by it.
   */
  name?: string;
  /** How a DR copy was made, when the engine copied it itself (pgBackRest `drCopy: repository-copy`). */
  copy?: DrCopyReport;
}

/** A DR copy the engine made by copying the repository (not a second backup of the source). */
export interface DrCopyReport {
  mode: 'repository-copy';
  startedAt: string;
  completedAt: string;
  /** Objects and bytes written to the DR repository by the attempt that finished, and those already there whole. */
  copiedObjects: number;
  copiedBytes: number;
  presentObjects: number;
  presentBytes: number;
  /** The sets copied: the backup's own, and any set it builds on the DR repository lacked. */
  sets: string[];
  /**
   * The sets in the DR repository the copy builds on (absent in copies recorded before it was
   * kept): one that no catalog row holds as its own DR copy is expired with the last copy built on it.
   */
  dependsOn?: string[];
  walSegments: number;
}

export interface BackupProgress {
  state: 'running' | 'complete' | 'failed';
  /** 0..100 when the engine reports it. */
  percent?: number;
  detail: string;
  sizeBytes?: number;
  startedAt?: string;
  completedAt?: string;
  /** The engine's id of the finished backup, when it was not known at start (a pgBackRest label). */
  backupId?: string;
  /**
   * Changes whenever the engine sees the running backup do work (pgBackRest: percent, log, CPU and
   * bytes of its processes). Unchanged for the stall time means hung. Undefined: not measurable.
   */
  activity?: string;
}

export interface BackupVerification {
  ok: boolean;
  /** Every check that ran, with what it found: shown in reports and the catalog. */
  checks: Array<{ name: string; ok: boolean; detail: string }>;
}

export interface RestoreWindow {
  earliest: string;
  latest: string;
  /** The same window in WAL positions, where the engine knows them (pgBackRest): the oldest backup's stop LSN. */
  earliestLsn?: string;
  /** The start of the last complete WAL record archived. */
  latestLsn?: string;
}

export type RestorePoint = { kind: 'time'; at: string } | { kind: 'latest' } | { kind: 'lsn'; lsn: string; /** Restore from this backup set on its own timeline (a failback). */ backupId?: string } | { kind: 'name'; name: string } | { kind: 'backup'; backupId: string };

export interface RestoreRequest {
  /** New instance name: derived from the workflow id so a retried activity adopts its own work. */
  destinationId: string;
  point: RestorePoint;
  /** Restore from the DR region's copies instead of the primary's. */
  fromRegion?: 'primary' | 'dr';
  /** Recorded on the new instance; a retry adopts an existing instance only when it matches. */
  owner: ResourceOwner;
}

/**
 * How much data would be lost if the source died now. With continuous WAL archiving it is the
 * archive's lag (the newest archived WAL against now, or none when nothing was written since);
 * without it, the age of the last backup.
 */
export interface RecoveryPointLag {
  seconds: number;
  basis: 'wal-archive' | 'backup-age';
  /** One sentence for a person: what was measured, from where. */
  detail: string;
  /** When the newest recoverable point was made (the archived segment, RDS's LatestRestorableTime). */
  at?: string;
}

/** A database engine: pgBackRest on self-managed Postgres, or Amazon RDS. */
export interface DatabaseEngine {
  readonly kind: DatabaseEngineKind;
  describeSource(): Promise<InstanceDescription>;
  startBackup(request: { backupName: string; kind: BackupKind }): Promise<BackupHandle>;
  backupProgress(handle: BackupHandle): Promise<BackupProgress>;
  verifyBackup(handle: BackupHandle): Promise<BackupVerification>;
  /**
   * Waits (at most timeoutMs) until a running backup may have changed state, so that a finished
   * backup is seen at once rather than at the next poll; engines that cannot tell omit it.
   */
  awaitBackupChange?(handle: BackupHandle, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Stops a running backup's own process (hung, or its workflow cancelled); engines that run none omit it. */
  stopBackup?(handle: BackupHandle): Promise<void>;
  /** Starts (or, copying the repository itself, makes) the DR copy; onProgress hears of a copy the engine makes in place. */
  copyToDisasterRecovery(handle: BackupHandle, request: { copyName: string; onProgress?: (progress: unknown) => void }): Promise<BackupHandle>;
  /**
   * `copiedBase`: the set is in the DR repository only as the base of a repository copy that is
   * being expired (pgBackRest), so the rule that keeps a repository's newest full does not hold it.
   */
  deleteBackup(handle: BackupHandle, options?: { copiedBase?: boolean }): Promise<void>;
  restoreWindow(fromRegion?: 'primary' | 'dr'): Promise<RestoreWindow>;
  /** Creates a NEW instance, or adopts one only its own workflow run made for the same point; refuses anything else naming its owner. */
  /** The lag of continuous archiving; undefined when the target has none (its RPO is then its last backup's age). */
  recoveryPointLag?(now?: Date): Promise<RecoveryPointLag | undefined>;
  startRestore(request: RestoreRequest): Promise<InstanceDescription>;
  describeInstance(instanceId: string): Promise<InstanceDescription | undefined>;
  /** Waits (at most timeoutMs) until a restoring instance may have changed state; engines that cannot tell omit it. */
  awaitInstanceChange?(instanceId: string, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /**
   * Every instance lifeboat restored for this target (restores and drills alike), each with the
   * owner run it records: what the drill sweeper looks through. Engines that cannot list omit it.
   */
  listInstances?(): Promise<InstanceDescription[]>;
  /**
   * Removes an instance the caller's workflow run created; refuses the protected source, an
   * instance another run (or nobody) owns, and one that has served traffic. Missing is success.
   */
  deleteInstance(instanceId: string, by: RunIdentity): Promise<void>;
  /** Marks an instance as serving traffic (just before a cutover points a name at it), so nothing removes it automatically. */
  markServedTraffic(instanceId: string): Promise<void>;
  /**
   * Stops clients writing to the source before traffic moves away from it (no split brain).
   * Returns what was done, so that unfenceSource can undo exactly that.
   */
  fenceSource(owner: { workflowId: string; runId: string }): Promise<SourceFence>;
  /** Undoes a fence this engine made; a fence that changed nothing is left as it was. */
  unfenceSource(fence: SourceFence): Promise<string>;
  /**
   * Readies a restored instance to take traffic without changing what it serves: pgBackRest
   * restarts it with WAL kept for archiving (archive_mode on, nothing pushed yet). Before traffic.
   */
  prepareToServe(instanceId: string): Promise<string>;
  /**
   * The instance now takes the target's traffic: its WAL goes to the target's repositories on its
   * own timeline and a full backup of it starts (RDS: deletion protection and backup retention).
   */
  protectAsNewPrimary(instanceId: string, owner: { workflowId: string; runId: string }): Promise<NewPrimaryProtection>;
  // ---- failback: the way home once the primary region is back, each step undoable until names move.
  /**
   * Re-protects the instance a failover made the target's primary: its WAL archived into the
   * target's repositories in both regions on its own timeline, and a full backup of it in each
   * region, waited until complete (RDS: automated backups replicated into the primary region and
   * a snapshot copied there). Idempotent for the same owner run.
   */
  reprotectInBothRegions?(instanceId: string, owner: RunIdentity): Promise<Reprotection>;
  /** Stops writes on a restored instance that serves traffic (read-only, sessions ended), so that its last WAL is final; undone by unfenceInstance. */
  fenceInstance?(instanceId: string, owner: RunIdentity): Promise<SourceFence>;
  unfenceInstance?(fence: SourceFence): Promise<string>;
  /**
   * After fenceInstance: switches WAL and waits until the last segment is in every repository;
   * returns the position a restore must reach so that no committed transaction is lost.
   */
  shipFinalWal?(instanceId: string): Promise<FinalWal>;
  /**
   * Restores in the primary region up to the final WAL, from the re-protection's backup there,
   * into a NEW instance (never over the old primary).
   */
  restoreForFailback?(request: Omit<RestoreRequest, 'point' | 'fromRegion'> & { finalWal: FinalWal; reprotection: Reprotection }): Promise<InstanceDescription>;
  /**
   * Removes the DR primary once a failback moved every name away from it: only an instance whose
   * recorded owner is `failoverRun` (the failover that made it), never the source. Missing is success.
   */
  retireFailedOverInstance?(instanceId: string, failoverRun: RunIdentity, by: RunIdentity): Promise<string>;
  /** Whether the DR region alone can restore this target now, and from what (RDS); reads only, never calls the primary region. */
  disasterRecoveryReadiness?(now?: Date): Promise<DisasterRecoveryReadiness>;
  /** Restores in the DR region from the best source there (RDS), never calling the primary region; says which source and its RPO. */
  restoreInDisasterRecoveryRegion?(request: Omit<RestoreRequest, 'point' | 'fromRegion'>, now?: Date): Promise<DisasterRecoveryRestore>;
}

/**
 * What a restore in the DR region starts from, found in the DR region alone: the source's
 * automated backups replicated there (point-in-time, up to their latest restorable time), or
 * else the newest snapshot copy there. `rpoSeconds` is the data a restore from it would lose now.
 */
export type DisasterRecoverySource =
  | { kind: 'replicated-automated-backup'; arn: string; earliest: string; latest: string; rpoSeconds: number }
  | { kind: 'snapshot-copy'; snapshotId: string; arn?: string; takenAt: string; rpoSeconds: number };

/** One check of DR readiness, for a person: what was looked at and what it showed. */
export interface DisasterRecoveryCheck {
  name: 'recovery-source' | 'instance-class';
  ok: boolean;
  detail: string;
}

/** Whether a failover of one target can restore in the DR region now (no side effects). */
export interface DisasterRecoveryReadiness {
  ready: boolean;
  /** The DR region's name, e.g. us-west-2. */
  region: string;
  source?: DisasterRecoverySource;
  checks: DisasterRecoveryCheck[];
  /** "ready: ..." or "not ready because ...", one sentence. */
  summary: string;
}

/** A restore started in the DR region, with the source chosen for it. */
export interface DisasterRecoveryRestore {
  instance: InstanceDescription;
  source: DisasterRecoverySource;
  /** One sentence: which source, why, and the RPO it gives. */
  detail: string;
}

/** What fencing did to a source: JSON-safe, kept in history and the catalog. */
export interface SourceFence {
  instanceId: string;
  /**
   * `read-only`: default_transaction_read_only on, client sessions ended; `stopped`: the instance was stopped;
   * `isolated`: (RDS) moved into security groups that admit no client and rebooted, so every session ended
   * while it stays available to snapshot; `none`: nothing could be done (unreachable).
   */
  method: 'read-only' | 'stopped' | 'isolated' | 'none';
  at: string;
  detail: string;
  /** The settings the fence replaced, as the engine read them. */
  previous?: Record<string, string>;
  sessionsEnded?: number;
  /** The command that undoes the fence by hand, for a report whose automatic rollback failed. */
  undoCommand?: string;
}

/** What re-protection of a failed-over primary did: the backup in each region a failback restores from. */
export interface Reprotection {
  instanceId: string;
  /** pgBackRest: the timeline its WAL is archived on. */
  timeline?: number;
  /** The completed backup in each region's repository (`primary`, `dr`). */
  backups: { primary: BackupHandle; dr: BackupHandle };
  measures: string[];
}

/** The last WAL of a fenced instance, shipped to every repository. */
export interface FinalWal {
  instanceId: string;
  /** pgBackRest: the LSN after the last commit (what a restore replays up to, inclusive). */
  lsn?: string;
  /** pgBackRest: the segment holding it, archived in every repository. */
  segment?: string;
  timeline?: number;
  /** RDS: the final snapshot taken after the fence, in the primary region (what the failback restores from). */
  backup?: BackupHandle;
  /** When it was known to be in every repository. */
  shippedAt: string;
  detail: string;
}

/** How a new primary is protected from the moment it takes traffic. */
export interface NewPrimaryProtection {
  instanceId: string;
  endpoint?: { host: string; port: number };
  /** pgBackRest: the new primary's data directory. */
  dataDir?: string;
  /** pgBackRest: the timeline its WAL is archived on. */
  timeline?: number;
  /** One line per measure taken, for the report. */
  measures: string[];
  /** The full backup started right after (pgBackRest), or the snapshot (RDS). */
  backup?: BackupHandle;
}

/** Moves a DNS name between endpoints: PowerDNS locally, Route53 on AWS. */
export interface TrafficRouter {
  readonly kind: 'powerdns' | 'route53';
  /** The records the name has now. */
  currentTarget(name: string): Promise<{ host: string; port?: number; ttl: number } | undefined>;
  /** Points the name at the endpoint and waits until the change is served. */
  pointAt(name: string, target: { host: string; port?: number }, ttl?: number): Promise<{ changeId: string }>;
  /** Every record a cutover of the name would change, as they are now: what a rollback puts back. */
  snapshot(name: string): Promise<DnsSnapshot>;
  /** Puts the name's records back as the snapshot has them and waits until that is served. */
  restoreSnapshot(snapshot: DnsSnapshot): Promise<{ changeId: string }>;
  /** The shell command an operator runs to put the snapshot back by hand (secrets by reference). */
  repairCommand(snapshot: DnsSnapshot, replacedBy?: { host: string; port?: number; ttl: number }): string;
}

/** One record set at a name, as the router stores it. */
export interface DnsRecordSnapshot {
  name: string;
  type: string;
  ttl?: number;
  values: string[];
  /** Route53 alias records: no values of their own. */
  alias?: { hostedZoneId: string; dnsName: string; evaluateTargetHealth: boolean };
}

/** The records of a name at one moment; `records` empty means the name did not exist. */
export interface DnsSnapshot {
  name: string;
  records: DnsRecordSnapshot[];
  /** Where a client following these records lands (host from A/AAAA/CNAME, port from SRV). */
  endpoint?: { host: string; port?: number };
  takenAt: string;
}
