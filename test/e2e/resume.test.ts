import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runDrive, runDriveInterrupted } from "../support/drive-cli.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";
import type { Direction, ThrottleProxy } from "../support/throttle-proxy.js";

const MiB = 1024 * 1024;
const SIZE = 128 * MiB;
// Slow enough that the transfer is still running when the signal lands,
// fast enough to keep each case to a few seconds.
const RATE = 40 * 1000 * 1000;

for (const mode of storeModes) describe.skipIf(mode.skip)(`interrupted transfers resume (${mode.name} store)`, () => {
  let m: ModeServer;
  let proxy: ThrottleProxy;
  let dir: string;

  beforeAll(async () => {
    m = await mode.start({ proxy: true });
    proxy = m.proxy!;
    dir = await mkdtemp(join(tmpdir(), "drive-resume-"));
  });
  afterEach(() => {
    proxy.upstream.rate = proxy.downstream.rate = Infinity;
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const drive = (args: string[]) => runDrive(args, { server: m.via, token: m.server.adminToken, cwd: dir });

  const interruptAt = (args: string[], direction: Direction, bytes: number, signal: NodeJS.Signals) =>
    runDriveInterrupted(args, { server: m.via, token: m.server.adminToken, cwd: dir }, direction, bytes, signal);

  it("a push killed with SIGKILL sends only the missing parts when run again", async () => {
    const data = randomBytes(SIZE);
    await writeFile(join(dir, "big.bin"), data);
    proxy.upstream.rate = RATE;
    const args = ["--json", "push", "--part-size", "5M", "--concurrency", "2", "big.bin", "resume/big.bin"];

    const killed = await interruptAt(args, proxy.upstream, SIZE / 2, "SIGKILL");
    expect(killed.signal, killed.stderr + killed.stdout).toBe("SIGKILL");
    expect(killed.summary).toBeUndefined();

    proxy.upstream.rate = Infinity;
    const before = proxy.upstream.bytes;
    const again = await drive(args);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    const s = again.summary!;
    expect(s.bytes_total).toBe(SIZE);
    expect(s.bytes_skipped).toBeGreaterThan(0);
    expect(s.bytes_transferred).toBeLessThan(SIZE);
    expect(s.bytes_transferred + s.bytes_skipped).toBe(SIZE);
    expect(s.parts_skipped).toBeGreaterThan(0);
    // The part PUTs went through the proxy: the server signed URLs for it.
    expect(proxy.upstream.bytes - before).toBeGreaterThanOrEqual(s.bytes_transferred);

    const pull = await drive(["--json", "pull", "resume/big.bin", "big-copy.bin"]);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect(pull.summary!.content_hash).toBe(s.content_hash);
    expect((await readFile(join(dir, "big-copy.bin"))).equals(data)).toBe(true);
  });

  it("a push killed before it reported its finished parts does not send them again", async () => {
    const size = 8 * 5 * MiB;
    const data = randomBytes(size);
    await writeFile(join(dir, "unreported.bin"), data);
    proxy.upstream.rate = RATE;
    const args = ["--json", "push", "--part-size", "5M", "--concurrency", "1", "unreported.bin", "resume/unreported.bin"];

    // Content-defined parts at --part-size 5M run 5-20 MiB, so at 21 MiB at least one is stored and the next under way.
    // Reports wait 60 s, so none goes out before the kill, however slow the machine.
    const logsBefore = m.server.logs().length;
    const killed = await runDriveInterrupted(args, { server: m.via, token: m.server.adminToken, cwd: dir, env: { DRIVE_REPORT_INTERVAL: "60" } }, proxy.upstream, 21 * MiB, "SIGKILL");
    expect(killed.signal).toBe("SIGKILL");
    expect(m.server.logs().slice(logsBefore)).not.toContain("UploadService/ReportParts");

    proxy.upstream.rate = Infinity;
    const again = await drive(args);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    // Content-defined parts of 5-20 MiB: 21 MiB in, at least the first was whole, and vouched for now.
    expect(again.summary!.parts_skipped).toBeGreaterThanOrEqual(1);
    expect(again.summary!.bytes_transferred).toBeLessThanOrEqual(size - 5 * MiB);

    const pull = await drive(["--json", "pull", "resume/unreported.bin", "unreported-copy.bin"]);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect((await readFile(join(dir, "unreported-copy.bin"))).equals(data)).toBe(true);
  });

  it("a killed pull leaves the destination untouched, and run again keeps the chunks it has", async () => {
    const data = randomBytes(SIZE);
    await writeFile(join(dir, "down.bin"), data);
    const push = await drive(["--json", "push", "--part-size", "5M", "down.bin", "resume/down.bin"]);
    expect(push.code, push.stderr + push.stdout).toBe(0);

    const out = join(dir, "pulled");
    await mkdir(out);
    const dest = join(out, "down.bin");
    const old = Buffer.from("the previous contents, which a failed pull must not touch\n");
    await writeFile(dest, old);

    proxy.downstream.rate = RATE;
    const args = ["--json", "pull", "--concurrency", "2", "resume/down.bin", "pulled/down.bin"];
    const killed = await interruptAt(args, proxy.downstream, SIZE / 2, "SIGKILL");
    expect(killed.signal, killed.stderr + killed.stdout).toBe("SIGKILL");

    expect((await readFile(dest)).equals(old)).toBe(true);
    // Whatever the pull left behind is hidden, beside the destination.
    const left = (await readdir(out)).filter((n) => n !== "down.bin");
    expect(left.every((n) => n.startsWith("."))).toBe(true);

    proxy.downstream.rate = Infinity;
    const before = proxy.downstream.bytes;
    const again = await drive(args);
    expect(again.code, again.stderr + again.stdout).toBe(0);
    const s = again.summary!;
    expect(s.bytes_total).toBe(SIZE);
    expect(s.bytes_skipped).toBeGreaterThan(0);
    expect(s.bytes_transferred).toBeLessThan(SIZE);
    expect(s.content_hash).toBe(push.summary!.content_hash);
    expect(proxy.downstream.bytes - before).toBeGreaterThanOrEqual(s.bytes_transferred);
    expect((await readFile(dest)).equals(data)).toBe(true);
    expect(await readdir(out)).toEqual(["down.bin"]);
  });

  it("a push interrupted with SIGINT exits 130 with an exit_error line", async () => {
    await writeFile(join(dir, "int.bin"), randomBytes(20 * MiB));
    proxy.upstream.rate = RATE;
    const args = ["--json", "push", "--part-size", "5M", "--concurrency", "2", "int.bin", "resume/int.bin"];

    const r = await interruptAt(args, proxy.upstream, 5 * MiB, "SIGINT");
    expect(r.code, r.stderr + r.stdout).toBe(130);
    expect(r.summary).toBeUndefined();
    expect(r.lines.at(-1)).toMatchObject({ type: "exit_error", code: "interrupted", exit_code: 130 });
  });
});
