/**
 * The DR copy as a repository-level copy: the backup set's objects (and those of any set it
 * builds on that the DR repository lacks), then the WAL it needs, are streamed from the primary
 * region's repository bucket to the DR region's (GET -> PUT with the S3 SDK; a server-side copy
 * cannot cross two object stores), and pgBackRest then adds the set to the DR repository's
 * backup.info itself. The source database is not read at all: the copy reads the repository.
 *
 * Why pgBackRest registers the set and lifeboat does not write backup.info: pgBackRest's `expire`
 * loads backup.info "with reconstruct", which adds every set found in the repository whose
 * backup.manifest matches one of the stanza's databases (system id, version, db id) and whose
 * prior set is present, then saves it. So lifeboat copies the manifest (and its .copy) LAST: until
 * then the set is invisible to pgBackRest, and a copy cut short leaves no set anyone counts;
 * pgBackRest removes such a partial directory at its next expire in that repository.
 *
 * Resumable: an object already in the DR bucket with the same key and size is not copied again
 * (an S3 PUT lands whole or not at all, so a key that exists is a finished object); a retried
 * activity after a worker crash copies only what is missing. What was copied is then verified by
 * reading it back from the DR repository (set-check.ts), so nothing is trusted for being present.
 *
 * Only for unencrypted repositories: pgBackRest encrypts each set with sub-passphrases kept in the
 * repository's own backup.info, so the bytes of one encrypted repository mean nothing in another.
 */
