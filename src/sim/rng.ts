/**
 * Helpers over the seeded {@link Random}: every random choice of a run comes from one seed,
 * split into independent streams so that adding a draw in one component does not shift the
 * others.
 */
import { SeededRandom, type Random } from "../common/random.js";

/** A new, independent stream seeded from `random`. */
export function fork(random: Random): Random {
  return new SeededRandom(random.int(0x1_0000_0000));
}

/** True with probability `p`. */
export function chance(random: Random, p: number): boolean {
  return p > 0 && random.float() < p;
}

/** An integer in `[lo, hi]`. */
export function between(random: Random, lo: number, hi: number): number {
  return hi <= lo ? lo : lo + random.int(hi - lo + 1);
}

/**
 * One element of a non-empty array.
 * @throws RangeError on an empty array.
 */
export function pick<T>(random: Random, items: readonly T[]): T {
  if (items.length === 0) throw new RangeError("cannot pick from an empty array");
  return items[random.int(items.length)] as T;
}

/** A shuffled copy (Fisher–Yates). */
export function shuffled<T>(random: Random, items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

/** A running FNV-1a hash of numbers and strings: the fingerprint of a run's trace. */
export class TraceHash {
  private hash = 0x811c9dc5;

  /** Mixes in numbers (as 32-bit chunks) and strings. */
  add(...values: readonly (number | string)[]): void {
    for (const value of values) {
      if (typeof value === "number") {
        this.mix(value >>> 0);
        this.mix(Math.floor(value / 0x1_0000_0000) >>> 0);
      } else {
        for (let i = 0; i < value.length; i++) this.mix(value.charCodeAt(i));
      }
    }
  }

  /** Mixes in bytes. */
  addBytes(bytes: Uint8Array): void {
    this.mix(bytes.length);
    for (let i = 0; i < bytes.length; i++) this.mix(bytes[i] ?? 0);
  }

  private mix(word: number): void {
    this.hash = Math.imul(this.hash ^ (word & 0xffff), 0x01000193) >>> 0;
    this.hash = Math.imul(this.hash ^ (word >>> 16), 0x01000193) >>> 0;
  }

  /** The hash so far as 8 hex digits. */
  hex(): string {
    return this.hash.toString(16).padStart(8, "0");
  }
}

/** The FNV-1a digest of some bytes, as 8 hex digits. */
export function digestBytes(bytes: Uint8Array): string {
  const hash = new TraceHash();
  hash.addBytes(bytes);
  return hash.hex();
}
