/**
 * What every Blixard node runs, whatever platform it runs on: the replicated state machine stack
 * (the {@link ClusterStateMachine} with client sessions, kv, orchestrator model and ACL state;
 * the change feed that records what it applies; the apply notifier that wakes agents and waits),
 * the {@link RaftNode} that drives it with a real node's settings, and the coordination layer
 * (the leader's lessor and the lease/txn service).
 *
 * A real node (`src/cli/node/compose.ts`) and every simulated node (`src/sim/cluster.ts`) are
 * built by {@link composeNode}: only the platform pieces differ (clock, randomness, log store,
 * peer transport, logger, how a callback runs later), so the simulator runs what ships. The
 * simulator also scales some runtime limits down to what a short run exercises ({@link
 * NodeTuning}) and may wrap the stack to observe every apply ({@link NodeCompositionOptions.instrument}).
 */
import type { Clock } from "../common/clock.js";
import { SILENT_LOGGER, type Logger } from "../common/logger.js";
import type { Random } from "../common/random.js";
import { CommandPort, type CommandMetrics } from "../node/command-port.js";
import type { Transport } from "../node/ports.js";
import { RaftNode, type RaftNodeOptions } from "../node/raft-node.js";
import { RAFT_DEFAULTS } from "../raft/config.js";
import type { SafetyRules } from "../raft/rules.js";
import type { NodeId } from "../raft/types.js";
import {
  ClusterStateMachine,
  type ClusterResultValue,
} from "../statemachine/cluster/cluster-state-machine.js";
import type { CommandResult } from "../statemachine/command-result.js";
import type { StateMachine } from "../statemachine/state-machine.js";
import type { LogStore } from "../storage/log-store.js";
import { ApplyNotifier, type Defer } from "./apply-notifier.js";
import { createCoordination, type CoordinationWiring } from "./coordination-wiring.js";
import { ChangeFeed } from "./events/change-feed.js";
import { memberApiUrl, type MemberDirectory } from "./member-directory.js";
import { defaultHeartbeatTicks } from "./heartbeat-ticks.js";

/** What a node's state machine answers a command with. */
export type NodeResult = CommandResult<ClusterResultValue>;

/** The platform a node runs on: real in `blixard node start`, simulated in the simulator. */
export interface NodePlatform {
  readonly clock: Clock;
  /** The runtime's seeded random source (election jitter). */
  readonly random: Random;
  readonly logStore: LogStore;
  readonly transport: Transport;
  /** Runs a callback on a later turn (a real node: `setImmediate`). */
  readonly defer: Defer;
  /** The raft runtime's logger. Default: silent. */
  readonly raftLogger?: Logger;
  /** The lessor's logger. Default: silent. */
  readonly lessorLogger?: Logger;
  /**
   * The time a command carries (`proposedAtMs`), in ms since the Unix epoch. Default: the
   * clock's, in whole ms (the simulator's clock starts at 0, so it adds an epoch).
   */
  readonly commandTimeMs?: () => number;
}

/** Raft timing of a node; the defaults are the runtime's and the core's. */
export interface NodeTiming {
  /** Milliseconds per raft tick. Default: the runtime's (100). */
  readonly tickIntervalMs?: number;
  /** Election timeout in ticks, randomized in [n, 2n). Default: the core's (10). */
  readonly electionTicks?: number;
  /** Ticks between a leader's heartbeats. Default: {@link defaultHeartbeatTicks} of the election ticks. */
  readonly heartbeatTicks?: number;
  /** Take a snapshot every this many applied entries. Default: the runtime's. */
  readonly snapshotEveryEntries?: number;
}

/**
 * Runtime limits the simulator scales down so that a few simulated seconds split batches, compact
 * the log and promote learners, and the core's rules with planted bugs (simulator only). A real
 * node leaves every one at its default.
 */
export interface NodeTuning {
  /** The core's limit on one append message, in bytes. */
  readonly maxSizePerMsgBytes?: number;
  readonly operationTimeoutMs?: number;
  readonly snapshotTrailingEntries?: number;
  readonly promotionMaxLagEntries?: number;
  /** PLANTED BUGS (simulator only): the core's safety rules (see `raft/planted-bugs.ts`). */
  readonly rules?: SafetyRules;
  /** PLANTED BUG (simulator only): see `LessorOptions.plantedKeepDeadlinesAcrossTerms`. */
  readonly plantedKeepDeadlinesAcrossTerms?: boolean;
}

