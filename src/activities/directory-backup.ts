/**
 * Activities of the directoryBackup workflow (src/workflows/directory-backup.ts): plan, archive
 * the directory on its host (manifest, gzip, lifeboat-enc-v2 bound to kind=directory, the target
 * and the backup id, multipart upload), verify a stored copy (object SHA-256, manifest SHA-256,
 * every file's SHA-256, critical files), copy to the DR region, record. The object key comes from
 * the workflow id, so a retried activity writes (or reads) the same object.
 */
import os from 'node:os';
import { Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { Context } from '@temporalio/activity';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DirectoryTarget, findDirectoryTarget } from '../config';
import { LifeboatError } from '../domain/errors';
import {
  DIRECTORY_BINDING_KIND,
  directoryArchiveKey,
  directoryBackupId,
  DirectoryBackupPlan,
  DirectoryBackupReport,
  DirectoryCheck,
  DirectoryLocation,
  DirectoryManifest,
  DirectoryVerification,
  firstFew,
  StoredDirectoryArchive,
} from '../domain/directory-backup';
import { archiveStream, checkArchive, DIRECTORY_ARCHIVE_FORMAT, manifestSha256, scanDirectory } from '../engines/directory-archive';
import { createDecryptStream, createEncryptStream, EncryptionKey, loadEncryptionKey, Sha256Meter, uploadFromStreams } from '../engines/crypto-stream';
import { recordBackupRow } from './catalog-records';
import { currentWorkflowId } from './context';
import { withHeartbeats } from './heartbeat';
import { Ports } from './ports';

type Region = 'primary' | 'dr';
const MIB = 1024 * 1024;

export function hostOfDirectory(t: DirectoryTarget): string {
  return t.host ?? t.agent ?? os.hostname();
}

/** The binding an archive of `target`'s backup `backupId` carries. */
export function directoryBinding(target: string, backupId: string) {
  return { kind: DIRECTORY_BINDING_KIND, target, backupName: backupId };
}

/** A stored archive's bytes as a stream. */
export async function readStoredArchive(s3: S3Client, loc: DirectoryLocation): Promise<Readable> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
    return out.Body as Readable;
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404) throw new LifeboatError(`The directory archive ${loc.key} is not in ${loc.store}/${loc.bucket}: pick another backup from \`lifeboat backups list\`.`, 'BACKUP_NOT_FOUND');
    throw err;
  }
}

/** Decrypted, gunzipped archive bytes of a stored archive, with the stored object's SHA-256 metered on the way. */
export async function openArchive(s3: S3Client, loc: DirectoryLocation, key: EncryptionKey, binding: ReturnType<typeof directoryBinding>): Promise<{ plain: Readable; meter: Sha256Meter }> {
  const body = await readStoredArchive(s3, loc);
  const meter = new Sha256Meter();
  const decrypt = createDecryptStream(key, { expect: binding });
  const gunzip = createGunzip();
  const fail = (err: Error) => gunzip.destroy(err);
  body.on('error', fail);
  meter.on('error', fail);
  decrypt.on('error', fail);
  body.pipe(meter).pipe(decrypt).pipe(gunzip);
  return { plain: gunzip, meter };
}

