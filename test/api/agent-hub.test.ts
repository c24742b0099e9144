/**
 * The server side of the agent protocol: the long-poll waiters (woken per node, timed out,
 * limited), which nodes an applied entry touches (both ends of a moved task), and the hub over a
 * real cluster state machine and change feed (answers at once when the node changed after the
 * index asked about, wakes only the polls of touched nodes, refuses a server's id, takes
 * heartbeats on the leader only).
 */
import { describe, expect, it } from "vitest";
import { AgentHub } from "../../src/api/agents/agent-hub.js";
import { AssignmentChanges } from "../../src/api/agents/assignment-changes.js";
import { FeedEvent } from "../../src/api/events/feed-event.js";
import type { OrchestratorQueries } from "../../src/statemachine/orchestrator/queries.js";
import type { Task, Vm } from "../../src/statemachine/orchestrator/types.js";
import { AssignmentWaiters } from "../../src/api/agents/assignment-waiters.js";
import { ChangeFeed } from "../../src/api/events/change-feed.js";
import {
  CancelledError,
  ConflictError,
  NotLeaderError,
  OverloadedError,
} from "../../src/common/errors.js";
import { HeartbeatTable } from "../../src/orchestrator/heartbeats.js";
import { HeartbeatRelay, RELAY_WINDOW_MS } from "../../src/api/agents/heartbeat-relay.js";
import {
  ClusterStateMachine,
  encodeOrchestratorCommand,
} from "../../src/statemachine/cluster/index.js";
import type { OrchestratorCommand } from "../../src/statemachine/orchestrator/index.js";
import { RAW_EXEC_FEATURE } from "../../src/statemachine/orchestrator/features.js";
import { encodeCommandEnvelope } from "../../src/statemachine/session/envelope.js";
import { ManualClock, flushPromises } from "../node/fakes.js";
import { taskSpec, vmSpec } from "../orchestrator/model/fixtures.js";

/** Lets the feed's setImmediate listeners run. */
async function tick(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await flushPromises();
}

describe("AssignmentWaiters", () => {
  it("wakes only the waits of the nodes named", async () => {
    const clock = new ManualClock();
    const waiters = new AssignmentWaiters({ clock });
    const ends: string[] = [];
    void waiters.wait(4, 5000).then((end) => ends.push(`4:${end}`));
    void waiters.wait(5, 5000).then((end) => ends.push(`5:${end}`));
    waiters.wake([4]);
    await flushPromises();
    expect(ends).toEqual(["4:changed"]);
    expect(waiters.waiting()).toBe(1);
    expect(waiters.waiting(5)).toBe(1);
  });

  it("ends a wait at its time, not before", async () => {
    const clock = new ManualClock();
    const waiters = new AssignmentWaiters({ clock });
    let end: string | undefined;
    void waiters.wait(4, 1000).then((e) => (end = e));
    await clock.advance(999);
    expect(end).toBeUndefined();
    await clock.advance(1);
    expect(end).toBe("timeout");
    expect(waiters.waiting()).toBe(0);
  });

  it("refuses waits past the per-node and the total limits, and ends a cancelled one", async () => {
    const clock = new ManualClock();
    const waiters = new AssignmentWaiters({ clock, maxWaitersPerNode: 2, maxWaiters: 3 });
    void waiters.wait(4, 1000);
    void waiters.wait(4, 1000);
    await expect(waiters.wait(4, 1000)).rejects.toBeInstanceOf(OverloadedError);
    void waiters.wait(5, 1000);
    await expect(waiters.wait(6, 1000)).rejects.toBeInstanceOf(OverloadedError);
    expect(waiters.waiting()).toBe(3);
    const abort = new AbortController();
    waiters.wake([4, 5]);
    const cancelled = waiters.wait(7, 1000, abort.signal);
    abort.abort();
    await expect(cancelled).rejects.toBeInstanceOf(CancelledError);
    expect(waiters.waiting()).toBe(0);
  });
});

