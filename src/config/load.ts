/**
 * Reading the config file: YAML (or JSON, which is YAML too) → schema → a typed, filled-in
 * LifeboatConfig, or a ConfigError that lists every problem with its path and line, before
 * anything runs. Also the small lookups everything else needs (a target by name, its
 * objectives, who may approve, where a secret lives).
 */
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { checkApprover, GateName, GatePolicy, normalizeIdentity } from '../domain/approval';
import { parseEd25519PublicKey } from './public-key';
import { markIdentifierReference } from './secrets';
import { LifeboatError } from '../domain/errors';
import { dataDir } from '../platform/host';
import { Issue, PathSegment, closest, decode, formatPath } from './fields';
import { BucketTarget, DatabaseTarget, DirectoryTarget, LifeboatConfig, SqliteTarget, configSchema } from './schema';

export interface ConfigProblem {
  /** Where in the file: `targets.databases[1].engine`, or `(YAML)` for a syntax error. */
  path: string;
  message: string;
  /** 1-based position of the value (or of the map missing a key), when known. */
  line?: number;
  column?: number;
}

/** An invalid config file, with every problem in it. */
export class ConfigError extends LifeboatError {
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
  ) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    const lines = problems.map((p) => `  - ${p.path}: ${p.message}${p.line ? ` (${source}:${p.line}:${p.column ?? 1})` : ''}`);
    const fix = problems.length === 1 ? 'it is' : 'they are';
    super(`${source} has ${count}; lifeboat will not run until ${fix} fixed:\n${lines.join('\n')}`, 'CONFIG_INVALID');
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /**
   * What `{dataDir}` in paths stands for. Default: $LIFEBOAT_DATA_DIR, else lifeboat's default
   * data directory (src/platform/host.ts; `lifeboat stack up` uses the same one).
   */
  dataDir?: string;
  /** Environment for `${NAME:-default}` interpolation (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * `${NAME}` and `${NAME:-default}` in the file are replaced from the environment before
 * parsing, as docker-compose does: one file follows a stack whose ports were moved by the same
 * variables. A variable that is unset and has no default is a problem with its line.
 */
export function interpolateConfigText(text: string, env: NodeJS.ProcessEnv = process.env): { text: string; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const lines = text.split('\n').map((lineText, index) =>
    lineText.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, name: string, fallback: string | undefined) => {
      const value = env[name];
      if (value !== undefined && value !== '') return value;
      if (fallback !== undefined) return fallback;
      problems.push({ path: '(interpolation)', message: `\${${name}} is not set and has no default: set ${name} or write \${${name}:-value}`, line: index + 1 });
      return whole;
    }),
  );
  return { text: lines.join('\n'), problems };
}

function resolveDataDir(options: LoadOptions): string {
  return path.resolve(options.dataDir ?? dataDir());
}

/** Parses and validates config text; `sourceName` names it in messages (usually the file name). */
export function parseConfig(rawText: string, sourceName = 'config', options: LoadOptions = {}): LifeboatConfig {
  const { text, problems: unset } = interpolateConfigText(rawText, options.env ?? process.env);
  if (unset.length) throw new ConfigError(sourceName, unset);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, merge: true });
  const position = (offset: number | undefined) => (offset === undefined ? {} : { line: lineCounter.linePos(offset).line, column: lineCounter.linePos(offset).col });

  if (doc.errors.length) {
    throw new ConfigError(
      sourceName,
      doc.errors.map((e) => ({ path: '(YAML)', message: `${e.message.split('\n')[0]}: fix the syntax`, ...position(e.pos[0]) })),
    );
  }
  const input: unknown = doc.toJS();
  if (input === null || input === undefined) {
    throw new ConfigError(sourceName, [{ path: '(top level)', message: 'the file is empty: start from lifeboat.config.yaml at the root of the lifeboat repository' }]);
  }

  const { value, issues } = decode(configSchema, input, { placeholders: { dataDir: resolveDataDir(options) } });
  if (issues.length || value === undefined) {
    /** The value at `path`, or the nearest enclosing one that exists (a missing key points at its map). */
    const locate = (issuePath: PathSegment[]) => {
      for (let n = issuePath.length; n >= 0; n--) {
        const node = doc.getIn(issuePath.slice(0, n), true) as { range?: [number, number, number] } | undefined;
        if (node && typeof node === 'object' && node.range) return position(node.range[0]);
      }
      return {};
    };
    const problems = issues.map((issue: Issue) => ({ path: formatPath(issue.path), message: issue.message, ...locate(issue.path) }));
    // File order reads best; problems without a position keep their place at the end.
    const ordered = problems
      .map((p, i) => ({ p, i }))
      .sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i);
    throw new ConfigError(sourceName, ordered.map(({ p }) => p));
  }
  for (const store of value.objectStores) if (store.credentials) markIdentifierReference(store.credentials.accessKeyId);
  return value;
}

