/** Quorum math: majority and joint commit indexes and vote outcomes (etcd raft's quorum/). */
export * from "./majority.js";
export * from "./joint.js";
