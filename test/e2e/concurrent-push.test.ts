import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";

const MiB = 1024 * 1024;
const PARTS = 10;
const SIZE = PARTS * 5 * MiB;
// Shared by every connection through the proxy: the slow push, at one part
// in flight, gets a ninth of it once the fast one (eight in flight) starts.
const RATE = 12 * MiB;

for (const mode of storeModes) describe.skipIf(mode.skip)(`two pushes of the same content at once (${mode.name} store)`, () => {
  let m: ModeServer;
  let dir: string;

  beforeAll(async () => {
    m = await mode.start({ proxy: true });
    dir = await mkdtemp(join(tmpdir(), "drive-concurrent-"));
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const drive = (args: string[]) => runDrive(args, { server: m.via, token: m.server.adminToken, cwd: dir });

  // Also a cron job started twice: both runs share one upload, whichever completes it.
  it.each([[[] as string[]], [["--if-revision", "0"]]])("both succeed with one version, when one completes while the other sends (%j)", async (extra) => {
    const name = `same-${extra.length}.bin`;
    const data = randomBytes(SIZE);
    await writeFile(join(dir, name), data);
    const proxy = m.proxy!;
    proxy.upstream.rate = RATE;
    try {
      const args = (concurrency: number) => ["--json", "push", "--part-size", "5M", "-c", String(concurrency), ...extra, name, `shared/${name}`];
      const sentBefore = proxy.upstream.bytes;
      const slow = drive(args(1));
      // The slow push is into its second part before the fast one starts, and shares its upload.
      await proxy.upstream.reached(sentBefore + 7 * MiB);
      const fast = await drive(args(8));
      const late = await slow;

      expect(fast.code, fast.stderr + fast.stdout).toBe(0);
      expect(late.code, late.stderr + late.stdout).toBe(0);
      expect(late.summary!.revision).toBe(fast.summary!.revision);
      // The slow one really was cut short: it did not send every part itself.
      expect(late.summary!.parts_transferred).toBeLessThan(PARTS);
    } finally {
      proxy.upstream.rate = Infinity;
    }

    const versions = await drive(["--json", "versions", `shared/${name}`]);
    expect(versions.lines).toHaveLength(1);
    const pull = await drive(["pull", `shared/${name}`, `${name}.copy`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect((await readFile(join(dir, `${name}.copy`))).equals(data)).toBe(true);
  });
});
