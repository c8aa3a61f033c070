import { randomBytes } from "node:crypto";
import { open, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { startThrottleProxy } from "../support/throttle-proxy.js";

const MiB = 1024 * 1024;
const PART = 5 * MiB;

/** The part files of the committed object of `size` bytes, in part order (see store-layout.ts). */
async function storedParts(dataDir: string, size: number): Promise<string[]> {
  const found: string[][] = [];
  for (const entry of await readdir(join(dataDir, "blobs", "objects"), { recursive: true })) {
    if (!entry.endsWith("manifest.json")) continue;
    const objectDir = join(dataDir, "blobs", "objects", entry, "..");
    const manifest = JSON.parse(await readFile(join(objectDir, "manifest.json"), "utf8")) as {
      size: number;
      parts: Array<{ partNumber: number; etag: string }>;
    };
    if (manifest.size === size) found.push(manifest.parts.map((p) => join(objectDir, `${p.partNumber}.${p.etag}`)));
  }
  expect(found, "exactly one stored object of that size").toHaveLength(1);
  return found[0]!;
}

describe("integrity", () => {
  let server: TestServer;
  let dir: string;
  const drive = (args: string[], via: string = server.url) => runDrive(args, { server: via, token: server.adminToken, cwd: dir });

  beforeAll(async () => {
    server = await startDriveServer();
    dir = await mkdtemp(join(tmpdir(), "drive-integrity-"));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a pull of a part damaged on the server's disk fails with exit 5 and leaves the destination alone", async () => {
    const size = 2 * PART + 123_457;
    await writeFile(join(dir, "rot.bin"), randomBytes(size));
    const push = await drive(["--json", "push", "--part-size", "5M", "rot.bin", "integrity/rot.bin"]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect(push.summary!.parts_total).toBe(3);

    // Bit rot in the middle of the second part: same size, so only the hash can tell.
    const parts = await storedParts(server.dataDir, size);
    expect(parts).toHaveLength(3);
    const fh = await open(parts[1]!, "r+");
    try {
      const one = Buffer.alloc(1);
      await fh.read(one, 0, 1, PART / 2);
      one[0] = one[0]! ^ 0x01;
      await fh.write(one, 0, 1, PART / 2);
    } finally {
      await fh.close();
    }

    const old = Buffer.from("what was here before the pull\n");
    await writeFile(join(dir, "rot-copy.bin"), old);
    const pull = await drive(["--json", "pull", "integrity/rot.bin", "rot-copy.bin"]);
    expect(pull.code, pull.stderr + pull.stdout).toBe(5);
    expect(pull.summary).toBeUndefined();
    expect(pull.lines.at(-1)).toMatchObject({ type: "exit_error", code: "integrity", exit_code: 5 });
    expect((await readFile(join(dir, "rot-copy.bin"))).equals(old)).toBe(true);
  });

  it("a push of a file edited after it was hashed is refused with exit 5", async () => {
    const size = 4 * PART;
    const file = join(dir, "edited.bin");
    const original = randomBytes(size);
    await writeFile(file, original);
    const proxy = await startThrottleProxy({ target: server.url });
    try {
      // One part at a time, held 2 MiB into the first: the scan is over and
      // the last part cannot have been read yet, because the first must
      // finish before the next starts.
      let edited = false;
      void proxy.upstream.reached(2 * MiB).then(async () => {
        proxy.upstream.pause();
        try {
          // Same size, mtime put back (to the millisecond): only the hash
          // taken while sending can notice.
          const before = await stat(file);
          const fh = await open(file, "r+");
          try {
            await fh.write(randomBytes(1000), 0, 1000, 3 * PART + 4096);
          } finally {
            await fh.close();
          }
          await utimes(file, before.atime, before.mtime);
          edited = true;
        } finally {
          proxy.upstream.resume();
        }
      });
      const push = await drive(["--json", "push", "--part-size", "5M", "--concurrency", "1", "edited.bin", "integrity/edited.bin"], proxy.url);
      expect(edited, "the push finished before the file could be edited").toBe(true);
      expect(push.code, push.stderr + push.stdout).toBe(5);
      expect(push.summary).toBeUndefined();
      expect(push.lines.at(-1)).toMatchObject({ type: "exit_error", code: "integrity", exit_code: 5 });
    } finally {
      await proxy.close();
    }
    // Nothing was committed under that name.
    const ls = await drive(["--json", "ls", "integrity/"]);
    expect(ls.lines.map((l) => l.path)).not.toContain("integrity/edited.bin");

    // The edited bytes reached the store before the client noticed; they must
    // not be taken for the original's part when the original is pushed again.
    await writeFile(file, original);
    const again = await drive(["--json", "push", "--part-size", "5M", "edited.bin", "integrity/edited.bin"]);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    const pull = await drive(["--json", "pull", "integrity/edited.bin", "edited-copy.bin"]);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect((await readFile(join(dir, "edited-copy.bin"))).equals(original)).toBe(true);
  });
});
