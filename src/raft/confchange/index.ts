/** Membership changes: entering and leaving joint configurations (etcd raft's confchange/). */
export * from "./changer.js";
export * from "./transition.js";
