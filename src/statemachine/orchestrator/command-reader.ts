/**
 * The strict reader of orchestrator commands: any value in, a valid, frozen command with its keys
 * in canonical order out. The byte codec runs it after `JSON.parse`; the model runs it on every
 * command it applies, so a malformed command object is refused the same way as malformed bytes.
 */
import { FieldReader, LazyPath, type FieldPath } from "./field-reader.js";
import type { AgentReport, OrchestratorCommand } from "./commands.js";
import type { TaskSpec } from "./types.js";
import {
  DISK_URI_RULES,
  INCOMING_URI_RULES,
  TASK_ID_RULES,
  VM_NAME_RULES,
  readNodeId,
} from "./entity-reader.js";
import { InvalidArgumentError } from "../../common/index.js";
import {
  MAX_AGENT_REPORTS_PER_BATCH,
  MAX_DRAIN_DEADLINE_MS,
  MAX_ERROR_BYTES,
  MAX_SUBMIT_BATCH_TASKS,
  MAX_TASK_ATTEMPTS,
} from "./limits.js";
import {
  readFeatures,
  readResources,
  readSettings,
  readTaskResult,
  readTaskSpec,
  readVmSpec,
} from "./spec-reader.js";

/** Every command type, in the order of `OrchestratorCommand`. */
export const ORCHESTRATOR_COMMAND_TYPES: readonly OrchestratorCommand["type"][] = [
  "registerWorker",
  "setWorkerDrain",
  "markWorkerOffline",
  "drainDeadlineReached",
  "submitTask",
  "cancelTask",
  "taskStarted",
  "taskFinished",
  "createVm",
  "setVmDesired",
  "deleteVm",
  "migrateVm",
  "vmObserved",
  "setSettings",
  "submitTasks",
  "agentReports",
];

/** The reports `agentReports` may carry. */
const AGENT_REPORT_TYPES = ["taskStarted", "taskFinished", "vmObserved"] as const;

/** One report of an `agentReports` batch, read as the command of its type. */
function readAgentReport(item: unknown, path: FieldPath): AgentReport {
  const type = new FieldReader(item, path).oneOf("type", AGENT_REPORT_TYPES);
  const fields = new FieldReader(item, new LazyPath(path, type, true));
  fields.value("type");
  const report = readFields(fields, type) as AgentReport;
  fields.end();
  return Object.freeze(report);
}

function readBatchTask(item: unknown, path: FieldPath): { id: string; spec: TaskSpec } {
  const fields = new FieldReader(item, path);
  const task = {
    id: fields.string("id", TASK_ID_RULES),
    spec: fields.object("spec", readTaskSpec),
  };
  fields.end();
  return Object.freeze(task);
}

