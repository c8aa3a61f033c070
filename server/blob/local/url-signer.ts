import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * HMAC-SHA256 over newline-joined fields, as unpadded base64url. Fields must
 * not contain "\n" themselves (callers validate them first), or two different
 * requests could share a signature.
 */
export class UrlSigner {
  readonly #secret: Buffer;

  constructor(secret: Buffer) {
    if (secret.length < 32) throw new RangeError("URL signing secret must be at least 32 bytes");
    this.#secret = Buffer.from(secret);
  }

  sign(fields: readonly string[]): string {
    return createHmac("sha256", this.#secret).update(fields.join("\n")).digest("base64url");
  }

  /**
   * Compares the text of the signature, not its decoded bytes: base64url
   * decoding skips stray characters, so a padded or decorated signature must
   * not pass.
   */
  verify(fields: readonly string[], signature: string): boolean {
    const expected = Buffer.from(this.sign(fields));
    const given = Buffer.from(signature);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