import type { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { describeError, LifeboatError } from '../../domain/errors';
import { createS3Client } from '../s3';
import { classifyPgBackRestError } from './errors';
import type { PgBackRestCli } from './cli';
import type { PgBackRestSetup } from './options';
import { readPgBackRestConfig, repoStorageFrom, type RepoStorage } from './repo-storage';
import type { BackupSet, Repositories, StanzaInfo } from './repository';

/** What the copy has done so far: reported in heartbeats and returned at the end. */
export interface RepositoryCopyProgress {
  /** Objects (and their bytes) written to the DR bucket by this attempt. */
  copiedObjects: number;
  copiedBytes: number;
  /** Objects already in the DR bucket whole (an earlier attempt, or WAL archive-push put there). */
  presentObjects: number;
  presentBytes: number;
  /** The sets copied (the set, and any set it builds on the DR repository lacked). */
  sets: string[];
  /** The sets in the DR repository this one builds on (its full, and any diff or incr between): kept while it lives, expired with it when no other copy claims them. */
  dependsOn: string[];
  walSegments: number;
}

interface StoredObject {
  key: string;
  size: number;
}

/** Objects copied at once: enough to keep both stores busy, few enough for a small worker's memory. */
const PARALLEL = 4;
/** Objects up to this size go in one streamed PUT; larger ones (a relation segment of up to 1 GiB) in parts. */
const SINGLE_PUT_BYTES = 256 * 1024 * 1024;
/** Part size of multipart uploads (the SDK buffers up to queueSize parts per upload). */
const PART_BYTES = 8 * 1024 * 1024;

/**
 * Whether repo `primaryRepo`'s sets can be copied byte for byte into `drRepo` (drCopy:
 * repository-copy), from pgBackRest's own config: both repositories S3 with what lifeboat needs
 * to reach them, neither encrypted (an encrypted set's keys live in its own repository's
 * backup.info, so its bytes mean nothing in another), both over verified TLS. Checked at preflight
 * and at every backup's start, so a mismatch is one sentence there and never a copy pgBackRest
 * cannot read.
 */
export async function repositoryCopyReadiness(cli: Pick<PgBackRestCli, 'options'>, osUser: string | undefined, primaryRepo: number, drRepo: number): Promise<{ ok: boolean; detail: string }> {
  let text: string;
  try {
    text = await readPgBackRestConfig(cli.options.configPath, osUser);
  } catch (err) {
    return { ok: false, detail: `drCopy is repository-copy, but pgBackRest's config ${cli.options.configPath} cannot be read to check that repo${primaryRepo} can be copied into repo${drRepo} (${describeError(err)}); make it readable by the worker or the database's OS user.` };
  }
  const problems: string[] = [];
  const storages: RepoStorage[] = [];
  for (const repo of [primaryRepo, drRepo]) {
    try {
      storages.push(repoStorageFrom(text, cli.options.stanza, repo));
    } catch (err) {
      problems.push(describeError(err).replace(/\.$/, ''));
    }
  }
  for (const s of storages) {
    if (s.cipherType !== 'none') problems.push(`pgBackRest repo${s.repo} is encrypted (${s.cipherType}), and an encrypted set cannot be copied byte for byte into another repository (its keys live in repo${s.repo}'s own backup.info); set \`drCopy: second-backup\` on the target, or use unencrypted repositories on encrypted buckets`);
    if (s.insecureTls) problems.push(`pgBackRest repo${s.repo} does not verify its endpoint's certificate (storage-verify-tls=n), and lifeboat copies only over verified TLS; give it a CA file (storage-ca-file) or set \`drCopy: second-backup\``);
  }
  if (problems.length) return { ok: false, detail: `drCopy is repository-copy, but ${problems.join('; and ')}.` };
  const [from, to] = storages;
  return { ok: true, detail: `repo${from.repo} (s3 ${from.bucket}/${from.prefix}) can be copied into repo${to.repo} (s3 ${to.bucket}/${to.prefix}): both S3, unencrypted, verified TLS.` };
}

export class RepositoryCopier {
  constructor(
    private readonly setup: Pick<PgBackRestSetup, 'cli' | 'osUser' | 'primaryRepo' | 'drRepo' | 'timings'>,
    private readonly repositories: Repositories,
  ) {}

  /**
   * Copies set `label` of the primary repository into the DR repository and has pgBackRest list it
   * there. Idempotent: a set the DR repository already lists is not copied again.
   */
  async copySet(label: string, onProgress?: (p: RepositoryCopyProgress) => void): Promise<RepositoryCopyProgress> {
    const { primaryRepo, drRepo } = this.setup;
    const progress: RepositoryCopyProgress = { copiedObjects: 0, copiedBytes: 0, presentObjects: 0, presentBytes: 0, sets: [], dependsOn: [], walSegments: 0 };
    const source = await this.repositories.stanzaInfo(primaryRepo, `reading repo${primaryRepo} to copy ${label}`);
    const target = await this.repositories.stanzaInfo(drRepo, `reading repo${drRepo} to copy ${label}`);
    if (!source || !target) throw new LifeboatError(`pgBackRest lists no stanza ${this.setup.cli.options.stanza} in repo${source ? drRepo : primaryRepo}; run stanza-create for both repositories first.`, 'DR_COPY_UNSUPPORTED');
    const set = source.backup.find((b) => b.label === label && b.database['repo-key'] === primaryRepo);
    if (!set) throw new LifeboatError(`Backup ${label} is not in repo${primaryRepo}, so it cannot be copied to the DR repository; take a new backup.`, 'BACKUP_NOT_FOUND');
    this.checkCompatible(source, target, set);

    const [from, to] = await Promise.all([this.storageOf(primaryRepo), this.storageOf(drRepo)]);
    for (const s of [from, to]) {
      if (s.cipherType !== 'none') {
        throw new LifeboatError(
          `pgBackRest repo${s.repo} is encrypted (${s.cipherType}), and an encrypted set cannot be copied byte for byte (its keys live in each repository's own backup.info); set \`drCopy: second-backup\` on the target.`,
          'DR_COPY_UNSUPPORTED',
        );
      }
      if (s.insecureTls) throw new LifeboatError(`pgBackRest repo${s.repo} does not verify its endpoint's certificate (storage-verify-tls=n), and lifeboat copies only over verified TLS; give it a CA file (storage-ca-file).`, 'DR_COPY_UNSUPPORTED');
    }

    const inTarget = new Set(target.backup.filter((b) => b.database['repo-key'] === drRepo).map((b) => b.label));
    // The set and the sets it reuses files from, oldest first: a diff or incr needs its full there too.
    const chain = [...(set.reference ?? []), set.label].filter((l, i, all) => all.indexOf(l) === i).sort();
    progress.dependsOn = chain.filter((l) => l !== label);
    const missing = chain.filter((l) => !inTarget.has(l));
    if (missing.length === 0) return progress;
    const sets = missing.map((l) => source.backup.find((b) => b.label === l && b.database['repo-key'] === primaryRepo));
    const gone = missing.filter((_, i) => !sets[i]);
    if (gone.length) throw new LifeboatError(`Backup ${label} builds on ${gone.join(', ')}, which repo${primaryRepo} no longer holds, so it cannot be copied whole; take a new full backup.`, 'BACKUP_NOT_FOUND');

    const s3From = createS3Client(from.s3);
    const s3To = createS3Client(to.s3);
    try {
      const stanza = this.setup.cli.options.stanza;
      const archiveId = source.archive.find((a) => a.database.id === set.database.id && a.database['repo-key'] === primaryRepo)?.id;
      for (const s of sets as BackupSet[]) {
        progress.sets.push(s.label);
        // The WAL first, then the set with its manifest last: once pgBackRest can see the set, all it needs is there.
        if (archiveId && s.archive?.start && s.archive?.stop) await this.copyWal(s3From, from, s3To, to, `archive/${stanza}/${archiveId}/`, s.archive.start, s.archive.stop, progress, onProgress);
        await this.copySetObjects(s3From, from, s3To, to, `backup/${stanza}/${s.label}/`, progress, onProgress);
      }
    } finally {
      s3From.destroy();
      s3To.destroy();
    }
    await this.register(label);
    return progress;
  }

  /** The DR repository must hold the same database (system id, version, history id) as the set: else pgBackRest would not take it. */
  private checkCompatible(source: StanzaInfo, target: StanzaInfo, set: BackupSet): void {
    const { primaryRepo, drRepo } = this.setup;
    const db = source.db.find((d) => d.id === set.database.id && d['repo-key'] === primaryRepo);
    const match = target.db.find((d) => d['repo-key'] === drRepo && db && d.id === db.id && d['system-id'] === db['system-id'] && d.version === db.version);
    if (!db || !match) {
      throw new LifeboatError(
        `repo${drRepo} does not hold the database ${set.label} was taken of (system id ${db?.['system-id'] ?? '?'}, PostgreSQL ${db?.version ?? '?'}, history id ${set.database.id}), so pgBackRest could not restore a copy from it; run stanza-upgrade or stanza-create so both repositories list the same database.`,
        'DR_COPY_UNSUPPORTED',
      );
    }
  }

  private async storageOf(repo: number): Promise<RepoStorage> {
    const text = await readPgBackRestConfig(this.setup.cli.options.configPath, this.setup.osUser);
    return repoStorageFrom(text, this.setup.cli.options.stanza, repo);
  }

  /** Every object of the set; backup.manifest and its copy go last. */
  private async copySetObjects(s3From: S3Client, from: RepoStorage, s3To: S3Client, to: RepoStorage, relative: string, progress: RepositoryCopyProgress, onProgress?: (p: RepositoryCopyProgress) => void): Promise<void> {
    const { objects } = await listAll(s3From, from.bucket, from.prefix + relative);
    if (!objects.some((o) => o.key.endsWith('/backup.manifest'))) {
      throw new LifeboatError(`repo${from.repo} holds no backup.manifest under ${relative}: the set is incomplete there, so it is not copied; take a new backup.`, 'BACKUP_NOT_FOUND');
    }
    const isManifest = (o: StoredObject) => /\/backup\.manifest(\.copy)?$/.test(o.key);
    await this.copyObjects(s3From, from, s3To, to, relative, objects.filter((o) => !isManifest(o)), progress, onProgress);
    // The copy, then the manifest itself: the manifest is what makes the set exist for pgBackRest.
    const manifests = objects.filter(isManifest).sort((a, b) => b.key.length - a.key.length);
    for (const m of manifests) await this.copyObjects(s3From, from, s3To, to, relative, [m], progress, onProgress);
  }

  /** The WAL segments from start to stop (inclusive, with the .backup file), and the timeline history files, that the DR bucket lacks. */
  private async copyWal(s3From: S3Client, from: RepoStorage, s3To: S3Client, to: RepoStorage, relative: string, start: string, stop: string, progress: RepositoryCopyProgress, onProgress?: (p: RepositoryCopyProgress) => void): Promise<void> {
    // Only the WAL directories (timeline and high 32 bits of the LSN) the range touches: not the whole archive.
    const root = await listAll(s3From, from.bucket, from.prefix + relative, '/');
    const dirs = root.dirs.filter((d) => {
      const dir = d.slice(d.length - 17, -1);
      return dir >= start.slice(0, 16) && dir <= stop.slice(0, 16);
    });
    const all = [...root.objects];
    for (const d of dirs) all.push(...(await listAll(s3From, from.bucket, d)).objects);
    const name = (o: StoredObject) => o.key.slice(o.key.lastIndexOf('/') + 1);
    const wanted = all.filter((o) => {
      const n = name(o);
      if (/^[0-9A-F]{8}\.history/.test(n)) return true;
      const segment = n.slice(0, 24);
      return /^[0-9A-F]{24}/.test(n) && segment >= start && segment <= stop;
    });
    progress.walSegments += wanted.filter((o) => !name(o).includes('.history')).length;
    await this.copyObjects(s3From, from, s3To, to, relative, wanted, progress, onProgress);
  }

  /** Copies the objects the DR bucket lacks (by key and size), PARALLEL at a time. */
  private async copyObjects(s3From: S3Client, from: RepoStorage, s3To: S3Client, to: RepoStorage, relative: string, objects: StoredObject[], progress: RepositoryCopyProgress, onProgress?: (p: RepositoryCopyProgress) => void): Promise<void> {
    if (objects.length === 0) return;
    const present = new Map((await listAll(s3To, to.bucket, to.prefix + relative)).objects.map((o) => [o.key.slice(to.prefix.length), o.size]));
    const queue = [...objects];
    const worker = async () => {
      for (let o = queue.shift(); o; o = queue.shift()) {
        const key = o.key.slice(from.prefix.length);
        if (present.get(key) === o.size) {
          progress.presentObjects++;
          progress.presentBytes += o.size;
          onProgress?.(progress);
          continue;
        }
        await copyObject(s3From, from.bucket, o, s3To, to.bucket, to.prefix + key);
        progress.copiedObjects++;
        progress.copiedBytes += o.size;
        onProgress?.(progress);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, objects.length) }, worker));
  }

  /** pgBackRest's expire in the DR repository reconstructs backup.info: it adds the copied set (see the module comment). */
  private async register(label: string): Promise<void> {
    const { drRepo, cli, timings } = this.setup;
    try {
      await cli.exec('expire', [`--repo=${drRepo}`, '--log-level-console=warn'], { timeoutMs: timings.commandTimeoutMs });
    } catch (err) {
      throw classifyPgBackRestError(err, `adding the copied set ${label} to repo${drRepo}'s backup.info`);
    }
    const info = await this.repositories.stanzaInfo(drRepo, `checking that repo${drRepo} lists ${label}`);
    if (!info?.backup.some((b) => b.label === label && b.database['repo-key'] === drRepo)) {
      throw new LifeboatError(`pgBackRest did not add the copied set ${label} to repo${drRepo} (its manifest did not match the repository's database or a set it builds on is missing); see the pgBackRest log, then run the backup again.`, 'DR_COPY_NOT_REGISTERED', false);
    }
  }
}

