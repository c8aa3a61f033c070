/**
 * The one order of paths on the local side: Unicode code point order of the
 * whole relative path, which is the byte order of its UTF-8 form. LMDB sorts
 * keys by their bytes, so the index's entries() and the walk agree on it.
 * JavaScript's `<` compares UTF-16 units instead, which differs for
 * characters past U+FFFF against U+E000..U+FFFF.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

// Surrogates (U+D800..U+DFFF) start code points past U+FFFF: move them above U+E000..U+FFFF.
function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}
