import { EventEmitter } from "node:events";
import { stripVTControlCharacters } from "node:util";
import { renderToString } from "ink";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Accounting } from "../../cli/accounting/accounting.js";
import type { RunEvent } from "../../cli/transfer/events.js";
import { BarPrinter } from "../../cli/ui/bar-printer.js";
import { width } from "../../cli/ui/fit.js";
import { InkPrinter } from "../../cli/ui/ink-printer.js";
import { JsonPrinter } from "../../cli/ui/json-printer.js";
import { PlainPrinter } from "../../cli/ui/plain-printer.js";
import type { Printer } from "../../cli/ui/printer.js";
import { ProgressView } from "../../cli/ui/progress-view.js";

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
    lines: () => text.split("\n").filter(Boolean),
  };
}

function fakeTty(columns: number) {
  let written = "";
  const tty = Object.assign(new EventEmitter(), {
    isTTY: true,
    columns,
    rows: 40,
    write(chunk: string) {
      written += chunk;
      return true;
    },
  });
  return { stream: tty as unknown as NodeJS.WriteStream, text: () => stripVTControlCharacters(written) };
}

const LONG = "photos/2026/a-very-long-folder-name-for-holidays/IMG_20260101_123456_with_a_long_suffix.jpg";

/** Six files in flight, long names, some hashing, a failure, skips and deletes: the worst case for a narrow view. */
function busyRun(acc: Accounting): void {
  const emit = (e: RunEvent) => acc.onEvent(e);
  emit({ type: "tree_plan", filesToSend: 120, bytesToSend: 60 * GiB, filesUnchanged: 40, bytesUnchanged: GiB, filesToDelete: 3, foldersToMake: 0 });
  for (let i = 1; i <= 6; i++) {
    emit({ type: "start", op: "push", remote: `backup/${LONG}-${i}`, local: `${LONG}-${i}`, bytesTotal: 10 * GiB, partsTotal: 100, bytesSkipped: 0, partsSkipped: 0, file: i });
    emit({ type: "part_start", partNumber: 1, size: 100 * MiB, file: i });
    emit({ type: "progress", partNumber: 1, bytes: i * 10 * MiB, file: i });
  }
  emit({ type: "phase", phase: "hash", bytesTotal: 50 * GiB, file: 7 });
  emit({ type: "hashed", bytes: GiB, file: 7 });
  emit({ type: "file_failed", file: 99, path: LONG, message: "connection reset", code: "unavailable" });
  emit({ type: "file_skipped", path: "same.txt", bytes: 5, reason: "unchanged" });
  emit({ type: "file_deleted", path: "old.txt" });
  emit({ type: "part_retry", partNumber: 1, attempt: 1, reason: "503", delayMs: 1, file: 1 });
}

function expectFits(text: string, columns: number) {
  const lines = text.split("\n");
  for (const line of lines) expect(width(line), JSON.stringify(line)).toBeLessThanOrEqual(columns);
}

