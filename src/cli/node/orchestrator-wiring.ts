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
 */
import type { VmSettings } from "./vm-settings.js";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { MemberDirectory } from "../../api/member-directory.js";
import { AgentHub } from "../../api/agents/agent-hub.js";
import type { ChangeFeed } from "../../api/events/change-feed.js";
import {
  RaftOrchestratorService,
  type OrchestratorNodePort,
} from "../../api/raft-orchestrator-service.js";
import type { Clock } from "../../common/clock.js";
import { PermissionDeniedError } from "../../common/errors.js";
import type { CommandPort } from "../../node/command-port.js";
import type { RaftNode } from "../../node/raft-node.js";
import { NONE } from "../../raft/types.js";
import { Agent } from "../../orchestrator/agent/agent.js";
import type { Proposer } from "../../orchestrator/agent/ports.js";
import {
  ProcessDriver,
  ProcessRegistry,
  QemuDriver,
  runTask,
  type VmDriverPort,
} from "../../orchestrator/drivers/index.js";
import type { DetectedHost } from "../../orchestrator/host/index.js";
import { detectCgroups } from "../../orchestrator/confine/cgroups.js";
import { TaskConfinement, type TaskSandbox } from "../../orchestrator/confine/task-sandbox.js";
import type { TaskUser } from "../../orchestrator/confine/task-user.js";
import { taskBaseEnv } from "../../orchestrator/confine/task-env.js";
import type { TaskRun } from "../../orchestrator/drivers/task-runner.js";
import { DEFAULT_WORKER_DEAD_AFTER_MS, LivenessMonitor } from "../../orchestrator/liveness.js";
import { HeartbeatTable, livenessWithHeartbeats } from "../../orchestrator/heartbeats.js";
import { DrainDeadlineMonitor } from "../../orchestrator/drain-deadlines.js";
import { readVmLog } from "../../orchestrator/drivers/vm-log-reader.js";
import { LiveOutputHub } from "../../orchestrator/drivers/live-output.js";
import { DEFAULT_TASK_OUTPUT_CAP_BYTES } from "../../orchestrator/drivers/limits.js";
import type { ClusterStateMachine } from "../../statemachine/cluster/cluster-state-machine.js";
import { CGROUPS_FEATURE, RAW_EXEC_FEATURE } from "../../statemachine/orchestrator/features.js";
import { syntheticResult } from "../../statemachine/orchestrator/synthetic-result.js";
import type { VmDriver } from "../../statemachine/orchestrator/types.js";
import type { JsonLogger } from "../log.js";

