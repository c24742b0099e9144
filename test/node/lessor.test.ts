/**
 * The leader's lessor against a model of leadership: two nodes share the applied kv store (as
 * replicas do), leadership moves between them, and a revoke commits only if its proposer still
 * leads in the term it proposed in (raft's rule for entries of an ended term). The lease checker
 * must accept the real lessor and catch the planted bug (deadlines kept across terms, i.e.
 * expiring on the clock of a leadership that was lost).
 */
import { describe, expect, it } from "vitest";
import { NotLeaderError } from "../../src/common/errors.js";
import { Lessor, MAX_LEASE_IDS_PER_REVOKE, type LessorPort } from "../../src/node/lessor.js";
import {
  checkNoEarlyExpiry,
  type AcknowledgedRenewal,
  type ObservedExpiry,
} from "../../src/sim/checkers/coordination.js";
import { KvStore } from "../../src/statemachine/kv/store.js";
import { ManualClock } from "./fakes.js";

interface Leadership {
  node: "A" | "B" | undefined;
  term: number;
}

function harness(options: { planted?: boolean; idleCheckIntervalMs?: number } = {}) {
  const clock = new ManualClock();
  const store = new KvStore();
  const leadership: Leadership = { node: "A", term: 1 };
  const expiries: ObservedExpiry[] = [];
  const proposals: { node: string; ids: readonly number[] }[] = [];
  const lessors = new Map<"A" | "B", Lessor>();
  for (const node of ["A", "B"] as const) {
    const port: LessorPort = {
      leaderTerm: () => (leadership.node === node ? leadership.term : undefined),
      forEachLease: (visit) => store.forEachLease(visit),
      leaseTtlMs: (id) => store.lease(id)?.ttlMs,
      leaseCount: () => store.leaseCount,
      proposeRevoke: (ids) => {
        proposals.push({ node, ids });
        const proposedIn = leadership.term;
        // Committed only by the leader of the term it was proposed in.
        if (leadership.node !== node || leadership.term !== proposedIn) {
          return Promise.reject(new NotLeaderError());
        }
        for (const id of ids) {
          if (store.lease(id) !== undefined) expiries.push({ lease: id, expiredAtMs: clock.now() });
        }
        store.execute({ op: "leaseRevoke", ids });
        return Promise.resolve();
      },
    };
    lessors.set(
      node,
      new Lessor({
        port,
        clock,
        checkIntervalMs: 100,
        // The failover scenario is about terms, not idle cadence (tested on its own below).
        idleCheckIntervalMs: options.idleCheckIntervalMs ?? 100,
        ...(options.planted === true ? { plantedKeepDeadlinesAcrossTerms: true } : {}),
      }),
    );
  }
  const grant = (ttlMs: number): number => {
    const result = store.execute({ op: "leaseGrant", ttlMs });
    if (!result.ok || result.value.op !== "leaseGrant") throw new Error("grant failed");
    return result.value.id;
  };
  const leader = (): Lessor | undefined =>
    leadership.node === undefined ? undefined : lessors.get(leadership.node);
  return { clock, store, leadership, expiries, proposals, lessors, grant, leader };
}

/** The failover scenario: renewals at A, then at B, then A leads again and the client pauses. */
async function failoverScenario(planted: boolean) {
  const h = harness({ planted });
  for (const lessor of h.lessors.values()) lessor.start();
  const ttlMs = 1000;
  const renewals: AcknowledgedRenewal[] = [];
  const lease = h.grant(ttlMs);
  renewals.push({ lease, sentAtMs: 0, ttlMs });
  const renewAt = async (atMs: number) => {
    await h.clock.advance(atMs - h.clock.now());
    const lessor = h.leader() as Lessor;
    const [result] = lessor.renew([lease], atMs, h.leadership.term);
    if (result !== undefined && result.ttlMs > 0) renewals.push({ lease, sentAtMs: atMs, ttlMs });
  };
  await renewAt(300);
  h.leadership.node = "B";
  h.leadership.term = 2;
  await renewAt(600);
  await renewAt(900);
  await h.clock.advance(1000 - h.clock.now());
  h.leadership.node = "A";
  h.leadership.term = 3;
  // The client pauses: no more renewals. The lease must live until 900 + 1000.
  await h.clock.advance(3000);
  return { violations: checkNoEarlyExpiry(renewals, h.expiries), expiries: h.expiries };
}

