import { setMaxListeners } from "node:events";
import { realpath } from "node:fs/promises";
import { InvalidArgumentError, type Command } from "commander";
import type { CommandContext } from "../commands/context.js";
import { runTree } from "../commands/run-transfer.js";
import { CliError } from "../errors.js";
import type { LocalIndex } from "../local/types.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { CompressMode } from "../transfer/compress/compress-policy.js";
import type { RunListener } from "../transfer/events.js";
import type { SummaryExtra } from "../ui/printer.js";
import type { RunWatch, WatchOptions } from "../watch/types.js";
import { TreeRefused, type TreeOptions, type TreeResult } from "./types.js";

/** Transfers in flight across a whole tree, when -c does not say: small files want more than one file's parts. */
export const DEFAULT_TREE_CONCURRENCY = 16;

export interface TreeFlags {
  delete?: boolean;
  maxDelete?: { percent: number } | { count: number };
  dryRun?: boolean;
  exclude: string[];
  include: string[];
  watch?: boolean;
}

/** The tree flags push and pull share, added to a command. */
export function addTreeFlags(cmd: Command): Command {
  const collect = (v: string, all: string[]) => [...all, v];
  return cmd
    .option("--delete", "folders: make the target match the source, removing what the source lacks (remote removals stay as versions)")
    .option("--max-delete <n>", "with --delete: refuse to delete more than this many entries, or this share of the target (default 50%)", parseMaxDelete)
    .option("--dry-run", "folders: print what would be done and change nothing")
    .option("--exclude <glob>", "folders: leave out paths matching this gitignore-style glob (repeatable)", collect, [] as string[])
    .option("--include <glob>", "folders: take only files matching this glob (repeatable)", collect, [] as string[])
    .option("--watch", "folders: keep running, sending (push) or applying (pull) changes as they happen");
}

export function parseMaxDelete(value: string): { percent: number } | { count: number } {
  const m = /^(\d+)(%?)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError("use a count like 100 or a percentage like 30%");
  const n = Number(m[1]);
  if (m[2]) {
    if (n > 100) throw new InvalidArgumentError("a percentage is at most 100%");
    return { percent: n };
  }
  return { count: n };
}

export function treeOptions(ctx: CommandContext, local: string, remote: string, flags: TreeFlags & { concurrency?: number; compress?: CompressMode; partSize?: number }, ignoreFile?: string): TreeOptions {
  const concurrency = flags.concurrency ?? DEFAULT_TREE_CONCURRENCY;
  // Every request in flight across the tree (transfers, batches in flight, the watch's stream) listens on it: not a leak.
  setMaxListeners(Math.max(10, concurrency * 8), ctx.signal);
  return {
    local,
    remote,
    delete: !!flags.delete,
    maxDelete: flags.maxDelete ?? { percent: 50 },
    dryRun: !!flags.dryRun,
    filter: { exclude: flags.exclude, include: flags.include, ...(ignoreFile !== undefined ? { ignoreFile } : {}) },
    concurrency,
    compress: flags.compress ?? "auto",
    ...(flags.partSize !== undefined ? { partSize: flags.partSize } : {}),
    signal: ctx.signal,
  };
}

/**
 * The tree machinery (LMDB, the ignore matcher, the walk) loads only when a
 * command works on a folder: a one-file push or pull must not pay its start-up
 * time and memory (the 1 GiB memory test's limit is 150 MiB resident).
 */
export async function readIgnoreFile(root: string): Promise<string | undefined> {
  return (await import("../local/filter.js")).readIgnoreFile(root);
}

/** The local index of this root (cli/local/: one per server, remote folder and local folder). */
export async function openTreeIndex(server: string, remoteRoot: string, localRoot: string): Promise<LocalIndex> {
  const { openIndex } = await import("../local/index-store.js");
  return openIndex({ server, remoteRoot, localRoot: await realpath(localRoot) });
}

/**
 * Runs a tree command through runTree (progress, a line per file, a
 * summary of files and bytes sent, skipped, deleted and failed, and a
 * non-zero exit when any file failed: see cli/errors.ts). A TreeRefused
 * becomes the usage or not_found error it is, with nothing changed.
 */
export async function runTreeCommand(ctx: CommandContext, op: "push" | "pull", fn: (emit: RunListener) => Promise<TreeResult>, dryRun = false): Promise<void> {
  await runTree(
    ctx,
    async (emit) => {
      try {
        return treeSummary(await fn(emit), dryRun);
      } catch (err) {
        if (err instanceof TreeRefused) throw new CliError(err.reason === "missing_root" ? "not_found" : "usage", err.message, { cause: err });
        throw err;
      }
    },
    { op },
  );
}

/** What the summary adds to accounting's own counts. */
export function treeSummary(r: TreeResult, dryRun: boolean): SummaryExtra {
  return {
    folders_made: r.foldersMade,
    ...(dryRun ? { dry_run: true } : {}),
    ...(r.unsettled.length ? { unsettled: r.unsettled.length } : {}),
    ...(r.cursor ? { cursor: r.cursor } : {}),
  };
}

/** --watch: cli/watch/ runs it; until that lands, a clear refusal. */
export async function runWatch(which: "push" | "pull", ctx: CommandContext, client: DriveClient, opts: WatchOptions, emit: RunListener): Promise<void> {
  const watch = await loadWatch(which);
  if (!watch) throw new CliError("usage", `drive ${which} --watch is not available yet in this build`);
  await watch(ctx, client, opts, emit);
}

async function loadWatch(which: "push" | "pull"): Promise<RunWatch | null> {
  const name = which === "push" ? "push-watch.js" : "pull-watch.js";
  try {
    const m = (await import(`../watch/${name}`)) as { runPushWatch?: RunWatch; runPullWatch?: RunWatch };
    return (which === "push" ? m.runPushWatch : m.runPullWatch) ?? null;
  } catch {
    return null;
  }
}
