/**
 * Reads a kv watch in the binary format of `common/watch-wire.ts`. A watch asks for it and
 * reads Server-Sent Events instead when the node answers with them (a node of an older release).
 *
 * Cost: a change frame's events become {@link WatchEvent}s without any JSON; each value is a
 * plain `Uint8Array` view of the frame's bytes (no copy; it keeps that frame's memory while it is
 * held), and its text is decoded only when `valueText` is read (a getter: `toJSON()` gives the
 * plain entry). Numbers are read through a `DataView` and short ASCII keys come from
 * `key-cache.ts`: a 70-event frame of 128-byte values decodes in ~155 ns an event with every
 * value's view made (~410 ns with `Buffer` views, `readDoubleLE` and `toString` for each key).
 * The connection's reads reach the consumer through {@link FrameReader}.
 */
import { isUtf8 } from "node:buffer";
import type { IncomingMessage } from "node:http";
import {
  WATCH_BINARY_MEDIA_TYPE,
  WATCH_CHANGE_FIXED_BYTES,
  WATCH_MAX_FRAME_BYTES,
  WatchEventOp,
  WatchFrameKind,
} from "../common/watch-wire.js";
import { ExchangeFailure } from "./http.js";
import { decodeKey } from "./key-cache.js";
import { openStream, parseJsonMessages, sseResponseBatches, type SseOptions } from "./sse.js";
import type { WatchEvent } from "./streams.js";
import type { KvEntry } from "./types.js";

/**
 * One message of a watch, decoded: its event name and JSON data (a change's data holds its
 * `index` and `revision`), and for a change of the binary format its decoded events.
 */
export interface WatchMessage {
  readonly event: string;
  readonly data: Record<string, unknown>;
  readonly events?: readonly WatchEvent[] | undefined;
}

/** The `Accept` of a watch: the binary format first, Server-Sent Events from older nodes. */
export const WATCH_ACCEPT = `${WATCH_BINARY_MEDIA_TYPE}, text/event-stream;q=0.5`;

/** Bytes of decoded frames a {@link FrameReader} holds for its consumer before it stops reading. */
const MAX_QUEUED_BYTES = 64 * 1024;

/**
 * Opens a kv watch and resolves with its messages: those of each read of the connection
 * together (one step of the iteration per read, not per message), or of as many reads as came in
 * since the consumer last asked. Rejects with the typed API error of a non-200 answer, or
 * `ExchangeFailure` if the connection cannot be made; the iteration throws `ExchangeFailure` if
 * the connection fails or a frame is malformed.
 */
export async function watchBatches(
  endpoint: URL,
  path: string,
  options: SseOptions,
): Promise<AsyncIterable<readonly WatchMessage[]>> {
  const response = await openStream(endpoint, path, options, WATCH_ACCEPT);
  const type = response.headers["content-type"] ?? "";
  if (response.statusCode !== 200 || !type.startsWith(WATCH_BINARY_MEDIA_TYPE)) {
    return sseWatchBatches(response, endpoint, options);
  }
  return new FrameReader(response, endpoint, options.signal);
}

/** A watch answered with Server-Sent Events (a node of an older release), or an error answer. */
async function* sseWatchBatches(
  response: IncomingMessage,
  endpoint: URL,
  options: SseOptions,
): AsyncGenerator<readonly WatchMessage[]> {
  for await (const batch of sseResponseBatches(response, endpoint, options)) {
    yield parseJsonMessages(batch);
  }
}

/** What a consumer waiting in {@link FrameReader.next} is handed. */
interface Waiter {
  readonly resolve: (result: IteratorResult<readonly WatchMessage[]>) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The messages of a binary watch response, decoded as each read of the connection arrives
 * (`data` events) and handed to the consumer's pending `next()` at once, or queued until it asks.
 *
 * Why not `for await` over the response inside async generators: a watcher of a busy prefix gets
 * a read every few milliseconds, and each step of Node's readable-stream iterator and of each
 * generator layer above it (the reader, the format switch, the reconnecting stream) costs
 * promises and microtask turns: about 27 µs of CPU a read with four layers, against ~0.7 µs an
 * event. Here a read costs one promise, resolved from the `data` handler.
 *
 * Backpressure: past {@link MAX_QUEUED_BYTES} of queued reads the response is paused (the
 * socket's buffer then fills, and the node cuts a watcher that stays behind off with
 * `FELL_BEHIND`), and resumed when the consumer takes the queue.
 */
export class FrameReader implements AsyncIterableIterator<readonly WatchMessage[]> {
  readonly #response: IncomingMessage;
  readonly #endpoint: URL;
  readonly #signal: AbortSignal;
  readonly #frames = new FrameSplitter();
  #queued: WatchMessage[] = [];
  #queuedBytes = 0;
  #waiter: Waiter | undefined;
  /** Why the response ended early (thrown once the queue is taken), if it did. */
  #failure: Error | undefined;
  #ended = false;

