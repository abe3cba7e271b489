/**
 * A production fingerprint: what a failover drill must leave exactly as it was (the production
 * DNS records of the plan's names, each source database's identity and critical tables, its
 * pgBackRest repositories' backup lists, each bucket's object listing in source and replica),
 * taken before and after the drill and compared here. Pure.
 *
 * A part that could not be read (its region down) is `unreachable`: unreachable both times counts
 * as equal, but is reported as unverified, so nobody mistakes it for proof.
 */

/** One part of the fingerprint: its value, or why it could not be read. */
export type FingerprintPart<T> = { reachable: true; value: T } | { reachable: false; detail: string };

/** One record set at a production name, as the router stores it. */
export interface FingerprintRecordSet {
  name: string;
  type: string;
  ttl?: number;
  values: string[];
}

export interface DatabaseFingerprint {
  /** pg_control_system().system_identifier, as text (it overflows a JS number). */
  systemIdentifier: string;
  /** The timeline of the latest checkpoint. */
  timeline: number;
  /** Row count and content checksum of each critical table, in the config's order. */
  tables: Array<{ table: string; rows: number; checksum: string }>;
}

export interface RepositoryFingerprint {
  repo: number;
  region: 'primary' | 'dr';
  backups: FingerprintPart<Array<{ label: string; stop: number }>>;
}

/** Object listings larger than this are kept as a count and digest only (activity results stay small). */
export const MAX_LISTED_OBJECTS = 5000;

export interface BucketListing {
  count: number;
  /** Digest of every "key etag versionId" line, sorted: equal digests, equal listings. */
  digest: string;
  /** The entries themselves when there are at most MAX_LISTED_OBJECTS, so a change can be named. */
  objects?: Array<{ key: string; etag: string; versionId: string }>;
}

export interface ProductionFingerprint {
  takenAt: string;
  names: Array<{ router: string; name: string; records: FingerprintPart<FingerprintRecordSet[]> }>;
  databases: Array<{ target: string; database: FingerprintPart<DatabaseFingerprint>; repositories: RepositoryFingerprint[] }>;
  buckets: Array<{ target: string; side: 'source' | 'replica'; store: string; bucket: string; listing: FingerprintPart<BucketListing> }>;
}

/** One way production differs between two fingerprints: which part, and what changed. */
export interface FingerprintDifference {
  part: string;
  change: string;
}

const MAX_NAMED = 5;

/** "a, b, c and 4 more": at most MAX_NAMED items spelled out. */
function some(items: string[]): string {
  const shown = items.slice(0, MAX_NAMED).join(', ');
  return items.length > MAX_NAMED ? `${shown} and ${items.length - MAX_NAMED} more` : shown;
}

/** Set-like comparison of keyed entries: what was added, removed, or changed (by `show`). */
function keyedChanges<T>(before: T[], after: T[], key: (t: T) => string, show: (t: T) => string): string[] {
  const was = new Map(before.map((t) => [key(t), t]));
  const now = new Map(after.map((t) => [key(t), t]));
  const added = [...now.keys()].filter((k) => !was.has(k));
  const removed = [...was.keys()].filter((k) => !now.has(k));
  const changed = [...now.keys()].filter((k) => was.has(k) && show(was.get(k)!) !== show(now.get(k)!));
  const out: string[] = [];
  if (added.length) out.push(`added ${some(added.map((k) => show(now.get(k)!)))}`);
  if (removed.length) out.push(`removed ${some(removed.map((k) => show(was.get(k)!)))}`);
  if (changed.length) out.push(`changed ${some(changed.map((k) => `${show(was.get(k)!)} -> ${show(now.get(k)!)}`))}`);
  return out;
}

/**
 * Compares two parts. Both unreachable: equal (reported by unverifiedParts). Readable once only:
 * a difference, since nothing can be shown about the other time.
 */
function compareParts<T>(part: string, before: FingerprintPart<T> | undefined, after: FingerprintPart<T> | undefined, diff: (a: T, b: T) => string[], out: FingerprintDifference[]): void {
  if (!before || !after) {
    out.push({ part, change: before ? 'missing from the second fingerprint' : 'missing from the first fingerprint' });
    return;
  }
  if (!before.reachable && !after.reachable) return;
  if (!before.reachable) {
    out.push({ part, change: `could not be read before (${before.detail}), so it cannot be shown untouched` });
    return;
  }
  if (!after.reachable) {
    out.push({ part, change: `could not be read after (${after.detail}), so it cannot be shown untouched` });
    return;
  }
  for (const change of diff(before.value, after.value)) out.push({ part, change });
}

const recordSetText = (r: FingerprintRecordSet) => `${r.type} ${r.name} ttl ${r.ttl ?? '-'} [${[...r.values].sort().join(', ')}]`;

