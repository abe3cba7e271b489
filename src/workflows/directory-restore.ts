/**
 * directoryRestore: a configuration directory back as its backup recorded it (content, modes,
 * owners, mtimes, links), into a new directory (the default), in place behind the restore gate,
 * or (a drill) into a scratch directory that is verified and removed.
 *
 *   choose the backup (catalog) -> inspect the destination on the host (refusals, no side effects)
 *   -> [in place: restore gate, showing what is overwritten and created]
 *   -> restore into a staging directory next to the destination, marked with the run id
 *   -> verify it (every file's SHA-256, modes, owners, mtimes, critical files, syntax check)
 *   -> commit (new: one rename; in place: each listed entry moved in, what it replaces kept in an
 *      undo directory) -> verify the destination -> report
 *
 * A failure or cancel before the commit removes the staging directory (non-cancellable, only if
 * it carries this run's mark): nothing half-made is left at the destination.
 */
import { ActivityCancellationType, ActivityOptions, ApplicationFailure, CancellationScope, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DirectoryRestoreInput, DirectoryRestoreReport, firstFew, ValidatedDirectoryRestore } from '../domain/directory-backup';
import { formatBytes } from '../domain/format';
import { ApprovalGates } from './approval-gate';
import { describeFailure, failureType } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { LifeboatEnvironment, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { CRASH_RETRY, STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
// Every host step heartbeats while it works: a killed worker costs a step STEP_HEARTBEAT, not minutes.
const HOST: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: STEP_HEARTBEAT,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 5, ...CRASH_RETRY, backoffCoefficient: 2 },
};

