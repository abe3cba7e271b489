/**
 * Where a pgBackRest repository's objects live, read from pgBackRest's own configuration file
 * (and its PGBACKREST_* environment overrides): bucket, endpoint, key prefix, credentials, cipher.
 * The repository copy (repository-copy.ts) reads one repository and writes the other with the S3
 * SDK, so it needs exactly what pgBackRest itself uses; reading it from pgBackRest's config keeps
 * one source of truth instead of a second copy of the keys in lifeboat's config.
 */
import fs from 'node:fs';
import { LifeboatError } from '../../domain/errors';
import { run } from '../../platform/processes';
import type { ObjectStoreSettings } from '../s3';

export interface RepoStorage {
  repo: number;
  /** pgBackRest's repoN-type (only `s3` can be copied by lifeboat). */
  type: string;
  bucket: string;
  /** Key prefix of the repository in the bucket, without a leading slash, ending in `/` (`pgbackrest/`). */
  prefix: string;
  /** repoN-cipher-type: `none` or `aes-256-cbc`. */
  cipherType: string;
  s3: ObjectStoreSettings;
  /** Trust the endpoint's certificate without checking it (repoN-storage-verify-tls=n). */
  insecureTls: boolean;
}

/** pgBackRest's config as sections of key=value lines (later lines win, as in pgBackRest). */
export function parsePgBackRestConfig(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = sections.get(section[1]) ?? new Map<string, string>();
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current && eq > 0) current.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return sections;
}

/** The option as pgBackRest resolves it for this stanza: environment, then [stanza], then [global]. */
function optionOf(sections: Map<string, Map<string, string>>, stanza: string, env: NodeJS.ProcessEnv, key: string): string | undefined {
  const fromEnv = env[`PGBACKREST_${key.toUpperCase().replace(/-/g, '_')}`];
  return fromEnv ?? sections.get(stanza)?.get(key) ?? sections.get('global')?.get(key);
}

/** Reads the config file, as the database's OS user when the worker may not read it itself (it holds keys: mode 600). */
export async function readPgBackRestConfig(configPath: string, osUser: string | undefined): Promise<string> {
  try {
    return fs.readFileSync(configPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES' || !osUser) throw err;
    return (await run('cat', [configPath], { asUser: osUser })).stdout;
  }
}

/** One repository's storage from the config text; refuses what lifeboat cannot copy, saying what to do instead. */
export function repoStorageFrom(text: string, stanza: string, repo: number, env: NodeJS.ProcessEnv = process.env): RepoStorage {
  const sections = parsePgBackRestConfig(text);
  const opt = (name: string) => optionOf(sections, stanza, env, `repo${repo}-${name}`);
  const type = opt('type') ?? 'posix';
  const instead = 'set `drCopy: second-backup` on the target to take the DR copy as a second backup instead';
  if (type !== 's3') {
    throw new LifeboatError(`pgBackRest repo${repo} is of type ${type}, and lifeboat copies only S3 repositories from one region to the other; ${instead}.`, 'DR_COPY_UNSUPPORTED');
  }
  const bucket = opt('s3-bucket');
  const endpoint = opt('s3-endpoint');
  const region = opt('s3-region');
  if (!bucket || !endpoint || !region) {
    throw new LifeboatError(`pgBackRest's config gives repo${repo} no s3-bucket, s3-endpoint or s3-region, so lifeboat cannot reach it to copy the backup; complete repo${repo} in the pgBackRest config.`, 'DR_COPY_UNSUPPORTED');
  }
  const host = opt('storage-host') ?? endpoint;
  const port = Number(opt('storage-port') ?? 443);
  const keyType = opt('s3-key-type') ?? 'shared';
  const key = opt('s3-key');
  const secret = opt('s3-key-secret');
  if (keyType === 'shared' && (!key || !secret)) {
    throw new LifeboatError(`pgBackRest's config gives repo${repo} no s3-key and s3-key-secret; lifeboat reads the repository with the same keys pgBackRest uses, so set them (or s3-key-type=auto).`, 'DR_COPY_UNSUPPORTED');
  }
  const uriStyle = opt('s3-uri-style') ?? 'host';
  const repoPath = (opt('path') ?? '/var/lib/pgbackrest').replace(/^\/+|\/+$/g, '');
  const s3: ObjectStoreSettings = {
    region,
    // Path style is what the SDK does with an explicit endpoint; a host-style AWS endpoint is AWS itself.
    endpoint: uriStyle === 'path' || !/amazonaws\.com$/.test(endpoint) ? `https://${host}:${port}` : undefined,
    ...(keyType === 'shared' ? { accessKeyId: key, secretAccessKey: secret } : {}),
    ...(opt('storage-ca-file') ? { caFile: opt('storage-ca-file') } : {}),
  };
  return {
    repo,
    type,
    bucket,
    prefix: repoPath ? `${repoPath}/` : '',
    cipherType: opt('cipher-type') ?? 'none',
    s3,
    insecureTls: ['n', 'no', 'false'].includes((opt('storage-verify-tls') ?? 'y').toLowerCase()),
  };
}
