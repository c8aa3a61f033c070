import type { Command } from "commander";
import { printJson, withClient, type CommandContext } from "./context.js";

export function registerUser(program: Command, context: () => CommandContext): void {
  const user = program.command("user").description("manage users (admin only)");
  user
    .command("add")
    .description("create a user and print their token, alone on stdout")
    .argument("<name>", "1-64 of [a-z0-9._-]")
    .option("--admin", "the new user may create users too", false)
    .action(async (name: string, opts: { admin: boolean }) => {
      const ctx = context();
      await withClient(ctx, async (client) => {
        const r = await client.users.createUser({ name, admin: opts.admin }, { signal: ctx.signal });
        if (ctx.json) printJson(ctx, { type: "user", name: r.name, token: r.token });
        else ctx.stdout.write(r.token + "\n");
      });
    });
}
