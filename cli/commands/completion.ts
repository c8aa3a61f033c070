import { Argument, type Command, type Help, type Option } from "commander";

/**
 * `drive completion bash|zsh|fish`: a completion script generated from the
 * commander definitions themselves (commands, options, arguments, through
 * commander's own Help, so hidden ones stay hidden), never a hand-written
 * list that drifts. A new command or flag completes once it is registered.
 */
const HELP = `
Install:
  bash   echo 'source <(drive completion bash)' >> ~/.bashrc
  zsh    echo 'source <(drive completion zsh)' >> ~/.zshrc   (after compinit)
         or: drive completion zsh > "\${fpath[1]}/_drive"
  fish   drive completion fish > ~/.config/fish/completions/drive.fish

Commands, options and fixed choices complete; arguments complete as local
file names (remote paths are not looked up).`;

export function registerCompletion(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script for bash, zsh or fish")
    .addArgument(new Argument("<shell>", "bash, zsh or fish").choices(["bash", "zsh", "fish"]))
    .addHelpText("after", HELP)
    .action((shell: "bash" | "zsh" | "fish") => {
      const tree = commandTree(program);
      const script = shell === "bash" ? bashScript(tree) : shell === "zsh" ? zshScript(tree) : fishScript(tree);
      process.stdout.write(script);
    });
}

/** What completion needs of one command, read from commander. */
export interface CommandNode {
  /** Names from the root's child down; [] for the program. */
  path: string[];
  name: string;
  description: string;
  options: OptionSpec[];
  args: ArgSpec[];
  children: CommandNode[];
}

export interface OptionSpec {
  flags: string[];
  description: string;
  takesValue: boolean;
  choices: string[] | null;
}

export interface ArgSpec {
  name: string;
  description: string;
  variadic: boolean;
  choices: string[] | null;
}

/** Walks the program's commands through commander's Help: what --help shows is what completes. */
export function commandTree(program: Command): CommandNode {
  const help = program.createHelp();
  return node(program, [], help);
}

/** The program's options that hold after any command: not its own --help and --version. */
export function globalOptions(root: CommandNode): OptionSpec[] {
  return root.options.filter((o) => !o.flags.some((f) => f === "--help" || f === "--version"));
}

function node(cmd: Command, path: string[], help: Help): CommandNode {
  return {
    path,
    name: cmd.name(),
    description: oneLine(cmd.description()),
    options: help.visibleOptions(cmd).map(optionSpec),
    args: help.visibleArguments(cmd).map((a) => ({ name: a.name(), description: oneLine(a.description), variadic: a.variadic, choices: a.argChoices ?? null })),
    children: help
      .visibleCommands(cmd)
      .filter((c) => c.name() !== "help") // commander's implicit help command takes a command name, nothing else
      .map((c) => node(c, [...path, c.name()], help)),
  };
}

