/**
 * failback: the planned way home after a drFailover, once the primary region is back.
 *
 *   settings (what the failover left, checked) -> re-protect each DR primary into both regions
 *     -> gate `failback` -> fence the DR primary, ship its final WAL -> restore a NEW instance in
 *     the primary region up to it -> prove no committed transaction was lost -> move the names
 *     home (recorded, proven through DNS) -> protect the new primary -> check the application
 *     -> gate `retire` -> remove the DR primary
 *
 * Writes stop at the fence and resume when the names lead to the new instance: that window is
 * the write outage the report measures. Undo until the names have moved: a failure or cancel
 * points moved names back at the DR primary, unfences it (it serves writes again) and removes
 * the instance this run restored; a rejected retire keeps the DR primary, fenced and unnamed.
 * The old primary (the configured source) is never touched: the report says what to do with it.
 */
import { ActivityOptions, ApplicationFailure, CancellationScope, isCancellation, patched, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Decision } from '../domain/approval';
import { FailbackDatabase, FailbackDatabaseReport, FailbackInput, FailbackOutcome, FailbackReport } from '../domain/failback';
import type { FailoverStepState } from '../domain/failover';
import type { InstanceDescription } from '../domain/ports';
import { TrafficChange } from '../domain/restore';
import { ApprovalGates } from './approval-gate';
import { describeFailure } from './failure';
import { agentQueueOf, HOST_WORK_ON_AGENTS, onHost } from './host-work';
import { LifeboatEnvironment, LifeboatIncidentId, LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { CRASH_RETRY, STEP_HEARTBEAT } from './step-heartbeat';

const QUICK: ActivityOptions = { startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } };
const LONG: ActivityOptions = { startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 } };
const quick = proxyActivities<Activities>(QUICK);
const long = proxyActivities<Activities>(LONG);

const now = () => new Date().getTime();
const seconds = (ms: number) => Math.round(ms / 1000);
const endpointText = (e?: { host: string; port?: number }) => (e ? `${e.host}${e.port !== undefined ? `:${e.port}` : ''}` : 'nothing');

/** The new instance's name: from this run's workflow id and the target, so a retry adopts its own. */
export function failbackInstanceName(workflowId: string, target: string): string {
  const cleaned = `${workflowId}-${target}`.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  return (/^[a-z]/.test(cleaned) ? cleaned : `fb-${cleaned}`).slice(0, 60).replace(/-$/, '');
}

