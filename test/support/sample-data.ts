import { randomBytes } from "node:crypto";

/**
 * Text that compresses like a service log: repeated structure, a little
 * entropy per line (zstd level 1 stores it at roughly a tenth to a fifth).
 * Deterministic, so a test can make the same bytes twice.
 */
export function logText(size: number, seed = 0): Buffer {
  const parts: string[] = [];
  let n = 0;
  for (let i = seed; n < size; i++) {
    const line = `2026-12-02T01:${String(i % 60).padStart(2, "0")}:00.${String(i % 1000).padStart(3, "0")}Z INFO [worker-${i % 16}] GET /api/v1/files/${(i * 7919) % 100000} 200 ${(i * 31) % 5000}B ${(i % 97) / 10}ms\n`;
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join("")).subarray(0, size);
}

/**
 * Bytes that compress by about a third (zstd level 1 keeps ~0.6-0.7 of
 * them): 2 KiB of log text, then 2 KiB of random bytes, over and over.
 * Between "not worth it" and "halves it", where the push weighs its rates.
 */
export function halfCompressible(size: number, seed = 0): Buffer {
  const text = logText(size, seed);
  const out = Buffer.allocUnsafe(size);
  const noise = randomBytes(size);
  for (let at = 0; at < size; at += 4096) {
    text.copy(out, at, at, Math.min(at + 2048, size));
    if (at + 2048 < size) noise.copy(out, at + 2048, at + 2048, Math.min(at + 4096, size));
  }
  return out;
}
