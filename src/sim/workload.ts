/**
 * The simulated clients: concurrent clients doing put / get / compare-and-set on a small key
 * space through client sessions, retrying the way a correct SDK does (to the hinted leader on
 * NOT_LEADER; with the same session sequence on TIMEOUT, UNAVAILABLE or no answer, so a write
 * applies exactly once), and recording every operation in the history.
 */
import { isBlixardError, NotLeaderError } from "../common/errors.js";
import type { Random } from "../common/random.js";
import type { NodeId } from "../raft/types.js";
import type { KvCommand, KvResult } from "../statemachine/kv/types.js";
import type { SimCluster } from "./cluster.js";
import { kvCommandEntry } from "./commands.js";
import type { HistoryOperation, KvInput, KvOutput } from "./history.js";
import { between, chance, fork, pick, type TraceHash } from "./rng.js";
import type { Scheduler } from "./scheduler.js";
import type { TraceTail } from "./trace-tail.js";
import type { ObservedStateMachine, SimResult } from "./state-machine.js";

/** What the clients do. */
export interface WorkloadOptions {
  readonly clients: number;
  readonly keys: number;
  /** Pause between a client's operations, in ms. */
  readonly thinkMs: { readonly min: number; readonly max: number };
  /** Share of operations that are reads (the rest split between put and cas). */
  readonly readRate: number;
  /** Share of writes that are compare-and-sets. */
  readonly casRate: number;
  /** Share of reads that go through the log as a get command (the rest use ReadIndex). */
  readonly readThroughLogRate: number;
  /** How long a client waits for one attempt's answer. */
  readonly attemptTimeoutMs: number;
  /** A client gives up on an operation after this long; its outcome is then unknown. */
  readonly giveUpAfterMs: number;
  /** Backoff between attempts, in ms. */
  readonly backoffMs: { readonly min: number; readonly max: number };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What one attempt learned. */
type AttemptResult =
  | { readonly kind: "done"; readonly output: KvOutput }
  | { readonly kind: "retry"; readonly target: NodeId | undefined; readonly backoff: boolean }
  | { readonly kind: "session-lost" }
  | { readonly kind: "failed"; readonly reason: string };

/** Every client of a run and the history they record. */
export class Workload {
  readonly history: HistoryOperation[] = [];
  /** Operations that failed for a reason no correct system gives (a bug to report). */
  readonly anomalies: string[] = [];
  /** Keeps the last client invocations and completions for failure reports. */
  tail: TraceTail | undefined;
  private readonly clients: Client[] = [];
  private nextOperationId = 0;

  constructor(
    readonly scheduler: Scheduler,
    random: Random,
    readonly cluster: SimCluster,
    readonly options: WorkloadOptions,
    readonly trace: TraceHash,
  ) {
    for (let i = 0; i < options.clients; i++) this.clients.push(new Client(this, i, fork(random)));
  }

  /** Starts every client; they stop issuing new operations once `stopIssuing()` is true. */
  start(stopIssuing: () => boolean): void {
    for (const client of this.clients) {
      client.run(stopIssuing).catch((error: unknown) => {
        client.finished = true;
        this.anomalies.push(`client ${client.index} crashed: ${String(error)}`);
      });
    }
  }

  /** True once every client has finished its last operation. */
  get done(): boolean {
    return this.clients.every((c) => c.finished);
  }

  /** The operations in progress, for liveness reports. */
  inProgress(): string[] {
    return this.clients
      .filter((c) => c.current !== undefined)
      .map((c) => `client ${c.index}: ${JSON.stringify(c.current)} since ${c.currentSinceMs} ms`);
  }

  /** @internal */
  newOperationId(): number {
    return this.nextOperationId++;
  }

  /** @internal */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.scheduler.schedule(ms, resolve));
  }
}

class Client {
  finished = false;
  current: KvInput | undefined;
  currentSinceMs = 0;
  private session = 0;
  private sequence = 0;
  private leaderGuess: NodeId | undefined;
  private readonly lastSeen = new Map<string, string | null>();
  private written = 0;

  constructor(
    private readonly workload: Workload,
    readonly index: number,
    private readonly random: Random,
  ) {}

  private get clientId(): string {
    return `client-${this.index}-${this.session}`;
  }

  async run(stopIssuing: () => boolean): Promise<void> {
    const { options } = this.workload;
    while (!stopIssuing()) {
      await this.workload.sleep(between(this.random, options.thinkMs.min, options.thinkMs.max));
      if (stopIssuing()) break;
      await this.execute(this.nextInput());
    }
    this.finished = true;
  }

  private nextInput(): KvInput {
    const { options } = this.workload;
    const key = `k${this.random.int(options.keys)}`;
    if (chance(this.random, options.readRate)) return { kind: "get", key };
    const value = `c${this.index}.${++this.written}`;
    if (chance(this.random, options.casRate)) {
      const seen = this.lastSeen.get(key);
      const expected = seen === undefined || chance(this.random, 0.2) ? null : seen;
      return { kind: "cas", key, expected, value };
    }
    return { kind: "put", key, value };
  }

