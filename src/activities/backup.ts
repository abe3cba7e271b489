/**
 * Activities of the database backup workflow: preflight (source, engine, RPO), start, wait with
 * progress heartbeats, verify, copy to the DR region, record in the catalog, notify.
 * Every name derives from the workflow id, so a retried activity adopts its own backup.
 */
import { dynamoDbListCells } from '../domain/dynamodb';
import { resolveAlerts } from './alerts';
import { RESOLVED_BY_GOOD_BACKUP } from '../domain/alerts';
import { Context } from '@temporalio/activity';
import { findDatabaseTarget, objectivesFor } from '../config';
import {
  BackupListEntry,
  BackupPreflight,
  BackupRecord,
  DatabaseBackupKind,
  RpoStatus,
} from '../domain/backup';
import { describeError, LifeboatError } from '../domain/errors';
import type { BackupHandle, BackupProgress, BackupVerification, RecoveryPointLag } from '../domain/ports';
import { currentWorkflowId } from './context';
import { cancellationByWorkflow, withHeartbeats } from './heartbeat';
import { Ports } from './ports';
import { repositoryCopyReadiness } from '../engines/pgbackrest/repository-copy';
import { defaultDbOsUser } from '../platform/host';
import { formatAge, formatBytes } from '../domain/format';

/** A running backup whose work stands still this long is hung (injectable per workflow run). */
export const DEFAULT_BACKUP_STALL_MS = 10 * 60 * 1000;

/** The promise's value, or undefined when it takes longer than `ms` (the promise is left to settle). */
async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

interface BackupRow {
  id: string;
  target: string;
  environment: string;
  backup_type: string;
  engine: string;
  engine_backup_id: string;
  status: string;
  locations: BackupRecord['locations'];
  size_bytes: string | null;
  started_at: Date | null;
  completed_at: Date | null;
  verified_at: Date | null;
  workflow_id: string;
  failure: string | null;
  drill_outcome?: string | null;
  drilled_at?: Date | null;
}

/** The newest verified backup of a target made by this engine (any region), from the catalog. */
export async function lastGoodBackup(ports: Ports, target: string, engine: string): Promise<{ at: string; workflowId: string } | undefined> {
  const rows = await ports.catalog.query<{ at: Date; workflow_id: string }>(
    `SELECT coalesce(completed_at, verified_at) AS at, workflow_id FROM backups
     WHERE target = $1 AND engine = $2 AND status = 'verified' AND coalesce(completed_at, verified_at) IS NOT NULL
     ORDER BY coalesce(completed_at, verified_at) DESC LIMIT 1`,
    [target, engine],
  );
  return rows[0] ? { at: rows[0].at.toISOString(), workflowId: rows[0].workflow_id } : undefined;
}

/**
 * The RPO figure that matters: the data the target would lose now. A target with continuous WAL
 * archiving (pgBackRest, RDS with automated backups) loses what is not archived yet, so its figure
 * is the archive's lag; the age of its last backup only says how long a restore replays. A
 * snapshot-only target loses everything since its last backup, so there the age is the figure.
 * Either way a target with no verified backup has nothing to restore onto: breached.
 */
export async function rpoStatus(ports: Ports, targetName: string, now = new Date()): Promise<RpoStatus> {
  const target = findDatabaseTarget(ports.config, targetName);
  const rpoSeconds = objectivesFor(ports.config, target).rpo;
  const last = await lastGoodBackup(ports, target.name, target.engine);
  if (!last) {
    return { rpoSeconds, basis: 'backup-age', breached: true, detail: `${target.name} has no verified backup in the catalog, so its RPO of ${formatAge(rpoSeconds)} is not met.` };
  }
  const ageSeconds = Math.max(0, Math.round((now.getTime() - Date.parse(last.at)) / 1000));
  const base = { rpoSeconds, lastGoodBackupAt: last.at, lastGoodBackupWorkflowId: last.workflowId, ageSeconds };
  let lag: RecoveryPointLag | undefined;
  let lagProblem = '';
  const engine = ports.database(target.name);
  if (engine.recoveryPointLag) {
    try {
      lag = await engine.recoveryPointLag(now);
    } catch (err) {
      lagProblem = ` (the WAL archive could not be read: ${describeError(err)})`;
    }
  }
  if (lag && lag.basis === 'wal-archive') {
    const breached = lag.seconds > rpoSeconds;
    return {
      ...base,
      basis: 'wal-archive',
      lagSeconds: lag.seconds,
      ...(lag.at ? { recoverableUntil: lag.at } : {}),
      breached,
      detail: `${target.name} would lose ${lag.seconds === 0 ? 'no writes' : `the last ${formatAge(lag.seconds)} of writes`} if it failed now, ${breached ? 'beyond' : 'within'} its RPO of ${formatAge(rpoSeconds)}: ${lag.detail} Its last verified backup finished ${formatAge(ageSeconds)} ago (${last.at}).`,
    };
  }
  const breached = ageSeconds > rpoSeconds;
  return {
    ...base,
    basis: 'backup-age',
    breached,
    detail: `The last verified backup of ${target.name} finished ${formatAge(ageSeconds)} ago (${last.at}), ${breached ? 'beyond' : 'within'} its RPO of ${formatAge(rpoSeconds)}${lagProblem}.`,
  };
}

