/**
 * Simulated txn clients, whose history the register linearizability checker can verify. Each
 * txn reads or writes a whole group of keys at once, so a group behaves as one register whose
 * value is the tuple of its keys' values (`v0|v1|v2`, `∅` for an absent key; null when all
 * are absent):
 *
 * - read: a txn with no compare and a get of every key → a `get` of the tuple;
 * - write: a txn with no compare putting `value` on every key → a `put` of `value|value|value`
 *   (the history's written value is that tuple);
 * - compare-and-set: a txn comparing every key's value to the tuple last seen (create revision
 *   0 for absent) that puts `value` on every key, and else gets every key → a `cas`.
 *
 * A txn applied in part, or interleaved with another, shows a tuple no linearization of whole
 * writes produces (`a|b|a`), so linearizability of the tuple history implies atomicity. Writes
 * go with a client session and are retried with the same sequence, so each applies once.
 */
import { isBlixardError } from "../common/errors.js";
import type { Random } from "../common/random.js";
import type { KvCompare, KvTxnCommand, KvTxnOp, KvTxnResult } from "../statemachine/kv/types.js";
import type { SimCluster } from "./cluster.js";
import { CoordCaller } from "./coord-caller.js";
import type { HistoryOperation, KvInput, KvOutput } from "./history.js";
import { between, chance, fork, type TraceHash } from "./rng.js";
import type { Scheduler } from "./scheduler.js";

/** What the txn clients do. */
export interface TxnWorkloadOptions {
  readonly clients: number;
  /** Groups of keys (a txn touches one group). */
  readonly groups: number;
  /** Keys per group. */
  readonly keysPerGroup: number;
  readonly thinkMs: { readonly min: number; readonly max: number };
  /** Share of reads; of the writes, share of compare-and-sets. */
  readonly readRate: number;
  readonly casRate: number;
  readonly attemptTimeoutMs: number;
  /** After this long an operation's outcome is unknown. */
  readonly giveUpAfterMs: number;
}

/** The register key of group `g` in the history. */
export function groupRegister(group: number): string {
  return `txn-group-${group}`;
}

const ABSENT = "∅";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Every txn client of a run and the history they record. */
export class TxnWorkload {
  readonly history: HistoryOperation[] = [];
  readonly anomalies: string[] = [];
  private readonly clients: TxnClient[] = [];
  private nextOperationId = 0;

  constructor(
    readonly scheduler: Scheduler,
    random: Random,
    cluster: SimCluster,
    readonly options: TxnWorkloadOptions,
    readonly trace: TraceHash,
  ) {
    for (let i = 0; i < options.clients; i++) {
      const clientRandom = fork(random);
      const caller = new CoordCaller(
        scheduler,
        cluster,
        fork(clientRandom),
        options.attemptTimeoutMs,
      );
      this.clients.push(new TxnClient(this, i, clientRandom, caller));
    }
  }

  /** Starts the clients; they stop once `stopIssuing()` is true. */
  start(stopIssuing: () => boolean): void {
    for (const client of this.clients) {
      client.run(stopIssuing).catch((error: unknown) => {
        client.finished = true;
        this.anomalies.push(`txn client ${client.index} crashed: ${String(error)}`);
      });
    }
  }

  /** True once every client has finished. */
  get done(): boolean {
    return this.clients.every((c) => c.finished);
  }

  /** @internal */
  newOperationId(): number {
    return this.nextOperationId++;
  }
}

class TxnClient {
  finished = false;
  private session = 0;
  private sequence = 0;
  private written = 0;
  private readonly lastSeen = new Map<number, string | null>();

  constructor(
    private readonly workload: TxnWorkload,
    readonly index: number,
    private readonly random: Random,
    private readonly caller: CoordCaller,
  ) {}

  async run(stopIssuing: () => boolean): Promise<void> {
    const { thinkMs } = this.workload.options;
    while (!stopIssuing()) {
      await this.caller.sleep(between(this.random, thinkMs.min, thinkMs.max));
      if (stopIssuing()) break;
      await this.execute(this.random.int(this.workload.options.groups));
    }
    this.finished = true;
  }

  private keys(group: number): string[] {
    const n = this.workload.options.keysPerGroup;
    return Array.from({ length: n }, (_, i) => `g${group}/k${i}`);
  }

