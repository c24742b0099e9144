/**
 * The agent-only workers of a run (`--agents N`): machines that hold no Raft log and run work
 * through the agent protocol, as `blixard agent start` does. Each is the shipped
 * {@link RemoteAgent} (the one reconcile loop over the assignment long poll, the heartbeat loop
 * and the disconnect guard) with the simulated task runner and VM drivers, reaching the servers
 * through a {@link SimAgentLink} over the simulated network. Many of them run in one simulated
 * process, as a load harness runs many agents in one.
 *
 * While faults run, the fleet adds its own: an agent cut off from every server (both ways) for a
 * while, sometimes longer than its disconnect grace, and an agent machine that crashes (its
 * processes die with it) and comes back later. The heal ends both.
 *
 * Ids start at {@link AGENT_ID_BASE}, far from the servers' ids (which grow with membership
 * changes), so an agent is never mistaken for a member.
 */
import type { Random } from "../../common/random.js";
import type { VmDriverPort } from "../../orchestrator/drivers/vm-driver.js";
import { RemoteAgent } from "../../orchestrator/agent/remote/remote-agent.js";
import type { NodeId } from "../../raft/types.js";
import type { OrchestratorQueries, Task, VmDriver } from "../../statemachine/orchestrator/index.js";
import type { SimCluster } from "../cluster.js";
import type { SimNetwork } from "../network.js";
import { between, chance, fork, pick } from "../rng.js";
import { SimClock, type Scheduler } from "../scheduler.js";
import { SimAgentLink } from "./agent-link.js";
import type { EventTail } from "./event-tail.js";
import { keptLogger, type OrchestratorHosts } from "./hosts.js";
import type { SimProcessTable } from "./processes.js";
import { simTaskRunner } from "./task-runner.js";
import { SimVmDriver } from "./vm-driver.js";

/** The first agent id. */
export const AGENT_ID_BASE = 1001;
/** How often, while faults run, the fleet considers an agent fault. */
const FAULT_EVERY_MS = { min: 500, max: 3000 } as const;
/** How long an agent stays cut off (the grace is the dead-after time, 2 s). */
const CUT_FOR_MS = { min: 300, max: 6000 } as const;
/** How long a crashed agent machine stays down. */
const DOWN_FOR_MS = { min: 200, max: 5000 } as const;

/** One incarnation of one agent-only worker. */
export interface AgentHost {
  readonly nodeId: NodeId;
  readonly incarnation: number;
  readonly remote: RemoteAgent;
  /** The agent's own view, as the reconcile loop reads it. */
  readonly model: Pick<OrchestratorQueries, "task" | "vm">;
  readonly link: SimAgentLink;
  readonly clock: SimClock;
  /** The virtual time it started (the disconnect grace counts from here until a first ack). */
  readonly startedAtMs: number;
  /** The send time of the last heartbeat the leader acknowledged (written by the link wrapper). */
  readonly acks: { lastSentAtMs: number | undefined };
}

/** What the fleet runs on. */
export interface AgentFleetOptions {
  readonly count: number;
  readonly scheduler: Scheduler;
  readonly network: SimNetwork;
  readonly random: Random;
  readonly processes: SimProcessTable;
  readonly events: EventTail;
  readonly hosts: OrchestratorHosts;
  readonly deadAfterMs: number;
  readonly resyncMs: number;
  readonly chaos: () => boolean;
  readonly vmCrashRate: number;
  /**
   * PLANTED BUG (test only): agents keep running their work this much longer than the
   * dead-after time after they lose the cluster (a disconnect grace set too long).
   */
  readonly extraGraceMs: number;
}

/** The agent-only workers of one run. */
export class SimAgentFleet {
  readonly #options: AgentFleetOptions;
  readonly #hosts = new Map<NodeId, AgentHost>();
  readonly #incarnations = new Map<NodeId, number>();
  /** Until when each cut agent stays cut (overlapping cuts end with the last). */
  readonly #cutUntilMs = new Map<NodeId, number>();
  readonly #random: Random;
  readonly #faultRandom: Random;
  #cluster: SimCluster | undefined;
  #healed = false;
  /** Counters for the report. */
  readonly stats = { cuts: 0, crashes: 0, disconnects: 0 };

  constructor(options: AgentFleetOptions) {
    this.#options = options;
    this.#random = fork(options.random);
    this.#faultRandom = fork(options.random);
  }

