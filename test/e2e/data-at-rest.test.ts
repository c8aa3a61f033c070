import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { watch } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { removeDataDir, startDriveServer, type TestServer } from "../support/drive-server.js";

const MiB = 1024 * 1024;
const asRoot = process.getuid?.() === 0;

interface Entry {
  path: string;
  dir: boolean;
  mode: number;
}

async function walk(root: string): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const e of await readdir(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    const mode = (await lstat(p)).mode & 0o777;
    out.push({ path: p, dir: e.isDirectory(), mode });
    if (e.isDirectory()) out.push(...(await walk(p)));
  }
  return out;
}

/** Whether the `nobody` account can read the file: the other local user of the issue. */
async function nobodyCanRead(file: string): Promise<boolean> {
  // Its first bytes only: a part is megabytes, more than execFile buffers.
  return promisify(execFile)("runuser", ["-u", "nobody", "--", "head", "-c", "16", file]).then(
    () => true,
    () => false,
  );
}

async function storedParts(dataDir: string): Promise<string[]> {
  return (await walk(join(dataDir, "blobs", "objects"))).filter((e) => !e.dir && /^\d+\.[0-9a-f]{64}$/.test(e.path.split("/").pop()!)).map((e) => e.path);
}

describe("blob files at rest", () => {
  let dataDir: string;
  let files: string;
  let server: TestServer | undefined;
  const data = randomBytes(6 * MiB + 123);

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "drive-modes-"));
    files = await mkdtemp(join(tmpdir(), "drive-modes-files-"));
    await writeFile(join(files, "secret.bin"), data);
  });
  afterAll(async () => {
    await server?.stop();
    await removeDataDir(dataDir);
    await rm(files, { recursive: true, force: true });
  });

  const drive = (args: string[]) => runDrive(args, { server: server!.url, token: server!.adminToken, cwd: files });

  it("are made 0600 in folders made 0700 by a real push", async () => {
    server = await startDriveServer({ dataDir });
    const push = await drive(["push", "--part-size", "5M", "secret.bin", "private/secret.bin"]);
    expect(push.code, push.stderr).toBe(0);
    const tree = await walk(join(dataDir, "blobs"));
    expect(tree.filter((e) => !e.dir).length).toBeGreaterThanOrEqual(2); // content-defined parts (one or more) and a manifest
    expect((await stat(join(dataDir, "blobs"))).mode & 0o777).toBe(0o700);
    for (const e of tree) expect([e.path, e.mode.toString(8)]).toEqual([e.path, e.dir ? "700" : "600"]);
  });

  it.runIf(asRoot)("cannot be read by another local account (runuser -u nobody -- head)", async () => {
    const parts = await storedParts(dataDir);
    // As many as the content gave the push; every one of them must be out of reach.
    expect(parts.length).toBeGreaterThanOrEqual(1);
    for (const p of parts) expect(await nobodyCanRead(p)).toBe(false);
  });

  it("in a tree an older server left open are fixed at start, and a warning says so", async () => {
    await server!.stop();
    server = undefined;
    // What servers before this fix made: mkdir and open with the default modes.
    for (const e of await walk(join(dataDir, "blobs"))) await chmod(e.path, e.dir ? 0o755 : 0o644);
    await chmod(join(dataDir, "blobs"), 0o755);
    await chmod(join(dataDir, "admin.token"), 0o644);
    if (asRoot) {
      await chmod(dataDir, 0o711); // as the embedded default leaves it under root
      const [part] = await storedParts(dataDir);
      expect(await nobodyCanRead(part!), "the open tree is really readable, or the next check proves nothing").toBe(true);
    }

    server = await startDriveServer({ dataDir });
    expect(server.logs()).toContain("the blob store was readable by other local users; made it private");
    expect(server.logs()).toContain("a secret in the data folder was readable by other local users");
    expect((await stat(join(dataDir, "admin.token"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dataDir, "blobs"))).mode & 0o777).toBe(0o700);
    for (const e of await walk(join(dataDir, "blobs"))) expect([e.path, e.mode.toString(8)]).toEqual([e.path, e.dir ? "700" : "600"]);
    if (asRoot) for (const p of await storedParts(dataDir)) expect(await nobodyCanRead(p)).toBe(false);

    const pull = await drive(["pull", "private/secret.bin", "back.bin"]);
    expect(pull.code, pull.stderr).toBe(0);
    expect((await readFile(join(files, "back.bin"))).equals(data)).toBe(true);
  });

  it("warns at start when the data folder itself is open to other users", async () => {
    await server!.stop();
    server = undefined;
    await chmod(dataDir, 0o755);
    server = await startDriveServer({ dataDir });
    expect(server.logs()).toMatch(/the data folder is open to other local users \(mode 755\); run chmod 700 on it/);
  });
});

