import { EventEmitter } from "node:events";
import { stripVTControlCharacters } from "node:util";
import { renderToString } from "ink";
import { describe, expect, it } from "vitest";
import { Accounting, type Snapshot } from "../../cli/accounting/accounting.js";
import { InkPrinter } from "../../cli/ui/ink-printer.js";
import { ProgressView } from "../../cli/ui/progress-view.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Enough of a TTY for ink: isTTY, a size, write, and resize events. */
function fakeTty() {
  let written = "";
  const tty = Object.assign(new EventEmitter(), {
    isTTY: true,
    columns: 100,
    rows: 40,
    write(chunk: string) {
      written += chunk;
      return true;
    },
  });
  return { stream: tty as unknown as NodeJS.WriteStream, text: () => stripVTControlCharacters(written) };
}

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

const base: Snapshot = {
  op: "push",
  remote: "/backups/big.iso",
  local: "./big.iso",
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
  partsInFlight: 3,
  retries: 0,
  hashedBytes: 0,
  phaseHashedBytes: 0,
  percentDone: 0.5,
  phaseProgress: null,
  rateBytesPerSec: 210.3 * MiB,
  etaSeconds: 2.4,
  elapsedMs: 2400,
};

describe("ProgressView", () => {
  it("shows the bar, bytes, rate, ETA, parts and phase", () => {
    const frame = stripVTControlCharacters(renderToString(<ProgressView snapshot={base} />, { columns: 100 }));
    expect(frame).toContain("push big.iso → /backups/big.iso");
    expect(frame).toContain("transferring");
    expect(frame).toContain(`[${"█".repeat(15)}${"░".repeat(15)}]`);
    expect(frame).toContain("50%");
    expect(frame).toContain("512.0 MiB / 1.0 GiB");
    expect(frame).toContain("210.3 MiB/s");
    expect(frame).toContain("ETA 3s");
    expect(frame).toContain("parts 4/8 (3 in flight)");
  });

  it("shows hashing progress as the phase", () => {
    const s = { ...base, phase: "hash" as const, phaseHashedBytes: 256 * MiB, phaseBytesTotal: GiB, phaseProgress: 0.25, phaseRateBytesPerSec: 128 * MiB, phaseEtaSeconds: 6 };
    const frame = stripVTControlCharacters(renderToString(<ProgressView snapshot={s} />, { columns: 100 }));
    expect(frame).toContain("hashing 25%");
    expect(frame).toContain("256.0 MiB / 1.0 GiB");
    // Rate and ETA of the hashing, not the transfer's idle "0 B/s ETA -".
    expect(frame).toContain("128.0 MiB/s  ETA 6s");
  });

  it("draws only the messages when hidden", () => {
    const frame = renderToString(<ProgressView snapshot={base} messages={["deduplicated"]} hidden />);
    expect(stripVTControlCharacters(frame).trim()).toBe("deduplicated");
  });
});

describe("InkPrinter on a fake TTY", () => {
  it("renders the transfer, and leaves the frame and an error line on fail", async () => {
    const tty = fakeTty();
    const stderr = sink();
    const acc = new Accounting({ now: () => 0 });
    const printer = new InkPrinter({ stdout: tty.stream, stderr });
    printer.start(acc);
    acc.onEvent({ type: "start", op: "push", remote: "/r/big.iso", local: "big.iso", bytesTotal: GiB, partsTotal: 4, bytesSkipped: 0, partsSkipped: 0 });
    acc.onEvent({ type: "part_start", partNumber: 1, size: 256 * MiB });
    acc.onEvent({ type: "part_done", partNumber: 1, size: 256 * MiB });
    printer.fail({ message: "connection refused", code: "unavailable", exitCode: 5 });
    await printer.close();

    expect(tty.text()).toContain("256.0 MiB / 1.0 GiB");
    expect(tty.text()).toContain("parts 1/4 (0 in flight)");
    expect(stderr.text()).toBe("drive: error: connection refused\n");
  });

  it("ends with the plain summary line after unmounting", async () => {
    const tty = fakeTty();
    const stderr = sink();
    let t = 0;
    const acc = new Accounting({ now: () => t });
    const printer = new InkPrinter({ stdout: tty.stream, stderr });
    printer.start(acc);
    acc.onEvent({ type: "start", op: "push", remote: "/r/big.iso", local: "big.iso", bytesTotal: GiB, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0 });
    printer.message("resuming upload");
    acc.onEvent({ type: "part_done", partNumber: 1, size: GiB });
    t = 4800;
    acc.onEvent({ type: "done", revision: 3, contentHash: "h", deduplicated: false });
    printer.finish(acc.summary(), { revision: 3 });
    await printer.close();

    expect(tty.text()).toContain("resuming upload");
    expect(tty.text().trimEnd().endsWith("pushed big.iso (1.0 GiB) in 4.8s, 213.3 MiB/s, revision 3")).toBe(true);
    expect(stderr.text()).toBe("");
  });
});
