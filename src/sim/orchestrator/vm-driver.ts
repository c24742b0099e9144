/**
 * The simulated VM driver: the agent's {@link VmDriverPort} on a simulated machine, for either
 * driver kind. A VM run launches in a few ms and then runs (a process in the
 * {@link SimProcessTable}) until it is stopped; while the run's chaos is on, a run may also crash
 * after a while, and the VM's restart policy (the real `decideAfterExit`) decides whether it is
 * restarted after its backoff or fails for good. Everything runs on the node's clock.
 *
 * Live migration (qemu VMs): an incoming run listens under a URI of its own in the run's
 * {@link SimMigrations} (one per process table, so per run); the source's `migrate` looks it up
 * and, after a transfer time, hands the VM over if both ends still run: the target turns
 * `running`, the source stays paused until it is stopped or resumed. An incoming run that gets no
 * stream within {@link INCOMING_TIMEOUT_MS} fails for good, as the qemu driver's does. The stream
 * does not go through the simulated network.
 */
import type { TimerHandle } from "../../common/clock.js";
import type { Random } from "../../common/random.js";
import { decideAfterExit } from "../../orchestrator/drivers/restart-policy.js";
import { InvalidArgumentError, UnavailableError } from "../../common/errors.js";
import type {
  MigrationStats,
  MigrationTarget,
  VmDriverPort,
  VmHandle,
  VmObservation,
  VmStartRequest,
  VmStopResult,
} from "../../orchestrator/drivers/vm-driver.js";
import type { NodeId } from "../../raft/types.js";
import type { VmDriver } from "../../statemachine/orchestrator/types.js";
import { between, chance } from "../rng.js";
import type { SimClock } from "../scheduler.js";
import type { SimProcess, SimProcessTable } from "./processes.js";

/** What a simulated VM driver runs on. */
export interface SimVmDriverOptions {
  readonly nodeId: NodeId;
  readonly incarnation: number;
  readonly clock: SimClock;
  readonly random: Random;
  readonly processes: SimProcessTable;
  /** True while runs may crash by themselves (the fault phase). */
  readonly chaos: () => boolean;
  /** Probability that a run started under chaos crashes later. */
  readonly crashRate: number;
  /** True if the node's applied model places VM `name` here. */
  readonly placedHere: (name: string) => boolean;
  /**
   * PLANTED BUG (test only): stopping a VM that is no longer placed here reports it stopped but
   * leaves its process running.
   */
  readonly leakMoved: boolean;
  readonly onEvent: (line: string) => void;
}

/** Launch time of a run, in ms. */
const LAUNCH_MS = { min: 5, max: 30 } as const;
/** How long a crashing run lives, in ms. */
const CRASH_AFTER_MS = { min: 300, max: 5000 } as const;
/** How long a stop takes, in ms (a guest shutting down politely can take a while). */
const STOP_MS = { min: 1, max: 800 } as const;

/** How long a migration's stream takes, in ms. */
const TRANSFER_MS = { min: 20, max: 400 } as const;
/** How long an incoming run waits for its stream. */
const INCOMING_TIMEOUT_MS = 5_000;

/** The incoming runs listening in one simulated run, by URI. */
class SimMigrations {
  readonly listening = new Map<string, SimVmHandle>();
  #next = 0;

  /** A URI no other incoming run of this run has had. */
  uri(nodeId: NodeId): string {
    return `tcp:sim-node-${nodeId}:${10_000 + this.#next++}`;
  }
}

const migrationsByTable = new WeakMap<SimProcessTable, SimMigrations>();

function migrationsOf(processes: SimProcessTable): SimMigrations {
  let migrations = migrationsByTable.get(processes);
  if (migrations === undefined) {
    migrations = new SimMigrations();
    migrationsByTable.set(processes, migrations);
  }
  return migrations;
}

/** A driver of one kind on one incarnation of one simulated node. */
export class SimVmDriver implements VmDriverPort {
  constructor(
    readonly kind: VmDriver,
    private readonly options: SimVmDriverOptions,
  ) {}

