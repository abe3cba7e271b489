/**
 * The files branch of restoreDrill (src/workflows/restore-drill.ts): proves that a bucket
 * target's backup set restores. Once the set is chosen, the drill makes a scratch bucket of its
 * own (`drill-<workflow id>`, in the store the set is restored from, tagged with this run as its
 * owner), restores every object of the set into it, checks the bucket against the set's manifest
 * (keys, count and bytes; SHA-256 of every object, or of a sample above the target's
 * `drill.hashAllUpTo`; content type and metadata), then empties and deletes the bucket whatever
 * happened (success, failure, cancel), and publishes the report as evidence like a database
 * drill. A failed drill is a critical notification and marks the backup "restore failed".
 *
 * Not a workflow of its own: restoreDrill calls it, so its histories are restoreDrill's.
 */
import { ActivityCancellationType, CancellationScope, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DrillSelection, RestoreDrillInput, RestoreDrillResult } from '../domain/drill';
import { DrillReport, DrillStep, DrillValidation, rtoPhases } from '../domain/drill-report';
import { DrillBucket, drillBucketName, FILES_DRILL_CHECKS, FilesDrillRestore } from '../domain/files-drill';
import { formatBytes } from '../domain/format';
import { describeFailure, failureType } from './failure';
import type { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '1 second' } });
const long = proxyActivities<Activities>({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 3, initialInterval: '5 seconds' } });

/** The workflow clock (deterministic on replay). */
const now = () => new Date().getTime();

/** What restoreDrill hands over after choosing the backup: its status board, its start, and the steps measured so far (selecting). */
export interface DrillRun {
  board: StatusBoard;
  startedAt: string;
  steps: DrillStep[];
}

