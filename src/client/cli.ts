/**
 * `lifeboat`: the command line incident commanders and platform teams use.
 * Exit codes: 0 done, 1 failed (or unhealthy), 2 bad usage or input.
 */
import '../quiet-sdk-notice';
import { findTarget } from '../config';
import { loadLocatedConfig } from '../config/locate';
import { createStack } from '../stack/stack';
import { startWorker, stopWorker, workerPid } from '../stack/worker-process';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import type { LifeboatConfig } from '../config';
import { COMMAND_OPTIONS, parseArgs, UsageError } from './args';
import { line, printJson } from './output';
import { CommandContext, decideCommand, identity, listCommand, prepareDecision, prepareRestore, restoreCommand, statusCommand, watchCommand } from './recovery-commands';
import { connectClient } from './temporal';
import { loadStackSettings } from '../stack/settings';
import { preflightCommand } from './preflight-command';
import { stackCommand } from './stack-commands';
import { backupCommand, backupsListCommand, checkBackupOptions, retentionCommand } from './backup-commands';
import { schedulesCommand } from './schedules';
import { describeFailure } from '../workflows/failure';

const USAGE = `usage: lifeboat <command> [options]

  stack up|down|status [--json]        start, stop or check the embedded local stack
  worker start|stop|status [--json]    run a lifeboat worker in the background (local stack)
  preflight [--target <name>] [--json] prove every system a target depends on works now

  restore <target> --to <time|latest> --reason <text> [--emergency] [--cutover]
          [--destination <name>] [--from-region dr] [--keep] [--incident <id>] [--as <identity>]
                                       point-in-time restore into a new instance, behind approval
  approve <workflow-id> [--gate <name>] --reason <text> [--as <identity>]
  reject <workflow-id> --reason <text> [--as <identity>]
  status <workflow-id> [--json]        phase, timeline, pending gate, elapsed against the RTO target
  watch <workflow-id> [--json]         live progress until the workflow ends
  list [--awaiting-approval] [--running]
                                       lifeboat workflows in Temporal
  backup <target> [--kind full|diff|incr] [--logical] [--json]
                                       verified backup in both regions, progress until done:
                                       a database (pgBackRest/RDS, or --logical pg_dump) or a
                                       bucket target (files, --kind full|incr)
  backups list [--target <name>] [--json]
                                       backups the catalog records
  retention [--target <name>] [--dry-run] [--json]
                                       expire what the retention policy says, in both regions
  schedules apply [--dry-run] [--prune] [--json]
                                       create or update the config's Temporal Schedules; --prune
                                       deletes lifeboat-* schedules the config no longer has
  schedules list [--json]              lifeboat's schedules with their next run times

Identity for decisions: --as, else $LIFEBOAT_USER. Times are ISO-8601 with a zone (2026-11-21T10:01:00Z).

Every command but stack and worker takes --config <file> (default $LIFEBOAT_CONFIG, then
./lifeboat.config.yaml). Each option is given at most once; a switch also reads --json=true or
--json=false. What was typed is checked before lifeboat connects to anything.
Exit codes: 0 done, 1 failed or unhealthy, 2 bad usage or input (an unknown workflow id too).
`;

async function workerCommand(sub: string | undefined, json: boolean): Promise<number> {
  const stack = createStack();
  switch (sub) {
    case 'start': {
      const r = await startWorker(stack.ctx);
      if (json) printJson(r);
      else line(`${r.alreadyRunning ? 'worker already running' : 'worker started'} (pid ${r.pid}); log: ${r.log}`);
      return 0;
    }
    case 'stop': {
      const stopped = await stopWorker(stack.ctx);
      if (json) printJson({ stopped });
      else line(stopped ? 'worker stopped' : 'no worker was running');
      return 0;
    }
    case 'status': {
      const pid = workerPid(stack.ctx);
      if (json) printJson({ running: pid !== undefined, pid });
      else line(pid ? `worker running (pid ${pid})` : 'worker not running (start it with `lifeboat worker start`)');
      return pid ? 0 : 1;
    }
    default:
      throw new UsageError(`\`lifeboat worker\` takes start, stop or status${sub ? `, not "${sub}"` : ''}.`);
  }
}

