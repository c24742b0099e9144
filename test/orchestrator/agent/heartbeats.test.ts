/**
 * The leader's heartbeat table and the liveness view that joins it to Raft's last-heard times:
 * an agent-only worker (never heard through Raft) is kept alive by its heartbeats alone and
 * marked offline after dead-after once they stop, by the same monitor as a server-worker.
 */
import { describe, expect, it } from "vitest";
import { HeartbeatTable, livenessWithHeartbeats } from "../../../src/orchestrator/heartbeats.js";
import { LivenessMonitor } from "../../../src/orchestrator/liveness.js";
import type { OrchestratorCommand } from "../../../src/statemachine/orchestrator/commands.js";
import type { OrchestratorQueries } from "../../../src/statemachine/orchestrator/queries.js";
import type { Worker } from "../../../src/statemachine/orchestrator/types.js";
import { ManualClock } from "../../node/fakes.js";
import { SILENT } from "./agent-fakes.js";

function worker(nodeId: number): Worker {
  const zero = { cpuMillis: 0, memoryMb: 0, diskGb: 0 };
  return {
    nodeId,
    capacity: { cpuMillis: 1000, memoryMb: 1024, diskGb: 10 },
    features: [],
    status: "online",
    drain: false,
    allocated: zero,
    lastSeenMs: 0,
  };
}

describe("HeartbeatTable", () => {
  it("keeps the last heartbeat of each node", () => {
    const table = new HeartbeatTable();
    table.record(4, 100);
    table.record(5, 150);
    table.record(4, 200);
    expect(table.lastHeardMs(4)).toBe(200);
    expect(table.lastHeardMs(5)).toBe(150);
    expect(table.lastHeardMs(6)).toBeUndefined();
  });

  it("past its bound drops the nodes silent longest, never a recent one", () => {
    const table = new HeartbeatTable(10);
    for (let id = 1; id <= 10; id++) table.record(id, id);
    table.record(1, 50); // node 1 spoke again: now the most recent
    table.record(11, 60);
    expect(table.size).toBe(10);
    expect(table.lastHeardMs(2)).toBeUndefined();
    expect(table.lastHeardMs(1)).toBe(50);
    expect(table.lastHeardMs(11)).toBe(60);
  });
});

describe("livenessWithHeartbeats", () => {
  it("reads the later of Raft's last-heard time and the last heartbeat", () => {
    const raft = new Map([
      [2, 500],
      [3, 100],
    ]);
    const table = new HeartbeatTable();
    table.record(3, 300);
    table.record(4, 400);
    const view = livenessWithHeartbeats(
      { nodeId: 1, isLeader: () => true, lastHeardMs: (peer) => raft.get(peer) },
      table,
    );
    expect([2, 3, 4, 5].map((id) => view.lastHeardMs(id))).toEqual([500, 300, 400, undefined]);
  });

  it("keeps an agent alive by heartbeats alone and lets the monitor mark it offline once they stop", async () => {
    const clock = new ManualClock();
    const table = new HeartbeatTable();
    let workers = [worker(1), worker(4)];
    const proposed: OrchestratorCommand[] = [];
    const monitor = new LivenessMonitor({
      view: livenessWithHeartbeats(
        // Node 4 is no Raft member: Raft never hears from it.
        { nodeId: 1, isLeader: () => true, lastHeardMs: () => undefined },
        table,
      ),
      queries: { workers: () => workers } as unknown as OrchestratorQueries,
      proposer: {
        propose: async (command) => {
          proposed.push(command);
          workers = workers.map((w) =>
            command.type === "markWorkerOffline" && w.nodeId === command.nodeId
              ? { ...w, status: "offline" }
              : w,
          );
          return { type: "deleted" };
        },
      },
      clock,
      log: SILENT,
      deadAfterMs: 1000,
      sampleEveryMs: 100,
    });
    monitor.start();
    for (let i = 0; i < 10; i++) {
      table.record(4, clock.now());
      await clock.advance(400);
    }
    expect(proposed).toEqual([]);
    const lastBeatMs = clock.now();
    table.record(4, lastBeatMs);
    await clock.advance(900);
    expect(proposed).toEqual([]);
    await clock.advance(200);
    expect(proposed).toEqual([{ type: "markWorkerOffline", nodeId: 4 }]);
    monitor.close();
  });
});
