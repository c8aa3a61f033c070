import { randomBytes } from "node:crypto";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * How the store answers one ranged GET. "honest" and "chunked" carry the
 * right bytes ("chunked" switches the client from its raw-socket GETs to
 * node:http); every other one lies.
 */
export type Answer =
  | "honest"
  | "chunked"
  /** Content-Length and body 1,000 bytes longer than the range. */
  | "extra"
  /** The case: chunked, the range plus 1,000 bytes, properly ended. */
  | "extra-chunked"
  /** The same, sent once a GET of another range has been answered whole: that chunk is on disk then, and the extra bytes land on it. */
  | "extra-chunked-late"
  /** Content-Length right, half the body, then the connection drops. */
  | "cut"
  /** Chunked, half the body, properly ended: a short body the server calls complete. */
  | "short-chunked"
  /** Content-Length of half the range, and that half. */
  | "short-length"
  /** 200 with the whole object, as a store that ignores Range does. */
  | "ignore-range"
  /** 206 for the range one byte further on, with its (true) Content-Range. */
  | "wrong-range"
  /** The range's bytes, but a Content-Range naming other ones. */
  | "lying-range"
  /** Head and 1,000 bytes, then silence. */
  | "stall"
  /** The range with one bit flipped. */
  | "flip";

export interface HostileStore {
  /** http://127.0.0.1:<port>: what the server must put in the URLs it signs. */
  readonly url: string;
  /** Where honest bytes come from: an origin to forward to (the drive server or the S3 store), or an object held here. */
  target: string | Buffer;
  /**
   * Picks the answer to the n-th ranged GET (from 0) of bytes from `first`; everything else is forwarded
   * untouched. Default: honest. Setting it starts a new scene: "late" answers wait for GETs from then on.
   */
  answer: (n: number, first: number) => Answer;
  /** Ranged GETs seen so far. */
  readonly gets: number;
  close(): Promise<void>;
}

/**
 * A real HTTP/1.1 server that lies in chosen ways, for the pull's
 * defences: placed between the client and the store (the server signs
 * URLs naming it), it forwards every request with its Host header
 * unchanged, so local and SigV4 signatures still check, and rewrites the
 * answers to ranged GETs.
 */
export async function startHostileStore(target: string | Buffer = Buffer.alloc(0)): Promise<HostileStore> {
  const sockets = new Set<Socket>();
  let gets = 0;
  let answer: HostileStore["answer"] = () => "honest";
  // The starts of the ranges answered whole so far, and who waits for one other than theirs.
  const finished = new Set<number>();
  let waiters: Array<{ first: number; resolve: () => void }> = [];
  const otherAnswered = (first: number) =>
    [...finished].some((f) => f !== first) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ first, resolve }));
  const store: HostileStore = {
    url: "",
    target,
    get answer() {
      return answer;
    },
    set answer(pick) {
      answer = pick;
      finished.clear();
    },
    get gets() {
      return gets;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const server = http.createServer((req, res) => {
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (req.method !== "GET" || !range) return void forward(store.target, req, res);
    const first = Number(range[1]);
    const chosen = answer(gets++, first);
    const late = chosen === "extra-chunked-late" ? otherAnswered(first) : Promise.resolve();
    res.once("finish", () => {
      finished.add(first);
      for (const w of waiters.filter((w) => w.first !== first)) w.resolve();
      waiters = waiters.filter((w) => w.first === first);
    });
    void late
      .then(() => lie(store.target, req, res, first, Number(range[2]), chosen === "extra-chunked-late" ? "extra-chunked" : chosen))
      .catch(() => res.destroy());
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  (store as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return store;
}

async function lie(target: string | Buffer, req: http.IncomingMessage, res: http.ServerResponse, first: number, last: number, answer: Answer): Promise<void> {
  const shift = answer === "wrong-range" ? 1 : 0;
  const got = await fetchRange(target, req, answer === "ignore-range" ? null : [first + shift, last + shift]);
  if (got.status !== 206 && got.status !== 200) {
    res.writeHead(got.status, { "content-length": got.body.length });
    return void res.end(got.body);
  }
  const body = got.body;
  const contentRange = got.contentRange;
  switch (answer) {
    case "honest":
    case "wrong-range":
    case "ignore-range":
      res.writeHead(got.status, { "content-length": body.length, ...(contentRange ? { "content-range": contentRange } : {}) });
      return void res.end(body);
    case "chunked":
      res.writeHead(206, { "transfer-encoding": "chunked", "content-range": contentRange });
      return void res.end(body);
    case "extra": {
      const more = Buffer.concat([body, randomBytes(1000)]);
      res.writeHead(206, { "content-length": more.length, "content-range": contentRange });
      return void res.end(more);
    }
    case "extra-chunked":
    case "extra-chunked-late":
      res.writeHead(206, { "transfer-encoding": "chunked", "content-range": contentRange });
      res.write(body);
      return void res.end(randomBytes(1000));
    case "cut":
      res.writeHead(206, { "content-length": body.length, "content-range": contentRange });
      res.write(body.subarray(0, body.length >> 1));
      return void setTimeout(() => res.destroy(), 20);
    case "short-chunked":
      res.writeHead(206, { "transfer-encoding": "chunked", "content-range": contentRange });
      return void res.end(body.subarray(0, body.length >> 1));
    case "short-length":
      res.writeHead(206, { "content-length": body.length >> 1, "content-range": contentRange });
      return void res.end(body.subarray(0, body.length >> 1));
    case "lying-range":
      res.writeHead(206, { "content-length": body.length, "content-range": `bytes ${first + 1}-${last + 1}/${got.total}` });
      return void res.end(body);
    case "stall":
      res.writeHead(206, { "content-length": body.length, "content-range": contentRange });
      return void res.write(body.subarray(0, 1000)); // and nothing more, until the client gives up
    case "flip": {
      const copy = Buffer.from(body);
      copy[copy.length >> 1]! ^= 0x01;
      res.writeHead(206, { "content-length": copy.length, "content-range": contentRange });
      return void res.end(copy);
    }
  }
}

/** The honest answer to a GET of [first, last] (or of everything), from the origin or the object held. */
async function fetchRange(
  target: string | Buffer,
  req: http.IncomingMessage,
  range: [number, number] | null,
): Promise<{ status: number; body: Buffer; contentRange: string; total: string }> {
  if (Buffer.isBuffer(target)) {
    if (!range) return { status: 200, body: target, contentRange: "", total: String(target.length) };
    const [first, last] = [range[0], Math.min(range[1], target.length - 1)];
    return { status: 206, body: target.subarray(first, last + 1), contentRange: `bytes ${first}-${last}/${target.length}`, total: String(target.length) };
  }
  const headers = { ...req.headers };
  if (range) headers.range = `bytes=${range[0]}-${range[1]}`;
  else delete headers.range;
  const up = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const r = http.request(new URL(req.url!, target), { method: "GET", headers }, resolve);
    r.on("error", reject);
    r.end();
  });
  const chunks: Buffer[] = [];
  for await (const c of up) chunks.push(c as Buffer);
  const contentRange = String(up.headers["content-range"] ?? "");
  return { status: up.statusCode ?? 502, body: Buffer.concat(chunks), contentRange, total: contentRange.split("/")[1] ?? "*" };
}

/** Passes a request through unchanged: part PUTs, HEADs, unranged GETs. */
function forward(target: string | Buffer, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (Buffer.isBuffer(target)) {
    res.writeHead(405, { "content-length": 0 });
    return void res.end();
  }
  const up = http.request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  up.on("error", () => res.destroy());
  req.pipe(up);
}
