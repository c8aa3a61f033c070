import { execFileSync } from "node:child_process";
import { appendFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DriveClient } from "../../cli/rpc/drive-client.js";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { blake3, client, files, snapshot, startWatch, until, type WatchProcess } from "./watch-support.js";

/** drive push --watch against a real server, one watcher building on the last test's state. */
describe("push --watch", () => {
  let server: TestServer;
  let dir: string;
  let src: string;
  let rpc: DriveClient;
  let watch: WatchProcess | undefined;
  const start = (...flags: string[]) => (watch = startWatch(["push", "--watch", ...flags, src, "w"], { server: server.url, token: server.adminToken, cwd: dir }));
  const remote = async (path: string) => {
    const r = await rpc.files.stat({ path: `w/${path}` }).catch(() => undefined);
    return r?.file && !r.file.deleted ? r.file : undefined;
  };
  /** The remote file holds exactly `content`. */
  const holds = (path: string, content: string) =>
    until(async () => {
      const f = await remote(path);
      return !!f && Buffer.from(f.contentHash).equals(blake3(content));
    }, `w/${path} to hold ${JSON.stringify(content).slice(0, 40)}`, () => watch?.stderr());

  beforeAll(async () => {
    server = await startDriveServer();
    dir = await mkdtemp(join(tmpdir(), "drive-watch-push-"));
    src = join(dir, "src");
    await mkdir(src);
    await writeFile(join(src, "first.txt"), "first");
    rpc = client(server.url, server.adminToken);
    start();
  });
  afterAll(async () => {
    await watch?.stop("SIGKILL");
    rpc?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("pushes the tree first", async () => {
    await holds("first.txt", "first");
  });

  it("uploads a file written in pieces only once it settles: no revision ever holds a part of it", async () => {
    const piece = "x".repeat(10_000);
    await writeFile(join(src, "slow.bin"), piece);
    for (let i = 1; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 250)); // a slow writer: the point of the test
      await appendFile(join(src, "slow.bin"), piece);
    }
    await holds("slow.bin", piece.repeat(5));
    const versions = (await rpc.files.listVersions({ path: "w/slow.bin" })).versions;
    expect(versions.map((v) => Number(v.size))).toEqual([50_000]);
  });

  it("catches every file of a mkdir -p tree made at once", async () => {
    execFileSync("sh", ["-c", "mkdir -p a/b/c && echo deep > a/b/c/f && mkdir -p a/x/y/z && echo deeper > a/x/y/z/g"], { cwd: src });
    await holds("a/b/c/f", "deep\n");
    await holds("a/x/y/z/g", "deeper\n");
  });

  it("pushes an edit", async () => {
    await writeFile(join(src, "first.txt"), "first, edited");
    await holds("first.txt", "first, edited");
  });

  it("keeps remote files deleted here, without --delete", async () => {
    await rm(join(src, "first.txt"));
    await writeFile(join(src, "marker.txt"), "after the delete");
    await holds("marker.txt", "after the delete");
    expect(await remote("first.txt")).toBeDefined();
  });

  it("after kill -9, a new run pushes what changed while it was down, once", async () => {
    await watch!.stop("SIGKILL");
    await writeFile(join(src, "while-down.txt"), "while down");
    start("--delete");
    await holds("while-down.txt", "while down");
    // --delete now: first.txt, deleted here earlier, goes too.
    await until(async () => !(await remote("first.txt")), "first.txt to be deleted", () => watch?.stderr());
    expect((await rpc.files.listVersions({ path: "w/while-down.txt" })).versions).toHaveLength(1);
    expect((await rpc.files.listVersions({ path: "w/marker.txt" })).versions).toHaveLength(1);
  });

  it("propagates a delete with --delete", async () => {
    await rm(join(src, "a/x"), { recursive: true });
    await until(async () => !(await remote("a/x/y/z/g")), "a/x/y/z/g to be deleted", () => watch?.stderr());
    expect(await remote("a/b/c/f")).toBeDefined();
  });

  it("rides out a server restart: a file written while the server is down arrives after", async () => {
    await server.kill();
    await writeFile(join(src, "while-server-down.txt"), "server was down");
    await new Promise((r) => setTimeout(r, 1_500)); // past the settle time, so the push is tried against a dead server
    server = await server.restart();
    rpc.close();
    rpc = client(server.url, server.adminToken);
    await holds("while-server-down.txt", "server was down");
  });

  it("ends cleanly on Ctrl-C: exit 0 and a summary", async () => {
    const exit = await watch!.stop("SIGINT");
    expect(exit, watch!.stderr()).toEqual({ code: 0, signal: null });
    const summaries = watch!.lines.filter((l) => l.type === "summary");
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.files_sent).toBeGreaterThan(0); // this run's work, counted
  });

  it("left the server holding the folder as it is", async () => {
    const r = await runDrive(["pull", "w", join(dir, "back")], { server: server.url, token: server.adminToken, cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(files(await snapshot(join(dir, "back")))).toEqual(files(await snapshot(src)));
  });
});
