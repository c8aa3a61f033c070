import { Box, Static, Text } from "ink";
import type { Snapshot } from "../accounting/accounting.js";
import { GAP } from "./fit.js";
import { liveLines } from "./live-lines.js";

export { bar } from "./live-lines.js";

/**
 * The TTY progress view. A pure function of one Snapshot: InkPrinter re-renders
 * it from the Accounting on a timer, so the view holds no state of its own and
 * renders the same in a test as on a terminal. Its lines come from liveLines,
 * fitted to the width (less one column: some terminals wrap a line that
 * fills the last one), so nothing wraps into fragments on a narrow terminal.
 */
export interface ProgressViewProps {
  snapshot: Snapshot;
  /** Informational lines, printed once above the live region (ink's Static). */
  messages?: readonly string[];
  /** Draw only the messages: the live region is cleared before the summary line. */
  hidden?: boolean;
  /** The terminal's width. Default 80. */
  columns?: number;
  /** A run of many files: the files in flight and the counts. */
  files?: boolean;
}

export function ProgressView({ snapshot, messages = [], hidden = false, columns = 80, files = false }: ProgressViewProps) {
  return (
    <>
      <Static items={[...messages]}>{(m, i) => <Text key={i}>{m}</Text>}</Static>
      {hidden ? null : (
        <Box flexDirection="column">
          {liveLines(snapshot, { columns: columns - 1, files }).map((line, i) => (
            <Text key={i} wrap="truncate-end">
              {line.map((seg, j) => (
                <Text key={j} color={seg.color} dimColor={seg.dim} bold={seg.bold}>
                  {j > 0 ? GAP : ""}
                  {seg.text}
                </Text>
              ))}
            </Text>
          ))}
        </Box>
      )}
    </>
  );
}
