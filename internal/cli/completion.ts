import { Help, type Command, type Option } from 'commander';
import { invalidInput } from '../../pkg/model/errors.js';

/**
 * `titan completion bash|zsh|fish`: a completion script generated from the
 * commander program itself (commands, subcommands, options, which options
 * take a value and of what kind), so it cannot drift from the CLI. The script
 * is static: completing never runs titan.
 */
export const COMPLETION_SHELLS = ['bash', 'zsh', 'fish'] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

/** What an option's value completes to: nothing (a flag), free text, a file, a directory, or one of some words. */
export type ValueKind = 'none' | 'any' | 'file' | 'dir' | { choices: readonly string[] };

export interface OptionSpec {
  short?: string;
  long?: string;
  value: ValueKind;
  description: string;
}

export interface CommandSpec {
  /** Command names from the program down, space-separated; '' for the program. */
  path: string;
  name: string;
  description: string;
  /** The command's own options; those of its ancestors apply too (commander reads them anywhere). */
  options: OptionSpec[];
  subcommands: CommandSpec[];
  /** Words the first argument may be (from `.choices()`, or the command names for `help`). */
  argChoices: readonly string[];
}

/**
 * The program as a tree. `valueChoices` names the values of options that
 * check them in code rather than with commander's `.choices()` (e.g. --output).
 */
export function commandTree(program: Command, valueChoices: Readonly<Record<string, readonly string[]>> = {}): CommandSpec {
  const help = new Help();
  const walk = (command: Command, path: string, parent: Command | undefined): CommandSpec => {
    const subcommands = help.visibleCommands(command);
    const implicitHelp = parent !== undefined && !parent.commands.includes(command);
    const argChoices = implicitHelp
      ? help.visibleCommands(parent).filter((c) => c !== command).map((c) => c.name())
      : (command.registeredArguments[0]?.argChoices ?? []);
    return {
      path,
      name: command.name(),
      description: oneLine(command.description()),
      options: help
        // -h/--help is the program's and so everywhere: listed once.
        .visibleOptions(command)
        .filter((o) => parent === undefined || o.long !== '--help')
        .map((o) => optionSpec(o, valueChoices)),
      subcommands: subcommands.map((c) => walk(c, path === '' ? c.name() : `${path} ${c.name()}`, command)),
      argChoices,
    };
  };
  return walk(program, '', undefined);
}

function optionSpec(option: Option, valueChoices: Readonly<Record<string, readonly string[]>>): OptionSpec {
  return {
    ...(option.short ? { short: option.short } : {}),
    ...(option.long ? { long: option.long } : {}),
    value: valueKind(option, valueChoices),
    description: oneLine(option.description),
  };
}

function valueKind(option: Option, valueChoices: Readonly<Record<string, readonly string[]>>): ValueKind {
  if (!option.required && !option.optional) return 'none';
  const choices = option.argChoices ?? (option.long !== undefined ? valueChoices[option.long] : undefined);
  if (choices !== undefined) return { choices };
  const valueName = /[<[]([^>\]]+)[>\]]/.exec(option.flags)?.[1] ?? '';
  if (/dir/.test(valueName)) return 'dir';
  if (/file|path|csv/.test(valueName)) return 'file';
  return 'any';
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Every command of the tree, the program first. */
export function allCommands(root: CommandSpec): CommandSpec[] {
  return [root, ...root.subcommands.flatMap(allCommands)];
}

/** The options usable at a command: its own, then its ancestors'. */
function optionsAt(root: CommandSpec, command: CommandSpec): OptionSpec[] {
  const ancestors = allCommands(root).filter((c) => c.path === '' || command.path.startsWith(`${c.path} `));
  return [command, ...ancestors.filter((c) => c !== command).reverse()].flatMap((c) => c.options);
}

const optionNames = (o: OptionSpec): string[] => [o.short, o.long].filter((n): n is string => n !== undefined);

/** The kind as a word the scripts match on: none, any, file, dir, or "choices a b c". */
function kindWord(kind: ValueKind): string {
  return typeof kind === 'string' ? kind : `choices ${kind.choices.join(' ')}`;
}

