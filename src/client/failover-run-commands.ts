/**
 * `lifeboat failover start | status | note`: declare a disaster and run the recovery plan, see
 * where it stands (each step, the RTO clock against the objective), add a lesson afterwards.
 * Decisions at its gates are the usual `lifeboat approve / reject`.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { failoverEnvironments, LifeboatConfig, requesterProblem } from '../config';
import { MAX_INCIDENT_ID_CHARS, MAX_REASON_CHARS, WorkflowStatus } from '../domain/approval';
import { DrFailoverInput, FailoverReport } from '../domain/failover';
import { formatDuration } from '../domain/format';
import { createPorts } from '../activities/ports';
import { appendFailoverLesson } from '../activities/failover';
import { statusQuery } from '../workflows/messages';
import { checkLength, UsageError } from './args';
import { CommandContext, identity } from './recovery-commands';
import { line, printJson, uiLink } from './output';

export interface FailoverStartOptions {
  drill: boolean;
  reason: string;
  incident?: string;
  as?: string;
  workflowId?: string;
}

/** Every check of what was typed, before anything connects. */
export function prepareFailoverStart(config: LifeboatConfig, o: FailoverStartOptions): { input: DrFailoverInput; workflowId: string } {
  if (!config.failover) throw new UsageError('the config has no `failover` block, so there is no recovery plan to run: declare failover.steps (see docs/config.md).');
  if (!o.reason.trim()) throw new UsageError('a failover needs --reason, for the record (what happened).');
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  checkLength('--incident', o.incident, MAX_INCIDENT_ID_CHARS, 'give the ticket id, not its text');
  if (o.incident !== undefined && !o.incident.trim()) throw new UsageError('--incident is empty: give the incident ticket id, or leave the option out.');
  const requestedBy = identity(o.as);
  // A drill moves nothing and has no gate; a real failover is decided by people, so it is requested by one.
  const unknownRequester = o.drill ? undefined : requesterProblem(config, failoverEnvironments(config), requestedBy);
  if (unknownRequester) throw new UsageError(`${unknownRequester}.`);
  const workflowId = o.workflowId ?? `failover-${o.drill ? 'drill-' : ''}${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
  return { workflowId, input: { mode: o.drill ? 'drill' : 'failover', requestedBy, reason: o.reason, ...(o.incident ? { incidentId: o.incident.trim() } : {}) } };
}

export async function failoverStartCommand(ctx: CommandContext, prepared: { input: DrFailoverInput; workflowId: string }): Promise<number> {
  const { input, workflowId } = prepared;
  const handle = await ctx.client.workflow.start('drFailover', {
    taskQueue: ctx.config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: input.mode === 'drill' ? 'FAILOVER DRILL (production untouched)' : `DISASTER-RECOVERY FAILOVER${input.incidentId ? ` (${input.incidentId})` : ''}`,
    staticDetails: `Declared by ${input.requestedBy}: ${input.reason}.`,
  });
  // The assessment runs first: wait for the declare gate (or an early end) so its page shows here.
  let status: WorkflowStatus | undefined;
  for (let i = 0; i < 240; i++) {
    const desc = await handle.describe();
    if (desc.status.name !== 'RUNNING') break;
    status = await handle.query(statusQuery).catch(() => undefined);
    if (status?.pendingGate) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const link = uiLink(ctx.uiBase, ctx.config.temporal.namespace, workflowId);
  if (ctx.json) {
    printJson({ workflowId, status, ui: link });
    return 0;
  }
  line(`failover started: ${workflowId}`);
  const g = status?.pendingGate;
  if (g) {
    line(`waiting for the ${g.gate} gate: ${g.prompt.title}`);
    for (const f of g.prompt.facts) line(`  ${f.label}: ${f.value}`);
    line(`approve:  lifeboat approve ${workflowId} --gate ${g.gate} --reason "..." --as <identity> --key <your private key>   (any of: ${g.allowedRoles.join(', ')}; not ${g.requestedBy})`);
    line(`reject:   lifeboat reject ${workflowId} --reason "..." --as <identity> --key <your private key>`);
  } else if (status) line(`phase: ${status.phase}`);
  line(`status:   lifeboat failover status ${workflowId}`);
  line(`Web UI:   ${link}`);
  return 0;
}

/** The newest failover in Temporal, when no id is given. */
async function newestFailoverId(ctx: CommandContext): Promise<string> {
  for await (const w of ctx.client.workflow.list({ query: `WorkflowType = 'drFailover'` })) return w.workflowId;
  throw new UsageError('no failover is on record in Temporal: start one with `lifeboat failover start`.');
}

export async function failoverStatusCommand(ctx: CommandContext, workflowId: string | undefined): Promise<number> {
  const id = workflowId ?? (await newestFailoverId(ctx));
  const handle = ctx.client.workflow.getHandle(id);
  let desc;
  try {
    desc = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new UsageError(`no failover has the id "${id}": check it with \`lifeboat list\`.`);
    throw err;
  }
  if (desc.type !== 'drFailover') throw new UsageError(`${id} is a ${desc.type} workflow, not a failover: use \`lifeboat status ${id}\`.`);
  const status = (await handle.query(statusQuery).catch(() => undefined)) as WorkflowStatus | undefined;
  const report = desc.status.name === 'COMPLETED' ? ((await handle.result()) as FailoverReport) : undefined;
  if (ctx.json) {
    printJson({ workflowId: id, state: desc.status.name, status, report });
  } else {
    line(`failover ${id}: ${desc.status.name.toLowerCase()}${status ? `, phase ${status.phase}` : ''}`);
    if (status) {
      const elapsed = Math.round(((desc.closeTime ?? new Date()).getTime() - Date.parse(status.startedAt)) / 1000);
      if (status.rtoTargetSeconds) line(`RTO clock: ${formatDuration(elapsed)} since the declaration, objective ${formatDuration(status.rtoTargetSeconds)}${elapsed > status.rtoTargetSeconds ? ' (OVER)' : ''}`);
      for (const s of status.planSteps ?? []) line(`  ${s.state.padEnd(11)} ${s.name} (${s.kind})${s.childWorkflowId ? ` [child ${s.childWorkflowId}]` : ''}${s.detail ? `: ${s.detail}` : ''}`);
      if (status.pendingGate) line(`waiting for the ${status.pendingGate.gate} gate: lifeboat approve ${id} --gate ${status.pendingGate.gate} --reason "..." --as <identity> --key <your private key>`);
    }
    if (report) {
      line(`outcome: ${report.outcome}${report.rto ? `; RTO ${report.rto.seconds} s (objective ${report.rto.objectiveSeconds} s, predicted ${report.rto.predictedSeconds ?? '?'} s)` : ''}`);
      for (const r of report.rpo) line(`  RPO ${r.target}: ${r.seconds === undefined ? 'unknown' : `${r.seconds} s`}: ${r.detail}`);
      for (const n of report.names) line(`  name ${n.name}: ${n.from} -> ${n.to}: ${n.state}`);
      for (const c of report.cleanup) line(`  cleanup: ${c}`);
    }
    line(`Web UI: ${uiLink(ctx.uiBase, ctx.config.temporal.namespace, id)}`);
  }
  return ['FAILED', 'TERMINATED', 'TIMED_OUT'].includes(desc.status.name) || (report && report.outcome !== 'failed-over') ? 1 : 0;
}

export function prepareFailoverNote(o: { workflowId: string; text: string | undefined; as?: string }): { workflowId: string; text: string; by: string } {
  if (!o.text?.trim()) throw new UsageError('`lifeboat failover note` needs the lesson as its second argument, in quotes.');
  checkLength('the lesson', o.text, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  return { workflowId: o.workflowId, text: o.text.trim(), by: identity(o.as) };
}

export async function failoverNoteCommand(config: LifeboatConfig, note: { workflowId: string; text: string; by: string }, json: boolean): Promise<number> {
  const ports = createPorts(config);
  try {
    const added = await appendFailoverLesson(ports, note.workflowId, note.by, note.text);
    if (json) printJson({ workflowId: note.workflowId, lessons: added.lessons, evidence: added.evidence.map((e) => e.key) });
    else line(`lesson ${added.lessons} added to ${note.workflowId}; evidence: ${added.evidence.map((e) => e.key).join(', ')}`);
    return 0;
  } catch (err) {
    if ((err as { code?: string }).code === 'UNKNOWN_FAILOVER') throw new UsageError((err as Error).message);
    throw err;
  } finally {
    await ports.close();
  }
}
