/**
 * The event stream and kv watch as async iterables that resume by themselves: after a dropped
 * connection, a node going away or a "fell behind" cut-off, they reconnect (to the next
 * endpoint) from just after the last entry they delivered, so a consumer sees every event once,
 * in order. Only `GONE` (the history needed is no longer kept on any endpoint) and refusals
 * (permission, bad arguments) end them with an error.
 */
import type { Agent as HttpsAgent } from "node:https";
import { GoneError, isBlixardError, type BlixardError } from "../common/errors.js";
import type { Task, Vm, Worker } from "./orchestrator.js";
import { ExchangeFailure } from "./http.js";
import { parseJsonMessages, sseBatches, type SseOptions } from "./sse.js";
import type { KvEntry } from "./types.js";
import { encodeUtf8 } from "./utf8-slab.js";
import { watchBatches } from "./watch-binary.js";

/** The topics of the event stream. */
export type EventTopic = "kv" | "task" | "vm" | "worker" | "cluster";

/** One applied change, from the event stream. */
export interface ClusterEvent {
  /** The raft index of the entry that made the change (equal on every node). */
  readonly index: number;
  readonly topic: EventTopic;
  /** kv: `put` or `delete`; tasks, VMs, workers: `updated` or `removed`; cluster: `settings`, `acl`. */
  readonly type: string;
  /** The key, task id, VM name or worker node id. */
  readonly key: string;
  /**
   * kv events: the entry (a delete has only `key` and `modRevision`). A put's value is in exactly
   * one of `value` (the bytes are valid UTF-8: this is their text) and `valueBase64` (they are
   * not); `client.watch()` gives both bytes and text.
   */
  readonly kv?: {
    readonly key: string;
    readonly value?: string;
    readonly valueBase64?: string;
    readonly createRevision?: number;
    readonly modRevision: number;
    readonly version?: number;
  };
  readonly task?: Task;
  readonly vm?: Vm;
  readonly worker?: Worker;
}

/** A heartbeat: the stream delivered everything up to `index` (and kv `revision`). */
export interface StreamProgress {
  readonly index: number;
  readonly revision: number;
  readonly leader: number | null;
  readonly term: number;
}

/** Options of {@link BlixardClient.events}. */
export interface EventsOptions {
  /** Default: every topic (each needs its read permission). */
  readonly topics?: readonly EventTopic[];
  /** The first raft index to deliver. Default: from now. */
  readonly from?: number;
  /** Only events of this key, task id, VM name or worker node id. */
  readonly key?: string;
  /** Stops the iteration (it then ends without an error). */
  readonly signal?: AbortSignal;
  /** Called with each heartbeat (where the stream is, the node's leader and term). */
  readonly onProgress?: (progress: StreamProgress) => void;
}

/** One put or delete, from a kv watch. */
export interface WatchEvent {
  readonly type: "put" | "delete";
  readonly key: string;
  /** The store revision of this change. */
  readonly revision: number;
  /** Puts: the entry written (`value` its bytes; `valueText` their text when valid UTF-8). */
  readonly entry?: KvEntry;
}

/** Options of {@link BlixardClient.watch}: a key, or a prefix (default: every key). */
export interface WatchOptions {
  readonly key?: string;
  readonly prefix?: string;
  /** The first revision to deliver. Default: from now. */
  readonly fromRevision?: number;
  readonly signal?: AbortSignal;
  /** Called with each progress notification: every change up to `revision` was delivered. */
  readonly onProgress?: (progress: StreamProgress) => void;
}

/** How the streams reach the cluster (from the client). */
export interface StreamTransport {
  readonly endpoints: readonly URL[];
  readonly headers: Readonly<Record<string, string>>;
  readonly httpsAgent: HttpsAgent;
  readonly connectTimeoutMs: number;
  readonly backoffMs: number;
}

/** The longest wait between reconnects. */
const MAX_RECONNECT_DELAY_MS = 2_000;

interface ChangeData {
  readonly index: number;
  readonly revision: number;
  readonly events: readonly Record<string, unknown>[];
}

/**
 * One message of a stream: its event name and JSON data; a change of the binary watch format
 * carries its decoded events instead of JSON ones.
 */
interface StreamMessage<T> {
  readonly event: string;
  readonly data: Record<string, unknown>;
  readonly events?: readonly T[] | undefined;
}

/**
 * Opens one stream response and resolves with its messages, those of each chunk together (see
 * `sse.ts`).
 */
type MessageSource<T> = (
  endpoint: URL,
  path: string,
  options: SseOptions,
) => Promise<AsyncIterable<readonly StreamMessage<T>[]>>;

/** Server-Sent Events, each message's data parsed as JSON (opened by the first step). */
async function* sseJsonBatches(
  endpoint: URL,
  path: string,
  options: SseOptions,
): AsyncGenerator<readonly StreamMessage<never>[]> {
  for await (const batch of sseBatches(endpoint, path, options)) yield parseJsonMessages(batch);
}

