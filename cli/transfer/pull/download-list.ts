import { Codec, ContentHashKind } from "../../../gen/drive/v1/types_pb.js";
import type { GetDownloadResponse } from "../../../gen/drive/v1/file_pb.js";
import { MAX_CHUNK_SIZE, MAX_CHUNKS_PER_PAGE } from "../../../shared/rules/chunking.js";
import { contentHash, HASH_LENGTH } from "../../../shared/rules/content-hash.js";
import { CliError } from "../../errors.js";
import type { DriveClient } from "../../rpc/drive-client.js";

/** One chunk of the version being pulled: where its plaintext goes, where its stored bytes sit. */
export interface RemoteChunk {
  index: number;
  /** Plaintext offset in the file and length. */
  offset: number;
  size: number;
  /** BLAKE3 of the plaintext. */
  hash: Uint8Array;
  /** Where the stored bytes sit in the object, and how they encode the plaintext. */
  storedOffset: number;
  storedSize: number;
  codec: Codec.NONE | Codec.ZSTD;
}

export type HashKind = "blake3" | "chunk-list";

export interface RemoteFile {
  path: string;
  revision: bigint;
  size: number;
  contentHash: Buffer;
  kind: HashKind;
  chunks: RemoteChunk[];
  /** The presigned GET URL of the whole object; "" for an empty file. */
  url: string;
}

/**
 * Fetches a version's whole chunk list, a GetDownload page (up to 8,192
 * chunks) at a time, pinned to the revision the first page served, and
 * checks that it describes one file: offsets are the running sum of sizes,
 * the sizes add up, stored ranges sit inside the object, and for an old
 * chunk-list hash that the list hashes to it. The server is trusted for the
 * list, the store for nothing: every byte is checked against these hashes
 * later. 48 bytes or so per chunk: a 50 GB file's list is a few MB.
 */
export async function listDownload(client: DriveClient, path: string, revision: number, signal: AbortSignal): Promise<RemoteFile> {
  const first = await client.files.getDownload({ path, revision: BigInt(revision), firstChunk: 0n }, { signal });
  const file = describe(path, first);
  const count = first.chunkCount === 0n && first.chunks.length > 0 ? first.chunks.length : Number(first.chunkCount);
  // Every chunk holds a byte at least; the chunking rules themselves are the server's to enforce.
  if (!Number.isSafeInteger(count) || count < 0 || count > file.size) throw wrongList(path, `chunk_count ${first.chunkCount} is impossible for ${file.size} bytes`);
  const layout = new Layout(path, file, first.storedSize === 0n ? file.size : Number(first.storedSize));
  layout.add(first, count);
  while (file.chunks.length < count) {
    const page = await client.files.getDownload({ path, revision: file.revision, firstChunk: BigInt(file.chunks.length) }, { signal });
    const again = describe(path, page);
    if (again.revision !== file.revision || again.size !== file.size || !again.contentHash.equals(file.contentHash)) {
      throw wrongList(path, "a later page of the chunk list describes another version");
    }
    if (page.chunks.length === 0) throw wrongList(path, `the chunk list ends after ${file.chunks.length} of ${count} chunks`);
    layout.add(page, count);
    if (page.url) file.url = page.url;
  }
  layout.finish();
  return file;
}

/** The version a response serves, before its chunks. */
function describe(path: string, dl: GetDownloadResponse): RemoteFile {
  const info = dl.file;
  const size = Number(info?.size ?? 0);
  const hash = Buffer.from(info?.contentHash ?? []);
  if (!Number.isSafeInteger(size) || size < 0) throw wrongList(path, `size ${info?.size} is not a byte count`);
  if (hash.length !== HASH_LENGTH) throw wrongList(path, `the content hash is ${hash.length} bytes, not ${HASH_LENGTH}`);
  // A server from before content-defined chunking sends no kind: its only one was the chunk list.
  const kind: HashKind = info?.contentHashKind === ContentHashKind.BLAKE3 ? "blake3" : "chunk-list";
  if (info && info.contentHashKind > ContentHashKind.CHUNK_LIST) throw wrongList(path, `unknown content hash kind ${info.contentHashKind}; upgrade drive`);
  return { path, revision: dl.revision, size, contentHash: hash, kind, chunks: [], url: dl.url };
}

