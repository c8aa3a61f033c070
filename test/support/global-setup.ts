import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Compiles dist/ so end-to-end tests run the same binary users do. */
export default function setup(): void {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
}
