import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChangeOp } from "../../gen/drive/v1/feed_pb.js";
import { EntryKind } from "../../gen/drive/v1/types_pb.js";
import { createUser } from "../../server/auth/users.js";
import { cursorAt, encodeCursor } from "../../server/journal/cursor.js";
import { trimJournal } from "../../server/journal/trim-journal.js";
import { startRpcHarness, type RpcHarness } from "./rpc-harness.js";
import { appendEntries, failure, putEmpty } from "./feed-support.js";

/** Every change after `cursor`, page by page, and the cursor at the end. */
async function drain(h: RpcHarness, cursor: string, opts: { limit?: number; prefix?: string } = {}) {
  const all = [];
  let pages = 0;
  for (;;) {
    const page = await h.feed.listChanges({ cursor, limit: opts.limit ?? 0, prefix: opts.prefix ?? "" });
    pages++;
    all.push(...page.changes);
    expect(page.cursor).not.toBe("");
    cursor = page.cursor;
    if (!page.hasMore) return { changes: all, cursor, pages };
  }
}

describe("the change feed: cursors and ListChanges", () => {
  let h: RpcHarness;
  beforeAll(async () => {
    h = await startRpcHarness();
  });
  afterAll(() => h?.close());

  it("lists puts and deletes in commit order, each with a cursor that resumes just after it", async () => {
    const start = (await h.feed.getCursor({})).cursor;
    expect((await h.feed.listChanges({ cursor: start })).changes).toEqual([]);
    await putEmpty(h, "docs/a.txt");
    await putEmpty(h, "docs/b.txt");
    await h.files.delete({ path: "docs/a.txt" });
    const { changes, cursor } = await drain(h, start);
    expect(changes.map((c) => [ChangeOp[c.op], c.file?.path, Number(c.file?.revision), c.file?.deleted])).toEqual([
      ["PUT", "docs/a.txt", 1, false],
      ["PUT", "docs/b.txt", 1, false],
      ["DELETE", "docs/a.txt", 2, true],
    ]);
    expect(changes[0]!.file?.kind).toBe(EntryKind.FILE);
    expect(changes[0]!.committedAt).toBeDefined();
    // Resuming from the first change's cursor gives exactly the rest.
    expect((await drain(h, changes[0]!.cursor)).changes.map((c) => c.cursor)).toEqual(changes.slice(1).map((c) => c.cursor));
    expect(cursor).toBe((await h.feed.getCursor({})).cursor);
    // The empty cursor starts at the oldest entry kept.
    expect((await drain(h, "")).changes.slice(0, 3).map((c) => c.file?.path)).toEqual(["docs/a.txt", "docs/b.txt", "docs/a.txt"]);
  });

  it("maps moves and attribute changes with their kind, mode, mtime and old path", async () => {
    await appendEntries(h, []);
    const start = (await h.feed.getCursor({})).cursor;
    await appendEntries(h, [
      { op: "move", path: "new/x.sh", from_path: "old/x.sh", from_revision: 4, revision: 1, mode: 0o755, mtime_us: 1_700_000_000_123_456 },
      { op: "attrs", path: "new/x.sh", revision: 2, mode: 0o644, mtime_us: -1 },
      { op: "put", path: "empty-dir", kind: "folder", revision: 1 },
    ]);
    const { changes } = await drain(h, start);
    const [move, attrs, folder] = changes;
    expect(move).toMatchObject({ op: ChangeOp.MOVE, fromPath: "old/x.sh", fromRevision: 4n, file: { path: "new/x.sh", mode: 0o755, deleted: false } });
    expect(move!.file!.mtime).toMatchObject({ seconds: 1_700_000_000n, nanos: 123_456_000 });
    expect(attrs).toMatchObject({ op: ChangeOp.ATTRS, fromPath: "", file: { mode: 0o644 } });
    // One microsecond before the epoch.
    expect(attrs!.file!.mtime).toMatchObject({ seconds: -1n, nanos: 999_999_000 });
    expect(folder!.file).toMatchObject({ kind: EntryKind.FOLDER, mode: 0 });
    expect(folder!.file!.mtime).toBeUndefined();
  });

  it("pages at 1,000 by default and at most, with has_more, and a prefix that still advances the cursor", async () => {
    const start = (await h.feed.getCursor({})).cursor;
    await appendEntries(h, Array.from({ length: 2_300 }, (_, i) => ({ path: `${i % 2 ? "odd" : "even"}/${i}` })));
    await appendEntries(h, [{ op: "move", path: "elsewhere/1", from_path: "odd/1", from_revision: 1 }]);
    const first = await h.feed.listChanges({ cursor: start, limit: 5000 });
    expect(first.changes).toHaveLength(1000);
    expect(first.hasMore).toBe(true);
    expect(first.cursor).toBe(first.changes[999]!.cursor);
    const all = await drain(h, start);
    expect(all.changes).toHaveLength(2_301);
    expect(all.pages).toBe(3);
    const small = await drain(h, start, { limit: 700 });
    expect(small.changes.map((c) => c.cursor)).toEqual(all.changes.map((c) => c.cursor));
    expect(small.pages).toBe(4);

    const odd = await drain(h, start, { prefix: "odd/" });
    expect(odd.changes).toHaveLength(1_151); // 1,150 odd puts and the move away from odd/1
    expect(odd.changes.every((c) => c.file!.path.startsWith("odd/") || c.fromPath.startsWith("odd/"))).toBe(true);
    // Past every entry it skipped: the same end as the unfiltered feed.
    expect(odd.cursor).toBe(all.cursor);
    const none = await h.feed.listChanges({ cursor: start, prefix: "nothing/" });
    expect(none).toMatchObject({ changes: [], hasMore: false, cursor: all.cursor });
  });

  it("refuses cursors it did not make, another user's, and bad limits and prefixes, as InvalidArgument", async () => {
    const mine = (await h.feed.getCursor({})).cursor;
    const bob = await createUser(h.deps.db, "bob", false);
    const bobs = (await h.deps.db.selectFrom("users").select("id").where("name", "=", "bob").executeTakeFirstOrThrow()).id;
    expect(bob.token).toBeTruthy();
    const bad = [
      "!!!!",
      "AQ", // truncated
      mine + "A",
      mine.slice(0, -1),
      "x".repeat(1025),
      Buffer.from([2, 1, 1, 1, 1]).toString("base64url"), // another format version
      Buffer.from([1, 0x81, 0x00, 1, 1, 1]).toString("base64url"), // a varint in a longer spelling
      Buffer.from([1, ...Buffer.from(mine, "base64url").subarray(1), 0]).toString("base64url"), // trailing bytes
      "\u0000",
      "ü",
    ];
    for (const cursor of bad) expect((await failure(h.feed.listChanges({ cursor }))).code, JSON.stringify(cursor)).toBe(Code.InvalidArgument);
    const other = await failure(h.feed.listChanges({ cursor: cursorAt(bobs, h.caller.namespaceId, 1) }));
    expect(other).toMatchObject({ code: Code.InvalidArgument, message: "cursor belongs to another user" });
    const foreignNamespace = encodeCursor({ userId: h.caller.user.id, seqs: new Map([[h.caller.namespaceId + 1000, 0]]) });
    expect((await failure(h.feed.listChanges({ cursor: foreignNamespace }))).code).toBe(Code.InvalidArgument);
    expect((await failure(h.feed.listChanges({ cursor: mine, limit: -1 }))).code).toBe(Code.InvalidArgument);
    expect((await failure(h.feed.listChanges({ cursor: mine, prefix: "a\u0000b" }))).code).toBe(Code.InvalidArgument);
    expect((await failure(h.feed.listChanges({ cursor: mine, prefix: "p".repeat(4097) }))).code).toBe(Code.InvalidArgument);
  });

  it("answers CURSOR_RESET for a cursor past the end, and for one from before what the retention kept", async () => {
    const end = (await h.feed.getCursor({})).cursor;
    const seq = (await h.deps.db.selectFrom("namespaces").select("journal_seq").where("id", "=", h.caller.namespaceId).executeTakeFirstOrThrow()).journal_seq;
    const future = await failure(h.feed.listChanges({ cursor: cursorAt(h.caller.user.id, h.caller.namespaceId, seq + 1) }));
    expect(future).toMatchObject({ code: Code.FailedPrecondition, reason: "CURSOR_RESET" });

    const old = cursorAt(h.caller.user.id, h.caller.namespaceId, 1);
    await putEmpty(h, "after-trim.txt");
    // Everything committed so far is older than a retention of 1 s, seen from a day ahead.
    const removed = await trimJournal(h.deps.db, 1000, new Date(Date.now() + 86_400_000));
    expect(removed).toBe(seq + 1);
    const ns = await h.deps.db.selectFrom("namespaces").select(["journal_seq", "journal_trimmed_seq"]).where("id", "=", h.caller.namespaceId).executeTakeFirstOrThrow();
    expect(ns.journal_trimmed_seq).toBe(ns.journal_seq);
    expect(await failure(h.feed.listChanges({ cursor: old }))).toMatchObject({ code: Code.FailedPrecondition, reason: "CURSOR_RESET" });
    expect(await failure(h.feed.listChanges({ cursor: end }))).toMatchObject({ code: Code.FailedPrecondition, reason: "CURSOR_RESET" });
    // At the trim point nothing is missing; from the empty cursor, the oldest kept.
    const now = (await h.feed.getCursor({})).cursor;
    expect((await h.feed.listChanges({ cursor: now })).changes).toEqual([]);
    expect((await h.feed.listChanges({ cursor: "" })).changes).toEqual([]);
    await putEmpty(h, "after-trim-2.txt");
    expect((await h.feed.listChanges({ cursor: "" })).changes.map((c) => c.file?.path)).toEqual(["after-trim-2.txt"]);
    // A second sweep (another instance) finds nothing left.
    expect(await trimJournal(h.deps.db, 1000, new Date(Date.now() - 86_400_000))).toBe(0);
  });

  it("gives ListFiles a cursor from the first page's snapshot, repeated on every page, and replaying from it converges", async () => {
    for (let i = 0; i < 5; i++) await putEmpty(h, `list/${i}`);
    const first = await h.files.listFiles({ prefix: "list/", pageSize: 2 });
    expect(first.cursor).toBe((await h.feed.getCursor({})).cursor);
    await putEmpty(h, "list/9-late");
    const second = await h.files.listFiles({ prefix: "list/", pageSize: 2, pageToken: first.nextPageToken });
    expect(second.cursor).toBe(first.cursor);
    const later = await drain(h, first.cursor);
    expect(later.changes.map((c) => c.file?.path)).toEqual(["list/9-late"]);
    // Tokens from another user, or mangled, are refused.
    expect((await failure(h.files.listFiles({ pageToken: first.nextPageToken + "A" }))).code).toBe(Code.InvalidArgument);
    const forged = Buffer.concat([Buffer.from("list/1\0"), Buffer.from(cursorAt(h.caller.user.id + 1, h.caller.namespaceId, 1), "base64url")]).toString("base64url");
    expect((await failure(h.files.listFiles({ pageToken: forged }))).code).toBe(Code.InvalidArgument);
    // A page token of the old form (the path alone) still reads.
    const legacy = await h.files.listFiles({ prefix: "list/", pageToken: Buffer.from("list/1").toString("base64url") });
    expect(legacy.files[0]?.path).toBe("list/2");
    // A longest path still makes a token the server accepts back.
    const long = `list/l${Array.from({ length: 21 }, () => "l".repeat(200)).join("/")}`.slice(0, 4096);
    expect(Buffer.byteLength(long)).toBe(4096);
    await putEmpty(h, long);
    await putEmpty(h, `list/${"m".repeat(10)}`);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await h.files.listFiles({ prefix: "list/", pageSize: 1, pageToken });
      seen.push(...page.files.map((f) => f.path));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen.slice(-2)).toEqual([long, `list/${"m".repeat(10)}`]);
  });

  it("keeps ListFiles and its cursor consistent while writers commit: listing plus replay equals the final state", async () => {
    const writing = (async () => {
      for (let i = 0; i < 40; i++) {
        await putEmpty(h, `race/${i % 10}`);
        if (i % 3 === 0) await h.files.delete({ path: `race/${(i + 5) % 10}` }).catch(() => undefined);
      }
    })();
    const views = [];
    for (let i = 0; i < 8; i++) views.push(await h.files.listFiles({ prefix: "race/" }));
    await writing;
    const final = new Set((await h.files.listFiles({ prefix: "race/" })).files.map((f) => `${f.path}@${f.revision}`));
    for (const view of views) {
      const state = new Map(view.files.map((f) => [f.path, f.revision]));
      for (const c of (await drain(h, view.cursor, { prefix: "race/" })).changes) {
        if (c.op === ChangeOp.DELETE) state.delete(c.file!.path);
        else state.set(c.file!.path, c.file!.revision);
      }
      expect(new Set([...state].map(([p, r]) => `${p}@${r}`))).toEqual(final);
    }
  });
});
