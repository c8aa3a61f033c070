import { JsonPrinter } from "./json-printer.js";
import { PlainPrinter } from "./plain-printer.js";
import type { Printer } from "./printer.js";

export interface ChoosePrinterOptions {
  /** --json: JSON lines on stdout, whatever the terminal. */
  json: boolean;
  /** --quiet: no periodic status and no messages; the summary and errors stay. */
  quiet?: boolean;
  /** A run of many files (runTree): a line per file, the files in flight. */
  files?: boolean;
  /** Two-way sync: plain output prints its operations, not a line per file sent. */
  sync?: boolean;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
  env?: NodeJS.ProcessEnv;
}

/**
 * The one place that decides how a command's progress is shown:
 *
 *   --json                                    -> JsonPrinter
 *   --quiet                                   -> PlainPrinter, quiet
 *   stdout a TTY, TERM not "dumb", not in CI  -> InkPrinter
 *   stdout a TTY, TERM=dumb or no width       -> BarPrinter
 *   anything else (pipe, file, CI)            -> PlainPrinter
 *
 * Never ink on a non-TTY: it keeps writing cursor escapes into the pipe.
 * Not ink in CI (CI or CONTINUOUS_INTEGRATION set) even on a TTY either: ink
 * then holds every frame back until it unmounts, so the log would show no
 * progress at all; plain lines do better there. A quiet run has no live view
 * to draw, so it needs no terminal handling either.
 */
export async function choosePrinter(opts: ChoosePrinterOptions): Promise<Printer> {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const env = opts.env ?? process.env;
  const quiet = opts.quiet ?? false;
  const files = opts.files ?? false;

  if (opts.json) return new JsonPrinter({ out: stdout, quiet, files });
  if (quiet || !stdout.isTTY || inCi(env)) return new PlainPrinter({ stdout, stderr, quiet, files, sync: opts.sync ?? false });
  // A TTY that reports no width (a pty nobody sized, as `script` or a bare
  // `docker run -t` gives) would have ink lay out a zero-column frame; the
  // bar falls back to 80 columns.
  // Loaded on demand: ink and React would cost every scripted run a third of its start-up.
  if (env.TERM === "dumb" || !stdout.columns) return new (await import("./bar-printer.js")).BarPrinter({ stdout, stderr, files });
  return new (await import("./ink-printer.js")).InkPrinter({ stdout, stderr, files });
}

/** The same test ink itself makes (the is-in-ci package). */
function inCi(env: NodeJS.ProcessEnv): boolean {
  const set = (key: string) => key in env && env[key] !== "0" && env[key] !== "false";
  return set("CI") || set("CONTINUOUS_INTEGRATION");
}