function readFields(fields: FieldReader, type: OrchestratorCommand["type"]): OrchestratorCommand {
  switch (type) {
    case "registerWorker":
      return {
        type,
        nodeId: readNodeId(fields, "nodeId"),
        capacity: fields.object("capacity", readResources),
        features: readFeatures(fields, "features"),
      };
    case "setWorkerDrain": {
      const nodeId = readNodeId(fields, "nodeId");
      const draining = fields.boolean("draining");
      const deadlineMs = fields.optionalInteger("deadlineMs", 0, MAX_DRAIN_DEADLINE_MS);
      if (deadlineMs !== undefined && !draining) {
        throw new InvalidArgumentError(
          "setWorkerDrain.deadlineMs is for a drain; an undrain takes no deadline",
        );
      }
      // 0 is the default: absent, so both spellings encode alike.
      return deadlineMs === undefined || deadlineMs === 0
        ? { type, nodeId, draining }
        : { type, nodeId, draining, deadlineMs };
    }
    case "markWorkerOffline":
    case "drainDeadlineReached":
      return { type, nodeId: readNodeId(fields, "nodeId") };
    case "submitTask":
      return {
        type,
        id: fields.string("id", TASK_ID_RULES),
        spec: fields.object("spec", readTaskSpec),
      };
    case "cancelTask":
      return { type, id: fields.string("id", TASK_ID_RULES) };
    case "taskStarted":
      return {
        type,
        id: fields.string("id", TASK_ID_RULES),
        nodeId: readNodeId(fields, "nodeId"),
        attempt: fields.integer("attempt", 1, MAX_TASK_ATTEMPTS),
      };
    case "taskFinished":
      return {
        type,
        id: fields.string("id", TASK_ID_RULES),
        nodeId: readNodeId(fields, "nodeId"),
        attempt: fields.integer("attempt", 1, MAX_TASK_ATTEMPTS),
        outcome: fields.oneOf("outcome", [
          "succeeded",
          "failed",
          "timed_out",
          "cancelled",
        ] as const),
        result: fields.object("result", readTaskResult),
      };
    case "createVm":
      return {
        type,
        name: fields.string("name", VM_NAME_RULES),
        spec: fields.object("spec", readVmSpec),
        desired: fields.oneOf("desired", ["running", "stopped"] as const),
      };
    case "setVmDesired":
      return {
        type,
        name: fields.string("name", VM_NAME_RULES),
        desired: fields.oneOf("desired", ["running", "stopped"] as const),
      };
    case "deleteVm":
      return { type, name: fields.string("name", VM_NAME_RULES) };
    case "migrateVm": {
      const targetNodeId = fields.optionalInteger("targetNodeId", 1, Number.MAX_SAFE_INTEGER);
      return {
        type,
        name: fields.string("name", VM_NAME_RULES),
        ...(targetNodeId === undefined ? {} : { targetNodeId }),
      };
    }
    case "vmObserved": {
      const requestedStop = fields.optionalBoolean("requestedStop");
      const incomingUri = fields.has("incomingUri")
        ? fields.string("incomingUri", INCOMING_URI_RULES)
        : undefined;
      const incomingDiskUri = fields.has("incomingDiskUri")
        ? fields.string("incomingDiskUri", DISK_URI_RULES)
        : undefined;
      const sendFailedTo = fields.has("sendFailedTo")
        ? fields.string("sendFailedTo", INCOMING_URI_RULES)
        : undefined;
      return {
        type,
        name: fields.string("name", VM_NAME_RULES),
        nodeId: readNodeId(fields, "nodeId"),
        // pending and scheduled are the model's own statuses; an agent reports what it sees.
        status: fields.oneOf("status", [
          "starting",
          "booting",
          "running",
          "unhealthy",
          "stopping",
          "stopped",
          "failed",
        ] as const),
        restarts: fields.integer("restarts", 0, Number.MAX_SAFE_INTEGER),
        error: fields.string("error", { maxBytes: MAX_ERROR_BYTES }),
        ...(requestedStop === undefined ? {} : { requestedStop }),
        ...(incomingUri === undefined ? {} : { incomingUri }),
        ...(incomingDiskUri === undefined ? {} : { incomingDiskUri }),
        ...(sendFailedTo === undefined ? {} : { sendFailedTo }),
      };
    }
    case "setSettings":
      return { type, settings: fields.object("settings", readSettings) };
    case "submitTasks": {
      // An id named twice is not refused here: the second item gets CONFLICT, like a resubmit.
      return { type, tasks: fields.array("tasks", MAX_SUBMIT_BATCH_TASKS, readBatchTask) };
    }
    case "agentReports": {
      const nodeId = readNodeId(fields, "nodeId");
      const reports = fields.array("reports", MAX_AGENT_REPORTS_PER_BATCH, readAgentReport);
      reports.forEach((report, i) => {
        if (report.nodeId !== nodeId) {
          throw new InvalidArgumentError(
            `agentReports.reports[${i}] is about node ${report.nodeId}, not the reporting node ${nodeId}`,
          );
        }
      });
      return { type, nodeId, reports };
    }
  }
}

/**
 * Reads and validates a command. Throws `InvalidArgumentError` (unknown type, missing, unknown or
 * ill-typed field, value out of range, a VM spec its driver cannot run) or `TooLargeError` (a
 * string or list over its limit in `limits.ts`).
 */
export function readOrchestratorCommand(value: unknown): OrchestratorCommand {
  const type = new FieldReader(value, "orchestrator command").oneOf(
    "type",
    ORCHESTRATOR_COMMAND_TYPES,
  );
  // Read again under the type's name, so errors say "submitTask.spec.maxAttempts".
  const fields = new FieldReader(value, type);
  fields.value("type");
  const command = readFields(fields, type);
  fields.end();
  return Object.freeze(command);
}
