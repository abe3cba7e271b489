/**
 * Amazon RDS for PostgreSQL as a DatabaseEngine.
 *
 * Backups are manual DB snapshots tagged as lifeboat's, copied to the DR region with the DR
 * region's KMS key. Point-in-time restores always create a NEW instance from the automated
 * backups: in the primary region from the source instance, in the DR region from the replicated
 * automated backups. Every create adopts what an earlier attempt of the same activity made
 * ("already exists" is success when it is ours) and every failure goes through one classifier
 * (aws-errors.ts) that separates retryable from operator-actionable failures.
 */
import { createHash } from 'node:crypto';
import {
  AddTagsToResourceCommand,
  CopyDBSnapshotCommand,
  CreateDBSnapshotCommand,
  DeleteDBInstanceCommand,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  DescribeOrderableDBInstanceOptionsCommand,
  ModifyDBInstanceCommand,
  paginateDescribeDBInstanceAutomatedBackups,
  paginateDescribeDBInstances,
  paginateDescribeDBSnapshots,
  RDSClient,
  RebootDBInstanceCommand,
  RemoveTagsFromResourceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  RestoreDBInstanceToPointInTimeCommand,
  StartDBInstanceAutomatedBackupsReplicationCommand,
  StartDBInstanceCommand,
  StopDBInstanceCommand,
  type DBInstance,
  type DBInstanceAutomatedBackup,
  type DBSnapshot,
  type RestoreDBInstanceFromDBSnapshotCommandInput,
  type RestoreDBInstanceToPointInTimeCommandInput,
  type Tag,
} from '@aws-sdk/client-rds';
import { LifeboatError } from '../domain/errors';
import { describeOwner, isSameRun } from '../domain/ownership';
import type {
  BackupHandle,
  BackupKind,
  BackupProgress,
  BackupVerification,
  DatabaseEngine,
  DisasterRecoveryCheck,
  DisasterRecoveryReadiness,
  DisasterRecoveryRestore,
  DisasterRecoverySource,
  FinalWal,
  InstanceDescription,
  NewPrimaryProtection,
  Reprotection,
  ResourceOwner,
  RestoreRequest,
  RecoveryPointLag,
  RestoreWindow,
  RunIdentity,
  SourceFence,
} from '../domain/ports';
import { classifyAwsError, isAwsError, type AwsCallContext } from './aws-errors';

/** Tag keys lifeboat puts on everything it creates in RDS. */
export const RDS_TAGS = {
  managed: 'lifeboat:managed',
  backupName: 'lifeboat:backup-name',
  backupKind: 'lifeboat:backup-kind',
  sourceInstance: 'lifeboat:source-instance',
  restoredFrom: 'lifeboat:restored-from',
  restorePoint: 'lifeboat:restore-point',
  restoreName: 'lifeboat:restore-name',
  workflowId: 'lifeboat:workflow-id',
  runId: 'lifeboat:run-id',
  createdAt: 'lifeboat:created-at',
  servedTraffic: 'lifeboat:served-traffic',
  fencedBy: 'lifeboat:fenced-by',
  /** The security groups a fenced instance had, space-separated: what unfencing puts back. */
  fencePreviousGroups: 'lifeboat:fence-previous-security-groups',
  /** Set when lifeboat turned deletion protection on (a new primary): only then may it turn it off again. */
  deletionProtectedBy: 'lifeboat:deletion-protected-by',
  newPrimaryOf: 'lifeboat:new-primary-of',
  /** `drill` on a restore drill's instance. */
  purpose: 'lifeboat:purpose',
} as const;

/** The least backup retention, in days, of an instance that takes a target's traffic. */
export const NEW_PRIMARY_BACKUP_RETENTION_DAYS = 7;

/** Where restored instances go: network and size settings per region (all optional). */
export interface RdsRestoreSettings {
  dbInstanceClass?: string;
  dbSubnetGroupName?: string;
  vpcSecurityGroupIds?: string[];
  dbParameterGroupName?: string;
  multiAZ?: boolean;
  publiclyAccessible?: boolean;
  /** Security groups without inbound rules, in the VPC of instances restored here: what fenceInstance moves an instance into. */
  fenceSecurityGroupIds?: string[];
}

