import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chown, link, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";

/**
 * The pull's temporary file has a predictable name in the destination's
 * folder. In a shared folder another user can plant something there first;
 * the pull must refuse it, never write through it.
 */
describe("a pull's temporary file cannot be planted", () => {
  let server: TestServer;
  let dir: string;
  let partial: string;
  const data = randomBytes(6 * 1024 * 1024 + 7);
  const drive = (args: string[]) => runDrive(args, { server: server.url, token: server.adminToken, cwd: dir });

  beforeAll(async () => {
    server = await startDriveServer();
    dir = await mkdtemp(join(tmpdir(), "drive-partial-"));
    await writeFile(join(dir, "src.bin"), data);
    const push = await drive(["--json", "push", "src.bin", "p/src.bin"]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    await mkdir(join(dir, "shared"));
    partial = join(dir, "shared", `.out.bin.${String(push.summary!.content_hash).slice(0, 16)}.drive-partial`);
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The victim outside the folder keeps its bytes, the destination is not created, and the error says why. */
  async function expectRefused(why: RegExp, victim?: { path: string; bytes: Buffer }): Promise<void> {
    const r = await drive(["--json", "pull", "p/src.bin", "shared/out.bin"]);
    expect(r.code, r.stderr + r.stdout).toBe(1);
    const last = r.lines.at(-1)!;
    expect(last).toMatchObject({ type: "exit_error", code: "internal", exit_code: 1 });
    expect(last.message).toMatch(/refusing to use the temporary file/);
    expect(last.message).toMatch(why);
    if (victim) expect((await readFile(victim.path)).equals(victim.bytes)).toBe(true);
    await expect(lstat(join(dir, "shared", "out.bin"))).rejects.toThrow();
    await rm(partial, { force: true });
  }

  it("refuses a planted symlink and leaves its target alone", async () => {
    const victim = { path: join(dir, "victim-symlink"), bytes: Buffer.from("root's precious file\n") };
    await writeFile(victim.path, victim.bytes);
    await symlink(victim.path, partial);
    await expectRefused(/symbolic link/, victim);
  });

  it("refuses a dangling symlink, creating nothing at its target", async () => {
    const target = join(dir, "would-be-created");
    await symlink(target, partial);
    await expectRefused(/symbolic link/);
    await expect(lstat(target)).rejects.toThrow();
  });

  it("refuses a planted hard link and leaves the other name's file alone", async () => {
    const victim = { path: join(dir, "victim-hardlink"), bytes: Buffer.from("another name for these bytes\n") };
    await writeFile(victim.path, victim.bytes);
    await link(victim.path, partial);
    await expectRefused(/2 links/, victim);
  });

  it("refuses a planted FIFO without blocking on it", async () => {
    execFileSync("mkfifo", [partial]);
    await expectRefused(/not a regular file/);
  });

  it.skipIf(process.getuid?.() !== 0)("as root, refuses a file another user planted", async () => {
    await writeFile(partial, Buffer.alloc(10));
    await chown(partial, 65534, 65534);
    await expectRefused(/another user/);
  });

  it("still pulls, and resumes from a leftover of its own", async () => {
    const first = await drive(["--json", "pull", "p/src.bin", "shared/out.bin"]);
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect((await readFile(join(dir, "shared", "out.bin"))).equals(data)).toBe(true);
    // A leftover of the right size whose chunks verify is taken as fetched.
    await writeFile(partial, data);
    const again = await drive(["--json", "pull", "p/src.bin", "shared/out.bin"]);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect(again.summary!.bytes_skipped).toBe(data.length);
    expect((await readFile(join(dir, "shared", "out.bin"))).equals(data)).toBe(true);
  });
});
