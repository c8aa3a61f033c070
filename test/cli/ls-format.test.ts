import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { beforeAll, describe, expect, it } from "vitest";
import { ContentHashKind, EntryKind, FileInfoSchema } from "../../gen/drive/v1/types_pb.js";
import { fileFields, humanSize, implicitFolderFields, listingLine, localTime, modeString } from "../../cli/commands/file-fields.js";

// Local time is the process's TZ: fix it, so the test reads the same anywhere. Node reads TZ anew on assignment.
beforeAll(() => {
  process.env.TZ = "Europe/Paris";
});

const at = new Date("2026-12-02T05:15:03Z");

function file(over: Omit<MessageInitShape<typeof FileInfoSchema>, "$typeName"> = {}) {
  return create(FileInfoSchema, {
    path: "notes/todo.txt",
    size: 4096n,
    revision: 3n,
    contentHash: new Uint8Array(32).fill(0xab),
    contentHashKind: ContentHashKind.BLAKE3,
    modifiedAt: timestampFromDate(new Date("2026-12-01T00:00:00Z")),
    kind: EntryKind.FILE,
    mode: 0o755,
    mtime: timestampFromDate(at),
    ...over,
  });
}

describe("ls formatting", () => {
  it("shows local time with its zone, in winter and in summer", () => {
    expect(localTime(at)).toBe("2026-12-02 06:15:03 +0100");
    expect(localTime(new Date("2026-07-01T12:00:00Z"))).toBe("2026-07-01 14:00:00 +0200");
    process.env.TZ = "America/St_Johns";
    expect(localTime(at)).toBe("2026-12-02 01:45:03 -0330");
    process.env.TZ = "Europe/Paris";
  });

  it("writes modes as ls does", () => {
    expect(modeString("file", 0o755)).toBe("-rwxr-xr-x");
    expect(modeString("file", 0o644)).toBe("-rw-r--r--");
    expect(modeString("folder", 0o750)).toBe("drwxr-x---");
    expect(modeString("file", 0o4755)).toBe("-rwsr-xr-x");
    expect(modeString("folder", 0o1777)).toBe("drwxrwxrwt");
    expect(modeString("file", 0o2644)).toBe("-rw-r-Sr--");
    // Not recorded: not pretended.
    expect(modeString("file", 0)).toBe("-?????????");
  });

  it("rounds human sizes up, as ls -h does", () => {
    expect(humanSize(0)).toBe("0");
    expect(humanSize(1023)).toBe("1023");
    expect(humanSize(1024)).toBe("1.0K");
    expect(humanSize(1025)).toBe("1.1K");
    expect(humanSize(10 * 1024)).toBe("10K");
    expect(humanSize(10 * 1024 - 1)).toBe("10K");
    expect(humanSize(1.5 * 1024 ** 3)).toBe("1.5G");
    expect(humanSize(5n * 1024n ** 4n)).toBe("5.0T");
  });

  it("lists the file's own mtime, else the commit time", () => {
    expect(listingLine(file(), { long: false, human: false })).toBe(`${"4096".padStart(14)}  2026-12-02 06:15:03 +0100  r3     notes/todo.txt`);
    const old = file({ mtime: undefined, mode: 0 });
    expect(listingLine(old, { long: false, human: true })).toBe(`${"4.0K".padStart(6)}  2026-12-01 01:00:00 +0100  r3     notes/todo.txt`);
  });

  it("adds mode, kind and content hash with -l, and marks folders", () => {
    const long = listingLine(file(), { long: true, human: true });
    expect(long).toBe(`-rwxr-xr-x  file    ${"4.0K".padStart(6)}  2026-12-02 06:15:03 +0100  r3     blake3     ${"ab".repeat(32)}  notes/todo.txt`);
    const folder = listingLine(file({ path: "empty", kind: EntryKind.FOLDER, size: 0n, contentHash: new Uint8Array(), contentHashKind: ContentHashKind.UNSPECIFIED, mode: 0o755 }), { long: true, human: false });
    expect(folder.startsWith("drwxr-xr-x  folder")).toBe(true);
    expect(folder.endsWith(" empty/")).toBe(true);
    const implicit = listingLine({ implicitFolder: "photos" }, { long: false, human: false });
    expect(implicit.trim()).toMatch(/^- +photos\/$/);
  });

  it("--json gains kind, mode and mtime, null when not recorded", () => {
    expect(fileFields(file())).toMatchObject({ type: "file", kind: "file", mode: 0o755, mtime: "2026-12-02T05:15:03.000Z", size: 4096n, revision: 3n });
    expect(fileFields(file({ mode: 0, mtime: undefined, kind: EntryKind.UNSPECIFIED }))).toMatchObject({ kind: "file", mode: null, mtime: null });
    expect(implicitFolderFields("photos")).toMatchObject({ type: "file", kind: "folder", implicit: true, path: "photos" });
  });

  it("prints a hostile name's control characters as ?, and keeps it as it is in --json", () => {
    const evil = file({ path: "x\u001b[2J\u0007\nname\u009b" });
    expect(listingLine(evil, { long: false, human: false }).endsWith("  x?[2J??name?")).toBe(true);
    expect(fileFields(evil).path).toBe("x\u001b[2J\u0007\nname\u009b");
  });
});
