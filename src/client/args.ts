/**
 * lifeboat's rules for what may be typed, applied to the commands and options commander declares
 * (program.ts), before commander parses and anything connects: an unknown option, one that
 * belongs to another command, one given twice, a switch given a value other than true or false,
 * a single-dash option, a missing or extra argument, each refused with one sentence. Commander
 * alone would let a repeated option win silently, cannot read `--json=false`, and words its
 * errors its own way; this check runs first so it never gets to.
 */
import type { Argument, Command, Option } from 'commander';

export class UsageError extends Error {}

export type CommandLine =
  /** Show this command's help. */
  | { help: Command }
  /** Run `command`: `argv` is the checked command line in a form commander parses unambiguously. */
  | { command: Command; argv: string[] };

/** `lifeboat schedules apply`: the command as a person types it. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The options a command declares, in declared order (--help is not among them). */
function declared(command: Command): readonly Option[] {
  return command.options.filter((o) => o.long && !o.hidden);
}

function optionOf(command: Command, name: string): Option | undefined {
  return declared(command).find((o) => o.long === `--${name}`);
}

/** "--config, --json", or "no options". */
function optionList(command: Command): string {
  const names = declared(command).map((o) => o.long!);
  return names.length ? names.join(', ') : 'no options';
}

/** "up, down or status". */
function alternatives(names: string[]): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

function everyCommand(root: Command): Command[] {
  return [root, ...root.commands.flatMap(everyCommand)];
}

function root(command: Command): Command {
  let c = command;
  while (c.parent) c = c.parent;
  return c;
}

/** Why `--name` is refused on `command`: it belongs to a sibling, to another command, or to none. */
function notTaken(command: Command, name: string): UsageError {
  const where = `\`${commandPath(command)}\``;
  const parent = command.parent;
  const siblings = parent?.parent ? parent.commands.filter((c) => c !== command && optionOf(c, name)) : [];
  if (siblings.length) return new UsageError(`--${name} applies to ${siblings.map((c) => `\`${commandPath(c)}\``).join(' and ')}, not ${command.name()}.`);
  if (everyCommand(root(command)).some((c) => optionOf(c, name))) return new UsageError(`--${name} does not apply to ${where}: it takes ${optionList(command)}.`);
  return new UsageError(`unknown option --${name}: ${where} takes ${optionList(command)}.`);
}

/** Whether `--name` takes a value on any command under `parent` (to tell an option's value from a subcommand's name). */
function takesValueUnder(parent: Command, name: string): boolean {
  return everyCommand(parent).some((c) => {
    const option = optionOf(c, name);
    return option !== undefined && !option.isBoolean();
  });
}

function describeArgument(argument: Argument): string {
  return `<${argument.name()}>`;
}

/**
 * Checks what was typed against the command tree under `program`. Returns the help to show, or
 * the command to run with a normalised command line: the command's path, then each option once
 * (`--name` for a switch set to true, nothing for one set to false, `--name=value` otherwise),
 * then the arguments.
 */
export function checkCommandLine(program: Command, argv: readonly string[]): CommandLine {
  const wantsHelp = argv.includes('--help');
  const first = argv[0];
  if (first === undefined || first === '--help') return { help: program };
  const named = program.commands.find((c) => c.name() === first);
  if (!named) throw new UsageError(`unknown command "${first}": run \`lifeboat help\` for the list.`);
  let command: Command = named;
  const path = [first];
  let rest = argv.slice(1);
  // A command with subcommands: the first word that is neither an option nor an option's value names one.
  while (command.commands.length) {
    let at = -1;
    for (let i = 0; i < rest.length; i++) {
      const arg = rest[i];
      if (arg.startsWith('--')) {
        if (!arg.includes('=') && takesValueUnder(command, arg.slice(2))) i++;
      } else if (!arg.startsWith('-') || arg === '-') {
        at = i;
        break;
      }
    }
    const sub: Command | undefined = at < 0 ? undefined : command.commands.find((c) => c.name() === rest[at]);
    if (!sub) {
      if (wantsHelp) return { help: command };
      const names = command.commands.map((c) => c.name());
      throw new UsageError(`\`${commandPath(command)}\` takes ${alternatives(names)}${at >= 0 ? `, not "${rest[at]}"` : ''}.`);
    }
    path.push(sub.name());
    rest = [...rest.slice(0, at), ...rest.slice(at + 1)];
    command = sub;
  }
  if (wantsHelp) return { help: command };

  const where = `\`${commandPath(command)}\``;
  const expected = command.registeredArguments;
  const variadic = expected.at(-1)?.variadic ?? false;
  const seen = new Set<string>();
  const options: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (!arg.startsWith('-') || arg === '-') {
      if (!variadic && positionals.length >= expected.length) {
        const takes = expected.length === 0 ? 'no arguments besides options' : expected.length === 1 ? `one argument ("${positionals[0]}")` : `${expected.length} arguments`;
        throw new UsageError(`${where} takes ${takes}, not also "${arg}": quote a value that has spaces.`);
      }
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`"${arg}" is not an option lifeboat knows: options start with two dashes (${optionList(command)}).`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (seen.has(name)) throw new UsageError(`--${name} was given twice: give it once.`);
    const option = optionOf(command, name);
    if (!option) throw notTaken(command, name);
    seen.add(name);
    if (option.isBoolean()) {
      if (inline === undefined || inline === 'true') options.push(`--${name}`);
      else if (inline !== 'false') throw new UsageError(`--${name} is a switch: give it alone, or as --${name}=true or --${name}=false, not --${name}=${inline}.`);
    } else {
      const value = inline ?? rest[++i];
      if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`--${name} needs a value: --${name} <value>.`);
      options.push(`--${name}=${value}`);
    }
  }
  const missing = expected.filter((a) => a.required).slice(positionals.length);
  if (missing.length) throw new UsageError(`${where} needs ${missing.map(describeArgument).join(' and ')}: see \`${commandPath(command)} --help\`.`);
  return { command, argv: [...path, ...options, ...positionals] };
}

export function checkLength(option: string, value: string | undefined, max: number, hint: string): void {
  if (value !== undefined && value.length > max) throw new UsageError(`${option} is ${value.length} characters long, over the ${max} lifeboat keeps on record: ${hint}.`);
}
