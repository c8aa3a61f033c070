import type { Command } from "commander";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Version } from "../../gen/drive/v1/types_pb.js";
import { hex } from "../../shared/rules/content-hash.js";
import { printJson, withClient, type CommandContext } from "./context.js";
import { hashKindName, kindName, localTime } from "./file-fields.js";
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
        const created = v.createdAt ? timestampDate(v.createdAt) : null;
        if (ctx.json) {
          printJson(ctx, {
            type: "version",
            path,
            revision: v.revision,
            kind: kindName(v),
            size: v.size,
            deleted: v.deleted,
            author: v.author,
            created_at: created?.toISOString() ?? "",
            mtime: v.mtime ? timestampDate(v.mtime).toISOString() : null,
            mode: v.mode ? v.mode & 0o7777 : null,
            content_hash: hex(v.contentHash),
            content_hash_kind: hashKindName(v.contentHashKind, v.contentHash),
          });
        } else {
          const what = v.deleted ? "deleted" : kindName(v) === "folder" ? "folder" : String(v.size);
          // Local time with its zone, as ls shows it.
          ctx.stdout.write(`r${String(v.revision).padEnd(5)} ${what.padStart(14)}  ${created ? localTime(created) : "".padEnd(25)}  ${v.author}\n`);
        }
      }
    });
}
