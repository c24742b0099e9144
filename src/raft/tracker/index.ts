/** Per-follower flow control and the group-wide tracker (etcd raft's tracker/). */
export * from "./inflights.js";
export * from "./progress.js";
export * from "./tracker.js";
