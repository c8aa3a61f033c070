import { Code, ConnectError } from "@connectrpc/connect";
import { EntryKind } from "../../gen/drive/v1/types_pb.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { resolve } from "node:path";
import type { Command } from "commander";
import { CliError, exitCodes, type FailureKind } from "../errors.js";
import type { MaxDelete, SyncOptions, SyncResult } from "../sync/types.js";
import type { RunListener } from "../transfer/events.js";
import { parseMaxDelete, treeOptions } from "../tree/tree-command.js";
import type { SummaryExtra } from "../ui/printer.js";
import type { CommandContext } from "./context.js";
import { withClient } from "./context.js";
import { parseConcurrency } from "./parse-args.js";
import { folderPath } from "./push.js";
import { ReportedError, runTree } from "./run-transfer.js";

interface SyncFlags {
  watch?: boolean;
  dryRun?: boolean;
  force?: boolean;
  maxDelete?: { percent: number } | { count: number };
  exclude: string[];
  include: string[];
  concurrency?: number;
}

/** --max-delete's default: half the synced files, but never fewer than this many (deleting 2 of 3 files needs no --force). */
export const DEFAULT_MAX_DELETE: MaxDelete = { percent: 50, floor: 10 };

const SYNC_HELP = `
Two-way sync:
  drive sync LOCAL_DIR REMOTE_DIR makes the two folders the same, both ways:
  additions, edits, deletes, renames and moves, and mode and mtime changes.
  It keeps, per root, the state both sides last agreed on, so it knows which
  side changed what. When both changed a file differently, both versions
  survive: yours becomes "name (conflicted copy <host> <date>).ext" and syncs
  like any file. An edit beats a delete. A rename is a move on the other side,
  not a new upload.

  The delete guard halts the sync, deleting nothing (exit 2), when the local
  folder is missing, on another device or lost its .drive-sync marker, or
  when the deletes on one side would exceed --max-delete (default 50% of the
  synced files, when over 10; a count like 100, or a share like 30%).
  --force overrides it for one run. A file or rule that leaves paths out
  (.driveignore, --exclude, --include) never turns into deletes.

  Files still being written (changed in the last second; env
  DRIVE_SYNC_SETTLE_MS) are synced once they settle; a one-off sync waits
  for them a little, then leaves them pending. drive status LOCAL_DIR shows
  the last sync, a halt, what is pending and the conflicted copies made.

Watching (--watch):
  drive sync --watch syncs, then again on every local change (as they
  settle) and every change on the server, and every minute with jitter. A
  server that goes away is retried with backoff. Ctrl-C ends the watch with
  its summary.`;

export function registerSync(program: Command, context: () => CommandContext): void {
  const collect = (v: string, all: string[]) => [...all, v];
  program
    .command("sync")
    .description("two-way sync of a local folder and a remote folder; run it again after an interruption")
    .argument("<local>", "local folder (made if missing, on a first sync)")
    .argument("<remote>", "remote folder (/ for the root)")
    .option("--watch", "keep running, syncing changes on either side as they happen")
    .option("--dry-run", "print the operations a sync would do, and do none")
    .option("--force", "sync even though the delete guard would halt (this run only)")
    .option("--max-delete <n>", "halt before deleting more than this many files on one side, or this share (default 50%, when over 10)", parseMaxDelete)
    .option("--exclude <glob>", "leave out paths matching this gitignore-style glob, on both sides (repeatable)", collect, [] as string[])
    .option("--include <glob>", "sync only files matching this glob (repeatable)", collect, [] as string[])
    .option("-c, --concurrency <n>", "transfers in flight at once (default 16)", parseConcurrency)
    .addHelpText("after", SYNC_HELP)
    .action(async (local: string, remote: string, flags: SyncFlags) => {
      const ctx = context();
      if (flags.watch && flags.dryRun) throw new CliError("usage", "--dry-run and --watch do not go together: a dry run plans once");
      const opts = await syncOptions(ctx, local, remote, flags);
      let failed: SyncResult | undefined;
      await withClient(ctx, async (client) => {
        await remoteFolderOrNothing(client, opts.remote);
        return runTree(ctx, async (emit) => {
          let planned = 0;
          const counting: RunListener = (ev) => {
            if (ev.type === "sync_op" && ev.outcome === "planned") planned++;
            emit(ev);
          };
          const r = flags.watch
            ? await (await import("../sync/sync-watch.js")).runSyncWatch(client, { ...opts, rescanMs: 60_000 }, counting)
            : await (await import("../sync/sync-run.js")).runSync(client, opts, counting);
          if (r.halted && !flags.watch) {
            const { haltAdvice } = await import("../sync/sync-values.js");
            throw new CliError("usage", `sync halted (${r.halted.reason}): ${haltAdvice(r.halted)}`);
          }
          if (r.opsFailed > 0) failed = r;
          return syncSummary(r, opts.dryRun, planned);
        }, { sync: true });
      });
      // The summary is out; what failed sets the exit code, as a tree's failed files do.
      if (failed) throw new ReportedError(exitCodeOf(failed.firstFailure));
    });
}

