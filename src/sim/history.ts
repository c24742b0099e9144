/**
 * The client history of a run: each operation's input, its output (or "unknown": it may or
 * may not have taken effect), and when it was invoked and completed.
 */

/** A register operation on one key (values are strings, null is "absent"). */
export type KvInput =
  | { readonly kind: "put"; readonly key: string; readonly value: string }
  | { readonly kind: "get"; readonly key: string }
  | {
      readonly kind: "cas";
      readonly key: string;
      readonly expected: string | null;
      readonly value: string;
    };

/** What an operation returned. */
export type KvOutput =
  | { readonly kind: "put" }
  | { readonly kind: "get"; readonly value: string | null }
  | { readonly kind: "cas"; readonly succeeded: true }
  | { readonly kind: "cas"; readonly succeeded: false; readonly current: string | null };

/** One operation of the history. */
export interface HistoryOperation {
  readonly id: number;
  readonly client: number;
  readonly input: KvInput;
  /** Undefined when the outcome is unknown (it may have happened, at any time after invoke). */
  readonly output: KvOutput | undefined;
  /** Logical time of the invocation (orders events within one virtual millisecond). */
  readonly invokeStamp: number;
  /** Logical time of the completion; Infinity when the outcome is unknown. */
  readonly completeStamp: number;
  readonly invokeMs: number;
  /** Virtual time of completion; undefined when unknown. */
  readonly completeMs: number | undefined;
}

/** A short, readable form of an operation, for violation reports. */
export function describeOperation(op: HistoryOperation): string {
  const input =
    op.input.kind === "put"
      ? `put(${op.input.key}, ${op.input.value})`
      : op.input.kind === "get"
        ? `get(${op.input.key})`
        : `cas(${op.input.key}, ${op.input.expected ?? "∅"} → ${op.input.value})`;
  const output =
    op.output === undefined
      ? "unknown"
      : op.output.kind === "get"
        ? (op.output.value ?? "∅")
        : op.output.kind === "cas"
          ? op.output.succeeded
            ? "ok"
            : `failed (current ${op.output.current ?? "∅"})`
          : "ok";
  const end = op.completeMs === undefined ? "?" : String(op.completeMs);
  return `#${op.id} client ${op.client} ${input} -> ${output} [${op.invokeMs}..${end} ms]`;
}