  /** @inheritdoc */
  start(request: VmStartRequest): VmHandle {
    return new SimVmHandle(request, this.options, false);
  }

  /** @inheritdoc Only qemu VMs migrate, as with the real drivers. */
  startIncoming(request: VmStartRequest): VmHandle {
    if (this.kind !== "qemu") {
      throw new InvalidArgumentError(`${this.kind} VMs cannot be live-migrated`);
    }
    return new SimVmHandle(request, this.options, true);
  }
}

class SimVmHandle implements VmHandle {
  readonly name: string;
  readonly settled: Promise<VmObservation>;
  #observation: VmObservation;
  #settle: (observation: VmObservation) => void = () => undefined;
  #process: SimProcess | undefined;
  #timer: TimerHandle | undefined;
  #stopResult: Promise<VmStopResult> | undefined;
  #final = false;
  /** An incoming run whose stream has not arrived: where it listens. */
  #listening: string | undefined;
  /** The source of a completed migration: its guest is paused. */
  #paused = false;
  readonly #migrations: SimMigrations;

  constructor(
    private readonly request: VmStartRequest,
    private readonly options: SimVmDriverOptions,
    private readonly incoming: boolean,
  ) {
    this.#migrations = migrationsOf(options.processes);
    this.name = request.name;
    this.#observation = {
      name: request.name,
      status: "starting",
      restarts: request.previousRestarts ?? 0,
      lastError: "",
      pid: null,
      restartInMs: null,
    };
    this.settled = new Promise((resolve) => (this.#settle = resolve));
    this.#launch();
  }

  observe(): VmObservation {
    return this.#observation;
  }

  /** @inheritdoc */
  migrate({ uri }: MigrationTarget): Promise<MigrationStats> {
    const { options } = this;
    const run = this.#process;
    if (this.#observation.status !== "running" || run === undefined || this.#paused) {
      return Promise.reject(new UnavailableError(`VM ${this.name} is not running here`));
    }
    const startedAt = options.clock.now();
    return new Promise((resolve, reject) => {
      options.clock.setTimer(between(options.random, TRANSFER_MS.min, TRANSFER_MS.max), () => {
        const target = this.#migrations.listening.get(uri);
        const sourceRuns =
          this.#process === run && options.processes.isRunning(run) && !this.#final;
        if (target === undefined || !target.#accepting()) {
          reject(new UnavailableError(`nothing listens at ${uri}`));
          return;
        }
        if (!sourceRuns) {
          target.#failIncoming("the migration stream broke");
          reject(new UnavailableError(`VM ${this.name} ended during its migration`));
          return;
        }
        this.#paused = true;
        target.#arrived();
        options.onEvent(`node ${options.nodeId}: VM ${this.name} migrated to ${uri}`);
        resolve({ downtimeMs: 1, totalMs: options.clock.now() - startedAt, transferredBytes: 0 });
      });
    });
  }

  /** @inheritdoc */
  resume(): Promise<void> {
    this.#paused = false;
    return Promise.resolve();
  }

  /** True while this incoming run waits for its stream. */
  #accepting(): boolean {
    return (
      this.#listening !== undefined &&
      !this.#final &&
      this.#process !== undefined &&
      this.options.processes.isRunning(this.#process)
    );
  }

  #stopListening(): void {
    if (this.#listening === undefined) return;
    if (this.#migrations.listening.get(this.#listening) === this) {
      this.#migrations.listening.delete(this.#listening);
    }
    this.#listening = undefined;
  }

  /** The stream arrived: the guest runs here. */
  #arrived(): void {
    this.#stopListening();
    this.#timer?.cancel();
    this.#update({ status: "running", pid: 1000 + this.options.processes.stats.started });
  }

