import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { toCliError } from "../../cli/errors.js";
import { isRetryable } from "../../cli/rpc/retry.js";
import { networkError, PartHttpError } from "../../cli/transfer/part-http.js";
import { classify } from "../../server/blob/s3/s3-errors.js";
import { isTransientError, TRANSIENT_CODES } from "../../shared/io/transient-errors.js";
import { toConnectError } from "../../server/rpc/error-interceptor.js";

const errno = (code: string) => Object.assign(new Error(`${code} happened`), { code });

/** The five places that decide "the network failed, try again", each in its own terms. */
const deciders: Record<string, (err: NodeJS.ErrnoException) => boolean> = {
  "S3 store": (e) => classify(e.code!) === "retryable",
  "RPC error interceptor": (e) => toConnectError(e).code === Code.Unavailable,
  "CLI RPC retry": (e) => isRetryable(e),
  "CLI part transfers": (e) => {
    const mapped = networkError(e);
    return mapped instanceof PartHttpError && mapped.kind === "retryable";
  },
  "CLI exit codes": (e) => toCliError(e).kind === "unavailable",
};

// Codes that are the request's or the machine's own fault: retrying cannot help.
const PERMANENT = ["ENOENT", "EACCES", "EPERM", "ENOSPC", "EISDIR", "EINVAL", "ERR_INVALID_URL", "ERR_HTTP_PROTOCOL", ""];

describe("one list of what is retryable", () => {
  for (const [where, decide] of Object.entries(deciders)) {
    it(`${where}: every listed code is transient`, () => {
      for (const code of TRANSIENT_CODES) expect(decide(errno(code)), code).toBe(true);
    });
    it(`${where}: local and protocol errors are not`, () => {
      for (const code of PERMANENT) expect(decide(errno(code)), code).toBe(false);
    });
  }

  it("looks through causes and AggregateErrors, as Node's connect and fetch wrap them", () => {
    expect(isTransientError(new Error("fetch failed", { cause: errno("UND_ERR_SOCKET") }))).toBe(true);
    expect(isTransientError(new AggregateError([errno("ECONNREFUSED"), errno("ENETUNREACH")], "connect"))).toBe(true);
    expect(isTransientError(new Error("outer", { cause: errno("ENOENT") }))).toBe(false);
    expect(isTransientError(null)).toBe(false);
    expect(isTransientError("ECONNRESET")).toBe(false);
    // A cycle of causes ends.
    const a: { code: string; cause?: unknown } = { code: "X" };
    a.cause = a;
    expect(isTransientError(a)).toBe(false);
  });
});
