/**
 * One simulation run: everything derives from one seed (the cluster size, the fault schedule,
 * every delay, loss and crash, every client choice), so `runSimulation({ seed })` returns the
 * same report every time, and a failing seed replays exactly.
 */
import { SeededRandom } from "../common/random.js";
import { MessageType, type Message } from "../raft/types.js";
import { LivenessChecker } from "./checkers/liveness.js";
import { checkLinearizable } from "./checkers/linearizability.js";
import { SafetyChecker } from "./checkers/safety.js";
import type { Violation } from "./checkers/violation.js";
import { SimCluster, type ClusterOptions, type DiskKind, type PlantedBugs } from "./cluster.js";
import { DEFAULT_DISK } from "./disk.js";
import { FAULT_KINDS, Nemesis, type FaultKind, type NemesisOptions } from "./nemesis.js";
import { CALM_NETWORK, SimNetwork, type NetworkFaults, type NetworkStats } from "./network.js";
import { between, chance, fork, pick, TraceHash } from "./rng.js";
import { Scheduler } from "./scheduler.js";
import { DEFAULT_TRACE_TAIL_EVENTS, TraceTail } from "./trace-tail.js";
import { WalDisk } from "./wal-disk.js";
import { Workload, type WorkloadOptions } from "./workload.js";
import { Ballast } from "./ballast.js";
import { Figure8Schedule, type ScheduleName } from "./schedules.js";
import { OrchestratorSimulation, type OrchestratorReport } from "./orchestrator/simulation.js";

/** Options of a run. Everything not given is drawn from the seed. */
export interface SimulationOptions {
  /** The one seed everything random derives from (a 32-bit integer). */
  readonly seed: number;
  /** Virtual length of the fault phase, in ms. Default 12000. */
  readonly durationMs?: number;
  /** Founding voters (3 or 5). Default: drawn from the seed. */
  readonly nodes?: number;
  /** Message-level fault rates during the fault phase. Default: drawn from the seed. */
  readonly network?: NetworkFaults;
  /** Fault kinds to inject. Default: all of them. */
  readonly faults?: readonly FaultKind[];
  /** Membership changes during the run. Default: drawn from the seed (about half the runs). */
  readonly membership?: boolean;
  /** Bugs to plant (to prove the checkers catch them). */
  readonly bugs?: PlantedBugs;
  /** Clients. Default: drawn from the seed (3–6). */
  readonly clients?: number;
  /** Gap between injected faults, in ms. Default 300–1500. */
  readonly faultIntervalMs?: { readonly min: number; readonly max: number };
  /** How long one fault lasts, in ms. Default 200–3000. */
  readonly faultDurationMs?: { readonly min: number; readonly max: number };
  /** Probability that a node crashes right after granting a vote (restarting 1–5 ms later). Default 0. */
  readonly crashAfterVoteRate?: number;
  /** The core's append message size limit, in bytes. Default 1 MiB. */
  readonly maxSizePerMsgBytes?: number;
  /**
   * Ticks between a leader's heartbeats. Default: a real node's (4 for the 10-tick election
   * timeout).
   */
  readonly heartbeatTicks?: number;
  /** A targeted nemesis schedule to run besides the random faults. Default: none. */
  readonly schedule?: ScheduleName;
  /** Events kept for the trace tail of a failure report. Default 50. */
  readonly traceTailEvents?: number;
  /**
   * The nodes' disk: `model` (default) models the log store; `wal` runs the real write-ahead
   * log on a simulated file system with lost unsynced writes, torn writes and (fault kind
   * `bitflip`) flipped bits.
   */
  readonly disk?: DiskKind;
  /**
   * Run the orchestrator: every node applies the cluster state machine (kv and orchestrator) and
   * runs an agent (simulated tasks and VMs) and the leader's liveness monitor, operators submit
   * tasks and manage VMs and workers, and the orchestrator's checkers run too (see
   * `orchestrator/simulation.ts`). Default false.
   */
  readonly orchestrator?: boolean;
  /**
   * With the orchestrator: this many agent-only workers (`blixard agent start`: no Raft log,
   * the agent protocol over the simulated network) beside the servers, cut off from the servers
   * and crashed by their own faults. Default 0.
   */
  readonly agents?: number;
  /**
   * Large state: a background writer grows the state with 1 KiB values on 300 keys of its own,
   * snapshot data crosses links at 100 bytes/ms (a snapshot is in flight for seconds), and
   * fsyncs take 2–20 ms; snapshot sending, pausing and resuming then run under the faults.
   * Default false.
   */
  readonly largeState?: boolean;
}