  private nextInput(group: number): KvInput {
    const { options } = this.workload;
    const key = groupRegister(group);
    if (chance(this.random, options.readRate)) return { kind: "get", key };
    const value = writtenTuple(`t${this.index}.${++this.written}`, options.keysPerGroup);
    if (chance(this.random, options.casRate)) {
      const seen = this.lastSeen.get(group);
      const expected = seen === undefined || chance(this.random, 0.2) ? null : seen;
      return { kind: "cas", key, expected, value };
    }
    return { kind: "put", key, value };
  }

  private command(group: number, input: KvInput): KvTxnCommand {
    const keys = this.keys(group);
    const gets: KvTxnOp[] = keys.map((key) => ({ op: "get", key }));
    if (input.kind === "get") return { op: "txn", compare: [], success: gets, failure: [] };
    const parts = input.value.split("|");
    const puts: KvTxnOp[] = keys.map((key, i) => ({
      op: "put",
      key,
      value: encoder.encode(parts[i] ?? ""),
    }));
    if (input.kind === "put") return { op: "txn", compare: [], success: puts, failure: [] };
    const expected = input.expected?.split("|");
    const compare: KvCompare[] = keys.map((key, i) => {
      const part = expected?.[i];
      return part === undefined || part === ABSENT
        ? { key, target: "createRevision", operator: "equal", number: 0 }
        : { key, target: "value", operator: "equal", value: encoder.encode(part) };
    });
    return { op: "txn", compare, success: puts, failure: gets };
  }

  private async execute(group: number): Promise<void> {
    const { scheduler, options, trace } = this.workload;
    const input = this.nextInput(group);
    const isWrite = input.kind !== "get";
    const session = isWrite
      ? { clientId: `txn-client-${this.index}-${this.session}`, sequence: ++this.sequence }
      : undefined;
    const command = this.command(group, input);
    const invokeStamp = scheduler.nextStamp();
    const invokeMs = scheduler.now();
    const result = await this.caller.call(
      (service) => service.txn(command, session === undefined ? {} : { session }),
      invokeMs + options.giveUpAfterMs,
    );
    let output: KvOutput | undefined;
    if (result.kind === "ok") output = toOutput(input, result.value);
    else if (result.kind === "refused" && !isSessionExpired(result.error)) {
      this.workload.anomalies.push(
        `txn client ${this.index}: ${JSON.stringify(input)} failed: ${String(result.error)}`,
      );
      return;
    }
    if (output === undefined && isWrite) {
      // Unknown outcome: the session may hold the sequence forever; start a fresh one.
      this.session++;
      this.sequence = 0;
    }
    if (output === undefined && !isWrite) return; // an unanswered read constrains nothing
    if (output?.kind === "get") this.lastSeen.set(group, output.value);
    else if (output?.kind === "cas" && !output.succeeded) this.lastSeen.set(group, output.current);
    else if (output !== undefined && input.kind !== "get") this.lastSeen.set(group, input.value);
    const operation: HistoryOperation = {
      id: this.workload.newOperationId(),
      client: this.index,
      input,
      output,
      invokeStamp,
      completeStamp: output === undefined ? Infinity : scheduler.nextStamp(),
      invokeMs,
      completeMs: output === undefined ? undefined : scheduler.now(),
    };
    trace.add(operation.id, invokeMs, operation.completeMs ?? -1, JSON.stringify(output ?? null));
    this.workload.history.push(operation);
  }
}

/** A group's tuple (null when every key is absent). */
function tuple(values: readonly (string | null)[]): string | null {
  if (values.every((value) => value === null)) return null;
  return values.map((value) => value ?? ABSENT).join("|");
}

/** The register form of a put's value (what a read of the group then returns). */
export function writtenTuple(value: string, keysPerGroup: number): string {
  return tuple(Array.from({ length: keysPerGroup }, () => value)) as string;
}

function readTuple(result: KvTxnResult): string | null {
  return tuple(
    result.results.map((op) =>
      op.op === "get" && op.entry !== null ? decoder.decode(op.entry.value) : null,
    ),
  );
}

function toOutput(input: KvInput, result: KvTxnResult): KvOutput {
  switch (input.kind) {
    case "get":
      return { kind: "get", value: readTuple(result) };
    case "put":
      return { kind: "put" };
    case "cas":
      return result.succeeded
        ? { kind: "cas", succeeded: true }
        : { kind: "cas", succeeded: false, current: readTuple(result) };
  }
}

function isSessionExpired(error: unknown): boolean {
  return isBlixardError(error) && error.message.includes("SESSION_EXPIRED");
}
