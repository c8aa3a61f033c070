import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { blake3 } from "../support/grpc-client.js";

// ls --deleted and restore through the real binary against a real server, in a fixed zone so times read the same anywhere.
let server: TestServer;
let dir: string;
const drive = (args: string[]) => runDrive(args, { server: server.url, token: server.adminToken, cwd: dir, env: { TZ: "Asia/Kolkata" } });
const ok = async (args: string[]) => {
  const r = await drive(args);
  expect(r.code, `drive ${args.join(" ")}: ${r.stdout}${r.stderr}`).toBe(0);
  return r;
};

const first = randomBytes(300_000);
const second = randomBytes(200_000);

beforeAll(async () => {
  server = await startDriveServer();
  dir = await mkdtemp(join(tmpdir(), "drive-restore-"));
  await writeFile(join(dir, "first.bin"), first);
  await writeFile(join(dir, "second.bin"), second);
});
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("drive ls --deleted", () => {
  it("says so when nothing is deleted: a line on stderr, nothing on stdout, no JSON line", async () => {
    const plain = await ok(["ls", "--deleted"]);
    expect([plain.stdout, plain.stderr]).toEqual(["", "no deleted files\n"]);
    const under = await ok(["ls", "--deleted", "docs/"]);
    expect(under.stderr).toBe("no deleted files under docs/\n");
    const json = await ok(["--json", "ls", "--deleted"]);
    expect(json.stdout).toBe("");
  });

  it("lists a deleted file under its prefix with its last live size, when it was deleted and the revision restore brings back", async () => {
    await ok(["push", "first.bin", "docs/a.bin"]);
    await ok(["push", "second.bin", "docs/keep.bin"]);
    await ok(["rm", "docs/a.bin"]);

    const plain = await ok(["ls", "--deleted", "docs/"]);
    expect(plain.stdout).toMatch(/^ +300000  deleted \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0530  r1 +docs\/a\.bin\n$/);
    const json = await ok(["--json", "ls", "--deleted"]);
    expect(json.lines).toEqual([
      expect.objectContaining({
        type: "file",
        path: "docs/a.bin",
        kind: "file",
        size: first.length,
        revision: 2,
        deleted: true,
        restore_revision: 1,
        content_hash: blake3(first).toString("hex"),
        content_hash_kind: "blake3",
      }),
    ]);
    expect(json.lines[0]!.deleted_at).toBe(json.lines[0]!.modified_at);
    const long = await ok(["ls", "--deleted", "-l", "-h", "docs"]);
    expect(long.stdout).toMatch(/^-[-rwx?]{9}  file +293K  deleted .* r1 +blake3 +[0-9a-f]{64}  docs\/a\.bin\n$/);
    // A prefix with nothing deleted under it, and the live listing, do not show it.
    expect((await ok(["ls", "--deleted", "other/"])).stderr).toBe("no deleted files under other/\n");
    expect((await ok(["--json", "ls", "-R", "docs"])).lines.map((l) => l.path)).toEqual(["docs/keep.bin"]);
  });
});

