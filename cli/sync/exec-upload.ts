import { lstat } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import { PutItemSchema, type PutItem } from "../../gen/drive/v1/tree_pb.js";
import { ContentHashKind, EntryKind, type FileInfo } from "../../gen/drive/v1/types_pb.js";
import { putStored } from "../transfer/part-http.js";
import { pushFile } from "../transfer/push-file.js";
import { runParallel, withSlots } from "../transfer/run-parallel.js";
import { scanFileCached } from "../transfer/scan-cache.js";
import { DEFAULT_PART_ATTEMPTS, sendWithRetry } from "../transfer/transfer-options.js";
import type { TransferListener } from "../transfer/events.js";
import { readSmall, type SmallFile } from "../tree/read-small.js";
import { remoteFull } from "../tree/remote-list.js";
import { microsOf, SMALL_FILE_MAX, timestampOfNs } from "../tree/tree-attrs.js";
import { localStatOf, lstatOrNull, nowNs, OpSkipped, sameEntry } from "./exec-check.js";
import { fileEvents, guarded, recordDone, settleItemError, skipped, type ExecContext } from "./exec-context.js";
import type { OpResult } from "./plan-effects.js";
import type { LocalStat, SyncOp } from "./types.js";

/** upload and remote_attrs are one thing to the server: this content with these attributes, at the base revision. */
export type SendOp = Extract<SyncOp, { type: "upload" | "remote_attrs" }>;

/** Small files read at once: local I/O. */
const READ_LANES = 16;

interface Ready {
  op: SendOp;
  data: SmallFile;
  stat: LocalStat;
  emit: TransferListener;
}

/** A file to send, reached only through real folders under the root (readSmall and the scan open it without following a link). */
async function readablePath(ctx: ExecContext, rel: string): Promise<string> {
  const abs = await ctx.fence.localPathFor(rel);
  if (!(await lstatOrNull(abs))) throw new OpSkipped(`${rel} is gone since it was scanned`);
  return ctx.fence.verifyParents(rel);
}

/** The whole file as the plan saw it, or OpSkipped: same stat, and the bytes read hash to the plan's hash. */
function vouch(op: SendOp, data: SmallFile | null): LocalStat {
  if (!data) throw new OpSkipped(`${op.path} changed while it was read`);
  const stat: LocalStat = { dev: data.dev, ino: data.ino, size: data.size, mtimeNs: data.mtimeNs, ctimeNs: data.ctimeNs, mode: data.mode, recordedNs: data.recordedNs };
  const s = op.local.stat;
  const same = stat.dev === s.dev && stat.ino === s.ino && stat.size === s.size && stat.mtimeNs === s.mtimeNs && stat.ctimeNs === s.ctimeNs && stat.mode === s.mode;
  if (!same) throw new OpSkipped(`${op.path} changed here since it was scanned`);
  if (data.contentHash.toString("hex") !== op.local.hash) throw new OpSkipped(`${op.path} changed here since it was scanned (its content differs)`);
  return stat;
}

/**
 * The server's answer commits what we sent only if it holds our content
 * with our attributes: on a stale base with identical content it answers
 * its own current state unchanged (tree.proto), and then the server moved
 * on: skipped, the next round sees its attributes.
 */
function checkCommitted(op: SendOp, info: FileInfo): void {
  const moved = committedElsewhere(op, info);
  if (moved) throw new OpSkipped(moved);
}

/** Why the committed state is not what we sent, or null when it is. */
function committedElsewhere(op: SendOp, info: FileInfo): string | null {
  const hash = Buffer.from(info.contentHash).toString("hex");
  if (info.contentHashKind !== ContentHashKind.BLAKE3 || hash !== op.local.hash) return `${op.path}: the server holds other content (revision ${info.revision})`;
  if (info.mode !== op.local.mode || microsOf(info.mtime) !== BigInt(op.local.mtimeUs)) {
    return `${op.path}: the server moved on (revision ${info.revision} has this content with other attributes)`;
  }
  return null;
}

function putItemOf(ctx: ExecContext, r: Ready): PutItem {
  return create(PutItemSchema, {
    path: remoteFull(ctx.opts.remote, r.op.path),
    kind: EntryKind.FILE,
    size: BigInt(r.data.size),
    contentHash: r.data.contentHash,
    contentHashKind: ContentHashKind.BLAKE3,
    chunks: r.data.chunks.map((c) => ({ size: BigInt(c.size), hash: c.hash })),
    baseRevision: BigInt(r.op.baseRevision),
    mode: r.op.local.mode,
    mtime: timestampOfNs(BigInt(r.op.local.mtimeUs) * 1000n),
  });
}

