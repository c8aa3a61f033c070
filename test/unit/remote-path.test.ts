import { describe, expect, it } from "vitest";
import { checkRemotePath } from "../../shared/rules/remote-path.js";

describe("remote paths", () => {
  it.each(["a", "a/b.txt", "dir/sub/file name (1).iso", "ünïcode/ファイル", ".hidden", "a..b", "emoji/😀"])("accepts %j", (p) => {
    expect(checkRemotePath(p)).toBeNull();
  });

  it.each([
    ["", /empty/],
    ["/abs", /relative/],
    ["a//b", /empty segment/],
    ["a/", /empty segment/],
    ["../up", /".." segment/],
    ["a/../b", /".." segment/],
    ["./a", /"\." segment/],
    ["nul\0byte", /control/],
    ["line\nfeed", /control/],
    ["esc\u001b[31m", /control/],
    ["back\\slash", /forward slashes/],
    ["e\u0301", /NFC/],
    ["x".repeat(256), /segment is over/],
    ["x/".repeat(2048) + "x", /over 4096 bytes/],
    ["c1\u0085control", /control/],
    ["del\u007f", /control/],
    ["lone\ud800half", /not valid Unicode/],
    ["\udfff", /not valid Unicode/],
  ])("refuses %j", (p, why) => {
    expect(checkRemotePath(p)).toMatch(why);
  });
});
