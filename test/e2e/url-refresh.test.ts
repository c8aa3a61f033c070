import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";

const MiB = 1024 * 1024;

// URLs live 2 s here while the push takes several seconds through a slow
// link: it only succeeds if the client fetches fresh URLs as they expire.
for (const mode of storeModes) describe.skipIf(mode.skip)(`presigned URLs that expire mid-transfer (${mode.name} store)`, () => {
  let m: ModeServer;
  let dir: string;

  beforeAll(async () => {
    m = await mode.start({ args: ["--url-ttl", "2s"], proxy: true });
    m.proxy!.upstream.rate = m.proxy!.downstream.rate = 6 * MiB;
    dir = await mkdtemp(join(tmpdir(), "drive-refresh-"));
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("are refreshed, and push and pull complete", async () => {
    const data = randomBytes(6 * 5 * MiB);
    await writeFile(join(dir, "slow.bin"), data);
    const drive = (args: string[]) => runDrive(args, { server: m.via, token: m.server.adminToken, cwd: dir });

    const push = await drive(["--json", "push", "--part-size", "5M", "--concurrency", "1", "slow.bin"]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect(push.summary).toMatchObject({ bytes_transferred: data.length });
    // The first window came with CreateUpload; every later part needed a fresh URL.
    const presigns = m.server.logs().split("\n").filter((l) => l.includes("UploadService/PresignParts") && l.includes('"code":"ok"'));
    expect(presigns.length).toBeGreaterThanOrEqual(2);

    // --no-reuse: slow.bin beside it holds every chunk, and the pull must go through the slow link.
    const pull = await drive(["--json", "pull", "--no-reuse", "--concurrency", "1", "slow.bin", "copy.bin"]);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect(pull.summary).toMatchObject({ bytes_transferred: data.length });
    const downloads = m.server.logs().split("\n").filter((l) => l.includes("FileService/GetDownload") && l.includes('"code":"ok"'));
    expect(downloads.length).toBeGreaterThanOrEqual(2);
    expect((await readFile(join(dir, "copy.bin"))).equals(data)).toBe(true);
  });
});
