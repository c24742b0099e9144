/**
 * The leader's lease clock (etcd's lessor). Leases live in the replicated kv store with their
 * TTL only; when each one expires is decided here, on the leader, in memory:
 *
 * - **Expiry is a command.** A sweep every `checkIntervalMs` finds leases past their deadline
 *   and proposes one `leaseRevoke` for up to {@link MAX_LEASE_IDS_PER_REVOKE} of them. Apply
 *   never reads a clock; every replica deletes the same keys at the same index.
 * - **A new leader grants full TTLs.** Deadlines belong to one leadership term. When this node
 *   becomes leader (any new term) every lease's deadline is `now + ttl`, so no keep-alive the
 *   previous leader took can be lost by a failover: a lease never expires early because of one.
 * - **A deposed leader cannot expire a lease.** Losing leadership drops every deadline, and a
 *   revoke proposed in a term that has ended never commits (a log entry of term T commits only
 *   through the leader of term T or, carried forward, by a later leader that holds it, which
 *   then applies it before it confirms any read or keep-alive).
 * - **Keep-alives cost no log entry.** {@link renew} moves deadlines in memory; the caller first
 *   confirms leadership with a ReadIndex round (shared by concurrent requests), so a renewal a
 *   deposed leader took is refused instead of being lost.
 */
import { alignedDelayMs, type Clock, type TimerHandle } from "../common/clock.js";
import { NotLeaderError } from "../common/errors.js";

/** The most lease ids one expiry proposal names (the kv store's revoke limit). */
export const MAX_LEASE_IDS_PER_REVOKE = 1000;

/** How often the leader looks for expired leases, by default. */
export const DEFAULT_LEASE_CHECK_INTERVAL_MS = 100;

/**
 * How often a node with nothing to time (not the leader, or no lease exists) looks again, by
 * default (etcd's lessor checks every 500 ms). An idle process pays for every wakeup; the cost of
 * sleeping longer is that a new lease, or leases after a failover, start their clock up to this
 * much later: they live longer, never shorter.
 */
export const DEFAULT_LEASE_IDLE_CHECK_INTERVAL_MS = 500;

/** What the lessor needs of its node and the applied kv store. */
export interface LessorPort {
  /** This node's term while it is the leader, else undefined. */
  leaderTerm(): number | undefined;
  /** Calls `visit` for every lease in the applied store (id, TTL). */
  forEachLease(visit: (id: number, ttlMs: number) => void): void;
  /** The TTL of lease `id` in the applied store, or undefined if it does not exist. */
  leaseTtlMs(id: number): number | undefined;
  /** How many leases the applied store holds. */
  leaseCount(): number;
  /** Proposes revoking `ids` (no session: revoking twice is harmless); resolves once applied. */
  proposeRevoke(ids: readonly number[]): Promise<unknown>;
}

/** Options of a {@link Lessor}. */
export interface LessorOptions {
  readonly port: LessorPort;
  readonly clock: Clock;
  /** Default {@link DEFAULT_LEASE_CHECK_INTERVAL_MS}. */
  readonly checkIntervalMs?: number;
  /** Default {@link DEFAULT_LEASE_IDLE_CHECK_INTERVAL_MS} (never below `checkIntervalMs`). */
  readonly idleCheckIntervalMs?: number;
  /** Called when an expiry proposal fails (it is retried on a later sweep). */
  readonly onRevokeFailed?: (error: unknown) => void;
  /**
   * PLANTED BUG for tests: keep deadlines across leadership changes, i.e. expire leases on the
   * clock of a leadership that was lost. Never set outside tests.
   */
  readonly plantedKeepDeadlinesAcrossTerms?: boolean;
}

/** What a renewal found for one lease. */
export type RenewResult =
  /** Renewed: it lives at least `ttlMs` from when the request arrived. */
  | { readonly id: number; readonly ttlMs: number }
  /** Unknown, revoked, or already being expired. */
  | { readonly id: number; readonly ttlMs: -1 };

/** The leader's lease deadlines. See the module comment. */
export class Lessor {
  readonly #port: LessorPort;
  readonly #clock: Clock;
  readonly #checkIntervalMs: number;
  readonly #idleCheckIntervalMs: number;
  readonly #onRevokeFailed: (error: unknown) => void;
  readonly #planted: boolean;
  /** Lease id → deadline on {@link #clock}, for the term {@link #term} only. */
  readonly #deadlines = new Map<number, number>();
  /** Leases in an expiry proposal that has not finished: never renewed, never proposed twice. */
  readonly #expiring = new Set<number>();
  #term: number | undefined;
  #timer: TimerHandle | undefined;
  #stopped = false;