describe("the views at 50 columns", () => {
  it("ink: every line of a busy run fits, names shortened in the middle", () => {
    const acc = new Accounting({ now: () => 5000 });
    busyRun(acc);
    const frame = stripVTControlCharacters(renderToString(<ProgressView snapshot={acc.snapshot()} files columns={50} />, { columns: 50 }));
    expectFits(frame, 50);
    expect(frame).toContain("files 0/120");
    expect(frame).toContain("…");
    // The start and the end of a long name both survive.
    expect(frame).toMatch(/photos\/.*….*jpg-1/);
    expect(frame).toContain("more");
  });

  it("ink: one file with a long name fits, while transferring and while hashing", () => {
    const acc = new Accounting({ now: () => 5000 });
    acc.onEvent({ type: "phase", phase: "hash", bytesTotal: 50 * GiB });
    acc.onEvent({ type: "hashed", bytes: 10 * GiB });
    const hashing = stripVTControlCharacters(renderToString(<ProgressView snapshot={acc.snapshot()} columns={50} />, { columns: 50 }));
    expectFits(hashing, 50);
    expect(hashing).toContain("hashing 20%");
    expect(hashing).toContain("10.0 GiB / 50.0 GiB");
    expect(hashing).not.toContain("0 B/s");

    acc.onEvent({ type: "start", op: "push", remote: `backups/${LONG}`, local: LONG, bytesTotal: 50 * GiB, partsTotal: 500, bytesSkipped: 0, partsSkipped: 0 });
    acc.onEvent({ type: "part_start", partNumber: 1, size: GiB });
    acc.onEvent({ type: "progress", partNumber: 1, bytes: 100 * MiB });
    const moving = stripVTControlCharacters(renderToString(<ProgressView snapshot={acc.snapshot()} columns={50} />, { columns: 50 }));
    expectFits(moving, 50);
    expect(moving).toContain("ETA");
  });

  it("ink printer on a 50-column TTY draws no line wider than the terminal", async () => {
    const tty = fakeTty(50);
    const stderr = sink();
    const acc = new Accounting({ now: () => 1000 });
    const printer = new InkPrinter({ stdout: tty.stream, stderr, files: true });
    printer.start(acc);
    busyRun(acc);
    printer.fail({ message: "interrupted", code: "interrupted", exitCode: 130 });
    await printer.close();
    expectFits(tty.text(), 50);
    expect(tty.text()).toContain("files 0/120");
  });

  it("bar: one line that fits, for one file and for many", () => {
    const one = new Accounting({ now: () => 1000 });
    one.onEvent({ type: "start", op: "push", remote: `b/${LONG}`, local: LONG, bytesTotal: GiB, partsTotal: 8, bytesSkipped: 0, partsSkipped: 0 });
    const tty = fakeTty(50);
    const single = new BarPrinter({ stdout: tty.stream, stderr: sink() });
    expect(width(single.line(one.snapshot()))).toBeLessThan(50);
    expect(single.line(one.snapshot())).toContain("0 B / 1.0 GiB");

    const many = new Accounting({ now: () => 1000 });
    busyRun(many);
    const line = new BarPrinter({ stdout: tty.stream, stderr: sink(), files: true }).line(many.snapshot());
    expect(width(line)).toBeLessThan(50);
    expect(line).toMatch(/^push 0\/120 /);
  });
});

describe("one line per file", () => {
  function finishedRun(acc: Accounting): void {
    acc.onEvent({ type: "tree_plan", filesToSend: 2, bytesToSend: 30, filesUnchanged: 1, bytesUnchanged: 4, filesToDelete: 1, foldersToMake: 0 });
    acc.onEvent({ type: "file_skipped", path: "same.txt", bytes: 4, reason: "unchanged" });
    acc.onEvent({ type: "file_skipped", path: "link", bytes: 0, reason: "symlink" });
    acc.onEvent({ type: "start", op: "push", remote: "dst/a.txt", local: "src/a.txt", bytesTotal: 10, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0, file: 1 });
    acc.onEvent({ type: "part_done", partNumber: 1, size: 10, file: 1 });
    acc.onEvent({ type: "done", revision: 2, contentHash: "aa", deduplicated: false, file: 1 });
    acc.onEvent({ type: "file_failed", file: 2, path: "src/b.txt", message: "permission\ndenied", code: "internal" });
    acc.onEvent({ type: "file_deleted", path: "dst/gone.txt" });
  }

  it("--json: a file line as each ends, then the summary with the file counts", () => {
    const out = sink();
    const acc = new Accounting({ now: () => 0 });
    const printer = new JsonPrinter({ out, files: true, quiet: true });
    printer.start(acc);
    finishedRun(acc);
    printer.finish(acc.summary(), {});
    const lines = out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.slice(0, -1)).toEqual([
      { type: "file", action: "skipped", path: "same.txt", bytes: 4, reason: "unchanged" },
      { type: "file", action: "skipped", path: "link", bytes: 0, reason: "symlink" },
      { type: "file", action: "sent", op: "push", path: "src/a.txt", remote: "dst/a.txt", local: "src/a.txt", bytes: 10, bytes_transferred: 10, revision: 2, content_hash: "aa", deduplicated: false },
      { type: "file", action: "failed", path: "src/b.txt", code: "internal", message: "permission\ndenied" },
      { type: "file", action: "deleted", path: "dst/gone.txt" },
    ]);
    expect(lines.at(-1)).toMatchObject({ type: "summary", files_sent: 1, files_skipped: 2, files_deleted: 1, files_failed: 1, bytes_unchanged: 4, files_done: 1 });
  });

  it("--json for one file prints no file line: its output is as it was", () => {
    const out = sink();
    const acc = new Accounting({ now: () => 0 });
    const printer = new JsonPrinter({ out });
    printer.start(acc);
    acc.onEvent({ type: "start", op: "push", remote: "r", local: "l", bytesTotal: 1, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0 });
    acc.onEvent({ type: "done", revision: 1, contentHash: "h", deduplicated: false });
    printer.finish(acc.summary(), {});
    expect(out.lines().map((l) => JSON.parse(l).type)).toEqual(["summary"]);
  });

  it("plain: sent and deleted on stdout, problems on stderr, unchanged only counted", () => {
    const stdout = sink();
    const stderr = sink();
    let t = 0;
    const acc = new Accounting({ now: () => t });
    const printer = new PlainPrinter({ stdout, stderr, files: true });
    printer.start(acc);
    finishedRun(acc);
    t = 1200;
    printer.finish(acc.summary(), {});
    expect(stdout.lines()).toEqual([
      "pushed src/a.txt (10 B)",
      "deleted dst/gone.txt",
      "pushed 1 file (10 B) in 1.2s, 8 B/s: 1 sent, 2 skipped, 1 deleted, 1 failed",
    ]);
    expect(stderr.lines()).toEqual(["skipped link (symlink)", "failed src/b.txt: permission denied"]);
  });
});

