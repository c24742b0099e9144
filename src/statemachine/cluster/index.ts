/** The cluster state machine: kv and orchestrator in one Raft group. Its public face. */
export {
  ClusterStateMachine,
  encodeOrchestratorCommand,
  type ClusterResultValue,
  type ClusterStateMachineOptions,
} from "./cluster-state-machine.js";
export {
  CLUSTER_SNAPSHOT_FORMAT_VERSION,
  ClusterApplication,
  type ClusterCommand,
  type ClusterResult,
} from "./cluster-application.js";
export {
  KV_NAMESPACE_BYTE,
  ORCHESTRATOR_NAMESPACE_BYTE,
  namespaceOfByte,
  type ClusterNamespace,
} from "./namespace.js";
