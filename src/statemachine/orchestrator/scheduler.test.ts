import { describe, expect, it } from "vitest";
import { choosePlacement, type PlacementRequest, type PlacementState } from "./scheduler.js";
import type { Resources, Worker, WorkerStatus } from "./types.js";

const r = (cpuMillis: number, memoryMb: number, diskGb = 0): Resources => ({
  cpuMillis,
  memoryMb,
  diskGb,
});

function worker(
  nodeId: number,
  capacity: Resources,
  allocated: Resources = r(0, 0),
  options: { features?: string[]; status?: WorkerStatus } = {},
): Worker {
  const status = options.status ?? "online";
  return {
    nodeId,
    capacity,
    allocated,
    features: options.features ?? [],
    status,
    drain: status === "draining",
    lastSeenMs: 0,
  };
}

function request(
  resources: Resources,
  overrides: Partial<PlacementRequest> = {},
): PlacementRequest {
  return { resources, requiredFeatures: [], antiAffinityGroup: "", ...overrides };
}

function state(workers: Worker[], overrides: Partial<PlacementState> = {}): PlacementState {
  return { workers, groupNodes: new Map(), strategy: "binpack", ...overrides };
}

describe("choosePlacement: feasibility and reasons", () => {
  it("explains each constraint in feasibility order", () => {
    expect(choosePlacement(request(r(1, 1)), state([]))).toEqual({
      placed: false,
      reason: "no worker is registered",
    });
    const idle = [
      worker(1, r(1000, 1000), r(0, 0), { status: "draining" }),
      worker(2, r(1000, 1000), r(0, 0), { status: "offline" }),
    ];
    expect(choosePlacement(request(r(1, 1)), state(idle))).toMatchObject({
      reason: "no worker is online (1 draining, 1 offline)",
    });
    const featured = [
      worker(1, r(1000, 1000), r(0, 0), { features: ["kvm"] }),
      worker(2, r(1000, 1000), r(0, 0), { features: ["ssd"] }),
    ];
    expect(
      choosePlacement(request(r(1, 1), { requiredFeatures: ["gpu", "kvm"] }), state(featured)),
    ).toMatchObject({ reason: "no online worker has feature gpu" });
    expect(
      choosePlacement(request(r(1, 1), { requiredFeatures: ["kvm", "ssd"] }), state(featured)),
    ).toMatchObject({ reason: "no online worker has all of the features kvm, ssd" });
    const grouped = state(featured, { groupNodes: new Map([["db", new Set([1])]]) });
    expect(
      choosePlacement(
        request(r(1, 1), { requiredFeatures: ["kvm"], antiAffinityGroup: "db" }),
        grouped,
      ),
    ).toMatchObject({
      reason:
        "every online worker with the required features already holds a VM of anti-affinity group db",
    });
  });

  it("names the short dimension and where the most is free", () => {
    const workers = [
      worker(2, r(1000, 4096)),
      worker(3, r(1000, 8192), r(0, 4096)),
      worker(4, r(500, 100)),
    ];
    expect(choosePlacement(request(r(2000, 5000)), state(workers))).toEqual({
      placed: false,
      reason:
        "no worker has 2000 millicores of cpu free (most free: 1000 on node 2); " +
        "no worker has 5000 MB of memory free (most free: 4096 on node 2)",
    });
    expect(
      choosePlacement(
        request(r(800, 4096, 0)),
        state([worker(1, r(1000, 100)), worker(2, r(100, 8192))]),
      ),
    ).toEqual({
      placed: false,
      reason:
        "no single worker has 800 millicores of cpu, 4096 MB of memory and 0 GB of disk free at once (2 candidate workers)",
    });
  });

  it("never places on a draining or offline worker, or where the group already is", () => {
    const workers = [
      worker(1, r(9000, 9000), r(0, 0), { status: "draining" }),
      worker(2, r(9000, 9000), r(0, 0), { status: "offline" }),
      worker(3, r(9000, 9000)),
      worker(4, r(1000, 1000)),
    ];
    const groupNodes = new Map([["g", new Set([4])]]);
    expect(
      choosePlacement(request(r(1, 1), { antiAffinityGroup: "g" }), state(workers, { groupNodes })),
    ).toEqual({
      placed: true,
      nodeId: 3,
    });
  });

  it("places exactly at full capacity but never past it", () => {
    const workers = [worker(1, r(1000, 1000, 10), r(500, 500, 5))];
    expect(choosePlacement(request(r(500, 500, 5)), state(workers))).toEqual({
      placed: true,
      nodeId: 1,
    });
    expect(choosePlacement(request(r(500, 500, 6)), state(workers)).placed).toBe(false);
  });
});

describe("choosePlacement: ranking", () => {
  const workers = [
    worker(1, r(4000, 4096), r(0, 0)),
    worker(2, r(4000, 4096), r(3000, 3072)),
    worker(3, r(4000, 4096), r(1000, 1024)),
  ];

  it("bin-packs onto the worker left fullest", () => {
    expect(choosePlacement(request(r(500, 512)), state(workers))).toEqual({
      placed: true,
      nodeId: 2,
    });
    expect(choosePlacement(request(r(1500, 512)), state(workers))).toEqual({
      placed: true,
      nodeId: 3,
    });
  });

  it("spreads onto the worker left emptiest", () => {
    expect(choosePlacement(request(r(500, 512)), state(workers, { strategy: "spread" }))).toEqual({
      placed: true,
      nodeId: 1,
    });
  });

  it("breaks ties by the lowest node id, whatever the input order", () => {
    const equal = [worker(7, r(1000, 1000)), worker(3, r(1000, 1000)), worker(5, r(1000, 1000))];
    for (const strategy of ["binpack", "spread"] as const) {
      expect(choosePlacement(request(r(1, 1)), state(equal, { strategy }))).toEqual({
        placed: true,
        nodeId: 3,
      });
      expect(choosePlacement(request(r(1, 1)), state([...equal].reverse(), { strategy }))).toEqual({
        placed: true,
        nodeId: 3,
      });
    }
  });

  it("compares scores exactly: 1/10 + 2/10 ties with 3/10 + 0/10", () => {
    // In floating point 0.1 + 0.2 > 0.3, which would send binpack to node 2.
    const tied = [worker(1, r(10, 10), r(9, 8)), worker(2, r(10, 10), r(7, 10))];
    expect(choosePlacement(request(r(0, 0)), state(tied))).toEqual({ placed: true, nodeId: 1 });
    expect(choosePlacement(request(r(0, 0)), state(tied, { strategy: "spread" }))).toEqual({
      placed: true,
      nodeId: 1,
    });
  });

  it("counts a dimension a worker has none of as full", () => {
    // Node 1 has no disk: its score is 0.5 + 0.5 + 0; node 2's is 0.5 + 0.5 + 1.
    const workers = [
      worker(1, r(1000, 1000, 0), r(500, 500)),
      worker(2, r(1000, 1000, 10), r(500, 500)),
    ];
    expect(choosePlacement(request(r(0, 0)), state(workers))).toEqual({ placed: true, nodeId: 1 });
    expect(choosePlacement(request(r(0, 0)), state(workers, { strategy: "spread" }))).toEqual({
      placed: true,
      nodeId: 2,
    });
  });
});
