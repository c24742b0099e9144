/**
 * The contract between the agent and a VM driver (`process`, `qemu`).
 *
 * The agent reconciles: for each VM assigned to its node whose desired state is `running` it
 * holds one {@link VmHandle} from {@link VmDriverPort.start}; when the VM should stop, moves away or
 * is deleted it calls {@link VmHandle.stop}. Every change the driver observes arrives through
 * `onChange` as a whole {@link VmObservation} (not a delta), so the agent can propose the latest
 * one and drop any it had not sent yet.
 *
 * **When the agent's process dies.** VM processes lead their own process groups, so they outlive
 * an agent that is killed (SIGKILL, a crash), except a QEMU: it is bound to its node's process
 * and killed by the kernel when the node dies (see `parent-death.ts`), since the cluster boots
 * the VM elsewhere once the node is offline. Processes that outlive the agent are not adopted: a process the agent did not
 * spawn cannot be waited on, and its output pipes died with the old agent. Instead each start is
 * recorded in a {@link ProcessRegistry} (when the driver is given one) and the next agent calls
 * `reapOrphans()` before it reconciles: every recorded process that is still the same process
 * (same pid and start time) is killed with its group, and reconciliation then starts what should
 * run afresh. So at most one copy of a VM runs on a node once its agent is up, and the restart
 * counts the agent keeps in the model carry on (`previousRestarts`). An agent that shuts down
 * cleanly stops its VMs (or leaves them to the next agent's reap) as it chooses.
 */
import { InvalidArgumentError } from "../../common/errors.js";
import type { VmDriver, VmSpec, VmStatus } from "../../statemachine/orchestrator/types.js";
import type { GuestExecRequest } from "./guest-agent-client.js";
import type { GuestExecResult } from "./guest-agent-protocol.js";
import type { ProcessRegistry } from "./process-registry.js";

/** The statuses a driver observes; `pending` and `scheduled` are the cluster's to decide. */
export type VmObservedStatus = Extract<
  VmStatus,
  "starting" | "booting" | "running" | "unhealthy" | "stopping" | "stopped" | "failed"
>;

/**
 * What the driver knows about a VM at one moment. `starting` covers both the first start and the
 * wait before a restart (`restartInMs` is then set); `stopped` and `failed` are final for the
 * handle: a driver never leaves them by itself.
 */
export interface VmObservation {
  readonly name: string;
  readonly status: VmObservedStatus;
  /** Restarts made so far, `previousRestarts` included. */
  readonly restarts: number;
  /** Why the latest run ended badly or could not start, or "" if none did. */
  readonly lastError: string;
  /** The pid of the running process (the command, or QEMU), else null. */
  readonly pid: number | null;
  /** While waiting to restart after a failure: the wait, in ms; else null. */
  readonly restartInMs: number | null;
  /**
   * An incoming migration's handle, once its QEMU listens: where (`tcp:HOST:PORT`). Absent
   * otherwise.
   */
  readonly incomingUri?: string;
  /**
   * An incoming migration of a VM with a disk, once it listens: where its disk takes the
   * source's copy (`nbd:HOST:PORT`, see `qemu-disk-migration.ts`). Absent otherwise.
   */
  readonly incomingDiskUri?: string;
}

/** Where an outgoing live migration goes (see {@link VmHandle.migrate}). */
export interface MigrationTarget {
  /** The target's `incomingUri`: where its QEMU waits for the stream. */
  readonly uri: string;
  /** The target's `incomingDiskUri`, for a VM with a disk here. */
  readonly diskUri?: string;
  /**
   * The target node: over TLS, the stream goes only to a peer whose certificate names this node
   * (`node-<id>.<cluster>.blixard`).
   */
  readonly nodeId: number;
}

/** What a completed outgoing live migration measured (QEMU's `query-migrate`). */
export interface MigrationStats {
  /** How long the guest was paused for the last pass (QEMU's `downtime`), in ms. */
  readonly downtimeMs: number;
  /** From the start of the stream to its end (QEMU's `total-time`), in ms. */
  readonly totalMs: number;
  /** Bytes of guest memory sent. */
  readonly transferredBytes: number;
}

/**
 * How a stop ended the VM: it was not running (already stopped or failed, or waiting to
 * restart), it exited by itself meanwhile, SIGTERM sufficed, the guest powered off after
 * `system_powerdown`, QEMU obeyed `quit`, or SIGKILL was needed.
 */
export type VmStopMethod = "not-running" | "exited" | "SIGTERM" | "powerdown" | "quit" | "SIGKILL";

/** The result of {@link VmHandle.stop}. */
export interface VmStopResult {
  readonly observation: VmObservation;
  readonly method: VmStopMethod;
}

