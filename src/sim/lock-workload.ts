/**
 * Simulated lock clients, taking the lock the way the SDK's `lock()` does (src/client/lock.ts):
 * grant a lease and keep it alive every third of its TTL; join the line with one txn that
 * creates `PREFIX<lease id>` under the lease if absent (its create revision is the client's
 * place in line and its fencing token); hold the lock once a linearizable list of the prefix
 * shows no key with a smaller create revision; act on the {@link ProtectedResource} with the
 * token while the lease is valid in the client's own time; release by deleting the key. As with
 * an etcd session, a client holds the lock several times under one lease (`lock()`'s `lease`
 * option), then revokes it.
 *
 * Two differences from the SDK, neither touching safety: a waiter polls the line instead of the
 * server's blocking wait (which runs on real timers), and a holder now and then stalls (a GC
 * pause: no keep-alives, no progress) between deciding on an action and sending it, so the
 * action may reach the resource after the lease ran out and a successor acted.
 *
 * Everything the checkers need is recorded: acknowledged renewals and observed expiries (no
 * early expiry), decided actions (exclusive holders) and accepted ones (fencing).
 */
import type { Random } from "../common/random.js";
import type { KvEntry, KvTxnResult } from "../statemachine/kv/types.js";
import type { AcknowledgedRenewal, ObservedExpiry } from "./checkers/coordination.js";
import type { LockAction } from "./checkers/locks.js";
import type { SimCluster } from "./cluster.js";
import { CoordCaller } from "./coord-caller.js";
import type { ProtectedResource } from "./protected-resource.js";
import { between, chance, fork, type TraceHash } from "./rng.js";
import type { Scheduler } from "./scheduler.js";
import type { ObservedStateMachine } from "./state-machine.js";

/** What the lock clients do. */
export interface LockWorkloadOptions {
  readonly clients: number;
  /** The lease TTL. */
  readonly ttlMs: number;
  /** The lock's line: keys `<prefix><lease id in hex>`. */
  readonly prefix: string;
  /** Holdings under one lease (a session, as etcd's): the lease is then revoked. */
  readonly holdingsPerLease: { readonly min: number; readonly max: number };
  /** Pause between a client's holdings, in ms. */
  readonly thinkMs: { readonly min: number; readonly max: number };
  /** Actions per holding. */
  readonly actionsPerHolding: { readonly min: number; readonly max: number };
  /** Share of actions after which the holder stalls, and for how long (ms). */
  readonly stallRate: number;
  readonly stallMs: { readonly min: number; readonly max: number };
  /** How long a client waits for one attempt's answer. */
  readonly attemptTimeoutMs: number;
  /** A client gives up on one request (or on waiting in line) after this long. */
  readonly giveUpAfterMs: number;
  /** Poll interval of a waiter. */
  readonly pollMs: number;
  /** PLANTED BUG: a client believes it holds the lock as soon as it joined the line. */
  readonly plantedSkipLine?: boolean;
}

/** What the lock clients did, and what they recorded for the checkers. */
export interface LockStats {
  /** Holdings: times a client reached the head of the line. */
  acquisitions: number;
  /** Of those, holdings whose lease was lost (expired) while held. */
  lostWhileHolding: number;
  /** Actions decided by holders. */
  actions: number;
  /** Holder stalls (GC pauses). */
  stalls: number;
  /** Lines a client left without getting the lock (lease lost, or gave up). */
  abandoned: number;
}

const EMPTY = new Uint8Array(0);

/** Every lock client of a run, the expiry observer, and their records. */
export class LockWorkload {
  readonly renewals: AcknowledgedRenewal[] = [];
  readonly expiries: ObservedExpiry[] = [];
  readonly actions: LockAction[] = [];
  readonly anomalies: string[] = [];
  readonly stats: LockStats = {
    acquisitions: 0,
    lostWhileHolding: 0,
    actions: 0,
    stalls: 0,
    abandoned: 0,
  };
  /** Leases granted to clients and not released by them: their disappearance is an expiry. */
  private readonly watched = new Set<number>();
  private readonly seenBy = new WeakMap<ObservedStateMachine, Set<number>>();
  private readonly clients: LockClient[] = [];

  constructor(
    readonly scheduler: Scheduler,
    random: Random,
    readonly cluster: SimCluster,
    readonly resource: ProtectedResource,
    readonly options: LockWorkloadOptions,
    readonly trace: TraceHash,
  ) {
    for (let i = 0; i < options.clients; i++) {
      const clientRandom = fork(random);
      const caller = new CoordCaller(
        scheduler,
        cluster,
        fork(clientRandom),
        options.attemptTimeoutMs,
      );
      this.clients.push(new LockClient(this, i, clientRandom, caller));
    }
  }

  /** Starts the clients and the expiry observer; clients stop once `stopIssuing()` is true. */
  start(stopIssuing: () => boolean): void {
    for (const client of this.clients) {
      client.run(stopIssuing).catch((error: unknown) => {
        client.finished = true;
        this.anomalies.push(`lock client ${client.index} crashed: ${String(error)}`);
      });
    }
    this.observe();
  }