export interface RdsEngineOptions {
  /** The protected source: its DBInstanceIdentifier in `region`. */
  instanceId: string;
  region: string;
  drRegion: string;
  /** KMS key (ARN, id or alias) in the DR region that DR snapshot copies are encrypted with. */
  drKmsKeyId: string;
  /** Inject clients (tests, custom credentials); defaults to one RDSClient per region. */
  clients?: { primary: RDSClient; dr: RDSClient };
  /** Settings for restored instances, per region. */
  restore?: { primary?: RdsRestoreSettings; dr?: RdsRestoreSettings };
  /**
   * KMS key in `region` that failback copies (snapshots, replicated automated backups) are
   * encrypted with; default: the source instance's key, when the source still exists.
   */
  primaryKmsKeyId?: string;
  /** Time between polls while waiting for RDS (a snapshot, a security group change). Default 30 s. */
  pollIntervalMs?: number;
  /** Give up one wait after this long (what RDS is doing goes on; a retry waits again). Default 60 min. */
  waitTimeoutMs?: number;
  /** Called after each poll, e.g. to heartbeat the activity. */
  onPoll?: (status: { waitingFor: string; status: string; polls: number }) => void;
  /** Injectable clock and sleep, for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const SNAPSHOT_ID_MAX = 255;
const INSTANCE_ID_MAX = 63;
const VALID_IDENTIFIER = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/**
 * An RDS identifier for `name`: RDS identifiers are case-insensitive, start with a letter and
 * hold letters, digits and single hyphens. A valid name is only lower-cased; any other name is
 * rewritten and suffixed with a short hash of the original, so the mapping stays deterministic
 * (a retried activity lands on the same identifier) and two names never collide by rewriting.
 */
export function rdsIdentifier(name: string, maxLength: number): string {
  const lower = name.toLowerCase();
  if (lower.length <= maxLength && VALID_IDENTIFIER.test(lower)) return lower;
  let base = lower.replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  if (!/^[a-z]/.test(base)) base = base ? `lb-${base}` : 'lb';
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  base = base.slice(0, maxLength - hash.length - 1).replace(/-+$/, '');
  return `${base}-${hash}`;
}

/** RDS tag values allow letters, digits, spaces and `_.:/=+-@`, up to 256 characters. */
function tagValue(value: string): string {
  return value.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_').slice(0, 256);
}

/** A sentence as a clause of a longer one: no full stop, and lower-case unless it starts with a name (RDS, an identifier). */
function clause(sentence: string): string {
  const body = sentence.replace(/\.+$/, '');
  return /^[A-Z][a-z]/.test(body) ? body.charAt(0).toLowerCase() + body.slice(1) : body;
}

function tagOf(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

/** The owner recorded in an instance's tags, when it has one. */
function ownerOf(instance: DBInstance): ResourceOwner | undefined {
  const workflowId = tagOf(instance.TagList, RDS_TAGS.workflowId);
  const runId = tagOf(instance.TagList, RDS_TAGS.runId);
  if (!workflowId || !runId) return undefined;
  return {
    workflowId,
    runId,
    restorePoint: tagOf(instance.TagList, RDS_TAGS.restorePoint) ?? 'unknown',
    createdAt: tagOf(instance.TagList, RDS_TAGS.createdAt) ?? iso(instance.InstanceCreateTime) ?? 'unknown',
    ...(tagOf(instance.TagList, RDS_TAGS.purpose) === 'drill' ? { purpose: 'drill' as const } : {}),
  };
}

/** The final snapshot of a deleted instance: named after it and the deleting run, so a retry reuses the name and a later run never collides with it. */
export function finalSnapshotId(instanceId: string, runId: string): string {
  const run = createHash('sha256').update(runId).digest('hex').slice(0, 8);
  return rdsIdentifier(`${instanceId}-final-${run}`, SNAPSHOT_ID_MAX);
}

/** When a snapshot's data is from: its newest transaction when RDS says, else when it was taken (a copy keeps the original's time). */
function snapshotDataTime(snapshot: DBSnapshot): Date | undefined {
  return snapshot.SnapshotDatabaseTime ?? snapshot.OriginalSnapshotCreateTime ?? snapshot.SnapshotCreateTime;
}

/** Snapshot states RDS never leaves for `available`. */
function snapshotFailed(status: string): boolean {
  return status === 'failed' || status === 'error' || status === 'deleting' || status === 'deleted' || status.startsWith('incompatible') || status.includes('fail') || status.includes('error');
}

/** The security groups an instance is in or joining (not those it is leaving), sorted. */
function securityGroupsOf(instance: DBInstance): string[] {
  return (instance.VpcSecurityGroups ?? [])
    .filter((g) => g.VpcSecurityGroupId && g.Status !== 'removing')
    .map((g) => g.VpcSecurityGroupId!)
    .sort();
}

/** True once the instance is in exactly these security groups and RDS reports every one of them active. */
function inExactlyGroups(instance: DBInstance, groups: string[]): boolean {
  const memberships = instance.VpcSecurityGroups ?? [];
  return memberships.length === groups.length && memberships.every((g) => g.Status === 'active' && groups.includes(g.VpcSecurityGroupId ?? ''));
}

function shortHash(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 8);
}

function secondsBetween(earlier: Date, later: Date): number {
  return Math.max(0, Math.round((later.getTime() - earlier.getTime()) / 1000));
}

function iso(date: Date | undefined): string | undefined {
  return date ? date.toISOString() : undefined;
}

type Region = 'primary' | 'dr';

export class RdsEngine implements DatabaseEngine {
  readonly kind = 'rds' as const;
  readonly instanceId: string;
  readonly region: string;
  readonly drRegion: string;
  readonly drKmsKeyId: string;
  private readonly primary: RDSClient;
  private readonly dr: RDSClient;
  private readonly restoreSettings: { primary?: RdsRestoreSettings; dr?: RdsRestoreSettings };
  private readonly primaryKmsKeyId?: string;
  private readonly pollIntervalMs: number;
  private readonly waitTimeoutMs: number;
  private readonly onPoll?: RdsEngineOptions['onPoll'];
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: RdsEngineOptions) {
    if (!options.instanceId) throw new LifeboatError('The RDS target has no instanceId; set the source DB instance identifier in the lifeboat config.', 'INVALID_CONFIG');
    if (!options.region || !options.drRegion) throw new LifeboatError(`The RDS target ${options.instanceId} needs both region and drRegion; set them in the lifeboat config.`, 'INVALID_CONFIG');
    if (options.region === options.drRegion) {
      throw new LifeboatError(`The RDS target ${options.instanceId} has drRegion equal to its region (${options.region}); a disaster-recovery copy must live in another region, so set a different drRegion in the lifeboat config.`, 'INVALID_CONFIG');
    }
    if (!options.drKmsKeyId) throw new LifeboatError(`The RDS target ${options.instanceId} has no drKmsKeyId; set the KMS key in ${options.drRegion} that DR copies are encrypted with.`, 'INVALID_CONFIG');
    this.instanceId = options.instanceId.toLowerCase();
    this.region = options.region;
    this.drRegion = options.drRegion;
    this.drKmsKeyId = options.drKmsKeyId;
    this.primary = options.clients?.primary ?? new RDSClient({ region: options.region });
    this.dr = options.clients?.dr ?? new RDSClient({ region: options.drRegion });
    this.restoreSettings = options.restore ?? {};
    if (options.primaryKmsKeyId) this.primaryKmsKeyId = options.primaryKmsKeyId;
    this.pollIntervalMs = options.pollIntervalMs ?? 30_000;
    this.waitTimeoutMs = options.waitTimeoutMs ?? 60 * 60 * 1000;
    this.onPoll = options.onPoll;
    this.now = options.now ?? (() => Date.now());
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  // ---------------------------------------------------------------- source

  async describeSource(): Promise<InstanceDescription> {
    return this.describe(await this.sourceInstance('describing the source instance'), false);
  }

  // ---------------------------------------------------------------- backups

  async startBackup(request: { backupName: string; kind: BackupKind }): Promise<BackupHandle> {
    if (request.kind !== 'snapshot' && request.kind !== 'full') {
      throw new LifeboatError(
        `RDS takes only full snapshots, so a "${request.kind}" backup of ${this.instanceId} cannot be made; set the backup kind of this target to "snapshot" in the lifeboat config.`,
        'UNSUPPORTED_BACKUP_KIND',
      );
    }
    const snapshotId = rdsIdentifier(request.backupName, SNAPSHOT_ID_MAX);
    const ctx = this.ctx('primary', 'CreateDBSnapshot', `taking snapshot ${snapshotId} of instance ${this.instanceId}`);
    try {
      const out = await this.primary.send(
        new CreateDBSnapshotCommand({
          DBSnapshotIdentifier: snapshotId,
          DBInstanceIdentifier: this.instanceId,
          Tags: [
            { Key: RDS_TAGS.managed, Value: 'true' },
            { Key: RDS_TAGS.backupName, Value: tagValue(request.backupName) },
            { Key: RDS_TAGS.backupKind, Value: request.kind },
            { Key: RDS_TAGS.sourceInstance, Value: this.instanceId },
          ],
        }),
      );
      return this.handle(out.DBSnapshot, snapshotId, this.region);
    } catch (err) {
      if (!isAwsError(err, 'DBSnapshotAlreadyExistsFault')) throw classifyAwsError(err, ctx);
    }
    // An earlier attempt (or an earlier run with the same name) made it: adopt it if it is a
    // snapshot of the same instance, never someone else's.
    const existing = await this.findSnapshot('primary', snapshotId, 'adopting an existing snapshot');
    if (!existing) {
      throw new LifeboatError(`RDS said snapshot ${snapshotId} already exists in ${this.region} but it could not be found a moment later; lifeboat will retry.`, 'SNAPSHOT_VANISHED', false);
    }
    if (existing.DBInstanceIdentifier?.toLowerCase() !== this.instanceId) {
      throw new LifeboatError(
        `Snapshot ${snapshotId} already exists in ${this.region} but was taken of instance ${existing.DBInstanceIdentifier ?? 'unknown'}, not ${this.instanceId}; lifeboat will not adopt it, so delete or rename that snapshot or use another backup name.`,
        'SNAPSHOT_NAME_CONFLICT',
      );
    }
    return this.handle(existing, snapshotId, this.region);
  }

  async backupProgress(handle: BackupHandle): Promise<BackupProgress> {
    const region = this.regionOf(handle);
    const snapshot = await this.findSnapshot(region, handle.backupId, 'checking backup progress');
    const where = this.regionName(region);
    if (!snapshot) {
      return { state: 'failed', detail: `Snapshot ${handle.backupId} no longer exists in ${where}; it was deleted or its creation failed.` };
    }
    const status = snapshot.Status ?? 'unknown';
    const times: Pick<BackupProgress, 'startedAt' | 'sizeBytes'> = {};
    const started = iso(snapshot.SnapshotCreateTime);
    if (started) times.startedAt = started;
    if (typeof snapshot.FullSnapshotSizeInBytes === 'number') times.sizeBytes = snapshot.FullSnapshotSizeInBytes;
    const percent = snapshot.PercentProgress;
    switch (status) {
      case 'available':
        return { state: 'complete', percent: 100, detail: `Snapshot ${handle.backupId} is available in ${where}.`, ...times };
      case 'creating':
      case 'copying':
      case 'pending':
      case 'modifying':
      case 'upgrading':
        return {
          state: 'running',
          ...(typeof percent === 'number' ? { percent } : {}),
          detail: `Snapshot ${handle.backupId} is ${status} in ${where}${typeof percent === 'number' ? ` (${percent}%)` : ''}.`,
          ...times,
        };
      default:
        if (snapshotFailed(status)) {
          return { state: 'failed', detail: `Snapshot ${handle.backupId} is ${status} in ${where}; take a new backup.`, ...times };
        }
        return { state: 'running', detail: `Snapshot ${handle.backupId} is ${status} in ${where}.`, ...times };
    }
  }

  async verifyBackup(handle: BackupHandle): Promise<BackupVerification> {
    const region = this.regionOf(handle);
    const snapshot = await this.findSnapshot(region, handle.backupId, 'verifying a backup');
    const checks: BackupVerification['checks'] = [];
    const where = this.regionName(region);
    if (!snapshot) {
      checks.push({ name: 'exists', ok: false, detail: `Snapshot ${handle.backupId} does not exist in ${where}.` });
      return { ok: false, checks };
    }
    checks.push({ name: 'exists', ok: true, detail: `Snapshot ${snapshot.DBSnapshotArn ?? handle.backupId} exists in ${where}.` });

    const status = snapshot.Status ?? 'unknown';
    checks.push({ name: 'status', ok: status === 'available', detail: `Status is ${status}${status === 'available' ? '' : ', expected available'}.` });

    checks.push({
      name: 'encrypted',
      ok: snapshot.Encrypted === true,
      detail: snapshot.Encrypted ? `Encrypted with ${snapshot.KmsKeyId ?? 'a KMS key'}.` : 'The snapshot is not encrypted.',
    });

    if (region === 'dr') {
      const ok = this.matchesDrKey(snapshot.KmsKeyId);
      checks.push({
        name: 'dr-kms-key',
        ok,
        detail: ok ? `Encrypted with the DR key ${this.drKmsKeyId}.` : `Encrypted with ${snapshot.KmsKeyId ?? 'no key'}, expected the DR key ${this.drKmsKeyId}.`,
      });
    }

    // The source may be unreachable (that is what DR is for): compare with it when possible.
    let source: DBInstance | undefined;
    try {
      source = await this.sourceInstance('verifying a backup against its source');
    } catch {
      source = undefined;
    }

    const storage = snapshot.AllocatedStorage ?? 0;
    if (storage <= 0) {
      checks.push({ name: 'allocated-storage', ok: false, detail: `Allocated storage is ${storage} GiB.` });
    } else if (source?.AllocatedStorage !== undefined && storage > source.AllocatedStorage) {
      checks.push({ name: 'allocated-storage', ok: false, detail: `Allocated storage is ${storage} GiB, more than the source's ${source.AllocatedStorage} GiB, which RDS storage cannot shrink to.` });
    } else {
      checks.push({
        name: 'allocated-storage',
        ok: true,
        detail: source?.AllocatedStorage !== undefined ? `Allocated storage is ${storage} GiB (source has ${source.AllocatedStorage} GiB).` : `Allocated storage is ${storage} GiB (source not reachable to compare).`,
      });
    }

    const sameName = snapshot.DBInstanceIdentifier?.toLowerCase() === this.instanceId;
    const sourceDbi = source?.DbiResourceId;
    const sameData = !sourceDbi || !snapshot.DbiResourceId || snapshot.DbiResourceId === sourceDbi;
    checks.push({
      name: 'source-instance',
      ok: sameName && sameData,
      detail: !sameName
        ? `Taken of instance ${snapshot.DBInstanceIdentifier ?? 'unknown'}, expected ${this.instanceId}.`
        : !sameData
          ? `Taken of ${this.instanceId} with resource id ${snapshot.DbiResourceId}, but the source now has ${sourceDbi}: the instance was replaced since.`
          : `Taken of ${this.instanceId}${snapshot.DbiResourceId ? ` (${snapshot.DbiResourceId})` : ''}.`,
    });

    return { ok: checks.every((c) => c.ok), checks };
  }

  async copyToDisasterRecovery(handle: BackupHandle, request: { copyName: string }): Promise<BackupHandle> {
    if (this.regionOf(handle) !== 'primary') {
      throw new LifeboatError(`Snapshot ${handle.backupId} is already in ${handle.location}; only snapshots in the primary region ${this.region} are copied to ${this.drRegion}.`, 'INVALID_BACKUP_HANDLE');
    }
    let sourceArn = handle.locator?.startsWith('arn:') ? handle.locator : undefined;
    if (!sourceArn) {
      const source = await this.findSnapshot('primary', handle.backupId, 'looking up the snapshot to copy');
      if (!source?.DBSnapshotArn) {
        throw new LifeboatError(`Snapshot ${handle.backupId} does not exist in ${this.region}, so it cannot be copied to ${this.drRegion}; take a new backup.`, 'SNAPSHOT_NOT_FOUND');
      }
      sourceArn = source.DBSnapshotArn;
    }
    const copyId = rdsIdentifier(request.copyName, SNAPSHOT_ID_MAX);
    const ctx = this.ctx('dr', 'CopyDBSnapshot', `copying snapshot ${handle.backupId} from ${this.region} to ${this.drRegion} as ${copyId}`);
    try {
      const out = await this.dr.send(
        new CopyDBSnapshotCommand({
          // The ARN names the source region: SDK v3 has no SourceRegion member and instead
          // derives it from the ARN to presign the cross-region request (PreSignedUrl).
          SourceDBSnapshotIdentifier: sourceArn,
          TargetDBSnapshotIdentifier: copyId,
          KmsKeyId: this.drKmsKeyId,
          CopyTags: true,
        }),
      );
      return this.handle(out.DBSnapshot, copyId, this.drRegion);
    } catch (err) {
      if (!isAwsError(err, 'DBSnapshotAlreadyExistsFault')) throw classifyAwsError(err, ctx);
    }
    const existing = await this.findSnapshot('dr', copyId, 'adopting an existing DR copy');
    if (!existing) {
      throw new LifeboatError(`RDS said snapshot ${copyId} already exists in ${this.drRegion} but it could not be found a moment later; lifeboat will retry.`, 'SNAPSHOT_VANISHED', false);
    }
    const sameInstance = existing.DBInstanceIdentifier?.toLowerCase() === this.instanceId;
    const sameSource = !existing.SourceDBSnapshotIdentifier || existing.SourceDBSnapshotIdentifier === sourceArn;
    if (!sameInstance || !sameSource) {
      throw new LifeboatError(
        `Snapshot ${copyId} already exists in ${this.drRegion} but is a copy of ${existing.SourceDBSnapshotIdentifier ?? existing.DBInstanceIdentifier ?? 'something else'}, not of ${sourceArn}; lifeboat will not adopt it, so delete or rename that snapshot or use another copy name.`,
        'SNAPSHOT_NAME_CONFLICT',
      );
    }
    return this.handle(existing, copyId, this.drRegion);
  }

  async deleteBackup(handle: BackupHandle): Promise<void> {
    const region = this.regionOf(handle);
    const snapshot = await this.findSnapshot(region, handle.backupId, 'deleting a backup');
    if (!snapshot || snapshot.Status === 'deleting') return;
    if (tagOf(snapshot.TagList, RDS_TAGS.managed) !== 'true') {
      throw new LifeboatError(
        `Snapshot ${handle.backupId} in ${this.regionName(region)} is not tagged ${RDS_TAGS.managed}=true, so lifeboat did not make it and will not delete it; remove it from the catalog or delete it by hand if it is really unwanted.`,
        'NOT_MANAGED_BY_LIFEBOAT',
      );
    }
    try {
      await this.client(region).send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: handle.backupId }));
    } catch (err) {
      if (isAwsError(err, 'DBSnapshotNotFoundFault')) return;
      throw classifyAwsError(err, this.ctx(region, 'DeleteDBSnapshot', `deleting snapshot ${handle.backupId}`));
    }
  }

  // ---------------------------------------------------------------- point-in-time restore

  /**
   * With automated backups on, RDS ships transaction logs continuously: what would be lost now is
   * everything after LatestRestorableTime. Without them (retention 0) only snapshots protect the
   * instance, so there is no lag to report and the RPO is the last snapshot's age.
   */
  async recoveryPointLag(now: Date = new Date()): Promise<RecoveryPointLag | undefined> {
    const source = await this.sourceInstance('reading the latest restorable time');
    const latest = source.LatestRestorableTime;
    if (!source.BackupRetentionPeriod || !latest) return undefined;
    const seconds = Math.max(0, Math.round((now.getTime() - latest.getTime()) / 1000));
    return {
      seconds,
      basis: 'wal-archive',
      at: latest.toISOString(),
      detail: `RDS can restore ${this.instanceId} in ${this.region} up to ${latest.toISOString()} (LatestRestorableTime), ${seconds} s ago.`,
    };
  }

  async restoreWindow(fromRegion: Region = 'primary'): Promise<RestoreWindow> {
    if (fromRegion === 'dr') {
      const backup = await this.drAutomatedBackup();
      return { earliest: backup.RestoreWindow!.EarliestTime!.toISOString(), latest: backup.RestoreWindow!.LatestTime!.toISOString() };
    }
    const source = await this.sourceInstance('reading the restore window');
    if (!source.BackupRetentionPeriod) {
      throw new LifeboatError(
        `Point-in-time restore of ${this.instanceId} in ${this.region} is not possible because automated backups are disabled (backup retention is 0); set a backup retention period of at least 1 day on the instance, or restore from a snapshot.`,
        'PITR_NOT_ENABLED',
      );
    }
    const latest = source.LatestRestorableTime;
    if (!latest) {
      throw new LifeboatError(
        `Instance ${this.instanceId} in ${this.region} has no restorable time yet, which means its first automated backup has not finished; wait for it (usually under an hour after enabling backups) and ask again.`,
        'NO_RESTORABLE_TIME',
      );
    }
    let earliest: Date | undefined;
    if (source.DbiResourceId) {
      const backups = await this.automatedBackups('primary', { DbiResourceId: source.DbiResourceId }, 'reading the earliest restorable time');
      const own = backups.find((b) => b.Status === 'active' && b.RestoreWindow?.EarliestTime) ?? backups.find((b) => b.RestoreWindow?.EarliestTime);
      earliest = own?.RestoreWindow?.EarliestTime;
    }
    if (!earliest) {
      // No automated-backup record: the retention period counted back from the latest
      // restorable time, but never before the instance existed.
      const byRetention = new Date(latest.getTime() - source.BackupRetentionPeriod * 24 * 3600 * 1000);
      const created = source.InstanceCreateTime;
      earliest = created && created > byRetention ? created : byRetention;
    }
    if (earliest > latest) earliest = latest;
    return { earliest: earliest.toISOString(), latest: latest.toISOString() };
  }

  async startRestore(request: RestoreRequest): Promise<InstanceDescription> {
    const region: Region = request.fromRegion ?? 'primary';
    const destinationId = this.newInstanceId(request.destinationId);

    const input: RestoreDBInstanceToPointInTimeCommandInput = { TargetDBInstanceIdentifier: destinationId };
    let pointLabel: string;
    let restoreTime: Date | undefined;
    switch (request.point.kind) {
      case 'time': {
        restoreTime = new Date(request.point.at);
        if (Number.isNaN(restoreTime.getTime())) {
          throw new LifeboatError(`The restore time "${request.point.at}" is not a valid ISO-8601 time; give a time such as 2024-05-01T12:30:00Z.`, 'INVALID_RESTORE_POINT');
        }
        input.RestoreTime = restoreTime;
        pointLabel = restoreTime.toISOString();
        break;
      }
      case 'latest':
        input.UseLatestRestorableTime = true;
        pointLabel = 'latest';
        break;
      case 'backup':
        // The snapshot itself, as it was taken (what a restore drill proves), not a point in time near it.
        return this.restoreSnapshot(request, region, destinationId, request.point.backupId);
      default:
        throw new LifeboatError(
          `RDS restores only to a point in time or to the latest restorable time, not to a ${request.point.kind}; request a time (or latest) for ${this.instanceId}.`,
          'UNSUPPORTED_RESTORE_POINT',
        );
    }

    if (region === 'dr') {
      const backup = await this.drAutomatedBackup();
      input.SourceDBInstanceAutomatedBackupsArn = backup.DBInstanceAutomatedBackupsArn;
    } else {
      input.SourceDBInstanceIdentifier = this.instanceId;
    }
    Object.assign(input, this.restoreParameters(region));
    input.DeletionProtection = false;
    input.Tags = [
      { Key: RDS_TAGS.managed, Value: 'true' },
      { Key: RDS_TAGS.restoredFrom, Value: this.instanceId },
      { Key: RDS_TAGS.restorePoint, Value: tagValue(pointLabel) },
      { Key: RDS_TAGS.restoreName, Value: tagValue(request.destinationId) },
      { Key: RDS_TAGS.workflowId, Value: tagValue(request.owner.workflowId) },
      { Key: RDS_TAGS.runId, Value: tagValue(request.owner.runId) },
      { Key: RDS_TAGS.createdAt, Value: tagValue(request.owner.createdAt) },
      ...(request.owner.purpose === 'drill' ? [{ Key: RDS_TAGS.purpose, Value: 'drill' }] : []),
    ];

    const ctx = this.ctx(region, 'RestoreDBInstanceToPointInTime', `restoring ${this.instanceId} to ${pointLabel} into new instance ${destinationId}`);
    try {
      const out = await this.client(region).send(new RestoreDBInstanceToPointInTimeCommand(input));
      if (out.DBInstance) return this.describe(out.DBInstance, true);
      return { instanceId: destinationId, status: 'creating', createdByLifeboat: true };
    } catch (err) {
      if (!isAwsError(err, 'DBInstanceAlreadyExistsFault')) {
        if (restoreTime && isAwsError(err, 'InvalidRestoreFault')) {
          ctx.detail = await this.windowHint(region, restoreTime);
        }
        throw classifyAwsError(err, ctx);
      }
    }
    return this.adoptRestored(request, region, destinationId, pointLabel);
  }

  /** The RDS identifier of a new instance: never the source, never rewritten into another name (the caller must name the instance it means). */
  private newInstanceId(destination: string): string {
    const destinationId = rdsIdentifier(destination, INSTANCE_ID_MAX);
    if (destinationId === this.instanceId) {
      throw new LifeboatError(
        `Refusing to restore into ${destinationId}: that is the protected source instance, and lifeboat only restores into a new instance; choose a different destination name.`,
        'RESTORE_OVER_SOURCE',
      );
    }
    if (destinationId !== destination.toLowerCase()) {
      throw new LifeboatError(
        `"${destination}" is not a valid RDS instance identifier (letters, digits and single hyphens, starting with a letter, at most ${INSTANCE_ID_MAX} characters); choose another destination name.`,
        'INVALID_DESTINATION',
      );
    }
    return destinationId;
  }

  /**
   * Restores a snapshot of the region (a DR copy in the DR region, a failback's final snapshot in
   * the primary) into a new instance, recording its owner. `takenOf`: the instance the snapshot
   * must be of (the source, unless a failback restores its failed-over primary's).
   */
  private async restoreSnapshot(request: RestoreRequest, region: Region, destinationId: string, snapshotId: string, takenOf: string = this.instanceId): Promise<InstanceDescription> {
    const pointLabel = `backup:${snapshotId}`;
    const snapshot = await this.findSnapshot(region, snapshotId, `looking up snapshot ${snapshotId} to restore`);
    if (!snapshot) {
      throw new LifeboatError(`Snapshot ${snapshotId} does not exist in ${this.regionName(region)}, so it cannot be restored; pick a backup from \`lifeboat backups list\`.`, 'SNAPSHOT_NOT_FOUND');
    }
    if (snapshot.DBInstanceIdentifier?.toLowerCase() !== takenOf) {
      throw new LifeboatError(
        `Snapshot ${snapshotId} in ${this.regionName(region)} was taken of instance ${snapshot.DBInstanceIdentifier ?? 'unknown'}, not ${takenOf}; lifeboat restores only backups of the target it is asked about.`,
        'SNAPSHOT_NAME_CONFLICT',
      );
    }
    if (snapshot.Status !== 'available') {
      throw new LifeboatError(`Snapshot ${snapshotId} in ${this.regionName(region)} is ${snapshot.Status ?? 'in an unknown state'}, not available; restore it once RDS reports it available.`, 'SNAPSHOT_NOT_AVAILABLE', false);
    }
    const input: RestoreDBInstanceFromDBSnapshotCommandInput = {
      DBInstanceIdentifier: destinationId,
      DBSnapshotIdentifier: snapshotId,
      ...this.restoreParameters(region),
      DeletionProtection: false,
      Tags: [
        { Key: RDS_TAGS.managed, Value: 'true' },
        { Key: RDS_TAGS.restoredFrom, Value: this.instanceId },
        { Key: RDS_TAGS.restorePoint, Value: tagValue(pointLabel) },
        { Key: RDS_TAGS.restoreName, Value: tagValue(request.destinationId) },
        { Key: RDS_TAGS.workflowId, Value: tagValue(request.owner.workflowId) },
        { Key: RDS_TAGS.runId, Value: tagValue(request.owner.runId) },
        { Key: RDS_TAGS.createdAt, Value: tagValue(request.owner.createdAt) },
      ],
    };
    try {
      const out = await this.client(region).send(new RestoreDBInstanceFromDBSnapshotCommand(input));
      if (out.DBInstance) return this.describe(out.DBInstance, true);
      return { instanceId: destinationId, status: 'creating', createdByLifeboat: true };
    } catch (err) {
      if (!isAwsError(err, 'DBInstanceAlreadyExistsFault')) throw classifyAwsError(err, this.ctx(region, 'RestoreDBInstanceFromDBSnapshot', `restoring snapshot ${snapshotId} into new instance ${destinationId}`));
    }
    return this.adoptRestored(request, region, destinationId, pointLabel);
  }

  /** An instance of that name exists already: adopted only when this very run made it for the same point (a retried attempt). */
  private async adoptRestored(request: RestoreRequest, region: Region, destinationId: string, pointLabel: string): Promise<InstanceDescription> {
    const existing = await this.findInstance(region, destinationId, 'adopting an existing restore');
    if (!existing) {
      throw new LifeboatError(`RDS said instance ${destinationId} already exists in ${this.regionName(region)} but it could not be found a moment later; lifeboat will retry.`, 'INSTANCE_VANISHED', false);
    }
    const ours = tagOf(existing.TagList, RDS_TAGS.managed) === 'true' && tagOf(existing.TagList, RDS_TAGS.restoredFrom)?.toLowerCase() === this.instanceId;
    if (!ours) {
      throw new LifeboatError(
        `Instance ${destinationId} already exists in ${this.regionName(region)} and lifeboat did not create it from ${this.instanceId}; lifeboat will not touch it, so choose another destination name.`,
        'INSTANCE_NAME_CONFLICT',
      );
    }
    // Adopted only when this very workflow run made it for the same restore point (a retried attempt).
    const owner = ownerOf(existing);
    const sameRun = owner && tagOf(existing.TagList, RDS_TAGS.workflowId) === tagValue(request.owner.workflowId) && tagOf(existing.TagList, RDS_TAGS.runId) === tagValue(request.owner.runId);
    if (!owner || !sameRun || tagOf(existing.TagList, RDS_TAGS.restorePoint) !== tagValue(pointLabel)) {
      const whose = owner ? describeOwner(owner) : 'a lifeboat run from before owners were recorded';
      throw new LifeboatError(
        `Instance ${destinationId} already exists in ${this.regionName(region)} and belongs to ${whose}, not to this workflow run restoring to ${pointLabel}; lifeboat will neither adopt nor delete it: choose another destination name.`,
        'INSTANCE_OWNED_ELSEWHERE',
      );
    }
    return this.describe(existing, true);
  }

  // ---------------------------------------------------------------- disaster recovery (the DR region alone)

  /**
   * The best source for a restore in the DR region, found with the DR region's client alone (the
   * primary region may be gone): the automated backups replicated there, point-in-time up to their
   * latest restorable time; else the newest available snapshot copy lifeboat made there.
   * Undefined when the DR region holds neither.
   */
  async disasterRecoverySource(now: Date = new Date()): Promise<DisasterRecoverySource | undefined> {
    return (await this.drSourceWithEngineVersion(now)).source;
  }

  /** The DR source and the engine version a restore from it would run (for the instance class check). */
  private async drSourceWithEngineVersion(now: Date): Promise<{ source?: DisasterRecoverySource; engineVersion?: string }> {
    const replicated = await this.drReplicatedBackup();
    if (replicated) {
      const window = replicated.RestoreWindow!;
      const source: DisasterRecoverySource = {
        kind: 'replicated-automated-backup',
        arn: replicated.DBInstanceAutomatedBackupsArn!,
        earliest: window.EarliestTime!.toISOString(),
        latest: window.LatestTime!.toISOString(),
        rpoSeconds: secondsBetween(window.LatestTime!, now),
      };
      return { source, engineVersion: replicated.EngineVersion };
    }
    const copy = await this.newestDrSnapshotCopy();
    if (!copy) return {};
    const takenAt = snapshotDataTime(copy)!;
    const source: DisasterRecoverySource = {
      kind: 'snapshot-copy',
      snapshotId: copy.DBSnapshotIdentifier!,
      ...(copy.DBSnapshotArn ? { arn: copy.DBSnapshotArn } : {}),
      takenAt: takenAt.toISOString(),
      rpoSeconds: secondsBetween(takenAt, now),
    };
    return { source, engineVersion: copy.EngineVersion };
  }

  /**
   * Whether a failover can restore this instance in the DR region now, without side effects and
   * without the primary region: a source there (replicated backups and their lag, or the newest
   * snapshot copy and its age) and the configured DR instance class on offer there for the
   * source's engine version. A failure to ask a question is the answer "not ready" with the
   * reason, except a retryable one (throttling, a timeout), which is thrown so the activity retries.
   */
  async disasterRecoveryReadiness(now: Date = new Date()): Promise<DisasterRecoveryReadiness> {
    const checks: DisasterRecoveryCheck[] = [];
    let source: DisasterRecoverySource | undefined;
    let engineVersion: string | undefined;
    try {
      ({ source, engineVersion } = await this.drSourceWithEngineVersion(now));
      checks.push({ name: 'recovery-source', ok: source !== undefined, detail: this.describeDrSource(source) });
    } catch (err) {
      checks.push({ name: 'recovery-source', ok: false, detail: this.unlessRetryable(err) });
    }
    checks.push(await this.instanceClassCheck(engineVersion));
    const failed = checks.filter((c) => !c.ok);
    const summary = failed.length
      ? `${this.instanceId} is not ready to restore in ${this.drRegion} because ${failed.map((c) => clause(c.detail)).join('; and ')}.`
      : `${this.instanceId} is ready to restore in ${this.drRegion}: ${checks.map((c) => clause(c.detail)).join('; ')}.`;
    return { ready: failed.length === 0, region: this.drRegion, ...(source ? { source } : {}), checks, summary };
  }

  /**
   * Starts a restore in the DR region from `request.source` (what readiness reported: a retried
   * activity then stays on the same choice) or from the best source there now, and never calls
   * the primary region: RestoreDBInstanceToPointInTime with the replicated backups' ARN up to the
   * latest restorable time, or RestoreDBInstanceFromDBSnapshot of the newest DR snapshot copy.
   */
  async restoreInDisasterRecoveryRegion(request: Omit<RestoreRequest, 'point' | 'fromRegion'> & { source?: DisasterRecoverySource }, now: Date = new Date()): Promise<DisasterRecoveryRestore> {
    const { source: chosen, ...restore } = request;
    const source = chosen ?? (await this.disasterRecoverySource(now));
    if (!source) {
      throw new LifeboatError(
        `Neither automated backups replicated to ${this.drRegion} nor a snapshot copy of ${this.instanceId} there exist, so it cannot be restored in the DR region; enable automated backup replication to ${this.drRegion}, or let lifeboat copy a backup there first.`,
        'DR_NO_RECOVERY_SOURCE',
      );
    }
    const instance =
      source.kind === 'replicated-automated-backup'
        ? await this.startRestore({ ...restore, fromRegion: 'dr', point: { kind: 'latest' } })
        : await this.startRestore({ ...restore, fromRegion: 'dr', point: { kind: 'backup', backupId: source.snapshotId } });
    return { instance, source, detail: this.describeDrSource(source) };
  }

  private describeDrSource(source: DisasterRecoverySource | undefined): string {
    if (!source) return `Neither automated backups replicated to ${this.drRegion} nor a snapshot copy of ${this.instanceId} there exist: enable automated backup replication, or copy a backup there.`;
    if (source.kind === 'replicated-automated-backup') {
      return `Automated backups of ${this.instanceId} replicated to ${this.drRegion} restore up to ${source.latest} (RPO ${source.rpoSeconds} s now).`;
    }
    return `No automated backups of ${this.instanceId} are replicated to ${this.drRegion}; its newest snapshot copy there, ${source.snapshotId}, holds data up to ${source.takenAt} (RPO ${source.rpoSeconds} s now).`;
  }

  /** The DR instance class offered in the DR region for the engine version a restore there would have. */
  private async instanceClassCheck(engineVersion: string | undefined): Promise<DisasterRecoveryCheck> {
    const instanceClass = this.restoreSettings.dr?.dbInstanceClass;
    if (!instanceClass) {
      return {
        name: 'instance-class',
        ok: false,
        detail: `No instance class is set for restores in ${this.drRegion} (restore.dr.dbInstanceClass of the target), and the source's class cannot be read there without the primary region: set it, so a failover knows what it asks for.`,
      };
    }
    try {
      const out = await this.dr.send(
        new DescribeOrderableDBInstanceOptionsCommand({ Engine: 'postgres', DBInstanceClass: instanceClass, ...(engineVersion ? { EngineVersion: engineVersion } : {}), MaxRecords: 20 }),
      );
      const offered = (out.OrderableDBInstanceOptions ?? []).filter((o) => o.DBInstanceClass === instanceClass);
      const version = engineVersion ? `PostgreSQL ${engineVersion}` : 'PostgreSQL';
      if (!offered.length) return { name: 'instance-class', ok: false, detail: `Instance class ${instanceClass} is not offered for ${version} in ${this.drRegion}: choose another class for restore.dr.dbInstanceClass.` };
      const zones = [...new Set(offered.flatMap((o) => (o.AvailabilityZones ?? []).map((z) => z.Name ?? '')).filter(Boolean))].sort();
      return { name: 'instance-class', ok: true, detail: `Instance class ${instanceClass} is offered for ${version} in ${this.drRegion}${zones.length ? ` (${zones.join(', ')})` : ''}.` };
    } catch (err) {
      return { name: 'instance-class', ok: false, detail: this.unlessRetryable(classifyAwsError(err, this.ctx('dr', 'DescribeOrderableDBInstanceOptions', `checking that ${instanceClass} is offered`))) };
    }
  }

  /** A readiness question that failed: its sentence when retrying would not help; rethrown when it would. */
  private unlessRetryable(err: unknown): string {
    if (err instanceof LifeboatError && err.nonRetryable) return err.message;
    throw err;
  }

  /** The newest available snapshot copy lifeboat made of the source in the DR region (copies keep the source's instance id and tags). */
  private async newestDrSnapshotCopy(): Promise<DBSnapshot | undefined> {
    const all: DBSnapshot[] = [];
    try {
      for await (const page of paginateDescribeDBSnapshots({ client: this.dr }, { DBInstanceIdentifier: this.instanceId, SnapshotType: 'manual' })) {
        all.push(...(page.DBSnapshots ?? []));
      }
    } catch (err) {
      throw classifyAwsError(err, this.ctx('dr', 'DescribeDBSnapshots', `finding the newest snapshot copy of ${this.instanceId}`));
    }
    return all
      .filter((c) => c.DBSnapshotIdentifier && c.DBInstanceIdentifier?.toLowerCase() === this.instanceId && c.Status === 'available' && tagOf(c.TagList, RDS_TAGS.managed) === 'true' && snapshotDataTime(c))
      .sort((a, b) => snapshotDataTime(b)!.getTime() - snapshotDataTime(a)!.getTime())[0];
  }

  async describeInstance(instanceId: string): Promise<InstanceDescription | undefined> {
    const id = rdsIdentifier(instanceId, INSTANCE_ID_MAX);
    for (const region of ['primary', 'dr'] as const) {
      const found = await this.findInstance(region, id, `describing instance ${id}`);
      if (found) return this.describe(found, this.isOurs(found));
    }
    return undefined;
  }

  /** Every instance lifeboat restored from this source, in both regions (tagged managed and restored-from it). */
  async listInstances(): Promise<InstanceDescription[]> {
    const out: InstanceDescription[] = [];
    for (const region of ['primary', 'dr'] as const) {
      try {
        for await (const page of paginateDescribeDBInstances({ client: this.client(region) }, {})) {
          for (const instance of page.DBInstances ?? []) {
            if (!this.isOurs(instance) || tagOf(instance.TagList, RDS_TAGS.restoredFrom) !== this.instanceId) continue;
            out.push(this.describe(instance, true));
          }
        }
      } catch (err) {
        throw classifyAwsError(err, this.ctx(region, 'DescribeDBInstances', `listing the instances restored from ${this.instanceId}`));
      }
    }
    return out;
  }

  async deleteInstance(instanceId: string, by: RunIdentity): Promise<void> {
    const id = rdsIdentifier(instanceId, INSTANCE_ID_MAX);
    if (id === this.instanceId) {
      throw new LifeboatError(
        `Refusing to delete ${id}: it is the protected source instance, and lifeboat deletes only instances it created; check which instance the cleanup was asked to remove.`,
        'DELETE_SOURCE_REFUSED',
      );
    }
    for (const region of ['primary', 'dr'] as const) {
      const found = await this.findInstance(region, id, `deleting instance ${id}`);
      if (!found || found.DBInstanceStatus === 'deleting') continue;
      if (!this.isOurs(found)) {
        throw new LifeboatError(
          `Refusing to delete ${id} in ${this.regionName(region)}: it is not tagged ${RDS_TAGS.managed}=true, so lifeboat did not create it; delete it by hand if it really is a leftover.`,
          'NOT_MANAGED_BY_LIFEBOAT',
        );
      }
      const owner = ownerOf(found);
      const byTags = { workflowId: tagValue(by.workflowId), runId: tagValue(by.runId) };
      if (!owner || !isSameRun({ workflowId: tagOf(found.TagList, RDS_TAGS.workflowId) ?? '', runId: tagOf(found.TagList, RDS_TAGS.runId) ?? '' }, byTags)) {
        const whose = owner ? describeOwner(owner) : 'a lifeboat run from before owners were recorded';
        throw new LifeboatError(
          `Refusing to delete ${id} in ${this.regionName(region)}: it belongs to ${whose}, not to workflow ${by.workflowId} run ${by.runId}; delete it by hand if it really is unwanted.`,
          'NOT_OWNER',
        );
      }
      if (tagOf(found.TagList, RDS_TAGS.servedTraffic)) {
        throw new LifeboatError(
          `Refusing to delete ${id} in ${this.regionName(region)}: it has served traffic since ${tagOf(found.TagList, RDS_TAGS.servedTraffic)}, and lifeboat never removes such an instance automatically; move traffic elsewhere and delete it by hand when it is no longer needed.`,
          'SERVED_TRAFFIC',
        );
      }
      try {
        // A final snapshot keeps the data recoverable even if the deletion was a mistake. RDS cannot
        // snapshot an instance whose restore failed (and it holds no usable data), so that one goes without.
        const unusable = ['failed', 'incompatible-restore', 'incompatible-network'].includes(found.DBInstanceStatus ?? '');
        // Restored from a snapshot that is still there, and never served traffic (refused above): it
        // holds nothing that snapshot lacks, so a final snapshot would only duplicate it (a drill's case).
        const copyOf = tagOf(found.TagList, RDS_TAGS.restorePoint)?.match(/^backup:(.+)$/)?.[1];
        const snapshotStillThere = copyOf ? (await this.findSnapshot(region, copyOf, `checking that snapshot ${copyOf} still holds what ${id} holds`))?.Status === 'available' : false;
        await this.client(region).send(
          new DeleteDBInstanceCommand(
            unusable || snapshotStillThere
              ? { DBInstanceIdentifier: id, SkipFinalSnapshot: true, DeleteAutomatedBackups: true }
              : { DBInstanceIdentifier: id, SkipFinalSnapshot: false, FinalDBSnapshotIdentifier: finalSnapshotId(id, by.runId), DeleteAutomatedBackups: true },
          ),
        );
      } catch (err) {
        if (isAwsError(err, 'DBInstanceNotFoundFault')) continue;
        throw classifyAwsError(err, this.ctx(region, 'DeleteDBInstance', `deleting restored instance ${id}`));
      }
    }
  }

  async markServedTraffic(instanceId: string): Promise<void> {
    const id = rdsIdentifier(instanceId, INSTANCE_ID_MAX);
    for (const region of ['primary', 'dr'] as const) {
      const found = await this.findInstance(region, id, `marking instance ${id} as serving traffic`);
      if (!found) continue;
      if (tagOf(found.TagList, RDS_TAGS.servedTraffic)) return;
      if (!found.DBInstanceArn) throw new LifeboatError(`RDS described instance ${id} without its ARN, so it cannot be tagged as serving traffic; lifeboat will retry.`, 'INSTANCE_WITHOUT_ARN', false);
      try {
        await this.client(region).send(new AddTagsToResourceCommand({ ResourceName: found.DBInstanceArn, Tags: [{ Key: RDS_TAGS.servedTraffic, Value: new Date().toISOString() }] }));
      } catch (err) {
        throw classifyAwsError(err, this.ctx(region, 'AddTagsToResource', `tagging instance ${id} as serving traffic`));
      }
      return;
    }
    throw new LifeboatError(`There is no RDS instance ${id} in ${this.region} or ${this.drRegion} to point traffic at; check the instance name of the cutover.`, 'INSTANCE_NOT_FOUND');
  }

  // ---------------------------------------------------------------- cutover: fence, serve, protect

  /**
   * RDS has no read-only switch short of a parameter group change and reboot, so the fence is
   * StopDBInstance: nothing reaches a stopped instance. The source is tagged with the workflow
   * run first, so a retried fence knows the instance was available before it stopped it.
   */
  async fenceSource(owner: { workflowId: string; runId: string }): Promise<SourceFence> {
    const source = await this.sourceInstance('fencing the source before a cutover');
    const at = new Date().toISOString();
    const fencedBy = `${owner.workflowId}/${owner.runId}`;
    const status = source.DBInstanceStatus ?? 'unknown';
    const ours = tagOf(source.TagList, RDS_TAGS.fencedBy) === tagValue(fencedBy);
    if (status !== 'available' && !(ours && (status === 'stopping' || status === 'stopped'))) {
      if (status === 'stopped' || status === 'stopping') return { instanceId: this.instanceId, method: 'none', at, detail: `${this.instanceId} was already ${status}, so no client can write to it; nothing was changed`, previous: { status } };
      throw new LifeboatError(`The source ${this.instanceId} is ${status}, so lifeboat cannot stop it before moving traffic; wait until it is available or stopped, then retry the cutover.`, 'FENCE_FAILED', false);
    }
    if (status === 'available') {
      try {
        await this.primary.send(new AddTagsToResourceCommand({ ResourceName: source.DBInstanceArn, Tags: [{ Key: RDS_TAGS.fencedBy, Value: tagValue(fencedBy) }] }));
        await this.primary.send(new StopDBInstanceCommand({ DBInstanceIdentifier: this.instanceId }));
      } catch (err) {
        throw classifyAwsError(err, this.ctx('primary', 'StopDBInstance', `stopping the source ${this.instanceId} so that no client writes to it after the cutover`));
      }
    }
    return {
      instanceId: this.instanceId,
      method: 'stopped',
      at,
      detail: `${this.instanceId} was stopped (StopDBInstance) so that no client can write to it`,
      previous: { status: 'available' },
      undoCommand: `aws rds start-db-instance --region ${this.region} --db-instance-identifier ${this.instanceId}`,
    };
  }

  async unfenceSource(fence: SourceFence): Promise<string> {
    if (fence.method !== 'stopped') return `nothing to undo on ${fence.instanceId}: ${fence.detail}`;
    const source = await this.sourceInstance('starting the source again after a rolled-back cutover');
    const status = source.DBInstanceStatus ?? 'unknown';
    try {
      if (status === 'stopped') await this.primary.send(new StartDBInstanceCommand({ DBInstanceIdentifier: this.instanceId }));
      else if (status !== 'starting' && status !== 'available') {
        throw new LifeboatError(`The source ${this.instanceId} is ${status}, not yet stopped, so it cannot be started again; lifeboat will retry.`, 'UNFENCE_NOT_YET', false);
      }
      await this.primary.send(new RemoveTagsFromResourceCommand({ ResourceName: source.DBInstanceArn, TagKeys: [RDS_TAGS.fencedBy] }));
    } catch (err) {
      if (err instanceof LifeboatError) throw err;
      throw classifyAwsError(err, this.ctx('primary', 'StartDBInstance', `starting the source ${this.instanceId} again after a rolled-back cutover`));
    }
    return `${this.instanceId} is starting again (StartDBInstance); it accepts connections once available`;
  }

  /** A restored RDS instance needs nothing before it takes traffic: protection follows the cutover. */
  async prepareToServe(instanceId: string): Promise<string> {
    return `${rdsIdentifier(instanceId, INSTANCE_ID_MAX)} needs no preparation on RDS`;
  }

  /** Deletion protection on, automated backups kept at least 7 days, and a snapshot started now. */
  async protectAsNewPrimary(instanceId: string, owner: { workflowId: string; runId: string }): Promise<NewPrimaryProtection> {
    const id = rdsIdentifier(instanceId, INSTANCE_ID_MAX);
    if (id === this.instanceId) throw new LifeboatError(`Refusing to treat ${id} as a new primary: it is the source itself; traffic moves only to a restored instance.`, 'CUTOVER_TO_SOURCE_REFUSED');
    let region: Region | undefined;
    let instance: DBInstance | undefined;
    for (const r of ['primary', 'dr'] as const) {
      instance = await this.findInstance(r, id, `protecting the new primary ${id}`);
      if (instance) {
        region = r;
        break;
      }
    }
    if (!instance || !region) throw new LifeboatError(`The restored instance ${id} was not found in ${this.region} or ${this.drRegion}, so it cannot be protected as the new primary; check the instance.`, 'INSTANCE_NOT_FOUND');
    if (!this.isOurs(instance)) throw new LifeboatError(`Instance ${id} is not tagged ${RDS_TAGS.managed}=true, so lifeboat did not create it and will not change it.`, 'NOT_MANAGED_BY_LIFEBOAT');
    const retention = Math.max(instance.BackupRetentionPeriod ?? 0, NEW_PRIMARY_BACKUP_RETENTION_DAYS);
    // Recorded before the change, so that a retry after it still knows lifeboat turned protection
    // on, and retiring the instance after a failback may turn it off again (never an operator's).
    if (!instance.DeletionProtection && instance.DBInstanceArn && !tagOf(instance.TagList, RDS_TAGS.deletionProtectedBy)) {
      try {
        await this.client(region).send(new AddTagsToResourceCommand({ ResourceName: instance.DBInstanceArn, Tags: [{ Key: RDS_TAGS.deletionProtectedBy, Value: tagValue(`${owner.workflowId}/${owner.runId}`) }] }));
      } catch (err) {
        throw classifyAwsError(err, this.ctx(region, 'AddTagsToResource', `recording that lifeboat turns on deletion protection of the new primary ${id}`));
      }
    }
    try {
      await this.client(region).send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: id, DeletionProtection: true, BackupRetentionPeriod: retention, ApplyImmediately: true }));
    } catch (err) {
      throw classifyAwsError(err, this.ctx(region, 'ModifyDBInstance', `turning on deletion protection and ${retention}-day backups for the new primary ${id}`));
    }
    const snapshotId = rdsIdentifier(`lifeboat-new-primary-${owner.workflowId}`, SNAPSHOT_ID_MAX);
    let snapshot: DBSnapshot | undefined;
    try {
      const out = await this.client(region).send(
        new CreateDBSnapshotCommand({
          DBSnapshotIdentifier: snapshotId,
          DBInstanceIdentifier: id,
          Tags: [
            { Key: RDS_TAGS.managed, Value: 'true' },
            { Key: RDS_TAGS.backupKind, Value: 'snapshot' },
            { Key: RDS_TAGS.sourceInstance, Value: id },
            { Key: RDS_TAGS.newPrimaryOf, Value: tagValue(this.instanceId) },
          ],
        }),
      );
      snapshot = out.DBSnapshot;
    } catch (err) {
      if (!isAwsError(err, 'DBSnapshotAlreadyExistsFault')) throw classifyAwsError(err, this.ctx(region, 'CreateDBSnapshot', `taking the first snapshot ${snapshotId} of the new primary ${id}`));
      snapshot = await this.findSnapshot(region, snapshotId, 'adopting the first snapshot of the new primary');
    }
    const endpoint = this.describe(instance, true).endpoint;
    return {
      instanceId: id,
      ...(endpoint ? { endpoint } : {}),
      measures: [`deletion protection on`, `automated backups kept ${retention} days`, `snapshot ${snapshotId} started`],
      backup: this.handle(snapshot, snapshotId, this.regionName(region)),
    };
  }

  // ---------------------------------------------------------------- failback: the way home from the DR region

  /**
   * Re-protects the primary a failover made in the DR region: automated backups on (at least 7
   * days) and replicated into the primary region, and a snapshot of it taken in the DR region and
   * copied into the primary region, both waited until available. Named after the failback's
   * workflow, so a retry adopts what an earlier attempt made.
   */
  async reprotectInBothRegions(instanceId: string, owner: RunIdentity): Promise<Reprotection> {
    const { id } = await this.failedOverInstance(instanceId, 're-protecting');
    const measures: string[] = [];
    // RDS changes an instance only while it is available (a new primary may still be taking its first snapshot).
    const instance = await this.instanceWhen('dr', id, `${id} to be available for its re-protection`, (i) => i.DBInstanceStatus === 'available');
    const retention = Math.max(instance.BackupRetentionPeriod ?? 0, NEW_PRIMARY_BACKUP_RETENTION_DAYS);
    if ((instance.BackupRetentionPeriod ?? 0) < retention) {
      try {
        await this.dr.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: id, BackupRetentionPeriod: retention, ApplyImmediately: true }));
      } catch (err) {
        throw classifyAwsError(err, this.ctx('dr', 'ModifyDBInstance', `turning on ${retention}-day automated backups of ${id}`));
      }
      measures.push(`automated backups of ${id} turned on, kept ${retention} days`);
    } else {
      measures.push(`automated backups of ${id} already on, kept ${retention} days`);
    }
    // Replication and snapshots both want backups on and an available instance (turning backups on makes it back up first).
    const ready = await this.instanceWhen('dr', id, `${id} to be available with automated backups on`, (i) => i.DBInstanceStatus === 'available' && (i.BackupRetentionPeriod ?? 0) >= retention);
    measures.push(await this.replicateAutomatedBackupsHome(ready, retention));

    const snapshotId = rdsIdentifier(`lifeboat-reprotect-${owner.workflowId}`, SNAPSHOT_ID_MAX);
    await this.takeSnapshot('dr', id, snapshotId, [{ Key: RDS_TAGS.workflowId, Value: tagValue(owner.workflowId) }], `re-protecting the failed-over primary ${id}`);
    const drSnapshot = await this.snapshotWhenAvailable('dr', snapshotId);
    const copy = await this.copyHome(drSnapshot, snapshotId);
    measures.push(`snapshot ${snapshotId} of ${id} available in ${this.drRegion} and copied to ${this.region}`);
    return {
      instanceId: id,
      backups: { primary: this.handle(copy, snapshotId, this.region), dr: this.handle(drSnapshot, snapshotId, this.drRegion) },
      measures,
    };
  }

  /**
   * Fences a failed-over primary before its final snapshot. RDS has no read-only switch, and a
   * stopped instance cannot be snapshotted (CreateDBSnapshot wants it available); the snapshot
   * StopDBInstance can take is made just before the stop, while clients may still commit. So the
   * fence keeps the instance running but unreachable: its security groups are replaced by the
   * configured fence groups (no inbound rules) and it is rebooted, which ends every session the
   * old groups let in. Nothing can commit after that, so a snapshot then holds every committed
   * transaction. The run and the groups it replaced are tagged first, so a retry knows both.
   */
  async fenceInstance(instanceId: string, owner: RunIdentity): Promise<SourceFence> {
    const { id, region, instance: found } = await this.failedOverInstance(instanceId, 'fencing');
    const fenceGroups = this.fenceGroups(region, id);
    const fencedBy = tagValue(`${owner.workflowId}/${owner.runId}`);
    const taggedBy = tagOf(found.TagList, RDS_TAGS.fencedBy);
    if (taggedBy && taggedBy !== fencedBy) {
      throw new LifeboatError(`Instance ${id} is already fenced by ${taggedBy}, so lifeboat will not fence it for workflow ${owner.workflowId} run ${owner.runId}; finish or roll back that run first.`, 'FENCED_BY_ANOTHER_RUN');
    }
    // A fence of our own (a retry) is followed through in whatever state it left the instance; a new one starts from available.
    const instance = taggedBy ? found : await this.instanceWhen(region, id, `${id} to be available for its fence`, (i) => i.DBInstanceStatus === 'available');
    const status = instance.DBInstanceStatus ?? 'unknown';
    let previous = securityGroupsOf(instance);
    if (taggedBy) {
      previous = (tagOf(instance.TagList, RDS_TAGS.fencePreviousGroups) ?? '').split(' ').filter(Boolean);
    } else {
      try {
        await this.client(region).send(
          new AddTagsToResourceCommand({
            ResourceName: instance.DBInstanceArn,
            Tags: [
              { Key: RDS_TAGS.fencedBy, Value: fencedBy },
              { Key: RDS_TAGS.fencePreviousGroups, Value: previous.join(' ') },
            ],
          }),
        );
      } catch (err) {
        throw classifyAwsError(err, this.ctx(region, 'AddTagsToResource', `recording the fence of ${id}`));
      }
    }
    if (status === 'available' && !inExactlyGroups(instance, fenceGroups)) {
      try {
        await this.client(region).send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: id, VpcSecurityGroupIds: fenceGroups, ApplyImmediately: true }));
      } catch (err) {
        throw classifyAwsError(err, this.ctx(region, 'ModifyDBInstance', `moving ${id} into the fence security groups ${fenceGroups.join(', ')}`));
      }
    }
    const isolated = await this.instanceWhen(region, id, `${id} to be in the fence security groups ${fenceGroups.join(', ')}`, (i) => i.DBInstanceStatus === 'rebooting' || (i.DBInstanceStatus === 'available' && inExactlyGroups(i, fenceGroups)));
    // Security groups do not cut connections already open; a reboot does. A retry after the reboot reboots once more, which ends nothing new.
    if (isolated.DBInstanceStatus !== 'rebooting') {
      try {
        await this.client(region).send(new RebootDBInstanceCommand({ DBInstanceIdentifier: id }));
      } catch (err) {
        throw classifyAwsError(err, this.ctx(region, 'RebootDBInstance', `rebooting ${id} to end the sessions opened before its fence`));
      }
    }
    return {
      instanceId: id,
      method: 'isolated',
      at: new Date(this.now()).toISOString(),
      detail: `${id} was moved into the security groups ${fenceGroups.join(', ')}, which admit no client, and rebooted to end every open session`,
      previous: { region: this.drRegion, vpcSecurityGroupIds: previous.join(' ') },
      undoCommand: `aws rds modify-db-instance --region ${this.drRegion} --db-instance-identifier ${id} --vpc-security-group-ids ${previous.join(' ')} --apply-immediately`,
    };
  }

  /** Puts back the security groups a fence replaced; clients can connect again once RDS applies it. */
  async unfenceInstance(fence: SourceFence): Promise<string> {
    if (fence.method !== 'isolated') return `nothing to undo on ${fence.instanceId}: ${fence.detail}`;
    const id = rdsIdentifier(fence.instanceId, INSTANCE_ID_MAX);
    const previous = (fence.previous?.vpcSecurityGroupIds ?? '').split(' ').filter(Boolean);
    if (!previous.length) {
      throw new LifeboatError(`The fence of ${id} recorded no security groups to put back, so lifeboat cannot undo it; run by hand: ${fence.undoCommand ?? 'aws rds modify-db-instance with the groups the instance had'}.`, 'UNFENCE_FAILED');
    }
    const instance = await this.findInstance('dr', id, `unfencing ${id}`);
    if (!instance) return `${id} no longer exists in ${this.drRegion}; there is no fence to undo`;
    const status = instance.DBInstanceStatus ?? 'unknown';
    if (!inExactlyGroups(instance, previous)) {
      if (status !== 'available') throw new LifeboatError(`Instance ${id} is ${status}, so its security groups cannot be put back yet; lifeboat will retry.`, 'UNFENCE_NOT_YET', false);
      try {
        await this.dr.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: id, VpcSecurityGroupIds: previous, ApplyImmediately: true }));
      } catch (err) {
        throw classifyAwsError(err, this.ctx('dr', 'ModifyDBInstance', `putting ${id} back into its security groups ${previous.join(', ')}`));
      }
    }
    try {
      await this.dr.send(new RemoveTagsFromResourceCommand({ ResourceName: instance.DBInstanceArn, TagKeys: [RDS_TAGS.fencedBy, RDS_TAGS.fencePreviousGroups] }));
    } catch (err) {
      throw classifyAwsError(err, this.ctx('dr', 'RemoveTagsFromResource', `removing the fence tags of ${id}`));
    }
    return `${id} is back in its security groups ${previous.join(', ')}; clients can connect again once RDS applies the change`;
  }

  /**
   * RDS has no WAL to ship: the final state of a fenced instance is a snapshot taken after the
   * fence (the instance available again after its reboot, still in the fence groups), copied into
   * the primary region and waited until available there. Named after the fence's run.
   */
  async shipFinalWal(instanceId: string): Promise<FinalWal> {
    const { id, region, instance } = await this.failedOverInstance(instanceId, 'taking the final snapshot of');
    const fenceGroups = this.fenceGroups(region, id);
    const fencedBy = tagOf(instance.TagList, RDS_TAGS.fencedBy);
    const stillFenced = (i: DBInstance) => i.DBInstanceStatus !== 'available' || inExactlyGroups(i, fenceGroups);
    if (!fencedBy || !stillFenced(instance)) {
      throw new LifeboatError(`Instance ${id} is not fenced, so a snapshot of it now could miss transactions committed after it; fence it first and take its final snapshot then.`, 'NOT_FENCED');
    }
    const fenced = await this.instanceWhen(region, id, `${id} to be available again after its fence`, (i) => i.DBInstanceStatus === 'available');
    if (!stillFenced(fenced)) {
      throw new LifeboatError(`Instance ${id} left its fence security groups before its final snapshot, so clients may have written to it since; fence it again and take its final snapshot then.`, 'NOT_FENCED');
    }
    const snapshotId = rdsIdentifier(`${id}-failback-final-${shortHash(fencedBy)}`, SNAPSHOT_ID_MAX);
    await this.takeSnapshot('dr', id, snapshotId, [{ Key: RDS_TAGS.fencedBy, Value: fencedBy }], `taking the final snapshot of the fenced instance ${id}`);
    const final = await this.snapshotWhenAvailable('dr', snapshotId);
    const copy = await this.copyHome(final, snapshotId);
    const takenAt = iso(final.SnapshotCreateTime);
    return {
      instanceId: id,
      backup: this.handle(copy, snapshotId, this.region),
      shippedAt: new Date(this.now()).toISOString(),
      detail: `Final snapshot ${snapshotId} of ${id}, taken${takenAt ? ` at ${takenAt}` : ''} after its fence so it holds every committed transaction, is available in ${this.region}.`,
    };
  }

  /** Restores the final snapshot's copy in the primary region into a NEW instance, tagged with its owner like every restore. */
  async restoreForFailback(request: Omit<RestoreRequest, 'point' | 'fromRegion'> & { finalWal: FinalWal; reprotection: Reprotection }): Promise<InstanceDescription> {
    const final = request.finalWal.backup;
    if (!final) {
      throw new LifeboatError(`The final state of ${request.finalWal.instanceId} names no snapshot, and RDS fails back only from one; take it with shipFinalWal after the fence and restore from what that returns.`, 'FINAL_SNAPSHOT_MISSING');
    }
    if (this.regionOf(final) !== 'primary') {
      throw new LifeboatError(`The final snapshot ${final.backupId} lives in ${final.location}, but a failback restores in ${this.region}; restore from the copy there that shipFinalWal returned.`, 'INVALID_BACKUP_HANDLE');
    }
    const destinationId = this.newInstanceId(request.destinationId);
    const restore: RestoreRequest = { destinationId: request.destinationId, owner: request.owner, point: { kind: 'backup', backupId: final.backupId }, fromRegion: 'primary' };
    return this.restoreSnapshot(restore, 'primary', destinationId, final.backupId, rdsIdentifier(request.finalWal.instanceId, INSTANCE_ID_MAX));
  }

  /**
   * Deletes the DR primary once a failback moved every name away from it: only an instance whose
   * owner tags name `failoverRun`. Deletion protection is turned off first only when lifeboat
   * turned it on; a final snapshot is always kept (it served traffic), and its automated backups
   * are retained for their retention period. Missing (or already deleting) is success.
   */
  async retireFailedOverInstance(instanceId: string, failoverRun: RunIdentity, by: RunIdentity): Promise<string> {
    const id = rdsIdentifier(instanceId, INSTANCE_ID_MAX);
    if (id === this.instanceId) {
      throw new LifeboatError(`Refusing to retire ${id}: it is the protected source instance, and a failback retires only the instance its failover restored; check which instance the failback was asked to retire.`, 'RETIRE_SOURCE_REFUSED');
    }
    for (const region of ['primary', 'dr'] as const) {
      const found = await this.findInstance(region, id, `retiring the failed-over instance ${id}`);
      if (!found) continue;
      const where = this.regionName(region);
      if (found.DBInstanceStatus === 'deleting') return `${id} in ${where} is already being deleted`;
      if (!this.isOurs(found)) {
        throw new LifeboatError(`Refusing to retire ${id} in ${where}: it is not tagged ${RDS_TAGS.managed}=true, so lifeboat did not create it; delete it by hand if it really is unwanted.`, 'NOT_MANAGED_BY_LIFEBOAT');
      }
      const owner = ownerOf(found);
      const recorded = { workflowId: tagOf(found.TagList, RDS_TAGS.workflowId) ?? '', runId: tagOf(found.TagList, RDS_TAGS.runId) ?? '' };
      if (!owner || !isSameRun(recorded, { workflowId: tagValue(failoverRun.workflowId), runId: tagValue(failoverRun.runId) })) {
        const whose = owner ? describeOwner(owner) : 'a lifeboat run from before owners were recorded';
        throw new LifeboatError(
          `Refusing to retire ${id} in ${where}: it belongs to ${whose}, not to the failover workflow ${failoverRun.workflowId} run ${failoverRun.runId}; check which failover this failback undoes.`,
          'NOT_OWNER',
        );
      }
      if (found.DeletionProtection) {
        if (!tagOf(found.TagList, RDS_TAGS.deletionProtectedBy)) {
          throw new LifeboatError(`Refusing to retire ${id} in ${where}: its deletion protection was turned on by someone other than lifeboat; turn it off by hand if the instance really should go, then retry.`, 'DELETION_PROTECTED');
        }
        try {
          await this.client(region).send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: id, DeletionProtection: false, ApplyImmediately: true }));
        } catch (err) {
          throw classifyAwsError(err, this.ctx(region, 'ModifyDBInstance', `turning off the deletion protection lifeboat turned on for ${id}`));
        }
      }
      const snapshotId = finalSnapshotId(id, by.runId);
      try {
        // Automated backups are kept (their window ends with their retention): the instance served traffic.
        await this.client(region).send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: false, FinalDBSnapshotIdentifier: snapshotId, DeleteAutomatedBackups: false }));
      } catch (err) {
        if (isAwsError(err, 'DBInstanceNotFoundFault')) return `${id} no longer exists; nothing to retire`;
        throw classifyAwsError(err, this.ctx(region, 'DeleteDBInstance', `retiring the failed-over instance ${id} with final snapshot ${snapshotId}`));
      }
      return `${id} in ${where} is being deleted (DeleteDBInstance); its final snapshot ${snapshotId} is kept`;
    }
    return `${id} no longer exists; nothing to retire`;
  }

  /** The failed-over primary: in the DR region, restored by lifeboat, never the source. */
  private async failedOverInstance(instanceId: string, doing: string): Promise<{ id: string; region: Region; instance: DBInstance }> {
    const id = rdsIdentifier(instanceId, INSTANCE_ID_MAX);
    if (id === this.instanceId) {
      throw new LifeboatError(`Refusing to fail back from ${id}: it is the source itself; a failback starts from the instance a failover restored in ${this.drRegion}.`, 'FAILBACK_FROM_SOURCE_REFUSED');
    }
    const instance = await this.findInstance('dr', id, `${doing} the failed-over instance ${id}`);
    if (!instance) {
      throw new LifeboatError(`There is no instance ${id} in ${this.drRegion}, so it cannot be failed back from; give the instance the failover restored there.`, 'INSTANCE_NOT_FOUND');
    }
    if (!this.isOurs(instance)) {
      throw new LifeboatError(`Instance ${id} in ${this.drRegion} is not tagged ${RDS_TAGS.managed}=true, so lifeboat did not create it and will not change it; give the instance the failover restored.`, 'NOT_MANAGED_BY_LIFEBOAT');
    }
    return { id, region: 'dr', instance };
  }

  private fenceGroups(region: Region, id: string): string[] {
    const groups = [...(this.restoreSettings[region]?.fenceSecurityGroupIds ?? [])].sort();
    if (!groups.length) {
      throw new LifeboatError(
        `No fence security groups are set for ${this.regionName(region)}, and RDS can fence ${id} only by moving it into groups that admit no client; create a security group without inbound rules in its VPC and set it as restore.${region}.fenceSecurityGroupIds of the target.`,
        'FENCE_NOT_CONFIGURED',
      );
    }
    return groups;
  }

  /** Starts replicating the instance's automated backups into the primary region, unless they already are. */
  private async replicateAutomatedBackupsHome(instance: DBInstance, retention: number): Promise<string> {
    const id = instance.DBInstanceIdentifier ?? 'unknown';
    const done = `automated backups of ${id} replicated into ${this.region}`;
    if ((instance.DBInstanceAutomatedBackupsReplications ?? []).some((r) => r.DBInstanceAutomatedBackupsArn?.includes(`:${this.region}:`))) return `${done} (already)`;
    const kmsKeyId = instance.StorageEncrypted ? await this.primaryKmsKey(id) : undefined;
    try {
      // Sent in the destination region; the source ARN names the DR region the backups come from.
      await this.primary.send(new StartDBInstanceAutomatedBackupsReplicationCommand({ SourceDBInstanceArn: instance.DBInstanceArn, BackupRetentionPeriod: retention, ...(kmsKeyId ? { KmsKeyId: kmsKeyId } : {}) }));
    } catch (err) {
      // An earlier attempt started it and the instance does not show it yet.
      const already = isAwsError(err, 'InvalidDBInstanceAutomatedBackupStateFault') && instance.DbiResourceId && (await this.automatedBackups('primary', { DbiResourceId: instance.DbiResourceId }, `checking whether the backups of ${id} already replicate`)).length > 0;
      if (!already) throw classifyAwsError(err, this.ctx('primary', 'StartDBInstanceAutomatedBackupsReplication', `replicating the automated backups of ${id} into ${this.region}`));
    }
    return done;
  }

  /** The KMS key copies into the primary region are encrypted with: the configured one, else the source's. */
  private async primaryKmsKey(what: string): Promise<string> {
    if (this.primaryKmsKeyId) return this.primaryKmsKeyId;
    const source = await this.findInstance('primary', this.instanceId, `reading the KMS key of ${this.instanceId} to encrypt copies of ${what} with`);
    if (source?.KmsKeyId) return source.KmsKeyId;
    throw new LifeboatError(
      `${what} is encrypted and no KMS key in ${this.region} is known to encrypt its copy there (the source ${this.instanceId} is gone or unencrypted); set primaryKmsKeyId of the target to a key in ${this.region}.`,
      'KMS_KEY_NOT_CONFIGURED',
    );
  }

  /** Takes a snapshot of `instanceId`, or adopts the one an earlier attempt took under that name. */
  private async takeSnapshot(region: Region, instanceId: string, snapshotId: string, extraTags: Tag[], doing: string): Promise<void> {
    try {
      await this.client(region).send(
        new CreateDBSnapshotCommand({
          DBSnapshotIdentifier: snapshotId,
          DBInstanceIdentifier: instanceId,
          Tags: [{ Key: RDS_TAGS.managed, Value: 'true' }, { Key: RDS_TAGS.backupKind, Value: 'snapshot' }, { Key: RDS_TAGS.sourceInstance, Value: instanceId }, ...extraTags],
        }),
      );
      return;
    } catch (err) {
      if (!isAwsError(err, 'DBSnapshotAlreadyExistsFault')) throw classifyAwsError(err, this.ctx(region, 'CreateDBSnapshot', `${doing} (snapshot ${snapshotId})`));
    }
    const existing = await this.findSnapshot(region, snapshotId, `adopting snapshot ${snapshotId}`);
    if (!existing) {
      throw new LifeboatError(`RDS said snapshot ${snapshotId} already exists in ${this.regionName(region)} but it could not be found a moment later; lifeboat will retry.`, 'SNAPSHOT_VANISHED', false);
    }
    if (existing.DBInstanceIdentifier?.toLowerCase() !== instanceId) {
      throw new LifeboatError(
        `Snapshot ${snapshotId} already exists in ${this.regionName(region)} but was taken of instance ${existing.DBInstanceIdentifier ?? 'unknown'}, not ${instanceId}; lifeboat will not adopt it, so delete or rename that snapshot.`,
        'SNAPSHOT_NAME_CONFLICT',
      );
    }
  }

  /** Copies an available DR snapshot into the primary region under the same name (or adopts an earlier attempt's copy) and waits until it is available. */
  private async copyHome(snapshot: DBSnapshot, copyId: string): Promise<DBSnapshot> {
    const sourceArn = snapshot.DBSnapshotArn;
    if (!sourceArn) throw new LifeboatError(`RDS described snapshot ${copyId} in ${this.drRegion} without its ARN, so it cannot be copied to ${this.region}; lifeboat will retry.`, 'SNAPSHOT_WITHOUT_ARN', false);
    const kmsKeyId = snapshot.Encrypted ? await this.primaryKmsKey(`snapshot ${copyId}`) : undefined;
    try {
      // SDK v3 derives the source region from the ARN to presign the cross-region request.
      await this.primary.send(new CopyDBSnapshotCommand({ SourceDBSnapshotIdentifier: sourceArn, TargetDBSnapshotIdentifier: copyId, ...(kmsKeyId ? { KmsKeyId: kmsKeyId } : {}), CopyTags: true }));
    } catch (err) {
      if (!isAwsError(err, 'DBSnapshotAlreadyExistsFault')) throw classifyAwsError(err, this.ctx('primary', 'CopyDBSnapshot', `copying snapshot ${copyId} from ${this.drRegion} to ${this.region}`));
      const existing = await this.findSnapshot('primary', copyId, `adopting the copy ${copyId}`);
      if (existing?.SourceDBSnapshotIdentifier && existing.SourceDBSnapshotIdentifier !== sourceArn) {
        throw new LifeboatError(
          `Snapshot ${copyId} already exists in ${this.region} but is a copy of ${existing.SourceDBSnapshotIdentifier}, not of ${sourceArn}; lifeboat will not adopt it, so delete or rename that snapshot.`,
          'SNAPSHOT_NAME_CONFLICT',
        );
      }
    }
    return this.snapshotWhenAvailable('primary', copyId);
  }

  private async snapshotWhenAvailable(region: Region, snapshotId: string): Promise<DBSnapshot> {
    const where = this.regionName(region);
    return this.waitFor(`snapshot ${snapshotId} in ${where} to be available`, async () => {
      const snapshot = await this.findSnapshot(region, snapshotId, 'waiting for a snapshot to be available');
      const status = snapshot?.Status ?? 'not visible yet';
      if (snapshot && snapshotFailed(status)) throw new LifeboatError(`Snapshot ${snapshotId} in ${where} is ${status}, so it can never be used; delete it and run the failback again.`, 'SNAPSHOT_FAILED');
      return { status, value: status === 'available' ? snapshot : undefined };
    });
  }

  private async instanceWhen(region: Region, id: string, waitingFor: string, ready: (instance: DBInstance) => boolean): Promise<DBInstance> {
    return this.waitFor(waitingFor, async () => {
      const instance = await this.findInstance(region, id, `waiting for ${waitingFor}`);
      if (!instance) throw new LifeboatError(`Instance ${id} disappeared from ${this.regionName(region)} while lifeboat waited for it; check who deleted it before retrying.`, 'INSTANCE_NOT_FOUND');
      return { status: instance.DBInstanceStatus ?? 'unknown', value: ready(instance) ? instance : undefined };
    });
  }

  /** Polls until `poll` returns a value, reporting each poll to onPoll (the activity's heartbeat); a timeout is retryable. */
  private async waitFor<T>(waitingFor: string, poll: () => Promise<{ status: string; value?: T }>): Promise<T> {
    const deadline = this.now() + this.waitTimeoutMs;
    for (let polls = 1; ; polls++) {
      const { status, value } = await poll();
      this.onPoll?.({ waitingFor, status, polls });
      if (value !== undefined) return value;
      if (this.now() >= deadline) {
        throw new LifeboatError(`Lifeboat waited ${Math.round(this.waitTimeoutMs / 60000)} min for ${waitingFor} and it is still ${status}; RDS carries on, and the retry waits again without redoing anything.`, 'RDS_WAIT_TIMEOUT', false);
      }
      await this.sleep(this.pollIntervalMs);
    }
  }

  // ---------------------------------------------------------------- helpers

  private client(region: Region): RDSClient {
    return region === 'dr' ? this.dr : this.primary;
  }

  private regionName(region: Region): string {
    return region === 'dr' ? this.drRegion : this.region;
  }

  private regionOf(handle: BackupHandle): Region {
    if (handle.location === this.region || handle.location === 'primary') return 'primary';
    if (handle.location === this.drRegion || handle.location === 'dr') return 'dr';
    throw new LifeboatError(
      `Backup ${handle.backupId} lives in ${handle.location}, which is neither ${this.region} nor ${this.drRegion} of target ${this.instanceId}; check the catalog entry and the target's regions in the config.`,
      'INVALID_BACKUP_HANDLE',
    );
  }

  private ctx(region: Region, action: string, doing: string): AwsCallContext {
    return { service: 'RDS', action, doing, region: this.regionName(region) };
  }

  private handle(snapshot: DBSnapshot | undefined, snapshotId: string, region: string): BackupHandle {
    const handle: BackupHandle = { engine: 'rds', backupId: snapshot?.DBSnapshotIdentifier ?? snapshotId, location: region };
    if (snapshot?.DBSnapshotArn) handle.locator = snapshot.DBSnapshotArn;
    return handle;
  }

  private isOurs(instance: DBInstance): boolean {
    return instance.DBInstanceIdentifier?.toLowerCase() !== this.instanceId && tagOf(instance.TagList, RDS_TAGS.managed) === 'true';
  }

  private describe(instance: DBInstance, createdByLifeboat: boolean): InstanceDescription {
    const d: InstanceDescription = {
      instanceId: instance.DBInstanceIdentifier ?? 'unknown',
      status: instance.DBInstanceStatus ?? 'unknown',
      createdByLifeboat,
    };
    if (instance.Endpoint?.Address) d.endpoint = { host: instance.Endpoint.Address, port: instance.Endpoint.Port ?? instance.DbInstancePort ?? 5432 };
    if (instance.DbiResourceId) d.identity = instance.DbiResourceId;
    if (instance.EngineVersion) d.engineVersion = instance.EngineVersion;
    const owner = createdByLifeboat ? ownerOf(instance) : undefined;
    if (owner) d.owner = owner;
    if (createdByLifeboat && tagOf(instance.TagList, RDS_TAGS.servedTraffic)) d.servedTraffic = true;
    return d;
  }

  private restoreParameters(region: Region): Partial<RestoreDBInstanceToPointInTimeCommandInput> {
    const s = this.restoreSettings[region];
    const p: Partial<RestoreDBInstanceToPointInTimeCommandInput> = {};
    if (!s) return p;
    if (s.dbInstanceClass) p.DBInstanceClass = s.dbInstanceClass;
    if (s.dbSubnetGroupName) p.DBSubnetGroupName = s.dbSubnetGroupName;
    if (s.vpcSecurityGroupIds?.length) p.VpcSecurityGroupIds = [...s.vpcSecurityGroupIds];
    if (s.dbParameterGroupName) p.DBParameterGroupName = s.dbParameterGroupName;
    if (s.multiAZ !== undefined) p.MultiAZ = s.multiAZ;
    if (s.publiclyAccessible !== undefined) p.PubliclyAccessible = s.publiclyAccessible;
    return p;
  }

  private matchesDrKey(kmsKeyId: string | undefined): boolean {
    if (!kmsKeyId) return false;
    const want = this.drKmsKeyId;
    if (kmsKeyId === want) return true;
    // RDS reports the key ARN; the config may name the key by id or alias.
    if (want.startsWith('alias/') || want.includes(':alias/')) return kmsKeyId.includes(`:${this.drRegion}:`);
    return kmsKeyId.endsWith(`:key/${want}`);
  }

  private async sourceInstance(doing: string): Promise<DBInstance> {
    try {
      const out = await this.primary.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: this.instanceId }));
      const instance = out.DBInstances?.[0];
      if (!instance) throw new LifeboatError(`RDS returned no instance ${this.instanceId} in ${this.region}; check the instance identifier and region in the lifeboat config.`, 'AWS_INSTANCE_NOT_FOUND');
      return instance;
    } catch (err) {
      throw classifyAwsError(err, this.ctx('primary', 'DescribeDBInstances', `${doing} (${this.instanceId})`));
    }
  }

  private async findInstance(region: Region, id: string, doing: string): Promise<DBInstance | undefined> {
    try {
      const out = await this.client(region).send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
      return out.DBInstances?.[0];
    } catch (err) {
      if (isAwsError(err, 'DBInstanceNotFoundFault')) return undefined;
      throw classifyAwsError(err, this.ctx(region, 'DescribeDBInstances', doing));
    }
  }

  private async findSnapshot(region: Region, snapshotId: string, doing: string): Promise<DBSnapshot | undefined> {
    try {
      const out = await this.client(region).send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotId }));
      return out.DBSnapshots?.[0];
    } catch (err) {
      if (isAwsError(err, 'DBSnapshotNotFoundFault')) return undefined;
      throw classifyAwsError(err, this.ctx(region, 'DescribeDBSnapshots', `${doing} (${snapshotId})`));
    }
  }

  private async automatedBackups(region: Region, filter: { DbiResourceId?: string; DBInstanceIdentifier?: string }, doing: string): Promise<DBInstanceAutomatedBackup[]> {
    const all: DBInstanceAutomatedBackup[] = [];
    try {
      // A copy of the filter: the paginator writes its Marker into the input it is given.
      for await (const page of paginateDescribeDBInstanceAutomatedBackups({ client: this.client(region) }, { ...filter })) {
        all.push(...(page.DBInstanceAutomatedBackups ?? []));
      }
    } catch (err) {
      if (isAwsError(err, 'DBInstanceAutomatedBackupNotFoundFault')) return all;
      throw classifyAwsError(err, this.ctx(region, 'DescribeDBInstanceAutomatedBackups', doing));
    }
    return all;
  }

  /** The source's automated backups replicated into the DR region with a usable window (the newest), if any. */
  private async drReplicatedBackup(): Promise<DBInstanceAutomatedBackup | undefined> {
    const backups = await this.automatedBackups('dr', { DBInstanceIdentifier: this.instanceId }, 'finding the automated backups replicated to the DR region');
    return backups
      .filter((b) => b.DBInstanceIdentifier?.toLowerCase() === this.instanceId && b.DBInstanceAutomatedBackupsArn && b.RestoreWindow?.EarliestTime && b.RestoreWindow.LatestTime)
      .sort((a, b) => b.RestoreWindow!.LatestTime!.getTime() - a.RestoreWindow!.LatestTime!.getTime())[0];
  }

  /** The source's automated backups replicated into the DR region, with a usable window. */
  private async drAutomatedBackup(): Promise<DBInstanceAutomatedBackup> {
    const best = await this.drReplicatedBackup();
    if (!best) {
      throw new LifeboatError(
        `No automated backups of ${this.instanceId} are replicated into ${this.drRegion}, so point-in-time restore there is not possible; enable cross-region automated backup replication for the instance (StartDBInstanceAutomatedBackupsReplication), or fail over from the latest DR snapshot copy instead.`,
        'DR_PITR_NOT_ENABLED',
      );
    }
    return best;
  }

  /** Best effort: the current window, to tell the operator which times would work. */
  private async windowHint(region: Region, requested: Date): Promise<string> {
    try {
      const w = await this.restoreWindow(region);
      return `the requested time ${requested.toISOString()} must lie between ${w.earliest} and ${w.latest}`;
    } catch {
      return `the requested time was ${requested.toISOString()}`;
    }
  }
}
