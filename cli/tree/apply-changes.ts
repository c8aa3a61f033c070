import { lstat, rename, rmdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ChangeOp, type Change } from "../../gen/drive/v1/feed_pb.js";
import { ContentHashKind, EntryKind } from "../../gen/drive/v1/types_pb.js";
import { scanFile } from "../transfer/scan-file.js";
import { indexEntryOf } from "./tree-attrs.js";
import type { LocalEntry } from "../local/types.js";
import { createAgents, destroyAgents } from "../transfer/part-http.js";
import { Fence, isUnchanged, makeFilter } from "./local-side.js";
import { planPull } from "./plan-pull.js";
import { PullContext, type Wanted } from "./pull-tree.js";
import { remotePrefix, type RemoteEntry } from "./remote-list.js";
import { checkRoot } from "./tree-root.js";
import { filteredOut } from "./tree-attrs.js";
import { TreeRun, isAbort } from "./tree-run.js";
import { diskEntry } from "./write-local.js";
import type { ApplyChanges } from "./types.js";

/**
 * pull --watch: applies feed changes to the local tree, in order, by the
 * rules of a pull: puts are fetched (a run of them in one GetDownloads
 * batch), deletes remove a file only when it is what drive wrote, moves
 * rename atomically when the source is what drive wrote (else the
 * destination is fetched and the source kept), attribute changes are
 * applied to files drive wrote. Changes outside opts.remote are ignored; a
 * move out of it is a delete, a move into it a put.
 */
export const applyChanges: ApplyChanges = async (client, index, opts, changes, emit) => {
  const run = new TreeRun(emit);
  const root = await checkRoot(opts.local);
  const fence = await Fence.open(root);
  const filter = makeFilter(opts.filter);
  const ctx = new PullContext(client, index, opts, run, fence, createAgents(opts.concurrency));
  const prefix = remotePrefix(opts.remote);
  const rel = (p: string): string | null => (p.startsWith(prefix) && p.length > prefix.length ? p.slice(prefix.length) : null);
  const ok = (p: string | null, kind: "file" | "folder"): p is string => p !== null && !filteredOut(filter, p, kind);
  let puts: RemoteEntry[] = [];
  const flush = async () => {
    if (puts.length) await putAll(ctx, puts);
    puts = [];
  };
  try {
    for (const c of changes) {
      opts.signal.throwIfAborted();
      const info = c.file;
      if (!info) continue;
      const kind = info.kind === EntryKind.FOLDER ? "folder" : "file";
      const to = rel(info.path);
      const entry = (p: string): RemoteEntry => ({ path: p, kind, info });
      try {
        if (c.op === ChangeOp.PUT || c.op === ChangeOp.ATTRS) {
          if (!ok(to, kind)) continue;
          if (puts.some((p) => p.path === to)) await flush(); // one path once per batch, in order
          puts.push(entry(to));
          continue;
        }
        await flush();
        if (c.op === ChangeOp.DELETE) {
          if (ok(to, kind)) await removeLocal(ctx, to, kind, info.path);
        } else if (c.op === ChangeOp.MOVE) {
          const from = rel(c.fromPath);
          const fromOk = ok(from, kind);
          const toOk = ok(to, kind);
          if (fromOk && toOk) await moveLocal(ctx, from, entry(to), c.fromPath);
          else if (fromOk) await removeLocal(ctx, from, kind, c.fromPath);
          else if (toOk) puts.push(entry(to));
        }
      } catch (err) {
        if (isAbort(err, opts.signal)) throw err;
        run.failed(-1, to ?? info.path, err);
      }
    }
    await flush();
  } finally {
    destroyAgents(ctx.agents);
  }
  run.result.cursor = changes.at(-1)?.cursor ?? "";
  return run.result;
};

/** Puts and attribute changes, planned as a pull of just these paths against the disk and the index. */
async function putAll(ctx: PullContext, entries: RemoteEntry[]): Promise<void> {
  const local: LocalEntry[] = [];
  for (const e of entries) {
    const d = await diskEntry(e.path, await ctx.fence.localPathFor(e.path)).catch(() => null);
    if (d) local.push(d);
  }
  const plan = planPull({ remote: entries, local, index: ctx.index, isUnchanged, filter: makeFilter({ exclude: [], include: [] }), delete: false, maxDelete: { percent: 100 } });
  for (const f of plan.folders) await ctx.makeFolder(f);
  const work: Wanted[] = [];
  for (const f of plan.files) {
    if (f.op === "attrs") await ctx.setAttrs(f.remote, f.recorded);
    else if (f.op === "fetch") work.push({ remote: f.remote, conflict: false });
    else if (f.op === "conflict") work.push({ remote: f.remote, conflict: true });
    else {
      const w = await ctx.check(f.remote, f.disk);
      if (w) work.push(w);
    }
  }
  for (const u of plan.unchanged) ctx.run.skipped(u.remote.path, u.disk.size, "unchanged");
  if (work.length) await ctx.pullSmallBatch(work);
}

