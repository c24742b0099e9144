/**
 * The leader's liveness monitor with the real model behind it: a worker that was marked offline
 * and registers again gets a fresh grace period, rather than being judged by how long it was
 * silent before it went offline.
 */
import { describe, expect, it } from "vitest";
import { LivenessMonitor } from "../../../src/orchestrator/liveness.js";
import { AGENT_CAPACITY, FakeCluster, SILENT } from "./agent-fakes.js";

function monitored() {
  const cluster = new FakeCluster();
  const view = { nodeId: 1, leader: true, active: new Set<number>([2]) };
  const monitor = new LivenessMonitor({
    view: {
      nodeId: view.nodeId,
      isLeader: () => view.leader,
      // An active peer's messages keep arriving: it was heard just now.
      lastHeardMs: (peer) => (view.active.has(peer) ? cluster.clock.now() : undefined),
    },
    queries: cluster.machine.orchestrator,
    proposer: cluster.proposer,
    clock: cluster.clock,
    log: SILENT,
    deadAfterMs: 1000,
    sampleEveryMs: 100,
  });
  for (const nodeId of [1, 2]) {
    cluster.apply({
      type: "registerWorker",
      nodeId,
      capacity: AGENT_CAPACITY,
      features: ["raw_exec"],
    });
  }
  monitor.start();
  return { cluster, view, monitor };
}

describe("LivenessMonitor with the model", () => {
  it("gives a worker that registers again after going offline a fresh grace period", async () => {
    const { cluster, view } = monitored();
    const status = () => cluster.machine.orchestrator.worker(2)?.status;
    await cluster.clock.advance(500);
    view.active = new Set();
    await cluster.clock.advance(1500);
    expect(status()).toBe("offline");
    // Silent for a long while, then back: it registers before the leader's next sample sees it
    // (heartbeat marks come and go with each check-quorum round).
    await cluster.clock.advance(5000);
    cluster.apply({
      type: "registerWorker",
      nodeId: 2,
      capacity: AGENT_CAPACITY,
      features: ["raw_exec"],
    });
    expect(status()).toBe("online");
    await cluster.clock.advance(500);
    expect(status()).toBe("online");
    expect(cluster.proposalsOf("markWorkerOffline")).toHaveLength(1);
    // It then answers again, and stays online.
    view.active = new Set([2]);
    await cluster.clock.advance(5000);
    expect(status()).toBe("online");
  });

  it("marks a worker that came back and fell silent again offline again", async () => {
    const { cluster, view } = monitored();
    view.active = new Set();
    await cluster.clock.advance(1500);
    expect(cluster.machine.orchestrator.worker(2)?.status).toBe("offline");
    cluster.apply({
      type: "registerWorker",
      nodeId: 2,
      capacity: AGENT_CAPACITY,
      features: ["raw_exec"],
    });
    await cluster.clock.advance(1500);
    expect(cluster.machine.orchestrator.worker(2)?.status).toBe("offline");
    expect(cluster.proposalsOf("markWorkerOffline")).toHaveLength(2);
  });
});
