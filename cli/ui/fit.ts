/**
 * Lines that fit the terminal. A live view whose lines wrap breaks into
 * fragments and its redraw (cursor up N lines) lands in the wrong place, so
 * every line the ink view and the bar draw is fitted here first: optional
 * parts are dropped, then the line is cut.
 *
 * Widths are counted in code points: the text is ours (ASCII, the bar's
 * blocks, an arrow) except for file names, which truncateMiddle shortens
 * with room to spare for wide characters.
 */

/** One piece of a line; lower priority pieces are dropped first when the line is too long. */
export interface Segment {
  text: string;
  /** 0 is never dropped; higher numbers go first. */
  priority?: number;
  color?: string;
  dim?: boolean;
  bold?: boolean;
}

export const GAP = "  ";

/**
 * A name fit for a terminal: control characters (C0, DEL, C1) become "?", as
 * ls -q does, so a hostile name cannot move the cursor or recolour the screen.
 */
export function printable(name: string): string {
  return name.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}

export function width(text: string): number {
  let n = 0;
  for (const ch of text) n += isWide(ch.codePointAt(0)!) ? 2 : 1;
  return n;
}

/** The segments to draw, joined by GAP, in at most `columns` columns. */
export function fitSegments(segments: readonly Segment[], columns: number): Segment[] {
  let kept = segments.filter((s) => s.text !== "");
  const total = (list: readonly Segment[]) => list.reduce((n, s, i) => n + width(s.text) + (i > 0 ? GAP.length : 0), 0);
  while (total(kept) > columns) {
    let worst = -1;
    for (let i = 0; i < kept.length; i++) {
      const p = kept[i]!.priority ?? 0;
      if (p > 0 && (worst < 0 || p >= (kept[worst]!.priority ?? 0))) worst = i;
    }
    if (worst < 0) break;
    kept = kept.filter((_, i) => i !== worst);
  }
  // What is left and still too long is cut at the end.
  const out: Segment[] = [];
  let room = columns;
  for (const s of kept) {
    const gap = out.length > 0 ? GAP.length : 0;
    if (room - gap <= 0) break;
    const text = truncateEnd(s.text, room - gap);
    out.push({ ...s, text });
    room -= gap + width(text);
  }
  return out;
}

/** The fitted line as plain text. */
export function fitLine(segments: readonly Segment[], columns: number): string {
  return fitSegments(segments, columns)
    .map((s) => s.text)
    .join(GAP);
}

/** "a/very/long/path/name.bin" -> "a/very/…/name.bin", in at most max columns. */
export function truncateMiddle(text: string, max: number): string {
  if (width(text) <= max) return text;
  if (max <= 1) return max === 1 ? "…" : "";
  const chars = [...text];
  const keep = max - 1;
  const tail = Math.ceil(keep / 2);
  let start = chars.slice(0, keep - tail).join("");
  let end = chars.slice(chars.length - tail).join("");
  // Wide characters take two columns: shorten until it fits.
  while (width(start) + width(end) + 1 > max && (start || end)) {
    if (width(start) >= width(end) && start) start = [...start].slice(0, -1).join("");
    else end = [...end].slice(1).join("");
  }
  return `${start}…${end}`;
}

/** "some long text" -> "some lo…", in at most max columns. */
export function truncateEnd(text: string, max: number): string {
  if (width(text) <= max) return text;
  if (max <= 0) return "";
  let out = "";
  for (const ch of text) {
    if (width(out + ch) > max - 1) break;
    out += ch;
  }
  return `${out}…`;
}

/** East Asian wide and fullwidth ranges, and emoji: two columns on a terminal. */
function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}