export function directoryBackupActivities(ports: Ports) {
  const { config } = ports;
  const keyOf = (t: DirectoryTarget) => loadEncryptionKey(t.encryptionKey);

  const locationOf = (plan: DirectoryBackupPlan, region: Region) => (region === 'primary' ? plan.primary : plan.dr);

  return {
    /** Checks the config and the key before anything is read; names the backup after the workflow. */
    async planDirectoryBackup(targetName: string): Promise<DirectoryBackupPlan> {
      const t = findDirectoryTarget(config, targetName);
      const key = keyOf(t);
      const backupId = directoryBackupId(currentWorkflowId());
      return {
        target: t.name,
        environment: t.environment,
        backupId,
        host: hostOfDirectory(t),
        path: t.path,
        keyId: key.keyId,
        primary: { store: t.store, bucket: t.bucket, key: directoryArchiveKey(t.prefix, t.name, backupId) },
        dr: { store: t.dr.store, bucket: t.dr.bucket, key: directoryArchiveKey(t.prefix, t.name, backupId) },
        criticalFiles: [...t.criticalFiles],
      };
    },

    /** On the directory's host: manifest, archive, gzip, encrypt, upload to the primary region. */
    async archiveDirectory(plan: DirectoryBackupPlan, heartbeatMs?: number): Promise<StoredDirectoryArchive> {
      const t = findDirectoryTarget(config, plan.target);
      const key = keyOf(t);
      let progress = { phase: 'listing', files: 0, bytes: 0 };
      return withHeartbeats(
        () => progress,
        async () => {
          let scanned;
          try {
            scanned = await scanDirectory(plan.path);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code === 'ENOENT' || code === 'ENOTDIR') throw new LifeboatError(`The directory ${plan.path} of ${plan.target} does not exist on ${plan.host}: correct targets.directories[].path, or create it.`, 'DIRECTORY_NOT_FOUND');
            if (code === 'EACCES' || code === 'EPERM') throw new LifeboatError(`The worker on ${plan.host} cannot read ${(err as NodeJS.ErrnoException).path ?? plan.path} (${code}): run it as a user that can read all of ${plan.path} (root for system configuration).`, 'DIRECTORY_UNREADABLE');
            throw err;
          }
          if (scanned.entries[0]?.type !== 'dir') throw new LifeboatError(`${plan.path} of ${plan.target} is not a directory: point targets.directories[].path at one.`, 'DIRECTORY_NOT_FOUND');
          const files = new Set(scanned.entries.filter((e) => e.type === 'file').map((e) => e.path));
          const missing = plan.criticalFiles.filter((f) => !files.has(f));
          if (missing.length) throw new LifeboatError(`${plan.path} on ${plan.host} lacks the critical files ${firstFew(missing, 5)}, so it is not backed up: restore them, or correct criticalFiles of ${plan.target}.`, 'CRITICAL_FILES_MISSING');
          const manifest: DirectoryManifest = {
            format: DIRECTORY_ARCHIVE_FORMAT,
            target: plan.target,
            backupId: plan.backupId,
            source: plan.path,
            host: plan.host,
            createdAt: new Date().toISOString(),
            entries: scanned.entries,
            skipped: scanned.skipped,
          };
          const fileEntries = scanned.entries.filter((e) => e.type === 'file');
          const contentBytes = fileEntries.reduce((n, e) => n + (e.size ?? 0), 0);
          progress = { phase: 'archiving', files: fileEntries.length, bytes: 0 };
          const meter = new Sha256Meter((bytes) => (progress = { ...progress, bytes }));
          const outcome = await uploadFromStreams({
            s3: ports.objectStore(plan.primary.store),
            bucket: plan.primary.bucket,
            key: plan.primary.key,
            contentType: 'application/octet-stream',
            metadata: { 'lifeboat-format': `${DIRECTORY_ARCHIVE_FORMAT}+gzip+lifeboat-enc-v2`, 'lifeboat-target': plan.target, 'lifeboat-backup': plan.backupId, 'lifeboat-key-id': key.keyId },
            streams: [archiveStream(plan.path, manifest), createGzip(), createEncryptStream(key, { binding: directoryBinding(plan.target, plan.backupId) }), meter],
            partSize: 8 * MIB,
            queueSize: 2,
          });
          if (!outcome.ok) throw outcome.error;
          return {
            store: plan.primary.store,
            bucket: plan.primary.bucket,
            key: plan.primary.key,
            sizeBytes: meter.bytes,
            sha256: meter.sha256,
            manifestSha256: manifestSha256(manifest),
            files: fileEntries.length,
            dirs: scanned.entries.filter((e) => e.type === 'dir').length,
            symlinks: scanned.entries.filter((e) => e.type === 'symlink').length,
            contentBytes,
            skipped: scanned.skipped,
            keyId: key.keyId,
          };
        },
        heartbeatMs ?? 5000,
      );
    },

    /** Reads a stored copy back end to end: object SHA-256, decryption (binding), manifest SHA-256, every file's SHA-256, critical files. */
    async verifyDirectoryArchive(plan: DirectoryBackupPlan, region: Region, expected: { sha256: string; manifestSha256: string }): Promise<DirectoryVerification> {
      const t = findDirectoryTarget(config, plan.target);
      const loc = locationOf(plan, region);
      return withHeartbeats(
        () => ({ phase: `verifying the ${region} copy` }),
        async () => {
          const checks: DirectoryCheck[] = [];
          const { plain, meter } = await openArchive(ports.objectStore(loc.store), loc, keyOf(t), directoryBinding(plan.target, plan.backupId));
          let result: Awaited<ReturnType<typeof checkArchive>>;
          try {
            result = await checkArchive(plain);
          } catch (err) {
            checks.push({ name: 'archive-readable', ok: false, detail: (err as Error).message });
            return { ok: false, store: loc.store, key: loc.key, checks };
          }
          checks.push({ name: 'object-sha256', ok: meter.sha256 === expected.sha256, detail: `${meter.sha256.slice(0, 16)}… over ${meter.bytes} bytes${meter.sha256 === expected.sha256 ? '' : `, expected ${expected.sha256.slice(0, 16)}…`}` });
          const got = manifestSha256(result.manifest);
          checks.push({ name: 'manifest-sha256', ok: got === expected.manifestSha256, detail: `${got.slice(0, 16)}…${got === expected.manifestSha256 ? '' : `, expected ${expected.manifestSha256.slice(0, 16)}…`}` });
          checks.push({ name: 'files-sha256', ok: result.mismatches.length === 0, detail: result.mismatches.length ? `differ from the manifest: ${firstFew(result.mismatches, 5)}` : `${result.files} files (${result.bytes} bytes) match the manifest` });
          const files = new Set(result.manifest.entries.filter((e) => e.type === 'file').map((e) => e.path));
          const missing = plan.criticalFiles.filter((f) => !files.has(f));
          checks.push({ name: 'critical-files', ok: missing.length === 0, detail: missing.length ? `missing: ${firstFew(missing, 5)}` : `${plan.criticalFiles.length} present` });
          return { ok: checks.every((c) => c.ok), store: loc.store, key: loc.key, checks };
        },
      );
    },

    /** Copies the stored object to the DR region's bucket as it is (same bytes, same binding); refused when the bytes read differ from what was stored. */
    async copyDirectoryArchiveToDr(plan: DirectoryBackupPlan, primary: StoredDirectoryArchive): Promise<StoredDirectoryArchive> {
      const body = await readStoredArchive(ports.objectStore(plan.primary.store), plan.primary);
      const meter = new Sha256Meter(undefined, (sha) => {
        if (sha !== primary.sha256) throw new LifeboatError(`The archive read from ${plan.primary.store} hashes to ${sha.slice(0, 16)}…, not ${primary.sha256.slice(0, 16)}… as stored, so it is not copied; take a new backup.`, 'VERIFICATION_FAILED');
      });
      const outcome = await withHeartbeats(
        () => ({ phase: 'copying to the DR region', bytes: meter.bytes }),
        () =>
          uploadFromStreams({
            s3: ports.objectStore(plan.dr.store),
            bucket: plan.dr.bucket,
            key: plan.dr.key,
            contentType: 'application/octet-stream',
            metadata: { 'lifeboat-format': `${DIRECTORY_ARCHIVE_FORMAT}+gzip+lifeboat-enc-v2`, 'lifeboat-target': plan.target, 'lifeboat-backup': plan.backupId, 'lifeboat-key-id': primary.keyId },
            streams: [body, meter],
            partSize: 8 * MIB,
            queueSize: 2,
          }),
      );
      if (!outcome.ok) throw outcome.error;
      return { ...primary, store: plan.dr.store, bucket: plan.dr.bucket, key: plan.dr.key };
    },

    /** Preflight, on the directory's host: it exists, every entry is readable, the critical files are there. */
    async checkDirectory(targetName: string): Promise<{ ok: boolean; checks: DirectoryCheck[] }> {
      const t = findDirectoryTarget(config, targetName);
      const checks: DirectoryCheck[] = [];
      try {
        const scanned = await scanDirectory(t.path);
        const isDir = scanned.entries[0]?.type === 'dir';
        checks.push({ name: 'directory-readable', ok: isDir, detail: isDir ? `${t.path} on ${hostOfDirectory(t)}: ${scanned.entries.length} entries read` : `${t.path} is not a directory` });
        const files = new Set(scanned.entries.filter((e) => e.type === 'file').map((e) => e.path));
        const missing = t.criticalFiles.filter((f) => !files.has(f));
        checks.push({ name: 'critical-files', ok: missing.length === 0, detail: missing.length ? `missing in ${t.path}: ${firstFew(missing, 5)}` : `${t.criticalFiles.length} present` });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        checks.push({ name: 'directory-readable', ok: false, detail: `${e.path ?? t.path} cannot be read on ${hostOfDirectory(t)} (${e.code ?? e.message})` });
      }
      try {
        keyOf(t);
        checks.push({ name: 'encryption-key', ok: true, detail: 'the key loads' });
      } catch (err) {
        checks.push({ name: 'encryption-key', ok: false, detail: (err as Error).message });
      }
      return { ok: checks.every((c) => c.ok), checks };
    },

    /** The catalog row (backup_type `directory`) and one verification row per region. */
    async recordDirectoryBackup(plan: DirectoryBackupPlan, report: DirectoryBackupReport, startedAt: string): Promise<string> {
      const info = Context.current().info;
      const now = new Date().toISOString();
      const primaryVerified = report.verifications.some((v) => v.store === plan.primary.store && v.ok);
      const verified = report.outcome === 'verified' || primaryVerified;
      const copyFailed = report.outcome !== 'verified' && primaryVerified;
      const p = report.primary;
      return recordBackupRow(
        ports.catalog,
        {
          target: plan.target,
          environment: plan.environment,
          backupType: 'directory',
          engine: 'directory-archive',
          engineBackupId: plan.backupId,
          status: verified ? 'verified' : 'failed',
          locations: {
            primary: { ...plan.primary, ...(p ? {} : { failed: true }) },
            dr: { ...plan.dr, ...(report.outcome === 'verified' ? {} : { failed: true }) },
          },
          sizeBytes: p?.sizeBytes,
          checksums: p ? { sha256: p.sha256, manifestSha256: p.manifestSha256, keyId: p.keyId } : {},
          startedAt,
          completedAt: now,
          verifiedAt: verified ? now : undefined,
          workflowId: currentWorkflowId(),
          runId: info.workflowExecution?.runId,
          failure: copyFailed ? `DR copy failed: ${report.failure ?? 'unknown reason'}` : report.failure,
          details: {
            host: plan.host,
            path: plan.path,
            format: `${DIRECTORY_ARCHIVE_FORMAT}, gzip, lifeboat-enc-v2 (AES-256-GCM)`,
            ...(p ? { files: p.files, dirs: p.dirs, symlinks: p.symlinks, contentBytes: p.contentBytes, skipped: p.skipped } : {}),
          },
        },
        report.verifications.map((v) => ({ subject: `directory archive ${v.store}:${v.key}`, result: { ok: v.ok, checks: v.checks } })),
      );
    },
  };
}
