import { describe, expect, it } from "vitest";
import { formatBytes, formatDuration, formatEta, formatPercent, formatRate } from "../../cli/ui/format.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

describe("formatBytes", () => {
  it("prints whole bytes below a KiB", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1023)).toBe("1023 B");
  });

  it("uses IEC units with one decimal", () => {
    expect(formatBytes(1024)).toBe("1.0 KiB");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(5 * MiB)).toBe("5.0 MiB");
    expect(formatBytes(512 * MiB)).toBe("512.0 MiB");
    expect(formatBytes(GiB)).toBe("1.0 GiB");
    expect(formatBytes(50 * 1000 ** 3)).toBe("46.6 GiB");
    expect(formatBytes(3 * 1024 * GiB)).toBe("3.0 TiB");
  });

  it("moves to the next unit rather than print 1024.0", () => {
    expect(formatBytes(GiB - 1)).toBe("1.0 GiB");
    expect(formatBytes(1023.7)).toBe("1.0 KiB");
  });

  it("keeps a sign and survives non-finite input", () => {
    expect(formatBytes(-2 * MiB)).toBe("-2.0 MiB");
    expect(formatBytes(Number.NaN)).toBe("? B");
  });
});

describe("formatRate", () => {
  it("appends /s and never goes negative", () => {
    expect(formatRate(210.3 * MiB)).toBe("210.3 MiB/s");
    expect(formatRate(0)).toBe("0 B/s");
    expect(formatRate(-5)).toBe("0 B/s");
  });
});

describe("formatDuration", () => {
  it("shows tenths below a minute", () => {
    expect(formatDuration(0)).toBe("0.0s");
    expect(formatDuration(420)).toBe("0.4s");
    expect(formatDuration(4800)).toBe("4.8s");
    expect(formatDuration(59_940)).toBe("59.9s");
  });

  it("shows minutes and hours beyond", () => {
    expect(formatDuration(59_960)).toBe("1m00s");
    expect(formatDuration(125_000)).toBe("2m05s");
    expect(formatDuration(3_720_000)).toBe("1h02m");
  });

  it("treats bad input as zero", () => {
    expect(formatDuration(-1)).toBe("0.0s");
    expect(formatDuration(Number.NaN)).toBe("0.0s");
  });
});

describe("formatEta", () => {
  it("is '-' when unknown", () => {
    expect(formatEta(null)).toBe("-");
    expect(formatEta(Number.POSITIVE_INFINITY)).toBe("-");
    expect(formatEta(-3)).toBe("-");
  });

  it("rounds up to whole seconds", () => {
    expect(formatEta(0)).toBe("0s");
    expect(formatEta(1.2)).toBe("2s");
    expect(formatEta(200)).toBe("3m20s");
    expect(formatEta(3900)).toBe("1h05m");
  });

  it("caps absurd estimates", () => {
    expect(formatEta(1e9)).toBe(">99h");
  });
});

describe("formatPercent", () => {
  it("floors, so 100% means done", () => {
    expect(formatPercent(0.5)).toBe("50%");
    expect(formatPercent(0.999)).toBe("99%");
    expect(formatPercent(1)).toBe("100%");
  });

  it("clamps and handles unknown", () => {
    expect(formatPercent(1.5)).toBe("100%");
    expect(formatPercent(-1)).toBe("0%");
    expect(formatPercent(null)).toBe("-");
  });
});
