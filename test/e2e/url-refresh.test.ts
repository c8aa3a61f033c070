import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { startThrottleProxy, type ThrottleProxy } from "../support/throttle-proxy.js";

const MiB = 1024 * 1024;

// URLs live 2 s here while the push takes several seconds through a slow
// link: it only succeeds if the client fetches fresh URLs as they expire.
describe("presigned URLs that expire mid-transfer", () => {
  let server: TestServer;
  let proxy: ThrottleProxy;
  let dir: string;

  beforeAll(async () => {
    server = await startDriveServer({ args: ["--url-ttl", "2s"] });
    proxy = await startThrottleProxy({ target: server.url, upstreamRate: 6 * MiB, downstreamRate: 6 * MiB });
    dir = await mkdtemp(join(tmpdir(), "drive-refresh-"));
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("are refreshed, and push and pull complete", async () => {
    const data = randomBytes(6 * 5 * MiB);
    await writeFile(join(dir, "slow.bin"), data);
    const drive = (args: string[]) => runDrive(args, { server: proxy.url, token: server.adminToken, cwd: dir });

    const push = await drive(["--json", "push", "--part-size", "5M", "--concurrency", "1", "slow.bin"]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect(push.summary).toMatchObject({ bytes_transferred: data.length });
    // The first window came with CreateUpload; every later part needed a fresh URL.
    const presigns = server.logs().split("\n").filter((l) => l.includes("UploadService/PresignParts") && l.includes('"code":"ok"'));
    expect(presigns.length).toBeGreaterThanOrEqual(2);

    const pull = await drive(["--json", "pull", "--concurrency", "1", "slow.bin", "copy.bin"]);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect((await readFile(join(dir, "copy.bin"))).equals(data)).toBe(true);
  });
});