  /** Throws nothing; call {@link start} to sweep on a timer (or {@link sweep} by hand). */
  constructor(options: LessorOptions) {
    this.#port = options.port;
    this.#clock = options.clock;
    this.#checkIntervalMs = options.checkIntervalMs ?? DEFAULT_LEASE_CHECK_INTERVAL_MS;
    this.#idleCheckIntervalMs = Math.max(
      this.#checkIntervalMs,
      options.idleCheckIntervalMs ?? DEFAULT_LEASE_IDLE_CHECK_INTERVAL_MS,
    );
    this.#onRevokeFailed = options.onRevokeFailed ?? (() => undefined);
    this.#planted = options.plantedKeepDeadlinesAcrossTerms === true;
  }

  /**
   * Sweeps until {@link stop}: every `checkIntervalMs` while this node leads and leases exist,
   * every `idleCheckIntervalMs` otherwise.
   */
  start(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    const loop = (): void => {
      this.sweep();
      if (!this.#stopped) this.#timer = this.#clock.setTimer(this.#nextCheckInMs(), loop);
    };
    this.#timer = this.#clock.setTimer(this.#nextCheckInMs(), loop);
  }

  /** On the grid of the node's other periodic checks (alignedDelayMs): no wake-up of its own. */
  #nextCheckInMs(): number {
    const busy = this.#port.leaseCount() > 0 && this.#port.leaderTerm() !== undefined;
    return alignedDelayMs(
      this.#clock.now(),
      busy ? this.#checkIntervalMs : this.#idleCheckIntervalMs,
    );
  }

  /** Stops sweeping. Throws nothing. */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /**
   * Follows leadership (dropping or resetting deadlines on a change), gives leases it has not
   * seen a deadline of `now + ttl`, and proposes the expiry of those past their deadline.
   * Returns the ids it proposed to expire. Throws nothing.
   */
  sweep(): readonly number[] {
    if (!this.#followLeadership()) return [];
    const now = this.#clock.now();
    const expired: number[] = [];
    this.#port.forEachLease((id, ttlMs) => {
      let deadline = this.#deadlines.get(id);
      if (deadline === undefined) {
        deadline = now + ttlMs;
        this.#deadlines.set(id, deadline);
      }
      if (deadline <= now && !this.#expiring.has(id) && expired.length < MAX_LEASE_IDS_PER_REVOKE) {
        expired.push(id);
      }
    });
    if (this.#deadlines.size > this.#port.leaseCount()) this.#forgetRevoked();
    if (expired.length > 0) this.#expire(expired);
    return expired;
  }

  /**
   * Renews leases at the leader for a request that arrived at `receivedAtMs` while this node led
   * in `term` (the caller confirmed leadership with a ReadIndex round after the arrival): each
   * lives until at least `receivedAtMs + ttl`. Throws `NotLeaderError` if this node no longer
   * leads in `term`.
   */
  renew(ids: readonly number[], receivedAtMs: number, term: number): RenewResult[] {
    if (!this.#followLeadership() || this.#term !== term) {
      throw new NotLeaderError();
    }
    const results: RenewResult[] = [];
    for (const id of ids) {
      const ttlMs = this.#port.leaseTtlMs(id);
      if (ttlMs === undefined || this.#expiring.has(id)) {
        results.push({ id, ttlMs: -1 });
        continue;
      }
      const deadline = this.#deadlines.get(id);
      const renewed = receivedAtMs + ttlMs;
      if (deadline === undefined || deadline < renewed) this.#deadlines.set(id, renewed);
      results.push({ id, ttlMs });
    }
    return results;
  }

  /**
   * How long lease `id` has left on this leader's clock (ms, ≥ 0), its TTL if it has no deadline
   * yet, or undefined if it does not exist. Throws `NotLeaderError` off the leader.
   */
  remainingMs(id: number): number | undefined {
    if (!this.#followLeadership()) throw new NotLeaderError();
    const ttlMs = this.#port.leaseTtlMs(id);
    if (ttlMs === undefined) return undefined;
    const deadline = this.#deadlines.get(id);
    if (deadline === undefined) return ttlMs;
    return Math.max(0, deadline - this.#clock.now());
  }

  /** The term whose leases' deadlines are kept, or undefined when not leading. */
  get term(): number | undefined {
    return this.#term;
  }

  /** True if this node leads; on a change of term, deadlines start over (see the module comment). */
  #followLeadership(): boolean {
    const term = this.#port.leaderTerm();
    if (term === this.#term) return term !== undefined;
    if (!this.#planted) {
      this.#deadlines.clear();
      this.#expiring.clear();
    }
    this.#term = term;
    return term !== undefined;
  }

  #forgetRevoked(): void {
    for (const id of this.#deadlines.keys()) {
      if (this.#port.leaseTtlMs(id) === undefined) this.#deadlines.delete(id);
    }
  }

  #expire(ids: number[]): void {
    for (const id of ids) this.#expiring.add(id);
    const term = this.#term;
    const settle = (): void => {
      // Only this term's bookkeeping: after a change of term the set was already cleared.
      if (this.#term === term) for (const id of ids) this.#expiring.delete(id);
    };
    this.#port.proposeRevoke(ids).then(settle, (error: unknown) => {
      settle();
      this.#onRevokeFailed(error);
    });
  }
}
