/**
 * The life of a restored instance after its restore: kept (listed, with an expiry), extended,
 * removed by hand behind a gate, or removed by the scheduled expiry after a notice. Pure, shared
 * by the catalog activities, the two workflows (instanceExpiry, instanceRemoval) and the CLI.
 *
 * The one rule that outweighs every expiry: an instance that has taken traffic (a cutover pointed
 * a name at it) is never removed by lifeboat, neither on expiry nor by `instances remove`.
 */
import type { PitrRestoreReport } from './restore';
import type { RunIdentity } from './ports';

/**
 * What a restore left standing: a database instance (pitrRestore), a failover's DR instance, a
 * files restore's new bucket, a logical restore's new database, or the new schema of a logical or
 * table restore. The id says it too: `bucket:<store>/<bucket>`, `database:<target>/<name>`,
 * `schema:<target>/<database>.<schema>`; instances keep their own ids.
 */
export type RestoredKind = 'instance' | 'dr-instance' | 'bucket' | 'database' | 'schema';

/** What removal needs to recognise the run's own, per kind (JSON in the catalog). */
export interface RestoredDetails {
  /** bucket: the store and bucket, what was restored, and the bucket's state when the restore verified it. */
  store?: string;
  bucket?: string;
  objects?: number;
  bytes?: number;
  /** bucket: SHA-256 over every object version and delete marker (key, version, ETag, size, time) as verified; any change since means it was written to. */
  fingerprint?: string;
  /** database, schema: where, and the comment the run put on what it made (only what carries it is dropped). */
  database?: string;
  schema?: string;
  marker?: string;
  /** schema of a table restore: its tables, dropped by name (the schema itself without CASCADE). */
  tables?: string[];
  /** Which restore made a schema: a table restore (owner comment as JSON) or a logical one (marker text). */
  madeFrom?: 'table-restore' | 'logical-restore';
}

/** One row of the catalog's restored_instances, as the CLI and the workflows see it. */
export interface RestoredInstance {
  instanceId: string;
  kind: RestoredKind;
  details: RestoredDetails;
  target: string;
  engine: string;
  /** The workflow type that made it (`pitrRestore`). */
  madeBy: string;
  owner: RunIdentity;
  /** The point its data is as of (ISO time, `latest`, `lsn:...`, `name:...`). */
  restorePoint: string;
  /** What it was restored from: the target's backups and WAL, and which region. */
  restoredFrom: string;
  endpoint?: string;
  createdAt: string;
  /** Missing for what never expires on its own: a DR instance serving traffic after a failover. */
  expiresAt?: string;
  noticeSentAt?: string;
  servedTraffic: boolean;
  servedTrafficAt?: string;
  state: 'kept' | 'removed';
  removedAt?: string;
  removedBy?: string;
  removalDetail?: string;
}

/** The instance a restore report shows still exists, when it does (restored, or kept on failure). */
export function keptInstanceOf(report: PitrRestoreReport): { instanceId: string; endpoint?: { host: string; port: number }; servedTraffic: boolean } | undefined {
  const destination = report.destination;
  if (!destination) return undefined;
  const id = destination.instanceId;
  const restored = report.outcome === 'restored' || report.outcome === 'restored-and-cut-over';
  // Compensation says what it did: "kept <id> ..." (--keep, or it took traffic), or a failed rollback that keeps everything.
  const keptOnFailure = report.cleanup.some((c) => c.startsWith(`kept ${id}`) || c.startsWith('ROLLBACK FAILED'));
  if (!restored && !keptOnFailure) return undefined;
  // Any sign that a name was moved, or was about to be: treated as traffic taken (the safe side).
  const servedTraffic = !!report.cutover || !!report.traffic || report.cleanup.some((c) => c.includes('the name led clients to it') || c.startsWith('ROLLBACK FAILED'));
  return { instanceId: id, ...(destination.endpoint ? { endpoint: destination.endpoint } : {}), servedTraffic };
}

export type ExpiryVerdict =
  | { action: 'wait'; reason: string }
  | { action: 'notify'; reason: string }
  | { action: 'remove'; reason: string }
  | { action: 'keep'; reason: string };

/**
 * What the scheduled expiry does with one kept instance at `nowMs`. A notice always comes first:
 * an instance is removed only at or after its expiry AND after a notice was sent in an earlier
 * sweep (an expiry reached without one gets the notice now and goes at the next sweep).
 */
export function expiryVerdict(i: Pick<RestoredInstance, 'instanceId' | 'expiresAt' | 'noticeSentAt' | 'servedTraffic' | 'state'>, nowMs: number, noticeBeforeMs: number): ExpiryVerdict {
  if (i.state === 'removed') return { action: 'wait', reason: `${i.instanceId} is already removed` };
  if (i.servedTraffic) return { action: 'keep', reason: `${i.instanceId} has taken traffic, and lifeboat never removes such an instance` };
  if (!i.expiresAt) return { action: 'keep', reason: `${i.instanceId} has no expiry` };
  const expires = Date.parse(i.expiresAt);
  // An extension clears the notice: the new expiry gets its own.
  const noticeSent = !!i.noticeSentAt;
  if (nowMs >= expires && noticeSent) return { action: 'remove', reason: `${i.instanceId} expired at ${i.expiresAt} and its notice went out at ${i.noticeSentAt}` };
  if (nowMs >= expires - noticeBeforeMs && !noticeSent) return { action: 'notify', reason: `${i.instanceId} expires at ${i.expiresAt}` };
  return { action: 'wait', reason: `${i.instanceId} expires at ${i.expiresAt}` };
}

