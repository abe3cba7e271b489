/**
 * The commands an incident commander types at the worst hour of their year: start a restore,
 * approve or reject a gate, see where things stand, watch until done, list what is in flight.
 */
import { Client, WorkflowExecutionDescription, WorkflowUpdateFailedError } from '@temporalio/client';
import { findDatabaseTarget, LifeboatConfig, requesterProblem } from '../config';
import { parseDuration } from '../config/duration';
import { DEFAULT_SIGNATURE_LIFETIME_MS, MAX_SIGNATURE_LIFETIME_MS } from '../domain/signed-decision';
import { parseEd25519PublicKey } from '../config/public-key';
import { DecisionSigner, isSshAgentRef, keySigner, loadSigningKey, SSH_AGENT_KEY, sshAgentSigner } from './decision-signing';
import { Decision, DecisionInput, describeQuorumProgress, MAX_INCIDENT_ID_CHARS, MAX_REASON_CHARS, normalizeIdentity, WorkflowStatus } from '../domain/approval';
import { approveUpdate, rejectUpdate, statusQuery } from '../workflows/messages';
import { destinationNameProblem } from '../domain/ownership';
import { PitrRestoreInput, PitrRestoreReport } from '../domain/restore';
import { intoSchemaProblem, planTableCopies, TableRestoreInput, TableRestoreReport } from '../domain/table-restore';
import { parseRestorePoint } from '../domain/restore-point';
import { LifeboatAwaitingApproval, LifeboatKind, LifeboatPhase, LifeboatTarget } from '../workflows/search-attributes';
import { checkLength, UsageError } from './args';
import { endProgress, formatTable, line, printJson, progress, uiLink } from './output';
import { describeFailure } from '../workflows/failure';
import { formatDuration } from '../domain/format';
import { pendingProgress } from './backup-commands';
import { outcomeExitCode, waitPastValidation } from './restore-start';

export interface CommandContext {
  config: LifeboatConfig;
  client: Client;
  uiBase: string;
  json: boolean;
}

/** Who is acting: --as, else $LIFEBOAT_USER, in the one form identities are compared and recorded in. */
export function identity(as: string | undefined): string {
  const who = normalizeIdentity(as ?? process.env.LIFEBOAT_USER ?? '');
  if (!who) throw new UsageError('who are you? pass --as <identity> or set LIFEBOAT_USER, so the decision is on record.');
  if (/\s/.test(who)) throw new UsageError(`"${who}" is not an identity (it has spaces): pass --as alice@example.com or set LIFEBOAT_USER.`);
  return who;
}

export interface RestoreOptions {
  target: string;
  to: string;
  reason: string;
  as?: string;
  emergency: boolean;
  cutover: boolean;
  keep: boolean;
  destination?: string;
  fromRegion?: 'primary' | 'dr';
  incident?: string;
  workflowId?: string;
  timings?: PitrRestoreInput['timings'];
}

/**
 * Everything the CLI can refuse without a network call, before it connects to Temporal: a
 * restore request in the form the workflow takes, or a UsageError saying what to change.
 * The workflow re-checks what needs the real window (validateRestore).
 */
