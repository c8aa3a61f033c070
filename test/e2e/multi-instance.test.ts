import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../server/log.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../server/metadata/embedded-postgres.js";
import { runDrive, runDriveInterrupted } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { s3Env, s3Missing, s3ServerEnv, testS3Client, uniqueBucket, type S3TestEnv } from "../support/s3-env.js";
import { startThrottleProxy, type ThrottleProxy } from "../support/throttle-proxy.js";

const MiB = 1024 * 1024;

/**
 * Several `drive server` processes on one PostgreSQL and one S3 bucket, as
 * behind a load balancer: any instance serves any call, and the sweeper
 * runs on one at a time.
 */
describe.skipIf(!s3Env)(`several instances on one PostgreSQL and one S3 store${s3Env ? "" : ` — ${s3Missing}`}`, () => {
  const env = s3Env as S3TestEnv;
  let pgDir: string;
  let db: EmbeddedDatabase;
  let dir: string;
  const servers: TestServer[] = [];

  /** A database of its own on the shared PostgreSQL, so the cases do not see each other's uploads. */
  async function createDatabase(name: string): Promise<string> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(`create database ${name}`);
    } finally {
      await client.end();
    }
    const url = new URL(db.url);
    url.pathname = `/${name}`;
    return url.toString();
  }

  /** Starts instances at once, as an orchestrator would, on one database and bucket. */
  async function startInstances(n: number, databaseUrl: string, bucket: string, opts: { args?: string[]; publicEndpoint?: string[] } = {}) {
    const started = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        startDriveServer({
          args: opts.args ?? [],
          env: { DRIVE_DATABASE_URL: databaseUrl, ...s3ServerEnv(env, bucket, opts.publicEndpoint?.[i]) },
        }),
      ),
    );
    servers.push(...started);
    // Exactly one of them made the admin and wrote its token.
    const tokens = started.map((s) => s.adminToken).filter(Boolean);
    expect(tokens).toHaveLength(1);
    return { instances: started, token: tokens[0]! };
  }

  beforeAll(async () => {
    pgDir = await mkdtemp(join(tmpdir(), "drive-multi-pg-"));
    dir = await mkdtemp(join(tmpdir(), "drive-multi-"));
    db = await startEmbeddedPostgres(pgDir, createLogger("error"));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await db?.stop();
    await rm(pgDir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  });

  it("resumes and completes through instance B an upload created through instance A", async () => {
    const bucket = uniqueBucket("multi");
    // A's part URLs go through a proxy, so that its push can be cut at an exact byte count. S3's
    // ETags are MD5, so only parts the client reported (every second) count: the cut comes after some.
    const proxy: ThrottleProxy = await startThrottleProxy({ target: env.endpoint, upstreamRate: 20 * 1000 * 1000 });
    try {
      const {
        instances: [a, b],
        token,
      } = await startInstances(2, await createDatabase("handover"), bucket, { publicEndpoint: [proxy.url] });
      const size = 64 * MiB;
      const data = randomBytes(size);
      await writeFile(join(dir, "handover.bin"), data);
      const args = ["--json", "push", "--part-size", "5M", "--concurrency", "2", "handover.bin", "multi/handover.bin"];

      const killed = await runDriveInterrupted(args, { server: a!.url, token, cwd: dir }, proxy.upstream, (size * 3) / 4, "SIGKILL");
      expect(killed.signal, killed.stderr + killed.stdout).toBe("SIGKILL");
      expect(a!.logs()).toContain("UploadService/ReportParts");

      const again = await runDrive(args, { server: b!.url, token, cwd: dir });
      expect(again.code, again.stderr + again.stdout).toBe(0);
      const s = again.summary!;
      expect(s.bytes_skipped).toBeGreaterThan(0);
      expect(s.bytes_transferred + s.bytes_skipped).toBe(size);
      expect(a!.logs()).toContain("UploadService/CreateUpload");
      expect(a!.logs()).not.toContain("UploadService/CompleteUpload");
      expect(b!.logs()).toContain("UploadService/CompleteUpload");

      // Either instance serves the result.
      const pull = await runDrive(["--json", "pull", "multi/handover.bin", "handover-copy.bin"], { server: a!.url, token, cwd: dir });
      expect(pull.code, pull.stderr + pull.stdout).toBe(0);
      expect((await readFile(join(dir, "handover-copy.bin"))).equals(data)).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it("sweeps abandoned uploads: the store lists none incomplete and the database keeps no row", async () => {
    const bucket = uniqueBucket("sweep");
    const databaseUrl = await createDatabase("sweep");
    const proxy = await startThrottleProxy({ target: env.endpoint, upstreamRate: 40 * 1000 * 1000 });
    const watch = new pg.Client({ connectionString: databaseUrl });
    await watch.connect();
    try {
      const {
        instances: [a, b],
        token,
      } = await startInstances(2, databaseUrl, bucket, { args: ["--upload-ttl", "3s"], publicEndpoint: [proxy.url, proxy.url] });
      await writeFile(join(dir, "abandoned.bin"), randomBytes(32 * MiB));
      const args = ["--json", "push", "--part-size", "5M", "--concurrency", "2", "abandoned.bin", "multi/abandoned.bin"];
      const killed = await runDriveInterrupted(args, { server: a!.url, token, cwd: dir }, proxy.upstream, 12 * MiB, "SIGKILL");
      expect(killed.signal).toBe("SIGKILL");

      // And a store upload with no row at all, as a crash between create and insert leaves.
      const s3 = testS3Client(env);
      await s3.initiateNewMultipartUpload(bucket, "ns/1/orphan", {});

      const incomplete = async () => (await s3.listIncompleteUploadsQuery(bucket, "", "", "", "")).uploads.map((u) => u.key);
      const uploadRows = async () => (await watch.query("select id, state from uploads union all select upload_id, 'part' from upload_parts")).rows;
      expect((await incomplete()).length).toBe(2);
      expect((await uploadRows()).length).toBeGreaterThan(0);

      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && ((await incomplete()).length > 0 || (await uploadRows()).length > 0)) await sleep(250);
      expect(await incomplete()).toEqual([]);
      expect(await uploadRows()).toEqual([]);

      // Each was aborted once, by whichever instance held the sweeper's lock.
      const logs = a!.logs() + b!.logs();
      expect(logs.match(/expired upload aborted/g)).toHaveLength(1);
      expect(logs.match(/orphaned store upload aborted/g)).toHaveLength(1);
    } finally {
      await watch.end();
      await proxy.close();
    }
  });
});
