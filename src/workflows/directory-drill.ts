/**
 * The directory branch of restoreDrill (src/workflows/restore-drill.ts): proves that a
 * configuration directory's archive restores. Once the archive is chosen, the drill restores it,
 * on the directory's host, into a scratch directory of its own (in the host's temporary
 * directory, marked with this run and an owner file naming it), checks every entry against the
 * archive's manifest (SHA-256, mode, owner, mtime, links), the critical files and the target's
 * `syntaxCheck` run against the scratch copy, then removes the scratch directory whatever
 * happened (success, failure, cancel; only when it carries this run's mark), and publishes the
 * report as evidence like a database drill. A failed drill is a critical notification and marks
 * the backup "restore failed".
 *
 * Not a workflow of its own: restoreDrill calls it, so its histories are restoreDrill's.
 */
import { ActivityCancellationType, ActivityOptions, CancellationScope, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DirectoryCheck, DirectoryRestoreInput, ValidatedDirectoryRestore } from '../domain/directory-backup';
import type { DrillSelection, RestoreDrillInput, RestoreDrillResult } from '../domain/drill';
import { DrillReport, DrillValidation } from '../domain/drill-report';
import { formatBytes } from '../domain/format';
import { describeFailure } from './failure';
import { DrillRun, publishScratchDrill } from './files-drill';
import { agentQueueOf, onHost } from './host-work';
import { STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 5, initialInterval: '1 second' } });
/** Host work, as the directory restore runs it: a cancel waits for the activity to stop writing. */
const HOST: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: STEP_HEARTBEAT,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 },
};

/** The workflow clock (deterministic on replay). */
const now = () => new Date().getTime();

/** How each of the restore's checks proves what it proves, in words for the report. */
const METHODS: Record<string, string> = {
  manifest: "every entry of the scratch copy against the archive's manifest: type, SHA-256 and size of every file, link targets, modes, mtimes, and owners when the worker can set them",
  'critical-files': "the target's criticalFiles present in the scratch copy",
  'syntax-check': "the target's syntaxCheck command run against the scratch copy ({dir} replaced by it); exit status 0 passes",
};

