import { describe, expect, it } from "vitest";
import { parseByteSize } from "../../server/config/byte-size.js";
import { resolveServerConfig } from "../../server/config/server-options.js";

describe("byte sizes and the upload limits", () => {
  it.each([
    ["1099511627776", 2 ** 40],
    ["16M", 16 * 2 ** 20],
    ["64MiB", 64 * 2 ** 20],
    ["64T", 64 * 2 ** 40],
    ["1 G", 2 ** 30],
  ])("parses %j", (text, bytes) => expect(parseByteSize(text)).toBe(bytes));

  it.each(["", "12X", "-1G", "1.5G", "99999999P"])("refuses %j", (text) => expect(() => parseByteSize(text)).toThrow(/invalid size/));

  it("defaults to 100 open uploads and 64 TiB per user, and takes flags and environment", () => {
    expect(resolveServerConfig({}, {}).limits).toEqual({ openUploads: 100, openUploadBytes: 64 * 2 ** 40 });
    expect(resolveServerConfig({ maxOpenUploads: "5" }, { DRIVE_MAX_OPEN_UPLOAD_BYTES: "1T" }).limits).toEqual({ openUploads: 5, openUploadBytes: 2 ** 40 });
    expect(() => resolveServerConfig({ maxOpenUploads: "0" }, {})).toThrow(/--max-open-uploads/);
    expect(() => resolveServerConfig({ maxOpenUploadBytes: "0" }, {})).toThrow(/--max-open-upload-bytes/);
  });
});
