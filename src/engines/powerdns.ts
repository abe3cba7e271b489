/**
 * The TrafficRouter port over PowerDNS's HTTP API. A database name is an A record (where) plus
 * an SRV record `_postgresql._tcp.<name>` (which port). A change counts as done only once
 * the authoritative server answers it over DNS.
 */
import { promises as dns } from 'node:dns';
import net from 'node:net';
import { LifeboatError } from '../domain/errors';
import { DnsRecordSnapshot, DnsSnapshot, TrafficRouter } from '../domain/ports';

export interface PowerDnsSettings {
  apiUrl: string;
  /** The key, or how to read it at each request (so a rotated key is used at once). */
  apiKey: string | (() => string);
  /** Zone that holds the names, with the trailing dot. */
  zone: string;
  dnsServer: { host: string; port: number };
  serverId?: string;
  /** How long pointAt waits for the new answer to be served. */
  propagationTimeoutMs?: number;
  /** How a repair command names the API key without holding it, e.g. `$(cat /etc/lifeboat/dns-api-key)`. */
  apiKeyReference?: string;
}

export interface DnsRecordSet {
  name: string;
  type: 'A' | 'CNAME' | 'SRV' | 'NS';
  ttl: number;
  records: string[];
}

const fqdn = (name: string) => (name.endsWith('.') ? name : `${name}.`);
const srvName = (name: string) => `_postgresql._tcp.${fqdn(name)}`;
/** The record sets a cutover of a name touches: its address records and its port. */
const cutoverRecordSets = (name: string) => [
  { name: fqdn(name), type: 'A' },
  { name: fqdn(name), type: 'AAAA' },
  { name: fqdn(name), type: 'CNAME' },
  { name: srvName(name), type: 'SRV' },
];
const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** One request to the PowerDNS HTTP API with lifeboat's key: the router and the drill zone both send theirs through it. */
async function powerDnsRequest(settings: PowerDnsSettings, method: string, url: string, body?: unknown): Promise<Response> {
  try {
    return await fetch(url, {
      method,
      headers: { 'X-API-Key': typeof settings.apiKey === 'function' ? settings.apiKey() : settings.apiKey, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
  } catch (err) {
    throw new Error(`the PowerDNS API at ${settings.apiUrl} does not answer (${(err as Error).message}): check that PowerDNS runs with api=yes.`);
  }
}

interface ZoneRrset {
  name: string;
  type: string;
  ttl: number;
  records: Array<{ content: string; disabled: boolean }>;
}

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
    const res = await powerDnsRequest(this.settings, method, url, body);
    // A refused key is configuration, not a blip: no retry can fix it, so the step fails at once (a failover rolls back its names without 30 s of retries).
    if (res.status === 401) throw new LifeboatError(`the PowerDNS API refused lifeboat's API key: set the key PowerDNS was started with.`, 'DNS_API_KEY_REFUSED');
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

  /** The name's A/AAAA/CNAME and SRV record sets as the server stores them (its API, not a cache). */
  async snapshot(name: string): Promise<DnsSnapshot> {
    const res = await this.api('GET', this.zoneUrl);
    if (!res.ok) throw new Error(`zone ${this.settings.zone} is not on the PowerDNS server (HTTP ${res.status}): run \`lifeboat stack up\` or create it.`);
    const rrsets = ((await res.json()) as { rrsets: ZoneRrset[] }).rrsets ?? [];
    const records: DnsRecordSnapshot[] = [];
    for (const want of cutoverRecordSets(name)) {
      const found = rrsets.find((r) => r.name.toLowerCase() === want.name.toLowerCase() && r.type === want.type);
      const values = found?.records.filter((r) => !r.disabled).map((r) => r.content) ?? [];
      if (found && values.length > 0) records.push({ name: found.name, type: found.type, ttl: found.ttl, values });
    }
    const address = records.find((r) => r.type === 'A' || r.type === 'AAAA' || r.type === 'CNAME');
    const srv = records.find((r) => r.type === 'SRV');
    const port = srv ? Number(srv.values[0].split(/\s+/)[2]) : undefined;
    return {
      name: fqdn(name),
      records,
      ...(address ? { endpoint: { host: address.values[0].replace(/\.$/, ''), ...(port !== undefined && Number.isInteger(port) ? { port } : {}) } } : {}),
      takenAt: new Date().toISOString(),
    };
  }

  /** The PATCH body that makes the name's records exactly those of the snapshot. */
  private restoreRrsets(snapshot: DnsSnapshot): unknown[] {
    return cutoverRecordSets(snapshot.name).map((want) => {
      const kept = snapshot.records.find((r) => r.name.toLowerCase() === want.name.toLowerCase() && r.type === want.type);
      return kept
        ? { name: want.name, type: want.type, ttl: kept.ttl ?? 30, changetype: 'REPLACE', records: kept.values.map((content) => ({ content, disabled: false })) }
        : { name: want.name, type: want.type, changetype: 'DELETE' };
    });
  }

  async restoreSnapshot(snapshot: DnsSnapshot): Promise<{ changeId: string }> {
    const res = await this.api('PATCH', this.zoneUrl, { rrsets: this.restoreRrsets(snapshot) });
    if (!res.ok) throw new Error(`PowerDNS refused to put back the records of ${snapshot.name}: HTTP ${res.status} ${await res.text()}`);
    const a = snapshot.records.find((r) => r.type === 'A');
    const deadline = Date.now() + (this.settings.propagationTimeoutMs ?? 30000);
    for (;;) {
      const now = await this.currentTarget(snapshot.name);
      const served = a ? now?.host === a.values[0] && (snapshot.endpoint?.port === undefined || now.port === snapshot.endpoint.port) : snapshot.records.length > 0 || now === undefined;
      if (served) break;
      if (Date.now() > deadline) throw new Error(`PowerDNS accepted putting back ${snapshot.name} but still answers ${now?.host}:${now?.port}: check its caches.`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return { changeId: `${fqdn(this.settings.zone)}serial-${await this.zoneSerial()}` };
  }

  repairCommand(snapshot: DnsSnapshot): string {
    const key = this.settings.apiKeyReference ?? '$PDNS_API_KEY';
    return `curl -sf -X PATCH -H "X-API-Key: ${key}" -H 'Content-Type: application/json' ${shellQuote(this.zoneUrl)} --data ${shellQuote(JSON.stringify({ rrsets: this.restoreRrsets(snapshot) }))}`;
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

/** A record set with the comments PowerDNS keeps beside it. */
export interface CommentedRrset {
  name: string;
  type: string;
  ttl: number;
  records: string[];
  comments: string[];
}

/**
 * A failover drill's zone on PowerDNS: created when missing, names written with the owner run in
 * the rrset comments, listed and removed by that owner. Every write goes through `guard`, which
 * refuses names outside the drill zone, so this class can never change a production name.
 */
export class PowerDnsDrillZone {
  readonly router: PowerDnsRouter;

  constructor(
    private readonly settings: PowerDnsSettings,
    private readonly guard: (name: string) => void,
  ) {
    this.router = new PowerDnsRouter(settings);
  }

  private get serverUrl(): string {
    return `${this.settings.apiUrl}/api/v1/servers/${this.settings.serverId ?? 'localhost'}`;
  }

  private get zoneUrl(): string {
    return `${this.serverUrl}/zones/${encodeURIComponent(fqdn(this.settings.zone))}`;
  }

  private call(method: string, url: string, body?: unknown): Promise<Response> {
    return powerDnsRequest(this.settings, method, url, body);
  }

  /** Creates the drill zone (Native, its own NS) if it is missing; an existing zone is kept as it is. */
  async ensure(nameserverAddress: string): Promise<'created' | 'present'> {
    const zone = fqdn(this.settings.zone);
    const existing = await this.call('GET', this.zoneUrl);
    if (existing.ok) return 'present';
    if (existing.status === 401) throw new Error(`the PowerDNS API refused lifeboat's API key: set the key PowerDNS was started with.`);
    await this.router.ensureZone([{ name: `ns1.${zone}`, type: 'A', ttl: 300, records: [nameserverAddress] }], `ns1.${zone}`);
    const made = await this.call('GET', this.zoneUrl);
    if (!made.ok) throw new Error(`PowerDNS did not create drill zone ${zone} (HTTP ${made.status} ${await made.text()})`);
    return 'created';
  }

  /** Every record set of the zone with its comments (the owner marks of drill names). */
  async recordSets(): Promise<CommentedRrset[]> {
    const res = await this.call('GET', this.zoneUrl);
    if (res.status === 404 || res.status === 422) return [];
    if (!res.ok) throw new Error(`PowerDNS would not list drill zone ${this.settings.zone}: HTTP ${res.status} ${await res.text()}`);
    const rrsets = ((await res.json()) as { rrsets?: Array<{ name: string; type: string; ttl: number; records: Array<{ content: string }>; comments?: Array<{ content: string }> }> }).rrsets ?? [];
    return rrsets.map((r) => ({ name: r.name, type: r.type, ttl: r.ttl, records: r.records.map((x) => x.content), comments: (r.comments ?? []).map((c) => c.content) }));
  }

  /** Writes the name's A and SRV records with the owner mark as their comment, and waits until the server answers them. */
  async writeName(name: string, target: { host: string; port: number }, ttl: number, ownerMark: string): Promise<void> {
    this.guard(name);
    if (!net.isIPv4(target.host)) throw new Error(`a PowerDNS drill name needs an IPv4 address for ${name}, got "${target.host}".`);
    const comments = [{ content: ownerMark, account: 'lifeboat', modified_at: Math.floor(Date.now() / 1000) }];
    const res = await this.call('PATCH', this.zoneUrl, {
      rrsets: [
        { name: fqdn(name), type: 'A', ttl, changetype: 'REPLACE', records: [{ content: target.host, disabled: false }], comments },
        { name: srvName(name), type: 'SRV', ttl, changetype: 'REPLACE', records: [{ content: `0 0 ${target.port} ${fqdn(name)}`, disabled: false }], comments },
      ],
    });
    if (!res.ok) throw new Error(`PowerDNS refused drill name ${name}: HTTP ${res.status} ${await res.text()}`);
    const deadline = Date.now() + (this.settings.propagationTimeoutMs ?? 30000);
    for (;;) {
      const now = await this.router.currentTarget(name);
      if (now?.host === target.host && now.port === target.port) return;
      if (Date.now() > deadline) throw new Error(`PowerDNS accepted drill name ${name} but still answers ${now?.host}:${now?.port}: check its caches.`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Deletes the given record sets (each checked by the guard first); missing ones are fine. */
  async removeRecordSets(sets: Array<{ name: string; type: string }>): Promise<void> {
    if (sets.length === 0) return;
    for (const s of sets) this.guard(s.name);
    const res = await this.call('PATCH', this.zoneUrl, { rrsets: sets.map((s) => ({ name: fqdn(s.name), type: s.type, changetype: 'DELETE' })) });
    if (!res.ok) throw new Error(`PowerDNS refused to delete drill records ${sets.map((s) => `${s.type} ${s.name}`).join(', ')}: HTTP ${res.status} ${await res.text()}`);
  }
}
