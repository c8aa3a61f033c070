import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";

const MiB = 1024 * 1024;
const PART = 5 * MiB;

for (const mode of storeModes) describe.skipIf(mode.skip)(`push and pull round trip (${mode.name} store)`, () => {
  let m: ModeServer;
  let dir: string;
  const drive = (args: string[]) => runDrive(args, { server: m.via, token: m.server.adminToken, cwd: dir });

  beforeAll(async () => {
    m = await mode.start();
    dir = await mkdtemp(join(tmpdir(), "drive-files-"));
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  // Empty, one byte, one byte under a part, exactly one and two parts, and a short last part.
  const sizes = [0, 1, PART - 1, PART, 2 * PART, 2 * PART + 1];
  it.each(sizes)("is byte-identical for %i bytes", async (size) => {
    const data = randomBytes(size);
    const name = `file-${size}.bin`;
    await writeFile(join(dir, name), data);

    const push = await drive(["--json", "push", "--part-size", "5M", name, `sizes/${name}`]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect(push.summary).toMatchObject({ type: "summary", bytes_total: size, bytes_transferred: size });
    // Parts group content-defined chunks: 5 MiB or more each but the last, so at most one per 5 MiB.
    const parts = push.summary!.parts_total;
    expect(parts).toBeGreaterThanOrEqual(size > 0 ? 1 : 0);
    expect(parts).toBeLessThanOrEqual(Math.ceil(size / PART));
    expect(push.summary!.parts_transferred).toBe(parts);
    expect(push.summary!.duration_ms).toBeGreaterThanOrEqual(0);

    // --no-reuse: the file beside the copy holds every chunk; this round trip is over the wire.
    const pull = await drive(["--json", "pull", "--no-reuse", `sizes/${name}`, `copy-${name}`]);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect(pull.summary).toMatchObject({ bytes_total: size, bytes_transferred: size });
    expect((await readFile(join(dir, `copy-${name}`))).equals(data)).toBe(true);
  });

  it("commits known content at once, without moving bytes", async () => {
    const data = randomBytes(3 * MiB);
    await writeFile(join(dir, "dup.bin"), data);
    expect((await drive(["push", "dup.bin", "a/dup.bin"])).code).toBe(0);
    const again = await drive(["--json", "push", "dup.bin", "b/dup.bin"]);
    expect(again.code).toBe(0);
    expect(again.summary).toMatchObject({ bytes_transferred: 0, deduplicated: true, revision: 1 });
  });

  it("lists, versions and soft-deletes", async () => {
    await writeFile(join(dir, "v.txt"), "one");
    expect((await drive(["push", "v.txt", "docs/v.txt"])).code).toBe(0);
    await writeFile(join(dir, "v.txt"), "two!");
    expect((await drive(["push", "v.txt", "docs/v.txt"])).code).toBe(0);

    const ls = await drive(["--json", "ls", "docs/"]);
    expect(ls.lines).toEqual([expect.objectContaining({ type: "file", path: "docs/v.txt", size: 4, revision: 2 })]);

    const rm1 = await drive(["rm", "docs/v.txt"]);
    expect(rm1.code).toBe(0);
    expect((await drive(["--json", "ls", "docs/"])).lines).toEqual([]);

    const versions = await drive(["--json", "versions", "docs/v.txt"]);
    expect(versions.lines.map((v) => [v.revision, v.deleted])).toEqual([
      [3, true],
      [2, false],
      [1, false],
    ]);
    const old = await drive(["pull", "--revision", "1", "docs/v.txt", "old.txt"]);
    expect(old.code, old.stderr).toBe(0);
    expect(await readFile(join(dir, "old.txt"), "utf8")).toBe("one");

    const gone = await drive(["--json", "pull", "docs/v.txt", "gone.txt"]);
    expect(gone.code).toBe(3);
    expect(gone.lines.at(-1)).toMatchObject({ type: "exit_error", code: "not_found", exit_code: 3 });
  });

  it("refuses writes based on a stale revision with exit 6, and takes current ones", async () => {
    await writeFile(join(dir, "c.txt"), "first");
    expect((await drive(["push", "--if-revision", "0", "c.txt", "cas/c.txt"])).code).toBe(0);
    await writeFile(join(dir, "c.txt"), "second");
    const exists = await drive(["--json", "push", "--if-revision", "0", "c.txt", "cas/c.txt"]);
    expect(exists.code).toBe(6);
    expect(exists.lines.at(-1)).toMatchObject({ type: "exit_error", code: "conflict", exit_code: 6 });
    expect((await drive(["push", "--if-revision", "1", "c.txt", "cas/c.txt"])).code).toBe(0);

    expect((await drive(["rm", "--if-revision", "1", "cas/c.txt"])).code).toBe(6);
    expect((await drive(["rm", "--if-revision", "2", "cas/c.txt"])).code).toBe(0);
    // Base 0 also matches a path whose newest revision is a deletion.
    expect((await drive(["push", "--if-revision", "0", "c.txt", "cas/c.txt"])).code).toBe(0);
    const ls = await drive(["--json", "ls", "cas/"]);
    expect(ls.lines).toEqual([expect.objectContaining({ path: "cas/c.txt", revision: 4 })]);
  });
});
