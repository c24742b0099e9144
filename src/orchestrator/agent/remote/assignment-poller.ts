/**
 * An agent-only worker's assignment feed: a long poll, over and over, from the index of the
 * answer its view holds; each answer the view accepts wakes the reconcile loop. Errors back off
 * (100 ms doubling to 2 s) and try again (the link moves to the next server on its own).
 */
import type { Clock, TimerHandle } from "../../../common/clock.js";
import type { Logger } from "../../../common/logger.js";
import type { AssignmentsAnswer } from "./http-link.js";
import type { RemoteAssignmentsView } from "./remote-view.js";

/** How long a poll waits on the server for a change (under its 10 s request deadline). */
export const DEFAULT_POLL_WAIT_MS = 8_000;
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2_000;

/** Options of {@link AssignmentPoller}. */
export interface AssignmentPollerOptions {
  readonly fetch: (
    after: number,
    waitMs: number,
    signal: AbortSignal,
  ) => Promise<AssignmentsAnswer>;
  readonly view: RemoteAssignmentsView;
  readonly clock: Clock;
  readonly log: Logger;
  /** Default {@link DEFAULT_POLL_WAIT_MS}. */
  readonly waitMs?: number;
  /** Called after each answer the view accepted, with the clock time its poll was sent. */
  readonly onAnswer: (requestedAtMs: number) => void;
}

/** See the module comment. */
export class AssignmentPoller {
  readonly #options: AssignmentPollerOptions;
  /**
   * Cancels the poll in flight; kept from poll to poll until it is used (an AbortController and
   * its signal are costly to make, and a thousand agents in one process poll a lot).
   */
  #abort: AbortController | undefined;
  /** Counts polls sent: an answer to any but the latest is ignored. */
  #generation = 0;
  #timer: TimerHandle | undefined;
  #closed = false;
  #failures = 0;
  /** Polls sent (for tests and metrics). */
  polls = 0;
  /** Answers refused as older than the view (the agent switched to a server behind). */
  refused = 0;

  constructor(options: AssignmentPollerOptions) {
    this.#options = options;
  }

  /** Starts polling. */
  start(): void {
    this.#poll(0);
  }

  /** Ends the poll in flight and sends a fresh one at once (from the view's index, not waiting). */
  refresh(): void {
    if (this.#closed) return;
    this.#timer?.cancel();
    this.#abort?.abort();
    this.#poll(0);
  }

  /** Stops polling. */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#abort?.abort();
  }

  #poll(waitMs: number): void {
    if (this.#closed) return;
    const { fetch, view, clock, log } = this.#options;
    if (this.#abort === undefined || this.#abort.signal.aborted) {
      this.#abort = new AbortController();
    }
    const generation = ++this.#generation;
    const requestedAtMs = clock.now();
    this.polls++;
    fetch(view.index, waitMs, this.#abort.signal).then(
      (answer) => {
        if (this.#closed || generation !== this.#generation) return;
        this.#failures = 0;
        if (view.accept(answer)) this.#options.onAnswer(requestedAtMs);
        else {
          this.refused++;
          log.debug("ignored an older assignments answer", {
            index: answer.index,
            held: view.index,
          });
        }
        this.#poll(this.#options.waitMs ?? DEFAULT_POLL_WAIT_MS);
      },
      (error: unknown) => {
        if (this.#closed || generation !== this.#generation) return;
        this.#failures++;
        if (this.#failures === 1 || this.#failures % 20 === 0) {
          log.warn("assignment poll failed; retrying", {
            failures: this.#failures,
            error: (error as Error).message,
          });
        }
        const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.min(this.#failures - 1, 5));
        this.#timer = clock.setTimer(delay, () => this.#poll(0));
      },
    );
  }
}
