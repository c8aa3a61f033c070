import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { FileInfo } from "../../gen/drive/v1/types_pb.js";
import { ContentHashKind, EntryKind } from "../../gen/drive/v1/types_pb.js";
import { hex } from "../../shared/rules/content-hash.js";
import { printable } from "../ui/fit.js";

/**
 * How a content hash was computed, as --json and the listings name it:
 * "blake3" is what `b3sum` prints for the file; "chunk-list" is drive's
 * hash before content-defined chunking (a hash of the chunk list, which no
 * other tool computes). A live file from a server that predates kinds has
 * the chunk-list kind; a deletion and a folder have none.
 */
export function hashKindName(kind: ContentHashKind, hash: Uint8Array): "blake3" | "chunk-list" | null {
  if (hash.length === 0) return null;
  return kind === ContentHashKind.BLAKE3 ? "blake3" : "chunk-list";
}

export type KindName = "file" | "folder";

/** UNSPECIFIED reads as FILE: rows written before folders existed. */
export function kindName(f: Pick<FileInfo, "kind">): KindName {
  return f.kind === EntryKind.FOLDER ? "folder" : "file";
}

/**
 * One entry as --json prints it in ls and stat. type stays "file" for every
 * entry, folders included, so scripts that read type "file" lines keep
 * working; kind says what it is. mode is null and mtime null when the writer
 * did not say (a server or client from before folders).
 */
export function fileFields(f: FileInfo): Record<string, unknown> {
  return {
    type: "file",
    path: f.path,
    kind: kindName(f),
    size: f.size,
    revision: f.revision,
    modified_at: modifiedAt(f).toISOString(),
    mtime: f.mtime ? timestampDate(f.mtime).toISOString() : null,
    mode: f.mode ? f.mode & 0o7777 : null,
    content_hash: hex(f.contentHash),
    content_hash_kind: hashKindName(f.contentHashKind, f.contentHash),
  };
}

/** A folder that paths pass through but no entry records, as --json prints it in ls. */
export function implicitFolderFields(path: string): Record<string, unknown> {
  return { type: "file", path, kind: "folder", implicit: true, size: 0, revision: null, modified_at: null, mtime: null, mode: null, content_hash: "", content_hash_kind: null };
}

/** When the server committed this revision. */
export function modifiedAt(f: FileInfo): Date {
  return f.modifiedAt ? timestampDate(f.modifiedAt) : new Date(0);
}

/** The file's own mtime when its writer gave one, else when it was committed. */
export function displayTime(f: FileInfo): Date {
  return f.mtime ? timestampDate(f.mtime) : modifiedAt(f);
}

/** "2026-12-02 06:15:03 +0100": local time (TZ) with its offset, as ls --full-time shows. */
export function localTime(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? "-" : "+";
  const abs = Math.abs(off);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return (
    `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${sign}${p(Math.floor(abs / 60))}${p(abs % 60)}`
  );
}

/**
 * "-rwxr-xr-x" or "drwxr-xr-x", with setuid, setgid and sticky as ls shows
 * them; the nine bits are "?" when the writer did not give a mode.
 */
export function modeString(kind: KindName, mode: number): string {
  const type = kind === "folder" ? "d" : "-";
  if (!mode) return `${type}?????????`;
  const bit = (mask: number, ch: string) => (mode & mask ? ch : "-");
  const special = (exec: number, flag: number, set: string, unset: string) =>
    mode & flag ? (mode & exec ? set : unset) : mode & exec ? "x" : "-";
  return (
    type +
    bit(0o400, "r") + bit(0o200, "w") + special(0o100, 0o4000, "s", "S") +
    bit(0o040, "r") + bit(0o020, "w") + special(0o010, 0o2000, "s", "S") +
    bit(0o004, "r") + bit(0o002, "w") + special(0o001, 0o1000, "t", "T")
  );
}

/** ls -h: "512", "4.0K", "12K", "1.5G"; rounded up, as ls does, so a size never reads smaller than it is. */
export function humanSize(bytes: number | bigint): string {
  let n = Number(bytes);
  if (n < 1024) return String(n);
  const units = ["K", "M", "G", "T", "P", "E"];
  let i = -1;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  if (n < 10) {
    const up = Math.ceil(n * 10) / 10;
    return up < 10 ? `${up.toFixed(1)}${units[i]}` : `10${units[i]}`;
  }
  return `${Math.ceil(n)}${units[i]}`;
}

export interface ListingOptions {
  /** -l: mode, kind and the content hash too. */
  long: boolean;
  /** -h: human sizes. */
  human: boolean;
}

/**
 * One line of `drive ls`:
 *   "          4096  2026-12-02 06:15:03 +0100  r3     notes/todo.txt"
 * and with -l -h:
 *   "-rw-r--r--  file     4.0K  2026-12-02 06:15:03 +0100  r3     blake3     <hash>  notes/todo.txt"
 * A folder ends in "/"; an implicit one (no entry, paths pass through) has
 * no revision, time or mode.
 */
export function listingLine(f: FileInfo | { implicitFolder: string }, opts: ListingOptions): string {
  const sizeWidth = opts.human ? 6 : 14;
  if ("implicitFolder" in f) {
    const mode = opts.long ? `${modeString("folder", 0)}  ${"folder".padEnd(6)}  ` : "";
    const hash = opts.long ? `${"-".padEnd(10)} ${"".padEnd(64)}  ` : "";
    return `${mode}${"-".padStart(sizeWidth)}  ${"".padEnd(25)}  ${"".padEnd(6)} ${hash}${printable(f.implicitFolder)}/`;
  }
  const kind = kindName(f);
  const size = kind === "folder" ? "-" : opts.human ? humanSize(f.size) : String(f.size);
  const mode = opts.long ? `${modeString(kind, f.mode)}  ${kind.padEnd(6)}  ` : "";
  const hash = opts.long ? `${(hashKindName(f.contentHashKind, f.contentHash) ?? "-").padEnd(10)} ${hex(f.contentHash).padEnd(64)}  ` : "";
  const name = printable(kind === "folder" ? `${f.path}/` : f.path);
  return `${mode}${size.padStart(sizeWidth)}  ${localTime(displayTime(f))}  r${String(f.revision).padEnd(5)} ${hash}${name}`;
}
