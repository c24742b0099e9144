/**
 * The drivers' bounds and default durations, each a named constant with its unit. Callers may
 * override the defaults through each driver's options; the bounds keep memory and disk use finite
 * whatever a task or VM prints. What the drivers report must also fit the model's bounds
 * (`statemachine/orchestrator/limits.ts`), or the report would be refused.
 */
import { MAX_ERROR_BYTES, MAX_TASK_OUTPUT_BYTES } from "../../statemachine/orchestrator/limits.js";

/**
 * Bytes of a task's stdout (and, separately, stderr) kept in its result: the most the model
 * accepts, which is also the most a caller may ask for.
 */
export const DEFAULT_TASK_OUTPUT_CAP_BYTES = MAX_TASK_OUTPUT_BYTES;

/** Bytes of an error message the drivers report (a task's `error`, a VM's `lastError`). */
export const MAX_REPORTED_ERROR_BYTES = MAX_ERROR_BYTES;

/** Time between SIGTERM and SIGKILL when a task or process VM is stopped or times out. */
export const DEFAULT_KILL_GRACE_MS = 5_000;

/**
 * Time to wait for a task's stdout and stderr to close after its process group was killed. Only a
 * process that escaped the group (its own `setsid`) can hold them open longer; its pipes are then
 * closed from our side so the result is not held hostage.
 */
export const OUTPUT_DRAIN_TIMEOUT_MS = 2_000;

/** The longest wait between restarts of a failing VM: backoff doubles up to this. */
export const MAX_RESTART_BACKOFF_MS = 30_000;

/** Bytes of a VM's log file before it is rotated; one rotated generation (`.1`) is kept. */
export const DEFAULT_VM_LOG_MAX_BYTES = 4 * 1024 * 1024;

/** Bytes of a VM's recent output kept in memory to explain a failed start. */
export const OUTPUT_TAIL_BYTES = 2 * 1024;

/** Time a guest is given to honour `system_powerdown` before QEMU is told to `quit`. */
export const DEFAULT_QEMU_POWERDOWN_GRACE_MS = 10_000;

/** Time QEMU is given to exit after `quit` before it is killed. */
export const QEMU_QUIT_TIMEOUT_MS = 2_000;

/** Time from spawning QEMU until its QMP monitor must have answered the handshake. */
export const DEFAULT_QEMU_START_TIMEOUT_MS = 30_000;

/** First wait between attempts to connect to a starting QEMU's QMP socket; doubles per attempt. */
export const QMP_CONNECT_RETRY_FIRST_MS = 10;

/** Longest wait between attempts to connect to a starting QEMU's QMP socket. */
export const QMP_CONNECT_RETRY_MAX_MS = 250;

/** Time a QMP command may take before it fails with `TimeoutError`. */
export const DEFAULT_QMP_COMMAND_TIMEOUT_MS = 5_000;

/** Bytes of one QMP message (one JSON line); longer is a protocol error. */
export const MAX_QMP_MESSAGE_BYTES = 1024 * 1024;

/** The longest path a unix socket address can hold on Linux (`sun_path` is 108 bytes, NUL included). */
export const MAX_UNIX_SOCKET_PATH_BYTES = 107;
