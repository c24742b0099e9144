/**
 * The one path of every replicated command and every read of the replicated state. A service
 * (kv, orchestrator, ACL, coordination, membership), the agent and the simulator's workloads hand
 * it a command of a namespace; the port builds the command envelope (the proposer's time, the
 * client's session, the namespace's payload), proposes it through a narrow {@link CommandNode},
 * turns a refused command into its typed error, names the leader's API address on NOT_LEADER,
 * waits for the read barrier a consistency level asks for, and reports every proposal and read
 * to the metrics by namespace. Nothing here knows HTTP: the API forwards on the address it adds.
 */
import type { Clock } from "../common/clock.js";
import { CancelledError, NotLeaderError, TimeoutError, isBlixardError } from "../common/errors.js";
import { NONE, type NodeId } from "../raft/types.js";
import type { CommandNamespace } from "../statemachine/cluster/command-namespaces.js";
import { commandErrorToException, type CommandResult } from "../statemachine/command-result.js";
import {
  encodeCommandEnvelope,
  envelopeWriter,
  type ClientSession,
} from "../statemachine/session/envelope.js";
import type { OperationOptions } from "./operation.js";
import type { ProposeOptions } from "./raft-node.js";

/**
 * How fresh a read must be. `linearizable`: after a ReadIndex round, on any node (a follower asks
 * the leader for the index). `lease`: the leader's alone (NOT_LEADER elsewhere), from its lease
 * when the node runs lease-based reads. `stale`: this replica's state as it is.
 */
export type ReadConsistency = "linearizable" | "lease" | "stale";

/** Cancellation and deadline of one call. */
export interface CallOptions {
  /** Cancels the call: it rejects with `CancelledError` (a write's outcome is then unknown). */
  readonly signal?: AbortSignal;
  /** Rejects with `TimeoutError` after this long. Default: the node's operation timeout. */
  readonly timeoutMs?: number;
}

/** Options of a read. */
export interface ReadOptions extends CallOptions {
  /** Default `linearizable`. */
  readonly consistency?: ReadConsistency;
}

/** Options of a write. */
export interface WriteOptions extends CallOptions {
  /** The client session that makes the write exactly-once; omit for at-least-once. */
  readonly session?: ClientSession;
  /**
   * Only this node may propose it, and only while it leads (NOT_LEADER otherwise; never
   * forwarded): for a leader's own decisions, which a deposed leader must not get carried out.
   */
  readonly leaderOnly?: boolean;
}

/**
 * The log entry of `command` of `namespace`: the command envelope (the proposer's time, the
 * client's session for an exactly-once write, the namespace's payload). The one place an entry is
 * built: {@link CommandPort.propose} uses it, and so does the simulator, whose clients propose the
 * same bytes again on each retry, as an HTTP client's retry of one request does.
 * @throws InvalidArgumentError, TooLargeError from the namespace's encoding.
 */
export function encodeCommand<C>(
  namespace: CommandNamespace<C, unknown>,
  command: C,
  proposedAtMs: number,
  session?: ClientSession,
): Uint8Array {
  const payload = namespace.payload;
  if (payload === undefined) {
    return encodeCommandEnvelope({
      proposedAtMs,
      ...(session === undefined ? {} : { session }),
      payload: namespace.encode(command),
    });
  }
  // The command is validated first, as `encode` does it, then the envelope's header.
  const payloadBytes = payload.measure(command);
  const writer = envelopeWriter(
    session === undefined ? { proposedAtMs } : { proposedAtMs, session },
    payloadBytes,
  );
  payload.write(writer, command);
  return writer.finish();
}

/**
 * What the port needs of the runtime: `RaftNode` over a state machine whose results are
 * `CommandResult`s fits it as it is (the cluster node, a kv-only node, a simulated node).
 */
export interface CommandNode {
  /** This node's id. */
  readonly id: NodeId;
  /** The leader this node knows of, `NONE` (0) if none. */
  readonly leader: NodeId;
  /** True while this node leads. */
  readonly isLeader: boolean;
  /**
   * Proposes envelope bytes; resolves with the applied result here (a follower forwards to the
   * leader unless `leaderOnly`). Rejects with the runtime's typed errors.
   */
  propose(command: Uint8Array, options?: ProposeOptions): Promise<CommandResult<unknown>>;
  /** Runs `query` once this replica has applied every write acknowledged before the call. */
  read<T>(query: () => T, options?: OperationOptions): Promise<T>;
  /** Runs `query` on this replica's state as it is; throws UNAVAILABLE once stopped. */
  readStale<T>(query: () => T): T;
}

