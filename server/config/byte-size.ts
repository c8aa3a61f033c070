const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 };

/** Parses "8388608", "16M", "64MiB", "1G" or "64T" into bytes. Binary units, as everywhere in drive. */
export function parseByteSize(text: string): number {
  const m = /^(\d+)\s*([KMGTP]?)(i?B)?$/i.exec(text.trim());
  const bytes = m ? Number(m[1]) * UNITS[m[2]!.toUpperCase()]! : NaN;
  if (!Number.isSafeInteger(bytes)) throw new Error(`invalid size ${JSON.stringify(text)}: use forms like 512G, 64T or 1099511627776`);
  return bytes;
}
