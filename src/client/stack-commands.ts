import { isRegionName, REGION_NAMES, regionDown, regionUp } from '../stack/regions';
import { createStack, stackDown, stackStatus, stackUp } from '../stack/stack';
import { knownAgents, startWorker, stopWorker, workerPid } from '../stack/worker-process';
import { UsageError } from './args';
import { formatTable, line, printJson } from './output';

export async function stackCommand(sub: string | undefined, json: boolean, options: { withPrometheus?: boolean; agents?: () => number } = {}): Promise<number> {
  const log = json ? () => undefined : (line: string) => process.stdout.write(`  ${line}\n`);
  const stack = createStack(undefined, log, { withPrometheus: options.withPrometheus === true, agents: options.agents?.() ?? 0 });
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

/** `lifeboat stack region down|up <region>`: stop or start one region's servers, the rest left as they are. */
export async function stackRegionCommand(action: string, region: string, json: boolean): Promise<number> {
  // Checked before anything is read or touched: a wrong word changes nothing.
  if (action !== 'down' && action !== 'up') throw new UsageError(`\`lifeboat stack region\` takes down or up, not "${action}".`);
  if (!isRegionName(region)) throw new UsageError(`\`lifeboat stack region ${action}\` takes ${REGION_NAMES.join(' or ')}, not "${region}".`);
  const log = json ? () => undefined : (line: string) => process.stdout.write(`  ${line}\n`);
  const stack = createStack(undefined, log);
  const change = action === 'down' ? await regionDown(stack, region) : await regionUp(stack, region);
  const mine = change.status.filter((s) => [...change.changed, ...change.unchanged].includes(s.name));
  // Down succeeds when the region's servers are stopped; up when they are healthy again.
  const done = action === 'down' ? mine.every((s) => !s.running) : mine.every((s) => s.healthy);
  if (json) printJson({ region, action, changed: change.changed, unchanged: change.unchanged, status: change.status });
  else {
    printStatus(change.status);
    const verb = action === 'down' ? 'stopped' : 'started';
    const already = action === 'down' ? 'already stopped' : 'already running';
    line(`region ${region} ${action}: ${change.changed.length ? `${verb} ${change.changed.join(', ')}` : `nothing ${verb}`}${change.unchanged.length ? `; ${already}: ${change.unchanged.join(', ')}` : ''}`);
  }
  return done ? 0 : 1;
}

function printStatus(status: Awaited<ReturnType<typeof stackStatus>>): void {
  for (const row of formatTable(status.map((s) => [s.healthy ? 'ok' : 'FAIL', s.name, s.detail]))) line(row);
}

/**
 * `lifeboat worker start|stop|status [--agent <name>]`: workers in the background, for the local
 * stack. Without --agent, start runs the central worker and an agent for each agent the config
 * names (all on this machine), and stop stops them all.
 */
export async function workerCommand(
  sub: string | undefined,
  json: boolean,
  options: { agent?: string; configAgents?: () => string[]; metricsPort?: () => number | undefined } = {},
): Promise<number> {
  const { agent } = options;
  if (agent !== undefined && !/^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(agent)) {
    throw new UsageError(`agent name ${JSON.stringify(agent)} is not valid: use the name a target gives in targets.databases[].agent (lowercase letters, digits and hyphens).`);
  }
  const stack = createStack();
  const label = (a?: string) => (a ? `agent ${a}` : 'worker');
  switch (sub) {
    case 'start': {
      const wanted: Array<string | undefined> = agent ? [agent] : [undefined, ...(options.configAgents?.() ?? [])];
      const results = [];
      // All on this one machine: with a metrics port, the worker takes it and each agent the next one.
      const metricsPort = agent ? undefined : options.metricsPort?.();
      for (const [i, a] of wanted.entries()) {
        const port = metricsPort === undefined ? undefined : metricsPort + i;
        const r = await startWorker(stack.ctx, port === undefined ? {} : { LIFEBOAT_METRICS_PORT: String(port) }, a);
        results.push({ ...(a ? { agent: a } : {}), ...r, ...(port === undefined ? {} : { metricsPort: port }) });
        if (!json) line(`${label(a)} ${r.alreadyRunning ? 'already running' : 'started'} (pid ${r.pid}); log: ${r.log}${port === undefined || r.alreadyRunning ? '' : `; metrics on port ${port}`}`);
      }
      if (json) printJson(agent ? results[0] : results.length === 1 ? results[0] : results);
      return 0;
    }
    case 'stop': {
      const wanted: Array<string | undefined> = agent ? [agent] : [undefined, ...knownAgents(stack.ctx)];
      const stopped: string[] = [];
      for (const a of wanted) if (await stopWorker(stack.ctx, a)) stopped.push(label(a));
      if (json) printJson(agent || wanted.length === 1 ? { stopped: stopped.length > 0 } : { stopped: stopped.length > 0, which: stopped });
      else line(stopped.length ? `${stopped.join(' and ')} stopped` : `no ${label(agent)} was running`);
      return 0;
    }
    case 'status': {
      const pid = workerPid(stack.ctx, agent);
      if (json) printJson({ running: pid !== undefined, pid });
      else line(pid ? `${label(agent)} running (pid ${pid})` : `${label(agent)} not running (start it with \`lifeboat worker start${agent ? ` --agent ${agent}` : ''}\`)`);
      return pid ? 0 : 1;
    }
    default:
      throw new UsageError(`\`lifeboat worker\` takes start, stop or status${sub ? `, not "${sub}"` : ''}.`);
  }
}
