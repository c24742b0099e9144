/**
 * The orchestrator results' encoding, used to keep results in client sessions and snapshots
 * (versioned by the snapshot format): canonical JSON in UTF-8, `{"type": …, <payload>}`, each
 * entity rebuilt by its strict reader so equal results give equal bytes.
 */
import { FieldReader, type FieldPath } from "./field-reader.js";
import {
  BATCH_ITEM_ERROR_CODES,
  type BatchItemOutcome,
  type DrainMoved,
  type OrchestratorResult,
} from "./commands.js";
import {
  MAX_AGENT_REPORTS_PER_BATCH,
  MAX_SUBMIT_BATCH_TASKS,
  MAX_TASK_ID_BYTES,
} from "./limits.js";
import { TASK_STATUSES } from "./types.js";
import { VM_STATUSES, readTask, readVm, readWorker } from "./entity-reader.js";
import { asMalformed, decodeJson, encodeJson } from "./json-bytes.js";
import { readSettings } from "./spec-reader.js";

/** Pending reasons and item messages: as long as the model's own reasons may be. */
const REASON = { maxBytes: 16 * 1024 };

function readBatchItem(item: unknown, path: FieldPath): BatchItemOutcome {
  const fields = new FieldReader(item, path);
  const id = fields.string("id", { maxBytes: MAX_TASK_ID_BYTES });
  let outcome: BatchItemOutcome;
  if (fields.boolean("ok")) {
    const status = fields.oneOf("status", [...TASK_STATUSES, ...VM_STATUSES]);
    const nodeId = fields.nullableInteger("nodeId", 1, Number.MAX_SAFE_INTEGER);
    outcome = fields.has("pendingReason")
      ? { ok: true, id, status, nodeId, pendingReason: fields.string("pendingReason", REASON) }
      : { ok: true, id, status, nodeId };
  } else {
    outcome = {
      ok: false,
      id,
      code: fields.oneOf("code", BATCH_ITEM_ERROR_CODES),
      message: fields.string("message", REASON),
    };
  }
  fields.end();
  return Object.freeze(outcome);
}

function readMoved(fields: FieldReader): DrainMoved {
  const moved = {
    tasks: fields.integer("tasks", 0, Number.MAX_SAFE_INTEGER),
    vms: fields.integer("vms", 0, Number.MAX_SAFE_INTEGER),
  };
  fields.end();
  return moved;
}

/**
 * Reads a result: checks it and returns a frozen copy with its keys in canonical order. Throws
 * `InvalidArgumentError` (or `TooLargeError`) if it is not a well-formed result.
 */
export function readOrchestratorResult(value: unknown): OrchestratorResult {
  const type = new FieldReader(value, "orchestrator result").oneOf("type", [
    "worker",
    "task",
    "vm",
    "deleted",
    "settings",
    "batch",
  ] as const);
  const fields = new FieldReader(value, `${type} result`);
  fields.value("type");
  let result: OrchestratorResult;
  switch (type) {
    case "worker":
      result = fields.has("moved")
        ? {
            type,
            worker: fields.object("worker", readWorker),
            moved: fields.object("moved", readMoved),
          }
        : { type, worker: fields.object("worker", readWorker) };
      break;
    case "task":
      result = { type, task: fields.object("task", readTask) };
      break;
    case "vm":
      result = { type, vm: fields.object("vm", readVm) };
      break;
    case "deleted":
      result = { type };
      break;
    case "settings":
      result = { type, settings: fields.object("settings", readSettings) };
      break;
    case "batch":
      result = {
        type,
        items: fields.array(
          "items",
          Math.max(MAX_SUBMIT_BATCH_TASKS, MAX_AGENT_REPORTS_PER_BATCH),
          readBatchItem,
        ),
      };
      break;
  }
  fields.end();
  return Object.freeze(result);
}

/** Encodes a result the model returned, canonically. Throws nothing for such a result. */
export function encodeOrchestratorResult(result: OrchestratorResult): Uint8Array {
  return encodeJson(readOrchestratorResult(result));
}

/** Decodes {@link encodeOrchestratorResult}'s bytes into an equal result. Throws `InvalidArgumentError` if malformed. */
export function decodeOrchestratorResult(bytes: Uint8Array): OrchestratorResult {
  return asMalformed(() => readOrchestratorResult(decodeJson(bytes, "orchestrator result")));
}
