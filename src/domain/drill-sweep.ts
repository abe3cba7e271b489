/**
 * The drill sweeper's rules, pure: what counts as a drill resource, and whether one may be removed.
 * A resource is removed only when it is named as a drill (`drill-...`, a DynamoDB drill table
 * `<table>-drill-<hex>`), labelled (tagged) with the drill
 * run that made it, and that run is closed; one whose owner cannot be determined is reported and
 * left where it is. Shared by the sweeper workflow (decisions) and its activities (labels).
 */
import { DIRECTORY_DRILL_PREFIX } from './directory-drill';
import { DRILL_BUCKET_TAGS } from './files-drill';
import { isInsideZone } from './failover-drill';
import type { ResourceOwner, RunIdentity } from './ports';

/** Every drill resource's name starts with this (drillInstanceName, drill scratch buckets). */
export const DRILL_PREFIX = 'drill-';

/**
 * The workflow types that make drill resources: an owner of another type is never swept.
 * drFailover owns a failover drill's names and application copies; failoverDatabase (its child)
 * owns the restored instances. A real failover's instances are not named drill-... and serve
 * traffic, so the name and traffic rules keep the sweeper off them whatever their owner's type.
 */
export const DRILL_WORKFLOW_TYPES: readonly string[] = ['restoreDrill', 'drFailover', 'failoverDatabase'];

/** Tags a drill scratch bucket carries: made by the files drill, read by the sweeper. */
export { DRILL_BUCKET_TAGS } from './files-drill';

/** A drill database instance: the target's engine made it for a drill run. */
export interface DrillInstanceResource {
  kind: 'database-instance';
  /** The database target whose engine lists and removes it. */
  target: string;
  name: string;
  status: string;
  owner?: RunIdentity;
  servedTraffic?: boolean;
  createdByLifeboat: boolean;
}

/** A drill scratch bucket in one of the config's object stores. */
export interface DrillBucketResource {
  kind: 'bucket';
  store: string;
  name: string;
  owner?: RunIdentity;
  createdByLifeboat: boolean;
}

/** A failover drill's copy of a production name in a router's drill zone (its A and SRV records). */
export interface DrillNameResource {
  kind: 'drill-name';
  router: string;
  /** The drill zone it lies in: only names inside it are ever swept. */
  zone: string;
  name: string;
  owner?: RunIdentity;
  createdByLifeboat: boolean;
}

/** A failover drill's copy of the application, a process recorded in the worker's drill-apps directory. */
export interface DrillApplicationResource {
  kind: 'drill-application';
  /** The record's key (run and step). */
  key: string;
  /** `drill-app-<key>`: how reports name it. */
  name: string;
  step: string;
  port: number;
  running: boolean;
  owner?: RunIdentity;
  createdByLifeboat: boolean;
}

/** A directory drill's scratch directory in a host's temporary directory, with the owner file its drill wrote inside. */
export interface DrillScratchDirectoryResource {
  kind: 'directory-scratch';
  /** Its base name: lifeboat-drill-<target>-<run>. */
  name: string;
  path: string;
  host: string;
  /** The agent's task queue it was found through (absent: a central worker's). */
  queue?: string;
  target?: string;
  owner?: RunIdentity;
  createdByLifeboat: boolean;
}

/** A DynamoDB drill table (`<table>-drill-<hex>`) tagged with the dynamodbDrill run that restored it. */
export interface DynamoDbDrillTableResource {
  kind: 'dynamodb-table';
  /** The DynamoDB target whose drill made it. */
  target: string;
  region: 'primary' | 'dr';
  /** The AWS region, for people. */
  awsRegion: string;
  name: string;
  status: string;
  owner?: RunIdentity;
  /** Whether its lifeboat:workflow-id and lifeboat:run-id tags are there: an untagged table is never lifeboat's to remove. */
  createdByLifeboat: boolean;
}

/** The only workflow type whose closed runs' tables the sweeper removes: a restore's table is the person's. */
export const DYNAMODB_DRILL_WORKFLOW = 'dynamodbDrill';

/** A SQLite drill's scratch directory on a target's host (`<scratchDir>/drill-...`), marked with its owner run. */
export interface DrillSqliteScratchResource {
  kind: 'sqlite-scratch';
  /** The SQLite target whose host (agent, or the central workers) holds it. */
  target: string;
  scratchDir: string;
  name: string;
  owner?: RunIdentity;
  /** True when it holds a lifeboat mark. */
  createdByLifeboat: boolean;
}

export type DrillResource = DrillInstanceResource | DrillBucketResource | DrillNameResource | DrillApplicationResource | DrillScratchDirectoryResource | DynamoDbDrillTableResource | DrillSqliteScratchResource;

/** What Temporal says of the owner's run (by workflow id and run id). */
export type OwnerRunState =
  | { state: 'running'; workflowType: string }
  | { state: 'closed'; workflowType: string; status: string; closedAt?: string }
  | { state: 'not-found' }
  | { state: 'unknown'; detail: string };

export type SweepAction = 'remove' | 'keep' | 'report';

export interface SweepVerdict {
  action: SweepAction;
  /** One sentence: why, naming the owner. */
  reason: string;
}

/** One resource as the sweep left it: removed, kept (its drill runs), or reported (left for a person). */
export interface SweptResource {
  resource: DrillResource;
  action: SweepAction;
  reason: string;
  /** For removals: what the engine did. */
  detail?: string;
}

export interface DrillSweepInput {
  /** Decide and report, remove nothing. */
  dryRun?: boolean;
  requestedBy?: string;
}

export interface DrillSweepResult {
  startedAt: string;
  dryRun: boolean;
  removed: SweptResource[];
  kept: SweptResource[];
  reported: SweptResource[];
}

