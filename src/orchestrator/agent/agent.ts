/**
 * The agent: makes what the cluster assigned to this node run, and tells the cluster what runs.
 *
 * It reconciles the node's applied orchestrator state (never a leader's: what this node has
 * applied is all it may act on) with what it runs, after every apply (`notify`) and at least
 * every `resyncMs`:
 *
 * - **Worker.** Registers the node with its capacity and features when the model lacks it, has
 *   it offline (the leader's liveness monitor marked it while it was cut off), or has stale
 *   capacity or features.
 * - **Tasks.** An assigned task it does not run is started (attempt = the model's `attempts`),
 *   reported `taskStarted` once the process runs and `taskFinished` when it ends. A task the model
 *   shows running here that this agent does not run (the agent restarted) is reported failed.
 *   A cancel request aborts the attempt (reported `cancelled`). A local attempt the model no
 *   longer assigns here (lost and moved, cancelled while this node was cut off) is killed and
 *   not reported: the model has moved on, and that is what keeps a task from running twice.
 * - **VMs.** A VM placed here with desired state running gets a driver handle; its observations
 *   are reported as `vmObserved`. A VM whose desired state is stopped is stopped and reported
 *   stopped. A handle for a VM no longer placed here (moved, deleted) is stopped quietly. What a
 *   driver keeps across runs (a qemu VM's disk) is discarded on the resync timer once the VM is
 *   stopped here and deleted from the model or its current disk is on another node (a copy, or
 *   a fresh one). A VM starts on a disk kept here only if this node holds its current disk
 *   (`Vm.diskNodeId`), else on a fresh one. An agent-only worker, whose view holds only the VMs
 *   placed on it, keeps the disks of VMs it does not see (they may be stopped, not deleted).
 *
 * Reports go through a {@link Reporter}: retried while the cluster cannot take them, dropped
 * once the model refuses them.
 */
import { alignedDelayMs, type TimerHandle } from "../../common/clock.js";
import type { OrchestratorCommand } from "../../statemachine/orchestrator/commands.js";
import { syntheticResult } from "../../statemachine/orchestrator/synthetic-result.js";
import type { Task, Vm, Worker } from "../../statemachine/orchestrator/types.js";
import { MAX_REPORTED_ERROR_BYTES } from "../drivers/limits.js";
import { truncateUtf8 } from "../drivers/output-capture.js";
import type { TaskRun } from "../drivers/task-runner.js";
import type { VmDriverPort, VmHandle, VmObservation } from "../drivers/vm-driver.js";
import { diskVerdict, MAX_DISK_LOOKUP_NAMES, type DiskVerdict } from "./disk-verdict.js";
import type { AgentOptions } from "./ports.js";
import { Reporter } from "./reporter.js";

interface LocalTask {
  readonly attempt: number;
  readonly abort: AbortController;
  /** Settles when the attempt ended and was handled (set once the runner was called). */
  done: Promise<void>;
  /** Set when the agent killed it because the model moved on: its end is not reported. */
  abandoned: boolean;
}

interface LocalVm {
  readonly handle: VmHandle;
  /** The last observation reported, to skip repeats. */
  lastReported: string;
  stopping: boolean;
  /** This copy is the target of a migration the model has not completed yet. */
  incoming: boolean;
  /** As the source of a migration: the URI it was sent to (once), else "". */
  sentTo: string;
  /** As the source: the stream is under way, or completed (the guest is then paused here). */
  sending: "idle" | "sending" | "sent";
}

const DEFAULT_RESYNC_MS = 1000;

/**
 * How often an agent-only worker asks a server about the disks it keeps for VMs it does not see
 * (a deleted VM's disk goes within about this long; a thousand agents with such disks ask about
 * 17 times a second in all).
 */
export const DISK_LOOKUP_INTERVAL_MS = 60_000;
/** The pause after a refused registration, doubled after each one in a row up to the max (ms). */
export const REGISTRATION_RETRY_BASE_MS = 100;
export const REGISTRATION_RETRY_MAX_MS = 2_000;

