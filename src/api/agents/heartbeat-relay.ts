/**
 * A follower's relay of agent heartbeats to the leader, batched: the heartbeats that reach this
 * server within one window (50 ms) go to the leader in one request (`POST /v1/agent/heartbeats`,
 * under this server's own node certificate), instead of one forwarded request each. The leader
 * then pays for one request per window per follower, not for every agent: with a thousand agents
 * spread over three servers, two thirds of its heartbeat requests go (Nomad's servers likewise
 * forward client heartbeats to the leader).
 *
 * An agent's heartbeat is answered only once the batch holding it was recorded by the leader, with
 * the leader's answer: the disconnect grace counts from acknowledged heartbeats, and an
 * acknowledgement must still mean "the leader heard it". A batch the leader did not take (no
 * leader, a timeout, NOT_LEADER after an election) fails every heartbeat in it; each agent tries
 * again, on this server or the next.
 *
 * Bounded: at most {@link MAX_RELAY_PENDING} node ids wait at once (past it: OVERLOADED), and a
 * batch holds them all (the leader's route takes {@link MAX_RELAY_BATCH} ids per request).
 */
import type { Clock, TimerHandle } from "../../common/clock.js";
import { OverloadedError } from "../../common/errors.js";
import type { NodeId } from "../../raft/types.js";
import type { HeartbeatAck } from "./agent-hub.js";

/** How long heartbeats gather before they go to the leader. */
export const RELAY_WINDOW_MS = 50;
/** Most node ids one relayed batch carries (the leader's route refuses more). */
export const MAX_RELAY_BATCH = 10_000;
/** Deadline of one relayed batch (well under an agent's 5 s heartbeat deadline). */
export const RELAY_TIMEOUT_MS = 2_000;
/** Most node ids waiting at once on one server: one full batch. */
export const MAX_RELAY_PENDING = 10_000;

/** Sends one batch to the leader; resolves once the leader recorded every id in it. */
export type RelaySend = (nodeIds: readonly NodeId[]) => Promise<HeartbeatAck>;

interface Waiter {
  readonly resolve: (ack: HeartbeatAck) => void;
  readonly reject: (error: Error) => void;
}

/** See the module comment. */
export class HeartbeatRelay {
  readonly #clock: Clock;
  readonly #send: RelaySend;
  readonly #windowMs: number;
  /** The heartbeats of the batch being gathered, by node (an agent's repeats share one slot). */
  #pending = new Map<NodeId, Waiter[]>();
  #timer: TimerHandle | undefined;
  #closed = false;
  /** Batches sent (for metrics and tests). */
  batches = 0;

  constructor(options: { clock: Clock; send: RelaySend; windowMs?: number }) {
    this.#clock = options.clock;
    this.#send = options.send;
    this.#windowMs = options.windowMs ?? RELAY_WINDOW_MS;
  }

  /**
   * Relays a heartbeat of `nodeId`; resolves with the leader's answer once it recorded it.
   * Rejects with OverloadedError past {@link MAX_RELAY_PENDING}, or with the batch's error.
   */
  submit(nodeId: NodeId): Promise<HeartbeatAck> {
    if (this.#closed) return Promise.reject(new OverloadedError("this server is shutting down"));
    let waiters = this.#pending.get(nodeId);
    if (waiters === undefined) {
      if (this.#pending.size >= MAX_RELAY_PENDING) {
        return Promise.reject(
          new OverloadedError(
            `${MAX_RELAY_PENDING} heartbeats already wait for the leader here; retry on another server`,
          ),
        );
      }
      waiters = [];
      this.#pending.set(nodeId, waiters);
    }
    const promise = new Promise<HeartbeatAck>((resolve, reject) =>
      waiters.push({ resolve, reject }),
    );
    this.#timer ??= this.#clock.setTimer(this.#windowMs, () => this.#flush());
    return promise;
  }

  /** Fails what waits and takes no more. */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    const pending = this.#pending;
    this.#pending = new Map();
    const error = new OverloadedError("this server is shutting down; retry on another server");
    for (const waiters of pending.values()) for (const w of waiters) w.reject(error);
  }

  #flush(): void {
    this.#timer = undefined;
    const batch = this.#pending;
    this.#pending = new Map();
    if (batch.size === 0) return;
    this.batches++;
    this.#send([...batch.keys()]).then(
      (ack) => {
        for (const waiters of batch.values()) for (const w of waiters) w.resolve(ack);
      },
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        for (const waiters of batch.values()) for (const w of waiters) w.reject(failure);
      },
    );
  }
}