/** A batch of small files: read and vouched for, BeginPuts, one PUT each in the pool, CommitPuts, recorded together. */
export async function sendSmallBatch(ctx: ExecContext, ops: SendOp[]): Promise<void> {
  const { signal } = ctx.opts;
  const ready: Ready[] = [];
  await runParallel(
    ops,
    READ_LANES,
    (op) =>
      guarded(ctx, op, async () => {
        const data = await readSmall(await readablePath(ctx, op.path), SMALL_FILE_MAX);
        const stat = vouch(op, data);
        ready.push({ op, data: data!, stat, emit: fileEvents(ctx, op) });
      }),
    signal,
  );
  if (ready.length === 0) return;
  const items = ready.map((r) => putItemOf(ctx, r));
  const begun = await ctx.client.tree.beginPuts({ items }, { signal });
  if (begun.results.length !== ready.length) throw new Error(`BeginPuts answered ${begun.results.length} items for ${ready.length}`);
  const committed: Array<{ r: Ready; info: FileInfo }> = [];
  const pending: Array<{ r: Ready; uploadId: string; url: string; headers: Record<string, string> }> = [];
  begun.results.forEach((res, i) => {
    const r = ready[i]!;
    if (res.result.case !== "error") r.emit({ type: "start", op: "push", remote: items[i]!.path, local: r.op.path, bytesTotal: r.data.size, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0 });
    if (res.result.case === "committed") committed.push({ r, info: res.result.value });
    else if (res.result.case === "pending") pending.push({ r, uploadId: res.result.value.uploadId, url: res.result.value.url, headers: res.result.value.headers });
    else settleItemError(ctx, r.op, res.result.case === "error" ? res.result.value : undefined, items[i]!.path);
  });
  const put: typeof pending = [];
  try {
    await runParallel(
      pending,
      pending.length || 1,
      (p) =>
        guarded(ctx, p.r.op, async () => {
          await ctx.slots.run(() => putWhole(ctx, p.r, p.url, p.headers), signal);
          put.push(p);
        }),
      signal,
    );
    if (put.length) {
      const done = await ctx.client.tree.commitPuts({ uploadIds: put.map((p) => p.uploadId) }, { signal });
      if (done.results.length !== put.length) throw new Error(`CommitPuts answered ${done.results.length} items for ${put.length}`);
      done.results.forEach((res, i) => {
        const p = put[i]!;
        if (res.result.case === "committed") committed.push({ r: p.r, info: res.result.value });
        else settleItemError(ctx, p.r.op, res.result.case === "error" ? res.result.value : undefined, remoteFull(ctx.opts.remote, p.r.op.path));
      });
    }
  } finally {
    // What the server committed is recorded, on an abort too.
    await recordCommitted(ctx, committed, new Set(put.map((p) => p.r)));
  }
}

async function recordCommitted(ctx: ExecContext, committed: Array<{ r: Ready; info: FileInfo }>, sent: Set<Ready>): Promise<void> {
  const ok: Array<{ op: SyncOp; result: OpResult }> = [];
  for (const { r, info } of committed) {
    const moved = committedElsewhere(r.op, info);
    if (moved) {
      skipped(ctx, r.op, moved);
      continue;
    }
    r.emit({ type: "done", revision: Number(info.revision), contentHash: r.op.local.hash, deduplicated: !sent.has(r) });
    // The stat the bytes were read under: a change since shows at the next scan.
    ok.push({ op: r.op, result: { stat: r.stat } });
  }
  await recordDone(ctx, ok);
}

/** One PUT of the bytes that were hashed, with the part retries of any transfer. */
async function putWhole(ctx: ExecContext, r: Ready, url: string, headers: Record<string, string>): Promise<void> {
  const size = r.data.size;
  r.emit({ type: "phase", phase: "transfer" });
  r.emit({ type: "part_start", partNumber: 1, size });
  const { signal } = ctx.opts;
  await sendWithRetry({ concurrency: ctx.opts.concurrency, partAttempts: DEFAULT_PART_ATTEMPTS, signal }, 1, r.emit, signal, (onBytes) =>
    putStored({ url, headers, size, body: () => (size ? [r.data.bytes] : []), agents: ctx.agents, signal, onBytes, etags: ctx.etags }),
  );
  r.emit({ type: "part_done", partNumber: 1, size });
}

/**
 * A large file through UploadService (pushFile), its parts in the pool.
 * Scanned here first, between two stats that must both be the plan's,
 * and its hash must be the plan's: then pushFile sends that scan. The
 * stat recorded is the one before the scan, so a change while the file
 * is sent shows at the next scan.
 */
export async function sendLarge(ctx: ExecContext, op: SendOp): Promise<void> {
  const { signal } = ctx.opts;
  const abs = await readablePath(ctx, op.path);
  const recordedNs = nowNs();
  const before = await lstat(abs, { bigint: true });
  if (!sameEntry(before, op.local)) throw new OpSkipped(`${op.path} changed here since it was scanned`);
  const scan = await scanFileCached(abs, { signal });
  const after = await lstat(abs, { bigint: true });
  if (!sameEntry(after, op.local)) throw new OpSkipped(`${op.path} changed while it was read`);
  if (scan.contentHash.toString("hex") !== op.local.hash) throw new OpSkipped(`${op.path} changed here since it was scanned (its content differs)`);
  const remote = remoteFull(ctx.opts.remote, op.path);
  const r = await withSlots(ctx.slots, () =>
    pushFile(
      ctx.client,
      {
        local: abs,
        remote,
        source: op.path,
        scan,
        baseRevision: op.baseRevision,
        compress: ctx.opts.compress,
        concurrency: ctx.opts.concurrency,
        partAttempts: DEFAULT_PART_ATTEMPTS,
        signal,
        mode: op.local.mode,
        mtime: timestampOfNs(BigInt(op.local.mtimeUs) * 1000n),
      },
      fileEvents(ctx, op),
    ),
  );
  // Committed at once (no bytes moved): maybe the server's own state on a stale base; it must hold our attributes.
  if (r.deduplicated) {
    const now = await ctx.client.files.stat({ path: remote }, { signal });
    if (now.file && Number(now.file.revision) === r.revision) checkCommitted(op, now.file);
  }
  await recordDone(ctx, [{ op, result: { stat: localStatOf(before, recordedNs) } }]);
}

export function isSmall(op: SendOp): boolean {
  return op.local.size <= SMALL_FILE_MAX;
}
