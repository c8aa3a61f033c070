import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Accounting, type Snapshot, type Summary } from "../../cli/accounting/accounting.js";
import { displayName, errorLine, PlainPrinter, statusLine, summaryLine } from "../../cli/ui/plain-printer.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function sink() {
  let text = "";
  return {
    write(chunk: string) {
      text += chunk;
      return true;
    },
    text: () => text,
  };
}

function snap(over: Partial<Snapshot> = {}): Snapshot {
  return {
    op: "push",
    remote: "/backups/big.iso",
    local: "/home/me/big.iso",
    phase: "transfer",
    filesTotal: 1,
    filesDone: 0,
    filesToDo: 1,
    filesSkipped: 0,
    filesDeleted: 0,
    filesFailed: 0,
    filesInFlight: [],
    entriesScanned: 0,
    bytesUnchanged: 0,
    phaseBytesTotal: null,
    phaseRateBytesPerSec: 0,
    phaseEtaSeconds: null,
    bytesTotal: GiB,
    bytesDone: 512 * MiB,
    bytesTransferred: 512 * MiB,
    bytesSkipped: 0,
    partsTotal: 8,
    partsDone: 4,
    partsTransferred: 4,
    partsSkipped: 0,
    partsInFlight: 4,
    retries: 0,
    hashedBytes: 0,
    phaseHashedBytes: 0,
    percentDone: 0.5,
    phaseProgress: null,
    rateBytesPerSec: 210.3 * MiB,
    etaSeconds: 2.4,
    elapsedMs: 2400,
    ...over,
  };
}

function summary(over: Partial<Summary> = {}): Summary {
  return {
    op: "push",
    remote: "/backups/big.iso",
    local: "/home/me/big.iso",
    filesTotal: 1,
    filesDone: 1,
    filesSent: 1,
    filesSkipped: 0,
    filesDeleted: 0,
    filesFailed: 0,
    bytesUnchanged: 0,
    bytesTotal: GiB,
    bytesTransferred: GiB,
    bytesSkipped: 0,
    bytesCopied: 0,
    bytesReused: 0,
    bytesCompressionSaved: 0,
    partsTotal: 8,
    partsTransferred: 8,
    partsSkipped: 0,
    retries: 0,
    hashedBytes: GiB,
    durationMs: 4800,
    avgRateBytesPerSec: GiB / 4.8,
    ...over,
  };
}

describe("statusLine", () => {
  it("shows bytes, percent, rate, ETA and parts in flight", () => {
    expect(statusLine(snap())).toBe(
      "push big.iso: 512.0 MiB / 1.0 GiB (50%), 210.3 MiB/s, ETA 3s, 4 parts in flight",
    );
  });

  it("shows hashing progress, and retries", () => {
    expect(statusLine(snap({ phase: "hash", phaseHashedBytes: 400 * MiB, phaseBytesTotal: GiB, phaseProgress: 400 / 1024, phaseRateBytesPerSec: 200 * MiB, phaseEtaSeconds: 3.12 }))).toBe(
      "push big.iso: hashing 39% (400.0 MiB / 1.0 GiB), 200.0 MiB/s, ETA 4s",
    );
    expect(statusLine(snap({ op: null, phase: "hash", phaseHashedBytes: 3 * MiB }))).toBe(
      "drive: hashing, 3.0 MiB read, 0 B/s",
    );
    expect(statusLine(snap({ retries: 2, partsInFlight: 1, etaSeconds: null }))).toBe(
      "push big.iso: 512.0 MiB / 1.0 GiB (50%), 210.3 MiB/s, ETA -, 1 part in flight, 2 retries",
    );
  });
});

