/**
 * The embedded stack for tests: started once per run on first use (or a healthy running one
 * reused), and stopped at the end only if this run started it. Unit suites never touch it.
 */
import { createStack, Stack, stackStatus, stackUp } from '../../src/stack/stack';
import { stackDown } from '../../src/stack/stack';

let pending: Promise<Stack> | undefined;
let startedHere = false;

export function useStack(): Promise<Stack> {
  pending ??= (async () => {
    const stack = createStack(undefined, (line) => process.stderr.write(`      [stack] ${line}\n`));
    const status = await stackStatus(stack);
    if (!status.every((s) => s.healthy)) {
      const result = await stackUp(stack);
      startedHere = result.started.length > 0;
    }
    return stack;
  })();
  return pending;
}

export async function releaseTestStack(): Promise<void> {
  if (!pending || !startedHere || process.env.LIFEBOAT_TEST_KEEP_STACK) return;
  const stack = await pending;
  await stackDown(stack);
}
