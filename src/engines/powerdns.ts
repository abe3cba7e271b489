/**
 * The TrafficRouter port over PowerDNS's HTTP API. A database name is an A record (where) plus
 * an SRV record `_postgresql._tcp.<name>` (which port). A change counts as done only once
 * the authoritative server answers it over DNS.
 */
import { promises as dns } from 'node:dns';
import net from 'node:net';
import { TrafficRouter } from '../domain/ports';

export interface PowerDnsSettings {
  apiUrl: string;
  apiKey: string;
  /** Zone that holds the names, with the trailing dot. */
  zone: string;
  dnsServer: { host: string; port: number };
  serverId?: string;
  /** How long pointAt waits for the new answer to be served. */
  propagationTimeoutMs?: number;
}

export interface DnsRecordSet {
  name: string;
  type: 'A' | 'CNAME' | 'SRV' | 'NS';
  ttl: number;
  records: string[];
}

const fqdn = (name: string) => (name.endsWith('.') ? name : `${name}.`);
const srvName = (name: string) => `_postgresql._tcp.${fqdn(name)}`;

export class PowerDnsRouter implements TrafficRouter {
  readonly kind = 'powerdns' as const;
  private readonly resolver = new dns.Resolver({ timeout: 2000, tries: 1 });

  constructor(private readonly settings: PowerDnsSettings) {
    this.resolver.setServers([`${settings.dnsServer.host}:${settings.dnsServer.port}`]);
  }

  private get zoneUrl(): string {
    return `${this.settings.apiUrl}/api/v1/servers/${this.settings.serverId ?? 'localhost'}/zones/${encodeURIComponent(fqdn(this.settings.zone))}`;
  }

  private async api(method: string, url: string, body?: unknown): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { 'X-API-Key': this.settings.apiKey, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10000),
      });
    } catch (err) {
      throw new Error(`the PowerDNS API at ${this.settings.apiUrl} does not answer (${(err as Error).message}): check that PowerDNS runs with api=yes.`);
    }
    if (res.status === 401) throw new Error(`the PowerDNS API refused lifeboat's API key: set the key PowerDNS was started with.`);
    return res;
  }

  /** Creates the zone with these records if it does not exist yet ("already exists" is adopted). */
  async ensureZone(records: DnsRecordSet[], nameserver: string): Promise<void> {
    const existing = await this.api('GET', this.zoneUrl);
    if (existing.ok) return;
    const res = await this.api('POST', `${this.settings.apiUrl}/api/v1/servers/${this.settings.serverId ?? 'localhost'}/zones`, {
      name: fqdn(this.settings.zone),
      kind: 'Native',
      nameservers: [fqdn(nameserver)],
      rrsets: records.map((r) => ({ name: fqdn(r.name), type: r.type, ttl: r.ttl, records: r.records.map((content) => ({ content, disabled: false })) })),
    });
    if (!res.ok && res.status !== 409) throw new Error(`PowerDNS refused to create zone ${this.settings.zone}: HTTP ${res.status} ${await res.text()}`);
  }

  async zoneSerial(): Promise<number> {
    const res = await this.api('GET', this.zoneUrl);
    if (!res.ok) throw new Error(`zone ${this.settings.zone} is not on the PowerDNS server (HTTP ${res.status}): run \`lifeboat stack up\` or create it.`);
    return ((await res.json()) as { serial: number }).serial;
  }

  /** What the authoritative server answers for the name right now. */
  async currentTarget(name: string): Promise<{ host: string; port?: number; ttl: number } | undefined> {
    let host: string;
    let ttl: number;
    try {
      const a = await this.resolver.resolve4(fqdn(name), { ttl: true });
      if (a.length === 0) return undefined;
      host = a[0].address;
      ttl = a[0].ttl;
    } catch (err) {
      if (['ENOTFOUND', 'ENODATA'].includes((err as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw err;
    }
    let port: number | undefined;
    try {
      const srv = await this.resolver.resolveSrv(srvName(name));
      port = srv[0]?.port;
    } catch {
      port = undefined;
    }
    return { host, port, ttl };
  }

  /** Deletes the name's A and SRV records (missing is fine). */
  async removeName(name: string): Promise<void> {
    const res = await this.api('PATCH', this.zoneUrl, {
      rrsets: [
        { name: fqdn(name), type: 'A', changetype: 'DELETE' },
        { name: srvName(name), type: 'SRV', changetype: 'DELETE' },
      ],
    });
    if (!res.ok) throw new Error(`PowerDNS refused to delete ${name}: HTTP ${res.status} ${await res.text()}`);
  }

  async pointAt(name: string, target: { host: string; port?: number }, ttl = 30): Promise<{ changeId: string }> {
    if (!net.isIPv4(target.host)) throw new Error(`PowerDNS cutover needs an IPv4 address for ${name}, got "${target.host}".`);
    const rrsets: unknown[] = [{ name: fqdn(name), type: 'A', ttl, changetype: 'REPLACE', records: [{ content: target.host, disabled: false }] }];
    if (target.port !== undefined) {
      rrsets.push({ name: srvName(name), type: 'SRV', ttl, changetype: 'REPLACE', records: [{ content: `0 0 ${target.port} ${fqdn(name)}`, disabled: false }] });
    }
    const res = await this.api('PATCH', this.zoneUrl, { rrsets });
    if (!res.ok) throw new Error(`PowerDNS refused the change of ${name}: HTTP ${res.status} ${await res.text()}`);
    const deadline = Date.now() + (this.settings.propagationTimeoutMs ?? 30000);
    for (;;) {
      const now = await this.currentTarget(name);
      if (now?.host === target.host && (target.port === undefined || now.port === target.port)) break;
      if (Date.now() > deadline) throw new Error(`PowerDNS accepted the change of ${name} but still answers ${now?.host}:${now?.port}: check its caches.`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return { changeId: `${fqdn(this.settings.zone)}serial-${await this.zoneSerial()}` };
  }
}
