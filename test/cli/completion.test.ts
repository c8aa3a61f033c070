import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bashScript, commandTree, fishScript, zshScript } from "../../cli/commands/completion.js";
import { BIN } from "../support/drive-server.js";

function has(shell: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${shell}`]).status === 0;
}

/** The real binary's script for a shell. */
function script(shell: string): string {
  return execFileSync(process.execPath, [BIN, "completion", shell], { encoding: "utf8" });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "drive-completion-"));
  for (const shell of ["bash", "zsh", "fish"]) await writeFile(join(dir, `drive.${shell}`), script(shell));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What bash completes for the words, the last being the one under the cursor. */
function bashComplete(file: string, words: string[]): string[] {
  const quoted = words.map((w) => `'${w}'`).join(" ");
  const out = execFileSync("bash", ["-c", `source "$1"; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _drive; printf '%s\\n' "\${COMPREPLY[@]}"`, "bash", file], { encoding: "utf8" });
  return out.split("\n").filter(Boolean);
}

describe("drive completion", () => {
  it("bash: the script registers a completion for drive", () => {
    const out = execFileSync("bash", ["-c", `source <("${process.execPath}" "${BIN}" completion bash); complete -p drive`], { encoding: "utf8" });
    expect(out.trim()).toBe("complete -o default -F _drive drive");
  });

  it("bash: completes commands, subcommands, options, choices, and skips option values", () => {
    const f = join(dir, "drive.bash");
    expect(bashComplete(f, ["drive", "pu"])).toEqual(["push", "pull"]);
    expect(bashComplete(f, ["drive", "m"])).toEqual(["mv"]);
    expect(bashComplete(f, ["drive", "user", ""])).toEqual(["add"]);
    expect(bashComplete(f, ["drive", "completion", ""])).toEqual(["bash", "zsh", "fish"]);
    expect(bashComplete(f, ["drive", "ls", "-"])).toEqual(expect.arrayContaining(["-R", "--recursive", "-l", "-h", "--human-readable", "--json"]));
    // --server takes a value: "x" is not taken for a command.
    expect(bashComplete(f, ["drive", "--server", "x", "pu"])).toEqual(["push", "pull"]);
    // After a command, arguments are local files (the shell's default): nothing from us.
    expect(bashComplete(f, ["drive", "push", ""])).toEqual([]);
  });

  it("comes from the command definitions: a new command and flag complete with no other change", () => {
    const program = new Command("drive").option("--json", "json");
    program.command("frobnicate").description("a command no list knows").option("--wibble <n>", "takes a value").option("--wobble", "does not");
    const f = join(dir, "synthetic.bash");
    return writeFile(f, bashScript(commandTree(program))).then(() => {
      expect(bashComplete(f, ["drive", "fro"])).toEqual(["frobnicate"]);
      expect(bashComplete(f, ["drive", "frobnicate", "--w"])).toEqual(["--wibble", "--wobble"]);
      expect(bashComplete(f, ["drive", "frobnicate", "--wibble", "3", "--wo"])).toEqual(["--wobble"]);
      expect(zshScript(commandTree(program))).toContain("--wibble[takes a value]:value:");
      expect(fishScript(commandTree(program))).toContain("-l wibble -r -d 'takes a value'");
    });
  });

  it.skipIf(!has("zsh"))("zsh: the script parses, and registers _drive", () => {
    const f = join(dir, "drive.zsh");
    expect(spawnSync("zsh", ["-n", f]).status).toBe(0);
    const out = execFileSync("zsh", ["-fc", `autoload -U compinit && compinit -u -D; source "$1"; print -r -- \${_comps[drive]}; whence -w _drive_cmd__user__add`, "zsh", f], { encoding: "utf8" });
    expect(out).toContain("_drive\n");
    expect(out).toContain("_drive_cmd__user__add: function");
  });

  it.skipIf(!has("fish"))("fish: the script parses, and completes commands and choices", () => {
    const f = join(dir, "drive.fish");
    expect(spawnSync("fish", ["-n", f]).status).toBe(0);
    const complete = (line: string) =>
      execFileSync("fish", ["-c", `source $argv[1]; complete -C '${line}'`, f], { encoding: "utf8" })
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split("\t")[0]);
    expect(complete("drive pu")).toEqual(["pull", "push"]);
    expect(complete("drive user ")).toEqual(["add"]);
    expect(complete("drive completion ")).toEqual(["bash", "fish", "zsh"]);
  });

  it("escapes quotes and brackets in descriptions", () => {
    const program = new Command("drive");
    program.command("odd").description("it's [odd]: really").option("--x", "a 'quoted' [thing]: yes");
    const tree = commandTree(program);
    expect(zshScript(tree)).toContain(`'--x[a '\\''quoted'\\'' \\[thing\\]: yes]'`);
    expect(fishScript(tree)).toContain(`-d 'it\\'s [odd]: really'`);
  });
});
