/**
 * The state machine layer's public face: the port the runtime drives, client sessions, kv, the
 * orchestrator's model and the cluster machine that holds both.
 */
export {
  DEFAULT_SNAPSHOT_SLICE_BYTES,
  type AppliedEntry,
  type SnapshotEncoding,
  type StateMachine,
} from "./state-machine.js";
export * from "./command-result.js";
export * from "./session/envelope.js";
export * from "./session/session-options.js";
export {
  SESSION_SNAPSHOT_FORMAT_VERSION,
  SessionErrorReason,
  SessionedStateMachine,
  type ExecuteContext,
  type SessionInfo,
  type SessionedApplication,
} from "./session/sessioned-state-machine.js";
export * from "./kv/index.js";
export * from "./orchestrator/index.js";
export * from "./acl/index.js";
export * from "./cluster/index.js";
