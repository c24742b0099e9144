/**
 * The simulated VM driver: the agent's {@link VmDriverPort} on a simulated machine, for either
 * driver kind. A VM run launches in a few ms and then runs (a process in the
 * {@link SimProcessTable}) until it is stopped; while the run's chaos is on, a run may also crash
 * after a while, and the VM's restart policy (the real `decideAfterExit`) decides whether it is
 * restarted after its backoff or fails for good. Everything runs on the node's clock.
 */
import type { TimerHandle } from "../../common/clock.js";
import type { Random } from "../../common/random.js";
import { decideAfterExit } from "../../orchestrator/drivers/restart-policy.js";
import type {
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

/** A driver of one kind on one incarnation of one simulated node. */
export class SimVmDriver implements VmDriverPort {
  constructor(
    readonly kind: VmDriver,
    private readonly options: SimVmDriverOptions,
  ) {}

  /** @inheritdoc */
  start(request: VmStartRequest): VmHandle {
    return new SimVmHandle(request, this.options);
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

  constructor(
    private readonly request: VmStartRequest,
    private readonly options: SimVmDriverOptions,
  ) {
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

  stop(): Promise<VmStopResult> {
    this.#stopResult ??= this.#stopOnce();
    return this.#stopResult;
  }

  async #stopOnce(): Promise<VmStopResult> {
    if (this.#final) return { observation: this.#observation, method: "not-running" };
    const { options } = this;
    this.#timer?.cancel();
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
