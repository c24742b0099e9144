/**
 * The leader's drain deadline monitor against the real model: the proposer applies each command
 * at the leader's clock (log time), as a leader's proposal would be applied.
 */
import { describe, expect, it } from "vitest";
import { DrainDeadlineMonitor } from "../../src/orchestrator/drain-deadlines.js";
import type { OrchestratorCommand } from "../../src/statemachine/orchestrator/commands.js";
import { OrchestratorModel } from "../../src/statemachine/orchestrator/model.js";
import { commandErrorToException } from "../../src/statemachine/command-result.js";
import { ManualClock } from "../node/fakes.js";
import { res, taskSpec } from "./model/fixtures.js";

const SILENT = { debug: () => undefined, info: () => undefined, warn: () => undefined };

/** A model at clock time 0 with node 1 running task `t` and node 2 free. */
function setup(options: { leader?: boolean; sampleEveryMs?: number } = {}) {
  const clock = new ManualClock();
  const model = new OrchestratorModel();
  const proposed: OrchestratorCommand[] = [];
  const state = { leader: options.leader ?? true, logSkewMs: 0 };
  const apply = (command: OrchestratorCommand) => {
    const result = model.apply(command, Math.max(0, Math.floor(clock.now()) + state.logSkewMs));
    if (!result.ok) throw commandErrorToException(result.error);
    return result.value;
  };
  const features = ["raw_exec"];
  apply({ type: "registerWorker", nodeId: 1, capacity: res(1000, 1000), features });
  apply({ type: "submitTask", id: "t", spec: taskSpec({ resources: res(500, 100) }) });
  apply({ type: "taskStarted", id: "t", nodeId: 1, attempt: 1 });
  apply({ type: "registerWorker", nodeId: 2, capacity: res(1000, 1000), features });
  const monitor = new DrainDeadlineMonitor({
    isLeader: () => state.leader,
    queries: model,
    proposer: {
      propose: async (command) => {
        proposed.push(command);
        return apply(command);
      },
    },
    clock,
    log: SILENT,
    ...(options.sampleEveryMs === undefined ? {} : { sampleEveryMs: options.sampleEveryMs }),
  });
  monitor.start();
  return { clock, model, proposed, state, apply, monitor };
}

describe("DrainDeadlineMonitor", () => {
  it("moves the running task at the deadline, not before, and the worker ends drained", async () => {
    const { clock, model, proposed, apply } = setup();
    apply({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 5000 });
    await clock.advance(4999);
    expect(proposed).toEqual([]);
    expect(model.task("t")).toMatchObject({ status: "running", nodeId: 1 });
    await clock.advance(1);
    expect(proposed).toEqual([{ type: "drainDeadlineReached", nodeId: 1 }]);
    expect(model.task("t")).toMatchObject({ status: "assigned", nodeId: 2, attempts: 1 });
    expect(model.worker(1)?.status).toBe("drained");
    await clock.advance(10_000);
    expect(proposed).toHaveLength(1);
  });

  it("wakes at the deadline itself when it is nearer than the next sample", async () => {
    const { clock, proposed, apply } = setup({ sampleEveryMs: 10_000 });
    apply({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 15_000 });
    // The sample at 10 s sees the deadline 5 s away and wakes at 15 s, not at 20 s.
    await clock.advance(14_999);
    expect(proposed).toEqual([]);
    await clock.advance(1);
    expect(proposed).toHaveLength(1);
  });

  it("proposes nothing while not the leader; a new leader acts on a deadline that passed", async () => {
    const { clock, model, proposed, state, apply } = setup({ leader: false });
    apply({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 2000 });
    await clock.advance(5000);
    expect(proposed).toEqual([]);
    state.leader = true;
    await clock.advance(1000);
    expect(proposed).toEqual([{ type: "drainDeadlineReached", nodeId: 1 }]);
    expect(model.worker(1)?.status).toBe("drained");
  });

  it("tries again when the model refuses the step because log time is still before it", async () => {
    const { clock, model, proposed, state, apply } = setup();
    apply({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 2000 });
    // This leader's clock runs ahead of the one that set the deadline: its first step is early.
    state.logSkewMs = -500;
    await clock.advance(2000);
    expect(proposed).toHaveLength(1);
    expect(model.task("t")?.nodeId).toBe(1);
    await clock.advance(1000);
    expect(proposed).toHaveLength(2);
    expect(model.task("t")?.nodeId).toBe(2);
    expect(model.worker(1)?.status).toBe("drained");
  });

  it("stops sampling when closed", async () => {
    const { clock, proposed, apply, monitor } = setup();
    apply({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 2000 });
    monitor.close();
    await clock.advance(5000);
    expect(proposed).toEqual([]);
  });
});