/** A backup stored as one object (a SQLite backup): `store/bucket/key`, or `failed` where its copy failed. */
function objectCell(loc: unknown): string {
  const o = loc as { store?: string; bucket?: string; key?: string; failed?: boolean };
  return o.failed ? 'failed' : `${o.store}/${o.bucket}/${o.key}`;
}

export async function listBackups(ports: Ports, options: { target?: string; limit?: number } = {}): Promise<BackupListEntry[]> {
  const rows = await ports.catalog.query<BackupRow>(
    `SELECT id::text AS id, target, environment, backup_type, engine, engine_backup_id, status, locations, size_bytes::text AS size_bytes,
            started_at, completed_at, verified_at, workflow_id, failure, drill_outcome, drilled_at
     FROM backups WHERE ($1::text IS NULL OR target = $1) AND engine IN ('pgbackrest', 'rds', 'directory-archive', 'sqlite3', 'dynamodb')
     ORDER BY coalesce(completed_at, started_at, created_at) DESC, id DESC LIMIT $2`,
    [options.target ?? null, options.limit ?? 50],
  );
  return rows.map((r) => {
    const e: BackupListEntry = { id: r.id, target: r.target, environment: r.environment, kind: r.backup_type, engine: r.engine, name: r.engine_backup_id, status: r.status, workflowId: r.workflow_id };
    if (r.size_bytes !== null) e.sizeBytes = Number(r.size_bytes);
    if (r.started_at) e.startedAt = r.started_at.toISOString();
    if (r.completed_at) e.completedAt = r.completed_at.toISOString();
    if (r.verified_at) e.verifiedAt = r.verified_at.toISOString();
    if (r.engine === 'dynamodb') Object.assign(e, dynamoDbListCells(r.engine_backup_id, r.locations as unknown as Record<string, { bucket?: string; exportFolder?: string }>));
    else {
      // A directory archive's or SQLite backup's location is its object, not an engine handle.
      if (r.locations?.primary) e.primary = r.locations.primary.handle?.backupId ?? objectCell(r.locations.primary);
      if (r.locations?.dr) e.dr = r.locations.dr.handle?.backupId ?? objectCell(r.locations.dr);
    }
    if (typeof r.locations?.dr?.lagSeconds === 'number') e.drLagSeconds = r.locations.dr.lagSeconds;
    if (r.locations?.dr?.copyMode) e.drCopyMode = r.locations.dr.copyMode;
    if (r.failure) e.failure = r.failure;
    if (r.drill_outcome === 'proven' || r.drill_outcome === 'restore failed') e.drill = { outcome: r.drill_outcome, ...(r.drilled_at ? { at: r.drilled_at.toISOString() } : {}) };
    return e;
  });
}

