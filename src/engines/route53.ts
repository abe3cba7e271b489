/**
 * Amazon Route53 as a TrafficRouter: one hosted zone, simple-routing A/AAAA/CNAME records.
 *
 * pointAt UPSERTs the record (A for an IPv4 address, AAAA for IPv6, CNAME for a host name) and,
 * in the same atomic change batch, deletes address records of another kind at that name (a
 * CNAME cannot live next to an A record, and the old address must stop being served). It then polls GetChange until Route53 reports INSYNC:
 * the change is served by every Route53 name server. UPSERT makes a retried cutover harmless.
 */
import { isIP } from 'node:net';
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  Route53Client,
  type Change,
  type ResourceRecordSet,
  type RRType,
} from '@aws-sdk/client-route-53';
import { LifeboatError } from '../domain/errors';
import type { DnsRecordSnapshot, DnsSnapshot, TrafficRouter } from '../domain/ports';
import { classifyAwsError } from './aws-errors';
import { resourceRecordSetPages } from './aws-pagination';

export interface Route53RouterOptions {
  /** The hosted zone holding the names lifeboat moves: `Z0123456789ABCDEFGHIJ` or `/hostedzone/Z...`. */
  hostedZoneId: string;
  /** Route53 is global; the SDK still wants a region for signing. Default us-east-1. */
  region?: string;
  client?: Route53Client;
  /** Time between GetChange polls. Default 5 s. */
  pollIntervalMs?: number;
  /** Give up waiting for INSYNC after this long (the change stays submitted). Default 10 min. */
  timeoutMs?: number;
  /** Called after each poll, e.g. to heartbeat the activity. */
  onPoll?: (status: { changeId: string; status: string; polls: number }) => void;
  /** Injectable clock and sleep, for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const ADDRESS_TYPES: RRType[] = ['A', 'AAAA', 'CNAME'];
const DEFAULT_TTL = 60;
/** One name holds a handful of record sets; more pages than this means something else is wrong. */
const MAX_RECORD_PAGES = 20;

/** Lower-case, no trailing dot: how lifeboat compares names. */
function bareName(name: string): string {
  return name.trim().toLowerCase().replace(/\.+$/, '');
}

/** Route53 returns names with a trailing dot and octal escapes (`\052` for `*`). */
function decodeRoute53Name(name: string): string {
  return bareName(name.replace(/\\(\d{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))));
}

function bareChangeId(id: string): string {
  return id.replace(/^\/?change\//, '');
}

function toSnapshotRecord(r: ResourceRecordSet): DnsRecordSnapshot {
  const out: DnsRecordSnapshot = { name: r.Name ?? '', type: r.Type ?? 'A', values: (r.ResourceRecords ?? []).map((v) => v.Value ?? '') };
  if (r.TTL !== undefined) out.ttl = r.TTL;
  if (r.AliasTarget) out.alias = { hostedZoneId: r.AliasTarget.HostedZoneId ?? '', dnsName: r.AliasTarget.DNSName ?? '', evaluateTargetHealth: r.AliasTarget.EvaluateTargetHealth ?? false };
  return out;
}

function fromSnapshotRecord(r: DnsRecordSnapshot): ResourceRecordSet {
  const set: ResourceRecordSet = { Name: r.name, Type: r.type as RRType };
  if (r.alias) {
    set.AliasTarget = { HostedZoneId: r.alias.hostedZoneId, DNSName: r.alias.dnsName, EvaluateTargetHealth: r.alias.evaluateTargetHealth };
  } else {
    set.TTL = r.ttl ?? DEFAULT_TTL;
    set.ResourceRecords = r.values.map((Value) => ({ Value }));
  }
  return set;
}

function recordType(host: string): RRType {
  const family = isIP(host);
  if (family === 4) return 'A';
  if (family === 6) return 'AAAA';
  return 'CNAME';
}

export class Route53Router implements TrafficRouter {
  readonly kind = 'route53' as const;
  readonly hostedZoneId: string;
  private readonly client: Route53Client;
  private readonly pollIntervalMs: number;
  private readonly timeoutMs: number;
  private readonly onPoll?: Route53RouterOptions['onPoll'];
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: Route53RouterOptions) {
    const zone = (options.hostedZoneId ?? '').replace(/^\/?hostedzone\//, '');
    if (!zone) throw new LifeboatError('The Route53 router has no hostedZoneId; set the hosted zone of the cutover name in the lifeboat config.', 'INVALID_CONFIG');
    this.hostedZoneId = zone;
    this.client = options.client ?? new Route53Client({ region: options.region ?? 'us-east-1' });
    this.pollIntervalMs = options.pollIntervalMs ?? 5000;
    this.timeoutMs = options.timeoutMs ?? 10 * 60 * 1000;
    this.onPoll = options.onPoll;
    this.now = options.now ?? (() => Date.now());
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async currentTarget(name: string): Promise<{ host: string; port?: number; ttl: number } | undefined> {
    const record = (await this.addressRecords(name))[0];
    if (!record) return undefined;
    if (record.AliasTarget?.DNSName) {
      // Alias records have no TTL of their own; Route53 serves the target's.
      return { host: bareName(record.AliasTarget.DNSName), ttl: record.TTL ?? DEFAULT_TTL };
    }
    const value = record.ResourceRecords?.[0]?.Value;
    if (!value) return undefined;
    return { host: bareName(value), ttl: record.TTL ?? DEFAULT_TTL };
  }

  async pointAt(name: string, target: { host: string; port?: number }, ttl: number = DEFAULT_TTL): Promise<{ changeId: string }> {
    const fqdn = `${bareName(name)}.`;
    const host = bareName(target.host);
    if (!bareName(name) || !host) {
      throw new LifeboatError(`Cannot point "${name}" at "${target.host}": both the name and the target host are needed; check the cutover settings.`, 'INVALID_CUTOVER');
    }
    const type = recordType(host);
    const changes: Change[] = [];
    const before = await this.addressRecords(name);
    // The name must lead only to the new target, and a CNAME cannot coexist with other records:
    // delete address records of another kind in the same atomic batch.
    for (const existing of before) {
      if (existing.Type !== type) changes.push({ Action: 'DELETE', ResourceRecordSet: existing });
    }
    const written: ResourceRecordSet = { Name: fqdn, Type: type, TTL: ttl, ResourceRecords: [{ Value: type === 'CNAME' ? `${host}.` : host }] };
    changes.push({ Action: 'UPSERT', ResourceRecordSet: written });

    let changeId: string;
    let status: string;
    try {
      const out = await this.client.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: this.hostedZoneId,
          ChangeBatch: { Comment: `lifeboat: point ${bareName(name)} at ${host}`, Changes: changes },
        }),
      );
      changeId = bareChangeId(out.ChangeInfo?.Id ?? '');
      status = out.ChangeInfo?.Status ?? 'PENDING';
    } catch (err) {
      throw classifyAwsError(err, { service: 'Route53', action: 'ChangeResourceRecordSets', doing: `pointing ${bareName(name)} at ${host} in hosted zone ${this.hostedZoneId}` });
    }
    if (!changeId) throw new LifeboatError(`Route53 accepted the change for ${bareName(name)} but returned no change id; lifeboat will retry the cutover.`, 'ROUTE53_NO_CHANGE_ID', false);
    try {
      return await this.waitInSync(changeId, status, `${bareName(name)} -> ${host}`);
    } catch (err) {
      // A retryable wait is retried (the UPSERT is harmless again). A wait that cannot succeed
      // (GetChange denied, the change unknown) fails the move: the records must not stay moved
      // behind a failure, so the ones read before are put back.
      if (!(err instanceof LifeboatError) || !err.nonRetryable) throw err;
      throw await this.undoUnconfirmedChange(err, { name: fqdn, records: before.map(toSnapshotRecord), takenAt: new Date(this.now()).toISOString() }, written);
    }
  }