describe("the embedded PostgreSQL's password", () => {
  let sharedTmp: string;
  let dataDir: string;

  beforeAll(async () => {
    // A temp folder like /tmp: anyone may create and look up files in it.
    sharedTmp = await mkdtemp(join(tmpdir(), "drive-shared-tmp-"));
    await chmod(sharedTmp, 0o1777);
    dataDir = await mkdtemp(join(tmpdir(), "drive-pwfile-"));
  });
  afterAll(async () => {
    await removeDataDir(dataDir);
    await rm(sharedTmp, { recursive: true, force: true });
  });

  it("never lands in the shared temp folder while initdb runs", async () => {
    const seen: string[] = [];
    const watcher = watch(sharedTmp, (_event, name) => name && seen.push(name));
    try {
      const server = await startDriveServer({ dataDir, env: { TMPDIR: sharedTmp } });
      await server.stop();
    } finally {
      watcher.close();
    }
    expect(seen.filter((n) => n.startsWith("pg-password-"))).toEqual([]);
  });
});

// As root, PostgreSQL runs as "postgres", which cannot walk through a private parent folder
// (a checkout under /root): its cluster then lives in /var/lib/drive, tied to the folder by id.
describe.runIf(asRoot)("the embedded cluster of a data folder under a private parent, as root", () => {
  let parent: string;
  let server: TestServer | undefined;
  const made: string[] = [];

  beforeAll(async () => {
    parent = await mkdtemp(join(tmpdir(), "drive-restart-"));
    await chmod(parent, 0o700);
  });
  afterAll(async () => {
    await server?.stop();
    for (const d of made) await rm(d, { recursive: true, force: true });
    await rm(parent, { recursive: true, force: true });
  });

  it("is not reused when the data folder is deleted to start over: a new one is made, and the old one reported", async () => {
    const dataDir = join(parent, "drive-data");
    const file = join(parent, "a.txt");
    await writeFile(file, "first life");
    server = await startDriveServer({ dataDir });
    const push = await runDrive(["push", file, "a.txt"], { server: server.url, token: server.adminToken });
    expect(push.code, push.stderr).toBe(0);
    const first = await readlink(join(dataDir, "postgres"));
    made.push(dirname(first));
    expect(first).toMatch(/^\/var\/lib\/drive\/[0-9a-f-]{36}\/postgres$/);
    await server.stop();
    server = undefined;

    await rm(dataDir, { recursive: true, force: true }); // start over
    server = await startDriveServer({ dataDir });
    const second = await readlink(join(dataDir, "postgres"));
    made.push(dirname(second));
    expect(second).not.toBe(first);
    const ls = await runDrive(["--json", "ls"], { server: server.url, token: server.adminToken });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.lines).toEqual([]); // a new, empty drive, as asked
    // The old cluster is said, with where it is, and left as it was.
    const warning = server.logs().split("\n").find((l) => l.includes("found a PostgreSQL cluster made for an earlier data folder at this path"));
    expect(warning, server.logs()).toBeDefined();
    expect(JSON.parse(warning!).cluster).toBe(first);
    expect((await stat(join(first, "PG_VERSION"))).isFile()).toBe(true);
    await server.stop();
    server = undefined;
  });

  it("reports, and does not use, a cluster a server before ids left at the path-hash location", async () => {
    const dataDir = join(parent, "legacy-data");
    const { createHash } = await import("node:crypto");
    const legacy = join("/var/lib/drive", createHash("sha256").update(dataDir).digest("hex").slice(0, 16), "postgres");
    made.push(dirname(legacy));
    await mkdir(legacy, { recursive: true });
    await writeFile(join(legacy, "PG_VERSION"), "15\n");
    server = await startDriveServer({ dataDir });
    made.push(dirname(await readlink(join(dataDir, "postgres"))));
    expect(await readlink(join(dataDir, "postgres"))).not.toBe(legacy);
    const warning = server.logs().split("\n").find((l) => l.includes("found a PostgreSQL cluster made for an earlier data folder"));
    expect(warning, server.logs()).toBeDefined();
    expect(JSON.parse(warning!)).toMatchObject({ cluster: legacy, made_for: "a drive server from before data folder ids" });
    expect(await readFile(join(legacy, "PG_VERSION"), "utf8")).toBe("15\n"); // untouched
  });

  it("is removed with its data folder by the test helpers, leaving nothing in /var/lib/drive", async () => {
    await server?.stop();
    server = undefined;
    const dataDir = join(parent, "helper-data");
    server = await startDriveServer({ dataDir });
    const cluster = await readlink(join(dataDir, "postgres"));
    await server.kill(); // even after a crash, which leaves its postmaster running
    server = undefined;
    await removeDataDir(dataDir);
    await expect(stat(dirname(cluster))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
