/**
 * The liveness of one outbound peer link, on a {@link Clock} (no sockets, so it is tested with a
 * fake clock). Private to src/transport.
 *
 * A link is **silent** when something was written to it and nothing has been heard from the peer
 * since (any frame on a connection the peer dialled, heartbeat responses and votes, or the
 * handshake's answer; not the copies a peer sends back on this node's own connection, which
 * prove only that direction: see duplex-path.ts). Raft answers what a leader or candidate sends
 * within a heartbeat, and a follower hears its leader every heartbeat, so a link silent for
 * `silenceLimitMs` is one whose bytes are not arriving: the
 * TCP connection is dead or stuck in the kernel's retransmission backoff, which after a partition
 * of N seconds can wait about N/2 seconds more before it sends again. The link is then reset
 * (closed and redialled), which costs one handshake. A link that writes nothing is never judged:
 * there is nothing to lose on it.
 *
 * A write the socket cannot drain within `drainTimeoutMs` resets the link too (the peer stopped
 * reading, or the path is gone while the kernel's buffer absorbed the writes).
 */
import type { Clock, TimerHandle } from "../common/clock.js";

/** Options of {@link LinkLiveness}. */
export interface LinkLivenessOptions {
  readonly clock: Clock;
  /** Reset a link that wrote and heard nothing for this long, in ms. */
  readonly silenceLimitMs: number;
  /** Reset a link whose socket has not drained for this long, in ms. */
  readonly drainTimeoutMs: number;
  /** Called once per silent or stuck period, with why; the owner resets the link. */
  readonly onDead: (reason: "silent" | "undrained", forMs: number) => void;
}

/** See the module comment. */
export class LinkLiveness {
  /** When the first write after the last thing heard happened; undefined: nothing unanswered. */
  #unansweredSinceMs: number | undefined;
  #lastHeardMs: number | undefined;
  #silenceTimer: TimerHandle | undefined;
  #drainTimer: TimerHandle | undefined;

  constructor(private readonly options: LinkLivenessOptions) {}

  /** When the peer was last heard from (clock ms), if ever. */
  get lastHeardMs(): number | undefined {
    return this.#lastHeardMs;
  }

  /** Something was written to the link (call on every write while connected). */
  wrote(): void {
    if (this.#unansweredSinceMs !== undefined) return;
    this.#unansweredSinceMs = this.options.clock.now();
    // One timer per silent period: a timer armed by an earlier write that was answered re-arms
    // itself for the remainder when it fires.
    if (this.#silenceTimer === undefined) this.#armSilence(this.options.silenceLimitMs);
  }

  /** A frame from the peer arrived (on any connection). */
  heard(): void {
    this.#lastHeardMs = this.options.clock.now();
    this.#unansweredSinceMs = undefined;
  }

  /** The socket asked for a drain. */
  blocked(): void {
    if (this.#drainTimer !== undefined) return;
    const sinceMs = this.options.clock.now();
    this.#drainTimer = this.options.clock.setTimer(this.options.drainTimeoutMs, () => {
      this.#drainTimer = undefined;
      this.options.onDead("undrained", this.options.clock.now() - sinceMs);
    });
  }

  /** The socket drained. */
  drained(): void {
    this.#drainTimer?.cancel();
    this.#drainTimer = undefined;
  }

  /** The connection is gone: forget what was unanswered (a new one starts afresh). */
  reset(): void {
    this.#silenceTimer?.cancel();
    this.#silenceTimer = undefined;
    this.#unansweredSinceMs = undefined;
    this.drained();
  }

  #armSilence(delayMs: number): void {
    this.#silenceTimer = this.options.clock.setTimer(delayMs, () => {
      this.#silenceTimer = undefined;
      const since = this.#unansweredSinceMs;
      if (since === undefined) return;
      const silentMs = this.options.clock.now() - since;
      if (silentMs >= this.options.silenceLimitMs) {
        this.#unansweredSinceMs = undefined;
        this.options.onDead("silent", silentMs);
      } else {
        this.#armSilence(this.options.silenceLimitMs - silentMs);
      }
    });
  }
}
