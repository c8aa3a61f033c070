import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";

const MiB = 1024 * 1024;

// Uploads expire after 3 s without a call here, and the sweeper runs every
// 1.5 s, while the push takes several times that through a slow link: it
// only succeeds if its calls (presign, report) keep the upload alive.
for (const mode of storeModes) describe.skipIf(mode.skip)(`a push that outlasts --upload-ttl (${mode.name} store)`, () => {
  let m: ModeServer;
  let dir: string;

  beforeAll(async () => {
    m = await mode.start({ args: ["--upload-ttl", "3s"], proxy: true });
    m.proxy!.upstream.rate = 6 * MiB;
    dir = await mkdtemp(join(tmpdir(), "drive-expiry-"));
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("is not swept, and pulls back byte for byte", async () => {
    const data = randomBytes(8 * 5 * MiB);
    await writeFile(join(dir, "long.bin"), data);
    const drive = (args: string[]) => runDrive(args, { server: m.via, token: m.server.adminToken, cwd: dir });

    const started = Date.now();
    const push = await drive(["--json", "push", "--part-size", "5M", "--concurrency", "1", "long.bin"]);
    const took = Date.now() - started;
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect(push.summary).toMatchObject({ bytes_transferred: data.length });
    expect(took).toBeGreaterThan(2 * 3000); // the point of the test: well past the TTL
    expect(m.server.logs()).not.toMatch(/expired upload aborted/);

    const pull = await drive(["--json", "pull", "long.bin", "copy.bin"]);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect((await readFile(join(dir, "copy.bin"))).equals(data)).toBe(true);
  });
});
