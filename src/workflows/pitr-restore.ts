/**
 * pitrRestore: the data as it was at a point in time, in a NEW instance, never over the source.
 *
 *   validate (no side effects) -> approval gate -> restore -> WAL replay -> verify
 *     -> [cutover gate -> DNS cutover -> connect through the name] -> report
 *
 * Failure or cancellation after the instance exists: compensation in a non-cancellable scope
 * removes it (unless `keep`), and the report says what was removed. A failed verification
 * never leads to cutover.
 */
import { ActivityCancellationType, ApplicationFailure, CancellationScope, isCancellation, patched, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Decision } from '../domain/approval';
import { InstanceDescription } from '../domain/ports';
import { PhaseDurations, PitrRestoreInput, PitrRestoreReport, RestoreOutcome, ValidatedRestore } from '../domain/restore';
import { LifeboatEnvironment, LifeboatIncidentId, LifeboatKind, LifeboatTarget } from '../domain/search-attributes';
import { VerificationSummary } from '../domain/verification';
import { ApprovalGates } from './approval-gate';
import { StatusBoard } from './status-board';
import { describeFailure } from './failure';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const long = proxyActivities<Activities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 },
});

const now = () => new Date().getTime();
const seconds = (ms: number) => Math.round(ms / 1000);

export async function pitrRestore(input: PitrRestoreInput): Promise<PitrRestoreReport> {
  const workflowId = workflowInfo().workflowId;
  const requestedAt = now();
  const board = new StatusBoard('point-in-time restore', input.target);
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'pitr-restore' },
    { key: LifeboatTarget, value: input.target },
    ...(input.incidentId ? [{ key: LifeboatIncidentId, value: input.incidentId }] : []),
  ]);
  const phases: PhaseDurations = { validation: 0, waitingForApproval: 0, restore: 0, walReplay: 0, verification: 0, cutover: 0 };
  const decisions: Decision[] = [];
  const cleanup: string[] = [];
  let instance: InstanceDescription | undefined;
  let verification: VerificationSummary | undefined;
  // Assigned once validation answers; the report and gate helpers defined before that read it.
  // eslint-disable-next-line prefer-const
  let validated: ValidatedRestore | undefined;
  /** From here on a (half-made) instance may exist, and failure must remove it. */
  let restoreAttempted = false;

  const report = (outcome: RestoreOutcome, extra: Partial<PitrRestoreReport> = {}): PitrRestoreReport => ({
    workflowId,
    outcome,
    target: input.target,
    requestedBy: input.requestedBy,
    reason: input.reason,
    incidentId: input.incidentId,
    restorePoint: validated?.pointTime ?? input.restorePoint,
    destination: instance ? { instanceId: instance.instanceId, endpoint: instance.endpoint } : undefined,
    verification,
    decisions,
    cleanup,
    ...extra,
  });
  const finish = async (r: PitrRestoreReport): Promise<PitrRestoreReport> => {
    await quick.recordRestoreReport.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the report in the catalog' }, [r]);
    return r;
  };
  const gate = async (name: Parameters<Activities['resolveGatePolicy']>[1], title: string, facts: Array<{ label: string; value: string }>) => {
    const policy = await quick.resolveGatePolicy(validated!.environment, name, input.requestedBy);
    const started = now();
    const decision = await gates.request(policy, { title, facts }, validated!.timings);
    phases.waitingForApproval += seconds(now() - started);
    decisions.push(decision);
    return decision;
  };
  /** A cancel while the first gate waits: nothing exists yet, but the catalog still gets the run and its decisions. */
  const recordingCancellation = async (gateName: string, wait: () => Promise<Decision>): Promise<Decision> => {
    try {
      return await wait();
    } catch (err) {
      if (isCancellation(err) && patched('record-cancel-at-gate')) {
        await CancellationScope.nonCancellable(async () => {
          board.enter('cancelled', `cancelled while waiting for the ${gateName} gate; nothing was created`);
          await finish(report('cancelled', { failure: `cancelled while waiting for the ${gateName} gate; nothing was created` }));
        });
      }
      throw err;
    }
  };

  // 1. Validate: nothing exists yet, so a refusal ends the workflow with nothing to clean up.
  board.enter('validating', `checking ${input.restorePoint} against the restore window of ${input.target}`);
  let t = now();
  validated = await quick.validateRestore.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Validate the request (${input.restorePoint})` }, [input, workflowId]);
  phases.validation = seconds(now() - t);
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: validated.environment }]);
  const v = validated;
  board.rtoTargetSeconds = v.rtoTargetSeconds;

  // 2. Approval.
  const firstGate = input.mode === 'emergency' ? 'emergencyRestore' : 'restore';
  const approval = await recordingCancellation(firstGate, () => gate(firstGate, `${input.mode === 'emergency' ? 'EMERGENCY ' : ''}restore ${v.target} to ${v.pointTime ?? input.restorePoint}`, [
    { label: 'target', value: `${v.target} (${v.engine}, ${v.environment})` },
    { label: 'restore point', value: v.pointTime ? `${v.pointTime}${v.point.kind === 'latest' ? ' (latest)' : ''}` : input.restorePoint },
    { label: 'window', value: `${v.window.earliest} to ${v.window.latest}` },
    { label: 'destination', value: `new instance ${v.destinationId}${input.fromRegion === 'dr' ? ' from the DR region' : ''}` },
    { label: 'left untouched', value: `the source ${v.source.instanceId}${v.source.endpoint ? ` at ${v.source.endpoint.host}:${v.source.endpoint.port}` : ''} and its backups` },
    { label: 'requested by', value: `${input.requestedBy}: ${input.reason}${input.incidentId ? ` (incident ${input.incidentId})` : ''}` },
    { label: 'cutover', value: input.cutover ? `afterwards, behind a second gate: ${v.cutover?.dnsName ?? '(target has no DNS name)'}` : 'no' },
  ]));
  if (approval.decision !== 'approved') {
    board.enter(approval.decision, `${approval.decision} by ${approval.by}: ${approval.reason}; nothing was created`);
    return finish(report(approval.decision === 'rejected' ? 'rejected' : 'expired'));
  }

  try {
    // 3. Restore into a new instance, then let it replay WAL and promote.
    board.enter('restoring', `restoring into new instance ${v.destinationId}`);
    t = now();
    restoreAttempted = true;
    instance = await long.restoreIntoNewInstance.executeWithOptions(
      {
        startToCloseTimeout: '6 hours',
        heartbeatTimeout: '1 minute',
        // On cancel, wait until the attempt has returned: compensation must not run while it may still create the instance.
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        summary: `Restore ${v.target} into ${v.destinationId}`,
      },
      [v, input.fromRegion],
    );
    phases.restore = seconds(now() - t);
    board.enter('replaying-wal', `instance ${instance.instanceId} is replaying WAL to the restore point`);
    t = now();
    instance = await long.waitUntilAvailable.executeWithOptions(
      { startToCloseTimeout: '6 hours', heartbeatTimeout: '2 minutes', summary: `Wait for ${v.destinationId} to be available` },
      [v.target, instance.instanceId, v.timings.pollIntervalMs],
    );
    phases.walReplay = seconds(now() - t);

    // 4. Verify.
    board.enter('verifying', `checking row counts, foreign keys and smoke queries on ${instance.instanceId}`);
    t = now();
    verification = await long.verifyRestoredInstance.executeWithOptions(
      { startToCloseTimeout: '2 hours', heartbeatTimeout: '1 minute', summary: `Verify ${instance.instanceId}` },
      [v.target, instance],
    );
    phases.verification = seconds(now() - t);
    const verifiedAt = now();
    if (!verification.ok) {
      const failed = verification.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      throw ApplicationFailure.nonRetryable(`verification of ${instance.instanceId} failed (${failed.join('; ')}); no cutover`, 'VERIFICATION_FAILED');
    }

    // 5. Optional cutover behind its own gate.
    let cutover: PitrRestoreReport['cutover'];
    if (input.cutover) {
      if (!v.cutover) throw ApplicationFailure.nonRetryable(`target ${v.target} has no cutover settings (dnsName, router) in the config; the restored instance is ready at ${instance.endpoint?.host}:${instance.endpoint?.port}`, 'NO_CUTOVER_CONFIG');
      const endpoint = instance.endpoint!;
      const cutoverDecision = await gate('cutover', `point ${v.cutover.dnsName} at the restored instance ${instance.instanceId}`, [
        { label: 'name', value: v.cutover.dnsName },
        { label: 'new target', value: `${endpoint.host}:${endpoint.port} (${instance.instanceId})` },
        { label: 'verification', value: verification.checks.map((c) => `${c.name} ok`).slice(0, 6).join(', ') },
        { label: 'effect', value: 'applications connecting by this name reach the restored data from the next lookup on' },
      ]);
      if (cutoverDecision.decision === 'approved') {
        board.enter('cutting-over', `pointing ${v.cutover.dnsName} at ${endpoint.host}:${endpoint.port}`);
        t = now();
        await quick.pointDnsAt.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Point ${v.cutover.dnsName} at ${instance.instanceId}` }, [v.cutover, endpoint]);
        const through = await quick.verifyThroughDns.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Connect through ${v.cutover.dnsName}` }, [v.target, v.cutover, endpoint]);
        phases.cutover = seconds(now() - t);
        if (!through.ok) throw ApplicationFailure.nonRetryable(`cutover did not take: ${through.detail}`, 'CUTOVER_NOT_SERVED');
        cutover = { dnsName: v.cutover.dnsName, pointsAt: `${endpoint.host}:${endpoint.port}`, verifiedThroughDns: true };
      } else {
        board.enter('cutover-declined', `cutover ${cutoverDecision.decision}; the restored instance stays available without traffic`);
      }
    }

    // 6. Report.
    const rtoSeconds = seconds(verifiedAt - requestedAt);
    const result = report(cutover ? 'restored-and-cut-over' : 'restored', {
      cutover,
      rto: { seconds: rtoSeconds, targetSeconds: v.rtoTargetSeconds, withinTarget: rtoSeconds <= v.rtoTargetSeconds, phases },
      rpo: v.pointTime ? { restorePoint: v.pointTime, latestRecoverable: v.window.latest, seconds: seconds(Date.parse(v.window.latest) - Date.parse(v.pointTime)) } : undefined,
    });
    board.enter('done', `${result.outcome}: ${instance.instanceId} verified in ${rtoSeconds} s (RTO target ${v.rtoTargetSeconds} s)`);
    return await finish(result);
  } catch (err) {
    const cancelled = isCancellation(err);
    const failure = describeFailure(err);
    // Compensation must run even when the workflow is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      const made = instance?.instanceId ?? (restoreAttempted ? v.destinationId : undefined);
      if (made && !input.keep) {
        board.enter('cleaning-up', `removing ${made}`);
        cleanup.push(await quick.removeRestoredInstance.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Remove ${made}` }, [v.target, made]));
      } else if (made) {
        cleanup.push(`kept ${made} as asked (--keep)`);
      }
      board.enter(cancelled ? 'cancelled' : 'failed', `${cancelled ? 'cancelled' : failure}${cleanup.length ? `; ${cleanup.join('; ')}` : ''}`);
      const outcome: RestoreOutcome = cancelled ? 'cancelled' : failure.startsWith('verification of') ? 'verification-failed' : 'failed';
      await finish(report(outcome, { failure }));
      // Best effort: a notifier that cannot be reached must not replace the failure being reported.
      await quick
        .notify({ severity: 'critical', title: `Restore of ${input.target} ${cancelled ? 'cancelled' : 'failed'}`, text: `${failure}${cleanup.length ? `\n${cleanup.join('\n')}` : ''}`, target: input.target })
        .catch(() => undefined);
    });
    throw err;
  }
}
