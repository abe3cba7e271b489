/**
 * A real Prometheus for the embedded stack (`lifeboat stack up --with-prometheus`): it scrapes the
 * metrics endpoints of the worker and its agents on this machine (LIFEBOAT_METRICS_PORT and the
 * next ports, as `lifeboat worker start` hands them out) and evaluates the shipped alert rules
 * (monitoring/lifeboat-alerts.yml), so the rules and the dashboard can be tried against real figures.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ComponentHealth, logFile, pidFile, StackComponent, StackContext } from './component';
import { ENV } from './settings';
import { prometheusBinary } from './tools';
import { livePid, startDetached, stopPid, tailFile, waitUntil } from '../platform/processes';

/** The shipped alert rules, from the install directory (lib/src/stack -> the repository root). */
export const ALERT_RULES_FILE = path.resolve(__dirname, '..', '..', '..', 'monitoring', 'lifeboat-alerts.yml');

export class PrometheusServer implements StackComponent {
  readonly name = 'prometheus';
  /** `agents`: how many agents `lifeboat worker start` runs beside the worker (each scraped on the next port). */
  constructor(
    private readonly ctx: StackContext,
    private readonly agents = 0,
  ) {}

  get endpoint(): string {
    const { host, prometheus } = this.ctx.settings;
    return `http://${host}:${prometheus.port} (scraping ${this.scrapeTargets().join(', ')})`;
  }

  ports() {
    return [{ port: this.ctx.settings.prometheus.port, env: ENV.prometheusPort, what: 'Prometheus (HTTP)' }];
  }

  private get configFile(): string {
    return path.join(this.ctx.paths.prometheusDir, 'prometheus.yml');
  }

  scrapeTargets(): string[] {
    const { host, prometheus } = this.ctx.settings;
    return Array.from({ length: this.agents + 1 }, (_, i) => `${host}:${prometheus.metricsPort + i}`);
  }

  /** The config: one job for lifeboat's endpoints, the shipped rules, the runbook links pointing at this checkout's docs. */
  configText(): string {
    const interval = `${this.ctx.settings.prometheus.scrapeIntervalSeconds}s`;
    return (
      '# Written by `lifeboat stack up --with-prometheus`.\n' +
      YAML.stringify({
        global: { scrape_interval: interval, evaluation_interval: interval, external_labels: { lifeboat_docs_url: `file://${path.resolve(ALERT_RULES_FILE, '..', '..', 'docs')}` } },
        rule_files: [ALERT_RULES_FILE],
        scrape_configs: [{ job_name: 'lifeboat', static_configs: [{ targets: this.scrapeTargets() }] }],
      })
    );
  }

  isRunning(): boolean {
    return livePid(pidFile(this.ctx, this.name), this.configFile) !== undefined;
  }

  async start(): Promise<void> {
    const { host, prometheus } = this.ctx.settings;
    const binary = prometheusBinary();
    fs.mkdirSync(path.join(this.ctx.paths.prometheusDir, 'data'), { recursive: true });
    fs.writeFileSync(this.configFile, this.configText());
    const log = logFile(this.ctx, this.name);
    startDetached(
      binary,
      [
        `--config.file=${this.configFile}`,
        `--storage.tsdb.path=${path.join(this.ctx.paths.prometheusDir, 'data')}`,
        '--storage.tsdb.retention.time=15d',
        `--web.listen-address=${host}:${prometheus.port}`,
        // `stack up` reloads the config in place when the scrape targets change.
        '--web.enable-lifecycle',
      ],
      { logFile: log, pidFile: pidFile(this.ctx, this.name) },
    );
    await waitUntil('Prometheus', async () => (this.isRunning() ? (await this.health()).healthy || 'not ready yet' : `exited: ${tailFile(log, 3)}`), { timeoutMs: 60000, hint: `see ${log}` });
  }

  /** Rewrites the config and has the running server read it again (a changed metrics port or agent count). */
  async reload(): Promise<void> {
    const text = this.configText();
    if (fs.existsSync(this.configFile) && fs.readFileSync(this.configFile, 'utf8') === text) return;
    fs.writeFileSync(this.configFile, text);
    const { host, prometheus } = this.ctx.settings;
    const res = await fetch(`http://${host}:${prometheus.port}/-/reload`, { method: 'POST', signal: AbortSignal.timeout(10000) });
    if (!res.ok) throw new Error(`Prometheus refused to reload ${this.configFile}: HTTP ${res.status} ${await res.text()}`);
  }

  async stop(): Promise<void> {
    const pid = livePid(pidFile(this.ctx, this.name), this.configFile);
    if (pid) await stopPid(pid);
  }

  async health(): Promise<ComponentHealth> {
    const { host, prometheus } = this.ctx.settings;
    try {
      const res = await fetch(`http://${host}:${prometheus.port}/-/ready`, { signal: AbortSignal.timeout(3000) });
      return res.ok ? { healthy: true, detail: this.endpoint } : { healthy: false, detail: `GET /-/ready answered HTTP ${res.status}` };
    } catch (err) {
      return { healthy: false, detail: `no HTTP answer on ${host}:${prometheus.port}: ${(err as Error).message}` };
    }
  }
}