  constructor(response: IncomingMessage, endpoint: URL, signal: AbortSignal) {
    this.#response = response;
    this.#endpoint = endpoint;
    this.#signal = signal;
    response.on("data", (chunk: Buffer) => this.#onData(chunk));
    response.on("error", (error: Error) => this.#end(error));
    // A response without a length ends with its connection: `end`, then `close`.
    response.on("close", () => this.#end(undefined));
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<readonly WatchMessage[]>> {
    if (this.#queued.length > 0) return Promise.resolve({ done: false, value: this.#take() });
    const failure = this.#failure;
    if (failure !== undefined) {
      this.#failure = undefined;
      return Promise.reject(failure);
    }
    if (this.#ended) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** Ends the iteration early (the consumer stopped): closes the connection. */
  return(): Promise<IteratorResult<readonly WatchMessage[]>> {
    this.#queued = [];
    this.#end(undefined);
    return Promise.resolve({ done: true, value: undefined });
  }

  #onData(chunk: Buffer): void {
    if (this.#ended) return;
    let messages: WatchMessage[];
    try {
      messages = this.#frames.push(chunk);
    } catch (error) {
      this.#end(error as Error);
      return;
    }
    if (messages.length === 0) return;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter.resolve({ done: false, value: messages });
      return;
    }
    if (this.#queued.length === 0) this.#queued = messages;
    else for (const message of messages) this.#queued.push(message);
    this.#queuedBytes += chunk.length;
    if (this.#queuedBytes > MAX_QUEUED_BYTES) this.#response.pause();
  }

  #take(): WatchMessage[] {
    const messages = this.#queued;
    this.#queued = [];
    if (this.#queuedBytes > MAX_QUEUED_BYTES && !this.#ended) this.#response.resume();
    this.#queuedBytes = 0;
    return messages;
  }

  /** The response is over: `error` is why, if it failed (or a frame was malformed). */
  #end(error: Error | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#response.destroy();
    const failure =
      error === undefined ? undefined : this.#signal.aborted ? error : this.#lost(error);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter === undefined) this.#failure = failure;
    else if (failure === undefined) waiter.resolve({ done: true, value: undefined });
    else waiter.reject(failure);
  }

  #lost(error: Error): Error {
    if (error instanceof ExchangeFailure) return error;
    const why = error instanceof MalformedFrame ? error.message : String(error);
    return new ExchangeFailure("lost", `${this.#endpoint.href}: ${why}`);
  }
}

/** A frame that breaks the format (a broken or foreign peer). */
class MalformedFrame extends Error {}

/**
 * Cuts a byte stream into frames and decodes them; keeps the bytes of a frame cut by a chunk's
 * end until the next chunk. Throws {@link MalformedFrame}.
 */
export class FrameSplitter {
  #pending: Buffer | undefined;

  /** The messages of the frames that `chunk` completes. */
  push(chunk: Buffer): WatchMessage[] {
    const bytes = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = undefined;
    const out: WatchMessage[] = [];
    let at = 0;
    while (bytes.length - at >= 4) {
      const length = bytes.readUInt32LE(at);
      if (length < 1 || length > WATCH_MAX_FRAME_BYTES) {
        throw new MalformedFrame(`a watch frame of ${length} bytes`);
      }
      if (bytes.length - at - 4 < length) break;
      const message = decodeFrame(bytes, at + 4, at + 4 + length);
      if (message !== undefined) out.push(message);
      at += 4 + length;
    }
    if (at < bytes.length) this.#pending = bytes.subarray(at);
    return out;
  }
}

/** The message of the frame `bytes[start, end)` (kind first); undefined for an unknown kind. */
function decodeFrame(bytes: Buffer, start: number, end: number): WatchMessage | undefined {
  const kind = bytes.readUInt8(start);
  if (kind === WatchFrameKind.Change) return decodeChange(bytes, start + 1, end);
  const name =
    kind === WatchFrameKind.Open
      ? "open"
      : kind === WatchFrameKind.Progress
        ? "progress"
        : kind === WatchFrameKind.Error
          ? "error"
          : undefined;
  // A kind from a later release: skipped, as an SSE reader skips an unknown event.
  if (name === undefined) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString("utf8", start + 1, end));
  } catch {
    throw new MalformedFrame(`a watch ${name} frame that is not JSON`);
  }
  if (typeof data !== "object" || data === null) {
    throw new MalformedFrame(`a watch ${name} frame that is not a JSON object`);
  }
  return { event: name, data: data as Record<string, unknown> };
}

function decodeChange(bytes: Buffer, start: number, end: number): WatchMessage {
  if (end - start < WATCH_CHANGE_FIXED_BYTES)
    throw new MalformedFrame("a short watch change frame");
  // A DataView reads a number in a few ns, where Buffer's readDoubleLE copies it byte by byte.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = start + 8; // the id: the newest revision, which `revision` never falls behind
  const index = view.getFloat64(at, true);
  const revision = view.getFloat64(at + 8, true);
  const count = view.getUint32(at + 16, true);
  at += 20;
  const events: WatchEvent[] = [];
  for (let i = 0; i < count; i++) {
    need(at, 5, end);
    const op = bytes[at];
    const keyLength = view.getUint32(at + 1, true);
    at += 5;
    need(at, keyLength, end);
    const key = decodeKey(bytes, at, keyLength);
    at += keyLength;
    if (op === WatchEventOp.Delete) {
      need(at, 8, end);
      events.push({ type: "delete", key, revision: view.getFloat64(at, true) });
      at += 8;
    } else if (op === WatchEventOp.Put) {
      need(at, 4, end);
      const valueLength = view.getUint32(at, true);
      at += 4;
      need(at, valueLength + 24, end);
      const valueAt = at;
      at += valueLength;
      const modRevision = view.getFloat64(at + 8, true);
      const entry = new WatchedEntry(
        key,
        new Uint8Array(bytes.buffer, bytes.byteOffset + valueAt, valueLength),
        view.getFloat64(at, true),
        modRevision,
        view.getFloat64(at + 16, true),
      );
      at += 24;
      events.push({ type: "put", key, revision: modRevision, entry });
    } else {
      throw new MalformedFrame(`a watch event of unknown op ${op}`);
    }
  }
  if (at !== end) throw new MalformedFrame("a watch change frame with bytes after its events");
  return { event: "change", data: { index, revision }, events };
}

function need(at: number, bytes: number, end: number): void {
  if (at + bytes > end) throw new MalformedFrame("a watch change frame cut inside an event");
}

/** A put's entry whose text is decoded on first read (most watchers read bytes or nothing). */
class WatchedEntry implements KvEntry {
  #text: string | undefined | null = null;

  constructor(
    readonly key: string,
    /**
     * The value's bytes: a view of the frame. A plain `Uint8Array`, not a `Buffer`: Node makes a
     * `Buffer` view in about twice the time (~55 against ~25 ns), and nearly every watcher reads
     * the value.
     */
    readonly value: Uint8Array,
    readonly createRevision: number,
    readonly modRevision: number,
    readonly version: number,
  ) {}

  /** The value as text, when it is valid UTF-8 (a byte-order mark is kept). */
  get valueText(): string | undefined {
    if (this.#text === null) {
      const value = this.value;
      this.#text = isUtf8(value)
        ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("utf8")
        : undefined;
    }
    return this.#text;
  }

  /** As a plain entry (with `valueText`, which a getter would leave out of `JSON.stringify`). */
  toJSON(): KvEntry {
    const { key, value, valueText, createRevision, modRevision, version } = this;
    return { key, value, valueText, createRevision, modRevision, version };
  }
}
