import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../server/log.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../server/metadata/embedded-postgres.js";
import { runDrive } from "../support/drive-cli.js";
import { postmastersOf, runServerToExit, startDriveServer, type TestServer } from "../support/drive-server.js";
import { bearer, connectGrpc, httpRequest, tlsCredentials, unary, type GetDownloadMsg } from "../support/grpc-client.js";

const MiB = 1024 * 1024;

/** Stops what a failed test may have left running on a data folder of ours. */
async function stopPostmasters(dataDir: string): Promise<void> {
  for (const pid of await postmastersOf(dataDir)) {
    try {
      process.kill(pid, "SIGQUIT"); // immediate shutdown; the folder is thrown away next
    } catch {
      // gone already
    }
  }
}

describe("TLS", () => {
  let server: TestServer;
  let dir: string;
  let cert: Buffer;
  let certFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-tls-"));
    certFile = join(dir, "cert.pem");
    const keyFile = join(dir, "key.pem");
    // prettier-ignore
    await promisify(execFile)("/usr/bin/openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]);
    cert = await readFile(certFile);
    server = await startDriveServer({ args: ["--tls-cert", certFile, "--tls-key", keyFile] });
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("listens on https", () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it("answers grpc-js over TLS, trusting only that certificate", async () => {
    const grpc = connectGrpc(server.url, tlsCredentials(cert));
    try {
      expect(await unary(grpc.users, "WhoAmI", {}, bearer(server.adminToken))).toEqual({ name: "admin", admin: true });
    } finally {
      grpc.close();
    }
  });

  it("answers GET /healthz over HTTPS with HTTP/1.1", async () => {
    const res = await httpRequest(`${server.url}/healthz`, { method: "GET", ca: cert });
    expect(res.httpVersion).toBe("1.1");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ status: "ok" });
  });

  it("refuses a client that does not trust the certificate", async () => {
    await expect(httpRequest(`${server.url}/healthz`, { method: "GET" })).rejects.toMatchObject({ code: "DEPTH_ZERO_SELF_SIGNED_CERT" });
  });

  it("round-trips push and pull with the CLI, trusting the certificate through NODE_EXTRA_CA_CERTS", async () => {
    const data = randomBytes(6 * MiB + 5);
    await writeFile(join(dir, "tls.bin"), data);
    const opts = { server: server.url, token: server.adminToken, cwd: dir, env: { NODE_EXTRA_CA_CERTS: certFile } };
    const push = await runDrive(["--json", "push", "--part-size", "5M", "tls.bin", "tls/tls.bin"], opts);
    expect(push.code, push.stderr + push.stdout).toBe(0);
    expect(push.summary).toMatchObject({ bytes_transferred: data.length });
    // Content-defined parts of 5 MiB or more, but the last: one or two.
    expect(push.summary!.parts_total).toBeLessThanOrEqual(2);

    // The data plane is on TLS too: the blob URLs the server hands out are https.
    const grpc = connectGrpc(server.url, tlsCredentials(cert));
    try {
      const dl = await unary<GetDownloadMsg>(grpc.files, "GetDownload", { path: "tls/tls.bin" }, bearer(server.adminToken));
      expect(dl.url.startsWith(`${server.url}/`)).toBe(true);
    } finally {
      grpc.close();
    }

    const pull = await runDrive(["--json", "pull", "tls/tls.bin", "tls-copy.bin"], opts);
    expect(pull.code, pull.stderr + pull.stdout).toBe(0);
    expect((await readFile(join(dir, "tls-copy.bin"))).equals(data)).toBe(true);
  });
});