export function prepareRestore(config: LifeboatConfig, o: RestoreOptions): { input: PitrRestoreInput; workflowId: string } {
  const target = findDatabaseTarget(config, o.target);
  const point = parseRestorePoint(o.to, target.engine);
  if (!point.ok) throw new UsageError(`${point.reason}.`);
  if (point.value.kind === 'time' && Date.parse(point.value.at) > Date.now()) throw new UsageError(`the restore time ${point.value.at} is in the future: pick a time before now (${new Date().toISOString()}).`);
  if (!o.reason.trim()) throw new UsageError('a restore needs --reason, for the record.');
  // A destination names a NEW instance exactly as typed: refused when invalid, never rewritten into another name.
  const badDestination = o.destination === undefined ? undefined : destinationNameProblem(o.destination);
  if (badDestination) throw new UsageError(badDestination);
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  checkLength('--incident', o.incident, MAX_INCIDENT_ID_CHARS, 'give the ticket id, not its text');
  if (o.incident !== undefined && !o.incident.trim()) throw new UsageError('--incident is empty: give the incident ticket id, or leave the option out.');
  const requestedBy = identity(o.as);
  const unknownRequester = requesterProblem(config, [target.environment], requestedBy);
  if (unknownRequester) throw new UsageError(`${unknownRequester}.`);
  const workflowId = o.workflowId ?? `restore-${o.target}-${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
  const input: PitrRestoreInput = {
    target: o.target,
    restorePoint: o.to,
    reason: o.reason,
    incidentId: o.incident?.trim(),
    requestedBy,
    mode: o.emergency ? 'emergency' : 'standard',
    destination: o.destination,
    cutover: o.cutover,
    keep: o.keep,
    fromRegion: o.fromRegion,
    timings: o.timings,
  };
  return { input, workflowId };
}

/**
 * `restore --tables ... --into-schema ...`: the request as the tableRestore workflow takes it,
 * or a UsageError. What needs the live database (the tables exist, the schema does not) the
 * workflow checks before anything is created.
 */
export function prepareTableRestore(config: LifeboatConfig, o: RestoreOptions & { tables?: string; intoSchema?: string }): { input: TableRestoreInput; workflowId: string } {
  if (o.tables === undefined && o.intoSchema === undefined) throw new UsageError('a table restore needs --tables and --into-schema.');
  if (o.intoSchema === undefined) throw new UsageError('--tables needs --into-schema <new schema>: the tables are copied into a new schema of the live database, never over the tables there.');
  if (o.tables === undefined) throw new UsageError('--into-schema needs --tables <table,...>: name the tables to restore into it.');
  if (o.cutover) throw new UsageError('--cutover moves traffic to a restored instance; a table restore copies tables next to production and removes its instance: leave out --cutover or --tables.');
  const badSchema = intoSchemaProblem(o.intoSchema);
  if (badSchema) throw new UsageError(badSchema);
  const planned = planTableCopies(o.tables.split(','), o.intoSchema);
  if (!planned.ok) throw new UsageError(planned.reason);
  const base = prepareRestore(config, { ...o, workflowId: o.workflowId ?? `restore-tables-${o.target}-${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}` });
  const { cutover: _cutover, ...rest } = base.input;
  return { input: { ...rest, tables: planned.plan.map((p) => p.source), intoSchema: o.intoSchema }, workflowId: base.workflowId };
}

export async function restoreCommand(ctx: CommandContext, prepared: { input: PitrRestoreInput | TableRestoreInput; workflowId: string }): Promise<number> {
  const { input, workflowId } = prepared;
  const tables = 'tables' in input ? input : undefined;
  const handle = await ctx.client.workflow.start(tables ? 'tableRestore' : 'pitrRestore', {
    taskQueue: ctx.config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: tables
      ? `${input.mode === 'emergency' ? 'EMERGENCY ' : ''}restore ${tables.tables.join(', ')} of ${input.target} as at ${input.restorePoint} into schema ${tables.intoSchema}`
      : `${input.mode === 'emergency' ? 'EMERGENCY ' : ''}restore ${input.target} to ${input.restorePoint}`,
    staticDetails: `Requested by ${input.requestedBy}: ${input.reason}${input.incidentId ? ` (incident ${input.incidentId})` : ''}.`,
  });
  // Wait briefly for validation, so a refusal shows here (exit 2) rather than only in the UI.
  const started = await waitPastValidation(handle, { polls: 60 });
  if (started.state === 'ended') return printRestoreEnded(ctx, workflowId, started.result, started.exitCode);
  return printRestoreStarted(ctx, workflowId, started.status);
}

/** A restore that ended while the command waited for validation (a gate rejected or expired at once): its report, and the exit code of its outcome. */
export function printRestoreEnded(ctx: CommandContext, workflowId: string, result: unknown, exitCode: 0 | 1): 0 | 1 {
  if (ctx.json) printJson(result);
  else {
    line(`restore ${workflowId} ended`);
    line(summarize(result));
  }
  return exitCode;
}

/** What `lifeboat restore` prints once its workflow waits at the gate (or has gone past it): the same for every kind of restore. */
export function printRestoreStarted(ctx: CommandContext, workflowId: string, status: WorkflowStatus | undefined, what = 'restore'): number {
  const link = uiLink(ctx.uiBase, ctx.config.temporal.namespace, workflowId);
  if (ctx.json) {
    printJson({ workflowId, status, ui: link });
    return 0;
  }
  line(`${what} started: ${workflowId}`);
  if (status?.pendingGate) {
    const g = status.pendingGate;
    line(`waiting for approval (${g.gate}) by any of: ${g.allowedRoles.join(', ')}${g.requestedBy ? `, not ${g.requestedBy}` : ''}`);
    for (const f of g.prompt.facts) line(`  ${f.label}: ${f.value}`);
    line(`approve:  lifeboat approve ${workflowId} --gate ${g.gate} --reason "..." --as <identity> --key <your private key>`);
    line(`reject:   lifeboat reject ${workflowId} --reason "..." --as <identity> --key <your private key>`);
  } else if (status) {
    line(`phase: ${status.phase}`);
  }
  line(`watch:    lifeboat watch ${workflowId}`);
  line(`Web UI:   ${link}`);
  return 0;
}

export interface DecisionRequest {
  workflowId: string;
  gate?: Decision['gate'];
  reason: string;
  by: string;
  /** What signs the decision, when it is signed: a private key read from --key, or the ssh-agent (resolveDecisionSigner). */
  signer?: DecisionSigner;
  /** `--key ssh-agent[:<selector>]`, until resolveDecisionSigner has asked the agent. */
  sshAgent?: { selector?: string };
  signatureLifetimeMs: number;
}

const GATES: Array<Decision['gate']> = ['restore', 'emergencyRestore', 'cutover', 'failover', 'failback', 'retire', 'backupDeletion', 'instanceRemoval'];

/** A decision as the CLI can check it before connecting: who, why, and a gate that exists. */
export function prepareDecision(o: { workflowId: string; gate?: string; reason: string; as?: string; key?: string; expiresIn?: string }): DecisionRequest {
  if (o.gate !== undefined && !GATES.includes(o.gate as Decision['gate'])) throw new UsageError(`--gate takes ${GATES.join(', ')}, not "${o.gate}".`);
  if (!o.reason.trim()) throw new UsageError(`--reason is required: every decision is on record with why.`);
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  const by = identity(o.as);
  let lifetimeMs = DEFAULT_SIGNATURE_LIFETIME_MS;
  if (o.expiresIn !== undefined) {
    const seconds = parseDuration(o.expiresIn);
    if (seconds === undefined || seconds < 1 || seconds * 1000 > MAX_SIGNATURE_LIFETIME_MS) throw new UsageError(`--expires-in takes a duration from 1s to 24h, such as 10m, not "${o.expiresIn}".`);
    lifetimeMs = seconds * 1000;
  }
  const keyRef = o.key ?? (process.env.LIFEBOAT_SIGNING_KEY || undefined);
  const base = { workflowId: o.workflowId, gate: o.gate as Decision['gate'] | undefined, reason: o.reason, by, signatureLifetimeMs: lifetimeMs };
  if (!keyRef) return base;
  if (isSshAgentRef(keyRef)) {
    const selector = keyRef.slice(SSH_AGENT_KEY.length + 1).trim();
    if (keyRef.includes(':') && !selector) throw new UsageError('--key ssh-agent: names no key: give its fingerprint (SHA256:..., see `ssh-add -l`) or comment, or write --key ssh-agent for the key publicKeys gives you.');
    return { ...base, sshAgent: selector ? { selector } : {} };
  }
  return { ...base, signer: keySigner(loadSigningKey(keyRef)) };
}

/**
 * `--key ssh-agent`: asks the running agent for the decider's key, before lifeboat connects to
 * Temporal, so no agent or no fitting key is refused (exit 2) with nothing sent.
 */
export async function resolveDecisionSigner(config: LifeboatConfig, request: DecisionRequest): Promise<DecisionRequest> {
  if (!request.sshAgent) return request;
  const configured = Object.entries(config.publicKeys ?? {}).find(([who]) => normalizeIdentity(who) === request.by)?.[1];
  const parsed = configured === undefined ? undefined : parseEd25519PublicKey(configured);
  const signer = await sshAgentSigner({ selector: request.sshAgent.selector, by: request.by, configuredKeyHex: parsed?.ok ? parsed.hex : undefined });
  return { ...request, sshAgent: undefined, signer };
}

/**
 * The decision as sent: signed over exactly what the pending gate shows now (its prompt, read
 * from the workflow), this run and an expiry, when the decider gave a key.
 */
async function decisionInput(ctx: CommandContext, verdict: 'approved' | 'rejected', o: DecisionRequest): Promise<DecisionInput> {
  const input: DecisionInput = { by: o.by, reason: o.reason, gate: o.gate };
  if (!o.signer) return input;
  const handle = ctx.client.workflow.getHandle(o.workflowId);
  const [desc, status] = await Promise.all([handle.describe(), handle.query(statusQuery)]);
  const pending = status.pendingGate;
  if (!pending) throw new UsageError(`no approval is pending on ${o.workflowId} right now: check \`lifeboat status ${o.workflowId}\` for what it is doing.`);
  if (o.gate && o.gate !== pending.gate) throw new UsageError(`the pending gate is ${pending.gate}, not ${o.gate}: check \`lifeboat status ${o.workflowId}\` before deciding.`);
  const signed = await o.signer.sign({ workflowId: o.workflowId, runId: desc.runId, gate: pending.gate, prompt: pending.prompt, decision: verdict, by: o.by, reason: o.reason, lifetimeMs: o.signatureLifetimeMs });
  return { ...input, gate: pending.gate, signed };
}