/** The objects under a prefix, and with a delimiter the "directories" directly under it. */
async function listAll(s3: S3Client, bucket: string, prefix: string, delimiter?: string): Promise<{ objects: StoredObject[]; dirs: string[] }> {
  const objects: StoredObject[] = [];
  const dirs: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key && o.Size !== undefined) objects.push({ key: o.Key, size: o.Size });
    for (const d of page.CommonPrefixes ?? []) if (d.Prefix) dirs.push(d.Prefix);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return { objects, dirs };
}

/** A streamed GET -> PUT: the bytes pass through this process once, never whole in memory or on disk. */
async function copyObject(s3From: S3Client, fromBucket: string, object: StoredObject, s3To: S3Client, toBucket: string, toKey: string): Promise<void> {
  try {
    const got = await s3From.send(new GetObjectCommand({ Bucket: fromBucket, Key: object.key }));
    if (object.size <= SINGLE_PUT_BYTES) {
      // One request, streamed straight through: no parts to buffer, create or complete.
      await s3To.send(new PutObjectCommand({ Bucket: toBucket, Key: toKey, Body: got.Body as Readable, ContentLength: object.size }));
      return;
    }
    const upload = new Upload({ client: s3To, params: { Bucket: toBucket, Key: toKey, Body: got.Body as Readable, ContentLength: object.size }, partSize: PART_BYTES, queueSize: 2, leavePartsOnError: false });
    await upload.done();
  } catch (err) {
    throw new LifeboatError(`Copying ${object.key} from ${fromBucket} to ${toBucket} failed (${describeError(err)}); lifeboat retries and copies what is still missing.`, 'DR_COPY_OBJECT_FAILED', false);
  }
}