/** "drill instance drill-x of app" / "drill bucket drill-y in primary": how reports name a resource. */
export function describeResource(r: DrillResource): string {
  switch (r.kind) {
    case 'database-instance':
      return `drill instance ${r.name} of ${r.target}`;
    case 'bucket':
      return `drill bucket ${r.name} in object store ${r.store}`;
    case 'drill-name':
      return `drill name ${r.name} of router ${r.router}`;
    case 'drill-application':
      return `drill application ${r.step} (${r.name}, port ${r.port}${r.running ? '' : ', not running'})`;
    case 'directory-scratch':
      return `drill scratch directory ${r.path} on ${r.host}`;
    case 'dynamodb-table':
      return `DynamoDB drill table ${r.name} of ${r.target} in ${r.awsRegion}`;
    case 'sqlite-scratch':
      return `SQLite drill scratch directory ${r.scratchDir}/${r.name} of ${r.target}`;
  }
}

/** A stable key per resource (the catalog record's, the workflow's bookkeeping). */
export function resourceKey(r: DrillResource): string {
  switch (r.kind) {
    case 'database-instance':
      return `database-instance:${r.target}:${r.name}`;
    case 'bucket':
      return `bucket:${r.store}:${r.name}`;
    case 'drill-name':
      return `drill-name:${r.router}:${r.name}`;
    case 'drill-application':
      return `drill-application:${r.key}`;
    case 'directory-scratch':
      return `directory-scratch:${r.queue ?? 'central'}:${r.path}`;
    case 'dynamodb-table':
      return `dynamodb-table:${r.target}:${r.region}:${r.name}`;
    case 'sqlite-scratch':
      return `sqlite-scratch:${r.scratchDir}/${r.name}`;
  }
}

/** Named as a drill's: drill-... for instances, buckets and applications; inside its drill zone for a name; lifeboat-drill-... for a scratch directory. */
export function isNamedAsDrill(r: DrillResource): boolean {
  if (r.kind === 'directory-scratch') return r.name.startsWith(DIRECTORY_DRILL_PREFIX);
  // A DynamoDB drill table is listed only when its name has drillTableName's form (`<table>-drill-<hex>`).
  if (r.kind === 'dynamodb-table') return /-drill-[0-9a-f]{8}$/.test(r.name);
  return r.kind === 'drill-name' ? isInsideZone(r.name, r.zone) : r.name.startsWith(DRILL_PREFIX);
}

/** The tags a drill scratch bucket is made with (for tests that stage one). */
export function drillBucketTags(owner: Pick<ResourceOwner, 'workflowId' | 'runId' | 'createdAt'> & { target?: string }): Array<{ Key: string; Value: string }> {
  return [
    { Key: DRILL_BUCKET_TAGS.drill, Value: 'true' },
    { Key: DRILL_BUCKET_TAGS.workflowId, Value: owner.workflowId },
    { Key: DRILL_BUCKET_TAGS.runId, Value: owner.runId },
    { Key: DRILL_BUCKET_TAGS.target, Value: owner.target ?? '' },
    { Key: DRILL_BUCKET_TAGS.createdAt, Value: owner.createdAt },
  ];
}

/** Whether the resource is one the sweeper may even look at: named and labelled as a drill. */
export function isLabelledDrill(r: DrillResource): boolean {
  return isNamedAsDrill(r) && r.createdByLifeboat;
}

/**
 * The decision for one resource, given what Temporal says of its owner run. Removal needs all of:
 * a drill name, lifeboat's label, a recorded owner, an owner of a drill workflow type, a closed
 * owner run, and (instances) no traffic ever served. Anything uncertain is reported, never removed.
 */
export function sweepVerdict(r: DrillResource, run: OwnerRunState | undefined): SweepVerdict {
  const what = describeResource(r);
  if (!isNamedAsDrill(r)) {
    return { action: 'keep', reason: r.kind === 'drill-name' ? `${r.name} is not inside drill zone ${r.zone}, so the sweeper leaves it alone` : `${r.name} is not named as a drill (${DRILL_PREFIX}...), so the sweeper leaves it alone` };
  }
  if (!r.createdByLifeboat) return { action: 'report', reason: `${what} is named like a drill but carries no lifeboat label, so lifeboat did not make it; remove it by hand if it is unwanted` };
  if (!r.owner) return { action: 'report', reason: `${what} records no owner run, so nobody can tell whether its drill is over; remove it by hand once you know it is unused` };
  const owner = `workflow ${r.owner.workflowId} run ${r.owner.runId}`;
  if (r.kind === 'database-instance' && r.servedTraffic) return { action: 'report', reason: `${what} has served traffic, and lifeboat never removes such an instance automatically` };
  if (!run || run.state === 'unknown') return { action: 'report', reason: `the owner of ${what}, ${owner}, could not be looked up in Temporal${run?.state === 'unknown' ? ` (${run.detail})` : ''}; the next sweep tries again` };
  if (run.state === 'not-found') return { action: 'report', reason: `the owner of ${what}, ${owner}, is unknown to Temporal (its history may have passed retention, or it ran elsewhere); remove it by hand once you know it is unused` };
  if (r.kind === 'dynamodb-table' ? run.workflowType !== DYNAMODB_DRILL_WORKFLOW : !DRILL_WORKFLOW_TYPES.includes(run.workflowType)) return { action: 'report', reason: `${what} belongs to ${owner}, a ${run.workflowType} workflow, not a drill; the sweeper removes only drills' resources` };
  if (run.state === 'running') return { action: 'keep', reason: `${what} belongs to ${owner}, a ${run.workflowType} still running` };
  return { action: 'remove', reason: `${what} outlived its owner ${owner} (${run.workflowType}, ${run.status.toLowerCase()}${run.closedAt ? ` at ${run.closedAt}` : ''})` };
}
