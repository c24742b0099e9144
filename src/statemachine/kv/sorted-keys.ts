/**
 * The store's keys in order, for range and prefix listing. Keys are ordered by Unicode code
 * point, which is also the order of their UTF-8 bytes (JavaScript's `<` compares UTF-16 code
 * units instead, which puts U+E000..U+FFFF after astral characters).
 *
 * Blocks of at most {@link DEFAULT_MAX_BLOCK_KEYS} sorted keys, in order, with each block's
 * position: a lookup is two binary searches, an insert or delete moves at most a block's keys
 * plus one number per block. A single sorted array moved half its keys on every insert: at
 * 200,000 keys that was ~75 µs a new key, most of a fill's apply time and 4.7 s of replaying
 * 62,000 new keys at a restart.
 */

/** Keys per block before it splits in two. */
export const DEFAULT_MAX_BLOCK_KEYS = 1024;

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

/** The position of the first key of `keys` (sorted) that is ≥ `key`. */
function lowerBoundIn(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareKeys(keys[middle] as string, key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** A set of keys kept in {@link compareKeys} order; positions count from 0 over all keys. */
export class SortedKeys {
  readonly #maxBlockKeys: number;
  /** Non-empty blocks, each sorted, every key of one below every key of the next. */
  #blocks: string[][] = [];
  /** `#starts[i]`: the position of `#blocks[i][0]`. */
  #starts: number[] = [];
  #size = 0;

  /** An empty set; `maxBlockKeys` (≥ 2) is for tests. */
  constructor(maxBlockKeys = DEFAULT_MAX_BLOCK_KEYS) {
    this.#maxBlockKeys = Math.max(2, maxBlockKeys);
  }

  /** How many keys there are. */
  get size(): number {
    return this.#size;
  }

  /** The block that holds `key` or would: the last whose first key is ≤ `key` (0 if none). */
  #blockOf(key: string): number {
    const blocks = this.#blocks;
    let low = 0;
    let high = blocks.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareKeys((blocks[middle] as string[])[0] as string, key) <= 0) low = middle + 1;
      else high = middle;
    }
    return Math.max(0, low - 1);
  }

  /** The block holding position `index` (0 ≤ index < size). */
  #blockAt(index: number): number {
    const starts = this.#starts;
    let low = 0;
    let high = starts.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((starts[middle] as number) <= index) low = middle + 1;
      else high = middle;
    }
    return low - 1;
  }

  /** Adds `delta` to the positions of the blocks after block `b`. */
  #shiftAfter(b: number, delta: number): void {
    const starts = this.#starts;
    for (let i = b + 1; i < starts.length; i++) starts[i] = (starts[i] as number) + delta;
  }

  /** The key at position `index` (0-based), or undefined past the end. */
  at(index: number): string | undefined {
    if (!(index >= 0 && index < this.#size)) return undefined;
    const b = this.#blockAt(index);
    return (this.#blocks[b] as string[])[index - (this.#starts[b] as number)];
  }

  /** The position of the first key ≥ `key`. */
  lowerBound(key: string): number {
    if (this.#size === 0) return 0;
    const b = this.#blockOf(key);
    return (this.#starts[b] as number) + lowerBoundIn(this.#blocks[b] as string[], key);
  }

  /** Adds `key`; does nothing if it is present. */
  insert(key: string): void {
    if (this.#size === 0) {
      this.#blocks = [[key]];
      this.#starts = [0];
      this.#size = 1;
      return;
    }
    const b = this.#blockOf(key);
    const block = this.#blocks[b] as string[];
    const index = lowerBoundIn(block, key);
    if (block[index] === key) return;
    block.splice(index, 0, key);
    this.#size++;
    this.#shiftAfter(b, 1);
    if (block.length > this.#maxBlockKeys) {
      const half = block.length >>> 1;
      this.#blocks.splice(b + 1, 0, block.splice(half));
      this.#starts.splice(b + 1, 0, (this.#starts[b] as number) + half);
    }
  }

  /** Removes `key`; does nothing if it is absent. */
  remove(key: string): void {
    if (this.#size === 0) return;
    const b = this.#blockOf(key);
    const block = this.#blocks[b] as string[];
    const index = lowerBoundIn(block, key);
    if (block[index] !== key) return;
    block.splice(index, 1);
    this.#size--;
    this.#shiftAfter(b, -1);
    if (block.length === 0) {
      this.#blocks.splice(b, 1);
      this.#starts.splice(b, 1);
      return;
    }
    // A small block joins its successor when both fit in one, so the blocks stay few.
    const next = this.#blocks[b + 1];
    if (next !== undefined && block.length + next.length <= this.#maxBlockKeys >>> 1) {
      for (const moved of next) block.push(moved);
      this.#blocks.splice(b + 1, 1);
      this.#starts.splice(b + 1, 1);
    }
  }

  /** Replaces the contents with `keys`, which must already be in order without duplicates. */
  replaceWithSorted(keys: readonly string[]): void {
    // Half-full blocks: inserts that follow split none at first.
    const per = Math.max(1, this.#maxBlockKeys >>> 1);
    this.#blocks = [];
    this.#starts = [];
    for (let start = 0; start < keys.length; start += per) {
      this.#blocks.push(keys.slice(start, start + per));
      this.#starts.push(start);
    }
    this.#size = keys.length;
  }

  /** A copy of the keys in order (one pointer per key: a point-in-time list for a snapshot). */
  toArray(): string[] {
    const keys = new Array<string>(this.#size);
    let position = 0;
    for (const block of this.#blocks) for (const key of block) keys[position++] = key;
    return keys;
  }

  /** Iterates the keys in order. */
  *[Symbol.iterator](): IterableIterator<string> {
    for (const block of this.#blocks) yield* block;
  }
}
