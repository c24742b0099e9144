/**
 * The orchestrator side of each simulated machine: for every incarnation of a node, an
 * {@link Agent} (with the simulated task runner and VM drivers, proposing through a
 * {@link SimProposer} that forwards to the leader) and the leader's {@link LivenessMonitor} (which
 * acts only while its node leads). A crash ends both with their machine: the node's clock stops,
 * so their timers never fire again, and the machine's processes are gone. A restart builds new
 * ones over the restarted replica's model, as a real node's process would.
 *
 * A machine's capacity and features are drawn once per node id and kept across restarts (it is
 * the same hardware): a restarted agent registers the same numbers.
 */
import type { Random } from "../../common/random.js";
import { Agent } from "../../orchestrator/agent/agent.js";
import { CatchUpGate } from "../../orchestrator/agent/catch-up-gate.js";
import type { Logger } from "../../common/logger.js";
import type { VmDriverPort } from "../../orchestrator/drivers/vm-driver.js";
import { LivenessMonitor } from "../../orchestrator/liveness.js";
import { HeartbeatTable, livenessWithHeartbeats } from "../../orchestrator/heartbeats.js";
import { AgentHub, type HeartbeatAck } from "../../api/agents/agent-hub.js";
import { HeartbeatRelay, RELAY_TIMEOUT_MS } from "../../api/agents/heartbeat-relay.js";
import { TimeoutError, UnavailableError } from "../../common/errors.js";
import { NONE, type NodeId } from "../../raft/types.js";
import type {
  OrchestratorQueries,
  Resources,
  VmDriver,
} from "../../statemachine/orchestrator/index.js";
import { RAW_EXEC_FEATURE } from "../../statemachine/orchestrator/index.js";
import type { SimCluster, SimNodeSlot } from "../cluster.js";
import type { SimNetwork } from "../network.js";
import { between, chance, fork, pick } from "../rng.js";
import type { Scheduler } from "../scheduler.js";
import type { EventTail } from "./event-tail.js";
import type { SimProcessTable } from "./processes.js";
import { SimProposer } from "./proposer.js";
import { simTaskRunner } from "./task-runner.js";
import { SimVmDriver } from "./vm-driver.js";

/** What one simulated machine offers. */
export interface Machine {
  readonly capacity: Resources;
  readonly features: readonly string[];
}

/** The orchestrator running on one incarnation of a node. */
export interface NodeHost {
  readonly nodeId: NodeId;
  readonly incarnation: number;
  readonly agent: Agent;
  /** Starts the agent once the node caught up with the cluster (as on a real server). */
  readonly gate: CatchUpGate;
  readonly monitor: LivenessMonitor;
  readonly model: OrchestratorQueries;
  /** The server side of the agent protocol: agent-only workers poll and heartbeat here. */
  readonly hub: AgentHub;
}

/** How the hosts run. */
export interface HostsOptions {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork;
  readonly random: Random;
  readonly processes: SimProcessTable;
  readonly events: EventTail;
  /** The leader marks a worker offline after this long without hearing from it. */
  readonly deadAfterMs: number;
  /** An agent reconciles at least this often. */
  readonly resyncMs: number;
  /** True while VM runs may crash by themselves. */
  readonly chaos: () => boolean;
  /** Probability that a VM run started under chaos crashes later. */
  readonly vmCrashRate: number;
  /** The planted bugs `leakAbandonedTasks` and `leakMovedVms` (see `PlantedBugs`). */
  readonly leakAbandonedTasks: boolean;
  readonly leakMovedVms: boolean;
}

/** The orchestrator hosts of every node of a run. */
export class OrchestratorHosts {
  readonly #hosts = new Map<NodeId, NodeHost>();
  readonly #machines = new Map<NodeId, Machine>();
  readonly #machineRandom: Random;
  readonly #random: Random;
  #cluster: SimCluster | undefined;

  constructor(private readonly options: HostsOptions) {
    this.#machineRandom = fork(options.random);
    this.#random = fork(options.random);
  }

  /** Gives the hosts their cluster (built after them, since its observer calls them). */
  attach(cluster: SimCluster): void {
    this.#cluster = cluster;
  }

  /** The host of node `id`'s running incarnation, if any. */
  host(id: NodeId): NodeHost | undefined {
    return this.#hosts.get(id);
  }

  /** What node `id`'s machine offers (drawn on first use, then fixed). */
  machine(id: NodeId): Machine {
    let machine = this.#machines.get(id);
    if (machine === undefined) {
      const random = this.#machineRandom;
      // Every simulated node runs raw work, as one started with --enable-raw-exec does.
      const features = [
        RAW_EXEC_FEATURE,
        ...(chance(random, 0.5) ? ["ssd"] : []),
        // Most nodes run qemu, so that VMs can migrate between them.
        ...(chance(random, 0.6) ? ["qemu"] : []),
      ];
      machine = {
        capacity: {
          cpuMillis: pick(random, [2000, 3000, 4000]),
          memoryMb: pick(random, [2048, 4096]),
          diskGb: pick(random, [10, 20]),
        },
        features,
      };
      this.#machines.set(id, machine);
    }
    return machine;
  }