  /** True once every client has finished. */
  get done(): boolean {
    return this.clients.every((c) => c.finished);
  }

  /** @internal A client's lease was granted (the grant is its first acknowledged renewal). */
  granted(lease: number, sentAtMs: number): void {
    this.watched.add(lease);
    this.renewals.push({ lease, sentAtMs, ttlMs: this.options.ttlMs });
  }

  /** @internal A client is about to revoke its lease: its disappearance is no expiry. */
  releasing(lease: number): void {
    this.watched.delete(lease);
  }

  /**
   * A watched lease expired once a replica that held it no longer does (a replica's state only
   * moves forward; a restarted one is a new state machine instance, tracked afresh).
   */
  private observe(): void {
    for (const id of this.cluster.liveIds()) {
      const machine = this.cluster.slot(id).stateMachine;
      if (machine === undefined) continue;
      let seen = this.seenBy.get(machine);
      if (seen === undefined) this.seenBy.set(machine, (seen = new Set()));
      for (const lease of this.watched) {
        if (machine.machine.lease(lease) !== undefined) seen.add(lease);
        else if (seen.has(lease)) {
          this.watched.delete(lease);
          this.expiries.push({ lease, expiredAtMs: this.scheduler.now() });
          this.trace.add(`${this.scheduler.now()} ms: lease ${lease} expired`);
        }
      }
    }
    if (!this.done) this.scheduler.schedule(this.options.pollMs, () => this.observe());
  }
}

/** One client's lease, as the client sees it. */
interface ClientLease {
  readonly id: number;
  /** Its last acknowledged renewal's send plus the TTL: it surely lives until then. */
  validUntilMs: number;
  /** A keep-alive found it gone, or none succeeded in time. */
  lost: boolean;
  /** The client stopped keeping it alive. */
  closed: boolean;
}

class LockClient {
  finished = false;
  /** The client process is stalled (no keep-alives, no progress) until then. */
  private stalledUntilMs = 0;

  constructor(
    private readonly workload: LockWorkload,
    readonly index: number,
    private readonly random: Random,
    private readonly caller: CoordCaller,
  ) {}

  private now(): number {
    return this.workload.scheduler.now();
  }

  async run(stopIssuing: () => boolean): Promise<void> {
    const { thinkMs, holdingsPerLease } = this.workload.options;
    let lease: ClientLease | undefined;
    let holdingsLeft = 0;
    while (!stopIssuing()) {
      await this.caller.sleep(between(this.random, thinkMs.min, thinkMs.max));
      if (stopIssuing()) break;
      if (lease === undefined || lease.lost) {
        if (lease !== undefined) await this.revoke(lease);
        lease = await this.grant();
        holdingsLeft = between(this.random, holdingsPerLease.min, holdingsPerLease.max);
        if (lease === undefined) continue;
      }
      await this.holdOnce(lease);
      if (--holdingsLeft <= 0) {
        await this.revoke(lease);
        lease = undefined;
      }
    }
    if (lease !== undefined) await this.revoke(lease);
    this.finished = true;
  }

  /** Grants a lease and starts keeping it alive; undefined if no grant was acknowledged. */
  private async grant(): Promise<ClientLease | undefined> {
    const { options } = this.workload;
    const sentAtMs = this.now();
    const grant = await this.caller.call(
      (service) => service.grant(options.ttlMs),
      sentAtMs + options.giveUpAfterMs,
    );
    if (grant.kind !== "ok") return undefined; // an unanswered grant's lease expires unused
    const lease: ClientLease = {
      id: grant.value.id,
      validUntilMs: sentAtMs + options.ttlMs,
      lost: false,
      closed: false,
    };
    this.workload.granted(lease.id, sentAtMs);
    void this.keepAlive(lease);
    return lease;
  }

  /** Waits in line under `lease`, holds the lock and acts, and leaves the line. */
  private async holdOnce(lease: ClientLease): Promise<void> {
    const token = await this.join(lease);
    if (token === undefined) {
      this.workload.stats.abandoned++;
      return;
    }
    try {
      if (!(await this.waitInLine(lease, token))) {
        this.workload.stats.abandoned++;
        return;
      }
      await this.hold(lease, token);
    } finally {
      await this.leaveLine(lease, token);
    }
  }

  /** Keeps `lease` alive every third of its TTL, as the SDK's `Lease` does. */
  private async keepAlive(lease: ClientLease): Promise<void> {
    const { options } = this.workload;
    while (!lease.closed) {
      await this.caller.sleep(Math.max(50, Math.floor(options.ttlMs / 3)));
      if (this.stalledUntilMs > this.now())
        await this.caller.sleep(this.stalledUntilMs - this.now());
      if (lease.closed) return;
      const sentAtMs = this.now();
      const renewed = await this.caller.call(
        (service) => service.keepAlive([lease.id]),
        Math.max(sentAtMs + 1, lease.validUntilMs),
      );
      if (lease.closed) return;
      if (renewed.kind === "ok") {
        const [result] = renewed.value;
        if (result === undefined || result.ttlMs < 0) {
          lease.lost = true;
          return;
        }
        lease.validUntilMs = Math.max(lease.validUntilMs, sentAtMs + options.ttlMs);
        this.workload.renewals.push({ lease: lease.id, sentAtMs, ttlMs: options.ttlMs });
      } else if (this.now() >= lease.validUntilMs) {
        lease.lost = true;
        return;
      }
    }
  }

