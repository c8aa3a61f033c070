import { lstat, mkdir, rmdir, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { FileInfo } from "../../gen/drive/v1/types_pb.js";
import type { IndexEntry, LocalEntry, LocalIndex } from "../local/types.js";
import type { DriveClient } from "../rpc/drive-client.js";
import { createAgents, destroyAgents, type Agents } from "../transfer/part-http.js";
import { pullFile } from "../transfer/pull-file.js";
import { runParallel, Slots, withSlots } from "../transfer/run-parallel.js";
import { scanFile } from "../transfer/scan-file.js";
import { conflictName } from "./conflict-name.js";
import { fetchSmall } from "./fetch-small.js";
import { Fence, FenceRefused, isUnchanged, makeFilter, walk } from "./local-side.js";
import { planPull } from "./plan-pull.js";
import { listRemote, remoteFull, type RemoteEntry } from "./remote-list.js";
import { batches, isAbort, itemError, TreeRun } from "./tree-run.js";
import { checkRoot } from "./tree-root.js";
import { indexEntryOf, sameAttrsForPull, sameContent, SMALL_FILE_MAX } from "./tree-attrs.js";
import { diskEntry, restoreAttrs, syncFolder, writeAtomically } from "./write-local.js";
import { TreeRefused, type PullTree, type TreeOptions } from "./types.js";
import { BATCH, BATCHES_IN_FLIGHT, LARGE_LANES } from "./tree-tuning.js";
import { DEFAULT_PART_ATTEMPTS } from "../transfer/transfer-options.js";


/**
 * Pulls a remote folder into a local tree. Every local write goes through
 * the fence (a name from the server never writes outside the root), every
 * file is verified before it is renamed into place, and a local file is
 * replaced or deleted only when the index vouches that it is what drive
 * last wrote there; otherwise it is kept and the remote version is written
 * beside it as a conflicted copy. Small files come through GetDownloads
 * batches and one GET each, large ones through pullFile, all transfers in
 * one pool of opts.concurrency slots.
 */
export const pullTree: PullTree = async (client, index, opts, emit) => {
  const run = new TreeRun(emit);
  const root = await checkRoot(opts.local);
  const fence = await Fence.open(root);
  const filter = makeFilter(opts.filter);
  const listing = await listRemote(client, opts.remote, opts.signal, (entries) => emit({ type: "tree_scan", side: "remote", entries }));
  run.result.cursor = listing.cursor;
  const remote: RemoteEntry[] = [];
  const unknown: string[] = [];
  for (const r of listing.entries) {
    try {
      await fence.localPathFor(r.path);
      remote.push(r);
    } catch (err) {
      unknown.push(r.path.normalize("NFC"));
      run.warn(`${JSON.stringify(r.path)}: ${(err as Error).message}; skipped`, r.path);
      run.skipped(r.path, Number(r.info.size), "unsafe_name");
    }
  }
  const local = await walk(root, { filter, signal: opts.signal, onSkip: (path) => void unknown.push(path), onProgress: (entries) => emit({ type: "tree_scan", side: "local", entries }) });
  const plan = planPull({ remote, local, index, isUnchanged, filter, delete: opts.delete, maxDelete: opts.maxDelete, only: opts.only, unknown });
  const sending = plan.files.filter((f) => f.op !== "attrs");
  emit({
    type: "tree_plan",
    filesToSend: sending.length,
    bytesToSend: sending.reduce((s, f) => s + Number(f.remote.info.size), 0),
    filesUnchanged: plan.unchanged.length,
    bytesUnchanged: plan.unchanged.reduce((s, f) => s + f.disk.size, 0),
    filesToDelete: plan.deletes.length,
    foldersToMake: plan.folders.length,
  });
  if (plan.refused) throw new TreeRefused(plan.refused, "max_delete");
  for (const u of plan.unchanged) run.skipped(u.remote.path, u.disk.size, "unchanged");
  if (opts.dryRun) {
    for (const f of plan.files) run.warn(`dry run: would ${f.op === "attrs" ? "set the mode and mtime of" : f.op === "fetch" ? "fetch" : "compare and maybe fetch"} ${f.remote.path}`, f.remote.path);
    for (const f of plan.folders) run.warn(`dry run: would make folder ${f.path}`, f.path);
    for (const d of plan.deletes) run.warn(`dry run: would delete ${d.path}`, d.path);
    return run.result;
  }

  const ctx = new PullContext(client, index, opts, run, fence, createAgents(opts.concurrency));
  try {
    for (const f of plan.folders) await ctx.makeFolder(f);
    // attrs: the content is there as drive wrote it; only mode or mtime moved on the server.
    for (const f of plan.files) if (f.op === "attrs") await ctx.setAttrs(f.remote, f.recorded);
    const work: Wanted[] = [];
    for (const f of plan.files) {
      if (f.op === "attrs") continue;
      if (f.disk?.diskPath !== undefined) {
        // On disk in another Unicode form: the fence's rule, never a file of ours to compare, replace or sit beside.
        run.failed(-1, f.remote.path, new FenceRefused(f.remote.path, `the folder holds ${JSON.stringify(f.disk.diskPath)}, the same name in another Unicode form`));
        continue;
      }
      if (f.op === "conflict") work.push({ remote: f.remote, conflict: true });
      else if (f.op === "fetch") work.push({ remote: f.remote, conflict: false });
      else {
        const w = await ctx.check(f.remote, f.disk);
        if (w) work.push(w);
      }
    }
    const small = work.filter((w) => Number(w.remote.info.size) <= SMALL_FILE_MAX);
    const large = work.filter((w) => Number(w.remote.info.size) > SMALL_FILE_MAX);
    await Promise.all([
      runParallel(batches(small, BATCH), BATCHES_IN_FLIGHT, (b) => ctx.pullSmallBatch(b), opts.signal),
      runParallel(large, LARGE_LANES, (w) => ctx.pullLarge(w), opts.signal),
    ]);
    for (const k of plan.kept) {
      run.warn(`${k.path} is not on the server, but changed since drive wrote it: kept`, k.path);
      run.skipped(k.path, k.size, "changed_locally");
    }
    for (const d of plan.deletes) await ctx.deleteLocal(d);
    for (const f of plan.folderDeletes) await rmdir(ctx.diskAbs(f)).catch(() => undefined); // only when empty
  } finally {
    destroyAgents(ctx.agents);
  }
  return run.result;
};

/** A remote file to write: at its own path, or beside the local file as a conflicted copy. */
export interface Wanted {
  remote: RemoteEntry;
  conflict: boolean;
}

/** The work of one pull (or one apply of feed changes): the fence, the pool and the index together. */
export class PullContext {
  readonly slots: Slots;

  constructor(
    readonly client: DriveClient,
    readonly index: LocalIndex,
    readonly opts: TreeOptions,
    readonly run: TreeRun,
    readonly fence: Fence,
    readonly agents: Agents,
  ) {
    this.slots = new Slots(opts.concurrency);
  }

  /** A walked entry's own path on disk (its name as the disk spells it). */
  diskAbs(e: LocalEntry): string {
    return join(this.fence.root, ...(e.diskPath ?? e.path).split("/"));
  }

  async makeFolder(f: RemoteEntry): Promise<void> {
    try {
      const parent = await this.fence.prepareParent(f.path);
      const abs = join(parent, basename(f.path));
      await mkdir(abs).catch((err: NodeJS.ErrnoException) => (err.code === "EEXIST" ? undefined : Promise.reject(err)));
      const st = await lstat(abs);
      if (st.isSymbolicLink() || !st.isDirectory()) throw new FenceRefused(f.path, "something that is not a folder is where the folder goes");
      this.fence.noteWritten(f.path);
      // Recorded, so that a watch does not prune a folder the server keeps as an entry.
      await this.index.update([indexEntryOf(await diskEntry(f.path, abs), Buffer.alloc(0), 1, Number(f.info.revision))]);
      this.run.result.foldersMade++;
    } catch (err) {
      if (isAbort(err, this.opts.signal)) throw err;
      this.run.failed(-1, f.path, err);
    }
  }

  async setAttrs(r: RemoteEntry, recorded: IndexEntry): Promise<void> {
    const abs = await this.fence.localPathFor(r.path);
    await restoreAttrs(abs, r.info);
    const d = await diskEntry(r.path, abs);
    await this.index.update([indexEntryOf(d, recorded.contentHash, recorded.hashKind, Number(r.info.revision))]);
  }

  /**
   * A local file the index does not vouch for: read it. The same content
   * is adopted (attributes restored, recorded); other content is kept, and
   * the remote version goes beside it, once per remote revision.
   */
  async check(r: RemoteEntry, d: LocalEntry): Promise<Wanted | null> {
    const abs = this.diskAbs(d);
    let hash: Buffer;
    try {
      hash = (await scanFile(abs, { signal: this.opts.signal })).contentHash;
    } catch (err) {
      if (isAbort(err, this.opts.signal)) throw err;
      this.run.warn(`${r.path}: cannot be read to compare it (${(err as Error).message}); kept, not pulled`, r.path);
      this.run.skipped(r.path, d.size, "unreadable");
      return null;
    }
    const recorded = this.index.get(r.path);
    // What drive last wrote, only too fresh (or touched) to trust by stat: replace it as any file of ours.
    if (recorded?.kind === "file" && recorded.hashKind === 1 && recorded.contentHash.equals(hash) && !sameContent(hash, 1, r.info)) {
      return { remote: r, conflict: false };
    }
    if (sameContent(hash, 1, r.info)) {
      // Only when they differ: utimes moves the ctime, and a fresh ctime makes the entry racy (unchanged.ts) for a while.
      if (!sameAttrsForPull(d, r.info)) await restoreAttrs(abs, r.info);
      await this.index.update([indexEntryOf(await diskEntry(r.path, abs), hash, 1, Number(r.info.revision))]);
      this.run.skipped(r.path, d.size, "unchanged");
      return null;
    }
    return { remote: r, conflict: true };
  }

  /** Where a wanted file goes (relative to the root); null for a conflict already written for this revision. */
  private async target(w: Wanted): Promise<string | null> {
    if (!w.conflict) return w.remote.path;
    const key = `conflict:${w.remote.path}`;
    const rev = String(w.remote.info.revision);
    this.run.warn(`${w.remote.path} changed here since drive last wrote it: kept; the server's version is written beside it`, w.remote.path);
    this.run.skipped(w.remote.path, Number(w.remote.info.size), "changed_locally");
    if (this.index.getValue(key) === rev) return null; // this revision's copy was written already
    const first = conflictName(w.remote.path, new Date());
    let rel = first;
    for (let n = 2; await lstat(await this.fence.localPathFor(rel)).then(() => true, () => false); n++) rel = first.replace(/\)(\.[^.]*)?$/, ` ${n})$1`);
    return rel;
  }

  /**
   * Runs a write inside the pinned parent folder of rel (fence.ts
   * pinFolder): the path it gets cannot be redirected by a link swapped in
   * above; the disk entry is read there too, before the pin is let go.
   */
  private async inFolder<T>(rel: string, write: (dest: string) => Promise<T>): Promise<{ value: T; disk: LocalEntry }> {
    const pin = await this.fence.pinFolder(rel);
    try {
      const dest = join(pin.path, basename(rel));
      const value = await write(dest);
      this.fence.noteWritten(rel);
      return { value, disk: await diskEntry(rel, dest) };
    } finally {
      await pin.close();
    }
  }

  /** After a write: record it (conflicted copies are the user's, not drive's, so not recorded at the path). */
  private async record(w: Wanted, disk: LocalEntry, hashKind: 1 | 2): Promise<IndexEntry | null> {
    if (w.conflict) {
      await this.index.setValue(`conflict:${w.remote.path}`, String(w.remote.info.revision));
      return null;
    }
    return indexEntryOf(disk, Buffer.from(w.remote.info.contentHash), hashKind, Number(w.remote.info.revision));
  }

  async pullSmallBatch(b: Wanted[]): Promise<void> {
    const { opts, run } = this;
    const got = await this.client.tree.getDownloads({ paths: b.map((w) => remoteFull(opts.remote, w.remote.path)) }, { signal: opts.signal });
    if (got.results.length !== b.length) throw new Error(`GetDownloads answered ${got.results.length} paths for ${b.length}`);
    const puts: IndexEntry[] = [];
    const dirs = new Set<string>();
    const large: Wanted[] = [];
    await runParallel(
      b.map((w, i) => ({ w, res: got.results[i]! })),
      b.length,
      async ({ w, res }, signal) => {
        const { key, emit } = run.file();
        if (res.result.case !== "download") return run.failed(key, w.remote.path, itemError(res.result.case === "error" ? res.result.value : undefined, w.remote.path));
        const dl = res.result.value;
        const info: FileInfo = dl.file ?? w.remote.info;
        const wantedNow: Wanted = { remote: { ...w.remote, info }, conflict: w.conflict };
        try {
          const rel = await this.target(wantedNow);
          if (!rel) return;
          emit({ type: "start", op: "pull", remote: remoteFull(opts.remote, w.remote.path), local: join(opts.local, rel), bytesTotal: Number(info.size), partsTotal: 1, bytesSkipped: 0, partsSkipped: 0 });
          emit({ type: "phase", phase: "transfer" });
          const fetched = await this.slots.run(() => fetchSmall(dl, w.remote.path, { agents: this.agents, signal, partAttempts: DEFAULT_PART_ATTEMPTS }, emit), signal);
          if (!fetched) return void large.push(wantedNow);
          const { disk } = await this.inFolder(rel, (dest) => writeAtomically(dest, fetched.bytes, info, () => this.fence.verifyFinal(rel)));
          dirs.add(dirname(join(this.fence.root, rel)));
          const e = await this.record(wantedNow, disk, fetched.hashKind);
          if (e) puts.push(e);
          emit({ type: "done", revision: Number(info.revision), contentHash: Buffer.from(info.contentHash).toString("hex"), deduplicated: false });
          run.result.filesSent++;
          run.result.bytesSent += Number(info.size);
        } catch (err) {
          if (isAbort(err, opts.signal)) throw err;
          run.failed(key, w.remote.path, err);
        }
      },
      opts.signal,
    );
    for (const d of dirs) await syncFolder(d);
    // Recorded only once renamed into place: the index never claims what the disk does not hold.
    if (puts.length) await this.index.update(puts);
    for (const w of large) await this.pullLarge(w);
  }

  async pullLarge(w: Wanted): Promise<void> {
    const { opts, run } = this;
    const { key, emit } = run.file();
    try {
      const rel = await this.target(w);
      if (!rel) return;
      const { value: r, disk } = await this.inFolder(rel, async (dest) => {
        const got = await withSlots(this.slots, () =>
          pullFile(
            this.client,
            { remote: remoteFull(opts.remote, w.remote.path), local: dest, revision: Number(w.remote.info.revision), concurrency: opts.concurrency, partAttempts: DEFAULT_PART_ATTEMPTS, signal: opts.signal },
            emit,
          ),
        );
        await restoreAttrs(dest, w.remote.info);
        return got;
      });
      const e = await this.record(w, disk, r.contentHashKind === "blake3" ? 1 : 2);
      if (e) await this.index.update([e]);
      run.result.filesSent++;
      run.result.bytesSent += r.size - r.bytesReused;
    } catch (err) {
      if (isAbort(err, opts.signal)) throw err;
      run.failed(key, w.remote.path, err);
    }
  }

  /** Removes a local file only if it still is what drive wrote, checked again just before. */
  async deleteLocal(d: LocalEntry): Promise<void> {
    const abs = this.diskAbs(d);
    const now = await diskEntry(d.path, abs).catch(() => null);
    if (!now) {
      await this.index.update([], [d.path]);
      return;
    }
    if (!(await this.stillOurs(abs, now))) {
      this.run.warn(`${d.path} changed since drive wrote it: kept, not deleted`, d.path);
      return this.run.skipped(d.path, d.size, "changed_locally");
    }
    await unlink(abs);
    await this.index.update([], [d.path]);
    this.run.deleted(d.path);
  }

  /**
   * The disk still holds what drive last wrote at this path: by stat alone
   * when the index vouches (unchanged.ts), else, for an entry too fresh to
   * trust by stat (racy) or otherwise moved, by reading it: its BLAKE3
   * must be the recorded content hash.
   */
  async stillOurs(abs: string, disk: LocalEntry): Promise<boolean> {
    const recorded = this.index.get(disk.path);
    if (isUnchanged(disk, recorded)) return true;
    if (!recorded || recorded.kind !== "file" || recorded.hashKind !== 1 || recorded.size !== disk.size) return false;
    const scan = await scanFile(abs, { signal: this.opts.signal }).catch(() => null);
    return !!scan && scan.contentHash.equals(recorded.contentHash);
  }
}