describe("the data folder", () => {
  let dataDir: string;
  let files: string;
  let first: TestServer | undefined;
  let server: TestServer | undefined;
  const data = randomBytes(5 * MiB + 4321);

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "drive-crash-"));
    files = await mkdtemp(join(tmpdir(), "drive-crash-files-"));
    await writeFile(join(files, "survivor.bin"), data);
  });
  afterAll(async () => {
    await first?.kill();
    await server?.stop();
    await stopPostmasters(dataDir);
    await rm(dataDir, { recursive: true, force: true });
    await rm(files, { recursive: true, force: true });
  });

  it("survives a SIGKILL of the server: a new one on the folder lists and serves the file", async () => {
    first = await startDriveServer({ dataDir });
    const push = await runDrive(["push", "--part-size", "5M", "survivor.bin", "crash/survivor.bin"], {
      server: first.url,
      token: first.adminToken,
      cwd: files,
    });
    expect(push.code, push.stderr + first.logs()).toBe(0);
    await first.kill();

    server = await startDriveServer({ dataDir });
    // Whatever the crash left running was stopped: one PostgreSQL serves the folder.
    expect(await postmastersOf(dataDir)).toHaveLength(1);
    const drive = (args: string[]) => runDrive(args, { server: server!.url, token: server!.adminToken, cwd: files });
    const ls = await drive(["--json", "ls", "-R"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.lines).toEqual([expect.objectContaining({ path: "crash/survivor.bin", size: data.length, revision: 1 })]);
    const pull = await drive(["pull", "crash/survivor.bin", "back.bin"]);
    expect(pull.code, pull.stderr).toBe(0);
    expect((await readFile(join(files, "back.bin"))).equals(data)).toBe(true);
  });

  it("refuses a second server on the folder while the first runs, and the first carries on", async () => {
    expect(server, "the previous test starts the server").toBeDefined();
    const second = await runServerToExit(["--data-dir", dataDir, "--listen", "127.0.0.1:0"]);
    expect(second.started, second.stderr).toBe(false);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain(`data folder ${dataDir} is in use`);

    const ls = await runDrive(["--json", "ls"], { server: server!.url, token: server!.adminToken, cwd: files });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.lines).toHaveLength(1);
    expect(await postmastersOf(dataDir)).toHaveLength(1);
  });

  it("stops its PostgreSQL on a clean shutdown", async () => {
    await server!.stop();
    server = undefined;
    expect(await postmastersOf(dataDir)).toEqual([]);
  });
});

// As root, PostgreSQL runs as "postgres", which cannot walk through a private
// parent folder (a checkout under /root): its cluster must live elsewhere.
describe.runIf(process.getuid?.() === 0)("a data folder under a private parent, as root", () => {
  let parent: string;
  let server: TestServer | undefined;

  beforeAll(async () => {
    parent = await mkdtemp(join(tmpdir(), "drive-private-"));
    await chmod(parent, 0o700);
  });
  afterAll(async () => {
    await server?.stop();
    await rm(parent, { recursive: true, force: true });
  });

  it("starts, serves, and keeps the cluster outside behind a symlink", async () => {
    const dataDir = join(parent, "data");
    server = await startDriveServer({ dataDir });
    const file = join(parent, "small.txt");
    await writeFile(file, "private parent");
    const push = await runDrive(["push", file, "p.txt"], { server: server.url, token: server.adminToken });
    expect(push.code, push.stderr).toBe(0);
    const cluster = await readlink(join(dataDir, "postgres"));
    expect(cluster.startsWith("/var/lib/drive/")).toBe(true);
    await server.stop();
    server = undefined;
    await rm(dirname(cluster), { recursive: true, force: true });
  });
});

