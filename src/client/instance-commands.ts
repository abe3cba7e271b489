/**
 * `lifeboat instances list|extend|remove`: the instances restores left standing, from the
 * catalog. What was typed is checked before anything connects, and what the catalog says before
 * anything changes (exit 2, one sentence): an unknown id, `--by` not a duration, extending a
 * removed instance, removing one that has taken traffic.
 */
import { LifeboatConfig, requesterProblem } from '../config';
import { parseDuration } from '../config/duration';
import { MAX_INCIDENT_ID_CHARS, MAX_REASON_CHARS } from '../domain/approval';
import { LifeboatError } from '../domain/errors';
import { formatAge, formatDuration } from '../domain/format';
import { extensionProblem, InstanceRemovalInput, removalProblem, RestoredInstance } from '../domain/restored-instances';
import { createPorts } from '../activities/ports';
import { extendRestoredInstance, findRestoredInstance, listRestoredInstances } from '../activities/restored-instances';
import { checkLength, UsageError } from './args';
import { CommandContext, identity } from './recovery-commands';
import { formatTable, line, printJson, uiLink } from './output';

/** Longest extension at once: a kept instance is temporary; a year is the most that is still that. */
const MAX_EXTENSION_SECONDS = 366 * 86_400;

function until(iso: string, nowMs: number): string {
  const s = Math.round((Date.parse(iso) - nowMs) / 1000);
  return s >= 0 ? `in ${formatDuration(s, { coarse: true })}` : `${formatDuration(-s, { coarse: true })} ago`;
}

/** One line per instance, as a table: what, from what, who made it, age, expiry, endpoint, traffic. */
export function instanceRows(instances: RestoredInstance[], nowMs: number): string[] {
  const header = ['INSTANCE', 'TARGET', 'DATA AS OF', 'MADE BY', 'AGE', 'EXPIRES', 'ENDPOINT', 'TRAFFIC', 'STATE'];
  const rows = instances.map((i) => [
    i.instanceId,
    `${i.target} (${i.engine})`,
    i.restorePoint,
    `${i.madeBy} ${i.owner.workflowId}`,
    formatAge(Math.round((nowMs - Date.parse(i.createdAt)) / 1000)),
    i.state === 'removed' ? '-' : i.servedTraffic ? 'never (took traffic)' : !i.expiresAt ? 'never' : `${i.expiresAt} (${until(i.expiresAt, nowMs)}${i.noticeSentAt ? ', notice sent' : ''})`,
    i.endpoint ?? '-',
    i.servedTraffic ? `yes${i.servedTrafficAt ? ` since ${i.servedTrafficAt}` : ''}` : 'no',
    i.state === 'removed' ? `removed ${i.removedAt ?? ''}${i.removedBy ? ` by ${i.removedBy}` : ''}`.trim() : 'kept',
  ]);
  return formatTable([header, ...rows]);
}

/** The catalog's one-sentence refusals become exit 2. */
async function withCatalog<T>(config: LifeboatConfig, fn: (ports: ReturnType<typeof createPorts>) => Promise<T>): Promise<T> {
  const ports = createPorts(config);
  try {
    return await fn(ports);
  } catch (err) {
    if (err instanceof LifeboatError) throw new UsageError(err.message);
    throw err;
  } finally {
    await ports.close();
  }
}

export async function instancesListCommand(config: LifeboatConfig, o: { json: boolean; all: boolean }): Promise<number> {
  const instances = await withCatalog(config, (ports) => listRestoredInstances(ports.catalog, { includeRemoved: o.all }));
  if (o.json) {
    printJson(instances);
    return 0;
  }
  if (instances.length === 0) {
    line(`no ${o.all ? '' : 'kept '}restored instances in the catalog; a restore (\`lifeboat restore\`) that leaves one standing lists it here.`);
    return 0;
  }
  for (const row of instanceRows(instances, Date.now())) line(row);
  return 0;
}

export interface ExtendOptions {
  instanceId: string;
  by?: string;
  reason?: string;
  as?: string;
}