export async function failback(input: FailbackInput): Promise<FailbackReport> {
  const workflowId = workflowInfo().workflowId;
  const startedAt = now();
  const board = new StatusBoard('failback', input.failoverId);
  const gates = new ApprovalGates(board);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'failback' },
    { key: LifeboatTarget, value: 'recovery-plan' },
    ...(input.incidentId ? [{ key: LifeboatIncidentId, value: input.incidentId }] : []),
  ]);
  const t = input.timings ?? {};
  const decisions: Decision[] = [];
  const notes: string[] = [];
  const cleanup: string[] = [];
  const reports = new Map<string, FailbackDatabaseReport>();
  /** Names moved home, in order: what a rollback undoes, newest first. */
  const moved: Array<{ db: FailbackDatabase; change: TrafficChange }> = [];
  let fencedAt: number | undefined;
  let applicationServingAt: number | undefined;

  // Each database's DR primary and the instance restored home live on its host: that work runs on
  // the target's agent when it has one (patch host-work-on-agents), found there first; the names,
  // the proof over the network, the gates and the report stay here.
  const hostQueues = new Map<string, string | undefined>();
  const host = (target: string) => ({ quick: onHost(QUICK, hostQueues.get(target)), long: onHost(LONG, hostQueues.get(target)) });
  let drPrimaries: Record<string, InstanceDescription | null> | undefined;
  if (patched(HOST_WORK_ON_AGENTS)) {
    drPrimaries = {};
    const targets = await quick.failbackTargets.executeWithOptions({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 3 }, summary: `Find the databases failover ${input.failoverId} restored` }, [input.failoverId]);
    for (const { target, madeBy } of targets) {
      hostQueues.set(target, await agentQueueOf(target));
      drPrimaries[target] = await host(target).quick.findDrPrimary.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Find the DR primary ${madeBy} made for ${target}` }, [target, madeBy]);
    }
  }
  const settings = await quick.failbackSettings.executeWithOptions({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 3 }, summary: `Read what failover ${input.failoverId} left` }, drPrimaries ? [input.failoverId, drPrimaries] : [input.failoverId]);
  upsertSearchAttributes([{ key: LifeboatEnvironment, value: settings.environment }]);
  const step = (name: string, kind: string) => board.planSteps.push({ name, kind, state: 'waiting' });
  for (const db of settings.databases) {
    reports.set(db.target, { target: db.target, drInstanceId: db.drInstanceId, names: [], seconds: {} });
    step(`reprotect-${db.target}`, 'reprotect');
    step(`restore-${db.target}`, 'restore-database');
    step(`move-${db.target}`, 'move-name');
  }
  for (const c of settings.checks) step(c.step, 'check-application');
  for (const db of settings.databases) step(`retire-${db.target}`, 'retire');
  const setStep = (name: string, state: FailoverStepState, detail?: string) => {
    const s = board.planSteps.find((p) => p.name === name);
    if (!s) return;
    s.state = state;
    if (detail !== undefined) s.detail = detail;
    board.stepsChanged();
  };

  const report = (outcome: FailbackOutcome, extra: Partial<FailbackReport> = {}): FailbackReport => ({
    workflowId,
    failoverId: input.failoverId,
    outcome,
    requestedBy: input.requestedBy,
    reason: input.reason,
    ...(input.incidentId ? { incidentId: input.incidentId } : {}),
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date().toISOString(),
    databases: [...reports.values()].map((r) => ({ ...r, names: r.names.map((n) => ({ ...n })) })),
    ...(fencedAt !== undefined && applicationServingAt !== undefined ? { writeOutageSeconds: seconds(applicationServingAt - fencedAt), applicationServingAt: new Date(applicationServingAt).toISOString() } : {}),
    decisions: [...decisions],
    notes: [...notes],
    cleanup: [...cleanup],
    ...extra,
  });
  const finish = async (r: FailbackReport): Promise<FailbackReport> => {
    try {
      await quick.recordFailbackReport.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: 'Record the report in the catalog and the evidence buckets' }, [r]);
      return r;
    } catch (err) {
      if (isCancellation(err)) throw err;
      return { ...r, notes: [...r.notes, `the report could not be recorded: ${describeFailure(err)}`] };
    }
  };
  const gate = async (name: 'failback' | 'retire', title: string, facts: Array<{ label: string; value: string }>) => {
    const policy = await quick.resolveGatePolicy.executeWithOptions({ startToCloseTimeout: '15 seconds' }, [settings.environment, name, input.requestedBy]);
    const decision = await gates.request(policy, { title, facts }, { remindAfterMs: t.remindAfterMs ?? settings.gateTimings.remindAfterMs, abortAfterMs: t.abortAfterMs ?? settings.gateTimings.abortAfterMs });
    decisions.push(decision);
    return decision;
  };

  // 1. Re-protect: the DR primaries' WAL and a complete full backup in both regions. Nothing
  // serves differently because of it, so it needs no gate; it is what the restore home starts from.
  board.enter('reprotecting', 'archiving each DR primary\'s WAL into both regions and taking a full backup in each');
  try {
    for (const db of settings.databases) {
      const r = reports.get(db.target)!;
      setStep(`reprotect-${db.target}`, 'running');
      const began = now();
      r.reprotection = await host(db.target).long.reprotectDrPrimary.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Re-protect ${db.drInstanceId} into both regions` }, [db.target, db.drInstanceId]);
      r.seconds.reprotect = seconds(now() - began);
      setStep(`reprotect-${db.target}`, 'done', r.reprotection.measures.join('; '));
    }
  } catch (err) {
    const failure = describeFailure(err);
    board.enter(isCancellation(err) ? 'cancelled' : 'failed', `re-protection did not finish (${failure}); nothing serves differently, the DR primaries keep serving`);
    const r = report(isCancellation(err) ? 'cancelled' : 'failed', { failure });
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => finish(r));
      throw err;
    }
    await finish(r);
    throw ApplicationFailure.nonRetryable(`the failback failed: ${failure}`, 'FAILBACK_FAILED', r);
  }

  // 2. The switch back, behind its gate.
  const go = await gate('failback', `FAIL BACK to the primary region: ${settings.databases.map((d) => d.target).join(', ')}`, [
    ...settings.databases.map((d) => ({
      label: d.target,
      value: `${d.drInstanceId} (${endpointText(d.drEndpoint)}) is fenced, its final WAL shipped, and a new instance restored in the primary region from backup ${reports.get(d.target)!.reprotection!.backups.primary.backupId} up to it`,
    })),
    { label: 'names moved home', value: settings.databases.flatMap((d) => d.names.map((n) => `${n.dnsName}: ${endpointText(d.drEndpoint)} -> the new instance`)).join('; ') || 'none' },
    { label: 'write outage', value: 'writes fail from the fence until the names lead to the new instance (reads go on); measured in the report' },
    { label: 'undo', value: 'until the names move, a failure unfences the DR primary and removes the new instance; moved names are recorded first and pointed back on failure' },
    { label: 'the old primary', value: 'is not touched: it no longer serves the names and is not restored over' },
  ]);
  if (go.decision !== 'approved') {
    board.enter(go.decision, `${go.decision} by ${go.by}: ${go.reason}; the DR primaries keep serving, re-protected`);
    return finish(report(go.decision === 'rejected' ? 'rejected' : 'expired'));
  }

  const fences = new Map<string, NonNullable<FailbackDatabaseReport['fence']>>();
  const restored = new Map<string, { instanceId: string; endpoint?: { host: string; port: number }; attempted: boolean }>();
  try {
    // 3-5. Per database: fence, ship the final WAL, restore up to it, prove nothing was lost.
    for (const db of settings.databases) {
      const r = reports.get(db.target)!;
      setStep(`restore-${db.target}`, 'running', `fencing ${db.drInstanceId}`);
      board.enter('fencing', `making ${db.drInstanceId} read-only: writes stop here until the names move home`);
      fencedAt ??= now();
      r.fence = await host(db.target).quick.fenceDrPrimary.executeWithOptions({ summary: `Fence ${db.drInstanceId}` }, [db.target, db.drInstanceId]);
      fences.set(db.target, r.fence);
      board.enter('shipping-wal', `shipping the last WAL of ${db.drInstanceId} to both regions`);
      r.finalWal = await host(db.target).quick.shipFinalWal.executeWithOptions({ summary: `Ship the final WAL of ${db.drInstanceId}` }, [db.target, db.drInstanceId]);
      const destination = failbackInstanceName(workflowId, db.target);
      restored.set(db.target, { instanceId: destination, attempted: true });
      board.enter('restoring', `restoring ${db.target} in the primary region into ${destination}, up to ${r.finalWal.lsn ?? 'the final snapshot'}`);
      const began = now();
      const started = await host(db.target).long.restoreInPrimaryRegion.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Restore ${db.target} into ${destination} in the primary region` }, [db.target, destination, r.finalWal, r.reprotection!]);
      const available = await host(db.target).long.waitUntilAvailable.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Wait for ${destination}` }, [db.target, started.instanceId, t.pollIntervalMs ?? 5000]);
      r.seconds.restore = seconds(now() - began);
      r.restoredInstanceId = available.instanceId;
      r.restoredEndpoint = available.endpoint;
      restored.set(db.target, { instanceId: available.instanceId, endpoint: available.endpoint, attempted: true });
      board.enter('proving', `comparing every table of ${available.instanceId} with the fenced ${db.drInstanceId}`);
      r.proof = await long.proveNoLostTransactions.executeWithOptions({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Prove ${available.instanceId} holds every transaction of ${db.drInstanceId}` }, [db.target, db.drEndpoint, available.endpoint!]);
      if (!r.proof.ok) throw ApplicationFailure.nonRetryable(`${db.target}: ${r.proof.detail}`, 'FAILBACK_DATA_DIFFERS');
      setStep(`restore-${db.target}`, 'done', `${available.instanceId} at ${endpointText(available.endpoint)}: ${r.proof.detail}`);
    }

    // 6. Names home: recorded, moved, proven through DNS. From the first move, the new instance serves.
    board.enter('moving-names', 'pointing each name at its new instance in the primary region');
    for (const db of settings.databases) {
      const r = reports.get(db.target)!;
      const endpoint = r.restoredEndpoint!;
      setStep(`move-${db.target}`, 'running');
      await host(db.target).quick.prepareToServe.executeWithOptions({ summary: `Ready ${r.restoredInstanceId} to take traffic` }, [db.target, r.restoredInstanceId!]);
      for (const name of db.names) {
        const change = await quick.recordTrafficBefore.executeWithOptions({ summary: `Record what ${name.dnsName} points at now` }, [db.target, name, endpoint]);
        await host(db.target).quick.markServedTraffic.executeWithOptions({ summary: `Mark ${r.restoredInstanceId} as serving traffic` }, [db.target, r.restoredInstanceId!]);
        moved.push({ db, change });
        const outcome: FailbackDatabaseReport['names'][number] = { name: name.dnsName, from: endpointText(change.previous.endpoint), to: endpointText(endpoint), state: 'not-moved', detail: 'recorded', change };
        r.names.push(outcome);
        await quick.moveTraffic.executeWithOptions({ summary: `Point ${name.dnsName} at ${r.restoredInstanceId}` }, [change]);
        outcome.state = 'moved';
        const through = await quick.verifyThroughDns.executeWithOptions({ summary: `Connect through ${name.dnsName}` }, [db.target, name, endpoint]);
        if (!through.ok) throw ApplicationFailure.nonRetryable(`${name.dnsName}: the move did not take: ${through.detail}`, 'FAILBACK_NOT_SERVED');
        outcome.detail = through.detail;
      }
      setStep(`move-${db.target}`, 'done', r.names.map((n) => `${n.name}: ${n.from} -> ${n.to}`).join('; ') || 'no names to move');
    }

    // 7. The application, through the names, from the new instances.
    board.enter('checking-application', 'waiting for the application to answer from the primary region');
    for (const c of settings.checks) {
      setStep(c.step, 'running');
      const expect = c.servesFrom ? reports.get(c.servesFrom)?.restoredEndpoint : undefined;
      const check = await quick.checkApplication.executeWithOptions(
        { startToCloseTimeout: c.timeoutMs + 60000, heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 1 }, summary: `Check the application at ${c.url}` },
        [{ url: c.url, ...(expect ? { expect } : {}), timeoutMs: c.timeoutMs, intervalMs: t.appCheckIntervalMs ?? 2000 }],
      );
      if (!check.ok) throw ApplicationFailure.nonRetryable(`${c.step}: ${check.detail}`, 'APPLICATION_NOT_SERVING');
      applicationServingAt = Math.max(applicationServingAt ?? 0, Date.parse(check.firstCorrectAt!));
      setStep(c.step, 'done', check.detail);
    }
    applicationServingAt ??= now();
  } catch (err) {
    const cancelled = isCancellation(err);
    const failure = describeFailure(err);
    await CancellationScope.nonCancellable(async () => {
      board.enter('rolling-back', 'pointing names back at the DR primaries, unfencing them, removing what this run restored');
      for (const { db, change } of [...moved].reverse()) {
        const outcome = reports.get(db.target)!.names.find((n) => n.name === change.name);
        try {
          const detail = await quick.rollBackFailoverName.executeWithOptions({ summary: `Point ${change.name} back at ${endpointText(change.previous.endpoint)}` }, [change]);
          if (outcome) Object.assign(outcome, { state: 'rolled-back', detail });
          cleanup.push(detail);
        } catch (rollbackErr) {
          if (outcome) Object.assign(outcome, { state: 'rollback-failed', detail: describeFailure(rollbackErr) });
          cleanup.push(`ROLLBACK FAILED for ${change.name} (${describeFailure(rollbackErr)}); point it back with: ${change.repairCommand}`);
        }
      }
      for (const [target, fence] of fences) {
        try {
          cleanup.push(await host(target).quick.unfenceDrPrimary.executeWithOptions({ summary: `Unfence ${fence.instanceId}` }, [target, fence]));
        } catch (unfenceErr) {
          cleanup.push(`UNFENCE FAILED for ${fence.instanceId} (${describeFailure(unfenceErr)}); undo it with: ${fence.undoCommand ?? `make ${fence.instanceId} writable again by hand`}`);
        }
      }
      // An instance a name led to is never removed automatically (the engine refuses); the rest go.
      for (const [target, made] of restored) {
        if (!made.attempted) continue;
        cleanup.push(await host(target).quick.removeRestoredInstance.executeWithOptions({ startToCloseTimeout: '10 minutes', summary: `Remove ${made.instanceId}` }, [target, made.instanceId]).catch((e: unknown) => `${made.instanceId} not removed: ${describeFailure(e)}`));
      }
      for (const s of board.planSteps) if (['waiting', 'running'].includes(s.state)) setStep(s.name, 'failed', cancelled ? 'cancelled' : 'not completed');
      board.enter(cancelled ? 'cancelled' : 'failed', `${failure}; ${cleanup.join('; ')}`);
    });
    const r = report(cancelled ? 'cancelled' : 'failed', { failure });
    if (cancelled) {
      await CancellationScope.nonCancellable(() => finish(r));
      throw err;
    }
    await CancellationScope.nonCancellable(() => finish(r));
    await quick.notify({ severity: 'critical', title: 'Failback failed and was rolled back', text: `${failure}; ${cleanup.join('; ')}`, target: 'recovery-plan' }).catch(() => undefined);
    throw ApplicationFailure.nonRetryable(`the failback failed and was rolled back: ${failure}`, 'FAILBACK_FAILED', r);
  }

  // 8. The new primaries protected: WAL archived on their timeline, a full backup started.
  for (const db of settings.databases) {
    const r = reports.get(db.target)!;
    const protection = await host(db.target).quick.protectAsNewPrimary.executeWithOptions({ startToCloseTimeout: '30 minutes', summary: `Protect ${r.restoredInstanceId} as the new primary` }, [db.target, r.restoredInstanceId!]);
    r.protection = [...protection.measures];
    if (protection.backup) {
      // Waited for: the new primary is not protected until its first backup is whole.
      const done = await host(db.target).long.waitForDatabaseBackup.executeWithOptions({ startToCloseTimeout: '12 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Wait for the first backup of ${r.restoredInstanceId}` }, [db.target, protection.backup, t.pollIntervalMs ?? 5000]);
      r.protection.push(`first full backup ${done.handle.backupId} complete`);
    }
  }
  notes.push(`writes were refused for ${seconds(applicationServingAt - fencedAt!)} s: from the fence of the first DR primary to the application answering from the primary region`);
  notes.push('the old primary (the configured source) was not touched; point the target\'s source in the config at the new instance, or rebuild the old primary from the new one, before the next scheduled backup');

  // 9. Retire the DR primaries, behind their own gate: they are fenced and no name leads to them.
  const retire = await gate('retire', `RETIRE the DR primaries: ${settings.databases.map((d) => d.drInstanceId).join(', ')}`, [
    ...settings.databases.map((d) => ({ label: d.drInstanceId, value: `fenced, no name leads to it; its data is in ${reports.get(d.target)!.restoredInstanceId} (${reports.get(d.target)!.proof!.detail})` })),
    { label: 'if rejected', value: 'they stay, fenced; remove them by hand once no longer needed' },
  ]);
  for (const db of settings.databases) {
    const r = reports.get(db.target)!;
    if (retire.decision !== 'approved') {
      r.retired = `kept (retire ${retire.decision} by ${retire.by}): fenced, no name leads to it`;
      setStep(`retire-${db.target}`, 'skipped', r.retired);
      continue;
    }
    setStep(`retire-${db.target}`, 'running');
    r.retired = await host(db.target).quick.retireDrPrimary.executeWithOptions({ startToCloseTimeout: '15 minutes', summary: `Retire ${db.drInstanceId}` }, [db.target, db.drInstanceId, db.failoverRun]);
    setStep(`retire-${db.target}`, 'done', r.retired);
  }
  const r = report('failed-back');
  board.enter('done', `failed back: the application answers from the primary region; writes were refused for ${r.writeOutageSeconds ?? '?'} s; ${settings.databases.map((d) => d.target).join(', ')} lost no committed transaction`);
  return finish(r);
}
