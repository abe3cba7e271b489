/**
 * The CLI of DynamoDB targets: `lifeboat backup <t>` (dynamodbBackup), `lifeboat restore <t>
 * --to <time|latest> | --backup <id|latest> --into-table <new> [--from-region dr]`
 * (dynamodbRestore, behind the restore gate) and `lifeboat drill run <t>` (dynamodbDrill).
 * Everything that can be refused from what was typed is refused here, before connecting; what
 * needs AWS (a table that exists, a time outside the window) the workflow's validation refuses
 * before it makes anything, and the command shows that sentence and exits 2.
 */
import { Client } from '@temporalio/client';
import { LifeboatConfig, requesterProblem } from '../config';
import { findDynamoDbTarget } from '../activities/dynamodb';
import { MAX_REASON_CHARS } from '../domain/approval';
import { DynamoDbBackupInput, DynamoDbBackupReport, DynamoDbDrillInput, DynamoDbRestoreInput, DynamoDbRestoreReport, tableNameProblem } from '../domain/dynamodb';
import { formatBytes } from '../domain/format';
import { checkLength, UsageError } from './args';
import { failureOf, follow } from './backup-commands';
import { line, printJson } from './output';
import { CommandContext, identity, printRestoreStarted } from './recovery-commands';
import { waitPastValidation } from './restore-start';

const stamp = () => new Date().toISOString().replace(/[:.]/g, '-').toLowerCase();

/** Options of `restore` and `backup` that mean nothing for a DynamoDB target. */
const NOT_FOR_DYNAMODB = ['destination', 'incident', 'emergency', 'cutover', 'keep', 'logical', 'tables', 'intoDatabase', 'intoSchema', 'prefix', 'keysFrom', 'intoBucket', 'inPlace', 'mirror'] as const;

const flag = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

export interface DynamoDbRestoreOptions {
  target: string;
  to?: string;
  backup?: string;
  intoTable?: string;
  fromRegion?: string;
  reason: string;
  as?: string;
  workflowId?: string;
  timings?: DynamoDbRestoreInput['timings'];
  /** Every other option given on the command line, to refuse those that are for other kinds. */
  others?: Record<string, unknown>;
}

/** Everything the CLI can refuse without a network call; the request as the workflow takes it. */
export function prepareDynamoDbRestore(config: LifeboatConfig, o: DynamoDbRestoreOptions): { input: DynamoDbRestoreInput; workflowId: string } {
  const target = findDynamoDbTarget(config, o.target);
  const other = NOT_FOR_DYNAMODB.find((k) => o.others?.[k] !== undefined);
  if (other) throw new UsageError(`${flag(other)} does not apply to ${target.name}, a DynamoDB target: restore it with --to <time|latest> or --backup <id|latest>, and --into-table <new>.`);
  if (o.to !== undefined && o.backup !== undefined) throw new UsageError('give --to (a point in time) or --backup (a backup), not both.');
  if (o.to === undefined && o.backup === undefined) throw new UsageError(`restoring the DynamoDB target ${target.name} needs --to <time|latest> or --backup <id|latest>.`);
  if (o.intoTable === undefined || !o.intoTable.trim()) throw new UsageError(`restoring the DynamoDB target ${target.name} needs --into-table <new>: the name of a new table to restore into.`);
  const intoTable = o.intoTable.trim();
  const nameProblem = tableNameProblem(intoTable);
  if (nameProblem) throw new UsageError(`--into-table ${nameProblem}: give a new table name.`);
  if (intoTable === target.tableName) throw new UsageError(`--into-table ${intoTable} is the source table of ${target.name}; lifeboat restores only into a new table, so give another name.`);
  if (o.fromRegion !== undefined && o.fromRegion !== 'primary' && o.fromRegion !== 'dr') throw new UsageError(`--from-region takes primary or dr, not "${o.fromRegion}".`);
  if (o.fromRegion === 'dr' && o.to !== undefined) throw new UsageError(`a restore in the DR region (${target.drRegion}) comes from a backup's DR export: give --backup <id|latest> instead of --to.`);
  let source: DynamoDbRestoreInput['source'];
  if (o.backup !== undefined) {
    if (!o.backup.trim()) throw new UsageError('--backup needs a backup id, a backup name or latest.');
    source = { kind: 'backup', backup: o.backup.trim() };
  } else if (o.to === 'latest') {
    source = { kind: 'latest' };
  } else {
    const to = o.to!;
    if (!/(Z|[+-]\d\d:?\d\d)$/i.test(to.trim()) || Number.isNaN(Date.parse(to))) throw new UsageError(`--to "${to}" is not a time with a zone: give an ISO-8601 time such as 2026-11-21T10:01:00Z, or latest.`);
    if (Date.parse(to) > Date.now()) throw new UsageError(`--to ${new Date(to).toISOString()} is in the future: pick a time before now (${new Date().toISOString()}).`);
    source = { kind: 'time', at: new Date(to).toISOString() };
  }
  if (!o.reason.trim()) throw new UsageError('a restore needs --reason, for the record.');
  checkLength('--reason', o.reason, MAX_REASON_CHARS, 'say it in a paragraph and link the details');
  const requestedBy = identity(o.as);
  const unknownRequester = requesterProblem(config, [target.environment], requestedBy);
  if (unknownRequester) throw new UsageError(`${unknownRequester}.`);
  const input: DynamoDbRestoreInput = {
    target: target.name,
    source,
    intoTable,
    ...(o.fromRegion === 'dr' ? { fromRegion: 'dr' as const } : {}),
    requestedBy,
    reason: o.reason,
    ...(o.timings ? { timings: o.timings } : {}),
  };
  return { input, workflowId: o.workflowId ?? `restore-dynamodb-${target.name}-${stamp()}` };
}

