import { describe, expect, it } from "vitest";
import { InMemoryMemberDirectory, memberApiUrl } from "../../src/api/member-directory.js";
import {
  MAX_TASK_WAITERS,
  RaftOrchestratorService,
} from "../../src/api/raft-orchestrator-service.js";
import { CommandPort, type CommandMetrics } from "../../src/node/command-port.js";
import {
  CancelledError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  NotLeaderError,
  OverloadedError,
  TimeoutError,
  TooLargeError,
} from "../../src/common/errors.js";
import type { TaskSpec, VmSpec } from "../../src/statemachine/orchestrator/types.js";
import { ManualClock, flushPromises } from "../node/fakes.js";
import { FakeOrchestratorNode } from "./orchestrator-fakes.js";

const SPEC: TaskSpec = {
  command: "echo",
  args: ["hi"],
  env: {},
  cwd: "",
  shell: false,
  resources: { cpuMillis: 1000, memoryMb: 256, diskGb: 0 },
  requiredFeatures: [],
  timeoutMs: 0,
  maxAttempts: 3,
};

const VM: VmSpec = {
  vcpus: 1,
  memoryMb: 256,
  diskGb: 0,
  driver: "process",
  command: "/bin/sleep",
  args: ["infinity"],
  kernel: "",
  initrd: "",
  image: "",
  cmdline: "",
  requiredFeatures: [],
  antiAffinityGroup: "",
  restart: { mode: "on-failure", maxRestarts: 5, backoffMs: 1000 },
};

