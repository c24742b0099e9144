/**
 * A simulated replica's state machine as the checkers see it: the node's real stack (built by
 * `composeNode`, as `blixard node start` builds it: the cluster state machine under sessions, the
 * change feed, the apply notifier) wrapped so that every apply is reported to the safety checker
 * (index, term, a digest of the command and of the result), every change of the orchestrator
 * model (an orchestrator command that applied, or a snapshot restored) to the orchestrator's
 * checker and the node's agent, plus the planted state machine bug used to prove the safety
 * checker catches one.
 */
import type { NodeResult } from "../api/node-composition.js";
import { encodeAclResult } from "../statemachine/acl/codec.js";
import type { AclResult } from "../statemachine/acl/types.js";
import type { ClusterStateMachine } from "../statemachine/cluster/cluster-state-machine.js";
import { decodeKvCommand, encodeKvCommand } from "../statemachine/kv/command-codec.js";
import { encodeKvResult } from "../statemachine/kv/result-codec.js";
import type { KvEntry } from "../statemachine/kv/types.js";
import type { OrchestratorResult } from "../statemachine/orchestrator/commands.js";
import type { OrchestratorQueries } from "../statemachine/orchestrator/queries.js";
import { encodeOrchestratorResult } from "../statemachine/orchestrator/result-codec.js";
import { decodeCommandEnvelope, encodeCommandEnvelope } from "../statemachine/session/envelope.js";
import type { AppliedEntry, StateMachine } from "../statemachine/state-machine.js";
import { digestBytes } from "./rng.js";

/** One applied entry as a replica saw it. */
export interface AppliedRecord {
  readonly index: number;
  readonly term: number;
  readonly commandDigest: string;
  readonly resultDigest: string;
}

/** The result of a simulated node's state machine: what a real node's answers a command with. */
export type SimResult = NodeResult;

/** Where an observed state machine reports. */
export interface ReplicaObserver {
  /** Every applied entry (for the safety checker). */
  readonly onApply: (record: AppliedRecord) => void;
  /**
   * The orchestrator model may have changed: an orchestrator command applied at `index`, or a
   * snapshot was restored (`index` undefined).
   */
  readonly onModelChanged?: (index: number | undefined) => void;
  /** PLANTED BUG: every compare-and-set is applied as a plain put on this replica. */
  readonly casIgnoresExpected?: boolean;
}

/** The observed state machine of one replica incarnation. */
export class ObservedStateMachine implements StateMachine<SimResult> {
  readonly #stack: StateMachine<SimResult>;
  readonly #machine: ClusterStateMachine;
  readonly #observer: ReplicaObserver;

  /**
   * Observes `stack`, whose replicated state is `machine` (the stack may be `machine` itself).
   * Throws nothing.
   */
  constructor(
    stack: StateMachine<SimResult>,
    machine: ClusterStateMachine,
    observer: ReplicaObserver,
  ) {
    this.#stack = stack;
    this.#machine = machine;
    this.#observer = observer;
  }

  /** @inheritdoc */
  apply(entry: AppliedEntry): SimResult {
    const planted = this.#observer.casIgnoresExpected === true;
    const result = this.#stack.apply(planted ? { ...entry, data: breakCas(entry.data) } : entry);
    let resultDigest: string;
    let orchestrator = false;
    if (!result.ok) {
      resultDigest = `error:${result.error.code}:${result.error.reason ?? ""}`;
    } else if ("op" in result.value) {
      resultDigest = digestBytes(encodeKvResult(result.value));
    } else if (isAclResult(result.value)) {
      // The simulator proposes no ACL commands; digest one anyway should a test add them.
      resultDigest = digestBytes(encodeAclResult(result.value));
    } else {
      resultDigest = digestBytes(encodeOrchestratorResult(result.value));
      orchestrator = true;
    }
    this.#observer.onApply({
      index: entry.index,
      term: entry.term,
      commandDigest: digestBytes(entry.data),
      resultDigest,
    });
    // An error result leaves the model as it was; only a successful orchestrator command moves it.
    if (orchestrator) this.#observer.onModelChanged?.(entry.index);
    return result;
  }

  /** @inheritdoc */
  snapshot(): Uint8Array {
    return this.#stack.snapshot();
  }

  /** @inheritdoc */
  restore(data: Uint8Array): void {
    this.#stack.restore(data);
    this.#observer.onModelChanged?.(undefined);
  }

  /** The entry of `key`, outside the log (for linearizable reads after ReadIndex). */
  read(key: string): KvEntry | null {
    return this.#machine.read(key);
  }

  /** The replica's replicated state (kv, leases, orchestrator model), read outside the log. */
  get machine(): ClusterStateMachine {
    return this.#machine;
  }

  /** The orchestrator model as this replica has applied it. */
  get orchestrator(): OrchestratorQueries {
    return this.#machine.orchestrator;
  }
}

/** ACL results are the ones with an ACL-only type ("deleted" encodes the same either way). */
function isAclResult(value: OrchestratorResult | AclResult): value is AclResult {
  return value.type === "token" || value.type === "policy" || value.type === "certBinding";
}

/** The planted bug: a kv compare-and-set becomes an unconditional put. */
function breakCas(data: Uint8Array): Uint8Array {
  try {
    const envelope = decodeCommandEnvelope(data);
    const command = decodeKvCommand(envelope.payload);
    if (command.op !== "cas") return data;
    return encodeCommandEnvelope({
      ...envelope,
      payload: encodeKvCommand({ op: "put", key: command.key, value: command.value }),
    });
  } catch {
    // Not a kv command (an orchestrator one): applied as it is.
    return data;
  }
}
