/**
 * Property tests of the placement index against the reference scan (`choosePlacement`): over
 * random fleets of up to 80 workers drawn from a few machine types (so buckets hold many workers
 * and the trees are deep), random updates (allocation, status, capacity and feature changes) and
 * random requests, the index's decision — node or pending reason, word for word — is the scan's.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PlacementIndex } from "./placement-index.js";
import { choosePlacement, type PlacementRequest } from "./scheduler.js";
import type { PlacementStrategy, Resources, Worker } from "./types.js";

const MACHINE_TYPES: readonly Resources[] = [
  { cpuMillis: 4000, memoryMb: 8192, diskGb: 100 },
  { cpuMillis: 8000, memoryMb: 16384, diskGb: 0 },
  { cpuMillis: 2000, memoryMb: 2048, diskGb: 20 },
  // Too big for exact number keys: the bucket orders by bigint keys.
  { cpuMillis: 2 ** 40, memoryMb: 2 ** 39, diskGb: 3 },
];
const FEATURE_SETS: readonly (readonly string[])[] = [["raw_exec"], ["qemu", "raw_exec"], ["gpu"]];
const STATUSES: readonly Worker["status"][] = ["online", "online", "online", "draining", "offline"];

/** A worker of machine type `type` with fractions of each dimension allocated. */
function makeWorker(
  nodeId: number,
  type: number,
  features: number,
  status: number,
  fractions: readonly number[],
): Worker {
  const capacity = MACHINE_TYPES[type % MACHINE_TYPES.length] as Resources;
  const take = (amount: number, i: number): number => Math.floor(amount * (fractions[i] ?? 0));
  return {
    nodeId,
    capacity,
    features: FEATURE_SETS[features % FEATURE_SETS.length] as readonly string[],
    status: STATUSES[status % STATUSES.length] as Worker["status"],
    drain: false,
    allocated: {
      cpuMillis: take(capacity.cpuMillis, 0),
      memoryMb: take(capacity.memoryMb, 1),
      diskGb: take(capacity.diskGb, 2),
    },
    lastSeenMs: 0,
  };
}

/** Fixed, so a run is reproducible (a failure prints its path to replay). */
const SEED = 20261206;

// Mostly empty or half full, so equal scores (ties) are common.
const fraction = fc.constantFrom(0, 0, 0, 0.5, 0.5, 0.25, 0.75, 1, 0.125, 0.9);
const workerUpdate = fc.record({
  nodeId: fc.integer({ min: 1, max: 80 }),
  type: fc.nat(),
  features: fc.nat(),
  status: fc.nat(),
  fractions: fc.tuple(fraction, fraction, fraction),
});

const request: fc.Arbitrary<PlacementRequest> = fc.record({
  resources: fc.record({
    cpuMillis: fc.constantFrom(0, 1, 500, 1000, 2000, 4000, 9000),
    memoryMb: fc.constantFrom(0, 1, 512, 2048, 8192),
    diskGb: fc.constantFrom(0, 1, 10, 50),
  }),
  requiredFeatures: fc.constantFrom([], ["raw_exec"], ["qemu", "raw_exec"], ["gpu"], ["tpu"]),
  antiAffinityGroup: fc.constantFrom("", "", "g"),
});

describe("PlacementIndex", () => {
  it("decides exactly as the reference scan, through any sequence of worker updates", () => {
    let placed = 0;
    let pending = 0;
    fc.assert(
      fc.property(
        fc.array(workerUpdate, { minLength: 1, maxLength: 160 }),
        fc.array(request, { minLength: 1, maxLength: 12 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 80 }), { maxLength: 10 }),
        fc.constantFrom<PlacementStrategy>("binpack", "spread"),
        (updates, requests, groupMembers, strategy) => {
          const index = new PlacementIndex();
          const workers = new Map<number, Worker>();
          const groupNodes = new Map([["g", new Set(groupMembers)]]);
          const check = (): void => {
            for (const r of requests) {
              const expected = choosePlacement(r, {
                workers: workers.values(),
                groupNodes,
                strategy,
              });
              expect(index.choose(r, groupNodes, strategy)).toEqual(expected);
              if (expected.placed) placed++;
              else pending++;
            }
          };
          for (const [i, u] of updates.entries()) {
            const next = makeWorker(u.nodeId, u.type, u.features, u.status, u.fractions);
            index.update(workers.get(u.nodeId), next);
            workers.set(u.nodeId, next);
            if (i % 20 === 19) check();
          }
          check();
        },
      ),
      { numRuns: 400, seed: SEED },
    );
    // Both outcomes are exercised in earnest.
    expect(placed).toBeGreaterThan(300);
    expect(pending).toBeGreaterThan(1000);
  });

  it("places a run of requests as the scan does when each placement allocates", () => {
    fc.assert(
      fc.property(
        fc.array(workerUpdate, { minLength: 1, maxLength: 80 }),
        fc.array(request, { maxLength: 60 }),
        fc.constantFrom<PlacementStrategy>("binpack", "spread"),
        (updates, requests, strategy) => {
          const index = new PlacementIndex();
          const workers = new Map<number, Worker>();
          const groupNodes = new Map<string, Set<number>>([["g", new Set()]]);
          for (const u of updates) {
            const next = makeWorker(u.nodeId, u.type, u.features, u.status, u.fractions);
            index.update(workers.get(u.nodeId), next);
            workers.set(u.nodeId, next);
          }
          for (const r of requests) {
            const decision = index.choose(r, groupNodes, strategy);
            expect(decision).toEqual(
              choosePlacement(r, { workers: workers.values(), groupNodes, strategy }),
            );
            if (!decision.placed) continue;
            const worker = workers.get(decision.nodeId) as Worker;
            const allocated = {
              cpuMillis: worker.allocated.cpuMillis + r.resources.cpuMillis,
              memoryMb: worker.allocated.memoryMb + r.resources.memoryMb,
              diskGb: worker.allocated.diskGb + r.resources.diskGb,
            };
            const next = { ...worker, allocated };
            index.update(worker, next);
            workers.set(worker.nodeId, next);
            if (r.antiAffinityGroup === "g") groupNodes.get("g")?.add(worker.nodeId);
          }
        },
      ),
      { numRuns: 400, seed: SEED },
    );
  });
});