export async function decideCommand(ctx: CommandContext, decision: 'approve' | 'reject', o: DecisionRequest): Promise<number> {
  const handle = ctx.client.workflow.getHandle(o.workflowId);
  const input = await decisionInput(ctx, decision === 'approve' ? 'approved' : 'rejected', o);
  let result: Decision;
  try {
    result = await handle.executeUpdate(decision === 'approve' ? approveUpdate : rejectUpdate, { args: [input] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new UsageError(`${decision} refused: ${describeFailure(err)}.`);
    throw err;
  }
  if (ctx.json) printJson(result);
  else {
    // A gate that needs several people stays open after one approval: say how far it is, not "approved".
    const progress = describeQuorumProgress(result);
    line(progress ? `${result.gate} gate: ${progress} (approved by ${result.approvals!.map((a) => a.by).join(', ')})` : `${result.gate} gate ${result.decision} by ${result.by} at ${result.at}: ${result.reason}`);
  }
  return 0;
}

async function statusOf(ctx: CommandContext, workflowId: string): Promise<{ desc: WorkflowExecutionDescription; status?: WorkflowStatus }> {
  const handle = ctx.client.workflow.getHandle(workflowId);
  const desc = await handle.describe();
  const status = await handle.query(statusQuery).catch(() => undefined);
  return { desc, status };
}

function statusLines(workflowId: string, desc: WorkflowExecutionDescription, status: WorkflowStatus | undefined, uiBase: string, namespace: string): string[] {
  const out: string[] = [];
  const elapsed = ((desc.closeTime ?? new Date()).getTime() - desc.startTime.getTime()) / 1000;
  const rto = status?.rtoTargetSeconds;
  out.push(`${workflowId}: ${desc.status.name.toLowerCase()}${status ? `, phase ${status.phase}` : ''}`);
  out.push(`elapsed ${formatDuration(elapsed)}${rto ? ` of the ${formatDuration(rto)} RTO target${elapsed > rto ? ' (OVER TARGET)' : ''}` : ''}`);
  if (status?.pendingGate) {
    const g = status.pendingGate;
    const who = g.required && g.required > 1 ? `${g.required} different people among ${g.allowedRoles.join(', ')}` : `any of ${g.allowedRoles.join(', ')}`;
    out.push(`waiting for ${g.gate} approval since ${g.since} (${who}; reminder ${g.remindAt}, aborts ${g.abortAt})`);
    if (g.required && g.required > 1) {
      const given = g.approvals ?? [];
      out.push(`  approvals: ${given.length} of ${g.required}, ${g.required - given.length} more needed${given.length ? ` (${given.map((a) => `${a.by} at ${a.at}`).join(', ')})` : ''}`);
    }
    for (const f of g.prompt.facts) out.push(`  ${f.label}: ${f.value}`);
    out.push(`  approve: lifeboat approve ${workflowId} --gate ${g.gate} --reason "..."`);
  }
  for (const d of status?.decisions ?? []) out.push(`decision: ${d.gate} ${d.decision} by ${d.by} at ${d.at}${d.signed || d.approvals?.some((a) => a.signed) ? ' (signed)' : ''}: ${d.reason}`);
  for (const r of status?.refused ?? []) out.push(`refused decision from ${r.by} at ${r.at}: ${r.reason}`);
  if (status?.refusedOverflow) out.push(`... and ${status.refusedOverflow} more refused decisions, counted but not kept`);
  if (status?.timeline.length) {
    out.push('timeline:');
    out.push(...formatTable(status.timeline.map((t) => [`  ${t.at}`, t.phase, t.note])));
  }
  out.push(`Web UI: ${uiLink(uiBase, namespace, workflowId)}`);
  return out;
}

export async function statusCommand(ctx: CommandContext, workflowId: string): Promise<number> {
  const { desc, status } = await statusOf(ctx, workflowId);
  if (ctx.json) printJson({ workflowId, state: desc.status.name, startTime: desc.startTime, closeTime: desc.closeTime, status });
  else statusLines(workflowId, desc, status, ctx.uiBase, ctx.config.temporal.namespace).forEach((l) => line(l));
  return desc.status.name === 'FAILED' || desc.status.name === 'TERMINATED' || desc.status.name === 'TIMED_OUT' ? 1 : 0;
}

/** Live progress until the workflow closes; exit 0 only for a restore that ended restored. */
export async function watchCommand(ctx: CommandContext, workflowId: string, intervalMs = 2000): Promise<number> {
  const handle = ctx.client.workflow.getHandle(workflowId);
  let lastPhase = '';
  let lastShown = '';
  for (;;) {
    const { desc, status } = await statusOf(ctx, workflowId);
    const elapsed = formatDuration((Date.now() - desc.startTime.getTime()) / 1000);
    const rto = status?.rtoTargetSeconds ? ` / RTO ${formatDuration(status.rtoTargetSeconds)}` : '';
    const phase = status?.phase ?? desc.status.name.toLowerCase();
    const note = status?.timeline.at(-1)?.note ?? '';
    // The running activity's progress (objects and bytes of a files restore, a backup's percent) when it heartbeats any.
    const detail = desc.status.name === 'RUNNING' ? await pendingProgress(ctx.client, workflowId).catch(() => undefined) : undefined;
    const shown = `${phase}: ${detail ?? note}`;
    // A terminal gets one line that ticks; a log gets a line per change, not one every poll.
    if (!ctx.json && (process.stdout.isTTY || shown !== lastShown)) {
      if (phase !== lastPhase && lastPhase && process.stdout.isTTY) endProgress();
      progress(`[${elapsed}${rto}] ${shown}`);
    }
    lastPhase = phase;
    lastShown = shown;
    if (desc.status.name !== 'RUNNING') break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  if (!ctx.json) endProgress();
  try {
    const result = (await handle.result()) as PitrRestoreReport | unknown;
    if (ctx.json) printJson(result);
    else line(summarize(result));
    return outcomeExitCode((result as Partial<PitrRestoreReport> | undefined)?.outcome);
  } catch (err) {
    if (ctx.json) printJson({ workflowId, failed: describeFailure(err) });
    else line(`failed: ${describeFailure(err)}`);
    return 1;
  }
}

function summarize(result: unknown): string {
  const r = result as Partial<PitrRestoreReport>;
  if (!r || !r.outcome) return JSON.stringify(result, null, 2);
  const parts = [`outcome: ${r.outcome}`];
  if (r.destination) parts.push(`instance ${r.destination.instanceId}${r.destination.endpoint ? ` at ${r.destination.endpoint.host}:${r.destination.endpoint.port}` : ''}`);
  if (r.rto) parts.push(`RTO ${formatDuration(r.rto.seconds)} (target ${formatDuration(r.rto.targetSeconds)})`);
  if (r.rpo) parts.push(`RPO ${formatDuration(r.rpo.seconds)} (restore point ${r.rpo.restorePoint}, latest recoverable ${r.rpo.latestRecoverable})`);
  if (r.cutover) parts.push(`${r.cutover.dnsName} -> ${r.cutover.pointsAt}`);
  const t = result as Partial<TableRestoreReport>;
  for (const c of t.checks ?? []) parts.push(`${c.source} -> ${c.into}: ${c.copy.rows} rows, ${c.ok ? 'count and checksum match the restored instance' : `DIFFERS from the restored instance (${c.restored.rows} rows there)`}`);
  if (t.phases) parts.push(`phases: restore ${formatDuration(t.phases.restore)}, copy ${formatDuration(t.phases.copy)}, verify ${formatDuration(t.phases.verify)}, cleanup ${formatDuration(t.phases.cleanup)}`);
  if (r.cleanup?.length) parts.push(r.cleanup.join('; '));
  return parts.join('\n');
}

export interface WorkflowRow {
  workflowId: string;
  kind?: string;
  target?: string;
  phase?: string;
  awaitingApproval?: boolean;
  state: string;
  started: string;
}

/** `lifeboat list` as lines, columns as wide as their content (a long target name stays in its column). */
export function workflowRows(rows: readonly WorkflowRow[]): string[] {
  return formatTable(rows.map((r) => [r.state, r.kind ?? '', r.target ?? '', r.phase ?? '', r.awaitingApproval ? 'AWAITING APPROVAL' : '', r.workflowId]));
}

export async function listCommand(ctx: CommandContext, o: { awaitingApproval: boolean; running: boolean }): Promise<number> {
  const clauses = [`${LifeboatKind.name} IS NOT NULL`];
  if (o.awaitingApproval) clauses.push(`${LifeboatAwaitingApproval.name} = true`);
  if (o.running || o.awaitingApproval) clauses.push(`ExecutionStatus = 'Running'`);
  const rows: WorkflowRow[] = [];
  for await (const w of ctx.client.workflow.list({ query: clauses.join(' AND '), pageSize: 100 })) {
    rows.push({
      workflowId: w.workflowId,
      kind: w.typedSearchAttributes.get(LifeboatKind),
      target: w.typedSearchAttributes.get(LifeboatTarget),
      phase: w.typedSearchAttributes.get(LifeboatPhase),
      awaitingApproval: w.typedSearchAttributes.get(LifeboatAwaitingApproval),
      state: w.status.name,
      started: w.startTime.toISOString(),
    });
    if (rows.length >= 200) break;
  }
  if (ctx.json) printJson(rows);
  else if (rows.length === 0) line('no lifeboat workflows match.');
  else for (const row of workflowRows(rows)) line(row);
  return 0;
}
