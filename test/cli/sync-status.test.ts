import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CommandContext } from "../../cli/commands/context.js";
import { showStatus, statusText } from "../../cli/commands/status.js";
import { maxDeleteOf, syncOptions, syncSummary } from "../../cli/commands/sync.js";
import { CliError } from "../../cli/errors.js";
import { VALUES } from "../../cli/sync/sync-values.js";
import type { SyncKey, SyncState } from "../../cli/sync/types.js";

function context(json: boolean) {
  let out = "";
  const stream = { isTTY: false, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  const ctx: CommandContext = { json, quiet: false, flags: {}, signal: new AbortController().signal, stdout: stream, stderr: stream, stdin: process.stdin };
  return { ctx, out: () => out };
}

/** A state as status reads it: values and the size of Synced. */
function state(values: Record<string, string>, closed: { n: number }): SyncState {
  return {
    synced: new Map([["a.txt", { id: "1", kind: "file", hash: "h", size: 1, mode: 0o644, mtimeUs: 1 }]]),
    remote: new Map(),
    cursor: "",
    editSynced: async () => {},
    editRemote: async () => {},
    getValue: (k) => values[k],
    setValue: async () => {},
    newId: () => "x",
    close: async () => void closed.n++,
  };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sync-status-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const marker = { server: "http://drive.test", remote: "docs", id: "m1" };

describe("drive status", () => {
  it("a folder without a marker is not a sync root", async () => {
    const c = context(false);
    const run = showStatus({ readMarker: async () => null, openState: async () => state({}, { n: 0 }) }, c.ctx, dir);
    await expect(run).rejects.toEqual(new CliError("not_found", `${dir} is not a sync root (no .drive-sync)`));
  });

  it("reads the state of the marker's key and reports the halt, what is pending and the conflicted copies", async () => {
    const c = context(true);
    const closed = { n: 0 };
    let key: SyncKey | undefined;
    const values = {
      [VALUES.lastSync]: "2026-12-01T10:00:00.000Z",
      [VALUES.halt]: JSON.stringify({ reason: "max_delete", message: "30 of 40 files would be deleted here" }),
      [VALUES.pending]: JSON.stringify([{ op: "wait", path: "log.txt", why: "unstable" }]),
      [VALUES.conflicts]: JSON.stringify([{ path: "a.txt", to: "a (conflicted copy h 2026-12-01 100000).txt", time: "2026-12-01T10:00:00.000Z" }]),
      marker: "m1",
    };
    await showStatus({ readMarker: async () => marker, openState: async (k) => ((key = k), state(values, closed)) }, c.ctx, dir);
    expect(key).toEqual({ server: marker.server, remoteRoot: "docs", localRoot: await realpath(dir) });
    expect(closed.n).toBe(1);
    const line = JSON.parse(c.out()) as Record<string, unknown>;
    expect(line).toMatchObject({
      type: "sync_status",
      last_sync: "2026-12-01T10:00:00.000Z",
      halted: { reason: "max_delete", advice: expect.stringMatching(/--force/) },
      pending: [{ op: "wait", path: "log.txt" }],
      synced_entries: 1,
    });
    expect(line.marker_mismatch).toBeUndefined();
  });

  it("a running sync holding the state is said plainly", async () => {
    const c = context(false);
    const busy = async () => {
      throw new CliError("conflict", `another drive sync is running on ${dir}`);
    };
    await expect(showStatus({ readMarker: async () => marker, openState: busy }, c.ctx, dir)).rejects.toThrow(/is running on .* now/);
  });

  it("the plain text: one fact a line, how to go on after a halt, pending and conflicts listed", () => {
    const text = statusText(
      {
        root: "/home/me/docs",
        server: "https://drive.example",
        remote: "docs",
        last_sync: "2026-12-01T10:00:00.000Z",
        halted: { reason: "marker_missing", message: "/home/me/docs lost its .drive-sync marker", advice: "nothing was deleted; run again with --force (once)" },
        pending: [{ op: "upload", path: "b.txt", why: "local_edit", message: "b.txt changed\nsince the scan" }],
        conflicts: [{ path: "a.txt", to: "a (c).txt", time: "2026-12-01T10:00:00.000Z" }],
        synced_entries: 3,
        marker_mismatch: true,
      },
      Date.parse("2026-12-01T10:01:00.000Z"),
    );
    expect(text.split("\n")).toEqual([
      "/home/me/docs <-> docs on https://drive.example",
      "last sync: 2026-12-01T10:00:00.000Z (1m00s ago)",
      "synced: 3 entries",
      "warning: the .drive-sync marker here is not the one this sync wrote: was it copied from another root?",
      "halted (marker_missing): /home/me/docs lost its .drive-sync marker",
      "  nothing was deleted; run again with --force (once)",
      "pending: 1",
      "  upload b.txt (local_edit): b.txt changed since the scan",
      "conflicted copies (most recent last):",
      "  2026-12-01T10:00:00.000Z  a.txt -> a (c).txt",
      "",
    ]);
  });
});

describe("drive sync options", () => {
  it("--max-delete: a count as is; a share as given, with no floor; the default is half, past 10", () => {
    expect(maxDeleteOf(undefined)).toEqual({ percent: 50, floor: 10 });
    expect(maxDeleteOf({ count: 5 })).toEqual({ count: 5 });
    expect(maxDeleteOf({ percent: 30 })).toEqual({ percent: 30, floor: 0 });
    expect(maxDeleteOf({ percent: 0 })).toEqual({ percent: 0, floor: 0 });
  });

  it("the remote folder loses its slashes; DRIVE_SYNC_SETTLE_MS sets the settle time, and a bad one is refused", async () => {
    const c = context(false);
    const o = await syncOptions(c.ctx, dir, "/docs/", { exclude: ["*.tmp"], include: [] }, { DRIVE_SYNC_SETTLE_MS: "250" });
    expect(o).toMatchObject({ remote: "docs", settleMs: 250, dryRun: false, force: false, concurrency: 16, filter: { exclude: ["*.tmp"], include: [] } });
    expect((await syncOptions(c.ctx, dir, "/", { exclude: [], include: [] }, {})).settleMs).toBe(1000);
    await expect(syncOptions(c.ctx, dir, "/", { exclude: [], include: [] }, { DRIVE_SYNC_SETTLE_MS: "soon" })).rejects.toThrow(/DRIVE_SYNC_SETTLE_MS/);
  });

  it("the summary carries the sync's counts", () => {
    expect(syncSummary({ rounds: 2, opsDone: 3, opsFailed: 1, conflicts: 0, pending: ["x"] }, true, 4)).toEqual({
      sync: true,
      rounds: 2,
      ops_done: 3,
      ops_failed: 1,
      conflicts: 0,
      pending: 1,
      dry_run: true,
      ops_planned: 4,
    });
  });
});
