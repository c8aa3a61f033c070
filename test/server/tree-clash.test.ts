import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileItem, folderItem, startTreeHarness, type TreeHarness } from "./tree-harness.js";

let h: TreeHarness;
beforeAll(async () => {
  h = await startTreeHarness();
}, 120_000);
afterAll(async () => h?.close());

const empty = Buffer.alloc(0);

async function put(item: Parameters<TreeHarness["tree"]["beginPuts"]>[0]["items"]): Promise<string[]> {
  const { results } = await h.tree.beginPuts({ items: item });
  return results.map((r) => (r.result.case === "error" ? `error ${r.result.value.code}: ${r.result.value.message}` : r.result.case!));
}

describe("one path is never both a file and a folder", () => {
  it("refuses a put under a live file, and a file where paths lie under it; a deletion clears the way", async () => {
    expect(await put([fileItem("c/thing", empty)])).toEqual(["committed"]);
    const under = await put([fileItem("c/thing/in.txt", empty), folderItem("c/thing/sub"), fileItem("c/other", empty)]);
    expect(under[0]).toMatch(new RegExp(`^error ${Code.FailedPrecondition}: c/thing/in.txt: c/thing is a file`));
    expect(under[1]).toMatch(new RegExp(`^error ${Code.FailedPrecondition}: c/thing/sub: c/thing is a file`));
    expect(under[2]).toBe("committed");

    expect(await put([fileItem("c/dir/x", empty)])).toEqual(["committed"]);
    expect((await put([fileItem("c/dir", empty)]))[0]).toMatch(new RegExp(`^error ${Code.FailedPrecondition}: c/dir is a folder`));
    // A folder entry where a folder already is, is fine.
    expect(await put([folderItem("c/dir")])).toEqual(["committed"]);

    await h.tree.deletePaths({ items: [{ path: "c/thing" }] });
    expect(await put([fileItem("c/thing/in.txt", empty)])).toEqual(["committed"]);
    const listed = await h.files.listFiles({ prefix: "c/" });
    expect(listed.files.map((f) => f.path)).toEqual(["c/dir", "c/dir/x", "c/other", "c/thing/in.txt"]);
  });

  it("refuses a move that would put a folder under a file, moving nothing", async () => {
    expect(await put([fileItem("m/file", empty), fileItem("m/src/a", empty)])).toEqual(["committed", "committed"]);
    const moved = await h.tree.move({ fromPath: "m/src", toPath: "m/file/src" }).catch((e: unknown) => e);
    expect(moved).toBeInstanceOf(ConnectError);
    expect((moved as ConnectError).code).toBe(Code.FailedPrecondition);
    expect((await h.files.listFiles({ prefix: "m/" })).files.map((f) => f.path)).toEqual(["m/file", "m/src/a"]);
  });
});
