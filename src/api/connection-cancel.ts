/**
 * Cancellation of the work a request asked for when its client goes away: one signal per
 * connection, aborted when the connection closes while one of its requests is being served.
 *
 * An `AbortController` per request, with a `close` listener on its response, cost ~4.5 µs of
 * every request (2–4% of a leader's CPU under a write load) and ~1.4 KB of garbage. A client's
 * keep-alive connection carries request after request, and a request's client is gone exactly
 * when its connection closes, so the signal is made once per connection. It is aborted only if
 * a request is in its handler then, as the per-request listener (removed when the handler
 * finished) did; a connection that closes while idle aborts nothing, and is never used again.
 *
 * Whoever listens on the signal must remove the listener when its work ends (every waiter does:
 * `Operation`, the coordination and task waits, the agents' polls), or listeners would pile up
 * over a connection's life. `AbortSignal.any` must not be given it: Node keeps each signal it
 * makes on the source's list for the source's life; use {@link requestSignal} for that.
 */
import { setMaxListeners } from "node:events";

/** The socket of a request, as far as cancellation needs it. */
export interface CancellableConnection {
  once(event: "close", listener: () => void): unknown;
}

/** Listeners a connection's signal takes before Node warns: several per pipelined request. */
const MAX_LISTENERS_PER_CONNECTION = 64;

/**
 * The cancellation of one connection's requests; see the module comment. A request calls
 * {@link begin} as its handler starts and {@link end} once it is done (in a `finally`).
 */
export class ConnectionCancel {
  readonly #controller = new AbortController();
  /** Requests of the connection in their handler now. */
  #serving = 0;

  /** Watches `connection` for its close. Throws nothing. */
  constructor(connection?: CancellableConnection) {
    setMaxListeners(MAX_LISTENERS_PER_CONNECTION, this.#controller.signal);
    connection?.once("close", () => {
      if (this.#serving > 0) this.#controller.abort();
    });
  }

  /** A request's handler starts; returns the signal that cancels its work. Throws nothing. */
  begin(): AbortSignal {
    this.#serving++;
    return this.#controller.signal;
  }

  /** A request's handler is done (call once per {@link begin}). Throws nothing. */
  end(): void {
    this.#serving--;
  }
}

const byConnection = new WeakMap<CancellableConnection, ConnectionCancel>();

/** For a request without a connection (none in practice): nothing ever aborts it. */
const UNCONNECTED = new ConnectionCancel();

/** The cancellation of `connection`'s requests, made on its first request. Throws nothing. */
export function connectionCancel(
  connection: CancellableConnection | null | undefined,
): ConnectionCancel {
  if (connection === null || connection === undefined) return UNCONNECTED;
  let cancel = byConnection.get(connection);
  if (cancel === undefined) {
    cancel = new ConnectionCancel(connection);
    byConnection.set(connection, cancel);
  }
  return cancel;
}

/**
 * A signal of this request alone that aborts with its connection's, until `release` is called:
 * for `AbortSignal.any` and other holders that keep what they are given (forwarding), which
 * must not keep the connection's signal. Throws nothing.
 */
export function requestSignal(connection: AbortSignal): {
  readonly signal: AbortSignal;
  readonly release: () => void;
} {
  const controller = new AbortController();
  if (connection.aborted) {
    controller.abort();
    return { signal: controller.signal, release: () => undefined };
  }
  const onAbort = (): void => controller.abort();
  connection.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    release: () => connection.removeEventListener("abort", onAbort),
  };
}
