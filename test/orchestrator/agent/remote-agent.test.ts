/**
 * The agent-only worker around the one reconcile loop, on a fake clock: its view never goes back
 * to an older index (an agent that switched to a server behind), the disconnect guard's grace,
 * and a whole cut-off: the agent stops its task unreported at the grace and, reconnected, hands
 * it back (marks its worker offline: the attempt is lost and retried), re-registers and runs the
 * next attempt, without reporting the old one.
 */
import { describe, expect, it } from "vitest";
import { CancelledError, UnavailableError } from "../../../src/common/errors.js";
import { AssignmentPoller } from "../../../src/orchestrator/agent/remote/assignment-poller.js";
import { DisconnectGuard } from "../../../src/orchestrator/agent/remote/disconnect-guard.js";
import type { AssignmentsAnswer } from "../../../src/orchestrator/agent/remote/http-link.js";
import { MAX_HEARTBEATS_IN_FLIGHT } from "../../../src/orchestrator/agent/remote/heartbeat-loop.js";
import {
  RemoteAgent,
  type RemoteAgentOptions,
} from "../../../src/orchestrator/agent/remote/remote-agent.js";
import { RemoteAssignmentsView } from "../../../src/orchestrator/agent/remote/remote-view.js";
import { RAW_EXEC_FEATURE } from "../../../src/statemachine/orchestrator/features.js";
import type { OrchestratorCommand } from "../../../src/statemachine/orchestrator/commands.js";
import { ManualClock } from "../../node/fakes.js";
import { taskSpec } from "../model/fixtures.js";
import { AGENT_CAPACITY, AGENT_NODE, FakeCluster, FakeTaskRunner, SILENT } from "./agent-fakes.js";

function answer(index: number, taskIds: string[]): AssignmentsAnswer {
  const tasks = taskIds.map((id) => ({ id }) as unknown as AssignmentsAnswer["tasks"][number]);
  return { index, worker: null, tasks, vms: [] };
}

describe("RemoteAssignmentsView", () => {
  it("never goes back to an older index", () => {
    const view = new RemoteAssignmentsView(4);
    expect(view.accept(answer(5, ["a"]))).toBe(true);
    expect(view.accept(answer(3, ["old"]))).toBe(false);
    expect(view.index).toBe(5);
    expect(view.assignments(4).tasks.map((t) => t.id)).toEqual(["a"]);
    expect(view.accept(answer(5, ["a"]))).toBe(true);
    expect(view.accept(answer(9, []))).toBe(true);
    expect(view.assignments(4).tasks).toEqual([]);
    // Another node's assignments are not in this view.
    expect(view.assignments(5).tasks).toEqual([]);
  });

  it("through the poller: an older answer is refused and wakes nothing; polls ask from the held index", async () => {
    const clock = new ManualClock();
    const view = new RemoteAssignmentsView(4);
    const answers = [answer(5, ["a"]), answer(3, ["old"]), answer(7, ["b"])];
    const asked: number[] = [];
    const woken: number[] = [];
    const poller = new AssignmentPoller({
      fetch: async (after) => {
        asked.push(after);
        const next = answers.shift();
        if (next === undefined) return new Promise<AssignmentsAnswer>(() => undefined);
        return next;
      },
      view,
      clock,
      log: SILENT,
      onAnswer: () => woken.push(view.index),
    });
    poller.start();
    await clock.advance(10);
    expect(asked).toEqual([0, 5, 5, 7]);
    expect(woken).toEqual([5, 7]);
    expect(poller.refused).toBe(1);
    expect(view.assignments(4).tasks.map((t) => t.id)).toEqual(["b"]);
    poller.close();
  });
});

describe("DisconnectGuard", () => {
  it("fires once the grace passed since the last acknowledged heartbeat was sent, and clears on the next", async () => {
    const clock = new ManualClock();
    const events: string[] = [];
    const guard = new DisconnectGuard({
      clock,
      graceMs: 1000,
      onDisconnected: (silentMs) => events.push(`down after ${silentMs}`),
      onReconnected: () => events.push("up"),
    });
    // Never reached the cluster: nothing to stop, nothing fires.
    await clock.advance(5000);
    expect(events).toEqual([]);
    guard.contact(5000);
    await clock.advance(600);
    guard.contact(5500); // sent at 5500, acknowledged now
    await clock.advance(899);
    expect(events).toEqual([]);
    await clock.advance(1);
    expect(events).toEqual(["down after 1000"]);
    expect(guard.disconnected).toBe(true);
    await clock.advance(5000);
    expect(events).toEqual(["down after 1000"]);
    guard.contact(clock.now());
    expect(events).toEqual(["down after 1000", "up"]);
    expect(guard.disconnected).toBe(false);
    // An acknowledgement of a heartbeat sent before a later one changes nothing.
    guard.contact(100);
    await clock.advance(999);
    expect(events.length).toBe(2);
    guard.close();
  });
});

