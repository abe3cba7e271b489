/**
 * One place that decides what an AWS SDK error means for lifeboat.
 *
 * Transient failures (throttling, timeouts, dropped connections, 5xx), as the SDK's own error
 * classification (@smithy/core/retry) sees them, come back as a retryable LifeboatError so
 * Temporal's retry policy handles them. Failures that no retry can fix (quota, KMS, bad
 * parameters, permissions, outside the restore window, ...) come back as a non-retryable
 * LifeboatError whose message tells an operator what failed, what it means and what to do,
 * and names the AWS error.
 */
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';
import { FailureType, LifeboatError } from '../domain/errors';

/** What the classifier needs to know about the call that failed. */
export interface AwsCallContext {
  /** Service shown to the operator: `RDS`, `Route53`. */
  service: string;
  /** The AWS API action, e.g. `CreateDBSnapshot`. */
  action: string;
  /** What lifeboat was doing, e.g. `taking snapshot orders-2024 of instance orders-prod`. */
  doing: string;
  /** AWS region of the call, when it has one. */
  region?: string;
  /** Extra facts for the operator, placed after what the failure means (e.g. the valid window). */
  detail?: string;
}

/** A LifeboatError raised from an AWS SDK failure; keeps the AWS error name for reports. */
export class AwsOperationError extends LifeboatError {
  constructor(
    message: string,
    code: FailureType,
    nonRetryable: boolean,
    readonly awsErrorName: string,
    readonly awsAction: string,
    cause: unknown,
  ) {
    super(message, code, nonRetryable);
    this.name = 'AwsOperationError';
    this.cause = cause;
  }
}

/** The AWS error name (`DBSnapshotAlreadyExistsFault`, `Throttling`, ...) or `undefined`. */
export function awsErrorName(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { name?: unknown; Code?: unknown; code?: unknown };
  if (typeof e.Code === 'string' && e.Code) return e.Code;
  if (typeof e.name === 'string' && e.name && e.name !== 'Error') return e.name;
  if (typeof e.code === 'string' && e.code) return e.code;
  return undefined;
}

/**
 * True when `err` carries one of these AWS error names. Modeled RDS faults are named with a
 * `Fault` suffix (`DBSnapshotAlreadyExistsFault`) while the wire code lacks it
 * (`DBSnapshotAlreadyExists`); both spellings match.
 */
export function isAwsError(err: unknown, ...names: string[]): boolean {
  const name = awsErrorName(err);
  if (!name) return false;
  const bare = stripFault(name);
  return names.some((n) => n === name || stripFault(n) === bare);
}

function stripFault(name: string): string {
  return name.endsWith('Fault') ? name.slice(0, -'Fault'.length) : name;
}

function awsMessage(err: unknown): string {
  if (err instanceof Error && err.message) return err.message;
  if (typeof err === 'object' && err !== null) {
    const m = (err as { message?: unknown; Message?: unknown }).message ?? (err as { Message?: unknown }).Message;
    if (typeof m === 'string') return m;
  }
  return String(err);
}

/** The error shape the SDK's classifiers read (name, $metadata, $retryable, $fault, code, cause). */
type SdkError = Parameters<typeof isTransientError>[0];

/**
 * True for failures a later attempt can succeed on, as the SDK itself decides when it retries:
 * throttling (by error name or a 429), transient failures (timeouts, dropped connections, 500,
 * 502, 503, 504, errors the service marks `$retryable`), other 5xx, and server faults.
 */
export function isTransientAwsError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const sdkError = err as SdkError;
  return isThrottlingError(sdkError) || isTransientError(sdkError) || isServerError(sdkError) || sdkError.$fault === 'server';
}

interface Advice {
  code: FailureType;
  /** What the failure means. */
  meaning: string;
  /** What the operator should do. */
  action: string;
}

