/**
 * Checks of a restored bucket against the manifest of the backup set it came from (the
 * FileBackupEngine's manifest: key, size, ETag, SHA-256, content type, user metadata): what a
 * files restore drill proves. Each check returns its verdict and a sentence naming what differs;
 * problems are verdicts, not exceptions. S3 only.
 */
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadObjectCommand, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import { describeError } from '../domain/errors';
import { Sha256Meter } from './crypto-stream';
import { s3Error } from './aws-errors';
import type { ManifestEntry } from './file-backup';

export interface RestoredCheck {
  ok: boolean;
  detail: string;
  /** Objects the check looked at. */
  checked: number;
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/^"|"$/g, '');
const some = (items: string[]) => `${items.slice(0, 5).join(', ')}${items.length > 5 ? ` and ${items.length - 5} more` : ''}`;

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>, beat?: () => void): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      await fn(items[next++]);
      beat?.();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/**
 * The objects a drill reads back: every one when the set holds at most `hashAllUpTo`, else
 * `sample` of them, ranked by SHA-256 of `seed` (the drill's id) and key: the same objects on a
 * retry, other objects in the next drill.
 */
export function drillSample(entries: ManifestEntry[], seed: string, hashAllUpTo: number, sample: number): ManifestEntry[] {
  if (entries.length <= hashAllUpTo || entries.length <= sample) return [...entries];
  const rank = (e: ManifestEntry) => createHash('sha256').update(`${seed}\n${e.key}`).digest('hex');
  return entries
    .map((e) => ({ e, r: rank(e) }))
    .sort((a, b) => (a.r < b.r ? -1 : a.r > b.r ? 1 : 0))
    .slice(0, sample)
    .map((x) => x.e)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Every key of the bucket with its size: against the manifest, the same keys, count and bytes, nothing more. */
export async function checkRestoredCount(s3: S3Client, bucket: string, expected: ManifestEntry[], beat?: () => void): Promise<RestoredCheck> {
  const found = new Map<string, number>();
  try {
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket })) {
      for (const o of page.Contents ?? []) found.set(o.Key!, o.Size ?? 0);
      beat?.();
    }
  } catch (err) {
    throw s3Error(err, 'ListObjectsV2', `listing the restored objects in ${bucket}`, bucket);
  }
  const wantBytes = expected.reduce((n, e) => n + e.size, 0);
  const gotBytes = [...found.values()].reduce((n, s) => n + s, 0);
  const keys = new Set(expected.map((e) => e.key));
  const missing = expected.filter((e) => !found.has(e.key)).map((e) => e.key);
  const wrongSize = expected.filter((e) => found.has(e.key) && found.get(e.key) !== e.size).map((e) => `${e.key} (${found.get(e.key)} bytes, manifest ${e.size})`);
  const extra = [...found.keys()].filter((k) => !keys.has(k));
  const problems = [missing.length ? `missing ${some(missing)}` : '', wrongSize.length ? `wrong size ${some(wrongSize)}` : '', extra.length ? `not in the manifest ${some(extra)}` : ''].filter(Boolean);
  if (!problems.length) return { ok: true, checked: found.size, detail: `${found.size} objects, ${gotBytes} bytes, exactly as the manifest records` };
  return { ok: false, checked: found.size, detail: `${found.size} objects (${gotBytes} bytes) restored where the manifest records ${expected.length} (${wantBytes} bytes): ${problems.join('; ')}` };
}

/** Reads each object back and hashes it: SHA-256 and size as the manifest recorded them when the backup copied it. */
export async function checkRestoredContent(s3: S3Client, bucket: string, sample: ManifestEntry[], of: number, options: { concurrency?: number; beat?: () => void } = {}): Promise<RestoredCheck> {
  const bad: string[] = [];
  let bytes = 0;
  await forEachLimit(
    sample,
    options.concurrency ?? 4,
    async (e) => {
      const meter = new Sha256Meter();
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: e.key }));
        await pipeline(out.Body as Readable, meter, new Writable({ write: (_c, _e, done) => done() }));
      } catch (err) {
        bad.push(`${e.key}: cannot be read (${describeError(err)})`);
        return;
      }
      bytes += meter.bytes;
      if (meter.sha256 !== e.sha256 || meter.bytes !== e.size) bad.push(`${e.key}: SHA-256 ${meter.sha256.slice(0, 16)}… over ${meter.bytes} bytes, manifest ${e.sha256.slice(0, 16)}… over ${e.size}`);
    },
    options.beat,
  );
  bad.sort();
  const which = sample.length === of ? `all ${of} objects` : `a sample of ${sample.length} of ${of} objects`;
  if (!bad.length) return { ok: true, checked: sample.length, detail: `${which} (${bytes} bytes) hash to the SHA-256 the manifest recorded` };
  return { ok: false, checked: sample.length, detail: `${bad.length} of ${which} do not match the manifest: ${some(bad)}` };
}

/**
 * Content type, user metadata and size of each object as the manifest recorded them; the ETag
 * too where both the source's and the restored one are single-part (an MD5 of the bytes).
 */
export async function checkRestoredMetadata(s3: S3Client, bucket: string, sample: ManifestEntry[], of: number, options: { concurrency?: number; beat?: () => void } = {}): Promise<RestoredCheck> {
  const bad: string[] = [];
  let etags = 0;
  await forEachLimit(
    sample,
    options.concurrency ?? 8,
    async (e) => {
      let head;
      try {
        head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: e.key }));
      } catch (err) {
        bad.push(`${e.key}: cannot be read (${describeError(err)})`);
        return;
      }
      const differs: string[] = [];
      if (e.contentType !== undefined && head.ContentType !== e.contentType) differs.push(`content type ${head.ContentType ?? '(none)'}, manifest ${e.contentType}`);
      const want = e.metadata ?? {};
      const got = head.Metadata ?? {};
      const keys = [...new Set([...Object.keys(want), ...Object.keys(got)])].sort();
      const wrong = keys.filter((k) => want[k] !== got[k]);
      if (wrong.length) differs.push(`metadata ${wrong.map((k) => `${k}=${got[k] ?? '(none)'} (manifest ${want[k] ?? '(none)'})`).join(', ')}`);
      if (head.ContentLength !== undefined && head.ContentLength !== e.size) differs.push(`size ${head.ContentLength}, manifest ${e.size}`);
      const etag = unquote(head.ETag);
      if (e.etag && !e.etag.includes('-') && etag && !etag.includes('-')) {
        etags++;
        if (etag !== e.etag) differs.push(`ETag ${etag}, manifest ${e.etag}`);
      }
      if (differs.length) bad.push(`${e.key}: ${differs.join('; ')}`);
    },
    options.beat,
  );
  bad.sort();
  const which = sample.length === of ? `all ${of} objects` : `a sample of ${sample.length} of ${of} objects`;
  if (!bad.length) return { ok: true, checked: sample.length, detail: `${which}: content type, user metadata and size as recorded; ETag (MD5) equal to the source's for the ${etags} single-part ones` };
  return { ok: false, checked: sample.length, detail: `${bad.length} of ${which} differ from the manifest: ${some(bad)}` };
}