/**
 * A server in front of a {@link FakeCluster}: answers polls from the model (an index that grows
 * with every apply), takes heartbeats and reports, or refuses everything while `up` is false.
 * While `stalled` (a paused process) it answers no heartbeat until `resume()` answers them all.
 */
function fakeServer(cluster: FakeCluster) {
  let version = 0;
  const stalledBeats: (() => void)[] = [];
  const state = {
    up: true,
    heartbeats: 0,
    stalled: false,
    resume(): void {
      this.stalled = false;
      for (const answer of stalledBeats.splice(0)) answer();
    },
  };
  const waiting = new Set<() => void>();
  cluster.onApplied = () => {
    version++;
    for (const wake of [...waiting]) wake();
  };
  const current = (): AssignmentsAnswer => {
    const q = cluster.machine.orchestrator;
    const { tasks, vms } = q.assignments(AGENT_NODE);
    return { index: version, worker: q.worker(AGENT_NODE) ?? null, tasks, vms };
  };
  const link = {
    assignments: (after: number, waitMs: number, signal?: AbortSignal) =>
      new Promise<AssignmentsAnswer>((resolve, reject) => {
        if (!state.up) {
          reject(new UnavailableError("no server reachable"));
          return;
        }
        if (version > after || waitMs === 0) {
          resolve(current());
          return;
        }
        const wake = (): void => {
          waiting.delete(wake);
          resolve(current());
        };
        waiting.add(wake);
        signal?.addEventListener("abort", () => {
          waiting.delete(wake);
          reject(new CancelledError("aborted"));
        });
      }),
    heartbeat: async () => {
      if (!state.up) throw new UnavailableError("no server reachable");
      if (state.stalled) await new Promise<void>((resolve) => stalledBeats.push(resolve));
      state.heartbeats++;
      return { leaderId: 1, workerDeadAfterMs: 2000 };
    },
    propose: async (command: OrchestratorCommand) => {
      if (!state.up) throw new UnavailableError("no server reachable");
      return cluster.proposer.propose(command);
    },
  };
  return { state, link };
}

/** An agent-only worker on {@link AGENT_NODE} over `link`, with a dead-after time of 2 s. */
function remoteAgent(
  cluster: FakeCluster,
  link: RemoteAgentOptions["link"],
  runner: FakeTaskRunner,
): RemoteAgent {
  return new RemoteAgent({
    nodeId: AGENT_NODE,
    link,
    clock: cluster.clock,
    log: SILENT,
    runTask: runner.port,
    vmDrivers: new Map(),
    capacity: AGENT_CAPACITY,
    features: [RAW_EXEC_FEATURE],
    workerDeadAfterMs: 2000,
  });
}

