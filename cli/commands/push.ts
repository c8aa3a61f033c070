import { basename, resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { CliError } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { COMPRESS_MODES, type CompressMode } from "../transfer/compress/compress-policy.js";
import type { TransferListener } from "../transfer/events.js";
import { pushFile, type PushRequest, type PushResult } from "../transfer/push-file.js";
import { spoolStream } from "../transfer/push-stream.js";
import { DEFAULT_CONCURRENCY, DEFAULT_PART_ATTEMPTS } from "../transfer/transfer-options.js";
import type { CommandContext } from "./context.js";
import { withClient } from "./context.js";
import { parseConcurrency, parseRevision, parseSize, remotePath } from "./parse-args.js";
import { stat } from "node:fs/promises";
import { runTransfer } from "./run-transfer.js";
import { PUSH_WATCH_HELP } from "../watch/watch-help.js";
import type { TreeResult } from "../tree/types.js";
import { addTreeFlags, openTreeIndex, readIgnoreFile, runTreeCommand, runWatch, treeOptions, type TreeFlags } from "../tree/tree-command.js";

interface PushFlags extends TreeFlags {
  concurrency?: number;
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
  const cmd = program
    .command("push")
    .description("upload a file or a folder, or standard input with -; run it again after an interruption to resume")
    .argument("<local>", "file or folder to upload, or - for standard input (then REMOTE is required)")
    .argument("[remote]", "destination path (default: the file's or folder's name; for a file, ending in / puts it in that folder)")
    .option("-c, --concurrency <n>", `transfers in flight at once (default ${DEFAULT_CONCURRENCY} parts for a file, 16 across a whole folder)`, parseConcurrency)
    .option("--part-size <size>", "target part size, e.g. 16M (5M to 5G; default: 16M, more for compressible files)", parseSize)
    .option("--if-revision <rev>", "only if the remote is still at this revision (0: must not exist)", parseRevision)
    .option("--compress <mode>", "auto, always or never", parseCompress, "auto" as CompressMode)
    .addHelpText("after", PIPE_HELP + TREE_HELP + "\n" + PUSH_WATCH_HELP);
  addTreeFlags(cmd).action(async (local: string, remote: string | undefined, opts: PushFlags) => {
      const ctx = context();
      const piped = local === "-";
      if (!piped && (await stat(local).catch(() => null))?.isDirectory()) return pushFolder(ctx, local, remote, opts);
      if (opts.delete || opts.dryRun || opts.watch || opts.maxDelete || opts.exclude.length || opts.include.length) {
        throw new CliError("usage", "--delete, --max-delete, --dry-run, --exclude, --include and --watch apply to folders; " + `${local} is not a folder`);
      }
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
        concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
        partAttempts: DEFAULT_PART_ATTEMPTS,
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

const TREE_HELP = `

Folders:
  drive push LOCAL_DIR [REMOTE_DIR] copies the contents of LOCAL_DIR into
  REMOTE_DIR (default: a folder named after LOCAL_DIR, under the remote root),
  with or without trailing slashes, as rclone copy does. Only files whose
  content or mode and mtime differ are sent; an unchanged file (same size,
  mtime, ctime, inode and mode as drive recorded) is not even read. Empty
  folders are kept; symbolic links are skipped with a warning and never
  followed; two names that differ only by Unicode normalisation are both
  skipped and reported. A .driveignore file at the root (gitignore syntax)
  and --exclude/--include filter paths. With --delete, remote files the folder
  lacks are deleted (they stay as versions), unless that would delete more
  than --max-delete (default 50% of the remote folder's entries; a count like
  100, or a share like 30%), in which case nothing is changed (exit 2). A
  file that fails does not stop the others; the run then exits with the
  first failure's code (README: Exit codes).`;

/** drive push LOCAL_DIR [REMOTE_DIR]: the folder's contents into the remote folder. */
async function pushFolder(ctx: CommandContext, local: string, remote: string | undefined, opts: PushFlags): Promise<void> {
  const target = remote === undefined ? remotePath(basename(resolve(local))) : folderPath(remote);
  const o = treeOptions(ctx, local, target, opts, await readIgnoreFile(local));
  await withClient(ctx, async (client) => {
    // A watch opens the root's index itself (cli/watch/).
    if (opts.watch) return runTreeCommand(ctx, "push", async (emit) => (await runWatch("push", ctx, client, { ...o, rescanMs: 60_000 }, emit), emptyResult()));
    const index = await openTreeIndex(client.server, target, local);
    try {
      await runTreeCommand(ctx, "push", async (emit) => (await import("../tree/push-tree.js")).pushTree(client, index, o, emit), o.dryRun);
    } finally {
      await index.close();
    }
  });
}

/** A remote folder as the user typed it: slashes at either end do not matter; "/" (or "") is the root. */
export function folderPath(input: string): string {
  const trimmed = input.replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? "" : remotePath(trimmed);
}

export function emptyResult(): TreeResult {
  return { filesSent: 0, bytesSent: 0, filesSkipped: 0, bytesSkipped: 0, filesDeleted: 0, filesFailed: 0, foldersMade: 0, unsettled: [], cursor: "" };
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