  /** The incoming run failed before its stream arrived: for good (the source still runs it). */
  #failIncoming(why: string): void {
    this.#stopListening();
    this.#timer?.cancel();
    this.#exitProcess("gave up its migration");
    this.#finish("failed", why);
  }

  stop(): Promise<VmStopResult> {
    this.#stopResult ??= this.#stopOnce();
    return this.#stopResult;
  }

  async #stopOnce(): Promise<VmStopResult> {
    if (this.#final) return { observation: this.#observation, method: "not-running" };
    const { options } = this;
    this.#timer?.cancel();
    this.#stopListening();
    this.#update({ status: "stopping" });
    if (options.leakMoved && !options.placedHere(this.name) && this.#process !== undefined) {
      // The planted bug: the VM is reported stopped, its process lives on.
      options.onEvent(`node ${options.nodeId}: VM ${this.name} LEAKED`);
      this.#process = undefined;
    }
    await new Promise<void>((resolve) => {
      this.#timer = options.clock.setTimer(between(options.random, STOP_MS.min, STOP_MS.max), () =>
        resolve(),
      );
    });
    this.#exitProcess("stopped");
    this.#finish("stopped");
    return { observation: this.#observation, method: "SIGTERM" };
  }

  #launch(): void {
    const { options } = this;
    this.#process = options.processes.start({
      kind: "vm",
      name: this.name,
      nodeId: options.nodeId,
      incarnation: options.incarnation,
      attempt: 0,
      startedAtMs: options.clock.now(),
    });
    options.onEvent(`node ${options.nodeId}: VM ${this.name} launches`);
    if (this.incoming && this.#observation.restarts === (this.request.previousRestarts ?? 0)) {
      this.#launchIncoming();
      return;
    }
    const crashes = options.chaos() && chance(options.random, options.crashRate);
    this.#timer = options.clock.setTimer(
      between(options.random, LAUNCH_MS.min, LAUNCH_MS.max),
      () => {
        this.#update({ status: "running", pid: 1000 + options.processes.stats.started });
        if (!crashes) return;
        // A crash is a fault: one drawn under chaos but due after the heal does not happen, or
        // it could land just before the settle check, before the agent has reported it.
        this.#timer = options.clock.setTimer(
          between(options.random, CRASH_AFTER_MS.min, CRASH_AFTER_MS.max),
          () => {
            if (options.chaos()) this.#crashed();
          },
        );
      },
    );
  }

  /** The incoming run listens once launched, and fails for good if no stream comes in time. */
  #launchIncoming(): void {
    const { options } = this;
    this.#timer = options.clock.setTimer(
      between(options.random, LAUNCH_MS.min, LAUNCH_MS.max),
      () => {
        const uri = this.#migrations.uri(options.nodeId);
        this.#listening = uri;
        this.#migrations.listening.set(uri, this);
        this.#update({ status: "booting", incomingUri: uri });
        this.#timer = options.clock.setTimer(INCOMING_TIMEOUT_MS, () =>
          this.#failIncoming(`no migration stream completed within ${INCOMING_TIMEOUT_MS} ms`),
        );
      },
    );
  }

  #crashed(): void {
    this.#exitProcess("crashed");
    const restarts = this.#observation.restarts;
    const decision = decideAfterExit(this.request.spec.restart, restarts, false);
    const lastError = "exited with code 1";
    if (decision.action !== "restart") {
      this.#finish(decision.action, lastError);
      return;
    }
    this.#update({ status: "starting", pid: null, lastError, restartInMs: decision.delayMs });
    this.#timer = this.options.clock.setTimer(decision.delayMs, () => {
      this.#update({ restarts: restarts + 1, restartInMs: null });
      this.#launch();
    });
  }

  #exitProcess(how: string): void {
    if (this.#process === undefined) return;
    if (this.options.processes.isRunning(this.#process)) {
      this.options.processes.end(this.#process);
      this.options.onEvent(`node ${this.options.nodeId}: VM ${this.name} ${how}`);
    }
    this.#process = undefined;
  }

  #finish(status: "stopped" | "failed", lastError = this.#observation.lastError): void {
    this.#final = true;
    this.#update({ status, pid: null, lastError, restartInMs: null });
    this.#settle(this.#observation);
  }

  #update(change: Partial<Omit<VmObservation, "name">>): void {
    this.#observation = { ...this.#observation, ...change };
    this.request.onChange(this.#observation);
  }
}