  private async execute(input: KvInput): Promise<void> {
    const { scheduler, options, trace } = this.workload;
    const viaReadIndex = input.kind === "get" && !chance(this.random, options.readThroughLogRate);
    const isWrite = input.kind !== "get";
    const sequence = isWrite ? ++this.sequence : 0;
    const command = toCommand(input);
    const data = kvCommandEntry(command, {
      nowMs: scheduler.now(),
      ...(isWrite ? { session: { clientId: this.clientId, sequence } } : {}),
    });
    const invokeStamp = scheduler.nextStamp();
    const invokeMs = scheduler.now();
    this.current = input;
    this.currentSinceMs = invokeMs;
    this.workload.tail?.add(invokeMs, { kind: "invoke", subject: { client: this.index, input } });
    const giveUpAtMs = invokeMs + options.giveUpAfterMs;
    let target = this.leaderGuess ?? this.randomMember();
    let output: KvOutput | undefined;
    for (;;) {
      if (scheduler.now() >= giveUpAtMs) break;
      const result = viaReadIndex
        ? await this.attemptRead(target, input.key)
        : await this.attemptPropose(target, data, input);
      if (result.kind === "done") {
        output = result.output;
        this.leaderGuess = target;
        break;
      }
      if (result.kind === "session-lost") break;
      if (result.kind === "failed") {
        this.workload.anomalies.push(
          `client ${this.index}: ${JSON.stringify(input)} failed: ${result.reason}`,
        );
        this.current = undefined;
        return;
      }
      target = result.target ?? this.randomMember();
      this.leaderGuess = result.target;
      if (result.backoff) {
        await this.workload.sleep(
          between(this.random, options.backoffMs.min, options.backoffMs.max),
        );
      }
    }
    this.current = undefined;
    if (output === undefined && isWrite) {
      // Unknown outcome: the session may hold the sequence forever; start a fresh one.
      this.session++;
      this.sequence = 0;
    }
    if (output === undefined && !isWrite) return; // a read that never answered constrains nothing
    if (output !== undefined) this.learn(input, output);
    const completeStamp = output === undefined ? Infinity : scheduler.nextStamp();
    const operation: HistoryOperation = {
      id: this.workload.newOperationId(),
      client: this.index,
      input,
      output,
      invokeStamp,
      completeStamp,
      invokeMs,
      completeMs: output === undefined ? undefined : scheduler.now(),
    };
    trace.add(operation.id, invokeMs, operation.completeMs ?? -1, JSON.stringify(output ?? null));
    this.workload.history.push(operation);
    this.workload.tail?.add(scheduler.now(), { kind: "complete", subject: operation });
  }

  private learn(input: KvInput, output: KvOutput): void {
    if (output.kind === "get") this.lastSeen.set(input.key, output.value);
    else if (output.kind === "put" && input.kind === "put")
      this.lastSeen.set(input.key, input.value);
    else if (output.kind === "cas" && input.kind === "cas") {
      this.lastSeen.set(input.key, output.succeeded ? input.value : output.current);
    }
  }

  private randomMember(): NodeId {
    return pick(this.random, this.workload.cluster.memberIds());
  }

  private async attemptPropose(
    target: NodeId,
    data: Uint8Array,
    input: KvInput,
  ): Promise<AttemptResult> {
    const { cluster, options } = this.workload;
    const outcome = await cluster.call<SimResult>(
      target,
      (node) => node.propose(data),
      options.attemptTimeoutMs,
    );
    if (outcome.kind === "ok") {
      const result = outcome.value;
      if (result.ok) {
        const value = result.value;
        // A kv command always gives a kv result (orchestrator results carry a `type`).
        if (!("op" in value)) return { kind: "failed", reason: `not a kv result: ${value.type}` };
        return { kind: "done", output: toOutput(input, value) };
      }
      const { code, reason } = result.error;
      if (reason === "SESSION_EXPIRED") return { kind: "session-lost" };
      if (code === "OVERLOADED" || code === "UNAVAILABLE") {
        return { kind: "retry", target, backoff: true };
      }
      return { kind: "failed", reason: `${code} ${reason ?? ""}: ${result.error.message}` };
    }
    return this.retryAfter(target, outcome.kind === "error" ? outcome.error : undefined);
  }

  private async attemptRead(target: NodeId, key: string): Promise<AttemptResult> {
    const { cluster, options } = this.workload;
    const outcome = await cluster.call(
      target,
      (node) => node.read((sm) => (sm as ObservedStateMachine).read(key)),
      options.attemptTimeoutMs,
    );
    if (outcome.kind === "ok") {
      const entry = outcome.value;
      return {
        kind: "done",
        output: { kind: "get", value: entry === null ? null : decoder.decode(entry.value) },
      };
    }
    return this.retryAfter(target, outcome.kind === "error" ? outcome.error : undefined);
  }

  private retryAfter(target: NodeId, error: unknown): AttemptResult {
    if (error instanceof NotLeaderError) {
      const hint = error.leaderHint?.id;
      if (hint !== undefined && hint !== target)
        return { kind: "retry", target: hint, backoff: false };
      return { kind: "retry", target: undefined, backoff: true };
    }
    if (error === undefined || isBlixardError(error)) {
      return { kind: "retry", target: undefined, backoff: true };
    }
    return { kind: "failed", reason: `unexpected error: ${String(error)}` };
  }
}

function toCommand(input: KvInput): KvCommand {
  switch (input.kind) {
    case "get":
      return { op: "get", key: input.key };
    case "put":
      return { op: "put", key: input.key, value: encoder.encode(input.value) };
    case "cas":
      return {
        op: "cas",
        key: input.key,
        expected:
          input.expected === null
            ? { kind: "absent" }
            : { kind: "value", value: encoder.encode(input.expected) },
        value: encoder.encode(input.value),
      };
  }
}

function toOutput(input: KvInput, result: KvResult): KvOutput {
  switch (result.op) {
    case "get":
      return {
        kind: "get",
        value: result.entry === null ? null : decoder.decode(result.entry.value),
      };
    case "put":
      return { kind: "put" };
    case "cas":
      return result.succeeded
        ? { kind: "cas", succeeded: true }
        : {
            kind: "cas",
            succeeded: false,
            current: result.current === null ? null : decoder.decode(result.current.value),
          };
    default:
      // Never asked for (delete, txn, leases): report it as a put, which no register model
      // accepts for a get or cas.
      return { kind: "put" };
  }
}
