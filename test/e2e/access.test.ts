import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDrive } from "../support/drive-cli.js";
import { startDriveServer, type TestServer } from "../support/drive-server.js";
import { bearer, connectGrpc, grpcError, messageOf, Status, unary, type DriveGrpc, type FileInfoMsg } from "../support/grpc-client.js";

// Well-formed, so the server looks it up rather than rejecting its shape.
const BAD_TOKEN = `drv_${"A".repeat(16)}_${"A".repeat(43)}`;

let server: TestServer;
let grpc: DriveGrpc;

beforeAll(async () => {
  server = await startDriveServer();
  grpc = connectGrpc(server.url);
});
afterAll(async () => {
  grpc?.close();
  await server?.stop();
});

describe("tokens, users and namespaces", () => {
  let dir: string;
  let bobToken: string;
  const secret = randomBytes(200_000);
  const as = (token: string | undefined, args: string[]) => runDrive(args, { server: server.url, token, cwd: dir });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "drive-access-"));
    await writeFile(join(dir, "secret.bin"), secret);
    const push = await as(server.adminToken, ["push", "secret.bin", "private/secret.bin"]);
    expect(push.code, push.stderr).toBe(0);
    // A deleted file too, for Restore and the deleted listing.
    expect((await as(server.adminToken, ["push", "secret.bin", "private/gone.bin"])).code).toBe(0);
    expect((await as(server.adminToken, ["rm", "private/gone.bin"])).code).toBe(0);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses a wrong token with exit 4, and says auth under --json", async () => {
    const plain = await as(BAD_TOKEN, ["ls"]);
    expect(plain.code).toBe(4);
    expect(plain.stderr).toMatch(/authentication failed/);

    const json = await as(BAD_TOKEN, ["--json", "ls"]);
    expect(json.code).toBe(4);
    expect(json.lines.at(-1)).toMatchObject({ type: "exit_error", code: "auth", exit_code: 4 });
  });

  it("lets an admin add a user, printing the token alone on stdout", async () => {
    const add = await as(server.adminToken, ["user", "add", "bob"]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/^drv_\S+\n$/);
    bobToken = add.stdout.trim();
    expect(await unary(grpc.users, "WhoAmI", {}, bearer(bobToken))).toEqual({ name: "bob", admin: false });
  });

  it("refuses user add from a non-admin with exit 4", async () => {
    const add = await as(bobToken, ["--json", "user", "add", "mallory"]);
    expect(add.code).toBe(4);
    expect(add.lines.at(-1)).toMatchObject({ type: "exit_error", code: "auth" });
    expect(add.stdout).not.toMatch(/drv_/);
    // Nor was mallory made: an admin can still take the name.
    expect((await as(server.adminToken, ["user", "add", "mallory"])).code).toBe(0);
  });

  describe("a user cannot reach another user's files", () => {
    it("stat is NOT_FOUND, as for a path that never existed", async () => {
      const theirs = await grpcError(unary(grpc.files, "Stat", { path: "private/secret.bin" }, bearer(bobToken)));
      const nothing = await grpcError(unary(grpc.files, "Stat", { path: "private/nothing.bin" }, bearer(bobToken)));
      expect(theirs.code).toBe(Status.NOT_FOUND);
      // Existence does not leak through the message either.
      expect(messageOf(theirs).replace("secret.bin", "X")).toBe(messageOf(nothing).replace("nothing.bin", "X"));
    });

    it("GetDownload and ListVersions are NOT_FOUND", async () => {
      for (const method of ["GetDownload", "ListVersions"]) {
        const err = await grpcError(unary(grpc.files, method, { path: "private/secret.bin" }, bearer(bobToken)));
        expect(err.code, method).toBe(Status.NOT_FOUND);
      }
    });

    it("Restore is NOT_FOUND for their live and their deleted file, with the message of a path that never existed, and restores nothing", async () => {
      const nothing = await grpcError(unary(grpc.files, "Restore", { path: "private/nothing.bin" }, bearer(bobToken)));
      expect(nothing.code).toBe(Status.NOT_FOUND);
      for (const [path, request] of [
        ["private/gone.bin", {}],
        ["private/secret.bin", { revision: 1 }],
      ] as const) {
        const err = await grpcError(unary(grpc.files, "Restore", { path, ...request }, bearer(bobToken)));
        expect(err.code, path).toBe(Status.NOT_FOUND);
        expect(messageOf(err).replace(/[^/]+\.bin/, "X")).toBe(messageOf(nothing).replace("nothing.bin", "X"));
      }
      const restore = await as(bobToken, ["restore", "private/gone.bin"]);
      expect([restore.code, restore.stderr]).toEqual([3, "drive: error: restore: private/gone.bin: no such file (it never existed)\n"]);
      const { file } = await unary<{ file: FileInfoMsg }>(grpc.files, "Stat", { path: "private/secret.bin" }, bearer(server.adminToken));
      expect(file).toMatchObject({ revision: 1, deleted: false });
      await expect(unary(grpc.files, "Stat", { path: "private/gone.bin" }, bearer(server.adminToken))).rejects.toMatchObject({ code: Status.NOT_FOUND });
    });

    it("ListFiles with deleted lists none of their deleted files", async () => {
      for (const prefix of ["", "private/", "private/gone.bin"]) {
        const page = await unary<{ files: FileInfoMsg[] }>(grpc.files, "ListFiles", { prefix, deleted: true }, bearer(bobToken));
        expect(page.files, prefix).toEqual([]);
      }
      const mine = await unary<{ files: FileInfoMsg[] }>(grpc.files, "ListFiles", { prefix: "private/", deleted: true }, bearer(server.adminToken));
      expect(mine.files.map((f) => f.path)).toEqual(["private/gone.bin"]);
      const ls = await as(bobToken, ["--json", "ls", "--deleted"]);
      expect([ls.code, ls.stdout]).toEqual([0, ""]);
    });

    it("pull exits 3 and writes nothing", async () => {
      const pull = await as(bobToken, ["pull", "private/secret.bin", "stolen.bin"]);
      expect(pull.code, pull.stderr).toBe(3);
      await expect(stat(join(dir, "stolen.bin"))).rejects.toMatchObject({ code: "ENOENT" });
    });

    it("rm exits 3", async () => {
      const del = await as(bobToken, ["rm", "private/secret.bin"]);
      expect(del.code, del.stderr).toBe(3);
    });

    it("leaves the owner's file intact", async () => {
      const { file } = await unary<{ file: FileInfoMsg }>(grpc.files, "Stat", { path: "private/secret.bin" }, bearer(server.adminToken));
      expect(file).toMatchObject({ revision: 1, deleted: false, size: secret.length });
      const pull = await as(server.adminToken, ["pull", "private/secret.bin", "owner-copy.bin"]);
      expect(pull.code, pull.stderr).toBe(0);
      expect((await readFile(join(dir, "owner-copy.bin"))).equals(secret)).toBe(true);
    });
  });

  it("gives each user their own namespace for push and ls", async () => {
    await writeFile(join(dir, "bob.txt"), "bob's own");
    // Same path as the admin's file: a separate namespace, so revision 1.
    const push = await as(bobToken, ["--json", "push", "bob.txt", "private/secret.bin"]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.summary).toMatchObject({ revision: 1 });

    const bobLs = await as(bobToken, ["--json", "ls", "-R"]);
    expect(bobLs.code).toBe(0);
    expect(bobLs.lines).toEqual([expect.objectContaining({ type: "file", path: "private/secret.bin", size: 9, revision: 1 })]);

    const adminLs = await as(server.adminToken, ["--json", "ls", "-R"]);
    expect(adminLs.lines).toEqual([expect.objectContaining({ path: "private/secret.bin", size: secret.length, revision: 1 })]);
  });

  it("does not deduplicate across users: another user's content must really be sent", async () => {
    // Were content shared between namespaces, a commit without bytes would
    // tell bob that someone stores this exact file.
    const push = await as(bobToken, ["--json", "push", "secret.bin", "mine.bin"]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.summary).toMatchObject({ bytes_transferred: secret.length });
    expect(push.summary!.deduplicated).not.toBe(true);
  });
});

