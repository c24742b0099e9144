/**
 * An agent-only worker's heartbeats: one every `intervalMs` (sooner again after a failure), each
 * acknowledged by the leader (any server forwards it there). Every acknowledged heartbeat is
 * reported with the time it was *sent*: the leader heard the agent no earlier than that, so a
 * disconnect grace counted from it ends no later than the leader's dead-after time would.
 */
import type { Clock, TimerHandle } from "../../../common/clock.js";
import type { Logger } from "../../../common/logger.js";
import type { HeartbeatAnswer } from "./http-link.js";

/** Default heartbeat interval as a fraction of the dead-after time: four beats per period. */
export const HEARTBEAT_FRACTION_OF_DEAD_AFTER = 1 / 4;
/** Shortest interval between heartbeats. */
export const MIN_HEARTBEAT_INTERVAL_MS = 100;

/** The default interval for a dead-after time. */
export function defaultHeartbeatIntervalMs(workerDeadAfterMs: number): number {
  return Math.max(
    MIN_HEARTBEAT_INTERVAL_MS,
    Math.floor(workerDeadAfterMs * HEARTBEAT_FRACTION_OF_DEAD_AFTER),
  );
}

/** Options of {@link HeartbeatLoop}. */
export interface HeartbeatLoopOptions {
  readonly send: () => Promise<HeartbeatAnswer>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly intervalMs: number;
  /** Called after each acknowledged heartbeat with the clock time it was sent at. */
  readonly onAck: (sentAtMs: number, answer: HeartbeatAnswer) => void;
}

/** See the module comment. */
export class HeartbeatLoop {
  readonly #options: HeartbeatLoopOptions;
  #timer: TimerHandle | undefined;
  #closed = false;
  #failures = 0;

  constructor(options: HeartbeatLoopOptions) {
    this.#options = options;
  }

  /** Sends the first heartbeat now, then keeps going. */
  start(): void {
    this.#beat();
  }

  /** Stops sending. */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }

  #beat(): void {
    if (this.#closed) return;
    const { clock, send, log, intervalMs } = this.#options;
    const sentAtMs = clock.now();
    send().then(
      (answer) => {
        if (this.#closed) return;
        if (this.#failures > 0)
          log.info("heartbeats acknowledged again", { after: this.#failures });
        this.#failures = 0;
        this.#options.onAck(sentAtMs, answer);
        this.#next(intervalMs);
      },
      (error: unknown) => {
        if (this.#closed) return;
        this.#failures++;
        if (this.#failures === 1 || this.#failures % 10 === 0) {
          log.warn("heartbeat not acknowledged; retrying", {
            failures: this.#failures,
            error: (error as Error).message,
          });
        }
        // Sooner than the interval: the next server may answer, and the grace is running.
        this.#next(Math.max(MIN_HEARTBEAT_INTERVAL_MS, Math.floor(intervalMs / 2)));
      },
    );
  }

  #next(delayMs: number): void {
    if (this.#closed) return;
    this.#timer = this.#options.clock.setTimer(delayMs, () => this.#beat());
  }
}
