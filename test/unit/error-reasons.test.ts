import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema, ErrorReason } from "../../gen/drive/v1/errors_pb.js";
import { exitCodes, toCliError } from "../../cli/errors.js";
import { limitExceeded, MAX_LISTED_PARTS, partsIncomplete, revisionConflict, uploadCompleted, uploadNotFound } from "../../server/errors.js";
import { toConnectError } from "../../server/rpc/error-interceptor.js";

/** A domain error as the CLI sees it: through the server's one mapping, then the CLI's one table. */
const asCli = (err: unknown) => toCliError(toConnectError(err));

describe("typed error reasons", () => {
  it("sends each domain reason as a drive.v1.ErrorInfo detail", () => {
    const err = toConnectError(revisionConflict("a/b.txt", { revision: 3, deleted: false }, 1));
    expect(err.code).toBe(Code.FailedPrecondition);
    const [info] = err.findDetails(ErrorInfoSchema);
    expect(info?.reason).toBe(ErrorReason.REVISION_CONFLICT);
    expect(info?.detail).toMatchObject({ case: "revisionConflict", value: { currentRevision: 3n, baseRevision: 1n, currentDeleted: false } });
  });

  it("caps the part lists it carries, and counts them all", () => {
    const many = Array.from({ length: 10_000 }, (_, i) => i + 1);
    const [info] = toConnectError(partsIncomplete(many, [])).findDetails(ErrorInfoSchema);
    expect(info?.reason).toBe(ErrorReason.PARTS_MISSING);
    expect(info?.detail.case).toBe("partsIncomplete");
    const parts = info?.detail.value as { missing: number[]; missingCount: number };
    expect(parts.missing).toHaveLength(MAX_LISTED_PARTS);
    expect(parts.missingCount).toBe(10_000);
    expect(toConnectError(partsIncomplete([], [4])).findDetails(ErrorInfoSchema)[0]?.reason).toBe(ErrorReason.PARTS_UNCONFIRMED);
  });

  it("maps reasons, not codes, to exit codes: only a revision conflict is a conflict", () => {
    expect(asCli(revisionConflict("p", undefined, 2))).toMatchObject({ kind: "conflict", exitCode: 6, reason: "REVISION_CONFLICT" });
    expect(asCli(partsIncomplete([1], []))).toMatchObject({ kind: "internal", exitCode: 1, reason: "PARTS_MISSING" });
    expect(asCli(partsIncomplete([], [1]))).toMatchObject({ kind: "internal", exitCode: 1, reason: "PARTS_UNCONFIRMED" });
    expect(asCli(uploadCompleted())).toMatchObject({ exitCode: 1, reason: "UPLOAD_COMPLETED" });
    expect(asCli(uploadNotFound())).toMatchObject({ kind: "unavailable", exitCode: 7, reason: "UPLOAD_NOT_FOUND" });
    expect(asCli(limitExceeded("resource_exhausted", "open_uploads", 100, "too many open uploads"))).toMatchObject({
      kind: "limit",
      exitCode: exitCodes.limit,
      reason: "LIMIT_EXCEEDED",
    });
    // A server without reasons: the code alone decides, as before.
    expect(toCliError(new ConnectError("x", Code.FailedPrecondition))).toMatchObject({ exitCode: 6, reason: undefined });
  });

  it("never echoes an upload id back", () => {
    expect(uploadNotFound().message).not.toMatch(/[0-9a-f]{32}/);
  });
});