/** Every check of what was typed, before anything connects. */
export function prepareExtend(o: ExtendOptions): { instanceId: string; seconds: number; reason: string; by: string } {
  if (o.by === undefined) throw new UsageError('instances extend needs --by <duration>, such as --by 3d.');
  const seconds = parseDuration(o.by);
  if (seconds === undefined || seconds < 1) throw new UsageError(`--by takes a duration such as 12h, 3d or 2w, not "${o.by}".`);
  if (seconds > MAX_EXTENSION_SECONDS) throw new UsageError(`--by ${o.by} is more than a year: a restored instance is temporary; extend it again later if it is still needed.`);
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  return { instanceId: o.instanceId, seconds, reason: o.reason?.trim() || 'no reason given', by: identity(o.as) };
}

export async function instancesExtendCommand(config: LifeboatConfig, prepared: ReturnType<typeof prepareExtend>, json: boolean): Promise<number> {
  const updated = await withCatalog(config, async (ports) => {
    const problem = extensionProblem(await findRestoredInstance(ports.catalog, prepared.instanceId), prepared.instanceId);
    if (problem) throw new UsageError(problem);
    return extendRestoredInstance(ports.catalog, prepared.instanceId, prepared.seconds, prepared.by, prepared.reason);
  });
  if (json) {
    printJson(updated);
    return 0;
  }
  line(`${updated.instanceId} now expires at ${updated.expiresAt} (${until(updated.expiresAt!, Date.now())}); extended by ${formatDuration(prepared.seconds, { coarse: true })} by ${prepared.by}`);
  if (updated.servedTraffic) line(`${updated.instanceId} has taken traffic: lifeboat never removes it, whatever its expiry.`);
  return 0;
}

export interface RemoveOptions {
  instanceId: string;
  reason?: string;
  incident?: string;
  as?: string;
  workflowId?: string;
}

export function prepareInstanceRemove(o: RemoveOptions): { input: InstanceRemovalInput; workflowId: string } {
  if (!o.reason?.trim()) throw new UsageError('removing an instance needs --reason, for the record (why it is no longer needed).');
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  checkLength('--incident', o.incident, MAX_INCIDENT_ID_CHARS, 'give the ticket id, not its text');
  const requestedBy = identity(o.as);
  const workflowId = o.workflowId ?? `instance-removal-${o.instanceId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').slice(0, 80)}-${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
  return { workflowId, input: { instanceId: o.instanceId, requestedBy, reason: o.reason.trim(), ...(o.incident?.trim() ? { incidentId: o.incident.trim() } : {}) } };
}

export async function instanceRemoveCommand(ctx: CommandContext, prepared: { input: InstanceRemovalInput; workflowId: string }): Promise<number> {
  const { input, workflowId } = prepared;
  const { instance, production, environment } = await withCatalog(ctx.config, async (ports) => {
    const found = await findRestoredInstance(ports.catalog, input.instanceId);
    const problem = removalProblem(found, input.instanceId);
    if (problem) throw new UsageError(problem);
    const target = ctx.config.targets.databases.find((d) => d.name === found!.target) ?? ctx.config.targets.buckets.find((b) => b.name === found!.target);
    if (!target) throw new UsageError(`${input.instanceId} was restored from target ${found!.target}, which is no longer in the config: remove it by hand.`);
    return { instance: found!, environment: target.environment, production: ctx.config.environments[target.environment]?.tier === 'production' };
  });
  if (production) {
    const unknownRequester = requesterProblem(ctx.config, [environment], input.requestedBy);
    if (unknownRequester) throw new UsageError(`${unknownRequester}.`);
  }
  await ctx.client.workflow.start('instanceRemoval', {
    taskQueue: ctx.config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `REMOVE restored instance ${instance.instanceId} of ${instance.target}`,
    staticDetails: `Requested by ${input.requestedBy}: ${input.reason}.`,
  });
  const link = uiLink(ctx.uiBase, ctx.config.temporal.namespace, workflowId);
  if (ctx.json) {
    printJson({ workflowId, instance, gate: production ? 'instanceRemoval' : null, ui: link });
    return 0;
  }
  line(`instance removal started: ${workflowId}`);
  line(`instance: ${instance.instanceId} of ${instance.target} (${instance.engine}${instance.endpoint ? ` at ${instance.endpoint}` : ''}), data as of ${instance.restorePoint}`);
  if (production) line(`next: the instanceRemoval gate (${environment} is production): lifeboat approve ${workflowId} --gate instanceRemoval --reason "..." --as <identity> --key <your private key>`);
  else line(`no gate: ${environment} is not a production environment, so the removal goes ahead now`);
  line(`status: lifeboat status ${workflowId}`);
  line(`Web UI: ${link}`);
  return 0;
}