/** The flags and the environment, once, as the run's options. */
export async function syncOptions(ctx: CommandContext, local: string, remote: string, flags: SyncFlags, env: NodeJS.ProcessEnv = process.env): Promise<SyncOptions> {
  const tree = treeOptions(ctx, local, folderPath(remote), { exclude: flags.exclude, include: flags.include, concurrency: flags.concurrency });
  return {
    local,
    root: resolve(local), // the run takes the realpath itself
    remote: tree.remote,
    dryRun: !!flags.dryRun,
    force: !!flags.force,
    maxDelete: maxDeleteOf(flags.maxDelete),
    filter: tree.filter,
    settleMs: await settleMsOf(env),
    concurrency: tree.concurrency,
    compress: tree.compress,
    signal: tree.signal,
  };
}

/** --max-delete N is a count; N% a share, as given (no floor: an explicit 0% means no deletes); the default alone lets a handful through. */
export function maxDeleteOf(flag: SyncFlags["maxDelete"]): MaxDelete {
  if (!flag) return DEFAULT_MAX_DELETE;
  if ("count" in flag) return { count: flag.count };
  return { percent: flag.percent, floor: 0 };
}

/** DRIVE_SYNC_SETTLE_MS, else push --watch's settle time. */
async function settleMsOf(env: NodeJS.ProcessEnv): Promise<number> {
  const raw = env.DRIVE_SYNC_SETTLE_MS;
  if (raw === undefined || raw === "") return (await import("../watch/push-loop.js")).SETTLE_MS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new CliError("usage", `DRIVE_SYNC_SETTLE_MS must be a whole number of milliseconds, not ${JSON.stringify(raw)}`);
  return n;
}

/** What the summary adds: the sync's own counts (SummaryExtra.sync selects the sync summary line). */
export function syncSummary(r: SyncResult, dryRun: boolean, planned: number): SummaryExtra {
  return {
    sync: true,
    rounds: r.rounds,
    ops_done: r.opsDone,
    ops_failed: r.opsFailed,
    conflicts: r.conflicts,
    pending: r.pending.length,
    ...(dryRun ? { dry_run: true, ops_planned: planned } : {}),
    ...(r.halted ? { halted: r.halted.reason } : {}),
  };
}

function exitCodeOf(code: string | undefined): number {
  return code !== undefined && code in exitCodes && code !== "ok" ? exitCodes[code as FailureKind] : exitCodes.internal;
}

/** The remote folder, and every folder above it, must be a folder on the server or nothing yet: a file there is refused before anything runs. */
async function remoteFolderOrNothing(client: DriveClient, remote: string): Promise<void> {
  const parts = remote ? remote.split("/") : [];
  for (let i = 1; i <= parts.length; i++) {
    const p = parts.slice(0, i).join("/");
    try {
      const r = await client.files.stat({ path: p });
      if (r.file && !r.file.deleted && r.file.kind !== EntryKind.FOLDER) {
        throw new CliError("usage", `${JSON.stringify(remote)}: ${JSON.stringify(p)} is a file on the server; sync needs a folder there, or nothing yet`);
      }
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.NotFound) continue; // nothing there (or a folder only implied): look further down
      throw err;
    }
  }
}
