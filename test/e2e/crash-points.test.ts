import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../server/log.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../server/metadata/embedded-postgres.js";
import { runDrive, type CliResult } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { s3Env, s3ServerEnv, testS3Client, uniqueBucket, type S3TestEnv } from "../support/s3-env.js";
import { storeModes } from "../support/store-modes.js";
import { startThrottleProxy, type ThrottleProxy } from "../support/throttle-proxy.js";

const MiB = 1024 * 1024;
const SIZE = 4 * 5 * MiB + 4321;

/*
 * SIGKILL the server at the points where a crash could leave half a state,
 * restart it on the same data folder, port and database, and check that the
 * push resumes, nothing wrong is committed, and the sweeper leaves no
 * orphan: no open row, no incomplete upload in the store, no stray object.
 * PostgreSQL runs outside the server here, so that it outlives each kill as
 * an external one would (the embedded one killed with it is another case).
 */
for (const mode of storeModes) describe.skipIf(mode.skip)(`the server killed at a crash point (${mode.name} store)`, () => {
  let pgDir: string;
  let db: EmbeddedDatabase;
  let n = 0;

  beforeAll(async () => {
    pgDir = await mkdtemp(join(tmpdir(), "drive-crash-pg-"));
    db = await startEmbeddedPostgres(pgDir, createLogger("error"));
  });
  afterAll(async () => {
    await db?.stop();
    await rm(pgDir, { recursive: true, force: true });
  });

  /** One server's world: its own database, data folder, port, bucket and proxy, kept across restarts. */
  async function world() {
    const name = `crash_${mode.name}_${++n}`;
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(`create database ${name}`).finally(() => admin.end());
    const url = new URL(db.url);
    url.pathname = `/${name}`;
    const databaseUrl = url.toString();
    const dataDir = await mkdtemp(join(tmpdir(), "drive-crash-"));
    const work = await mkdtemp(join(tmpdir(), "drive-crash-work-"));
    const port = await freePort();
    const bucket = uniqueBucket("crash");
    const env = s3Env as S3TestEnv;
    // Local: in front of the server, whose blob routes carry the parts. S3: in front of the store.
    const proxy: ThrottleProxy = await startThrottleProxy({ target: mode.name === "s3" ? env.endpoint : `127.0.0.1:${port}` });
    const watch = new pg.Client({ connectionString: databaseUrl });
    await watch.connect();
    let server: TestServer | null = null;

    const w = {
      dataDir,
      work,
      proxy,
      bucket,
      get server() {
        return server!;
      },
      /** The URL the CLI is given. */
      get via() {
        return mode.name === "s3" ? `http://127.0.0.1:${port}` : proxy.url;
      },
      async start(opts: { crashAt?: string; args?: string[] } = {}) {
        server = await startDriveServer({
          dataDir,
          args: ["--listen", `127.0.0.1:${port}`, ...(opts.args ?? [])],
          env: {
            DRIVE_DATABASE_URL: databaseUrl,
            ...(mode.name === "s3" ? s3ServerEnv(env, bucket, proxy.url) : {}),
            ...(opts.crashAt ? { DRIVE_TEST_CRASH_AT: opts.crashAt } : {}),
          },
        });
        return server;
      },
      drive(args: string[], onLine?: Parameters<typeof runDrive>[1]["onLine"]): Promise<CliResult> {
        return runDrive(args, { server: w.via, token: server!.adminToken, cwd: work, onLine });
      },
      async revisions(remote: string): Promise<number[]> {
        const r = await w.drive(["--json", "versions", remote]);
        if (r.code === 3) return [];
        expect(r.code, r.stderr + r.stdout).toBe(0);
        return r.lines.filter((l) => l.type === "version").map((l) => l.revision as number);
      },
      async openRows(): Promise<string[]> {
        return (await watch.query<{ id: string }>("select id from uploads where state = 'open'")).rows.map((r) => r.id);
      },
      /** Uploads the store still holds open, by key. */
      async incompleteUploads(): Promise<string[]> {
        if (mode.name === "s3") {
          return (await testS3Client(env).listIncompleteUploadsQuery(bucket, "", "", "", "")).uploads.map((u) => u.key);
        }
        return (await readdir(join(dataDir, "blobs", "uploads")).catch(() => [])).filter((e) => /^[0-9a-f]{32}$/.test(e));
      },
      /** Stored objects, by key (S3) or folder (local). */
      async objects(): Promise<string[]> {
        if (mode.name === "s3") {
          const names: string[] = [];
          for await (const o of testS3Client(env).listObjectsV2(bucket, "", true) as AsyncIterable<{ name?: string }>) if (o.name) names.push(o.name);
          return names;
        }
        return (await readdir(join(dataDir, "blobs", "objects"), { recursive: true })).filter((e) => e.endsWith("~obj"));
      },
      /** Staging leftovers in the local store (none in S3 mode: the store keeps its own). */
      async staging(): Promise<string[]> {
        return mode.name === "s3" ? [] : readdir(join(dataDir, "blobs", "tmp")).catch(() => []);
      },
      async close() {
        await server?.stop();
        await watch.end();
        await proxy.close();
        await rm(dataDir, { recursive: true, force: true });
        await rm(work, { recursive: true, force: true });
      },
    };
    return w;
  }

  /** Waits, polling, until `check` holds or 30 s pass; the sweeper decides when, not the test. */
  async function eventually(check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!(await check()) && Date.now() < deadline) await sleep(250);
  }

  it("killed in CompleteUpload after the store completed, before the commit: a push run again commits the exact bytes once", async () => {
    const w = await world();
    try {
      await w.start({ crashAt: "complete-after-store" });
      const data = randomBytes(SIZE);
      await writeFile(join(w.work, "a.bin"), data);
      const args = ["--json", "push", "--part-size", "5M", "a.bin", "crash/a.bin"];

      const first = await w.drive(args);
      expect(w.server.process.signalCode, w.server.logs()).toBe("SIGKILL");
      expect(first.code, first.stderr + first.stdout).not.toBe(0);
      expect(first.summary).toBeUndefined();

      await w.start();
      expect(await w.revisions("crash/a.bin")).toEqual([]);
      expect(await w.openRows()).toHaveLength(1);

      const again = await w.drive(args);
      expect(again.code, again.stderr + again.stdout).toBe(0);
      expect(again.summary!.bytes_transferred).toBe(0); // the store already held every part
      expect(await w.revisions("crash/a.bin")).toEqual([1]);
      const pull = await w.drive(["--json", "pull", "crash/a.bin", "a-copy.bin"]);
      expect(pull.code, pull.stderr + pull.stdout).toBe(0);
      expect((await readFile(join(w.work, "a-copy.bin"))).equals(data)).toBe(true);

      expect(await w.openRows()).toEqual([]);
      expect(await w.incompleteUploads()).toEqual([]);
      expect(await w.objects()).toHaveLength(1);
    } finally {
      await w.close();
    }
  });

  it("killed in CompleteUpload after the store completed, and never resumed: the sweeper removes the row and the object", async () => {
    const w = await world();
    try {
      await w.start({ crashAt: "complete-after-store", args: ["--upload-ttl", "2s"] });
      await writeFile(join(w.work, "b.bin"), randomBytes(SIZE));
      const first = await w.drive(["--json", "push", "--part-size", "5M", "b.bin", "crash/b.bin"]);
      expect(w.server.process.signalCode, w.server.logs()).toBe("SIGKILL");
      expect(first.code).not.toBe(0);

      await w.start({ args: ["--upload-ttl", "2s"] });
      await eventually(async () => (await w.openRows()).length === 0 && (await w.objects()).length === 0);
      expect(await w.openRows()).toEqual([]);
      expect(await w.incompleteUploads()).toEqual([]);
      // The assembled object belonged to no version: nothing may keep it.
      expect(await w.objects()).toEqual([]);
      expect(await w.revisions("crash/b.bin")).toEqual([]);
    } finally {
      await w.close();
    }
  });

  it("killed mid-part: a push run again sends only what is missing, commits the exact bytes, and leaves nothing behind", async () => {
    const w = await world();
    try {
      await w.start();
      // Big enough that a whole part is stored before the kill, whatever sizes the content gives the parts.
      const size = 40 * MiB + 4321;
      const data = randomBytes(size);
      await writeFile(join(w.work, "c.bin"), data);
      const args = ["--json", "push", "--part-size", "5M", "--concurrency", "1", "c.bin", "crash/c.bin"];

      // Hold the link 21 MiB in (one part at a time, each at most 20 MiB at --part-size 5M, so the first is
      // whole and the next under way), then kill the server there, and the client.
      const up = w.proxy.upstream;
      const at = up.reached(up.bytes + 21 * MiB).then(() => up.pause());
      let killed = false;
      const first = await w.drive(args, (_line, child) => {
        if (killed || up.bytes < 21 * MiB) return;
        killed = true;
        void at.then(async () => {
          await w.server.kill();
          child.kill("SIGKILL");
          up.resume();
        });
      });
      expect(killed, "the push ended before the crash point").toBe(true);
      expect(first.signal).toBe("SIGKILL");
      expect(w.server.process.signalCode).toBe("SIGKILL");

      await w.start();
      expect(await w.revisions("crash/c.bin")).toEqual([]);
      const again = await w.drive(args);
      expect(again.code, again.stderr + again.stdout).toBe(0);
      // Content-defined parts of 5 to 20 MiB at --part-size 5M: 21 MiB in, at least the first was whole.
      expect(again.summary!.parts_skipped, w.server.logs()).toBeGreaterThanOrEqual(1);
      expect(again.summary!.bytes_transferred).toBeLessThan(size);
      expect(await w.revisions("crash/c.bin")).toEqual([1]);
      const pull = await w.drive(["--json", "pull", "crash/c.bin", "c-copy.bin"]);
      expect(pull.code, pull.stderr + pull.stdout).toBe(0);
      expect((await readFile(join(w.work, "c-copy.bin"))).equals(data)).toBe(true);

      await eventually(async () => (await w.openRows()).length === 0 && (await w.incompleteUploads()).length === 0 && (await w.staging()).length === 0);
      expect(await w.openRows()).toEqual([]);
      expect(await w.incompleteUploads()).toEqual([]);
      expect(await w.objects()).toHaveLength(1);
      // The part the kill cut short, half-staged on the server's disk, is gone too.
      expect(await w.staging()).toEqual([]);
    } finally {
      await w.close();
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
