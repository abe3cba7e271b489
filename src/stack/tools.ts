/**
 * Finds the programs the stack runs. Same rules as scripts/provision-tools.sh: a binary named
 * by its environment variable wins, then the version-keyed build cache, then PATH.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onPath, postgresBinDir, PROVISION_HINT } from '../platform/host';

interface GoTool {
  module: string;
  version: string;
  env: string;
}

// package.json is the single place the tool versions are pinned.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = require('../../../package.json') as { lifeboatTools: { temporal: GoTool; minio: GoTool } };

export function toolsDir(): string {
  return process.env.LIFEBOAT_TOOLS_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'lifeboat', 'tools');
}

function goTool(name: 'temporal' | 'minio'): string {
  const tool = pkg.lifeboatTools[name];
  const fromEnv = process.env[tool.env];
  if (fromEnv) {
    if (!fs.existsSync(fromEnv)) throw new Error(`${tool.env}=${fromEnv} does not exist: point it at a ${name} binary or unset it.`);
    return fromEnv;
  }
  const cached = path.join(toolsDir(), `${name}-${tool.version}`, name);
  if (fs.existsSync(cached)) return cached;
  const found = onPath(name);
  if (found) return found;
  throw new Error(`${name} ${tool.version} is missing: ${PROVISION_HINT}, or set ${tool.env} to an existing binary.`);
}

function osTool(binary: string, pkgName: string): string {
  const found = onPath(binary);
  if (!found) throw new Error(`${binary} is missing: ${PROVISION_HINT} (Debian package ${pkgName}).`);
  return found;
}

export interface Tools {
  temporal: string;
  minio: string;
  pgBin: (program: string) => string;
  pgbackrest: string;
  pdnsServer: string;
  sqlite3: string;
  openssl: string;
}

/** Resolves every tool up front, so a missing one is reported before anything starts. */
export function resolveTools(): Tools {
  const pgBinDir = postgresBinDir();
  return {
    temporal: goTool('temporal'),
    minio: goTool('minio'),
    pgBin: (program: string) => path.join(pgBinDir, program),
    pgbackrest: osTool('pgbackrest', 'pgbackrest'),
    pdnsServer: osTool('pdns_server', 'pdns-server'),
    sqlite3: osTool('sqlite3', 'sqlite3'),
    openssl: osTool('openssl', 'openssl'),
  };
}

/** The schema the PowerDNS sqlite backend package ships. */
export function pdnsSqliteSchema(): string {
  const candidates = ['/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql', '/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql'];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error(`the PowerDNS sqlite3 backend is missing: ${PROVISION_HINT} (Debian package pdns-backend-sqlite3).`);
  return found;
}

/** Prometheus, for `stack up --with-prometheus` only: resolved when asked for, so the stack runs without it. */
export function prometheusBinary(): string {
  return process.env.LIFEBOAT_PROMETHEUS_BIN || osTool('prometheus', 'prometheus');
}
