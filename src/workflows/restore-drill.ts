/**
 * restoreDrill: proves that a backup restores. Chooses a verified backup (latest, at random, or
 * by id, from either region), restores it into a drill instance of its own (named drill-..., never
 * behind a production name, never archiving), waits for WAL replay, validates the data, removes
 * the instance whatever happened (success, failure, cancel), and publishes the report as evidence
 * in both regions' write-once buckets with its hashes in the catalog. A failed drill is a
 * critical notification and marks the backup "restore failed".
 *
 * No approval gate: a drill touches nothing but what it creates, and schedules run it unattended.
 *
 * Since the patch DRILL_VALIDATIONS: the instance takes a port from the drill range and is labelled
 * a drill's; validation adds the row counts recorded at backup time, each smoke and validation
 * query timed against the previous drill, and the application check (drill-validations.ts); the
 * instance is then kept for the target's validation window (`drill.keepFor`), which a cancel ends.
 */
import { ActivityCancellationType, ActivityOptions, CancellationScope, isCancellation, patched, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DrillEvidence, drillInstanceName, DrillSelection, missingEvidenceCopies, RestoreDrillInput, RestoreDrillResult } from '../domain/drill';
import { DrillReport, DrillStep, DrillValidation, rtoPhases } from '../domain/drill-report';
import type { InstanceDescription } from '../domain/ports';
import type { ValidatedRestore } from '../domain/restore';
import type { VerificationSummary } from '../domain/verification';
import { formatDuration } from '../domain/format';
import { DrillValidationOutcome, validateDrillInstance, verifierMethod } from './drill-validations';
import { describeFailure } from './failure';
import { directoryDrill } from './directory-drill';
import { filesDrill } from './files-drill';
import { sqliteDrill } from './sqlite-drill';
import { agentQueueOf, onHost } from './host-work';
import { StatusBoard } from './status-board';
import { CRASH_RETRY, STEP_HEARTBEAT } from './step-heartbeat';

const QUICK: ActivityOptions = { startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '1 second' } };
const quick = proxyActivities<Activities>(QUICK);
/** Copies a report to a region that could not take it: retried, ever more patiently, until that region answers. */
const evidenceRetry = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, scheduleToCloseTimeout: '7 days', retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' } });
const LONG: ActivityOptions = { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 3, initialInterval: '5 seconds' } };
const long = proxyActivities<Activities>(LONG);

/** The workflow clock (deterministic on replay). */
const now = () => new Date().getTime();

/** Drill ports and label, row counts at backup, timed queries, application check, validation window. */
export const DRILL_VALIDATIONS = 'drill-validations-and-window';

/** How each of the verifier's checks proved what it proves, in words for the report (drills before DRILL_VALIDATIONS). */
function methodOf(check: string): string {
  if (check.startsWith('smoke query ')) return "the target's smoke query, one read-only statement, as the verify role";
  if (check === 'compared with the source') return "row counts and checksums against the source's facts, where they describe the same point";
  return verifierMethod(check);
}

