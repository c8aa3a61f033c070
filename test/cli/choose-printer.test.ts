import { describe, expect, it } from "vitest";
import { BarPrinter } from "../../cli/ui/bar-printer.js";
import { choosePrinter } from "../../cli/ui/choose-printer.js";
import { InkPrinter } from "../../cli/ui/ink-printer.js";
import { JsonPrinter } from "../../cli/ui/json-printer.js";
import { PlainPrinter } from "../../cli/ui/plain-printer.js";

function stream(isTTY: boolean, columns = 80): NodeJS.WriteStream {
  return { isTTY, columns, write: () => true } as unknown as NodeJS.WriteStream;
}

describe("choosePrinter", () => {
  const tty = stream(true);
  const pipe = stream(false);
  const stderr = stream(false);

  it("picks JSON for --json, even on a TTY", async () => {
    expect(await choosePrinter({ json: true, stdout: tty, stderr, env: { TERM: "xterm" } })).toBeInstanceOf(JsonPrinter);
  });

  it("picks ink on a TTY, a bar on a dumb one, plain lines elsewhere", async () => {
    expect(await choosePrinter({ json: false, stdout: tty, stderr, env: { TERM: "xterm-256color" } })).toBeInstanceOf(InkPrinter);
    expect(await choosePrinter({ json: false, stdout: tty, stderr, env: { TERM: "dumb" } })).toBeInstanceOf(BarPrinter);
    expect(await choosePrinter({ json: false, stdout: pipe, stderr, env: { TERM: "xterm" } })).toBeInstanceOf(PlainPrinter);
  });

  it("does not lay ink out on a TTY that reports no width", async () => {
    expect(await choosePrinter({ json: false, stdout: stream(true, 0), stderr, env: { TERM: "xterm" } })).toBeInstanceOf(BarPrinter);
  });

  it("never mounts ink in CI or under --quiet", async () => {
    expect(await choosePrinter({ json: false, stdout: tty, stderr, env: { CI: "true" } })).toBeInstanceOf(PlainPrinter);
    expect(await choosePrinter({ json: false, stdout: tty, stderr, env: { CI: "false" } })).toBeInstanceOf(InkPrinter);
    expect(await choosePrinter({ json: false, quiet: true, stdout: tty, stderr, env: {} })).toBeInstanceOf(PlainPrinter);
  });
});
