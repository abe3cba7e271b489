/**
 * The drill sweeper's I/O: finding drill resources (drill database instances of every database
 * target, drill scratch buckets in every object store), asking Temporal about each one's owner
 * run, and removing one the workflow decided to remove, as its owner, with a catalog record.
 */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { DRILL_PREFIX, DrillBucketResource, DrillInstanceResource, DrillResource, DrillScratchDirectoryResource, DrillSqliteScratchResource, DynamoDbDrillTableResource, isNamedAsDrill, OwnerRunState, resourceKey } from '../domain/drill-sweep';
import { describeError, LifeboatError } from '../domain/errors';
import type { InstanceDescription, RunIdentity } from '../domain/ports';
import { listDrillBuckets, removeDrillBucket } from '../engines/drill-bucket';
import { agentTaskQueue } from '../domain/agents';
import { DynamoDbEngine } from '../engines/dynamodb';
import { findDynamoDbTarget } from './dynamodb';
import { currentWorkflowId } from './context';
import { listDrillScratchDirectories, removeDrillScratchDirectory } from './directory-drill';
import { failoverDrillActivities, FailoverDrillOptions } from './failover-drill';
import { removeMarkedScratch } from './sqlite-drill';
import { Ports } from './ports';

/** The catalog's record of a removal: a workflow_events row of this kind. */
export const DRILL_SWEEP_EVENT = { kind: 'drill-sweep', event: 'removed' } as const;

/** Every bucket the config names: never a drill scratch bucket, whatever it is called. */
function configuredBuckets(config: Ports['config']): Set<string> {
  const names = new Set<string>([config.evidence.bucket, ...(config.evidence.drBucket ? [config.evidence.drBucket] : [])]);
  for (const b of config.targets.buckets) {
    names.add(b.source.bucket).add(b.backup.bucket).add(b.replica.bucket);
    if (b.drBackup) names.add(b.drBackup.bucket);
  }
  for (const db of config.targets.databases) {
    if (db.logicalBackup) names.add(db.logicalBackup.bucket).add(db.logicalBackup.dr.bucket);
  }
  return names;
}

/** How a failover drill's record of an owner becomes the sweeper's: no recorded run id means the workflow's latest run. */
const ownerOf = (o: { workflowId: string; runId: string }) => ({ workflowId: o.workflowId, runId: o.runId });

