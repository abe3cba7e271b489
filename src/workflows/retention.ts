/**
 * retention: expires what the policy says, in both regions, for every kind of backup.
 *
 *   plan (catalog + policy + legal holds, pure rules in src/domain/retention.ts)
 *   -> [unless dryRun] expire each backup, newest first within its series so what depends on a
 *      backup goes before it (after `batchSize` expiries the run continues as new with the rest,
 *      so the history stays small) -> notify
 *
 * It never deletes the last verified backup of a target and kind, a backup a kept one needs, or
 * anything under legal hold; an engine's refusal (a pgBackRest set others depend on, the newest
 * full) is reported and recorded, never overridden. Every deletion is recorded in the catalog.
 */
import { ActivityOptions, continueAsNew, isCancellation, patched, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ExpiryOutcome, isDatabaseSet, RetentionInput, RetentionItem, RetentionReport } from '../domain/retention';
import { LifeboatKind, LifeboatTarget } from './search-attributes';
import { describeFailure } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const LONG: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: STEP_HEARTBEAT,
  retry: { maximumAttempts: 5, initialInterval: '5 seconds', backoffCoefficient: 2 },
};
const long = proxyActivities<Activities>(LONG);

/** Expiries per run before continuing as new (each adds a few events to the history). */
const DEFAULT_BATCH_SIZE = 100;