  private key(lease: ClientLease): string {
    return `${this.workload.options.prefix}${lease.id.toString(16)}`;
  }

  /** Joins the line (idempotent, so retried freely): returns the fencing token. */
  private async join(lease: ClientLease): Promise<number | undefined> {
    const key = this.key(lease);
    const joined = await this.caller.call(
      (service) =>
        service.txn({
          op: "txn",
          compare: [{ key, target: "createRevision", operator: "equal", number: 0 }],
          success: [{ op: "put", key, value: EMPTY, lease: lease.id }],
          failure: [{ op: "get", key }],
        }),
      this.now() + this.workload.options.giveUpAfterMs,
    );
    if (joined.kind !== "ok") return undefined; // e.g. LEASE_NOT_FOUND: it expired already
    return tokenOf(joined.value);
  }

  /** Polls the line until this client is at its head (true) or lost its place (false). */
  private async waitInLine(lease: ClientLease, token: number): Promise<boolean> {
    const { options } = this.workload;
    const key = this.key(lease);
    if (options.plantedSkipLine === true) return true;
    for (;;) {
      if (lease.lost || this.now() >= lease.validUntilMs) return false;
      const listed = await this.caller.call(
        (_service, node) =>
          node.read(
            (machine) =>
              (machine as ObservedStateMachine).machine.list({ prefix: options.prefix }).entries,
          ),
        this.now() + options.giveUpAfterMs,
      );
      if (listed.kind !== "ok") return false;
      const line: readonly KvEntry[] = listed.value;
      if (!line.some((entry) => entry.key === key && entry.createRevision === token)) return false;
      if (!line.some((entry) => entry.createRevision < token)) return true;
      await this.caller.sleep(options.pollMs);
    }
  }

  /** Holds the lock: acts with `token` while the lease is valid in this client's own time. */
  private async hold(lease: ClientLease, token: number): Promise<void> {
    const { options, stats, resource, scheduler, trace } = this.workload;
    stats.acquisitions++;
    trace.add(`${this.now()} ms: client ${this.index} holds the lock with token ${token}`);
    const count = between(
      this.random,
      options.actionsPerHolding.min,
      options.actionsPerHolding.max,
    );
    for (let i = 0; i < count; i++) {
      if (lease.lost || this.now() >= lease.validUntilMs) {
        stats.lostWhileHolding++;
        return;
      }
      stats.actions++;
      this.workload.actions.push({
        client: this.index,
        token,
        decidedStamp: scheduler.nextStamp(),
        decidedAtMs: this.now(),
        validUntilMs: lease.validUntilMs,
      });
      // The action travels to the resource; the holder may stall before it is sent.
      let sendAfterMs = 0;
      if (chance(this.random, options.stallRate)) {
        stats.stalls++;
        sendAfterMs = between(this.random, options.stallMs.min, options.stallMs.max);
        this.stalledUntilMs = this.now() + sendAfterMs;
      }
      const client = this.index;
      scheduler.schedule(sendAfterMs + between(this.random, 1, 10), () => {
        const accepted = resource.act(client, token);
        trace.add(`${scheduler.now()} ms: token ${token} ${accepted ? "accepted" : "refused"}`);
      });
      await this.caller.sleep(sendAfterMs + between(this.random, 10, 100));
    }
  }

  /**
   * Leaves the line: deletes this client's key if it is still the one with `token` (the lease
   * is kept for the next holding). If the lease was lost, the key is gone already.
   */
  private async leaveLine(lease: ClientLease, token: number): Promise<void> {
    if (lease.lost) return;
    const key = this.key(lease);
    await this.caller.call(
      (service) =>
        service.txn({
          op: "txn",
          compare: [{ key, target: "createRevision", operator: "equal", number: token }],
          success: [{ op: "delete", key }],
          failure: [],
        }),
      this.now() + this.workload.options.giveUpAfterMs,
    );
  }

  /** Stops the keep-alives and revokes the lease (deleting its key), best effort. */
  private async revoke(lease: ClientLease): Promise<void> {
    lease.closed = true;
    this.workload.releasing(lease.id);
    // NOT_FOUND (it expired) or no answer: either way the lease ends within its TTL.
    await this.caller.call(
      (service) => service.revoke(lease.id),
      this.now() + this.workload.options.giveUpAfterMs,
    );
  }
}

/** The fencing token a join txn returned: the key's create revision. */
function tokenOf(result: KvTxnResult): number | undefined {
  const first = result.results[0];
  if (first?.op === "put") return first.revision;
  if (first?.op === "get" && first.entry !== null) return first.entry.createRevision;
  return undefined;
}
