/**
 * A state machine wrapper that tells listeners, soon after, that entries were applied (or a
 * snapshot restored): the agent reconciles and task waits re-check on it. Listeners run on a
 * later turn (`defer`: the event loop's next turn on a real node, a zero-delay event of the
 * node's clock in the simulator), once per burst of applies, never inside the runtime's apply
 * loop, so a listener may read the state and propose without re-entering the runtime.
 */
import type { AppliedEntry, StateMachine } from "../statemachine/state-machine.js";

/** Runs a callback on a later turn; see the module comment. */
export type Defer = (callback: () => void) => void;

/** See the module comment. */
export class ApplyNotifier<Result> implements StateMachine<Result> {
  readonly #inner: StateMachine<Result>;
  readonly #listeners = new Set<() => void>();
  readonly #defer: Defer;
  #scheduled = false;

  /** Wraps `inner`; listeners run through `defer`. Throws nothing. */
  constructor(inner: StateMachine<Result>, defer: Defer) {
    this.#inner = inner;
    this.#defer = defer;
  }

  /** @inheritdoc */
  apply(entry: AppliedEntry): Result {
    const result = this.#inner.apply(entry);
    this.#schedule();
    return result;
  }

  /** @inheritdoc */
  snapshot(): Uint8Array {
    return this.#inner.snapshot();
  }

  /** @inheritdoc */
  restore(data: Uint8Array): void {
    this.#inner.restore(data);
    this.#schedule();
  }

  /** Calls `listener` after each burst of applies from now on; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #schedule(): void {
    if (this.#scheduled || this.#listeners.size === 0) return;
    this.#scheduled = true;
    this.#defer(() => {
      this.#scheduled = false;
      for (const listener of [...this.#listeners]) listener();
    });
  }
}
