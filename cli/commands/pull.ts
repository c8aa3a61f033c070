import type { Command } from "commander";
import { pullFile } from "../transfer/pull-file.js";
import { resolvePullTarget } from "../transfer/pull/pull-target.js";
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
    .argument("[local]", "destination file or folder (default: the remote name, here); - writes the bytes to stdout")
    .option("-c, --concurrency <n>", "chunks in flight at once", parseConcurrency, DEFAULT_CONCURRENCY)
    .option("--revision <rev>", "an older revision instead of the current one", parseRevision)
    .option("--no-reuse", "fetch every chunk; by default chunks already in the destination, a leftover of an interrupted pull or files beside it are copied from there")
    .addHelpText(
      "after",
      `
Chunks already on disk are reused: those of the file being replaced (at any
offset), of a leftover of an interrupted pull, and of up to 8 other files in
the destination folder, closest in size first. Each is hashed again as it is
read, and fetched instead if it changed.

With LOCAL "-" the bytes go to stdout, in order, each chunk only once it
verified: a chunk that fails its hash is never written, and the pull exits 5
before it. Progress, the summary and --json lines go to stderr then. A
reader that stops early (| head) ends the pull with exit code 141, quietly.
The content hash of the whole file is checked after its last byte is out.`,
    )
    .action(async (remote: string, local: string | undefined, opts: { concurrency: number; revision?: number; reuse: boolean }) => {
      const base = context();
      const toStdout = local === "-";
      // With "-", stdout carries the bytes: everything else is said on stderr.
      const ctx: CommandContext = toStdout ? { ...base, stdout: base.stderr } : base;
      if (toStdout) {
        // EPIPE arrives as a write's error and as an 'error' event; unheard, the event would crash with a stack trace.
        base.stdout.on("error", () => undefined);
      }
      await runTransfer(ctx, async (emit) => {
        const path = remotePath(remote);
        const target = toStdout ? "-" : await resolvePullTarget(path, local);
        const r = await withClient(ctx, (client) =>
          pullFile(
            client,
            {
              remote: path,
              local: target,
              output: toStdout ? base.stdout : undefined,
              revision: opts.revision,
              reuse: opts.reuse,
              concurrency: opts.concurrency,
              partAttempts: 8,
              signal: ctx.signal,
            },
            emit,
          ),
        );
        return { revision: r.revision, content_hash: r.contentHash, content_hash_kind: r.contentHashKind, bytes_reused: r.bytesReused };
      });
    });
}
