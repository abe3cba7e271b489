/**
 * Scratch buckets of restore drills, owned like every drill resource: created tagged with the
 * workflow run that made them (DRILL_BUCKET_TAGS), adopted only by that run, emptied and deleted
 * only on behalf of that owner (the run itself, or the drill sweeper once the run is closed).
 * A files restore's new bucket is owned the same way under its own marker tag (`marker`), so the
 * drill sweeper, which looks for the drill marker, never takes it for a drill's.
 * S3 only: AWS S3 in production, MinIO locally.
 */
import {
  AbortMultipartUploadCommand,
  BucketAlreadyOwnedByYou,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetBucketTaggingCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketTaggingCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { LifeboatError } from '../domain/errors';
import { DRILL_BUCKET_TAGS } from '../domain/files-drill';
import { isAwsError, s3Error } from './aws-errors';

/** The run a drill bucket belongs to, as its tags say. */
export interface DrillBucketOwner {
  workflowId: string;
  runId: string;
  target: string;
  createdAt: string;
}

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

async function bucketExists(s3: S3Client, bucket: string): Promise<boolean> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (err) {
    if (statusOf(err) === 404 || isAwsError(err, 'NoSuchBucket', 'NotFound')) return false;
    throw s3Error(err, 'HeadBucket', `looking for the drill bucket ${bucket}`, bucket);
  }
}

/** The owner the bucket's tags name; undefined when it carries no lifeboat owner tags (or does not exist). */
export async function drillBucketOwner(s3: S3Client, bucket: string, marker: string = DRILL_BUCKET_TAGS.drill): Promise<DrillBucketOwner | undefined> {
  let tags: Record<string, string>;
  try {
    const out = await s3.send(new GetBucketTaggingCommand({ Bucket: bucket }));
    tags = Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key!, t.Value ?? '']));
  } catch (err) {
    if (isAwsError(err, 'NoSuchTagSet', 'NoSuchTagSetError', 'NoSuchBucket') || statusOf(err) === 404) return undefined;
    throw s3Error(err, 'GetBucketTagging', `reading the owner of the drill bucket ${bucket}`, bucket);
  }
  const workflowId = tags[DRILL_BUCKET_TAGS.workflowId];
  const runId = tags[DRILL_BUCKET_TAGS.runId];
  if (tags[marker] !== 'true' || !workflowId || !runId) return undefined;
  return { workflowId, runId, target: tags[DRILL_BUCKET_TAGS.target] ?? '', createdAt: tags[DRILL_BUCKET_TAGS.createdAt] ?? '' };
}

const sameRun = (a: DrillBucketOwner | undefined, b: Pick<DrillBucketOwner, 'workflowId' | 'runId'>) => !!a && a.workflowId === b.workflowId && a.runId === b.runId;
const ownerText = (o: DrillBucketOwner) => `workflow ${o.workflowId} (run ${o.runId}${o.createdAt ? `, created ${o.createdAt}` : ''})`;

async function isEmpty(s3: S3Client, bucket: string): Promise<boolean> {
  const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, MaxKeys: 1 }));
  return !(page.Versions?.length || page.DeleteMarkers?.length);
}

async function tag(s3: S3Client, bucket: string, owner: DrillBucketOwner, marker: string): Promise<void> {
  const TagSet = [
    { Key: marker, Value: 'true' },
    { Key: DRILL_BUCKET_TAGS.workflowId, Value: owner.workflowId },
    { Key: DRILL_BUCKET_TAGS.runId, Value: owner.runId },
    { Key: DRILL_BUCKET_TAGS.target, Value: owner.target },
    { Key: DRILL_BUCKET_TAGS.createdAt, Value: owner.createdAt },
  ];
  try {
    await s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet } }));
  } catch (err) {
    throw s3Error(err, 'PutBucketTagging', `labelling the drill bucket ${bucket} with its owner`, bucket);
  }
}

/**
 * Makes the drill's scratch bucket, tagged with its owner; a bucket this run made already is
 * adopted (a retried activity). A bucket of that name owned by anyone else is refused, naming
 * the owner. An empty bucket without owner tags is adopted and tagged: that is this run's own
 * bucket after a crash between creating and tagging it (the name comes from the workflow id).
 */
