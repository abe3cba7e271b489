/**
 * `lifeboat schedules apply|list`: the config's schedules as Temporal Schedules.
 *
 * apply is idempotent: it describes each schedule the config wants (schedule-plan.ts), creates
 * the missing ones, updates only those whose calendar, action, policies or paused state differ
 * (printing the field diff), and reports schedules under the prefix the config no longer has;
 * with --prune it deletes those, but only the ones lifeboat created (memo managedBy: lifeboat).
 */
import { Client, ScheduleAlreadyRunning, ScheduleNotFoundError } from '@temporalio/client';
import type { LifeboatConfig } from '../config';
import { line, printJson } from './output';
import {
  DEFAULT_SCHEDULE_PREFIX,
  DesiredSchedule,
  desiredSchedules,
  FieldChange,
  formatChange,
  PlannedChange,
  planSchedules,
  ScheduleView,
  toCreateOptions,
  toUpdateOptions,
  viewOfDescription,
} from './schedule-plan';

export interface ApplyOptions {
  dryRun?: boolean;
  prune?: boolean;
  /** Schedule id prefix (default `lifeboat-`). */
  prefix?: string;
  /** Workflow types the worker registers (default: what this build's src/workflows exports). */
  registeredWorkflows?: readonly string[];
  /** Task queue of started workflows (default: the config's). */
  taskQueue?: string;
}

export type ApplyStatus = 'created' | 'updated' | 'unchanged' | 'extra' | 'deleted';

export interface ApplyResult {
  scheduleId: string;
  status: ApplyStatus;
  /** What the schedule does, for created/updated/unchanged. */
  description?: string;
  workflowType?: string;
  paused?: boolean;
  note?: string;
  changes?: FieldChange[];
  /** For extras: whether lifeboat created it (only those are pruned). */
  managedByLifeboat?: boolean;
}

export interface ApplyReport {
  dryRun: boolean;
  prune: boolean;
  prefix: string;
  results: ApplyResult[];
}

/** The workflow types this build's worker registers: the exports of src/workflows. */
export async function registeredWorkflowTypes(): Promise<string[] | undefined> {
  try {
    const workflows = (await import('../workflows')) as Record<string, unknown>;
    return Object.keys(workflows).filter((name) => typeof workflows[name] === 'function');
  } catch {
    return undefined;
  }
}

