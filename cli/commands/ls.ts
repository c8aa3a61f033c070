import type { Command } from "commander";
import { hex } from "../../shared/rules/content-hash.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { printJson, withClient, type CommandContext } from "./context.js";

export function registerLs(program: Command, context: () => CommandContext): void {
  program
    .command("ls")
    .description("list files: size, modification time, revision and path")
    .argument("[prefix]", "only paths that start with this")
    .action(async (prefix: string | undefined) => {
      const ctx = context();
      await withClient(ctx, async (client) => {
        let pageToken = "";
        do {
          const page = await client.files.listFiles({ prefix: (prefix ?? "").replace(/^\/+/, ""), pageToken }, { signal: ctx.signal });
          for (const f of page.files) {
            const modified = f.modifiedAt ? timestampDate(f.modifiedAt) : new Date(0);
            if (ctx.json) {
              printJson(ctx, {
                type: "file",
                path: f.path,
                size: f.size,
                revision: f.revision,
                modified_at: modified.toISOString(),
                content_hash: hex(f.contentHash),
              });
            } else {
              ctx.stdout.write(`${String(f.size).padStart(14)}  ${modified.toISOString().replace("T", " ").slice(0, 19)}  r${String(f.revision).padEnd(5)} ${f.path}\n`);
            }
          }
          pageToken = page.nextPageToken;
        } while (pageToken);
      });
    });
}
