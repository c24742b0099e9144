/**
 * An agent-only worker's disconnect grace (Nomad's `stop_after_client_disconnect`): when no
 * heartbeat sent in the last `graceMs` was acknowledged by the leader, the agent is cut off from
 * the cluster, which marks it offline and moves its work once its dead-after time passes. The
 * guard then says so (`onDisconnected`: the agent stops its tasks and VMs), so a partitioned
 * agent never runs work the cluster moved elsewhere for long; the next acknowledged heartbeat
 * says it is back (`onReconnected`).
 *
 * The grace is counted from when the last acknowledged heartbeat was *sent*; the leader heard it
 * no earlier, so with `graceMs` ≤ the leader's dead-after time (and clocks that run at the same
 * rate) the agent stops its work no later than the leader marks it offline, and before the work
 * is placed elsewhere. Default grace: the dead-after time (see `remote-agent.ts`).
 */
import type { Clock, TimerHandle } from "../../../common/clock.js";

/** Options of {@link DisconnectGuard}. */
export interface DisconnectGuardOptions {
  readonly clock: Clock;
  readonly graceMs: number;
  readonly onDisconnected: (silentMs: number) => void;
  readonly onReconnected: () => void;
}

/** See the module comment. */
export class DisconnectGuard {
  readonly #options: DisconnectGuardOptions;
  /** Undefined until the first contact: an agent that never reached the cluster runs nothing. */
  #lastContactMs: number | undefined;
  #timer: TimerHandle | undefined;
  #disconnected = false;
  #closed = false;

  /** Starts counting the grace at the first contact. */
  constructor(options: DisconnectGuardOptions) {
    this.#options = options;
  }

  /** True once the grace ran out, until the next contact. */
  get disconnected(): boolean {
    return this.#disconnected;
  }

  /** A heartbeat sent at `sentAtMs` was acknowledged. */
  contact(sentAtMs: number): void {
    if (this.#closed || (this.#lastContactMs !== undefined && sentAtMs < this.#lastContactMs)) {
      return;
    }
    this.#lastContactMs = sentAtMs;
    if (this.#disconnected) {
      this.#disconnected = false;
      this.#options.onReconnected();
    }
    this.#arm();
  }

  /** Stops watching. */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }

  #arm(): void {
    this.#timer?.cancel();
    const lastContactMs = this.#lastContactMs;
    if (this.#closed || this.#disconnected || lastContactMs === undefined) return;
    const { clock, graceMs } = this.#options;
    const dueInMs = Math.max(0, lastContactMs + graceMs - clock.now());
    this.#timer = clock.setTimer(dueInMs, () => {
      this.#timer = undefined;
      const silentMs = clock.now() - (this.#lastContactMs ?? lastContactMs);
      if (this.#closed || this.#disconnected) return;
      if (silentMs < graceMs) {
        this.#arm();
        return;
      }
      this.#disconnected = true;
      this.#options.onDisconnected(silentMs);
    });
  }
}