  /** Puts back the records a change replaced when that change cannot be confirmed; the error says what became of them. */
  private async undoUnconfirmedChange(failure: LifeboatError, previous: DnsSnapshot, written: ResourceRecordSet): Promise<LifeboatError> {
    const name = bareName(previous.name);
    const changes = this.restoreChanges(previous, [written]);
    try {
      const out = await this.client.send(
        new ChangeResourceRecordSetsCommand({ HostedZoneId: this.hostedZoneId, ChangeBatch: { Comment: `lifeboat: undo the unconfirmed move of ${name}`, Changes: changes } }),
      );
      const undoId = bareChangeId(out.ChangeInfo?.Id ?? '');
      return new LifeboatError(`${failure.message.replace(/\.$/, '')}; the move could not be confirmed, so lifeboat submitted the previous records of ${name} again (change ${undoId || 'without an id'}).`, failure.code, true);
    } catch (undoError) {
      const repair = `aws route53 change-resource-record-sets --hosted-zone-id ${this.hostedZoneId} --change-batch '${JSON.stringify({ Comment: `lifeboat repair: ${name} back to its previous records`, Changes: changes }).replace(/'/g, `'\\''`)}'`;
      return new LifeboatError(
        `${failure.message.replace(/\.$/, '')}; the move could not be confirmed and putting the previous records of ${name} back failed too (${(undoError as Error).message}): put them back with ${repair}`,
        failure.code,
        true,
      );
    }
  }

  /** The name's address records as Route53 holds them: what a rollback puts back. */
  async snapshot(name: string): Promise<DnsSnapshot> {
    const records = (await this.addressRecords(name)).map(toSnapshotRecord);
    const first = records[0];
    const host = first ? (first.alias ? first.alias.dnsName : first.values[0]) : undefined;
    return { name: `${bareName(name)}.`, records, ...(host ? { endpoint: { host: bareName(host) } } : {}), takenAt: new Date(this.now()).toISOString() };
  }

  /** One atomic batch: the snapshot's records upserted, address records it did not have deleted. */
  private restoreChanges(snapshot: DnsSnapshot, current: ResourceRecordSet[]): Change[] {
    const keep = new Set(snapshot.records.map((r) => r.type));
    const changes: Change[] = current.filter((c) => !keep.has(c.Type!)).map((c) => ({ Action: 'DELETE', ResourceRecordSet: c }));
    for (const r of snapshot.records) changes.push({ Action: 'UPSERT', ResourceRecordSet: fromSnapshotRecord(r) });
    return changes;
  }

  async restoreSnapshot(snapshot: DnsSnapshot): Promise<{ changeId: string }> {
    const name = bareName(snapshot.name);
    const changes = this.restoreChanges(snapshot, await this.addressRecords(name));
    // The name had no address records and has none now: nothing to put back.
    if (changes.length === 0) return { changeId: 'unchanged' };
    let changeId: string;
    let status: string;
    try {
      const out = await this.client.send(
        new ChangeResourceRecordSetsCommand({ HostedZoneId: this.hostedZoneId, ChangeBatch: { Comment: `lifeboat: roll back ${name} to its records of ${snapshot.takenAt}`, Changes: changes } }),
      );
      changeId = bareChangeId(out.ChangeInfo?.Id ?? '');
      status = out.ChangeInfo?.Status ?? 'PENDING';
    } catch (err) {
      throw classifyAwsError(err, { service: 'Route53', action: 'ChangeResourceRecordSets', doing: `pointing ${name} back at its records of ${snapshot.takenAt} in hosted zone ${this.hostedZoneId}` });
    }
    if (!changeId) throw new LifeboatError(`Route53 accepted the rollback of ${name} but returned no change id; lifeboat will retry the rollback.`, 'ROUTE53_NO_CHANGE_ID', false);
    return this.waitInSync(changeId, status, `${name} back to its records of ${snapshot.takenAt}`);
  }

  /**
   * The AWS CLI command that puts the snapshot back by hand. It is written before the cutover,
   * so it deletes what the cutover will write when that is of another type than the old records.
   */
  repairCommand(snapshot: DnsSnapshot, replacedBy?: { host: string; port?: number; ttl: number }): string {
    const current: ResourceRecordSet[] = [];
    if (replacedBy) {
      const host = bareName(replacedBy.host);
      const type = recordType(host);
      current.push({ Name: `${bareName(snapshot.name)}.`, Type: type, TTL: replacedBy.ttl, ResourceRecords: [{ Value: type === 'CNAME' ? `${host}.` : host }] });
    }
    const batch = JSON.stringify({ Comment: `lifeboat repair: ${bareName(snapshot.name)} back to its records of ${snapshot.takenAt}`, Changes: this.restoreChanges(snapshot, current) });
    return `aws route53 change-resource-record-sets --hosted-zone-id ${this.hostedZoneId} --change-batch '${batch.replace(/'/g, `'\\''`)}'`;
  }

  /**
   * Polls GetChange until Route53 serves the change from every name server. Not the SDK's
   * waitUntilResourceRecordSetsChanged: that waiter retries on every GetChange error until its
   * deadline (a denied permission or an unknown change would wait out the full ten minutes
   * instead of failing at once with its advice), offers no per-poll hook for onPoll, and backs
   * off from 30 s where a cutover wants a short, steady interval.
   */
  private async waitInSync(changeId: string, initialStatus: string, what: string): Promise<{ changeId: string }> {
    let status = initialStatus;
    const deadline = this.now() + this.timeoutMs;
    let polls = 0;
    while (status !== 'INSYNC') {
      if (this.now() >= deadline) {
        throw new LifeboatError(
          `Route53 change ${changeId} (${what}) was still ${status} after ${Math.round(this.timeoutMs / 1000)} s; the change is submitted and will apply, so lifeboat will retry the wait, and you can check it with "aws route53 get-change --id ${changeId}".`,
          'ROUTE53_CHANGE_TIMEOUT',
          false,
        );
      }
      await this.sleep(this.pollIntervalMs);
      try {
        const out = await this.client.send(new GetChangeCommand({ Id: changeId }));
        status = out.ChangeInfo?.Status ?? status;
      } catch (err) {
        throw classifyAwsError(err, { service: 'Route53', action: 'GetChange', doing: `waiting for change ${changeId} (${what}) to be served` });
      }
      polls += 1;
      this.onPoll?.({ changeId, status, polls });
    }
    return { changeId };
  }

  /** The simple-routing A/AAAA/CNAME record sets at exactly `name`, in Route53's order. */
  private async addressRecords(name: string): Promise<ResourceRecordSet[]> {
    const want = bareName(name);
    const found: ResourceRecordSet[] = [];
    let pages = 0;
    try {
      // Records come sorted by name then type, so stop once past the name.
      for await (const page of resourceRecordSetPages(this.client, { HostedZoneId: this.hostedZoneId, StartRecordName: `${want}.` })) {
        let past = false;
        for (const rrs of page.ResourceRecordSets ?? []) {
          if (!rrs.Name || decodeRoute53Name(rrs.Name) !== want) {
            past = true;
            break;
          }
          if (rrs.Type && ADDRESS_TYPES.includes(rrs.Type)) found.push(rrs);
        }
        pages += 1;
        if (past || pages >= MAX_RECORD_PAGES || !page.NextRecordName || decodeRoute53Name(page.NextRecordName) !== want) break;
      }
    } catch (err) {
      throw classifyAwsError(err, { service: 'Route53', action: 'ListResourceRecordSets', doing: `reading the records of ${want} in hosted zone ${this.hostedZoneId}` });
    }
    return found;
  }
}
