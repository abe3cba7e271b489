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
import { line, printJson, rootCause } from './output';
import { preflightCommand } from './preflight-command';
import { stackCommand } from './stack-commands';

const USAGE = `usage: lifeboat <command> [options]

  stack up|down|status [--json]        start, stop or check the embedded local stack
  worker start|stop|status [--json]    run a lifeboat worker in the background (local stack)
  preflight [--target <name>] [--json] prove every system a target depends on works now

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
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}": run \`lifeboat help\` for the list.`);
  }
}

/** Bad usage, an invalid config or an unknown target: the person must change what they typed. */
function isInputError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return err instanceof UsageError || code === 'CONFIG_INVALID' || code === 'UNKNOWN_TARGET';
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = rootCause(err);
    process.stderr.write(`lifeboat: ${message}\n`);
    process.exit(err instanceof UsageError || isInputError(err) ? 2 : 1);
  },
);
