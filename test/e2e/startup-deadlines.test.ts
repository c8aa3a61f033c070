import { mkdtemp, readdir, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveServerConfig } from "../../server/config/server-options.js";
import { runServerToExit } from "../support/drive-server.js";

/** A TCP server that accepts every connection and never sends a byte: a hung store or database. */
async function silentServer(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const srv = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    connections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

/** A port nothing listens on: bound, then closed. */
async function refusedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe("start-up against a dependency that does not answer", () => {
  let dir: string;
  let silent: Awaited<ReturnType<typeof silentServer>>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-deadline-"));
    silent = await silentServer();
  });
  afterAll(async () => {
    await silent?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("defaults to 30 s, and takes --startup-timeout", () => {
    expect(resolveServerConfig({}, {}).startupTimeoutMs).toBe(30_000);
    expect(resolveServerConfig({ startupTimeout: "2s" }, {}).startupTimeoutMs).toBe(2000);
    expect(resolveServerConfig({}, { DRIVE_STARTUP_TIMEOUT: "1m" }).startupTimeoutMs).toBe(60_000);
    expect(() => resolveServerConfig({ startupTimeout: "soon" }, {})).toThrow(/invalid duration/);
  });

  it("exits 7 naming the S3 endpoint and the step when the store accepts and stays silent, before PostgreSQL", async () => {
    const dataDir = join(dir, "s3-silent");
    const endpoint = `http://127.0.0.1:${silent.port}`;
    const before = silent.connections();
    const run = await runServerToExit(["--data-dir", dataDir, "--listen", "127.0.0.1:0", "--startup-timeout", "2s"], {
      DRIVE_S3_ENDPOINT: endpoint,
      DRIVE_S3_ACCESS_KEY: "k",
      DRIVE_S3_SECRET_KEY: "s",
    });
    expect(run.started).toBe(false);
    expect(run.code, run.stderr).toBe(7);
    expect(silent.connections()).toBeGreaterThan(before); // it really did reach the silent port
    expect(run.stderr).toContain(`drive: error: the S3 store at ${endpoint} did not answer within 2 s (bucket check)`);
    expect(run.stderr.trim().split("\n").filter((l) => l.startsWith("drive: error:"))).toHaveLength(1);
    expect(await readdir(dataDir).catch(() => [])).not.toContain("postgres");
  });

  it("exits 7 naming the external PostgreSQL (without its password) when it accepts and stays silent", async () => {
    const dataDir = join(dir, "pg-silent");
    const before = silent.connections();
    const run = await runServerToExit([
      "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--startup-timeout", "2s",
      "--database-url", `postgres://drive:hunter2@127.0.0.1:${silent.port}/drive`,
    ]);
    expect(run.started).toBe(false);
    expect(run.code, run.stderr).toBe(7);
    expect(silent.connections()).toBeGreaterThan(before);
    expect(run.stderr).toContain(`drive: error: PostgreSQL at 127.0.0.1:${silent.port}/drive did not answer within 2 s (connect)`);
    expect(run.stderr + run.stdout).not.toContain("hunter2");
  });

  it("exits 7 naming the external PostgreSQL when it refuses the connection", async () => {
    const port = await refusedPort();
    const run = await runServerToExit([
      "--data-dir", join(dir, "pg-refused"), "--listen", "127.0.0.1:0",
      "--database-url", `postgres://drive:hunter2@127.0.0.1:${port}/drive`,
    ]);
    expect(run.started).toBe(false);
    expect(run.code, run.stderr).toBe(7);
    expect(run.stderr).toMatch(new RegExp(`drive: error: PostgreSQL at 127\\.0\\.0\\.1:${port}/drive could not be reached \\(.*ECONNREFUSED`));
    expect(run.stderr + run.stdout).not.toContain("hunter2");
  });

  it("exits 7 naming the S3 endpoint when it refuses the connection", async () => {
    const port = await refusedPort();
    const run = await runServerToExit(["--data-dir", join(dir, "s3-refused"), "--listen", "127.0.0.1:0"], {
      DRIVE_S3_ENDPOINT: `http://127.0.0.1:${port}`,
      DRIVE_S3_ACCESS_KEY: "k",
      DRIVE_S3_SECRET_KEY: "s",
    });
    expect(run.started).toBe(false);
    expect(run.code, run.stderr).toBe(7);
    expect(run.stderr).toMatch(new RegExp(`drive: error: the S3 store at http://127\\.0\\.0\\.1:${port} could not be reached \\(.*ECONNREFUSED`));
  });
});
