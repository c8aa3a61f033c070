import { stat } from "node:fs/promises";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { PutItemSchema, type PutItem, type PutResult } from "../../gen/drive/v1/tree_pb.js";
import { ContentHashKind, EntryKind, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import type { DriveClient } from "../rpc/drive-client.js";
import type { LocalEntry, LocalIndex, IndexEntry } from "../local/types.js";
import { createAgents, destroyAgents, putStored, type Agents, type EtagKind } from "../transfer/part-http.js";
import { pushFile } from "../transfer/push-file.js";
import { runParallel, Slots, withSlots } from "../transfer/run-parallel.js";
import { sendWithRetry } from "../transfer/transfer-options.js";
import { isUnchanged, makeFilter, walk } from "./local-side.js";
import { planPush, type PushFile } from "./plan-push.js";
import { readSmall, type SmallFile } from "./read-small.js";
import { listRemote, remoteFull } from "./remote-list.js";
import { checkRoot } from "./tree-root.js";
import { batches, isAbort, itemError, TreeRun } from "./tree-run.js";
import { indexEntryOf, sameAttrsForPush, sameContent, SMALL_FILE_MAX, timestampOfNs } from "./tree-attrs.js";
import { TreeRefused, type PushTree, type TreeOptions } from "./types.js";
import { BATCH, BATCHES_IN_FLIGHT, LARGE_LANES } from "./tree-tuning.js";
import { DEFAULT_PART_ATTEMPTS } from "../transfer/transfer-options.js";

/** Small files read at once: local I/O, outside the transfer pool. */
const READ_LANES = 16;

/**
 * Pushes a local tree into a remote folder: walk, list, plan, then small
 * files through TreeService batches (BeginPuts, one PUT each, CommitPuts)
 * and large ones through pushFile, all transfers sharing one pool of
 * opts.concurrency slots. Each committed file is recorded in the index only
 * after its commit. With --delete, remote paths the source lacks are
 * deleted (they stay as versions), within the --max-delete guard, which is
 * checked before anything changes.
 */
export const pushTree: PushTree = async (client, index, opts, emit) => {
  const run = new TreeRun(emit);
  const root = await checkRoot(opts.local);
  const filter = makeFilter(opts.filter);
  const unknown: string[] = [];
  const local = await walk(root, {
    filter,
    signal: opts.signal,
    onSkip: (path, reason, detail) => {
      unknown.push(path);
      if (reason === "unreadable") run.warn(`${path}: cannot be read (${detail}); skipped`, path);
      else run.warn(`${path}: ${detail}`, path);
      run.skipped(path, 0, reason);
    },
    onProgress: (entries) => emit({ type: "tree_scan", side: "local", entries }),
  });
  const listing = await listRemote(client, opts.remote, opts.signal, (entries) => emit({ type: "tree_scan", side: "remote", entries }));
  run.result.cursor = listing.cursor;
  const plan = planPush({ local, index, isUnchanged, remote: listing.entries, filter, delete: opts.delete, maxDelete: opts.maxDelete, only: opts.only, unknown });
  emit({
    type: "tree_plan",
    filesToSend: plan.send.length,
    bytesToSend: plan.send.reduce((s, f) => s + f.entry.size, 0),
    filesUnchanged: plan.unchanged.length,
    bytesUnchanged: plan.unchanged.reduce((s, f) => s + f.entry.size, 0),
    filesToDelete: plan.deletes.length,
    foldersToMake: plan.folders.length,
  });
  if (plan.refused) throw new TreeRefused(plan.refused, "max_delete");
  for (const u of plan.unchanged) run.skipped(u.entry.path, u.entry.size, "unchanged");
  if (opts.dryRun) {
    for (const f of plan.send) run.warn(`dry run: would send ${f.entry.path} (${f.entry.size} bytes)`, f.entry.path);
    for (const f of plan.folders) run.warn(`dry run: would make folder ${f.path || "(the target)"}`, f.path);
    for (const d of plan.deletes) run.warn(`dry run: would delete ${d.path}`, d.path);
    return run.result;
  }

  const slots = new Slots(opts.concurrency);
  const agents = createAgents(opts.concurrency);
  const ctx: PushContext = { client, index, opts, run, root, slots, agents, etags: { kind: "unknown" } };
  try {
    const small = plan.send.filter((f) => f.entry.size <= SMALL_FILE_MAX);
    const large = plan.send.filter((f) => f.entry.size > SMALL_FILE_MAX);
    await Promise.all([
      runParallel(batches(small, BATCH), BATCHES_IN_FLIGHT, (b) => pushSmallBatch(ctx, b), opts.signal),
      runParallel(large, LARGE_LANES, (f) => pushLarge(ctx, f), opts.signal),
    ]);
    await makeFolders(ctx, plan.folders);
    for (const b of batches(plan.deletes, BATCH)) await deleteBatch(ctx, b);
  } finally {
    destroyAgents(agents);
  }
  return run.result;
};

interface PushContext {
  client: DriveClient;
  index: LocalIndex;
  opts: TreeOptions;
  run: TreeRun;
  root: string;
  slots: Slots;
  agents: Agents;
  etags: EtagKind;
}

interface ReadyFile {
  file: PushFile;
  key: number;
  emit: ReturnType<TreeRun["file"]>["emit"];
  data: SmallFile;
}

const diskPathOf = (root: string, e: LocalEntry) => join(root, ...(e.diskPath ?? e.path).split("/"));

/** Too recently changed for a watch to send (opts.settleMs). */
function unsettled(opts: TreeOptions, mtimeNs: bigint): boolean {
  return opts.settleMs !== undefined && Date.now() - Number(mtimeNs / 1_000_000n) < opts.settleMs;
}

/** Reads a batch of small files, begins their puts, PUTs the pending ones in the pool, commits, records. */
async function pushSmallBatch(ctx: PushContext, files: PushFile[]): Promise<void> {
  const { run, opts } = ctx;
  const ready: ReadyFile[] = [];
  const indexPuts: IndexEntry[] = [];
  await runParallel(
    files,
    READ_LANES,
    async (f) => {
      if (unsettled(opts, f.entry.mtimeNs)) return void run.result.unsettled.push(f.entry.path);
      let data: SmallFile | null;
      try {
        data = await readSmall(diskPathOf(ctx.root, f.entry), SMALL_FILE_MAX);
      } catch (err) {
        if (isAbort(err, opts.signal)) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") return; // gone since the walk: nothing to send
        run.warn(`${f.entry.path}: cannot be read (${(err as Error).message}); skipped`, f.entry.path);
        return run.skipped(f.entry.path, f.entry.size, "unreadable");
      }
      if (!data) {
        // Changed while it was read: a watch looks again later; a one-off push says so and goes on.
        if (opts.settleMs !== undefined) return void run.result.unsettled.push(f.entry.path);
        run.warn(`${f.entry.path} changed while it was being read; skipped, push again when it is quiet`, f.entry.path);
        return run.skipped(f.entry.path, f.entry.size, "unreadable");
      }
      const disk: LocalEntry = { ...f.entry, size: data.size, mtimeNs: data.mtimeNs, ctimeNs: data.ctimeNs, ino: data.ino, dev: data.dev, mode: data.mode };
      // Hashed at last, it may turn out to be what the remote holds: nothing to send, only to record.
      if (f.remote && sameContent(data.contentHash, 1, f.remote.info) && sameAttrsForPush(disk, f.remote.info)) {
        indexPuts.push({ ...indexEntryOf(disk, data.contentHash, 1, Number(f.remote.info.revision)), recordedNs: data.recordedNs });
        return run.skipped(f.entry.path, data.size, "unchanged");
      }
      const { key, emit } = run.file();
      ready.push({ file: { ...f, entry: disk }, key, emit, data });
    },
    opts.signal,
  );
  if (indexPuts.length) await ctx.index.update(indexPuts);
  if (ready.length === 0) return;

  const items = ready.map((r) => putItemOf(ctx, r));
  const begun = await ctx.client.tree.beginPuts({ items }, { signal: opts.signal });
  if (begun.results.length !== ready.length) throw new Error(`BeginPuts answered ${begun.results.length} items for ${ready.length}`);
  const pending: Array<{ r: ReadyFile; uploadId: string; url: string; headers: Record<string, string> }> = [];
  const committed: Array<{ r: ReadyFile; info: FileInfo; sent: boolean }> = [];
  begun.results.forEach((res, i) => {
    const r = ready[i]!;
    startEvents(ctx, r);
    if (res.result.case === "committed") committed.push({ r, info: res.result.value, sent: false });
    else if (res.result.case === "pending") pending.push({ r, uploadId: res.result.value.uploadId, url: res.result.value.url, headers: res.result.value.headers });
    else run.failed(r.key, r.file.entry.path, itemError(res.result.case === "error" ? res.result.value : undefined, remoteFull(opts.remote, r.file.entry.path)));
  });

  const put: Array<{ r: ReadyFile; uploadId: string }> = [];
  await runParallel(
    pending,
    pending.length || 1,
    async (p) => {
      try {
        await ctx.slots.run(() => putBytes(ctx, p.r, p.url, p.headers), opts.signal);
        put.push(p);
      } catch (err) {
        if (isAbort(err, opts.signal)) throw err;
        run.failed(p.r.key, p.r.file.entry.path, err);
      }
    },
    opts.signal,
  );
  if (put.length) {
    const done = await ctx.client.tree.commitPuts({ uploadIds: put.map((p) => p.uploadId) }, { signal: opts.signal });
    if (done.results.length !== put.length) throw new Error(`CommitPuts answered ${done.results.length} items for ${put.length}`);
    done.results.forEach((res, i) => {
      const p = put[i]!;
      if (res.result.case === "committed") committed.push({ r: p.r, info: res.result.value, sent: true });
      else run.failed(p.r.key, p.r.file.entry.path, itemError(res.result.case === "error" ? res.result.value : undefined, remoteFull(opts.remote, p.r.file.entry.path)));
    });
  }
  // Recorded only once committed: the index never claims what the server does not hold.
  await ctx.index.update(committed.map(({ r, info }) => ({ ...indexEntryOf(r.file.entry, r.data.contentHash, 1, Number(info.revision)), recordedNs: r.data.recordedNs })));
  for (const { r, info, sent } of committed) {
    r.emit({ type: "done", revision: Number(info.revision), contentHash: r.data.contentHash.toString("hex"), deduplicated: !sent });
    run.result.filesSent++;
    if (sent) run.result.bytesSent += r.data.size;
  }
  if (opts.settleMs !== undefined) await recheck(ctx, committed.map((c) => c.r));
}

function putItemOf(ctx: PushContext, r: ReadyFile): PutItem {
  const e = r.file.entry;
  return create(PutItemSchema, {
    path: remoteFull(ctx.opts.remote, e.path),
    kind: EntryKind.FILE,
    size: BigInt(r.data.size),
    contentHash: r.data.contentHash,
    contentHashKind: ContentHashKind.BLAKE3,
    chunks: r.data.chunks.map((c) => ({ size: BigInt(c.size), hash: c.hash })),
    // Based on the listing: a remote file that changed since is not overwritten.
    baseRevision: r.file.remote ? r.file.remote.info.revision : 0n,
    mode: e.mode,
    mtime: timestampOfNs(e.mtimeNs),
  });
}

function startEvents(ctx: PushContext, r: ReadyFile): void {
  const e = r.file.entry;
  r.emit({ type: "start", op: "push", remote: remoteFull(ctx.opts.remote, e.path), local: join(ctx.opts.local, e.path), bytesTotal: r.data.size, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0 });
}

/** One PUT of the whole file, from the bytes that were hashed, with the part retries of any transfer. */
async function putBytes(ctx: PushContext, r: ReadyFile, url: string, headers: Record<string, string>): Promise<void> {
  const size = r.data.size;
  r.emit({ type: "phase", phase: "transfer" });
  r.emit({ type: "part_start", partNumber: 1, size });
  const opts = { concurrency: ctx.opts.concurrency, partAttempts: DEFAULT_PART_ATTEMPTS, signal: ctx.opts.signal };
  await sendWithRetry(opts, 1, r.emit, ctx.opts.signal, (onBytes) =>
    putStored({ url, headers, size, body: () => (size ? [r.data.bytes] : []), agents: ctx.agents, signal: ctx.opts.signal, onBytes, etags: ctx.etags }),
  );
  r.emit({ type: "part_done", partNumber: 1, size });
}

/** push --watch: a file that changed while it was sent is sent again later. */
async function recheck(ctx: PushContext, sent: ReadyFile[]): Promise<void> {
  for (const r of sent) {
    const now = await stat(diskPathOf(ctx.root, r.file.entry), { bigint: true }).catch(() => null);
    if (!now || now.mtimeNs !== r.data.mtimeNs || now.size !== BigInt(r.data.size)) ctx.run.result.unsettled.push(r.file.entry.path);
  }
}

/** A large file through UploadService, its parts in the tree's pool. */
async function pushLarge(ctx: PushContext, f: PushFile): Promise<void> {
  const { run, opts } = ctx;
  if (unsettled(opts, f.entry.mtimeNs)) return void run.result.unsettled.push(f.entry.path);
  const { key, emit } = run.file();
  const path = diskPathOf(ctx.root, f.entry);
  const before = await stat(path, { bigint: true }).catch(() => null);
  if (!before) return;
  try {
    const r = await withSlots(ctx.slots, () =>
      pushFile(
        ctx.client,
        {
          local: path,
          remote: remoteFull(opts.remote, f.entry.path),
          baseRevision: f.remote ? Number(f.remote.info.revision) : 0,
          partSize: opts.partSize,
          compress: opts.compress,
          concurrency: opts.concurrency,
          partAttempts: DEFAULT_PART_ATTEMPTS,
          signal: opts.signal,
          mode: Number(before.mode & 0o7777n),
          mtime: timestampOfNs(before.mtimeNs),
        },
        emit,
      ),
    );
    const after = await stat(path, { bigint: true }).catch(() => null);
    const disk: LocalEntry = { ...f.entry, size: Number(before.size), mtimeNs: before.mtimeNs, ctimeNs: before.ctimeNs, ino: before.ino, dev: before.dev, mode: Number(before.mode & 0o7777n) };
    const steady = after && after.mtimeNs === before.mtimeNs && after.size === before.size && after.ctimeNs === before.ctimeNs;
    // Only a file that held still around the push is recorded: its stat then matches the content pushed.
    if (steady) await ctx.index.update([indexEntryOf(disk, Buffer.from(r.contentHash, "hex"), 1, r.revision)]);
    else if (opts.settleMs !== undefined) run.result.unsettled.push(f.entry.path);
    run.result.filesSent++;
    if (!r.deduplicated) run.result.bytesSent += r.size - r.bytesCopied;
  } catch (err) {
    if (isAbort(err, opts.signal)) throw err;
    run.failed(key, f.entry.path, err);
  }
}

/** Folder entries for empty folders ("" is the remote folder itself). */
async function makeFolders(ctx: PushContext, folders: LocalEntry[]): Promise<void> {
  const { opts, run } = ctx;
  const wanted = folders.filter((f) => f.path !== "" || opts.remote !== "");
  for (const b of batches(wanted, BATCH)) {
    const items = b.map((f) =>
      create(PutItemSchema, {
        path: f.path ? remoteFull(opts.remote, f.path) : opts.remote,
        kind: EntryKind.FOLDER,
        size: 0n,
        mode: f.mode,
        ...(f.mtimeNs ? { mtime: timestampOfNs(f.mtimeNs) } : {}),
      }),
    );
    const r = await ctx.client.tree.beginPuts({ items }, { signal: opts.signal });
    r.results.forEach((res: PutResult, i) => {
      if (res.result.case === "committed") run.result.foldersMade++;
      else run.failed(-1, b[i]!.path, itemError(res.result.case === "error" ? res.result.value : undefined, items[i]!.path));
    });
  }
}

async function deleteBatch(ctx: PushContext, b: Array<{ path: string; info: FileInfo }>): Promise<void> {
  const { opts, run } = ctx;
  const r = await ctx.client.tree.deletePaths({ items: b.map((d) => ({ path: remoteFull(opts.remote, d.path), baseRevision: d.info.revision })) }, { signal: opts.signal });
  const gone: string[] = [];
  r.results.forEach((res, i) => {
    const d = b[i]!;
    // Already gone is what was wanted.
    if (res.result.case === "committed" || (res.result.case === "error" && res.result.value.code === Code.NotFound)) {
      gone.push(d.path);
      run.deleted(d.path);
    } else run.failed(-1, d.path, itemError(res.result.case === "error" ? res.result.value : undefined, remoteFull(opts.remote, d.path)));
  });
  await ctx.index.update([], gone.filter((p) => ctx.index.get(p)));
}
