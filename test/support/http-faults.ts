/**
 * HTTP/1.1-aware fault rules for the test proxy (throttle-proxy.ts). A rule
 * picks the Nth request matching a method and a path pattern, and does one
 * thing to that exchange, placed by byte counts in the body, never by time:
 * so a test hits the same point on every run, however slow the machine.
 *
 * toxiproxy would be the maintained choice (tusd drives it), but it is a Go
 * binary, not installable here from npm or apt (only its clients are); this
 * is the part of it the suite needs.
 *
 * HTTP/2 connections (the control plane in local mode) pass untouched: the
 * rules see only HTTP/1.1, which is what part PUTs and chunk GETs speak.
 */

export type Fault =
  /** The proxy answers itself, after swallowing the request: the server never sees it. */
  | { kind: "respond"; status: number; body?: string }
  /**
   * A TCP reset (RST) after `afterBytes` body bytes of the request or of the
   * response; -1: before its head (the server never sees the request, or the
   * client never sees the answer).
   */
  | { kind: "reset"; side: "request" | "response"; afterBytes: number }
  /** The response ends cleanly (FIN) after `afterBytes` body bytes; -1: before its head. */
  | { kind: "truncate"; afterBytes: number }
  /** Nothing more flows either way after `afterBytes` body bytes of `side` (-1: before its head), until the client gives up. */
  | { kind: "stall"; side: "request" | "response"; afterBytes: number }
  /** The body byte at offset `at` of `side` is XORed with 0x01 on its way. */
  | { kind: "flip"; side: "request" | "response"; at: number };

export interface FaultRuleSpec {
  /** e.g. "PUT"; any method when absent. */
  method?: string;
  /** Tested against the request target (path and query); any when absent. */
  path?: RegExp;
  /** The first matching request to fault, counting from 1 since the rule was added. Default 1. */
  nth?: number;
  /** How many matching requests in a row, from the nth, get the fault. Default 1. */
  times?: number;
  fault: Fault;
}

export class FaultRule {
  /** Requests this rule matched so far. */
  matched = 0;
  /** Requests it faulted so far. */
  fired = 0;
  readonly #waiters: Array<() => void> = [];

  constructor(readonly spec: FaultRuleSpec) {}