async function currentView(client: Client, scheduleId: string): Promise<ScheduleView | undefined> {
  try {
    return viewOfDescription(await client.schedule.getHandle(scheduleId).describe());
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

/** Schedules whose id starts with `prefix`, with whether lifeboat created them. */
export async function listPrefixed(client: Client, prefix: string): Promise<Array<{ scheduleId: string; managedByLifeboat: boolean }>> {
  const found: Array<{ scheduleId: string; managedByLifeboat: boolean }> = [];
  for await (const summary of client.schedule.list()) {
    if (!summary.scheduleId.startsWith(prefix)) continue;
    found.push({ scheduleId: summary.scheduleId, managedByLifeboat: summary.memo?.managedBy === 'lifeboat' });
  }
  return found;
}

async function createOrAdopt(client: Client, desired: DesiredSchedule): Promise<ApplyResult> {
  try {
    await client.schedule.create(toCreateOptions(desired));
    return resultFor(desired, 'created');
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    // Someone created it between our describe and create: compare again.
    const now = await currentView(client, desired.scheduleId);
    const [again] = planSchedules([desired], new Map(now ? [[desired.scheduleId, now]] : []), []);
    return execute(client, again);
  }
}

async function execute(client: Client, planned: PlannedChange): Promise<ApplyResult> {
  switch (planned.change) {
    case 'create':
      return createOrAdopt(client, planned.desired);
    case 'update':
      await client.schedule.getHandle(planned.scheduleId).update(() => toUpdateOptions(planned.desired));
      return { ...resultFor(planned.desired, 'updated'), changes: planned.changes };
    case 'unchanged':
      return resultFor(planned.desired, 'unchanged');
    default:
      return { scheduleId: planned.scheduleId, status: 'extra', managedByLifeboat: planned.managedByLifeboat };
  }
}

function resultFor(d: DesiredSchedule, status: ApplyStatus): ApplyResult {
  return { scheduleId: d.scheduleId, status, description: d.description, workflowType: d.action.workflowType, paused: d.paused, note: d.note };
}

/** Computes the plan against Temporal and, unless dry-run, carries it out. */
export async function applySchedules(client: Client, config: LifeboatConfig, options: ApplyOptions = {}): Promise<ApplyReport> {
  const prefix = options.prefix ?? DEFAULT_SCHEDULE_PREFIX;
  const registeredWorkflows = options.registeredWorkflows ?? (await registeredWorkflowTypes());
  const desired = desiredSchedules(config, { prefix, registeredWorkflows, taskQueue: options.taskQueue });
  const views = await Promise.all(desired.map(async (d) => [d.scheduleId, await currentView(client, d.scheduleId)] as const));
  const current = new Map(views.filter((v): v is readonly [string, ScheduleView] => v[1] !== undefined));
  const plan = planSchedules(desired, current, await listPrefixed(client, prefix));
  const dryRun = options.dryRun === true;
  const prune = options.prune === true;

  const results: ApplyResult[] = [];
  for (const planned of plan) {
    if (dryRun) {
      const status: ApplyStatus = planned.change === 'create' ? 'created' : planned.change === 'update' ? 'updated' : planned.change;
      if (planned.change === 'extra') results.push({ scheduleId: planned.scheduleId, status: prune && planned.managedByLifeboat ? 'deleted' : 'extra', managedByLifeboat: planned.managedByLifeboat });
      else results.push({ ...resultFor(planned.desired, status), ...(planned.change === 'update' ? { changes: planned.changes } : {}) });
      continue;
    }
    if (planned.change === 'extra' && prune && planned.managedByLifeboat) {
      try {
        await client.schedule.getHandle(planned.scheduleId).delete();
      } catch (err) {
        if (!(err instanceof ScheduleNotFoundError)) throw err;
      }
      results.push({ scheduleId: planned.scheduleId, status: 'deleted', managedByLifeboat: true });
      continue;
    }
    results.push(await execute(client, planned));
  }
  return { dryRun, prune, prefix, results };
}

export interface ScheduleListing {
  scheduleId: string;
  workflowType: string;
  workflowId?: string;
  taskQueue: string;
  args: unknown[];
  calendars: string[];
  skip: string[];
  paused: boolean;
  note?: string;
  nextRuns: string[];
  lastRun?: { scheduledAt: string; workflowId: string };
  running: number;
}

/** Every schedule under the prefix, described (for exact next run times). */
export async function listSchedules(client: Client, prefix = DEFAULT_SCHEDULE_PREFIX): Promise<ScheduleListing[]> {
  const ids = (await listPrefixed(client, prefix)).map((s) => s.scheduleId).sort();
  const out: ScheduleListing[] = [];
  for (const scheduleId of [...new Set(ids)]) {
    let desc;
    try {
      desc = await client.schedule.getHandle(scheduleId).describe();
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) continue; // deleted since the (eventually consistent) listing
      throw err;
    }
    const view = viewOfDescription(desc);
    const last = desc.info.recentActions[desc.info.recentActions.length - 1];
    out.push({
      scheduleId,
      workflowType: view.workflowType,
      workflowId: view.workflowId,
      taskQueue: view.taskQueue,
      args: view.args,
      calendars: view.calendars,
      skip: view.skip,
      paused: view.paused,
      note: desc.state.note,
      nextRuns: desc.info.nextActionTimes.map((t) => t.toISOString()),
      ...(last ? { lastRun: { scheduledAt: last.scheduledAt.toISOString(), workflowId: last.action.workflow.workflowId } } : {}),
      running: desc.info.runningActions.length,
    });
  }
  return out;
}

// ----- the commands ----------------------------------------------------------------------------

const VERB: Record<ApplyStatus, [string, string]> = {
  created: ['created', 'would create'],
  updated: ['updated', 'would update'],
  unchanged: ['unchanged', 'unchanged'],
  extra: ['extra', 'extra'],
  deleted: ['deleted', 'would delete'],
};

export function printApplyReport(report: ApplyReport): void {
  const width = Math.max(0, ...report.results.map((r) => r.scheduleId.length));
  const counts = new Map<ApplyStatus, number>();
  for (const r of report.results) {
    counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    const verb = VERB[r.status][report.dryRun ? 1 : 0].padEnd(12);
    let text: string;
    if (r.status === 'extra') {
      text = r.managedByLifeboat
        ? report.prune
          ? 'not in the config'
          : 'not in the config: `lifeboat schedules apply --prune` deletes it'
        : 'not in the config and not created by lifeboat: left alone, delete it by hand if it is unwanted';
    } else if (r.status === 'deleted') {
      text = 'not in the config';
    } else {
      text = `${r.description}${r.paused ? ' [PAUSED]' : ''}`;
    }
    line(`${verb} ${r.scheduleId.padEnd(width)}  ${text}`);
    for (const change of r.changes ?? []) line(`${' '.repeat(14)}${formatChange(change)}`);
    if (r.paused && r.status !== 'unchanged' && r.note) line(`${' '.repeat(14)}${r.note}`);
  }
  const summary = (['created', 'updated', 'unchanged', 'extra', 'deleted'] as ApplyStatus[])
    .filter((s) => counts.get(s))
    .map((s) => `${counts.get(s)} ${VERB[s][report.dryRun ? 1 : 0].replace('would ', 'to ')}`)
    .join(', ');
  line(`${report.dryRun ? 'dry run, nothing changed: ' : ''}${summary || 'no schedules'}`);
}

export async function schedulesCommand(
  client: Client,
  config: LifeboatConfig,
  sub: string | undefined,
  options: { json: boolean; dryRun: boolean; prune: boolean; prefix?: string },
): Promise<number> {
  if (sub === 'apply') {
    const report = await applySchedules(client, config, { dryRun: options.dryRun, prune: options.prune, prefix: options.prefix });
    if (options.json) printJson(report);
    else printApplyReport(report);
    return 0;
  }
  const listing = await listSchedules(client, options.prefix);
  if (options.json) {
    printJson(listing);
    return 0;
  }
  if (!listing.length) {
    line(`no schedules named ${options.prefix ?? DEFAULT_SCHEDULE_PREFIX}*: create them with \`lifeboat schedules apply\``);
    return 0;
  }
  for (const s of listing) {
    const when = s.calendars.join(' and ') + (s.skip.length ? `, except ${s.skip.join(' and ').replace(/all day /g, '')}` : '');
    line(`${s.scheduleId}${s.paused ? '  [PAUSED]' : ''}`);
    line(`  starts   ${s.workflowType}(${s.args.map((a) => JSON.stringify(a)).join(', ')}) on task queue ${s.taskQueue}`);
    line(`  when     ${when}`);
    line(`  next     ${s.paused ? '(paused) ' : ''}${s.nextRuns.slice(0, 3).join(', ') || 'never'}`);
    if (s.lastRun) line(`  last     ${s.lastRun.scheduledAt} (${s.lastRun.workflowId})`);
    if (s.paused && s.note) line(`  note     ${s.note}`);
  }
  return 0;
}
