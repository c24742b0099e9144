/** The cluster state machine: kv and orchestrator in one Raft group. Its public face. */
export {
  ClusterStateMachine,
  encodeAclCommand,
  encodeOrchestratorCommand,
  type AclView,
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
  ACL_NAMESPACE_BYTE,
  KV_NAMESPACE_BYTE,
  ORCHESTRATOR_NAMESPACE_BYTE,
  namespaceOfByte,
  type ClusterNamespace,
} from "./namespace.js";
