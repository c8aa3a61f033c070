import type { Command } from "commander";
import { printJson, withClient, type CommandContext } from "./context.js";
import { parseRevision, remotePath } from "./parse-args.js";

export function registerRm(program: Command, context: () => CommandContext): void {
  program
    .command("rm")
    .description("delete a file; its earlier versions are kept (see drive versions)")
    .argument("<remote>", "path on the server")
    .option("--if-revision <rev>", "only if the file is still at this revision", parseRevision)
    .action(async (remote: string, opts: { ifRevision?: number }) => {
      const ctx = context();
      const path = remotePath(remote);
      await withClient(ctx, async (client) => {
        const r = await client.files.delete(
          { path, baseRevision: opts.ifRevision === undefined ? undefined : BigInt(opts.ifRevision) },
          { signal: ctx.signal },
        );
        if (ctx.json) printJson(ctx, { type: "deleted", path, revision: r.revision });
        else ctx.stdout.write(`deleted ${path} (revision ${r.revision})\n`);
      });
    });
}
