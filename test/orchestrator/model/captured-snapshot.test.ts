/**
 * The orchestrator's captured snapshot (`OrchestratorModel.captureSnapshot`, see
 * `snapshot-view.ts`) where the property test over random small states does not reach: finished
 * tasks evicted past `MAX_FINISHED_TASKS` while the encoding has not reached them, and a view
 * closed part-way.
 */
import { describe, expect, it } from "vitest";
import type { AgentReport } from "../../../src/statemachine/orchestrator/commands.js";
import { MAX_FINISHED_TASKS } from "../../../src/statemachine/orchestrator/limits.js";
import { SlicedSnapshot } from "../../../src/statemachine/snapshot-encoding.js";
import { Harness, res, sameBytes, taskResult, taskSpec } from "./fixtures.js";

const id = (i: number) => `task-${String(i).padStart(6, "0")}`;

/** Submits tasks `from` ≤ i < `to` on worker 1 and has its agent run them to success. */
function runTasks(h: Harness, from: number, to: number): void {
  for (let first = from; first < to; first += 1000) {
    const tasks = [];
    for (let i = first; i < Math.min(to, first + 1000); i++) {
      tasks.push({ id: id(i), spec: taskSpec({ resources: res(1, 1) }) });
    }
    h.ok({ type: "submitTasks", tasks });
  }
  for (const outcome of ["started", "finished"] as const) {
    for (let first = from; first < to; first += 256) {
      const reports: AgentReport[] = [];
      for (let i = first; i < Math.min(to, first + 256); i++) {
        reports.push(
          outcome === "started"
            ? { type: "taskStarted", id: id(i), nodeId: 1, attempt: 1 }
            : {
                type: "taskFinished",
                id: id(i),
                nodeId: 1,
                attempt: 1,
                outcome: "succeeded",
                result: taskResult(),
              },
        );
      }
      h.ok({ type: "agentReports", nodeId: 1, reports });
    }
  }
}

describe("OrchestratorModel.captureSnapshot", () => {
  it("keeps finished tasks evicted after the capture for the encoding, until it has written them", () => {
    const h = new Harness();
    h.register(1, res(1_000_000, 1_000_000));
    runTasks(h, 0, MAX_FINISHED_TASKS);
    const encoding = new SlicedSnapshot(h.model.captureSnapshot());
    const atCapture = h.model.snapshot();
    // Part-way through the tasks: the first ones are written, the rest not yet.
    for (let i = 0; i < 40; i++) expect(encoding.next(1)?.length).toBe(0);
    // 500 more finish: the 500 oldest (written or not) are evicted.
    runTasks(h, MAX_FINISHED_TASKS, MAX_FINISHED_TASKS + 500);
    expect(h.model.task(id(0))).toBeUndefined();
    while (encoding.next() !== undefined);
    expect(sameBytes(encoding.finish(), atCapture)).toBe(true);
    expect(sameBytes(h.model.snapshot(), atCapture)).toBe(false);
  });

  it("a capture closed part-way refuses more slices; a later capture sees the changes since", () => {
    const h = new Harness();
    h.register(1, res(1_000_000, 1_000_000));
    runTasks(h, 0, 100);
    const encoding = new SlicedSnapshot(h.model.captureSnapshot());
    encoding.next(1);
    encoding.close();
    expect(() => encoding.next()).toThrow(/after close/);
    runTasks(h, 100, 200);
    const second = new SlicedSnapshot(h.model.captureSnapshot());
    while (second.next() !== undefined);
    expect(sameBytes(second.finish(), h.model.snapshot())).toBe(true);
  });
});
