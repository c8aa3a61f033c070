// Fails when gen/ differs from what `npm run gen` makes from proto/: generated
// code is never edited by hand, and a proto change must ship its code.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), "drive-gen-"));
const buf = join(root, "node_modules", ".bin", "buf");
try {
  execFileSync(buf, ["lint"], { cwd: root, stdio: "inherit" });
  execFileSync(buf, ["generate", "--output", out], { cwd: root, stdio: "inherit" });
  const list = (dir) =>
    readdirSync(dir).flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? list(p) : [p];
    });
  const fresh = new Map(list(join(out, "gen")).map((p) => [relative(join(out, "gen"), p), readFileSync(p, "utf8")]));
  const committed = new Map(list(join(root, "gen")).map((p) => [relative(join(root, "gen"), p), readFileSync(p, "utf8")]));
  const stale = [...new Set([...fresh.keys(), ...committed.keys()])].filter((k) => fresh.get(k) !== committed.get(k));
  if (stale.length) {
    console.error(`gen/ is stale; run npm run gen and commit the result:\n  ${stale.join("\n  ")}`);
    process.exit(1);
  }
  console.log("gen/ is fresh");
} finally {
  rmSync(out, { recursive: true, force: true });
}
