/**
 * The orchestrator's replicated model (design brief §4): workers, tasks and VMs, and the commands
 * that change them. Every replica applies the same commands in the same order and so holds the
 * same model; placement is computed inside `apply` by the pure scheduler (`scheduler.ts`).
 *
 * Times in the model are log time (the largest `proposedAtMs` applied, see the session layer):
 * never a replica's own clock.
 */
import type { NodeId } from "../../raft/types.js";

/** Resources a worker offers or a task / VM asks for. Integers; cpu in millicores. */
export interface Resources {
  /** CPU in millicores (1000 = one core). */
  readonly cpuMillis: number;
  readonly memoryMb: number;
  readonly diskGb: number;
}

/**
 * A worker's administrative and liveness status: `draining` while a drained worker still holds
 * work (running tasks waiting for the drain deadline), `drained` once it holds nothing.
 */
export type WorkerStatus = "online" | "draining" | "drained" | "offline";

/** A node as a place to run work. */
export interface Worker {
  readonly nodeId: NodeId;
  readonly capacity: Resources;
  /** Sorted, unique feature names, e.g. `["kvm", "qemu", "ssd"]`. */
  readonly features: readonly string[];
  readonly status: WorkerStatus;
  /**
   * An administrator asked that no new work go here (`setWorkerDrain`). A live worker with it set
   * is `draining` while it holds work and `drained` once it holds none; it outlives the worker
   * going offline, so a drained node comes back `drained`.
   */
  readonly drain: boolean;
  /**
   * Log time at which the tasks still running on a `draining` worker are moved off (their
   * attempt given back); absent when no drain waits (set only while the worker is `draining`).
   */
  readonly drainDeadlineMs?: number;
  /** Sum of the resources of the tasks and VMs placed on it that hold resources. */
  readonly allocated: Resources;
  /** Log time of its last registration or heartbeat proposal. */
  readonly lastSeenMs: number;
}

/** What a task runs and needs. */
export interface TaskSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /**
   * Environment variables whose values are secret: set in the task's environment like `env`, but
   * never returned by the API nor logged. They are stored like the rest of the spec, in the
   * replicated log and snapshots (plain, in files only the node's user may read). Absent when
   * empty; names disjoint from `env`'s.
   */
  readonly secretEnv?: Readonly<Record<string, string>>;
  /** Working directory on the worker; empty means the agent's default. */
  readonly cwd: string;
  /** Run through `/bin/sh -c` (command is then the script); default false. */
  readonly shell: boolean;
  readonly resources: Resources;
  readonly requiredFeatures: readonly string[];
  /** Kill the task (SIGTERM, then SIGKILL) after this long; 0 = no timeout. */
  readonly timeoutMs: number;
  /** Attempts in all, first included (≥ 1). A lost task is retried while attempts remain. */
  readonly maxAttempts: number;
}

/** Every task status, in lifecycle order. Terminal: succeeded, failed, timed_out, cancelled, lost (no attempts left). */
export const TASK_STATUSES = [
  "pending",
  "assigned",
  "running",
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
  "lost",
] as const;

/** A task's status; see {@link TASK_STATUSES}. */
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** What the agent reports when an attempt ends. */
export interface TaskResult {
  /** Exit code, or null when killed by a signal or never started. */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutTruncated: boolean;
  readonly stderrTruncated: boolean;
  readonly durationMs: number;
  /** Why it did not run or was killed (spawn failure, timeout, cancel), else empty. */
  readonly error: string;
}

/** A task in the model. */
export interface Task {
  readonly id: string;
  readonly spec: TaskSpec;
  readonly status: TaskStatus;
  /**
   * The node of the current attempt (assigned, running) or of the final one (finished); null while
   * pending, also between a lost attempt and the next.
   */
  readonly nodeId: NodeId | null;
  /** Attempts started (assigned) so far. */
  readonly attempts: number;
  /** The outcome of the final attempt: set exactly when the status is terminal, else null. */
  readonly result: TaskResult | null;
  /**
   * A cancel was asked for while the task was assigned or running: its agent kills it and reports
   * `cancelled`. A task with this flag is never retried.
   */
  readonly cancelRequested: boolean;
  /** Why it is pending (no feasible worker: which constraint), or empty. */
  readonly pendingReason: string;
  readonly submittedAtMs: number;
  readonly updatedAtMs: number;
}

/** How a VM is run. */
export type VmDriver = "process" | "qemu";

/** A VM's restart policy (process driver; qemu VMs restart the same way). */
export interface RestartPolicy {
  /** `never`, or `on-failure`: restart after a non-zero exit or crash. */
  readonly mode: "never" | "on-failure";
  readonly maxRestarts: number;
  /** First backoff; doubles per restart up to 30 s. */
  readonly backoffMs: number;
}

