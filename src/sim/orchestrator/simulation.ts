/**
 * The orchestrator in the simulator (`--orchestrator`): everything a run adds when its nodes
 * apply the cluster state machine. It owns the simulated machines' processes, each node's agent
 * and liveness monitor ({@link OrchestratorHosts}), the operators' workload, the continuous model
 * checks ({@link OrchestratorModelChecker}) and the settle checks at the end (`settle.ts`), and
 * is wired into the run through the cluster's observer hooks.
 */
import type { Random } from "../../common/random.js";
import type { NodeId } from "../../raft/types.js";
import type { OrchestratorQueries } from "../../statemachine/orchestrator/index.js";
import type { SimCluster, SimNodeSlot } from "../cluster.js";
import type { Violation } from "../checkers/violation.js";
import type { SimNetwork } from "../network.js";
import { between, fork, type TraceHash } from "../rng.js";
import type { Scheduler } from "../scheduler.js";
import { EventTail } from "./event-tail.js";
import { OrchestratorHosts } from "./hosts.js";
import { allTasks, OrchestratorModelChecker } from "./model-checker.js";
import { SimProcessTable } from "./processes.js";
import { checkSettled, leaderView, unsettled, type SettleView } from "./settle.js";
import {
  OrchestratorWorkload,
  emptyWorkloadCounts,
  type OrchestratorWorkloadCounts,
} from "./workload.js";
import { readSimTask } from "./task-spec.js";
import { ZombieWatch } from "./zombie-watch.js";
import { AGENT_ID_BASE, SimAgentFleet } from "./agent-fleet.js";
import { CutOffWatch } from "./cut-off-watch.js";

/** The leader marks a worker offline after this much virtual silence. */
export const WORKER_DEAD_AFTER_MS = 2000;
/**
 * After the heal, the orchestrator must settle within this much virtual time, plus the run
 * time of the work still queued ({@link queuedWorkMs}): tasks wait for capacity, and when VMs
 * fill every other worker one worker may have to run the queue one task after another (seed
 * 5311430: 37 s of queued tasks on node 1 after the heal, served back to back).
 */
export const SETTLE_WITHIN_MS = 40_000;
/** How often the settle condition is evaluated after the heal. */
const SETTLE_POLL_MS = 100;
/** How often the processes are compared with their nodes' models. */
const ZOMBIE_POLL_MS = 200;

/** What the orchestrator did in a run. */
export interface OrchestratorReport {
  readonly operators: number;
  readonly commands: Readonly<OrchestratorWorkloadCounts>;
  readonly tasks: {
    readonly submitted: number;
    /** Terminal at the end, by status. */
    readonly succeeded: number;
    readonly failed: number;
    readonly timedOut: number;
    readonly cancelled: number;
    readonly lost: number;
    readonly pending: number;
    /** Tasks placed more than once (an attempt was lost with its worker and retried). */
    readonly retried: number;
  };
  readonly vms: {
    readonly created: number;
    /** Moves off a worker that went offline. */
    readonly moved: number;
    readonly running: number;
    readonly failed: number;
  };
  readonly workersMarkedOffline: number;
  /** Agent-only workers and the faults they went through (absent without them). */
  readonly agents?: {
    readonly count: number;
    readonly cuts: number;
    readonly crashes: number;
    /** Tasks whose last attempt ran on an agent-only worker. */
    readonly tasksOnAgents: number;
  };
  readonly processes: { readonly started: number; readonly killedByCrash: number };
  /** Model changes checked on some replica. */
  readonly modelChecks: number;
  /** Virtual ms from the heal until everything settled, if it did. */
  readonly settledAfterHealMs: number | undefined;
}

/** How the orchestrator side of a run is set up. */
export interface OrchestratorSimulationOptions {
  readonly scheduler: Scheduler;
  readonly random: Random;
  readonly network: SimNetwork;
  readonly trace: TraceHash;
  /** The planted bugs `leakAbandonedTasks` and `leakMovedVms` (see `PlantedBugs`). */
  readonly leakAbandonedTasks: boolean;
  readonly leakMovedVms: boolean;
  /** Agent-only workers beside the servers (0: every worker is a server). */
  readonly agents: number;
  /** The planted bug `agentOverstaysGrace` (see `PlantedBugs`): extra disconnect grace, ms. */
  readonly agentExtraGraceMs: number;
}

/** The orchestrator side of one simulation run. */
export class OrchestratorSimulation {
  readonly processes = new SimProcessTable();
  readonly events = new EventTail();
  readonly checker: OrchestratorModelChecker;
  readonly hosts: OrchestratorHosts;
  readonly operators: number;
  #workload: OrchestratorWorkload | undefined;
  #cluster: SimCluster | undefined;
  #zombies: ZombieWatch | undefined;
  /** The agent-only workers (runs with `agents` > 0). */
  readonly fleet: SimAgentFleet | undefined;
  #cutOff: CutOffWatch | undefined;
  #chaos = true;
  #healedAtMs: number | undefined;
  #settledAtMs: number | undefined;
  #lastUnsettled: string[] = [];
  readonly #violations: Violation[] = [];
  readonly #workloadRandom: Random;

