import type { Command } from "commander";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { hex } from "../../server/core/content-hash.js";
import { printJson, withClient, type CommandContext } from "./context.js";
import { remotePath } from "./parse-args.js";

export function registerVersions(program: Command, context: () => CommandContext): void {
  program
    .command("versions")
    .description("list every revision of a file, newest first (pull --revision N fetches one)")
    .argument("<remote>", "path on the server")
    .action(async (remote: string) => {
      const ctx = context();
      const path = remotePath(remote);
      await withClient(ctx, async (client) => {
        const { versions } = await client.files.listVersions({ path }, { signal: ctx.signal });
        for (const v of versions) {
          const at = v.createdAt ? timestampDate(v.createdAt).toISOString() : "";
          if (ctx.json) {
            printJson(ctx, { type: "version", path, revision: v.revision, size: v.size, deleted: v.deleted, author: v.author, created_at: at, content_hash: hex(v.contentHash) });
          } else {
            const what = v.deleted ? "deleted" : String(v.size);
            ctx.stdout.write(`r${String(v.revision).padEnd(5)} ${what.padStart(14)}  ${at.replace("T", " ").slice(0, 19)}  ${v.author}\n`);
          }
        }
      });
    });
}
