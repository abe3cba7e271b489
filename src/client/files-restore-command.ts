/**
 * `lifeboat restore <bucket target> --backup <id|latest> | --to <time> [--prefix p/ | --keys-from f]
 * [--into-bucket <new> | --in-place [--mirror]]`: the filesRestore workflow. What was typed is
 * checked here before connecting; what needs the set or the bucket (a prefix matching nothing,
 * unknown keys, an existing bucket, an unversioned bucket) the workflow's validation refuses
 * before it writes anything, and this command shows that sentence and exits 2. Into a new bucket
 * it follows the restore to the end (objects and bytes as they go); in place it shows the gate.
 */
import fs from 'node:fs';
import { findBucketTarget, LifeboatConfig, requesterProblem } from '../config';
import { MAX_REASON_CHARS } from '../domain/approval';
import { FilesRestoreInput, FilesRestoreReport, filesRestoreRequestProblem, parseKeyList } from '../domain/files-restore';
import { checkLength, UsageError } from './args';
import { failureOf, follow } from './backup-commands';
import { line, printJson, uiLink } from './output';
import { CommandContext, identity } from './recovery-commands';
import { waitPastValidation } from './restore-start';

export interface FilesRestoreOptions {
  target: string;
  backup?: string;
  to?: string;
  prefix?: string;
  keysFrom?: string;
  intoBucket?: string;
  inPlace: boolean;
  mirror: boolean;
  reason: string;
  as?: string;
  workflowId?: string;
  timings?: FilesRestoreInput['timings'];
}

/** Everything the CLI can refuse without a network call; the request in the form the workflow takes. */
export function prepareFilesRestore(config: LifeboatConfig, o: FilesRestoreOptions): { input: FilesRestoreInput; workflowId: string } {
  const target = findBucketTarget(config, o.target);
  const problem = filesRestoreRequestProblem(o);
  if (problem) throw new UsageError(problem);
  if (o.to !== undefined) {
    if (!/(Z|[+-]\d\d:?\d\d)$/i.test(o.to.trim()) || Number.isNaN(Date.parse(o.to))) throw new UsageError(`--to "${o.to}" is not a time with a zone: give an ISO-8601 time such as 2026-11-21T10:01:00Z.`);
    if (Date.parse(o.to) > Date.now()) throw new UsageError(`--to ${new Date(o.to).toISOString()} is in the future: pick a time before now (${new Date().toISOString()}).`);
  }
  let keys: string[] | undefined;
  if (o.keysFrom !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(o.keysFrom, 'utf8');
    } catch (err) {
      throw new UsageError(`--keys-from ${o.keysFrom} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give a file with one object key per line.`);
    }
    keys = parseKeyList(text);
    if (!keys.length) throw new UsageError(`--keys-from ${o.keysFrom} lists no key: give one object key per line (blank lines and # comments are skipped).`);
  }
  if (!o.reason.trim()) throw new UsageError('a restore needs --reason, for the record.');
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  const requestedBy = identity(o.as);
  const unknownRequester = requesterProblem(config, [target.environment], requestedBy);
  if (unknownRequester) throw new UsageError(`${unknownRequester}.`);
  const workflowId = o.workflowId ?? `restore-files-${target.name}-${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
  const input: FilesRestoreInput = {
    target: target.name,
    source: o.backup !== undefined ? { kind: 'backup', backup: o.backup.trim() } : { kind: 'time', at: new Date(o.to!).toISOString() },
    selection: keys ? { keys, keysFrom: o.keysFrom } : o.prefix !== undefined ? { prefix: o.prefix } : {},
    destination: o.inPlace ? { kind: 'in-place', mirror: o.mirror } : { kind: 'new-bucket', ...(o.intoBucket ? { bucket: o.intoBucket } : {}) },
    requestedBy,
    reason: o.reason,
    ...(o.timings ? { timings: o.timings } : {}),
  };
  return { input, workflowId };
}

export async function filesRestoreCommand(ctx: CommandContext, prepared: { input: FilesRestoreInput; workflowId: string }): Promise<number> {
  const { input, workflowId } = prepared;
  const handle = await ctx.client.workflow.start('filesRestore', {
    taskQueue: ctx.config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `files restore of ${input.target}${input.destination.kind === 'in-place' ? ' IN PLACE' : ''}`,
    staticDetails: `Requested by ${input.requestedBy}: ${input.reason}.`,
  });
  // Wait for validation, so a refusal shows here (exit 2) rather than only in the UI.
  const started = await waitPastValidation(handle, { intervalMs: 250, refusedPrefix: '' });
  if (started.state === 'ended') {
    const report = started.result as FilesRestoreReport;
    if (ctx.json) printJson(report);
    else printReport(report);
    return started.exitCode;
  }
  const status = started.status;
  const link = uiLink(ctx.uiBase, ctx.config.temporal.namespace, workflowId);
  if (status?.pendingGate) {
    const g = status.pendingGate;
    if (ctx.json) {
      printJson({ workflowId, status, ui: link });
      return 0;
    }
    line(`files restore started: ${workflowId}`);
    line(`waiting for approval (${g.gate}) by any of: ${g.allowedRoles.join(', ')}${g.requestedBy ? `, not ${g.requestedBy}` : ''}`);
    for (const f of g.prompt.facts) line(`  ${f.label}: ${f.value}`);
    line(`approve:  lifeboat approve ${workflowId} --gate ${g.gate} --reason "..." --as <identity> --key <your private key>`);
    line(`reject:   lifeboat reject ${workflowId} --reason "..." --as <identity> --key <your private key>`);
    line(`watch:    lifeboat watch ${workflowId}`);
    line(`Web UI:   ${link}`);
    return 0;
  }
  if (!ctx.json) line(`files restore started: ${workflowId} (${status?.subject ?? input.target})`);
  try {
    const report = await follow<FilesRestoreReport>(ctx.client, handle, ctx.json);
    if (ctx.json) printJson(report);
    else printReport(report);
    return report.outcome === 'restored' ? 0 : 1;
  } catch (err) {
    if (ctx.json) printJson({ workflowId, ok: false, failure: failureOf(err) });
    else line(`files restore FAILED: ${failureOf(err)}`);
    return 1;
  }
}

function printReport(r: FilesRestoreReport): void {
  const plan = r.plan!;
  const c = r.copy!;
  line(`Files restore ${r.outcome.toUpperCase()}: ${plan.objects} objects of ${r.target} into ${plan.into.bucket}${plan.into.kind === 'in-place' ? ' (in place)' : ' (a new bucket)'}`);
  line(`  written: ${c.written} objects${c.unchanged ? `, ${c.unchanged} already equal (left alone)` : ''}`);
  for (const check of r.checks) line(`  ${check.ok ? 'ok' : 'FAILED'}  ${check.name}: ${check.detail}`);
  for (const note of r.cleanup) line(`  ${note}`);
  if (r.undo) line(`  undo: ${r.undo}`);
}
