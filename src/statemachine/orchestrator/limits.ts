/**
 * The orchestrator model's limits. They shape what `apply` accepts, so every replica must run
 * with the same values: change them only as a cluster-wide upgrade. Byte lengths are UTF-8.
 */

/** The largest amount of one resource (millicores, MB or GB) a worker offers or work asks for: 2^40. */
export const MAX_RESOURCE_AMOUNT = 2 ** 40;

/** The longest drain deadline: running tasks may stay on a drained worker at most 30 days. */
export const MAX_DRAIN_DEADLINE_MS = 30 * 24 * 60 * 60 * 1000;

/** The longest task id. Ids match `[A-Za-z0-9][A-Za-z0-9._-]*` (a UUID fits). */
export const MAX_TASK_ID_BYTES = 128;

/** The longest VM name. Names match `[a-z0-9-]{1,63}` (usable as a host name label). */
export const MAX_VM_NAME_BYTES = 63;

/** The longest command, working directory, kernel, initrd, image path or kernel command line. */
export const MAX_PATH_BYTES = 4096;

/** The most arguments a task or process VM takes. */
export const MAX_ARGS = 256;

/** The longest single argument or environment value. */
export const MAX_ARG_BYTES = 4096;

/** The most environment variables of a task. Names match `[A-Za-z_][A-Za-z0-9_]*`. */
export const MAX_ENV_ENTRIES = 256;

/** The longest environment variable name. */
export const MAX_ENV_NAME_BYTES = 256;

/** The most bytes of all strings of one task or VM spec together (command, args, env, paths). */
export const MAX_SPEC_BYTES = 32 * 1024;

/** The most features a worker offers or work requires. */
export const MAX_FEATURES = 32;

/** The longest feature name. Names match `[A-Za-z0-9][A-Za-z0-9._:-]*`. */
export const MAX_FEATURE_BYTES = 64;

/** The longest anti-affinity group name (same alphabet as features). */
export const MAX_GROUP_BYTES = 64;

/** The most attempts a task may ask for (`maxAttempts` is 1..this). */
export const MAX_TASK_ATTEMPTS = 100;

/**
 * The longest task timeout: 2^31 − 1 ms (about 24.8 days), the longest delay a Node.js timer
 * honours (a longer one fires at once), so an agent can enforce any accepted timeout.
 */
export const MAX_TASK_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * The most stdout (and, separately, stderr) a task result keeps. Agents cap the captured output
 * to this and set the `…Truncated` flag; a longer report is refused (`TOO_LARGE`).
 */
export const MAX_TASK_OUTPUT_BYTES = 64 * 1024;

/** The longest error message of a task result or a VM observation. */
export const MAX_ERROR_BYTES = 4096;

/** The most vCPUs of a VM (it asks for `vcpus × 1000` millicores). */
export const MAX_VM_VCPUS = 1024;

/** The most host ports a VM publishes (`VmSpec.publish`). */
export const MAX_VM_PUBLISHED_PORTS = 32;

/** The highest TCP port number. */
export const MAX_PORT = 65_535;

/** The shortest and longest time between two health probes of a VM. */
export const MIN_VM_HEALTH_INTERVAL_MS = 1000;
export const MAX_VM_HEALTH_INTERVAL_MS = 3_600_000;

/** The longest a health probe may take (and at most its interval). */
export const MAX_VM_HEALTH_TIMEOUT_MS = 60_000;

/** The most failed probes in a row a health check may wait for. */
export const MAX_VM_HEALTH_FAILURES = 100;

/** The longest health-check command. */
export const MAX_VM_HEALTH_COMMAND_BYTES = 1024;

/** The most restarts a VM's restart policy allows. */
export const MAX_VM_RESTARTS = 10_000;

/** The longest first restart backoff (the agent doubles it per restart, up to 30 s). */
export const MAX_VM_BACKOFF_MS = 30_000;

/**
 * The most registered workers. Placement goes through an index (`placement-index.ts`), so a
 * placement costs O(log n) in the workers of a bucket, not O(n).
 */
export const MAX_WORKERS = 10_000;

/** The most tasks not yet finished (pending, assigned, running); more submits get `OVERLOADED`. */
export const MAX_ACTIVE_TASKS = 100_000;

/**
 * The most spec bytes of unfinished tasks together; more submits get `OVERLOADED`. With
 * {@link MAX_ACTIVE_TASKS} it keeps the unfinished specs' memory (and snapshots) bounded.
 */
export const MAX_ACTIVE_TASK_SPEC_BYTES = 64 * 1024 * 1024;

/**
 * The most tasks one `submitTasks` command submits. A full batch of small specs (about 250
 * bytes each encoded) stays well inside {@link MAX_COMMAND_BYTES}; bigger specs hit that bound
 * first (`TOO_LARGE`: send smaller batches).
 */
export const MAX_SUBMIT_BATCH_TASKS = 1000;

/**
 * The most reports one `agentReports` command carries. Finish reports with large outputs hit
 * {@link MAX_COMMAND_BYTES} first (`TOO_LARGE`: send smaller batches).
 */
export const MAX_AGENT_REPORTS_PER_BATCH = 256;

/**
 * The most finished tasks kept for `get` and `list`. Past it (or past
 * {@link MAX_FINISHED_TASK_BYTES}) the task that finished first is forgotten.
 */
export const MAX_FINISHED_TASKS = 10_000;

/** The most spec and result bytes of finished tasks kept together. */
export const MAX_FINISHED_TASK_BYTES = 64 * 1024 * 1024;

/** The most VMs; more creates get `OVERLOADED`. */
export const MAX_VMS = 10_000;

/**
 * The largest encoded orchestrator command. The biggest legal one (a finish report with two full
 * outputs, every character JSON-escaped) stays well below it.
 */
export const MAX_COMMAND_BYTES = 1024 * 1024;

/** How many tasks `tasks()` returns when the caller gives no limit. */
export const DEFAULT_TASK_LIST_LIMIT = 100;

/** The most tasks one `tasks()` call returns. */
export const MAX_TASK_LIST_LIMIT = 1000;
