import { createStack, stackDown, stackStatus, stackUp } from '../stack/stack';
import { startWorker, stopWorker, workerPid } from '../stack/worker-process';
import { UsageError } from './args';
import { formatTable, line, printJson } from './output';

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
  for (const row of formatTable(status.map((s) => [s.healthy ? 'ok' : 'FAIL', s.name, s.detail]))) line(row);
}

/** `lifeboat worker start|stop|status`: a worker in the background, for the local stack. */
export async function workerCommand(sub: string | undefined, json: boolean): Promise<number> {
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
