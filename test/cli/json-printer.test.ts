import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Accounting } from "../../cli/accounting/accounting.js";
import { JsonPrinter, snakeCase } from "../../cli/ui/json-printer.js";

/** A stdout stand-in that keeps what was written. */
function sink() {
  const chunks: string[] = [];
  return {
    write(text: string) {
      chunks.push(text);
      return true;
    },
    text: () => chunks.join(""),
    lines: (): Record<string, unknown>[] =>
      chunks
        .join("")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function transfer(acc: Accounting) {
  acc.onEvent({
    type: "start",
    op: "push",
    remote: "/backups/big.iso",
    local: "./big.iso",
    bytesTotal: 100,
    partsTotal: 4,
    bytesSkipped: 25,
    partsSkipped: 1,
  });
  acc.onEvent({ type: "part_start", partNumber: 2, size: 25 });
  acc.onEvent({ type: "progress", partNumber: 2, bytes: 10 });
}

describe("JsonPrinter", () => {
  let t = 0;
  const now = () => t;

  beforeEach(() => {
    vi.useFakeTimers();
    t = 0;
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("writes one status line a second, once a transfer has begun", () => {
    const out = sink();
    const acc = new Accounting({ now });
    const printer = new JsonPrinter({ out });
    printer.start(acc);

    vi.advanceTimersByTime(2000);
    expect(out.text()).toBe(""); // idle: nothing to report

    transfer(acc);
    t = 1500;
    vi.advanceTimersByTime(3000);
    const lines = out.lines();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toEqual({
      type: "status",
      op: "push",
      remote: "/backups/big.iso",
      local: "./big.iso",
      phase: "transfer",
      percent_done: 0.35,
      phase_progress: null,
      files_total: 1,
      files_done: 0,
      files_to_do: 1,
      files_in_flight: 1,
      files_skipped: 0,
      files_deleted: 0,
      files_failed: 0,
      bytes_total: 100,
      bytes_done: 35,
      bytes_transferred: 10,
      bytes_skipped: 25,
      parts_total: 4,
      parts_done: 1,
      parts_transferred: 0,
      parts_skipped: 1,
      parts_in_flight: 1,
      retries: 0,
      hashed_bytes: 0,
      rate_bytes_per_sec: expect.any(Number),
      eta_seconds: expect.any(Number),
      phase_rate_bytes_per_sec: 0,
      phase_eta_seconds: null,
      elapsed_ms: 1500,
    });
  });

  it("ends with a summary holding the contract fields and the command's extras", () => {
    const out = sink();
    const acc = new Accounting({ now });
    const printer = new JsonPrinter({ out });
    printer.start(acc);
    transfer(acc);
    printer.message("deduplicated: already stored");
    acc.onEvent({ type: "part_done", partNumber: 2, size: 25 });
    t = 2000;
    acc.onEvent({ type: "done", revision: 3, contentHash: "b3:abc", deduplicated: false });

    printer.finish(acc.summary(), {
      revision: 3n, // protobuf-es int64
      contentHash: "b3:abc",
      deduplicated: false,
      bytes_total: -1, // must not override accounting
    });

    const lines = out.lines();
    expect(lines[0]).toEqual({ type: "message", message: "deduplicated: already stored" });
    const summary = lines.at(-1)!;
    expect(summary).toEqual({
      type: "summary",
      op: "push",
      remote: "/backups/big.iso",
      local: "./big.iso",
      files_total: 1,
      files_done: 1,
      files_sent: 1,
      files_skipped: 0,
      files_deleted: 0,
      files_failed: 0,
      bytes_total: 100,
      bytes_transferred: 25,
      bytes_skipped: 25,
      bytes_unchanged: 0,
      bytes_copied: 0,
      bytes_reused: 0,
      bytes_compression_saved: 0,
      parts_total: 4,
      parts_transferred: 1,
      parts_skipped: 1,
      retries: 0,
      hashed_bytes: 0,
      duration_ms: 2000,
      avg_rate_bytes_per_sec: 13,
      revision: 3,
      content_hash: "b3:abc",
      deduplicated: false,
    });
  });

  it("stops its timer at finish and writes nothing after", () => {
    const out = sink();
    const acc = new Accounting({ now });
    const printer = new JsonPrinter({ out });
    printer.start(acc);
    transfer(acc);
    printer.finish(acc.summary());
    expect(vi.getTimerCount()).toBe(0);

    vi.advanceTimersByTime(5000);
    printer.message("late");
    printer.fail({ message: "late", code: "internal", exitCode: 1 });
    const lines = out.lines();
    expect(lines).toHaveLength(1);
    expect(lines[0]!.type).toBe("summary");
  });

  it("reports failure as one exit_error line", () => {
    const out = sink();
    const acc = new Accounting({ now });
    const printer = new JsonPrinter({ out });
    printer.start(acc);
    printer.fail({ message: "no such file: /x", code: "not_found", exitCode: 4 });
    printer.finish(acc.summary()); // ignored: the first end wins
    expect(vi.getTimerCount()).toBe(0);
    expect(out.lines()).toEqual([{ type: "exit_error", code: "not_found", message: "no such file: /x", exit_code: 4 }]);
  });

  it("under quiet drops status and messages but keeps the summary", () => {
    const out = sink();
    const acc = new Accounting({ now });
    const printer = new JsonPrinter({ out, quiet: true });
    printer.start(acc);
    transfer(acc);
    vi.advanceTimersByTime(5000);
    printer.message("hello");
    printer.finish(acc.summary(), { revision: 1 });
    const lines = out.lines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ type: "summary", revision: 1 });
  });

  it("close() stops the timer without writing, and is safe twice", async () => {
    const out = sink();
    const printer = new JsonPrinter({ out });
    printer.start(new Accounting({ now }));
    await printer.close();
    await printer.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(out.text()).toBe("");
  });

  it("writes only one-line JSON objects with a type and snake_case keys", () => {
    const out = sink();
    const acc = new Accounting({ now });
    const printer = new JsonPrinter({ out });
    printer.start(acc);
    transfer(acc);
    vi.advanceTimersByTime(1000);
    printer.message("multi\nline");
    printer.finish(acc.summary(), { someValue: 1 });
    const raw = out.text().split("\n").filter(Boolean);
    expect(raw).toHaveLength(3);
    for (const line of raw) {
      const obj = JSON.parse(line) as Record<string, unknown>;
      expect(typeof obj.type).toBe("string");
      for (const key of Object.keys(obj)) expect(key).toMatch(/^[a-z][a-z0-9_]*$/);
    }
    expect(out.lines().at(-1)).toHaveProperty("some_value", 1);
  });

  it("turns a bigint too large for a number into a string", () => {
    const out = sink();
    const printer = new JsonPrinter({ out });
    printer.finish(new Accounting({ now }).summary(), { revision: 2n ** 64n });
    expect(out.lines()[0]).toHaveProperty("revision", "18446744073709551616");
  });
});

describe("snakeCase", () => {
  it("converts camelCase and leaves snake_case", () => {
    expect(snakeCase("contentHash")).toBe("content_hash");
    expect(snakeCase("content_hash")).toBe("content_hash");
    expect(snakeCase("uploadID2")).toBe("upload_id2");
    expect(snakeCase("dry-run")).toBe("dry_run");
  });
});