/** Failures no retry can fix, keyed by AWS error name without the `Fault` suffix. */
const NON_RETRYABLE: Record<string, Advice> = {
  SnapshotQuotaExceeded: {
    code: 'AWS_SNAPSHOT_QUOTA_EXCEEDED',
    meaning: 'the account has reached its quota of manual DB snapshots in this region',
    action: 'delete snapshots that are no longer needed (run lifeboat retention) or request a higher "Manual DB instance snapshots" quota in Service Quotas, then run the backup again',
  },
  SharedSnapshotQuotaExceeded: {
    code: 'AWS_SNAPSHOT_QUOTA_EXCEEDED',
    meaning: 'the snapshot is shared with the maximum number of accounts',
    action: 'remove unused shares from the snapshot, then try again',
  },
  KMSKeyNotAccessible: {
    code: 'AWS_KMS_KEY_NOT_ACCESSIBLE',
    meaning: 'RDS cannot use the KMS key for this encrypted resource',
    action: 'check that the key exists in this region, is enabled, and that its key policy lets the lifeboat role and RDS use it (kms:CreateGrant, kms:DescribeKey, kms:Decrypt), then try again',
  },
  InvalidKMSArn: {
    code: 'AWS_KMS_KEY_NOT_ACCESSIBLE',
    meaning: 'the KMS key ARN is not valid',
    action: 'fix the KMS key in the lifeboat config',
  },
  InvalidParameterValue: {
    code: 'AWS_INVALID_PARAMETER',
    meaning: 'AWS rejected a parameter lifeboat sent',
    action: 'check this target in the lifeboat config (identifiers, KMS key, instance class, region) against the AWS message, fix it and start again',
  },
  InvalidParameterCombination: {
    code: 'AWS_INVALID_PARAMETER',
    meaning: 'AWS rejected a combination of parameters lifeboat sent',
    action: 'check this target in the lifeboat config against the AWS message, fix it and start again',
  },
  ValidationError: {
    code: 'AWS_INVALID_PARAMETER',
    meaning: 'AWS rejected the request as invalid',
    action: 'check this target in the lifeboat config against the AWS message, fix it and start again',
  },
  InvalidInput: {
    code: 'AWS_INVALID_PARAMETER',
    meaning: 'AWS rejected the request as invalid',
    action: 'check the names and values in the lifeboat config against the AWS message, fix them and start again',
  },
  InvalidArgument: {
    code: 'AWS_INVALID_PARAMETER',
    meaning: 'AWS rejected an argument lifeboat sent',
    action: 'check the names and values in the lifeboat config against the AWS message, fix them and start again',
  },
  InvalidChangeBatch: {
    code: 'AWS_INVALID_CHANGE_BATCH',
    meaning: 'Route53 refused the DNS change (for example a conflicting record, or a routing policy lifeboat does not manage)',
    action: 'inspect the record set in the hosted zone, resolve the conflict by hand if needed, and run the cutover again',
  },
  AccessDenied: {
    code: 'AWS_ACCESS_DENIED',
    meaning: 'the credentials lifeboat runs with are not allowed to do this',
    action: 'grant the lifeboat worker role the missing permission named in the AWS message, then try again',
  },
  AccessDeniedException: {
    code: 'AWS_ACCESS_DENIED',
    meaning: 'the credentials lifeboat runs with are not allowed to do this',
    action: 'grant the lifeboat worker role the missing permission named in the AWS message, then try again',
  },
  NotAuthorizedException: {
    code: 'AWS_ACCESS_DENIED',
    meaning: 'the credentials lifeboat runs with are not allowed to do this',
    action: 'grant the lifeboat worker role the missing permission named in the AWS message, then try again',
  },
  UnauthorizedOperation: {
    code: 'AWS_ACCESS_DENIED',
    meaning: 'the credentials lifeboat runs with are not allowed to do this',
    action: 'grant the lifeboat worker role the missing permission named in the AWS message, then try again',
  },
  InvalidClientTokenId: {
    code: 'AWS_ACCESS_DENIED',
    meaning: 'AWS does not recognise the access key lifeboat runs with',
    action: 'check the worker\'s AWS credentials (profile, role or environment), then try again',
  },
  UnrecognizedClientException: {
    code: 'AWS_ACCESS_DENIED',
    meaning: 'AWS does not recognise the access key lifeboat runs with',
    action: 'check the worker\'s AWS credentials (profile, role or environment), then try again',
  },
  SignatureDoesNotMatch: {
    code: 'AWS_ACCESS_DENIED',
    meaning: 'AWS rejected the request signature',
    action: 'check the worker\'s AWS secret key and clock, then try again',
  },
  InvalidRestore: {
    code: 'OUTSIDE_RESTORE_WINDOW',
    meaning: 'the requested point in time cannot be restored, usually because it lies outside the restorable window',
    action: 'ask lifeboat for the current restore window and request a time inside it',
  },
  PointInTimeRestoreNotEnabled: {
    code: 'PITR_NOT_ENABLED',
    meaning: 'point-in-time restore is not possible because automated backups are disabled (backup retention is 0)',
    action: 'set a backup retention period of at least 1 day on the instance; until then restore from a snapshot instead',
  },
  InstanceQuotaExceeded: {
    code: 'AWS_INSTANCE_QUOTA_EXCEEDED',
    meaning: 'the account has reached its quota of DB instances in this region',
    action: 'delete leftover restore or drill instances, or request a higher "DB instances" quota in Service Quotas, then try again',
  },
  StorageQuotaExceeded: {
    code: 'AWS_STORAGE_QUOTA_EXCEEDED',
    meaning: 'the account has reached its total RDS storage quota in this region',
    action: 'delete leftover restore or drill instances, or request a higher "Total storage for all DB instances" quota, then try again',
  },
  DBSubnetGroupNotFound: {
    code: 'AWS_CONFIG_NOT_FOUND',
    meaning: 'the DB subnet group configured for restores does not exist in this region',
    action: 'create it or fix the subnet group name in the lifeboat config',
  },
  DBParameterGroupNotFound: {
    code: 'AWS_CONFIG_NOT_FOUND',
    meaning: 'the DB parameter group configured for restores does not exist in this region',
    action: 'create it or fix the parameter group name in the lifeboat config',
  },
  InvalidVPCNetworkState: {
    code: 'AWS_NETWORK_CONFIG',
    meaning: 'the VPC or subnets configured for restores cannot host the instance',
    action: 'check the DB subnet group and security groups configured for this region',
  },
  InvalidSubnet: {
    code: 'AWS_NETWORK_CONFIG',
    meaning: 'a subnet configured for restores is not valid',
    action: 'check the DB subnet group configured for this region',
  },
  StorageTypeNotSupported: {
    code: 'AWS_INVALID_PARAMETER',
    meaning: 'the storage type is not supported for this restore',
    action: 'change the storage type in the lifeboat config for this target',
  },
  DBInstanceNotFound: {
    code: 'AWS_INSTANCE_NOT_FOUND',
    meaning: 'the DB instance does not exist in this region',
    action: 'check the instance identifier and region in the lifeboat config',
  },
  DBSnapshotNotFound: {
    code: 'AWS_SNAPSHOT_NOT_FOUND',
    meaning: 'the DB snapshot does not exist in this region',
    action: 'check the snapshot in the lifeboat catalog; it may have been deleted outside lifeboat',
  },
  DBInstanceAutomatedBackupNotFound: {
    code: 'AWS_AUTOMATED_BACKUP_NOT_FOUND',
    meaning: 'no automated backups exist for the instance in this region',
    action: 'enable automated backups (and cross-region replication for DR), or restore from a snapshot',
  },
  NoSuchHostedZone: {
    code: 'AWS_HOSTED_ZONE_NOT_FOUND',
    meaning: 'the hosted zone does not exist or is not visible to these credentials',
    action: 'check the hosted zone id in the lifeboat config',
  },
  NoSuchChange: {
    code: 'AWS_CHANGE_NOT_FOUND',
    meaning: 'Route53 does not know the change lifeboat is waiting for',
    action: 'check the record in the hosted zone and run the cutover again',
  },
};

