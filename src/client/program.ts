/**
 * Every `lifeboat` command, its arguments and options, declared once with commander: the same
 * declarations drive the strict check of what was typed (args.ts), `lifeboat <command> --help`
 * and `lifeboat completion bash`. Each action returns the exit code.
 */
import { isDynamoDbTarget } from '../activities/dynamodb';
import { checkDynamoDbBackupOptions, dynamodbBackupCommand, dynamodbDrillCommand, dynamodbRestoreCommand, prepareDynamoDbRestore } from './dynamodb-commands';
import { Command, Option } from 'commander';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { findTarget, sqliteTargetNamed } from '../config';
import type { LifeboatConfig } from '../config';
import { loadLocatedConfig } from '../config/locate';
import { metricsPortFrom } from '../metrics/worker-metrics';
import { loadStackSettings } from '../stack/settings';
import { checkCommandLine, commandPath, UsageError } from './args';
import { backupCommand, backupsListCommand, checkBackupOptions, retentionCommand } from './backup-commands';
import { backupWaitCommand } from './backup-wait';
import { completionScript } from './completion';
import { complianceCommand } from './compliance-command';
import { failoverNoteCommand, failoverStartCommand, failoverStatusCommand, prepareFailoverNote, prepareFailoverStart } from './failover-run-commands';
import { drillReportCommand, drillRunCommand, drillsListCommand, prepareDrill } from './drill-commands';
import { failoverPlanCommand } from './failover-commands';
import { failbackStartCommand, failbackStatusCommand, prepareFailbackStart } from './failback-commands';
import { backupDeleteCommand, prepareBackupDelete } from './backup-deletion-commands';
import { instanceRemoveCommand, instancesExtendCommand, instancesListCommand, prepareExtend, prepareInstanceRemove } from './instance-commands';
import { formatTable } from './output';
import { preflightCommand } from './preflight-command';
import { auditVerifyCommand } from './audit-command';
import { ackCommand, alertsListCommand, prepareAck } from './alert-commands';
import { filesRestoreCommand, prepareFilesRestore } from './files-restore-command';
import { directoryRestoreCommand, isDirectoryTarget, prepareDirectoryRestore } from './directory-commands';
import { CommandContext, decideCommand, identity, listCommand, prepareDecision, prepareRestore, prepareTableRestore, resolveDecisionSigner, restoreCommand, statusCommand, watchCommand } from './recovery-commands';
import { prepareRestorePoint, restorePointCommand } from './restore-point-command';
import { decryptCommand, logicalRestoreCommand, prepareLogicalRestore } from './logical-restore-commands';
import { prepareSqliteRestore, sqliteRestoreCommand } from './sqlite-commands';
import { schedulesCommand } from './schedules';
import { storageCommand } from './storage-command';
import { stackCommand, stackRegionCommand, workerCommand } from './stack-commands';
import { connectClient } from './temporal';
import { runCodecServer } from '../codec-server';

const ABOUT = 'Backup, point-in-time restore and disaster recovery for PostgreSQL and S3, as Temporal workflows.';

const NOTES = `Identity for decisions: --as, else $LIFEBOAT_USER. Times are ISO-8601 with a zone (2026-11-21T10:01:00Z).

Commands that read the config take --config <file> (default $LIFEBOAT_CONFIG, then
./lifeboat.config.yaml). Each option is given at most once; a switch also reads --json=true or
--json=false. What was typed is checked before lifeboat connects to anything.
Exit codes: 0 done, 1 failed or unhealthy, 2 bad usage or input (an unknown workflow id too).
`;

/** The options every command reads as this type (commander camel-cases --dry-run to dryRun). */
interface Options {
  config?: string;
  agent?: string;
  json?: boolean;
  target?: string;
  id?: string;
  to?: string;
  reason?: string;
  as?: string;
  destination?: string;
  fromRegion?: string;
  incident?: string;
  emergency?: boolean;
  cutover?: boolean;
  keep?: boolean;
  gate?: string;
  awaitingApproval?: boolean;
  running?: boolean;
  kind?: string;
  /** `backup --logical` is a switch; `restore --logical <backup>` names the dump. */
  logical?: boolean | string;
  tables?: string;
  intoDatabase?: string;
  intoSchema?: string;
  in?: string;
  out?: string;
  keyId?: boolean;
  decompress?: boolean;
  dryRun?: boolean;
  bypassGovernance?: boolean;
  prune?: boolean;
  prefix?: string;
  backup?: string;
  format?: string;
  verify?: boolean;
  run?: boolean;
  drill?: boolean;
  key?: string;
  expiresIn?: string;
  by?: string;
  note?: string;
  all?: boolean;
  region?: string;
  withPrometheus?: boolean;
  keysFrom?: string;
  intoBucket?: string;
  /** `restore <directory target> --into <dir>`; for SQLite targets, the new file a restore makes. */
  into?: string;
  intoTable?: string;
  inPlace?: boolean;
  mirror?: boolean;
  wait?: boolean;
}

const configOption = () => new Option('--config <file>', 'the config file (default $LIFEBOAT_CONFIG, then ./lifeboat.config.yaml)');
const jsonOption = () => new Option('--json', 'print JSON for scripts instead of lines for people');
const asOption = (what: string) => new Option('--as <identity>', `who ${what} (default $LIFEBOAT_USER); compared and recorded in lower case`);
const reasonOption = (what: string) => new Option('--reason <text>', `why, ${what} (at most 2000 characters)`);

