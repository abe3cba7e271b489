/**
 * drillSweeper: removes drill resources whose drill is over. Started hourly by its own Temporal
 * Schedule (lifeboat-drill-sweeper), or by hand.
 *
 *   find drill instances and drill scratch buckets (named drill-..., labelled with their owner run),
 *   directory drills' scratch directories (lifeboat-drill-..., an owner file inside naming the run),
 *   SQLite drills' scratch directories (drill-..., marked with their owner run)
 *     and DynamoDB drill tables (`<table>-drill-<hex>`, tagged with their dynamodbDrill run)
 *   -> ask Temporal about each owner run -> decide (src/domain/drill-sweep.ts)
 *   -> remove those whose owner run is closed, each recorded in the catalog and notified
 *   -> report those whose owner cannot be determined; leave running drills' resources alone
 *
 * A drill removes its own resources whatever happens; the sweeper catches what a drill could
 * not (a terminated run, a worker lost with the run). It never touches anything not named and
 * labelled as a drill, anything whose owner is still running, or anything that served traffic.
 */
import { ActivityOptions, patched, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { describeResource, DrillInstanceResource, DrillResource, DrillSweepInput, DrillSweepResult, OwnerRunState, resourceKey, SweptResource, sweepVerdict } from '../domain/drill-sweep';
import { describeFailure } from './failure';
import { HOST_WORK_ON_AGENTS, onHost } from './host-work';
import { LifeboatKind, LifeboatTarget } from './search-attributes';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

/** SQLite drills' scratch directories are swept too (listed and removed on the host of their files). */
export const SWEEP_SQLITE_SCRATCH = 'drill-sweeper-sqlite-scratch';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '2 seconds' } });
const REMOVAL: ActivityOptions = { startToCloseTimeout: '30 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 3, initialInterval: '5 seconds' } };
const removal = proxyActivities<Activities>(REMOVAL);

/** The sweep looks for directory drills' scratch directories too. */
export const SWEEP_DIRECTORY_SCRATCH = 'drill-sweeper-directory-scratch';

export async function drillSweeper(input: DrillSweepInput = {}): Promise<DrillSweepResult> {
  const board = new StatusBoard('drill sweeper', 'all targets');
  upsertSearchAttributes([
    { key: LifeboatKind, value: 'drill-sweeper' },
    { key: LifeboatTarget, value: 'all' },
  ]);
  const dryRun = input.dryRun ?? false;
  const result: DrillSweepResult = { startedAt: board.startedAt, dryRun, removed: [], kept: [], reported: [] };

  board.enter('finding', 'looking for drill instances and drill scratch buckets');
  // A target with an agent keeps its drill clusters on its host: listed and removed there (patch
  // host-work-on-agents); the rest is found here. An agent that is down holds its part of the sweep.
  const hostQueues = new Map<string, string>();
  let resources: DrillResource[];
  if (patched(HOST_WORK_ON_AGENTS)) {
    for (const { target, queue } of await quick.targetsOnAgents()) hostQueues.set(target, queue);
    resources = await quick.findDrillResources([...hostQueues.keys()]);
    const listed = new Set<string>();
    for (const [target, queue] of hostQueues) {
      for (const r of await onHost(REMOVAL, queue).findDrillInstances.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `List the drill instances of ${target} on its agent` }, [target])) {
        // Targets on one host sharing a restores directory list the same instance: each is looked at once.
        if (listed.has(`${queue}:${r.name}`)) continue;
        listed.add(`${queue}:${r.name}`);
        resources.push(r);
      }
    }
  } else {
    resources = await quick.findDrillResources();
  }

  // Directory drills' scratch directories, found on each host that holds them (an agent of a
  // directory target, and the central workers); removed there too (patch, since runs recorded
  // before it never asked).
  const scratchSeen = new Set<string>();
  if (patched(SWEEP_DIRECTORY_SCRATCH)) {
    const places: Array<string | undefined> = [undefined, ...(await quick.directoryDrillHosts())];
    for (const queue of places) {
      const where = queue ? `the agent on ${queue}` : 'a central worker';
      for (const r of await onHost(REMOVAL, queue).findDrillScratchDirectories.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `List directory drills' scratch directories on ${where}` }, [queue])) {
        if (scratchSeen.has(resourceKey(r))) continue;
        scratchSeen.add(resourceKey(r));
        resources.push(r);
      }
    }
  }
  // DynamoDB drill tables a killed dynamodbDrill left (patched: sweeps before this listed none).
  if (patched('dynamodb-drill-tables')) resources.push(...(await quick.findDynamoDbDrillTables()));
  // SQLite drills' scratch directories, listed where their files live (each target's agent, or
  // here). Patched: histories from before it listed no such thing.
  const scratchQueues = new Map<string, string | undefined>();
  if (patched(SWEEP_SQLITE_SCRATCH)) {
    for (const { queue, targets } of await quick.sqliteTargetHosts()) {
      try {
        const found = await onHost(REMOVAL, queue ?? undefined).findSqliteDrillScratch.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `List the SQLite drill scratch directories of ${targets.join(', ')}` }, [targets]);
        for (const r of found) {
          scratchQueues.set(resourceKey(r), queue ?? undefined);
          resources.push(r);
        }
      } catch (err) {
        // A host that cannot be listed holds back only its own part of the sweep; the next sweep tries again.
        await quick
          .notify({ severity: 'warning', title: 'Drill sweeper could not list SQLite drill scratch directories', text: `${targets.join(', ')}: ${describeFailure(err)}. The next sweep tries again.` })
          .catch(() => undefined);
      }
    }
  }

  // One question per owner run, however many resources it left.
  const runs = new Map<string, OwnerRunState>();
  board.enter('checking-owners', `${resources.length} drill resources found; asking Temporal about their owner runs`);
  for (const r of resources) {
    if (!r.owner || !r.createdByLifeboat) continue;
    const key = `${r.owner.workflowId}\n${r.owner.runId}`;
    if (!runs.has(key)) runs.set(key, await quick.describeOwnerRun(r.owner));
  }

  for (const r of resources) {
    const verdict = sweepVerdict(r, r.owner ? runs.get(`${r.owner.workflowId}\n${r.owner.runId}`) : undefined);
    const swept: SweptResource = { resource: r, action: verdict.action, reason: verdict.reason };
    if (verdict.action === 'keep') {
      result.kept.push(swept);
      continue;
    }
    if (verdict.action === 'report') {
      result.reported.push(swept);
      board.enter('reporting', `left in place: ${verdict.reason}`);
      await quick
        .notify({ severity: 'warning', title: `Drill sweeper left ${r.name} in place`, text: `${verdict.reason}.`, ...(r.kind === 'database-instance' || r.kind === 'dynamodb-table' ? { target: r.target } : {}) })
        .catch(() => undefined);
      continue;
    }
    if (dryRun) {
      result.removed.push({ ...swept, detail: 'dry run: would be removed' });
      continue;
    }
    board.enter('removing', `removing ${describeResource(r)}: ${verdict.reason}`);
    try {
      const onAgent = r.kind === 'database-instance' ? hostQueues.get(r.target) : undefined;
      const detail = r.kind === 'directory-scratch'
        ? await onHost(REMOVAL, r.queue).removeDrillScratchDirectory.executeWithOptions({ summary: `Remove ${resourceKey(r)}` }, [r, verdict.reason])
        : r.kind === 'sqlite-scratch'
        ? await onHost(REMOVAL, scratchQueues.get(resourceKey(r))).removeSqliteDrillScratchLeft.executeWithOptions({ summary: `Remove ${resourceKey(r)}` }, [r, verdict.reason])
        : onAgent
        ? await onHost(REMOVAL, onAgent).removeDrillInstance.executeWithOptions({ summary: `Remove ${resourceKey(r)} on its agent` }, [r as DrillInstanceResource, verdict.reason])
        : await removal.removeDrillResource.executeWithOptions(
            { startToCloseTimeout: '30 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 3, initialInterval: '5 seconds' }, summary: `Remove ${resourceKey(r)}` },
            [r, verdict.reason],
          );
      result.removed.push({ ...swept, detail });
      await quick
        .notify({ severity: 'warning', title: `Drill sweeper removed ${r.name}`, text: `${verdict.reason}; ${detail}.`, ...(r.kind === 'database-instance' || r.kind === 'dynamodb-table' ? { target: r.target } : {}) })
        .catch(() => undefined);
    } catch (err) {
      const problem = `${describeResource(r)} could not be removed: ${describeFailure(err)}`;
      result.reported.push({ resource: r, action: 'report', reason: problem });
      await quick.notify({ severity: 'critical', title: `Drill sweeper could not remove ${r.name}`, text: `${problem}.` }).catch(() => undefined);
    }
  }

  const summary = `${dryRun ? 'dry run: ' : ''}${result.removed.length} ${dryRun ? 'to remove' : 'removed'}, ${result.kept.length} kept (their drills run), ${result.reported.length} reported`;
  board.enter('done', summary);
  return result;
}
