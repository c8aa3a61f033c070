import { describe, expect, it } from "vitest";
import { Accounting, type FileRecord } from "../../cli/accounting/accounting.js";
import type { RunEvent, TransferEvent } from "../../cli/transfer/events.js";

const MiB = 1024 * 1024;

function clock(start = 0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function start(file: number, name: string, bytesTotal: number, partsTotal = 2): RunEvent {
  return { type: "start", op: "push", remote: `r/${name}`, local: name, bytesTotal, partsTotal, bytesSkipped: 0, partsSkipped: 0, file };
}

function ev(file: number, e: TransferEvent): RunEvent {
  return { ...e, file };
}

describe("Accounting over a run of many files", () => {
  it("keeps parts of overlapping files apart: the same part number in two files is two parts", () => {
    const acc = new Accounting({ now: clock().now });
    acc.onEvent({ type: "tree_plan", filesToSend: 2, bytesToSend: 40, filesUnchanged: 0, bytesUnchanged: 0, filesToDelete: 0, foldersToMake: 0 });
    acc.onEvent(start(1, "a.bin", 20));
    acc.onEvent(start(2, "b.bin", 20));
    acc.onEvent(ev(1, { type: "part_start", partNumber: 1, size: 10 }));
    acc.onEvent(ev(2, { type: "part_start", partNumber: 1, size: 10 }));
    acc.onEvent(ev(1, { type: "progress", partNumber: 1, bytes: 4 }));
    acc.onEvent(ev(2, { type: "progress", partNumber: 1, bytes: 6 }));
    let s = acc.snapshot();
    expect(s).toMatchObject({ filesTotal: 2, filesDone: 0, filesToDo: 2, bytesTotal: 40, bytesDone: 10, partsInFlight: 2 });
    expect(s.filesInFlight.map((f) => [f.name, f.bytesDone, f.bytesTotal])).toEqual([
      ["a.bin", 4, 20],
      ["b.bin", 6, 20],
    ]);

    // File 1's part 1 finishing does not finish file 2's part 1.
    acc.onEvent(ev(1, { type: "part_done", partNumber: 1, size: 10 }));
    acc.onEvent(ev(2, { type: "progress", partNumber: 1, bytes: 1 }));
    s = acc.snapshot();
    expect(s).toMatchObject({ bytesDone: 17, partsTransferred: 1, partsInFlight: 1 });

    acc.onEvent(ev(1, { type: "part_start", partNumber: 2, size: 10 }));
    acc.onEvent(ev(1, { type: "part_done", partNumber: 2, size: 10 }));
    acc.onEvent(ev(1, { type: "done", revision: 1, contentHash: "h1", deduplicated: false }));
    s = acc.snapshot();
    // One file done, the other still moving: the run is not done.
    expect(s).toMatchObject({ filesDone: 1, filesToDo: 1, phase: "transfer" });
    expect(s.filesInFlight.map((f) => f.name)).toEqual(["b.bin"]);
    expect(s.op).toBe("push");
  });

  it("never shows fewer bytes done than before, when a retry or an interruption rewinds a part", () => {
    const acc = new Accounting({ now: clock().now });
    acc.onEvent(start(0, "big.iso", 100, 1));
    acc.onEvent(ev(0, { type: "part_start", partNumber: 1, size: 100 }));
    acc.onEvent(ev(0, { type: "progress", partNumber: 1, bytes: 60 }));
    expect(acc.snapshot().bytesDone).toBe(60);
    // The attempt failed: the part's progress rewinds to zero and it goes again.
    acc.onEvent(ev(0, { type: "part_retry", partNumber: 1, attempt: 1, reason: "reset", delayMs: 10 }));
    acc.onEvent(ev(0, { type: "progress", partNumber: 1, bytes: -60 }));
    const rewound = acc.snapshot();
    expect(rewound.bytesDone).toBe(60);
    expect(rewound.filesInFlight[0]!.bytesDone).toBe(60);
    // Wire bytes are what crossed: they do go back, and the rate with them.
    expect(rewound.bytesTransferred).toBe(0);
    acc.onEvent(ev(0, { type: "progress", partNumber: 1, bytes: 30 }));
    expect(acc.snapshot().bytesDone).toBe(60);
    acc.onEvent(ev(0, { type: "progress", partNumber: 1, bytes: 40 }));
    expect(acc.snapshot().bytesDone).toBe(70);
    acc.onEvent(ev(0, { type: "part_done", partNumber: 1, size: 100 }));
    expect(acc.snapshot().bytesDone).toBe(100);
  });

  it("forgets a failed file's parts and leaves its remaining bytes out of the total", () => {
    const acc = new Accounting({ now: clock().now });
    const records: FileRecord[] = [];
    acc.listen({ fileEnded: (r) => records.push(r) });
    acc.onEvent({ type: "tree_plan", filesToSend: 2, bytesToSend: 30, filesUnchanged: 0, bytesUnchanged: 0, filesToDelete: 0, foldersToMake: 0 });
    acc.onEvent(start(1, "a", 10, 1));
    acc.onEvent(start(2, "b", 20, 1));
    acc.onEvent(ev(2, { type: "part_start", partNumber: 1, size: 20 }));
    acc.onEvent(ev(2, { type: "progress", partNumber: 1, bytes: 5 }));
    acc.onEvent({ type: "file_failed", file: 2, path: "b", message: "refused", code: "conflict" });
    acc.onEvent(ev(1, { type: "part_start", partNumber: 1, size: 10 }));
    acc.onEvent(ev(1, { type: "part_done", partNumber: 1, size: 10 }));
    acc.onEvent(ev(1, { type: "done", revision: 4, contentHash: "h", deduplicated: false }));
    // A late report from the failed file changes nothing.
    acc.onEvent(ev(2, { type: "progress", partNumber: 1, bytes: 15 }));

    const s = acc.snapshot();
    expect(s).toMatchObject({ filesDone: 1, filesFailed: 1, filesToDo: 0, bytesTotal: 15, bytesDone: 15, percentDone: 1, phase: "done", partsInFlight: 0 });
    expect(acc.summary()).toMatchObject({ filesSent: 1, filesFailed: 1, filesSkipped: 0, filesDeleted: 0 });
    expect(records).toEqual([
      { action: "failed", path: "b", message: "refused", code: "conflict" },
      expect.objectContaining({ action: "sent", local: "a", remote: "r/a", bytes: 10, revision: 4, deduplicated: false }),
    ]);
  });

  it("counts skipped, deleted and scanned entries, and hears warnings", () => {
    const acc = new Accounting({ now: clock().now, op: "pull" });
    const warnings: string[] = [];
    acc.listen({ warning: (m, p) => warnings.push(`${p}: ${m}`) });
    acc.onEvent({ type: "tree_scan", side: "remote", entries: 10 });
    acc.onEvent({ type: "tree_scan", side: "remote", entries: 25 });
    acc.onEvent({ type: "tree_scan", side: "local", entries: 5 });
    expect(acc.snapshot()).toMatchObject({ entriesScanned: 30, phase: "idle", op: "pull" });
    acc.onEvent({ type: "file_skipped", path: "same.txt", bytes: 7, reason: "unchanged" });
    acc.onEvent({ type: "file_skipped", path: "link", bytes: 0, reason: "symlink" });
    acc.onEvent({ type: "file_deleted", path: "old.txt" });
    acc.onEvent({ type: "warning", message: "a name collides", path: "café" });
    expect(acc.summary()).toMatchObject({ op: "pull", filesSkipped: 2, filesDeleted: 1, bytesUnchanged: 7, filesSent: 0 });
    expect(warnings).toEqual(["café: a name collides"]);
  });

  it("gives hashing its own %, rate and ETA, from the bytes hashed", () => {
    const c = clock(1000);
    const acc = new Accounting({ now: c.now });
    acc.onEvent({ type: "phase", phase: "hash", bytesTotal: 1000 * MiB });
    for (let i = 0; i < 20; i++) {
      c.advance(100);
      acc.onEvent({ type: "hashed", bytes: 10 * MiB });
    }
    const s = acc.snapshot();
    expect(s.phase).toBe("hash");
    expect(s.phaseProgress).toBeCloseTo(0.2, 5);
    expect(s.phaseBytesTotal).toBe(1000 * MiB);
    // 100 MiB/s, 800 MiB to go: 8 s.
    expect(s.phaseRateBytesPerSec / MiB).toBeCloseTo(100, 0);
    expect(s.phaseEtaSeconds).toBeCloseTo(8, 0);
    // The transfer has not begun: its own rate is still 0, and that is not what hashing shows.
    expect(s.rateBytesPerSec).toBe(0);
  });
});
