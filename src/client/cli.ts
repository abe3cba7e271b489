/**
 * `lifeboat`: the command line incident commanders and platform teams use.
 * Exit codes: 0 done, 1 failed (or unhealthy), 2 bad usage or input.
 */
import '../quiet-sdk-notice';
import { findTarget } from '../config';
import { loadLocatedConfig } from '../config/locate';
import { createStack } from '../stack/stack';
import { startWorker, stopWorker, workerPid } from '../stack/worker-process';
import { parseArgs, UsageError } from './args';
import { line, printJson } from './output';
import { decideCommand, listCommand, restoreCommand, statusCommand, watchCommand } from './recovery-commands';
import { connectClient } from './temporal';
import { loadStackSettings } from '../stack/settings';
import { preflightCommand } from './preflight-command';
import { stackCommand } from './stack-commands';
import { backupCommand, backupsListCommand, retentionCommand } from './backup-commands';
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
  status <workflow-id>                 phase, timeline, pending gate, elapsed against the RTO target
  watch <workflow-id>                  live progress until the workflow ends
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

Options everywhere: --config <file> (default $LIFEBOAT_CONFIG, then ./lifeboat.config.yaml).
Exit codes: 0 done, 1 failed or unhealthy, 2 bad usage or input.
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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'stack': {
      const args = parseArgs(rest, { booleans: ['json'] });
      return stackCommand(args.positionals[0], args.flags.json === true);
    }
    case 'worker': {
      const args = parseArgs(rest, { booleans: ['json'] });
      return workerCommand(args.positionals[0], args.flags.json === true);
    }
    case 'preflight': {
      const args = parseArgs(rest, { booleans: ['json'], strings: ['target', 'config', 'id'] });
      const { config } = loadLocatedConfig(args.flags.config as string | undefined);
      const target = args.flags.target as string | undefined;
      for (const name of target?.split(',') ?? []) findTarget(config, name); // refuse an unknown target before starting anything
      return preflightCommand(config, { targets: target ? target.split(',') : undefined, json: args.flags.json === true, workflowId: args.flags.id as string | undefined });
    }
    case 'restore':
    case 'approve':
    case 'reject':
    case 'status':
    case 'watch':
    case 'list':
      return recoveryCommand(command, rest);
    case 'backup': {
      const args = parseArgs(rest, { booleans: ['json', 'logical'], strings: ['config', 'kind', 'id', 'as'] });
      const target = args.positionals[0];
      if (!target) throw new UsageError('`lifeboat backup` needs a target: lifeboat backup <target> [--kind full|diff|incr].');
      const { config } = loadLocatedConfig(args.flags.config as string | undefined);
      findTarget(config, target);
      const client = await connectClient(config);
      try {
        return await backupCommand(config, client, { target, kind: args.flags.kind as string | undefined, logical: args.flags.logical === true, json: args.flags.json === true, workflowId: args.flags.id as string | undefined, requestedBy: args.flags.as as string | undefined });
      } finally {
        await client.connection.close();
      }
    }
    case 'retention': {
      const args = parseArgs(rest, { booleans: ['json', 'dry-run'], strings: ['config', 'target'] });
      const { config } = loadLocatedConfig(args.flags.config as string | undefined);
      const target = args.flags.target as string | undefined;
      if (target) findTarget(config, target);
      const client = await connectClient(config);
      try {
        return await retentionCommand(config, client, { target, dryRun: args.flags['dry-run'] === true, json: args.flags.json === true });
      } finally {
        await client.connection.close();
      }
    }
    case 'backups': {
      const args = parseArgs(rest, { booleans: ['json'], strings: ['config', 'target'] });
      if (args.positionals[0] !== 'list') throw new UsageError(`\`lifeboat backups\` takes list${args.positionals[0] ? `, not "${args.positionals[0]}"` : ''}.`);
      const { config } = loadLocatedConfig(args.flags.config as string | undefined);
      return backupsListCommand(config, { target: args.flags.target as string | undefined, json: args.flags.json === true });
    }
    case 'schedules': {
      const args = parseArgs(rest, { booleans: ['json', 'dry-run', 'prune'], strings: ['config', 'prefix'] });
      const sub = args.positionals[0];
      if (sub !== 'apply' && sub !== 'list') throw new UsageError(`\`lifeboat schedules\` takes apply or list${sub ? `, not "${sub}"` : ''}.`);
      const { config } = loadLocatedConfig(args.flags.config as string | undefined);
      const client = await connectClient(config);
      try {
        return await schedulesCommand(client, config, sub, {
          json: args.flags.json === true,
          dryRun: args.flags['dry-run'] === true,
          prune: args.flags.prune === true,
          prefix: args.flags.prefix as string | undefined,
        });
      } finally {
        await client.connection.close();
      }
    }
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}": run \`lifeboat help\` for the list.`);
  }
}

async function recoveryCommand(command: string, rest: string[]): Promise<number> {
  const args = parseArgs(rest, {
    booleans: ['json', 'emergency', 'cutover', 'keep', 'awaiting-approval', 'running'],
    strings: ['config', 'to', 'reason', 'as', 'destination', 'from-region', 'incident', 'gate', 'id'],
  });
  const str = (name: string) => args.flags[name] as string | undefined;
  const need = (what: string) => {
    const value = args.positionals[0];
    if (!value) throw new UsageError(`\`lifeboat ${command}\` needs ${what}: see \`lifeboat help\`.`);
    return value;
  };
  const { config } = loadLocatedConfig(str('config'));
  const client = await connectClient(config);
  const ctx = { config, client, json: args.flags.json === true, uiBase: uiBaseFor(config) };
  try {
    switch (command) {
      case 'restore': {
        const target = need('a target');
        const fromRegion = str('from-region');
        if (fromRegion && fromRegion !== 'primary' && fromRegion !== 'dr') throw new UsageError(`--from-region takes primary or dr, not "${fromRegion}".`);
        if (!str('to')) throw new UsageError('`lifeboat restore` needs --to <time|latest>: an ISO-8601 time with a zone, or latest.');
        return await restoreCommand(ctx, {
          target,
          to: str('to')!,
          reason: str('reason') ?? '',
          as: str('as'),
          emergency: args.flags.emergency === true,
          cutover: args.flags.cutover === true,
          keep: args.flags.keep === true,
          destination: str('destination'),
          fromRegion: fromRegion as 'primary' | 'dr' | undefined,
          incident: str('incident'),
          workflowId: str('id'),
        });
      }
      case 'approve':
      case 'reject':
        return await decideCommand(ctx, command, { workflowId: need('a workflow id'), gate: str('gate'), reason: str('reason') ?? '', as: str('as') });
      case 'status':
        return await statusCommand(ctx, need('a workflow id'));
      case 'watch':
        return await watchCommand(ctx, need('a workflow id'));
      default:
        return await listCommand(ctx, { awaitingApproval: args.flags['awaiting-approval'] === true, running: args.flags.running === true });
    }
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

/** Bad usage, an invalid config or an unknown target: the person must change what they typed. */
function isInputError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return err instanceof UsageError || code === 'CONFIG_INVALID' || code === 'UNKNOWN_TARGET' || /^restore refused: /.test((err as Error).message ?? '');
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = describeFailure(err);
    process.stderr.write(`lifeboat: ${message}\n`);
    process.exit(err instanceof UsageError || isInputError(err) ? 2 : 1);
  },
);