  /** Whether this request gets the fault; counts it either way. */
  take(method: string, target: string): boolean {
    if (this.spec.method && this.spec.method !== method) return false;
    if (this.spec.path && !this.spec.path.test(target)) return false;
    this.matched++;
    const first = this.spec.nth ?? 1;
    if (this.matched < first || this.matched >= first + (this.spec.times ?? 1)) return false;
    this.fired++;
    for (const w of this.#waiters.splice(0)) w();
    return true;
  }

  /** Resolves once the rule has fired (at once if it has). */
  firedOnce(): Promise<void> {
    return this.fired ? Promise.resolve() : new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/** The rules of one proxy, shared by all its connections. */
export class FaultRules {
  readonly #rules: FaultRule[] = [];

  add(spec: FaultRuleSpec): FaultRule {
    const rule = new FaultRule(spec);
    this.#rules.push(rule);
    return rule;
  }

  clear(): void {
    this.#rules.length = 0;
  }

  get active(): boolean {
    return this.#rules.length > 0;
  }

  /** The fault for this request: the first rule that takes it. Every rule counts the request. */
  match(method: string, target: string): Fault | null {
    let found: Fault | null = null;
    for (const rule of this.#rules) if (rule.take(method, target) && !found) found = rule.spec.fault;
    return found;
  }
}

/** What the relay does with the bytes of one read. */
export type Action =
  | { do: "forward"; bytes: Buffer }
  /** Written to the client, in place of the server's answer. */
  | { do: "reply"; bytes: Buffer }
  | { do: "reset" }
  /** FIN to the client, and the server's side dropped. */
  | { do: "end" }
  | { do: "stall" };

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const MAX_HEAD = 64 * 1024;

/**
 * One proxied connection's view of the HTTP/1.1 exchanges on it. Clients
 * here (node:http's agent, the raw range client) never pipeline, so the
 * response that follows a request head is that request's.
 */
export class HttpFaultConn {
  #mode: "sniff" | "http1" | "opaque" = "sniff";
  #sniffed = Buffer.alloc(0);
  /** Bytes of a request head not complete yet, held until it is. */
  #head: Buffer[] = [];
  #headText = "";
  #bodyLeft = 0;
  #reqBody = 0;
  #fault: Fault | null = null;
  #resHead = "";
  #resHeadDone = false;
  #resBody = 0;
  /** Set once a fault has ended the exchange: nothing more flows either way. */
  #dead = false;

  constructor(private readonly rules: FaultRules) {}

  /** Client → server bytes. */
  upstream(chunk: Buffer): Action[] {
    if (this.#dead) return [];
    if (this.#mode === "sniff") {
      this.#sniffed = Buffer.concat([this.#sniffed, chunk]);
      const n = Math.min(this.#sniffed.length, PREFACE.length);
      if (!this.#sniffed.subarray(0, n).equals(PREFACE.subarray(0, n))) this.#mode = "http1";
      else if (n === PREFACE.length) this.#mode = "opaque";
      else return [];
      chunk = this.#sniffed;
      this.#sniffed = Buffer.alloc(0);
    }
    const out: Action[] = [];
    let rest = chunk;
    while (rest.length && !this.#dead) {
      if (this.#mode === "opaque") {
        out.push({ do: "forward", bytes: rest });
        break;
      }
      if (this.#bodyLeft > 0) {
        const take = rest.subarray(0, this.#bodyLeft);
        rest = rest.subarray(take.length);
        this.#bodyLeft -= take.length;
        out.push(...this.#requestBody(take));
        if (this.#bodyLeft === 0 && !this.#dead) out.push(...this.#requestDone());
        continue;
      }
      // A request head, perhaps over several reads.
      const before = this.#headText.length;
      this.#headText += rest.toString("latin1");
      const end = this.#headText.indexOf("\r\n\r\n");
      if (end < 0) {
        this.#head.push(rest);
        if (this.#headText.length > MAX_HEAD) this.#mode = "opaque";
        if (this.#mode === "opaque") out.push({ do: "forward", bytes: Buffer.concat(this.#head.splice(0)) });
        break;
      }
      const used = end + 4 - before;
      this.#head.push(rest.subarray(0, used));
      rest = rest.subarray(used);
      const bytes = Buffer.concat(this.#head.splice(0));
      this.#startRequest(this.#headText.slice(0, end));
      this.#headText = "";
      const f = this.#fault;
      if ((f?.kind === "reset" || f?.kind === "stall") && f.side === "request" && f.afterBytes < 0) {
        this.#dead = true;
        out.push({ do: f.kind });
        break;
      }
      if (f?.kind !== "respond") out.push({ do: "forward", bytes });
      if (this.#bodyLeft === 0) out.push(...this.#requestDone());
    }
    return out;
  }

  /** Server → client bytes. */
  downstream(chunk: Buffer): Action[] {
    if (this.#dead) return [];
    const fault = this.#fault;
    if (this.#mode !== "http1" || !fault || fault.kind === "respond") return [{ do: "forward", bytes: chunk }];
    let body = chunk;
    const out: Action[] = [];
    const cut =
      fault.kind === "truncate" ? "end" : fault.kind !== "flip" && fault.side === "response" ? (fault.kind === "reset" ? "reset" : "stall") : null;
    if (cut && "afterBytes" in fault && fault.afterBytes < 0) {
      this.#dead = true;
      return [{ do: cut }];
    }
    if (!this.#resHeadDone) {
      const before = this.#resHead.length;
      this.#resHead += chunk.toString("latin1");
      const end = this.#resHead.indexOf("\r\n\r\n");
      if (end < 0) return [{ do: "forward", bytes: chunk }];
      this.#resHeadDone = true;
      const used = end + 4 - before;
      out.push({ do: "forward", bytes: chunk.subarray(0, used) });
      body = chunk.subarray(used);
    }
    const start = this.#resBody;
    this.#resBody += body.length;
    if (fault.kind === "flip" && fault.side === "response") return [...out, { do: "forward", bytes: flipAt(body, start, fault.at) }];
    if (!cut || !("afterBytes" in fault)) return [...out, { do: "forward", bytes: body }];
    const room = fault.afterBytes - start;
    if (body.length < room) return [...out, { do: "forward", bytes: body }];
    if (room > 0) out.push({ do: "forward", bytes: body.subarray(0, room) });
    this.#dead = true;
    out.push({ do: cut });
    return out;
  }

  #startRequest(head: string): void {
    const [line = "", ...lines] = head.split("\r\n");
    const [method = "", target = ""] = line.split(" ");
    let length = 0;
    for (const l of lines) {
      const colon = l.indexOf(":");
      const name = l.slice(0, colon).trim().toLowerCase();
      if (name === "content-length") length = Number(l.slice(colon + 1).trim());
      // A chunked request body cannot be framed here: no rules for the rest of this connection.
      if (name === "transfer-encoding") this.#mode = "opaque";
    }
    this.#bodyLeft = this.#mode === "http1" && Number.isSafeInteger(length) && length > 0 ? length : 0;
    this.#reqBody = 0;
    this.#resHead = "";
    this.#resHeadDone = false;
    this.#resBody = 0;
    this.#fault = this.#mode === "http1" && this.rules.active ? this.rules.match(method, target) : null;
  }

  #requestBody(bytes: Buffer): Action[] {
    const fault = this.#fault;
    const start = this.#reqBody;
    this.#reqBody += bytes.length;
    if (fault?.kind === "respond") return [];
    if (!fault || !("side" in fault) || fault.side !== "request") return [{ do: "forward", bytes }];
    if (fault.kind === "flip") return [{ do: "forward", bytes: flipAt(bytes, start, fault.at) }];
    const room = fault.afterBytes - start;
    if (room >= bytes.length) return [{ do: "forward", bytes }];
    this.#dead = true;
    const out: Action[] = room > 0 ? [{ do: "forward", bytes: bytes.subarray(0, room) }] : [];
    out.push({ do: fault.kind });
    return out;
  }

  /** The whole request is in: a canned answer goes out now, as a server that read the body would send it. */
  #requestDone(): Action[] {
    const fault = this.#fault;
    if (fault?.kind !== "respond") return [];
    this.#dead = true;
    const body = fault.body ?? `fault proxy: ${fault.status}`;
    const head = [`HTTP/1.1 ${fault.status} Injected`, "Content-Type: text/plain", `Content-Length: ${Buffer.byteLength(body)}`, "Connection: close", "", ""].join("\r\n");
    return [{ do: "reply", bytes: Buffer.from(head + body) }, { do: "end" }];
  }
}

/** A copy of `bytes` (which start at body offset `start`) with the byte at `at` flipped, when it falls in them. */
function flipAt(bytes: Buffer, start: number, at: number): Buffer {
  if (at < start || at >= start + bytes.length) return bytes;
  const copy = Buffer.from(bytes);
  copy[at - start] = copy[at - start]! ^ 0x01;
  return copy;
}