describe("login and the config file", () => {
  let home: string;
  let work: string;
  // A user of its own, so that `ls` shows exactly the one file pushed here.
  let token: string;

  beforeAll(async () => {
    ({ token } = await unary<{ token: string }>(grpc.users, "CreateUser", { name: "carol" }, bearer(server.adminToken)));
    home = await mkdtemp(join(tmpdir(), "drive-home-"));
    work = join(home, "work");
    await mkdir(work);
    await writeFile(join(work, "hello.txt"), "hello");
    const push = await runDrive(["push", "hello.txt"], { server: server.url, token, cwd: work });
    expect(push.code, push.stderr).toBe(0);
  });
  afterAll(async () => {
    if (home) await rm(home, { recursive: true, force: true });
  });

  /** The CLI with a private HOME and XDG folder, and only the environment given. */
  const isolated = (args: string[], env: { DRIVE_CONFIG?: string; DRIVE_SERVER?: string; DRIVE_TOKEN?: string }) =>
    runDrive(args, {
      server: env.DRIVE_SERVER,
      token: env.DRIVE_TOKEN,
      cwd: work,
      env: { HOME: home, XDG_CONFIG_HOME: join(home, "xdg"), DRIVE_CONFIG: env.DRIVE_CONFIG },
    });

  async function expectPrivate(file: string): Promise<void> {
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ server: server.url, token });
  }

  it("saves server and token to DRIVE_CONFIG with mode 0600, and later commands need nothing else", async () => {
    const config = join(home, "explicit", "drive.json");
    // A world-readable file from before must not stay world-readable once it holds a token.
    await mkdir(join(home, "explicit"));
    await writeFile(config, "{}", { mode: 0o644 });
    const login = await isolated(["login", "--server", server.url, "--token", token], { DRIVE_CONFIG: config });
    expect(login.code, login.stderr).toBe(0);
    await expectPrivate(config);

    const ls = await isolated(["--json", "ls"], { DRIVE_CONFIG: config });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.lines).toEqual([expect.objectContaining({ path: "hello.txt" })]);
  });

  it("uses $XDG_CONFIG_HOME/drive/config.json without DRIVE_CONFIG", async () => {
    const login = await isolated(["login", "--server", server.url, "--token", token], {});
    expect(login.code, login.stderr).toBe(0);
    await expectPrivate(join(home, "xdg", "drive", "config.json"));
    const ls = await isolated(["--json", "ls"], {});
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.lines).toEqual([expect.objectContaining({ path: "hello.txt" })]);
  });

  it("refuses to save a token the server rejects", async () => {
    const config = join(home, "refused.json");
    const login = await isolated(["login", "--server", server.url, "--token", BAD_TOKEN], { DRIVE_CONFIG: config });
    expect(login.code).toBe(4);
    await expect(stat(config)).rejects.toMatchObject({ code: "ENOENT" });
  });

  describe("precedence: flag over environment over file", () => {
    const write = async (name: string, saved: { server: string; token: string }) => {
      const file = join(home, name);
      await writeFile(file, JSON.stringify(saved), { mode: 0o600 });
      return file;
    };

    it("token: DRIVE_TOKEN beats the file, --token beats DRIVE_TOKEN", async () => {
      const good = await write("good.json", { server: server.url, token });
      expect((await isolated(["ls"], { DRIVE_CONFIG: good })).code).toBe(0);
      const envBad = await isolated(["ls"], { DRIVE_CONFIG: good, DRIVE_TOKEN: BAD_TOKEN });
      expect(envBad.code, envBad.stderr).toBe(4);
      const flagGood = await isolated(["--token", token, "ls"], { DRIVE_CONFIG: good, DRIVE_TOKEN: BAD_TOKEN });
      expect(flagGood.code, flagGood.stderr).toBe(0);
    });

    it("token: DRIVE_TOKEN good over a bad file works; --token bad over a good DRIVE_TOKEN fails", async () => {
      const bad = await write("bad-token.json", { server: server.url, token: BAD_TOKEN });
      expect((await isolated(["ls"], { DRIVE_CONFIG: bad })).code).toBe(4);
      expect((await isolated(["ls"], { DRIVE_CONFIG: bad, DRIVE_TOKEN: token })).code).toBe(0);
      const flagBad = await isolated(["--token", BAD_TOKEN, "ls"], { DRIVE_CONFIG: bad, DRIVE_TOKEN: token });
      expect(flagBad.code).toBe(4);
    });

    it("server: DRIVE_SERVER beats the file, --server beats DRIVE_SERVER", async () => {
      // Not a URL: refused at once with a usage error, so each level shows whether it was read.
      const bad = await write("bad-server.json", { server: "not a url", token });
      expect((await isolated(["ls"], { DRIVE_CONFIG: bad })).code).toBe(2);
      expect((await isolated(["ls"], { DRIVE_CONFIG: bad, DRIVE_SERVER: server.url })).code).toBe(0);
      expect((await isolated(["ls"], { DRIVE_CONFIG: bad, DRIVE_SERVER: "also not a url" })).code).toBe(2);
      const flag = await isolated(["--server", server.url, "ls"], { DRIVE_CONFIG: bad, DRIVE_SERVER: "also not a url" });
      expect(flag.code, flag.stderr).toBe(0);
    });
  });
});
