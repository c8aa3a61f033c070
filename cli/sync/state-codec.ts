import { createHash } from "node:crypto";
import type { LocalStat, NodeKind, RemoteNode, SyncedNode } from "./types.js";

/**
 * How state-store.ts keeps nodes in LMDB: a path's UTF-8 bytes as its key,
 * or, for a path past KEY_BYTES (LMDB caps keys at 1978 bytes, a path may
 * have 4096), a 0 byte and a hash of it, with the path in the value. The
 * trees live in memory, so keys never need an order. Values are msgpack
 * tuples (lmdb's default encoding); bigints stay exact.
 */
const KEY_BYTES = 1900;

export function keyOf(path: string): Buffer {
  if (!isLong(path)) return Buffer.from(path, "utf8");
  return Buffer.concat([Buffer.of(0), createHash("sha256").update(path).digest()]);
}

function isLong(path: string): boolean {
  return path.length * 3 > KEY_BYTES && Buffer.byteLength(path) > KEY_BYTES;
}

type StatTuple = [dev: bigint, ino: bigint, size: number, mtimeNs: bigint, ctimeNs: bigint, mode: number, recordedNs: bigint];
export type NodeTuple = [longPath: string | null, id: string, kind: 0 | 1, hash: string, size: number, mode: number, mtimeUs: number, extra: StatTuple | number | null];

export function encodeSynced(path: string, n: SyncedNode): NodeTuple {
  const s = n.stat;
  return [...head(path, n), s ? [s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs, s.mode, s.recordedNs] : null];
}

export function encodeRemote(path: string, n: RemoteNode): NodeTuple {
  return [...head(path, n), n.revision];
}

function head(path: string, n: SyncedNode): [string | null, string, 0 | 1, string, number, number, number] {
  return [isLong(path) ? path : null, n.id, n.kind === "folder" ? 1 : 0, n.hash, n.size, n.mode, n.mtimeUs];
}

/** The path and node of a stored row; throws on a row that is not one (a corrupt state). */
export function decodeSynced(key: Buffer, v: NodeTuple): [string, SyncedNode] {
  const [path, node] = decodeHead(key, v);
  const s = v[7];
  if (s === null) return [path, node];
  if (!Array.isArray(s) || s.length !== 7) throw new Error(`bad stat for ${JSON.stringify(path)}`);
  const stat: LocalStat = { dev: BigInt(s[0]), ino: BigInt(s[1]), size: s[2], mtimeNs: BigInt(s[3]), ctimeNs: BigInt(s[4]), mode: s[5], recordedNs: BigInt(s[6]) };
  return [path, { ...node, stat }];
}

export function decodeRemote(key: Buffer, v: NodeTuple): [string, RemoteNode] {
  const [path, node] = decodeHead(key, v);
  if (typeof v[7] !== "number") throw new Error(`bad revision for ${JSON.stringify(path)}`);
  return [path, { ...node, revision: v[7] }];
}

function decodeHead(key: Buffer, v: NodeTuple): [string, SyncedNode] {
  if (!Array.isArray(v) || v.length !== 8 || typeof v[1] !== "string" || typeof v[3] !== "string") throw new Error("a row that is not a node");
  const path = v[0] ?? key.toString("utf8");
  const kind: NodeKind = v[2] === 1 ? "folder" : "file";
  return [path, { id: v[1], kind, hash: v[3], size: v[4], mode: v[5], mtimeUs: v[6] }];
}
