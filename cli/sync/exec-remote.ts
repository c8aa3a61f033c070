import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { PutItemSchema } from "../../gen/drive/v1/tree_pb.js";
import { EntryKind } from "../../gen/drive/v1/types_pb.js";
import { remoteFull } from "../tree/remote-list.js";
import { recordDone, recordSoon, settleItemError, skipped, type ExecContext } from "./exec-context.js";
import type { SyncOp } from "./types.js";

type RemoteMkdir = Extract<SyncOp, { type: "remote_mkdir" }>;
type RemoteDelete = Extract<SyncOp, { type: "remote_delete" }>;
type RemoteMove = Extract<SyncOp, { type: "remote_move" }>;

/**
 * Folder entries in one BeginPuts, base revision 0: the path must hold no
 * live entry, and any folder entry there already is the same content, so
 * it commits unchanged. A file there is a REVISION_CONFLICT: skipped.
 */
export async function remoteMkdirs(ctx: ExecContext, ops: RemoteMkdir[]): Promise<void> {
  const items = ops.map((op) => create(PutItemSchema, { path: remoteFull(ctx.opts.remote, op.path), kind: EntryKind.FOLDER, size: 0n, baseRevision: 0n }));
  const r = await ctx.client.tree.beginPuts({ items }, { signal: ctx.opts.signal });
  if (r.results.length !== ops.length) throw new Error(`BeginPuts answered ${r.results.length} items for ${ops.length}`);
  const done: Array<{ op: SyncOp }> = [];
  r.results.forEach((res, i) => {
    const op = ops[i]!;
    if (res.result.case === "committed" && res.result.value.kind === EntryKind.FOLDER) done.push({ op });
    else if (res.result.case === "committed") skipped(ctx, op, `${items[i]!.path}: a file is at this path on the server`);
    else settleItemError(ctx, op, res.result.case === "error" ? res.result.value : undefined, items[i]!.path);
  });
  await recordDone(ctx, done);
}

/**
 * Deletions in one DeletePaths, each only at its base revision. A folder
 * only implied by paths under it (base 0) has nothing to delete: only
 * Synced changes. A path with nothing live is what was wanted: done.
 */
export async function remoteDeletes(ctx: ExecContext, ops: RemoteDelete[]): Promise<void> {
  const ok = new Map<SyncOp, string | undefined>();
  const calls = ops.filter((op) => !(op.kind === "folder" && op.baseRevision === 0));
  for (const op of ops) if (!calls.includes(op)) ok.set(op, undefined);
  if (calls.length) {
    const items = calls.map((op) => ({ path: remoteFull(ctx.opts.remote, op.path), baseRevision: BigInt(op.baseRevision) }));
    const r = await ctx.client.tree.deletePaths({ items }, { signal: ctx.opts.signal });
    if (r.results.length !== calls.length) throw new Error(`DeletePaths answered ${r.results.length} items for ${calls.length}`);
    r.results.forEach((res, i) => {
      const op = calls[i]!;
      if (res.result.case === "committed") ok.set(op, undefined);
      else if (res.result.case === "error" && res.result.value.code === Code.NotFound) ok.set(op, "already gone on the server");
      else settleItemError(ctx, op, res.result.case === "error" ? res.result.value : undefined, items[i]!.path);
    });
  }
  // In the plan's order: a folder's record after its children's.
  await recordDone(ctx, ops.filter((op) => ok.has(op)).map((op) => ({ op, ...(ok.get(op) ? { message: ok.get(op) } : {}) })));
}

/** One Move: a file only from its base revision; a folder with everything under it. */
export async function remoteMove(ctx: ExecContext, op: RemoteMove): Promise<void> {
  await ctx.client.tree.move(
    {
      fromPath: remoteFull(ctx.opts.remote, op.from),
      toPath: remoteFull(ctx.opts.remote, op.to),
      ...(op.kind === "file" ? { baseRevision: BigInt(op.baseRevision) } : {}),
    },
    { signal: ctx.opts.signal },
  );
  // With the local moves' records, in the order the moves ran.
  await recordSoon(ctx, { op }, []);
}