/** The planted bug `agentOverstaysGrace`: how much longer than the dead-after time agents stay. */
const AGENT_OVERSTAY_MS = 4000;

/** The large-state mode's settings (see {@link SimulationOptions.largeState}). */
const LARGE_STATE = Object.freeze({
  ballast: { keys: 300, valueBytes: 1024, intervalMs: 15 },
  snapshotBytesPerMs: 100,
  disk: { minSyncLatencyMs: 2, maxSyncLatencyMs: 20, tornWrites: true },
});

/** What the nodes' storage went through (WAL disk; zeros with the model disk). */
export interface StorageReport {
  readonly disk: DiskKind;
  /** Bits flipped into durable files. */
  readonly bitFlips: number;
  /** Opens after a crash that recovered the log. */
  readonly recoveries: number;
  /** Of those, opens that cut a torn tail off the last segment. */
  readonly truncatedTails: number;
  /** Opens refused with StorageCorrupt on a disk with a flipped bit: the node stays down. */
  readonly loudFailures: number;
  /** The nodes that failed loudly. */
  readonly loudFailureNodes: readonly number[];
}

/** What a run did and found. */
export interface SimulationReport {
  readonly seed: number;
  /** The parameters drawn for this run. */
  readonly parameters: {
    readonly nodes: number;
    readonly durationMs: number;
    readonly network: NetworkFaults;
    readonly faults: readonly FaultKind[];
    readonly membership: boolean;
    readonly clients: number;
    readonly keys: number;
    readonly snapshotEveryEntries: number;
    readonly bugs: PlantedBugs;
  };
  readonly virtualTimeMs: number;
  readonly events: number;
  readonly operations: {
    readonly total: number;
    readonly completed: number;
    readonly unknown: number;
    readonly reads: number;
    readonly writes: number;
  };
  readonly faultsInjected: Readonly<Record<string, number>>;
  readonly network: NetworkStats;
  /** Terms that had a leader. */
  readonly termsWithLeader: number;
  readonly leaderElectedAfterHealMs: number | undefined;
  readonly linearizabilityInconclusive: boolean;
  readonly violations: readonly Violation[];
  /** What the storage went through. */
  readonly storage: StorageReport;
  /**
   * True if liveness violations were dropped because a node's storage failed loudly (it stays
   * down, so the cluster may lose its quorum); safety and linearizability are still checked.
   */
  readonly livenessExcused: boolean;
  /** What the orchestrator did (runs with `orchestrator` only). */
  readonly orchestrator?: OrchestratorReport;
  /** A fingerprint of everything that happened: equal seeds give equal hashes. */
  readonly traceHash: string;
  /** The command that replays this run exactly. */
  readonly replayCommand: string;
  /**
   * The last events before the run ended (deliveries, faults, leaders, client operations),
   * oldest first; only filled when a violation was found (empty otherwise).
   */
  readonly traceTail: readonly string[];
}

/** The core's default append message size limit. */
const DEFAULT_MAX_SIZE_PER_MESSAGE_BYTES = 1024 * 1024;
/** After the fault phase, clients keep going this long on a healed cluster. */
const POST_HEAL_WORKLOAD_MS = 2000;
/** Liveness bounds after the heal. */
const LEADER_WITHIN_MS = 10_000;
const OPERATIONS_WITHIN_MS = 25_000;
const CONVERGE_WITHIN_MS = 10_000;