export async function directoryDrill(input: RestoreDrillInput, selection: DrillSelection, run: DrillRun): Promise<RestoreDrillResult> {
  const info = workflowInfo();
  const { board, startedAt, steps } = run;
  const source = selection.directory!;
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
  board.subject = `backup ${selection.backupId} (taken ${selection.takenAt}), ${selection.selectedBy}`;

  let plan: ValidatedDirectoryRestore | undefined;
  let restored: { files: number; bytes: number } | undefined;
  const validations: DrillValidation[] = [];
  let syntaxOutput: string | undefined;
  let failure: string | undefined;
  let cancellation: unknown;
  let provenMs: number | undefined;
  const host = onHost(HOST, await agentQueueOf(selection.target.name));
  try {
    begin('validating', `reading the manifest of ${selection.backupId} and planning its scratch directory on the host`);
    const request: DirectoryRestoreInput = { target: selection.target.name, backup: selection.catalogId, destination: { kind: 'new-dir' }, requestedBy: input.requestedBy ?? 'lifeboat drill', reason: `restore drill ${info.workflowId}`, drill: true };
    const chosen = await quick.chooseDirectoryBackup.executeWithOptions({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 5, initialInterval: '1 second' }, summary: `Read backup ${selection.backupId} from the catalog` }, [request]);
    plan = await host.inspectDirectoryRestore.executeWithOptions({ ...HOST, startToCloseTimeout: '10 minutes', summary: 'Plan the scratch directory' }, [request, chosen]);
    end(`${plan.files} files (${formatBytes(plan.bytes)}) in the manifest; scratch directory ${plan.staging}`);

    begin('restoring', `restoring ${selection.backupId} into the scratch directory ${plan.staging}, marked with run ${info.runId}`);
    restored = await host.restoreDirectoryToStaging.executeWithOptions({ ...HOST, summary: `Restore into ${plan.staging}` }, [plan]);
    end(`${restored.files} files (${formatBytes(restored.bytes)}) restored into ${plan.staging}, each hashed against the manifest as it was written`);

    begin('validating-data', `every file's SHA-256, mode, owner and mtime, ${plan.criticalFiles.length} critical files${plan.syntaxCheck ? ', the syntax check' : ''}`);
    const verified = await host.verifyRestoredDirectory.executeWithOptions({ ...HOST, summary: `Verify ${plan.staging}` }, [plan, 'staging']);
    syntaxOutput = verified.output;
    validations.push(...verified.checks.map((c: DirectoryCheck) => toValidation(c, c.name === 'syntax-check' ? syntaxOutput : undefined)));
    if (!plan.syntaxCheck) validations.push({ name: 'syntax-check', method: METHODS['syntax-check'], ok: true, detail: 'none configured for this target (targets.directories[].syntaxCheck): the content is proven, its syntax is not' });
    for (const v of validations) board.validated({ name: v.name, ok: v.ok, detail: v.detail });
    provenMs = now();
    end(`${validations.filter((v) => v.ok).length} of ${validations.length} checks passed`);
    const failed = validations.filter((v) => !v.ok);
    if (failed.length) failure = `validation failed: ${failed.map((v) => `${v.name}: ${v.detail}`).join('; ')}`;
  } catch (err) {
    if (isCancellation(err)) cancellation = err;
    failure = isCancellation(err) ? 'the drill was cancelled' : describeFailure(err);
    end(`stopped: ${failure}`);
  }

  // Cleanup, the report and its evidence happen whatever came before, cancel included.
  const result = await CancellationScope.nonCancellable(async (): Promise<RestoreDrillResult> => {
    if (plan) {
      begin('cleaning-up', `removing the scratch directory ${plan.staging} if it carries this run's mark`);
      try {
        end(await host.removeDirectoryStaging.executeWithOptions({ ...HOST, startToCloseTimeout: '10 minutes', summary: `Remove ${plan.staging}` }, [plan]));
      } catch (err) {
        const problem = `the scratch directory ${plan.staging} could not be removed (${describeFailure(err)}); the drill sweeper removes it once this run is closed`;
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
    if (rtoSeconds > rtoObjective) recommendations.push(`The drill took ${rtoSeconds} s to prove the directory, over the RTO objective of ${rtoObjective} s: revisit the objective, or what the syntax check runs.`);
    if (rpoSeconds > selection.rpoObjectiveSeconds) recommendations.push(`The backup drilled was ${rpoSeconds} s old, over the RPO objective of ${selection.rpoObjectiveSeconds} s: back up more often, or drill newer backups.`);
    if (outcome === 'failed') recommendations.push(`Do not count on backup ${selection.backupId} until a drill of it passes; take a new backup (lifeboat backup ${selection.target.name}) and drill it.`);
    const history = await quick.drillHistory(selection.target.name);
    const report: DrillReport = {
      drillId: info.workflowId,
      runId: info.runId,
      startedAt,
      finishedAt,
      outcome,
      target: { name: selection.target.name, kind: 'directory', engine: selection.target.engine, environment: selection.target.environment },
      backup: {
        id: selection.backupId,
        type: selection.type,
        takenAt: selection.takenAt,
        region: selection.region,
        ...(selection.sizeBytes !== undefined ? { sizeBytes: selection.sizeBytes } : {}),
        selectedBy: selection.selectedBy,
      },
      restoredInto: {
        name: plan?.staging ?? 'a scratch directory',
        detail: restored
          ? `a scratch directory of its own on the directory's host, marked with this run; ${restored.files} files (${formatBytes(restored.bytes)}) restored from ${source.store}/${source.bucket}/${source.key}; removed afterwards`
          : `a scratch directory on the directory's host; the archive ${source.store}/${source.bucket}/${source.key} was never fully restored`,
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
    return publishScratchDrill(board, report, selection, 'Directory', failure);
  });
  if (cancellation) throw cancellation;
  return result;
}

/** One of the restore's checks as the report's validation; the syntax check's output (its last lines) goes with it. */
function toValidation(c: DirectoryCheck, output: string | undefined): DrillValidation {
  const tail = output?.trim() ? `; output: ${output.trim().split('\n').slice(-5).join(' | ')}` : '';
  return { name: c.name, method: METHODS[c.name] ?? c.name, ok: c.ok, detail: `${c.detail}${tail}` };
}
