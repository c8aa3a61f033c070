import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import type { Fault } from "../support/http-faults.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";

const MiB = 1024 * 1024;
// At --part-size 5M, content-defined parts hold 5 to 18 MiB: this takes at least three PUTs.
const SIZE = 37 * MiB + 12_345;

/*
 * Faults on the data plane, from the fault proxy: in local mode it sits in
 * front of the server (blob routes and control plane), in S3 mode in front
 * of RGW (part PUTs and chunk GETs only). Each transfer must end with the
 * exact bytes after retries, or with a clear error (README "Exit codes")
 * and nothing committed or written. Faults are placed by request and byte
 * counts, so each case hits the same point on every run.
 */
for (const mode of storeModes) describe.skipIf(mode.skip)(`faults on the data plane (${mode.name} store)`, () => {
  let m: ModeServer;
  let dir: string;
  let n = 0;

  beforeAll(async () => {
    m = await mode.start({ proxy: true });
    dir = await mkdtemp(join(tmpdir(), "drive-faults-"));
  });
  afterEach(() => {
    m.proxy!.faults.clear();
    // A fault the client sees must never take the server down (issue 7, section 1).
    expect(m.server.process.exitCode, `the server died:\n${m.server.logs().slice(-3000)}`).toBeNull();
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  // Part requests idle for 2 s time out and are retried (60 s by default), so stalls cost seconds here.
  const drive = (args: string[], via = m.via) => runDrive(args, { server: via, token: m.server.adminToken, cwd: dir, env: { DRIVE_PART_TIMEOUT: "2", DRIVE_PART_ATTEMPTS: "4" } });

  /** Revisions of a remote path, asked of the server directly (not through the proxy). */
  async function revisions(remote: string): Promise<Array<Record<string, any>>> {
    const r = await drive(["--json", "versions", remote], m.server.url);
    if (r.code === 3) return [];
    expect(r.code, r.stderr + r.stdout).toBe(0);
    return r.lines.filter((l) => l.type === "version");
  }

  async function freshFile(): Promise<{ name: string; data: Buffer }> {
    const name = `f${++n}.bin`;
    const data = randomBytes(SIZE);
    await writeFile(join(dir, name), data);
    return { name, data };
  }

  /** Pushes with `fault` on the Nth PUT, and checks what the store ended with, through a clean pull. */
  async function pushThrough(fault: Fault, nth = 1) {
    const { name, data } = await freshFile();
    const rule = m.proxy!.faults.add({ method: "PUT", nth, fault });
    const push = await drive(["--json", "push", "--part-size", "5M", "--concurrency", "2", name, `faults/${name}`]);
    expect(rule.fired, "the fault was never hit").toBe(1);
    m.proxy!.faults.clear();
    return { name, data, push, remote: `faults/${name}` };
  }

  async function expectStoredExactly(remote: string, data: Buffer) {
    const versions = await revisions(remote);
    expect(versions).toHaveLength(1);
    const copy = `copy-${++n}.bin`;
    const pull = await drive(["--json", "pull", remote, copy], m.server.url);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect((await readFile(join(dir, copy))).equals(data)).toBe(true);
  }

  describe("push", () => {
    it.each([
      ["answered 503", { kind: "respond", status: 503, body: "<Error><Code>SlowDown</Code></Error>" }, 1],
      ["answered 500", { kind: "respond", status: 500, body: "<Error><Code>InternalError</Code></Error>" }, 2],
      ["reset after the store took it, before its answer", { kind: "reset", side: "response", afterBytes: -1 }, 3],
      ["closed after the store took it, before its answer", { kind: "truncate", afterBytes: -1 }, 2],
      ["stalled mid-body past the client's timeout", { kind: "stall", side: "request", afterBytes: 2 * MiB }, 1],
      ["stored, whose answer stalls past the client's timeout", { kind: "stall", side: "response", afterBytes: -1 }, 2],
    ] satisfies Array<[string, Fault, number]>)("a part PUT %s is retried, and the stored file is exact", async (_what, fault, nth) => {
      const { data, push, remote } = await pushThrough(fault, nth);
      expect(push.code, push.stderr + push.stdout).toBe(0);
      expect(push.summary!.retries).toBeGreaterThanOrEqual(1);
      await expectStoredExactly(remote, data);
    });

    it("a part PUT with a byte flipped in transit is never committed as it arrived", async () => {
      const { data, push, remote } = await pushThrough({ kind: "flip", side: "request", at: 1000 }, 2);
      // The store holds other bytes than the client sent; the client must notice and send the part again.
      expect(push.code, push.stderr + push.stdout).toBe(0);
      await expectStoredExactly(remote, data);
    });

    it("a part PUT whose bytes are altered on every try ends in exit 5, with nothing committed", async () => {
      const { name } = await freshFile();
      const rule = m.proxy!.faults.add({ method: "PUT", times: 1000, fault: { kind: "flip", side: "request", at: 1000 } });
      const push = await drive(["--json", "push", "--part-size", "5M", name, `faults/${name}`]);
      expect(rule.fired).toBeGreaterThan(1);
      expect(push.code, push.stderr + push.stdout).toBe(5);
      expect(push.lines.at(-1)).toMatchObject({ type: "exit_error", code: "integrity", exit_code: 5 });
      m.proxy!.faults.clear();
      expect(await revisions(`faults/${name}`)).toEqual([]);
    });

    it("a part PUT that fails every time ends in exit 7, with nothing committed", async () => {
      const { name } = await freshFile();
      const rule = m.proxy!.faults.add({ method: "PUT", times: 1000, fault: { kind: "respond", status: 503 } });
      const push = await drive(["--json", "push", "--part-size", "5M", name, `faults/${name}`]);
      expect(rule.fired).toBeGreaterThan(1);
      expect(push.code, push.stderr + push.stdout).toBe(7);
      expect(push.lines.at(-1)).toMatchObject({ type: "exit_error", code: "unavailable", exit_code: 7 });
      m.proxy!.faults.clear();
      expect(await revisions(`faults/${name}`)).toEqual([]);
    });
  });

  describe("pull", () => {
    let remote: string;
    let data: Buffer;

    beforeAll(async () => {
      const f = await freshFile();
      data = f.data;
      remote = `faults/${f.name}`;
      const push = await drive(["--json", "push", "--part-size", "5M", f.name, remote], m.server.url);
      expect(push.code, push.stderr + push.stdout).toBe(0);
    });

    async function pullThrough(fault: Fault, nth = 1) {
      const out = join(dir, `pulled-${++n}`);
      await mkdir(out);
      const old = Buffer.from("the old contents, which a failed pull must leave alone\n");
      await writeFile(join(out, "dest.bin"), old);
      const rule = m.proxy!.faults.add({ method: "GET", nth, fault });
      const pull = await drive(["--json", "pull", "--concurrency", "2", remote, join(out, "dest.bin")]);
      expect(rule.fired, "the fault was never hit").toBe(1);
      return { pull, out, old };
    }

    it.each([
      ["answered 503", { kind: "respond", status: 503 }, 1],
      ["answered 500", { kind: "respond", status: 500 }, 2],
      ["reset before the server saw it", { kind: "reset", side: "request", afterBytes: -1 }, 1],
    ] satisfies Array<[string, Fault, number]>)("a chunk GET %s is retried, and the file is exact", async (_what, fault, nth) => {
      const { pull, out } = await pullThrough(fault, nth);
      expect(pull.code, pull.stderr + pull.stdout).toBe(0);
      expect(pull.summary!.retries).toBeGreaterThanOrEqual(1);
      expect((await readFile(join(out, "dest.bin"))).equals(data)).toBe(true);
      expect(await readdir(out)).toEqual(["dest.bin"]);
    });

    it.each([
      ["truncated mid-body", { kind: "truncate", afterBytes: 2 * MiB + 7 }, 2],
      ["cut right after its head", { kind: "truncate", afterBytes: 0 }, 3],
      ["stalled mid-body past the client's timeout", { kind: "stall", side: "response", afterBytes: 1 * MiB }, 1],
      ["stalled before its answer past the client's timeout", { kind: "stall", side: "response", afterBytes: -1 }, 2],
    ] satisfies Array<[string, Fault, number]>)("a chunk GET %s is retried, and the file is exact", async (_what, fault, nth) => {
      const { pull, out } = await pullThrough(fault, nth);
      expect(pull.code, pull.stderr + pull.stdout).toBe(0);
      expect(pull.summary!.retries).toBeGreaterThanOrEqual(1);
      expect((await readFile(join(out, "dest.bin"))).equals(data)).toBe(true);
      expect(await readdir(out)).toEqual(["dest.bin"]);
    });

    it("a chunk GET with a byte flipped in transit never reaches the destination", async () => {
      const { pull, out, old } = await pullThrough({ kind: "flip", side: "response", at: 4321 }, 2);
      const now = await readFile(join(out, "dest.bin"));
      if (pull.code === 0) {
        expect(now.equals(data)).toBe(true);
      } else {
        // Exit 5, integrity: the hashes caught it, and the destination is as it was.
        expect(pull.code, pull.stderr + pull.stdout).toBe(5);
        expect(pull.lines.at(-1)).toMatchObject({ type: "exit_error", code: "integrity", exit_code: 5 });
        expect(now.equals(old)).toBe(true);
      }
    });

    it("a chunk GET that fails every time ends in exit 7, and the destination is untouched", async () => {
      const out = join(dir, `pulled-${++n}`);
      await mkdir(out);
      const old = Buffer.from("old\n");
      await writeFile(join(out, "dest.bin"), old);
      const rule = m.proxy!.faults.add({ method: "GET", times: 1000, fault: { kind: "respond", status: 503 } });
      const pull = await drive(["--json", "pull", remote, join(out, "dest.bin")]);
      expect(rule.fired).toBeGreaterThan(1);
      expect(pull.code, pull.stderr + pull.stdout).toBe(7);
      expect(pull.lines.at(-1)).toMatchObject({ type: "exit_error", code: "unavailable", exit_code: 7 });
      expect((await readFile(join(out, "dest.bin"))).equals(old)).toBe(true);
    });
  });

  // A reset mid-body once killed the sender: the client's part PUT (a stack trace, exit 1) and,
  // in local mode, the server's chunk GET (the server and its PostgreSQL). BufferTurns keeps the failure for its caller now.
  describe("resets mid-body", () => {
    it("a part PUT reset mid-body is retried, and the stored file is exact", async () => {
      const { data, push, remote } = await pushThrough({ kind: "reset", side: "request", afterBytes: 1 * MiB });
      expect(push.code, push.stderr + push.stdout).toBe(0);
      expect(push.summary!.retries).toBeGreaterThanOrEqual(1);
      await expectStoredExactly(remote, data);
    });

    it("a chunk GET reset mid-body is retried, the file is exact, and the server lives", async () => {
      const f = await freshFile();
      const remote = `faults/${f.name}`;
      const push = await drive(["--json", "push", "--part-size", "5M", f.name, remote], m.server.url);
      expect(push.code, push.stderr + push.stdout).toBe(0);
      const rule = m.proxy!.faults.add({ method: "GET", fault: { kind: "reset", side: "response", afterBytes: 1 * MiB } });
      const pull = await drive(["--json", "pull", "--concurrency", "2", remote, "reset-copy.bin"]);
      expect(rule.fired).toBe(1);
      expect(pull.code, pull.stderr + pull.stdout).toBe(0);
      expect((await readFile(join(dir, "reset-copy.bin"))).equals(f.data)).toBe(true);
      expect(m.server.process.exitCode, "the server died").toBeNull();
    });
  });
});
