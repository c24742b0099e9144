/**
 * The store's keys in order, for range and prefix listing. Keys are ordered by Unicode code
 * point, which is also the order of their UTF-8 bytes (JavaScript's `<` compares UTF-16 code
 * units instead, which puts U+E000..U+FFFF after astral characters).
 *
 * A sorted array with binary search: O(log n) lookups and O(n) inserts and deletes (a memmove),
 * which is fast up to about a million keys. Swap in a B-tree behind this interface beyond that.
 */

/** Maps a UTF-16 code unit so that comparing mapped units orders strings by code point. */
function codePointOrderUnit(unit: number): number {
  if (unit < 0xd800) return unit;
  // Surrogates (astral characters) move above U+E000..U+FFFF; the latter move down.
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** Compares two well-formed strings by Unicode code point: negative, 0 or positive. Throws nothing. */
export function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const unitA = a.charCodeAt(i);
    const unitB = b.charCodeAt(i);
    if (unitA !== unitB) return codePointOrderUnit(unitA) - codePointOrderUnit(unitB);
  }
  return a.length - b.length;
}

/** A set of keys kept in {@link compareKeys} order. */
export class SortedKeys {
  #keys: string[] = [];

  /** How many keys there are. */
  get size(): number {
    return this.#keys.length;
  }

  /** The key at position `index` (0-based), or undefined past the end. */
  at(index: number): string | undefined {
    return this.#keys[index];
  }

  /** The position of the first key ≥ `key`. */
  lowerBound(key: string): number {
    let low = 0;
    let high = this.#keys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareKeys(this.#keys[middle] as string, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Adds `key`; does nothing if it is present. */
  insert(key: string): void {
    const index = this.lowerBound(key);
    if (this.#keys[index] !== key) this.#keys.splice(index, 0, key);
  }

  /** Removes `key`; does nothing if it is absent. */
  remove(key: string): void {
    const index = this.lowerBound(key);
    if (this.#keys[index] === key) this.#keys.splice(index, 1);
  }

  /** Replaces the contents with `keys`, which must already be in order without duplicates. */
  replaceWithSorted(keys: string[]): void {
    this.#keys = keys;
  }

  /** A copy of the keys in order (one pointer per key: a point-in-time list for a snapshot). */
  toArray(): string[] {
    return this.#keys.slice();
  }

  /** Iterates the keys in order. */
  [Symbol.iterator](): IterableIterator<string> {
    return this.#keys.values();
  }
}
