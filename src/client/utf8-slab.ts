/**
 * UTF-8 encoding of short texts into shared slabs, as Node's `Buffer.from` does with its pool: a
 * kv watch gives each put's value as bytes, and a watcher of a busy prefix encodes one value per
 * event. `TextEncoder.encode` makes a fresh `ArrayBuffer` for each (about twice the time of
 * encoding into a slab and taking a view of it).
 *
 * A view keeps its whole slab ({@link SLAB_BYTES}) alive, so only texts up to
 * {@link MAX_SLAB_TEXT_CHARS} go into slabs: a consumer that keeps a few values keeps at most a
 * few slabs. Longer texts get an `ArrayBuffer` of their own.
 */

/** Bytes of one slab. */
export const SLAB_BYTES = 8 * 1024;
/** Texts longer than this (in UTF-16 code units) are encoded on their own. */
export const MAX_SLAB_TEXT_CHARS = 512;
/** The most bytes a text of {@link MAX_SLAB_TEXT_CHARS} can take in UTF-8. */
const MAX_SLAB_TEXT_BYTES = 3 * MAX_SLAB_TEXT_CHARS;

const encoder = new TextEncoder();
let slab = new Uint8Array(SLAB_BYTES);
let used = 0;

/**
 * The UTF-8 bytes of `text` (lone surrogates as U+FFFD, as `TextEncoder` does), as a view of a
 * shared slab when `text` is short. The bytes are the caller's: no other call writes over them.
 * Throws nothing.
 */
export function encodeUtf8(text: string): Uint8Array {
  if (text.length > MAX_SLAB_TEXT_CHARS) return encoder.encode(text);
  if (used + MAX_SLAB_TEXT_BYTES > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    used = 0;
  }
  const { written } = encoder.encodeInto(text, slab.subarray(used));
  const bytes = new Uint8Array(slab.buffer, used, written);
  used += written;
  return bytes;
}