/** Single-quoted for sh and zsh. */
const shq = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;
/** Single-quoted for fish. */
const fishq = (text: string): string => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

export function parseCompletionShell(text: string): CompletionShell {
  const shell = text.trim().toLowerCase();
  if ((COMPLETION_SHELLS as readonly string[]).includes(shell)) return shell as CompletionShell;
  throw invalidInput('shell', `"${text}" is not a supported shell (use ${COMPLETION_SHELLS.join(', ')})`);
}

export function renderCompletion(root: CommandSpec, shell: CompletionShell): string {
  if (shell === 'bash') return renderBash(root);
  if (shell === 'zsh') return renderZsh(root);
  return renderFish(root);
}

/** `case` arms: each command's words (sh syntax, shared by bash and zsh). */
function caseArms(root: CommandSpec, variable: string, words: (c: CommandSpec) => string | undefined): string {
  const arms = allCommands(root)
    .map((c) => [c.path, words(c)] as const)
    .filter((arm): arm is readonly [string, string] => arm[1] !== undefined)
    .map(([path, value]) => `    ${shq(path)}) ${variable}=${value} ;;`);
  return [...arms, `    *) ${variable}=${variable === 'reply' ? '()' : "''"} ;;`].join('\n');
}

/** `case "$1|$2"` arms: the value kind of each command's own options that take a value or not. */
function valueArms(root: CommandSpec, variable: string): string {
  const arms: string[] = [];
  for (const command of allCommands(root)) {
    for (const option of command.options) {
      const patterns = optionNames(option).map((n) => shq(`${command.path}|${n}`));
      arms.push(`    ${patterns.join('|')}) ${variable}=${shq(kindWord(option.value))} ;;`);
    }
  }
  return [...arms, `    *) ${variable}='' ;;`].join('\n');
}

function renderBash(root: CommandSpec): string {
  return `# bash completion for titan, generated by \`titan completion bash\` from this titan's commands.
# Load it with: source <(titan completion bash)
# or save it as ~/.local/share/bash-completion/completions/titan (regenerate after upgrading titan).

_titan_subcommands() {
  case $1 in
${caseArms(root, '_titan_words', (c) => shq(c.subcommands.map((s) => s.name).join(' ')))}
  esac
}

_titan_options() {
  case $1 in
${caseArms(root, '_titan_words', (c) => shq([...new Set(optionsAt(root, c).flatMap(optionNames))].join(' ')))}
  esac
}

_titan_arguments() {
  case $1 in
${caseArms(root, '_titan_words', (c) => (c.argChoices.length > 0 ? shq(c.argChoices.join(' ')) : undefined))}
  esac
}

# The kind of value option $2 takes at command $1 (its own options, then its ancestors'):
# none, any, file, dir, "choices ...", or '' for an unknown option.
_titan_value_own() {
  case "$1|$2" in
${valueArms(root, '_titan_words')}
  esac
}

_titan_value() {
  local at=$1
  while :; do
    _titan_value_own "$at" "$2"
    [[ -n $_titan_words || -z $at ]] && return 0
    if [[ $at == *' '* ]]; then at=\${at% *}; else at=''; fi
  done
}

_titan() {
  local _titan_words cmdpath='' word opt='' i=1
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  COMPREPLY=()
  # Walk the words before the cursor: commands deepen the path, options skip their value.
  while (( i < COMP_CWORD )); do
    word=\${COMP_WORDS[i]}
    (( i++ ))
    [[ $word == -- ]] && return 0 # the job's own argv follows
    if [[ $word == -* ]]; then
      [[ $word == *=* ]] && continue
      _titan_value "$cmdpath" "$word"
      if [[ -n $_titan_words && $_titan_words != none ]]; then
        [[ \${COMP_WORDS[i]} == = ]] && (( i++ )) # --opt=value, split at = by COMP_WORDBREAKS
        (( i++ ))
      fi
      continue
    fi
    _titan_subcommands "$cmdpath"
    [[ " $_titan_words " == *" $word "* ]] && cmdpath=\${cmdpath:+$cmdpath }$word
  done

  if [[ $cur == = && $prev == -* ]]; then
    opt=$prev
    cur=''
  elif [[ $prev == = ]] && (( COMP_CWORD > 1 )) && [[ \${COMP_WORDS[COMP_CWORD-2]} == -* ]]; then
    opt=\${COMP_WORDS[COMP_CWORD-2]}
  elif [[ $prev == -* && $prev != *=* ]]; then
    opt=$prev
  fi
  if [[ -n $opt ]]; then
    _titan_value "$cmdpath" "$opt"
    case $_titan_words in
      any) return 0 ;;
      file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return 0 ;;
      dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return 0 ;;
      'choices '*) mapfile -t COMPREPLY < <(compgen -W "\${_titan_words#choices }" -- "$cur"); return 0 ;;
    esac
  fi

  if [[ $cur == -* ]]; then
    _titan_options "$cmdpath"
    mapfile -t COMPREPLY < <(compgen -W "$_titan_words" -- "$cur")
    return 0
  fi
  _titan_subcommands "$cmdpath"
  local candidates=$_titan_words
  _titan_arguments "$cmdpath"
  mapfile -t COMPREPLY < <(compgen -W "$candidates $_titan_words" -- "$cur")
  return 0
}

complete -F _titan titan
`;
}