/** A remote delete: the local file goes only when it is what drive wrote; an empty folder goes. */
async function removeLocal(ctx: PullContext, path: string, kind: "file" | "folder", remotePath: string): Promise<void> {
  const abs = await ctx.fence.localPathFor(path);
  const d = await diskEntry(path, abs).catch(() => null);
  if (!d) {
    if (ctx.index.get(path)) await ctx.index.update([], [path]);
    return;
  }
  if (d.kind === "file" && !ctx.index.get(path)) await adoptIfRemote(ctx, d, abs, remotePath);
  if (d.kind === "folder") {
    if (kind === "folder") {
      await rmdir(abs).then(() => ctx.run.deleted(path), () => undefined);
      if (ctx.index.get(path)) await ctx.index.update([], [path]);
    }
    return;
  }
  await ctx.deleteLocal(d);
  await pruneEmpty(ctx, path);
}

/**
 * A remote move inside the tree: renamed locally, atomically, when the
 * source is what drive wrote and nothing is at the destination; otherwise
 * the destination is fetched (by the put rules) and the source left as the
 * conflict rules say (kept if it changed, removed if drive wrote it).
 */
async function moveLocal(ctx: PullContext, from: string, to: RemoteEntry, remoteFrom: string): Promise<void> {
  const absFrom = await ctx.fence.localPathFor(from);
  const d = await diskEntry(from, absFrom).catch(() => null);
  const recorded = ctx.index.get(from);
  const there = await lstat(await ctx.fence.localPathFor(to.path)).catch(() => null);
  if (d && d.kind === "file" && !there && recorded && (await ctx.stillOurs(absFrom, d))) {
    const absTo = join(await ctx.fence.prepareParent(to.path), basename(to.path));
    await ctx.fence.verifyFinal(to.path);
    await rename(absFrom, absTo);
    ctx.fence.noteWritten(to.path);
    await ctx.index.move(from, to.path);
    const moved = await diskEntry(to.path, absTo);
    await ctx.index.update([{ ...recorded!, ...moved, contentHash: recorded!.contentHash, hashKind: recorded!.hashKind, revision: Number(to.info.revision) }]);
    await pruneEmpty(ctx, from);
    return;
  }
  if (to.kind === "folder") await ctx.makeFolder(to);
  else await putAll(ctx, [to]);
  if (d) await removeLocal(ctx, from, to.kind, remoteFrom);
}

/**
 * A file with no index entry where a remote delete or move-away lands: a
 * pull killed between its rename into place and its index write leaves
 * exactly that. When its bytes are the content the path held just before
 * (the version under the deletion), it is what drive wrote, not a local
 * change: record it, so the delete applies. Anything else stays unknown
 * and is kept.
 */
async function adoptIfRemote(ctx: PullContext, d: LocalEntry, abs: string, remotePath: string): Promise<void> {
  const { versions } = await ctx.client.files.listVersions({ path: remotePath, pageSize: 2 }, { signal: ctx.opts.signal }).catch(() => ({ versions: [] }));
  const before = versions.find((v) => !v.deleted);
  if (!before || before.contentHashKind !== ContentHashKind.BLAKE3 || Number(before.size) !== d.size) return;
  const scan = await scanFile(abs, { signal: ctx.opts.signal }).catch(() => null);
  if (!scan || !scan.contentHash.equals(Buffer.from(before.contentHash))) return;
  await ctx.index.update([indexEntryOf(d, scan.contentHash, 1, Number(before.revision))]);
}

/** Folders a move or delete emptied go too, up to (never including) the root. */
async function pruneEmpty(ctx: PullContext, path: string): Promise<void> {
  for (let p = dirname(path); p !== "." && p !== ""; p = dirname(p)) {
    if (ctx.index.get(p)?.kind === "folder") return; // a folder entry of the server's: it stays
    const abs = await ctx.fence.localPathFor(p);
    try {
      await rmdir(abs);
    } catch {
      return; // not empty, or not ours to remove
    }
  }
}

export type { Change };