/** Reads, parses and validates the config file at `file`. Throws ConfigError listing every problem. */
export function loadConfig(file: string, options: LoadOptions = {}): LifeboatConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new LifeboatError(`Cannot read the config file ${file} (${code}): create it from the repository's lifeboat.config.yaml, or give the path of an existing one.`, 'CONFIG_UNREADABLE');
  }
  return parseConfig(text, file, options);
}

// ----- lookups --------------------------------------------------------------------------------

function unknownTarget(kind: 'database' | 'bucket' | 'database or bucket' | 'directory', name: string, known: string[], otherKind: string[]): LifeboatError {
  const otherLabel = kind === 'directory' ? 'database or bucket' : kind === 'database' ? 'bucket' : 'database';
  if (otherKind.includes(name)) {
    return new LifeboatError(`"${name}" is a ${otherLabel} target, not a ${kind} target; the ${kind} targets are: ${known.join(', ') || 'none'}.`, 'UNKNOWN_TARGET');
  }
  const guess = closest(name, known);
  const hint = guess ? ` (did you mean "${guess}"?)` : '';
  const list = known.length ? `the config declares ${known.join(', ')}` : `the config declares none`;
  return new LifeboatError(`No ${kind} target is named "${name}"${hint}; ${list}.`, 'UNKNOWN_TARGET');
}

/** The database target called `name`; an unknown name throws a one-sentence error listing the known ones. */
export function findDatabaseTarget(config: LifeboatConfig, name: string): DatabaseTarget {
  const found = config.targets.databases.find((d) => d.name === name);
  if (found) return found;
  throw unknownTarget('database', name, config.targets.databases.map((d) => d.name), config.targets.buckets.map((b) => b.name));
}

/** The bucket target called `name`; an unknown name throws a one-sentence error listing the known ones. */
export function findBucketTarget(config: LifeboatConfig, name: string): BucketTarget {
  const found = config.targets.buckets.find((b) => b.name === name);
  if (found) return found;
  throw unknownTarget('bucket', name, config.targets.buckets.map((b) => b.name), config.targets.databases.map((d) => d.name));
}

/** The directory target called `name`; an unknown name throws a one-sentence error listing the known ones. */
export function findDirectoryTarget(config: LifeboatConfig, name: string): DirectoryTarget {
  const found = config.targets.directories.find((d) => d.name === name);
  if (found) return found;
  throw unknownTarget('directory', name, config.targets.directories.map((d) => d.name), [...config.targets.databases, ...config.targets.buckets].map((t) => t.name));
}

/** The SQLite target called `name`, or undefined (callers that know only SQLite refuse it in their own words). */
export function sqliteTargetNamed(config: LifeboatConfig, name: string): SqliteTarget | undefined {
  return config.targets.sqlite.find((q) => q.name === name);
}

/** The SQLite target called `name`; an unknown name throws one sentence listing the SQLite targets. */
export function findSqliteTarget(config: LifeboatConfig, name: string): SqliteTarget {
  const found = sqliteTargetNamed(config, name);
  if (found) return found;
  const known = config.targets.sqlite.map((q) => q.name);
  const other = [...config.targets.databases, ...config.targets.buckets].some((x) => x.name === name);
  throw new LifeboatError(
    other ? `"${name}" is not a SQLite target; the SQLite targets are: ${known.join(', ') || 'none'}.` : `No SQLite target is named "${name}"; the config declares ${known.join(', ') || 'none'} (see targets.sqlite).`,
    'UNKNOWN_TARGET',
  );
}

/** A database or bucket target by name; an unknown name throws the one-sentence error listing all targets. */
export function findTarget(config: LifeboatConfig, name: string): DatabaseTarget | BucketTarget {
  const found = config.targets.databases.find((d) => d.name === name) ?? config.targets.buckets.find((b) => b.name === name);
  if (found) return found;
  const all = [...config.targets.databases, ...config.targets.buckets, ...config.targets.directories, ...config.targets.sqlite].map((t) => t.name);
  const other = config.targets.sqlite.some((q) => q.name === name) ? 'a SQLite target' : config.targets.directories.some((d) => d.name === name) ? 'a directory target' : undefined;
  const databasesAndBuckets = [...config.targets.databases, ...config.targets.buckets].map((t) => t.name);
  if (other) throw new LifeboatError(`"${name}" is ${other}, which this command does not take; the database and bucket targets are: ${databasesAndBuckets.join(', ') || 'none'}.`, 'UNKNOWN_TARGET');
  throw unknownTarget('database or bucket', name, all, []);
}

/** RPO and RTO in seconds that apply to a target: its own overrides, else those of its kind (a directory's are the files objectives). */
export function objectivesFor(config: LifeboatConfig, target: DatabaseTarget | BucketTarget | DirectoryTarget | SqliteTarget): { rpo: number; rto: number } {
  // A SQLite file is a database; it has no overrides of its own.
  if (!('engine' in target) && 'path' in target && !('criticalFiles' in target)) return { ...config.objectives.database };
  const t = target as DatabaseTarget | BucketTarget | DirectoryTarget;
  const defaults = 'engine' in t ? config.objectives.database : config.objectives.files;
  return { rpo: t.rpo ?? defaults.rpo, rto: t.rto ?? defaults.rto };
}

