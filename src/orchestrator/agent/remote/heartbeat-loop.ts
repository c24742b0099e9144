/**
 * An agent-only worker's heartbeats: one every `intervalMs` (sooner again after a failure), each
 * acknowledged by the leader (any server forwards it there). Every acknowledged heartbeat is
 * reported with the time it was *sent*: the leader heard the agent no earlier than that, so a
 * disconnect grace counted from it ends no later than the leader's dead-after time would.
 *
 * A heartbeat does not wait for the one before to be answered (up to {@link MAX_HEARTBEATS_IN_FLIGHT}
 * at once). A server that stalls (paused, or busy with an election) answers its queued heartbeats
 * together once it runs again, and the latest of them then counts: waiting for each answer
 * before sending the next, the agent would resume counting from a heartbeat sent before the stall
 * and, sending the next one only an interval later, run out of grace just after reconnecting,
 * stopping the work it had just taken up again.
 */
import type { Clock, TimerHandle } from "../../../common/clock.js";
import type { Logger } from "../../../common/logger.js";
import type { HeartbeatAnswer } from "./http-link.js";

/** Default heartbeat interval as a fraction of the dead-after time: four beats per period. */
export const HEARTBEAT_FRACTION_OF_DEAD_AFTER = 1 / 4;
/** Shortest interval between heartbeats. */
export const MIN_HEARTBEAT_INTERVAL_MS = 100;
/**
 * Most heartbeats awaiting an answer at once: with the default interval, one dead-after time's
 * worth. Past it the loop skips beats (the servers are not answering; more requests would only
 * pile up on them).
 */
export const MAX_HEARTBEATS_IN_FLIGHT = 4;

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
  /** When the pending timer fires, on the clock. */
  #dueAtMs = 0;
  #inFlight = 0;
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

  /** Heartbeats sent and not yet answered (for tests). */
  get inFlight(): number {
    return this.#inFlight;
  }

  #beat(): void {
    if (this.#closed) return;
    const { clock, intervalMs } = this.#options;
    this.#next(intervalMs);
    if (this.#inFlight >= MAX_HEARTBEATS_IN_FLIGHT) return;
    this.#inFlight++;
    const sentAtMs = clock.now();
    this.#options.send().then(
      (answer) => {
        this.#inFlight--;
        if (this.#closed) return;
        if (this.#failures > 0) {
          this.#options.log.info("heartbeats acknowledged again", { after: this.#failures });
        }
        this.#failures = 0;
        this.#options.onAck(sentAtMs, answer);
      },
      (error: unknown) => {
        this.#inFlight--;
        if (this.#closed) return;
        this.#failures++;
        if (this.#failures === 1 || this.#failures % 10 === 0) {
          this.#options.log.warn("heartbeat not acknowledged; retrying", {
            failures: this.#failures,
            error: (error as Error).message,
          });
        }
        // Sooner than the interval: the next server may answer, and the grace is running.
        const soonerMs = Math.max(MIN_HEARTBEAT_INTERVAL_MS, Math.floor(intervalMs / 2));
        if (this.#dueAtMs - clock.now() > soonerMs) this.#next(soonerMs);
      },
    );
  }

  /** (Re)arms the one timer of the next beat. */
  #next(delayMs: number): void {
    if (this.#closed) return;
    this.#timer?.cancel();
    this.#dueAtMs = this.#options.clock.now() + delayMs;
    this.#timer = this.#options.clock.setTimer(delayMs, () => this.#beat());
  }
}