describe("drive restore", () => {
  it("brings a deleted file back as a new revision, byte for byte, and a second restore changes nothing", async () => {
    const r = await ok(["restore", "docs/a.bin"]);
    expect(r.stdout).toBe("restored docs/a.bin from revision 1 as revision 3\n");
    await ok(["pull", "docs/a.bin", "a-back.bin"]);
    expect((await readFile(join(dir, "a-back.bin"))).equals(first)).toBe(true);
    expect((await ok(["--json", "ls", "--deleted"])).lines).toEqual([]);
    const versions = await ok(["--json", "versions", "docs/a.bin"]);
    expect(versions.lines.map((v) => [v.revision, v.deleted])).toEqual([
      [3, false],
      [2, true],
      [1, false],
    ]);

    const again = await ok(["restore", "docs/a.bin"]);
    expect(again.stdout).toMatch(/^docs\/a\.bin is not deleted: revision 3 is current; nothing restored/);
    const json = await ok(["--json", "restore", "docs/a.bin"]);
    expect(json.lines).toEqual([expect.objectContaining({ type: "restored", path: "docs/a.bin", revision: 3, restored_from: 3, changed: false })]);
  });

  it("--revision 1 brings an overwritten file's first content back; --json says what it did", async () => {
    await ok(["push", "first.bin", "docs/over.bin"]);
    await ok(["push", "second.bin", "docs/over.bin"]);
    const r = await ok(["--json", "restore", "docs/over.bin", "--revision", "1"]);
    expect(r.lines).toEqual([
      expect.objectContaining({ type: "restored", path: "docs/over.bin", kind: "file", revision: 3, restored_from: 1, changed: true, size: first.length, content_hash: blake3(first).toString("hex") }),
    ]);
    await ok(["pull", "docs/over.bin", "over-back.bin"]);
    expect((await readFile(join(dir, "over-back.bin"))).equals(first)).toBe(true);
    // Revision 1's content is what the path holds now.
    expect((await ok(["restore", "docs/over.bin", "--revision", "1"])).stdout).toBe("docs/over.bin already holds revision 1's content (as revision 3); nothing restored\n");
    // And back to the second content with --if-revision on the current one.
    expect((await ok(["restore", "docs/over.bin", "--revision", "2", "--if-revision", "3"])).stdout).toBe("restored docs/over.bin from revision 2 as revision 4\n");
  });

  it("says clearly why not, with the documented exit codes", async () => {
    const missing = await drive(["restore", "no/such.bin"]);
    expect([missing.code, missing.stderr]).toEqual([3, "drive: error: restore: no/such.bin: no such file (it never existed)\n"]);
    const missingJson = await drive(["--json", "restore", "no/such.bin"]);
    expect(missingJson.lines.at(-1)).toMatchObject({ type: "exit_error", code: "not_found", exit_code: 3 });

    const noRevision = await drive(["restore", "docs/a.bin", "--revision", "9"]);
    expect([noRevision.code, noRevision.stderr]).toEqual([3, "drive: error: restore: docs/a.bin has no revision 9: its newest is 3 (drive versions docs/a.bin lists them)\n"]);
    const deletion = await drive(["restore", "docs/a.bin", "--revision", "2"]);
    expect(deletion.code).toBe(3);
    expect(deletion.stderr).toContain("revision 2 of docs/a.bin records its deletion");

    const folder = await drive(["restore", "docs"]);
    expect([folder.code, folder.stderr]).toEqual([2, "drive: error: restore: docs is a folder; restore brings back one file (drive ls --deleted docs/ lists the deleted files under it)\n"]);
    const folderJson = await drive(["--json", "restore", "docs/"]);
    expect(folderJson.lines.at(-1)).toMatchObject({ type: "exit_error", code: "usage", exit_code: 2 });

    const stale = await drive(["restore", "docs/over.bin", "--revision", "1", "--if-revision", "2"]);
    expect([stale.code, stale.stderr]).toEqual([6, "drive: error: restore: docs/over.bin is no longer at revision 2: it is at revision 4 now; nothing restored\n"]);
    const staleJson = await drive(["--json", "restore", "docs/over.bin", "--revision", "1", "--if-revision", "2"]);
    expect(staleJson.lines.at(-1)).toMatchObject({ type: "exit_error", code: "conflict", reason: "REVISION_CONFLICT", exit_code: 6 });

    const badRevision = await drive(["restore", "docs/a.bin", "--revision", "one"]);
    expect(badRevision.code).toBe(2);
    expect(badRevision.stderr).toContain("must be a revision number");
  });

  it("refuses to bring a file back where a folder of paths now lies (exit 6), and leaves both as they were", async () => {
    await ok(["push", "first.bin", "clash"]);
    await ok(["rm", "clash"]);
    await ok(["push", "second.bin", "clash/inside.bin"]);
    const r = await drive(["restore", "clash"]);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/^drive: error: restore: cannot bring clash back: clash is a folder on the server .*; nothing restored\n$/);
    expect((await ok(["--json", "ls", "--deleted", "clash"])).lines.map((l) => l.path)).toEqual(["clash"]);
    expect((await ok(["--json", "ls", "-R", "clash/"])).lines.map((l) => l.path)).toEqual(["clash/inside.bin"]);
  });

  it("lists a file moved away as deleted at its old path, with the revision restore then brings back there", async () => {
    await ok(["push", "first.bin", "m/old.bin"]);
    await ok(["push", "second.bin", "m/old.bin"]);
    await ok(["mv", "m/old.bin", "m/new.bin"]);
    const listed = await ok(["--json", "ls", "--deleted", "m/"]);
    expect(listed.lines).toEqual([expect.objectContaining({ path: "m/old.bin", revision: 3, restore_revision: 2, size: second.length })]);
    expect((await ok(["restore", "m/old.bin"])).stdout).toBe("restored m/old.bin from revision 2 as revision 4\n");
    await ok(["pull", "m/old.bin", "old-back.bin"]);
    expect((await readFile(join(dir, "old-back.bin"))).equals(second)).toBe(true);
  });

  it("brings a folder entry back alone, and says the files under it stay deleted", async () => {
    await mkdir(join(dir, "tree", "empty"), { recursive: true });
    await ok(["push", "tree", "t"]);
    expect((await ok(["--json", "ls", "t"])).lines).toEqual([expect.objectContaining({ path: "t/empty", kind: "folder" })]);
    await ok(["rm", "t/empty"]);
    const r = await ok(["restore", "t/empty/"]);
    expect(r.stdout).toBe("restored t/empty/ from revision 1 as revision 3\n");
    expect(r.stderr).toBe("");
    expect((await ok(["--json", "stat", "t/empty"])).lines).toEqual([expect.objectContaining({ kind: "folder", revision: 3 })]);

    await ok(["push", "first.bin", "t/empty/f.bin"]);
    await ok(["rm", "t/empty/f.bin"]);
    await ok(["rm", "t/empty"]);
    const alone = await ok(["restore", "t/empty"]);
    expect(alone.stdout).toBe("restored t/empty/ from revision 3 as revision 5\n");
    expect(alone.stderr).toBe("the folder entry alone: files under it stay deleted (drive ls --deleted t/empty/ lists them)\n");
  });

  it("is listed in drive --help and completes", async () => {
    const help = await ok(["--help"]);
    expect(help.stdout).toMatch(/^ +restore \[options\] <path> +bring back a deleted file/m);
    const bash = await ok(["completion", "bash"]);
    expect(bash.stdout).toContain("'/restore'");
    expect(bash.stdout).toContain("--revision");
    expect((await ok(["ls", "--help"])).stdout).toContain("--deleted");
  });
});