describe("AssignmentChanges", () => {
  const none = { workers: () => [] } as unknown as OrchestratorQueries;
  const task = (nodeId: number | null, status: Task["status"]): Task =>
    ({ id: "t", nodeId, status }) as unknown as Task;
  const vm = (nodeId: number | null): Vm => ({ name: "v", nodeId }) as unknown as Vm;

  it("names both ends of a move, and the last node of work that left, from the events alone", () => {
    const changes = new AssignmentChanges();
    changes.reset(10, none);
    const ingest = (index: number, events: FeedEvent[]): number[] => [
      ...changes.ingest({ index, events }),
    ];
    expect(
      ingest(11, [new FeedEvent({ kind: "task", id: "t", task: task(4, "assigned") })]),
    ).toEqual([4]);
    expect(
      ingest(12, [new FeedEvent({ kind: "task", id: "t", task: task(5, "assigned") })]),
    ).toEqual([4, 5]);
    expect(
      ingest(13, [new FeedEvent({ kind: "task", id: "t", task: task(5, "succeeded") })]),
    ).toEqual([5]);
    expect(
      ingest(14, [new FeedEvent({ kind: "task", id: "t", task: task(5, "succeeded") })]),
    ).toEqual([]);
    expect(ingest(15, [new FeedEvent({ kind: "vm", name: "v", vm: vm(6) })])).toEqual([6]);
    expect(ingest(16, [new FeedEvent({ kind: "vm", name: "v", vm: undefined })])).toEqual([6]);
    expect(changes.changedAfter(4, 11)).toBe(true);
    expect(changes.changedAfter(4, 12)).toBe(false);
    expect(changes.changedAfter(6, 15)).toBe(true);
    // A node never touched since the reset counts as changed at the reset's index.
    expect(changes.changedAfter(9, 9)).toBe(true);
    expect(changes.changedAfter(9, 10)).toBe(false);
  });

  it("names a migration's target when it starts and when it ends, even after a reset", () => {
    const migrating = (nodeId: number, targetNodeId: number): Vm =>
      ({ name: "v", nodeId, migration: { targetNodeId } }) as unknown as Vm;
    const changes = new AssignmentChanges();
    changes.reset(10, none);
    const ingest = (index: number, vmNow: Vm): number[] =>
      [
        ...changes.ingest({ index, events: [new FeedEvent({ kind: "vm", name: "v", vm: vmNow })] }),
      ].sort();
    expect(ingest(11, vm(1))).toEqual([1]);
    expect(ingest(12, migrating(1, 2))).toEqual([1, 2]);
    // Moved: the source loses it, the target keeps it.
    expect(ingest(13, vm(2))).toEqual([1, 2]);
    // Reset while migrating back: each end is known as what it is.
    const queries = {
      workers: () => [{ nodeId: 1 }, { nodeId: 2 }],
      assignments: () => ({ tasks: [], vms: [migrating(2, 1)] }),
    } as unknown as OrchestratorQueries;
    changes.reset(20, queries);
    expect(ingest(21, vm(2))).toEqual([1, 2]);
  });
});

/** A one-replica cluster: the real state machine, applied through the real change feed. */
function cluster(
  options: {
    isServer?: (id: number) => boolean;
    leader?: boolean;
    relay?: (clock: ManualClock) => HeartbeatRelay;
  } = {},
) {
  const clock = new ManualClock();
  const machine = new ClusterStateMachine();
  const feed = new ChangeFeed(machine);
  const wrapped = feed.wrap(machine);
  let index = 0;
  const apply = (command: OrchestratorCommand): void => {
    const data = encodeCommandEnvelope({
      proposedAtMs: clock.now(),
      payload: encodeOrchestratorCommand(command),
    });
    const result = wrapped.apply({ index: ++index, term: 1, data });
    if (!result.ok) throw new Error(JSON.stringify(result.error));
  };
  const heartbeats = new HeartbeatTable();
  const state = { leader: options.leader ?? true };
  const hub = new AgentHub({
    feed,
    queries: machine.orchestrator,
    clock,
    leadership: {
      nodeId: 1,
      isLeader: () => state.leader,
      leaderHint: () => ({ id: 2, address: "https://127.0.0.1:9002/" }),
    },
    heartbeats,
    workerDeadAfterMs: 10_000,
    isServer: options.isServer ?? ((id) => id <= 3),
    ...(options.relay === undefined ? {} : { relay: options.relay(clock) }),
  });
  const register = (nodeId: number): void =>
    apply({
      type: "registerWorker",
      nodeId,
      capacity: { cpuMillis: 4000, memoryMb: 4096, diskGb: 10 },
      features: [RAW_EXEC_FEATURE],
    });
  return { clock, machine, feed, apply, hub, heartbeats, state, register, index: () => index };
}

