import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Bearer tokens look like `drv_<id>_<secret>`. The id finds the user's row;
 * only SHA-256 of the secret is stored, and it is compared in constant time.
 * A database leak therefore yields no usable token.
 */
export interface MintedToken {
  token: string;
  tokenId: string;
  tokenHash: Buffer;
}

const PATTERN = /^drv_([A-Za-z0-9-]{16})_([A-Za-z0-9_-]{43})$/;

export function mintToken(): MintedToken {
  const tokenId = randomBytes(12).toString("base64url").replace(/_/g, "-");
  const secret = randomBytes(32).toString("base64url");
  return { token: `drv_${tokenId}_${secret}`, tokenId, tokenHash: hashSecret(secret) };
}

export function parseToken(token: string): { tokenId: string; secret: string } | null {
  const m = PATTERN.exec(token);
  return m ? { tokenId: m[1]!, secret: m[2]! } : null;
}

export function secretMatches(secret: string, storedHash: Buffer): boolean {
  const actual = hashSecret(secret);
  return actual.length === storedHash.length && timingSafeEqual(actual, storedHash);
}

function hashSecret(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}
