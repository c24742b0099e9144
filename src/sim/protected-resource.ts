/**
 * The resource a lock protects, as Kleppmann's storage service: every action carries its
 * holder's fencing token, and the resource refuses a token below the largest it has accepted,
 * so a holder that was paused past its lease (and lost the lock meanwhile) cannot act after its
 * successor did. It records what it accepted for the checkers.
 */
import type { AcceptedAction } from "./checkers/locks.js";

/** The protected resource of a lock workload. */
export class ProtectedResource {
  /** Accepted actions, in order. */
  readonly accepted: AcceptedAction[] = [];
  /** Actions refused for a stale token. */
  rejected = 0;
  private highest = 0;

  /** `acceptAnyToken` is a PLANTED BUG: the resource skips the fencing check. */
  constructor(private readonly acceptAnyToken = false) {}

  /** Applies an action of `client` carrying `token`; true if accepted. Throws nothing. */
  act(client: number, token: number): boolean {
    if (token < this.highest && !this.acceptAnyToken) {
      this.rejected++;
      return false;
    }
    this.highest = Math.max(this.highest, token);
    this.accepted.push({ client, token });
    return true;
  }
}
