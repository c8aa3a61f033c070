import { randomBytes } from "node:crypto";
import { lstat, open, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { CliError } from "../errors.js";
import { MARKER_NAME, type CheckRoots, type MarkerContent, type SyncHalt } from "./types.js";

/**
 * The guard of a local root (types.ts, CheckRoots): a root that synced
 * once must still be the same folder, or a sync would read an unmounted
 * disk or a folder recreated empty as "everything deleted" and delete it
 * all on the server. Same folder: it exists, is on the device recorded
 * ("root_dev") and holds the marker with the state's id ("marker").
 */
export const checkRoots: CheckRoots = async (state, key, force) => {
  const root = key.localRoot;
  const st = await stat(root, { bigint: true }).catch(() => null);
  if (!st || !st.isDirectory()) {
    return halt("root_missing", `${root}: the local folder of this sync is ${st ? "not a folder" : "gone"}; is it mounted? Nothing was changed`);
  }
  if (state.synced.size === 0 || force) {
    const id = randomBytes(16).toString("hex");
    await writeMarker(root, { server: key.server, remote: key.remoteRoot, id });
    await state.setValue("marker", id);
    await state.setValue("root_dev", String(st.dev));
    return null;
  }
  const dev = state.getValue("root_dev");
  if (dev !== undefined && dev !== String(st.dev)) {
    return halt("device_changed", `${root} is on another device than when it last synced; is the right disk mounted there? Nothing was changed; run with --force once if you moved it on purpose`);
  }
  const marker = await readMarker(root);
  if (!marker || marker.id !== state.getValue("marker")) {
    const what = marker ? "holds the marker of another sync" : `has lost its ${MARKER_NAME} marker`;
    return halt("marker_missing", `${root} ${what}: it may not be the folder that synced (an unmounted disk, a folder made again); is it mounted? Nothing was changed; run with --force once if you moved it on purpose`);
  }
  return null;
};

/** The marker of a root, or null when it has none (or none that parses). */
export async function readMarker(root: string): Promise<MarkerContent | null> {
  const file = join(root, MARKER_NAME);
  const st = await lstat(file).catch(() => null);
  if (!st?.isFile()) return null;
  try {
    const m = JSON.parse(await readFile(file, "utf8")) as Partial<MarkerContent>;
    if (typeof m.server !== "string" || typeof m.remote !== "string" || typeof m.id !== "string" || !m.id) return null;
    return { server: m.server, remote: m.remote, id: m.id };
  } catch {
    return null;
  }
}

/** Written to MARKER_NAME + ".tmp-…" and renamed over it (scan-local.ts leaves both out): a crash leaves the old marker or the new. */
async function writeMarker(root: string, m: MarkerContent): Promise<void> {
  const file = join(root, MARKER_NAME);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, "w", 0o644);
    try {
      await fh.writeFile(`${JSON.stringify(m)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new CliError("internal", `${file}: cannot write the sync marker: ${(err as Error).message}`, { cause: err });
  }
  const dir = await open(root, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

function halt(reason: SyncHalt["reason"], message: string): SyncHalt {
  return { reason, message };
}