/** The agents the located config names; none when it cannot be read (the worker then says why). */
/** The metrics port a background worker would serve on ($LIFEBOAT_METRICS_PORT, else metrics.port), if any. */
function metricsPortOfLocatedConfig(): number | undefined {
  let config;
  try {
    config = loadLocatedConfig(undefined).config;
  } catch {
    return undefined; // the worker itself reports a config it cannot load
  }
  try {
    return metricsPortFrom(config);
  } catch (err) {
    throw new UsageError((err as Error).message); // a bad LIFEBOAT_METRICS_PORT: one sentence, exit 2, nothing started
  }
}

function agentsOfLocatedConfig(): string[] {
  try {
    const { config } = loadLocatedConfig(undefined);
    return [...new Set(config.targets.databases.flatMap((d) => (d.engine === 'pgbackrest' && d.agent ? [d.agent] : [])))];
  } catch {
    return [];
  }
}

/** The config a command names (--config, $LIFEBOAT_CONFIG, ./lifeboat.config.yaml). */
function configOf(options: Options): LifeboatConfig {
  return loadLocatedConfig(options.config).config;
}

/** Runs `fn` with a connected client and closes it after; connecting is the last step, after every check of the input. */
async function withClient(config: LifeboatConfig, fn: (client: Client) => Promise<number>): Promise<number> {
  const client = await connectClient(config);
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}

/** The Web UI's address: $LIFEBOAT_UI_URL, else the local stack's UI port. */
function uiBaseFor(config: { temporal: { address: string } }): string {
  if (process.env.LIFEBOAT_UI_URL) return process.env.LIFEBOAT_UI_URL.replace(/\/$/, '');
  const host = config.temporal.address.split(':')[0];
  return `http://${host}:${loadStackSettings().temporal.uiPort}`;
}

/** A recovery command run against Temporal; an unknown workflow id is the person's mistake (exit 2). */
function recovery(config: LifeboatConfig, options: Options, command: string, workflowId: string | undefined, run: (ctx: CommandContext) => Promise<number>): Promise<number> {
  return withClient(config, async (client) => {
    try {
      return await run({ config, client, json: options.json === true, uiBase: uiBaseFor(config) });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError && workflowId) {
        const running = command === 'approve' || command === 'reject' ? 'running ' : '';
        throw new UsageError(`no ${running}workflow has the id "${workflowId}" in namespace ${config.temporal.namespace}: check the id with \`lifeboat list\`${running ? ' (a finished workflow takes no decisions)' : ''}.`);
      }
      throw err;
    }
  });
}

type Action = (args: string[], options: Options) => Promise<number>;

/** The command tree and a way to run a command line through it. */
export interface LifeboatCli {
  program: Command;
  /** Checks `argv`, runs the command, resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

export function lifeboatCli(): LifeboatCli {
  let exitCode = 0;
  const program = new Command('lifeboat')
    .description(ABOUT)
    .usage('<command> [options]')
    .helpOption('--help', 'show this help')
    .helpCommand(false)
    .configureHelp({ styleTitle: (title) => title.toLowerCase() })
    // Nothing reaches commander's own errors (checkCommandLine runs first); should one, it is a usage error, not a crash.
    .exitOverride((err) => {
      throw new UsageError(err.message.replace(/^error: /, ''));
    });

  /** A command whose action sets the exit code (commander ignores an action's result). */
  const command = (parent: Command, name: string, summary: string, action?: Action): Command => {
    const created = parent.command(name).description(summary).helpCommand(false);
    if (action) created.action(async (...params: unknown[]) => {
      const self = params.at(-1) as Command;
      exitCode = await action(self.processedArgs as string[], self.opts<Options>());
    });
    return created;
  };

  const stack = command(program, 'stack', 'start, stop or check the embedded local stack');
  for (const [sub, summary] of [
    ['up', 'start every local server lifeboat needs (harmless when running)'],
    ['down', 'stop what `stack up` started, a worker and restored instances too'],
    ['status', 'whether each local server is healthy (exit 1 when one is not)'],
  ]) {
    const created = command(stack, sub, summary, (_, o) => stackCommand(sub, o.json === true, { withPrometheus: o.withPrometheus === true, agents: () => agentsOfLocatedConfig().length })).addOption(jsonOption());
    if (sub === 'up') created.option('--with-prometheus', 'also start a Prometheus scraping the worker and agents (LIFEBOAT_METRICS_PORT and the next ports) with the shipped alert rules');
  }
  const region = command(stack, 'region', "stop or start one region's servers, for failover drills and tests");
  for (const [sub, summary] of [
    ['down', "stop the region's servers (primary: its MinIO and PostgreSQL; dr: its MinIO)"],
    ['up', "start the region's servers again (harmless when running)"],
  ]) {
    command(region, sub, summary, ([name], o) => stackRegionCommand(sub, name, o.json === true))
      .argument('<region>', 'primary or dr')
      .addOption(jsonOption());
  }

  const worker = command(program, 'worker', 'run a lifeboat worker in the background (local stack)');
  for (const [sub, summary] of [
    ['start', 'start the central worker and the agents the config names in the background, or one agent with --agent (harmless when running)'],
    ['stop', 'stop the background workers, or one agent with --agent'],
    ['status', 'whether the background worker (or --agent) runs (exit 1 when not)'],
  ]) {
    command(worker, sub, summary, (_, o) => workerCommand(sub, o.json === true, { agent: o.agent, configAgents: agentsOfLocatedConfig, metricsPort: metricsPortOfLocatedConfig }))
      .addOption(jsonOption())
      .addOption(new Option('--agent <name>', 'an agent: the worker on a database host that runs its host-bound activities (targets.databases[].agent)'));
  }

