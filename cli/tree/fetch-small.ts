import { Blake3Hasher } from "@napi-rs/blake-hash";
import type { GetDownloadResponse } from "../../gen/drive/v1/file_pb.js";
import { Codec, ContentHashKind } from "../../gen/drive/v1/types_pb.js";
import { contentHash, HASH_LENGTH } from "../../shared/rules/content-hash.js";
import { CliError } from "../errors.js";
import { getStoredRange, type Agents } from "../transfer/part-http.js";
import { decodeChunk } from "../transfer/pull/decode-chunk.js";
import { zstdBound, type RemoteChunk } from "../transfer/pull/download-list.js";
import { sendWithRetry } from "../transfer/transfer-options.js";
import type { TransferListener } from "../transfer/events.js";

/** A small file fetched whole and verified: the plaintext, and which hash definition it was checked by. */
export interface FetchedSmall {
  bytes: Buffer;
  hashKind: 1 | 2;
}

/**
 * Fetches a small file's whole stored object with one GET into memory and
 * verifies it before anything is written: each chunk (decoded if stored
 * compressed) must hash to its BLAKE3, and the file to its content hash.
 * The store and the chunk list are both checked: a chunk stored outside the
 * object, sizes that do not add up, or a wrong byte all fail here.
 * Returns null when the list does not fit in one page (the caller then
 * pulls the file the large way).
 */
export async function fetchSmall(
  dl: GetDownloadResponse,
  path: string,
  ctx: { agents: Agents; signal: AbortSignal; partAttempts: number },
  emit: TransferListener,
): Promise<FetchedSmall | null> {
  const info = dl.file;
  if (!info) throw wrong(path, "no file in the answer");
  const size = Number(info.size);
  const hash = Buffer.from(info.contentHash);
  if (hash.length !== HASH_LENGTH) throw wrong(path, `a ${hash.length}-byte content hash`);
  const kind: 1 | 2 = info.contentHashKind === ContentHashKind.CHUNK_LIST ? 2 : 1;
  if (Number(dl.chunkCount) !== dl.chunks.length) return null;
  const objectSize = dl.storedSize === 0n ? size : Number(dl.storedSize);
  const chunks: RemoteChunk[] = [];
  let offset = 0;
  for (const [index, c] of dl.chunks.entries()) {
    const csize = Number(c.size);
    const storedOffset = Number(c.storedOffset);
    const storedSize = Number(c.storedSize);
    const bad = (why: string) => wrong(path, `chunk ${index} ${why}`);
    if (!(csize > 0) || c.hash.length !== HASH_LENGTH || Number(c.offset) !== offset) throw bad("does not follow the one before it");
    if (c.codec === Codec.NONE ? storedSize !== csize : c.codec !== Codec.ZSTD || storedSize < 1 || storedSize > zstdBound(csize)) throw bad(`has an impossible stored form (codec ${c.codec}, ${storedSize} bytes)`);
    if (storedOffset < 0 || storedOffset + storedSize > objectSize) throw bad("is stored outside the object");
    chunks.push({ index, offset, size: csize, hash: c.hash, storedOffset, storedSize, codec: c.codec as Codec.NONE | Codec.ZSTD });
    offset += csize;
  }
  if (offset !== size) throw wrong(path, `the chunks add up to ${offset} bytes, not ${size}`);
  if (size > 0 && !dl.url) throw wrong(path, "no download URL");

  const stored = Buffer.allocUnsafe(objectSize);
  emit({ type: "part_start", partNumber: 1, size });
  if (objectSize > 0) {
    await sendWithRetry({ concurrency: 1, partAttempts: ctx.partAttempts, signal: ctx.signal }, 1, emit, ctx.signal, (onBytes) =>
      getStoredRange({ url: dl.url, headers: {}, offset: 0, size: objectSize, into: stored, agents: ctx.agents, signal: ctx.signal, onBytes: (n) => onBytes(n) }),
    );
  }
  const plain: Buffer[] = [];
  const whole = new Blake3Hasher();
  for (const c of chunks) {
    const bytes = await decodeChunk(c, stored.subarray(c.storedOffset, c.storedOffset + c.storedSize));
    const h = new Blake3Hasher();
    h.update(bytes);
    if (!h.digestBuffer().equals(Buffer.from(c.hash))) throw new CliError("integrity", `${path}: chunk ${c.index} does not match its BLAKE3 hash; the store's copy is damaged or it lied; nothing was written`);
    whole.update(bytes);
    plain.push(bytes);
  }
  const ok = kind === 1 ? whole.digestBuffer().equals(hash) : contentHash(chunks).equals(hash);
  if (!ok) throw new CliError("integrity", `${path}: every chunk verified, but the file does not match its content hash; the server's chunk list is wrong; nothing was written`);
  emit({ type: "part_done", partNumber: 1, size, wireBytes: objectSize });
  return { bytes: plain.length === 1 ? plain[0]! : Buffer.concat(plain, size), hashKind: kind };
}

function wrong(path: string, why: string): CliError {
  return new CliError("integrity", `${path}: the server's chunk list is inconsistent: ${why}`);
}