/** Options of {@link startOrchestrator}. */
export interface OrchestratorWiringOptions {
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
  readonly host: DetectedHost;
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
export type OrchestratorRuntime = Pick<RaftNode, "id" | "isLeader" | "leader" | "lastHeardFromMs">;

/** Whether this node runs raw work, and as whom. */
export type WorkloadSettings =
  | { readonly rawExec: false }
  | {
      /** `--enable-raw-exec`: tasks and process VMs run here. */
      readonly rawExec: true;
      /** The user they run as (resolved at start, see `confine/task-user.ts`). */
      readonly taskUser: TaskUser;
    };

/** What a node without `--enable-raw-exec` answers when raw work reaches it anyway. */
const RAW_EXEC_DISABLED =
  "raw exec is disabled on this node: start it with --enable-raw-exec to run tasks and process VMs";

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
  });

  const heartbeats = new HeartbeatTable();
  const workerDeadAfterMs = options.workerDeadAfterMs ?? DEFAULT_WORKER_DEAD_AFTER_MS;
  const agents = new AgentHub({
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
  });

  let agent: Agent | undefined;
  let monitor: LivenessMonitor | undefined;
  let drainDeadlines: DrainDeadlineMonitor | undefined;
  let unsubscribe: (() => void) | undefined;
  let confinement: TaskConfinement | undefined;
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
      if (options.worker === false) {
        log.info("orchestrator started without a worker (--no-worker): this server runs no work");
        return;
      }
      const registry = new ProcessRegistry(join(orchestratorDir, "processes"));
      await mkdir(registry.dir, { recursive: true, mode: 0o700 });
      const reaped = await registry.reapOrphans();
      if (reaped.length > 0) {
        log.warn("stopped processes a previous agent left running", {
          processes: reaped.map((r) => ({
            key: r.record.key,
            pid: r.record.pid,
            action: r.action,
          })),
        });
      }
      // Checked as the report route checks it, then proposed on this node (forwarded to the
      // leader by the runtime); the reporter retries what the cluster cannot take yet.
      const proposer: Proposer = {
        propose: (command) => service.report(command),
      };
      const workDir = join(orchestratorDir, "work");
      await mkdir(workDir, { recursive: true, mode: 0o700 });
      const { workloads } = options;
      const features = [...options.host.features];
      if (workloads.rawExec) {
        const cgroups = await detectCgroups({ nodeName: `node-${node.id}-${process.pid}` });
        confinement = await TaskConfinement.create(workloads.taskUser, cgroups);
        features.push(RAW_EXEC_FEATURE);
        if (cgroups.enforced) features.push(CGROUPS_FEATURE);
        log.warn("raw exec is enabled: this node runs tasks and process VMs as host processes", {
          taskUser: workloads.taskUser.name,
          uid: workloads.taskUser.uid,
          limits: cgroups.enforced
            ? `enforced (cgroup v${cgroups.layout.version})`
            : `NOT enforced: ${cgroups.reason}`,
        });
      }
      const vmDrivers = new Map<VmDriver, VmDriverPort>([
        [
          "process",
          workloads.rawExec
            ? new ProcessDriver({
                clock,
                registry,
                logDir: join(orchestratorDir, "vm-logs"),
                workDir: await (confinement as TaskConfinement).sharedDir("vms"),
                baseEnv: taskBaseEnv({
                  dir: join((confinement as TaskConfinement).root, "vms"),
                  userName: workloads.taskUser.name,
                }),
                ...(workloads.taskUser.switches
                  ? { user: { uid: workloads.taskUser.uid, gid: workloads.taskUser.gid } }
                  : {}),
              })
            : refusingDriver(),
        ],
        [
          "qemu",
          new QemuDriver({
            clock,
            registry,
            // KVM only where the host probe booted a guest under it (see kvm-boot-probe.ts).
            accel: options.host.probe.kvm ? "kvm" : "tcg",
            ...(options.vm?.imageDir === undefined ? {} : { imageDir: options.vm.imageDir }),
            ...(options.vm === undefined ? {} : { readyTimeoutMs: options.vm.readyTimeoutMs }),
            logDir: join(orchestratorDir, "vm-logs"),
            runDir: join(orchestratorDir, "run"),
            // Each VM's overlay over its read-only base image, kept until the VM is deleted.
            diskDir: join(orchestratorDir, "disks"),
          }),
        ],
      ]);
      const agentLog = log.child({ component: "agent" });
      agent = new Agent({
        nodeId: node.id,
        clock,
        queries: machine.orchestrator,
        proposer,
        runTask: async (spec, run) => {
          // Defence in depth: the scheduler never places raw work here without raw_exec.
          if (confinement === undefined) return refusedRun(RAW_EXEC_DISABLED);
          const name = `task-${run.taskId}-${run.attempt}`;
          let sandbox: TaskSandbox;
          try {
            sandbox = await confinement.prepare(name, spec.resources);
          } catch (error) {
            return refusedRun(`could not prepare the task's sandbox: ${(error as Error).message}`);
          }
          const live = liveOutput.open(run.taskId, run.attempt);
          try {
            return await runTask(spec, {
              clock,
              defaultCwd: sandbox.dir,
              signal: run.signal,
              onStarted: () => run.onStarted(),
              registration: { registry, key: `task-${crypto.randomUUID()}` },
              sandbox,
              onOutput: (stream, chunk) => live.push(stream, chunk),
            });
          } finally {
            live.end();
            await sandbox.release();
          }
        },
        vmDrivers,
        capacity: options.host.capacity,
        features,
        log: agentLog,
      });
      const liveAgent = agent;
      unsubscribe = options.onApplied(() => liveAgent.notify());
      agent.start();
      log.info("orchestrator started", {
        capacity: options.host.capacity,
        features,
        kvm: options.host.probe.kvmReason,
      });
    },
    async close(): Promise<void> {
      agents.close();
      monitor?.close();
      drainDeadlines?.close();
      unsubscribe?.();
      await agent?.close();
      await confinement?.close();
    },
  };
}

/** A failed run that never started (raw exec off, no sandbox). */
function refusedRun(error: string): TaskRun {
  return {
    outcome: "failed",
    result: syntheticResult(error),
  };
}

/** The process driver of a node without raw exec: every start is refused, saying why. */
function refusingDriver(): VmDriverPort {
  return {
    kind: "process",
    start: () => {
      throw new PermissionDeniedError(RAW_EXEC_DISABLED);
    },
  };
}

/** The peers the leader's progress tracker heard from since its last check-quorum reset. */
