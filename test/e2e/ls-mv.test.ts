import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";

// ls, stat and mv against a real server, in a fixed zone so times read the same anywhere.
let server: TestServer;
let dir: string;
const drive = (args: string[]) => runDrive(args, { server: server.url, token: server.adminToken, cwd: dir, env: { TZ: "Asia/Kolkata" } });

beforeAll(async () => {
  server = await startDriveServer();
  dir = await mkdtemp(join(tmpdir(), "drive-ls-"));
  await writeFile(join(dir, "f"), "x".repeat(2048));
  for (const remote of ["top.txt", "a/b/c.txt", "a/b/d.txt", "a/e.txt", "ab.txt"]) {
    const push = await drive(["push", "f", remote]);
    expect(push.code, push.stderr).toBe(0);
  }
});
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("drive ls", () => {
  it("lists a folder as ls does: an implicit folder once, ending in /", async () => {
    const root = await drive(["ls"]);
    expect(root.code, root.stderr).toBe(0);
    const names = root.stdout.trim().split("\n").map((l) => l.split(/\s+/).at(-1));
    expect(names.sort()).toEqual(["a/", "ab.txt", "top.txt"]);
    const a = await drive(["--json", "ls", "a"]);
    expect(a.lines.map((l) => [l.path, l.kind])).toEqual([
      ["a/b", "folder"],
      ["a/e.txt", "file"],
    ]);
  });

  it("-R lists everything under a prefix, as ls did before", async () => {
    const r = await drive(["--json", "ls", "-R", "a"]);
    expect(r.lines.map((l) => l.path)).toEqual(["a/b/c.txt", "a/b/d.txt", "a/e.txt", "ab.txt"]);
    expect(r.lines[0]).toMatchObject({ type: "file", kind: "file", size: 2048, revision: 1 });
    expect(r.lines[0]).toHaveProperty("mode");
    expect(r.lines[0]).toHaveProperty("mtime");
  });

  it("-l -h shows mode, kind, human size, local time with its zone, revision and hash", async () => {
    const r = await drive(["ls", "-l", "-h", "a/b"]);
    expect(r.code, r.stderr).toBe(0);
    const line = r.stdout.split("\n")[0]!;
    expect(line).toMatch(/^-[-rwx?]{9}  file +2\.0K  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0530  r1 +blake3 +[0-9a-f]{64}  a\/b\/c\.txt$/);
  });

  it("shows a file named alone, and says when nothing is there", async () => {
    const one = await drive(["--json", "ls", "a/e.txt"]);
    expect(one.lines).toEqual([expect.objectContaining({ path: "a/e.txt", kind: "file" })]);
    const none = await drive(["--json", "ls", "nothing/here"]);
    expect(none.code).toBe(3);
    expect(none.lines.at(-1)).toMatchObject({ type: "exit_error", code: "not_found" });
    // A folder asked for with its slash that holds nothing is an empty listing, not an error.
    const empty = await drive(["ls", "nothing/"]);
    expect([empty.code, empty.stdout]).toEqual([0, ""]);
  });

  it("--help still works, with -h taken by human sizes", async () => {
    const help = await drive(["ls", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--human-readable");
  });
});

describe("drive stat", () => {
  it("shows kind, mode and mtime of a file, and a folder that paths pass through", async () => {
    const f = await drive(["stat", "a/e.txt"]);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toMatch(/^kind: +file$/m);
    expect(f.stdout).toMatch(/^mode: +/m);
    expect(f.stdout).toMatch(/^mtime: +/m);
    expect(f.stdout).toMatch(/^modified: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0530 \(committed\)$/m);
    const folder = await drive(["--json", "stat", "a/b"]);
    expect(folder.lines).toEqual([expect.objectContaining({ path: "a/b", kind: "folder", implicit: true })]);
    expect((await drive(["stat", "nope"])).code).toBe(3);
  });
});

describe("drive mv", () => {
  it("moves a file, or says clearly why not", async () => {
    const mv = await drive(["--json", "mv", "top.txt", "moved/"]);
    const last = mv.lines.at(-1)!;
    if (last.type === "exit_error" && String(last.message).includes("cannot move paths yet")) {
      // The server's Move is not built yet (another part of issue 9): the answer is a clear line, not a stack.
      expect(mv.code).toBe(1);
      return;
    }
    expect(mv.code, mv.stdout + mv.stderr).toBe(0);
    expect(last).toMatchObject({ type: "moved", from: "top.txt", to: "moved/top.txt", moved: 1 });
    expect((await drive(["stat", "top.txt"])).code).toBe(3);
    expect((await drive(["stat", "moved/top.txt"])).code).toBe(0);
    const exists = await drive(["mv", "a/e.txt", "ab.txt"]);
    expect(exists.code).toBe(6);
    expect(exists.stderr).toContain("ab.txt already exists");
    const stale = await drive(["mv", "--if-revision", "7", "a/e.txt", "a/f.txt"]);
    expect(stale.code).toBe(6);
    expect(stale.stderr).toContain("no longer at revision 7");
    const folder = await drive(["mv", "a/b", "z"]);
    expect(folder.code, folder.stderr).toBe(0);
    expect(folder.stdout).toContain("(2 paths)");
  });

  it("a missing source is exit 3", async () => {
    const mv = await drive(["mv", "no/such", "x"]);
    expect([3, 1]).toContain(mv.code); // 1 only while the server answers Unimplemented
    expect(mv.stderr).toMatch(/nothing at no\/such|cannot move paths yet/);
  });
});