/** What {@link resuming} reads and how. */
interface ResumeRequest<T> {
  readonly source: MessageSource<T>;
  readonly path: (from: number | undefined) => string;
  readonly progressEvent: string;
  /** The resume point after a message with this data (`index` or `revision`) + 1. */
  readonly position: (data: { index: number; revision: number }) => number;
  /** The item of one event of a change message. */
  readonly onChange: (event: Record<string, unknown>, data: ChangeData) => T;
  readonly onProgress: ((progress: StreamProgress) => void) | undefined;
}

/**
 * Reconnects to `endpoints` in turn, resuming from `next()`, yielding the events of each change
 * message as one array: `onChange` of each, or the events a binary change carries (one step of
 * the iteration per message, not per event; {@link Flattened} makes it one per event). See the
 * module comment for what ends it.
 */
async function* resuming<T>(
  transport: StreamTransport,
  signal: AbortSignal | undefined,
  request: ResumeRequest<T>,
  from: number | undefined,
): AsyncGenerator<readonly T[]> {
  let next = from;
  let endpointIndex = 0;
  let failures = 0;
  let goneInARow = 0;
  const aborted = signal ?? new AbortController().signal;
  while (!aborted.aborted) {
    const endpoint = transport.endpoints[endpointIndex % transport.endpoints.length] as URL;
    try {
      const batches = await request.source(endpoint, request.path(next), {
        headers: transport.headers,
        signal: aborted,
        httpsAgent: transport.httpsAgent,
        connectTimeoutMs: transport.connectTimeoutMs,
      });
      for await (const batch of batches) {
        failures = 0;
        goneInARow = 0;
        for (const message of batch) {
          // The server's data, typed by the event that carries it (the stream protocol).
          const data = message.data;
          if (message.event === "open") {
            next ??= request.position(data as { index: number; revision: number }) + 1;
          } else if (message.event === "change") {
            const change = data as ChangeData & Record<string, unknown>;
            yield message.events ?? change.events.map((event) => request.onChange(event, change));
            next = request.position(change) + 1;
          } else if (message.event === request.progressEvent) {
            const progress = data as StreamProgress & Record<string, unknown>;
            next = Math.max(next ?? 0, request.position(progress) + 1);
            request.onProgress?.(progress);
          } else if (message.event === "error") {
            const resumeFrom = Number(data["resumeFrom"]);
            if (data["code"] === "GONE") {
              throw new GoneError(String(data["message"]), resumeFrom);
            }
            // FELL_BEHIND: still kept; reconnect from there (never before what was delivered).
            next = Math.max(next ?? 0, resumeFrom);
          }
        }
      }
    } catch (error) {
      if (aborted.aborted) return;
      if (error instanceof GoneError) {
        // Another node may keep more history (one that installed a snapshot keeps less).
        if (++goneInARow >= transport.endpoints.length) throw error;
      } else if (!reconnectable(error)) {
        throw error;
      }
    }
    endpointIndex++;
    failures++;
    const delayMs = Math.min(MAX_RECONNECT_DELAY_MS, transport.backoffMs * 2 ** (failures - 1));
    await sleepUnlessAborted(delayMs * (0.5 + Math.random() / 2), aborted);
  }
}

/**
 * The items of `batches` one at a time, as `for (const item of batch) yield item` in an async
 * generator would give them, without a generator's promises and microtask turns for every item:
 * an item of a batch already received is handed out in a promise that is already resolved. A
 * watcher of a busy prefix reading `watch()` one event at a time spent ~270 ns an event more
 * than one reading `watchBatches()`.
 *
 * Like a generator, it serves one `next()` at a time: calls made before the previous one settled
 * wait their turn, so no item is skipped or given twice. `return()` and `throw()` end the
 * underlying stream (its connection is closed).
 */
class Flattened<T> implements AsyncGenerator<T> {
  readonly #batches: AsyncGenerator<readonly T[]>;
  #batch: readonly T[] = [];
  #at = 0;
  /** The `next()` that is waiting for a batch, if one is. */
  #fetching: Promise<IteratorResult<T>> | undefined;