export function drillSweeperActivities(ports: Ports, failoverDrillOptions: FailoverDrillOptions = {}) {
  const { config } = ports;
  // Failover drills' names and application copies are found and removed by the same code that made them.
  const failoverDrill = failoverDrillActivities(ports, failoverDrillOptions);

  const unlisted = async (where: string, err: unknown) => {
    await ports.notifier
      .notify({ severity: 'warning', title: `Drill sweeper could not list ${where}`, text: `${describeError(err)} The next sweep tries again; drill leftovers there stay until then.`, workflowId: currentWorkflowId() })
      .catch(() => undefined);
  };

  /** The drill instances of one database target, from the records where this worker runs; one a shared restores directory listed already (`seen`) is skipped. */
  const drillInstancesOf = async (targetName: string, seen: Set<string>): Promise<DrillInstanceResource[]> => {
    let instances: InstanceDescription[];
    let kind: string;
    try {
      const engine = ports.database(targetName);
      if (!engine.listInstances) return [];
      kind = engine.kind;
      instances = await engine.listInstances();
    } catch (err) {
      await unlisted(`the instances of database ${targetName}`, err);
      return [];
    }
    const found: DrillInstanceResource[] = [];
    for (const i of instances) {
      // Targets sharing a restores directory list the same instances: each is looked at once.
      const key = `${kind}:${i.instanceId}`;
      if (!i.instanceId.startsWith(DRILL_PREFIX) || seen.has(key)) continue;
      seen.add(key);
      const r: DrillInstanceResource = { kind: 'database-instance', target: targetName, name: i.instanceId, status: i.status, createdByLifeboat: i.createdByLifeboat };
      if (i.owner) r.owner = { workflowId: i.owner.workflowId, runId: i.owner.runId };
      if (i.servedTraffic) r.servedTraffic = true;
      found.push(r);
    }
    return found;
  };

  /** The sweeper's run, as Temporal says, and the refusal of anything not named and owned as a drill's. */
  const sweepingRun = (resource: DrillResource): RunIdentity => {
    const run = Context.current().info.workflowExecution;
    if (!run) throw new LifeboatError('the drill sweeper removes resources on behalf of a workflow run, and this activity was called outside one.', 'NO_WORKFLOW_RUN');
    if (!isNamedAsDrill(resource) || !resource.owner) {
      throw new LifeboatError(`Refusing to remove ${resource.name}: only resources named as a drill's (${DRILL_PREFIX}..., or inside a drill zone) with a recorded owner run are swept.`, 'NOT_A_DRILL_RESOURCE');
    }
    return { workflowId: run.workflowId, runId: run.runId };
  };

  /** Removes a drill instance as its owner run (the engine deletes only what that run made, never what served traffic). */
  const removeInstance = async (resource: DrillInstanceResource, owner: RunIdentity): Promise<string> => {
    const engine = ports.database(resource.target);
    const now = await engine.describeInstance(resource.name);
    await engine.deleteInstance(resource.name, owner);
    return now ? `removed ${resource.name} (was ${now.status})` : `${resource.name} was already gone`;
  };

  /** The removal on record, once per resource and sweeper workflow. */
  const recordRemoval = async (run: RunIdentity, resource: DrillResource, owner: RunIdentity, reason: string, detail: string): Promise<void> => {
    await ports.catalog.query(
      `INSERT INTO workflow_events (workflow_id, kind, target, event, details)
       SELECT $1, $2, $3, $4, $5::jsonb
       WHERE NOT EXISTS (SELECT 1 FROM workflow_events WHERE workflow_id = $1 AND kind = $2 AND event = $4 AND details->>'resource' = $6)`,
      [
        run.workflowId,
        DRILL_SWEEP_EVENT.kind,
        resource.kind === 'database-instance' ? resource.target : null,
        DRILL_SWEEP_EVENT.event,
        JSON.stringify({ resource: resourceKey(resource), kind: resource.kind, name: resource.name, owner, reason, detail, sweeperRunId: run.runId }),
        resourceKey(resource),
      ],
    );
  };

  return {
    /**
     * Drill database instances and drill scratch buckets, each with the owner run it records. A
     * target or store that cannot be listed (credentials, an outage) is notified and skipped, so
     * it never keeps the sweeper from the others; the next sweep lists it again.
     */
    async findDrillResources(onAgents: string[] = []): Promise<DrillResource[]> {
      const found: DrillResource[] = [];
      const seen = new Set<string>();
      for (const db of config.targets.databases) {
        // A target on an agent keeps its clusters on its host: the workflow asks the agent (findDrillInstances).
        if (onAgents.includes(db.name)) continue;
        found.push(...(await drillInstancesOf(db.name, seen)));
      }
      const exclude = configuredBuckets(config);
      for (const store of config.objectStores) {
        let drillBuckets;
        try {
          drillBuckets = (await listDrillBuckets(ports.objectStore(store.name))).filter((b) => !exclude.has(b.bucket));
        } catch (err) {
          await unlisted(`the buckets of object store ${store.name}`, err);
          continue;
        }
        for (const b of drillBuckets) {
          // Owner tags are lifeboat's label: a drill-named bucket without them is not lifeboat's.
          const r: DrillBucketResource = { kind: 'bucket', store: store.name, name: b.bucket, createdByLifeboat: !!b.owner };
          if (b.owner) r.owner = { workflowId: b.owner.workflowId, runId: b.owner.runId };
          found.push(r);
        }
      }
      for (const router of config.trafficRouters) {
        if (!router.drillZone) continue;
        let names;
        try {
          names = await failoverDrill.listOwnedDrillNames(router.name);
        } catch (err) {
          await unlisted(`the drill zone ${router.drillZone} of router ${router.name}`, err);
          continue;
        }
        // Only marked names are listed: an unmarked record in a drill zone is not lifeboat's to judge.
        for (const n of names) found.push({ kind: 'drill-name', router: n.router, zone: n.drillZone, name: n.name, owner: ownerOf(n.owner), createdByLifeboat: true });
      }
      for (const app of await failoverDrill.listDrillApplications()) {
        found.push({ kind: 'drill-application', key: app.key, name: `${DRILL_PREFIX}app-${app.key}`, step: app.step, port: app.port, running: app.running, owner: ownerOf(app), createdByLifeboat: true });
      }
      return found;
    },

    /**
     * DynamoDB drill tables (`<table>-drill-<hex>`) of every DynamoDB target, in its region and
     * its DR region (where a drill from the DR copy imports), each with the run its tags name.
     * A region that cannot be listed is notified and skipped, like a store.
     */
    async findDynamoDbDrillTables(): Promise<DynamoDbDrillTableResource[]> {
      const found: DynamoDbDrillTableResource[] = [];
      for (const t of config.targets.dynamodb) {
        const engine = new DynamoDbEngine({ tableName: t.tableName, region: t.region, drRegion: t.drRegion });
        for (const region of ['primary', 'dr'] as const) {
          const awsRegion = region === 'dr' ? t.drRegion : t.region;
          let tables;
          try {
            tables = await engine.listDrillTables(region);
          } catch (err) {
            await unlisted(`the DynamoDB tables of ${t.name} in ${awsRegion}`, err);
            continue;
          }
          for (const d of tables) found.push({ kind: 'dynamodb-table', target: t.name, region, awsRegion, name: d.name, status: d.status, createdByLifeboat: d.tagged, ...(d.owner ? { owner: d.owner } : {}) });
        }
      }
      return found;
    },

    /** The drill instances of one target, listed on its host (its agent): what findDrillResources leaves to it. */
    async findDrillInstances(targetName: string): Promise<DrillInstanceResource[]> {
      return drillInstancesOf(targetName, new Set());
    },

    /** removeDrillResource for a drill instance, on the host that holds it (its agent): nothing else of the sweeper runs there. */
    async removeDrillInstance(resource: DrillInstanceResource, reason: string): Promise<string> {
      const run = sweepingRun(resource);
      if (resource.kind !== 'database-instance') throw new LifeboatError(`removeDrillInstance removes drill instances only, not the ${resource.kind} ${resource.name}.`, 'NOT_A_DRILL_RESOURCE');
      const detail = await removeInstance(resource, resource.owner!);
      await recordRemoval(run, resource, resource.owner!, reason, detail);
      return detail;
    },

    /** The agent queues of the directory targets that have one: their drills' scratch directories are on those hosts (the rest on the central workers'). */
    async directoryDrillHosts(): Promise<string[]> {
      return [...new Set(config.targets.directories.flatMap((d) => (d.agent ? [agentTaskQueue(d.agent)] : [])))].sort();
    },

    /** On a host (its agent, or a central worker): the directory drills' scratch directories there, each with the owner its drill wrote inside. */
    async findDrillScratchDirectories(queue?: string): Promise<DrillScratchDirectoryResource[]> {
      return listDrillScratchDirectories(queue);
    },

    /** On that host: a scratch directory the workflow judged orphaned, removed only while its owner file still names that closed run; recorded. */
    async removeDrillScratchDirectory(resource: DrillScratchDirectoryResource, reason: string): Promise<string> {
      const run = sweepingRun(resource);
      if (resource.kind !== 'directory-scratch') throw new LifeboatError(`removeDrillScratchDirectory removes drill scratch directories only, not the ${(resource as DrillResource).kind} ${(resource as DrillResource).name}.`, 'NOT_A_DRILL_RESOURCE');
      const detail = await removeDrillScratchDirectory(resource);
      await recordRemoval(run, resource, resource.owner!, reason, detail);
      return detail;
    },

    /** removeDrillResource for a SQLite drill's scratch directory, on the host that holds it (its agent, or a central worker). */
    async removeSqliteDrillScratchLeft(resource: DrillSqliteScratchResource, reason: string): Promise<string> {
      const run = sweepingRun(resource);
      if (resource.kind !== 'sqlite-scratch') throw new LifeboatError(`removeSqliteDrillScratchLeft removes SQLite drill scratch directories only, not the ${(resource as DrillResource).kind} ${(resource as DrillResource).name}.`, 'NOT_A_DRILL_RESOURCE');
      const detail = await removeMarkedScratch(path.join(resource.scratchDir, resource.name), resource.owner!);
      await recordRemoval(run, resource, resource.owner!, reason, detail);
      return detail;
    },

    /** Running, closed, not found, or unknown (Temporal unreachable): what Temporal says of the owner run. */
    async describeOwnerRun(owner: RunIdentity): Promise<OwnerRunState> {
      return ports.workflowRuns.runState(owner);
    },

    /**
     * Removes a drill resource the sweeper found orphaned, acting as its owner run (the engines
     * delete only what that run made, never what has served traffic), and records the removal.
     * Idempotent: a resource already gone is success, and the record is written once.
     */
    async removeDrillResource(resource: DrillResource, reason: string): Promise<string> {
      const run = sweepingRun(resource);
      const owner = resource.owner!;
      let detail: string;
      if (resource.kind === 'database-instance') {
        detail = await removeInstance(resource, owner);
      } else if (resource.kind === 'drill-name') {
        // The owner mark is read again just before: a name another run has rewritten since stays.
        const removed = await failoverDrill.removeOwnedDrillName(resource.router, resource.name, owner);
        detail = removed ? `removed drill name ${resource.name} (A and SRV records)` : `drill name ${resource.name} was already gone or no longer that run's`;
      } else if (resource.kind === 'drill-application') {
        detail = await failoverDrill.stopRecordedDrillApplication(resource.key, owner);
      } else if (resource.kind === 'directory-scratch') {
        detail = await removeDrillScratchDirectory(resource);
      } else if (resource.kind === 'dynamodb-table') {
        const t = findDynamoDbTarget(config, resource.target);
        // deleteOwnTable reads the tags again just before: a table no longer tagged with that run stays.
        detail = await new DynamoDbEngine({ tableName: t.tableName, region: t.region, drRegion: t.drRegion }).deleteOwnTable(resource.name, resource.region, owner);
      } else if (resource.kind === 'sqlite-scratch') {
        // The mark is read again just before: a directory another run has marked since stays.
        detail = await removeMarkedScratch(path.join(resource.scratchDir, resource.name), owner);
      } else {
        const s3 = ports.objectStore(resource.store);
        // removeDrillBucket reads the owner tags again just before: a bucket of the same name made
        // since by another run is refused, not removed.
        const removed = await removeDrillBucket(s3, resource.name, owner);
        detail = removed.removed ? `removed bucket ${resource.name} and its ${removed.objects} object versions` : `bucket ${resource.name} was already gone`;
      }
      await recordRemoval(run, resource, owner, reason, detail);
      return detail;
    },
  };
}
