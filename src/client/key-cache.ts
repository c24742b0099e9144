/**
 * The text of short ASCII keys read from a binary kv watch, decoded once and reused: a watcher of
 * a busy prefix reads the same few thousand keys over and over, and `Buffer#toString` costs ~90
 * ns a key (a call into C++ and a new string), where hashing and comparing a short key's bytes in
 * JavaScript costs ~15 ns. Strings are immutable, so handing the same string to every event of a
 * key is as good as a fresh one.
 *
 * A direct-mapped table of {@link KEY_CACHE_SLOTS} slots, shared by the watches of the process; a
 * key whose slot holds another key takes it over. Only keys of at most {@link MAX_CACHED_KEY_BYTES}
 * bytes, all ASCII, are kept (at most a few hundred KB in all); others are decoded every time. A
 * watch of keys that never repeat pays the hash (~15 ns a key) for nothing.
 */

/** Slots of the table (a power of two). */
export const KEY_CACHE_SLOTS = 4096;
/** Keys longer than this, in bytes, are not cached. */
export const MAX_CACHED_KEY_BYTES = 64;

const slots: (string | undefined)[] = new Array<string | undefined>(KEY_CACHE_SLOTS).fill(
  undefined,
);

/**
 * The UTF-8 text of `bytes[start, start + length)` (as `Buffer#toString("utf8")` gives it), from
 * the table when it is a short ASCII key seen before. Throws nothing (the range must be inside).
 */
export function decodeKey(bytes: Buffer, start: number, length: number): string {
  if (length > MAX_CACHED_KEY_BYTES) return bytes.toString("utf8", start, start + length);
  // FNV-1a over the bytes; any byte of 0x80 or more makes it not ASCII (then decoded as UTF-8).
  let hash = 0x811c9dc5;
  let high = 0;
  for (let i = start; i < start + length; i++) {
    const byte = bytes[i] as number;
    high |= byte;
    hash = Math.imul(hash ^ byte, 0x01000193);
  }
  if (high >= 0x80) return bytes.toString("utf8", start, start + length);
  const slot = (hash >>> 0) & (KEY_CACHE_SLOTS - 1);
  const cached = slots[slot];
  if (cached !== undefined && cached.length === length && sameAscii(cached, bytes, start)) {
    return cached;
  }
  const key = bytes.toString("latin1", start, start + length);
  slots[slot] = key;
  return key;
}

/** Whether the ASCII string `text` is the bytes of `bytes` from `start` (as long as `text`). */
function sameAscii(text: string, bytes: Buffer, start: number): boolean {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) !== bytes[start + i]) return false;
  }
  return true;
}
