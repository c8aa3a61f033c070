import { describe, expect, it } from "vitest";
import { parseDuration } from "../../server/config/duration.js";

describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["24h", 86_400_000],
    ["1h30m", 5_400_000],
    ["7d", 604_800_000],
    ["1.5s", 1500],
  ])("%s is %i ms", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(["", "10", "5 minutes", "1x", "-1s", "1h 30m"])("refuses %j", (text) => {
    expect(() => parseDuration(text)).toThrow(/invalid duration/);
  });
});
