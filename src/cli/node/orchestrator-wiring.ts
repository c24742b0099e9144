/**
 * The orchestrator of a real node: the API service over the RaftNode and the cluster state
 * machine, the agent with the real drivers, and the leader's liveness and drain deadline
 * monitors.
 *
 * The agent reports through the orchestrator service on this node, whose command port proposes
 * on this node: the runtime forwards a follower's proposal to the leader over the peer transport
 * (as for every write), so an agent never needs to know where the leader is. Task and
 * VM processes are recorded in `<dataDir>/orchestrator/processes`; an agent that starts after a
 * crash kills what the previous one left running before it reconciles, so nothing runs twice.
 *
 * It also serves agent-only workers (`blixard agent start`): the agent hub answers their
 * assignment polls from this node's applied state and, on the leader, takes their heartbeats into
 * the table the liveness monitor reads beside Raft's last-heard times. With `--no-worker` the
 * node is a server only: no agent here, never registered as a worker.
 */
import { HeartbeatRelay, type RelaySend } from "../../api/agents/heartbeat-relay.js";
import type { VmSettings } from "./vm-settings.js";
import type { LocalDrivers, WorkloadSettings } from "./local-drivers.js";
import { join } from "node:path";
import type { MemberDirectory } from "../../api/member-directory.js";
import { AgentHub } from "../../api/agents/agent-hub.js";
import type { ChangeFeed } from "../../api/events/change-feed.js";
import {
  RaftOrchestratorService,
  type OrchestratorNodePort,
} from "../../api/raft-orchestrator-service.js";
import type { Clock } from "../../common/clock.js";
import { UnavailableError } from "../../common/errors.js";
import type { CommandPort } from "../../node/command-port.js";
import type { RaftNode } from "../../node/raft-node.js";
import { BATCH_COMMANDS_PROTOCOL_VERSION } from "../../node/protocol-gate.js";
import { NONE } from "../../raft/types.js";
import { Agent } from "../../orchestrator/agent/agent.js";
import { CatchUpGate } from "../../orchestrator/agent/catch-up-gate.js";
import type { Proposer } from "../../orchestrator/agent/ports.js";
import type { DetectedHost } from "../../orchestrator/host/index.js";
import { DEFAULT_WORKER_DEAD_AFTER_MS, LivenessMonitor } from "../../orchestrator/liveness.js";
import { HeartbeatTable, livenessWithHeartbeats } from "../../orchestrator/heartbeats.js";
import { DrainDeadlineMonitor } from "../../orchestrator/drain-deadlines.js";
import { readVmLog } from "../../orchestrator/drivers/vm-log-reader.js";
import { LiveOutputHub } from "../../orchestrator/drivers/live-output.js";
import { DEFAULT_TASK_OUTPUT_CAP_BYTES } from "../../orchestrator/drivers/limits.js";
import type { ClusterStateMachine } from "../../statemachine/cluster/cluster-state-machine.js";
import type { JsonLogger } from "../log.js";

/** Options of {@link startOrchestrator}. */
export interface OrchestratorWiringOptions {
  /**
   * Sends a batch of agents' heartbeats to the leader (see `api/agents/heartbeat-relay.ts`);
   * absent: a follower answers NOT_LEADER and each heartbeat is forwarded on its own.
   */
  readonly relayHeartbeats?: RelaySend;
  /** The node's id, leadership and peers' last-heard times (the liveness monitor's view). */
  readonly node: OrchestratorRuntime;
  /** The node's command port: the service's and the agent's writes and reads. */
  readonly commands: CommandPort;
  readonly machine: ClusterStateMachine;
  /** The node's change feed: which nodes' assignments each applied entry touched (agent polls). */
  readonly feed: ChangeFeed;
  /** Subscribes to "entries were applied" (see `ApplyNotifier`). */
  readonly onApplied: (listener: () => void) => () => void;
  readonly clock: Clock;
  readonly directory: MemberDirectory;
  readonly dataDir: string;
  /** What this host offers as a worker (needed unless `worker` is false). */
  readonly host?: DetectedHost;
  readonly workloads: WorkloadSettings;
  /**
   * False (`--no-worker`): a server only, no agent in this process and never registered as a
   * worker. Default true.
   */
  readonly worker?: boolean;
  readonly log: JsonLogger;
  /** Mark a silent worker offline after this long (default: the monitor's, 10 s). */
  readonly workerDeadAfterMs?: number;
  /** qemu VM settings; default: images from anywhere, readiness not awaited. */
  readonly vm?: VmSettings;
}

/** What the orchestrator needs of the runtime itself (a `RaftNode`). */
export type OrchestratorRuntime = Pick<
  RaftNode,
  "id" | "isLeader" | "leader" | "lastHeardFromMs" | "clusterProtocolVersion"
>;

export type { WorkloadSettings };

/** The orchestrator parts of a running node. */
export interface RunningOrchestrator {
  readonly service: RaftOrchestratorService;
  /** The protocol of agent-only workers: assignment polls and heartbeats (see `api/agents/`). */
  readonly agents: AgentHub;
  /** Starts the agent and the liveness monitor (once the node runs). */
  start(): Promise<void>;
  /** Stops the monitor and the agent, and the work the agent runs. */
  close(): Promise<void>;
}

