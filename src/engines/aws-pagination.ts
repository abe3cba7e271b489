/**
 * Pages of the AWS list calls the SDK ships no paginator for. The SDK's paginators
 * (paginateListObjectsV2, paginateDescribeDBInstanceAutomatedBackups, ...) follow one token; these
 * calls resume from several fields at once (S3 versions: key and version id; S3 uploads: key and
 * upload id; Route53 records: name, type and identifier), so they are followed here, in one place.
 *
 * Pages are fetched lazily: a caller that breaks out of the loop stops the listing.
 */
import {
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  type ListMultipartUploadsCommandInput,
  type ListMultipartUploadsCommandOutput,
  type ListObjectVersionsCommandInput,
  type ListObjectVersionsCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  ListResourceRecordSetsCommand,
  type ListResourceRecordSetsCommandInput,
  type ListResourceRecordSetsCommandOutput,
  type Route53Client,
} from '@aws-sdk/client-route-53';

/**
 * Every page from `fetch`, starting at `input` and resuming from the cursor `resumeFrom` reads
 * off each page, until it reads none. Cursor members the page leaves out are not sent.
 */
async function* pagesOf<I extends object, O>(fetch: (input: I) => Promise<O>, input: I, resumeFrom: (page: O) => Partial<I> | undefined): AsyncGenerator<O> {
  let next: I | undefined = input;
  while (next) {
    const page = await fetch(next);
    yield page;
    const cursor = resumeFrom(page);
    next = cursor ? { ...input, ...Object.fromEntries(Object.entries(cursor).filter(([, value]) => value !== undefined)) } : undefined;
  }
}

/** ListObjectVersions, page by page (versions and delete markers). */
export function objectVersionPages(s3: S3Client, input: ListObjectVersionsCommandInput): AsyncGenerator<ListObjectVersionsCommandOutput> {
  return pagesOf(
    (i) => s3.send(new ListObjectVersionsCommand(i)),
    input,
    (page) => (page.IsTruncated && page.NextKeyMarker ? { KeyMarker: page.NextKeyMarker, VersionIdMarker: page.NextVersionIdMarker } : undefined),
  );
}

/** ListMultipartUploads, page by page. */
export function multipartUploadPages(s3: S3Client, input: ListMultipartUploadsCommandInput): AsyncGenerator<ListMultipartUploadsCommandOutput> {
  return pagesOf(
    (i) => s3.send(new ListMultipartUploadsCommand(i)),
    input,
    (page) => (page.IsTruncated && page.NextKeyMarker ? { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker } : undefined),
  );
}

/** ListResourceRecordSets, page by page, in Route53's order (by name, then type). */
export function resourceRecordSetPages(route53: Route53Client, input: ListResourceRecordSetsCommandInput): AsyncGenerator<ListResourceRecordSetsCommandOutput> {
  return pagesOf(
    (i) => route53.send(new ListResourceRecordSetsCommand(i)),
    input,
    (page) =>
      page.IsTruncated && page.NextRecordName
        ? { StartRecordName: page.NextRecordName, StartRecordType: page.NextRecordType, StartRecordIdentifier: page.NextRecordIdentifier }
        : undefined,
  );
}
