import type { Command } from "commander";
import { hex } from "../../shared/rules/content-hash.js";
import { printJson, withClient, type CommandContext } from "./context.js";
import { fileFields, hashKindName, modifiedAt } from "./file-fields.js";
import { remotePath } from "./parse-args.js";

export function registerStat(program: Command, context: () => CommandContext): void {
  program
    .command("stat")
    .description("show one file: size, revision, modification time and content hash (check a pulled copy with b3sum)")
    .argument("<remote>", "path on the server")
    .action(async (remote: string) => {
      const ctx = context();
      const path = remotePath(remote);
      await withClient(ctx, async (client) => {
        const { file } = await client.files.stat({ path }, { signal: ctx.signal });
        if (!file) throw new Error(`the server sent no file for ${path}`);
        if (ctx.json) return printJson(ctx, fileFields(file));
        const kind = hashKindName(file.contentHashKind, file.contentHash);
        const about = kind === "blake3" ? "blake3, what b3sum prints for the file" : "chunk-list, drive's hash before content-defined chunking; b3sum does not print it";
        ctx.stdout.write(
          [
            `path:          ${file.path}`,
            `size:          ${file.size}`,
            `revision:      ${file.revision}`,
            `modified:      ${modifiedAt(file).toISOString()}`,
            `content hash:  ${hex(file.contentHash)} (${about})`,
          ].join("\n") + "\n",
        );
      });
    });
}
