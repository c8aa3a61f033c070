/**
 * Human formatting for the printers. Pure functions: the same numbers render
 * the same text in the ink view, the bar and the plain lines.
 */

// IEC units because part sizes and S3 limits (5 MiB, 5 GiB) are powers of two;
// decimal units would make a 5 MiB part read as "5.2 MB".
const UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"] as const;

/** 512 -> "512 B", 1536 -> "1.5 KiB", 2^30 -> "1.0 GiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return "? B";
  const sign = bytes < 0 ? "-" : "";
  let n = Math.abs(bytes);
  // 1023.5 rather than 1024 so a fractional rate never prints as "1024 B".
  if (n < 1023.5) return `${sign}${Math.round(n)} B`;
  let unit: string = UNITS[0];
  for (const u of UNITS) {
    unit = u;
    n /= 1024;
    // Stop before the rounded value would print as "1024.0".
    if (n < 1023.95) break;
  }
  return `${sign}${n.toFixed(1)} ${unit}`;
}

/** Bytes per second -> "210.3 MiB/s". */
export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec < 0 ? 0 : bytesPerSec)}/s`;
}

/**
 * An elapsed time: "0.4s", "4.8s", "2m05s", "1h02m". Tenths below a minute
 * because most transfers are short and "0s" says nothing.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)}s`;
  return formatClock(Math.round(ms / 1000));
}

/**
 * A remaining time: "2s", "3m20s", "1h05m"; "-" when unknown. Whole seconds,
 * rounded up, since an estimate has no business showing tenths.
 */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return "-";
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  // Past 100 hours an estimate is noise (a stall, or a rate that just began).
  if (s >= 100 * 3600) return ">99h";
  return formatClock(s);
}

/** A fraction 0..1 -> "50%". Floored, so 100% only shows when it is true. */
export function formatPercent(fraction: number | null): string {
  if (fraction === null || !Number.isFinite(fraction)) return "-";
  const clamped = Math.min(1, Math.max(0, fraction));
  return `${Math.floor(clamped * 100)}%`;
}

function formatClock(totalSeconds: number): string {
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (h > 0) return `${h}h${pad2(m)}m`;
  return `${m}m${pad2(s)}s`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