  /** Every agent id of the run. */
  get ids(): NodeId[] {
    return Array.from({ length: this.#options.count }, (_, i) => AGENT_ID_BASE + i);
  }

  /** The running incarnation of agent `id`, if it runs. */
  host(id: NodeId): AgentHost | undefined {
    return this.#hosts.get(id);
  }

  /** Starts every agent, and the agent faults while `chaos` holds. */
  start(cluster: SimCluster): void {
    this.#cluster = cluster;
    for (const id of this.ids) this.#startAgent(id);
    this.#scheduleFault();
  }

  /** The heal: every cut agent link is healed by the network; every crashed agent comes back. */
  onHealed(): void {
    this.#healed = true;
    for (const id of this.ids) if (!this.#hosts.has(id)) this.#startAgent(id);
  }

  #scheduleFault(): void {
    const { scheduler } = this.#options;
    const random = this.#faultRandom;
    scheduler.schedule(between(random, FAULT_EVERY_MS.min, FAULT_EVERY_MS.max), () => {
      if (this.#healed || !this.#options.chaos()) return;
      const id = pick(random, this.ids);
      if (chance(random, 0.6)) this.#cut(id, between(random, CUT_FOR_MS.min, CUT_FOR_MS.max));
      else if (this.#hosts.has(id))
        this.#crash(id, between(random, DOWN_FOR_MS.min, DOWN_FOR_MS.max));
      this.#scheduleFault();
    });
  }

  /** Cuts agent `id` off from every server, both ways, for `forMs` (or until the heal). */
  #cut(id: NodeId, forMs: number): void {
    const { network, scheduler, events } = this.#options;
    const servers = this.#cluster?.memberIds() ?? [];
    this.stats.cuts++;
    const untilMs = Math.max(this.#cutUntilMs.get(id) ?? 0, scheduler.now() + forMs);
    this.#cutUntilMs.set(id, untilMs);
    events.add(scheduler.now(), `agent ${id} cut off from the servers for ${forMs} ms`);
    for (const server of servers) {
      network.blockOneWay(id, server);
      network.blockOneWay(server, id);
    }
    scheduler.schedule(forMs, () => {
      if (this.#healed || scheduler.now() < (this.#cutUntilMs.get(id) ?? 0)) return;
      events.add(scheduler.now(), `agent ${id} reaches the servers again`);
      for (const server of servers) {
        network.unblockOneWay(id, server);
        network.unblockOneWay(server, id);
      }
    });
  }

  /** Agent `id`'s machine crashes: its processes die; it starts again after `forMs`. */
  #crash(id: NodeId, forMs: number): void {
    const { scheduler, events, processes } = this.#options;
    const host = this.#hosts.get(id);
    if (host === undefined) return;
    this.stats.crashes++;
    events.add(scheduler.now(), `agent ${id} crashes for ${forMs} ms`);
    this.#hosts.delete(id);
    this.stats.disconnects += host.remote.disconnects;
    host.clock.kill();
    host.link.close();
    void host.remote.close({ stopWork: false });
    processes.killNode(id);
    scheduler.schedule(forMs, () => {
      if (!this.#hosts.has(id)) this.#startAgent(id);
    });
  }

  #startAgent(id: NodeId): void {
    const cluster = this.#cluster;
    if (cluster === undefined) return;
    const o = this.#options;
    const incarnation = (this.#incarnations.get(id) ?? 0) + 1;
    this.#incarnations.set(id, incarnation);
    const clock = new SimClock(o.scheduler);
    const random = fork(this.#random);
    const { capacity, features } = o.hosts.machine(id);
    const event = (line: string | (() => string)): void => o.events.add(o.scheduler.now(), line);
    const link = new SimAgentLink({
      nodeId: id,
      scheduler: o.scheduler,
      network: o.network,
      cluster,
      hosts: o.hosts,
      random: fork(random),
    });
    // The view is made by the RemoteAgent; the runners read it through this box.
    const box: { remote?: RemoteAgent } = {};
    const task = (taskId: string): Task | undefined =>
      box.remote?.view.assignments(id).tasks.find((t) => t.id === taskId);
    const driverOptions = {
      nodeId: id,
      incarnation,
      clock,
      random,
      processes: o.processes,
      chaos: o.chaos,
      crashRate: o.vmCrashRate,
      placedHere: (name: string) => box.remote?.view.vm(name) !== undefined,
      leakMoved: false,
      onEvent: event,
    };
    const drivers = new Map<VmDriver, VmDriverPort>([
      ["process", new SimVmDriver("process", driverOptions)],
    ]);
    if (features.includes("qemu")) drivers.set("qemu", new SimVmDriver("qemu", driverOptions));
    const acks: AgentHost["acks"] = { lastSentAtMs: undefined };
    const remote = new RemoteAgent({
      nodeId: id,
      link: {
        assignments: (after, waitMs, signal) => link.assignments(after, waitMs, signal),
        propose: (command) => link.propose(command),
        heartbeat: async () => {
          const sentAtMs = clock.now();
          const answer = await link.heartbeat();
          acks.lastSentAtMs = Math.max(acks.lastSentAtMs ?? 0, sentAtMs);
          return answer;
        },
      },
      clock,
      log: keptLogger(`agent ${id}`, event),
      runTask: simTaskRunner({
        nodeId: id,
        incarnation,
        clock,
        random,
        processes: o.processes,
        queries: { task },
        leakAbandoned: false,
        onEvent: event,
      }),
      vmDrivers: drivers,
      capacity,
      features,
      workerDeadAfterMs: o.deadAfterMs,
      disconnectGraceMs: o.deadAfterMs + o.extraGraceMs,
      resyncMs: o.resyncMs,
      // Short polls: a simulated run is short, and a lost poll waits out its deadline.
      pollWaitMs: 1000,
    });
    box.remote = remote;
    this.#hosts.set(id, {
      nodeId: id,
      incarnation,
      clock,
      link,
      remote,
      acks,
      startedAtMs: o.scheduler.now(),
      model: { task, vm: (name) => remote.view.vm(name) },
    });
    clock.fire(() => remote.start());
  }
}