/** What the port reports, by namespace (the Prometheus registry implements it). */
export interface CommandMetrics {
  /**
   * A proposal finished: `outcome` is `applied` or the error code (or state machine reason) that
   * refused it; `durationMs` runs from proposing to the result being applied here.
   */
  proposalFinished(namespace: string, outcome: string, durationMs: number): void;
  /** A read finished; `durationMs` includes the barrier (a linearizable read's ReadIndex round). */
  readFinished(
    namespace: string,
    consistency: ReadConsistency,
    outcome: string,
    durationMs: number,
  ): void;
}

/** Metrics that record nothing. */
export const NO_COMMAND_METRICS: CommandMetrics = Object.freeze({
  proposalFinished: () => undefined,
  readFinished: () => undefined,
});

/** Options of a {@link CommandPort}. */
export interface CommandPortOptions {
  readonly node: CommandNode;
  /** Times proposals and reads; by default also stamps `proposedAtMs`. */
  readonly clock: Clock;
  /**
   * The time a command carries (`proposedAtMs`, ms since the Unix epoch: session expiry runs on
   * log time, so every node should use a clock with the same origin). Default: the clock's, in
   * whole ms, never below 0.
   */
  readonly commandTimeMs?: () => number;
  /** The API address of member `id`, for NOT_LEADER hints. Default: none known. */
  readonly leaderAddress?: (id: NodeId) => URL | undefined;
  /** Default: nowhere. */
  readonly metrics?: CommandMetrics;
}

const NO_WRITE_OPTIONS: WriteOptions = Object.freeze({});
const NO_READ_OPTIONS: ReadOptions = Object.freeze({});
const NOTHING = (): undefined => undefined;

/** The command port of one node. See the module comment. */
export class CommandPort {
  readonly #node: CommandNode;
  readonly #clock: Clock;
  readonly #commandTimeMs: () => number;
  readonly #leaderAddress: (id: NodeId) => URL | undefined;
  readonly #metrics: CommandMetrics;

  /** Throws nothing. */
  constructor(options: CommandPortOptions) {
    this.#node = options.node;
    this.#clock = options.clock;
    const clock = options.clock;
    this.#commandTimeMs = options.commandTimeMs ?? (() => Math.max(0, Math.floor(clock.now())));
    this.#leaderAddress = options.leaderAddress ?? (() => undefined);
    this.#metrics = options.metrics ?? NO_COMMAND_METRICS;
  }

  /** This node's id. */
  get nodeId(): NodeId {
    return this.#node.id;
  }

  /** The leader this node knows of, or undefined. Throws nothing. */
  leader(): NodeId | undefined {
    const leader = this.#node.leader;
    return leader === NONE ? undefined : leader;
  }

  /** The leader's API address when another node leads and its address is known. Throws nothing. */
  leaderApiUrl(): URL | undefined {
    const leader = this.#node.leader;
    return leader === NONE || leader === this.#node.id ? undefined : this.#leaderAddress(leader);
  }

