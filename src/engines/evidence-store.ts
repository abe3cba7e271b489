/**
 * Write-once evidence for auditors: a report (drill, restore, compliance) is written to the
 * evidence bucket of every region, each copy under object-lock retention, and its SHA-256 is
 * what the catalog records. Reading it back proves each copy is the very bytes written.
 *
 * Idempotent by key: a retry after a crash finds its own copy (same hash) and adopts it; other
 * bytes under the same key are refused, never written over. S3 checks the body against the
 * SHA-256 sent with it, so a copy damaged in transit is never stored.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, GetObjectRetentionCommand, HeadObjectCommand, ObjectLockMode, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LifeboatError } from '../domain/errors';

/** One region's evidence bucket. */
export interface EvidenceLocation {
  region: string;
  bucket: string;
  s3: S3Client;
}

export interface EvidenceCopy {
  region: string;
  bucket: string;
  key: string;
  versionId: string;
  retainUntil: string;
  mode: 'COMPLIANCE' | 'GOVERNANCE';
}

/** What was written: enough to find and check every copy later. */
export interface EvidenceReceipt {
  key: string;
  sha256: string;
  bytes: number;
  contentType: string;
  copies: EvidenceCopy[];
}

export interface EvidenceCheck {
  region: string;
  ok: boolean;
  detail: string;
}

export interface EvidenceStoreOptions {
  /** How long each copy stays undeletable (the compliance period). */
  retentionDays: number;
  /** COMPLIANCE: nobody can delete a copy early, not even the account's root; GOVERNANCE: privileged users can. */
  mode: 'COMPLIANCE' | 'GOVERNANCE';
  /** The clock; injectable so tests are exact. */
  now?: () => Date;
}

const SHA256_META = 'lifeboat-sha256';
const DAY_MS = 86400000;

