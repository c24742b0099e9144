import type { Random } from "../common/random.js";

/**
 * Exponential backoff with jitter: the n-th consecutive failure waits a random time in
 * `[d/2, d)` where `d = min(max, base · 2ⁿ)`. The jitter keeps peers that lost a node at the
 * same moment from reconnecting in lockstep; the random is seeded, so a run replays.
 */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly random: Random,
    private readonly baseDelayMs: number,
    private readonly maxDelayMs: number,
  ) {}

  /** The delay before the next attempt, in ms; each call counts one more failure. */
  nextDelayMs(): number {
    // 2^30 is far past any sane cap; clamping the exponent keeps the product finite.
    const ceilingMs = Math.min(
      this.maxDelayMs,
      this.baseDelayMs * 2 ** Math.min(this.failures, 30),
    );
    this.failures++;
    return ceilingMs / 2 + this.random.float() * (ceilingMs / 2);
  }

  /** Forgets the failures (after a successful handshake). */
  reset(): void {
    this.failures = 0;
  }
}