describe("RemoteAgent", () => {
  it("registers and runs its assignments through the same reconcile loop", async () => {
    const cluster = new FakeCluster();
    const { link, state } = fakeServer(cluster);
    const runner = new FakeTaskRunner();
    const agent = remoteAgent(cluster, link, runner);
    agent.start();
    await cluster.clock.advance(50);
    expect(cluster.machine.orchestrator.worker(AGENT_NODE)?.status).toBe("online");
    expect(state.heartbeats).toBe(1);
    cluster.apply({ type: "submitTask", id: "t1", spec: taskSpec({ args: ["t1"] }) });
    await cluster.clock.advance(10);
    const [run] = runner.runsOf("t1");
    run?.start();
    run?.end("succeeded");
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.task("t1")?.status).toBe("succeeded");
    // Heartbeats every quarter of the dead-after time.
    await cluster.clock.advance(2000);
    expect(state.heartbeats).toBe(5);
    await agent.close();
  });

  it("runs nothing while its polls are answered but no heartbeat was ever acknowledged", async () => {
    const cluster = new FakeCluster();
    const { link } = fakeServer(cluster);
    const runner = new FakeTaskRunner();
    // The worker is registered and a task waits for it, but the leader never hears the agent:
    // its polls reach a server that cannot reach the leader.
    cluster.apply({
      type: "registerWorker",
      nodeId: AGENT_NODE,
      capacity: AGENT_CAPACITY,
      features: [RAW_EXEC_FEATURE],
    });
    cluster.apply({ type: "submitTask", id: "t1", spec: taskSpec({ args: ["t1"] }) });
    let leaderReachable = false;
    const agent = new RemoteAgent({
      nodeId: AGENT_NODE,
      link: {
        ...link,
        heartbeat: async () => {
          if (!leaderReachable) throw new UnavailableError("the leader is unreachable");
          return link.heartbeat();
        },
      },
      clock: cluster.clock,
      log: SILENT,
      runTask: runner.port,
      vmDrivers: new Map(),
      capacity: AGENT_CAPACITY,
      features: [RAW_EXEC_FEATURE],
      workerDeadAfterMs: 2000,
    });
    agent.start();
    await cluster.clock.advance(5000);
    expect(agent.view.answered).toBe(true);
    expect(runner.runsOf("t1")).toHaveLength(0);
    // Heard at last: the grace counts from now, and the work runs.
    leaderReachable = true;
    await cluster.clock.advance(1000);
    expect(runner.runsOf("t1")).toHaveLength(1);
    await agent.close();
  });

  it("cut off past the grace, stops its task unreported; reconnected, hands it back, re-registers and runs the next attempt", async () => {
    const cluster = new FakeCluster();
    const { link, state } = fakeServer(cluster);
    const runner = new FakeTaskRunner();
    const agent = remoteAgent(cluster, link, runner);
    agent.start();
    await cluster.clock.advance(50);
    cluster.apply({ type: "submitTask", id: "t1", spec: taskSpec({ args: ["t1"] }) });
    await cluster.clock.advance(10);
    const first = runner.runsOf("t1")[0];
    first?.start();
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.task("t1")?.status).toBe("running");
    const cutAtMs = cluster.clock.now();

    state.up = false;
    await cluster.clock.advance(1000);
    expect(first?.signal.aborted).toBe(false);
    expect(agent.disconnected).toBe(false);
    // The last acknowledged heartbeat was sent at or before the cut: the grace ends by then + 2 s.
    await cluster.clock.advance(cutAtMs + 2000 - cluster.clock.now());
    expect(agent.disconnected).toBe(true);
    expect(first?.signal.aborted).toBe(true);
    expect(agent.agent.runningTasks()).toEqual([]);

    // Nobody marked the worker offline meanwhile (a new leader gives full grace): the model
    // still has the attempt running here.
    expect(cluster.machine.orchestrator.task("t1")?.status).toBe("running");
    await cluster.clock.advance(3000);
    expect(runner.runsOf("t1").length).toBe(1);

    state.up = true;
    await cluster.clock.advance(1000);
    expect(agent.disconnected).toBe(false);
    expect(cluster.machine.orchestrator.worker(AGENT_NODE)?.status).toBe("online");
    const task = cluster.machine.orchestrator.task("t1");
    expect(task?.attempts).toBe(2);
    expect(runner.runsOf("t1").length).toBe(2);
    // The agent handed the stopped work back by marking itself offline (the attempt was lost
    // and retried, not failed), and never reported the stopped attempt.
    expect(cluster.proposalsOf("markWorkerOffline").length).toBe(1);
    expect(cluster.proposalsOf("taskFinished", "t1")).toEqual([]);
    await agent.close();
  });

  it("cut off with nothing running, hands nothing back on reconnecting", async () => {
    const cluster = new FakeCluster();
    const { link, state } = fakeServer(cluster);
    const agent = remoteAgent(cluster, link, new FakeTaskRunner());
    agent.start();
    await cluster.clock.advance(50);
    state.up = false;
    await cluster.clock.advance(3000);
    expect(agent.disconnected).toBe(true);
    state.up = true;
    await cluster.clock.advance(1000);
    expect(agent.disconnected).toBe(false);
    expect(cluster.proposalsOf("markWorkerOffline")).toEqual([]);
    expect(cluster.machine.orchestrator.worker(AGENT_NODE)?.status).toBe("online");
    await agent.close();
  });

  it("after a stall longer than the grace, counts from the last heartbeat sent in it: hands back once, then keeps the next attempt", async () => {
    // A paused server answers the heartbeats queued during the pause all at once. Had the agent
    // waited for each answer before sending the next, it would count its grace from one sent
    // before the pause and run out of it just after reconnecting, stopping the next attempt too.
    const cluster = new FakeCluster();
    const { link, state } = fakeServer(cluster);
    const runner = new FakeTaskRunner();
    const agent = remoteAgent(cluster, link, runner);
    agent.start();
    await cluster.clock.advance(50);
    cluster.apply({ type: "submitTask", id: "t1", spec: taskSpec({ args: ["t1"] }) });
    await cluster.clock.advance(10);
    runner.runsOf("t1")[0]?.start();
    await cluster.clock.advance(10);

    state.stalled = true;
    await cluster.clock.advance(2600);
    expect(agent.disconnected).toBe(true);
    // Heartbeats went on being sent into the stall, no more than the cap at once.
    expect(agent.heartbeatsInFlight).toBe(MAX_HEARTBEATS_IN_FLIGHT);
    state.resume();
    await cluster.clock.advance(20);
    expect(agent.disconnected).toBe(false);
    const second = runner.runsOf("t1")[1];
    expect(second, "the next attempt started here").toBeDefined();
    second?.start();
    // A whole grace later the agent is still connected and the attempt still runs.
    await cluster.clock.advance(2500);
    expect(agent.disconnects).toBe(1);
    expect(second?.signal.aborted).toBe(false);
    expect(cluster.proposalsOf("markWorkerOffline").length).toBe(1);
    expect(cluster.machine.orchestrator.task("t1")).toMatchObject({
      status: "running",
      attempts: 2,
    });
    await agent.close();
  });
});