/** What to start, and where to report. */
export interface VmStartRequest {
  /** The VM's name; it names its files, so it must pass {@link checkVmName}. */
  readonly name: string;
  readonly spec: VmSpec;
  /**
   * Called synchronously on every change with the whole observation. It must not throw; an
   * exception is rethrown asynchronously (a bug in the agent, made loud).
   */
  readonly onChange: (observation: VmObservation) => void;
  /** Restarts already made by earlier handles (from the model); they count toward the limit. */
  readonly previousRestarts?: number;
  /**
   * The VM's current disk is on another node (`Vm.diskNodeId`): a disk of it kept here is stale,
   * so the first run makes a fresh one (the qemu driver). Later runs of the handle keep it.
   */
  readonly freshDisk?: boolean;
  /**
   * For {@link VmDriverPort.startIncoming}: the node that sends the VM (its node in the model).
   * Over TLS the target's QEMU admits only that node's certificate; absent: any node's of the
   * cluster.
   */
  readonly sourceNodeId?: number;
}

/** One started VM, supervised until it is stopped or fails for good. */
export interface VmHandle {
  readonly name: string;
  /** The latest observation. */
  observe(): VmObservation;
  /**
   * Stops the VM the driver's way (process: SIGTERM then SIGKILL; qemu: `system_powerdown`, then
   * `quit`, then SIGKILL), cancelling any pending restart. Resolves once nothing of it runs,
   * with the status `stopped`. Idempotent: later calls get the first call's result.
   * @param options.graceMs how long the polite step may take; default the driver's.
   */
  stop(options?: { readonly graceMs?: number }): Promise<VmStopResult>;
  /** Settles with the final observation once the VM is `stopped` or `failed` for good. */
  readonly settled: Promise<VmObservation>;
  /**
   * Sends the running VM to the QEMU waiting at `to.uri` on node `to.nodeId` (live migration);
   * the qemu driver's handles only. Resolves once the stream completed: the VM is then paused
   * here, for the target to run (a later {@link stop} ends it at once). Rejects when it failed
   * or timed out: the VM runs on here, and the target's QEMU, its stream broken, ends. A VM with
   * a disk here needs `to.diskUri` (the target's `incomingDiskUri`): its disk is copied there
   * first.
   */
  migrate?(to: MigrationTarget): Promise<MigrationStats>;
  /**
   * After a completed {@link migrate} whose target did not take the VM (the cluster rolled it
   * back here): runs the paused VM here again. Resolves at once when it was not paused.
   */
  resume?(): Promise<void>;
}

/** A way to run VMs. */
export interface VmDriverPort {
  /** The `spec.driver` value this driver runs. */
  readonly kind: VmDriver;
  /**
   * Starts supervising a VM and returns at once; progress arrives through `onChange`.
   * @throws InvalidArgumentError when the name or the spec cannot be run by this driver (the
   *   message says what to fix); nothing is started then.
   */
  start(request: VmStartRequest): VmHandle;
  /**
   * Starts a VM that arrives by live migration from another node (the qemu driver): its
   * machine waits for the stream, the observation carries `incomingUri` once it listens, and the
   * VM is `running` once its guest runs here after the stream. A failure before that (the stream
   * broke or never came in time) is final, whatever the restart policy: the source still runs
   * the VM. Once it ran here, later failures restart it as {@link start}'s do (a fresh boot).
   * Absent: the driver's VMs cannot be migrated here.
   * @throws InvalidArgumentError as {@link start} does.
   */
  startIncoming?(request: VmStartRequest): VmHandle;
  /**
   * Deletes what the driver keeps on this node for VM `name` across runs (the qemu driver's
   * disk). The agent calls it once the VM is stopped here and deleted from the cluster, or its
   * current disk is on another node.
   */
  discard?(name: string): Promise<void>;
  /** The VMs the driver keeps something for on this node ({@link discard} removes it). */
  storedNames?(): Promise<string[]>;
  /**
   * Runs a command in VM `name`'s guest through its agent (the qemu driver); absent: the driver
   * has no way into its guests.
   */
  exec?(name: string, request: GuestExecRequest): Promise<GuestExecResult>;
}

/** Options every driver shares. */
export interface VmDriverCommonOptions {
  /** Records each started process so a restarted agent can reap orphans (see the module doc). */
  readonly registry?: ProcessRegistry;
}

/** The longest VM name a driver accepts, in characters. */
export const MAX_VM_NAME_LENGTH = 63;

/** No `/`, and no leading `.`: a name can never be `.`, `..` or a hidden file. */
const VM_NAME_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

/**
 * Checks that `name` can name files: 1–63 letters, digits, `_`, `.` and `-`, not starting with
 * `.`. (Every name the model accepts, `[a-z0-9-]{1,63}`, passes.)
 * @throws InvalidArgumentError otherwise.
 */
export function checkVmName(name: string): void {
  if (name.length === 0 || name.length > MAX_VM_NAME_LENGTH || !VM_NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(
      `VM name ${JSON.stringify(name)} is not usable: use 1 to ${MAX_VM_NAME_LENGTH} letters, digits, "_", "." or "-", not starting with "."`,
    );
  }
}
