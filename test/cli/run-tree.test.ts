import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema, ErrorReason, RevisionConflictSchema } from "../../gen/drive/v1/errors_pb.js";
import type { CommandContext } from "../../cli/commands/context.js";
import { moveError } from "../../cli/commands/mv.js";
import { ReportedError, runTransfer, runTree } from "../../cli/commands/run-transfer.js";
import { CliError } from "../../cli/errors.js";

function context(json: boolean) {
  let out = "";
  let err = "";
  const stream = (add: (s: string) => void) => ({ isTTY: false, write: (s: string) => (add(s), true) }) as unknown as NodeJS.WriteStream;
  const ctx: CommandContext = {
    json,
    quiet: false,
    flags: {},
    signal: new AbortController().signal,
    stdout: stream((s) => (out += s)),
    stderr: stream((s) => (err += s)),
    stdin: process.stdin,
  };
  return { ctx, out: () => out, err: () => err, lines: () => out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("runTree and runTransfer", () => {
  it("runTree prints a file line per file and the summary, then exits with the first failure's code", async () => {
    const c = context(true);
    const run = runTree(
      c.ctx,
      async (emit) => {
        emit({ type: "tree_plan", filesToSend: 2, bytesToSend: 3, filesUnchanged: 0, bytesUnchanged: 0, filesToDelete: 0, foldersToMake: 0 });
        emit({ type: "start", op: "push", remote: "d/a", local: "a", bytesTotal: 3, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0, file: 7 });
        emit({ type: "part_done", partNumber: 1, size: 3, file: 7 });
        emit({ type: "done", revision: 1, contentHash: "h", deduplicated: false, file: 7 });
        emit({ type: "file_failed", file: 8, path: "b", message: "stale base revision", code: "conflict" });
        return { folders_made: 2 };
      },
      { op: "push" },
    );
    await expect(run).rejects.toEqual(new ReportedError(6));
    expect(c.lines().map((l) => [l.type, l.action ?? null])).toEqual([
      ["file", "sent"],
      ["file", "failed"],
      ["summary", null],
    ]);
    expect(c.lines().at(-1)).toMatchObject({ op: "push", files_sent: 1, files_failed: 1, folders_made: 2 });
  });

  it("runTree with nothing to send still names its direction, and succeeds", async () => {
    const c = context(false);
    await runTree(c.ctx, async (emit) => {
      emit({ type: "file_skipped", path: "x", bytes: 1, reason: "unchanged" });
      return {};
    }, { op: "pull" });
    expect(c.out()).toMatch(/^pulled 0 files \(0 B\) in [\d.]+s: 0 sent, 1 skipped, 0 deleted, 0 failed\n$/);
  });

  it("runTransfer keeps one file's output: no file lines, the summary as before", async () => {
    const c = context(true);
    await runTransfer(c.ctx, async (emit) => {
      emit({ type: "start", op: "pull", remote: "r", local: "l", bytesTotal: 1, partsTotal: 1, bytesSkipped: 0, partsSkipped: 0 });
      emit({ type: "part_done", partNumber: 1, size: 1 });
      emit({ type: "done", revision: 2, contentHash: "h", deduplicated: false });
      return { revision: 2 };
    });
    expect(c.lines()).toEqual([expect.objectContaining({ type: "summary", files_done: 1, files_sent: 1, revision: 2, bytes_total: 1 })]);
  });

  it("a run that throws ends with one exit_error line and its exit code", async () => {
    const c = context(true);
    await expect(runTree(c.ctx, async () => {
      throw new CliError("not_found", "no such folder");
    })).rejects.toEqual(new ReportedError(3));
    expect(c.lines()).toEqual([{ type: "exit_error", code: "not_found", message: "no such folder", exit_code: 3 }]);
  });
});

describe("mv errors", () => {
  const withInfo = (code: Code, info: Parameters<typeof create<typeof ErrorInfoSchema>>[1]) =>
    new ConnectError("server says", code, undefined, [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, info) }]);

  it("maps the server's answers to clear lines and exit codes", () => {
    const exists = moveError(withInfo(Code.AlreadyExists, { reason: ErrorReason.DESTINATION_EXISTS }), "a", "b", undefined);
    expect([exists.exitCode, exists.message, exists.reason]).toEqual([6, "mv: b already exists (or a path under it does); nothing moved", "DESTINATION_EXISTS"]);

    const stale = moveError(
      withInfo(Code.FailedPrecondition, { reason: ErrorReason.REVISION_CONFLICT, detail: { case: "revisionConflict", value: create(RevisionConflictSchema, { currentRevision: 5n, baseRevision: 3n }) } }),
      "a", "b", 3,
    );
    expect([stale.exitCode, stale.message]).toEqual([6, "mv: a is no longer at revision 3: it is at revision 5 now; nothing moved"]);

    const missing = moveError(new ConnectError("nothing live", Code.NotFound), "a", "b", undefined);
    expect([missing.exitCode, missing.message]).toEqual([3, "mv: nothing at a"]);

    const under = moveError(new ConnectError("to_path lies under from_path", Code.InvalidArgument), "a", "a/b", undefined);
    expect([under.exitCode, under.message]).toEqual([2, "mv: to_path lies under from_path"]);

    const old = moveError(new ConnectError("not implemented", Code.Unimplemented), "a", "b", undefined);
    expect(old.message).toContain("cannot move paths yet");
  });
});