/** The command line that replays a run with these options. */
export function replayCommand(options: SimulationOptions): string {
  const parts = [`npm run sim -- --seed ${options.seed}`];
  if (options.durationMs !== undefined) parts.push(`--duration ${options.durationMs}`);
  if (options.nodes !== undefined) parts.push(`--nodes ${options.nodes}`);
  if (options.clients !== undefined) parts.push(`--clients ${options.clients}`);
  if (options.membership !== undefined) parts.push(`--membership ${options.membership}`);
  if (options.faults !== undefined) parts.push(`--faults ${options.faults.join(",") || "none"}`);
  if (options.network !== undefined) {
    const n = options.network;
    parts.push(`--network ${n.minDelayMs},${n.maxDelayMs},${n.lossRate},${n.duplicateRate}`);
  }
  if (options.faultIntervalMs !== undefined) {
    parts.push(`--fault-interval ${options.faultIntervalMs.min},${options.faultIntervalMs.max}`);
  }
  if (options.faultDurationMs !== undefined) {
    parts.push(`--fault-duration ${options.faultDurationMs.min},${options.faultDurationMs.max}`);
  }
  if (options.crashAfterVoteRate !== undefined) {
    parts.push(`--crash-after-vote ${options.crashAfterVoteRate}`);
  }
  if (options.schedule !== undefined) parts.push(`--schedule ${options.schedule}`);
  if (options.disk !== undefined) parts.push(`--disk ${options.disk}`);
  if (options.orchestrator === true) parts.push("--orchestrator");
  if ((options.agents ?? 0) > 0) parts.push(`--agents ${options.agents}`);
  if (options.largeState === true) parts.push("--large-state");
  if (options.heartbeatTicks !== undefined) {
    parts.push(`--heartbeat-ticks ${options.heartbeatTicks}`);
  }
  if (options.maxSizePerMsgBytes !== undefined) {
    parts.push(`--max-message-bytes ${options.maxSizePerMsgBytes}`);
  }
  const bugs = options.bugs ?? {};
  if (bugs.ackBeforeDurable === true) parts.push("--bug ack-before-durable");
  if (bugs.casIgnoresExpectedOnNode !== undefined) {
    parts.push(`--bug cas-ignores-expected:${bugs.casIgnoresExpectedOnNode}`);
  }
  if (bugs.grantAllVotes === true) parts.push("--bug grant-all-votes");
  if (bugs.figure8 === true) parts.push("--bug figure8");
  if (bugs.noUpToDateCheck === true) parts.push("--bug no-up-to-date-check");
  if (bugs.forgetVote === true) parts.push("--bug forget-vote");
  if (bugs.walSkipsDatasync === true) parts.push("--bug wal-skips-datasync");
  if (bugs.leakAbandonedTasks === true) parts.push("--bug leak-abandoned-tasks");
  if (bugs.leakMovedVms === true) parts.push("--bug leak-moved-vms");
  if (bugs.agentOverstaysGrace === true) parts.push("--bug agent-overstays-grace");
  return parts.join(" ");
}

/** The planted transport bug: every rejected (pre-)vote response arrives as granted. */
function grantAllVotes(m: Message): Message {
  if ((m.type === MessageType.VoteResp || m.type === MessageType.PreVoteResp) && m.reject) {
    return { ...m, reject: false };
  }
  return m;
}

/**
 * Runs one simulation and checks it: Raft safety after every event, liveness after the heal,
 * and linearizability of the client history at the end. Never throws for a violation: they are
 * in the report (the run stops at the first safety violation).
 */
