/**
 * A small, strict argument parser. Each command declares the options it takes (COMMAND_OPTIONS);
 * anything else is refused with one sentence before the command does anything: an unknown
 * option, one that belongs to another command, one given twice, a boolean given a value other
 * than true or false, or more positional arguments than the command uses.
 */
export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean>;
}

export class UsageError extends Error {}

export interface CommandOptions {
  /** How the command is named in messages, e.g. `lifeboat restore`. */
  name: string;
  booleans?: readonly string[];
  strings?: readonly string[];
  /** Positional arguments the command uses at most (subcommand included); more are refused. */
  positionals: number;
}

/** Every command and the options it takes: `lifeboat help` describes the same. */
export const COMMAND_OPTIONS = {
  stack: { name: 'lifeboat stack', booleans: ['json'], positionals: 1 },
  worker: { name: 'lifeboat worker', booleans: ['json'], positionals: 1 },
  preflight: { name: 'lifeboat preflight', booleans: ['json'], strings: ['config', 'target', 'id'], positionals: 0 },
  restore: {
    name: 'lifeboat restore',
    booleans: ['json', 'emergency', 'cutover', 'keep'],
    strings: ['config', 'to', 'reason', 'as', 'destination', 'from-region', 'incident', 'id'],
    positionals: 1,
  },
  approve: { name: 'lifeboat approve', booleans: ['json'], strings: ['config', 'gate', 'reason', 'as'], positionals: 1 },
  reject: { name: 'lifeboat reject', booleans: ['json'], strings: ['config', 'gate', 'reason', 'as'], positionals: 1 },
  status: { name: 'lifeboat status', booleans: ['json'], strings: ['config'], positionals: 1 },
  watch: { name: 'lifeboat watch', booleans: ['json'], strings: ['config'], positionals: 1 },
  list: { name: 'lifeboat list', booleans: ['json', 'awaiting-approval', 'running'], strings: ['config'], positionals: 0 },
  backup: { name: 'lifeboat backup', booleans: ['json', 'logical'], strings: ['config', 'kind', 'id', 'as'], positionals: 1 },
  backups: { name: 'lifeboat backups', booleans: ['json'], strings: ['config', 'target'], positionals: 1 },
  retention: { name: 'lifeboat retention', booleans: ['json', 'dry-run'], strings: ['config', 'target'], positionals: 0 },
  schedules: { name: 'lifeboat schedules', booleans: ['json', 'dry-run', 'prune'], strings: ['config', 'prefix'], positionals: 1 },
  help: { name: 'lifeboat help', positionals: 0 },
} satisfies Record<string, CommandOptions>;

const ALL_OPTIONS = new Set(Object.values(COMMAND_OPTIONS as Record<string, CommandOptions>).flatMap((c) => [...(c.booleans ?? []), ...(c.strings ?? [])]));

function takes(spec: CommandOptions): string {
  const names = [...(spec.strings ?? []), ...(spec.booleans ?? [])].map((f) => `--${f}`);
  return names.length ? `it takes ${names.join(', ')}` : 'it takes no options';
}

export function parseArgs(argv: string[], spec: CommandOptions): ParsedArgs {
  const booleans = new Set(spec.booleans ?? []);
  const strings = new Set(spec.strings ?? []);
  const positionals: string[] = [];
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-') || arg === '-') {
      if (positionals.length >= spec.positionals) {
        const expected = spec.positionals === 0 ? 'no arguments besides options' : spec.positionals === 1 ? `one argument ("${positionals[0]}")` : `${spec.positionals} arguments`;
        throw new UsageError(`\`${spec.name}\` takes ${expected}, not also "${arg}": quote a value that has spaces.`);
      }
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`"${arg}" is not an option lifeboat knows: options start with two dashes (${takes(spec).replace('it takes ', '')}).`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (name in flags) throw new UsageError(`--${name} was given twice: give it once.`);
    if (booleans.has(name)) {
      if (inline === undefined || inline === 'true') flags[name] = true;
      else if (inline === 'false') flags[name] = false;
      else throw new UsageError(`--${name} is a switch: give it alone, or as --${name}=true or --${name}=false, not --${name}=${inline}.`);
    } else if (strings.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`--${name} needs a value: --${name} <value>.`);
      flags[name] = value;
    } else if (ALL_OPTIONS.has(name)) {
      throw new UsageError(`--${name} does not apply to \`${spec.name}\`: ${takes(spec)}.`);
    } else {
      throw new UsageError(`unknown option --${name}: \`${spec.name}\` ${takes(spec).replace('it ', '')}.`);
    }
  }
  return { positionals, flags };
}

export function checkLength(option: string, value: string | undefined, max: number, hint: string): void {
  if (value !== undefined && value.length > max) throw new UsageError(`${option} is ${value.length} characters long, over the ${max} lifeboat keeps on record: ${hint}.`);
}
