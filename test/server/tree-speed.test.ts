import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PendingPut } from "../../gen/drive/v1/tree_pb.js";
import { fileItem, startTreeHarness, type TreeHarness } from "./tree-harness.js";

/**
 * Small files end to end through the server's part: BeginPuts, a real HTTP
 * PUT of each file to the local store, CommitPuts, in batches of 1,000 with
 * 32 PUTs in flight. Prints files/s (no timing assertion). DRIVE_TREE_FILES
 * sets the count: 10,000 for the figure; 2,000 by default, to keep
 * the suite fast.
 */
const FILES = Number(process.env.DRIVE_TREE_FILES ?? 2000);
const SIZE = 4096;
const IN_FLIGHT = 32;

const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });

/** One PUT over a kept-alive connection, as a client's pool would send it. */
function putBytes(p: PendingPut, data: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(p.url, { method: "PUT", agent, headers: { ...p.headers, "content-length": data.length } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(data);
  });
}

let h: TreeHarness;
beforeAll(async () => {
  h = await startTreeHarness();
}, 120_000);
afterAll(async () => {
  agent.destroy();
  await h?.close();
});

describe("small files at speed", () => {
  it(`pushes ${FILES} files of 4 KiB through BeginPuts, PUT and CommitPuts`, { timeout: 300_000 }, async () => {
    const files = Array.from({ length: FILES }, (_, i) => {
      const data = Buffer.alloc(SIZE, i % 251);
      data.writeUInt32LE(i, 0);
      return { path: `speed/d${i % 50}/f${i}`, data };
    });
    const t0 = performance.now();
    let tBegin = 0;
    let tPut = 0;
    let tCommit = 0;
    for (let i = 0; i < files.length; i += 1000) {
      const batch = files.slice(i, i + 1000);
      let t = performance.now();
      const begun = await h.tree.beginPuts({ items: batch.map((f) => fileItem(f.path, f.data, { mode: 0o644 })) });
      tBegin += performance.now() - t;
      t = performance.now();
      const ids: string[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < batch.length) {
            const k = next++;
            const r = begun.results[k]!;
            if (r.result.case !== "pending") throw new Error(`not pending: ${r.result.case}`);
            ids[k] = r.result.value.uploadId;
            const status = await putBytes(r.result.value, batch[k]!.data);
            if (status !== 200) throw new Error(`PUT ${status}`);
          }
        }),
      );
      tPut += performance.now() - t;
      t = performance.now();
      const done = await h.tree.commitPuts({ uploadIds: ids });
      tCommit += performance.now() - t;
      expect(done.results.filter((r) => r.result.case !== "committed")).toEqual([]);
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `tree speed: ${FILES} files of ${SIZE} B in ${seconds.toFixed(2)} s = ${Math.round(FILES / seconds)} files/s ` +
        `(BeginPuts ${(tBegin / 1000).toFixed(2)} s, PUTs ${(tPut / 1000).toFixed(2)} s, CommitPuts ${(tCommit / 1000).toFixed(2)} s)`,
    );
    const n = await h.deps.db.selectFrom("files").select((eb) => eb.fn.countAll<number>().as("n")).where("path", "like", "speed/%").executeTakeFirstOrThrow();
    expect(Number(n.n)).toBe(FILES);
  });
});