/**
 * Turns any failure of an AWS call into the error lifeboat throws: a non-retryable
 * LifeboatError with operator advice for failures no retry fixes, a retryable one otherwise.
 * Errors that are already LifeboatErrors pass through untouched.
 */
export function classifyAwsError(err: unknown, ctx: AwsCallContext): LifeboatError {
  if (err instanceof LifeboatError) return err;
  const name = awsErrorName(err) ?? 'UnknownError';
  const where = ctx.region ? ` in ${ctx.region}` : '';
  const said = awsMessage(err).trim().replace(/\.+$/, '');
  const head = `${ctx.service} ${ctx.action}${where} failed with ${name} while ${ctx.doing}`;

  if (!isTransientAwsError(err)) {
    const advice = NON_RETRYABLE[stripFault(name)];
    if (advice) {
      const detail = ctx.detail ? ` (${ctx.detail})` : '';
      return new AwsOperationError(`${head}: ${advice.meaning}${detail}; ${advice.action} (AWS said: ${said}).`, advice.code, true, name, ctx.action, err);
    }
  }
  const transient = isTransientAwsError(err);
  const tail = transient ? 'this is usually temporary and lifeboat will retry' : 'lifeboat will retry; if it keeps failing, read the AWS message';
  return new AwsOperationError(`${head}: ${tail} (AWS said: ${said}).`, transient ? 'AWS_TRANSIENT' : 'AWS_ERROR', false, name, ctx.action, err);
}

/** An S3 failure as a LifeboatError: a missing bucket is named as such, the rest classified. */
export function s3Error(err: unknown, action: string, doing: string, bucket: string): LifeboatError {
  if (isAwsError(err, 'NoSuchBucket')) {
    return new LifeboatError(`The bucket ${bucket} does not exist (S3 ${action} while ${doing}): create it or fix the bucket name in the lifeboat config.`, 'BUCKET_NOT_FOUND');
  }
  return classifyAwsError(err, { service: 'S3', action, doing });
}