/** See the module comment. */
export class Agent {
  readonly #options: AgentOptions;
  readonly #reporter: Reporter;
  readonly #tasks = new Map<string, LocalTask>();
  readonly #vms = new Map<string, LocalVm>();
  /**
   * Attempts that ended here, by task id: until the model (as applied here) shows the end, the
   * task must not be taken for one that died with a previous agent.
   */
  readonly #endedAttempts = new Map<string, number>();
  /** VMs whose handle ended by itself (failed for good, or exited cleanly) until the model knows. */
  readonly #endedVms = new Set<string>();
  #scheduled: TimerHandle | undefined;
  #resync: TimerHandle | undefined;
  #closed = false;
  #registering = false;
  /** Registrations refused in a row, and when the next may be tried (clock ms). */
  #registrationFailures = 0;
  #registrationRetryAtMs = 0;
  #registrationRetry: TimerHandle | undefined;
  #sweeping = false;
  /** When an agent-only worker may next ask about disks it does not see (clock ms). */
  #nextDiskLookupMs = 0;
  #suspended = false;

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#reporter = new Reporter(options.proposer, options.clock, options.log);
  }

  /** Starts reconciling. */
  start(): void {
    this.#scheduleResync();
    this.notify();
  }

  /** Asks for a reconcile soon (after the node applied something). Cheap; throws nothing. */
  notify(): void {
    if (this.#closed || this.#suspended || this.#scheduled !== undefined) return;
    this.#scheduled = this.#options.clock.setTimer(0, () => {
      this.#scheduled = undefined;
      this.reconcile();
    });
  }

  /** Task ids running here now (for status and tests). */
  runningTasks(): string[] {
    return [...this.#tasks.keys()].sort();
  }

  /** VM names with a live handle here now. */
  runningVms(): string[] {
    return [...this.#vms.keys()].sort();
  }

  /**
   * Stops reconciling and, with `stopWork`, stops every task and VM this agent runs (their ends
   * are not reported: the next agent, or the liveness monitor, settles them).
   */
  async close(options: { readonly stopWork?: boolean } = {}): Promise<void> {
    this.#closed = true;
    this.#scheduled?.cancel();
    this.#resync?.cancel();
    this.#registrationRetry?.cancel();
    this.#reporter.close();
    if (options.stopWork === false) return;
    for (const task of this.#tasks.values()) {
      task.abandoned = true;
      task.abort.abort();
    }
    await Promise.all([
      ...[...this.#tasks.values()].map((t) => t.done),
      ...[...this.#vms.values()].map((v) => v.handle.stop().then(() => undefined)),
    ]);
  }

  /**
   * Stops every task and VM this agent runs, quietly (their ends are not reported), and stops
   * reconciling until {@link resume}: an agent-only worker cut off from every server for its
   * disconnect grace must not go on running work the cluster has moved elsewhere, nor start
   * what its stale view still shows. Reports already queued go on being retried (they are
   * idempotent, and refused once the model moved on). Resolves once the work has stopped.
   */
  async suspend(): Promise<void> {
    if (this.#closed || this.#suspended) return;
    this.#suspended = true;
    this.#scheduled?.cancel();
    this.#scheduled = undefined;
    const tasks = [...this.#tasks.values()];
    for (const task of tasks) {
      task.abandoned = true;
      task.abort.abort();
    }
    const stops: Promise<void>[] = [];
    for (const [name, local] of this.#vms) {
      if (local.stopping) continue;
      local.stopping = true;
      stops.push(
        local.handle.stop().then(
          () => {
            if (this.#vms.get(name) === local) this.#vms.delete(name);
          },
          (error: unknown) =>
            this.#options.log.warn("could not stop a VM", { vm: name, error: String(error) }),
        ),
      );
    }
    await Promise.all([...tasks.map((t) => t.done), ...stops]);
  }

  /** Reconciles again after {@link suspend} (the view is fresh again). Throws nothing. */
  resume(): void {
    if (!this.#suspended) return;
    this.#suspended = false;
    this.notify();
  }

  /** True between {@link suspend} and {@link resume}. */
  get suspended(): boolean {
    return this.#suspended;
  }

  /** One reconcile pass over the applied state. Throws nothing. */
  reconcile(): void {
    if (this.#closed || this.#suspended) return;
    const { queries, nodeId } = this.#options;
    try {
      this.#reconcileWorker(queries.worker(nodeId));
      const assigned = queries.assignments(nodeId);
      this.#reconcileTasks(assigned.tasks);
      this.#reconcileVms(assigned.vms);
    } catch (error) {
      this.#options.log.warn("reconcile failed", { error: (error as Error).message });
    }
  }

  /** On the grid of the node's other periodic checks (alignedDelayMs): no wake-up of its own. */
  #scheduleResync(): void {
    const { clock } = this.#options;
    const delayMs = alignedDelayMs(clock.now(), this.#options.resyncMs ?? DEFAULT_RESYNC_MS);
    this.#resync = clock.setTimer(delayMs, () => {
      if (this.#closed) return;
      this.reconcile();
      this.#sweepStored();
      this.#scheduleResync();
    });
  }

  /**
   * Discards what drivers keep for VMs (disks) that no longer run here and never will again as
   * they are (`disk-verdict.ts`): the cluster deleted the VM, or its current disk is on another
   * node, a copy or a fresh one, so this one is stale. A VM placed here, or arriving here, keeps
   * it. On the resync timer, not on every apply: it lists a directory.
   *
   * An agent-only worker's view holds only the VMs placed on it, so it cannot tell a deleted VM
   * from one stopped or placed elsewhere: it asks a server about the disks it does not see
   * (`diskVerdicts`), at most every {@link DISK_LOOKUP_INTERVAL_MS}, and keeps them when no
   * server answers. Throws nothing.
   */
  #sweepStored(): void {
    if (this.#sweeping) return;
    this.#sweeping = true;
    const { vmDrivers, queries, log, nodeId, clock } = this.#options;
    const discard = async (driver: VmDriverPort, name: string, verdict: DiskVerdict) => {
      log.info(
        verdict === "deleted"
          ? "discarding the disk of a deleted VM"
          : "discarding a stale disk: the VM's current disk is on another node",
        { vm: name },
      );
      await driver.discard?.(name);
    };
    const sweeps = [...vmDrivers.values()].map(async (driver) => {
      if (driver.storedNames === undefined || driver.discard === undefined) return;
      const unseen: string[] = [];
      for (const name of await driver.storedNames()) {
        if (this.#closed || this.#vms.has(name)) continue;
        const vm = queries.vm(name);
        if (vm === undefined && queries.partialVmView === true) {
          unseen.push(name);
          continue;
        }
        const verdict = diskVerdict(vm, nodeId);
        if (verdict !== "keep") await discard(driver, name, verdict);
      }
      if (unseen.length === 0 || queries.diskVerdicts === undefined) return;
      if (clock.now() < this.#nextDiskLookupMs) return;
      this.#nextDiskLookupMs = clock.now() + DISK_LOOKUP_INTERVAL_MS;
      const verdicts = await queries.diskVerdicts(unseen.slice(0, MAX_DISK_LOOKUP_NAMES));
      for (const [name, verdict] of verdicts) {
        // Placed here (or started) while the server was asked: the answer is already old.
        if (verdict === "keep" || this.#closed || this.#vms.has(name)) continue;
        if (queries.vm(name) !== undefined || !unseen.includes(name)) continue;
        await discard(driver, name, verdict);
      }
    });
    void Promise.all(sweeps)
      .catch((error: unknown) =>
        log.warn("could not discard a VM's disk", { error: String(error) }),
      )
      .finally(() => (this.#sweeping = false));
  }

  #reconcileWorker(worker: Worker | undefined): void {
    const { capacity, features, nodeId } = this.#options;
    const wanted = [...new Set(features)].sort();
    const current =
      worker !== undefined &&
      worker.status !== "offline" &&
      worker.capacity.cpuMillis === capacity.cpuMillis &&
      worker.capacity.memoryMb === capacity.memoryMb &&
      worker.capacity.diskGb === capacity.diskGb &&
      worker.features.join(",") === wanted.join(",");
    if (current || this.#registering) return;
    // Every applied entry reconciles: without a pause, a follower that cannot forward yet (the
    // protocol gate of a starting cluster) asked again every few milliseconds.
    if (this.#options.clock.now() < this.#registrationRetryAtMs) return;
    this.#registering = true;
    this.#options.log.info("registering this node as a worker", {
      capacity,
      features: wanted,
      was: worker?.status ?? "unknown",
    });
    this.#options.proposer
      .propose({ type: "registerWorker", nodeId, capacity, features: wanted })
      .then(() => {
        this.#registrationFailures = 0;
      })
      .catch((error: unknown) => {
        const delayMs = Math.min(
          REGISTRATION_RETRY_MAX_MS,
          REGISTRATION_RETRY_BASE_MS * 2 ** this.#registrationFailures++,
        );
        this.#registrationRetryAtMs = this.#options.clock.now() + delayMs;
        this.#options.log.warn("worker registration failed; retrying", {
          error: (error as Error).message,
          retryInMs: delayMs,
        });
        // Tried again then even if nothing is applied meanwhile.
        this.#registrationRetry?.cancel();
        this.#registrationRetry = this.#options.clock.setTimer(delayMs, () => this.notify());
      })
      .finally(() => {
        this.#registering = false;
      });
  }

  #reconcileTasks(assigned: readonly Task[]): void {
    const { nodeId } = this.#options;
    const byId = new Map(assigned.map((t) => [t.id, t]));
    for (const [id, local] of this.#tasks) {
      const task = byId.get(id);
      if (task === undefined || task.nodeId !== nodeId || task.attempts !== local.attempt) {
        // The model moved on (lost and reassigned, or finished meanwhile): stop it, quietly.
        if (!local.abandoned) {
          this.#options.log.info("stopping a task no longer assigned here", { task: id });
        }
        local.abandoned = true;
        local.abort.abort();
      } else if (task.cancelRequested && !local.abort.signal.aborted) {
        this.#options.log.info("cancelling task", { task: id });
        local.abort.abort();
      }
    }
    for (const id of this.#endedAttempts.keys()) if (!byId.has(id)) this.#endedAttempts.delete(id);
    for (const task of assigned) {
      if (this.#tasks.has(task.id) || this.#endedAttempts.get(task.id) === task.attempts) continue;
      if (task.status === "assigned") {
        if (task.cancelRequested) {
          this.#finish(task, task.attempts, {
            outcome: "cancelled",
            result: syntheticResult("cancelled before it started"),
          });
        } else {
          this.#startTask(task);
        }
      } else if (task.status === "running") {
        // Running here by the model, but not by this agent: it restarted and the attempt died
        // with the previous one.
        this.#finish(task, task.attempts, {
          outcome: "failed",
          result: syntheticResult("the node's agent restarted while the task ran"),
        });
      }
    }
  }

  #startTask(task: Task): void {
    const { nodeId } = this.#options;
    const attempt = task.attempts;
    const abort = new AbortController();
    this.#options.log.info("starting task", { task: task.id, attempt });
    // The record exists before the runner is called: a runner may say the attempt started
    // before it returns.
    const local: LocalTask = { attempt, abort, abandoned: false, done: Promise.resolve() };
    this.#tasks.set(task.id, local);
    local.done = this.#options
      .runTask(task.spec, {
        signal: abort.signal,
        taskId: task.id,
        attempt,
        onStarted: () => {
          if (!local.abandoned) {
            this.#reporter.report(`task:${task.id}`, {
              type: "taskStarted",
              id: task.id,
              nodeId,
              attempt,
            });
          }
        },
      })
      .then((run) => {
        this.#tasks.delete(task.id);
        if (!local.abandoned) this.#finish(task, attempt, run);
        this.notify();
      });
  }

  #finish(task: Task, attempt: number, run: TaskRun): void {
    this.#endedAttempts.set(task.id, attempt);
    this.#options.log.info("task finished", {
      task: task.id,
      attempt,
      outcome: run.outcome,
      exitCode: run.result.exitCode,
    });
    this.#reporter.report(`task:${task.id}`, {
      type: "taskFinished",
      id: task.id,
      nodeId: this.#options.nodeId,
      attempt,
      outcome: run.outcome,
      result: run.result,
    });
  }

  #reconcileVms(placed: readonly Vm[]): void {
    const self = this.#options.nodeId;
    const byName = new Map(placed.map((v) => [v.name, v]));
    for (const [name, local] of this.#vms) {
      const vm = byName.get(name);
      const incoming = vm !== undefined && vm.migration?.targetNodeId === self;
      if (vm !== undefined && (vm.nodeId === self || incoming) && !local.stopping) {
        this.#reconcileMigration(vm, local, incoming);
      }
      if (vm === undefined || (vm.nodeId !== self && !(incoming && local.incoming))) {
        // Logged once: a stop can take a while, and every apply meanwhile reconciles again.
        if (!local.stopping) {
          this.#options.log.info("stopping a VM no longer placed here", { vm: name });
        }
        this.#stopVm(name, local, false);
      } else if (vm.desired === "stopped") {
        this.#stopVm(name, local, true);
      } else if (this.#modelDisagrees(vm, local)) {
        // Say again what runs here, or the model waits for a start for ever. Two ways to get
        // here: the model placed the VM here anew while this copy ran on (moved away and back, a
        // drain and an undrain, in applies this agent saw as one), so what was reported went to
        // the old placement; or an older report landed after a newer one (a batch whose answer
        // the agent never got, cut off from the servers, applied after its successor: simulator
        // seed 7300830 with --agents 5 left a running VM `starting` in the model for good).
        local.lastReported = "";
        this.#reportObservation(name, local, local.handle.observe());
      }
    }
    for (const name of this.#endedVms) {
      const vm = byName.get(name);
      if (
        vm === undefined ||
        vm.desired === "stopped" ||
        ["pending", "scheduled"].includes(vm.status)
      ) {
        this.#endedVms.delete(name);
      }
    }
    for (const vm of placed) {
      if (this.#vms.has(vm.name)) continue;
      if (vm.migration?.targetNodeId === self) {
        // Arriving here: one incoming copy per migration (a failed one waits for the rollback).
        if (!this.#endedVms.has(vm.name)) this.#startVm(vm, true);
        continue;
      }
      if (vm.nodeId !== self) continue;
      if (vm.desired === "running") {
        const over =
          vm.status === "failed" || vm.status === "stopped" || this.#endedVms.has(vm.name);
        if (!over) this.#startVm(vm);
      } else if (vm.status !== "stopped" && !this.#reporter.pending(`vm:${vm.name}`)) {
        // The end of a stop the cluster asked for: said so, because this view may be behind the
        // cluster (an agent-only worker's last answer, a lagging replica) and the VM may have
        // been started again meanwhile; the model then ignores it instead of reading "exited by
        // itself, do not restart" (simulator seed 138 with --agents 5).
        this.#report(vm.name, {
          status: "stopped",
          restarts: vm.restarts,
          error: vm.lastError,
          requestedStop: true,
        });
      }
    }
  }

  /**
   * True when the model, wanting `vm` running on this node with no migration under way, holds
   * another status or restart count than this copy shows, although this copy has reported and
   * has no report queued or in flight: the model never learned what runs here, or learned it and
   * then took an older report. Reports are idempotent, so a view of the model that merely lags
   * costs one repeated report. The last error is not compared: after a failed migration the
   * model keeps the migration's error while the copy runs on (see `#reportAfterMigration`).
   */
  #modelDisagrees(vm: Vm, local: LocalVm): boolean {
    if (
      vm.desired !== "running" ||
      vm.nodeId !== this.#options.nodeId ||
      vm.migration !== undefined ||
      local.incoming ||
      local.stopping ||
      local.sending !== "idle" ||
      local.lastReported === "" ||
      this.#reporter.pending(`vm:${vm.name}`)
    ) {
      return false;
    }
    const o = local.handle.observe();
    return vm.status !== o.status || vm.restarts !== o.restarts;
  }

  /**
   * Carries out the model's migration of `vm` for this node's copy: as the target, the copy
   * becomes an ordinary one once the model moved the VM here; as the source, the copy is sent
   * once the target listens, and resumed if the model rolled the migration back after the stream
   * completed. A copy whose VM stops migrating reports afresh (the model set it `running`).
   */
  #reconcileMigration(vm: Vm, local: LocalVm, incoming: boolean): void {
    const log = this.#options.log;
    if (local.incoming && !incoming) {
      local.incoming = false;
      if (vm.nodeId === this.#options.nodeId) log.info("VM migrated here", { vm: vm.name });
    }
    const migration = vm.nodeId === this.#options.nodeId ? vm.migration : undefined;
    if (migration !== undefined) {
      const uri = migration.incomingUri;
      if (uri === "" || local.sentTo === uri || local.handle.migrate === undefined) return;
      local.sentTo = uri;
      local.sending = "sending";
      log.info("migrating VM", { vm: vm.name, to: migration.targetNodeId, uri });
      const { diskUri, targetNodeId: nodeId } = migration;
      const to = { uri, nodeId, ...(diskUri === undefined ? {} : { diskUri }) };
      local.handle.migrate(to).then(
        (stats) => {
          local.sending = "sent";
          log.info("VM migration stream completed", { vm: vm.name, ...stats });
          this.notify();
        },
        // Said at once, so the model rolls back without waiting for the target to give up.
        (error: unknown) => {
          local.sending = "idle";
          const reason = (error as Error).message;
          log.warn("VM migration failed", { vm: vm.name, error: reason });
          const o = local.handle.observe();
          if (o.status === "running" || o.status === "unhealthy") {
            this.#report(vm.name, {
              status: o.status,
              restarts: o.restarts,
              error: truncateUtf8(reason, MAX_REPORTED_ERROR_BYTES),
              sendFailedTo: uri,
            });
          }
          this.notify();
        },
      );
      return;
    }
    // The migration is over and the VM is still here: rolled back (or abandoned). A stream still
    // under way is waited for (its end notifies); a completed one left the guest paused.
    if (local.sentTo === "" || local.sending === "sending") return;
    local.sentTo = "";
    if (local.sending === "sent") {
      local.sending = "idle";
      local.handle.resume?.().then(
        () => this.#reportAfterMigration(vm.name, local),
        (error: unknown) =>
          log.warn("could not resume a VM after a failed migration", {
            vm: vm.name,
            error: (error as Error).message,
          }),
      );
      return;
    }
    this.#reportAfterMigration(vm.name, local);
  }

  /**
   * The model set a VM `running` again here when its migration ended: say so if this copy is not
   * (unhealthy meanwhile), which the model did not take while the VM was migrating. A running
   * copy says nothing, so the model keeps the migration's failure as the VM's last error.
   */
  #reportAfterMigration(name: string, local: LocalVm): void {
    const o = local.handle.observe();
    if (o.status === "running") return;
    local.lastReported = "";
    this.#reportObservation(name, local, o);
  }

  #startVm(vm: Vm, incoming = false): void {
    const driver = this.#options.vmDrivers.get(vm.spec.driver);
    const start = incoming ? driver?.startIncoming?.bind(driver) : driver?.start.bind(driver);
    if (start === undefined) {
      this.#report(vm.name, {
        status: "failed",
        restarts: vm.restarts,
        error: incoming
          ? `this node's ${vm.spec.driver} driver cannot take a live migration`
          : `this node has no ${vm.spec.driver} driver`,
      });
      if (incoming) this.#endedVms.add(vm.name);
      return;
    }
    this.#options.log.info(incoming ? "receiving VM" : "starting VM", {
      vm: vm.name,
      driver: vm.spec.driver,
    });
    // The handle reports through onChange before start() returns; its record exists only after.
    const box: { local?: LocalVm } = {};
    const onChange = (observation: VmObservation): void => {
      const local = box.local;
      if (local === undefined || local.stopping) return;
      this.#reportObservation(vm.name, local, observation);
    };
    let handle: VmHandle;
    try {
      const self = this.#options.nodeId;
      handle = start({
        name: vm.name,
        spec: vm.spec,
        onChange,
        previousRestarts: vm.restarts,
        // Only the node holding its current disk reuses a disk kept here: anywhere else (or
        // before it ever ran) a disk of that name is stale, or another VM's of the same name.
        ...(vm.diskNodeId === self ? {} : { freshDisk: true }),
        // A VM arriving here still runs on its node: only that node may send it.
        ...(incoming && vm.nodeId !== null ? { sourceNodeId: vm.nodeId } : {}),
      });
    } catch (error) {
      this.#report(vm.name, {
        status: "failed",
        restarts: vm.restarts,
        error: (error as Error).message,
      });
      if (incoming) this.#endedVms.add(vm.name);
      return;
    }
    const local: LocalVm = {
      handle,
      lastReported: "",
      stopping: false,
      incoming,
      sentTo: "",
      sending: "idle",
    };
    box.local = local;
    this.#vms.set(vm.name, local);
    this.#reportObservation(vm.name, local, handle.observe());
    void handle.settled.then((final) => {
      if (this.#vms.get(vm.name)?.handle !== handle) return;
      // Failed for good (or exited cleanly): report it and forget the handle.
      if (!local.stopping) {
        this.#reportObservation(vm.name, local, final);
        this.#endedVms.add(vm.name);
      }
      this.#vms.delete(vm.name);
    });
  }

  #stopVm(name: string, local: LocalVm, report: boolean): void {
    if (local.stopping) return;
    local.stopping = true;
    if (report) {
      const o = local.handle.observe();
      this.#report(name, { status: "stopping", restarts: o.restarts, error: o.lastError });
    }
    local.handle.stop().then(
      ({ observation }) => {
        if (this.#vms.get(name) === local) this.#vms.delete(name);
        if (report) {
          this.#report(name, {
            status: "stopped",
            restarts: observation.restarts,
            error: observation.lastError,
            requestedStop: true,
          });
        }
        this.notify();
      },
      // A stop the driver could not carry out (signalling the process group failed: EPERM)
      // leaves the VM as it is and is said; unhandled, it would end the node's process.
      (error: unknown) =>
        this.#options.log.warn("could not stop a VM", {
          vm: name,
          error: error instanceof Error ? error.message : String(error),
        }),
    );
  }

  #reportObservation(name: string, local: LocalVm, o: VmObservation): void {
    // Where an incoming copy listens matters only until its guest runs.
    const uri =
      local.incoming &&
      o.incomingUri !== undefined &&
      (o.status === "booting" || o.status === "starting")
        ? o.incomingUri
        : undefined;
    const diskUri = uri === undefined ? undefined : o.incomingDiskUri;
    const key = `${o.status}/${o.restarts}/${o.lastError}/${uri ?? ""}/${diskUri ?? ""}`;
    if (key === local.lastReported) return;
    local.lastReported = key;
    this.#report(name, {
      status: o.status,
      restarts: o.restarts,
      error: o.lastError,
      ...(uri === undefined ? {} : { incomingUri: uri }),
      ...(diskUri === undefined ? {} : { incomingDiskUri: diskUri }),
    });
  }

  #report(
    name: string,
    o: Pick<
      Extract<OrchestratorCommand, { type: "vmObserved" }>,
      | "status"
      | "restarts"
      | "error"
      | "requestedStop"
      | "incomingUri"
      | "incomingDiskUri"
      | "sendFailedTo"
    >,
  ): void {
    this.#reporter.report(`vm:${name}`, {
      type: "vmObserved",
      name,
      nodeId: this.#options.nodeId,
      ...o,
    });
  }
}
