import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, postmastersOf, startDriveServer, type TestServer } from "../support/drive-server.js";
import { bearer, connectGrpc, partBody, planUpload, unary, type CreateUploadMsg } from "../support/grpc-client.js";
import { healthStatus } from "../support/raw-http.js";

const MiB = 1024 * 1024;
const made: string[] = [];

afterAll(async () => {
  for (const dir of made) await rm(dir, { recursive: true, force: true });
});

async function freshDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

const exists = (path: string) => stat(path).then(() => true, () => false);

describe("start-up order", () => {
  it("fails fast with exit 9 on a taken port, before PostgreSQL or the admin token", async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
    const { port } = squatter.address() as net.AddressInfo;
    const dataDir = join(await freshDir("drive-port-"), "data");
    try {
      const child = spawn(process.execPath, [BIN, "server", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (c) => (out += c));
      child.stderr.on("data", (c) => (out += c));
      const code = await new Promise((resolve) => child.once("close", resolve));
      expect(code, out).toBe(9);
      expect(out).toContain(`cannot listen on 127.0.0.1:${port}: address already in use`);
      // Nothing was started or written: no cluster, no token, not even the folder.
      expect(await exists(dataDir)).toBe(false);
    } finally {
      squatter.close();
    }
  });

  it("holds the port from the start, answering 503 until it is ready", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const dataDir = await freshDir("drive-early-");
    const child = spawn(process.execPath, [BIN, "server", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      const seen: number[] = [];
      // Poll until ready; PostgreSQL's first initdb takes seconds, so early answers come while it runs.
      while (!/listening on/.test(out) && child.exitCode === null) {
        const status = await healthStatus(`http://127.0.0.1:${port}`);
        if (status && seen.at(-1) !== status) seen.push(status);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(/listening on/.test(out), out).toBe(true);
      expect(await healthStatus(`http://127.0.0.1:${port}`)).toBe(200);
      expect(seen[0]).toBe(503);
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  });
});

describe("shutdown", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`on ${signal}: drains, stops PostgreSQL, removes server.pid, says so, and prints no pg error`, async () => {
      const dataDir = await freshDir("drive-stop-");
      const server = await startDriveServer({ dataDir });
      let stdout = "";
      server.process.stdout!.on("data", (c) => (stdout += c));
      // Leave the pool with open connections, as a server that did work has.
      const grpc = connectGrpc(server.url);
      await unary(grpc.users, "WhoAmI", {}, bearer(server.adminToken));
      grpc.close();
      expect(await postmastersOf(dataDir)).not.toEqual([]);

      const exited = new Promise<number | null>((resolve) => server.process.once("exit", (code) => resolve(code)));
      server.process.kill(signal);
      expect(await exited).toBe(0);
      const logs = server.logs();
      expect(logs).not.toMatch(/terminating connection|administrator command/);
      expect(logs).not.toMatch(/"level":"(warn|error)"/);
      expect(stdout.trim().split("\n").at(-1)).toBe("drive server stopped");
      expect(logs.trim().split("\n").at(-1)).toContain('"msg":"drive server stopped"');
      expect(await exists(join(dataDir, "server.pid"))).toBe(false);
      expect(await postmastersOf(dataDir)).toEqual([]);
    });
  }

  it("lets a request in flight finish, and cuts one that outlasts --shutdown-timeout", async () => {
    for (const [grace, finishes] of [
      ["30s", true],
      ["500ms", false],
    ] as const) {
      const dataDir = await freshDir("drive-drain-");
      const server: TestServer = await startDriveServer({ dataDir, args: ["--shutdown-timeout", grace] });
      const grpc = connectGrpc(server.url);
      const data = randomBytes(6 * MiB);
      const { request, chunks } = planUpload("drain/a.bin", data);
      const created = await unary<CreateUploadMsg>(grpc.uploads, "CreateUpload", request, bearer(server.adminToken));
      grpc.close();
      const part = created.urls[0]!;
      const body = partBody(data, chunks, created.parts[0]!);

      // Half a part PUT, then SIGTERM, then the other half.
      const url = new URL(part.url);
      const socket = net.connect(Number(url.port), url.hostname);
      socket.on("error", () => {});
      let answer = "";
      socket.on("data", (c) => (answer += c));
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      const headers = Object.entries({ ...part.headers, host: url.host, "content-length": String(body.length) })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("");
      await new Promise((resolve) => socket.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\n${headers}\r\n`, resolve));
      await new Promise((resolve) => socket.write(body.subarray(0, body.length / 2), resolve));
      const exited = new Promise<number | null>((resolve) => server.process.once("exit", (code) => resolve(code)));
      server.process.kill("SIGTERM");
      // Wait until the server says it is draining (the log line of the first step comes only after it).
      await new Promise((r) => setTimeout(r, 1500));
      socket.write(body.subarray(body.length / 2));
      await closed;
      expect(await exited).toBe(0);
      if (finishes) expect(answer, server.logs()).toMatch(/^HTTP\/1\.1 200 /);
      else expect(answer).toBe("");
      expect(server.logs().trim().split("\n").at(-1)).toContain('"msg":"drive server stopped"');
      expect(await exists(join(dataDir, "server.pid"))).toBe(false);
    }
  });
});
