/**
 * `lifeboat completion bash`: a bash completion script written from the command tree, so it
 * offers exactly the commands, subcommands and options the CLI accepts, and never drifts from them.
 */
import type { Command } from 'commander';

function commandsUnder(command: Command, path: string[] = []): Array<{ path: string[]; command: Command }> {
  return [{ path, command }, ...command.commands.flatMap((c) => commandsUnder(c, [...path, c.name()]))];
}

/** Bash reads `source <(lifeboat completion bash)`; zsh after `autoload -U bashcompinit && bashcompinit`. */
export function completionScript(program: Command): string {
  const all = commandsUnder(program);
  // Each command path ("", "stack", "stack up") and the words that may follow it.
  const cases = all.map(({ path, command }) => {
    const words = [...command.commands.map((c) => c.name()), ...command.options.map((o) => o.long!).filter(Boolean), '--help'];
    return `    "${path.join(' ')}") words="${words.join(' ')}" ;;`;
  });
  const known = all.filter(({ path }) => path.length).map(({ path }) => `"${path.join(' ')}"`);
  return `# bash completion for lifeboat: source <(lifeboat completion bash)
_lifeboat() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path="" word next i words=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    next=\${path:+$path }$word
    case "$next" in
      ${known.join('|')}) path=$next ;;
    esac
  done
  case "$path" in
${cases.join('\n')}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _lifeboat lifeboat
`;
}
