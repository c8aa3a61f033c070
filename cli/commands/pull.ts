import { mkdir, stat } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Command } from "commander";
import { EntryKind } from "../../gen/drive/v1/types_pb.js";
import { CliError } from "../errors.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { pullFile } from "../transfer/pull-file.js";
import { resolvePullTarget } from "../transfer/pull/pull-target.js";
import { DEFAULT_CONCURRENCY, DEFAULT_PART_ATTEMPTS } from "../transfer/transfer-options.js";
import { addTreeFlags, openTreeIndex, readIgnoreFile, runTreeCommand, runWatch, treeOptions, type TreeFlags } from "../tree/tree-command.js";
import type { CommandContext } from "./context.js";
import { withClient } from "./context.js";
import { parseConcurrency, parseRevision, remotePath } from "./parse-args.js";
import { emptyResult, folderPath } from "./push.js";
import { runTransfer } from "./run-transfer.js";
import { PULL_WATCH_HELP } from "../watch/watch-help.js";

interface PullFlags extends TreeFlags {
  concurrency?: number;
  revision?: number;
  reuse: boolean;
}

export function registerPull(program: Command, context: () => CommandContext): void {
  const cmd = program
    .command("pull")
    .description("download a file or a folder, verified, into place; run it again after an interruption to resume")
    .argument("<remote>", "path on the server: a file or a folder")
    .argument("[local]", "destination file or folder (default: the remote name, here); - writes a file's bytes to stdout")
    .option("-c, --concurrency <n>", `transfers in flight at once (default ${DEFAULT_CONCURRENCY} chunks for a file, 16 across a whole folder)`, parseConcurrency)
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
The content hash of the whole file is checked after its last byte is out.

Folders:
  drive pull REMOTE_DIR [LOCAL_DIR] copies the contents of REMOTE_DIR into
  LOCAL_DIR (default: a folder named after REMOTE_DIR, here; made if missing),
  as rclone copy does. Unchanged files are skipped without being read. Mode
  (permission bits; never setuid, setgid or sticky) and mtime are restored,
  and empty folders made. No name from the server writes outside LOCAL_DIR,
  and a local file that changed since drive wrote it is never overwritten or
  deleted: it is kept, and the server's version is written beside it as
  "name (conflicted copy HOST DATE).ext". --delete removes local files the
  server lacks (within --max-delete, default 50% of the local files).` + "\n" + PULL_WATCH_HELP,
    );
  addTreeFlags(cmd).action(async (remote: string, local: string | undefined, opts: PullFlags) => {
    const base = context();
    const toStdout = local === "-";
    // One connection for the probe and the pull that follows it.
    await withClient(base, async (client) => {
      if (!toStdout && (await isRemoteFolder(client, remote, base.signal))) return pullFolder(base, client, remote, local, opts);
      if (opts.delete || opts.dryRun || opts.watch || opts.maxDelete || opts.exclude.length || opts.include.length) {
        throw new CliError("usage", `--delete, --max-delete, --dry-run, --exclude, --include and --watch apply to folders; ${remote} is a file`);
      }
      // With "-", stdout carries the bytes: everything else is said on stderr.
      const ctx: CommandContext = toStdout ? { ...base, stdout: base.stderr } : base;
      if (toStdout) {
        // EPIPE arrives as a write's error and as an 'error' event; unheard, the event would crash with a stack trace.
        base.stdout.on("error", () => undefined);
      }
      await runTransfer(ctx, async (emit) => {
        const path = remotePath(remote);
        const target = toStdout ? "-" : await resolvePullTarget(path, local);
        const r = await pullFile(
          client,
          {
            remote: path,
            local: target,
            output: toStdout ? base.stdout : undefined,
            revision: opts.revision,
            reuse: opts.reuse,
            concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
            partAttempts: DEFAULT_PART_ATTEMPTS,
            signal: ctx.signal,
          },
          emit,
        );
        return { revision: r.revision, content_hash: r.contentHash, content_hash_kind: r.contentHashKind, bytes_reused: r.bytesReused };
      });
    });
  });
}

/**
 * A folder: the root, a path written with a trailing slash, a folder entry,
 * or a path that live entries lie under. A file, or nothing at all, is not
 * (the one-file pull then says what it always said).
 */
async function isRemoteFolder(client: DriveClient, remote: string, signal: AbortSignal): Promise<boolean> {
  if (remote.endsWith("/") || folderPath(remote) === "") return true;
  const path = remotePath(remote);
  try {
    const st = await client.files.stat({ path }, { signal });
    if (st.file?.kind !== EntryKind.FOLDER) return false;
    return true;
  } catch (err) {
    if (!(err instanceof ConnectError) || err.code !== Code.NotFound) return false; // let the one-file pull report it
  }
  const page = await client.files.listFiles({ prefix: `${path}/`, pageSize: 1 }, { signal }).catch(() => null);
  return !!page && page.files.length > 0;
}

/** drive pull REMOTE_DIR [LOCAL_DIR]: the remote folder's contents into the local folder. */
async function pullFolder(ctx: CommandContext, client: DriveClient, remote: string, local: string | undefined, opts: PullFlags): Promise<void> {
  if (opts.revision !== undefined) throw new CliError("usage", "--revision applies to a file, not a folder");
  const source = folderPath(remote);
  const name = source.split("/").at(-1);
  if (local === undefined && !name) throw new CliError("usage", "drive pull of the remote root needs a LOCAL_DIR");
  const target = local ?? name!;
  const there = await stat(target).catch(() => null);
  if (there && !there.isDirectory()) throw new CliError("usage", `${target} exists and is not a folder`);
  if (!there && !opts.dryRun) await mkdir(target, { recursive: true });
  const o = treeOptions(ctx, target, source, opts, there ? await readIgnoreFile(target) : undefined);
  if (opts.watch) return runTreeCommand(ctx, "pull", async (emit) => (await runWatch("pull", ctx, client, { ...o, rescanMs: 60_000 }, emit), emptyResult()));
  if (!there && opts.dryRun) return runTreeCommand(ctx, "pull", async () => emptyResult()); // nothing local to compare; nothing made
  const index = await openTreeIndex(client.server, source, target);
  try {
    await runTreeCommand(ctx, "pull", async (emit) => (await import("../tree/pull-tree.js")).pullTree(client, index, o, emit), o.dryRun);
  } finally {
    await index.close();
  }
}