export async function retention(input: RetentionInput = {}): Promise<RetentionReport> {
  const { workflowId } = workflowInfo();
  const scope = input.target ?? 'all targets';
  const board = new StatusBoard('retention', scope);
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'retention' },
    { key: LifeboatTarget, value: input.target ?? 'all' },
  ]);
  // Workflow time is deterministic on replay; `now` lets a test or an operator judge as of another time.
  const now = input.now ?? new Date().toISOString();
  const dryRun = input.dryRun ?? false;
  const batchSize = Math.max(1, Math.floor(input.batchSize ?? DEFAULT_BATCH_SIZE));
  const carried = input.continued;
  const list = (items: RetentionItem[]) => items.map((i) => `- ${i.target} ${i.backupType} ${i.engineBackupId} (${i.completedAt}): ${i.reasons.join('; ')}`).join('\n');

  let report: RetentionReport;
  let toExpire: RetentionItem[];
  let keptCount: number;
  if (carried) {
    // A continuation: the first run planned; this one works through what it left.
    toExpire = carried.remaining;
    keptCount = carried.kept;
    report = { workflowId, now: carried.now, dryRun, policy: carried.policy, kept: [], toExpire, outcomes: [] };
  } else {
    board.enter('planning', `deciding what the policy keeps for ${scope}, as of ${now}`);
    const plan = await quick.planRetention.executeWithOptions({ startToCloseTimeout: '5 minutes', summary: `Plan retention for ${scope}` }, [input.target, now]);
    toExpire = plan.items.filter((i) => i.action === 'expire');
    const kept = plan.items.filter((i) => i.action === 'keep');
    keptCount = kept.length;
    report = { workflowId, now: plan.now, dryRun, policy: plan.policy, kept, toExpire, outcomes: [] };
    if (dryRun || toExpire.length === 0) {
      board.enter('done', `${dryRun ? 'dry run: would expire' : 'nothing to expire;'} ${toExpire.length} of ${plan.items.length} backups\n\n${list(toExpire)}`);
      return report;
    }
  }
  // Each target's agent is asked once per run.
  const hostQueues = new Map<string, string | undefined>();
  const hostQueueOf = async (target: string): Promise<string | undefined> => {
    if (!hostQueues.has(target)) hostQueues.set(target, await agentQueueOf(target));
    return hostQueues.get(target);
  };
  const doneBefore = carried?.done ?? 0;
  const total = doneBefore + toExpire.length;

  for (const [n, item] of toExpire.entries()) {
    // Thousands of expiries would make a history too large to replay quickly: hand the rest on.
    if (n >= batchSize && patched('retention-continue-as-new')) {
      const expiredHere = report.outcomes.filter((o) => o.outcome === 'expired');
      const refusedHere = report.outcomes.filter((o) => o.outcome === 'refused' || o.outcome === 'failed');
      board.enter('continuing', `${doneBefore + n} of ${total} decided; continuing as a new run with the other ${toExpire.length - n}`);
      await continueAsNew<typeof retention>({
        ...input,
        now: report.now,
        continued: {
          now: report.now,
          policy: report.policy,
          kept: keptCount,
          remaining: toExpire.slice(n),
          done: doneBefore + n,
          expired: (carried?.expired ?? 0) + expiredHere.length,
          refused: (carried?.refused ?? 0) + refusedHere.length,
          refusals: [...(carried?.refusals ?? []), ...refusedHere.map(refusalLine)].slice(0, 50),
          runs: (carried?.runs ?? 0) + 1,
        },
      });
    }
    board.enter('expiring', `${doneBefore + n + 1} of ${total}: ${item.target} ${item.backupType} ${item.engineBackupId} in ${item.regions.join(' and ') || 'no recorded region'}`);
    let outcome: ExpiryOutcome;
    try {
      // A database set of a target on an agent is expired by pgBackRest on that host (patch
      // host-work-on-agents); dumps, file sets and targets without an agent stay here.
      const queue = isDatabaseSet(item.backupType) ? await hostQueueOf(item.target) : undefined;
      const options: ActivityOptions = { startToCloseTimeout: '2 hours', heartbeatTimeout: STEP_HEARTBEAT, summary: `Expire ${item.target} ${item.backupType} ${item.engineBackupId}${queue ? ' on its agent' : ''}` };
      outcome = queue
        ? await onHost(LONG, queue).expireDatabaseBackup.executeWithOptions(options, [item.catalogId, item.reasons.join('; ')])
        : await long.expireBackup.executeWithOptions(options, [item.catalogId, item.reasons.join('; ')]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      // One backup that cannot be deleted (a store gone from the config, retries used up) does not keep the rest.
      outcome = { catalogId: item.catalogId, target: item.target, backupType: item.backupType, engineBackupId: item.engineBackupId, outcome: 'failed', regions: [], detail: describeFailure(err) };
    }
    report.outcomes.push(outcome);
  }

  const expired = report.outcomes.filter((o) => o.outcome === 'expired');
  const refused = report.outcomes.filter((o) => o.outcome === 'refused' || o.outcome === 'failed');
  const expiredCount = (carried?.expired ?? 0) + expired.length;
  const refusedCount = (carried?.refused ?? 0) + refused.length;
  if (carried) report.totals = { runs: carried.runs + 1, expired: expiredCount, refused: refusedCount, decided: total };
  const text = [
    `Expired ${expiredCount}, not expired (refused or failed) ${refusedCount}, kept ${keptCount} (policy: ${report.policy.daily} days, ${report.policy.weekly} weeks, ${report.policy.monthly} months; as of ${report.now})${carried ? `, over ${carried.runs + 1} runs` : ''}.`,
    ...expired.map((o) => `expired ${o.target} ${o.backupType} ${o.engineBackupId}`),
    ...(carried?.refusals ?? []),
    ...refused.map(refusalLine),
  ].join('\n');
  await quick.notify.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Notify: retention done' }, [
    { severity: refusedCount ? 'warning' : 'info', title: `Retention ${refusedCount ? 'done with refusals' : 'done'}: ${scope}`, text, target: input.target, fields: { expired: expiredCount, refused: refusedCount, kept: keptCount } },
  ]);
  board.enter('done', text);
  return report;
}

function refusalLine(o: ExpiryOutcome): string {
  return `KEPT (${o.outcome}) ${o.target} ${o.backupType} ${o.engineBackupId}: ${o.detail}`;
}