/** Options of {@link composeNode}. */
export interface NodeCompositionOptions {
  readonly id: NodeId;
  readonly platform: NodePlatform;
  readonly timing?: NodeTiming;
  readonly tuning?: NodeTuning;
  /** Where the command port finds the leader's API address for NOT_LEADER hints. */
  readonly directory?: MemberDirectory;
  /** Where the command port reports proposals and reads by namespace. Default: nowhere. */
  readonly metrics?: CommandMetrics;
  /** See {@link RaftNodeOptions.onFatal}. */
  readonly onFatal?: RaftNodeOptions<NodeResult>["onFatal"];
  /**
   * See {@link RaftNodeOptions.protocolGate}: the cluster's protocol gate (a real node's starts
   * closed until every member speaks protocol 2). Default: open (every node runs this release).
   */
  readonly protocolGate?: RaftNodeOptions<NodeResult>["protocolGate"];
  /** See {@link RaftNodeOptions.onConfChange}. */
  readonly onConfChange?: RaftNodeOptions<NodeResult>["onConfChange"];
  /** See {@link RaftNodeOptions.onRaftStateChange}. */
  readonly onRaftStateChange?: RaftNodeOptions<NodeResult>["onRaftStateChange"];
  /**
   * Simulator only: wraps the whole stack before the runtime gets it, to observe every apply
   * (and plant state machine bugs). `machine` is the stack's cluster state machine.
   */
  readonly instrument?: (
    stack: StateMachine<NodeResult>,
    machine: ClusterStateMachine,
  ) => StateMachine<NodeResult>;
}

/** A composed node: call `node.start()`, then `coordination.start()`; stop in reverse. */
export interface ComposedNode {
  /** The replicated state: kv, orchestrator model, ACL, sessions (read outside the log). */
  readonly machine: ClusterStateMachine;
  /** Every applied change, by raft index (the event stream and kv watches read it). */
  readonly feed: ChangeFeed;
  /** Subscribe to "entries were applied" (agents, waits). */
  readonly applied: ApplyNotifier<NodeResult>;
  readonly node: RaftNode<NodeResult>;
  /**
   * The node's one command port: every service's, the agent's and the lessor's commands and
   * reads (envelope, session, typed errors, leader address, metrics by namespace).
   */
  readonly commands: CommandPort;
  /** The leader's lessor and the lease/txn service. */
  readonly coordination: CoordinationWiring;
}

/**
 * Builds a node's state machine stack, runtime and coordination on `options.platform`. Nothing
 * runs until `node.start()`. Throws `InvalidArgumentError` for an invalid raft setting (e.g. a
 * heartbeat interval not below the election timeout).
 */
export function composeNode(options: NodeCompositionOptions): ComposedNode {
  const { platform, timing = {}, tuning = {} } = options;
  // One Raft group holds the kv store, the orchestrator's model and the ACL state (commands
  // are namespaced by their first byte; see statemachine/cluster/namespace.ts).
  const machine = new ClusterStateMachine();
  // The feed asks for the applied index only after a snapshot was installed (never while the
  // node is being built), so the node it names is always assigned by then.
  let appliedIndex = (): number => 0;
  const feed = new ChangeFeed(machine, {
    appliedIndex: () => appliedIndex(),
    defer: platform.defer,
  });
  const applied = new ApplyNotifier(feed.wrap(machine), platform.defer);
  const stack = options.instrument === undefined ? applied : options.instrument(applied, machine);
  const electionTicks = timing.electionTicks ?? RAFT_DEFAULTS.electionTicks;
  const heartbeatTicks = timing.heartbeatTicks ?? defaultHeartbeatTicks(electionTicks);
  const node = new RaftNode<NodeResult>({
    id: options.id,
    logStore: platform.logStore,
    stateMachine: stack,
    transport: platform.transport,
    clock: platform.clock,
    random: platform.random,
    logger: platform.raftLogger ?? SILENT_LOGGER,
    raft: {
      electionTicks,
      heartbeatTicks,
      ...(tuning.maxSizePerMsgBytes === undefined
        ? {}
        : { maxSizePerMsgBytes: tuning.maxSizePerMsgBytes }),
      ...(tuning.rules === undefined ? {} : { rules: tuning.rules }),
    },
    ...optional("tickIntervalMs", timing.tickIntervalMs),
    ...optional("snapshotEveryEntries", timing.snapshotEveryEntries),
    ...optional("operationTimeoutMs", tuning.operationTimeoutMs),
    ...optional("snapshotTrailingEntries", tuning.snapshotTrailingEntries),
    ...optional("promotionMaxLagEntries", tuning.promotionMaxLagEntries),
    ...optional("onFatal", options.onFatal),
    ...optional("onConfChange", options.onConfChange),
    ...optional("onRaftStateChange", options.onRaftStateChange),
    ...optional("protocolGate", options.protocolGate),
  });
  appliedIndex = () => node.status().applied;
  const directory = options.directory;
  const commands = new CommandPort({
    node,
    clock: platform.clock,
    ...optional("commandTimeMs", platform.commandTimeMs),
    leaderAddress: (id) => memberApiUrl(directory, id),
    ...optional("metrics", options.metrics),
  });
  const coordination = createCoordination({
    node,
    commands,
    machine,
    clock: platform.clock,
    onApplied: (listener) => applied.subscribe(listener),
    ...optional("log", platform.lessorLogger),
    ...(tuning.plantedKeepDeadlinesAcrossTerms === true
      ? { plantedKeepDeadlinesAcrossTerms: true }
      : {}),
  });
  return { machine, feed, applied, node, commands, coordination };
}

/** `{ [key]: value }`, or nothing when `value` is undefined (exact optional properties). */
function optional<K extends string, V>(
  key: K,
  value: V | undefined,
): { [P in K]?: V } | Record<string, never> {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]: V });
}
