import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runDrive, runDriveInterrupted, type CliResult } from "../support/drive-cli.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";
import type { ThrottleProxy } from "../support/throttle-proxy.js";

const KiB = 1024;
const MiB = 1024 * KiB;
// Three parts at the default part size (16 MiB): the size the issue reproduced with.
const SIZE = 40 * MiB;
// Slow enough that the transfer is still running when the signal lands.
const RATE = 20 * 1000 * 1000;

/** Moments to stop at: before the first chunk is whole, and mid-file with parts in flight. */
const MOMENTS = [64 * KiB, 20 * MiB];
const CASES = (["SIGKILL", "SIGINT"] as const).flatMap((sig) => MOMENTS.map((bytes) => [sig, bytes] as const));

for (const mode of storeModes) describe.skipIf(mode.skip)(`an interrupted transfer never stops the server (${mode.name} store)`, () => {
  let m: ModeServer;
  let proxy: ThrottleProxy;
  let dir: string;
  let data: Buffer;

  const drive = (args: string[]) => runDrive(args, { server: m.via, token: m.server.adminToken, cwd: dir });

  beforeAll(async () => {
    m = await mode.start({ proxy: true });
    proxy = m.proxy!;
    dir = await mkdtemp(join(tmpdir(), "drive-interrupt-"));
    data = randomBytes(SIZE);
    await writeFile(join(dir, "src.bin"), data);
    const push = await drive(["--json", "push", "src.bin", "int/src.bin"]);
    expect(push.code, push.stderr + push.stdout).toBe(0);
  });
  afterEach(() => {
    proxy.upstream.resume();
    proxy.downstream.resume();
    proxy.upstream.rate = proxy.downstream.rate = Infinity;
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The server is alive, healthy, and a fresh push and pull go through. */
  async function expectServing(label: string): Promise<void> {
    const small = randomBytes(300 * KiB);
    await writeFile(join(dir, `${label}.small`), small);
    const push = await drive(["--json", "push", `${label}.small`, `int/${label}.small`]);
    expect(push.code, push.stderr + push.stdout + m.server.logs().slice(-2000)).toBe(0);
    const pull = await drive(["--json", "pull", `int/${label}.small`, `${label}.small.copy`]);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect((await readFile(join(dir, `${label}.small.copy`))).equals(small)).toBe(true);
    const health = await fetch(`${m.server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(m.server.process.exitCode, m.server.logs().slice(-2000)).toBeNull();
  }

  /** SIGINT: exit 130 and one exit_error line; SIGKILL: killed, nothing printed after. */
  function expectStopped(r: CliResult, sig: "SIGKILL" | "SIGINT"): void {
    if (sig === "SIGKILL") {
      expect(r.signal, r.stderr + r.stdout).toBe("SIGKILL");
      return;
    }
    expect(r.code, r.stderr + r.stdout).toBe(130);
    expect(r.lines.filter((l) => l.type === "exit_error")).toEqual([
      { type: "exit_error", code: "interrupted", message: "interrupted by SIGINT", exit_code: 130 },
    ]);
    expect(r.lines.at(-1)!.type).toBe("exit_error");
    expect(r.stderr).toBe("");
  }

  it.each(CASES)("a pull stopped by %s after %i bytes leaves the server serving", async (sig, bytes) => {
    const label = `pull-${sig}-${bytes}`;
    const old = Buffer.from("before the pull\n");
    await writeFile(join(dir, label), old);
    proxy.downstream.rate = RATE;
    const r = await runDriveInterrupted(
      // --no-reuse: the source beside it holds every chunk, and the pull must be on the wire to be stopped there.
      ["--json", "pull", "--no-reuse", "--concurrency", "3", "int/src.bin", label],
      { server: m.via, token: m.server.adminToken, cwd: dir },
      proxy.downstream,
      bytes,
      sig,
    );
    proxy.downstream.rate = Infinity;
    expectStopped(r, sig);
    expect((await readFile(join(dir, label))).equals(old)).toBe(true);
    await expectServing(label);
  });

  it.each(CASES)("a push stopped by %s after %i bytes leaves the server serving", async (sig, bytes) => {
    const label = `push-${sig}-${bytes}`;
    await writeFile(join(dir, label), randomBytes(SIZE));
    proxy.upstream.rate = RATE;
    const r = await runDriveInterrupted(
      ["--json", "push", "--concurrency", "3", label, `int/${label}`],
      { server: m.via, token: m.server.adminToken, cwd: dir },
      proxy.upstream,
      bytes,
      sig,
    );
    proxy.upstream.rate = Infinity;
    expectStopped(r, sig);
    await expectServing(label);
  });

  it("a push whose server is killed retries, exits 7 with one clear line, and resumes once the server is back", async () => {
    const file = join(dir, "orphan.bin");
    const body = randomBytes(SIZE);
    await writeFile(file, body);
    proxy.upstream.rate = RATE;
    const args = ["--json", "push", "--part-size", "5M", "--concurrency", "1", "orphan.bin", "int/orphan.bin"];
    let killed = false;
    // Parts hold 5 to 20 MiB (content-defined, at --part-size 5M): one at a time, 21 MiB in, the first is stored.
    void proxy.upstream.reached(proxy.upstream.bytes + 21 * MiB).then(async () => {
      await m.server.kill();
      killed = true;
    });
    const r = await drive(args);
    expect(killed, "the push finished before the server could be killed").toBe(true);
    expect(r.code, r.stderr + r.stdout).toBe(7);
    expect(r.stderr).toBe("");
    const errors = r.lines.filter((l) => l.type === "exit_error");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "unavailable", exit_code: 7 });
    expect(errors[0]!.message).not.toMatch(/\n|    at /);
    expect(r.lines.at(-1)).toBe(errors[0]);
    if (mode.name === "local") {
      // Its parts went to the dead server: they were retried before it gave up.
      expect(r.lines.some((l) => l.type === "status" && l.retries > 0) || /retr/i.test(errors[0]!.message)).toBe(true);
    }

    // Plain output: one line on stderr, no stack.
    const plain = await runDrive(["-q", "push", "--part-size", "5M", "orphan.bin", "int/orphan.bin"], {
      server: m.via,
      token: m.server.adminToken,
      cwd: dir,
    });
    expect(plain.code, plain.stderr).toBe(7);
    expect(plain.stderr.trim().split("\n"), plain.stderr).toHaveLength(1);
    expect(plain.stderr).toMatch(/^drive: error: /);

    proxy.upstream.rate = Infinity;
    await m.restart();
    const again = await drive(args);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    expect(again.summary!.bytes_skipped).toBeGreaterThan(0);
    const pull = await drive(["--json", "pull", "int/orphan.bin", "orphan.copy"]);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect((await readFile(join(dir, "orphan.copy"))).equals(body)).toBe(true);
    // The pulls that were stopped left only their hidden temporary files.
    expect((await readdir(dir)).filter((n) => n.endsWith(".drive-partial")).every((n) => n.startsWith("."))).toBe(true);
  });
});
