/**
 * What a PgBackRestEngine is configured with: the protected source, the timings, the options a
 * caller gives, and the setup every part of the engine reads (the options with their defaults
 * applied and checked). The checks that refuse a dangerous configuration before anything runs
 * (one repository for both regions, restores overlapping the source, an empty port range) live here.
 */
import path from 'node:path';
import { LifeboatError } from '../../domain/errors';
import { currentUser } from '../../platform/processes';
import type { PgBackRestCli } from './cli';
import { within } from './files';
import type { PgTls } from '../pg-tls';

/** The protected source cluster. */
export interface PgBackRestSource {
  /** Engine-scoped id of the source (the target name); describeInstance/deleteInstance recognize it. */
  instanceId: string;
  host: string;
  port: number;
  database: string;
  user: string;
  /** The password, or how to read it at each connection (a rotated password needs no restart). */
  password?: string | (() => string);
  /** TLS to the source, and to clusters restored from it (they serve the certificate their backup holds). */
  tls?: PgTls;
  /** The cluster's data directory (pgBackRest's pg1-path): restores never write here. */
  dataDir: string;
  socketDir?: string;
}

/** Durations, all injectable so tests and slow hosts can tune them. */
export interface PgBackRestTimings {
  /** How long a fresh backup or restore process is watched for an immediate failure (busy lock, bad option). */
  startWatchMs: number;
  pollMs: number;
  /** pg_ctl stop timeout for each of the fast and immediate modes, in seconds. */
  stopTimeoutSec: number;
  connectTimeoutMs: number;
  /** Timeout of short pgBackRest commands (info, repo-ls, verify, expire), in ms. */
  commandTimeoutMs: number;
  /** How long a setting change (reload) or a first archived segment may take to show, in ms. */
  settleTimeoutMs: number;
}

export const DEFAULT_TIMINGS: PgBackRestTimings = {
  startWatchMs: 10000,
  pollMs: 200,
  stopTimeoutSec: 30,
  connectTimeoutMs: 5000,
  commandTimeoutMs: 30 * 60 * 1000,
  settleTimeoutMs: 60000,
};

export interface PgBackRestEngineOptions {
  cli: PgBackRestCli;
  source: PgBackRestSource;
  /** Where restored clusters live (`<restoresDir>/<name>`); owned by the OS user. */
  restoresDir: string;
  /** Pid and log files of detached backups. */
  runDir: string;
  /** OS user that owns the clusters (default: the CLI's user, else the current user). */
  osUser?: string;
  /** PostgreSQL's bin directory, or a function naming a program in it. */
  pgBin: string | ((program: string) => string);
  /** Address restored clusters listen on (default: the source's host; 127.0.0.1 when that is a socket directory). */
  host?: string;
  /** Ports restored clusters may take (inclusive). */
  portRange?: { from: number; to: number };
  /** Ports restore drills' clusters take (inclusive), apart from the restores' so a drill never takes a restore's place. */
  drillPortRange?: { from: number; to: number };
  primaryRepo?: number;
  drRepo?: number;
  /**
   * How the DR copy is made: `second-backup` (a second backup of the source into drRepo: reads the
   * source again) or `repository-copy` (the set's objects and WAL copied from primaryRepo's bucket
   * to drRepo's: the source is read once). Default repository-copy.
   */
  drCopy?: DrCopyMode;
  /** Extra server settings for restored clusters (for example shared_buffers). */
  restoreSettings?: Record<string, string | number | boolean>;
  /** How many of the newest archived WAL segments are scanned for the last commit (default 4). */
  walScanSegments?: number;
  timings?: Partial<PgBackRestTimings>;
}

export type Region = 'primary' | 'dr';

export type DrCopyMode = 'repository-copy' | 'second-backup';

/** The engine's options with every default applied; each part of the engine takes the fields it needs. */
export type PgBackRestSetup = Required<Omit<PgBackRestEngineOptions, 'pgBin' | 'timings'>> & {
  pgBin: (program: string) => string;
  timings: PgBackRestTimings;
};

/** Applies the defaults and refuses a configuration under which a restore could harm the source. */
export function resolveSetup(options: PgBackRestEngineOptions): PgBackRestSetup {
  const bin = options.pgBin;
  // Restored clusters listen on TCP: a source reached through its socket directory gives loopback.
  const host = options.host ?? options.source.host;
  const setup: PgBackRestSetup = {
    cli: options.cli,
    source: options.source,
    restoresDir: path.resolve(options.restoresDir),
    runDir: path.resolve(options.runDir),
    osUser: options.osUser ?? options.cli.options.osUser ?? currentUser(),
    pgBin: typeof bin === 'function' ? bin : (program: string) => path.join(bin, program),
    host: host.startsWith('/') ? '127.0.0.1' : host,
    portRange: options.portRange ?? { from: 55440, to: 55499 },
    drillPortRange: options.drillPortRange ?? { from: 55500, to: 55539 },
    primaryRepo: options.primaryRepo ?? 1,
    drRepo: options.drRepo ?? 2,
    drCopy: options.drCopy ?? 'repository-copy',
    restoreSettings: options.restoreSettings ?? {},
    walScanSegments: options.walScanSegments ?? 4,
    timings: { ...DEFAULT_TIMINGS, ...options.timings },
  };
  if (setup.primaryRepo === setup.drRepo) {
    throw new LifeboatError(`The pgBackRest target ${setup.source.instanceId} uses repo${setup.primaryRepo} for both regions; give the DR region its own repository (drRepo) in the lifeboat config.`, 'INVALID_CONFIG');
  }
  const sourceDir = path.resolve(setup.source.dataDir);
  if (within(setup.restoresDir, sourceDir) || within(sourceDir, setup.restoresDir)) {
    throw new LifeboatError(`The restores directory ${setup.restoresDir} overlaps the source data directory ${sourceDir}; restores must never write into the source, so choose a separate restores directory.`, 'INVALID_CONFIG');
  }
  for (const [range, what] of [[setup.portRange, 'restored clusters'], [setup.drillPortRange, "restore drills' clusters"]] as const) {
    if (range.from > range.to) throw new LifeboatError(`The port range ${range.from}-${range.to} for ${what} is empty; give a range whose start is not above its end.`, 'INVALID_CONFIG');
  }
  return setup;
}
