/**
 * Property tests of the scheduler against a brute-force oracle: it places exactly when some
 * worker is feasible, only on a feasible worker, on the best one by the strategy (scores compared
 * as exact fractions, computed independently here), regardless of input order; and a sequence
 * of placements never over-commits.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { choosePlacement, type PlacementRequest, type PlacementState } from "./scheduler.js";
import type { PlacementStrategy, Resources, Worker } from "./types.js";

const FEATURES = ["a", "b", "c"];
const DIMENSIONS = ["cpuMillis", "memoryMb", "diskGb"] as const;

const resourcesArbitrary = (max: number): fc.Arbitrary<Resources> =>
  fc.record({
    cpuMillis: fc.integer({ min: 0, max }),
    memoryMb: fc.integer({ min: 0, max }),
    diskGb: fc.integer({ min: 0, max }),
  });

const workerArbitrary = (nodeId: number): fc.Arbitrary<Worker> =>
  fc
    .record({
      capacity: resourcesArbitrary(12),
      fraction: fc.tuple(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
      ),
      features: fc.subarray(FEATURES),
      status: fc.constantFrom("online", "online", "online", "draining", "offline") as fc.Arbitrary<
        Worker["status"]
      >,
    })
    .map(({ capacity, fraction, features, status }) => ({
      nodeId,
      capacity,
      allocated: {
        cpuMillis: Math.floor(capacity.cpuMillis * fraction[0]),
        memoryMb: Math.floor(capacity.memoryMb * fraction[1]),
        diskGb: Math.floor(capacity.diskGb * fraction[2]),
      },
      features,
      status,
      drain: status === "draining",
      lastSeenMs: 0,
    }));

const workersArbitrary: fc.Arbitrary<Worker[]> = fc
  .uniqueArray(fc.integer({ min: 1, max: 30 }), { maxLength: 7 })
  .chain((ids) => (ids.length === 0 ? fc.constant([]) : fc.tuple(...ids.map(workerArbitrary))));

const requestArbitrary: fc.Arbitrary<PlacementRequest> = fc.record({
  resources: resourcesArbitrary(8),
  requiredFeatures: fc.subarray(FEATURES),
  antiAffinityGroup: fc.constantFrom("", "g"),
});

const scenarioArbitrary = fc.record({
  workers: workersArbitrary,
  request: requestArbitrary,
  groupMembers: fc.uniqueArray(fc.integer({ min: 1, max: 30 }), { maxLength: 4 }),
  strategy: fc.constantFrom<PlacementStrategy>("binpack", "spread"),
});

interface Scenario {
  readonly workers: Worker[];
  readonly groupMembers: number[];
  readonly strategy: PlacementStrategy;
}

function placementState(scenario: Scenario): PlacementState {
  return {
    workers: scenario.workers,
    groupNodes: new Map([["g", new Set(scenario.groupMembers)]]),
    strategy: scenario.strategy,
  };
}

function feasible(worker: Worker, request: PlacementRequest, groupMembers: number[]): boolean {
  return (
    worker.status === "online" &&
    request.requiredFeatures.every((f) => worker.features.includes(f)) &&
    !(request.antiAffinityGroup === "g" && groupMembers.includes(worker.nodeId)) &&
    DIMENSIONS.every((d) => worker.allocated[d] + request.resources[d] <= worker.capacity[d])
  );
}

/** An exact fraction, kept reduced. */
class Fraction {
  constructor(
    readonly n: bigint,
    readonly d: bigint,
  ) {}
  static of(n: number, d: number): Fraction {
    return new Fraction(BigInt(n), BigInt(d));
  }
  plus(other: Fraction): Fraction {
    return new Fraction(this.n * other.d + other.n * this.d, this.d * other.d);
  }
  compare(other: Fraction): number {
    const diff = this.n * other.d - other.n * this.d;
    return diff < 0n ? -1 : diff > 0n ? 1 : 0;
  }
}

/** Σ free-after / capacity over the dimensions the worker has; a dimension of 0 counts as full. */
function score(worker: Worker, request: PlacementRequest): Fraction {
  return DIMENSIONS.filter((d) => worker.capacity[d] > 0)
    .map((d) =>
      Fraction.of(
        worker.capacity[d] - worker.allocated[d] - request.resources[d],
        worker.capacity[d],
      ),
    )
    .reduce((sum, term) => sum.plus(term), Fraction.of(0, 1));
}

describe("choosePlacement properties", () => {
  it("places iff a worker is feasible, on the best feasible worker by strategy then node id", () => {
    fc.assert(
      fc.property(scenarioArbitrary, (scenario) => {
        const decision = choosePlacement(scenario.request, placementState(scenario));
        const candidates = scenario.workers.filter((w) =>
          feasible(w, scenario.request, scenario.groupMembers),
        );
        expect(decision.placed).toBe(candidates.length > 0);
        if (!decision.placed) {
          expect(decision.reason.length).toBeGreaterThan(0);
          return;
        }
        const chosen = candidates.find((w) => w.nodeId === decision.nodeId);
        expect(chosen, "the chosen worker is feasible").toBeDefined();
        const chosenScore = score(chosen as Worker, scenario.request);
        for (const other of candidates) {
          const order = score(other, scenario.request).compare(chosenScore);
          const better = scenario.strategy === "binpack" ? order < 0 : order > 0;
          expect(better, `node ${other.nodeId} ranks above the chosen ${decision.nodeId}`).toBe(
            false,
          );
          if (order === 0) expect(decision.nodeId).toBeLessThanOrEqual(other.nodeId);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it("is deterministic and does not depend on the order of the workers", () => {
    fc.assert(
      fc.property(scenarioArbitrary, fc.nat(), (scenario, seed) => {
        const first = choosePlacement(scenario.request, placementState(scenario));
        const shuffled = [...scenario.workers].sort(
          (a, b) => ((a.nodeId * 7919 + seed) % 31) - ((b.nodeId * 7919 + seed) % 31),
        );
        expect(
          choosePlacement(scenario.request, placementState({ ...scenario, workers: shuffled })),
        ).toEqual(first);
        expect(choosePlacement(scenario.request, placementState(scenario))).toEqual(first);
      }),
      { numRuns: 500 },
    );
  });

  it("never over-commits over a sequence of placements", () => {
    fc.assert(
      fc.property(
        workersArbitrary,
        fc.array(requestArbitrary, { maxLength: 30 }),
        fc.constantFrom<PlacementStrategy>("binpack", "spread"),
        (initial, requests, strategy) => {
          const workers = new Map(initial.map((w) => [w.nodeId, w]));
          const groupNodes = new Map<string, Set<number>>([["g", new Set()]]);
          for (const request of requests) {
            const decision = choosePlacement(request, {
              workers: workers.values(),
              groupNodes,
              strategy,
            });
            if (!decision.placed) continue;
            const w = workers.get(decision.nodeId) as Worker;
            const allocated = {
              cpuMillis: w.allocated.cpuMillis + request.resources.cpuMillis,
              memoryMb: w.allocated.memoryMb + request.resources.memoryMb,
              diskGb: w.allocated.diskGb + request.resources.diskGb,
            };
            for (const d of DIMENSIONS) expect(allocated[d]).toBeLessThanOrEqual(w.capacity[d]);
            if (request.antiAffinityGroup === "g") {
              expect(groupNodes.get("g")?.has(w.nodeId)).toBe(false);
              groupNodes.get("g")?.add(w.nodeId);
            }
            workers.set(w.nodeId, { ...w, allocated });
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
