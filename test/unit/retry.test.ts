import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { isRetryable, withRetry } from "../../cli/rpc/retry.js";
import { exitCodes, toCliError } from "../../cli/errors.js";

const fast = { attempts: 4, baseDelayMs: 1, maxDelayMs: 2 };

describe("retry policy", () => {
  it.each([Code.Unavailable, Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted])("retries code %i", (code) => {
    expect(isRetryable(new ConnectError("x", code))).toBe(true);
  });

  it.each([Code.InvalidArgument, Code.NotFound, Code.PermissionDenied, Code.Unauthenticated, Code.FailedPrecondition, Code.Internal])(
    "gives up at once on code %i",
    async (code) => {
      let calls = 0;
      await expect(
        withRetry(async () => {
          calls++;
          throw new ConnectError("permanent", code);
        }, fast),
      ).rejects.toThrow("permanent");
      expect(calls).toBe(1);
    },
  );

  it("tries a retryable failure again until it works, within the attempts", async () => {
    let calls = 0;
    const result = await withRetry(async () => {
      if (++calls < 3) throw new ConnectError("busy", Code.Unavailable);
      return "ok";
    }, fast);
    expect([result, calls]).toEqual(["ok", 3]);

    calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new ConnectError("down", Code.Unavailable);
      }, fast),
    ).rejects.toThrow("down");
    expect(calls).toBe(fast.attempts);
  });

  it("maps codes to the documented exit codes", () => {
    expect(toCliError(new ConnectError("x", Code.Unauthenticated)).exitCode).toBe(exitCodes.auth);
    expect(toCliError(new ConnectError("x", Code.NotFound)).exitCode).toBe(exitCodes.not_found);
    expect(toCliError(new ConnectError("x", Code.FailedPrecondition)).exitCode).toBe(exitCodes.conflict);
    expect(toCliError(new ConnectError("x", Code.Unavailable)).exitCode).toBe(exitCodes.unavailable);
    expect(toCliError(new ConnectError("x", Code.InvalidArgument)).exitCode).toBe(exitCodes.usage);
    expect(toCliError(new ConnectError("x", Code.Internal)).exitCode).toBe(exitCodes.internal);
  });
});
