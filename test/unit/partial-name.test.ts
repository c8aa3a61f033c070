import { basename } from "node:path";
import { describe, expect, it } from "vitest";
import { partialName } from "../../cli/transfer/pull/partial-file.js";

const HASH = "ab".repeat(32);

describe("partialName", () => {
  it("keeps short names whole", () => {
    expect(basename(partialName("/d/report.pdf", HASH))).toBe(`.report.pdf.${HASH.slice(0, 16)}.drive-partial`);
  });

  it("stays within 255 bytes for the longest names, cutting on a character", () => {
    for (const name of ["L".repeat(255), "é".repeat(127), "😀".repeat(63)]) {
      const temp = basename(partialName(`/d/${name}`, HASH));
      expect(Buffer.byteLength(temp)).toBeLessThanOrEqual(255);
      expect(temp.endsWith(`.${HASH.slice(0, 16)}.drive-partial`)).toBe(true);
      expect(temp).not.toContain("\ufffd");
      expect(name.startsWith(temp.slice(1, temp.indexOf(`.${HASH.slice(0, 16)}`)))).toBe(true);
    }
  });
});
