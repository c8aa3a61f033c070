import type { Command } from "commander";
import { hex } from "../../shared/rules/content-hash.js";
import { printJson, withClient, type CommandContext } from "./context.js";
import { fileFields, hashKindName, modifiedAt, shortTime } from "./file-fields.js";

export function registerLs(program: Command, context: () => CommandContext): void {
  program
    .command("ls")
    .description("list files: size, modification time, revision and path (-l: and content hash)")
    .argument("[prefix]", "only paths that start with this")
    .option("-l, --long", "also the content hash and its kind (blake3: what b3sum prints for the file)", false)
    .action(async (prefix: string | undefined, opts: { long: boolean }) => {
      const ctx = context();
      await withClient(ctx, async (client) => {
        let pageToken = "";
        do {
          const page = await client.files.listFiles({ prefix: (prefix ?? "").replace(/^\/+/, ""), pageToken }, { signal: ctx.signal });
          for (const f of page.files) {
            if (ctx.json) {
              printJson(ctx, fileFields(f));
              continue;
            }
            const hash = opts.long ? `${(hashKindName(f.contentHashKind, f.contentHash) ?? "-").padEnd(10)} ${hex(f.contentHash)}  ` : "";
            ctx.stdout.write(`${String(f.size).padStart(14)}  ${shortTime(modifiedAt(f))}  r${String(f.revision).padEnd(5)} ${hash}${f.path}\n`);
          }
          pageToken = page.nextPageToken;
        } while (pageToken);
      });
    });
}