export async function filesDrill(input: RestoreDrillInput, selection: DrillSelection, run: DrillRun): Promise<RestoreDrillResult> {
  const info = workflowInfo();
  const { board, startedAt, steps } = run;
  const files = selection.files!;
  const issues: string[] = [];
  let current: { phase: string; startedMs: number } | undefined;
  const begin = (phase: string, note: string) => {
    board.enter(phase, note);
    current = { phase, startedMs: now() };
  };
  const end = (detail: string) => {
    if (!current) return;
    steps.push({ phase: current.phase, startedAt: new Date(current.startedMs).toISOString(), seconds: Math.round((now() - current.startedMs) / 1000), detail });
    current = undefined;
  };
  board.rtoTargetSeconds = files.rtoObjectiveSeconds;
  const planned = drillBucketName(info.workflowId);

  let bucket: DrillBucket | undefined;
  let restored: FilesDrillRestore | undefined;
  const validations: DrillValidation[] = [];
  let failure: string | undefined;
  let cancellation: unknown;
  let bucketAttempted = false;
  let provenMs: number | undefined;
  try {
    begin('preparing', `making the scratch bucket ${planned} in ${files.store}, owned by this run`);
    bucketAttempted = true;
    bucket = await quick.createFilesDrillBucket.executeWithOptions({ startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 5, initialInterval: '1 second' }, summary: `Make the scratch bucket ${planned}` }, [selection]);
    end(`scratch bucket ${bucket.bucket} ${bucket.adopted ? 'adopted (made by an earlier attempt of this run)' : 'made'} in ${bucket.store}, tagged with run ${info.runId} as its owner`);

    begin('restoring', `restoring backup ${selection.backupId} (${files.objects ?? '?'} objects) from ${files.store}/${files.bucket} into ${bucket.bucket}`);
    restored = await long.restoreFilesIntoDrillBucket.executeWithOptions(
      { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Restore ${selection.backupId} into ${bucket.bucket}` },
      [selection, bucket],
    );
    end(`${restored.objects} objects (${formatBytes(restored.bytes)}) restored into ${bucket.bucket}, each hashed against the manifest as it streamed${restored.skippedDeleted ? `; ${restored.skippedDeleted} deleted before the backup, not restored` : ''}`);

    for (const check of FILES_DRILL_CHECKS) {
      begin(`validating-${check}`, `checking ${bucket.bucket} against the manifest of ${selection.backupId}: ${check}`);
      const v = await long.checkFilesDrillBucket.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Check ${check} of ${bucket.bucket}` }, [selection, bucket, check]);
      validations.push(v);
      end(`${v.ok ? 'passed' : 'FAILED'}: ${v.detail}`);
    }
    provenMs = now();
    const failed = validations.filter((v) => !v.ok);
    if (failed.length) failure = `validation failed: ${failed.map((v) => `${v.name}: ${v.detail}`).join('; ')}`;
  } catch (err) {
    if (isCancellation(err)) cancellation = err;
    failure = isCancellation(err) ? 'the drill was cancelled' : describeFailure(err);
    end(`stopped: ${failure}`);
  }

  // Cleanup, the report and its evidence happen whatever came before, cancel included.
  const result = await CancellationScope.nonCancellable(async (): Promise<RestoreDrillResult> => {
    if (bucketAttempted) {
      const made = bucket ?? { store: files.store, bucket: planned };
      begin('cleaning-up', `emptying and removing the scratch bucket ${made.bucket}`);
      try {
        end(await quick.removeFilesDrillBucket.executeWithOptions({ startToCloseTimeout: '30 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '1 second' }, summary: `Remove the scratch bucket ${made.bucket}` }, [made]));
      } catch (err) {
        // A bucket of that name someone else owns is theirs: left alone, and not the sweeper's either.
        const foreign = failureType(err) === 'DRILL_BUCKET_NOT_OURS';
        const problem = `the scratch bucket ${made.bucket} could not be removed (${describeFailure(err)})${foreign ? '' : '; the drill sweeper removes it once this run is closed'}`;
        issues.push(problem);
        end(problem);
      }
    }
    const outcome: DrillReport['outcome'] = cancellation ? 'cancelled' : failure ? 'failed' : 'passed';
    if (failure && !cancellation) issues.unshift(failure);
    const finishedAt = new Date().toISOString();
    const rtoObjective = files.rtoObjectiveSeconds;
    const rtoSeconds = Math.round(((provenMs ?? now()) - Date.parse(startedAt)) / 1000);
    const rpoSeconds = Math.max(0, Math.round((Date.parse(startedAt) - Date.parse(selection.takenAt)) / 1000));
    const recommendations: string[] = [];
    if (rtoSeconds > rtoObjective) recommendations.push(`The drill took ${rtoSeconds} s to prove the objects, over the RTO objective of ${rtoObjective} s: restore from the nearer region, raise the copy concurrency, or revisit the objective.`);
    if (rpoSeconds > selection.rpoObjectiveSeconds) recommendations.push(`The backup drilled was ${rpoSeconds} s old, over the RPO objective of ${selection.rpoObjectiveSeconds} s: back up more often, or drill newer backups.`);
    if (outcome === 'failed') recommendations.push(`Do not count on backup ${selection.backupId} until a drill of it passes; take a new full backup and drill it.`);
    const history = await quick.drillHistory(selection.target.name);
    const into = bucket?.bucket ?? planned;
    const report: DrillReport = {
      drillId: info.workflowId,
      runId: info.runId,
      startedAt,
      finishedAt,
      outcome,
      target: { name: selection.target.name, kind: 'bucket', engine: selection.target.engine, environment: selection.target.environment },
      backup: {
        id: selection.backupId,
        type: selection.type,
        takenAt: selection.takenAt,
        region: selection.region,
        ...(selection.sizeBytes !== undefined ? { sizeBytes: selection.sizeBytes } : {}),
        ...(files.objects !== undefined ? { objects: files.objects } : {}),
        selectedBy: selection.selectedBy,
      },
      restoredInto: {
        name: into,
        detail: restored
          ? `a scratch bucket of its own in the ${files.store} object store (${selection.region} region), tagged with this run as its owner; ${restored.objects} objects (${formatBytes(restored.bytes)}) restored; emptied and removed afterwards`
          : `a scratch bucket in the ${files.store} object store (${selection.region} region); the objects were never all restored`,
      },
      requestedBy: input.requestedBy ?? 'lifeboat drill',
      steps: [...steps],
      validations: [...validations],
      rto: { seconds: rtoSeconds, objectiveSeconds: rtoObjective },
      rpo: { seconds: rpoSeconds, objectiveSeconds: selection.rpoObjectiveSeconds },
      issues: [...issues],
      recommendations,
      history,
    };
    return publishScratchDrill(board, report, selection, 'Files', failure);
  });
  if (cancellation) throw cancellation;
  return result;
}

/**
 * The end every scratch drill (files, directory, SQLite) shares: the report published to both
 * evidence buckets, a critical alert when it failed, and the final phase. `what` names the
 * backup's kind in the alert ("Files", "Directory", "SQLite").
 */
export async function publishScratchDrill(
  board: StatusBoard,
  report: DrillReport,
  selection: DrillSelection,
  what: string,
  failure: string | undefined,
): Promise<RestoreDrillResult> {
  const { outcome, steps } = report;
  const rtoSeconds = report.rto.seconds;
  board.enter('reporting', `writing the report to the evidence buckets (${rtoPhases(steps).length} phases measured)`);
  const evidence = await quick.publishDrillReport(report, selection);
  if (outcome === 'failed') {
    await quick
      .notify({ severity: 'critical', title: `Restore drill FAILED: ${selection.target.name}`, text: `${what} backup ${selection.backupId} did not restore cleanly: ${failure?.replace(/[.\s]+$/, '')}. Report: ${evidence[0]?.key ?? '(not written)'}.`, target: selection.target.name })
      .catch(() => undefined);
  }
  board.enter(outcome === 'passed' ? 'done' : outcome, `${outcome}: RTO ${rtoSeconds} s (objective ${report.rto.objectiveSeconds} s), backup age ${report.rpo.seconds} s; report ${evidence[0]?.key ?? ''}`);
  return { report, evidence };
}