/** Builds the orchestrator service now (the API needs it) and the agent for {@link RunningOrchestrator.start}. */
export function createOrchestrator(options: OrchestratorWiringOptions): RunningOrchestrator {
  const { node, machine, clock, log } = options;
  const orchestratorDir = join(options.dataDir, "orchestrator");
  const port: OrchestratorNodePort = {
    nodeId: node.id,
    queries: machine.orchestrator,
    onApplied: options.onApplied,
  };
  // The output of the tasks running here, for `task logs --follow`.
  const liveOutput = new LiveOutputHub(DEFAULT_TASK_OUTPUT_CAP_BYTES);
  const vmLogDir = join(orchestratorDir, "vm-logs");
  const service = new RaftOrchestratorService({
    node: port,
    commands: options.commands,
    clock,
    directory: options.directory,
    readVmLog: (name, request) => readVmLog(vmLogDir, name, request),
    vmLogDir,
    liveOutput,
    // Through the qemu driver of this node's worker, once it has started.
    execInVm: (name, request) => {
      const qemu = drivers?.vmDrivers.get("qemu");
      if (qemu?.exec === undefined) {
        return Promise.reject(
          new UnavailableError("this node runs no VMs (it is not a worker, or not started yet)"),
        );
      }
      return qemu.exec(name, request);
    },
    // Batches only once every member applies them (a rolling upgrade must not split replicas).
    acceptsBatchCommands: () => node.clusterProtocolVersion >= BATCH_COMMANDS_PROTOCOL_VERSION,
  });

  const heartbeats = new HeartbeatTable();
  const workerDeadAfterMs = options.workerDeadAfterMs ?? DEFAULT_WORKER_DEAD_AFTER_MS;
  const agents = new AgentHub({
    ...(options.relayHeartbeats === undefined
      ? {}
      : { relay: new HeartbeatRelay({ clock, send: options.relayHeartbeats }) }),
    feed: options.feed,
    queries: machine.orchestrator,
    clock,
    leadership: {
      nodeId: node.id,
      isLeader: () => node.isLeader,
      leaderHint: () => {
        const leader = node.leader;
        if (leader === NONE) return undefined;
        const address = options.directory.get(leader)?.apiAddress;
        return address === undefined ? { id: leader } : { id: leader, address };
      },
    },
    heartbeats,
    workerDeadAfterMs,
    isServer: (nodeId) => options.directory.get(nodeId) !== undefined,
  });

  let agent: Agent | undefined;
  let monitor: LivenessMonitor | undefined;
  let drainDeadlines: DrainDeadlineMonitor | undefined;
  let unsubscribe: (() => void) | undefined;
  let gate: CatchUpGate | undefined;
  let drivers: LocalDrivers | undefined;
  const startMonitors = (): void => {
    monitor = new LivenessMonitor({
      // Servers are heard through Raft, agents through their heartbeats: one rule for both.
      view: livenessWithHeartbeats(
        {
          nodeId: node.id,
          isLeader: () => node.isLeader,
          lastHeardMs: (peer) => node.lastHeardFromMs(peer),
        },
        heartbeats,
      ),
      queries: machine.orchestrator,
      proposer: {
        // Marking a worker offline is this leader's decision: never forwarded to the next.
        propose: (command) => service.report(command, { leaderOnly: true }),
      },
      clock,
      log: log.child({ component: "liveness" }),
      deadAfterMs: workerDeadAfterMs,
    });
    monitor.start();
    drainDeadlines = new DrainDeadlineMonitor({
      isLeader: () => node.isLeader,
      queries: machine.orchestrator,
      proposer: {
        // Like marking a worker offline: this leader's decision, never forwarded.
        propose: (command) => service.report(command, { leaderOnly: true }),
      },
      clock,
      log: log.child({ component: "drain" }),
    });
    drainDeadlines.start();
  };
  return {
    service,
    agents,
    async start(): Promise<void> {
      startMonitors();
      const host = options.host;
      if (options.worker === false || host === undefined) {
        log.info("orchestrator started without a worker (--no-worker): this server runs no work");
        return;
      }
      // Checked as the report route checks it, then proposed on this node (forwarded to the
      // leader by the runtime); the reporter retries what the cluster cannot take yet. A batch
      // resolves with its `items`, as the route answers them.
      const proposer: Proposer = {
        propose: (command) => service.report(command),
      };
      // Loaded here, once the API serves: the drivers (qemu, processes, cgroups) are dozens of
      // modules that nothing needs before this node takes work.
      const { openLocalDrivers } = await import("./local-drivers.js");
      drivers = await openLocalDrivers({
        nodeId: node.id,
        dataDir: options.dataDir,
        clock,
        host,
        workloads: options.workloads,
        ...(options.vm === undefined ? {} : { vm: options.vm }),
        liveOutput,
        log,
      });
      const { features } = drivers;
      const agentLog = log.child({ component: "agent" });
      agent = new Agent({
        nodeId: node.id,
        clock,
        queries: machine.orchestrator,
        proposer,
        runTask: drivers.runTask,
        vmDrivers: drivers.vmDrivers,
        capacity: host.capacity,
        features,
        log: agentLog,
      });
      const liveAgent = agent;
      // Not before this node has caught up with the cluster: replaying its own log after a
      // restart, it may still show work placed here that the cluster has moved elsewhere.
      gate = new CatchUpGate({
        barrier: (timeoutMs) => options.commands.barrier("orchestrator", { timeoutMs }),
        clock,
        log: agentLog,
        onCaughtUp: () => {
          unsubscribe = options.onApplied(() => liveAgent.notify());
          liveAgent.start();
        },
      });
      gate.start();
      log.info("orchestrator started", {
        capacity: host.capacity,
        features,
        kvm: host.probe.kvmReason,
      });
    },
    async close(): Promise<void> {
      agents.close();
      monitor?.close();
      drainDeadlines?.close();
      gate?.close();
      unsubscribe?.();
      await agent?.close();
      await drivers?.close();
    },
  };
}
