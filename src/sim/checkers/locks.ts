/**
 * Checkers of a lock workload's history (the simulator's, or any test's that records it):
 *
 * - **Fencing at the resource.** The actions a protected resource accepted carry tokens that
 *   never go down (one holding's actions share its token): a holder never got an action in
 *   with a token older than one already used (`checkFencing` of coordination.ts, allowing a
 *   holding's repeated token).
 * - **Exclusive holders.** Take every action a holder decided on while its lease was valid in
 *   its own time (its last acknowledged renewal's send plus the TTL lies ahead). Ordered by when
 *   they were decided, their tokens never go down. Two holders that both believed they held the
 *   lock, the older one acting after the newer one, break it: the newer one must only have got
 *   the lock once the older one's lease was over (released, or expired no earlier than its
 *   holder's own bound). Unlike the first property, the resource does not enforce this one.
 */
import type { Violation } from "./violation.js";

/** One action a lock holder decided on, for the protected resource. */
export interface LockAction {
  /** The client that held the lock. */
  readonly client: number;
  /** Its fencing token (the create revision of its key in the line). */
  readonly token: number;
  /** Orders decisions (a logical clock; ties are impossible). */
  readonly decidedStamp: number;
  /** The holder's time when it decided. */
  readonly decidedAtMs: number;
  /** Until when its lease was surely valid then, in its own time. */
  readonly validUntilMs: number;
}

/** One action the resource accepted, in the order it accepted them. */
export interface AcceptedAction {
  readonly client: number;
  readonly token: number;
}

/**
 * One `fencing` violation per accepted action whose token is below one accepted before it.
 * Throws nothing.
 */
export function checkResourceFencing(accepted: readonly AcceptedAction[]): Violation[] {
  const violations: Violation[] = [];
  let highest: AcceptedAction | undefined;
  accepted.forEach((action, position) => {
    if (highest !== undefined && action.token < highest.token) {
      violations.push({
        property: "fencing",
        message: `the resource accepted action ${position} of client ${action.client} with token ${action.token}, below ${highest.token} accepted before from client ${highest.client}`,
        atMs: position,
      });
    } else highest = action;
  });
  return violations;
}

/**
 * One `exclusive-holders` violation per action decided under a valid lease after an action with
 * a newer token was. Throws nothing.
 */
export function checkExclusiveHolders(actions: readonly LockAction[]): Violation[] {
  const valid = actions
    .filter((action) => action.decidedAtMs < action.validUntilMs)
    .sort((a, b) => a.decidedStamp - b.decidedStamp);
  const violations: Violation[] = [];
  let newest: LockAction | undefined;
  for (const action of valid) {
    if (newest !== undefined && action.token < newest.token) {
      violations.push({
        property: "exclusive-holders",
        message:
          `client ${action.client} acted with token ${action.token} at ${action.decidedAtMs} ms, ` +
          `its lease valid until ${action.validUntilMs} ms in its own time, after client ` +
          `${newest.client} had acted with the newer token ${newest.token} at ` +
          `${newest.decidedAtMs} ms: both believed they held the lock`,
        atMs: action.decidedAtMs,
      });
    } else if (newest === undefined || action.token > newest.token) {
      newest = action;
    }
  }
  return violations;
}
