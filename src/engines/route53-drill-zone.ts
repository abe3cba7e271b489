/**
 * A failover drill's zone on Route53: a hosted zone of its own (`drillHostedZoneId`) whose name
 * is the router's `drillZone`. Drill names are an A record and a `_postgresql._tcp` SRV record,
 * with a TXT record at the name carrying the owner run (Route53 keeps no comments). Every write
 * goes through `guard`, which refuses names outside the drill zone. Kept apart from route53.ts,
 * which moves production names.
 */
import { ChangeResourceRecordSetsCommand, GetChangeCommand, GetHostedZoneCommand, Route53Client, type Change, type ResourceRecordSet, type RRType } from '@aws-sdk/client-route-53';
import { LifeboatError } from '../domain/errors';
import { classifyAwsError } from './aws-errors';
import { resourceRecordSetPages } from './aws-pagination';

export interface Route53DrillZoneOptions {
  hostedZoneId: string;
  /** The zone name the hosted zone must have (the router's drillZone). */
  zoneName: string;
  region?: string;
  client?: Route53Client;
  pollIntervalMs?: number;
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const fqdn = (name: string) => `${name.trim().toLowerCase().replace(/\.+$/, '')}.`;
/** Route53 gives names back with octal escapes (`\052` for `*`). */
const decoded = (name: string) => fqdn(name.replace(/\\(\d{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))));
const srvName = (name: string) => `_postgresql._tcp.${fqdn(name)}`;

export class Route53DrillZone {
  readonly hostedZoneId: string;
  private readonly client: Route53Client;

  constructor(
    private readonly options: Route53DrillZoneOptions,
    private readonly guard: (name: string) => void,
  ) {
    this.hostedZoneId = options.hostedZoneId.replace(/^\/?hostedzone\//, '');
    this.client = options.client ?? new Route53Client({ region: options.region ?? 'us-east-1' });
  }

  /** The hosted zone answers and carries the drill zone's name; anything else is a configuration error, not worth retrying. */
  async ensure(): Promise<void> {
    let name: string | undefined;
    try {
      name = (await this.client.send(new GetHostedZoneCommand({ Id: this.hostedZoneId }))).HostedZone?.Name;
    } catch (err) {
      const classified = classifyAwsError(err, { service: 'Route53', action: 'GetHostedZone', doing: `checking drill hosted zone ${this.hostedZoneId}` });
      if (classified.nonRetryable) throw new LifeboatError(`${classified.message} Create the drill zone ${fqdn(this.options.zoneName)} as its own hosted zone and set its id as drillHostedZoneId.`, 'DRILL_ZONE_MISSING');
      throw classified;
    }
    if (!name || fqdn(name) !== fqdn(this.options.zoneName)) {
      throw new LifeboatError(
        `Route53 hosted zone ${this.hostedZoneId} is ${name ?? 'nameless'}, not the drill zone ${fqdn(this.options.zoneName)}: set drillHostedZoneId to the hosted zone of ${fqdn(this.options.zoneName).replace(/\.$/, '')}.`,
        'DRILL_ZONE_MISMATCH',
      );
    }
  }

  /** Every record set of the drill zone. */
  async recordSets(): Promise<ResourceRecordSet[]> {
    const sets: ResourceRecordSet[] = [];
    try {
      for await (const page of resourceRecordSetPages(this.client, { HostedZoneId: this.hostedZoneId })) sets.push(...(page.ResourceRecordSets ?? []));
    } catch (err) {
      throw classifyAwsError(err, { service: 'Route53', action: 'ListResourceRecordSets', doing: `listing drill zone ${fqdn(this.options.zoneName)}` });
    }
    return sets.map((s) => ({ ...s, Name: decoded(s.Name ?? '') }));
  }

  /** Owner marks by drill name: the TXT values lifeboat wrote. */
  async ownerMarks(): Promise<Array<{ name: string; marks: string[] }>> {
    return (await this.recordSets())
      .filter((s) => s.Type === 'TXT')
      .map((s) => ({ name: s.Name!, marks: (s.ResourceRecords ?? []).map((r) => (r.Value ?? '').replace(/^"(.*)"$/, '$1').replace(/\\"/g, '"')) }));
  }

  /** UPSERTs A, SRV and the owner TXT in one change batch and waits until Route53 serves it. */
  async writeName(name: string, target: { host: string; port: number }, ttl: number, ownerMark: string): Promise<void> {
    this.guard(name);
    const upsert = (set: ResourceRecordSet): Change => ({ Action: 'UPSERT', ResourceRecordSet: set });
    await this.change(
      [
        upsert({ Name: fqdn(name), Type: 'A', TTL: ttl, ResourceRecords: [{ Value: target.host }] }),
        upsert({ Name: srvName(name), Type: 'SRV', TTL: ttl, ResourceRecords: [{ Value: `0 0 ${target.port} ${fqdn(name)}` }] }),
        upsert({ Name: fqdn(name), Type: 'TXT', TTL: ttl, ResourceRecords: [{ Value: `"${ownerMark.replace(/"/g, '\\"')}"` }] }),
      ],
      `drill name ${name}`,
    );
  }

  /** Deletes the record sets exactly as listed (Route53 deletes only a set it is given in full); each checked by the guard. */
  async removeRecordSets(sets: ResourceRecordSet[]): Promise<void> {
    if (sets.length === 0) return;
    for (const s of sets) this.guard(s.Name ?? '');
    await this.change(
      sets.map((s) => ({ Action: 'DELETE', ResourceRecordSet: { ...s, Type: s.Type as RRType } })),
      `removing ${sets.map((s) => `${s.Type} ${s.Name}`).join(', ')}`,
    );
  }

  private async change(changes: Change[], what: string): Promise<void> {
    let id: string;
    try {
      const out = await this.client.send(new ChangeResourceRecordSetsCommand({ HostedZoneId: this.hostedZoneId, ChangeBatch: { Comment: `lifeboat failover drill: ${what}`, Changes: changes } }));
      id = out.ChangeInfo?.Id ?? '';
      if (out.ChangeInfo?.Status === 'INSYNC') return;
    } catch (err) {
      throw classifyAwsError(err, { service: 'Route53', action: 'ChangeResourceRecordSets', doing: what });
    }
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const deadline = Date.now() + (this.options.timeoutMs ?? 10 * 60 * 1000);
    for (;;) {
      let status: string | undefined;
      try {
        status = (await this.client.send(new GetChangeCommand({ Id: id }))).ChangeInfo?.Status;
      } catch (err) {
        throw classifyAwsError(err, { service: 'Route53', action: 'GetChange', doing: `waiting for ${what} to be served` });
      }
      if (status === 'INSYNC') return;
      if (Date.now() > deadline) throw new Error(`Route53 change ${id} (${what}) is still ${status}: it stays submitted; check it with aws route53 get-change.`);
      await sleep(this.options.pollIntervalMs ?? 5000);
    }
  }
}
