#!/usr/bin/env node
// Runs the compiled CLI from dist/ when it has been built (`npm run build`),
// and the TypeScript sources through tsx otherwise, so a fresh clone works
// before its first build.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const built = `${root}dist/cli/main.js`;
if (existsSync(built) && !process.env.DRIVE_FROM_SOURCE) {
  await import(pathToFileURL(built).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(`${root}cli/main.ts`).href);
}
