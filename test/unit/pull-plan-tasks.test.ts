import { describe, expect, it } from "vitest";
import { Codec } from "../../gen/drive/v1/types_pb.js";
import type { RemoteChunk } from "../../cli/transfer/pull/download-list.js";
import type { LocalRef, LocalSource } from "../../cli/transfer/pull/local-sources.js";
import { planTasks, type PlanOptions } from "../../cli/transfer/pull/plan-tasks.js";

const MiB = 1024 * 1024;
const opts: PlanOptions = { getCap: 8 * MiB, plainCap: 16 * MiB, bufferLimit: 16 * MiB, copyWithin: true };

/** Chunks of the given sizes, stored as given (zstd when smaller), back to back; hashes from `ids` (equal ids, equal content). */
function layout(spec: Array<{ size: number; stored?: number; id?: number }>): RemoteChunk[] {
  let plain = 0;
  let stored = 0;
  return spec.map((s, index) => {
    const storedSize = s.stored ?? s.size;
    const c: RemoteChunk = { index, offset: plain, size: s.size, hash: Buffer.alloc(32, s.id ?? index + 1), storedOffset: stored, storedSize, codec: storedSize === s.size ? Codec.NONE : Codec.ZSTD };
    plain += s.size;
    stored += storedSize;
    return c;
  });
}

const here = (offset: number): LocalRef => ({ source: {} as LocalSource, offset });

describe("planTasks", () => {
  it("merges missing neighbours into GETs up to the stored cap", () => {
    const chunks = layout(Array.from({ length: 20 }, () => ({ size: MiB })));
    const tasks = planTasks(chunks, new Map(), opts);
    expect(tasks.map((t) => t.kind === "fetch" && [t.first, t.end])).toEqual([[0, 8], [8, 16], [16, 20]]);
  });

  it("caps the plaintext of one GET too, so that compressed chunks do not balloon in memory", () => {
    const chunks = layout(Array.from({ length: 40 }, () => ({ size: MiB, stored: MiB / 10 })));
    const tasks = planTasks(chunks, new Map(), opts);
    expect(tasks.map((t) => t.kind === "fetch" && t.end - t.first)).toEqual([16, 16, 8]);
  });

  it("reads found chunks locally and fetches only the gaps between them", () => {
    const chunks = layout(Array.from({ length: 6 }, () => ({ size: MiB })));
    const tasks = planTasks(chunks, new Map([[1, here(0)], [2, here(MiB)], [4, here(9)]]), opts);
    expect(tasks.map((t) => (t.kind === "fetch" ? `get ${t.first}-${t.end}` : `${t.kind} ${"chunk" in t ? t.chunk : ""}`))).toEqual([
      "get 0-1",
      "local 1",
      "local 2",
      "get 3-4",
      "local 4",
      "get 5-6",
    ]);
  });

  it("copies a chunk whose content came earlier in the file, unless writing to a stream", () => {
    const chunks = layout([{ size: MiB, id: 7 }, { size: 2 * MiB, id: 8 }, { size: MiB, id: 7 }, { size: MiB, id: 7 }]);
    const tasks = planTasks(chunks, new Map(), opts);
    expect(tasks.map((t) => t.kind + ("from" in t ? ` from ${t.from}` : ""))).toEqual(["fetch", "copy from 0", "copy from 0"]);
    expect(tasks[0]).toMatchObject({ first: 0, end: 2 });
    expect(planTasks(chunks, new Map(), { ...opts, copyWithin: false }).map((t) => t.kind)).toEqual(["fetch"]);
  });

  it("streams chunks too big for memory, each alone (versions from before content-defined chunking)", () => {
    const chunks = layout([{ size: 5 * MiB }, { size: 64 * MiB }, { size: 3 * MiB }]);
    const tasks = planTasks(chunks, new Map(), opts);
    expect(tasks.map((t) => t.kind)).toEqual(["fetch", "stream", "fetch"]);
  });

  it("does not merge chunks whose stored bytes are not back to back", () => {
    const chunks = layout(Array.from({ length: 3 }, () => ({ size: MiB })));
    chunks[2] = { ...chunks[2]!, storedOffset: chunks[2]!.storedOffset + 10 };
    expect(planTasks(chunks, new Map(), opts).map((t) => t.kind === "fetch" && [t.first, t.end])).toEqual([[0, 2], [2, 3]]);
  });

  it("covers every chunk exactly once, in order", () => {
    const chunks = layout(Array.from({ length: 100 }, (_, i) => ({ size: ((i * 7919) % 4) * MiB + 1, id: (i % 13) + 1 })));
    const found = new Map(chunks.filter((c) => c.index % 5 === 0).map((c) => [c.index, here(c.offset)] as const));
    const covered: number[] = [];
    for (const t of planTasks(chunks, found, opts)) {
      if (t.kind === "fetch") for (let i = t.first; i < t.end; i++) covered.push(i);
      else covered.push(t.chunk);
    }
    expect(covered).toEqual(chunks.map((c) => c.index));
  });
});
