import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import type { WatchChangesResponse } from "../../gen/drive/v1/feed_pb.js";
import { appendEntry, lockNamespace, type JournalEntry } from "../../server/journal/append-entry.js";
import { errorInfoOf } from "../../cli/errors.js";
import type { RpcHarness } from "./rpc-harness.js";
import { pushRpc } from "./rpc-push.js";

/** Code and reason of a failed call; fails the test when it succeeded. */
export async function failure(call: Promise<unknown> | (() => Promise<unknown>)): Promise<{ code: Code; reason: string; message: string }> {
  try {
    await (typeof call === "function" ? call() : call);
  } catch (err) {
    if (!(err instanceof ConnectError)) throw err;
    return { code: err.code, reason: ErrorReason[errorInfoOf(err)?.reason ?? 0] ?? "", message: err.rawMessage };
  }
  throw new Error("the call succeeded; it should have failed");
}

/** An empty file committed through CreateUpload (it commits at once): a real put in the journal. */
export const putEmpty = (h: RpcHarness, path: string) => pushRpc(h, path, Buffer.alloc(0));

/**
 * Journal entries written the way commits write them (appendEntry under the
 * namespace lock, in one transaction), for ops and volumes the RPCs on this
 * branch do not make quickly: moves, attribute changes, thousands of puts.
 * They name one real file row, which `anchor` creates.
 */
export async function appendEntries(h: RpcHarness, entries: Array<Partial<JournalEntry> & { path: string }>, anchor = "anchor.txt"): Promise<void> {
  const ns = h.caller.namespaceId;
  let file = await h.deps.db.selectFrom("files").select("id").where("namespace_id", "=", ns).where("path", "=", anchor).executeTakeFirst();
  if (!file) {
    await putEmpty(h, anchor);
    file = await h.deps.db.selectFrom("files").select("id").where("namespace_id", "=", ns).where("path", "=", anchor).executeTakeFirstOrThrow();
  }
  await h.deps.db.transaction().execute(async (tx) => {
    await lockNamespace(tx, ns);
    for (const e of entries) {
      await appendEntry(tx, { namespace_id: ns, op: "put", file_id: file.id, revision: 1, size: 0, content_hash: null, content_hash_kind: null, ...e });
    }
  });
}

/** Reads a WatchChanges stream into `into` until `until` says stop, then leaves it open or ends it with `stop`. */
export async function readUntil(
  stream: AsyncIterator<WatchChangesResponse>,
  until: (events: WatchChangesResponse[]) => boolean,
  into: WatchChangesResponse[] = [],
): Promise<WatchChangesResponse[]> {
  while (!until(into)) {
    const r = await stream.next();
    if (r.done) throw new Error(`the stream ended after ${into.length} events`);
    into.push(r.value);
  }
  return into;
}

export const changesOf = (events: WatchChangesResponse[]) => events.flatMap((e) => (e.event.case === "change" ? [e.event.value] : []));
export const caughtUp = (events: WatchChangesResponse[]) => events.some((e) => e.event.case === "heartbeat" && e.event.value.caughtUp);

/** Polls until `ok` holds (no fixed sleeps): 5 s, then fails. */
export async function until(ok: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
