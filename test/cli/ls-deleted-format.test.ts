import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { beforeAll, describe, expect, it } from "vitest";
import { ContentHashKind, EntryKind, FileInfoSchema } from "../../gen/drive/v1/types_pb.js";
import { deletedFields, deletedLine, lastLiveRevision } from "../../cli/commands/ls-deleted.js";

beforeAll(() => {
  process.env.TZ = "Europe/Paris";
});

/** As ListFiles with deleted gives it: the deletion's revision and time, the last live content. */
const gone = (over: { path?: string; revision?: bigint } = {}) =>
  create(FileInfoSchema, {
    path: over.path ?? "notes/todo.txt",
    size: 4096n,
    revision: over.revision ?? 3n,
    deleted: true,
    contentHash: new Uint8Array(32).fill(0xab),
    contentHashKind: ContentHashKind.BLAKE3,
    modifiedAt: timestampFromDate(new Date("2026-12-02T05:15:03Z")),
    mtime: timestampFromDate(new Date("2026-11-01T00:00:00Z")),
    kind: EntryKind.FILE,
    mode: 0o644,
  });

describe("ls --deleted formatting", () => {
  it("shows the last live size, when it was deleted (not its mtime) and the revision restore brings back", () => {
    expect(lastLiveRevision(gone())).toBe(2n);
    expect(deletedLine(gone(), { long: false, human: false })).toBe(`${"4096".padStart(14)}  deleted 2026-12-02 06:15:03 +0100  r2     notes/todo.txt`);
    expect(deletedLine(gone(), { long: true, human: true })).toBe(
      `-rw-r--r--  file    ${"4.0K".padStart(6)}  deleted 2026-12-02 06:15:03 +0100  r2     blake3     ${"ab".repeat(32)}  notes/todo.txt`,
    );
  });

  it("--json keeps ls's fields and adds deleted, deleted_at and restore_revision", () => {
    expect(deletedFields(gone({ revision: 7n }))).toMatchObject({
      type: "file",
      path: "notes/todo.txt",
      kind: "file",
      size: 4096n,
      revision: 7n,
      deleted: true,
      deleted_at: "2026-12-02T05:15:03.000Z",
      modified_at: "2026-12-02T05:15:03.000Z",
      restore_revision: 6n,
      mode: 0o644,
      content_hash_kind: "blake3",
    });
  });

  it("prints a hostile name's control characters as ?", () => {
    expect(deletedLine(gone({ path: "x\u001b[2J\nname" }), { long: false, human: false }).endsWith("  x?[2J?name")).toBe(true);
  });
});