function setup(options: { directory?: InMemoryMemberDirectory; metrics?: CommandMetrics } = {}) {
  const node = new FakeOrchestratorNode(1);
  node.addWorker(1);
  const clock = new ManualClock();
  let next = 0;
  const commands = new CommandPort({
    node,
    clock,
    leaderAddress: (id) => memberApiUrl(options.directory, id),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
  const service = new RaftOrchestratorService({
    node,
    commands,
    clock,
    newTaskId: () => `t${++next}`,
    ...(options.directory === undefined ? {} : { directory: options.directory }),
  });
  return { node, clock, service };
}

/** Settles `promise` into an outcome without letting a rejection go unhandled. */
function observe<T>(promise: Promise<T>): {
  readonly outcome: { value?: T; error?: unknown } | undefined;
} {
  const state: { outcome: { value?: T; error?: unknown } | undefined } = { outcome: undefined };
  promise.then(
    (value) => (state.outcome = { value }),
    (error: unknown) => (state.outcome = { error }),
  );
  return state;
}

describe("RaftOrchestratorService: task waits", () => {
  it("resolves when an applied entry ends the task, and unsubscribes", async () => {
    const { node, service } = setup();
    const task = await service.submitTask(SPEC);
    const wait = observe(service.waitTask(task.id, { timeoutMs: 60_000 }));
    await flushPromises();
    expect(wait.outcome).toBeUndefined();
    expect(node.listenerCount).toBe(1);
    node.markRunning(task.id);
    await flushPromises();
    expect(wait.outcome).toBeUndefined();
    node.finish(task.id, { status: "succeeded", result: { exitCode: 0, stdout: "hi\n" } });
    await flushPromises();
    expect(wait.outcome?.value).toMatchObject({ id: task.id, status: "succeeded" });
    expect(node.listenerCount).toBe(0);
    expect(service.waiters).toBe(0);
  });

  it("resolves with the task as it is when the long-poll runs out", async () => {
    const { node, clock, service } = setup();
    const task = await service.submitTask(SPEC);
    const wait = observe(service.waitTask(task.id, { timeoutMs: 1000 }));
    await flushPromises();
    node.markRunning(task.id);
    await clock.advance(999);
    expect(wait.outcome).toBeUndefined();
    await clock.advance(1);
    expect(wait.outcome?.value).toMatchObject({ id: task.id, status: "running" });
    expect(node.listenerCount).toBe(0);
  });

  it("answers at once for a task that has already ended", async () => {
    const { node, service } = setup();
    const task = await service.submitTask(SPEC);
    node.finish(task.id, { status: "lost" });
    await expect(service.waitTask(task.id, { timeoutMs: 10 })).resolves.toMatchObject({
      status: "lost",
    });
    expect(node.listenerCount).toBe(0);
  });

  it("rejects with CANCELLED when the signal fires, before or during the wait", async () => {
    const { node, service } = setup();
    const task = await service.submitTask(SPEC);
    const controller = new AbortController();
    const wait = observe(
      service.waitTask(task.id, { timeoutMs: 60_000, signal: controller.signal }),
    );
    await flushPromises();
    controller.abort();
    await flushPromises();
    expect(wait.outcome?.error).toBeInstanceOf(CancelledError);
    expect(node.listenerCount).toBe(0);
    await expect(
      service.waitTask(task.id, { timeoutMs: 10, signal: AbortSignal.abort() }),
    ).rejects.toBeInstanceOf(CancelledError);
    expect(node.listenerCount).toBe(0);
  });

  it("rejects with NOT_FOUND for an unknown task, and if the task disappears mid-wait", async () => {
    const { node, service } = setup();
    await expect(service.waitTask("nope", { timeoutMs: 10 })).rejects.toBeInstanceOf(NotFoundError);
    const task = await service.submitTask(SPEC);
    const wait = observe(service.waitTask(task.id, { timeoutMs: 60_000 }));
    await flushPromises();
    node.forget(task.id);
    await flushPromises();
    expect(wait.outcome?.error).toBeInstanceOf(NotFoundError);
    expect(service.waiters).toBe(0);
  });

  it("fails the wait when the first read does, with the read's error", async () => {
    const { node, service } = setup();
    const task = await service.submitTask(SPEC);
    node.barrierError = new TimeoutError("no quorum");
    await expect(service.waitTask(task.id, { timeoutMs: 10 })).rejects.toBeInstanceOf(TimeoutError);
    expect(node.listenerCount).toBe(0);
    expect(service.waiters).toBe(0);
  });

  it(`holds at most ${MAX_TASK_WAITERS} waits and refuses more with OVERLOADED`, async () => {
    const { node, service } = setup();
    const task = await service.submitTask(SPEC);
    const waits = Array.from({ length: MAX_TASK_WAITERS }, () =>
      observe(service.waitTask(task.id, { timeoutMs: 5000 })),
    );
    await expect(service.waitTask(task.id, { timeoutMs: 5000 })).rejects.toBeInstanceOf(
      OverloadedError,
    );
    node.finish(task.id, { status: "succeeded" });
    await flushPromises();
    expect(waits.every((w) => w.outcome?.value?.status === "succeeded")).toBe(true);
    expect(service.waiters).toBe(0);
    await expect(service.waitTask(task.id, { timeoutMs: 5000 })).resolves.toBeDefined();
  });

  it("refuses a negative or huge long-poll", async () => {
    const { service } = setup();
    await expect(service.waitTask("t1", { timeoutMs: -1 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(service.waitTask("t1", { timeoutMs: 1e9 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});

describe("RaftOrchestratorService: proposals and reads", () => {
  it("chooses the task id before proposing and passes the session with the command", async () => {
    const { node, service } = setup();
    const session = { clientId: "c1", sequence: 1 };
    const task = await service.submitTask(SPEC, { session });
    expect(task.id).toBe("t1");
    expect(node.proposals.at(-1)).toMatchObject({
      command: { type: "submitTask", id: "t1", spec: SPEC },
      options: { session },
    });
    // A retry under the same session carries a new id, but the session returns the first result.
    const retry = await service.submitTask(SPEC, { session });
    expect(retry.id).toBe("t1");
    expect(node.queries.tasks()).toHaveLength(1);
  });

  it("checks input before proposing anything", async () => {
    const { node, service } = setup();
    const attempts: [Promise<unknown>, new (...args: never[]) => Error][] = [
      [service.submitTask({ ...SPEC, command: "" }), InvalidArgumentError],
      [
        service.submitTask({ ...SPEC, resources: { ...SPEC.resources, memoryMb: -1 } }),
        InvalidArgumentError,
      ],
      [service.submitTask({ ...SPEC, maxAttempts: 0 }), InvalidArgumentError],
      [service.submitTask({ ...SPEC, env: { "A=B": "x" } }), InvalidArgumentError],
      [service.submitTask({ ...SPEC, args: ["x".repeat(5000)] }), TooLargeError],
      [service.submitTask({ ...SPEC, cwd: "a\u0000b" }), InvalidArgumentError],
      [
        service.submitTask({ ...SPEC, args: Array.from({ length: 1000 }, () => "y".repeat(4000)) }),
        TooLargeError,
      ],
      [service.createVm("Bad Name", VM, "running"), InvalidArgumentError],
      [service.createVm("ok", { ...VM, driver: "kvm" as "qemu" }, "running"), InvalidArgumentError],
      [service.createVm("ok", VM, "paused" as "running"), InvalidArgumentError],
      [
        service.createVm("ok", { ...VM, restart: { ...VM.restart, backoffMs: -5 } }, "running"),
        InvalidArgumentError,
      ],
      [service.drainWorker(0, true), InvalidArgumentError],
      [service.cancelTask("bad id"), InvalidArgumentError],
      [service.setSettings({ placement: "random" as "spread" }), InvalidArgumentError],
      [service.listTasks({ limit: 0 }), InvalidArgumentError],
      [service.listTasks({ limit: 1001 }), InvalidArgumentError],
    ];
    for (const [attempt, type] of attempts) await expect(attempt).rejects.toBeInstanceOf(type);
    expect(node.proposals).toEqual([]);
  });

  it("fills the leader's API address into NOT_LEADER from the directory", async () => {
    const directory = new InMemoryMemberDirectory([
      [3, { raftAddress: "10.0.0.3:7000", apiAddress: "http://10.0.0.3:8000" }],
    ]);
    const { node, service } = setup({ directory });
    node.role = "follower";
    node.leaderId = 3;
    const error = await service.submitTask(SPEC).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotLeaderError);
    expect((error as NotLeaderError).leaderHint).toEqual({
      id: 3,
      address: "http://10.0.0.3:8000/",
    });
    const lease = await service.listVms({ consistency: "lease" }).catch((e: unknown) => e);
    expect((lease as NotLeaderError).leaderHint?.address).toBe("http://10.0.0.3:8000/");
    node.leaderId = 4;
    const unknown = await service.stopVm("x").catch((e: unknown) => e);
    expect((unknown as NotLeaderError).leaderHint).toEqual({ id: 4 });
    node.leaderId = undefined;
    const none = await service.stopVm("x").catch((e: unknown) => e);
    expect((none as NotLeaderError).leaderHint).toBeUndefined();
  });

  it("reads at the consistency asked for, linearizable by default", async () => {
    const { node, service } = setup();
    await service.listWorkers();
    await service.getWorker(1, { consistency: "stale" });
    await service.getSettings({ consistency: "lease" });
    expect(node.barriers).toEqual(["read", "stale", "read"]);
    // A lease read is the leader's alone; a linearizable one runs on a follower too.
    node.role = "follower";
    await expect(service.getSettings({ consistency: "lease" })).rejects.toBeInstanceOf(
      NotLeaderError,
    );
    await service.getSettings();
    expect(node.barriers).toEqual(["read", "stale", "read", "read"]);
    node.role = "leader";
    await expect(service.getWorker(5)).rejects.toBeInstanceOf(NotFoundError);
    await expect(service.getVm("none")).rejects.toThrow(/blixard vm list/);
  });

  it("reports 'more' only when a task follows the page", async () => {
    const { service } = setup();
    for (let i = 0; i < 3; i++) await service.submitTask(SPEC);
    expect(await service.listTasks({ limit: 3 })).toMatchObject({ more: false });
    const page = await service.listTasks({ limit: 2 });
    expect(page.tasks.map((t) => t.id)).toEqual(["t1", "t2"]);
    expect(page.more).toBe(true);
  });

  it("serves a task's logs, empty until an attempt has ended", async () => {
    const { node, service } = setup();
    const task = await service.submitTask(SPEC);
    expect(await service.taskLogs(task.id)).toEqual({
      id: task.id,
      status: "assigned",
      available: false,
      stdout: "",
      stderr: "",
      stdoutTruncated: false,
      stderrTruncated: false,
    });
    node.finish(task.id, { status: "succeeded", result: { stdout: "a", stdoutTruncated: true } });
    expect(await service.taskLogs(task.id)).toMatchObject({
      available: true,
      stdout: "a",
      stdoutTruncated: true,
    });
  });

  it("reports each proposal and read with its outcome", async () => {
    const events: string[] = [];
    const { node, service } = setup({
      metrics: {
        proposalFinished: (namespace, outcome) => events.push(`propose:${namespace}:${outcome}`),
        readFinished: (namespace, consistency, outcome) =>
          events.push(`read:${namespace}:${consistency}:${outcome}`),
      },
    });
    await service.createVm("a", VM, "running");
    await service.createVm("a", VM, "running").catch(() => undefined);
    await service.getVm("a", { consistency: "stale" });
    node.barrierError = new TimeoutError("slow");
    await service.listVms().catch(() => undefined);
    expect(events).toEqual([
      "propose:orchestrator:applied",
      "propose:orchestrator:CONFLICT",
      "read:orchestrator:stale:ok",
      "read:orchestrator:linearizable:TIMEOUT",
    ]);
  });

  it("treats a result of the wrong kind as a bug (INTERNAL)", async () => {
    const { node, service } = setup();
    node.proposeCommand = () => Promise.resolve({ type: "deleted" });
    await expect(service.submitTask(SPEC)).rejects.toBeInstanceOf(InternalError);
  });
});
