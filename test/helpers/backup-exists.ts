/** A restore needs a window: suites that run before the backup suites take a full backup first when the stack has none. */
import { localPgBackRest } from '../../src/stack/pgbackrest';
import { Stack } from '../../src/stack/stack';

export async function ensureFullBackup(stack: Stack): Promise<void> {
  const cli = localPgBackRest(stack.ctx);
  const info = await cli.info(1);
  if ((info?.backup ?? []).some((b) => b.database['repo-key'] === 1 && !b.error)) return;
  await cli.exec('backup', ['--repo=1', '--type=full']);
}
