/**
 * When a link copies its control messages onto the reverse path (duplex-path.ts). Private to
 * src/transport.
 *
 * Copies cost a write, a frame and a wake-up of the peer each. A healthy idle cluster exchanges
 * ten heartbeats and ten answers a second per follower, all answered within a millisecond:
 * copying them all (protocol 3 as first released) raised an idle node's wake-ups from ~25–33 to
 * ~40–45 a second and its CPU by 0.1–0.2 % of a core for nothing. So copies are kept for when a
 * path is in doubt:
 *
 * - **Votes, pre-votes and their answers: always.** They travel only during an election, when
 *   something is already wrong, and between followers that never talk otherwise, so there is no
 *   recent traffic to judge the path by.
 * - **Heartbeats: when the peer has been silent** (nothing heard on its own connection) for
 *   `afterSilenceMs`, a heartbeat and a half at the defaults: the answer to the previous
 *   heartbeat is missing, so the connection this node dialled, or the peer's, is stuck.
 * - **Heartbeat and append answers: while the peer copies its heartbeats** (one arrived back on
 *   this node's own connection within `holdMs`): the peer does not hear the answers, so they go
 *   both ways until it does and stops copying. An answer is never copied because answers came
 *   back: the peers' copies would keep each other going after the fault had ended.
 *
 * What this gives up: the first heartbeat after a connection got stuck still goes on one path, so
 * the copies start one heartbeat interval later than when every heartbeat was copied.
 */
import type { Clock } from "../common/clock.js";
import { MessageType } from "../raft/types.js";

/** Options of a {@link DuplexPolicy}. */
export interface DuplexPolicyOptions {
  readonly clock: Clock;
  /** Heartbeats are copied once the peer has been silent this long, in ms. */
  readonly afterSilenceMs: number;
  /** Answers are copied for this long after a heartbeat arrived back, in ms. */
  readonly holdMs: number;
  /** When the peer was last heard from on its own connection (clock ms), if ever. */
  readonly lastHeardMs: () => number | undefined;
}

/** Decides, per message type, whether one link copies it onto the reverse path now. */
export class DuplexPolicy {
  #heartbeatBackAtMs = -Infinity;

  constructor(private readonly options: DuplexPolicyOptions) {}

  /** A heartbeat of the peer arrived on this node's own connection: it is copying its heartbeats. */
  heartbeatCameBack(): void {
    this.#heartbeatBackAtMs = this.options.clock.now();
  }

  /** True if a message of `type` (one of the duplex types) is copied now. Throws nothing. */
  copies(type: MessageType): boolean {
    switch (type) {
      case MessageType.Heartbeat: {
        const heard = this.options.lastHeardMs();
        return (
          heard === undefined || this.options.clock.now() - heard >= this.options.afterSilenceMs
        );
      }
      case MessageType.HeartbeatResp:
      case MessageType.AppResp:
        return this.options.clock.now() - this.#heartbeatBackAtMs < this.options.holdMs;
      default:
        return true;
    }
  }
}
