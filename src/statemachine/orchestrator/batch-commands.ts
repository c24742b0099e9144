/**
 * The batch commands: many submits, or many reports of one agent, in one log entry. Private to
 * the orchestrator folder; `model.ts` dispatches to these after validating the command.
 *
 * Each item is applied in order exactly as its own command would be, and on its own: an item
 * refused for the state it meets (a taken id, the unfinished-task bound, a stale report) changes
 * nothing and is reported as that item's error, and the items after it still apply. A batch that
 * is malformed anywhere (any field of any item, a report about another node) is refused as a
 * whole by the command reader, before anything applies. The batch result is always `ok`.
 *
 * Reports that free capacity (a task finished, a VM released) each ask for a placement pass;
 * `agentReports` runs one pass after its last report instead (`withOnePass`), so a batch of n
 * finishes costs one pass, not n.
 */
import { invariant } from "../../common/index.js";
import { okResult, type CommandResult } from "../command-result.js";
import type { BatchItemOutcome, OrchestratorCommand, OrchestratorResult } from "./commands.js";
import { withOnePass } from "./placement.js";
import type { OrchestratorState } from "./state.js";
import { submitTask, taskFinished, taskStarted } from "./task-commands.js";
import { vmObserved } from "./vm-commands.js";

type Command<T extends OrchestratorCommand["type"]> = Extract<OrchestratorCommand, { type: T }>;
type Result = CommandResult<OrchestratorResult>;

/** One item's outcome from the result its own command gave. */
function outcome(id: string, result: Result): BatchItemOutcome {
  if (!result.ok) {
    const code = result.error.code;
    // The item handlers refuse only with these codes (validation happened before).
    invariant(
      code === "NOT_FOUND" || code === "CONFLICT" || code === "OVERLOADED",
      () => `a batch item was refused with ${code}`,
    );
    return { ok: false, id, code, message: result.error.message };
  }
  const value = result.value;
  const entity = value.type === "task" ? value.task : value.type === "vm" ? value.vm : undefined;
  invariant(entity !== undefined, () => `a batch item returned a ${value.type} result`);
  return {
    ok: true,
    id,
    status: entity.status,
    nodeId: entity.nodeId,
    ...(entity.status === "pending" ? { pendingReason: entity.pendingReason } : {}),
  };
}

/** Submits each task in order, as `submitTask` would; see the module comment. */
export function submitTasks(
  state: OrchestratorState,
  command: Command<"submitTasks">,
  nowMs: number,
): Result {
  const items = command.tasks.map((task) =>
    outcome(task.id, submitTask(state, { type: "submitTask", ...task }, nowMs)),
  );
  return okResult({ type: "batch", items });
}

/** Applies each report of one agent in order, then one placement pass; see the module comment. */
export function agentReports(
  state: OrchestratorState,
  command: Command<"agentReports">,
  nowMs: number,
): Result {
  const items = withOnePass(state, nowMs, () =>
    command.reports.map((report) => {
      switch (report.type) {
        case "taskStarted":
          return outcome(report.id, taskStarted(state, report, nowMs));
        case "taskFinished":
          return outcome(report.id, taskFinished(state, report, nowMs));
        case "vmObserved":
          return outcome(report.name, vmObserved(state, report, nowMs));
      }
    }),
  );
  return okResult({ type: "batch", items });
}