/** Starts the restore, waits for its validation (a refusal: exit 2), then shows the gate. */
export async function dynamodbRestoreCommand(ctx: CommandContext, prepared: { input: DynamoDbRestoreInput; workflowId: string }): Promise<number> {
  const { input, workflowId } = prepared;
  const handle = await ctx.client.workflow.start('dynamodbRestore', {
    taskQueue: ctx.config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `DynamoDB restore of ${input.target} into ${input.intoTable}`,
    staticDetails: `Requested by ${input.requestedBy}: ${input.reason}.`,
  });
  // A refusal while the request is checked: one sentence, exit 2, with nothing made.
  const started = await waitPastValidation(handle, { intervalMs: 250, refusedPrefix: '' });
  printRestoreStarted(ctx, workflowId, started.status, 'DynamoDB restore');
  return started.state === 'ended' ? started.exitCode : 0;
}

/** `lifeboat backup <dynamodb target>`: follows the backup to the end (exit 0 only when verified in both regions). */
export async function dynamodbBackupCommand(config: LifeboatConfig, client: Client, o: { target: string; kind?: string; logical?: boolean; json: boolean; workflowId?: string; requestedBy?: string; refreshMs?: number }): Promise<number> {
  const target = findDynamoDbTarget(config, o.target);
  const workflowId = o.workflowId ?? `backup-dynamodb-${target.name}-${stamp()}`;
  const input: DynamoDbBackupInput = { target: target.name, requestedBy: o.requestedBy ?? process.env.LIFEBOAT_USER ?? 'cli' };
  const handle = await client.workflow.start('dynamodbBackup', { taskQueue: config.temporal.taskQueue, workflowId, args: [input], staticSummary: `DynamoDB backup of ${target.name}` });
  if (!o.json) line(`DynamoDB backup ${workflowId} of ${target.name} (${target.tableName} in ${target.region}) started`);
  try {
    const r = await follow<DynamoDbBackupReport>(client, handle, o.json, o.refreshMs);
    if (o.json) printJson(r);
    else {
      line(`DynamoDB backup complete: ${r.target}`);
      line(`  backup:  ${r.backup?.backupName} (${formatBytes(r.backup?.sizeBytes ?? 0)}), AVAILABLE in ${r.plan?.region}`);
      line(`  export:  ${r.export?.itemCount} items at ${r.plan?.primary.bucket}/${r.export?.exportFolder}, verified`);
      line(`  dr copy: ${r.drCopy?.copied} objects copied, ${r.drCopy?.skipped} already there, verified in ${r.plan?.dr.bucket}`);
      line(`  catalog row ${r.catalogId}`);
    }
    return r.outcome === 'verified' ? 0 : 1;
  } catch (err) {
    if (o.json) printJson({ workflowId, ok: false, failure: failureOf(err) });
    else line(`DynamoDB backup FAILED: ${failureOf(err)}`);
    return 1;
  }
}

/** What `lifeboat backup` refuses for a DynamoDB target before connecting. */
export function checkDynamoDbBackupOptions(o: { target: string; kind?: string; logical?: boolean }): void {
  if (o.logical) throw new UsageError(`${o.target} is a DynamoDB target; --logical applies to database targets.`);
  if (o.kind !== undefined) throw new UsageError(`${o.target} is a DynamoDB target, whose backups are always an on-demand backup and a full export; leave out --kind.`);
}

/** `lifeboat drill run <dynamodb target>`: the drill, followed to its end. */
export async function dynamodbDrillCommand(config: LifeboatConfig, client: Client, o: { target: string; backup?: string; fromRegion?: string; workflowId?: string; requestedBy: string; json: boolean }): Promise<number> {
  const target = findDynamoDbTarget(config, o.target);
  if (o.fromRegion !== undefined && o.fromRegion !== 'primary' && o.fromRegion !== 'dr') throw new UsageError(`--from-region takes primary or dr, not "${o.fromRegion}".`);
  if (o.backup === 'random') throw new UsageError(`a DynamoDB drill takes --backup latest or a backup's id, not random.`);
  const input: DynamoDbDrillInput = { target: target.name, requestedBy: o.requestedBy, ...(o.backup ? { backup: o.backup } : {}), ...(o.fromRegion === 'dr' ? { fromRegion: 'dr' as const } : {}) };
  const workflowId = o.workflowId ?? `drill-dynamodb-${target.name}-${stamp()}`;
  const handle = await client.workflow.start('dynamodbDrill', { taskQueue: config.temporal.taskQueue, workflowId, args: [input], staticSummary: `DynamoDB drill of ${target.name}` });
  if (!o.json) line(`DynamoDB drill ${workflowId} of ${target.name} started`);
  try {
    const r = await follow<DynamoDbRestoreReport>(client, handle, o.json);
    if (o.json) printJson(r);
    else {
      line(`DynamoDB drill ${r.outcome.toUpperCase()}: ${r.plan?.pointLabel} restored into ${r.table?.name} (${r.verification?.itemCount} items); ${r.cleanup.join('; ')}`);
      const json0 = r.evidence?.find((e) => e.format === 'json');
      if (json0) {
        line(`  report: ${json0.key.replace(/\.json$/, '.{json,md,html}')} in ${json0.copies.map((c) => `${c.bucket} (${c.region})`).join(' and ')}; SHA-256 of the JSON ${json0.sha256}`);
        line(`  print it: lifeboat drill report ${workflowId} [--format md|json|html] [--verify]`);
      }
    }
    return r.outcome === 'restored' ? 0 : 1;
  } catch (err) {
    if (o.json) printJson({ workflowId, ok: false, failure: failureOf(err) });
    else line(`DynamoDB drill FAILED: ${failureOf(err)}`);
    return 1;
  }
}
