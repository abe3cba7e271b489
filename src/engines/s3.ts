/**
 * The ObjectStore port over S3: AWS S3 in production, MinIO locally. One client per region.
 * A local CA is trusted explicitly (never by turning verification off).
 */
import fs from 'node:fs';
import https from 'node:https';
import {
  BucketAlreadyExists,
  BucketAlreadyOwnedByYou,
  CreateBucketCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketVersioningCommand,
  type LifecycleRule,
  PutBucketLifecycleConfigurationCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  PutBucketVersioningCommand,
  PutObjectLockConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export interface ObjectStoreSettings {
  region: string;
  /** e.g. https://127.0.0.1:9100; undefined means AWS S3 itself. */
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /**
   * Reads the static credentials when the SDK asks (instead of accessKeyId/secretAccessKey), so a
   * rotated key is picked up within a minute without a restart.
   */
  readCredentials?: () => { accessKeyId: string; secretAccessKey: string };
  /** PEM file of a CA to trust in addition to the system's. */
  caFile?: string;
}

export function createS3Client(settings: ObjectStoreSettings): S3Client {
  const ca = settings.caFile ? fs.readFileSync(settings.caFile) : undefined;
  return new S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.endpoint !== undefined,
    credentials: settings.readCredentials
      ? rereadCredentials(settings.readCredentials)
      : settings.accessKeyId && settings.secretAccessKey
        ? { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey }
        : undefined,
    requestHandler: ca ? new NodeHttpHandler({ httpsAgent: new https.Agent({ ca, keepAlive: true }) }) : undefined,
    // Throttling and 5xx are retried by the SDK; activities add their own retries on top.
    maxAttempts: 4,
  });
}

/**
 * A credential provider the SDK calls again once what it returned expires. The SDK renews
 * credentials 5 minutes before their expiration, so this one "expires" 5.5 minutes out: read
 * again every 30 s or so.
 */
function rereadCredentials(read: () => { accessKeyId: string; secretAccessKey: string }) {
  return async () => ({ ...read(), expiration: new Date(Date.now() + 330_000) });
}

export interface BucketSpec {
  name: string;
  versioning: boolean;
  /** Write-once evidence: object lock with a default retention in days (GOVERNANCE mode). */
  objectLockDays?: number;
  /** Write-once backups: object lock with this default retention (overrides objectLockDays). */
  objectLock?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days: number };
}

/** Creates the bucket if needed and makes its settings match; "already mine" is adopted. */
export async function ensureBucket(s3: S3Client, spec: BucketSpec): Promise<void> {
  const lock = spec.objectLock ?? (spec.objectLockDays ? { mode: 'GOVERNANCE' as const, days: spec.objectLockDays } : undefined);
  let exists = true;
  try {
    await s3.send(new HeadBucketCommand({ Bucket: spec.name }));
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status !== 404) throw err;
    exists = false;
  }
  if (!exists) {
    try {
      await s3.send(new CreateBucketCommand({ Bucket: spec.name, ObjectLockEnabledForBucket: lock ? true : undefined }));
    } catch (err) {
      if (!(err instanceof BucketAlreadyOwnedByYou) && !(err instanceof BucketAlreadyExists)) throw err;
    }
  }
  if (spec.versioning || lock) {
    const current = await s3.send(new GetBucketVersioningCommand({ Bucket: spec.name }));
    if (current.Status !== 'Enabled') {
      await s3.send(new PutBucketVersioningCommand({ Bucket: spec.name, VersioningConfiguration: { Status: 'Enabled' } }));
    }
  }
  if (lock) {
    const current = (await s3.send(new GetObjectLockConfigurationCommand({ Bucket: spec.name }))).ObjectLockConfiguration?.Rule?.DefaultRetention;
    if (current?.Days !== lock.days || current?.Mode !== lock.mode) {
      await s3.send(
        new PutObjectLockConfigurationCommand({
          Bucket: spec.name,
          ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: lock.mode, Days: lock.days } } },
        }),
      );
    }
  }
}

/** The id of lifeboat's own lifecycle rule on backup buckets. */
export const ABORT_INCOMPLETE_UPLOADS_RULE = 'lifeboat-abort-incomplete-multipart-uploads';

/**
 * Makes sure the bucket aborts multipart uploads left incomplete for more than `days` days: a
 * worker that crashed mid-upload (a logical dump, a file set) leaves parts that are billed and
 * invisible to listings. An existing bucket-wide rule doing the same (or sooner) is accepted;
 * every other rule of the bucket is kept. Returns what it found or did; `unsupported` when the
 * store refuses the rule itself (MinIO answers MalformedXML or InvalidArgument: it purges stale uploads on its own,
 * after MINIO_API_STALE_UPLOADS_EXPIRY, 24 h by default).
 */
export async function ensureAbortIncompleteUploadsRule(s3: S3Client, bucket: string, days = 7): Promise<'present' | 'added' | 'unsupported'> {
  let rules: LifecycleRule[] = [];
  try {
    rules = (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
  } catch (err) {
    if ((err as { name?: string }).name !== 'NoSuchLifecycleConfiguration') throw err;
  }
  const wholeBucket = (r: LifecycleRule) => !r.Filter?.Prefix && !r.Filter?.Tag && !r.Filter?.And && !r.Prefix && !r.Filter?.ObjectSizeGreaterThan && !r.Filter?.ObjectSizeLessThan;
  const covers = (r: LifecycleRule) => r.Status === 'Enabled' && wholeBucket(r) && (r.AbortIncompleteMultipartUpload?.DaysAfterInitiation ?? Infinity) <= days;
  if (rules.some(covers)) return 'present';
  const others = rules.filter((r) => r.ID !== ABORT_INCOMPLETE_UPLOADS_RULE);
  try {
    await s3.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: bucket,
        LifecycleConfiguration: {
          Rules: [...others, { ID: ABORT_INCOMPLETE_UPLOADS_RULE, Status: 'Enabled', Filter: { Prefix: '' }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: days } }],
        },
      }),
    );
  } catch (err) {
    if (['MalformedXML', 'InvalidArgument', 'NotImplemented'].includes((err as { name?: string }).name ?? '')) return 'unsupported';
    throw err;
  }
  return 'added';
}
