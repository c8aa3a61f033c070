import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { PutItemSchema } from "../../gen/drive/v1/tree_pb.js";
import { EntryKind } from "../../gen/drive/v1/types_pb.js";
import { remoteFull } from "../tree/remote-list.js";
import { join } from "node:path";
import { batches } from "../tree/tree-run.js";
import { BATCH } from "../tree/tree-tuning.js";
import { lstatOrNull, localStatOf, nowNs } from "./exec-check.js";
import { recordDone, recordSoon, settleItemError, skipped, type DoneItem, type ExecContext } from "./exec-context.js";
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
  const done: DoneItem[] = [];
  // The local folder's stat goes into Synced, so a later rename of it is found by its inode: one move, not one per file.
  const stats = await Promise.all(ops.map(async (op) => {
    const st = await lstatOrNull(join(ctx.opts.root, op.path));
    return st?.isDirectory() ? localStatOf(st, nowNs()) : undefined;
  }));
  r.results.forEach((res, i) => {
    const op = ops[i]!;
    if (res.result.case === "committed" && res.result.value.kind === EntryKind.FOLDER) done.push({ op, ...(stats[i] ? { result: { stat: stats[i] } } : {}) });
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
  // Files first, then folders deepest first, each folder only once every delete under it went: otherwise it stays, implied by what is left.
  const depth = (p: string) => p.split("/").length;
  const waves: RemoteDelete[][] = [ops.filter((op) => op.kind === "file")];
  const folders = ops.filter((op) => op.kind === "folder").sort((a, b) => depth(b.path) - depth(a.path));
  for (const op of folders) {
    const last = waves[waves.length - 1]!;
    if (last.length && last[0]!.kind === "folder" && depth(last[0]!.path) === depth(op.path)) last.push(op);
    else waves.push([op]);
  }
  for (const wave of waves) {
    const ready = wave.filter((op) => op.kind === "file" || ops.every((o) => !o.path.startsWith(`${op.path}/`) || ok.has(o)));
    for (const op of wave) if (!ready.includes(op)) skipped(ctx, op, "something under this folder could not be deleted: the folder stays");
    const calls = ready.filter((op) => !(op.kind === "folder" && op.baseRevision === 0));
    for (const op of ready) if (!calls.includes(op)) ok.set(op, undefined);
    for (const b of batches(calls, BATCH)) {
      const items = b.map((op) => ({ path: remoteFull(ctx.opts.remote, op.path), baseRevision: BigInt(op.baseRevision) }));
      const r = await ctx.client.tree.deletePaths({ items }, { signal: ctx.opts.signal });
      if (r.results.length !== b.length) throw new Error(`DeletePaths answered ${r.results.length} items for ${b.length}`);
      r.results.forEach((res, i) => {
        const op = b[i]!;
        if (res.result.case === "committed") ok.set(op, undefined);
        else if (res.result.case === "error" && res.result.value.code === Code.NotFound) ok.set(op, "already gone on the server");
        else settleItemError(ctx, op, res.result.case === "error" ? res.result.value : undefined, items[i]!.path);
      });
    }
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
