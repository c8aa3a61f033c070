import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkRoots, readMarker } from "../../cli/sync/guard.js";
import { openSyncState } from "../../cli/sync/state-store.js";
import { MARKER_NAME, type SyncKey, type SyncState } from "../../cli/sync/types.js";

let dir: string;
let root: string;
let key: SyncKey;
let state: SyncState;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sync-guard-"));
  root = join(dir, "root");
  await mkdir(root);
  key = { server: "https://drive.example", remoteRoot: "w", localRoot: root };
  state = await openSyncState(key, join(dir, "state"));
});
afterEach(async () => {
  await state.close();
  await rm(dir, { recursive: true, force: true });
});

/** As after a first sync: the marker written, something recorded. */
async function synced(): Promise<void> {
  expect(await checkRoots(state, key, false)).toBeNull();
  await state.editSynced([{ type: "set", path: "a", node: { id: "n1", kind: "file", hash: "", size: 0, mode: 0, mtimeUs: 0 } }]);
}

describe("checkRoots", () => {
  it("writes the marker and records the device before the first sync", async () => {
    expect(await checkRoots(state, key, false)).toBeNull();
    const m = await readMarker(root);
    expect(m).toEqual({ server: key.server, remote: "w", id: state.getValue("marker") });
    expect(m!.id).toMatch(/^[0-9a-f]{32}$/);
    expect(state.getValue("root_dev")).toMatch(/^\d+$/);
    expect(await readdir(root)).toEqual([MARKER_NAME]); // no temporary file left
  });

  it("passes a root that is the one that synced", async () => {
    await synced();
    const id = state.getValue("marker");
    expect(await checkRoots(state, key, false)).toBeNull();
    expect(state.getValue("marker")).toBe(id); // not rewritten
  });

  it("halts root_missing when the root is gone or not a folder", async () => {
    await synced();
    await rm(root, { recursive: true });
    const gone = await checkRoots(state, key, false);
    expect(gone).toMatchObject({ reason: "root_missing" });
    expect(gone!.message).toContain(root);
    expect(gone!.message).toMatch(/is it mounted\?/);
    await writeFile(root, "a file now");
    expect(await checkRoots(state, key, false)).toMatchObject({ reason: "root_missing", message: expect.stringMatching(/not a folder/) });
    // --force cannot make a folder appear.
    expect(await checkRoots(state, key, true)).toMatchObject({ reason: "root_missing" });
  });

  it("halts marker_missing when the marker is gone, broken or another root's", async () => {
    await synced();
    await rm(join(root, MARKER_NAME));
    const h = await checkRoots(state, key, false);
    expect(h).toMatchObject({ reason: "marker_missing" });
    expect(h!.message).toContain(root);
    expect(h!.message).toMatch(/--force once if you moved it on purpose/);
    await writeFile(join(root, MARKER_NAME), "not json");
    expect(await checkRoots(state, key, false)).toMatchObject({ reason: "marker_missing" });
    // A marker copied from another root carries another id.
    const other = join(dir, "other");
    await mkdir(other);
    const o = await openSyncState({ ...key, localRoot: other }, join(dir, "state"));
    expect(await checkRoots(o, { ...key, localRoot: other }, false)).toBeNull();
    await o.close();
    await copyFile(join(other, MARKER_NAME), join(root, MARKER_NAME));
    expect(await checkRoots(state, key, false)).toMatchObject({ reason: "marker_missing", message: expect.stringMatching(/another sync/) });
  });

  it("halts device_changed when the root is on another device", async () => {
    await synced();
    await state.setValue("root_dev", "999999");
    const h = await checkRoots(state, key, false);
    expect(h).toMatchObject({ reason: "device_changed" });
    expect(h!.message).toContain(root);
    expect(h!.message).toMatch(/--force/);
  });

  it("with force, takes the root as it is: a new marker, the device now", async () => {
    await synced();
    await state.setValue("root_dev", "999999");
    await rm(join(root, MARKER_NAME));
    const before = state.getValue("marker");
    expect(await checkRoots(state, key, true)).toBeNull();
    expect(state.getValue("marker")).not.toBe(before);
    expect((await readMarker(root))!.id).toBe(state.getValue("marker"));
    expect(await checkRoots(state, key, false)).toBeNull();
  });
});
