import { describe, expect, it } from "vitest";
import { FaultRules, HttpFaultConn, type Action } from "../support/http-faults.js";

/** Feeds `bytes` to one direction in pieces of `step` bytes, and joins what comes out. */
function feed(conn: HttpFaultConn, dir: "upstream" | "downstream", bytes: Buffer, step: number): Action[] {
  const out: Action[] = [];
  for (let i = 0; i < bytes.length; i += step) out.push(...conn[dir](bytes.subarray(i, i + step)));
  return out;
}

const forwarded = (actions: Action[]) => Buffer.concat(actions.flatMap((a) => (a.do === "forward" ? [a.bytes] : [])));
const put = (body: string) => Buffer.from(`PUT /blob/v1/parts/u/1?sig=x HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
const get = Buffer.from("GET /blob/v1/objects?key=k HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\n\r\n");
const ok = (body: string) => Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${body.length}\r\n\r\n${body}`);

describe("the fault proxy's HTTP/1.1 rules", () => {
  it.each([1, 3, 1000])("relays untouched what no rule matches, whatever the read sizes (%i-byte reads)", (step) => {
    const rules = new FaultRules();
    const rule = rules.add({ method: "DELETE", fault: { kind: "respond", status: 500 } });
    const conn = new HttpFaultConn(rules);
    const requests = Buffer.concat([put("hello"), get, put("")]);
    expect(forwarded(feed(conn, "upstream", requests, step)).equals(requests)).toBe(true);
    expect(rule.matched).toBe(0);
  });

  it("counts matches per rule and faults only the nth", () => {
    const rules = new FaultRules();
    const rule = rules.add({ method: "PUT", nth: 2, fault: { kind: "respond", status: 503 } });
    const conn = new HttpFaultConn(rules);
    expect(forwarded(conn.upstream(put("one")))).toEqual(put("one"));
    expect(conn.downstream(ok(""))).toHaveLength(1);
    const second = feed(conn, "upstream", put("two"), 2);
    expect(forwarded(second)).toHaveLength(0); // swallowed: the server never sees it
    const reply = second.find((a) => a.do === "reply");
    expect(reply && reply.do === "reply" && reply.bytes.toString()).toMatch(/^HTTP\/1.1 503 /);
    expect(second.at(-1)).toEqual({ do: "end" });
    expect([rule.matched, rule.fired]).toEqual([2, 1]);
  });

  it("resets a request after exactly afterBytes body bytes", () => {
    const rules = new FaultRules();
    rules.add({ method: "PUT", fault: { kind: "reset", side: "request", afterBytes: 4 } });
    const conn = new HttpFaultConn(rules);
    const out = feed(conn, "upstream", put("0123456789"), 3);
    const head = put("0123456789").length - 10;
    expect(forwarded(out).length).toBe(head + 4);
    expect(out.at(-1)).toEqual({ do: "reset" });
    expect(conn.upstream(Buffer.from("more"))).toEqual([]);
  });

  it("truncates, stalls and flips a response body at its byte offsets, past its head", () => {
    for (const [fault, expected, last] of [
      [{ kind: "truncate", afterBytes: 3 }, "abc", "end"],
      [{ kind: "stall", side: "response", afterBytes: 0 }, "", "stall"],
      [{ kind: "reset", side: "response", afterBytes: -1 }, null, "reset"],
    ] as const) {
      const rules = new FaultRules();
      rules.add({ method: "GET", fault });
      const conn = new HttpFaultConn(rules);
      conn.upstream(get);
      const out = feed(conn, "downstream", ok("abcdefghij"), 4);
      const head = ok("abcdefghij").toString().slice(0, -10);
      expect(forwarded(out).toString()).toBe(expected === null ? "" : head + expected);
      expect(out.at(-1)).toEqual({ do: last });
    }
    const rules = new FaultRules();
    rules.add({ method: "GET", fault: { kind: "flip", side: "response", at: 5 } });
    const conn = new HttpFaultConn(rules);
    conn.upstream(get);
    expect(forwarded(feed(conn, "downstream", ok("abcdefghij"), 3)).toString()).toBe(ok("abcdegghij").toString());
  });

  it("passes HTTP/2 through as bytes, rules or not", () => {
    const rules = new FaultRules();
    const rule = rules.add({ fault: { kind: "respond", status: 500 } });
    const conn = new HttpFaultConn(rules);
    const h2 = Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);
    expect(forwarded(feed(conn, "upstream", h2, 5)).equals(h2)).toBe(true);
    expect(rule.matched).toBe(0);
  });
});
