/**
 * A versioned bucket as it was at a time, from its object versions: for each key the newest
 * version written at or before that time, unless the newest entry then was a delete marker.
 * Also what a bucket holds now (key, size, ETag), for an in-place restore to compare against.
 * S3 only: AWS S3 in production, MinIO locally.
 */
import { GetBucketVersioningCommand, ListObjectVersionsCommand, ListObjectVersionsCommandOutput, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import { s3Error } from './aws-errors';

export interface VersionAt {
  key: string;
  versionId: string;
  size: number;
  /** Without quotes. */
  etag: string;
  lastModified: string;
}

export interface CurrentObject {
  key: string;
  size: number;
  etag: string;
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/^"|"$/g, '');

/** `Enabled`, `Suspended`, or `never` (versioning was never turned on). */
export async function versioningOf(s3: S3Client, bucket: string): Promise<'Enabled' | 'Suspended' | 'never'> {
  try {
    const out = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }));
    return out.Status === 'Enabled' ? 'Enabled' : out.Status === 'Suspended' ? 'Suspended' : 'never';
  } catch (err) {
    throw s3Error(err, 'GetBucketVersioning', `checking whether ${bucket} keeps object versions`, bucket);
  }
}

/**
 * The objects under `prefix` as they were at `at`: per key, the newest version or delete marker
 * whose LastModified is at or before `at`; keys whose newest entry then is a delete marker (or
 * that had no version yet) are left out. Sorted by key.
 */
export async function objectsAt(s3: S3Client, bucket: string, prefix: string | undefined, at: Date): Promise<VersionAt[]> {
  const newest = new Map<string, { time: number; marker: boolean; v?: VersionAt }>();
  const consider = (key: string, time: number, marker: boolean, v?: VersionAt) => {
    if (time > at.getTime()) return;
    const seen = newest.get(key);
    // S3 lists a key's versions newest first: on equal times the one listed first is the newer.
    if (!seen || time > seen.time) newest.set(key, { time, marker, v });
  };
  try {
    let markers: { KeyMarker?: string; VersionIdMarker?: string } = {};
    for (;;) {
      const page: ListObjectVersionsCommandOutput = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix || undefined, ...markers }));
      for (const v of page.Versions ?? []) {
        const time = v.LastModified?.getTime() ?? 0;
        consider(v.Key!, time, false, { key: v.Key!, versionId: v.VersionId ?? 'null', size: v.Size ?? 0, etag: unquote(v.ETag), lastModified: new Date(time).toISOString() });
      }
      for (const m of page.DeleteMarkers ?? []) consider(m.Key!, m.LastModified?.getTime() ?? 0, true);
      if (!page.IsTruncated) break;
      markers = { KeyMarker: page.NextKeyMarker, VersionIdMarker: page.NextVersionIdMarker };
    }
  } catch (err) {
    throw s3Error(err, 'ListObjectVersions', `reading the versions of ${bucket}`, bucket);
  }
  return [...newest.values()]
    .filter((n) => !n.marker && n.v)
    .map((n) => n.v!)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The current objects under `prefix` (or all), with size and ETag. */
export async function currentObjects(s3: S3Client, bucket: string, prefix?: string): Promise<Map<string, CurrentObject>> {
  const out = new Map<string, CurrentObject>();
  try {
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix || undefined })) {
      for (const o of page.Contents ?? []) out.set(o.Key!, { key: o.Key!, size: o.Size ?? 0, etag: unquote(o.ETag) });
    }
  } catch (err) {
    throw s3Error(err, 'ListObjectsV2', `listing what ${bucket} holds now`, bucket);
  }
  return out;
}
