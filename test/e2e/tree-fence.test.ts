import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../server/log.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../server/metadata/embedded-postgres.js";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";

/**
 * The fence, through a real server: names no client could push are put
 * straight into the server's database, and a pull must write nothing
 * outside its root. Names that are valid but meet a hostile local tree (a
 * symlink planted inside the root, a name already there in another Unicode
 * form) are pushed normally and pulled into such a tree.
 */
describe("pull through the fence", () => {
  let pgDir: string;
  let db: EmbeddedDatabase;
  let sql: pg.Client;
  let server: TestServer;
  let work: string;
  const drive = (args: string[]) => runDrive(args, { server: server.url, token: server.adminToken, cwd: work });

  beforeAll(async () => {
    pgDir = await mkdtemp(join(tmpdir(), "drive-fence-pg-"));
    db = await startEmbeddedPostgres(pgDir, createLogger("error"));
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query("create database fence").finally(() => admin.end());
    const url = new URL(db.url);
    url.pathname = "/fence";
    server = await startDriveServer({ env: { DRIVE_DATABASE_URL: url.toString() } });
    sql = new pg.Client({ connectionString: url.toString() });
    await sql.connect();
    work = await mkdtemp(join(tmpdir(), "drive-fence-"));
  });
  afterAll(async () => {
    await sql?.end();
    await server?.stop();
    await db?.stop();
    await rm(pgDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it("writes nothing outside the root, whatever the server names", async () => {
    const src = join(work, "src");
    await mkdir(join(src, "link"), { recursive: true });
    await mkdir(join(src, "x"));
    await writeFile(join(src, "ok.txt"), "fine");
    await writeFile(join(src, "link", "evil.txt"), "through a planted link");
    await writeFile(join(src, "x", "caf\u00e9.txt"), "nfc from the server");
    expect((await drive(["push", src, "h"])).code).toBe(0);

    // Rows no client could have made: each a copy of ok.txt's row under a hostile name.
    const hostile = [
      "h/../escape.txt",
      "h/../../escape2.txt",
      "h//abs.txt",
      "h/./dot.txt",
      "h/..\\back.txt",
      "h/ctl\u0001.txt",
      "h/new\nline.txt",
      "h/esc\u001b[2J.txt",
      "h/del\u007f.txt",
      "h/cafe\u0301-nfd.txt", // not NFC
      "h/" + "n".repeat(300) + ".txt", // a segment over 255 bytes
      // NUL cannot be stored: PostgreSQL text refuses it, so the server can never name one.
    ];
    for (const p of hostile) {
      await sql.query(
        `insert into files (namespace_id, path, revision, deleted, blob_id, size, content_hash, content_hash_kind, modified_at, kind, mode, mtime_us)
         select namespace_id, $1, revision, deleted, blob_id, size, content_hash, content_hash_kind, modified_at, kind, mode, mtime_us from files where path = 'h/ok.txt'`,
        [p],
      );
    }

    const outside = join(work, "outside");
    await mkdir(outside);
    const dst = join(work, "sandbox", "dst");
    await mkdir(join(dst, "x"), { recursive: true });
    await symlink(outside, join(dst, "link")); // a link inside the root, pointing out
    await writeFile(join(dst, "x", "cafe\u0301.txt"), "mine, in NFD"); // the same name in another form

    const r = await drive(["--json", "pull", "h", dst]);
    // Refused names are skipped before any request, the NFC twin of a local NFD name too; the
    // write through the planted link failed at the fence; the run went on and says so (exit 5).
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.summary, r.stdout).toMatchObject({ files_failed: 1, files_sent: 1 });
    const failed = r.lines.filter((l) => l.type === "file" && l.action === "failed");
    expect(failed.map((l) => [l.path, l.code])).toEqual([["link/evil.txt", "integrity"]]);
    const skipped = r.lines.filter((l) => l.type === "file" && l.action === "skipped" && l.reason === "unsafe_name");
    expect(skipped).toHaveLength(hostile.length + 1);
    expect(skipped.map((l) => l.path)).toContain("x/caf\u00e9.txt");

    // Nothing outside: not beside the root, not above it, not through the link.
    expect(await readdir(outside)).toEqual([]);
    expect((await readdir(join(work, "sandbox"))).sort()).toEqual(["dst"]);
    expect((await readdir(work)).sort()).toEqual(["outside", "sandbox", "src"]);
    // Inside: the honest file, and the local NFD file untouched beside no NFC twin.
    expect(await readFile(join(dst, "ok.txt"), "utf8")).toBe("fine");
    expect(await readdir(join(dst, "x"))).toEqual(["cafe\u0301.txt"]);
    expect(await readFile(join(dst, "x", "cafe\u0301.txt"), "utf8")).toBe("mine, in NFD");
    expect((await readdir(dst)).sort()).toEqual(["link", "ok.txt", "x"]);
  });

  it("a folder where the file goes is kept: the file lands beside it as a conflicted copy, with no temporary file left", async () => {
    const src = join(work, "clash-src");
    await mkdir(src);
    await writeFile(join(src, "a.txt"), "a file here");
    expect((await drive(["push", src, "clash"])).code).toBe(0);
    const dst = join(work, "clash-dst");
    await mkdir(join(dst, "a.txt"), { recursive: true }); // a folder where the file goes
    const r = await drive(["--json", "pull", "clash", dst]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const names = (await readdir(dst)).sort();
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^a \(conflicted copy .+\)\.txt$/);
    expect(names[1]).toBe("a.txt");
    expect(await readFile(join(dst, names[0]!), "utf8")).toBe("a file here");
    expect(await readdir(join(dst, "a.txt"))).toEqual([]);
  });
});