function diffDatabase(a: DatabaseFingerprint, b: DatabaseFingerprint): string[] {
  const out: string[] = [];
  if (a.systemIdentifier !== b.systemIdentifier) out.push(`system identifier ${a.systemIdentifier} -> ${b.systemIdentifier} (a different cluster answers)`);
  if (a.timeline !== b.timeline) out.push(`timeline ${a.timeline} -> ${b.timeline} (it was promoted or restored)`);
  const before = new Map(a.tables.map((t) => [t.table, t]));
  const after = new Map(b.tables.map((t) => [t.table, t]));
  for (const [table, t] of before) {
    const now = after.get(table);
    if (!now) out.push(`table ${table} missing from the second fingerprint`);
    else if (now.rows !== t.rows) out.push(`table ${table}: ${t.rows} rows -> ${now.rows} rows`);
    else if (now.checksum !== t.checksum) out.push(`table ${table}: same ${t.rows} rows, contents changed (checksum ${t.checksum} -> ${now.checksum})`);
  }
  for (const table of after.keys()) if (!before.has(table)) out.push(`table ${table} missing from the first fingerprint`);
  return out;
}

function diffListing(a: BucketListing, b: BucketListing): string[] {
  if (a.digest === b.digest && a.count === b.count) return [];
  if (a.objects && b.objects) {
    const changes = keyedChanges(
      a.objects,
      b.objects,
      (o) => `${o.key}\n${o.versionId}`,
      (o) => `${o.key} (version ${o.versionId || 'null'}, ETag ${o.etag})`,
    );
    if (changes.length) return changes.map((c) => `object versions ${c}`);
  }
  return [`object listing changed: ${a.count} -> ${b.count} object versions (digest ${a.digest.slice(0, 12)} -> ${b.digest.slice(0, 12)})`];
}

/**
 * Every way production differs between `before` and `after`, each naming its part ("DNS
 * db.app.lifeboat.test. (router local-dns)", "database app", "pgBackRest repo2 (dr) of app",
 * "bucket app-files source primary/app-files"). Empty means untouched, as far as both readings
 * could see: check unverifiedParts for what neither could read.
 */
export function compareFingerprints(before: ProductionFingerprint, after: ProductionFingerprint): FingerprintDifference[] {
  const out: FingerprintDifference[] = [];
  const namePart = (n: { router: string; name: string }) => `DNS ${n.name} (router ${n.router})`;
  for (const n of before.names) {
    const other = after.names.find((m) => m.router === n.router && m.name === n.name);
    compareParts(namePart(n), n.records, other?.records, (a, b) => keyedChanges(a, b, (r) => `${r.type} ${r.name.toLowerCase()}`, recordSetText).map((c) => `record sets ${c}`), out);
  }
  for (const m of after.names) if (!before.names.some((n) => n.router === m.router && n.name === m.name)) compareParts(namePart(m), undefined, m.records, () => [], out);

  for (const d of before.databases) {
    const other = after.databases.find((e) => e.target === d.target);
    compareParts(`database ${d.target}`, d.database, other?.database, diffDatabase, out);
    for (const repo of d.repositories) {
      const otherRepo = other?.repositories.find((r) => r.repo === repo.repo);
      compareParts(
        `pgBackRest repo${repo.repo} (${repo.region}) of ${d.target}`,
        repo.backups,
        otherRepo?.backups,
        (a, b) => keyedChanges(a, b, (x) => x.label, (x) => `${x.label} (stopped ${new Date(x.stop * 1000).toISOString()})`).map((c) => `backups ${c}`),
        out,
      );
    }
  }
  for (const e of after.databases) if (!before.databases.some((d) => d.target === e.target)) compareParts(`database ${e.target}`, undefined, e.database, () => [], out);

  const bucketPart = (b: { target: string; side: string; store: string; bucket: string }) => `bucket ${b.target} ${b.side} ${b.store}/${b.bucket}`;
  for (const b of before.buckets) {
    const other = after.buckets.find((c) => c.target === b.target && c.side === b.side);
    compareParts(bucketPart(b), b.listing, other?.listing, diffListing, out);
  }
  for (const c of after.buckets) if (!before.buckets.some((b) => b.target === c.target && b.side === c.side)) compareParts(bucketPart(c), undefined, c.listing, () => [], out);
  return out;
}

/** The parts neither fingerprint could read (counted as equal by compareFingerprints), each with why. */
export function unverifiedParts(before: ProductionFingerprint, after: ProductionFingerprint): string[] {
  const out: string[] = [];
  const both = <T>(part: string, a: FingerprintPart<T> | undefined, b: FingerprintPart<T> | undefined) => {
    if (a && b && !a.reachable && !b.reachable) out.push(`${part} was unreachable both times (${b.detail}): equal by assumption, not proven untouched`);
  };
  for (const n of before.names) both(`DNS ${n.name} (router ${n.router})`, n.records, after.names.find((m) => m.router === n.router && m.name === n.name)?.records);
  for (const d of before.databases) {
    const other = after.databases.find((e) => e.target === d.target);
    both(`database ${d.target}`, d.database, other?.database);
    for (const r of d.repositories) both(`pgBackRest repo${r.repo} (${r.region}) of ${d.target}`, r.backups, other?.repositories.find((x) => x.repo === r.repo)?.backups);
  }
  for (const b of before.buckets) both(`bucket ${b.target} ${b.side} ${b.store}/${b.bucket}`, b.listing, after.buckets.find((c) => c.target === b.target && c.side === b.side)?.listing);
  return out;
}
