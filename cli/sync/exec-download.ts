import { basename, dirname, join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { ContentHashKind, FileInfoSchema, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import { pullFile } from "../transfer/pull-file.js";
import { runParallel, withSlots } from "../transfer/run-parallel.js";
import { DEFAULT_PART_ATTEMPTS } from "../transfer/transfer-options.js";
import { fetchSmall } from "../tree/fetch-small.js";
import { remoteFull } from "../tree/remote-list.js";
import { SMALL_FILE_MAX, timestampOfNs } from "../tree/tree-attrs.js";
import { restoreAttrs, syncFolder, writeAtomically } from "../tree/write-local.js";
import { checkReplaces, lstatOrNull, localStatOf, nowNs, OpSkipped } from "./exec-check.js";
import { fileEvents, guarded, recordDone, settleItemError, type ExecContext } from "./exec-context.js";
import type { OpResult } from "./plan-effects.js";
import type { RemoteNode, SyncOp } from "./types.js";

export type DownloadOp = Extract<SyncOp, { type: "download" }>;

export function isSmallDownload(op: DownloadOp): boolean {
  return op.remote.size <= SMALL_FILE_MAX;
}

/** A node's hash as SyncNode spells it: "cl:" before the old chunk-list kind. */
function hashOfInfo(info: FileInfo): string {
  const hex = Buffer.from(info.contentHash).toString("hex");
  return info.contentHashKind === ContentHashKind.CHUNK_LIST ? `cl:${hex}` : hex;
}

/** What write-local.ts wants to know of the file: its hash (for the temporary name), mode and mtime, from the plan's remote node. */
function infoOf(remote: RemoteNode): FileInfo {
  return create(FileInfoSchema, {
    contentHash: Buffer.from(remote.hash.replace(/^cl:/, ""), "hex"),
    mode: remote.mode,
    ...(remote.mtimeUs ? { mtime: timestampOfNs(BigInt(remote.mtimeUs) * 1000n) } : {}),
  });
}

/**
 * The write's last check, right before the rename: the destination still
 * holds what the plan saw (or nothing), and the fence still passes (every
 * folder above the one checked, nothing but a file in the way).
 */
async function lastCheck(ctx: ExecContext, op: DownloadOp, dest: string): Promise<void> {
  await checkReplaces(op.path, dest, op.replaces, ctx.opts.signal);
  await ctx.fence.verifyFinal(op.path);
}

/** Runs a write inside the pinned parent folder of the op's path (fence.ts pinFolder), and stats what it wrote before letting go. */
async function inFolder(ctx: ExecContext, op: DownloadOp, write: (dest: string) => Promise<void>): Promise<OpResult> {
  const pin = await ctx.fence.pinFolder(op.path);
  try {
    const dest = join(pin.path, basename(op.path));
    await write(dest);
    ctx.fence.noteWritten(op.path);
    const recordedNs = nowNs();
    const st = await lstatOrNull(dest);
    if (!st) throw new Error(`${op.path}: gone right after it was written`);
    return { stat: localStatOf(st, recordedNs) };
  } finally {
    await pin.close();
  }
}

/** A batch of small files: checked, GetDownloads, one GET each in the pool, verified, written atomically, recorded together. */
export async function downloadSmallBatch(ctx: ExecContext, ops: DownloadOp[]): Promise<void> {
  const { signal } = ctx.opts;
  const wanted: DownloadOp[] = [];
  // A first check before any byte moves: most changes since the scan are caught here, at no cost.
  for (const op of ops) {
    await guarded(ctx, op, async () => {
      await checkReplaces(op.path, await ctx.fence.localPathFor(op.path), op.replaces, signal);
      wanted.push(op);
    });
  }
  if (wanted.length === 0) return;
  const got = await ctx.client.tree.getDownloads({ paths: wanted.map((op) => remoteFull(ctx.opts.remote, op.path)) }, { signal });
  if (got.results.length !== wanted.length) throw new Error(`GetDownloads answered ${got.results.length} paths for ${wanted.length}`);
  const ok: Array<{ op: SyncOp; result: OpResult }> = [];
  const large: DownloadOp[] = [];
  const dirs = new Set<string>();
  try {
    await runParallel(
      wanted.map((op, i) => ({ op, res: got.results[i]! })),
      wanted.length,
      ({ op, res }) =>
        guarded(ctx, op, async () => {
          if (res.result.case !== "download") return settleItemError(ctx, op, res.result.case === "error" ? res.result.value : undefined, remoteFull(ctx.opts.remote, op.path));
          const dl = res.result.value;
          if (!dl.file || hashOfInfo(dl.file) !== op.remote.hash) throw new OpSkipped(`${op.path}: the server moved on (revision ${dl.file?.revision ?? "?"} holds other content)`);
          const emit = fileEvents(ctx, op);
          emit({ type: "start", op: "pull", remote: remoteFull(ctx.opts.remote, op.path), local: op.path, bytesTotal: op.remote.size, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0 });
          emit({ type: "phase", phase: "transfer" });
          const fetched = await ctx.slots.run(() => fetchSmall(dl, op.path, { agents: ctx.agents, signal, partAttempts: DEFAULT_PART_ATTEMPTS }, emit), signal);
          if (!fetched) return void large.push(op);
          const result = await inFolder(ctx, op, (dest) => writeAtomically(dest, fetched.bytes, infoOf(op.remote), () => lastCheck(ctx, op, dest)));
          dirs.add(dirname(join(ctx.fence.root, op.path)));
          emit({ type: "done", revision: Number(dl.file.revision), contentHash: op.remote.hash, deduplicated: false });
          ok.push({ op, result });
        }),
      signal,
    );
  } finally {
    // Recorded only once on disk for good, the folders' entries synced first; on an abort too, for what was written.
    for (const d of dirs) await syncFolder(d);
    await recordDone(ctx, ok);
  }
  for (const op of large) await guarded(ctx, op, () => downloadLarge(ctx, op));
}

/**
 * A large file through pullFile, at the plan's revision (so its content is
 * the plan's hash, verified chunk by chunk and whole), its GETs in the
 * pool; the attributes and the last check go on the verified temporary
 * file right before the rename.
 */
export async function downloadLarge(ctx: ExecContext, op: DownloadOp): Promise<void> {
  const { signal } = ctx.opts;
  await checkReplaces(op.path, await ctx.fence.localPathFor(op.path), op.replaces, signal);
  const info = infoOf(op.remote);
  const result = await inFolder(ctx, op, async (dest) => {
    await withSlots(ctx.slots, () =>
      pullFile(
        ctx.client,
        {
          remote: remoteFull(ctx.opts.remote, op.path),
          local: dest,
          revision: op.remote.revision,
          concurrency: ctx.opts.concurrency,
          partAttempts: DEFAULT_PART_ATTEMPTS,
          signal,
          beforeRename: async (temp, content) => {
            const got = content.kind === "blake3" ? content.contentHash : `cl:${content.contentHash}`;
            if (got !== op.remote.hash) throw new OpSkipped(`${op.path}: revision ${op.remote.revision} holds other content than the plan saw`);
            await restoreAttrs(temp, info);
            await lastCheck(ctx, op, dest);
          },
        },
        fileEvents(ctx, op),
      ),
    );
  });
  await syncFolder(dirname(join(ctx.fence.root, op.path)));
  await recordDone(ctx, [{ op, result }]);
}