/** The config a command names (--config, $LIFEBOAT_CONFIG, ./lifeboat.config.yaml). */
function configOf(flags: Record<string, string | boolean>) {
  return loadLocatedConfig(flags.config as string | undefined).config;
}

const on = (flags: Record<string, string | boolean>, name: string) => flags[name] === true;
const str = (flags: Record<string, string | boolean>, name: string) => flags[name] as string | undefined;

/** Runs `fn` with a connected client and closes it after; connecting is the last step, after every check of the input. */
async function withClient(config: LifeboatConfig, fn: (client: Client) => Promise<number>): Promise<number> {
  const client = await connectClient(config);
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'stack': {
      const args = parseArgs(rest, COMMAND_OPTIONS.stack);
      return stackCommand(args.positionals[0], on(args.flags, 'json'));
    }
    case 'worker': {
      const args = parseArgs(rest, COMMAND_OPTIONS.worker);
      return workerCommand(args.positionals[0], on(args.flags, 'json'));
    }
    case 'preflight': {
      const { flags } = parseArgs(rest, COMMAND_OPTIONS.preflight);
      const config = configOf(flags);
      const target = str(flags, 'target');
      for (const name of target?.split(',') ?? []) findTarget(config, name); // refuse an unknown target before starting anything
      return preflightCommand(config, { targets: target ? target.split(',') : undefined, json: on(flags, 'json'), workflowId: str(flags, 'id') });
    }
    case 'restore':
    case 'approve':
    case 'reject':
    case 'status':
    case 'watch':
    case 'list':
      return recoveryCommand(command, rest);
    case 'backup': {
      const { positionals, flags } = parseArgs(rest, COMMAND_OPTIONS.backup);
      const target = positionals[0];
      if (!target) throw new UsageError('`lifeboat backup` needs a target: lifeboat backup <target> [--kind full|diff|incr].');
      const config = configOf(flags);
      const options = { target, kind: str(flags, 'kind'), logical: on(flags, 'logical'), json: on(flags, 'json'), workflowId: str(flags, 'id'), requestedBy: str(flags, 'as') };
      checkBackupOptions(config, options);
      if (options.requestedBy !== undefined) options.requestedBy = identity(options.requestedBy);
      return withClient(config, (client) => backupCommand(config, client, options));
    }
    case 'retention': {
      const { flags } = parseArgs(rest, COMMAND_OPTIONS.retention);
      const config = configOf(flags);
      const target = str(flags, 'target');
      if (target) findTarget(config, target);
      return withClient(config, (client) => retentionCommand(config, client, { target, dryRun: on(flags, 'dry-run'), json: on(flags, 'json') }));
    }
    case 'backups': {
      const { positionals, flags } = parseArgs(rest, COMMAND_OPTIONS.backups);
      if (positionals[0] !== 'list') throw new UsageError(`\`lifeboat backups\` takes list${positionals[0] ? `, not "${positionals[0]}"` : ''}.`);
      const config = configOf(flags);
      return backupsListCommand(config, { target: str(flags, 'target'), json: on(flags, 'json') });
    }
    case 'schedules': {
      const { positionals, flags } = parseArgs(rest, COMMAND_OPTIONS.schedules);
      const sub = positionals[0];
      if (sub !== 'apply' && sub !== 'list') throw new UsageError(`\`lifeboat schedules\` takes apply or list${sub ? `, not "${sub}"` : ''}.`);
      if (sub === 'list' && (flags['dry-run'] !== undefined || flags.prune !== undefined)) throw new UsageError(`--${flags['dry-run'] !== undefined ? 'dry-run' : 'prune'} applies to \`lifeboat schedules apply\`, not list.`);
      const config = configOf(flags);
      return withClient(config, (client) =>
        schedulesCommand(client, config, sub, { json: on(flags, 'json'), dryRun: on(flags, 'dry-run'), prune: on(flags, 'prune'), prefix: str(flags, 'prefix') }),
      );
    }
    case undefined:
    case 'help':
    case '--help':
      parseArgs(rest, COMMAND_OPTIONS.help);
      process.stdout.write(USAGE);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}": run \`lifeboat help\` for the list.`);
  }
}

