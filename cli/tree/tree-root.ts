import { realpath, stat } from "node:fs/promises";
import { TreeRefused } from "./types.js";

/** The local root, resolved (realpath), or TreeRefused when it is missing or not a folder. */
export async function checkRoot(local: string): Promise<string> {
  const st = await stat(local).catch(() => null);
  if (!st) throw new TreeRefused(`${local}: no such folder`, "missing_root");
  if (!st.isDirectory()) throw new TreeRefused(`${local} is not a folder`, "not_a_folder");
  return realpath(local);
}