function renderZsh(root: CommandSpec): string {
  const described = (name: string, description: string): string => shq(`${name}:${description}`);
  return `#compdef titan
# zsh completion for titan, generated by \`titan completion zsh\` from this titan's commands.
# Load it with: source <(titan completion zsh)   (after compinit)
# or save it as _titan in a directory of $fpath (regenerate after upgrading titan).

_titan_subcommands() {
  case $1 in
${caseArms(root, 'reply', (c) => `(${c.subcommands.map((s) => described(s.name, s.description)).join(' ')})`)}
  esac
}

_titan_options() {
  case $1 in
${caseArms(root, 'reply', (c) => `(${dedupe(optionsAt(root, c)).map((o) => optionNames(o).map((n) => described(n, o.description)).join(' ')).join(' ')})`)}
  esac
}

_titan_arguments() {
  case $1 in
${caseArms(root, 'reply', (c) => (c.argChoices.length > 0 ? `(${c.argChoices.map(shq).join(' ')})` : undefined))}
  esac
}

_titan_value_own() {
  case "$1|$2" in
${valueArms(root, '_titan_kind')}
  esac
}

_titan_value() {
  local at=$1
  while :; do
    _titan_value_own "$at" "$2"
    [[ -n $_titan_kind || -z $at ]] && return 0
    if [[ $at == *' '* ]]; then at=\${at% *}; else at=''; fi
  done
}

_titan() {
  local cmdpath='' word opt='' _titan_kind cur=\${words[CURRENT]}
  local -i i=2
  local -a reply names subs args choices
  while (( i < CURRENT )); do
    word=\${words[i]}
    (( i++ ))
    [[ $word == -- ]] && return 0 # the job's own argv follows
    if [[ $word == -* ]]; then
      [[ $word == *=* ]] && continue
      _titan_value "$cmdpath" "$word"
      [[ -n $_titan_kind && $_titan_kind != none ]] && (( i++ ))
      continue
    fi
    _titan_subcommands "$cmdpath"
    names=(\${reply%%:*})
    (( \${names[(Ie)$word]} )) && cmdpath=\${cmdpath:+$cmdpath }$word
  done

  if [[ $cur == -*=* ]]; then
    opt=\${cur%%=*}
    compset -P '*='
  elif (( CURRENT > 2 )) && [[ \${words[CURRENT-1]} == -* && \${words[CURRENT-1]} != *=* ]]; then
    opt=\${words[CURRENT-1]}
  fi
  if [[ -n $opt ]]; then
    _titan_value "$cmdpath" "$opt"
    case $_titan_kind in
      any) return 0 ;;
      file) _files; return ;;
      dir) _files -/; return ;;
      'choices '*) choices=(\${=_titan_kind#choices }); compadd -a choices; return ;;
    esac
  fi

  if [[ $cur == -* ]]; then
    _titan_options "$cmdpath"
    subs=("\${reply[@]}")
    _describe -t options option subs
    return
  fi
  _titan_subcommands "$cmdpath"
  subs=("\${reply[@]}")
  _titan_arguments "$cmdpath"
  args=("\${reply[@]}")
  (( \${#subs} )) && _describe -t commands command subs
  (( \${#args} )) && compadd -a args
  return 0
}

if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _titan "$@"
else
  compdef _titan titan
fi
`;
}

