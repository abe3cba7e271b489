/**
 * The SQLite branch of restoreDrill (src/workflows/restore-drill.ts): proves that a SQLite
 * target's backup restores. Once the backup is chosen, the drill makes a scratch directory of
 * its own on the target's host (`<drill.scratchDir>/drill-<workflow id>`, marked with this run),
 * restores the backup into it (decryption bound to the target and backup), checks the file
 * (stored and database SHA-256, `PRAGMA integrity_check`, row counts per table against those
 * recorded at backup time, the target's read-only check queries), then removes the directory
 * whatever happened (success, failure, cancel), and publishes the report as evidence like a
 * database drill. A failed drill is a critical notification and marks the backup "restore failed".
 *
 * Not a workflow of its own: restoreDrill calls it, so its histories are restoreDrill's.
 */
import { ActivityCancellationType, ActivityOptions, CancellationScope, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DrillSelection, RestoreDrillInput, RestoreDrillResult } from '../domain/drill';
import { DrillReport, DrillValidation } from '../domain/drill-report';
import { formatBytes } from '../domain/format';
import { SqliteDrillScratch, sqliteDrillDirName } from '../domain/sqlite-drill';
import { describeFailure, failureType } from './failure';
import { DrillRun, publishScratchDrill } from './files-drill';
import { agentQueueOf, onHost } from './host-work';
import { STEP_HEARTBEAT } from './step-heartbeat';

const QUICK: ActivityOptions = { startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '1 second' } };
const quick = proxyActivities<Activities>(QUICK);

/** The workflow clock (deterministic on replay). */
const now = () => new Date().getTime();

export async function sqliteDrill(input: RestoreDrillInput, selection: DrillSelection, run: DrillRun): Promise<RestoreDrillResult> {
  const info = workflowInfo();
  const { board, startedAt, steps } = run;
  const source = selection.sqlite!;
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
  board.rtoTargetSeconds = source.rtoObjectiveSeconds;
  board.subject = `backup ${selection.backupId} (SQLite, taken ${selection.takenAt}, ${selection.region} region), ${selection.selectedBy}`;
  const planned = `${source.scratchDir.replace(/\/+$/, '')}/${sqliteDrillDirName(info.workflowId)}`;

  let scratch: SqliteDrillScratch | undefined;
  let restored: { bytes: number; validations: DrillValidation[] } | undefined;
  const validations: DrillValidation[] = [];
  let failure: string | undefined;
  let cancellation: unknown;
  let scratchAttempted = false;
  let provenMs: number | undefined;
  // The file lives on the target's host: its agent when it has one.
  const queue = await agentQueueOf(selection.target.name);
  const hostQuick = onHost(QUICK, queue);
  const hostLong = onHost({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 3, initialInterval: '5 seconds' } }, queue);
  try {
    begin('preparing', `making the scratch directory ${planned} on the host of ${selection.target.name}, marked with this run`);
    scratchAttempted = true;
    scratch = await hostQuick.createSqliteDrillScratch.executeWithOptions({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 5, initialInterval: '1 second' }, summary: `Make the scratch directory ${planned}` }, [selection]);
    end(`scratch directory ${scratch.dir} ${scratch.adopted ? 'adopted (made by an earlier attempt of this run)' : 'made'}, marked with run ${info.runId}`);

    begin('restoring', `restoring backup ${selection.backupId} (${formatBytes(source.databaseBytes)} database) from ${source.store}/${source.bucket} into ${scratch.file}, then checking it`);
    restored = await hostLong.restoreSqliteDrill.executeWithOptions(
      { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Restore ${selection.backupId} into ${scratch.file}` },
      [selection, scratch],
    );
    validations.push(...restored.validations);
    provenMs = now();
    const failed = validations.filter((v) => !v.ok);
    end(`${restored.bytes ? `${formatBytes(restored.bytes)} restored; ` : ''}${validations.length - failed.length} of ${validations.length} checks passed`);
    if (failed.length) failure = `validation failed: ${failed.map((v) => `${v.name}: ${v.detail}`).join('; ')}`;
  } catch (err) {
    if (isCancellation(err)) cancellation = err;
    failure = isCancellation(err) ? 'the drill was cancelled' : describeFailure(err);
    end(`stopped: ${failure}`);
  }

  // Cleanup, the report and its evidence happen whatever came before, cancel included.
  const result = await CancellationScope.nonCancellable(async (): Promise<RestoreDrillResult> => {
    if (scratchAttempted) {
      begin('cleaning-up', `removing the scratch directory ${scratch?.dir ?? planned}`);
      try {
        end(await hostQuick.removeSqliteDrillScratch.executeWithOptions({ startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 5, initialInterval: '1 second' }, summary: `Remove the scratch directory ${planned}` }, [selection]));
      } catch (err) {
        // A directory of that name someone else marked is theirs: left alone, and not the sweeper's either.
        const foreign = failureType(err) === 'DRILL_SCRATCH_NOT_OURS';
        const problem = `the scratch directory ${planned} could not be removed (${describeFailure(err)})${foreign ? '' : '; the drill sweeper removes it once this run is closed'}`;
        issues.push(problem);
        end(problem);
      }
    }
    const outcome: DrillReport['outcome'] = cancellation ? 'cancelled' : failure ? 'failed' : 'passed';
    if (failure && !cancellation) issues.unshift(failure);
    const finishedAt = new Date().toISOString();
    const rtoObjective = source.rtoObjectiveSeconds;
    const rtoSeconds = Math.round(((provenMs ?? now()) - Date.parse(startedAt)) / 1000);
    const rpoSeconds = Math.max(0, Math.round((Date.parse(startedAt) - Date.parse(selection.takenAt)) / 1000));
    const recommendations: string[] = [];
    if (rtoSeconds > rtoObjective) recommendations.push(`The drill took ${rtoSeconds} s to prove the file, over the RTO objective of ${rtoObjective} s: restore from the nearer region, or revisit the objective.`);
    if (outcome === 'failed') recommendations.push(`Do not count on backup ${selection.backupId} until a drill of it passes; take a new backup (lifeboat backup ${selection.target.name} --wait) and drill it.`);
    const history = await quick.drillHistory(selection.target.name);
    const report: DrillReport = {
      drillId: info.workflowId,
      runId: info.runId,
      startedAt,
      finishedAt,
      outcome,
      target: { name: selection.target.name, kind: 'sqlite', engine: selection.target.engine, environment: selection.target.environment },
      backup: { id: selection.backupId, type: selection.type, takenAt: selection.takenAt, region: selection.region, ...(selection.sizeBytes !== undefined ? { sizeBytes: selection.sizeBytes } : {}), selectedBy: selection.selectedBy },
      restoredInto: {
        name: scratch?.file ?? `${planned}/restored.db`,
        detail: restored?.bytes
          ? `a scratch directory of its own on the target's host, marked with this run; ${formatBytes(restored.bytes)} restored from the ${selection.region} region; removed afterwards`
          : `a scratch directory on the target's host, marked with this run; the database was never restored whole`,
      },
      requestedBy: input.requestedBy ?? 'lifeboat drill',
      steps: [...steps],
      validations: [...validations],
      rto: { seconds: rtoSeconds, objectiveSeconds: rtoObjective },
      // Backed up on demand (before risky operations): the backup's age is reported, not judged against an RPO here.
      rpo: { seconds: rpoSeconds, objectiveSeconds: selection.rpoObjectiveSeconds },
      issues: [...issues],
      recommendations,
      history,
    };
    return publishScratchDrill(board, report, selection, 'SQLite', failure);
  });
  if (cancellation) throw cancellation;
  return result;
}
