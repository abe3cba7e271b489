/**
 * Drill scratch buckets in one object store, as the drill sweeper sees them: buckets named
 * `drill-...`, with the owner run their tags record (src/domain/drill-sweep.ts names the tags),
 * and their removal: every object version, delete marker and unfinished upload, then the bucket.
 */
import {
  AbortMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetBucketTaggingCommand,
  ListBucketsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DRILL_BUCKET_TAGS, DRILL_PREFIX, drillBucketOwner } from '../domain/drill-sweep';
import type { RunIdentity } from '../domain/ports';
import { multipartUploadPages, objectVersionPages } from './aws-pagination';
import { isAwsError, s3Error } from './aws-errors';

export interface DrillBucket {
  name: string;
  /** Tagged `lifeboat:managed=true`: lifeboat made it. */
  managed: boolean;
  owner?: RunIdentity;
}

/** Every bucket named `drill-...` in the store, with its labels; `exclude` names buckets never to list (the config's own). */
export async function listDrillBuckets(s3: S3Client, exclude: ReadonlySet<string> = new Set()): Promise<DrillBucket[]> {
  let names: string[];
  try {
    names = ((await s3.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name ?? '').filter((n) => n.startsWith(DRILL_PREFIX) && !exclude.has(n));
  } catch (err) {
    throw s3Error(err, 'ListBuckets', 'listing drill scratch buckets', '*');
  }
  const out: DrillBucket[] = [];
  for (const name of names.sort()) {
    let tags: Array<{ Key?: string; Value?: string }> = [];
    try {
      tags = (await s3.send(new GetBucketTaggingCommand({ Bucket: name }))).TagSet ?? [];
    } catch (err) {
      if (isAwsError(err, 'NoSuchBucket')) continue; // removed since the listing
      if (!isAwsError(err, 'NoSuchTagSet')) throw s3Error(err, 'GetBucketTagging', `reading the labels of drill bucket ${name}`, name);
    }
    const owner = drillBucketOwner(tags);
    out.push({ name, managed: tags.some((t) => t.Key === DRILL_BUCKET_TAGS.managed && t.Value === 'true'), ...(owner ? { owner } : {}) });
  }
  return out;
}

/** Empties the bucket (versions, delete markers, unfinished uploads) and deletes it; a bucket already gone is success. Returns the number of versions removed. */
export async function removeDrillBucket(s3: S3Client, bucket: string, onProgress: (removed: number) => void = () => undefined): Promise<number> {
  let removed = 0;
  try {
    for await (const page of multipartUploadPages(s3, { Bucket: bucket })) {
      for (const u of page.Uploads ?? []) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
    }
    for await (const page of objectVersionPages(s3, { Bucket: bucket })) {
      const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key!, VersionId: v.VersionId }));
      if (!objects.length) continue;
      const out = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }));
      if (out.Errors?.length) {
        const first = out.Errors[0];
        throw new Error(`${out.Errors.length} object versions of ${bucket} could not be deleted (first: ${first.Key} ${first.Code}: ${first.Message})`);
      }
      removed += objects.length;
      onProgress(removed);
    }
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (isAwsError(err, 'NoSuchBucket')) return removed;
    throw s3Error(err, 'DeleteBucket', `removing drill bucket ${bucket}`, bucket);
  }
  return removed;
}