/** The most stored bytes a zstd frame of `size` plaintext bytes can take (ZSTD_COMPRESSBOUND, plus a frame header's worth). */
export function zstdBound(size: number): number {
  return size + (size >>> 8) + (size < 128 * 1024 ? (128 * 1024 - size) >>> 11 : 0) + 32;
}

/** Accumulates pages into the file's chunk list, checking each chunk as it comes. */
class Layout {
  private offset = 0;

  constructor(
    private readonly path: string,
    private readonly file: RemoteFile,
    private readonly objectSize: number,
  ) {}

  add(page: GetDownloadResponse, count: number): void {
    if (page.chunks.length > MAX_CHUNKS_PER_PAGE && page.chunkCount !== 0n) throw wrongList(this.path, `a page of ${page.chunks.length} chunks`);
    // An older server sends every chunk in one page, with only size and hash set.
    const legacy = page.chunkCount === 0n;
    for (const c of page.chunks) {
      const index = this.file.chunks.length;
      if (index >= count) throw wrongList(this.path, `more chunks than chunk_count ${count}`);
      const size = Number(c.size);
      const bad = (why: string) => wrongList(this.path, `chunk ${index} ${why}`);
      if (!Number.isSafeInteger(size) || size <= 0) throw bad(`has size ${c.size}`);
      if (c.hash.length !== HASH_LENGTH) throw bad(`has a ${c.hash.length}-byte hash`);
      if (this.file.kind === "blake3" && size > MAX_CHUNK_SIZE) throw bad(`is ${size} bytes, over the ${MAX_CHUNK_SIZE}-byte chunk maximum`);
      const unset = legacy || (c.codec === Codec.UNSPECIFIED && c.storedSize === 0n && c.offset === 0n && c.storedOffset === 0n);
      const offset = unset ? this.offset : Number(c.offset);
      if (offset !== this.offset) throw bad(`starts at ${c.offset}, not at ${this.offset} where the chunk before it ends`);
      const codec = unset ? Codec.NONE : c.codec;
      const storedOffset = unset ? offset : Number(c.storedOffset);
      const storedSize = unset ? size : Number(c.storedSize);
      if (codec === Codec.NONE) {
        if (storedSize !== size) throw bad(`is stored raw in ${storedSize} bytes, not its ${size}`);
      } else if (codec === Codec.ZSTD) {
        if (!Number.isSafeInteger(storedSize) || storedSize < 1 || storedSize > zstdBound(size)) throw bad(`has an impossible stored size ${c.storedSize}`);
      } else {
        throw bad(`has unknown codec ${c.codec}; upgrade drive`);
      }
      if (!Number.isSafeInteger(storedOffset) || storedOffset < 0 || storedOffset + storedSize > this.objectSize) {
        throw bad(`is stored at ${c.storedOffset}+${storedSize}, outside the ${this.objectSize}-byte object`);
      }
      this.file.chunks.push({ index, offset, size, hash: c.hash, storedOffset, storedSize, codec });
      this.offset += size;
    }
  }

  finish(): void {
    if (this.offset !== this.file.size) throw wrongList(this.path, `the chunks add up to ${this.offset} bytes, not ${this.file.size}`);
    if (this.file.size > 0 && !this.file.url) throw wrongList(this.path, "no download URL");
    if (this.file.kind === "chunk-list" && !contentHash(this.file.chunks).equals(this.file.contentHash)) {
      throw new CliError("integrity", `${this.path}: the server's chunk list does not match the content hash`);
    }
  }
}

function wrongList(path: string, why: string): CliError {
  return new CliError("integrity", `${path}: the server's chunk list is inconsistent: ${why}`);
}
