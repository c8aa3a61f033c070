import { Code, ConnectError } from "@connectrpc/connect";
import type { Command } from "commander";
import { hex } from "../../shared/rules/content-hash.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { CliError } from "../errors.js";
import { printJson, withClient, type CommandContext } from "./context.js";
import { fileFields, hashKindName, implicitFolderFields, kindName, localTime, modeString, modifiedAt } from "./file-fields.js";
import { remotePath } from "./parse-args.js";
import { printable } from "../ui/fit.js";

export function registerStat(program: Command, context: () => CommandContext): void {
  program
    .command("stat")
    .description("show one file or folder: kind, size, mode, mtime, revision and content hash (check a pulled copy with b3sum)")
    .argument("<remote>", "path on the server")
    .action(async (remote: string) => {
      const ctx = context();
      const path = remotePath(remote.replace(/\/+$/, "") || remote);
      await withClient(ctx, async (client) => {
        let file;
        try {
          file = (await client.files.stat({ path }, { signal: ctx.signal })).file;
        } catch (err) {
          if (!(err instanceof ConnectError && err.code === Code.NotFound)) throw err;
          // No entry, but paths may pass through it: a folder all the same.
          const under = await client.files.listFiles({ prefix: `${path}/`, pageSize: 1 }, { signal: ctx.signal });
          if (under.files.length === 0) throw new CliError("not_found", `${path}: no such file or folder`, { cause: err });
          if (ctx.json) return printJson(ctx, implicitFolderFields(path));
          ctx.stdout.write(`path:          ${path}/\nkind:          folder (no entry of its own: paths under it make it)\n`);
          return;
        }
        if (!file) throw new Error(`the server sent no file for ${path}`);
        if (ctx.json) return printJson(ctx, fileFields(file));
        const kind = kindName(file);
        const lines = [`path:          ${printable(file.path)}${kind === "folder" ? "/" : ""}`, `kind:          ${kind}`];
        if (kind === "file") lines.push(`size:          ${file.size}`);
        lines.push(
          `mode:          ${file.mode ? `${modeString(kind, file.mode)} (${(file.mode & 0o7777).toString(8).padStart(4, "0")})` : "not recorded"}`,
          `mtime:         ${file.mtime ? localTime(timestampDate(file.mtime)) : "not recorded"}`,
          `revision:      ${file.revision}`,
          `modified:      ${localTime(modifiedAt(file))} (committed)`,
        );
        if (kind === "file") {
          const hashKind = hashKindName(file.contentHashKind, file.contentHash);
          const about = hashKind === "blake3" ? "blake3, what b3sum prints for the file" : "chunk-list, drive's hash before content-defined chunking; b3sum does not print it";
          lines.push(`content hash:  ${hex(file.contentHash)} (${about})`);
        }
        ctx.stdout.write(lines.join("\n") + "\n");
      });
    });
}