export async function runSimulation(options: SimulationOptions): Promise<SimulationReport> {
  const seed = options.seed >>> 0;
  const root = new SeededRandom(seed);
  const paramsRandom = fork(root);
  const trace = new TraceHash();
  const scheduler = new Scheduler();

  const nodes = options.nodes ?? pick(paramsRandom, [3, 3, 5]);
  const durationMs = options.durationMs ?? 12_000;
  const network: NetworkFaults = options.network ?? {
    minDelayMs: 1,
    maxDelayMs: pick(paramsRandom, [5, 20, 60]),
    lossRate: pick(paramsRandom, [0, 0.01, 0.05, 0.1]),
    duplicateRate: pick(paramsRandom, [0, 0.01, 0.05]),
  };
  const faults = options.faults ?? FAULT_KINDS;
  const membership = options.membership ?? chance(paramsRandom, 0.5);
  const clients = options.clients ?? between(paramsRandom, 3, 6);
  const keys = between(paramsRandom, 2, 4);
  const snapshotEveryEntries = between(paramsRandom, 20, 80);
  const bugs = options.bugs ?? {};
  const disk: DiskKind = options.disk ?? "model";
  if (disk !== "wal" && (faults.includes("bitflip") || bugs.walSkipsDatasync === true)) {
    throw new Error(
      "the bitflip fault and the wal-skips-datasync bug need the WAL disk (--disk wal)",
    );
  }
  const withOrchestrator = options.orchestrator === true;
  if (!withOrchestrator && (bugs.leakAbandonedTasks === true || bugs.leakMovedVms === true)) {
    throw new Error("the leak-abandoned-tasks and leak-moved-vms bugs need --orchestrator");
  }
  if ((options.agents ?? 0) > 0 && !withOrchestrator) {
    throw new Error("--agents needs --orchestrator");
  }
  if (bugs.agentOverstaysGrace === true && (options.agents ?? 0) === 0) {
    throw new Error("the agent-overstays-grace bug needs --agents");
  }

  const heartbeatTicks = options.heartbeatTicks;
  const clusterOptions: ClusterOptions = {
    initialVoters: nodes,
    tickIntervalMs: 100,
    electionTicks: 10,
    ...(heartbeatTicks === undefined ? {} : { heartbeatTicks }),
    maxSizePerMsgBytes: options.maxSizePerMsgBytes ?? DEFAULT_MAX_SIZE_PER_MESSAGE_BYTES,
    operationTimeoutMs: 2000,
    snapshotEveryEntries,
    snapshotTrailingEntries: between(paramsRandom, 5, 20),
    disk: options.largeState === true ? LARGE_STATE.disk : DEFAULT_DISK,
    diskKind: disk,
    clientDelayMs: { min: 1, max: 5 },
    bugs,
  };
  const nemesisOptions: NemesisOptions = {
    network,
    calmNetwork: CALM_NETWORK,
    faultIntervalMs: options.faultIntervalMs ?? { min: 300, max: 1500 },
    faultDurationMs: options.faultDurationMs ?? { min: 200, max: 3000 },
    crashAfterVoteRate: options.crashAfterVoteRate ?? 0,
    kinds: faults,
    membershipChanges: membership,
    minVoters: 3,
    maxVoters: 5,
  };
  const workloadOptions: WorkloadOptions = {
    // With the orchestrator, fewer kv clients leave the CPU to the agents and operators.
    clients: withOrchestrator ? Math.min(clients, 2) : clients,
    keys,
    thinkMs: { min: 0, max: 50 },
    readRate: 0.35,
    casRate: 0.4,
    readThroughLogRate: 0.3,
    attemptTimeoutMs: 2500,
    giveUpAfterMs: 5000,
    backoffMs: { min: 20, max: 150 },
  };

  const tail = new TraceTail(options.traceTailEvents ?? DEFAULT_TRACE_TAIL_EVENTS);
  const simNetwork = new SimNetwork(scheduler, fork(root), CALM_NETWORK, trace);
  simNetwork.tail = tail;
  if (options.largeState === true) simNetwork.snapshotBytesPerMs = LARGE_STATE.snapshotBytesPerMs;
  if (bugs.grantAllVotes === true) simNetwork.interceptor = grantAllVotes;
  const safety = new SafetyChecker(
    () => scheduler.now(),
    (id, term) => tail.add(scheduler.now(), { kind: "leader", subject: { id, term } }),
  );
  const liveness = new LivenessChecker(
    { leaderWithinMs: LEADER_WITHIN_MS, operationsWithinMs: OPERATIONS_WITHIN_MS },
    () => scheduler.now(),
  );
  // Created after every other component (so their random streams are those of a kv-only run);
  // the cluster's observer reaches it only once nodes start.
  let orchestration: OrchestratorSimulation | undefined;
  const failed = (): boolean => safety.failed || (orchestration?.failed ?? false);
  const cluster = new SimCluster(scheduler, fork(root), simNetwork, clusterOptions, {
    onApply: (id, incarnation, record) => safety.onApply(id, incarnation, record),
    onModelChanged: (id, incarnation, index, model) =>
      orchestration?.onModelChanged(id, incarnation, index, model),
    onNodeStarted: (slot) => orchestration?.onNodeStarted(slot),
    onNodeStopped: (id, incarnation) => orchestration?.onNodeStopped(id, incarnation),
    onFatal: (id, error) => safety.onFatal(id, error),
    onStorageOpened: (id, recovery, afterCrash) => {
      if (!afterCrash) return;
      const cut = recovery.truncated === undefined ? "" : ` cut ${recovery.truncated.offsetBytes}`;
      const line = `storage-recovered ${id} last ${recovery.lastIndex}${cut}`;
      trace.add(`${scheduler.now()} ms: ${line}`);
      tail.add(scheduler.now(), { kind: "fault", subject: line });
    },
    onStorageCorrupt: (id, error, expected) => {
      const line = `storage-corrupt ${id}${expected ? "" : " (no bit was flipped)"}: ${error.message}`;
      trace.add(`${scheduler.now()} ms: ${line}`);
      tail.add(scheduler.now(), { kind: "fault", subject: line });
      if (expected) loudFailureNodes.push(id);
      else safety.onStorageCorrupt(id, error);
    },
  });
  const loudFailureNodes: number[] = [];
  const nemesis = new Nemesis(scheduler, fork(root), cluster, simNetwork, nemesisOptions, trace);
  const workload = new Workload(scheduler, fork(root), cluster, workloadOptions, trace);
  nemesis.tail = tail;
  const schedule =
    options.schedule === "figure8"
      ? new Figure8Schedule(scheduler, fork(root), cluster, simNetwork, (kind, detail) =>
          nemesis.note(kind, detail),
        )
      : undefined;
  workload.tail = tail;
  if (withOrchestrator) {
    orchestration = new OrchestratorSimulation({
      scheduler,
      random: fork(root),
      network: simNetwork,
      trace,
      leakAbandonedTasks: bugs.leakAbandonedTasks === true,
      leakMovedVms: bugs.leakMovedVms === true,
      agents: options.agents ?? 0,
      agentExtraGraceMs: bugs.agentOverstaysGrace === true ? AGENT_OVERSTAY_MS : 0,
    });
    orchestration.attach(cluster);
  }
  scheduler.afterEvent = () => {
    safety.observe(cluster);
    liveness.observe(cluster);
    schedule?.observe();
  };

  // Phase 1: faults.
  cluster.bootstrap();
  const workloadEndMs = durationMs + POST_HEAL_WORKLOAD_MS;
  workload.start(() => scheduler.now() >= workloadEndMs || failed());
  if (options.largeState === true) {
    new Ballast(scheduler, cluster, LARGE_STATE.ballast).start(
      () => scheduler.now() >= durationMs || failed(),
    );
  }
  orchestration?.start(() => scheduler.now() >= workloadEndMs || failed());
  nemesis.start();
  await scheduler.runUntil(() => scheduler.now() >= durationMs || failed());

  // Phase 2: heal; everything pending must finish, and the replicas must converge.
  const violations: Violation[] = [];
  if (!failed()) {
    schedule?.stop();
    nemesis.healAll();
    liveness.onHealed();
    orchestration?.onHealed();
    await scheduler.runUntil(
      () => workload.done || failed() || scheduler.now() >= liveness.operationsDeadlineMs,
    );
    if (!failed()) {
      liveness.finish(workload.inProgress());
      const convergeByMs = scheduler.now() + CONVERGE_WITHIN_MS;
      await scheduler.runUntil(
        () => LivenessChecker.converged(cluster) || failed() || scheduler.now() >= convergeByMs,
      );
      if (!failed()) liveness.checkConvergence(cluster);
    }
    // The orchestrator settles (every task ended, every agent reconciled) within its bound.
    const settling = orchestration;
    if (settling !== undefined && !failed()) {
      await scheduler.runUntil(
        () => settling.concluded || safety.failed || scheduler.now() > settling.settleDeadlineMs,
      );
    }
  }
  // A node whose storage failed loudly stays down: the cluster may lose its quorum for good.
  const livenessExcused = loudFailureNodes.length > 0;
  violations.push(
    ...safety.violations,
    ...liveness.violations.filter((v) => !livenessExcused || !v.property.startsWith("liveness-")),
    ...(orchestration?.violations() ?? []).filter(
      (v) => !livenessExcused || v.property !== "orchestrator-liveness",
    ),
  );
  // One snapshot in flight per follower and term (etcd's StateSnapshot + ReportSnapshot).
  if (simNetwork.stats.maxSnapshotsInFlightPerLink > 1) {
    violations.push({
      property: "snapshot-flight",
      message: `${simNetwork.stats.maxSnapshotsInFlightPerLink} snapshots were in flight to one follower in one term at once`,
      atMs: scheduler.now(),
    });
  }
  for (const anomaly of workload.anomalies) {
    violations.push({ property: "client-anomaly", message: anomaly, atMs: scheduler.now() });
  }

  // Phase 3: the history must be linearizable.
  const linearizability = checkLinearizable(workload.history);
  if (!linearizability.ok && !linearizability.inconclusive) {
    violations.push({
      property: "linearizability",
      message: `history of key ${linearizability.key ?? "?"} is not linearizable\n${linearizability.explanation ?? ""}`,
      atMs: scheduler.now(),
    });
  }

  const history = workload.history;
  const unknown = history.filter((op) => op.output === undefined).length;
  return {
    seed,
    parameters: {
      nodes,
      durationMs,
      network,
      faults,
      membership,
      clients: workloadOptions.clients,
      keys,
      snapshotEveryEntries,
      bugs,
    },
    virtualTimeMs: scheduler.now(),
    events: scheduler.eventCount,
    operations: {
      total: history.length,
      completed: history.length - unknown,
      unknown,
      reads: history.filter((op) => op.input.kind === "get").length,
      writes: history.filter((op) => op.input.kind !== "get").length,
    },
    faultsInjected: { ...nemesis.counts },
    network: { ...simNetwork.stats },
    termsWithLeader: safety.termsWithLeader,
    leaderElectedAfterHealMs: liveness.leaderElectedAfterMs,
    linearizabilityInconclusive: linearizability.inconclusive,
    violations,
    storage: storageReport(disk, cluster, loudFailureNodes),
    livenessExcused,
    ...(orchestration === undefined ? {} : { orchestrator: orchestration.report() }),
    traceHash: trace.hex(),
    replayCommand: replayCommand(options),
    traceTail:
      violations.length > 0 ? [...tail.lines(), ...(orchestration?.tailLines() ?? [])] : [],
  };
}

function storageReport(
  disk: DiskKind,
  cluster: SimCluster,
  loudFailureNodes: readonly number[],
): StorageReport {
  let bitFlips = 0;
  let recoveries = 0;
  let truncatedTails = 0;
  for (const slot of cluster.slots.values()) {
    if (!(slot.disk instanceof WalDisk)) continue;
    bitFlips += slot.disk.stats.bitFlips;
    recoveries += slot.disk.stats.recoveries;
    truncatedTails += slot.disk.stats.truncatedTails;
  }
  return {
    disk,
    bitFlips,
    recoveries,
    truncatedTails,
    loudFailures: loudFailureNodes.length,
    loudFailureNodes: [...loudFailureNodes],
  };
}