  constructor(batches: AsyncGenerator<readonly T[]>) {
    this.#batches = batches;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#fetching !== undefined) {
      const after = (): Promise<IteratorResult<T>> => this.next();
      return this.#fetching.then(after, after);
    }
    if (this.#at < this.#batch.length) {
      return Promise.resolve({ done: false, value: this.#batch[this.#at++] as T });
    }
    const fetching = this.#fetch();
    this.#fetching = fetching;
    const settled = (): void => {
      if (this.#fetching === fetching) this.#fetching = undefined;
    };
    fetching.then(settled, settled);
    return fetching;
  }

  async #fetch(): Promise<IteratorResult<T>> {
    for (;;) {
      const result = await this.#batches.next();
      if (result.done === true) return { done: true, value: undefined };
      if (result.value.length === 0) continue;
      this.#batch = result.value;
      this.#at = 1;
      return { done: false, value: result.value[0] as T };
    }
  }

  async return(): Promise<IteratorResult<T>> {
    this.#batch = [];
    await this.#batches.return(undefined);
    return { done: true, value: undefined };
  }

  async throw(error: unknown): Promise<IteratorResult<T>> {
    this.#batch = [];
    const result = await this.#batches.throw(error);
    if (result.done === true) return { done: true, value: undefined };
    this.#batch = result.value;
    this.#at = 0;
    return this.next();
  }
}

/** Whether a stream that failed with `error` should reconnect (to the next endpoint). */
export function reconnectable(error: unknown): boolean {
  if (error instanceof ExchangeFailure) return true;
  if (!isBlixardError(error)) return false;
  const code = (error as BlixardError).code;
  return (
    code === "UNAVAILABLE" || code === "TIMEOUT" || code === "OVERLOADED" || code === "INTERNAL"
  );
}

/** Waits `ms`, or less when `signal` aborts first (a reconnect's back-off). */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** The event stream (see {@link EventsOptions}). */
export function eventStream(
  transport: StreamTransport,
  options: EventsOptions = {},
): AsyncGenerator<ClusterEvent> {
  const query = (from: number | undefined): string => {
    const params = new URLSearchParams();
    if (options.topics !== undefined && options.topics.length > 0) {
      params.set("topic", options.topics.join(","));
    }
    if (options.key !== undefined) params.set("key", options.key);
    if (from !== undefined) params.set("from", String(from));
    const text = params.toString();
    return `/v1/events${text === "" ? "" : `?${text}`}`;
  };
  return new Flattened(
    resuming<ClusterEvent>(
      transport,
      options.signal,
      {
        source: (endpoint, path, sse) => Promise.resolve(sseJsonBatches(endpoint, path, sse)),
        path: query,
        progressEvent: "heartbeat",
        position: (data) => data.index,
        onChange: (event, data) => ({ ...event, index: data.index }) as ClusterEvent,
        onProgress: options.onProgress,
      },
      options.from,
    ),
  );
}

/** What a kv watch of `options` reads (see {@link WatchOptions}). */
function watchRequest(options: WatchOptions): ResumeRequest<WatchEvent> {
  const query = (from: number | undefined): string => {
    const params = new URLSearchParams();
    if (options.key !== undefined) params.set("key", options.key);
    else params.set("prefix", options.prefix ?? "");
    if (from !== undefined) params.set("fromRevision", String(from));
    return `/v1/kv/watch?${params.toString()}`;
  };
  return {
    // The binary watch format when the node speaks it (see watch-binary.ts).
    source: watchBatches as MessageSource<WatchEvent>,
    path: query,
    progressEvent: "progress",
    position: (data) => data.revision,
    onChange: watchEvent,
    onProgress: options.onProgress,
  };
}

/** A kv watch (see {@link WatchOptions}), one event at a time. */
export function watchStream(
  transport: StreamTransport,
  options: WatchOptions = {},
): AsyncGenerator<WatchEvent> {
  return new Flattened(
    resuming(transport, options.signal, watchRequest(options), options.fromRevision),
  );
}

/**
 * A kv watch (see {@link WatchOptions}), the events of each message the node sent as one array
 * (like an etcd watch response): one step of the iteration per message, not per event.
 */
export function watchBatchStream(
  transport: StreamTransport,
  options: WatchOptions = {},
): AsyncGenerator<readonly WatchEvent[]> {
  return resuming(transport, options.signal, watchRequest(options), options.fromRevision);
}

function watchEvent(event: Record<string, unknown>): WatchEvent {
  const kv = event["kv"] as {
    key: string;
    value?: string;
    valueBase64?: string;
    createRevision?: number;
    modRevision: number;
    version?: number;
  };
  if (event["type"] === "delete") {
    return { type: "delete", key: kv.key, revision: kv.modRevision };
  }
  const text = kv.value;
  // The server sends `value` when the bytes are valid UTF-8 (decoded strictly, the BOM kept), so
  // encoding it gives the bytes back; `valueBase64` (alone) when they are not.
  const value =
    text !== undefined
      ? encodeUtf8(text)
      : new Uint8Array(Buffer.from(kv.valueBase64 ?? "", "base64"));
  const entry: KvEntry =
    text === undefined
      ? {
          key: kv.key,
          value,
          createRevision: kv.createRevision ?? kv.modRevision,
          modRevision: kv.modRevision,
          version: kv.version ?? 1,
        }
      : {
          key: kv.key,
          value,
          valueText: text,
          createRevision: kv.createRevision ?? kv.modRevision,
          modRevision: kv.modRevision,
          version: kv.version ?? 1,
        };
  return { type: "put", key: kv.key, revision: kv.modRevision, entry };
}
