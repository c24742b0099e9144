/**
 * The clients of a chaos run: each sends kv operations (put, linearizable get, compare-and-set,
 * all with unique values) one at a time to a random node and records them as a history the
 * project's linearizability checker reads: invoke and complete in one logical order (all clients
 * live in this one process), and an outcome of ok, fail (definitely not applied) or unknown.
 */
import type { SeededRandom } from "../../src/common/random.js";
import type { HistoryOperation, KvInput, KvOutput } from "../../src/sim/history.js";
import { clientHeaders } from "./profile.js";

/** Error codes after which a write definitely did not happen. */
const DEFINITE_FAILURES = new Set([
  "NOT_LEADER",
  "OVERLOADED",
  "STORAGE_FULL",
  "TOO_LARGE",
  "INVALID_ARGUMENT",
]);
const REQUEST_TIMEOUT_MS = 2000;

/** The history and its counters. */
export class History {
  readonly operations: HistoryOperation[] = [];
  private stamp = 0;
  private nextId = 0;
  private readonly origin = performance.now();
  ok = 0;
  failed = 0;
  unknown = 0;
  /** Successful writes, with their completion time (ms since the run began), for liveness. */
  readonly writeTimesMs: number[] = [];

  nowMs(): number {
    return performance.now() - this.origin;
  }

  /** Records the invocation; returns the function that records the completion. */
  invoke(client: number, input: KvInput): (output: KvOutput | undefined | "fail") => void {
    const id = this.nextId++;
    const invokeStamp = ++this.stamp;
    const invokeMs = Math.round(this.nowMs());
    return (output) => {
      if (output === "fail") {
        this.failed++;
        return; // never happened: not part of the history
      }
      const known = output !== undefined;
      if (known) this.ok++;
      else this.unknown++;
      const completeMs = Math.round(this.nowMs());
      if (known && input.kind !== "get") this.writeTimesMs.push(completeMs);
      this.operations.push({
        id,
        client,
        input,
        output,
        invokeStamp,
        completeStamp: known ? ++this.stamp : Infinity,
        invokeMs,
        completeMs: known ? completeMs : undefined,
      });
    };
  }
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function request(
  url: string,
  method: string,
  body: unknown,
  timeoutMs: number,
): Promise<Answer> {
  const response = await fetch(url, {
    method,
    headers: {
      ...clientHeaders(),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: response.status, body: parsed };
}

function isDefiniteFailure(answer: Answer): boolean {
  const code = String(answer.body["code"] ?? "");
  const message = String(answer.body["message"] ?? "");
  return DEFINITE_FAILURES.has(code) || (code === "UNAVAILABLE" && message.includes("not applied"));
}

/**
 * Runs one operation against `baseUrl`; returns its output, undefined (unknown) or "fail".
 * Probes pass a short `timeoutMs`: a request forwarded to a leader that was just cut off waits
 * out its whole timeout although a new leader may already take writes.
 */
export async function runOperation(
  baseUrl: string,
  input: KvInput,
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<KvOutput | undefined | "fail"> {
  const path = `${baseUrl}/v1/kv/${encodeURIComponent(input.key)}`;
  try {
    if (input.kind === "get") {
      const answer = await request(path, "GET", undefined, timeoutMs);
      if (answer.status === 200) {
        const entry = answer.body["entry"] as { value?: string };
        return { kind: "get", value: entry.value ?? null };
      }
      if (answer.status === 404 && answer.body["code"] === "NOT_FOUND") {
        return { kind: "get", value: null };
      }
      return undefined; // a failed read constrains nothing
    }
    if (input.kind === "put") {
      const answer = await request(path, "PUT", { value: input.value }, timeoutMs);
      if (answer.status === 200) return { kind: "put" };
      return isDefiniteFailure(answer) ? "fail" : undefined;
    }
    const answer = await request(
      `${path}/cas`,
      "POST",
      {
        expected: input.expected === null ? { absent: true } : { value: input.expected },
        value: input.value,
      },
      timeoutMs,
    );
    if (answer.status === 200) {
      if (answer.body["succeeded"] === true) return { kind: "cas", succeeded: true };
      const current = answer.body["current"] as { value?: string } | null | undefined;
      return { kind: "cas", succeeded: false, current: current?.value ?? null };
    }
    return isDefiniteFailure(answer) ? "fail" : undefined;
  } catch {
    return undefined; // timeout or connection error: it may have happened
  }
}

/** Options of {@link runClients}. */
export interface ClientOptions {
  readonly clients: number;
  readonly keys: number;
  readonly random: SeededRandom;
  /** The API URLs to spread requests over (read at every operation: membership changes it). */
  readonly endpoints: () => readonly string[];
  readonly signal: AbortSignal;
}

/** Runs the clients until `signal` aborts; resolves when every client has stopped. */
export async function runClients(history: History, options: ClientOptions): Promise<void> {
  const lastSeen = new Map<string, string | null>();
  const client = async (number: number): Promise<void> => {
    let counter = 0;
    while (!options.signal.aborted) {
      const key = `k${options.random.int(options.keys)}`;
      const value = `c${number}-${counter++}`;
      const roll = options.random.int(10);
      const input: KvInput =
        roll < 4
          ? { kind: "put", key, value }
          : roll < 8
            ? { kind: "get", key }
            : { kind: "cas", key, expected: lastSeen.get(key) ?? null, value };
      const endpoints = options.endpoints();
      const url = endpoints[options.random.int(endpoints.length)] as string;
      const complete = history.invoke(number, input);
      const output = await runOperation(url, input);
      complete(output);
      if (output !== undefined && output !== "fail") {
        if (output.kind === "get") lastSeen.set(key, output.value);
        else if (output.kind === "put" || output.succeeded) lastSeen.set(key, value);
      }
      if (output === undefined || output === "fail") {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  };
  await Promise.all(Array.from({ length: options.clients }, (_, i) => client(i + 1)));
}