describe("summaryLine", () => {
  it("names the file, size, time, rate and revision", () => {
    expect(summaryLine(summary(), { revision: 3 })).toBe("pushed big.iso (1.0 GiB) in 4.8s, 213.3 MiB/s, revision 3");
  });

  it("says what was skipped, and deduplication", () => {
    expect(summaryLine(summary({ bytesTransferred: 512 * MiB, bytesSkipped: 512 * MiB }), { revision: 4n })).toBe(
      "pushed big.iso (1.0 GiB) in 4.8s, 213.3 MiB/s, revision 4: sent 512.0 MiB, 512.0 MiB already stored, saved 0 B by compression",
    );
    expect(
      summaryLine(summary({ bytesTransferred: 0, bytesSkipped: GiB, durationMs: 120, avgRateBytesPerSec: 0 }), {
        revision: 5,
        deduplicated: true,
      }),
    ).toBe("pushed big.iso (1.0 GiB) in 0.1s, deduplicated, revision 5");
  });

  it("says what a delta copied, reused and compression saved", () => {
    expect(
      summaryLine(summary({ bytesTransferred: 5.2 * MiB, bytesSkipped: 1018.8 * MiB, bytesCopied: 1018.8 * MiB, avgRateBytesPerSec: 5.8 * MiB, durationMs: 900 }), { revision: 4 }),
    ).toBe("pushed big.iso (1.0 GiB) in 0.9s, 5.8 MiB/s, revision 4: sent 5.2 MiB, copied 1018.8 MiB server-side, saved 0 B by compression");
    expect(summaryLine(summary({ bytesTransferred: 100 * MiB, bytesCompressionSaved: 924 * MiB, avgRateBytesPerSec: 20.8 * MiB }))).toBe(
      "pushed big.iso (1.0 GiB) in 4.8s, 20.8 MiB/s: sent 100.0 MiB, saved 924.0 MiB by compression",
    );
    expect(summaryLine(summary({ op: "pull", bytesTransferred: 24 * MiB, bytesSkipped: GiB - 24 * MiB, bytesReused: GiB - 24 * MiB, avgRateBytesPerSec: 5 * MiB }))).toBe(
      "pulled big.iso (1.0 GiB) in 4.8s, 5.0 MiB/s: received 24.0 MiB, reused 1000.0 MiB locally, saved 0 B by compression",
    );
  });

  it("words a pull by its remote name", () => {
    expect(summaryLine(summary({ op: "pull", retries: 1 }))).toBe("pulled big.iso (1.0 GiB) in 4.8s, 213.3 MiB/s, 1 retry");
  });
});

describe("errorLine", () => {
  it("is one line", () => {
    expect(errorLine({ message: "upload failed:\n  part 3: 503", code: "unavailable", exitCode: 5 })).toBe(
      "drive: error: upload failed: part 3: 503",
    );
  });
});

describe("displayName", () => {
  it("uses the source's base name, or the other side for a pipe", () => {
    expect(displayName("push", "/r/x.bin", "./dir/big.iso")).toBe("big.iso");
    expect(displayName("pull", "/r/x.bin", "./big.iso")).toBe("x.bin");
    expect(displayName("push", "/r/from-stdin.bin", "-")).toBe("from-stdin.bin");
    expect(displayName("push", "/r/dir/", "C:\\data\\a.txt")).toBe("a.txt");
  });
});

describe("PlainPrinter", () => {
  let t = 0;
  const now = () => t;
  beforeEach(() => {
    vi.useFakeTimers();
    t = 0;
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function started(acc: Accounting) {
    acc.onEvent({ type: "start", op: "push", remote: "/r/a.bin", local: "a.bin", bytesTotal: 10, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0 });
  }

  it("prints progress to stderr every 5 s, the summary to stdout", () => {
    const stdout = sink();
    const stderr = sink();
    const acc = new Accounting({ now });
    const printer = new PlainPrinter({ stdout, stderr });
    printer.start(acc);
    started(acc);
    vi.advanceTimersByTime(4999);
    expect(stderr.text()).toBe("");
    vi.advanceTimersByTime(1);
    expect(stderr.text()).toBe("push a.bin: 0 B / 10 B (0%), 0 B/s, ETA -, 0 parts in flight\n");

    printer.message("resuming: 0 of 1 parts stored");
    acc.onEvent({ type: "part_done", partNumber: 1, size: 10 });
    t = 6000;
    acc.onEvent({ type: "done", revision: 1, contentHash: "h", deduplicated: false });
    printer.finish(acc.summary(), { revision: 1 });
    expect(vi.getTimerCount()).toBe(0);
    expect(stdout.text()).toBe("pushed a.bin (10 B) in 6.0s, 2 B/s, revision 1\n");
    expect(stderr.text()).toContain("resuming: 0 of 1 parts stored\n");
  });

  it("under quiet prints only the summary or the error", () => {
    const stdout = sink();
    const stderr = sink();
    const acc = new Accounting({ now });
    const printer = new PlainPrinter({ stdout, stderr, quiet: true });
    printer.start(acc);
    started(acc);
    vi.advanceTimersByTime(20_000);
    printer.message("hello");
    printer.fail({ message: "boom", code: "internal", exitCode: 1 });
    printer.finish(acc.summary());
    expect(stdout.text()).toBe("");
    expect(stderr.text()).toBe("drive: error: boom\n");
  });
});