/** Which calendar a target's drills keep, and where the config says so: its own `drill.cadence`, else its kind's drill schedule; none for DynamoDB tables (no drill schedule: monthly). */
export function drillCalendarOf(
  config: LifeboatConfig,
  target: { name: string; drill?: { cadence?: LifeboatConfig['schedules']['drill'] } },
  kind: 'database' | 'bucket' | 'directory' | 'sqlite' | 'dynamodb',
): { calendar?: LifeboatConfig['schedules']['drill']; source?: string } {
  if (target.drill?.cadence) return { calendar: target.drill.cadence, source: `${target.name}'s drill.cadence` };
  const key = ({ database: 'drill', bucket: 'bucketDrill', directory: 'directoryDrill', sqlite: 'sqliteDrill', dynamodb: undefined } as const)[kind];
  return key ? { calendar: config.schedules[key], source: `schedules.${key}` } : {};
}

export type ApprovalCheck = { ok: true } | { ok: false; reason: string };

/**
 * Whether `approver` may decide `gate` of a request `requester` made in `environment`:
 * they hold one of the gate's roles, and in production (or without selfApproval) they are not the requester.
 */
export function mayApprove(config: LifeboatConfig, request: { environment: string; gate: GateName; approver: string; requester: string }): ApprovalCheck {
  const env = config.environments[request.environment];
  if (!env) return { ok: false, reason: `environment ${request.environment} is not in the config` };
  return checkApprover(gatePolicy(config, request.environment, request.gate, request.requester), request.approver);
}

/**
 * Why `requestedBy` may not ask for a gated workflow (a restore, a failover or failback, a backup
 * deletion) in these environments, or undefined when they may: in a production tier the requester
 * must be someone in `people` (the four-eyes rule compares people, so a requester nobody knows
 * would make it hollow). Identities compare trimmed and case-insensitively.
 */
export function requesterProblem(config: LifeboatConfig, environments: string[], requestedBy: string): string | undefined {
  const production = environments.find((e) => config.environments[e]?.tier === 'production');
  if (!production) return undefined;
  const who = normalizeIdentity(requestedBy);
  if (Object.keys(config.people).some((p) => normalizeIdentity(p) === who)) return undefined;
  return `${who} is not in the config's people, and a request in the production environment ${production} must come from a known person: pass your own identity with --as (or LIFEBOAT_USER), or add yourself to people`;
}

/** The environments a failover's recovery plan touches: those of the targets its steps name. */
export function failoverEnvironments(config: LifeboatConfig): string[] {
  const environments = new Set<string>();
  for (const step of config.failover?.steps ?? []) {
    if (step.kind === 'restore-database' || step.kind === 'move-name') environments.add(findDatabaseTarget(config, step.target).environment);
    else if (step.kind === 'switch-bucket') environments.add(findBucketTarget(config, step.target).environment);
  }
  return [...environments];
}

/** The policy of one gate of one environment, as the workflow's validators apply it. */
export function gatePolicy(config: LifeboatConfig, environment: string, gate: GateName, requestedBy: string): GatePolicy {
  // Indexing the config's gates with the domain's GateName does not compile if the schema lacks one of them.
  const env = config.environments[environment];
  if (!env) throw new LifeboatError(`environment ${environment} is not in the config: declare it under environments.`, 'UNKNOWN_ENVIRONMENT');
  const allowedRoles = env.gates[gate];
  const roster = Object.fromEntries(Object.entries(config.people).filter(([, held]) => held.some((role) => allowedRoles.includes(role))));
  const approvers = new Set(Object.keys(roster).map(normalizeIdentity));
  // The keys of everyone who may decide this gate, decoded to the raw form the gate's verifier takes.
  const keys: Record<string, string> = {};
  for (const [who, text] of Object.entries(config.publicKeys ?? {})) {
    const parsed = parseEd25519PublicKey(text);
    if (parsed.ok && approvers.has(normalizeIdentity(who))) keys[normalizeIdentity(who)] = parsed.hex;
  }
  const production = env.tier === 'production';
  return {
    gate,
    environment,
    production,
    selfApproval: env.selfApproval,
    requestedBy,
    allowedRoles: [...allowedRoles],
    roster,
    signing: { unsignedDecisions: production ? 'refuse' : (env.unsignedDecisions ?? 'refuse'), keys },
    ...(requesterProblem(config, [environment], requestedBy) ? { unknownRequester: normalizeIdentity(requestedBy) } : {}),
  };
}

// Secrets are read at run time by ./secrets (re-exported here for the modules that import them from the loader).
export { resolveSecret } from './secrets';
