/** A small, strict argument parser: unknown flags are errors, not silently ignored. */
export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean>;
}

export class UsageError extends Error {}

export function parseArgs(argv: string[], spec: { booleans?: string[]; strings?: string[] }): ParsedArgs {
  const booleans = new Set(spec.booleans ?? []);
  const strings = new Set(spec.strings ?? []);
  const positionals: string[] = [];
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (booleans.has(name)) flags[name] = true;
    else if (strings.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`--${name} needs a value.`);
      flags[name] = value;
    } else {
      const known = [...booleans, ...strings].map((f) => `--${f}`).join(', ');
      throw new UsageError(`unknown option --${name}${known ? `: this command takes ${known}` : ': this command takes no options'}.`);
    }
  }
  return { positionals, flags };
}
