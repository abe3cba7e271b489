/**
 * Activities of the sqliteBackup and sqliteRestore workflows over the SQLite engine
 * (src/engines/sqlite.ts). What touches the database file (the online copy, read-backs that run
 * `sqlite3`, restores, the destination's checks) runs on the target's host: its agent when it
 * has one (SQLITE_HOST_ACTIVITIES); the copy between buckets and the catalog stay central.
 * Everything is named from the workflow id, so a retried attempt redoes or adopts its own work.
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { findSqliteTarget, SqliteTarget } from '../config';
import { LifeboatError } from '../domain/errors';
import type { ComponentCheck } from '../domain/preflight';
import {
  ChosenSqliteBackup,
  SqliteBackupPlan,
  SqliteBackupReport,
  SqliteBackupResult,
  SqliteCheck,
  SqliteCopyVerification,
  SqliteRestoreDone,
  SqliteRestoreInput,
  SqliteRestoreReport,
  SqliteStoredCopy,
  SQLITE_BACKUP_TYPE,
  SQLITE_ENGINE,
  ValidatedSqliteRestore,
  companionFiles,
  compareTableCounts,
  destinationProblem,
  restoreMarker,
  restoreTempPath,
  sqliteBackupKey,
} from '../domain/sqlite';
import { loadEncryptionKey } from '../engines/crypto-stream';
import { SqliteEngine, SqliteObject, SqliteProgress, checkIntegrity, countRows, sqliteFileProblem } from '../engines/sqlite';
import { recordBackupRow } from './catalog-records';
import { currentWorkflowId } from './context';
import { withHeartbeats } from './heartbeat';
import { logicalBackupName } from './logical-backup';
import { Ports } from './ports';

type Region = 'primary' | 'dr';
const MAX_REASON_CHARS = 2000;

function refuse(message: string, code: Uppercase<string> = 'BAD_INPUT'): never {
  throw new LifeboatError(message, code);
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

/** Why `into` cannot take a restore on this host, or undefined: its directory exists and is writable, nothing is there, and it is not the source. */
export async function destinationProblemOnHost(into: string, source: string): Promise<string | undefined> {
  const onPath = destinationProblem(into, source);
  if (onPath) return onPath;
  const dir = path.dirname(into);
  const st = await fs.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return `--into ${into} is in ${dir}, which is not an existing directory: create it first, or give a path in an existing one.`;
  if (await fs.access(dir, fsConstants.W_OK).then(() => false, () => true)) return `--into ${into} is in ${dir}, which this user cannot write: give a path in a directory it can write.`;
  // The same file reached through a link or another spelling of the directory.
  const [realDir, realSourceDir] = await Promise.all([fs.realpath(dir), fs.realpath(path.dirname(source)).catch(() => path.dirname(source))]);
  if (path.join(realDir, path.basename(into)) === path.join(realSourceDir, path.basename(source))) return `--into ${into} is the source database of this target: a restore never writes over its source, so give a new path.`;
  for (const f of [into, ...companionFiles(into)]) {
    if (await exists(f)) return `--into ${into} already exists${f === into ? '' : ` (as ${path.basename(f)})`}: a SQLite restore only makes a new file, so give a path where nothing is, or move that file away first.`;
  }
  return undefined;
}

