import { InvalidArgumentError } from "commander";
import { checkRemotePath } from "../../shared/rules/remote-path.js";
import { CliError } from "../errors.js";

/** A remote path as the server wants it: no leading slash, NFC. */
export function remotePath(input: string): string {
  const path = input.replace(/^\/+/, "").normalize("NFC");
  const why = checkRemotePath(path);
  if (why) throw new CliError("usage", `remote path ${JSON.stringify(input)}: ${why}`);
  return path;
}

export function parseConcurrency(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError("must be a whole number from 1 to 64");
  return n;
}

const UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** "16M", "5MiB", "1G", "8388608". Binary units, as everywhere in drive. */
export function parseSize(value: string): number {
  const m = /^(\d+)\s*([KMG]?)(i?B)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError("use a size like 16M, 64MiB or 1G");
  return Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
}

/** A revision number: a whole number (0: the current one). */
export function parseRevision(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) ) throw new InvalidArgumentError("must be a revision number");
  return n;
}
