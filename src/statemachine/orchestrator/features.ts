/**
 * Worker features the node sets itself (never the operator through `--features`): they say what
 * the node's agent is allowed and able to do, and placement relies on them.
 */

/**
 * The node runs raw processes (tasks, `process` VMs): it was started with `--enable-raw-exec`.
 * Every task and every process VM requires it implicitly, so a node without it never gets such
 * work, and work that fits nowhere stays pending with a reason naming it.
 */
export const RAW_EXEC_FEATURE = "raw_exec";

/**
 * The node enforces each task's CPU and memory request as a hard limit in its own cgroup (v1 or
 * v2, detected at start). Informational: placement does not require it.
 */
export const CGROUPS_FEATURE = "cgroups";

/** The features only the node itself may set. */
export const RESERVED_FEATURES: readonly string[] = [RAW_EXEC_FEATURE, CGROUPS_FEATURE];

/** What a pending reason adds when the missing feature is {@link RAW_EXEC_FEATURE}. */
export const RAW_EXEC_HINT =
  "raw tasks and process VMs run only on nodes started with --enable-raw-exec";
