/** The orchestrator's replicated model: its public face (see README.md beside this file). */
export * from "./types.js";
export type {
  AgentReport,
  BatchItemOutcome,
  DrainMoved,
  OrchestratorCommand,
  OrchestratorResult,
} from "./commands.js";
export type { NodeAssignments, OrchestratorQueries, TaskListOptions } from "./queries.js";
export * from "./limits.js";
export * from "./features.js";
export { OrchestratorModel } from "./model.js";
export type { OrchestratorStateOptions } from "./state.js";
export {
  ORCHESTRATOR_COMMAND_FORMAT,
  decodeOrchestratorCommand,
  encodeOrchestratorCommand,
} from "./command-codec.js";
export { readOrchestratorCommand } from "./command-reader.js";
export { decodeOrchestratorResult, encodeOrchestratorResult } from "./result-codec.js";
export { ORCHESTRATOR_SNAPSHOT_FORMAT_VERSION } from "./snapshot.js";
export {
  choosePlacement,
  type PlacementDecision,
  type PlacementRequest,
  type PlacementState,
} from "./scheduler.js";
export { TERMINAL_TASK_STATUSES, VM_STATUSES, isTerminal } from "./entity-reader.js";
export { DEFAULT_SETTINGS } from "./spec-reader.js";
export { vmResources } from "./resources.js";
