/**
 * Checkers of the coordination primitives, over histories any test records (the simulator, a
 * unit harness, or real processes):
 *
 * - **No early expiry.** A lease may expire only after every renewal the client saw succeed
 *   has run its course, measured on the client's clock from when it *sent* the request (the
 *   grant counts as the first renewal). A failover must not shorten that.
 * - **Fencing.** The writes a protected resource accepted carry strictly increasing fencing
 *   tokens: no holder acted with a token older than one already used.
 */
import type { Violation } from "./violation.js";

/** A grant or keep-alive of one lease that the client saw succeed. */
export interface AcknowledgedRenewal {
  readonly lease: number;
  /** The client's clock when it sent the request. */
  readonly sentAtMs: number;
  readonly ttlMs: number;
}

/** A lease's expiry, as observed on the same clock (its keys were deleted at this time or before). */
export interface ObservedExpiry {
  readonly lease: number;
  readonly expiredAtMs: number;
}

/**
 * One `no-early-expiry` violation per lease that expired before an acknowledged renewal ran
 * out. Throws nothing.
 */
export function checkNoEarlyExpiry(
  renewals: readonly AcknowledgedRenewal[],
  expiries: readonly ObservedExpiry[],
): Violation[] {
  const promised = new Map<number, number>();
  for (const renewal of renewals) {
    const until = renewal.sentAtMs + renewal.ttlMs;
    if (until > (promised.get(renewal.lease) ?? -Infinity)) promised.set(renewal.lease, until);
  }
  const violations: Violation[] = [];
  for (const expiry of expiries) {
    const until = promised.get(expiry.lease);
    if (until !== undefined && expiry.expiredAtMs < until) {
      violations.push({
        property: "no-early-expiry",
        message: `lease ${expiry.lease} expired at ${expiry.expiredAtMs} ms, but a renewal the client saw succeed promised it until ${until} ms`,
        atMs: expiry.expiredAtMs,
      });
    }
  }
  return violations;
}

/** One write a protected resource accepted. */
export interface FencedWrite {
  readonly token: number;
  /** Who wrote (for the message). */
  readonly holder: string;
}

/**
 * One `fencing` violation per accepted write whose token is not above every earlier one.
 * Throws nothing.
 */
export function checkFencing(writes: readonly FencedWrite[]): Violation[] {
  const violations: Violation[] = [];
  let highest = -Infinity;
  let highestHolder = "";
  writes.forEach((write, position) => {
    if (write.token <= highest) {
      violations.push({
        property: "fencing",
        message: `write ${position} by ${write.holder} carries fencing token ${write.token}, not above ${highest} used before by ${highestHolder}`,
        atMs: position,
      });
    } else {
      highest = write.token;
      highestHolder = write.holder;
    }
  });
  return violations;
}
