/**
 * The kv state machine as the simulator runs it: the real {@link KvStateMachine} wrapped so
 * that every apply is reported to the safety checker (index, term, a digest of the command and
 * of the result), plus the planted state machine bug used to prove the checker catches one.
 */
import type { CommandResult } from "../statemachine/command-result.js";
import type { AclResult } from "../statemachine/acl/types.js";
import { decodeKvCommand, encodeKvCommand, encodeKvResult } from "../statemachine/kv/index.js";
import { KvStateMachine } from "../statemachine/kv/kv-state-machine.js";
import type { KvEntry, KvResult } from "../statemachine/kv/types.js";
import type { OrchestratorResult } from "../statemachine/orchestrator/commands.js";
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

/**
 * The result type of the simulated cluster's state machine: a kv result for a kv command, an
 * orchestrator result for an orchestrator command (only the cluster state machine of
 * `--orchestrator` runs applies those).
 */
export type SimResult = CommandResult<KvResult | OrchestratorResult | AclResult>;

/** What the simulator needs of a replica's state machine: the port, and kv reads outside the log. */
export interface SimStateMachine extends StateMachine<SimResult> {
  /** The entry of `key`, outside the log (for linearizable reads after ReadIndex). */
  read(key: string): KvEntry | null;
}

/**
 * The observed kv state machine. `onApply` sees every applied entry; with `casIgnoresExpected`
 * (a PLANTED BUG) every compare-and-set is applied as a plain put on this replica only.
 */
export class ObservedKvStateMachine implements SimStateMachine {
  readonly kv = new KvStateMachine();

  constructor(
    private readonly options: {
      readonly onApply: (record: AppliedRecord) => void;
      readonly casIgnoresExpected?: boolean;
    },
  ) {}

  /** @inheritdoc */
  apply(entry: AppliedEntry): SimResult {
    const data = this.options.casIgnoresExpected === true ? breakCas(entry.data) : entry.data;
    const result = this.kv.apply({ index: entry.index, term: entry.term, data });
    this.options.onApply({
      index: entry.index,
      term: entry.term,
      commandDigest: digestBytes(entry.data),
      resultDigest: result.ok
        ? digestBytes(encodeKvResult(result.value))
        : `error:${result.error.code}:${result.error.reason ?? ""}`,
    });
    return result;
  }

  /** @inheritdoc */
  snapshot(): Uint8Array {
    return this.kv.snapshot();
  }

  /** @inheritdoc */
  restore(data: Uint8Array): void {
    this.kv.restore(data);
  }

  /** The entry of `key`, outside the log (for linearizable reads after ReadIndex). */
  read(key: string): KvEntry | null {
    return this.kv.read(key);
  }
}

/** The planted bug: a compare-and-set becomes an unconditional put. */
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
    return data;
  }
}