async function recoveryCommand(command: 'restore' | 'approve' | 'reject' | 'status' | 'watch' | 'list', rest: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(rest, COMMAND_OPTIONS[command]);
  const need = (what: string) => {
    const value = positionals[0];
    if (!value) throw new UsageError(`\`lifeboat ${command}\` needs ${what}: see \`lifeboat help\`.`);
    return value;
  };
  const config = configOf(flags);
  // Every check of what was typed happens here, before connecting: a usage error reads the same whether Temporal is up or not.
  let run: (ctx: CommandContext) => Promise<number>;
  switch (command) {
    case 'restore': {
      const target = need('a target');
      const fromRegion = str(flags, 'from-region');
      if (fromRegion && fromRegion !== 'primary' && fromRegion !== 'dr') throw new UsageError(`--from-region takes primary or dr, not "${fromRegion}".`);
      if (!str(flags, 'to')) throw new UsageError('`lifeboat restore` needs --to <time|latest>: an ISO-8601 time with a zone, or latest.');
      const prepared = prepareRestore(config, {
        target,
        to: str(flags, 'to')!,
        reason: str(flags, 'reason') ?? '',
        as: str(flags, 'as'),
        emergency: on(flags, 'emergency'),
        cutover: on(flags, 'cutover'),
        keep: on(flags, 'keep'),
        destination: str(flags, 'destination'),
        fromRegion: fromRegion as 'primary' | 'dr' | undefined,
        incident: str(flags, 'incident'),
        workflowId: str(flags, 'id'),
      });
      run = (ctx) => restoreCommand(ctx, prepared);
      break;
    }
    case 'approve':
    case 'reject': {
      const request = prepareDecision({ workflowId: need('a workflow id'), gate: str(flags, 'gate'), reason: str(flags, 'reason') ?? '', as: str(flags, 'as') });
      run = (ctx) => decideCommand(ctx, command, request);
      break;
    }
    case 'status': {
      const workflowId = need('a workflow id');
      run = (ctx) => statusCommand(ctx, workflowId);
      break;
    }
    case 'watch': {
      const workflowId = need('a workflow id');
      run = (ctx) => watchCommand(ctx, workflowId);
      break;
    }
    default:
      run = (ctx) => listCommand(ctx, { awaitingApproval: on(flags, 'awaiting-approval'), running: on(flags, 'running') });
  }
  return withClient(config, async (client) => {
    try {
      return await run({ config, client, json: on(flags, 'json'), uiBase: uiBaseFor(config) });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError && positionals[0]) {
        const running = command === 'approve' || command === 'reject' ? 'running ' : '';
        throw new UsageError(`no ${running}workflow has the id "${positionals[0]}" in namespace ${config.temporal.namespace}: check the id with \`lifeboat list\`${running ? ' (a finished workflow takes no decisions)' : ''}.`);
      }
      throw err;
    }
  });
}

/** The Web UI's address: $LIFEBOAT_UI_URL, else the local stack's UI port. */
function uiBaseFor(config: { temporal: { address: string } }): string {
  if (process.env.LIFEBOAT_UI_URL) return process.env.LIFEBOAT_UI_URL.replace(/\/$/, '');
  const host = config.temporal.address.split(':')[0];
  return `http://${host}:${loadStackSettings().temporal.uiPort}`;
}

const INPUT_ERROR_TYPES = new Set(['CONFIG_INVALID', 'CONFIG_MISSING', 'CONFIG_UNREADABLE', 'UNKNOWN_TARGET', 'RESTORE_REFUSED']);

/** Bad usage, an invalid config, an unknown target or a refused restore: the person must change what they typed. */
function isInputError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return err instanceof UsageError || (code !== undefined && INPUT_ERROR_TYPES.has(code));
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = describeFailure(err);
    process.stderr.write(`lifeboat: ${message}\n`);
    process.exit(err instanceof UsageError || isInputError(err) ? 2 : 1);
  },
);
