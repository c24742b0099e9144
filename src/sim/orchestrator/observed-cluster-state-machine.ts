/**
 * The cluster state machine (kv and orchestrator in one Raft group) as the simulator runs it
 * under `--orchestrator`: the real {@link ClusterStateMachine}, with every apply reported to the
 * safety checker exactly as the kv-only machine reports it (index, term, digests of the command
 * and of the result), and every change of the orchestrator model (an orchestrator command that
 * applied, or a snapshot restored) reported to the orchestrator's checker and the node's agent.
 */
import { ClusterStateMachine } from "../../statemachine/cluster/cluster-state-machine.js";
import { encodeAclResult } from "../../statemachine/acl/codec.js";
import type { AclResult } from "../../statemachine/acl/types.js";
import { encodeKvResult } from "../../statemachine/kv/result-codec.js";
import type { KvEntry } from "../../statemachine/kv/types.js";
import type { OrchestratorResult } from "../../statemachine/orchestrator/commands.js";
import type { OrchestratorQueries } from "../../statemachine/orchestrator/queries.js";
import { encodeOrchestratorResult } from "../../statemachine/orchestrator/result-codec.js";
import type { AppliedEntry } from "../../statemachine/state-machine.js";
import { digestBytes } from "../rng.js";
import type { AppliedRecord, SimResult, SimStateMachine } from "../state-machine.js";

/** Where an observed cluster state machine reports. */
export interface ClusterApplyObserver {
  /** Every applied entry (for the safety checker). */
  readonly onApply: (record: AppliedRecord) => void;
  /**
   * The orchestrator model may have changed: an orchestrator command applied at `index`, or a
   * snapshot was restored (`index` undefined).
   */
  readonly onModelChanged: (index: number | undefined) => void;
}

/** The observed cluster state machine of one replica incarnation. */
export class ObservedClusterStateMachine implements SimStateMachine {
  readonly #machine = new ClusterStateMachine();

  constructor(private readonly observer: ClusterApplyObserver) {}

  /** @inheritdoc */
  apply(entry: AppliedEntry): SimResult {
    const result = this.#machine.apply(entry);
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
    this.observer.onApply({
      index: entry.index,
      term: entry.term,
      commandDigest: digestBytes(entry.data),
      resultDigest,
    });
    // An error result leaves the model as it was; only a successful orchestrator command moves it.
    if (orchestrator) this.observer.onModelChanged(entry.index);
    return result;
  }

  /** @inheritdoc */
  snapshot(): Uint8Array {
    return this.#machine.snapshot();
  }

  /** @inheritdoc */
  restore(data: Uint8Array): void {
    this.#machine.restore(data);
    this.observer.onModelChanged(undefined);
  }

  /** @inheritdoc */
  read(key: string): KvEntry | null {
    return this.#machine.read(key);
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
