import { describe, expect, it } from "vitest";
import { DriveError } from "../../server/errors.js";
import { checkEtag, checkPrefix, checkUploadId, pageSize, pathToken, quote, revisionToken } from "../../server/rpc/request-limits.js";

const refused = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof DriveError && err.code === "invalid_argument" ? err.message : `not InvalidArgument: ${err}`;
  }
  return "accepted";
};

describe("request field checks", () => {
  it("quote keeps a short prefix, whole code points", () => {
    expect(quote("abc")).toBe('"abc"');
    expect(quote("x".repeat(1000))).toBe(`"${"x".repeat(40)}"…`);
    expect(quote("😀".repeat(50), 3)).toBe('"😀😀😀"…');
  });

  it("upload ids: 1 to 64 of [A-Za-z0-9_-]", () => {
    expect(refused(() => checkUploadId("0123456789abcdef0123456789abcdef"))).toBe("accepted");
    for (const bad of ["", "a\0b", "a/b", "ü", "\ud800", "a".repeat(65)]) expect(refused(() => checkUploadId(bad))).not.toBe("accepted");
    expect(refused(() => checkUploadId("x".repeat(100_000))).length).toBeLessThan(100);
  });

  it("ETags: quotes dropped, printable ASCII, at most 128", () => {
    expect(checkEtag('"d41d8cd98f00b204e9800998ecf8427e"', "etag")).toBe("d41d8cd98f00b204e9800998ecf8427e");
    expect(checkEtag("W/abc-12", "etag")).toBe("W/abc-12");
    expect(checkEtag("", "etag")).toBe("");
    for (const bad of ["a b", "a\0", "é", "\ud800", "e".repeat(129)]) expect(refused(() => checkEtag(bad, "etag"))).not.toBe("accepted");
  });

  it("prefixes: a path's characters and length, any boundary", () => {
    for (const ok of ["", "a", "dir/", "dir/su", "e\u0301", "😀"]) expect(refused(() => checkPrefix(ok))).toBe("accepted");
    for (const bad of ["a\0", "\u0085", "\ud83d", "p".repeat(4097), "é".repeat(2049)]) expect(refused(() => checkPrefix(bad))).not.toBe("accepted");
  });

  it("page sizes: 0 is the default, the cap is 1,000, negative is refused", () => {
    expect(pageSize(0)).toBe(1000);
    expect(pageSize(5)).toBe(5);
    expect(pageSize(5000)).toBe(1000);
    expect(refused(() => pageSize(-1))).not.toBe("accepted");
  });

  it("page tokens round-trip, and only ours decode", () => {
    expect(pathToken.decode(pathToken.encode("dir/ファイル.txt"))).toBe("dir/ファイル.txt");
    expect(revisionToken.decode(revisionToken.encode(1234))).toBe(1234);
    expect(pathToken.decode("")).toBe("");
    expect(revisionToken.decode("")).toBeNull();
    const foreign = [
      "a+b", // not base64url
      "YQ=", // padded: not canonical
      "YR", // decodes, but not canonically
      Buffer.from("a\0b").toString("base64url"),
      Buffer.from([0xff, 0xfe]).toString("base64url"),
      Buffer.from("/abs").toString("base64url"),
      "A".repeat(6000),
    ];
    for (const bad of foreign) expect(refused(() => pathToken.decode(bad)), bad).not.toBe("accepted");
    for (const bad of [...foreign, pathToken.encode("dir/a"), Buffer.from("r0").toString("base64url"), Buffer.from("r99999999999999999").toString("base64url")]) {
      expect(refused(() => revisionToken.decode(bad)), bad).not.toBe("accepted");
    }
  });
});