describe("the shared lifecycle", () => {
  // Our tickers are intervals; ink's own timeouts must run for its exit to resolve.
  beforeEach(() => vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] }));
  afterEach(() => vi.useRealTimers());

  const makers: Array<[string, () => { printer: Printer; out: () => string }]> = [
    ["json", () => { const o = sink(); return { printer: new JsonPrinter({ out: o }), out: o.text }; }],
    ["plain", () => { const o = sink(); const e = sink(); return { printer: new PlainPrinter({ stdout: o, stderr: e }), out: () => o.text() + e.text() }; }],
    ["ink", () => { const t = fakeTty(50); const e = sink(); return { printer: new InkPrinter({ stdout: t.stream, stderr: e }), out: () => t.text() + e.text() }; }],
    ["bar", () => { const t = fakeTty(50); const e = sink(); return { printer: new BarPrinter({ stdout: t.stream, stderr: e }), out: () => t.text() + e.text() }; }],
  ];

  it.each(makers)("%s: finishes once, ignores fail and messages after it, stops its timers, closes twice", async (_name, make) => {
    const { printer, out } = make();
    const acc = new Accounting({ now: () => 0 });
    printer.start(acc);
    printer.start(acc);
    acc.onEvent({ type: "start", op: "push", remote: "r/x", local: "x", bytesTotal: 1, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0 });
    vi.advanceTimersByTime(6000);
    acc.onEvent({ type: "done", revision: 1, contentHash: "h", deduplicated: false });
    printer.finish(acc.summary(), { revision: 1 });
    printer.finish(acc.summary(), { revision: 1 });
    printer.fail({ message: "late", code: "internal", exitCode: 1 });
    printer.message("late message");
    await printer.close();
    await printer.close();
    expect(vi.getTimerCount()).toBe(0);
    const text = out();
    expect(text.match(/revision":1|revision 1/g)).toHaveLength(1);
    expect(text).not.toContain("late");
  });
});

describe("hostile names", () => {
  it("reach no terminal as escapes: per-file lines and the live view print them as ?", () => {
    const stdout = sink();
    const stderr = sink();
    const acc = new Accounting({ now: () => 0 });
    const printer = new PlainPrinter({ stdout, stderr, files: true });
    printer.start(acc);
    acc.onEvent({ type: "file_deleted", path: "a\u001b]0;owned\u0007" });
    acc.onEvent({ type: "start", op: "pull", remote: "r/\u001b[31mred", local: "l", bytesTotal: 1, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0, file: 1 });
    const frame = renderToString(<ProgressView snapshot={acc.snapshot()} files columns={80} />, { columns: 80 });
    expect(stripVTControlCharacters(frame)).toContain("r/?[31mred");
    expect(frame).not.toContain("\u001b[31mred");
    expect(stdout.text()).toBe("deleted a?]0;owned?\n");
  });
});