export async function directoryRestore(input: DirectoryRestoreInput): Promise<DirectoryRestoreReport> {
  const { workflowId } = workflowInfo();
  const board = new StatusBoard(input.drill ? 'directory drill' : 'directory restore', input.target);
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([
    { key: LifeboatKind, value: input.drill ? 'directory-drill' : 'directory-restore' },
    { key: LifeboatTarget, value: input.target },
  ]);
  const report: DirectoryRestoreReport = { workflowId, outcome: 'failed', target: input.target, requestedBy: input.requestedBy, reason: input.reason, checks: [], cleanup: [] };

  // 1. Validate: nothing exists yet, so a refusal ends the workflow with nothing to clean up.
  board.enter('validating', `checking backup ${input.backup} of ${input.target} and the destination`);
  const chosen = await quick.chooseDirectoryBackup.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Choose the backup' }, [input]);
  const host = onHost(HOST, await agentQueueOf(input.target));
  const plan: ValidatedDirectoryRestore = await host.inspectDirectoryRestore.executeWithOptions({ ...HOST, startToCloseTimeout: '10 minutes', summary: 'Inspect the destination' }, [input, chosen]);
  report.plan = plan;
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: plan.environment }]);
  const what = `backup ${plan.backupId} (${plan.files} files, ${formatBytes(plan.bytes)}, taken ${plan.takenAt})`;
  board.subject = what;

  // 2. In place: the restore gate, showing exactly what is overwritten and written.
  if (plan.into.kind === 'in-place') {
    const p = plan.inPlace!;
    const policy = await quick.resolveGatePolicy.executeWithOptions({ startToCloseTimeout: '1 minute' }, [plan.environment, 'restore', input.requestedBy]);
    let decision;
    try {
      decision = await gates.request(
        policy,
        {
          title: `restore ${plan.target} IN PLACE into ${plan.into.path}`,
          facts: [
            { label: 'target', value: `${plan.target} (${plan.environment})` },
            { label: 'from', value: what },
            { label: 'overwritten', value: p.overwrite.length ? `${p.overwrite.length}: ${firstFew(p.overwrite, 8)}; each is moved to ${p.backupDir} first` : 'none' },
            { label: 'created', value: p.create.length ? `${p.create.length}: ${firstFew(p.create, 8)}` : 'none' },
            { label: 'left alone', value: `${p.unchanged} entries already equal; files the backup does not list are not touched` },
            { label: 'undo', value: `copy ${p.backupDir} back over ${plan.into.path} and remove what was created (the report gives the command)` },
            { label: 'requested by', value: `${input.requestedBy}: ${input.reason}` },
          ],
        },
        plan.timings,
      );
    } catch (err) {
      if (isCancellation(err)) {
        await CancellationScope.nonCancellable(async () => {
          report.outcome = 'cancelled';
          report.failure = 'cancelled while waiting for the restore gate; nothing was written';
          board.enter('cancelled', report.failure);
        });
      }
      throw err;
    }
    if (decision.decision !== 'approved') {
      report.outcome = decision.decision === 'rejected' ? 'rejected' : 'expired';
      board.enter(decision.decision, `${decision.decision} by ${decision.by}: ${decision.reason}; nothing was written`);
      return report;
    }
  }

  let committed = false;
  try {
    // 3. Staging, next to the destination, marked with this run's id.
    board.enter('restoring', `${what} into ${plan.staging}`);
    const staged = await host.restoreDirectoryToStaging.executeWithOptions({ ...HOST, summary: `Restore into ${plan.staging}` }, [plan]);

    // 4. Verify before anything reaches the destination.
    board.enter('verifying', `every file's SHA-256, modes, owners and mtimes, ${plan.criticalFiles.length} critical files${plan.syntaxCheck ? ', the syntax check' : ''}`);
    const pre = await host.verifyRestoredDirectory.executeWithOptions({ ...HOST, summary: 'Verify the staging directory' }, [plan, 'staging']);
    report.checks = pre.checks;
    report.syntaxCheckOutput = pre.output;
    for (const c of pre.checks) board.validated(c);
    failIfBad(pre.checks, plan.staging);

    if (plan.into.kind === 'drill') {
      report.written = { files: staged.files, bytes: staged.bytes, overwritten: 0 };
    } else {
      // 5. Commit, then verify the destination itself.
      board.enter('committing', plan.into.kind === 'in-place' ? `moving the restored entries into ${plan.into.path}, what they replace kept first` : `renaming ${plan.staging} to ${plan.into.path}`);
      committed = true;
      const done = await host.commitDirectoryRestore.executeWithOptions({ ...HOST, summary: `Move the restore into ${plan.into.path}` }, [plan]);
      report.written = { files: staged.files, bytes: staged.bytes, overwritten: done.overwritten.length };
      if (plan.into.kind === 'in-place') {
        report.overwritten = done.overwritten;
        report.created = done.created;
        report.undo = undoCommand(plan, done.created, done.undoDir);
      }
      board.enter('verifying', `checking ${plan.into.path} against the manifest`);
      const post = await host.verifyRestoredDirectory.executeWithOptions({ ...HOST, summary: `Verify ${plan.into.path}` }, [plan, 'destination']);
      report.checks = post.checks.map((c) => ({ ...c, name: `${c.name} (${plan.into.path})` }));
      report.syntaxCheckOutput = post.output ?? report.syntaxCheckOutput;
      failIfBad(post.checks, plan.into.path);
    }
  } catch (err) {
    const cancelled = isCancellation(err);
    report.outcome = cancelled ? 'cancelled' : failureType(err) === 'VERIFICATION_FAILED' ? 'verification-failed' : 'failed';
    report.failure = cancelled ? 'cancelled' : describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      board.enter('cleaning-up', `removing ${plan.staging} if it carries this run's mark`);
      try {
        report.cleanup.push(await host.removeDirectoryStaging.executeWithOptions({ ...HOST, startToCloseTimeout: '10 minutes', summary: `Remove ${plan.staging}` }, [plan]));
      } catch (cleanupErr) {
        report.cleanup.push(`${plan.staging} could not be removed (${describeFailure(cleanupErr)}): remove it by hand if it carries this run's mark`);
      }
      if (committed && plan.into.kind === 'in-place') report.cleanup.push(`the restore stopped after it began moving entries into ${plan.into.path}: what it replaced is in ${plan.inPlace!.backupDir}; copy it back to undo`);
      board.enter(report.outcome, `${report.failure}; ${report.cleanup.join('; ')}`);
      await quick.notify
        .executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: restore stopped' }, [
          { severity: cancelled ? 'warning' : 'critical', title: `Directory ${input.drill ? 'drill' : 'restore'} of ${plan.target} ${cancelled ? 'cancelled' : 'failed'}`, text: `${report.failure}\n${report.cleanup.join('\n')}`, target: plan.target },
        ])
        .catch(() => undefined);
    });
    throw err;
  }

  if (plan.into.kind === 'drill') {
    board.enter('cleaning-up', `removing the scratch directory ${plan.staging}`);
    report.cleanup.push(await CancellationScope.nonCancellable(() => host.removeDirectoryStaging.executeWithOptions({ ...HOST, startToCloseTimeout: '10 minutes', summary: `Remove ${plan.staging}` }, [plan])));
  }
  report.outcome = 'restored';
  const summary = `${report.written!.files} files (${formatBytes(report.written!.bytes)}) of ${plan.target} restored into ${plan.into.path}${report.written!.overwritten ? `, ${report.written!.overwritten} overwritten (kept in ${plan.inPlace!.backupDir})` : ''}; every check passed`;
  await quick.notify
    .executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: restore complete' }, [{ severity: 'info', title: `Directory ${input.drill ? 'drill' : 'restore'} of ${plan.target} complete`, text: `${summary}. From ${what}.`, target: plan.target }])
    .catch(() => undefined);
  board.enter('done', summary);
  return report;
}

function failIfBad(checks: Array<{ name: string; ok: boolean; detail: string }>, where: string): void {
  const failed = checks.filter((c) => !c.ok);
  if (failed.length) throw ApplicationFailure.nonRetryable(`verification of ${where} failed (${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')})`, 'VERIFICATION_FAILED');
}

/** How to put back what an in-place restore replaced: copy the undo directory over, remove what it created. */
function undoCommand(plan: ValidatedDirectoryRestore, created: string[], undoDir?: string): string {
  const parts: string[] = [];
  // The undo directory's journal (what the restore moved, for its own retries) is not copied back.
  if (undoDir) parts.push(`cp -a ${undoDir}/. ${plan.into.path}/ && rm -f -- ${plan.into.path}/.lifeboat-undo-journal`);
  const files = created.filter((c) => !c.startsWith('/'));
  if (files.length) parts.push(`rm -rf -- ${files.map((c) => `${plan.into.path}/${c}`).join(' ')}`);
  return parts.length ? parts.join(' && ') : 'nothing to undo: every entry was already as the backup recorded it';
}
