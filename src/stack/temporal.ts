/** The Temporal dev server (SQLite persistence, Web UI), lifeboat's search attributes registered at start. */
import fs from 'node:fs';
import path from 'node:path';
import { searchAttributeCliArgs } from '../workflows/search-attributes';
import type { CodecServerProcess } from './codec-server';
import { ComponentHealth, logFile, pidFile, StackComponent, StackContext } from './component';
import { ENV } from './settings';
import { livePid, portAnswers, startDetached, stopPid, tailFile, waitUntil } from '../platform/processes';

export class TemporalDevServer implements StackComponent {
  readonly name = 'temporal';
  constructor(
    private readonly ctx: StackContext,
    /** The Web UI decodes payloads through it (its endpoint is fixed when the server starts). */
    private readonly codecServer?: CodecServerProcess,
  ) {}

  get endpoint(): string {
    const { host, temporal } = this.ctx.settings;
    return `${host}:${temporal.port} (Web UI http://${host}:${temporal.uiPort})`;
  }

  ports() {
    const t = this.ctx.settings.temporal;
    return [
      { port: t.port, env: ENV.temporalPort, what: 'Temporal frontend' },
      { port: t.uiPort, env: ENV.temporalUiPort, what: 'Temporal Web UI' },
    ];
  }

  isRunning(): boolean {
    return livePid(pidFile(this.ctx, this.name), this.ctx.paths.temporalDb) !== undefined;
  }

  async start(): Promise<void> {
    const { settings, paths, tools } = this.ctx;
    fs.mkdirSync(path.dirname(paths.temporalDb), { recursive: true });
    const args = [
      'server', 'start-dev',
      '--ip', settings.host,
      '--port', String(settings.temporal.port),
      '--ui-port', String(settings.temporal.uiPort),
      '--db-filename', paths.temporalDb,
      '--namespace', settings.temporal.namespace,
      '--log-level', 'warn',
      ...(this.codecServer ? ['--ui-codec-endpoint', this.codecServer.uiEndpoint()] : []),
      ...searchAttributeCliArgs(),
    ];
    startDetached(tools.temporal, args, { logFile: logFile(this.ctx, this.name), pidFile: pidFile(this.ctx, this.name) });
    await waitUntil('the Temporal dev server', async () => (await this.health()).healthy || (this.isRunning() ? 'starting' : `exited: ${tailFile(logFile(this.ctx, this.name), 3)}`), {
      timeoutMs: 90000,
      hint: `see ${logFile(this.ctx, this.name)}`,
    });
  }

  async stop(): Promise<void> {
    const pid = livePid(pidFile(this.ctx, this.name), this.ctx.paths.temporalDb);
    if (pid) await stopPid(pid);
  }

  async health(): Promise<ComponentHealth> {
    const { host, temporal } = this.ctx.settings;
    if (!(await portAnswers(host, temporal.port))) return { healthy: false, detail: `nothing answers on ${host}:${temporal.port}` };
    try {
      const res = await fetch(`http://${host}:${temporal.uiPort}/`, { signal: AbortSignal.timeout(3000) });
      if (!res.ok) return { healthy: false, detail: `Web UI answered HTTP ${res.status}` };
    } catch (err) {
      return { healthy: false, detail: `Web UI does not answer on port ${temporal.uiPort}: ${(err as Error).message}` };
    }
    return { healthy: true, detail: `frontend ${host}:${temporal.port}, Web UI http://${host}:${temporal.uiPort}` };
  }
}