export async function createDrillBucket(s3: S3Client, bucket: string, owner: DrillBucketOwner, marker: string = DRILL_BUCKET_TAGS.drill): Promise<{ adopted: boolean }> {
  if (!(await bucketExists(s3, bucket))) {
    const region = await s3.config.region();
    try {
      await s3.send(new CreateBucketCommand({ Bucket: bucket, ...(region && region !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: region as never } } : {}) }));
      await tag(s3, bucket, owner, marker);
      return { adopted: false };
    } catch (err) {
      // Someone else's bucket of that name (in AWS, names are global) falls through to the owner check.
      if (!(err instanceof BucketAlreadyOwnedByYou) && !isAwsError(err, 'BucketAlreadyExists', 'BucketAlreadyOwnedByYou')) {
        throw err instanceof LifeboatError ? err : s3Error(err, 'CreateBucket', `making the drill bucket ${bucket}`, bucket);
      }
    }
  }
  const found = await drillBucketOwner(s3, bucket, marker).catch(() => undefined);
  if (sameRun(found, owner)) return { adopted: true };
  if (!found && (await isEmpty(s3, bucket).catch(() => false))) {
    await tag(s3, bucket, owner, marker);
    return { adopted: true };
  }
  throw new LifeboatError(
    `The bucket ${bucket} already exists and ${found ? `belongs to ${ownerText(found)}` : 'is not a drill bucket of lifeboat (no owner tags) and holds objects'}, so this drill will not use it: run the drill under another workflow id, or remove that bucket if it is a leftover.`,
    'DRILL_BUCKET_NOT_OURS',
  );
}

/**
 * Empties and deletes a drill bucket on behalf of `owner`: every object version, delete marker
 * and unfinished multipart upload, then the bucket. Refuses a bucket whose tags name another
 * owner, or none. A bucket already gone is fine (idempotent). Returns what it did, in words.
 */
export async function removeDrillBucket(
  s3: S3Client,
  bucket: string,
  owner: Pick<DrillBucketOwner, 'workflowId' | 'runId'>,
  marker: string = DRILL_BUCKET_TAGS.drill,
): Promise<{ removed: boolean; objects: number; detail: string }> {
  const what = marker === DRILL_BUCKET_TAGS.drill ? 'the scratch bucket' : 'the restore bucket';
  if (!(await bucketExists(s3, bucket))) return { removed: false, objects: 0, detail: `${what} ${bucket} was not there (never made, or removed already)` };
  const found = await drillBucketOwner(s3, bucket, marker);
  if (!sameRun(found, owner)) {
    throw new LifeboatError(
      `The bucket ${bucket} ${found ? `belongs to ${ownerText(found)}` : 'carries no drill owner tags'}, not to workflow ${owner.workflowId} (run ${owner.runId}), so it is left as it is: check who made it before removing it by hand.`,
      'DRILL_BUCKET_NOT_OURS',
    );
  }
  let objects = 0;
  try {
    for (;;) {
      const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, MaxKeys: 1000 }));
      const all = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key!, VersionId: v.VersionId }));
      if (!all.length) break;
      const out = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: all, Quiet: true } }));
      if (out.Errors?.length) {
        const e = out.Errors[0];
        throw new LifeboatError(`${out.Errors.length} objects of the drill bucket ${bucket} could not be deleted (${e.Key}: ${e.Code} ${e.Message}); lifeboat will retry.`, 'DRILL_BUCKET_NOT_EMPTIED', false);
      }
      objects += all.length;
    }
    for (;;) {
      const uploads = (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
      if (!uploads.length) break;
      for (const u of uploads) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
    }
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (isAwsError(err, 'NoSuchBucket')) return { removed: true, objects, detail: `${what} ${bucket} emptied (${objects} objects) and removed` };
    throw err instanceof LifeboatError ? err : s3Error(err, 'DeleteBucket', `removing the drill bucket ${bucket}`, bucket);
  }
  return { removed: true, objects, detail: `${what} ${bucket} emptied (${objects} objects) and removed` };
}

/**
 * Every bucket of the store named like a drill's scratch bucket (`drill-...`), with the owner
 * its tags name (undefined: no lifeboat owner tags, so not lifeboat's to remove). For the drill
 * sweeper: it removes, through removeDrillBucket on the owner's behalf, those whose run is closed.
 */
export async function listDrillBuckets(s3: S3Client): Promise<Array<{ bucket: string; owner?: DrillBucketOwner }>> {
  let names: string[];
  try {
    names = ((await s3.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name!).filter((n) => n.startsWith('drill-'));
  } catch (err) {
    throw s3Error(err, 'ListBuckets', 'looking for drill buckets', '(all)');
  }
  const out: Array<{ bucket: string; owner?: DrillBucketOwner }> = [];
  for (const bucket of names.sort()) {
    const owner = await drillBucketOwner(s3, bucket);
    out.push(owner ? { bucket, owner } : { bucket });
  }
  return out;
}
