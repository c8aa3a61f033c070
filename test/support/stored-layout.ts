import { Blake3Hasher } from "@napi-rs/blake-hash";
import { Codec, type Chunk } from "../../gen/drive/v1/types_pb.js";
import { connectDrive } from "../../cli/rpc/drive-client.js";
import { decompressFrames } from "../../cli/transfer/compress/zstd.js";

/** A version as stored, read around the CLI's pull: its chunk layout and its plaintext, every chunk checked. */
export interface StoredVersion {
  size: number;
  storedSize: number;
  chunks: Chunk[];
  /** The plaintext, rebuilt from the stored ranges. */
  data: Buffer;
}

/**
 * Reads a version straight from GetDownload and its presigned URL:
 * the whole stored object in one GET, then each chunk's stored range
 * decoded by its codec and checked against its BLAKE3, and the whole
 * against the content hash. For tests of what a push stored, apart from
 * whatever the pull does.
 */
export async function readStored(server: string, token: string, path: string): Promise<StoredVersion> {
  const client = connectDrive({ server, token });
  try {
    const chunks: Chunk[] = [];
    let first = await client.files.getDownload({ path });
    const { url } = first;
    const count = Number(first.chunkCount);
    while (chunks.length < count) {
      const page = chunks.length === 0 ? first : await client.files.getDownload({ path, firstChunk: BigInt(chunks.length) });
      if (!page.chunks.length) throw new Error(`GetDownload gave no chunks from ${chunks.length} of ${count}`);
      chunks.push(...page.chunks);
      first = page;
    }
    const storedSize = Number(first.storedSize);
    const object = url ? Buffer.from(await (await fetch(url)).arrayBuffer()) : Buffer.alloc(0);
    if (object.length !== storedSize) throw new Error(`the stored object is ${object.length} bytes, GetDownload says ${storedSize}`);
    const pieces: Buffer[] = [];
    for (const c of chunks) {
      const stored = object.subarray(Number(c.storedOffset), Number(c.storedOffset) + Number(c.storedSize));
      const plain = c.codec === Codec.ZSTD ? await decompressFrames(stored) : stored;
      const h = new Blake3Hasher();
      h.update(plain);
      if (plain.length !== Number(c.size) || !h.digestBuffer().equals(Buffer.from(c.hash))) throw new Error(`chunk at ${c.offset} does not match its hash`);
      pieces.push(plain);
    }
    const data = Buffer.concat(pieces);
    const whole = new Blake3Hasher();
    whole.update(data);
    const file = first.file!;
    if (!whole.digestBuffer().equals(Buffer.from(file.contentHash))) throw new Error("the version does not match its content hash");
    return { size: Number(file.size), storedSize, chunks, data };
  } finally {
    client.close();
  }
}