  /**
   * Proposes `command` of `namespace` and resolves with its result once applied on this node.
   * @throws InvalidArgumentError, TooLargeError from the namespace's encoding (nothing proposed).
   * @throws the command's typed error when the state machine refused it (NOT_FOUND, CONFLICT, …).
   * @throws NotLeaderError (with the leader's address when known), TimeoutError and
   *   CancelledError (the outcome is unknown: retry under the same session), OverloadedError,
   *   UnavailableError, StorageFullError, TooLargeError from the runtime.
   */
  async propose<C, R>(
    namespace: CommandNamespace<C, R>,
    command: C,
    options: WriteOptions = NO_WRITE_OPTIONS,
  ): Promise<R> {
    // Encoding validates the command: bad input never reaches the log, nor the metrics.
    const envelope = encodeCommand(namespace, command, this.#commandTimeMs(), options.session);
    const startedMs = this.#clock.now();
    let outcome = "applied";
    try {
      // The write options are the runtime's propose options (signal, timeout, leader-only).
      const result = await this.#node.propose(envelope, options);
      if (!result.ok) {
        outcome = result.error.reason ?? result.error.code;
        throw commandErrorToException(result.error);
      }
      return namespace.result(result.value);
    } catch (error) {
      if (outcome === "applied") outcome = isBlixardError(error) ? error.code : "INTERNAL";
      throw this.withLeaderAddress(error);
    } finally {
      this.#metrics.proposalFinished(namespace.name, outcome, this.#clock.now() - startedMs);
    }
  }

  /**
   * Runs `query` on this replica once it is as fresh as `options.consistency` asks (default
   * `linearizable`), and reports the read under `namespace`.
   * @throws NotLeaderError (a lease read off the leader, or no leader known; with the leader's
   *   address when known), TimeoutError, CancelledError (a read changes nothing: retry),
   *   UnavailableError (the node stopped).
   */
  async read<T>(
    namespace: string,
    query: () => T,
    options: ReadOptions = NO_READ_OPTIONS,
  ): Promise<T> {
    const consistency = options.consistency ?? "linearizable";
    const startedMs = this.#clock.now();
    let outcome = "ok";
    try {
      if (consistency === "stale") return this.#node.readStale(query);
      // A lease is the leader's alone: elsewhere the request goes to the leader. A linearizable
      // read runs anywhere: a follower asks the leader for the read index (one raft message,
      // not an HTTP hop) and answers from its own state once it has applied that far.
      if (consistency === "lease" && !this.#node.isLeader) throw new NotLeaderError();
      return await this.#node.read(query, options);
    } catch (error) {
      outcome = isBlixardError(error) ? error.code : "INTERNAL";
      throw this.withLeaderAddress(readError(error, namespace));
    } finally {
      this.#metrics.readFinished(namespace, consistency, outcome, this.#clock.now() - startedMs);
    }
  }

  /** Resolves once a read made right after is as fresh as `options.consistency` asks; see {@link read}. */
  barrier(namespace: string, options: ReadOptions = NO_READ_OPTIONS): Promise<void> {
    return this.read(namespace, NOTHING, options);
  }

  /**
   * Runs a leader-only runtime call (a membership change, a leadership transfer) as a proposal of
   * `namespace`: counted in the metrics, NOT_LEADER given the leader's address.
   */
  async change<T>(namespace: string, call: () => Promise<T>): Promise<T> {
    const startedMs = this.#clock.now();
    let outcome = "applied";
    try {
      return await call();
    } catch (error) {
      outcome = isBlixardError(error) ? error.code : "INTERNAL";
      throw this.withLeaderAddress(error);
    } finally {
      this.#metrics.proposalFinished(namespace, outcome, this.#clock.now() - startedMs);
    }
  }

  /** A NOT_LEADER error for work only the leader does, naming the leader when known. Throws nothing. */
  notLeader(): NotLeaderError {
    const known = this.leader();
    return known === undefined ? new NotLeaderError() : this.#notLeaderNaming(known);
  }

  /**
   * `error` with the leader's id and API address filled in when it is a NOT_LEADER that lacks
   * them (its own hint first, else the leader this node knows); any other error as it is.
   * Throws nothing.
   */
  withLeaderAddress(error: unknown): unknown {
    if (!(error instanceof NotLeaderError) || error.leaderHint?.address !== undefined) return error;
    const known = error.leaderHint?.id ?? this.leader();
    return known === undefined ? error : this.#notLeaderNaming(known);
  }

  #notLeaderNaming(leader: NodeId): NotLeaderError {
    const address = this.#leaderAddress(leader);
    return new NotLeaderError(
      address === undefined ? { id: leader } : { id: leader, address: address.href },
    );
  }
}

/**
 * A read that timed out or was cancelled changed nothing, so unlike a write its outcome is not
 * unknown: say so, rather than the runtime's words for any operation.
 */
function readError(error: unknown, namespace: string): unknown {
  if (error instanceof TimeoutError) {
    return new TimeoutError(
      `the ${namespace} read did not complete in time (no quorum answered); it changed nothing: retry`,
      { cause: error },
    );
  }
  if (error instanceof CancelledError) {
    return new CancelledError(`the ${namespace} read was cancelled; it changed nothing`, {
      cause: error,
    });
  }
  return error;
}
