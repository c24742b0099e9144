/**
 * JSON as UTF-8 bytes for the orchestrator's codecs. Encoding is canonical because callers pass
 * values built by the strict readers (fixed key order, integers only, no lone surrogates), and
 * `JSON.stringify` is deterministic for such values. Decoding is strict UTF-8 then `JSON.parse`.
 */
import { InvalidArgumentError, isBlixardError } from "../../common/index.js";
import { decodeUtf8, encodeUtf8 } from "../codec/utf8.js";

/** `JSON.stringify(value)` as UTF-8. Throws `InvalidArgumentError` for a lone surrogate. */
export function encodeJson(value: unknown): Uint8Array {
  return encodeUtf8(JSON.stringify(value));
}

/**
 * Parses UTF-8 JSON. Throws `InvalidArgumentError` naming `what` for invalid UTF-8 or JSON; never
 * a `SyntaxError`.
 */
export function decodeJson(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = decodeUtf8(bytes);
  } catch {
    throw new InvalidArgumentError(`malformed ${what}: not valid UTF-8`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InvalidArgumentError(
      `malformed ${what}: not valid JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}

/**
 * Runs `read` over stored bytes (a kept result, a snapshot), where an over-limit field means the
 * bytes are malformed rather than a request too large: rethrows `TooLargeError` as
 * `InvalidArgumentError`, anything else unchanged.
 */
export function asMalformed<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (isBlixardError(error) && error.code === "TOO_LARGE") {
      throw new InvalidArgumentError(`malformed: ${error.message}`);
    }
    throw error;
  }
}
