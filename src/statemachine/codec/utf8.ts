/**
 * UTF-8 helpers for deterministic codecs. Strings on the wire are UTF-8; decoding is strict
 * (invalid sequences are errors, a leading byte-order mark is kept) so that decoding is the exact
 * inverse of encoding.
 */
import { InvalidArgumentError } from "../../common/index.js";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The UTF-8 length in bytes of `text`, or `undefined` if `text` is not well-formed UTF-16 (it
 * holds a lone surrogate, which has no UTF-8 encoding). Throws nothing.
 */
export function utf8ByteLength(text: string): number | undefined {
  let lengthBytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) {
      lengthBytes += 1;
    } else if (unit < 0x800) {
      lengthBytes += 2;
    } else if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return undefined;
      lengthBytes += 4;
      i++;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return undefined;
    } else {
      lengthBytes += 3;
    }
  }
  return lengthBytes;
}

/**
 * Encodes well-formed `text` as UTF-8. Throws `InvalidArgumentError` if `text` holds a lone
 * surrogate (TextEncoder would silently replace it, so two strings would share one encoding).
 */
export function encodeUtf8(text: string): Uint8Array {
  if (utf8ByteLength(text) === undefined) {
    throw new InvalidArgumentError("string is not well-formed Unicode (lone surrogate)");
  }
  return encoder.encode(text);
}

/** Decodes strict UTF-8. Throws `InvalidArgumentError` on any invalid byte sequence. */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new InvalidArgumentError("string is not valid UTF-8");
  }
}