describe("an external PostgreSQL", () => {
  let pgDir: string;
  let dataDir: string;
  let pg: EmbeddedDatabase | undefined;
  let server: TestServer | undefined;

  beforeAll(async () => {
    pgDir = await mkdtemp(join(tmpdir(), "drive-extpg-"));
    dataDir = await mkdtemp(join(tmpdir(), "drive-extdata-"));
    // A PostgreSQL the server does not own: it only gets the URL.
    pg = await startEmbeddedPostgres(pgDir, createLogger("error"));
    server = await startDriveServer({ dataDir, env: { DRIVE_DATABASE_URL: pg.url } });
  });
  afterAll(async () => {
    await server?.stop();
    await pg?.stop();
    await rm(pgDir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  });

  it("migrates it, serves from it, and starts no PostgreSQL of its own", async () => {
    const file = join(dataDir, "ext.bin");
    const data = randomBytes(MiB + 7);
    await writeFile(file, data);
    const push = await runDrive(["push", file, "ext.bin"], { server: server!.url, token: server!.adminToken });
    expect(push.code, push.stderr).toBe(0);
    const pull = await runDrive(["pull", "ext.bin", join(dataDir, "ext-copy.bin")], { server: server!.url, token: server!.adminToken });
    expect(pull.code, pull.stderr).toBe(0);
    expect((await readFile(join(dataDir, "ext-copy.bin"))).equals(data)).toBe(true);
    expect(await readdir(dataDir)).not.toContain("postgres");
    expect(server!.logs()).toContain('"database":"external"');
  });
});

describe("bad settings", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-settings-"));
  });
  afterAll(async () => {
    await stopPostmasters(dir);
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ["nonsense", /--listen must be HOST:PORT/],
    ["127.0.0.1:99999", /--listen port 99999 is out of range/],
  ])("--listen %s exits 2 with a clear message, before touching the data folder", async (listen, message) => {
    const dataDir = join(dir, "untouched");
    const run = await runServerToExit(["--listen", listen, "--data-dir", dataDir]);
    expect(run.started).toBe(false);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    await expect(stat(dataDir)).rejects.toMatchObject({ code: "ENOENT" });
  });

  const s3 = ["--s3-endpoint", "http://127.0.0.1:9"];
  const keys = ["--s3-access-key", "k", "--s3-secret-key", "s"];
  it.each([
    [[...s3], /--s3-endpoint needs --s3-access-key and --s3-secret-key/],
    [["--s3-endpoint", "ftp://store", ...keys], /--s3-endpoint must look like http\(s\):\/\/host\[:port\]/],
    [["--s3-endpoint", "http://store/path", ...keys], /--s3-endpoint must look like/],
    [[...s3, ...keys, "--s3-bucket", "Bad_Bucket"], /--s3-bucket "Bad_Bucket" is not a valid bucket name/],
    [[...s3, ...keys, "--s3-sse", "aws:kms"], /--s3-sse must be none or AES256/],
    [[...s3, ...keys, "--s3-path-style", "yes"], /--s3-path-style must be auto, true or false/],
    [["--s3-access-key", "k"], /--s3-access-key needs --s3-endpoint/],
  ])("S3 settings %j exit 2 with a clear message", async (args, message) => {
    const dataDir = join(dir, "untouched-s3");
    const run = await runServerToExit([...args, "--data-dir", dataDir]);
    expect(run.started).toBe(false);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    await expect(stat(dataDir)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("exits non-zero naming the S3 endpoint when it cannot be reached, leaving no PostgreSQL behind", async () => {
    const dataDir = join(dir, "s3-down");
    const run = await runServerToExit(["--data-dir", dataDir, "--s3-endpoint", "http://127.0.0.1:9", "--s3-access-key", "k", "--s3-secret-key", "s"]);
    expect(run.started).toBe(false);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/s3 bucket check: .*ECONNREFUSED.*127\.0\.0\.1:9/);
    expect(await postmastersOf(dataDir)).toEqual([]);
  });

  it("exits non-zero naming the address when the port is taken, leaving no PostgreSQL behind", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      // The temp folder itself: under a private parent, PostgreSQL could not start as root at all.
      const dataDir = dir;
      const run = await runServerToExit(["--listen", `127.0.0.1:${port}`, "--data-dir", dataDir]);
      expect(run.started).toBe(false);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain(`127.0.0.1:${port}`);
      expect(run.stderr).toMatch(/in use/i);
      expect(await postmastersOf(dataDir)).toEqual([]);
    } finally {
      blocker.close();
    }
  });
});
