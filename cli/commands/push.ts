import { basename } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { CliError } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { COMPRESS_MODES, type CompressMode } from "../transfer/compress/compress-policy.js";
import type { TransferListener } from "../transfer/events.js";
import { pushFile, type PushRequest, type PushResult } from "../transfer/push-file.js";
import { spoolStream } from "../transfer/push-stream.js";
import { DEFAULT_CONCURRENCY } from "../transfer/transfer-options.js";
import type { CommandContext } from "./context.js";
import { withClient } from "./context.js";
import { parseConcurrency, parseRevision, parseSize, remotePath } from "./parse-args.js";
import { stat } from "node:fs/promises";
import { runTransfer } from "./run-transfer.js";

interface PushFlags {
  concurrency: number;
  partSize?: number;
  ifRevision?: number;
  compress: CompressMode;
}

const PIPE_HELP = `
Standard input:
  drive push - REMOTE reads standard input to its end, e.g.
    tar c photos | drive push - backups/photos.tar
  It is copied to a private temporary file in $TMPDIR (mode 0600, removed at
  once), chunked and hashed on the way, then pushed: memory stays at a few MiB,
  but $TMPDIR needs room for the whole stream. A piped push cannot resume: run
  again, it reads its input anew. Interrupted (Ctrl-C, SIGTERM), it aborts its
  upload on the server; killed outright, the server's upload TTL discards it.

Compression:
  --compress auto (the default) samples every part and stores it as zstd frames
  when that saves at least half, or at least a tenth and is faster than sending
  it raw at the rate the push measures; random or compressed data goes raw.`;

export function registerPush(program: Command, context: () => CommandContext): void {
  program
    .command("push")
    .description("upload a file, or standard input with -; run it again after an interruption to resume")
    .argument("<local>", "file to upload, or - for standard input (then REMOTE is required)")
    .argument("[remote]", "destination path (default: the file's name; ending in / puts it in that folder)")
    .option("-c, --concurrency <n>", "parts in flight at once", parseConcurrency, DEFAULT_CONCURRENCY)
    .option("--part-size <size>", "target part size, e.g. 16M (5M to 5G; default: 16M, more for compressible files)", parseSize)
    .option("--if-revision <rev>", "only if the remote is still at this revision (0: must not exist)", parseRevision)
    .option("--compress <mode>", "auto, always or never", parseCompress, "auto" as CompressMode)
    .addHelpText("after", PIPE_HELP)
    .action(async (local: string, remote: string | undefined, opts: PushFlags) => {
      const ctx = context();
      const piped = local === "-";
      if (piped && (!remote || remote.endsWith("/"))) {
        throw new CliError("usage", "drive push - needs a remote file name: drive push - REMOTE (standard input has no name)");
      }
      if (piped && ctx.stdin.isTTY) {
        throw new CliError("usage", "drive push - reads standard input, which is a terminal here: pipe data in, e.g. tar c dir | drive push - backups/dir.tar");
      }
      const target = remotePath(!remote ? basename(local) : remote.endsWith("/") ? remote + basename(local) : remote);
      const base = {
        remote: target,
        partSize: opts.partSize,
        baseRevision: opts.ifRevision,
        compress: opts.compress,
        concurrency: opts.concurrency,
        partAttempts: 8,
        signal: ctx.signal,
      };
      await withClient(ctx, (client) =>
        runTransfer(ctx, async (emit) => {
          const r = piped ? await pushStdin(client, ctx, base, emit) : await pushFile(client, { ...base, local }, emit);
          const warning = piped ? undefined : await changedSincePushed(local, r.size);
          return { revision: r.revision, content_hash: r.contentHash, deduplicated: r.deduplicated, ...(warning ? { warning } : {}) };
        }),
      );
    });
}

/**
 * A file that grew or was rewritten after its scan is stored as it was
 * scanned (every byte sent was checked against that scan); say so, as tar
 * does, rather than let a growing log look fully stored.
 */
async function changedSincePushed(local: string, pushedSize: number): Promise<string | undefined> {
  const now = await stat(local).catch(() => null);
  if (!now) return `${local} was removed during the push; the version stored is the one read at its start`;
  if (now.size !== pushedSize) return `${local} changed during the push (${pushedSize} bytes stored, ${now.size} now); push it again to store the rest`;
  return undefined;
}

/**
 * Spools stdin (push-stream.ts) and pushes the spool. Whatever stops it
 * after an upload was opened, that upload is aborted: nothing can resume it
 * once the spool is gone.
 */
async function pushStdin(client: DriveClient, ctx: CommandContext, base: Omit<PushRequest, "local">, emit: TransferListener): Promise<PushResult> {
  emit({ type: "phase", phase: "hash" });
  const spool = await spoolStream(ctx.stdin, { signal: ctx.signal, onHashed: (bytes) => emit({ type: "hashed", bytes }) });
  let uploadId: string | null = null;
  try {
    return await pushFile(client, { ...base, local: spool.path, source: "-", scan: spool.scan, onUploadId: (id) => (uploadId = id) }, emit);
  } catch (err) {
    if (uploadId) {
      // The push's own signal may be the one that fired: the abort gets its own few seconds.
      await client.uploads.abortUpload({ uploadId }, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
    }
    throw err;
  } finally {
    await spool.close();
  }
}

function parseCompress(value: string): CompressMode {
  if (!(COMPRESS_MODES as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${COMPRESS_MODES.join(", ")}`);
  return value as CompressMode;
}