  constructor(private readonly options: OrchestratorSimulationOptions) {
    const random = options.random;
    this.operators = between(random, 1, 3);
    this.#workloadRandom = fork(random);
    this.checker = new OrchestratorModelChecker(() => options.scheduler.now());
    this.hosts = new OrchestratorHosts({
      scheduler: options.scheduler,
      network: options.network,
      random: fork(random),
      processes: this.processes,
      events: this.events,
      deadAfterMs: WORKER_DEAD_AFTER_MS,
      resyncMs: 1000,
      chaos: () => this.#chaos,
      vmCrashRate: 0.3,
      leakAbandonedTasks: options.leakAbandonedTasks,
      leakMovedVms: options.leakMovedVms,
    });
    this.fleet =
      options.agents > 0
        ? new SimAgentFleet({
            count: options.agents,
            scheduler: options.scheduler,
            network: options.network,
            random: fork(random),
            processes: this.processes,
            events: this.events,
            hosts: this.hosts,
            deadAfterMs: WORKER_DEAD_AFTER_MS,
            resyncMs: 1000,
            chaos: () => this.#chaos,
            vmCrashRate: 0.3,
            extraGraceMs: options.agentExtraGraceMs,
          })
        : undefined;
  }

  /** Gives the orchestrator its cluster (built after it, since the cluster's observer calls it). */
  attach(cluster: SimCluster): void {
    this.#cluster = cluster;
    this.hosts.attach(cluster);
    this.#zombies = new ZombieWatch(cluster, this.hosts, this.processes, this.fleet);
    if (this.fleet !== undefined) {
      this.#cutOff = new CutOffWatch(this.fleet, this.processes, WORKER_DEAD_AFTER_MS);
    }
    this.#workload = new OrchestratorWorkload(
      this.options.scheduler,
      this.#workloadRandom,
      cluster,
      {
        operators: this.operators,
        thinkMs: { min: 50, max: 400 },
        vmsPerOperator: 3,
        timing: { attemptTimeoutMs: 2500, giveUpAfterMs: 8000, backoffMs: { min: 20, max: 150 } },
      },
      this.options.trace,
      this.events,
    );
  }

  // ---- the cluster's observer hooks ---------------------------------------------------------

  /** A replica's model changed: check it, and wake its node's agent. */
  onModelChanged(
    nodeId: NodeId,
    incarnation: number,
    index: number | undefined,
    model: OrchestratorQueries,
  ): void {
    this.checker.onModelChanged(nodeId, incarnation, index, model);
    this.hosts.onModelChanged(nodeId, incarnation);
  }

  /** A node's new incarnation runs. */
  onNodeStarted(slot: SimNodeSlot): void {
    this.hosts.onNodeStarted(slot);
  }

  /** A node's process is gone. */
  onNodeStopped(nodeId: NodeId, incarnation: number): void {
    this.hosts.onNodeStopped(nodeId, incarnation);
  }

  // ---- phases -------------------------------------------------------------------------------

  /**
   * Starts the operators (they stop issuing once `stopIssuing()` is true) and the watch for
   * processes their agents lost track of.
   */
  start(stopIssuing: () => boolean): void {
    if (this.#cluster !== undefined) this.fleet?.start(this.#cluster);
    this.#workload?.start(stopIssuing);
    this.#watchZombies();
  }

  #watchZombies(): void {
    const { scheduler } = this.options;
    scheduler.schedule(ZOMBIE_POLL_MS, () => {
      if (this.concluded) return;
      this.#zombies?.observe(scheduler.now());
      this.#cutOff?.observe(scheduler.now());
      this.#watchZombies();
    });
  }

  /**
   * Every fault healed: VM runs stop crashing by themselves, and the settle condition is
   * evaluated from now on; once it holds, the settled model is compared with what runs.
   */
  onHealed(): void {
    this.#chaos = false;
    this.#healedAtMs = this.options.scheduler.now();
    this.fleet?.onHealed();
    this.#countQueuedWork();
    this.#poll();
  }

  /** Task ids whose queued work is counted in {@link #queuedWorkMs}. */
  readonly #counted = new Set<string>();
  #queuedWorkMs = 0;

  /**
   * Adds the worst-case run time of every unfinished task not counted yet (tasks submitted
   * after the heal are counted when first seen): each attempt runs its scripted duration, or
   * until its timeout, and the queue may be served by one worker alone.
   */
  #countQueuedWork(): void {
    const model = this.#finalModel();
    if (model === undefined) return;
    for (const task of allTasks(model)) {
      if (this.#counted.has(task.id)) continue;
      if (task.status !== "pending" && task.status !== "assigned" && task.status !== "running")
        continue;
      this.#counted.add(task.id);
      const { durationMs } = readSimTask(task.spec);
      const attemptMs =
        task.spec.timeoutMs > 0 ? Math.min(durationMs, task.spec.timeoutMs) : durationMs;
      this.#queuedWorkMs += attemptMs * Math.max(1, task.spec.maxAttempts - task.attempts + 1);
    }
  }

  /** True once a continuous check failed. */
  get failed(): boolean {
    return (
      this.checker.failed ||
      (this.#zombies?.violations.length ?? 0) > 0 ||
      (this.#cutOff?.violations.length ?? 0) > 0
    );
  }

  /** True once the cluster settled (and was checked), or a check failed. */
  get concluded(): boolean {
    return this.#settledAtMs !== undefined || this.failed;
  }

  /** The virtual time by which the cluster must have settled. */
  get settleDeadlineMs(): number {
    return (this.#healedAtMs ?? 0) + SETTLE_WITHIN_MS + this.#queuedWorkMs;
  }

  #view(): SettleView | undefined {
    const cluster = this.#cluster;
    const workload = this.#workload;
    if (cluster === undefined || workload === undefined) return undefined;
    return {
      cluster,
      hosts: this.hosts,
      processes: this.processes,
      submitted: workload.submitted,
      ...(this.fleet === undefined ? {} : { fleet: this.fleet }),
    };
  }

  #poll(): void {
    const { scheduler } = this.options;
    scheduler.schedule(SETTLE_POLL_MS, () => {
      if (this.concluded || scheduler.now() > this.settleDeadlineMs) return;
      const view = this.#view();
      if (view === undefined) return;
      this.#countQueuedWork();
      this.#lastUnsettled =
        this.#workload?.done === true ? unsettled(view) : ["the operators are still at work"];
      if (this.#lastUnsettled.length > 0) {
        this.#poll();
        return;
      }
      this.#settledAtMs = scheduler.now();
      this.options.trace.add(`orchestrator settled at ${scheduler.now()} ms`);
      this.#violations.push(...checkSettled(view, scheduler.now()));
    });
  }

  /**
   * The orchestrator's violations: the continuous checks', the settle checks', a liveness
   * violation if it never settled, and commands refused for reasons no correct system gives.
   */
  violations(): Violation[] {
    const now = this.options.scheduler.now();
    const found = [
      ...this.checker.violations,
      ...(this.#zombies?.violations ?? []),
      ...(this.#cutOff?.violations ?? []),
      ...this.#violations,
    ];
    if (!this.failed && this.#settledAtMs === undefined) {
      found.push({
        property: "orchestrator-liveness",
        message:
          `the orchestrator did not settle within ${SETTLE_WITHIN_MS} ms of the heal ` +
          `(plus ${this.#queuedWorkMs} ms of queued task work): ` +
          this.#lastUnsettled.slice(0, 8).join("; "),
        atMs: now,
      });
    }
    for (const anomaly of this.#workload?.anomalies ?? []) {
      found.push({ property: "orchestrator-anomaly", message: anomaly, atMs: now });
    }
    return found;
  }

  /** What the orchestrator did, from the leader's final model (or any replica's). */
  report(): OrchestratorReport {
    const model = this.#finalModel();
    const tasks = model === undefined ? [] : allTasks(model);
    const count = (status: string): number => tasks.filter((t) => t.status === status).length;
    const vms = model?.vms() ?? [];
    const workload = this.#workload;
    return {
      operators: this.operators,
      commands: { ...(workload?.counts ?? emptyWorkloadCounts()) },
      tasks: {
        submitted: workload?.submitted.size ?? 0,
        succeeded: count("succeeded"),
        failed: count("failed"),
        timedOut: count("timed_out"),
        cancelled: count("cancelled"),
        lost: count("lost"),
        pending: count("pending"),
        retried: tasks.filter((t) => t.attempts > 1).length,
      },
      vms: {
        created: workload?.vmNames.length ?? 0,
        moved: this.checker.vmsMoved,
        running: vms.filter((vm) => vm.status === "running").length,
        failed: vms.filter((vm) => vm.status === "failed").length,
      },
      workersMarkedOffline: this.checker.workersMarkedOffline,
      ...(this.fleet === undefined
        ? {}
        : {
            agents: {
              count: this.fleet.ids.length,
              cuts: this.fleet.stats.cuts,
              crashes: this.fleet.stats.crashes,
              tasksOnAgents: tasks.filter((t) => t.nodeId !== null && t.nodeId >= AGENT_ID_BASE)
                .length,
            },
          }),
      processes: { ...this.processes.stats },
      modelChecks: this.checker.checks,
      settledAfterHealMs:
        this.#settledAtMs === undefined || this.#healedAtMs === undefined
          ? undefined
          : this.#settledAtMs - this.#healedAtMs,
    };
  }

  /** The last orchestrator events, for a failure report. */
  tailLines(): string[] {
    return this.events.lines();
  }

  #finalModel(): OrchestratorQueries | undefined {
    const cluster = this.#cluster;
    if (cluster === undefined) return undefined;
    const leader = leaderView(cluster);
    if (leader !== undefined) return leader.model;
    for (const id of cluster.liveIds()) {
      const host = this.hosts.host(id);
      if (host !== undefined) return host.model;
    }
    return undefined;
  }
}