/** A host TCP port forwarded to a port of a VM's guest (qemu user-mode networking). */
export interface PublishedPort {
  readonly hostPort: number;
  readonly guestPort: number;
}

/**
 * A qemu VM's health check, probed by the node that runs it once the guest is ready: the VM is
 * `unhealthy` after `failureThreshold` failed probes in a row and `running` again after one that
 * succeeds. Exactly one probe is set: `tcpPort` (a TCP connection to that guest port succeeds) or
 * `command` (run through the guest agent with `sh -c`; healthy on exit code 0).
 */
export interface VmHealthCheck {
  /** The guest TCP port to connect to, or 0 when the check is a command. */
  readonly tcpPort: number;
  /** The shell command to run in the guest, or "" when the check is a TCP port. */
  readonly command: string;
  /** Time between the start of one probe and the next. */
  readonly intervalMs: number;
  /** How long one probe may take before it counts as failed. */
  readonly timeoutMs: number;
  /** Failed probes in a row that make the VM `unhealthy`. */
  readonly failureThreshold: number;
}

/** What a VM is. */
export interface VmSpec {
  readonly vcpus: number;
  readonly memoryMb: number;
  readonly diskGb: number;
  readonly driver: VmDriver;
  /** process driver: the command and its arguments (no shell). */
  readonly command: string;
  readonly args: readonly string[];
  /** qemu driver: a kernel and optional initrd, or a disk image; kernel command line. */
  readonly kernel: string;
  readonly initrd: string;
  readonly image: string;
  readonly cmdline: string;
  readonly requiredFeatures: readonly string[];
  /** VMs sharing a non-empty group never share a worker. */
  readonly antiAffinityGroup: string;
  readonly restart: RestartPolicy;
  /**
   * qemu driver: host TCP ports forwarded to guest ports on the node that runs it. Absent when
   * empty (so specs without it keep their encoding); host ports unique.
   */
  readonly publish?: readonly PublishedPort[];
  /** qemu driver: the health check; absent when there is none (so older specs keep their encoding). */
  readonly health?: VmHealthCheck;
}

/** What a VM should be. */
export type VmDesiredState = "running" | "stopped";

/**
 * What a VM is observed to be. `booting`: its machine runs but the guest has not announced that
 * it is ready yet (qemu driver with a ready timeout); `running` then means the guest is up.
 * `unhealthy`: the guest is up but its health check failed `failureThreshold` times in a row; it
 * is `running` again after a probe succeeds (the node only reports it, it does not restart it).
 * `migrating`: running on its node while a live migration to `migration.targetNodeId` is under
 * way (the model's own status, never an agent's report; see `vm-migration.ts`).
 */
export type VmStatus =
  | "pending"
  | "scheduled"
  | "starting"
  | "booting"
  | "running"
  | "unhealthy"
  | "migrating"
  | "stopping"
  | "stopped"
  | "failed";

/**
 * A live migration in progress: the VM runs on its node (the source) and the target node holds
 * its resources too, starting a QEMU that waits for the migration stream.
 */
export interface VmMigration {
  readonly targetNodeId: NodeId;
  /**
   * Where the target's QEMU listens for the stream (`tcp:HOST:PORT`), as the target reported it;
   * "" until then. The source's agent starts sending once it is set.
   */
  readonly incomingUri: string;
  /**
   * Where the target's disk takes the copy of the VM's own disk (`nbd:HOST:PORT`), reported with
   * `incomingUri`; absent for a VM without a disk, and until the target listens.
   */
  readonly diskUri?: string;
  /** Log time the migration was asked for. */
  readonly startedAtMs: number;
}

/** A VM in the model. */
export interface Vm {
  readonly name: string;
  readonly spec: VmSpec;
  readonly desired: VmDesiredState;
  readonly status: VmStatus;
  /** The node it is placed on, or null (pending or stopped and released). */
  readonly nodeId: NodeId | null;
  readonly restarts: number;
  readonly lastError: string;
  readonly pendingReason: string;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  /**
   * For a VM with a disk of its own (an image overlay or a data disk): the node that holds its
   * current disk, the one it last ran on (its agent reported it booting or running there, or a
   * migration moved it there). A node holding a disk of the VM that is not this one holds a
   * stale copy: its agent discards it, and starts the VM there on a fresh disk. Absent until the
   * VM first runs (and for VMs without a disk). Before `migration` in the encoding.
   */
  readonly diskNodeId?: NodeId;
  /**
   * Set exactly while the status is `migrating`; absent otherwise (so VMs that never migrate keep
   * their encoding).
   */
  readonly migration?: VmMigration;
}

/** How the scheduler ranks feasible workers. */
export type PlacementStrategy = "binpack" | "spread";

/** Cluster-wide orchestrator settings. */
export interface OrchestratorSettings {
  readonly placement: PlacementStrategy;
}
