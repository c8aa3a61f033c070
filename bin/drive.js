#!/usr/bin/env node
// Runs the compiled CLI from dist/ when it has been built (`npm run build`),
// and the TypeScript sources through tsx otherwise, so a fresh clone works
// before its first build.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

// libuv runs file system calls on 4 threads by default, and a small file's
// fdatasync costs ~5 ms on an ordinary disk: 4 threads cap the local store,
// and a pull of many small files, near 700 files/s. The pool is sized on its
// first use, which is later than this line.
process.env.UV_THREADPOOL_SIZE ??= "16";

const root = fileURLToPath(new URL("..", import.meta.url));
const built = `${root}dist/cli/main.js`;
if (existsSync(built) && !process.env.DRIVE_FROM_SOURCE) {
  await import(pathToFileURL(built).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(`${root}cli/main.ts`).href);
}
