/**
 * What backups take in the object stores: every object version (current and noncurrent, which
 * both cost) under a prefix, summed per S3 storage class. Where each target's backups live is read
 * from the config, and for pgBackRest from its own config file (repoN-s3-bucket, repoN-path).
 */
import fs from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { LifeboatConfig } from '../config';
import { objectVersionPages } from './aws-pagination';

export interface BytesByClass {
  /** Bytes per storage class (S3 omits the class for STANDARD in some answers: counted as STANDARD). */
  bytes: Record<string, number>;
  versions: number;
}

/** Sums the sizes of every object version under the prefix, per storage class. */
export async function bytesUnderPrefix(s3: S3Client, bucket: string, prefix: string): Promise<BytesByClass> {
  const bytes: Record<string, number> = {};
  let versions = 0;
  for await (const page of objectVersionPages(s3, { Bucket: bucket, ...(prefix ? { Prefix: prefix } : {}) })) {
    for (const v of page.Versions ?? []) {
      const cls = v.StorageClass ?? 'STANDARD';
      bytes[cls] = (bytes[cls] ?? 0) + (v.Size ?? 0);
      versions += 1;
    }
  }
  return { bytes, versions };
}

export type StorageRegion = 'primary' | 'dr';

/** One place a target's backups are kept. */
export interface StorageLocation {
  target: string;
  region: StorageRegion;
  /** What is kept there: `pgbackrest` (sets and WAL), `logical`, `files`, `dynamodb-exports`, `dynamodb-on-demand` (no bucket: DynamoDB's own backup storage). */
  what: string;
  store: string;
  bucket: string;
  prefix: string;
}

/** `key=value` lines of a pgBackRest config file, section headers ignored (repo options are global or per stanza alike). */
export function parsePgBackRestConfig(text: string, stanza: string): Map<string, string> {
  const global = new Map<string, string>();
  const mine = new Map<string, string>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const into = section === 'global' ? global : section === stanza ? mine : undefined;
    into?.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return new Map([...global, ...mine]);
}

const sameHost = (a: string, b: string) => a === b || (['localhost', '127.0.0.1', '::1'].includes(a) && ['localhost', '127.0.0.1', '::1'].includes(b));

/** The object store a pgBackRest repository is in: the one with its endpoint, else (AWS) the one in its region. */
export function storeOfRepo(options: Map<string, string>, repo: number, stores: LifeboatConfig['objectStores']): string | undefined {
  const host = options.get(`repo${repo}-s3-endpoint`);
  const port = Number(options.get(`repo${repo}-storage-port`) ?? 443);
  const byEndpoint = stores.find((s) => {
    if (!s.endpoint || !host) return false;
    const url = new URL(s.endpoint);
    return sameHost(url.hostname.replace(/^\[|\]$/g, ''), host.replace(/^https?:\/\//, '')) && Number(url.port || (url.protocol === 'https:' ? 443 : 80)) === port;
  });
  if (byEndpoint) return byEndpoint.name;
  const region = options.get(`repo${repo}-s3-region`);
  return stores.find((s) => !s.endpoint && s.region === region)?.name;
}

/**
 * Every place the config says a target's backups are kept, in both regions, and the targets whose
 * places could not be told (a pgBackRest config file this process cannot read), with why.
 */
export function storageLocations(config: LifeboatConfig, readFile: (file: string) => string = (f) => fs.readFileSync(f, 'utf8')): { locations: StorageLocation[]; unknown: Array<{ target: string; why: string }> } {
  const locations: StorageLocation[] = [];
  const unknown: Array<{ target: string; why: string }> = [];
  const clean = (prefix: string | undefined) => (prefix ?? '').replace(/^\/+/, '');
  const under = (prefix: string | undefined, target: string) => {
    const base = clean(prefix).replace(/\/+$/, '');
    return `${base ? `${base}/` : ''}${target}/`;
  };
  for (const d of config.targets.databases) {
    if (d.engine === 'pgbackrest') {
      let options: Map<string, string>;
      try {
        options = parsePgBackRestConfig(readFile(d.configPath), d.stanza);
      } catch (err) {
        unknown.push({ target: d.name, why: `its pgBackRest config ${d.configPath} cannot be read here (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): run this where pgBackRest runs` });
        options = new Map();
      }
      for (const [region, repo] of [['primary', d.primaryRepo], ['dr', d.drRepo]] as const) {
        if (repo === undefined || options.size === 0) continue;
        const bucket = options.get(`repo${repo}-s3-bucket`);
        const store = storeOfRepo(options, repo, config.objectStores);
        if (!bucket || !store) {
          unknown.push({ target: d.name, why: `repo${repo} in ${d.configPath} is not an S3 repository in one of objectStores` });
          continue;
        }
        const path = clean(options.get(`repo${repo}-path`) ?? '/var/lib/pgbackrest').replace(/\/+$/, '');
        const root = path ? `${path}/` : '';
        locations.push({ target: d.name, region, what: 'pgbackrest-sets', store, bucket, prefix: `${root}backup/${d.stanza}/` });
        locations.push({ target: d.name, region, what: 'pgbackrest-wal', store, bucket, prefix: `${root}archive/${d.stanza}/` });
      }
    }
    const logical = (d as { logicalBackup?: { store: string; bucket: string; prefix?: string; dr?: { store: string; bucket: string } } }).logicalBackup;
    if (logical) {
      locations.push({ target: d.name, region: 'primary', what: 'logical', store: logical.store, bucket: logical.bucket, prefix: under(logical.prefix, d.name) });
      if (logical.dr) locations.push({ target: d.name, region: 'dr', what: 'logical', store: logical.dr.store, bucket: logical.dr.bucket, prefix: under(logical.prefix, d.name) });
    }
  }
  for (const b of config.targets.buckets) {
    const prefix = clean(b.backup.prefix);
    locations.push({ target: b.name, region: 'primary', what: 'files', store: b.backup.store, bucket: b.backup.bucket, prefix });
    if (b.drBackup) locations.push({ target: b.name, region: 'dr', what: 'files', store: b.drBackup.store, bucket: b.drBackup.bucket, prefix: clean(b.drBackup.prefix ?? b.backup.prefix) });
  }
  for (const t of config.targets.dynamodb) {
    // Exports of every backup of the table go under `<prefix>/<backup name>/`; a prefix two tables share counts for both.
    for (const [region, loc] of [['primary', t.exports.primary], ['dr', t.exports.dr]] as const) {
      const base = clean(loc.prefix).replace(/\/+$/, '');
      locations.push({ target: t.name, region, what: 'dynamodb-exports', store: loc.store, bucket: loc.bucket, prefix: base ? `${base}/` : '' });
    }
  }
  return { locations, unknown };
}

/** The storage class the on-demand backups of DynamoDB tables are shown (and priced, storage.pricePerGbMonth) under: they live in DynamoDB, not in a bucket. */
export const DYNAMODB_BACKUP_CLASS = 'DYNAMODB_BACKUP';
