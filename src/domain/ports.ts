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
}

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

export type RestorePoint = { kind: 'time'; at: string } | { kind: 'latest' } | { kind: 'lsn'; lsn: string } | { kind: 'name'; name: string };

export interface RestoreRequest {
  /** New instance name: derived from the workflow id so a retried activity adopts its own work. */
  destinationId: string;
  point: RestorePoint;
  /** Restore from the DR region's copies instead of the primary's. */
  fromRegion?: 'primary' | 'dr';
}

/** A database engine: pgBackRest on self-managed Postgres, or Amazon RDS. */
export interface DatabaseEngine {
  readonly kind: DatabaseEngineKind;
  describeSource(): Promise<InstanceDescription>;
  startBackup(request: { backupName: string; kind: BackupKind }): Promise<BackupHandle>;
  backupProgress(handle: BackupHandle): Promise<BackupProgress>;
  verifyBackup(handle: BackupHandle): Promise<BackupVerification>;
  copyToDisasterRecovery(handle: BackupHandle, request: { copyName: string }): Promise<BackupHandle>;
  deleteBackup(handle: BackupHandle): Promise<void>;
  restoreWindow(fromRegion?: 'primary' | 'dr'): Promise<RestoreWindow>;
  startRestore(request: RestoreRequest): Promise<InstanceDescription>;
  describeInstance(instanceId: string): Promise<InstanceDescription | undefined>;
  /** Removes an instance lifeboat created; refuses the protected source. Missing is success. */
  deleteInstance(instanceId: string): Promise<void>;
}

/** Moves a DNS name between endpoints: PowerDNS locally, Route53 on AWS. */
export interface TrafficRouter {
  readonly kind: 'powerdns' | 'route53';
  /** The records the name has now. */
  currentTarget(name: string): Promise<{ host: string; port?: number; ttl: number } | undefined>;
  /** Points the name at the endpoint and waits until the change is served. */
  pointAt(name: string, target: { host: string; port?: number }, ttl?: number): Promise<{ changeId: string }>;
}