function dedupe(options: OptionSpec[]): OptionSpec[] {
  const seen = new Set<string>();
  return options.filter((o) => {
    const key = optionNames(o).join(' ');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function renderFish(root: CommandSpec): string {
  const all = allCommands(root);
  const subcommandArms = all
    .filter((c) => c.subcommands.length > 0)
    .map((c) => `        case ${fishq(c.path)}\n            printf '%s\\n' ${c.subcommands.map((s) => fishq(s.name)).join(' ')}`);
  const valueCases: string[] = [];
  for (const command of all) {
    for (const option of command.options) {
      const patterns = optionNames(option).map((n) => fishq(`${command.path}|${n}`));
      valueCases.push(`        case ${patterns.join(' ')}\n            echo ${fishq(kindWord(option.value))}`);
    }
  }
  const completes: string[] = [];
  for (const command of all) {
    for (const sub of command.subcommands) {
      completes.push(`complete -c titan -n ${fishq(`__titan_at ${fishq(command.path)}`)} -a ${fishq(sub.name)} -d ${fishq(sub.description)}`);
    }
    if (command.argChoices.length > 0) {
      completes.push(`complete -c titan -n ${fishq(`__titan_at ${fishq(command.path)}`)} -a ${fishq(command.argChoices.join(' '))}`);
    }
    for (const option of command.options) {
      const names = [option.short ? `-s ${option.short.slice(1)}` : '', option.long ? `-l ${option.long.slice(2)}` : ''].filter(Boolean).join(' ');
      const condition = command.path === '' ? '' : ` -n ${fishq(`__titan_under ${fishq(command.path)}`)}`;
      const value =
        option.value === 'none'
          ? ''
          : option.value === 'any'
            ? ' -x'
            : option.value === 'file' || option.value === 'dir'
              ? ' -r -F'
              : ` -x -a ${fishq(option.value.choices.join(' '))}`;
      completes.push(`complete -c titan${condition} ${names}${value} -d ${fishq(option.description)}`);
    }
  }
  return `# fish completion for titan, generated by \`titan completion fish\` from this titan's commands.
# Load it with: titan completion fish | source
# or save it as ~/.config/fish/completions/titan.fish (regenerate after upgrading titan).

function __titan_subcommands
    switch $argv[1]
${subcommandArms.join('\n')}
    end
end

function __titan_value_own
    switch "$argv[1]|$argv[2]"
${valueCases.join('\n')}
    end
end

# The kind of value an option takes at a command (its own options, then its ancestors').
function __titan_value
    set -l at $argv[1]
    while true
        set -l kind (__titan_value_own "$at" $argv[2])
        if test -n "$kind"
            echo $kind
            return
        end
        test -z "$at"; and return
        set at (string replace -r ' ?[^ ]*$' '' -- $at)
    end
end

# The command path of the words before the cursor: commands deepen it, options skip their value.
function __titan_path
    set -l words (commandline -opc)
    set -e words[1]
    set -l cmdpath ''
    set -l skip 0
    for word in $words
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $word
            case '--'
                break
            case '-*'
                if not string match -q -- '*=*' $word
                    set -l kind (__titan_value "$cmdpath" $word)
                    if test -n "$kind" -a "$kind" != none
                        set skip 1
                    end
                end
            case '*'
                if contains -- $word (__titan_subcommands "$cmdpath")
                    set cmdpath (string trim -- "$cmdpath $word")
                end
        end
    end
    echo $cmdpath
end

function __titan_at
    set -l at (__titan_path)
    test "$at" = "$argv[1]"
end

function __titan_under
    set -l at (__titan_path)
    test "$at" = "$argv[1]"; or string match -q -- "$argv[1] *" "$at"
end

complete -c titan -f
${completes.join('\n')}
`;
}
