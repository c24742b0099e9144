/**
 * Holds back a server's agent until the node's applied state has caught up with the cluster.
 *
 * A server that restarts replays its own log first: for a while its applied state is what the
 * cluster had before it went away. If the leader marked this node offline meanwhile and moved
 * its VMs, that old state still shows them placed here, and an agent reconciling against it
 * would start a second copy of a VM that already runs elsewhere, until the node catches up and
 * the agent stops it again. So the agent starts only after one linearizable barrier: the leader
 * confirms its commit index and this node applies up to it. From then on the applied state is at
 * least as new as the leader's was when asked, so a move made before the restart is seen.
 *
 * A node that cannot reach a leader (alone in a minority) starts no work at all: it keeps trying,
 * as an agent-only worker does until its first heartbeat is acknowledged.
 */
import type { Clock, TimerHandle } from "../../common/clock.js";
import type { Logger } from "../../common/logger.js";

/** First wait after a failed barrier; doubled up to {@link MAX_RETRY_MS}. */
export const FIRST_RETRY_MS = 100;
/** Longest wait between two barriers. */
export const MAX_RETRY_MS = 2000;
/** Each barrier's own deadline: an election or a slow leader gets this long. */
export const BARRIER_TIMEOUT_MS = 5000;

/** Options of {@link CatchUpGate}. */
export interface CatchUpGateOptions {
  /**
   * Resolves once this node has applied everything the leader had committed when called (a
   * linearizable read barrier); rejects when no leader answered.
   */
  readonly barrier: (timeoutMs: number) => Promise<unknown>;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called once, after the first barrier that succeeded. */
  readonly onCaughtUp: () => void;
}

/** See the module comment. Throws nothing. */
export class CatchUpGate {
  readonly #options: CatchUpGateOptions;
  #timer: TimerHandle | undefined;
  #closed = false;
  #open = false;
  #failures = 0;

  constructor(options: CatchUpGateOptions) {
    this.#options = options;
  }

  /** True once the node caught up and `onCaughtUp` ran. */
  get open(): boolean {
    return this.#open;
  }

  /** Starts trying. */
  start(): void {
    this.#try();
  }

  /** Stops trying; `onCaughtUp` is not called after this. */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }

  #try(): void {
    if (this.#closed) return;
    const { barrier, clock, log } = this.#options;
    barrier(BARRIER_TIMEOUT_MS).then(
      () => {
        if (this.#closed) return;
        this.#open = true;
        if (this.#failures > 0) {
          log.info("caught up with the cluster; starting work", { after: this.#failures });
        }
        this.#options.onCaughtUp();
      },
      (error: unknown) => {
        if (this.#closed) return;
        this.#failures++;
        if (this.#failures === 1 || this.#failures % 10 === 0) {
          log.info("waiting to catch up with the cluster before starting any work", {
            attempts: this.#failures,
            why: (error as Error).message,
          });
        }
        const delayMs = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (this.#failures - 1));
        this.#timer = clock.setTimer(delayMs, () => this.#try());
      },
    );
  }
}