/** Why `instances extend` / `instances remove` cannot act on this row, as one sentence, or undefined. */
export function extensionProblem(i: RestoredInstance | undefined, id: string): string | undefined {
  if (!i) return `there is no restored instance "${id}" in the catalog: \`lifeboat instances list\` shows the ids.`;
  if (i.state === 'removed') return `${id} was removed at ${i.removedAt ?? 'an earlier time'}${i.removedBy ? ` by ${i.removedBy}` : ''}, so there is nothing to extend: restore again for a new instance.`;
  return undefined;
}

export function removalProblem(i: RestoredInstance | undefined, id: string): string | undefined {
  if (!i) return `there is no restored instance "${id}" in the catalog: \`lifeboat instances list\` shows the ids.`;
  if (i.state === 'removed') return `${id} was already removed at ${i.removedAt ?? 'an earlier time'}${i.removedBy ? ` by ${i.removedBy}` : ''}: there is nothing left to remove.`;
  if (i.servedTraffic) {
    return `${id} has taken traffic${i.servedTrafficAt ? ` (since ${i.servedTrafficAt})` : ''}, and lifeboat never removes ${thingOf(i.kind)} that has: ${byHand(i)}`;
  }
  return undefined;
}

/** What the scheduled expiry and `instances remove` workflows take. */
export interface InstanceExpiryInput {
  requestedBy?: string;
  /** Overrides the config's restoredInstances.noticeBefore (tests). */
  noticeBeforeMs?: number;
}

export interface InstanceExpiryResult {
  startedAt: string;
  notified: string[];
  removed: Array<{ instanceId: string; detail: string }>;
  kept: Array<{ instanceId: string; reason: string }>;
  failed: Array<{ instanceId: string; problem: string }>;
}

export interface InstanceRemovalInput {
  instanceId: string;
  requestedBy: string;
  reason: string;
  incidentId?: string;
  /** Overrides of the config's gate timings (tests). */
  timings?: { remindAfterMs?: number; abortAfterMs?: number };
}

/** The catalog's answer before a removal, read again right before it. */
export interface InstanceRemovalPlan {
  instance: RestoredInstance;
  environment: string;
  production: boolean;
  gateTimings: { remindAfterMs: number; abortAfterMs: number };
}

export interface InstanceRemovalReport {
  workflowId: string;
  instanceId: string;
  outcome: 'removed' | 'rejected' | 'expired' | 'refused';
  requestedBy: string;
  reason: string;
  detail: string;
  approvedBy?: string[];
}

/** What the host found and did: `refused` when the instance turned out to have taken traffic or not to be lifeboat's. */
export interface HostRemoval {
  outcome: 'removed' | 'already-gone' | 'refused';
  detail: string;
  servedTraffic?: boolean;
}

/** "an instance", "a bucket", ...: for sentences. */
export function thingOf(kind: RestoredKind): string {
  return { instance: 'an instance', 'dr-instance': 'a DR instance', bucket: 'a bucket', database: 'a database', schema: 'a schema' }[kind];
}

function byHand(i: Pick<RestoredInstance, 'kind' | 'details'>): string {
  switch (i.kind) {
    case 'bucket':
      return `copy what you need out of ${i.details.bucket ?? 'the bucket'}, make sure nothing writes to it, then remove it by hand.`;
    case 'database':
      return `make sure no client uses ${i.details.database ?? 'the database'}, then drop it by hand.`;
    case 'schema':
      return `move what you need out of ${i.details.schema ?? 'the schema'}, then drop it by hand.`;
    case 'dr-instance':
      return 'fail back first (`lifeboat failback start`); once no name leads to it, remove it by hand (its data directory, or the RDS instance).';
    default:
      return 'point the name away from it and make sure no client uses it, then remove it by hand (its data directory, or the RDS instance).';
  }
}

/** The catalog id of a restored bucket, database or schema. */
export function restoredThingId(kind: 'bucket' | 'database' | 'schema', parts: { store?: string; bucket?: string; target?: string; database?: string; schema?: string }): string {
  if (kind === 'bucket') return `bucket:${parts.store}/${parts.bucket}`;
  if (kind === 'database') return `database:${parts.target}/${parts.database}`;
  return `schema:${parts.target}/${parts.database}.${parts.schema}`;
}

/** One object version or delete marker of a bucket, as the fingerprint reads it. */
export interface BucketEntry {
  key: string;
  versionId?: string;
  etag?: string;
  size?: number;
  lastModified?: string;
  deleteMarker?: boolean;
}

/**
 * The bucket's state as one line per object version and delete marker, sorted: any put,
 * overwrite (a new version, or a new time and ETag where unversioned), delete or delete marker
 * since changes it. Reads leave it as it is: S3 does not say who read a bucket (access logs
 * would, and a restore bucket has none), so a bucket only read stays removable after its notice.
 */
export function bucketFingerprintLines(entries: BucketEntry[]): string[] {
  return entries
    .map((e) => [e.key, e.versionId ?? '', e.etag ?? '', e.size ?? '', e.lastModified ?? '', e.deleteMarker ? 'deleted' : ''].join('\t'))
    .sort();
}
