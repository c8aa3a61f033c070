/** The random changes and faults of the convergence test (converge.test.ts). */
import { appendFile, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Fault } from "../support/http-faults.js";
import { snapshot, type Rng, type SyncClient } from "./harness.js";

/** Few names, so clients collide on paths; case pairs for the case-only renames. */
const NAMES = ["a.txt", "b.txt", "notes.md", "Readme", "data.bin", "x", "photo.JPG", "c.txt"];
const FOLDERS = ["docs", "src", "deep", "Media", "tmp"];

/** Everything under root, split: files and folders (relative paths), the marker left out. */
async function entries(root: string): Promise<{ files: string[]; folders: string[] }> {
  const snap = await snapshot(root);
  const files: string[] = [];
  const folders: string[] = [];
  for (const [p, e] of snap) (e.kind === "file" ? files : folders).push(p);
  return { files, folders };
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/** A name with the case of its letters flipped: "a.txt" → "A.TXT". */
const flipCase = (name: string) => [...name].map((ch) => (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase())).join("");

/** One random change to a client's tree; returns what it did for the log, or null when it found nothing to do. */
export async function randomChange(r: Rng, c: SyncClient, tag: string): Promise<string | null> {
  const { files, folders } = await entries(c.root);
  const abs = (p: string) => join(c.root, p);
  const inFolder = (f: string, n: string) => (f ? `${f}/${n}` : n);
  const kind = r.pick(["create", "create", "edit", "edit", "append", "delete", "rename", "move", "mkdir", "case", "rmdir"] as const);
  switch (kind) {
    case "create": {
      const p = inFolder(r.chance(0.5) ? "" : r.pick(["", ...folders]), r.chance(0.7) ? r.pick(NAMES) : `n${r.int(0, 999)}.txt`);
      if (await exists(abs(p))) return null;
      await mkdir(dirname(abs(p)), { recursive: true });
      await writeFile(abs(p), r.text(`${tag} new ${p}`));
      return `create ${p}`;
    }
    case "edit": {
      if (!files.length) return null;
      const p = r.pick(files);
      await writeFile(abs(p), r.text(`${tag} edit ${p}`));
      return `edit ${p}`;
    }
    case "append": {
      if (!files.length) return null;
      const p = r.pick(files);
      await appendFile(abs(p), r.text(`${tag} append`));
      return `append ${p}`;
    }
    case "delete": {
      if (!files.length) return null;
      const p = r.pick(files);
      await rm(abs(p));
      return `delete ${p}`;
    }
    case "rmdir": {
      if (!folders.length || !r.chance(0.3)) return null;
      const p = r.pick(folders);
      await rm(abs(p), { recursive: true });
      return `rm -rf ${p}`;
    }
    case "rename": {
      if (!files.length) return null;
      const p = r.pick(files);
      const to = inFolder(dirname(p) === "." ? "" : dirname(p), `r${r.int(0, 99)}-${r.pick(NAMES)}`);
      if (await exists(abs(to))) return null;
      await rename(abs(p), abs(to));
      return `rename ${p} -> ${to}`;
    }
    case "case": {
      const all = [...files, ...folders];
      if (!all.length) return null;
      const p = r.pick(all);
      const slash = p.lastIndexOf("/");
      const to = p.slice(0, slash + 1) + flipCase(p.slice(slash + 1));
      if (to === p || (await exists(abs(to)))) return null;
      await rename(abs(p), abs(to));
      return `case-only rename ${p} -> ${to}`;
    }
    case "move": {
      if (!folders.length) return null;
      const p = r.pick(folders);
      const into = r.pick(["", ...folders.filter((f) => f !== p && !f.startsWith(`${p}/`))]);
      const to = inFolder(into, r.chance(0.5) ? p.slice(p.lastIndexOf("/") + 1) : r.pick(FOLDERS));
      if (to === p || to.startsWith(`${p}/`) || (await exists(abs(to)))) return null;
      await mkdir(dirname(abs(to)), { recursive: true });
      await rename(abs(p), abs(to));
      return `move folder ${p} -> ${to}`;
    }
    case "mkdir": {
      const depth = r.int(1, 3);
      const p = Array.from({ length: depth }, () => r.pick(FOLDERS)).join("/");
      // A path through an existing file cannot be made.
      if (files.some((f) => p === f || p.startsWith(`${f}/`))) return null;
      await mkdir(abs(p), { recursive: true });
      if (r.chance(0.5)) {
        const f = `${p}/${r.pick(NAMES)}`;
        if (!(await exists(abs(f)))) await writeFile(abs(f), r.text(`${tag} mkdir`));
        return `mkdir -p ${p} + ${f}`;
      }
      return `mkdir -p ${p}`;
    }
  }
}

/** A fault on this client's link for one sync run, placed by request count. */
export function randomFault(r: Rng): { what: string; method: string; fault: Fault } {
  return r.pick([
    { what: "a part PUT answered 503", method: "PUT", fault: { kind: "respond", status: 503, body: "<Error><Code>SlowDown</Code></Error>" } as Fault },
    { what: "a part PUT reset mid-body", method: "PUT", fault: { kind: "reset", side: "request", afterBytes: 10 } as Fault },
    { what: "a PUT URL answered as expired", method: "PUT", fault: { kind: "respond", status: 403, body: '{"code":"AccessDenied","message":"Request has expired"}' } as Fault },
    { what: "a download URL answered as expired", method: "GET", fault: { kind: "respond", status: 403, body: '{"code":"AccessDenied","message":"Request has expired"}' } as Fault },
    { what: "a download stream cut short", method: "GET", fault: { kind: "truncate", afterBytes: 5 } as Fault },
  ]);
}

