/**
 * databaseBackup: one verified backup of a database target in both regions, on record.
 *
 *   preflight (source, engine, RPO) -> start backup -> wait (heartbeats with progress)
 *     -> verify -> copy to the DR region -> wait -> verify the copy -> record -> notify
 *
 * The DR copy is the engine's: pgBackRest either copies the set's objects between the repositories
 * (drCopy: repository-copy, the source read once; the copy activity returns it finished) or takes
 * a second backup into the DR repository. Either way the copy is verified in the DR region and its
 * lag (primary copy complete -> DR copy verified) is recorded with the backup.
 *
 * Names derive from the workflow id, so a retried activity or a restarted worker adopts the
 * backup it started. On any failure the catalog row says failed with the reason, the notifier
 * says what failed and how old the last good backup is, and the workflow fails: it never
 * reports success for a backup that did not verify in both regions.
 */
import { ActivityCancellationType, ActivityOptions, ApplicationFailure, CancellationScope, isCancellation, patched, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { BackupLocation, BackupPreflight, BackupRecord, backupNameFor, DatabaseBackupInput, DatabaseBackupResult, drCopyNameFor, effectiveKind } from '../domain/backup';
import type { BackupHandle, BackupVerification } from '../domain/ports';
import { LifeboatBackupType, LifeboatEnvironment, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { describeFailure } from './failure';
import { formatBytes } from '../domain/format';
import { STEP_HEARTBEAT } from './step-heartbeat';

const QUICK: ActivityOptions = { startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '1 second' } };
const LONG: ActivityOptions = {
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '15 seconds',
  // pgBackRest busy with another backup of the stanza is retried: it waits its turn. The first
  // retry comes at once: after a crashed worker every second of backoff adds to the backup.
  retry: { maximumAttempts: 20, initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};
const quick = proxyActivities<Activities>(QUICK);
const long = proxyActivities<Activities>(LONG);
/** Catalog writes take milliseconds: a worker killed during one must not hold the backup for minutes. */
const RECORD_TIMEOUT = '15 seconds';

const now = () => new Date().getTime();
/** Phases in which a failure is the DR copy's, once the primary copy has verified. */
const DR_PHASES = ['copying to the DR region', 'verifying the DR copy'];

export async function databaseBackup(input: DatabaseBackupInput): Promise<DatabaseBackupResult> {
  const workflowId = workflowInfo().workflowId;
  const startedAt = now();
  let kind = input.kind ?? 'full';
  const pollIntervalMs = input.pollIntervalMs ?? 5000;
  const heartbeatTimeout = input.heartbeatTimeoutMs ?? 15000;
  const name = backupNameFor(workflowId);
  const copyName = drCopyNameFor(name);
  const board = new StatusBoard('database backup', input.target);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'database-backup' },
    { key: LifeboatTarget, value: input.target },
    { key: LifeboatBackupType, value: kind },
  ]);

  const waiting: ActivityOptions = { startToCloseTimeout: '12 hours', heartbeatTimeout };
  const record: BackupRecord = { target: input.target, kind, name, status: 'running', locations: {}, requestedBy: input.requestedBy };
  const save = async (status: BackupRecord['status']) => {
    record.status = status;
    const id = await quick.recordDatabaseBackup.executeWithOptions({ startToCloseTimeout: RECORD_TIMEOUT, summary: `Record ${name} as ${status}` }, [{ ...record }]);
    return id;
  };
  /** Verifies one region's copy; a failed check fails the workflow with the checks that failed. */
  const verify = async (region: 'primary' | 'dr', handle: BackupHandle): Promise<BackupVerification> => {
    const result = await hostLong.verifyDatabaseBackup.executeWithOptions(
      { ...waiting, summary: `Verify ${handle.backupId} in the ${region === 'dr' ? 'DR' : 'primary'} region` },
      [input.target, handle],
    );
    await quick.recordDatabaseBackupVerification.executeWithOptions({ startToCloseTimeout: RECORD_TIMEOUT, summary: `Record the verification of ${handle.backupId}` }, [name, region, handle, result]);
    if (!result.ok) {
      const failed = result.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      throw ApplicationFailure.nonRetryable(`Verification of ${handle.backupId} in the ${region === 'dr' ? 'DR' : 'primary'} region failed (${failed.join(' ')})`, 'BACKUP_VERIFICATION_FAILED');
    }
    const location = record.locations[region];
    if (location) {
      location.verified = true;
      location.verifiedAt = new Date().toISOString();
    }
    return result;
  };
  /** Waits for a backup in one region, heartbeating progress; returns where it ended up. */
  const waitFor = async (region: 'primary' | 'dr', handle: BackupHandle): Promise<BackupLocation> => {
    const done = await hostLong.waitForDatabaseBackup.executeWithOptions(
      {
        ...waiting,
        // On cancel the activity stops pgBackRest: the failure is recorded once that is done.
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary: `Wait for ${handle.name ?? handle.backupId} in the ${region === 'dr' ? 'DR' : 'primary'} region`,
      },
      [input.target, handle, pollIntervalMs, input.stallTimeoutMs],
    );
    const location: BackupLocation = { region, handle: done.handle, verified: false };
    if (done.progress.sizeBytes !== undefined) location.sizeBytes = done.progress.sizeBytes;
    if (done.progress.startedAt) location.startedAt = done.progress.startedAt;
    if (done.progress.completedAt) location.completedAt = done.progress.completedAt;
    return location;
  };

  let phase = 'preflight';
  let preflight: BackupPreflight | undefined;
  let primaryVerified = false;
  // pgBackRest work runs on the target's agent when it has one (the task queue is not part of
  // replay's checks, the lookup is: hence the patch); everything else stays on this queue.
  let hostQuick = quick;
  let hostLong = long;
  try {
    if (patched('host-work-on-agents')) {
      const agentQueue = await quick.hostTaskQueueOf.executeWithOptions({ startToCloseTimeout: RECORD_TIMEOUT, summary: `Find the agent of ${input.target}` }, [input.target]);
      if (agentQueue) {
        hostQuick = proxyActivities<Activities>({ ...QUICK, taskQueue: agentQueue });
        hostLong = proxyActivities<Activities>({ ...LONG, taskQueue: agentQueue });
      }
    }
    // 1. Preflight: reachable, healthy, and how far behind the RPO the target already is.
    board.enter('preflight', `checking ${input.target}, its backup repositories and the age of its last good backup`);
    preflight = await hostQuick.preflightDatabaseBackup.executeWithOptions(
      { startToCloseTimeout: '5 minutes', heartbeatTimeout, summary: `Preflight of ${input.target}` },
      [input.target],
    );
    record.engine = preflight.engine;
    kind = record.kind = effectiveKind(preflight.engine, kind);
    upsertSearchAttributes([
      { key: LifeboatEnvironment, value: preflight.environment },
      { key: LifeboatBackupType, value: kind },
    ]);
    if (!preflight.ok) {
      const problems = preflight.checks.filter((c) => !c.ok && c.name !== 'rpo').map((c) => `${c.name}: ${c.detail}`);
      throw ApplicationFailure.nonRetryable(`Preflight of ${input.target} failed (${problems.join(' ')})`, 'BACKUP_PREFLIGHT_FAILED');
    }

    // 2. Start, and wait for the backup in the primary region.
    phase = 'backing up';
    board.enter('backing-up', `taking ${kind === 'incr' ? 'an' : 'a'} ${kind} backup ${name} of ${input.target}${preflight.rpo.breached ? ` (RPO breached: ${preflight.rpo.detail})` : ''}`);
    const started = await hostLong.startDatabaseBackup.executeWithOptions({ ...waiting, startToCloseTimeout: '30 minutes', summary: `Start ${kind} backup ${name}` }, [input.target, name, kind]);
    record.locations.primary = { region: 'primary', handle: started, verified: false };
    await save('running');
    const primary = await waitFor('primary', started);
    if (patched('record-row-counts-at-backup')) {
      // At once, before anything else: the sooner after the backup's end, the likelier nothing committed in between (see BackupRowCounts).
      await quick.recordBackupRowCounts.executeWithOptions({ startToCloseTimeout: '30 minutes', heartbeatTimeout, summary: `Count the critical tables of ${input.target} right after ${primary.handle.backupId}` }, [
        input.target,
        name,
        primary.handle.backupId,
      ]);
    }
    record.locations.primary = primary;
    await save('running');

    // 3. Verify it.
    phase = 'verifying';
    board.enter('verifying', `verifying ${primary.handle.backupId} (${formatBytes(primary.sizeBytes)})`);
    const primaryVerification = await verify('primary', primary.handle);
    // The primary copy is verified from here on, whatever happens to the DR copy: on record now.
    if (patched('record-verified-primary')) {
      await save('verified');
      primaryVerified = true;
    }

    // 4. Copy it to the DR region, wait, verify the copy.
    phase = 'copying to the DR region';
    // A repository copy runs inside the copy activity (heartbeating), for as long as the set takes to stream.
    const measureLag = patched('dr-copy-lag-and-repository-copy');
    board.enter('copying-to-dr', `copying ${primary.handle.backupId} to the DR region${measureLag ? '' : ` as ${copyName}`}`);
    const copyStarted = await hostLong.copyDatabaseBackupToDr.executeWithOptions(
      { ...waiting, startToCloseTimeout: measureLag ? '12 hours' : '30 minutes', summary: `Copy ${primary.handle.backupId} to the DR region` },
      [input.target, primary.handle, copyName],
    );
    record.locations.dr = { region: 'dr', handle: copyStarted, verified: false };
    await save('running');
    const dr = await waitFor('dr', copyStarted);
    if (measureLag) {
      // A copied set carries the primary's own times: the copy's are what the DR copy took.
      dr.copyMode = copyStarted.copy?.mode ?? 'second-backup';
      if (copyStarted.copy) {
        dr.startedAt = copyStarted.copy.startedAt;
        dr.completedAt = copyStarted.copy.completedAt;
      }
    }
    record.locations.dr = dr;
    phase = 'verifying the DR copy';
    board.enter('verifying-dr-copy', `verifying ${dr.handle.backupId} in the DR region${copyStarted.copy ? ` (copied from the primary repository: ${copyStarted.copy.copiedObjects} objects, ${formatBytes(copyStarted.copy.copiedBytes)})` : ''}`);
    const drVerification = await verify('dr', dr.handle);
    if (measureLag && primary.completedAt && dr.verifiedAt) dr.lagSeconds = Math.max(0, Math.round((Date.parse(dr.verifiedAt) - Date.parse(primary.completedAt)) / 1000));

    // 5. Record and notify.
    phase = 'recording';
    board.enter('recording', `recording ${name} as verified in both regions`);
    const catalogId = await save('verified');
    const durationSeconds = Math.round((now() - startedAt) / 1000);
    phase = 'notifying';
    await quick.notifyDatabaseBackupComplete.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: backup complete' }, [
      { target: input.target, kind, sizeBytes: primary.sizeBytes, primaryId: primary.handle.backupId, drId: dr.handle.backupId, durationSeconds },
    ]);
    board.enter(
      'done',
      `backup complete: ${primary.handle.backupId} (${formatBytes(primary.sizeBytes)}) and its DR copy ${dr.handle.backupId}, verified in ${durationSeconds} s${dr.lagSeconds !== undefined ? `; DR copy lag ${dr.lagSeconds} s (${dr.copyMode})` : ''}`,
    );
    return {
      workflowId,
      target: input.target,
      environment: preflight.environment,
      engine: preflight.engine,
      kind,
      name,
      status: 'verified',
      primary,
      dr,
      verifications: { primary: primaryVerification, dr: drVerification },
      preflight,
      catalogId,
      durationSeconds,
    };
  } catch (err) {
    const cancelled = isCancellation(err);
    const reason = cancelled ? 'the backup workflow was cancelled' : describeFailure(err);
    // A verified primary copy stays verified: what failed after it (the DR copy, a later step) is recorded as such.
    const drFailed = primaryVerified && DR_PHASES.includes(phase);
    const failure = drFailed ? `DR copy failed while ${phase}: ${reason}` : `${phase}: ${reason}`;
    if (drFailed && record.locations.dr) record.locations.dr = { ...record.locations.dr, failed: true };
    await CancellationScope.nonCancellable(async () => {
      board.enter(cancelled ? 'cancelled' : 'failed', failure);
      await quick.reportDatabaseBackupFailure.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Record and notify the failure (${phase})` }, [
        { record: { ...record, status: primaryVerified ? 'verified' : 'failed', failure }, phase, reason },
      ]);
    });
    if (cancelled) throw err;
    if (primaryVerified) {
      const primaryId = record.locations.primary?.handle.backupId ?? name;
      throw ApplicationFailure.create({
        message: drFailed
          ? `Backup ${primaryId} of ${input.target} is verified in the primary region, but its DR copy failed while ${phase}: ${reason}`
          : `Backup ${primaryId} of ${input.target} is verified, but ${phase} failed: ${reason}`,
        type: drFailed ? 'BACKUP_DR_COPY_FAILED' : 'BACKUP_FAILED_AFTER_VERIFICATION',
        nonRetryable: true,
        cause: err as Error,
      });
    }
    throw ApplicationFailure.create({ message: `Backup of ${input.target} failed while ${phase}: ${reason}`, type: 'BACKUP_FAILED', nonRetryable: true, cause: err as Error });
  }
}
