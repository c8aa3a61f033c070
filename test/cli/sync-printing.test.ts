import { describe, expect, it } from "vitest";
import { Accounting } from "../../cli/accounting/accounting.js";
import type { CommandContext } from "../../cli/commands/context.js";
import { ReportedError, runTree } from "../../cli/commands/run-transfer.js";
import { CliError } from "../../cli/errors.js";
import type { RunEvent } from "../../cli/transfer/events.js";
import { JsonPrinter, syncObject } from "../../cli/ui/json-printer.js";
import { PlainPrinter } from "../../cli/ui/plain-printer.js";
import { syncLine } from "../../cli/ui/sync-lines.js";

function sink() {
  let text = "";
  return { write: (s: string) => ((text += s), true), text: () => text, lines: () => text.split("\n").filter(Boolean) };
}

function context(json: boolean, quiet = false) {
  const out = sink();
  const err = sink();
  const stream = (s: ReturnType<typeof sink>) => ({ isTTY: false, write: s.write }) as unknown as NodeJS.WriteStream;
  const ctx: CommandContext = { json, quiet, flags: {}, signal: new AbortController().signal, stdout: stream(out), stderr: stream(err), stdin: process.stdin };
  return { ctx, out, err };
}

const upload: RunEvent = { type: "sync_op", op: "upload", path: "a/b.txt", why: "local_new", outcome: "done" };
const move: RunEvent = { type: "sync_op", op: "remote_move", path: "old", to: "new", why: "local_move", outcome: "done" };
const skipped: RunEvent = { type: "sync_op", op: "download", path: "c.txt", why: "remote_edit", outcome: "skipped", message: "c.txt changed here since the scan" };
const failed: RunEvent = { type: "sync_op", op: "upload", path: "d.bin", why: "local_edit", outcome: "failed", message: "quota\nexceeded" };
const halt: RunEvent = { type: "sync_halt", reason: "max_delete", message: "12 of 20 files would be deleted on the server, over --max-delete 50%" };

describe("sync lines", () => {
  it("say the operation, its path, and why; what did not happen says why not", () => {
    expect(syncLine(upload as never)).toBe("upload a/b.txt (local_new)");
    expect(syncLine(move as never)).toBe("remote_move old -> new (local_move)");
    expect(syncLine({ ...upload, outcome: "planned" } as never)).toBe("upload a/b.txt (local_new)");
    expect(syncLine(skipped as never)).toBe("skipped download c.txt (remote_edit): c.txt changed here since the scan");
    expect(syncLine(failed as never)).toBe("failed upload d.bin (local_edit): quota exceeded");
    expect(syncLine(halt as never)).toBe(`sync halted: ${(halt as { message: string }).message}`);
  });

  it("bookkeeping that went as planned is no line; one that did not is", () => {
    const record = { type: "sync_op", op: "record", path: "same.txt", why: "same_change", outcome: "done" } as const;
    expect(syncLine(record)).toBeNull();
    expect(syncLine({ ...record, op: "forget", outcome: "planned" })).toBeNull();
    expect(syncLine({ ...record, outcome: "failed", message: "disk full" })).toBe("failed record same.txt (same_change): disk full");
  });

  it("a hostile name cannot move the terminal's cursor", () => {
    expect(syncLine({ ...upload, path: "x\u001b[2Jy" } as never)).not.toContain("\u001b");
  });
});