  /** A node's new incarnation runs: start its agent and liveness monitor. */
  onNodeStarted(slot: SimNodeSlot): void {
    const { options } = this;
    const cluster = this.#cluster;
    const node = slot.node;
    const clock = slot.clock;
    const machine = slot.stateMachine;
    const feed = slot.feed;
    if (cluster === undefined || node === undefined || clock === undefined) return;
    if (machine === undefined || feed === undefined) return;
    const nodeId = slot.id;
    const incarnation = slot.incarnation;
    const model = machine.orchestrator;
    const random = fork(this.#random);
    const { capacity, features } = this.machine(nodeId);
    const event = (line: string | (() => string)): void =>
      options.events.add(options.scheduler.now(), line);
    const proposer = (forward: boolean): SimProposer =>
      new SimProposer({
        nodeId,
        incarnation,
        scheduler: options.scheduler,
        cluster,
        forward,
      });
    const driverOptions = {
      nodeId,
      incarnation,
      clock,
      random,
      processes: options.processes,
      chaos: options.chaos,
      crashRate: options.vmCrashRate,
      placedHere: (name: string) => model.vm(name)?.nodeId === nodeId,
      leakMoved: options.leakMovedVms,
      onEvent: event,
    };
    const drivers = new Map<VmDriver, VmDriverPort>([
      ["process", new SimVmDriver("process", driverOptions)],
    ]);
    if (features.includes("qemu")) drivers.set("qemu", new SimVmDriver("qemu", driverOptions));
    const log = keptLogger(`node ${nodeId}`, event);
    const agent = new Agent({
      nodeId,
      clock,
      queries: model,
      proposer: proposer(true),
      runTask: simTaskRunner({
        nodeId,
        incarnation,
        clock,
        random,
        processes: options.processes,
        queries: model,
        leakAbandoned: options.leakAbandonedTasks,
        onEvent: event,
      }),
      vmDrivers: drivers,
      capacity,
      features,
      log,
      resyncMs: options.resyncMs,
    });
    const heartbeats = new HeartbeatTable();
    const hub = new AgentHub({
      feed,
      queries: model,
      clock,
      leadership: {
        nodeId,
        isLeader: () => node.isLeader,
        leaderHint: () => (node.leader === NONE ? undefined : { id: node.leader }),
      },
      heartbeats,
      workerDeadAfterMs: options.deadAfterMs,
      isServer: (peer) => cluster.slots.has(peer),
      // Off the leader, agents' heartbeats go to it in batches over the peer network.
      relay: new HeartbeatRelay({
        clock,
        send: (nodeIds) => this.#relayToLeader(nodeId, node.leader, nodeIds, random),
      }),
    });
    const monitor = new LivenessMonitor({
      // As on a real server: members heard through Raft, agents through their heartbeats.
      view: livenessWithHeartbeats(
        {
          nodeId,
          isLeader: () => node.isLeader,
          lastHeardMs: (peer) => node.lastHeardFromMs(peer),
        },
        heartbeats,
      ),
      queries: model,
      proposer: proposer(false),
      clock,
      log,
      deadAfterMs: options.deadAfterMs,
    });
    const gate = new CatchUpGate({
      barrier: (timeoutMs) => node.read(() => undefined, { timeoutMs }),
      clock,
      log,
      onCaughtUp: () => agent.start(),
    });
    this.#hosts.set(nodeId, { nodeId, incarnation, agent, gate, monitor, model, hub });
    gate.start();
    monitor.start();
  }

  /**
   * One relayed batch of heartbeats from server `from` to `leader`: a hop there, the leader's hub
   * records it (on the leader's clock: held while it is paused), a hop back. A cut link, a down
   * leader or a lost answer fails the batch after the relay's deadline.
   */
  #relayToLeader(
    from: NodeId,
    leader: NodeId,
    nodeIds: readonly NodeId[],
    random: Random,
  ): Promise<HeartbeatAck> {
    const { scheduler, network } = this.options;
    if (leader === NONE || leader === from) {
      return Promise.reject(new UnavailableError("no leader is known to relay heartbeats to"));
    }
    return new Promise<HeartbeatAck>((resolve, reject) => {
      let settled = false;
      const deadline = scheduler.schedule(RELAY_TIMEOUT_MS, () => {
        settled = true;
        reject(new TimeoutError("the leader did not take the relayed heartbeats in time"));
      });
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        deadline.cancel();
        outcome();
      };
      const hop = (): number => between(random, 1, 5);
      scheduler.schedule(hop(), () => {
        const slot = this.#cluster?.slots.get(leader);
        const host = this.#hosts.get(leader);
        if (network.linkCut(from, leader) || slot?.clock === undefined || host === undefined)
          return;
        slot.clock.fire(() => {
          let answer: () => void;
          try {
            const ack = host.hub.relayed(nodeIds);
            answer = () => resolve(ack);
          } catch (error) {
            answer = () => reject(error as Error);
          }
          scheduler.schedule(hop(), () => {
            if (!network.linkCut(leader, from)) settle(answer);
          });
        });
      });
    });
  }

  /** A node's process is gone: so are its agent, its monitor and its machine's processes. */
  onNodeStopped(nodeId: NodeId, incarnation: number): void {
    const host = this.#hosts.get(nodeId);
    if (host?.incarnation === incarnation) {
      host.gate.close();
      host.hub.close();
      this.#hosts.delete(nodeId);
    }
    this.options.processes.killNode(nodeId);
  }

  /** Replica `nodeId` changed its model: its agent reconciles soon. */
  onModelChanged(nodeId: NodeId, incarnation: number): void {
    const host = this.#hosts.get(nodeId);
    if (host?.incarnation === incarnation && host.gate.open) host.agent.notify();
  }
}

/** An agent logger that keeps its lines (formatted only if a report needs them). */
export function keptLogger(prefix: string, event: (line: () => string) => void): Logger {
  const line = (message: string, fields?: Record<string, unknown>): void =>
    event(() => `${prefix}: ${message}${fields === undefined ? "" : ` ${JSON.stringify(fields)}`}`);
  return { debug: () => undefined, info: line, warn: line };
}