describe("Lessor", () => {
  it("expires a lease after its TTL and not before, as one revoke", async () => {
    const h = harness();
    const lessor = h.lessors.get("A") as Lessor;
    const lease = h.grant(1000);
    expect(lessor.sweep()).toEqual([]);
    await h.clock.advance(999);
    expect(lessor.sweep()).toEqual([]);
    await h.clock.advance(1);
    expect(lessor.sweep()).toEqual([lease]);
    await h.clock.advance(0);
    expect(h.store.lease(lease)).toBeUndefined();
  });

  it("a renewal moves the deadline to its arrival plus the TTL", async () => {
    const h = harness();
    const lessor = h.lessors.get("A") as Lessor;
    const lease = h.grant(1000);
    lessor.sweep();
    await h.clock.advance(800);
    expect(lessor.renew([lease, 99], 700, 1)).toEqual([
      { id: lease, ttlMs: 1000 },
      { id: 99, ttlMs: -1 },
    ]);
    expect(lessor.remainingMs(lease)).toBe(900);
    await h.clock.advance(899);
    expect(lessor.sweep()).toEqual([]);
    await h.clock.advance(1);
    expect(lessor.sweep()).toEqual([lease]);
  });

  it("a follower proposes nothing and refuses renewals; a renewal for an ended term is refused", async () => {
    const h = harness();
    h.grant(1000);
    const b = h.lessors.get("B") as Lessor;
    await h.clock.advance(5000);
    expect(b.sweep()).toEqual([]);
    expect(() => b.renew([1], 0, 1)).toThrow(NotLeaderError);
    const a = h.lessors.get("A") as Lessor;
    a.sweep();
    h.leadership.term = 2;
    expect(() => a.renew([1], h.clock.now(), 1)).toThrow(NotLeaderError);
  });

  it("does not renew a lease whose expiry is already proposed", async () => {
    const h = harness();
    const lessor = h.lessors.get("A") as Lessor;
    const lease = h.grant(1000);
    lessor.sweep();
    await h.clock.advance(1000);
    // Proposed but not yet applied: the port's promise settles on a later turn.
    const proposeRevoke = (h.lessors.get("A") as Lessor).sweep();
    expect(proposeRevoke).toEqual([lease]);
    expect(lessor.renew([lease], h.clock.now(), 1)).toEqual([{ id: lease, ttlMs: -1 }]);
  });

  it("proposes at most the revoke limit of ids at once", async () => {
    const h = harness();
    const lessor = h.lessors.get("A") as Lessor;
    for (let i = 0; i < MAX_LEASE_IDS_PER_REVOKE + 5; i++) h.grant(1000);
    lessor.sweep();
    await h.clock.advance(1000);
    expect(lessor.sweep()).toHaveLength(MAX_LEASE_IDS_PER_REVOKE);
    await h.clock.advance(0);
    expect(lessor.sweep()).toHaveLength(5);
  });

  it("sweeps often only while it leads and leases exist; otherwise it looks every idle interval", async () => {
    const h = harness({ idleCheckIntervalMs: 500 });
    const proposed = (): number => h.proposals.length;
    h.leadership.node = "B";
    const a = h.lessors.get("A") as Lessor;
    a.start();
    // Not the leader: the first look is at 500 ms.
    await h.clock.advance(150);
    h.leadership.node = "A";
    const lease = h.grant(1000);
    // Leading with a lease now, but asleep until its next look (500): the lease's clock starts
    // then (at the busy cadence it would have started at 200 and expired at 1200).
    await h.clock.advance(350);
    await h.clock.advance(999);
    expect(proposed()).toBe(0);
    // The busy cadence (100 ms) expires it one TTL after that look.
    await h.clock.advance(100);
    expect(h.proposals).toEqual([{ node: "A", ids: [lease] }]);
    expect(h.expiries).toEqual([{ lease, expiredAtMs: 1500 }]);
    a.stop();
  });

  it("after a failover every lease gets its full TTL again: no early expiry", async () => {
    const { violations, expiries } = await failoverScenario(false);
    expect(violations).toEqual([]);
    // It did expire in the end: a full TTL after A noticed its new term (its sweep at 1100).
    expect(expiries).toEqual([{ lease: 1, expiredAtMs: 2100 }]);
  });

  it("the checker catches the planted bug: deadlines kept from a lost leadership expire early", async () => {
    const { violations } = await failoverScenario(true);
    expect(violations.map((v) => v.property)).toEqual(["no-early-expiry"]);
  });
});
