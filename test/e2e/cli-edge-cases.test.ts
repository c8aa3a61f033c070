import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { lstat, mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { startThrottleProxy, type ThrottleProxy } from "../support/throttle-proxy.js";

// What a new user ran into, each answered by a clear error and its exit code, not a hang or a stack.
const MiB = 1024 * 1024;
let server: TestServer;
let dir: string;
const drive = (args: string[], via = server.url) => runDrive(args, { server: via, token: server.adminToken, cwd: dir });

beforeAll(async () => {
  server = await startDriveServer();
  dir = await mkdtemp(join(tmpdir(), "drive-edges-"));
  await writeFile(join(dir, "one"), "one\n");
});
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("odd local files", () => {
  it("a FIFO is refused at once as not a regular file (it used to block, deaf to Ctrl-C)", async () => {
    execFileSync("mkfifo", [join(dir, "pipe")]);
    const push = await drive(["--json", "push", "pipe"]);
    expect(push.code, push.stderr + push.stdout).toBe(2);
    expect(push.lines.at(-1)).toMatchObject({ type: "exit_error", code: "usage" });
    expect(push.lines.at(-1)!.message).toContain("not a regular file");
  });

  it("a file named as a folder (one/) says so, exit 3", async () => {
    const push = await drive(["push", "one/"]);
    expect(push.code, push.stderr).toBe(3);
    expect(push.stderr).toContain("not a folder");
  });

  it("a pull does not replace a FIFO at the destination with a file", async () => {
    expect((await drive(["push", "one", "one"])).code).toBe(0);
    execFileSync("mkfifo", [join(dir, "dest-pipe")]);
    const pull = await drive(["pull", "one", "dest-pipe"]);
    expect(pull.code, pull.stderr).toBe(2);
    expect(pull.stderr).toContain("not a regular file");
    expect((await lstat(join(dir, "dest-pipe"))).isFIFO()).toBe(true);
  });
});

describe("usage errors", () => {
  it("--revision that is not a number is a usage error, exit 2", async () => {
    const pull = await drive(["--json", "pull", "--revision", "abc", "one", "x"]);
    expect(pull.code, pull.stderr).toBe(2);
    expect(pull.lines.at(-1)).toMatchObject({ type: "exit_error", code: "usage", exit_code: 2 });
  });

  it("errors the argument parser finds still give an exit_error line under --json", async () => {
    for (const args of [["push", "--json"], ["bogus", "--json"], ["--json", "push", "one", "-c", "0"]]) {
      const r = await drive(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.lines, args.join(" ")).toHaveLength(1);
      expect(r.lines[0]).toMatchObject({ type: "exit_error", code: "usage", exit_code: 2 });
    }
  });
});

describe("a file that shrinks while it is pushed", () => {
  let proxy: ThrottleProxy;
  beforeAll(async () => {
    proxy = await startThrottleProxy({ target: server.url, upstreamRate: 8 * MiB });
  });
  afterAll(() => proxy.close());

  it("ends at once with exit 5, not after minutes of timeouts", async () => {
    const file = join(dir, "shrinks.bin");
    await writeFile(file, randomBytes(40 * MiB));
    const pushing = drive(["--json", "push", "--part-size", "5M", "-c", "1", "shrinks.bin"], proxy.url);
    await proxy.upstream.reached(7 * MiB); // part 1 sent, part 2 on its way
    await truncate(file, 6 * MiB);
    const push = await pushing;
    expect(push.code, push.stderr + push.stdout).toBe(5);
    expect(push.lines.at(-1)).toMatchObject({ type: "exit_error", code: "integrity" });
    expect(push.lines.at(-1)!.message).toContain("changed while it was being uploaded");
    expect((await drive(["ls"])).stdout).not.toContain("shrinks.bin");
    expect((await readFile(file)).length).toBe(6 * MiB);
  }, 50_000);
});
