import { createHash, randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { storeModes, type ModeServer } from "../support/store-modes.js";

const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;

/** Every file and folder under root: relative path -> what a round trip must keep. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of (await readdir(root, { recursive: true })).sort()) {
    const abs = join(root, rel);
    const st = await lstat(abs, { bigint: true });
    if (st.isDirectory()) out[rel + "/"] = `dir mode=${(st.mode & 0o777n).toString(8)}`;
    else {
      const hash = createHash("sha256").update(await readFile(abs)).digest("hex");
      out[rel] = `file mode=${(st.mode & 0o777n).toString(8)} mtime_us=${(st.mtimeNs + 500n) / 1000n} ${hash}`;
    }
  }
  return out;
}

const deep = Array.from({ length: 24 }, (_, i) => `d${i}`).join("/");

/** A tree with what users expect back: unicode, deep paths, an executable, old mtimes, empty folders. */
async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, "src", "lib"), { recursive: true });
  await mkdir(join(root, deep), { recursive: true });
  await mkdir(join(root, "empty", "nested-empty"), { recursive: true });
  await mkdir(join(root, "日本語"), { recursive: true });
  const files: Array<[string, Buffer | string, number?]> = [
    ["README.md", "# hello\n"],
    ["run.sh", "#!/bin/sh\necho hi\n", 0o755],
    ["src/lib/a.ts", "export const a = 1;\n"],
    ["src/zero.bin", Buffer.alloc(0)],
    ["café.txt", "nfc name\n"],
    ["日本語/ファイル.txt", "unicode\n"],
    [`${deep}/leaf.txt`, "deep\n"],
    ["big.bin", randomBytes(9 * MiB)], // past the small-file limit: UploadService
  ];
  let t = 1_600_000_000;
  for (const [rel, body, mode] of files) {
    await writeFile(join(root, rel), body);
    if (mode) await chmod(join(root, rel), mode);
    // Microseconds that a floor or a float would lose.
    await utimes(join(root, rel), t + 0.123457, t + 0.123457);
    t += 3600;
  }
}

/**
 * A module for --import that logs every file the process opens under
 * OPEN_UNDER (fs/promises open, and fs.open/openSync), one path a line.
 */
async function openCounter(dir: string): Promise<string> {
  const file = join(dir, "count-opens.mjs");
  await writeFile(
    file,
    `import fs from "node:fs";
import fsp from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
const under = process.env.OPEN_UNDER + "/";
const log = (p) => { if (typeof p === "string" && p.startsWith(under)) fs.appendFileSync(process.env.OPEN_LOG, p + "\\n"); };
const open = fsp.open;
fsp.open = async (p, ...a) => { const fh = await open(p, ...a); if ((await fh.stat()).isFile()) log(p); return fh; };
const openSync = fs.openSync;
fs.openSync = (p, ...a) => { const fd = openSync(p, ...a); if (fs.fstatSync(fd).isFile()) log(p); return fd; };
const openCb = fs.open;
fs.open = (p, ...a) => { const cb = a.pop(); openCb(p, ...a, (err, fd) => { if (!err && fs.fstatSync(fd).isFile()) log(p); cb(err, fd); }); };
syncBuiltinESMExports();
`,
  );
  return file;
}

