import { basename } from "node:path";
import type { Command } from "commander";
import { pushFile } from "../transfer/push-file.js";
import { DEFAULT_CONCURRENCY } from "../transfer/transfer-options.js";
import type { CommandContext } from "./context.js";
import { withClient } from "./context.js";
import { parseConcurrency, parseSize, remotePath } from "./parse-args.js";
import { runTransfer } from "./run-transfer.js";

export function registerPush(program: Command, context: () => CommandContext): void {
  program
    .command("push")
    .description("upload a file; run it again after an interruption to resume")
    .argument("<local>", "file to upload")
    .argument("[remote]", "destination path (default: the file's name; ending in / puts it in that folder)")
    .option("-c, --concurrency <n>", "parts in flight at once", parseConcurrency, DEFAULT_CONCURRENCY)
    .option("--part-size <size>", "part size, e.g. 16M (5M to 5G; grown for files over 10,000 parts)", parseSize)
    .option("--if-revision <rev>", "only if the remote is still at this revision (0: must not exist)", (v) => parseInt(v, 10))
    .action(async (local: string, remote: string | undefined, opts: { concurrency: number; partSize?: number; ifRevision?: number }) => {
      const ctx = context();
      const target = remotePath(!remote ? basename(local) : remote.endsWith("/") ? remote + basename(local) : remote);
      await withClient(ctx, (client) =>
        runTransfer(ctx, async (emit) => {
          const r = await pushFile(
            client,
            {
              local,
              remote: target,
              partSize: opts.partSize,
              baseRevision: opts.ifRevision,
              concurrency: opts.concurrency,
              partAttempts: 8,
              signal: ctx.signal,
            },
            emit,
          );
          return { revision: r.revision, content_hash: r.contentHash, deduplicated: r.deduplicated };
        }),
      );
    });
}
