/**
 * A source of randomness passed into deterministic code. The consensus core and the simulator
 * never call `Math.random`; they take one of these, so a run replays exactly from its seed.
 */
export interface Random {
  /** A uniformly distributed integer in `[0, maxExclusive)`; `maxExclusive` must be ≥ 1. */
  int(maxExclusive: number): number;
  /** A uniformly distributed float in `[0, 1)`. */
  float(): number;
}

/**
 * A seeded pseudo-random generator (xoshiro128**, seeded through splitmix32). Fast, small state,
 * good statistical quality; not for cryptography.
 */
export class SeededRandom implements Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** @param seed any 32-bit integer; equal seeds give equal sequences. */
  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  private nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** @inheritdoc */
  float(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** @inheritdoc */
  int(maxExclusive: number): number {
    return Math.floor(this.float() * maxExclusive);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
