import { configureTextEncoding, getTextEncoding } from "@bufbuild/protobuf/wire";

/** What an invalid UTF-8 string field decodes to: a lone surrogate, which no valid UTF-8 can produce. */
export const INVALID_UTF8 = "\udfff";

let configured = false;

/**
 * Invalid UTF-8 in a binary protobuf string field makes connect-es fail the
 * whole parse, and it answers a failed binary parse with Internal (500).
 * Decoded instead to a lone surrogate, the field reaches the handler, whose
 * checks refuse it (request-limits.ts, remote-path.ts) with InvalidArgument
 * naming the field, as JSON's "\ud800" escapes are. Process-wide, because
 * protobuf-es takes its text codec only from this hook; responses are
 * encoded as before.
 */
export function decodeInvalidUtf8AsLoneSurrogate(): void {
  if (configured) return;
  configured = true;
  const base = getTextEncoding();
  configureTextEncoding({
    ...base,
    decodeUtf8(bytes, strict) {
      if (!strict) return base.decodeUtf8(bytes, false);
      try {
        return base.decodeUtf8(bytes, true);
      } catch {
        return INVALID_UTF8;
      }
    },
  });
}
