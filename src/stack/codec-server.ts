/**
 * The stack's `lifeboat codec-server`, so its Web UI shows encrypted payloads decoded. It serves
 * the keyring of the config lifeboat finds (as the worker does), on the stack's codec port.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ComponentHealth, logFile, pidFile, StackComponent, StackContext } from './component';
import { ENV } from './settings';
import { livePid, startDetached, stopPid, tailFile, waitUntil } from '../platform/processes';

const CODEC_SERVER_ENTRY = path.resolve(__dirname, '..', 'codec-server.js');

export class CodecServerProcess implements StackComponent {
  readonly name = 'codec-server';
  constructor(private readonly ctx: StackContext) {}

  get endpoint(): string {
    const { host, temporal } = this.ctx.settings;
    return `http://${host}:${temporal.codecPort} (for the Web UI at http://${host}:${temporal.uiPort})`;
  }

  ports() {
    return [{ port: this.ctx.settings.temporal.codecPort, env: ENV.codecServerPort, what: 'codec server (HTTP)' }];
  }

  /** The endpoint the Web UI is started with: the token rides in the path, since the dev server's UI has no login to pass one. */
  uiEndpoint(): string {
    const { host, temporal } = this.ctx.settings;
    const token = fs.readFileSync(this.ctx.paths.secret('codec-server-token'), 'utf8').trim();
    return `http://${host}:${temporal.codecPort}/t/${encodeURIComponent(token)}`;
  }

  isRunning(): boolean {
    return livePid(pidFile(this.ctx, this.name), CODEC_SERVER_ENTRY) !== undefined;
  }

  async start(): Promise<void> {
    const log = logFile(this.ctx, this.name);
    // It reads the same config (and its environment: data dir, ports) as the stack that starts it.
    startDetached(process.execPath, [CODEC_SERVER_ENTRY], { logFile: log, pidFile: pidFile(this.ctx, this.name), cwd: process.cwd(), inheritEnv: 'all' });
    await waitUntil('the codec server', async () => (this.isRunning() ? (await this.health()).healthy || 'not answering HTTP yet' : `exited: ${tailFile(log, 3)}`), {
      timeoutMs: 30000,
      hint: `see ${log}`,
    });
  }

  async stop(): Promise<void> {
    const pid = livePid(pidFile(this.ctx, this.name), CODEC_SERVER_ENTRY);
    if (pid) await stopPid(pid);
  }

  async health(): Promise<ComponentHealth> {
    const { host, temporal } = this.ctx.settings;
    try {
      const res = await fetch(`http://${host}:${temporal.codecPort}/health`, { signal: AbortSignal.timeout(3000) });
      if (res.ok) return { healthy: true, detail: this.endpoint };
      return { healthy: false, detail: `GET /health answered HTTP ${res.status}` };
    } catch (err) {
      return { healthy: false, detail: `no HTTP answer on ${host}:${temporal.codecPort} (temporal.codecServer.port in the config must be ${ENV.codecServerPort}'s): ${(err as Error).message}` };
    }
  }
}
