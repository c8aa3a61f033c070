import type { Command } from "commander";
import { pullFile, resolvePullTarget } from "../transfer/pull-file.js";
import { DEFAULT_CONCURRENCY } from "../transfer/transfer-options.js";
import type { CommandContext } from "./context.js";
import { withClient } from "./context.js";
import { parseConcurrency, parseRevision, remotePath } from "./parse-args.js";
import { runTransfer } from "./run-transfer.js";

export function registerPull(program: Command, context: () => CommandContext): void {
  program
    .command("pull")
    .description("download a file, verified, into place; run it again after an interruption to resume")
    .argument("<remote>", "path on the server")
    .argument("[local]", "destination file or folder (default: the remote name, here)")
    .option("-c, --concurrency <n>", "chunks in flight at once", parseConcurrency, DEFAULT_CONCURRENCY)
    .option("--revision <rev>", "an older revision instead of the current one", parseRevision)
    .action(async (remote: string, local: string | undefined, opts: { concurrency: number; revision?: number }) => {
      const ctx = context();
      const path = remotePath(remote);
      const target = await resolvePullTarget(path, local);
      await withClient(ctx, (client) =>
        runTransfer(ctx, async (emit) => {
          const r = await pullFile(
            client,
            { remote: path, local: target, revision: opts.revision, concurrency: opts.concurrency, partAttempts: 8, signal: ctx.signal },
            emit,
          );
          return { revision: r.revision, content_hash: r.contentHash };
        }),
      );
    });
}
