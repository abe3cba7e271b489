/** PowerDNS authoritative (sqlite backend, HTTP API) serving the zone with the application's database name. */
import fs from 'node:fs';
import path from 'node:path';
import { DnsRecordSet, PowerDnsRouter } from '../engines/powerdns';
import { ComponentHealth, logFile, pidFile, StackComponent, StackContext } from './component';
import { ENV, StackSettings } from './settings';
import { livePid, run, startDetached, stopPid, tailFile, waitUntil } from '../platform/processes';
import { pdnsSqliteSchema } from './tools';

export function localDnsRouter(settings: StackSettings): PowerDnsRouter {
  return new PowerDnsRouter({
    apiUrl: `http://${settings.host}:${settings.dns.apiPort}`,
    apiKey: settings.dns.apiKey,
    zone: settings.dns.zone,
    dnsServer: { host: settings.host, port: settings.dns.port },
  });
}

/** The zone's records: the nameserver, and the application's database name pointing at the primary. */
export function appZoneRecords(settings: StackSettings): DnsRecordSet[] {
  const zone = settings.dns.zone;
  return [
    { name: `ns1.${zone}`, type: 'A', ttl: 300, records: [settings.host] },
    { name: settings.dns.appDbName, type: 'A', ttl: 30, records: [settings.host] },
    { name: `_postgresql._tcp.${settings.dns.appDbName}`, type: 'SRV', ttl: 30, records: [`0 0 ${settings.postgres.primaryPort} ${settings.dns.appDbName}`] },
  ];
}

export class PowerDnsServer implements StackComponent {
  readonly name = 'powerdns';
  constructor(private readonly ctx: StackContext) {}

  get endpoint(): string {
    const { host, dns } = this.ctx.settings;
    return `dns ${host}:${dns.port}, API http://${host}:${dns.apiPort}`;
  }

  ports() {
    const d = this.ctx.settings.dns;
    return [
      { port: d.port, env: ENV.dnsPort, what: 'PowerDNS (DNS)' },
      { port: d.apiPort, env: ENV.dnsApiPort, what: 'PowerDNS HTTP API' },
    ];
  }

  isRunning(): boolean {
    return livePid(pidFile(this.ctx, this.name), this.ctx.paths.pdnsDir) !== undefined;
  }

  async start(): Promise<void> {
    const { settings, paths, tools } = this.ctx;
    fs.mkdirSync(paths.pdnsDir, { recursive: true });
    if (!fs.existsSync(paths.pdnsDb)) {
      await run(tools.sqlite3, [paths.pdnsDb], { input: fs.readFileSync(pdnsSqliteSchema(), 'utf8') });
    }
    const conf = [
      'launch=gsqlite3',
      `gsqlite3-database=${paths.pdnsDb}`,
      `local-address=${settings.host}:${settings.dns.port}`,
      `socket-dir=${paths.pdnsDir}`,
      'api=yes',
      `api-key=${settings.dns.apiKey}`,
      'webserver=yes',
      `webserver-address=${settings.host}`,
      `webserver-port=${settings.dns.apiPort}`,
      'webserver-allow-from=127.0.0.0/8',
      'daemon=no',
      'guardian=no',
      'disable-syslog=yes',
      'loglevel=4',
      // Short caches: a cutover must be visible to the next query, not in a minute.
      'cache-ttl=0',
      'negquery-cache-ttl=0',
      'query-cache-ttl=0',
      'zone-cache-refresh-interval=0',
    ];
    fs.writeFileSync(path.join(paths.pdnsDir, 'pdns.conf'), conf.join('\n') + '\n');
    startDetached(tools.pdnsServer, [`--config-dir=${paths.pdnsDir}`], { logFile: logFile(this.ctx, this.name), pidFile: pidFile(this.ctx, this.name) });
    const router = localDnsRouter(settings);
    await waitUntil('PowerDNS', async () => {
      if (!this.isRunning()) return `exited: ${tailFile(logFile(this.ctx, this.name), 3)}`;
      const res = await fetch(`http://${settings.host}:${settings.dns.apiPort}/api/v1/servers/localhost`, { headers: { 'X-API-Key': settings.dns.apiKey }, signal: AbortSignal.timeout(2000) });
      return res.ok || `API answered HTTP ${res.status}`;
    }, { timeoutMs: 30000, hint: `see ${logFile(this.ctx, this.name)}` });
    await router.ensureZone(appZoneRecords(settings), `ns1.${settings.dns.zone}`);
  }

  async stop(): Promise<void> {
    const pid = livePid(pidFile(this.ctx, this.name), this.ctx.paths.pdnsDir);
    if (pid) await stopPid(pid);
  }

  async health(): Promise<ComponentHealth> {
    const { settings } = this.ctx;
    try {
      const target = await localDnsRouter(settings).currentTarget(settings.dns.appDbName);
      if (!target) return { healthy: false, detail: `${settings.dns.appDbName} has no A record` };
      return { healthy: true, detail: `${settings.dns.appDbName} -> ${target.host}:${target.port ?? '?'} (${this.endpoint})` };
    } catch (err) {
      return { healthy: false, detail: `no DNS answer on ${settings.host}:${settings.dns.port}: ${(err as Error).message}` };
    }
  }
}