for (const mode of storeModes) describe.skipIf(mode.skip)(`push and pull of folders (${mode.name} store)`, () => {
  let m: ModeServer;
  let dir: string;
  let n = 0;
  const drive = (args: string[]) => runDrive(args, { server: m.via, token: m.server.adminToken, cwd: dir });
  const fresh = async () => {
    const d = join(dir, `t${++n}`);
    await mkdir(d);
    return d;
  };
  const remoteFiles = async (prefix: string) =>
    (await drive(["--json", "ls", "-R", prefix])).lines.filter((l) => l.type === "file").map((l) => String(l.path)).sort();

  beforeAll(async () => {
    m = await mode.start();
    dir = await mkdtemp(join(tmpdir(), "drive-tree-"));
  });
  afterAll(async () => {
    await m?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("round-trips content, mode, mtime and empty folders, with unicode names and deep paths", async () => {
    const src = await fresh();
    await makeTree(src);
    const push = await drive(["--json", "push", src, `rt${mode.name}/`]);
    expect(push.code, push.stdout + push.stderr).toBe(0);
    expect(push.summary).toMatchObject({ files_sent: 8, files_failed: 0 });

    const dst = join(dir, `pulled-${mode.name}`);
    const pull = await drive(["--json", "pull", `rt${mode.name}`, dst]);
    expect(pull.code, pull.stdout + pull.stderr).toBe(0);
    expect(pull.summary).toMatchObject({ files_sent: 8, files_failed: 0 });
    expect(await snapshot(dst)).toEqual(await snapshot(src));

    // The other way again: nothing to do on either side.
    const again = await drive(["--json", "pull", `rt${mode.name}`, dst]);
    expect(again.code).toBe(0);
    expect(again.summary).toMatchObject({ files_sent: 0, files_skipped: 8 });
  });

  if (mode.name === "s3") return; // the rest is the client's own logic: once, on the local store

  it("re-pushes an unchanged tree without reading a file", async () => {
    const src = await fresh();
    await makeTree(src);
    expect((await drive(["push", src, "unchanged"])).code).toBe(0);
    // chmod 000 would move every ctime and mode, which is a change: count opens instead, in the CLI process itself.
    const log = join(dir, "opens.log");
    const again = await runDrive(["--json", "push", src, "unchanged"], {
      server: m.via,
      token: m.server.adminToken,
      cwd: dir,
      env: { NODE_OPTIONS: `--import ${await openCounter(dir)}`, OPEN_LOG: log, OPEN_UNDER: src },
    });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.summary).toMatchObject({ files_sent: 0, files_skipped: 8, bytes_transferred: 0 });
    const opened = (await readFile(log, "utf8").catch(() => "")).split("\n").filter(Boolean);
    expect(opened).toEqual([]);
    // The counter counts: a changed file is opened.
    await writeFile(join(src, "README.md"), "# changed\n");
    const third = await runDrive(["--json", "push", src, "unchanged"], {
      server: m.via,
      token: m.server.adminToken,
      cwd: dir,
      env: { NODE_OPTIONS: `--import ${await openCounter(dir)}`, OPEN_LOG: log, OPEN_UNDER: src },
    });
    expect(third.summary).toMatchObject({ files_sent: 1, files_skipped: 7 });
    expect((await readFile(log, "utf8")).split("\n").filter(Boolean)).toEqual([join(src, "README.md")]);
  });

  it("--delete mirrors, within the --max-delete guard, and --dry-run changes nothing", async () => {
    const src = await fresh();
    for (const f of ["a", "b", "c", "d"]) await writeFile(join(src, `${f}.txt`), f);
    expect((await drive(["push", src, "mirror"])).code).toBe(0);
    for (const f of ["a", "b", "c"]) await rm(join(src, `${f}.txt`));
    await writeFile(join(src, "d.txt"), "changed");

    const dry = await drive(["--json", "push", "--delete", "--max-delete", "100%", "--dry-run", src, "mirror"]);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(await remoteFiles("mirror/")).toEqual(["mirror/a.txt", "mirror/b.txt", "mirror/c.txt", "mirror/d.txt"]);
    expect((await drive(["--json", "versions", "mirror/d.txt"])).lines.filter((l) => l.type === "version")).toHaveLength(1);

    const refused = await drive(["--json", "push", "--delete", src, "mirror"]);
    expect(refused.code).toBe(2);
    expect(refused.lines.at(-1)).toMatchObject({ type: "exit_error", code: "usage" });
    expect(refused.lines.at(-1)!.message).toMatch(/refusing to delete 3 of the 4 remote entries/);
    // Refused before anything changed: not even d.txt was sent.
    expect(await remoteFiles("mirror/")).toEqual(["mirror/a.txt", "mirror/b.txt", "mirror/c.txt", "mirror/d.txt"]);
    expect((await drive(["--json", "versions", "mirror/d.txt"])).lines.filter((l) => l.type === "version")).toHaveLength(1);

    const count = await drive(["--json", "push", "--delete", "--max-delete", "2", src, "mirror"]);
    expect(count.code).toBe(2);

    const ok = await drive(["--json", "push", "--delete", "--max-delete", "3", src, "mirror"]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.summary).toMatchObject({ files_deleted: 3, files_sent: 1 });
    expect(await remoteFiles("mirror/")).toEqual(["mirror/d.txt"]);
    // Deleted remote files stay as versions.
    const versions = (await drive(["--json", "versions", "mirror/a.txt"])).lines.filter((l) => l.type === "version");
    expect(versions.map((v) => v.deleted)).toEqual([true, false]);

    // pull --delete: the local side follows, by the same guard, and never deletes what drive did not write.
    const dst = await fresh();
    await writeFile(join(dst, "mine.txt"), "not drive's");
    expect((await drive(["pull", "mirror", dst])).code).toBe(0);
    const empty = await fresh();
    expect((await drive(["push", "--delete", "--max-delete", "100%", empty, "mirror"])).code).toBe(0);
    const pullRefused = await drive(["--json", "pull", "--delete", "--max-delete", "0", "mirror", dst]);
    expect(pullRefused.code).toBe(2);
    expect((await readdir(dst)).sort()).toEqual(["d.txt", "mine.txt"]);
    const pulled = await drive(["--json", "pull", "--delete", "--max-delete", "1", "mirror", dst]);
    expect(pulled.code, pulled.stdout + pulled.stderr).toBe(0);
    expect(pulled.summary).toMatchObject({ files_deleted: 1 });
    expect((await readdir(dst)).sort()).toEqual(["mine.txt"]);
  });

  it("filters with --exclude, --include and .driveignore", async () => {
    const src = await fresh();
    await mkdir(join(src, "build"));
    await mkdir(join(src, "docs"));
    await writeFile(join(src, ".driveignore"), "build/\n*.tmp\n");
    for (const f of ["build/out.o", "docs/a.md", "docs/b.txt", "x.tmp", "keep.log", "main.c"]) await writeFile(join(src, f), f);
    const r = await drive(["--json", "push", "--exclude", "*.log", src, "filtered"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await remoteFiles("filtered/")).toEqual(["filtered/.driveignore", "filtered/docs/a.md", "filtered/docs/b.txt", "filtered/main.c"]);
    const inc = await drive(["--json", "push", "--include", "*.md", src, "included"]);
    expect(inc.code).toBe(0);
    expect(await remoteFiles("included/")).toEqual(["included/docs/a.md"]);
  });

  it("skips names that collide under NFC, and symlinks, with a report; never follows a link", async () => {
    const src = await fresh();
    const outside = await fresh();
    await writeFile(join(outside, "secret.txt"), "outside the root");
    await writeFile(join(src, "caf\u00e9.txt"), "nfc");
    await writeFile(join(src, "cafe\u0301.txt"), "nfd");
    await writeFile(join(src, "fine.txt"), "fine");
    await symlink(join(outside, "secret.txt"), join(src, "link.txt"));
    await symlink(outside, join(src, "linkdir"));
    const r = await drive(["--json", "push", src, "odd"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const skipped = r.lines.filter((l) => l.type === "file" && l.action === "skipped").map((l) => [String(l.path).normalize("NFC"), l.reason]);
    expect(skipped).toEqual(expect.arrayContaining([["café.txt", "collision"], ["link.txt", "symlink"], ["linkdir", "symlink"]]));
    expect(r.summary!.files_skipped).toBeGreaterThanOrEqual(3);
    expect(await remoteFiles("odd/")).toEqual(["odd/fine.txt"]);
  });

  it("keeps a locally changed file and writes the remote version beside it as a conflicted copy", async () => {
    const src = await fresh();
    await writeFile(join(src, "notes.txt"), "v1");
    expect((await drive(["push", src, "conf"])).code).toBe(0);
    const dst = await fresh();
    expect((await drive(["pull", "conf", dst])).code).toBe(0);
    await writeFile(join(dst, "notes.txt"), "mine, edited here");
    await writeFile(join(src, "notes.txt"), "v2 from elsewhere");
    expect((await drive(["push", src, "conf"])).code).toBe(0);

    const r = await drive(["--json", "pull", "conf", dst]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await readFile(join(dst, "notes.txt"), "utf8")).toBe("mine, edited here");
    const copies = (await readdir(dst)).filter((f) => /^notes \(conflicted copy .+ \d{4}-\d\d-\d\d \d{6}\)\.txt$/.test(f));
    expect(copies).toHaveLength(1);
    expect(await readFile(join(dst, copies[0]!), "utf8")).toBe("v2 from elsewhere");
    // Run again: the same remote version is not copied a second time.
    expect((await drive(["pull", "conf", dst])).code).toBe(0);
    expect((await readdir(dst)).filter((f) => f.includes("conflicted copy"))).toHaveLength(1);
  });

  it("single files keep working: push and pull of one file, and folder-only flags refused for a file", async () => {
    await writeFile(join(dir, "one.txt"), "one");
    expect((await drive(["push", "one.txt", "single/one.txt"])).code).toBe(0);
    expect((await drive(["pull", "single/one.txt", join(dir, "one-back.txt")])).code).toBe(0);
    expect(await readFile(join(dir, "one-back.txt"), "utf8")).toBe("one");
    expect((await drive(["push", "--delete", "one.txt", "single/one.txt"])).code).toBe(2);
  });
});