export function sha256Hex(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

function problemOf(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string };
  return [e.code ?? e.name, e.message].filter(Boolean).join(': ') || String(err);
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export class EvidenceStore {
  constructor(
    private readonly locations: EvidenceLocation[],
    private readonly options: EvidenceStoreOptions,
  ) {
    if (!locations.length) throw new LifeboatError('Evidence needs at least one bucket to be written to; configure the evidence store.', 'EVIDENCE_NOT_CONFIGURED');
    if (!(options.retentionDays >= 1)) throw new LifeboatError(`An evidence retention of ${options.retentionDays} days keeps nothing; give at least 1 day (the compliance period).`, 'EVIDENCE_NOT_CONFIGURED');
  }

  /** Writes `body` under `key` to every region (adopting a copy a crashed attempt already wrote). */
  async put(key: string, body: Buffer, contentType: string): Promise<EvidenceReceipt> {
    const sha256 = sha256Hex(body);
    const copies: EvidenceCopy[] = [];
    for (const location of this.locations) copies.push(await this.putOne(location, key, body, contentType, sha256));
    return { key, sha256, bytes: body.length, contentType, copies };
  }

  /**
   * Writes `body` to every region that answers: a region that cannot take it now is listed in
   * `missing` with why, for `complete` to copy later. Fails only when no region took it.
   */
  async putWherePossible(key: string, body: Buffer, contentType: string): Promise<EvidenceReceipt & { missing: Array<{ region: string; bucket: string; problem: string }> }> {
    const sha256 = sha256Hex(body);
    const copies: EvidenceCopy[] = [];
    const missing: Array<{ region: string; bucket: string; problem: string }> = [];
    for (const location of this.locations) {
      try {
        copies.push(await this.putOne(location, key, body, contentType, sha256));
      } catch (err) {
        // Different bytes under the key is never a region outage: refused at once.
        if (err instanceof LifeboatError && err.code === 'EVIDENCE_CONFLICT') throw err;
        missing.push({ region: location.region, bucket: location.bucket, problem: problemOf(err) });
      }
    }
    if (!copies.length) {
      throw new LifeboatError(`No evidence bucket took ${key} (${missing.map((m) => `${m.bucket} (${m.region}): ${m.problem}`).join('; ')}); lifeboat retries.`, 'EVIDENCE_UNWRITABLE', false);
    }
    return { key, sha256, bytes: body.length, contentType, copies, missing };
  }

  /**
   * Copies the receipt's report to every configured region that lacks a copy, from a copy that
   * reads back as recorded (the very bytes, hash checked); an unreachable region still fails.
   */
  async complete(receipt: EvidenceReceipt): Promise<EvidenceReceipt> {
    const absent = this.locations.filter((l) => !receipt.copies.some((c) => c.region === l.region && c.bucket === l.bucket));
    if (!absent.length) return receipt;
    const body = await this.read(receipt);
    const copies = [...receipt.copies];
    for (const location of absent) copies.push(await this.putOne(location, receipt.key, body, receipt.contentType || 'application/octet-stream', receipt.sha256));
    return { ...receipt, copies };
  }

  /** Reads every copy of the receipt back: the same bytes, still under retention. */
  async verify(receipt: EvidenceReceipt): Promise<EvidenceCheck[]> {
    const checks: EvidenceCheck[] = [];
    for (const copy of receipt.copies) {
      const location = this.locations.find((l) => l.region === copy.region && l.bucket === copy.bucket);
      const where = `${copy.bucket} (${copy.region})`;
      if (!location) {
        checks.push({ region: copy.region, ok: false, detail: `lifeboat has no access to ${where} any more, so its copy cannot be checked; restore the evidence store's configuration.` });
        continue;
      }
      checks.push(await this.verifyOne(location, copy, receipt.sha256, where));
    }
    return checks;
  }

  /** The bytes of the first copy that reads back intact (for `drill report`). */
  async read(receipt: EvidenceReceipt): Promise<Buffer> {
    const failures: string[] = [];
    for (const copy of receipt.copies) {
      const location = this.locations.find((l) => l.region === copy.region && l.bucket === copy.bucket);
      if (!location) continue;
      try {
        const body = await this.getBytes(location, copy.key, copy.versionId);
        if (sha256Hex(body) === receipt.sha256) return body;
        failures.push(`${copy.region}: the bytes differ from the recorded hash`);
      } catch (err) {
        failures.push(`${copy.region}: ${(err as Error).message}`);
      }
    }
    throw new LifeboatError(`No copy of ${receipt.key} reads back as recorded (${failures.join('; ') || 'no region configured'}); check the evidence buckets.`, 'EVIDENCE_UNREADABLE', false);
  }

  private async putOne(location: EvidenceLocation, key: string, body: Buffer, contentType: string, sha256: string): Promise<EvidenceCopy> {
    const existing = await this.existing(location, key, sha256);
    if (existing) return existing;
    const retainUntil = new Date((this.options.now?.() ?? new Date()).getTime() + this.options.retentionDays * DAY_MS);
    try {
      const put = await location.s3.send(
        new PutObjectCommand({
          Bucket: location.bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
          Metadata: { [SHA256_META]: sha256 },
          ObjectLockMode: this.options.mode === 'COMPLIANCE' ? ObjectLockMode.COMPLIANCE : ObjectLockMode.GOVERNANCE,
          ObjectLockRetainUntilDate: retainUntil,
          // Never over another writer's object: a racing attempt loses here and adopts below.
          IfNoneMatch: '*',
        }),
      );
      if (!put.VersionId) {
        throw new LifeboatError(`${location.bucket} (${location.region}) stored ${key} without a version: it is not a versioned, object-locked bucket, so it cannot hold evidence; create it with object lock enabled.`, 'EVIDENCE_BUCKET_NOT_LOCKED');
      }
      return { region: location.region, bucket: location.bucket, key, versionId: put.VersionId, retainUntil: retainUntil.toISOString(), mode: this.options.mode };
    } catch (err) {
      if (statusOf(err) === 412) {
        const raced = await this.existing(location, key, sha256);
        if (raced) return raced;
      }
      throw err;
    }
  }

  /** The copy already under `key` if it holds these bytes; a refusal if it holds others. */
  private async existing(location: EvidenceLocation, key: string, sha256: string): Promise<EvidenceCopy | undefined> {
    let head;
    try {
      head = await location.s3.send(new HeadObjectCommand({ Bucket: location.bucket, Key: key }));
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
    const stored = head.Metadata?.[SHA256_META];
    if (stored !== sha256) {
      throw new LifeboatError(
        `${location.bucket} (${location.region}) already holds different evidence under ${key} (SHA-256 ${stored ?? 'unknown'}), and evidence is never written over; write this report under a new key.`,
        'EVIDENCE_CONFLICT',
      );
    }
    return {
      region: location.region,
      bucket: location.bucket,
      key,
      versionId: head.VersionId ?? '',
      retainUntil: head.ObjectLockRetainUntilDate?.toISOString() ?? '',
      mode: head.ObjectLockMode === 'COMPLIANCE' ? 'COMPLIANCE' : 'GOVERNANCE',
    };
  }

  private async verifyOne(location: EvidenceLocation, copy: EvidenceCopy, sha256: string, where: string): Promise<EvidenceCheck> {
    let body: Buffer;
    try {
      body = await this.getBytes(location, copy.key, copy.versionId);
    } catch (err) {
      return { region: copy.region, ok: false, detail: `The copy in ${where} (version ${copy.versionId}) cannot be read: ${(err as Error).message}.` };
    }
    const found = sha256Hex(body);
    if (found !== sha256) return { region: copy.region, ok: false, detail: `The copy in ${where} has SHA-256 ${found}, not the recorded ${sha256}: it is not the report that was written.` };
    let retention;
    try {
      retention = await location.s3.send(new GetObjectRetentionCommand({ Bucket: location.bucket, Key: copy.key, VersionId: copy.versionId }));
    } catch (err) {
      return { region: copy.region, ok: false, detail: `The copy in ${where} reads back intact, but its retention cannot be read (${(err as Error).message}).` };
    }
    const until = retention.Retention?.RetainUntilDate;
    const now = this.options.now?.() ?? new Date();
    if (!until || retention.Retention?.Mode !== copy.mode) {
      return { region: copy.region, ok: false, detail: `The copy in ${where} reads back intact, but it is no longer under ${copy.mode} retention (found ${retention.Retention?.Mode ?? 'none'}).` };
    }
    const underRetention = until.getTime() > now.getTime();
    return {
      region: copy.region,
      ok: true,
      detail: `${where}: ${body.length} bytes, SHA-256 matches; ${copy.mode} retention ${underRetention ? `until ${until.toISOString()}` : `ended ${until.toISOString()} (the compliance period is over)`}.`,
    };
  }

  private async getBytes(location: EvidenceLocation, key: string, versionId: string): Promise<Buffer> {
    const out = await location.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: key, VersionId: versionId || undefined }));
    if (!out.Body) throw new Error('the object has no body');
    return Buffer.from(await out.Body.transformToByteArray());
  }
}
