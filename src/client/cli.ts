/**
 * `lifeboat`: the command line incident commanders and platform teams use.
 * Exit codes: 0 done, 1 failed (or unhealthy), 2 bad usage or input.
 */
import '../quiet-sdk-notice';
import { parseArgs, UsageError } from './args';
import { stackCommand } from './stack-commands';

const USAGE = `usage: lifeboat <command> [options]

  stack up|down|status [--json]   start, stop or check the embedded local stack
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'stack': {
      const args = parseArgs(rest, { booleans: ['json'] });
      return stackCommand(args.positionals[0], args.flags.json === true);
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`lifeboat: ${message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
