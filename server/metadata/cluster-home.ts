import { createHash, randomUUID } from "node:crypto";
import { chmod, lstat, mkdir, readdir, readFile, readlink, rename, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { readDataDirId, writeDataDirId } from "../data-dir.js";
import type { Logger } from "../log.js";

/** Where clusters of data folders under a private parent live, when running as root. */
export const OUTSIDE_ROOT = "/var/lib/drive";
/** In each cluster's folder: whose it is. */
const MARKER = "drive-data-dir.json";

interface Marker {
  /** The data folder's id (data-dir.id). */
  id: string;
  /** Where that folder was when the cluster was made: for messages only, never to decide. */
  data_dir: string;
  created_at: string;
}

export interface ClusterHome {
  /** The cluster's folder (PGDATA). */
  dir: string;
  /** The data folder's id. */
  folderId: string;
  /** True when the cluster lives outside the data folder, behind a symlink. */
  outside: boolean;
}

/**
 * Finds the embedded PostgreSQL's cluster for a data folder, or where to
 * make one. The cluster is tied to its folder by the folder's id, stored in
 * both (data-dir.id, and drive-data-dir.json in the cluster): a cluster that
 * is not the folder's own is never used. It is left where it is, or its
 * link moved aside, and the log says what was found and where; nothing is
 * deleted.
 *
 * PostgreSQL refuses to run as root, so under root it runs as "postgres",
 * which must be able to walk to its folder. When a parent of the data
 * folder is private (a checkout under /root, say), the cluster lives in
 * /var/lib/drive/<folder id>/postgres, with a symlink in the data folder.
 */
export async function findClusterHome(dataDir: string, asRoot: boolean, log: Logger): Promise<ClusterHome> {
  let folderId = await readDataDirId(dataDir);
  const ensureId = async () => {
    if (!folderId) {
      folderId = randomUUID();
      await writeDataDirId(dataDir, folderId);
    }
    return folderId;
  };
  const inside = join(dataDir, "postgres");
  if (asRoot) await chmod(dataDir, 0o711);
  let existing = await lstat(inside).catch(() => null);

  if (existing?.isSymbolicLink()) {
    const target = await readlink(inside);
    const owner = await readMarker(target);
    // A cluster at the folder's own id-named place with no marker yet: a first initdb cut short.
    const ownPlace = folderId !== null && !owner && target === join(OUTSIDE_ROOT, folderId, "postgres");
    if ((owner && owner.id === folderId) || ownPlace) return { dir: target, folderId: folderId!, outside: true };
    if (!owner && !folderId && (await exists(join(target, "PG_VERSION")))) {
      // Made by a drive server from before ids: the link, inside this folder, is its record.
      const id = await ensureId();
      await claimCluster(target, id, dataDir);
      log.info("embedded PostgreSQL cluster tied to its data folder by id", { dir: target, data_dir_id: id });
      return { dir: target, folderId: id, outside: true };
    }
    const aside = `${inside}.not-ours-${Date.now()}`;
    await rename(inside, aside);
    log.warn("the data folder's PostgreSQL link points at a cluster that is not this folder's own: not using it, and making a new one", {
      cluster: target,
      cluster_made_for: owner ? `${owner.data_dir} (id ${owner.id})` : "unknown (no drive-data-dir.json)",
      data_dir_id: folderId,
      link_moved_to: aside,
    });
    existing = null;
  }

  if (existing?.isDirectory()) {
    const owner = await readMarker(inside);
    // Inside the folder, a cluster with no marker is the folder's own (made before ids, or half made).
    if (!owner) return { dir: inside, folderId: await ensureId(), outside: false };
    if (!folderId) {
      folderId = owner.id; // the folder lost its id file; the cluster inside it keeps it
      await writeDataDirId(dataDir, folderId);
    }
    if (owner.id === folderId) return { dir: inside, folderId, outside: false };
    const aside = `${inside}.not-ours-${Date.now()}`;
    await rename(inside, aside);
    log.warn("the data folder holds a PostgreSQL cluster that is not its own: moved it aside, and making a new one", {
      moved_to: aside,
      cluster_made_for: `${owner.data_dir} (id ${owner.id})`,
      data_dir_id: folderId,
    });
  }

  const id = await ensureId();
  if (!asRoot || (await searchableByOthers(dirname(resolve(dataDir))))) return { dir: inside, folderId: id, outside: false };

  const outside = join(OUTSIDE_ROOT, id, "postgres");
  await reportLeftovers(dataDir, id, log);
  await mkdir(dirname(outside), { recursive: true, mode: 0o711 });
  await chmod(OUTSIDE_ROOT, 0o711);
  await chmod(dirname(outside), 0o711);
  await symlink(outside, inside);
  log.info("a parent of the data folder is private; PostgreSQL's files live outside it", { dir: outside, link: inside });
  return { dir: outside, folderId: id, outside: true };
}

/** Marks a cluster as the data folder's own; done once it has been initialised (initdb wants an empty folder). */
export async function claimCluster(dir: string, folderId: string, dataDir: string): Promise<void> {
  const current = await readMarker(dir);
  if (current?.id === folderId) return;
  const marker: Marker = { id: folderId, data_dir: resolve(dataDir), created_at: new Date().toISOString() };
  await writeFile(join(dir, MARKER), JSON.stringify(marker) + "\n", { mode: 0o644 });
}

async function readMarker(dir: string): Promise<Marker | null> {
  try {
    const m = JSON.parse(await readFile(join(dir, MARKER), "utf8")) as Partial<Marker>;
    return typeof m.id === "string" ? { id: m.id, data_dir: String(m.data_dir ?? ""), created_at: String(m.created_at ?? "") } : null;
  } catch {
    return null;
  }
}

/**
 * Clusters in /var/lib/drive made for an earlier folder at this path (one
 * deleted to start over): not this folder's, so never used, but said, so
 * that the user knows where that data went and can delete it.
 */
async function reportLeftovers(dataDir: string, folderId: string, log: Logger): Promise<void> {
  const path = resolve(dataDir);
  // Servers before ids named the folder by a hash of the data folder's path.
  const legacyName = createHash("sha256").update(path).digest("hex").slice(0, 16);
  for (const name of await readdir(OUTSIDE_ROOT).catch(() => [] as string[])) {
    if (name === folderId) continue;
    const cluster = join(OUTSIDE_ROOT, name, "postgres");
    const owner = await readMarker(cluster);
    if ((owner && owner.data_dir === path) || (!owner && name === legacyName && (await exists(cluster)))) {
      log.warn("found a PostgreSQL cluster made for an earlier data folder at this path; it is not this folder's own and is not used (delete it if its data is no longer needed)", {
        cluster,
        made_for: owner ? `id ${owner.id}, ${owner.created_at}` : "a drive server from before data folder ids",
        data_dir_id: folderId,
      });
    }
  }
}

/** Whether every folder from / down to `dir` lets other users through. */
async function searchableByOthers(dir: string): Promise<boolean> {
  for (let d = dir; ; d = dirname(d)) {
    if (((await stat(d)).mode & 0o001) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

const exists = (p: string) => stat(p).then(() => true, () => false);
