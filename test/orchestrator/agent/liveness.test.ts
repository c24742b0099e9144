import { describe, expect, it } from "vitest";
import { LivenessMonitor } from "../../../src/orchestrator/liveness.js";
import type { OrchestratorCommand } from "../../../src/statemachine/orchestrator/commands.js";
import type { OrchestratorQueries } from "../../../src/statemachine/orchestrator/queries.js";
import type { Worker, WorkerStatus } from "../../../src/statemachine/orchestrator/types.js";
import { ManualClock } from "../../node/fakes.js";

const SILENT = { debug: () => undefined, info: () => undefined, warn: () => undefined };

function worker(nodeId: number, status: WorkerStatus = "online"): Worker {
  const zero = { cpuMillis: 0, memoryMb: 0, diskGb: 0 };
  return {
    nodeId,
    capacity: { cpuMillis: 1000, memoryMb: 1024, diskGb: 10 },
    features: [],
    status,
    drain: false,
    allocated: zero,
    lastSeenMs: 0,
  };
}

function setup(workers: Worker[], options: { sampleEveryMs?: number } = { sampleEveryMs: 100 }) {
  const clock = new ManualClock();
  const proposed: OrchestratorCommand[] = [];
  const state = {
    leader: true,
    active: new Set<number>([2, 3]),
    /** A fixed arrival time for a peer (overrides `active`). */
    heardAt: new Map<number, number>(),
    workers,
    /** Workers that register again as soon as they are marked offline, before any sample. */
    comesBack: new Set<number>(),
  };
  const queries = { workers: () => state.workers } as unknown as OrchestratorQueries;
  const monitor = new LivenessMonitor({
    view: {
      nodeId: 1,
      isLeader: () => state.leader,
      // An active peer's messages keep arriving: it was heard just now.
      lastHeardMs: (peer) =>
        state.heardAt.get(peer) ?? (state.active.has(peer) ? clock.now() : undefined),
    },
    queries,
    proposer: {
      propose: async (command) => {
        proposed.push(command);
        // As the model would: the proposal resolves once applied.
        if (command.type === "markWorkerOffline" && !state.comesBack.has(command.nodeId)) {
          state.workers = state.workers.map((w) =>
            w.nodeId === command.nodeId ? { ...w, status: "offline" } : w,
          );
        }
        return { type: "deleted" };
      },
    },
    clock,
    log: SILENT,
    deadAfterMs: 1000,
    ...(options.sampleEveryMs === undefined ? {} : { sampleEveryMs: options.sampleEveryMs }),
  });
  monitor.start();
  return { clock, proposed, state, monitor };
}

describe("LivenessMonitor", () => {
  it("marks a worker offline once the leader has not heard from it for deadAfterMs", async () => {
    const { clock, proposed, state } = setup([worker(1), worker(2), worker(3)]);
    await clock.advance(2000);
    expect(proposed).toEqual([]);
    state.active = new Set([2]);
    await clock.advance(900);
    expect(proposed).toEqual([]);
    await clock.advance(200);
    expect(proposed).toEqual([{ type: "markWorkerOffline", nodeId: 3 }]);
  });

  it("gives a worker that registers again right after it was marked offline a fresh grace", async () => {
    const { clock, proposed, state } = setup([worker(1), worker(2), worker(3)]);
    await clock.advance(2000);
    state.active = new Set([2]);
    // Marked offline, it registers again before any sample sees it offline; its heartbeats have
    // not resumed yet. One silence, one mark: the next comes only after a new full silence.
    state.comesBack.add(3);
    await clock.advance(1100);
    expect(proposed).toEqual([{ type: "markWorkerOffline", nodeId: 3 }]);
    await clock.advance(900);
    expect(proposed).toHaveLength(1);
    await clock.advance(200);
    expect(proposed).toEqual([
      { type: "markWorkerOffline", nodeId: 3 },
      { type: "markWorkerOffline", nodeId: 3 },
    ]);
  });

  it("judges a worker by when its last message arrived, not by when a sample saw it", async () => {
    const { clock, proposed, state } = setup([worker(1), worker(2)]);
    await clock.advance(2000);
    // Node 2's last message arrived at 2050; samples run every 100 ms.
    state.heardAt.set(2, 2050);
    state.active = new Set();
    await clock.advance(1000);
    expect(proposed).toEqual([]);
    await clock.advance(100);
    expect(proposed).toEqual([{ type: "markWorkerOffline", nodeId: 2 }]);
    expect(clock.now()).toBe(3100);
  });

  it("by default samples often enough for a short dead-after time (a quarter of it)", async () => {
    const { clock, proposed, state } = setup([worker(1), worker(2)], {});
    await clock.advance(1000);
    state.active = new Set();
    await clock.advance(999);
    expect(proposed).toEqual([]);
    await clock.advance(251);
    expect(proposed).toEqual([{ type: "markWorkerOffline", nodeId: 2 }]);
  });

  it("never marks the leader itself, nor a worker already offline", async () => {
    const { clock, proposed, state } = setup([worker(1), worker(2, "offline")]);
    state.active = new Set();
    await clock.advance(5000);
    expect(proposed).toEqual([]);
  });

  it("does nothing on a follower, and gives every worker full grace on becoming leader", async () => {
    const { clock, proposed, state } = setup([worker(1), worker(2)]);
    state.leader = false;
    state.active = new Set();
    await clock.advance(5000);
    expect(proposed).toEqual([]);
    state.leader = true;
    await clock.advance(900);
    expect(proposed).toEqual([]);
    await clock.advance(300);
    expect(proposed).toEqual([{ type: "markWorkerOffline", nodeId: 2 }]);
  });

  it("gives a worker that registers later its own grace", async () => {
    const { clock, proposed, state } = setup([worker(1)]);
    state.active = new Set();
    await clock.advance(5000);
    state.workers = [worker(1), worker(4)];
    await clock.advance(900);
    expect(proposed).toEqual([]);
    await clock.advance(300);
    expect(proposed).toEqual([{ type: "markWorkerOffline", nodeId: 4 }]);
  });
});

describe("LivenessMonitor after its own sleep", () => {
  it("does not take a pause of its own process for the silence of every worker", async () => {
    const { clock, proposed, state, monitor } = setup([worker(1), worker(2), worker(3)]);
    await clock.advance(500);
    // The process stalls for 3 s: no sample runs, nobody is heard meanwhile.
    monitor.close();
    state.active = new Set();
    await clock.advance(3000);
    monitor.sample();
    expect(proposed).toEqual([]);
    // Afterwards a worker that stays silent is still marked offline in due time.
    state.active = new Set([2]);
    for (let t = 0; t < 1200; t += 100) {
      await clock.advance(100);
      monitor.sample();
    }
    expect(proposed).toEqual([{ type: "markWorkerOffline", nodeId: 3 }]);
  });
});
