/**
 * `lifeboat failback start | status`: the planned way home after a failover. Start checks what
 * was typed, then the workflow checks what the failover left (before any side effect) and
 * re-protects; its gates (`failback`, `retire`) are decided with `lifeboat approve / reject`.
 */
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { failoverEnvironments, LifeboatConfig, requesterProblem } from '../config';
import { MAX_INCIDENT_ID_CHARS, MAX_REASON_CHARS, WorkflowStatus } from '../domain/approval';
import { FailbackInput, FailbackReport } from '../domain/failback';
import { formatDuration } from '../domain/format';
import { statusQuery } from '../workflows/messages';
import { createPorts } from '../activities/ports';
import { checkFailoverToFailBack } from '../activities/failback';
import { LifeboatError } from '../domain/errors';
import { checkLength, UsageError } from './args';
import { CommandContext, identity } from './recovery-commands';
import { line, printJson, uiLink } from './output';

export interface FailbackStartOptions {
  failoverId: string;
  reason: string;
  incident?: string;
  as?: string;
  workflowId?: string;
}

/** Every check of what was typed, before anything connects. */
export function prepareFailbackStart(config: LifeboatConfig, o: FailbackStartOptions): { input: FailbackInput; workflowId: string } {
  if (!config.failover) throw new UsageError('the config has no `failover` block, so the failback cannot know which names to move home: restore the recovery plan the failover ran.');
  if (!/^[\w.:@-]{1,200}$/.test(o.failoverId)) throw new UsageError(`"${o.failoverId}" is not a failover workflow id: give the id \`lifeboat failover status\` shows.`);
  if (!o.reason.trim()) throw new UsageError('a failback needs --reason, for the record (why now).');
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  checkLength('--incident', o.incident, MAX_INCIDENT_ID_CHARS, 'give the ticket id, not its text');
  if (o.incident !== undefined && !o.incident.trim()) throw new UsageError('--incident is empty: give the incident ticket id, or leave the option out.');
  const requestedBy = identity(o.as);
  const unknownRequester = requesterProblem(config, failoverEnvironments(config), requestedBy);
  if (unknownRequester) throw new UsageError(`${unknownRequester}.`);
  const workflowId = o.workflowId ?? `failback-${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
  return { workflowId, input: { failoverId: o.failoverId, requestedBy, reason: o.reason, ...(o.incident ? { incidentId: o.incident.trim() } : {}) } };
}

/** The failover must be one that failed over and is not yet failed back: refused in one sentence (exit 2) before anything starts. */
async function refuseWrongFailover(config: LifeboatConfig, failoverId: string): Promise<void> {
  const ports = createPorts(config);
  try {
    await checkFailoverToFailBack(ports, failoverId);
  } catch (err) {
    if (err instanceof LifeboatError) throw new UsageError(err.message);
    throw err;
  } finally {
    await ports.close();
  }
}

export async function failbackStartCommand(ctx: CommandContext, prepared: { input: FailbackInput; workflowId: string }): Promise<number> {
  const { input, workflowId } = prepared;
  await refuseWrongFailover(ctx.config, input.failoverId);
  const handle = await ctx.client.workflow.start('failback', {
    taskQueue: ctx.config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `FAILBACK of ${input.failoverId}`,
    staticDetails: `Requested by ${input.requestedBy}: ${input.reason}.`,
  });
  // The settings check runs first: a refusal (wrong id, nothing to fail back) shows here in one sentence.
  let status: WorkflowStatus | undefined;
  for (let i = 0; i < 20; i++) {
    const desc = await handle.describe();
    if (desc.status.name !== 'RUNNING') {
      try {
        await handle.result();
      } catch (err) {
        const cause = err instanceof WorkflowFailedError ? (err.cause?.cause ?? err.cause) : err;
        line(`failback ${workflowId} refused: ${(cause as Error)?.message ?? String(err)}`);
        return 1;
      }
      break;
    }
    status = await handle.query(statusQuery).catch(() => undefined);
    if (status && status.phase !== 'starting') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const link = uiLink(ctx.uiBase, ctx.config.temporal.namespace, workflowId);
  if (ctx.json) {
    printJson({ workflowId, status, ui: link });
    return 0;
  }
  line(`failback started: ${workflowId} (closes failover ${input.failoverId})`);
  if (status) line(`phase: ${status.phase}`);
  line(`next: re-protection into both regions, then the failback gate: lifeboat approve ${workflowId} --gate failback --reason "..." --as <identity> --key <your private key>`);
  line(`status:   lifeboat failback status ${workflowId}`);
  line(`Web UI:   ${link}`);
  return 0;
}

async function newestFailbackId(ctx: CommandContext): Promise<string> {
  for await (const w of ctx.client.workflow.list({ query: `WorkflowType = 'failback'` })) return w.workflowId;
  throw new UsageError('no failback is on record in Temporal: start one with `lifeboat failback start <failover-id>`.');
}

export async function failbackStatusCommand(ctx: CommandContext, workflowId: string | undefined): Promise<number> {
  const id = workflowId ?? (await newestFailbackId(ctx));
  const handle = ctx.client.workflow.getHandle(id);
  let desc;
  try {
    desc = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new UsageError(`no failback has the id "${id}": check it with \`lifeboat list\`.`);
    throw err;
  }
  if (desc.type !== 'failback') throw new UsageError(`${id} is a ${desc.type} workflow, not a failback: use \`lifeboat status ${id}\`.`);
  const status = (await handle.query(statusQuery).catch(() => undefined)) as WorkflowStatus | undefined;
  let report: FailbackReport | undefined;
  if (desc.status.name === 'COMPLETED') report = (await handle.result()) as FailbackReport;
  else if (desc.status.name === 'FAILED') {
    report = await handle.result().then(
      () => undefined,
      (err: unknown) => ((err as WorkflowFailedError).cause as { details?: unknown[] } | undefined)?.details?.[0] as FailbackReport | undefined,
    );
  }
  if (ctx.json) {
    printJson({ workflowId: id, state: desc.status.name, status, report });
  } else {
    line(`failback ${id}: ${desc.status.name.toLowerCase()}${status ? `, phase ${status.phase}` : ''}`);
    if (status) {
      for (const s of status.planSteps ?? []) line(`  ${s.state.padEnd(11)} ${s.name} (${s.kind})${s.detail ? `: ${s.detail}` : ''}`);
      if (status.pendingGate) line(`waiting for the ${status.pendingGate.gate} gate: lifeboat approve ${id} --gate ${status.pendingGate.gate} --reason "..." --as <identity> --key <your private key>`);
    }
    if (report) {
      line(`outcome: ${report.outcome}${report.writeOutageSeconds !== undefined ? `; writes refused for ${formatDuration(report.writeOutageSeconds)}` : ''}${report.failure ? `; ${report.failure}` : ''}`);
      for (const d of report.databases) {
        if (d.proof) line(`  ${d.target}: ${d.proof.detail}`);
        for (const n of d.names) line(`  name ${n.name}: ${n.from} -> ${n.to}: ${n.state}`);
        if (d.retired) line(`  ${d.drInstanceId}: ${d.retired}`);
      }
      for (const c of report.cleanup) line(`  cleanup: ${c}`);
    }
    line(`Web UI: ${uiLink(ctx.uiBase, ctx.config.temporal.namespace, id)}`);
  }
  return ['FAILED', 'TERMINATED', 'TIMED_OUT'].includes(desc.status.name) || (report && report.outcome !== 'failed-back') ? 1 : 0;
}
