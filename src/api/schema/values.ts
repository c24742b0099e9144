/**
 * Values are bytes. In JSON a value travels as `valueBase64` (standard base64, always accepted
 * and always returned) or, as a convenience, as `value`: a UTF-8 string. Responses carry `value`
 * too whenever the bytes are valid UTF-8.
 *
 * Change events (the event stream and kv watch) carry exactly one of the two instead: `value`
 * when the bytes are valid UTF-8 (decoded strictly, a BOM kept, so encoding the text gives the
 * bytes back), `valueBase64` otherwise. A watcher of a busy prefix gets every change, and the
 * base64 copy of a text value was over a third of the bytes it read and parsed.
 */
import { InvalidArgumentError } from "../../common/errors.js";

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A value as JSON: `valueBase64` always, `value` when the bytes are valid UTF-8. */
export interface ValueJson {
  readonly value?: string;
  readonly valueBase64: string;
}

/** Encodes bytes for a response. Throws nothing. */
export function valueToJson(bytes: Uint8Array): ValueJson {
  const valueBase64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(
    "base64",
  );
  try {
    return { value: STRICT_UTF8.decode(bytes), valueBase64 };
  } catch {
    return { valueBase64 };
  }
}

/** A value in a change event: its text if the bytes are valid UTF-8, else its base64. */
export type EventValueJson = { readonly value: string } | { readonly valueBase64: string };

/** Encodes bytes for a change event (see the module comment). Throws nothing. */
export function valueToEventJson(bytes: Uint8Array): EventValueJson {
  try {
    return { value: STRICT_UTF8.decode(bytes) };
  } catch {
    return {
      valueBase64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"),
    };
  }
}

/**
 * Decodes a request's value: exactly one of `value` (UTF-8 text) and `valueBase64`.
 * @throws InvalidArgumentError if both or neither are given, or the base64 is malformed.
 */
export function valueFromJson(
  input: { readonly value?: string | undefined; readonly valueBase64?: string | undefined },
  what = "value",
): Uint8Array {
  const { value, valueBase64 } = input;
  if ((value === undefined) === (valueBase64 === undefined)) {
    throw new InvalidArgumentError(
      `give exactly one of ${what} (a UTF-8 string) and ${what}Base64 (base64 bytes)`,
    );
  }
  if (value !== undefined) return requestBytes(Buffer.from(value, "utf8"));
  if (valueBase64 === undefined || !BASE64_PATTERN.test(valueBase64)) {
    throw new InvalidArgumentError(`${what}Base64 is not valid standard base64 (with padding)`);
  }
  return requestBytes(Buffer.from(valueBase64, "base64"));
}

/**
 * A request's decoded bytes as a plain `Uint8Array` over the `Buffer`'s memory. A small Buffer
 * is cut from Node's shared pool: several times cheaper than an array of its own (TextEncoder's,
 * or a copy), which every write paid for a value its command copies at once. Whoever keeps such
 * bytes keeps the pool's slab, so they are for requests only.
 */
function requestBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Decodes a response's value (its `valueBase64`). Throws nothing for well-formed input. */
export function valueFromResponse(json: ValueJson): Uint8Array {
  return new Uint8Array(Buffer.from(json.valueBase64, "base64"));
}
