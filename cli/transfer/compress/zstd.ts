import { createRequire } from "node:module";

/**
 * zstd through @mongodb-js/zstd, pinned at 1.2.2: Node 20's node:zlib has
 * no zstd (that came in 22.15), and this package ships prebuilt per-platform
 * binaries that npm installs without running scripts (7.x needs
 * prebuild-install and Node >= 20.19). Each call runs on the libuv thread
 * pool, so several calls at once use several cores.
 *
 * Its index.js drops the level argument (every call would be level 3), so
 * this goes to the native binding it wraps, which takes one.
 *
 * Measured on this machine (2 shared cores, 1 MiB calls; see the README's
 * compression note): level 1 on text logs ~330 MB/s one call at a time,
 * ~600-880 MB/s with many in flight, ratio ~0.12-0.29 by the log's entropy;
 * random data 2 GB/s at ratio 1.0; decompression ~1.4-1.6 GB/s.
 */
interface Binding {
  compress(data: Buffer, level?: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

let loaded: Binding | null = null;
let loadError: Error | null = null;

/** Loaded on first use: a command that never compresses (ls, rm, a pull of raw chunks) never loads the native module. */
function binding(): Binding {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)("@mongodb-js/zstd/bindings.js") as Binding;
    return loaded;
  } catch (err) {
    loadError ??= err as Error;
    throw err;
  }
}

/**
 * Whether the codec loads here: a platform without one of the package's
 * prebuilt binaries has none, and a push then sends everything raw, as it
 * did before compression, rather than fail.
 */
export function zstdAvailable(): boolean {
  if (loaded) return true;
  if (loadError) return false;
  try {
    binding();
    return true;
  } catch {
    return false;
  }
}

/**
 * The level parts are stored with. Level 1 is zstd's fastest standard
 * level: on logs it compresses within a few percent of level 3 (measured
 * here: 0.286 vs 0.299, level 3 no better) at 1.5-2.5x the speed, and the
 * policy compresses only when that speed keeps up with the wire.
 */
export const ZSTD_LEVEL = 1;

/** One zstd frame (RFC 8878) holding `data`. */
export async function compressFrame(data: Buffer, level = ZSTD_LEVEL): Promise<Buffer> {
  try {
    return await binding().compress(data, level);
  } catch (err) {
    throw new Error(`zstd: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The content of one or more zstd frames, back to back. The frames this
 * codec writes carry no content size, so a decompressor cannot bound its
 * output from the header: a pull must check the result's length against
 * the chunk's declared size (and a hostile store can still make it
 * allocate: see the report on the pull side).
 */
export async function decompressFrames(data: Buffer): Promise<Buffer> {
  try {
    return await binding().decompress(data);
  } catch (err) {
    throw new Error(`zstd: ${(err as Error).message}`, { cause: err });
  }
}
