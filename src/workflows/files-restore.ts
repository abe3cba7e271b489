/**
 * filesRestore: objects of a bucket target back as they were, from a files backup set or from
 * the source bucket's object versions at a time, selected by prefix or key list.
 *
 *   validate (no side effects) -> [in place: restore gate] -> [new bucket: make it, owned by this run]
 *     -> copy (each object hashed as it streams) -> verify (every object read back)
 *     -> [in place with --mirror: delete what the gate listed] -> report
 *
 * Into a new bucket (the default): a failure or cancel removes that bucket, in a non-cancellable
 * scope and only if its tags name this run. In place (behind the gate, versioned buckets only):
 * nothing is deleted on failure; every object the restore overwrote keeps its previous version,
 * and the report names the undo: the same restore `--to` the time the writing began.
 * S3 only, so every activity runs on the central task queue (no host-bound work).
 */
import { ActivityCancellationType, ApplicationFailure, CancellationScope, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { describeOrigin, FilesRestoreInput, FilesRestoreReport, FilesRestoreBucket, ValidatedFilesRestore, firstFew } from '../domain/files-restore';
import { formatBytes } from '../domain/format';
import { ApprovalGates } from './approval-gate';
import { describeFailure, failureType } from './failure';
import { LifeboatEnvironment, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { CRASH_RETRY, STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const long = proxyActivities<Activities>({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 } });

export async function filesRestore(input: FilesRestoreInput): Promise<FilesRestoreReport> {
  const { workflowId } = workflowInfo();
  const board = new StatusBoard('files restore', input.target);
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'files-restore' },
    { key: LifeboatTarget, value: input.target },
  ]);
  const report: FilesRestoreReport = { workflowId, outcome: 'failed', target: input.target, requestedBy: input.requestedBy, reason: input.reason, checks: [], cleanup: [] };

  // 1. Validate: nothing exists yet, so a refusal ends the workflow with nothing to clean up.
  board.enter('validating', `checking the request against ${input.source.kind === 'backup' ? `backup ${input.source.backup}` : `the versions of ${input.target} at ${input.source.at}`}`);
  const plan: ValidatedFilesRestore = await quick.validateFilesRestore.executeWithOptions({ startToCloseTimeout: '10 minutes', heartbeatTimeout: STEP_HEARTBEAT, summary: 'Validate the request' }, [input, workflowId]);
  report.plan = plan;
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: plan.environment }]);
  const what = `${plan.selection} (${plan.objects} objects, ${formatBytes(plan.bytes)}) from ${describeOrigin(plan.origin)}`;
  board.subject = what;

  // 2. In place: the restore gate, showing exactly what is overwritten, written and deleted.
  if (plan.into.kind === 'in-place') {
    const p = plan.inPlace!;
    const policy = await quick.resolveGatePolicy.executeWithOptions({ startToCloseTimeout: '1 minute' }, [plan.environment, 'restore', input.requestedBy]);
    let decision;
    try {
      decision = await gates.request(
        policy,
        {
          title: `restore ${plan.objects} objects of ${plan.target} IN PLACE into ${plan.into.bucket}`,
          facts: [
            { label: 'target', value: `${plan.target} (${plan.environment})` },
            { label: 'from', value: describeOrigin(plan.origin) },
            { label: 'objects', value: `${plan.selection}: ${plan.objects} objects, ${formatBytes(plan.bytes)}` },
            { label: 'in place', value: `${p.overwrite} overwritten (each keeps its previous version: the bucket is versioned), ${p.create} written where missing, ${p.unchanged} already equal and left alone` },
            {
              label: 'deleted',
              value: plan.mirrorDeletes
                ? `${plan.mirrorDeletes.length} objects the backup does not have (--mirror)${plan.mirrorDeletes.length ? `: ${firstFew(plan.mirrorDeletes, 5)}; each gets a delete marker, its versions stay` : ''}`
                : `none: ${p.newer} newer objects the backup does not have stay as they are`,
            },
            { label: 'undo', value: `restore --in-place --to the time this restore begins writing (its versions are kept)` },
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

  let bucket: FilesRestoreBucket | undefined;
  let bucketAttempted = false;
  try {
    // 3. New bucket: made and tagged with this run as its owner before a byte is written.
    if (plan.into.kind === 'new-bucket') {
      board.enter('preparing', `making the new bucket ${plan.into.bucket} in ${plan.into.store}, owned by this run`);
      bucketAttempted = true;
      bucket = await quick.createFilesRestoreBucket.executeWithOptions(
        { startToCloseTimeout: '5 minutes', cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Make the bucket ${plan.into.bucket}` },
        [plan],
      );
    }

    // 4. Copy, each object hashed as it streams; progress in objects and bytes on the heartbeats.
    report.startedWritingAt = new Date().toISOString();
    board.enter('restoring', `${what} into ${plan.into.kind === 'in-place' ? `${plan.into.bucket} in place` : `the new bucket ${plan.into.bucket}`}`);
    report.copy = await long.restoreFiles.executeWithOptions(
      { startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary: `Restore ${plan.objects} objects into ${plan.into.bucket}` },
      [plan, input.selection],
    );

    // 5. Verify every object.
    board.enter('verifying', `reading back ${plan.objects} objects of ${plan.into.bucket}: SHA-256, size, content type, metadata`);
    report.checks = await long.verifyFilesRestore.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Verify ${plan.into.bucket}` }, [plan, input.selection]);
    for (const c of report.checks) board.validated(c);
    const failed = report.checks.filter((c) => !c.ok);
    if (failed.length) throw ApplicationFailure.nonRetryable(`verification of ${plan.into.bucket} failed (${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')})`, 'VERIFICATION_FAILED');

    // 6. --mirror: only after the restore verified, only what the gate listed.
    if (plan.mirrorDeletes?.length) {
      board.enter('mirroring', `deleting the ${plan.mirrorDeletes.length} objects the backup does not have, as approved`);
      const mirrored = await long.deleteMirroredObjects.executeWithOptions({ startToCloseTimeout: '2 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Delete ${plan.mirrorDeletes.length} objects the backup does not have` }, [plan]);
      report.mirrorDeleted = mirrored.deleted;
      report.cleanup.push(`${mirrored.detail}${mirrored.leftAlone ? `; ${mirrored.leftAlone} listed at the gate were gone already` : ''}`);
    }
  } catch (err) {
    const cancelled = isCancellation(err);
    report.outcome = cancelled ? 'cancelled' : failureType(err) === 'VERIFICATION_FAILED' ? 'verification-failed' : 'failed';
    report.failure = cancelled ? 'cancelled' : describeFailure(err);
    // Compensation runs even when the workflow is being cancelled, and removes only this run's bucket.
    await CancellationScope.nonCancellable(async () => {
      if (bucketAttempted) {
        const made = bucket ?? { store: plan.into.store, bucket: plan.into.bucket };
        board.enter('cleaning-up', `emptying and removing ${made.bucket}, which this run made`);
        try {
          report.cleanup.push(await quick.removeFilesRestoreBucket.executeWithOptions({ startToCloseTimeout: '30 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Remove ${made.bucket}` }, [made]));
        } catch (cleanupErr) {
          report.cleanup.push(`the bucket ${made.bucket} could not be removed (${describeFailure(cleanupErr)}): check its owner tags and remove it by hand if this run made it`);
        }
      } else if (plan.into.kind === 'in-place' && report.startedWritingAt) {
        report.undo = undoCommand(plan, input, report.startedWritingAt);
        report.cleanup.push(`nothing deleted in ${plan.into.bucket}: the objects written before the stop are new versions, each over its previous version, which stays; to put them back: ${report.undo}`);
      }
      board.enter(report.outcome, `${report.failure}${report.cleanup.length ? `; ${report.cleanup.join('; ')}` : ''}`);
      await quick.notify
        .executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: restore stopped' }, [
          { severity: cancelled ? 'warning' : 'critical', title: `Files restore of ${plan.target} ${cancelled ? 'cancelled' : 'failed'}`, text: `${report.failure}${report.cleanup.length ? `\n${report.cleanup.join('\n')}` : ''}`, target: plan.target },
        ])
        .catch(() => undefined);
    });
    throw err;
  }

  report.outcome = 'restored';
  if (plan.into.kind === 'in-place') report.undo = undoCommand(plan, input, report.startedWritingAt!);
  const c = report.copy!;
  const summary = `${c.written} objects (${formatBytes(c.bytes)}) restored into ${plan.into.bucket}${c.unchanged ? `, ${c.unchanged} already equal` : ''}; every object verified${report.mirrorDeleted ? `; ${report.mirrorDeleted} deleted (--mirror)` : ''}`;
  await quick.notify
    .executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: restore complete' }, [
      { severity: 'info', title: `Files restore of ${plan.target} complete`, text: `${summary}. From ${describeOrigin(plan.origin)}, ${plan.selection}.`, target: plan.target },
    ])
    .catch(() => undefined);
  board.enter('done', summary);
  return report;
}

/** An in-place restore's undo: the same objects, in place, as they were just before it wrote. */
function undoCommand(plan: ValidatedFilesRestore, input: FilesRestoreInput, startedAt: string): string {
  const before = new Date(Date.parse(startedAt) - 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const selection = input.selection.keys ? ` --keys-from ${input.selection.keysFrom ?? '<the same key list>'}` : input.selection.prefix ? ` --prefix ${input.selection.prefix}` : '';
  return `lifeboat restore ${plan.target} --to ${before} --in-place${selection} --reason "undo ${workflowInfo().workflowId}"`;
}