export function backupActivities(ports: Ports) {
  const { config } = ports;

  const upsert = async (record: BackupRecord): Promise<string> => {
    const target = findDatabaseTarget(config, record.target);
    const primary = record.locations.primary;
    const verifiedAt = record.status === 'verified' ? (record.locations.dr?.verifiedAt ?? primary?.verifiedAt ?? new Date().toISOString()) : null;
    const workflowId = currentWorkflowId();
    const runId = Context.current().info.workflowExecution?.runId ?? null;
    const rows = await ports.catalog.query<{ id: string }>(
      `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, size_bytes, started_at, completed_at, verified_at, workflow_id, run_id, failure, details)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
       ON CONFLICT (workflow_id, engine_backup_id) DO UPDATE SET
         -- A verified backup stays verified: a later failure (a notification) does not make its data bad.
         status = CASE WHEN backups.status = 'verified' AND EXCLUDED.status = 'failed' THEN backups.status ELSE EXCLUDED.status END,
         locations = EXCLUDED.locations, size_bytes = EXCLUDED.size_bytes, started_at = EXCLUDED.started_at,
         completed_at = EXCLUDED.completed_at, verified_at = coalesce(EXCLUDED.verified_at, backups.verified_at),
         run_id = EXCLUDED.run_id, failure = EXCLUDED.failure, details = backups.details || EXCLUDED.details
       RETURNING id::text AS id`,
      [
        target.name,
        target.environment,
        record.kind,
        record.engine ?? target.engine,
        record.name,
        record.status,
        JSON.stringify(record.locations),
        primary?.sizeBytes ?? null,
        primary?.startedAt ?? null,
        primary?.completedAt ?? null,
        verifiedAt,
        workflowId,
        runId,
        record.failure ?? null,
        JSON.stringify({ workflow: 'database-backup', ...(record.requestedBy ? { requestedBy: record.requestedBy } : {}) }),
      ],
    );
    return rows[0].id;
  };

  return {
    /** Is the source reachable, is the engine healthy, how old is the last good backup against the RPO? */
    async preflightDatabaseBackup(targetName: string): Promise<BackupPreflight> {
      const target = findDatabaseTarget(config, targetName);
      const engine = ports.database(target.name);
      const checks: BackupPreflight['checks'] = [];
      let step = 'source';
      const heartbeat = (next: string) => (step = next);
      return withHeartbeats(() => ({ preflight: step }), async (): Promise<BackupPreflight> => {
        try {
          const source = await engine.describeSource();
          const ok = source.status === 'available';
          checks.push({
            name: 'source',
            ok,
            detail: ok
              ? `${source.instanceId} is available${source.endpoint ? ` at ${source.endpoint.host}:${source.endpoint.port}` : ''}${source.engineVersion ? ` (PostgreSQL ${source.engineVersion})` : ''}.`
              : `${source.instanceId} is ${source.status}${source.detail ? `: ${source.detail}` : ''}.`,
          });
        } catch (err) {
          if (err instanceof LifeboatError && err.nonRetryable) throw err;
          checks.push({ name: 'source', ok: false, detail: `The source of ${target.name} cannot be described: ${describeError(err)}` });
        }
        if (target.engine === 'pgbackrest') {
          heartbeat('pgbackrest check');
          // `pgbackrest check` archives a WAL segment into every repository: both regions can take backups.
          const repos = await ports.pgbackrest(target).checkEachRepo([target.primaryRepo, target.drRepo]);
          for (const repo of repos) {
            checks.push({ name: `repo${repo.repo} (${repo.repo === target.primaryRepo ? 'primary' : 'dr'})`, ok: repo.ok, detail: repo.detail });
          }
          if (target.drCopy === 'repository-copy') {
            // Before the source is read: a DR copy that could not be made is refused here, not after the backup.
            const ready = await repositoryCopyReadiness(ports.pgbackrest(target), target.osUser ?? defaultDbOsUser(), target.primaryRepo, target.drRepo);
            checks.push({ name: 'dr-copy', ...ready });
          }
        }
        heartbeat('rpo');
        const rpo = await rpoStatus(ports, target.name);
        checks.push({ name: 'rpo', ok: !rpo.breached, detail: rpo.detail });
        if (rpo.breached) {
          await ports.notifier.notify({
            severity: 'warning',
            title: `RPO breached: ${target.name}`,
            text: `${rpo.detail} A ${target.engine} backup is starting now.`,
            target: target.name,
            workflowId: currentWorkflowId(),
            fields: {
              rpoSeconds: rpo.rpoSeconds,
              basis: rpo.basis,
              ...(rpo.lagSeconds !== undefined ? { archiveLagSeconds: rpo.lagSeconds } : {}),
              ...(rpo.ageSeconds !== undefined ? { lastGoodBackupAgeSeconds: rpo.ageSeconds } : {}),
            },
          });
        }
        // The RPO check reports; it never stops the backup that repairs it.
        const ok = checks.filter((c) => c.name !== 'rpo').every((c) => c.ok);
        return { target: target.name, environment: target.environment, engine: target.engine, ok, checks, rpo };
      });
    },

    /** Starts the backup (or adopts the one an earlier attempt started under the same name). */
    async startDatabaseBackup(targetName: string, name: string, kind: DatabaseBackupKind): Promise<BackupHandle> {
      const engine = ports.database(targetName);
      try {
        return await withHeartbeats(() => ({ starting: name, kind }), () => engine.startBackup({ backupName: name, kind }));
      } catch (err) {
        // Cancelled by the workflow while starting: what it started must not run on unseen.
        const cancelled = cancellationByWorkflow();
        if (!cancelled) throw err;
        await engine.stopBackup?.({ engine: engine.kind, backupId: name, name, location: 'primary' }).catch(() => undefined);
        throw cancelled;
      }
    },

    /**
     * Polls until the backup is complete. Heartbeats come from a timer sized to the heartbeat
     * timeout (a dead worker is noticed within it) and carry the engine's progress for the Web UI.
     * Liveness of the worker is not progress of the backup: when the engine reports the backup's
     * work standing still for `stallMs` (a hung pgBackRest, alive but stuck), the activity stops
     * that process and fails for good with a sentence, instead of waiting out the 12-hour timeout.
     * A cancelled workflow's backup is stopped too. A failed backup is final: a new run takes a new one.
     * Not RDS's waitUntilDBSnapshotAvailable: the wait heartbeats the engine's progress, judges
     * stalls and serves every engine (pgBackRest too), none of which a waiter does.
     */
    async waitForDatabaseBackup(targetName: string, handle: BackupHandle, pollIntervalMs: number, stallMs: number = DEFAULT_BACKUP_STALL_MS): Promise<{ handle: BackupHandle; progress: BackupProgress }> {
      const engine = ports.database(targetName);
      const ctx = Context.current();
      const what = `${handle.name ?? handle.backupId} in ${handle.location}`;
      // The start activity returned this handle: the backup runs (or has just ended) until the engine says otherwise.
      let latest: Record<string, unknown> = { backup: what, state: 'running', detail: `Asking the ${handle.engine} engine how ${what} is doing.` };
      let lastActivity: string | undefined;
      let lastAdvanceAt = Date.now();
      const stalledFor = () => Date.now() - lastAdvanceAt;
      try {
        return await withHeartbeats(
          () => latest,
          async () => {
            for (;;) {
              // A progress call that itself hangs (storage gone) counts against the stall time too.
              const progress = await withinMs(engine.backupProgress(handle), Math.max(stallMs - stalledFor(), pollIntervalMs));
              if (progress) {
                latest = { backup: what, state: progress.state, ...(progress.percent !== undefined ? { percent: progress.percent } : {}), detail: progress.detail };
                if (progress.state === 'complete') return { handle: { ...handle, backupId: progress.backupId ?? handle.backupId }, progress };
                if (progress.state === 'failed') throw new LifeboatError(progress.detail, 'BACKUP_FAILED', true);
                if (progress.activity === undefined || progress.activity !== lastActivity) {
                  lastActivity = progress.activity;
                  lastAdvanceAt = Date.now();
                }
              }
              if (stalledFor() >= stallMs) {
                await engine.stopBackup?.(handle);
                throw new LifeboatError(
                  `The ${handle.engine} backup ${what} made no progress for ${formatAge(Math.round(stalledFor() / 1000))} (its process is alive but neither read, wrote nor computed anything), so lifeboat stopped it and failed this backup; check the backup repository's storage and the pgBackRest log, then run the backup again.`,
                  'BACKUP_STALLED',
                  true,
                );
              }
              if (engine.awaitBackupChange) {
                // Woken by the backup itself (its log, its exit), at the latest after the poll interval.
                await engine.awaitBackupChange(handle, pollIntervalMs, ctx.cancellationSignal);
                if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
              } else await ctx.sleep(pollIntervalMs);
            }
          },
        );
      } catch (err) {
        // Cancelled by the workflow (not a worker shutting down or a timeout): its backup goes too,
        // and the activity reports the cancellation even when it landed inside a pgBackRest call.
        const cancelled = cancellationByWorkflow(ctx);
        if (!cancelled) throw err;
        await engine.stopBackup?.(handle).catch(() => undefined);
        throw cancelled;
      }
    },

    async verifyDatabaseBackup(targetName: string, handle: BackupHandle): Promise<BackupVerification> {
      const engine = ports.database(targetName);
      return withHeartbeats(() => ({ verifying: handle.backupId, location: handle.location }), () => engine.verifyBackup(handle));
    },

    /** Starts the DR copy (adopting one already started under copyName); wait for it with waitForDatabaseBackup. */
    async copyDatabaseBackupToDr(targetName: string, handle: BackupHandle, copyName: string): Promise<BackupHandle> {
      const engine = ports.database(targetName);
      // A copy the engine makes in place (drCopy: repository-copy) reports how far it got in each heartbeat.
      let progress: unknown;
      return withHeartbeats(
        () => ({ copying: handle.backupId, as: copyName, ...(progress ? { progress } : {}) }),
        () => engine.copyToDisasterRecovery(handle, { copyName, onProgress: (p) => (progress = { ...(p as object) }) }),
      );
    },

    /** Writes the backup's catalog row (one per run, keyed by workflow id and name); returns its id. */
    async recordDatabaseBackup(record: BackupRecord): Promise<string> {
      return upsert(record);
    },

    /** One verifications row per region verified; a retried call replaces its own row. */
    async recordDatabaseBackupVerification(backupName: string, region: 'primary' | 'dr', handle: BackupHandle, verification: BackupVerification): Promise<void> {
      const workflowId = currentWorkflowId();
      const subject = `database backup ${backupName} ${region} ${handle.backupId}${handle.locator ? ` (${handle.locator})` : ''}`;
      await ports.catalog.withClient(async (client) => {
        await client.query('BEGIN');
        try {
          const row = await client.query<{ id: string }>('SELECT id::text AS id FROM backups WHERE workflow_id = $1 AND engine_backup_id = $2', [workflowId, backupName]);
          await client.query('DELETE FROM verifications WHERE workflow_id = $1 AND subject = $2', [workflowId, subject]);
          await client.query('INSERT INTO verifications (backup_id, workflow_id, subject, ok, checks) VALUES ($1, $2, $3, $4, $5)', [
            row.rows[0]?.id ?? null,
            workflowId,
            subject,
            verification.ok,
            JSON.stringify(verification.checks),
          ]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      });
    },

    async notifyDatabaseBackupComplete(summary: { target: string; kind: DatabaseBackupKind; sizeBytes?: number; primaryId: string; drId: string; durationSeconds: number }): Promise<void> {
      await ports.notifier.notify({
        severity: 'info',
        title: `Backup complete: ${summary.target} (${summary.kind}, ${formatBytes(summary.sizeBytes)})`,
        text: `Verified ${summary.primaryId} in the primary region and its copy ${summary.drId} in the DR region in ${formatAge(summary.durationSeconds)}.`,
        target: summary.target,
        workflowId: currentWorkflowId(),
        fields: { kind: summary.kind, sizeBytes: summary.sizeBytes ?? -1, primary: summary.primaryId, dr: summary.drId },
      });
      // A verified backup in both regions clears an open "backup failed" alert of the target: its channels hear it resolved.
      await resolveAlerts(ports.config, summary.target, RESOLVED_BY_GOOD_BACKUP, `backup ${summary.primaryId} of ${summary.target} verified in both regions (${currentWorkflowId()})`);
    },

    /**
     * On any failure: the run's catalog row says failed with the reason, and the notifier says
     * what failed and how old the last good backup is. An unknown target has no row to write.
     */
    async reportDatabaseBackupFailure(failure: { record: BackupRecord; phase: string; reason: string }): Promise<void> {
      const { record } = failure;
      let known = true;
      try {
        findDatabaseTarget(config, record.target);
      } catch {
        known = false;
      }
      // A run whose primary copy was verified reports its later failure (the DR copy) without unverifying it.
      const copyFailed = record.status === 'verified' && /DR/.test(failure.phase);
      let age = '';
      if (known) {
        await upsert({ ...record, status: record.status === 'verified' ? 'verified' : 'failed', failure: record.failure ?? `${failure.phase}: ${failure.reason}` });
        const rpo = await rpoStatus(ports, record.target).catch(() => undefined);
        const exposure = rpo?.lagSeconds !== undefined ? `; data at risk now: ${formatAge(rpo.lagSeconds)} (WAL archive lag)` : '';
        age = rpo ? ` Last good backup: ${rpo.lastGoodBackupAt ? `${formatAge(rpo.ageSeconds)} ago (${rpo.lastGoodBackupAt})` : 'none'}${exposure}; RPO ${formatAge(rpo.rpoSeconds)}${rpo.breached ? ', BREACHED' : ''}.` : '';
      }
      await ports.notifier.notify({
        severity: 'critical',
        title: copyFailed
          ? `DR copy FAILED: ${record.target} (${record.kind}) while ${failure.phase}; the primary backup ${record.locations.primary?.handle.backupId ?? record.name} is verified`
          : `Backup FAILED: ${record.target} (${record.kind}) while ${failure.phase}`,
        text: `${failure.reason}${age}`,
        target: record.target,
        workflowId: currentWorkflowId(),
        fields: { phase: failure.phase, backup: record.name },
      });
    },
  };
}
