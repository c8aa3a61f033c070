import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DriveClient } from "../../cli/rpc/drive-client.js";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { client, files, snapshot, startWatch, until, type WatchProcess } from "./watch-support.js";

/**
 * drive pull --watch against a real server: client A changes the remote
 * folder with push (and Move), B's mirror follows. One server and one
 * mirror for the whole file, each test building on the last, to stay fast.
 */
describe("pull --watch", () => {
  let server: TestServer;
  let dir: string;
  let a: string;
  let mirror: string;
  let rpc: DriveClient;
  let watch: WatchProcess | undefined;
  const drive = (args: string[]) => runDrive(args, { server: server.url, token: server.adminToken, cwd: dir });
  const pushA = async (...flags: string[]) => {
    const r = await drive(["--json", "push", ...flags, a, "w"]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
  };
  const startMirror = () => (watch = startWatch(["pull", "--watch", "w", mirror], { server: server.url, token: server.adminToken, cwd: dir }));
  /** The mirror's files equal A's (or want), with nothing extra. */
  const mirrored = async (want?: Record<string, string>) => {
    const expected = want ?? files(await snapshot(a));
    await until(async () => JSON.stringify(files(await snapshot(mirror))) === JSON.stringify(expected), "the mirror to match", async () => ({ stderr: watch?.stderr(), exit: watch?.child.exitCode, last: watch?.lines.filter((l) => l.type !== "status").slice(-5), mirror: files(await snapshot(mirror)), expected }));
  };

  beforeAll(async () => {
    server = await startDriveServer();
    dir = await mkdtemp(join(tmpdir(), "drive-watch-pull-"));
    a = join(dir, "a");
    mirror = join(dir, "mirror");
    await mkdir(join(a, "docs/deep/er"), { recursive: true });
    await writeFile(join(a, "one.txt"), "one");
    await writeFile(join(a, "docs/two.txt"), "two");
    await writeFile(join(a, "docs/deep/er/three.txt"), "three");
    await pushA();
    rpc = client(server.url, server.adminToken);
    startMirror();
  });
  afterAll(async () => {
    await watch?.stop("SIGKILL");
    rpc?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("starts with a full pull", async () => {
    await mirrored();
  });

  it("brings adds and edits", async () => {
    await writeFile(join(a, "new.txt"), "new");
    await writeFile(join(a, "one.txt"), "one, edited");
    await mkdir(join(a, "fresh/sub"), { recursive: true });
    await writeFile(join(a, "fresh/sub/f.txt"), "f");
    await pushA();
    await mirrored();
  });

  it("brings deletes of a file and of a folder", async () => {
    await rm(join(a, "new.txt"));
    await rm(join(a, "fresh"), { recursive: true });
    await pushA("--delete");
    await mirrored();
    await until(async () => !(await readdir(mirror)).includes("fresh"), "the deleted folder to go");
  });

  it("brings renames of a file and of a folder", async () => {
    await rpc.tree.move({ fromPath: "w/one.txt", toPath: "w/uno.txt" });
    await rpc.tree.move({ fromPath: "w/docs", toPath: "w/papers" });
    const want = { "papers/deep/er/three.txt": "three", "papers/two.txt": "two", "uno.txt": "one, edited" };
    await mirrored(want);
    // A's tree follows, so later pushes agree with the server.
    await rm(a, { recursive: true });
    await mkdir(join(a, "papers/deep/er"), { recursive: true });
    await writeFile(join(a, "papers/deep/er/three.txt"), "three");
    await writeFile(join(a, "papers/two.txt"), "two");
    await writeFile(join(a, "uno.txt"), "one, edited");
  });

  it("keeps a file changed here, and writes the remote version beside it as a conflicted copy", async () => {
    await writeFile(join(mirror, "uno.txt"), "mine");
    await writeFile(join(a, "uno.txt"), "theirs");
    await pushA();
    await until(async () => Object.keys(await snapshot(mirror)).some((p) => p.startsWith("uno (conflicted copy ")), "a conflicted copy", () => watch?.stderr());
    const snap = files(await snapshot(mirror));
    expect(snap["uno.txt"]).toBe("mine");
    const copies = Object.entries(snap).filter(([p]) => p.startsWith("uno (conflicted copy "));
    expect(copies).toHaveLength(1);
    expect(copies[0]![0]).toMatch(/^uno \(conflicted copy .+ \d{4}-\d{2}-\d{2} \d{6}\)\.txt$/);
    expect(copies[0]![1]).toBe("theirs");
    // Settle the conflict the way a user would: take theirs locally, drop the copy.
    await writeFile(join(mirror, "uno.txt"), "theirs");
    await rm(join(mirror, copies[0]![0]));
  });

  it("after kill -9 mid-batch, a new run catches up from its cursor: nothing lost, nothing doubled", async () => {
    // Killed while a batch of 100 files is landing: the cursor saved is the one before it.
    await mkdir(join(a, "batch"));
    for (let i = 0; i < 100; i++) await writeFile(join(a, `batch/f${i}.txt`), `batch file ${i}`);
    const pushing = pushA();
    await until(async () => (await readdir(join(mirror, "batch")).catch(() => [])).length >= 20, "the batch to start landing");
    await watch!.stop("SIGKILL");
    await pushing;
    await rm(join(a, "batch"), { recursive: true });
    await pushA("--delete", "--max-delete", "100%");
    await writeFile(join(a, "while-down.txt"), "added while down");
    await writeFile(join(a, "papers/two.txt"), "two, edited while down");
    await rm(join(a, "papers/deep"), { recursive: true });
    await pushA("--delete");
    await rpc.tree.move({ fromPath: "w/while-down.txt", toPath: "w/moved-while-down.txt" });
    startMirror();
    const want = { "moved-while-down.txt": "added while down", "papers/two.txt": "two, edited while down", "uno.txt": "theirs" };
    await mirrored(want);
    await rm(join(a, "while-down.txt"));
    await writeFile(join(a, "moved-while-down.txt"), "added while down");
  });

  it("rides out a server restart and catches up after it", async () => {
    server = await server.restart();
    rpc.close();
    rpc = client(server.url, server.adminToken);
    await writeFile(join(a, "after-restart.txt"), "after restart");
    await pushA();
    await mirrored();
  });

  it("ends cleanly on Ctrl-C: exit 0 and a summary", async () => {
    const exit = await watch!.stop("SIGINT");
    expect(exit, watch!.stderr()).toEqual({ code: 0, signal: null });
    const summaries = watch!.lines.filter((l) => l.type === "summary");
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.files_sent).toBeGreaterThan(0); // this run's work, counted
  });
});
