import { randomBytes } from "node:crypto";
import { open, mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";

const MiB = 1024 * 1024;
const PART = 5 * MiB;

for (const mode of storeModes) describe.skipIf(mode.skip)(`integrity (${mode.name} store)`, () => {
  let m: ModeServer;
  let dir: string;
  const drive = (args: string[]) => runDrive(args, { server: m.via, token: m.server.adminToken, cwd: dir });

  beforeAll(async () => {
    m = await mode.start({ proxy: true });
    dir = await mkdtemp(join(tmpdir(), "drive-integrity-"));
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a pull of a part damaged in the store fails with exit 5 and leaves the destination alone", async () => {
    const size = 2 * PART + 123_457;
    await writeFile(join(dir, "rot.bin"), randomBytes(size));
    const push = await drive(["--json", "push", "--part-size", "5M", "rot.bin", "integrity/rot.bin"]);
    expect(push.code, push.stderr + push.stdout).toBe(0);

    // Bit rot in the middle of the object: same size, so only the hash can tell.
    await m.damageObject(size, PART + PART / 2);

    const old = Buffer.from("what was here before the pull\n");
    await writeFile(join(dir, "rot-copy.bin"), old);
    // --no-reuse: rot.bin beside it holds every chunk, and the store's copy is what is on trial.
    const pull = await drive(["--json", "pull", "--no-reuse", "integrity/rot.bin", "rot-copy.bin"]);
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
    const proxy = m.proxy!;
    // One part at a time, held 2 MiB into the first: the scan is over and
    // the last part cannot have been read yet, because the first must
    // finish before the next starts.
    let edited = false;
    void proxy.upstream.reached(proxy.upstream.bytes + 2 * MiB).then(async () => {
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
    const push = await drive(["--json", "push", "--part-size", "5M", "--concurrency", "1", "edited.bin", "integrity/edited.bin"]);
    expect(edited, "the push finished before the file could be edited").toBe(true);
    expect(push.code, push.stderr + push.stdout).toBe(5);
    expect(push.summary).toBeUndefined();
    expect(push.lines.at(-1)).toMatchObject({ type: "exit_error", code: "integrity", exit_code: 5 });
    // Nothing was committed under that name.
    const ls = await drive(["--json", "ls", "integrity/"]);
    expect(ls.lines.map((l) => l.path)).not.toContain("integrity/edited.bin");

    // The edited bytes reached the store before the client noticed; they must
    // not be taken for the original's part when the original is pushed again.
    await writeFile(file, original);
    const again = await drive(["--json", "push", "--part-size", "5M", "edited.bin", "integrity/edited.bin"]);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    const pull = await drive(["--json", "pull", "--no-reuse", "integrity/edited.bin", "edited-copy.bin"]);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect((await readFile(join(dir, "edited-copy.bin"))).equals(original)).toBe(true);
  });
});
