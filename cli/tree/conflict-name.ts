import { hostname } from "node:os";

/**
 * The name a remote version gets when the local file at its path must be
 * kept: `name (conflicted copy <host> <YYYY-MM-DD HHMMSS>).ext`, beside it,
 * as Dropbox names it. The extension is the last one of the name (a leading
 * dot is no extension: `.bashrc` stays whole); the time is local time. For
 * pull, pull --watch and, later, two-way sync.
 */
export function conflictName(path: string, when: Date, host: string = hostname()): string {
  const slash = path.lastIndexOf("/");
  const folder = path.slice(0, slash + 1);
  const name = path.slice(slash + 1);
  const dot = name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  const tag = ` (conflicted copy ${safeHost(host)} ${stamp(when)})`;
  return folder + fitName(stem, tag + ext);
}

/** A name segment may hold 255 bytes: the stem gives way (whole characters) so that the tag and the extension fit. */
const NAME_MAX = 255;

function fitName(stem: string, tail: string): string {
  let out = stem;
  while (out && Buffer.byteLength(out + tail) > NAME_MAX) out = [...out].slice(0, -1).join("");
  return Buffer.byteLength(out + tail) <= NAME_MAX ? out + tail : Buffer.from(out + tail).subarray(0, NAME_MAX).toString().replace(/\uFFFD+$/, "");
}

/** A hostname is the user's own, but it lands in a file name: no slashes or control characters. */
function safeHost(host: string): string {
  return host.replace(/[/\\\p{Cc}]/gu, "-") || "unknown";
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}