describe("plain printer", () => {
  it("prints done operations on stdout, skipped, failed and halts on stderr", () => {
    const out = sink();
    const err = sink();
    const acc = new Accounting();
    const p = new PlainPrinter({ stdout: out, stderr: err, files: true });
    p.start(acc);
    for (const ev of [upload, move, skipped, failed, halt]) acc.onEvent(ev);
    expect(out.lines()).toEqual(["upload a/b.txt (local_new)", "remote_move old -> new (local_move)"]);
    expect(err.lines()).toEqual([
      "skipped download c.txt (remote_edit): c.txt changed here since the scan",
      "failed upload d.bin (local_edit): quota exceeded",
      `sync halted: ${(halt as { message: string }).message}`,
    ]);
    void p.close();
  });

  it("a sync's files sent make no line of their own: the operation's line says it", () => {
    const out = sink();
    const acc = new Accounting();
    const p = new PlainPrinter({ stdout: out, stderr: sink(), files: true, sync: true });
    p.start(acc);
    acc.onEvent({ type: "start", op: "push", remote: "w/a/b.txt", local: "a/b.txt", bytesTotal: 3, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0, file: 1 });
    acc.onEvent({ type: "part_done", partNumber: 1, size: 3, file: 1 });
    acc.onEvent({ type: "done", revision: 1, contentHash: "h", deduplicated: false, file: 1 });
    acc.onEvent(upload);
    expect(out.lines()).toEqual(["upload a/b.txt (local_new)"]);
    void p.close();
  });

  it("under --quiet keeps only failures and halts", () => {
    const out = sink();
    const err = sink();
    const acc = new Accounting();
    const p = new PlainPrinter({ stdout: out, stderr: err, files: true, quiet: true });
    p.start(acc);
    for (const ev of [upload, skipped, failed, halt]) acc.onEvent(ev);
    expect(out.lines()).toEqual([]);
    expect(err.lines()).toHaveLength(2);
    void p.close();
  });
});

describe("json printer", () => {
  it("writes an op line per operation and a halt line, also under --quiet", () => {
    const out = sink();
    const acc = new Accounting();
    const p = new JsonPrinter({ out, files: true, quiet: true });
    p.start(acc);
    for (const ev of [upload, move, failed, halt]) acc.onEvent(ev);
    expect(out.lines().map((l) => JSON.parse(l) as unknown)).toEqual([
      { type: "op", op: "upload", path: "a/b.txt", why: "local_new", outcome: "done" },
      { type: "op", op: "remote_move", path: "old", to: "new", why: "local_move", outcome: "done" },
      { type: "op", op: "upload", path: "d.bin", why: "local_edit", outcome: "failed", message: "quota\nexceeded" },
      { type: "halt", reason: "max_delete", message: (halt as { message: string }).message },
    ]);
    void p.close();
  });

  it("syncObject leaves out what an operation does not have", () => {
    expect(Object.keys(syncObject(upload as never))).toEqual(["type", "op", "path", "why", "outcome"]);
  });
});

describe("a sync through runTree", () => {
  const extra = { sync: true, rounds: 2, ops_done: 3, ops_failed: 0, conflicts: 1, pending: 0 };

  it("plain: the operations, then the sync summary", async () => {
    const c = context(false);
    await runTree(c.ctx, async (emit) => (emit(upload), emit(move), extra), { sync: true });
    const lines = c.out.lines();
    expect(lines.slice(0, 2)).toEqual(["upload a/b.txt (local_new)", "remote_move old -> new (local_move)"]);
    expect(lines[2]).toMatch(/^synced in .+: 3 operations done, 0 failed, 1 conflicted copy, 0 pending \(2 rounds\)$/);
  });

  it("plain: a dry run's summary says nothing changed", async () => {
    const c = context(false);
    await runTree(c.ctx, async (emit) => (emit({ ...upload, outcome: "planned" } as RunEvent), { sync: true, dry_run: true, ops_planned: 1 }));
    expect(c.out.lines()).toEqual(["upload a/b.txt (local_new)", "dry run: 1 operation planned, nothing changed"]);
  });

  it("json: op lines, then a summary with the sync's counts", async () => {
    const c = context(true);
    await runTree(c.ctx, async (emit) => (emit(upload), extra));
    const lines = c.out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.type)).toEqual(["op", "summary"]);
    expect(lines[1]).toMatchObject({ sync: true, rounds: 2, ops_done: 3, ops_failed: 0, conflicts: 1, pending: 0 });
  });

  it("a halt: the halt line, then the error, exit 2", async () => {
    const c = context(true);
    const run = runTree(c.ctx, async (emit) => {
      emit(halt);
      throw new CliError("usage", "sync halted (max_delete): nothing was deleted");
    });
    await expect(run).rejects.toEqual(new ReportedError(2));
    const lines = c.out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.type)).toEqual(["halt", "exit_error"]);
    expect(lines[1]).toMatchObject({ code: "usage", exit_code: 2 });
  });
});
