import type { Command } from "commander";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Version } from "../../gen/drive/v1/types_pb.js";
import { hex } from "../../shared/rules/content-hash.js";
import { printJson, withClient, type CommandContext } from "./context.js";
import { hashKindName } from "./file-fields.js";
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
        // The server answers a page at a time (at most 1,000): follow the tokens to the oldest.
        let pageToken = "";
        do {
          const page = await client.files.listVersions({ path, pageToken }, { signal: ctx.signal });
          for (const v of page.versions) printVersion(v);
          pageToken = page.nextPageToken;
        } while (pageToken);
      });

      function printVersion(v: Version): void {
        const at = v.createdAt ? timestampDate(v.createdAt).toISOString() : "";
        if (ctx.json) {
          printJson(ctx, { type: "version", path, revision: v.revision, size: v.size, deleted: v.deleted, author: v.author, created_at: at, content_hash: hex(v.contentHash), content_hash_kind: hashKindName(v.contentHashKind, v.contentHash) });
        } else {
          const what = v.deleted ? "deleted" : String(v.size);
          ctx.stdout.write(`r${String(v.revision).padEnd(5)} ${what.padStart(14)}  ${at.replace("T", " ").slice(0, 19)}  ${v.author}\n`);
        }
      }
    });
}