function optionSpec(o: Option): OptionSpec {
  return {
    flags: [o.short, o.long].filter((f): f is string => !!f),
    description: oneLine(o.description),
    takesValue: o.required || o.optional,
    choices: o.argChoices ?? null,
  };
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function allNodes(root: CommandNode): CommandNode[] {
  return [root, ...root.children.flatMap(allNodes)];
}

// ---- bash -------------------------------------------------------------------

/** A bash word, single-quoted. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function bashScript(root: CommandNode): string {
  const nodes = allNodes(root);
  const key = (n: CommandNode) => n.path.map((p) => `/${p}`).join("");
  const global = globalOptions(root);
  const valueCases: string[] = [];
  const childCases: string[] = [];
  const wordCases: string[] = [];
  const argCases: string[] = [];
  const choiceCases: string[] = [];
  for (const n of nodes) {
    const k = key(n);
    const opts = n === root ? n.options : [...n.options, ...global];
    for (const o of opts) {
      if (!o.takesValue) continue;
      for (const f of o.flags) valueCases.push(`${shq(`${k}|${f}`)}`);
      if (o.choices) for (const f of o.flags) choiceCases.push(`    ${shq(`${k}|${f}`)}) words=${shq(o.choices.join(" "))} ;;`);
    }
    for (const c of n.children) childCases.push(shq(`${k}|${c.name}`));
    const flags = opts.flatMap((o) => o.flags);
    wordCases.push(`    ${shq(k)}) opts=${shq(flags.join(" "))}; cmds=${shq(n.children.map((c) => c.name).join(" "))} ;;`);
    n.args.forEach((a, i) => {
      if (a.choices) argCases.push(`    ${a.variadic ? `${shq(`${k}|`)}*` : shq(`${k}|${i}`)}) words=${shq(a.choices.join(" "))} ;;`);
    });
  }
  return `# drive completion for bash, generated from its command definitions.
# Use: source <(drive completion bash)
_drive_takes_value() {
  case "$1|$2" in
    ${valueCases.join("|") || "''"}) return 0 ;;
  esac
  return 1
}
_drive_is_command() {
  case "$1|$2" in
    ${childCases.join("|") || "''"}) return 0 ;;
  esac
  return 1
}
_drive() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" path="" w i skip=0 nargs=0 opts="" cmds="" words=""
  ((COMP_CWORD > 0)) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$w" in
      -*=*) continue ;;
      -*) _drive_takes_value "$path" "$w" && skip=1; continue ;;
    esac
    if _drive_is_command "$path" "$w"; then path="$path/$w"; nargs=0; else nargs=$((nargs + 1)); fi
  done
  COMPREPLY=()
  if ((skip)); then
    case "$path|$prev" in
${choiceCases.join("\n")}
    esac
    [[ -n "$words" ]] && COMPREPLY=($(compgen -W "$words" -- "$cur"))
    return 0
  fi
  case "$path" in
${wordCases.join("\n")}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ -n "$cmds" && $nargs -eq 0 ]]; then
    COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
  else
    case "$path|$nargs" in
${argCases.join("\n")}
    esac
    [[ -n "$words" ]] && COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
  # Nothing here: -o default completes file names.
  return 0
}
complete -o default -F _drive drive
`;
}

// ---- zsh --------------------------------------------------------------------

/** Text inside single quotes, for zsh. */
function zq(s: string): string {
  return s.replace(/'/g, `'\\''`);
}

/** A description in an _arguments [bracket]: brackets and backslashes escaped. */
function zdesc(s: string): string {
  return zq(s.replace(/\\/g, "\\\\").replace(/([[\]])/g, "\\$1"));
}

/** A name or a word in an _arguments spec or a _describe entry: colons escaped. */
function zspec(s: string): string {
  return zq(s.replace(/\\/g, "\\\\").replace(/:/g, "\\:"));
}

function zshFunction(n: CommandNode): string {
  return `_drive_cmd${n.path.map((p) => `__${p.replace(/[^A-Za-z0-9_]/g, "_")}`).join("")}`;
}

export function zshScript(root: CommandNode): string {
  const global = globalOptions(root);
  const fns = allNodes(root).map((n) => {
    const opts = n === root ? n.options : [...n.options, ...global];
    const specs: string[] = [];
    for (const o of opts) {
      const excl = o.flags.length > 1 ? `(${o.flags.join(" ")})` : "";
      const value = o.takesValue ? `:value:${o.choices ? `(${o.choices.map(zspec).join(" ")})` : " "}` : "";
      for (const f of o.flags) specs.push(`'${excl}${f}[${zdesc(o.description)}]${value}'`);
    }
    if (n.children.length > 0) {
      specs.push(`'1: :->command'`, `'*:: :->args'`);
      const entries = n.children.map((c) => `'${zspec(c.name)}:${zq(c.description)}'`).join(" ");
      const dispatch = n.children.map((c) => `      ${c.name}) ${zshFunction(c)} ;;`).join("\n");
      return `${zshFunction(n)}() {
  local curcontext="$curcontext" state line ret=1
  typeset -A opt_args
  _arguments -C -s ${specs.join(" \\\n    ")} && ret=0
  case $state in
    command)
      local -a commands
      commands=(${entries})
      _describe -t commands 'drive command' commands && ret=0 ;;
    args)
      case $words[1] in
${dispatch}
      esac ;;
  esac
  return ret
}`;
    }
    n.args.forEach((a, i) => {
      const action = a.choices ? `(${a.choices.map(zspec).join(" ")})` : "_files";
      specs.push(a.variadic ? `'*:${zspec(a.name)}:${action}'` : `'${i + 1}:${zspec(a.name)}:${action}'`);
    });
    return `${zshFunction(n)}() {
  _arguments -s ${specs.join(" \\\n    ")}
}`;
  });
  return `#compdef drive
# drive completion for zsh, generated from its command definitions.
# Use: source <(drive completion zsh) after compinit, or save it as _drive in a folder of $fpath.
${fns.join("\n\n")}

_drive() {
  ${zshFunction(root)} "$@"
}

if [ "$funcstack[1]" = "_drive" ]; then
  _drive "$@"
else
  compdef _drive drive
fi
`;
}

// ---- fish -------------------------------------------------------------------

function fq(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

export function fishScript(root: CommandNode): string {
  const lines = [
    "# drive completion for fish, generated from its command definitions.",
    "# Use: drive completion fish | source, or save it as ~/.config/fish/completions/drive.fish",
    "complete -c drive -f",
  ];
  const seen = (n: CommandNode) => (n.path.length === 0 ? "" : n.path.map((p) => `__fish_seen_subcommand_from ${p}`).join("; and "));
  for (const n of allNodes(root)) {
    const cond = seen(n);
    const names = n.children.map((c) => c.name);
    const here = n.path.length === 0 ? "__fish_use_subcommand" : names.length > 0 ? `${cond}; and not __fish_seen_subcommand_from ${names.join(" ")}` : cond;
    const at = (c: string) => (c ? ` -n ${fq(c)}` : "");
    for (const c of n.children) lines.push(`complete -c drive${at(here)} -a ${fq(c.name)} -d ${fq(c.description)}`);
    const global = new Set(globalOptions(root));
    for (const o of n.options) {
      const flags = o.flags.map((f) => (f.startsWith("--") ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`)).join(" ");
      const value = o.takesValue ? (o.choices ? ` -x -a ${fq(o.choices.join(" "))}` : " -r") : "";
      // The program's own options hold after any command too.
      lines.push(`complete -c drive${at(n.path.length === 0 && global.has(o) ? "" : n.path.length === 0 ? "__fish_use_subcommand" : cond)} ${flags}${value} -d ${fq(o.description)}`);
    }
    if (n.path.length > 0 && names.length === 0 && n.args.length > 0) {
      const choices = n.args.flatMap((a) => a.choices ?? []);
      lines.push(choices.length > 0 ? `complete -c drive${at(cond)} -a ${fq(choices.join(" "))}` : `complete -c drive${at(cond)} -F`);
    }
  }
  return `${lines.join("\n")}\n`;
}
