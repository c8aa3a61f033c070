import type { Command } from "commander";
import { connectDrive } from "../rpc/drive-client.js";
import { normaliseServer, saveConfig } from "../config/client-config.js";
import { CliError } from "../errors.js";
import { printJson, type CommandContext } from "./context.js";

export function registerLogin(program: Command, context: () => CommandContext): void {
  program
    .command("login")
    .description("check a server and token, then save them to the config file (mode 0600)")
    .action(async () => {
      const ctx = context();
      const { server, token } = ctx.flags;
      if (!server || !token) throw new CliError("usage", "login needs --server URL and --token TOKEN");
      const creds = { server: normaliseServer(server), token };
      const client = connectDrive(creds, { retry: { attempts: 2, baseDelayMs: 200, maxDelayMs: 1000 } });
      let me;
      try {
        me = await client.users.whoAmI({}, { signal: ctx.signal });
      } finally {
        client.close();
      }
      const file = await saveConfig(creds);
      if (ctx.json) printJson(ctx, { type: "login", server: creds.server, user: me.name, admin: me.admin, config: file });
      else ctx.stdout.write(`logged in to ${creds.server} as ${me.name}; saved to ${file}\n`);
    });
}
