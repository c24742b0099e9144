import type { ReadState } from "../raft/types.js";
import type { Operation } from "./operation.js";
import type { Clock, TimerHandle } from "./ports.js";

interface Waiter<S> {
  readonly query: (stateMachine: S) => unknown;
  readonly operation: Operation<unknown>;
}

interface Round<S> {
  readonly key: string;
  readonly waiters: Waiter<S>[];
  readonly timer: TimerHandle;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * Batches linearizable reads: every read that arrives while a ReadIndex round is in flight
 * joins the next round, so any number of concurrent reads costs one heartbeat round per
 * round trip. A round whose answer never comes (lost message, leader change) is retried with a
 * fresh request id.
 */
export class ReadBatcher<S> {
  private queue: Waiter<S>[] = [];
  private inFlight: Round<S> | undefined;
  private confirmed: { index: number; waiters: Waiter<S>[] }[] = [];
  private sequence = 0;

  constructor(
    private readonly options: {
      readonly nodeId: number;
      /**
       * Distinguishes this incarnation of the node: a restarted node counts its request ids from
       * 1 again, and a delayed answer to a request of its previous life must not complete a new
       * round (it could carry an older read index).
       */
      readonly incarnation: number;
      readonly clock: Clock;
      /** A round not confirmed within this long is sent again. */
      readonly retryAfterMs: number;
      /** Asks the core for a read index with this request id. */
      readonly requestReadIndex: (context: Uint8Array) => void;
    },
  ) {}

  /** Adds a read; it is answered by {@link serve} once confirmed and applied. */
  enqueue<T>(query: (stateMachine: S) => T, operation: Operation<T>): void {
    this.queue.push({ query, operation: operation as Operation<unknown> });
    this.startRound();
  }

  private startRound(): void {
    if (this.inFlight !== undefined) return;
    const waiters = this.queue.filter((w) => !w.operation.done);
    this.queue = [];
    if (waiters.length === 0) return;
    const key = `${this.options.nodeId}:${this.options.incarnation}:${++this.sequence}`;
    const timer = this.options.clock.setTimer(this.options.retryAfterMs, () => {
      if (this.inFlight?.key !== key) return;
      // No answer: put the reads back in front and ask again under a new id.
      this.inFlight = undefined;
      this.queue = [...waiters, ...this.queue];
      this.startRound();
    });
    this.inFlight = { key, waiters, timer };
    try {
      this.options.requestReadIndex(textEncoder.encode(key));
    } catch (error) {
      timer.cancel();
      this.inFlight = undefined;
      for (const w of waiters) w.operation.reject(error as Error);
    }
  }

  /** The core confirmed a round: its reads may be served once applied reaches `index`. */
  onReadState(readState: ReadState): void {
    const round = this.inFlight;
    if (round === undefined || textDecoder.decode(readState.requestCtx) !== round.key) return;
    round.timer.cancel();
    this.inFlight = undefined;
    this.confirmed.push({ index: readState.index, waiters: round.waiters });
    this.startRound();
  }

  /** Answers every confirmed read whose index is applied. */
  serve(appliedIndex: number, stateMachine: S): void {
    while (this.confirmed.length > 0 && (this.confirmed[0]?.index ?? Infinity) <= appliedIndex) {
      const batch = this.confirmed.shift();
      for (const w of batch?.waiters ?? []) {
        if (w.operation.done) continue;
        try {
          w.operation.resolve(w.query(stateMachine));
        } catch (error) {
          w.operation.reject(error instanceof Error ? error : new Error(String(error)));
        }
      }
    }
  }

  /** Rejects every read (the node is stopping). */
  rejectAll(error: Error): void {
    this.inFlight?.timer.cancel();
    const all = [
      ...this.queue,
      ...(this.inFlight?.waiters ?? []),
      ...this.confirmed.flatMap((c) => c.waiters),
    ];
    this.queue = [];
    this.inFlight = undefined;
    this.confirmed = [];
    for (const w of all) w.operation.reject(error);
  }
}