export function sqliteActivities(ports: Ports) {
  const { config } = ports;

  const engineOf = (target: SqliteTarget) => new SqliteEngine(loadEncryptionKey(target.encryptionKey));
  const objectAt = (plan: SqliteBackupPlan, region: Region, versionId?: string): SqliteObject => {
    const at = region === 'primary' ? plan.primary : plan.dr;
    return { s3: ports.objectStore(at.store), store: at.store, bucket: at.bucket, key: at.key, ...(versionId ? { versionId } : {}) };
  };
  const beat = <T>(everyMs: number | undefined, work: (onProgress: (p: SqliteProgress) => void) => Promise<T>) => {
    let progress: SqliteProgress = { phase: 'starting', bytes: 0 };
    const started = Date.now();
    return withHeartbeats(
      () => ({ ...progress, seconds: Math.round((Date.now() - started) / 1000) }),
      () => work((p) => (progress = p)),
      everyMs ?? 5000,
    );
  };

  return {
    /** Checks the target and its key before anything is read or written; names the backup after the workflow. */
    async planSqliteBackup(targetName: string): Promise<SqliteBackupPlan> {
      const target = findSqliteTarget(config, targetName);
      loadEncryptionKey(target.encryptionKey);
      const backupName = logicalBackupName(currentWorkflowId());
      return {
        target: target.name,
        environment: target.environment,
        backupName,
        path: target.path,
        primary: { store: target.store, bucket: target.bucket, prefix: target.prefix, key: sqliteBackupKey(target.prefix, target.name, backupName) },
        dr: { store: target.dr.store, bucket: target.dr.bucket, prefix: target.prefix, key: sqliteBackupKey(target.prefix, target.name, backupName) },
      };
    },

    /** On the target's host: the online copy (backup API), integrity_check, row counts, gzip, encryption, upload. */
    async backupSqliteDatabase(plan: SqliteBackupPlan, heartbeatMs?: number): Promise<SqliteBackupResult> {
      const target = findSqliteTarget(config, plan.target);
      return beat(heartbeatMs, (onProgress) => engineOf(target).backup({ source: target.path, target: plan.target, backupName: plan.backupName, to: objectAt(plan, 'primary'), onProgress }));
    },

    /** On the target's host: a stored copy read back end to end (hashes, decryption, integrity_check, row counts). */
    async verifySqliteBackup(plan: SqliteBackupPlan, region: Region, copy: SqliteStoredCopy, made: SqliteBackupResult, heartbeatMs?: number): Promise<SqliteCopyVerification> {
      const target = findSqliteTarget(config, plan.target);
      const checks = await beat(heartbeatMs, (onProgress) =>
        engineOf(target).verify({ ...objectAt(plan, region, copy.versionId), target: plan.target, backupName: plan.backupName }, { sha256: copy.sha256, databaseSha256: made.databaseSha256, tables: made.tables }, onProgress),
      );
      return { ok: checks.every((c) => c.ok), store: copy.store, key: copy.key, checks };
    },

    /** The primary copy streamed to the DR bucket, byte for byte (its hash checked on the way). */
    async copySqliteBackupToDr(plan: SqliteBackupPlan, primary: SqliteBackupResult, heartbeatMs?: number): Promise<SqliteStoredCopy> {
      const target = findSqliteTarget(config, plan.target);
      return beat(heartbeatMs, (onProgress) => engineOf(target).copy(objectAt(plan, 'primary', primary.versionId), objectAt(plan, 'dr'), primary.sha256, onProgress));
    },

    /** The catalog row (backup_type `sqlite`), with the snapshot's row counts, and a verification row per region. */
    async recordSqliteBackup(plan: SqliteBackupPlan, report: SqliteBackupReport, startedAt: string): Promise<string> {
      const info = Context.current().info;
      const now = new Date().toISOString();
      const location = (c: SqliteStoredCopy | undefined, at: SqliteBackupPlan['primary'], failed: boolean) =>
        c && !failed ? { store: c.store, bucket: c.bucket, key: c.key, ...(c.versionId ? { versionId: c.versionId } : {}) } : { store: at.store, bucket: at.bucket, key: at.key, failed: true };
      const verified = report.outcome === 'verified';
      const p = report.primary;
      return recordBackupRow(
        ports.catalog,
        {
          target: plan.target,
          environment: plan.environment,
          backupType: SQLITE_BACKUP_TYPE,
          engine: SQLITE_ENGINE,
          engineBackupId: plan.backupName,
          status: verified ? 'verified' : 'failed',
          locations: { primary: location(p, plan.primary, !p), dr: location(report.dr, plan.dr, !verified) },
          sizeBytes: p?.sizeBytes,
          checksums: p ? { sha256: p.sha256, databaseSha256: p.databaseSha256, keyId: p.keyId } : {},
          startedAt,
          completedAt: p?.createdAt ?? now,
          verifiedAt: verified ? now : undefined,
          workflowId: currentWorkflowId(),
          runId: info.workflowExecution?.runId,
          failure: report.failure,
          details: p
            ? { path: plan.path, databaseBytes: p.databaseBytes, tables: p.tables, integrity: p.integrity, journalMode: p.journalMode, format: 'sqlite3 .backup (online backup API), gzip, lifeboat-enc-v2 (AES-256-GCM)' }
            : { path: plan.path },
        },
        report.verifications.map((v) => ({ subject: `sqlite backup ${v.store}:${v.key}`, result: { ok: v.ok, checks: v.checks } })),
      );
    },

    /** Everything that can be checked centrally before anything is made: the target, the reason, the path's form, the backup in the catalog. */
    async validateSqliteRestore(input: SqliteRestoreInput, workflowId: string): Promise<ValidatedSqliteRestore> {
      const target = findSqliteTarget(config, input.target);
      if (!input.reason?.trim()) refuse('A restore needs a reason, for the record: pass --reason.');
      if (input.reason.length > MAX_REASON_CHARS) refuse(`The reason is ${input.reason.length} characters long, over the ${MAX_REASON_CHARS} lifeboat keeps on record: say it in a paragraph and link the details.`);
      const problem = destinationProblem(input.into, target.path);
      if (problem) refuse(problem);
      const rows = await ports.catalog.query<{ id: string; engine_backup_id: string; locations: Record<string, { store: string; bucket: string; key: string; versionId?: string; failed?: boolean }>; completed_at: Date | null; size_bytes: string | null; checksums: Record<string, string>; details: { tables?: Record<string, number>; databaseBytes?: number } }>(
        `SELECT id::text AS id, engine_backup_id, locations, completed_at, size_bytes::text AS size_bytes, checksums, details FROM backups
          WHERE target = $1 AND backup_type = $3 AND status = 'verified' AND ($2 = 'latest' OR id::text = $2 OR engine_backup_id = $2)
          ORDER BY completed_at DESC NULLS LAST, id DESC LIMIT 1`,
        [target.name, input.backup, SQLITE_BACKUP_TYPE],
      );
      if (!rows.length) {
        refuse(
          input.backup === 'latest'
            ? `Target ${target.name} has no verified SQLite backup in the catalog: take one with \`lifeboat backup ${target.name} --wait\`.`
            : `There is no verified backup "${input.backup}" of SQLite target ${target.name} in the catalog: give an id from \`lifeboat backups list --target ${target.name}\`, or latest.`,
          'BACKUP_NOT_FOUND',
        );
      }
      const row = rows[0];
      const region = input.fromRegion ?? 'primary';
      const loc = row.locations[region];
      if (!loc || loc.failed) refuse(`Backup ${row.id} of ${target.name} has no good copy in the ${region} region: restore from the other region (--from-region).`, 'BACKUP_NOT_FOUND');
      const backup: ChosenSqliteBackup = {
        catalogId: row.id,
        backupName: row.engine_backup_id,
        store: loc.store,
        bucket: loc.bucket,
        key: loc.key,
        ...(loc.versionId ? { versionId: loc.versionId } : {}),
        createdAt: row.completed_at?.toISOString() ?? '',
        sizeBytes: Number(row.size_bytes ?? 0),
        keyId: row.checksums.keyId ?? '',
        databaseBytes: Number(row.details.databaseBytes ?? 0),
        databaseSha256: row.checksums.databaseSha256 ?? '',
        tables: row.details.tables ?? {},
      };
      const t = input.timings ?? {};
      return {
        target: target.name,
        environment: target.environment,
        workflowId,
        backup,
        source: target.path,
        into: path.resolve(input.into),
        tempPath: restoreTempPath(path.resolve(input.into), workflowId),
        timings: {
          remindAfterMs: t.remindAfterMs ?? config.approvals.remindAfter * 1000,
          abortAfterMs: t.abortAfterMs ?? config.approvals.abortAfter * 1000,
          heartbeatMs: t.heartbeatMs ?? 5000,
        },
      };
    },

    /** On the target's host, before the gate: the destination's directory, that nothing is there, and that it is not the source. */
    async checkSqliteRestoreDestination(v: ValidatedSqliteRestore): Promise<void> {
      const problem = await destinationProblemOnHost(v.into, v.source);
      if (problem) refuse(problem, 'DESTINATION_EXISTS');
    },

    /**
     * On the target's host: download, decrypt and gunzip into the run's temporary file beside the
     * destination, check it (bytes as backed up, integrity_check, row counts as at backup time),
     * then link it to the destination (which fails if anything appeared there) and drop the name.
     */
    async restoreSqliteBackup(v: ValidatedSqliteRestore): Promise<SqliteRestoreDone> {
      const target = findSqliteTarget(config, v.target);
      const started = Date.now();
      // An earlier attempt killed between link() and removing the temporary name: both names are
      // the same file, which passed every check before it was linked; only the temporary name goes.
      if ((await exists(v.into)) && (await exists(v.tempPath)) && (await sameFile(v.into, v.tempPath))) await fs.rm(v.tempPath, { force: true });
      // An earlier attempt of this run that got as far as the rename: adopt it when it is the backup's bytes.
      if ((await exists(v.into)) && !(await exists(v.tempPath))) {
        const { sha256, bytes } = await withHeartbeats(() => ({ phase: 'hashing', path: v.into }), () => hashFile(v.into), v.timings.heartbeatMs);
        if (sha256 === v.backup.databaseSha256) {
          return { path: v.into, bytes, sha256, durationMs: 0, checks: [{ name: 'database SHA-256', ok: true, detail: `${bytes} bytes, as backed up (put in place by an earlier attempt of this run)` }], adopted: true };
        }
        refuse(`${v.into} appeared while the restore ran and is not this restore's file: lifeboat leaves it alone; restore to another new path.`, 'DESTINATION_EXISTS');
      }
      await removeOwn(v);
      const checks: SqliteCheck[] = [];
      const got = await withHeartbeats(
        () => ({ phase: 'downloading', into: v.tempPath }),
        () =>
          new SqliteEngine(loadEncryptionKey(target.encryptionKey)).download(
            { s3: ports.objectStore(v.backup.store), store: v.backup.store, bucket: v.backup.bucket, key: v.backup.key, ...(v.backup.versionId ? { versionId: v.backup.versionId } : {}), target: v.target, backupName: v.backup.backupName },
            v.tempPath,
          ),
        v.timings.heartbeatMs,
      );
      checks.push({ name: 'database SHA-256', ok: got.sha256 === v.backup.databaseSha256, detail: got.sha256 === v.backup.databaseSha256 ? `${got.bytes} bytes, byte for byte the online copy` : `${got.sha256.slice(0, 16)}… differs from the online copy's ${v.backup.databaseSha256.slice(0, 16)}…` });
      // integrity_check and the counts read the whole file: heartbeats keep a big one's step alive.
      await withHeartbeats(
        () => ({ phase: 'checking', path: v.tempPath }),
        async () => {
          checks.push(await checkIntegrity(v.tempPath));
          checks.push(...compareTableCounts(v.backup.tables, await countRows(v.tempPath)));
        },
        v.timings.heartbeatMs,
      );
      const failed = checks.filter((c) => !c.ok);
      if (failed.length) {
        throw new LifeboatError(`The restored copy of ${v.backup.backupName} fails its checks (${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')}); nothing was put at ${v.into}.`, 'VERIFICATION_FAILED');
      }
      for (const f of companionFiles(v.tempPath)) await fs.rm(f, { force: true });
      try {
        await fs.link(v.tempPath, v.into);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') refuse(`${v.into} appeared while the restore ran: lifeboat leaves it alone; restore to another new path.`, 'DESTINATION_EXISTS');
        throw err;
      }
      await fs.rm(v.tempPath, { force: true });
      return { path: v.into, bytes: got.bytes, sha256: got.sha256, durationMs: Date.now() - started, checks, adopted: false };
    },

    /** Compensation, on the target's host: removes this run's temporary file (and SQLite's companions of it), nothing else. */
    async removeSqliteRestore(v: ValidatedSqliteRestore): Promise<string[]> {
      const removed = await removeOwn(v);
      return [removed.length ? `removed ${removed.join(', ')}, made by this restore` : `nothing of this restore was left at ${path.dirname(v.into)}`];
    },

    async recordSqliteRestoreReport(report: SqliteRestoreReport): Promise<void> {
      await ports.catalog.query(
        `INSERT INTO restores (workflow_id, target, outcome, restore_point, destination, requested_by, report) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (workflow_id) DO UPDATE SET outcome = EXCLUDED.outcome, destination = EXCLUDED.destination, report = EXCLUDED.report`,
        [report.workflowId, report.target, report.outcome, `sqlite:${report.backup?.backupName ?? 'unresolved'}`, report.into ?? null, report.requestedBy, JSON.stringify(report)],
      );
    },

    /** Preflight, on the target's host: the file exists, is a SQLite database, and its tables can be read and counted. */
    async checkSqliteSource(targetName: string): Promise<ComponentCheck> {
      const target = findSqliteTarget(config, targetName);
      const component = `sqlite ${target.name}`;
      const problem = await sqliteFileProblem(target.path);
      if (problem) return { component, ok: false, detail: `${problem}: fix the target's path in targets.sqlite, or the file's permissions` };
      try {
        const tables = await countRows(target.path);
        return { component, ok: true, detail: `${target.path} reads as a SQLite database (${Object.keys(tables).length} tables)` };
      } catch (err) {
        return { component, ok: false, detail: (err as Error).message };
      }
    },
  };
}

/** This run's temporary file and SQLite's companions of it, removed; returns what was there. */
async function removeOwn(v: ValidatedSqliteRestore): Promise<string[]> {
  const marker = restoreMarker(v.workflowId);
  const removed: string[] = [];
  for (const f of [v.tempPath, ...companionFiles(v.tempPath)]) {
    // Only names carrying this run's marker; the destination itself is never removed.
    if (!path.basename(f).includes(marker)) continue;
    if (await exists(f)) {
      await fs.rm(f, { force: true });
      removed.push(f);
    }
  }
  return removed;
}

/** Whether two names are links to one file (same device and inode). */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([fs.stat(a), fs.stat(b)]);
  return x.dev === y.dev && x.ino === y.ino;
}

async function hashFile(file: string): Promise<{ sha256: string; bytes: number }> {
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256');
  let bytes = 0;
  const handle = await fs.open(file, 'r');
  try {
    for await (const chunk of handle.createReadStream()) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  return { sha256: hash.digest('hex'), bytes };
}
