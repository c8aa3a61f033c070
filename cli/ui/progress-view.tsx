import { Box, Static, Text } from "ink";
import type { Phase, Snapshot } from "../accounting/accounting.js";
import { formatBytes, formatDuration, formatEta, formatPercent, formatRate } from "./format.js";
import { displayName } from "./plain-printer.js";

/**
 * The TTY progress view. A pure function of one Snapshot: InkPrinter re-renders
 * it from the Accounting on a timer, so the view holds no state of its own and
 * renders the same in a test as on a terminal.
 *
 *   push big.iso → /backups/big.iso  transferring
 *   [███████████████░░░░░░░░░░░░░░░]  50%  512.0 MiB / 1.0 GiB
 *   210.3 MiB/s  ETA 2s  parts 12/24 (4 in flight)  elapsed 2.4s
 */
export interface ProgressViewProps {
  snapshot: Snapshot;
  /** Informational lines, printed once above the live region (ink's Static). */
  messages?: readonly string[];
  /** Draw only the messages: the live region is cleared before the summary line. */
  hidden?: boolean;
  barWidth?: number;
}

export function ProgressView({ snapshot: s, messages = [], hidden = false, barWidth = 30 }: ProgressViewProps) {
  return (
    <>
      <Static items={[...messages]}>{(m, i) => <Text key={i}>{m}</Text>}</Static>
      {hidden ? null : <Live s={s} barWidth={barWidth} />}
    </>
  );
}

function Live({ s, barWidth }: { s: Snapshot; barWidth: number }) {
  if (s.phase === "idle") return <Text dimColor>preparing…</Text>;
  const hashing = s.phase === "hash" || s.phase === "verify";
  // While hashing or verifying, the bar follows that phase: the bytes bar
  // would sit still (or full, for a verify) and look stuck.
  const fraction = hashing ? s.phaseProgress : s.percentDone;
  const amount = hashing
    ? `${formatBytes(s.phaseHashedBytes)}${s.phaseProgress === null ? "" : ` / ${formatBytes(s.bytesTotal)}`}`
    : `${formatBytes(s.bytesDone)} / ${formatBytes(s.bytesTotal)}`;
  return (
    <Box flexDirection="column">
      <Box gap={2}>
        <Text bold>{title(s)}</Text>
        <Text color={phaseColor(s.phase)}>{phaseLabel(s)}</Text>
      </Box>
      <Box gap={2}>
        <Text>
          [<Text color="cyan">{bar(fraction ?? 0, barWidth)}</Text>]
        </Text>
        <Text>{formatPercent(fraction).padStart(4)}</Text>
        <Text>{amount}</Text>
        {s.bytesSkipped > 0 ? <Text dimColor>({formatBytes(s.bytesSkipped)} skipped)</Text> : null}
      </Box>
      <Box gap={2}>
        <Text>{formatRate(s.rateBytesPerSec)}</Text>
        <Text>ETA {formatEta(s.etaSeconds)}</Text>
        <Text>
          parts {s.partsDone}/{s.partsTotal} ({s.partsInFlight} in flight)
        </Text>
        {s.retries > 0 ? (
          <Text color="yellow">
            {s.retries} {s.retries === 1 ? "retry" : "retries"}
          </Text>
        ) : null}
        {s.filesTotal > 1 ? (
          <Text>
            files {s.filesDone}/{s.filesTotal}
          </Text>
        ) : null}
        <Text dimColor>elapsed {formatDuration(s.elapsedMs)}</Text>
      </Box>
    </Box>
  );
}

function title(s: Snapshot): string {
  if (!s.op) return "drive";
  const name = displayName(s.op, s.remote, s.local);
  return s.op === "push" ? `push ${name} → ${s.remote}` : `pull ${name} → ${s.local}`;
}

function phaseLabel(s: Snapshot): string {
  switch (s.phase) {
    case "hash":
      return s.phaseProgress === null ? "hashing" : `hashing ${formatPercent(s.phaseProgress)}`;
    case "verify":
      return s.phaseProgress === null ? "verifying" : `verifying ${formatPercent(s.phaseProgress)}`;
    case "transfer":
      return "transferring";
    case "commit":
      return "committing";
    case "done":
      return "done";
    case "idle":
      return "preparing";
  }
}

function phaseColor(phase: Phase): string {
  return phase === "done" ? "green" : phase === "transfer" ? "cyan" : "magenta";
}

/** Whole cells only: the partial-block glyphs render unevenly across fonts. */
export function bar(fraction: number, width: number): string {
  const clamped = Math.min(1, Math.max(0, fraction));
  const full = Math.floor(clamped * width);
  return "█".repeat(full) + "░".repeat(width - full);
}
