import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { startRpcFaultProxy, type RpcFault, type RpcFaultProxy } from "../support/rpc-fault-proxy.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";

const MiB = 1024 * 1024;
const REPORT = "drive.v1.UploadService/ReportParts";
const COMPLETE = "drive.v1.UploadService/CompleteUpload";

// Only S3 needs reports: there a part counts only when the client vouched for
// its ETag. The local store's ETags are BLAKE3, so it checks parts itself.
const s3 = storeModes.find((m) => m.name === "s3")!;

describe.skipIf(s3.skip)("a lost part report is not a conflict (s3 store)", () => {
  let m: ModeServer;
  let dir: string;
  let proxy: RpcFaultProxy | null = null;

  beforeAll(async () => {
    m = await s3.start();
    dir = await mkdtemp(join(tmpdir(), "drive-lost-report-"));
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = null;
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Pushes through an RPC proxy that applies `fault` to the control plane; part PUTs go straight to the store. */
  async function pushThrough(fault: (rpc: string, n: number) => RpcFault, name: string) {
    proxy = await startRpcFaultProxy({ target: m.server.url, fault });
    const data = randomBytes(3 * 5 * MiB + 77);
    await writeFile(join(dir, name), data);
    const push = await runDrive(["--json", "push", "--part-size", "5M", name, `lost/${name}`], {
      server: proxy.url,
      token: m.server.adminToken,
      cwd: dir,
    });
    return { push, data };
  }

  it("a report lost before CompleteUpload is sent again, and the push succeeds", async () => {
    let completes = 0;
    // Every report before the first CompleteUpload is acknowledged and never delivered.
    const { push, data } = await pushThrough((rpc) => {
      if (rpc === COMPLETE) completes++;
      return rpc === REPORT && completes === 0 ? "drop" : "pass";
    }, "dropped.bin");
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect(push.summary).toMatchObject({ revision: 1 });
    // It did lose one: the first CompleteUpload found the parts unvouched.
    expect(proxy!.log.filter((c) => c.rpc === REPORT && c.fault === "drop").length).toBeGreaterThan(0);
    expect(proxy!.log.filter((c) => c.rpc === COMPLETE).length).toBeGreaterThan(1);

    const pull = await runDrive(["pull", "lost/dropped.bin", "dropped.copy"], { server: m.server.url, token: m.server.adminToken, cwd: dir });
    expect(pull.code, pull.stderr).toBe(0);
    expect((await readFile(join(dir, "dropped.copy"))).equals(data)).toBe(true);
  });

  it("reports lost every time end in a clear internal error after a few rounds, not a conflict", async () => {
    const { push } = await pushThrough((rpc) => (rpc === REPORT ? "drop" : "pass"), "always-dropped.bin");
    expect(push.code, push.stderr + push.stdout).toBe(1);
    expect(push.lines.at(-1)).toMatchObject({ type: "exit_error", code: "internal", reason: "PARTS_UNCONFIRMED" });
    expect(push.lines.at(-1)!.message).toMatch(/still refused after 3 rounds/);
    expect(proxy!.log.filter((c) => c.rpc === COMPLETE)).toHaveLength(3);
  });

  it("reports that cannot get through end as unavailable (exit 7), not as a conflict", async () => {
    const { push } = await pushThrough((rpc) => (rpc === REPORT ? "unavailable" : "pass"), "refused.bin");
    expect(push.code, push.stderr + push.stdout).toBe(7);
    expect(push.lines.at(-1)).toMatchObject({ type: "exit_error", code: "unavailable", exit_code: 7 });
    // Retried by the client's policy, and never followed by a CompleteUpload that could only refuse.
    expect(proxy!.log.filter((c) => c.rpc === REPORT).length).toBeGreaterThan(1);
    expect(proxy!.log.filter((c) => c.rpc === COMPLETE)).toEqual([]);
  });
});