  command(program, 'preflight', 'prove every system a target depends on works now', (_, o) => {
    const config = configOf(o);
    const targets = o.target?.split(',');
    for (const name of targets ?? []) if (!isDirectoryTarget(config, name) && !sqliteTargetNamed(config, name) && !isDynamoDbTarget(config, name)) findTarget(config, name); // refuse an unknown target before starting anything
    return preflightCommand(config, { targets, json: o.json === true, workflowId: o.id });
  })
    .addOption(configOption())
    .option('--target <names>', 'check only these targets (comma-separated); default every target')
    .option('--id <workflow-id>', 'the preflight workflow id (default preflight-<time>)')
    .addOption(jsonOption());

  command(program, 'restore', 'point-in-time restore into a new instance, behind approval; a bucket target\'s objects into a new bucket, or in place behind approval', ([target], o) => {
    const config = configOf(o);
    if (isDynamoDbTarget(config, target)) {
      const prepared = prepareDynamoDbRestore(config, { target, to: o.to, backup: o.backup, intoTable: o.intoTable, fromRegion: o.fromRegion, reason: o.reason ?? '', as: o.as, workflowId: o.id, others: { ...o } });
      return recovery(config, o, 'restore', undefined, (ctx) => dynamodbRestoreCommand(ctx, prepared));
    }
    if (isDirectoryTarget(config, target)) {
      const others = (['to', 'destination', 'fromRegion', 'incident', 'emergency', 'cutover', 'keep', 'logical', 'tables', 'intoDatabase', 'intoSchema', 'prefix', 'keysFrom', 'intoBucket', 'mirror'] as const).filter((k) => o[k] !== undefined).map((k) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));
      const prepared = prepareDirectoryRestore(config, { target, backup: o.backup, into: o.into, inPlace: o.inPlace === true, reason: o.reason ?? '', as: o.as, workflowId: o.id, others });
      return recovery(config, o, 'restore', undefined, (ctx) => directoryRestoreCommand(ctx, prepared));
    }
    if (sqliteTargetNamed(config, target)) {
      const notSqlite = (['to', 'destination', 'incident', 'emergency', 'cutover', 'keep', 'logical', 'tables', 'intoDatabase', 'intoSchema', 'prefix', 'keysFrom', 'intoBucket', 'inPlace', 'mirror'] as const).find((k) => o[k] !== undefined);
      if (notSqlite) throw new UsageError(`--${notSqlite.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} does not apply to ${target}, a SQLite target: restore it with --backup <id|latest> --into <new path> (see \`lifeboat restore --help\`).`);
      const prepared = prepareSqliteRestore(config, { target, backup: o.backup, into: o.into, fromRegion: o.fromRegion, reason: o.reason ?? '', as: o.as, workflowId: o.id });
      return recovery(config, o, 'restore', undefined, (ctx) => sqliteRestoreCommand(ctx, prepared));
    }
    if (o.into !== undefined) findTarget(config, target); // an unknown name is refused as such first
    if (o.into !== undefined) throw new UsageError(`--into applies to directory targets (a new directory) and SQLite targets (a new file); ${target} is neither.`);
    if (o.intoTable !== undefined) throw new UsageError(`--into-table applies to DynamoDB targets; ${target} is not one.`);
    if (config.targets.buckets.some((b) => b.name === target)) {
      const databaseOnly = (['destination', 'fromRegion', 'incident', 'emergency', 'cutover', 'keep', 'logical', 'tables', 'intoDatabase', 'intoSchema'] as const).find((k) => o[k] !== undefined);
      if (databaseOnly) throw new UsageError(`--${databaseOnly.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to database targets; ${target} is a bucket target (see \`lifeboat restore --help\`).`);
      const prepared = prepareFilesRestore(config, {
        target,
        backup: o.backup,
        to: o.to,
        prefix: o.prefix,
        keysFrom: o.keysFrom,
        intoBucket: o.intoBucket,
        inPlace: o.inPlace === true,
        mirror: o.mirror === true,
        reason: o.reason ?? '',
        as: o.as,
        workflowId: o.id,
      });
      return recovery(config, o, 'restore', undefined, (ctx) => filesRestoreCommand(ctx, prepared));
    }
    const bucketOnly = (['backup', 'prefix', 'keysFrom', 'intoBucket', 'inPlace', 'mirror'] as const).find((k) => o[k] !== undefined);
    const known = [...config.targets.databases, ...config.targets.buckets, ...config.targets.directories].map((t) => t.name);
    if (bucketOnly && !known.includes(target)) throw new UsageError(`No database, bucket or directory target is named "${target}"; the config declares ${known.join(', ')}.`);
    if (bucketOnly) throw new UsageError(`--${bucketOnly.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to bucket targets (a files restore); ${target} is not one.`);
    // Every check of what was typed happens here, before connecting: a usage error reads the same whether Temporal is up or not.
    if (o.fromRegion && o.fromRegion !== 'primary' && o.fromRegion !== 'dr') throw new UsageError(`--from-region takes primary or dr, not "${o.fromRegion}".`);
    if (typeof o.logical === 'string') {
      if (o.to !== undefined) throw new UsageError('give --to (a point in time) or --logical (a logical dump), not both.');
      for (const option of ['destination', 'cutover', 'emergency'] as const) if (o[option] !== undefined) throw new UsageError(`--${option} applies to point-in-time restores, not to --logical ones.`);
      const logical = prepareLogicalRestore(config, {
        target,
        backup: o.logical,
        tables: o.tables,
        intoDatabase: o.intoDatabase,
        intoSchema: o.intoSchema,
        fromRegion: o.fromRegion,
        reason: o.reason ?? '',
        as: o.as,
        incident: o.incident,
        keep: o.keep === true,
        workflowId: o.id,
      });
      return recovery(config, o, 'restore', undefined, (ctx) => logicalRestoreCommand(ctx, logical));
    }
    if (o.intoDatabase !== undefined) throw new UsageError('--into-database applies to --logical restores; a point-in-time restore of whole databases goes to a new instance (--destination), of some tables into a new schema (--tables with --into-schema).');
    if (!o.to) throw new UsageError('`lifeboat restore` needs --to <time|latest>: an ISO-8601 time with a zone, or latest (or --logical <backup-id|latest> for a logical dump).');
    const options = {
      target,
      to: o.to,
      reason: o.reason ?? '',
      as: o.as,
      emergency: o.emergency === true,
      cutover: o.cutover === true,
      keep: o.keep === true,
      destination: o.destination,
      fromRegion: o.fromRegion as 'primary' | 'dr' | undefined,
      incident: o.incident,
      workflowId: o.id,
    };
    const prepared = o.tables !== undefined || o.intoSchema !== undefined ? prepareTableRestore(config, { ...options, tables: o.tables, intoSchema: o.intoSchema }) : prepareRestore(config, options);
    return recovery(config, o, 'restore', undefined, (ctx) => restoreCommand(ctx, prepared));
  })
    .argument('<target>', 'the database or bucket target to restore, as the config names it')
    .addOption(configOption())
    .option('--to <time|latest>', 'the restore point: an ISO-8601 time with a zone, latest, or for pgBackRest targets lsn:<lsn> or name:<restore point>; for a bucket target, the time to restore its object versions as of')
    .addOption(reasonOption('on record with the restore'))
    .addOption(asOption('requests the restore'))
    .option('--destination <name>', 'the new instance to restore into (default one named after the workflow)')
    .option('--from-region <region>', 'restore from the primary (default) or the dr region\'s copies')
    .option('--incident <id>', 'the incident ticket id, on record with the restore (at most 128 characters)')
    .option('--id <workflow-id>', 'the restore workflow id (default restore-<target>-<time>)')
    .addOption(jsonOption())
    .option('--emergency', 'the emergency approval gate, with its own roles')
    .option('--cutover', 'after verification, ask to point the application\'s DNS name at the restored instance')
    .option('--keep', 'keep what was created when the restore fails or is cancelled, for forensics')
    .option('--logical <backup-id|latest>', 'restore a logical dump (catalog id, backup name or latest) into a new database instead of a point in time')
    .option('--tables <table,...>', 'only these tables (table or schema.table, comma-separated): with --to, restored in a temporary instance, copied into --into-schema, checked, the instance removed; with --logical, restored from the dump')
    .option('--into-database <name>', 'with --logical: the new database to restore into (default restored_<target>_<8 hex>)')
    .option('--into-schema <name>', 'with --tables: the NEW schema of the live database the tables go into (refused if it exists)')
    .option('--backup <id|latest>', 'bucket targets: restore from this files backup set (its id or catalog id, or latest); SQLite targets: this backup (catalog id, name or latest)')
    .option('--prefix <prefix>', 'bucket targets: only the objects whose keys start with this (such as photos/)')
    .option('--keys-from <file>', 'bucket targets: only the object keys listed in this file, one per line')
    .option('--into-bucket <new>', 'bucket targets: the NEW bucket to restore into (default restore-<workflow id>); refused if it exists')
    .option('--into <path>', 'directory targets: the NEW directory to restore into (default <path>.restored-<workflow id>; refused if it exists and is not empty); SQLite targets (with --backup): the NEW file to restore into (refused if anything is there, never the source)')
    .option('--in-place', 'bucket targets: restore into the source bucket itself, behind the restore gate (versioned buckets only; newer objects stay)')
    .option('--mirror', 'with --in-place: also delete the objects the backup does not have (listed at the gate; each keeps its versions)')
    .option('--into-table <new>', 'DynamoDB targets: the NEW table to restore into (refused if it exists or is the source), with --to <time|latest> or --backup <id|latest>');

  command(program, 'decrypt', 'decrypt a lifeboat-encrypted object (a logical dump) with nothing but its key: no config, Temporal or catalog', (_, o) =>
    decryptCommand({ key: o.key, in: o.in, out: o.out, target: o.target, backup: o.backup, keyId: o.keyId === true, decompress: o.decompress === true }),
  )
    .option('--key <refs>', 'the key as file:/path or env:NAME; several, comma-separated, form a keyring')
    .option('--in <file>', 'the encrypted object (default stdin)')
    .option('--out <file>', 'where the plaintext goes, a new file (default stdout); a logical dump decrypts to zstd (older dumps: gzip) of a pg_dump archive')
    .option('--decompress', 'a logical dump: also decompress (zstd or gzip, as its header says), writing the pg_dump archive itself')
    .option('--target <name>', 'with --backup: refuse an object not bound to this target')
    .option('--backup <name>', 'with --target: refuse an object not bound to this backup name')
    .option('--key-id', 'print the id of each key instead of decrypting (what a keyring entry\'s keyId is)');

  command(program, 'restore-point', 'make a named restore point on a target\'s source, recorded so a restore to it is checked before approval', ([target, name], o) => {
    const config = configOf(o);
    const prepared = prepareRestorePoint(config, { target, name, reason: o.reason ?? '', as: o.as });
    return recovery(config, o, 'restore-point', undefined, (ctx) => restorePointCommand(ctx, prepared));
  })
    .argument('<target>', 'the pgBackRest database target whose source gets the point')
    .argument('<name>', 'the restore point\'s name, unique per target (restore to it with --to name:<name>)')
    .addOption(configOption())
    .addOption(reasonOption('on record with the restore point'))
    .addOption(asOption('makes the restore point'))
    .addOption(jsonOption());

  for (const decision of ['approve', 'reject'] as const) {
    command(program, decision, `${decision} the gate a restore waits at`, async ([workflowId], o) => {
      const config = configOf(o);
      const request = await resolveDecisionSigner(config, prepareDecision({ workflowId, gate: o.gate, reason: o.reason ?? '', as: o.as, key: o.key, expiresIn: o.expiresIn }));
      return recovery(config, o, decision, workflowId, (ctx) => decideCommand(ctx, decision, request));
    })
      .argument('<workflow-id>', 'the workflow waiting for a decision (see `lifeboat list --awaiting-approval`)')
      .addOption(configOption())
      .option('--gate <name>', 'the gate decided: restore, emergencyRestore, cutover, failover, failback, retire, backupDeletion or instanceRemoval (default the pending one)')
      .addOption(reasonOption('on record with the decision'))
      .addOption(asOption(`${decision}s; not the requester in production`))
      .option('--key <file|env:NAME|ssh-agent[:<key>]>', 'your Ed25519 private key (PEM or OpenSSH, mode 600), or ssh-agent: the running agent signs with your key in publicKeys (or the one ssh-agent:<SHA256 fingerprint or comment> names); signs the decision, required in production (default $LIFEBOAT_SIGNING_KEY)')
      .option('--expires-in <duration>', 'how long the signature stays good, such as 10m (at most 24h; default 10m)')
      .addOption(jsonOption());
  }

  command(program, 'status', 'phase, timeline, pending gate, elapsed against the RTO target', ([workflowId], o) => {
    const config = configOf(o);
    return recovery(config, o, 'status', workflowId, (ctx) => statusCommand(ctx, workflowId));
  })
    .argument('<workflow-id>', 'the workflow to show')
    .addOption(configOption())
    .addOption(jsonOption());

  command(program, 'watch', 'live progress until the workflow ends (exit 0 only when restored)', ([workflowId], o) => {
    const config = configOf(o);
    return recovery(config, o, 'watch', workflowId, (ctx) => watchCommand(ctx, workflowId));
  })
    .argument('<workflow-id>', 'the workflow to follow')
    .addOption(configOption())
    .addOption(jsonOption());

  command(program, 'list', 'lifeboat workflows in Temporal', (_, o) => {
    const config = configOf(o);
    return recovery(config, o, 'list', undefined, (ctx) => listCommand(ctx, { awaitingApproval: o.awaitingApproval === true, running: o.running === true }));
  })
    .addOption(configOption())
    .addOption(jsonOption())
    .option('--awaiting-approval', 'only workflows waiting for a person\'s decision')
    .option('--running', 'only workflows still running');

  command(program, 'backup', 'verified backup in both regions, with progress until done', ([target], o) => {
    const config = configOf(o);
    const options = { target, kind: o.kind, logical: o.logical === true, json: o.json === true, workflowId: o.id, requestedBy: o.as };
    if (isDynamoDbTarget(config, target)) {
      checkDynamoDbBackupOptions(options);
      if (options.requestedBy !== undefined) options.requestedBy = identity(options.requestedBy);
      if (o.wait && o.json) throw new UsageError('--wait prints only the backup id on stdout, for scripts; leave out --json (or --wait: --json prints the whole result).');
      if (o.wait) return withClient(config, (client) => backupWaitCommand(config, client, options));
      return withClient(config, (client) => dynamodbBackupCommand(config, client, options));
    }
    checkBackupOptions(config, options);
    if (options.requestedBy !== undefined) options.requestedBy = identity(options.requestedBy);
    if (o.wait && o.json) throw new UsageError('--wait prints only the backup id on stdout, for scripts; leave out --json (or --wait: --json prints the whole result).');
    if (o.wait) return withClient(config, (client) => backupWaitCommand(config, client, options));
    return withClient(config, (client) => backupCommand(config, client, options));
  })
    .argument('<target>', 'a database target (pgBackRest/RDS, or --logical pg_dump) or a bucket target (files)')
    .addOption(configOption())
    .option('--kind <kind>', 'full, diff or incr for a database (default full; RDS always full), full or incr for a bucket')
    .option('--id <workflow-id>', 'the backup workflow id (default backup-<target>-<time>)')
    .addOption(asOption('asks for the backup'))
    .addOption(jsonOption())
    .option('--logical', 'a pg_dump logical backup instead of the engine\'s physical one')
    .option('--wait', 'for CI/CD: block until the backup is verified in both regions, then print only its id on stdout (exit 0); progress and any failure on stderr (exit 1)');

  const drill = command(program, 'drill', 'restore drills: prove a backup restores, with evidence');
  command(drill, 'run', 'restore a verified backup into a drill instance (or scratch bucket, directory or SQLite file), validate it, remove it, publish the report', ([target], o) => {
    const config = configOf(o);
    // A directory target goes the restoreDrill way too (a scratch directory on its host, the report as evidence).
    if (isDynamoDbTarget(config, target)) {
      const requestedBy = o.as !== undefined ? identity(o.as) : process.env.LIFEBOAT_USER ?? 'cli';
      return withClient(config, (client) => dynamodbDrillCommand(config, client, { target, backup: o.backup, fromRegion: o.fromRegion, workflowId: o.id, requestedBy, json: o.json === true }));
    }
    const prepared = prepareDrill(config, { target, backup: o.backup, fromRegion: o.fromRegion, workflowId: o.id, requestedBy: o.as !== undefined ? identity(o.as) : process.env.LIFEBOAT_USER ?? 'cli' });
    return withClient(config, (client) => drillRunCommand(config, client, prepared, o.json === true));
  })
    .argument('<target>', 'the database, bucket, directory, SQLite or DynamoDB target whose backup is drilled')
    .addOption(configOption())
    .option('--backup <which>', 'latest (default), random (within 30 days) or a backup\'s id')
    .option('--from-region <region>', 'drill the primary (default) or the dr region\'s copy')
    .option('--id <workflow-id>', 'the drill workflow id (default drill-<target>-<time>)')
    .addOption(asOption('asks for the drill'))
    .addOption(jsonOption());
  command(drill, 'report', 'print a drill\'s report from the evidence buckets, or check every copy', ([workflowId], o) => {
    const config = configOf(o);
    return drillReportCommand(config, { workflowId, format: o.format, verify: o.verify === true, json: o.json === true });
  })
    .argument('<workflow-id>', 'the drill whose report to print')
    .addOption(configOption())
    .option('--format <format>', 'md (default), json or html')
    .option('--verify', 'read every copy in every region back and check it against the SHA-256 on record')
    .addOption(jsonOption());

  const audit = command(program, 'audit', 'check the record of decisions');
  command(audit, 'verify', 're-check every signed decision of a workflow from the evidence buckets, and against its history in Temporal: who approved what, when, against which facts (exit 1 if any fails)', ([workflowId], o) => {
    const config = configOf(o);
    return auditVerifyCommand(config, { workflowId, json: o.json === true, client: () => connectClient(config) });
  })
    .argument('<workflow-id>', 'the workflow whose decisions to check')
    .addOption(configOption())
    .addOption(jsonOption());

  const drills = command(program, 'drills', 'restore drills on record');
  command(drills, 'list', 'per target: the last drill, the RTO trend, the predicted RTO now and the next scheduled drill', (_, o) => {
    const config = configOf(o);
    return drillsListCommand(config, { target: o.target, prefix: o.prefix, json: o.json === true, client: () => connectClient(config) });
  })
    .addOption(configOption())
    .option('--target <name>', 'only this target')
    .option('--prefix <prefix>', 'schedule ids start with this (default lifeboat-)')
    .addOption(jsonOption());

  command(program, 'compliance', 'the latest compliance report (exit 1 when it found a breach), or a new one with --run', (_, o) => {
    const config = configOf(o);
    return complianceCommand(config, { run: o.run === true, json: o.json === true, client: () => connectClient(config), requestedBy: o.as !== undefined ? identity(o.as) : process.env.LIFEBOAT_USER ?? 'cli' });
  })
    .addOption(configOption())
    .option('--run', 'run a compliance report now (the complianceReport workflow) and print it')
    .addOption(asOption('asks for the report'))
    .addOption(jsonOption());

  command(program, 'storage', 'bytes per region, target and storage class, growth, budget forecasts, the cost of retention and DR copy lag (exit 1 over a budget or lag limit)', (_, o) =>
    storageCommand(configOf(o), { target: o.target, region: o.region, json: o.json === true }),
  )
    .addOption(configOption())
    .option('--target <name>', 'only this target')
    .option('--region <region>', 'only this region: primary or dr')
    .addOption(jsonOption());

  // The disaster-recovery plan; `failover start|status|note` join this group.
  const failover = command(program, 'failover', 'the disaster-recovery plan: assess it now, run it, follow it');
  command(failover, 'plan', 'the recovery plan: each step\'s source and data age (RPO), readiness, predicted duration, the critical path against the full-system RTO (exit 1 when not ready)', (_, o) => {
    const config = configOf(o);
    return failoverPlanCommand(config, { drill: o.drill === true, json: o.json === true });
  })
    .addOption(configOption())
    .option('--drill', 'assess it as a failover drill (drill ports and drill zones)')
    .addOption(jsonOption());
  command(failover, 'start', 'declare a disaster: assess the plan, then (behind the failover gate) restore in the DR region, cut over behind the cutover gate, check the application', (_, o) => {
    const config = configOf(o);
    const prepared = prepareFailoverStart(config, { drill: o.drill === true, reason: o.reason ?? '', incident: o.incident, as: o.as, workflowId: o.id });
    return recovery(config, o, 'failover start', undefined, (ctx) => failoverStartCommand(ctx, prepared));
  })
    .addOption(configOption())
    .option('--drill', 'a failover drill: no gates, drill instances and drill names only, production fingerprinted before and after')
    .addOption(reasonOption('on record with the declaration'))
    .option('--incident <id>', 'the incident ticket id (at most 128 characters)')
    .addOption(asOption('declares the disaster'))
    .option('--id <workflow-id>', 'the failover workflow id (default failover-<time>)')
    .addOption(jsonOption());
  command(failover, 'status', 'each plan step\'s state, the RTO clock against the objective, the pending gate, the report when done', ([workflowId], o) => {
    const config = configOf(o);
    return recovery(config, o, 'failover status', workflowId, (ctx) => failoverStatusCommand(ctx, workflowId));
  })
    .argument('[workflow-id]', 'the failover to show (default the newest)')
    .addOption(configOption())
    .addOption(jsonOption());
  command(failover, 'note', 'add a lesson learned to a failover\'s record (catalog and a new evidence object)', ([workflowId, text], o) => {
    const config = configOf(o);
    return failoverNoteCommand(config, prepareFailoverNote({ workflowId, text, as: o.as }), o.json === true);
  })
    .argument('<workflow-id>', 'the failover the lesson is about')
    .argument('<lesson>', 'the lesson, in quotes')
    .addOption(configOption())
    .addOption(asOption('writes the lesson'))
    .addOption(jsonOption());

  // The way home after a failover.
  const failbackGroup = command(program, 'failback', 'the planned way home after a failover, once the primary region is back');
  command(failbackGroup, 'start', 're-protect the DR primaries into both regions, then (behind the failback gate) fence them, restore in the primary region up to their last WAL, prove no transaction lost, move the names home; retire the DR primaries behind the retire gate', ([failoverId], o) => {
    const config = configOf(o);
    const prepared = prepareFailbackStart(config, { failoverId, reason: o.reason ?? '', incident: o.incident, as: o.as, workflowId: o.id });
    return recovery(config, o, 'failback start', undefined, (ctx) => failbackStartCommand(ctx, prepared));
  })
    .argument('<failover-id>', 'the failover to fail back (its workflow id, see `lifeboat failover status`)')
    .addOption(configOption())
    .addOption(reasonOption('on record with the failback'))
    .option('--incident <id>', 'the incident ticket id (at most 128 characters)')
    .addOption(asOption('asks for the failback'))
    .option('--id <workflow-id>', 'the failback workflow id (default failback-<time>)')
    .addOption(jsonOption());
  command(failbackGroup, 'status', 'each step\'s state, the pending gate, the report when done: the write outage, the no-lost-transaction proof, the names', ([workflowId], o) => {
    const config = configOf(o);
    return recovery(config, o, 'failback status', workflowId, (ctx) => failbackStatusCommand(ctx, workflowId));
  })
    .argument('[workflow-id]', 'the failback to show (default the newest)')
    .addOption(configOption())
    .addOption(jsonOption());

  const backups = command(program, 'backups', 'backups the catalog records');
  command(backups, 'list', 'backups the catalog records, verified or failed and why', (_, o) => {
    const config = configOf(o);
    return backupsListCommand(config, { target: o.target, json: o.json === true });
  })
    .addOption(configOption())
    .option('--target <name>', 'only this database target\'s backups')
    .addOption(jsonOption());
  command(backups, 'delete', 'delete one backup by hand in every region, behind the backupDeletion gate (two people in production); never the newest or only verified backup, nothing under legal hold; locked copies stay until their lock ends', ([backupId], o) => {
    const config = configOf(o);
    const prepared = prepareBackupDelete({ backupId, reason: o.reason ?? '', incident: o.incident, as: o.as, bypassGovernance: o.bypassGovernance === true, workflowId: o.id });
    return recovery(config, o, 'backups delete', undefined, (ctx) => backupDeleteCommand(ctx, prepared));
  })
    .argument('<backup-id>', 'the catalog id or backup name (see `lifeboat backups list`)')
    .addOption(configOption())
    .addOption(reasonOption('on record with the deletion'))
    .option('--incident <id>', 'the incident or ticket id (at most 128 characters)')
    .addOption(asOption('asks for the deletion'))
    .option('--bypass-governance', 'also remove versions under GOVERNANCE object lock (shown at the gate; needs s3:BypassGovernanceRetention); COMPLIANCE locks are never bypassed')
    .option('--id <workflow-id>', 'the workflow id (default backup-deletion-<backup>-<time>)')
    .addOption(jsonOption());

  const alerts = command(program, 'alerts', 'alerts raised by critical notifications, their escalation and who took them');
  command(alerts, 'list', 'open alerts (and acknowledged ones still taking repeats); --all for every alert on record', (_, o) => {
    const config = configOf(o);
    return alertsListCommand(config, { all: o.all === true, json: o.json === true });
  })
    .addOption(configOption())
    .option('--all', 'also resolved and closed alerts')
    .addOption(jsonOption());
  command(program, 'ack', 'acknowledge an alert: its escalation stops, who and when go on record', ([alertId], o) => {
    const config = configOf(o);
    const ack = prepareAck(alertId, { by: o.by, note: o.note });
    return ackCommand(config, ack, { json: o.json === true, uiBase: uiBaseFor(config), client: () => connectClient(config) });
  })
    .argument('<alert-id>', 'the alert, as `lifeboat alerts list` shows it')
    .addOption(configOption())
    .option('--by <person>', 'who takes the alert (default $LIFEBOAT_USER)')
    .option('--note <text>', 'a note on record with the acknowledgement (at most 2000 characters)')
    .addOption(jsonOption());

  const instances = command(program, 'instances', 'instances restores left standing: list, extend, remove');
  command(instances, 'list', 'kept restored instances: what, data as of when, made by which workflow, age, expiry, endpoint, whether they took traffic', (_, o) => {
    const config = configOf(o);
    return instancesListCommand(config, { json: o.json === true, all: o.all === true });
  })
    .addOption(configOption())
    .option('--all', 'also the removed ones')
    .addOption(jsonOption());
  command(instances, 'extend', 'move the expiry of a kept restored instance on (its notice is sent again before the new expiry)', ([instanceId], o) => {
    const config = configOf(o);
    const prepared = prepareExtend({ instanceId, by: o.by, reason: o.reason, as: o.as });
    return instancesExtendCommand(config, prepared, o.json === true);
  })
    .argument('<instance-id>', 'the instance, as `lifeboat instances list` shows it')
    .addOption(configOption())
    .option('--by <duration>', 'how much longer to keep it: 12h, 3d, 2w (from its expiry, or from now when that has passed)')
    .addOption(reasonOption('on record with the extension'))
    .addOption(asOption('extends it'))
    .addOption(jsonOption());
  command(instances, 'remove', 'remove a kept restored instance now, behind the instanceRemoval gate in production; never one that has taken traffic', ([instanceId], o) => {
    const config = configOf(o);
    const prepared = prepareInstanceRemove({ instanceId, reason: o.reason, incident: o.incident, as: o.as, workflowId: o.id });
    return recovery(config, o, 'instances remove', undefined, (ctx) => instanceRemoveCommand(ctx, prepared));
  })
    .argument('<instance-id>', 'the instance, as `lifeboat instances list` shows it')
    .addOption(configOption())
    .addOption(reasonOption('on record with the removal'))
    .option('--incident <id>', 'the incident or ticket id (at most 128 characters)')
    .addOption(asOption('asks for the removal'))
    .option('--id <workflow-id>', 'the workflow id (default instance-removal-<instance>-<time>)')
    .addOption(jsonOption());

  command(program, 'retention', 'expire what the retention policy says, in both regions', (_, o) => {
    const config = configOf(o);
    if (o.target) findTarget(config, o.target);
    return withClient(config, (client) => retentionCommand(config, client, { target: o.target, dryRun: o.dryRun === true, json: o.json === true }));
  })
    .addOption(configOption())
    .option('--target <name>', 'only this target (default every target)')
    .addOption(jsonOption())
    .option('--dry-run', 'say what would expire, expire nothing');

  const schedules = command(program, 'schedules', 'the config\'s Temporal Schedules');
  const prefixOption = () => new Option('--prefix <prefix>', 'schedule ids start with this (default lifeboat-)');
  command(schedules, 'apply', 'create or update the config\'s Temporal Schedules (idempotent)', (_, o) => {
    const config = configOf(o);
    return withClient(config, (client) => schedulesCommand(client, config, 'apply', { json: o.json === true, dryRun: o.dryRun === true, prune: o.prune === true, prefix: o.prefix }));
  })
    .addOption(configOption())
    .addOption(prefixOption())
    .addOption(jsonOption())
    .option('--dry-run', 'show what would change, change nothing')
    .option('--prune', 'delete lifeboat-made schedules the config no longer has');
  command(schedules, 'list', 'lifeboat\'s schedules with their next run times', (_, o) => {
    const config = configOf(o);
    return withClient(config, (client) => schedulesCommand(client, config, 'list', { json: o.json === true, dryRun: false, prune: false, prefix: o.prefix }));
  })
    .addOption(configOption())
    .addOption(prefixOption())
    .addOption(jsonOption());

  command(program, 'codec-server', 'serve the history keyring to the Temporal Web UI (Temporal\'s codec protocol, CORS for temporal.codecServer.uiOrigin, a bearer token) until stopped', async (_, o) => {
    const config = configOf(o);
    if (!config.temporal.encryption || !config.temporal.codecServer) {
      throw new UsageError('the config has no temporal.encryption or no temporal.codecServer: declare both (see docs/config.md, temporal) to run a codec server.');
    }
    await runCodecServer(config);
    return 0;
  }).addOption(configOption());

  command(program, 'completion', 'print a bash completion script: source <(lifeboat completion bash)', async ([shell]) => {
    if (shell !== 'bash') throw new UsageError(`\`lifeboat completion\` takes bash, not "${shell}" (zsh reads it after \`autoload -U bashcompinit && bashcompinit\`).`);
    process.stdout.write(completionScript(program));
    return 0;
  }).argument('<shell>', 'bash');

  command(program, 'help', 'this list, or a command\'s options: lifeboat help <command>', async (args) => {
    const words = (args as unknown as [string[] | undefined])[0] ?? []; // a variadic argument arrives as one array
    const shown = checkCommandLine(program, [...words, '--help']);
    process.stdout.write(helpText('help' in shown ? shown.help : program));
    return 0;
  }).argument('[command...]', 'the command to describe');

  return {
    program,
    async run(argv) {
      const checked = checkCommandLine(program, argv);
      if ('help' in checked) {
        process.stdout.write(helpText(checked.help));
        return 0;
      }
      exitCode = 0;
      await program.parseAsync(checked.argv, { from: 'user' });
      return exitCode;
    },
  };
}

/** One line per command for the overview: `stack up|down|status`, `restore <target>`. */
function synopsis(command: Command): string {
  if (command.commands.length) return `${command.name()} ${command.commands.map((c) => c.name()).join('|')}`;
  return [command.name(), ...command.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}${a.variadic ? '...' : ''}]`))].join(' ');
}

/** `lifeboat --help`: every command in a line; a command's help: its arguments and options. */
export function helpText(command: Command): string {
  if (command.parent) {
    const switches = command.options.some((o) => o.isBoolean());
    return `${command.helpInformation()}${switches ? '\nA switch also reads --name=true or --name=false; each option is given at most once.\n' : ''}`;
  }
  const rows = command.commands.map((c) => [`  ${synopsis(c)}`, c.description()]);
  return [`usage: lifeboat <command> [options]`, '', command.description(), '', 'commands:', ...formatTable(rows, 3), '', `Run \`${commandPath(command)} <command> --help\` for a command's options.`, '', NOTES].join('\n');
}