export async function restoreDrill(input: RestoreDrillInput): Promise<RestoreDrillResult> {
  const info = workflowInfo();
  const board = new StatusBoard('restore drill', input.target);
  const startedAt = new Date().toISOString();
  const steps: DrillStep[] = [];
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

  const validationsV2 = patched(DRILL_VALIDATIONS);

  /**
   * Publishes the report to every region's evidence bucket. A region that cannot take it now
   * (its object store down) does not hold back the verdict: the report lands where it can, the
   * catalog records which copy is missing, a warning goes out, and the missing copy is written
   * from the one that landed, retried until that region answers.
   */
  const publish = async (write: () => Promise<DrillEvidence[]>): Promise<DrillEvidence[]> => {
    const evidence = await write();
    const missing = missingEvidenceCopies(evidence);
    if (!missing.length || !patched('drill-evidence-copy-retried')) return evidence;
    board.enter('reporting', `the report is written to ${evidence[0]?.copies.map((c) => c.region).join(' and ')}; the copy in ${missing.join(' and ')} is retried until that region answers`);
    await quick
      .notify({ severity: 'warning', title: `Drill evidence incomplete: ${input.target}`, text: `The report of drill ${info.workflowId} is written to ${evidence[0]?.copies.map((c) => c.bucket).join(' and ')}, not yet to the ${missing.join(' and ')} region (${evidence[0]?.missing?.map((m) => m.problem).join('; ')}); lifeboat keeps copying it there and records the copy when it lands.`, target: input.target })
      .catch(() => undefined);
    try {
      return await evidenceRetry.completeDrillEvidence(info.workflowId);
    } catch (err) {
      // A week without that region: the copy that landed stands, the catalog says which is missing, and a person is told.
      await quick
        .notify({ severity: 'critical', title: `Drill evidence still incomplete: ${input.target}`, text: `The report of drill ${info.workflowId} could not be copied to the ${missing.join(' and ')} region (${describeFailure(err)}); it is in ${evidence[0]?.copies.map((c) => c.bucket).join(' and ')} only.`, target: input.target })
        .catch(() => undefined);
      return evidence;
    }
  };

  /**
   * A drill that fails before anything is restored (no backup to drill, the restore refused) is
   * a failed drill all the same: its report, saying what was attempted, goes to the evidence
   * buckets and the critical alert goes out, then the run fails with the cause. restoreDrill-v1
   * runs failed here without either.
   */
  const beforeRestore = async <T>(step: () => Promise<T>, chosen?: DrillSelection): Promise<T> => {
    try {
      return await step();
    } catch (err) {
      if (isCancellation(err) || !patched('drill-report-on-early-failure')) throw err;
      const failure = describeFailure(err);
      end(`stopped: ${failure}`);
      await CancellationScope.nonCancellable(async () => {
        board.enter('reporting', `the drill failed before the restore; writing its report to the evidence buckets`);
        let where = '(not written)';
        try {
          const evidence = await publish(() => quick.publishEarlyDrillFailure({ input, startedAt, steps: [...steps], failure, ...(chosen ? { selection: chosen } : {}) }));
          where = evidence[0]?.key ?? where;
        } catch (problem) {
          where = `(not written: ${describeFailure(problem)})`;
        }
        await quick
          .notify({ severity: 'critical', title: `Restore drill FAILED: ${input.target}`, text: `The drill could not restore ${chosen ? `backup ${chosen.backupId}` : 'any backup'}: ${failure.replace(/[.\s]+$/, '')}. Report: ${where}.`, target: input.target })
          .catch(() => undefined);
        board.enter('failed', `failed before the restore: ${failure}`);
      });
      throw err;
    }
  };

  begin('selecting', `choosing the ${input.backup ?? 'latest'} verified backup of ${input.target}`);
  const selection: DrillSelection = await beforeRestore(() => quick.selectDrillBackup(input));
  end(`backup ${selection.backupId} (${selection.type}, taken ${selection.takenAt}, ${selection.region} region) ${selection.selectedBy}`);
  // A bucket target's backup is drilled into a scratch bucket (src/workflows/files-drill.ts). No
  // patched() marker: runs recorded before files drills existed chose database backups, whose
  // selections carry no kind, so on replay they never take this branch.
  if (selection.kind === 'files') return filesDrill(input, selection, { board, startedAt, steps });
  // A directory target's archive is drilled into a scratch directory on its host
  // (src/workflows/directory-drill.ts). No patched() marker either: before this branch, a
  // directory target's selectDrillBackup failed (not a database target) and `drill run <dir>`
  // started directoryRestore instead, so no recorded run's selection has this kind.
  if (selection.kind === 'directory') return directoryDrill(input, selection, { board, startedAt, steps });
  // A SQLite target's backup is drilled into a scratch file on its host (src/workflows/sqlite-drill.ts).
  // No patched() marker either: before SQLite drills, selectDrillBackup refused a SQLite target
  // (findDatabaseTarget), so no recorded run carries a selection of kind 'sqlite'.
  if (selection.kind === 'sqlite') return sqliteDrill(input, selection, { board, startedAt, steps });
  board.subject = `backup ${selection.backupId} (${selection.type}, taken ${selection.takenAt}, ${selection.region} region), ${selection.selectedBy}`;
  // The drill's cluster is made, watched and removed on the target's host: on its agent when it
  // has one (patch host-work-on-agents); the data's validation, the report and alerts stay here.
  const hostQueue = await beforeRestore(() => agentQueueOf(input.target), selection);
  const hostQuick = onHost(QUICK, hostQueue);
  const hostLong = onHost(LONG, hostQueue);

  begin('validating', `checking that ${selection.backupId} can be restored into a drill instance`);
  const v: ValidatedRestore = await beforeRestore(() => hostQuick.validateRestore(
    {
      target: input.target,
      // The very backup: pgBackRest's set to the point it ended, RDS's snapshot as taken (restoreDrill-v1 restored RDS to the snapshot's time).
      restorePoint: selection.target.engine === 'pgbackrest' || patched('drill-rds-restores-the-snapshot') ? `backup:${selection.backupId}` : selection.takenAt,
      reason: `restore drill of backup ${selection.backupId}`,
      requestedBy: input.requestedBy ?? 'lifeboat drill',
      mode: 'standard',
      destination: drillInstanceName(info.workflowId),
      fromRegion: selection.region,
      timings: { pollIntervalMs: input.timings?.pollIntervalMs ?? 2000 },
      ...(validationsV2 ? { purpose: 'drill' as const } : {}),
    },
    info.workflowId,
  ), selection);
  board.rtoTargetSeconds = v.rtoTargetSeconds;
  end(`restore of ${selection.backupId} to the point it ended (${selection.takenAt}) into new instance ${v.destinationId}, from the ${selection.region} region`);

  let instance: InstanceDescription | undefined;
  let verification: VerificationSummary | undefined;
  let validated: DrillValidationOutcome | undefined;
  let failure: string | undefined;
  let cancellation: unknown;
  let restoreAttempted = false;
  let provenMs: number | undefined;
  try {
    begin('restoring', `restoring ${selection.backupId} into ${v.destinationId}`);
    restoreAttempted = true;
    instance = await hostLong.restoreIntoNewInstance.executeWithOptions(
      { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Restore ${selection.backupId} into ${v.destinationId}` },
      [v, selection.region],
    );
    // The engine restores detached: this phase is its start; the files are written in the next.
    end(`restore of ${selection.backupId} into ${instance.instanceId} started (${instance.status})`);
    begin('replaying-wal', `${instance.instanceId}: the engine writes the backup's files, then PostgreSQL replays WAL to the end of the backup and starts`);
    instance = await hostLong.waitUntilAvailable.executeWithOptions({ heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Wait for ${instance.instanceId} to be available` }, [v.target, instance.instanceId, v.timings.pollIntervalMs]);
    end(`${instance.instanceId} available at ${instance.endpoint?.host}:${instance.endpoint?.port}`);
    begin('validating-data', `checking the data on ${instance.instanceId}`);
    if (validationsV2) {
      validated = await validateDrillInstance({ target: v.target, instance, backupCatalogId: selection.catalogId, drillId: info.workflowId, board });
      const checks = validated.validations.map(({ name, ok, detail }) => ({ name, ok, detail }));
      verification = { ok: checks.every((c) => c.ok), checks, tables: [] };
    } else {
      verification = await long.verifyRestoredInstance.executeWithOptions({ heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Verify ${instance.instanceId}` }, [v.target, instance]);
    }
    provenMs = now();
    end(`${verification.checks.filter((c) => c.ok).length} of ${verification.checks.length} checks passed`);
    if (!verification.ok) failure = `validation failed: ${verification.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join('; ')}`;
    const keepForMs = validated ? (input.timings?.keepForMs ?? validated.plan.keepForSeconds * 1000) : 0;
    if (keepForMs > 0) {
      // The validation window: people may connect and look; a cancel ends it early and the drill keeps its verdict.
      const until = new Date(now() + keepForMs).toISOString();
      begin('kept-for-validation', `keeping ${instance.instanceId} at ${instance.endpoint?.host}:${instance.endpoint?.port} for ${formatDuration(Math.round(keepForMs / 1000))}, until ${until}; cancel the drill to remove it now`);
      try {
        await sleep(keepForMs);
        end(`kept ${formatDuration(Math.round(keepForMs / 1000))} after validation`);
      } catch (err) {
        if (!isCancellation(err)) throw err;
        end('the validation window was ended early by a cancel request');
      }
    }
  } catch (err) {
    if (isCancellation(err)) cancellation = err;
    failure = isCancellation(err) ? 'the drill was cancelled' : describeFailure(err);
    end(`stopped: ${failure}`);
  }

  // Cleanup, the report and its evidence happen whatever came before, cancel included.
  const result = await CancellationScope.nonCancellable(async (): Promise<RestoreDrillResult> => {
    const made = instance?.instanceId ?? (restoreAttempted ? v.destinationId : undefined);
    if (made) {
      begin('cleaning-up', `removing the drill instance ${made}`);
      try {
        end(await hostQuick.removeRestoredInstance(v.target, made));
      } catch (err) {
        const problem = `the drill instance ${made} could not be removed (${describeFailure(err)}); the drill sweeper or \`lifeboat stack down\` removes it`;
        issues.push(problem);
        end(problem);
      }
    }
    const outcome: DrillReport['outcome'] = cancellation ? 'cancelled' : failure ? 'failed' : 'passed';
    if (failure && !cancellation) issues.unshift(failure);
    const finishedAt = new Date().toISOString();
    const rtoSeconds = Math.round(((provenMs ?? now()) - Date.parse(startedAt)) / 1000);
    const rpoSeconds = Math.max(0, Math.round((Date.parse(startedAt) - Date.parse(selection.takenAt)) / 1000));
    const validations: DrillValidation[] = validated?.validations ?? (verification?.checks ?? []).map((c) => ({ name: c.name, method: methodOf(c.name), ok: c.ok, detail: c.detail }));
    if (validated) issues.push(...validated.issues);
    const recommendations: string[] = [];
    if (rtoSeconds > v.rtoTargetSeconds) recommendations.push(`The drill took ${rtoSeconds} s to prove the data, over the RTO objective of ${v.rtoTargetSeconds} s: restore from the nearer region, add restore parallelism, or revisit the objective.`);
    if (rpoSeconds > selection.rpoObjectiveSeconds) recommendations.push(`The backup drilled was ${rpoSeconds} s old, over the RPO objective of ${selection.rpoObjectiveSeconds} s: back up more often, or drill newer backups.`);
    if (outcome === 'failed') recommendations.push(`Do not count on backup ${selection.backupId} until a drill of it passes; take a new backup and drill it.`);
    const history = await quick.drillHistory(v.target);
    // The RTO a restore would take now, from the drills so far and the source's size today; a
    // prediction over the objective is an alert (a prediction that cannot be made is not).
    // On an agent, pgBackRest's sizes are read there (patch drill-rto-prediction-on-agent: this
    // workflow's histories already ask host-work-on-agents, before this point).
    const prediction = patched('drill-rto-prediction')
      ? hostQueue && patched('drill-rto-prediction-on-agent')
        ? await hostQuick.readBackupSizes
            .executeWithOptions({ summary: `Read the backup sizes of ${v.target} on its agent` }, [v.target])
            .then((sizesRead) => quick.predictRestore(v.target, { sizesRead }))
            .catch(() => undefined)
        : await quick.predictRestore(v.target).catch(() => undefined)
      : undefined;
    if (prediction?.status === 'breach') recommendations.push(`The predicted RTO of a restore now is over the objective (${prediction.summary}): restore from the nearer region, add restore parallelism, or revisit the objective before a real recovery finds out.`);
    const report: DrillReport = {
      drillId: info.workflowId,
      runId: info.runId,
      startedAt,
      finishedAt,
      outcome,
      target: { name: selection.target.name, kind: 'database', engine: selection.target.engine, environment: selection.target.environment },
      backup: { id: selection.backupId, type: selection.type, takenAt: selection.takenAt, region: selection.region, ...(selection.sizeBytes !== undefined ? { sizeBytes: selection.sizeBytes } : {}), selectedBy: selection.selectedBy },
      restoredInto: {
        name: v.destinationId,
        detail: instance?.endpoint
          ? `${instance.endpoint.host}:${instance.endpoint.port}, a drill instance of its own (${validationsV2 ? "a port of the drill range, labelled with this drill's run, " : ''}archiving off), removed afterwards`
          : 'never became available',
      },
      requestedBy: input.requestedBy ?? 'lifeboat drill',
      steps: [...steps],
      validations,
      rto: { seconds: rtoSeconds, objectiveSeconds: v.rtoTargetSeconds },
      rpo: { seconds: rpoSeconds, objectiveSeconds: selection.rpoObjectiveSeconds },
      issues: [...issues],
      recommendations,
      history,
      ...(prediction ? { prediction } : {}),
      ...(validated
        ? {
            queryTimings: validated.queryTimings,
            ...(validated.plan.previous ? { queryTimingsBefore: { drillId: validated.plan.previous.drillId, at: validated.plan.previous.at } } : {}),
            ...(validated.applicationCheck ? { applicationCheck: validated.applicationCheck } : {}),
          }
        : {}),
    };
    board.enter('reporting', `writing the report to the evidence buckets (${rtoPhases(steps).length} phases measured)`);
    const evidence = await publish(() => quick.publishDrillReport(report, selection));
    if (prediction?.status === 'breach') {
      await quick
        .notify({ severity: 'critical', title: `Predicted RTO over the objective: ${v.target}`, text: `${prediction.summary} Report: ${evidence[0]?.key ?? '(not written)'}.`, target: v.target })
        .catch(() => undefined);
    }
    if (outcome === 'failed') {
      await quick
        .notify({ severity: 'critical', title: `Restore drill FAILED: ${v.target}`, text: `Backup ${selection.backupId} did not restore cleanly: ${failure?.replace(/[.\s]+$/, '')}. Report: ${evidence[0]?.key ?? '(not written)'}.`, target: v.target })
        .catch(() => undefined);
    }
    board.enter(outcome === 'passed' ? 'done' : outcome, `${outcome}: RTO ${rtoSeconds} s (objective ${v.rtoTargetSeconds} s), backup age ${rpoSeconds} s; report ${evidence[0]?.key ?? ''}`);
    return { report, evidence };
  });
  if (cancellation) throw cancellation;
  return result;
}
