import { parentPort, workerData } from "node:worker_threads";
import { FastCdc } from "./fastcdc.js";

/**
 * The worker side of CutThread (cut-thread.ts): runs one FastCdc over the
 * blocks of a stream, in order, each a slice of the shared ring buffer it
 * was started with, and answers each with the cuts found in it. Messages:
 * {offset, length} -> {cuts}; {finish: true} -> {end}. It only reads the
 * ring; the thread that sent a block does not reuse its slot before the
 * answer comes.
 */
const port = parentPort;
if (!port) throw new Error("cut-worker runs as a worker thread");
const ring = (workerData as { ring: SharedArrayBuffer }).ring;
const cdc = new FastCdc();
port.on("message", (msg: { offset: number; length: number } | { finish: true }) => {
  if ("finish" in msg) port.postMessage({ end: cdc.finish() });
  else port.postMessage({ cuts: cdc.update(new Uint8Array(ring, msg.offset, msg.length)) });
});
