/**
 * `lifeboat`: the command line incident commanders and platform teams use (commands: program.ts).
 * Exit codes: 0 done, 1 failed (or unhealthy), 2 bad usage or input.
 */
import '../quiet-sdk-notice';
import { UsageError } from './args';
import { lifeboatCli } from './program';
import { describeFailure } from '../workflows/failure';

const INPUT_ERROR_TYPES = new Set(['CONFIG_INVALID', 'CONFIG_MISSING', 'CONFIG_UNREADABLE', 'UNKNOWN_TARGET', 'RESTORE_REFUSED', 'RESTORE_POINT_REFUSED']);

/** Bad usage, an invalid config, an unknown target or a refused restore: the person must change what they typed. */
function isInputError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return err instanceof UsageError || (code !== undefined && INPUT_ERROR_TYPES.has(code));
}

lifeboatCli()
  .run(process.argv.slice(2))
  .then(
    (code) => process.exit(code),
    (err: unknown) => {
      const message = describeFailure(err);
      process.stderr.write(`lifeboat: ${message}\n`);
      process.exit(isInputError(err) ? 2 : 1);
    },
  );
