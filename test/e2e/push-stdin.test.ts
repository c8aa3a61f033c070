import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { BIN } from "../support/drive-server.js";
import { logText } from "../support/sample-data.js";
import { readStored } from "../support/stored-layout.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";

const MiB = 1024 * 1024;

for (const mode of storeModes) describe.skipIf(mode.skip)(`drive push - (${mode.name} store)`, () => {
  let m: ModeServer;
  let dir: string;
  let spoolDir: string;
  // A private TMPDIR per test run, to see that the spool leaves nothing there.
  const drive = (args: string[], input?: Parameters<typeof runDrive>[1]["input"]) =>
    runDrive(args, { server: m.via, token: m.server.adminToken, cwd: dir, env: { TMPDIR: spoolDir }, input });

  beforeAll(async () => {
    // One open upload at most: an interrupted piped push that left its upload open would block the next push.
    m = await mode.start({ args: ["--max-open-uploads", "1"], proxy: true });
    dir = await mkdtemp(join(tmpdir(), "drive-stdin-"));
    spoolDir = await mkdtemp(join(tmpdir(), "drive-stdin-spool-"));
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(spoolDir, { recursive: true, force: true });
  });

  it("pushes a stream of unknown length from a pipe, byte-identical", async () => {
    const data = randomBytes(21 * MiB + 3);
    const push = await drive(["--json", "push", "-", "pipes/random.bin"], (stdin) => {
      // In pieces, as a producer writes them.
      let at = 0;
      const more = () => {
        while (at < data.length) {
          const piece = data.subarray(at, at + 100_000);
          at += piece.length;
          if (!stdin.write(piece)) return void stdin.once("drain", more);
        }
        stdin.end();
      };
      more();
    });
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect(push.summary).toMatchObject({ local: "-", remote: "pipes/random.bin", bytes_total: data.length, bytes_transferred: data.length, revision: 1 });
    expect((await readStored(m.server.url, m.server.adminToken, "pipes/random.bin")).data.equals(data)).toBe(true);
    expect(await readdir(spoolDir)).toEqual([]);
  });

  it("compresses piped text and stores an empty stream as an empty file", async () => {
    const text = logText(12 * MiB, 3);
    const push = await drive(["--json", "push", "-", "pipes/app.log"], text);
    expect(push.code, push.stderr).toBe(0);
    expect(push.summary!.bytes_transferred).toBeLessThan(0.35 * text.length);
    expect((await readStored(m.server.url, m.server.adminToken, "pipes/app.log")).data.equals(text)).toBe(true);

    const empty = await drive(["--json", "push", "-", "pipes/empty"], Buffer.alloc(0));
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.summary).toMatchObject({ bytes_total: 0, bytes_transferred: 0 });
    expect((await readStored(m.server.url, m.server.adminToken, "pipes/empty")).size).toBe(0);
  });

  it("interrupted by SIGINT mid-transfer, aborts its upload and leaves no spool", async () => {
    const data = randomBytes(24 * MiB);
    const link = m.proxy!.upstream;
    // Hold the link once 8 MiB more have crossed it: the push is then mid-part, whatever the timing.
    let held = false;
    void link.reached(link.bytes + 8 * MiB).then(() => {
      link.pause();
      held = true;
    });
    try {
      const push = await runDrive(["--json", "push", "-", "pipes/interrupted.bin"], {
        server: m.via,
        token: m.server.adminToken,
        cwd: dir,
        env: { TMPDIR: spoolDir },
        input: data,
        onLine: (_line, child) => {
          if (!held || child.killed) return;
          child.kill("SIGINT");
          // The abort goes over the same link in local mode: let it through.
          link.resume();
        },
      });
      expect(held).toBe(true);
      expect(push.code, push.stderr + push.stdout).toBe(130);
      expect(push.lines.at(-1)).toMatchObject({ type: "exit_error", code: "interrupted" });
    } finally {
      link.resume();
    }
    expect(await readdir(spoolDir)).toEqual([]);
    // The server allows one open upload here: had the interrupted one stayed open, this would be refused.
    const next = await drive(["--json", "push", "-", "pipes/after.bin"], randomBytes(MiB));
    expect(next.code, next.stderr + next.stdout).toBe(0);
  });

  it("refuses a terminal on stdin, and - without a remote name, as usage errors", async () => {
    const noName = await drive(["--json", "push", "-"], Buffer.from("x"));
    expect(noName.code).toBe(2);
    expect(noName.lines.at(-1)).toMatchObject({ type: "exit_error", code: "usage" });

    // A pseudo-terminal on stdin, through util-linux's script(1).
    const hasScript = spawnSync("script", ["--version"]).status === 0;
    if (!hasScript) return;
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} push - pipes/tty.bin; echo "exit=$?"`;
    const out = execFileSync("script", ["-qec", cmd, "/dev/null"], {
      env: { ...process.env, DRIVE_CONFIG: "/nonexistent", DRIVE_SERVER: m.via, DRIVE_TOKEN: m.server.adminToken },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(out).toMatch(/standard input, which is a terminal/);
    expect(out).toMatch(/exit=2/);
  });

  it("says in --help that a piped push cannot resume", async () => {
    const help = await drive(["push", "--help"]);
    expect(help.stdout).toMatch(/cannot resume/);
    expect(help.stdout).toMatch(/TMPDIR/);
  });
});