describe("AgentHub", () => {
  it("answers at once when the node's assignments changed after the index asked about", async () => {
    const c = cluster();
    c.register(4);
    c.apply({ type: "submitTask", id: "t1", spec: taskSpec() });
    const answer = await c.hub.assignments(4, 0, 10_000);
    expect(answer.index).toBe(c.index());
    expect(answer.worker?.nodeId).toBe(4);
    expect(answer.tasks.map((t) => t.id)).toEqual(["t1"]);
    expect(c.hub.waitingPolls).toBe(0);
  });

  it("wakes only the polls of the nodes an applied entry touched", async () => {
    const c = cluster();
    c.register(4);
    c.register(5);
    const at = c.index();
    const answers: Record<number, { index: number; tasks: string[] }> = {};
    for (const id of [4, 5]) {
      void c.hub.assignments(id, at, 10_000).then((a) => {
        answers[id] = { index: a.index, tasks: a.tasks.map((t) => t.id) };
      });
    }
    await tick();
    expect(c.hub.waitingPolls).toBe(2);
    // Binpack places on the lowest id among equals: node 4.
    c.apply({ type: "submitTask", id: "t1", spec: taskSpec() });
    await tick();
    expect(answers[4]).toEqual({ index: c.index(), tasks: ["t1"] });
    expect(answers[5]).toBeUndefined();
    expect(c.hub.waitingPolls).toBe(1);
    // Node 5's poll ends at its time with what it has: nothing.
    await c.clock.advance(10_000);
    expect(answers[5]).toEqual({ index: c.index(), tasks: [] });
  });

  it("wakes both nodes when a task moves from one to the other", async () => {
    const c = cluster();
    c.register(4);
    c.register(5);
    c.apply({ type: "submitTask", id: "t1", spec: taskSpec() });
    expect(c.machine.orchestrator.task("t1")?.nodeId).toBe(4);
    const at = c.index();
    const woken: number[] = [];
    for (const id of [4, 5]) void c.hub.assignments(id, at, 10_000).then(() => woken.push(id));
    await tick();
    c.apply({ type: "setWorkerDrain", nodeId: 4, draining: true });
    await tick();
    expect(c.machine.orchestrator.task("t1")?.nodeId).toBe(5);
    expect(woken.sort()).toEqual([4, 5]);
  });

  it("holds a poll from a server behind the index asked about, then refuses it as UNAVAILABLE", async () => {
    const c = cluster();
    c.register(4);
    let outcome: string | undefined;
    // The agent saw index 50 elsewhere; this server has applied 1 (a removed member whose
    // process runs on never gets further: the agent must ask another server, seed 7300859).
    void c.hub.assignments(4, 50, 10_000).then(
      () => (outcome = "answered"),
      (error: unknown) => (outcome = (error as { code?: string }).code),
    );
    await tick();
    expect(outcome).toBeUndefined();
    await c.clock.advance(10_000);
    expect(outcome).toBe("UNAVAILABLE");
  });

  it("refuses a server's id, and takes heartbeats on the leader only", async () => {
    const c = cluster({ leader: false });
    await expect(c.hub.assignments(2, 0, 0)).rejects.toBeInstanceOf(ConflictError);
    await expect(c.hub.heartbeat(2)).rejects.toBeInstanceOf(ConflictError);
    const error: unknown = await c.hub.heartbeat(4).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotLeaderError);
    expect((error as NotLeaderError).leaderHint?.address).toBe("https://127.0.0.1:9002/");
    expect(() => c.hub.relayed([4, 5])).toThrow(NotLeaderError);
    expect(c.heartbeats.lastHeardMs(4)).toBeUndefined();
    c.state.leader = true;
    await c.clock.advance(1234);
    expect(await c.hub.heartbeat(4)).toEqual({ leaderId: 1, workerDeadAfterMs: 10_000 });
    expect(c.heartbeats.lastHeardMs(4)).toBe(1234);
    await c.clock.advance(10);
    expect(c.hub.relayed([4, 5])).toEqual({ leaderId: 1, workerDeadAfterMs: 10_000 });
    expect([c.heartbeats.lastHeardMs(4), c.heartbeats.lastHeardMs(5)]).toEqual([1244, 1244]);
  });

  it("says what an agent does with the disks it keeps: keep, deleted or elsewhere", () => {
    const c = cluster();
    // Two VMs that cannot share a worker's 4,096 MB: one on each.
    const big = vmSpec({ memoryMb: 3000 });
    c.register(5);
    c.apply({ type: "createVm", name: "there", spec: big, desired: "running" });
    c.register(4);
    c.apply({ type: "createVm", name: "here", spec: big, desired: "running" });
    expect(c.machine.orchestrator.vm("here")?.nodeId).toBe(4);
    expect(c.machine.orchestrator.vm("there")?.nodeId).toBe(5);
    expect(c.hub.disks(4, ["here", "there", "gone"])).toEqual({
      disks: [
        { name: "here", verdict: "keep" },
        { name: "there", verdict: "elsewhere" },
        { name: "gone", verdict: "deleted" },
      ],
    });
    expect(c.hub.disks(5, ["there"]).disks[0]?.verdict).toBe("keep");
    // A server's id is refused, as its polls are.
    expect(() => c.hub.disks(2, ["here"])).toThrow(ConflictError);
  });

  it("on a follower with a relay, answers a heartbeat once the leader took its batch", async () => {
    const sent: number[][] = [];
    let leaderTakes: () => void = () => undefined;
    const c = cluster({
      leader: false,
      relay: (clock) =>
        new HeartbeatRelay({
          clock,
          send: (nodeIds) => {
            sent.push([...nodeIds]);
            return new Promise((resolve) => {
              leaderTakes = () => resolve({ leaderId: 2, workerDeadAfterMs: 7000 });
            });
          },
        }),
    });
    let answered: unknown;
    for (const id of [4, 5, 4]) void c.hub.heartbeat(id).then((a) => (answered = a));
    await c.clock.advance(RELAY_WINDOW_MS);
    expect(sent).toEqual([[4, 5]]);
    expect(answered).toBeUndefined();
    leaderTakes();
    await c.clock.advance(0);
    expect(answered).toEqual({ leaderId: 2, workerDeadAfterMs: 7000 });
  });

  it("ends every waiting poll when closed", async () => {
    const c = cluster();
    c.register(4);
    const poll = c.hub.assignments(4, c.index(), 10_000);
    c.hub.close();
    await expect(poll).rejects.toBeInstanceOf(CancelledError);
  });
});
