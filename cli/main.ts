import { Command, CommanderError } from "commander";
import { registerChanges } from "./commands/changes.js";
import { registerLogin } from "./commands/login.js";
import { registerLs } from "./commands/ls.js";
import { registerPull } from "./commands/pull.js";
import { registerPush } from "./commands/push.js";
import { registerMv } from "./commands/mv.js";
import { registerRm } from "./commands/rm.js";
import { registerRestore } from "./commands/restore.js";
import { registerServer } from "./commands/server.js";
import { registerStat } from "./commands/stat.js";
import { registerStatus } from "./commands/status.js";
import { registerSync } from "./commands/sync.js";
import { registerUser } from "./commands/user.js";
import { registerVersions } from "./commands/versions.js";
import { registerCompletion } from "./commands/completion.js";
import type { CommandContext } from "./commands/context.js";
import { ReportedError } from "./commands/run-transfer.js";
import { CliError, exitCodes, toCliError } from "./errors.js";
import { VERSION } from "./version.js";

/** Flags and signals become a CommandContext here, once; commands never read process state. */
async function main(argv: string[]): Promise<number> {
  const aborter = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++interrupts > 1) process.exit(exitCodes.interrupted); // a second Ctrl-C: leave now
    aborter.abort(new CliError("interrupted", `interrupted by ${sig}`));
  };

  const program = new Command("drive")
    .description("self-hosted file storage for terminals and pipelines")
    .version(VERSION)
    .option("--server <url>", "server URL (env DRIVE_SERVER, else the config file)")
    .option("--token <token>", "bearer token (env DRIVE_TOKEN, else the config file)")
    .option("--json", "print JSON lines (see README: JSON output)", false)
    .option("-q, --quiet", "no progress; keep the summary and errors", false)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) });

  const context = (): CommandContext => {
    const o = program.opts<{ server?: string; token?: string; json: boolean; quiet: boolean }>();
    return {
      json: o.json,
      quiet: o.quiet,
      flags: { server: o.server, token: o.token },
      signal: aborter.signal,
      stdout: process.stdout,
      stderr: process.stderr,
      stdin: process.stdin,
    };
  };

  registerLogin(program, context);
  registerPush(program, context);
  registerPull(program, context);
  registerSync(program, context);
  registerStatus(program, context);
  registerLs(program, context);
  registerStat(program, context);
  registerRm(program, context);
  registerMv(program, context);
  registerVersions(program, context);
  registerRestore(program, context);
  registerChanges(program, context);
  registerUser(program, context);
  registerServer(program);
  registerCompletion(program);

  const isServer = argv[2] === "server";
  if (!isServer) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  // A reader that went away (`drive ls -R | head`) ends a listing quietly, as a shell writer SIGPIPE killed;
  // unheard, the stream's error event is a stack trace. pull - handles its own (it must say so under --json).
  if (!isServer && !argv.slice(2).includes("pull")) {
    process.stdout.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(exitCodes.broken_pipe);
    });
  }
  try {
    await program.parseAsync(argv);
    return exitCodes.ok;
  } catch (err) {
    if (err instanceof ReportedError) return err.exitCode;
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return exitCodes.ok; // --help and --version
      // Commander has said it on stderr; scripts reading --json get their line too. The flag may not be parsed yet.
      if (program.opts().json || argv.includes("--json")) {
        const message = err.message.replace(/^error: /, "");
        process.stdout.write(JSON.stringify({ type: "exit_error", code: "usage", message, exit_code: exitCodes.usage }) + "\n");
      }
      return exitCodes.usage;
    }
    // After Ctrl-C, whatever broke is the interruption's doing: say that.
    const e = toCliError(aborter.signal.aborted ? aborter.signal.reason : err);
    if (program.opts().json) {
      process.stdout.write(JSON.stringify({ type: "exit_error", code: e.kind, message: e.message, exit_code: e.exitCode, ...(e.reason ? { reason: e.reason } : {}) }) + "\n");
    } else {
      process.stderr.write(`drive: error: ${e.message}\n`);
    }
    if (process.env.DRIVE_DEBUG && e.cause) process.stderr.write(`${(e.cause as Error).stack ?? e.cause}\n`);
    return e.exitCode;
  }
}

const code = await main(process.argv);
// Let stdout drain, then leave even if a stray handle would keep the loop alive.
process.stdout.write("", () => process.exit(code));
