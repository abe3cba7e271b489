import { createStack, stackDown, stackStatus, stackUp } from '../stack/stack';
import { UsageError } from './args';

export async function stackCommand(sub: string | undefined, json: boolean): Promise<number> {
  const log = json ? () => undefined : (line: string) => process.stdout.write(`  ${line}\n`);
  const stack = createStack(undefined, log);
  const { settings } = stack.ctx;
  switch (sub) {
    case 'up': {
      const t0 = Date.now();
      const result = await stackUp(stack);
      const status = await stackStatus(stack);
      const seconds = ((Date.now() - t0) / 1000).toFixed(1);
      if (json) process.stdout.write(JSON.stringify({ ...result, seconds: Number(seconds), status }, null, 2) + '\n');
      else {
        printStatus(status);
        process.stdout.write(`stack up in ${seconds} s (data: ${settings.dataDir}); Temporal Web UI: http://${settings.host}:${settings.temporal.uiPort}\n`);
      }
      return status.every((s) => s.healthy) ? 0 : 1;
    }
    case 'down': {
      const stopped = await stackDown(stack);
      if (json) process.stdout.write(JSON.stringify({ stopped }, null, 2) + '\n');
      else process.stdout.write(stopped.length ? `stopped ${stopped.join(', ')}\n` : 'nothing was running\n');
      return 0;
    }
    case 'status': {
      const status = await stackStatus(stack);
      if (json) process.stdout.write(JSON.stringify(status, null, 2) + '\n');
      else printStatus(status);
      return status.every((s) => s.healthy) ? 0 : 1;
    }
    default:
      throw new UsageError(`\`lifeboat stack\` takes up, down or status${sub ? `, not "${sub}"` : ''}.`);
  }
}

function printStatus(status: Awaited<ReturnType<typeof stackStatus>>): void {
  const width = Math.max(...status.map((s) => s.name.length));
  for (const s of status) {
    process.stdout.write(`${s.healthy ? 'ok  ' : 'FAIL'} ${s.name.padEnd(width)}  ${s.detail}\n`);
  }
}
