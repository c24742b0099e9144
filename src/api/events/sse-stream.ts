/**
 * One Server-Sent Events stream over the change feed: it walks a cursor through the feed's
 * history and writes the matching events of whole entries, so an entry is delivered whole or not
 * at all and a resume point is always an entry boundary.
 *
 * Cost: each event's JSON is built once (`FeedEvent.json`), the entries read in one turn go out
 * in one socket write, and streams of the same filter that read the same entries in the same
 * turn share one encoding of them (`shared-messages.ts`): 64 caught-up watchers of a prefix cost
 * one encoding and 64 writes per wake-up. The streams of a feed wake up together, at most every
 * `deliveryIntervalMs` while writes keep coming, longer when the node has many streams
 * (`delivery-pacer.ts`), so under load a write carries the entries of several applied batches.
 * Each write goes straight to the socket (see `start`).
 *
 * Wire format (`text/event-stream`, the body ended by the connection, not chunked):
 * - `event: open`, data `{index, revision}`: where the node's feed is as the stream starts;
 * - `event: change`, `id: N`, data `{index, revision, events: [...]}`. Event stream: one message
 *   per entry, `N` its raft index. kv watch: one message per socket write with the matching
 *   events of every entry since the previous one (like an etcd watch response), `N` the newest
 *   kv revision among them, `index` and `revision` those of the last entry. Resume from N+1 (or
 *   from `revision`+1, which never skips a matching event either);
 * - `event: heartbeat` (event stream) / `event: progress` (kv watch), data `{index, revision,
 *   leader, term}`: sent every `heartbeatMs`, and only when the stream has delivered everything
 *   up to that index and revision (etcd's progress notification), so resuming from index+1 or
 *   revision+1 skips nothing;
 * - `event: error`, data `{code, message, resumeFrom}`, then the stream ends: `FELL_BEHIND` (the
 *   consumer did not read fast enough; `resumeFrom` is still kept) or `GONE` (history dropped).
 *
 * A kv watch can instead be written in the binary format of `common/watch-wire.ts` (option
 * `format`, asked for with an `Accept` header): the same messages as frames, the events of a
 * change as bytes with each value as it is stored.
 *
 * Backpressure: a message is written only while the socket takes it (`write` returns true), so a
 * stream holds at most one socket buffer. A consumer more than `maxLagRecords` entries behind is
 * cut off rather than buffered for. Catching up yields to the event loop every batch.
 */
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { isBlixardError } from "../../common/errors.js";
import type { ChangeFeed, FeedRecord } from "./change-feed.js";
import { subscribePaced } from "./delivery-pacer.js";
import type { FeedEvent } from "./feed-event.js";
import { SharedMessages } from "./shared-messages.js";
import { changeFrame, jsonFrame } from "./watch-binary.js";
import { WATCH_BINARY_MEDIA_TYPE, WatchFrameKind } from "../../common/watch-wire.js";

/** The bytes of entries none of whose events match. */
const NOTHING = Buffer.alloc(0);
/** The shared messages of each feed's streams. */
const sharedByFeed = new WeakMap<ChangeFeed, SharedMessages>();

/** Default of {@link SseStreamOptions.heartbeatMs}. */
export const DEFAULT_HEARTBEAT_MS = 5_000;
/** Default of {@link SseStreamOptions.maxLagRecords}. */
export const DEFAULT_MAX_LAG_RECORDS = 4_096;
/** Default of {@link SseStreamOptions.deliveryIntervalMs}. */
export const DEFAULT_DELIVERY_INTERVAL_MS = 10;
/** Entries examined per event-loop turn while catching up. */
const RECORDS_PER_TURN = 256;
/** Bytes gathered into one socket write. */
const WRITE_CHUNK_BYTES = 64 * 1024;
/** A stream cut off is destroyed if its last message is not flushed within this long. */
const CLOSE_GRACE_MS = 2_000;

/** What a heartbeat says about the node. */
export interface NodeView {
  readonly leader: number | null;
  readonly term: number;
}

/** Options of {@link serveSseStream}. */
export interface SseStreamOptions {
  readonly feed: ChangeFeed;
  /** The first cursor (from `feed.seekIndex` or `feed.seekRevision`). */
  readonly cursor: number;
  /** `events`: the event stream (ids are raft indexes); `watch`: kv watch (ids are revisions). */
  readonly mode: "events" | "watch";
  /** Which events the consumer gets. */
  readonly filter: (event: FeedEvent) => boolean;
  /**
   * What `filter` lets through, as a string: streams with the same mode and `filterKey` write the
   * same bytes for the same entries, so those that read them in the same turn encode them once
   * (see `shared-messages.ts`). Undefined: this stream's messages are its own.
   */
  readonly filterKey?: string;
  /** kv watch: skip changes below this revision (the start record may hold older ones). */
  readonly minRevision?: number;
  /**
   * Event stream: skip entries below this index. A node still replaying its log after a restart
   * applies entries older than what a resuming consumer asked for; they must not be resent.
   */
  readonly minIndex?: number;
  /**
   * `sse` (default): Server-Sent Events. `binary`: the binary watch format
   * (`common/watch-wire.ts`), kv watch only.
   */
  readonly format?: "sse" | "binary";
  /** Default {@link DEFAULT_HEARTBEAT_MS}. */
  readonly heartbeatMs?: number;
  /** Default {@link DEFAULT_MAX_LAG_RECORDS}. */
  readonly maxLagRecords?: number;
  /**
   * Under sustained writes, new entries are read at most this often (see `delivery-pacer.ts`);
   * 0: after every applied batch. Default {@link DEFAULT_DELIVERY_INTERVAL_MS}.
   */
  readonly deliveryIntervalMs?: number;
  /** The node's leader and term, for heartbeats. */
  readonly node: () => NodeView;
}

/**
 * Writes the SSE stream of `options` to `response` until the client goes away or is cut off.
 * Throws nothing (errors end the stream).
 */
export function serveSseStream(response: ServerResponse, options: SseStreamOptions): void {
  new SseStream(response, options).start();
}

class SseStream {
  readonly #response: ServerResponse;
  /** Where the body is written once the headers are out (see `start`). */
  #socket: Socket | undefined;
  readonly #options: SseStreamOptions;
  readonly #feed: ChangeFeed;
  readonly #epoch: number;
  readonly #maxLagRecords: number;
  readonly #shared: SharedMessages;
  /** The mode and filter key, shared by the streams that write the same bytes. */
  readonly #filterKey: string | undefined;
  /** {@link #filterKey} once the stream is past its start point (before, its bytes differ). */
  #sharedKey: string | undefined;
  readonly #minRevision: number;
  readonly #minIndex: number;
  readonly #binary: boolean;
  #cursor: number;
  /** Everything at or below this index / revision was delivered (valid when caught up). */
  #deliveredIndex: number;
  #deliveredRevision: number;
  #waitingForDrain = false;
  #pumpScheduled = false;
  #closed = false;
  #unsubscribe: () => void = () => undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  constructor(response: ServerResponse, options: SseStreamOptions) {
    this.#response = response;
    this.#options = options;
    this.#feed = options.feed;
    this.#epoch = options.feed.epoch;
    this.#cursor = options.cursor;
    this.#maxLagRecords = options.maxLagRecords ?? DEFAULT_MAX_LAG_RECORDS;
    this.#minRevision = options.minRevision ?? 0;
    this.#minIndex = options.minIndex ?? 0;
    this.#binary = options.format === "binary" && options.mode === "watch";
    const format = this.#binary ? "binary" : "sse";
    this.#filterKey =
      options.filterKey === undefined
        ? undefined
        : `${options.mode}\0${format}\0${options.filterKey}`;
    // From now on (nothing to skip): its messages are those of any stream of its filter.
    this.#sharedKey = this.#minRevision === 0 && this.#minIndex === 0 ? this.#filterKey : undefined;
    let shared = sharedByFeed.get(options.feed);
    if (shared === undefined) {
      shared = new SharedMessages();
      sharedByFeed.set(options.feed, shared);
    }
    this.#shared = shared;
    this.#deliveredIndex = Math.max(this.#feed.lastIndex, (options.minIndex ?? 0) - 1);
    this.#deliveredRevision = Math.max(this.#feed.kvRevision, (options.minRevision ?? 0) - 1);
  }

  start(): void {
    const response = this.#response;
    // The body ends when the connection does (HTTP/1.1 lets a response without a length say so
    // with `Connection: close`) instead of in chunks, so once the headers are out the body's bytes
    // are the socket's: each message is one plain socket write, not a chunk header, the bytes and
    // a CRLF through the response's cork-and-flush-next-tick path (the socket write costs about
    // two thirds of that on loopback). A stream holds its connection to the end anyway, and a
    // message is only complete with its blank line, so a cut connection loses no whole message.
    response.useChunkedEncodingByDefault = false;
    response.writeHead(200, {
      "content-type": this.#binary ? WATCH_BINARY_MEDIA_TYPE : "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    });
    response.flushHeaders();
    const socket = response.socket;
    if (socket === null) {
      // The client went away before the stream started.
      this.#close();
      return;
    }
    this.#socket = socket;
    response.on("close", () => this.#close());
    socket.on("drain", () => {
      this.#waitingForDrain = false;
      this.#pump();
    });
    this.#unsubscribe = subscribePaced(
      this.#feed,
      this.#options.deliveryIntervalMs ?? DEFAULT_DELIVERY_INTERVAL_MS,
      () => this.#pump(),
    );
    this.#heartbeat = setInterval(
      () => this.#sendHeartbeat(),
      this.#options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    );
    this.#write(
      this.#message("open", {
        index: this.#feed.lastIndex,
        revision: this.#feed.kvRevision,
      }),
    );
    this.#pump();
  }

  /**
   * Writes what the socket takes, up to {@link RECORDS_PER_TURN} entries per event-loop turn,
   * one message (watch) or run of messages (event stream) per socket write.
   */
  #pump(): void {
    if (this.#closed || this.#pumpScheduled) return;
    if (this.#feed.nextSeq - this.#cursor > this.#maxLagRecords) {
      this.#cutOff("FELL_BEHIND", "");
      return;
    }
    if (this.#waitingForDrain) return;
    const turnEnd = this.#cursor + RECORDS_PER_TURN;
    while (this.#cursor < turnEnd) {
      let bytes: Buffer | undefined;
      try {
        bytes = this.#next(turnEnd);
      } catch (error) {
        this.#cutOff("GONE", isBlixardError(error) ? error.message : String(error));
        return;
      }
      if (bytes === undefined) return;
      if (bytes.length > 0 && !this.#write(bytes)) return;
    }
    if (this.#cursor < this.#feed.nextSeq) {
      this.#pumpScheduled = true;
      setImmediate(() => {
        this.#pumpScheduled = false;
        this.#pump();
      });
    }
  }

  /**
   * The bytes of the entries from the cursor on (at most up to `limit`, and about
   * {@link WRITE_CHUNK_BYTES}), which it then passes: empty if none matches, undefined if there
   * is no new entry. Shared with the streams of the same filter that read the same entries this
   * turn, once this stream is past its start point. Throws `GoneError` (history dropped).
   */
  #next(limit: number): Buffer | undefined {
    const feed = this.#feed;
    const first = feed.read(this.#cursor, this.#epoch);
    if (first === undefined) return undefined;
    let end = this.#cursor + 1;
    let bytes = first.bytes;
    const stop = Math.min(limit, feed.nextSeq);
    while (end < stop && bytes < WRITE_CHUNK_BYTES) {
      bytes += (feed.read(end, this.#epoch) as FeedRecord).bytes;
      end++;
    }
    const key =
      this.#sharedKey === undefined
        ? undefined
        : `${this.#sharedKey}\0${this.#epoch}\0${this.#cursor}\0${end}`;
    let encoded = key === undefined ? undefined : this.#shared.get(key);
    if (encoded === undefined) {
      if (this.#binary) {
        encoded = this.#encodeBinary(end);
      } else {
        const text = this.#encode(end);
        encoded = text.length === 0 ? NOTHING : Buffer.from(text, "utf8");
      }
      if (key !== undefined) this.#shared.set(key, encoded);
    }
    const last = feed.read(end - 1, this.#epoch) as FeedRecord;
    this.#deliveredIndex = Math.max(this.#deliveredIndex, last.index);
    this.#deliveredRevision = Math.max(this.#deliveredRevision, last.kvRevision);
    this.#cursor = end;
    // Past its start point, this stream writes what any stream of its filter writes.
    if (
      this.#options.mode === "watch"
        ? last.kvRevision + 1 >= this.#minRevision
        : last.index + 1 >= this.#minIndex
    ) {
      this.#sharedKey = this.#filterKey;
    }
    return encoded;
  }

  /**
   * The text of the entries from the cursor up to `end`: kv watch, one message with every
   * matching event (like etcd's watch response, which carries every event since the last one),
   * its data's `index` and `revision` those of the last entry; event stream, one message per
   * entry with matching events. "" if no event matches.
   */
  #encode(end: number): string {
    const { filter, mode } = this.#options;
    const minRevision = this.#minRevision;
    let text = "";
    let events = "";
    let newestRevision = 0;
    let last: FeedRecord | undefined;
    for (let seq = this.#cursor; seq < end; seq++) {
      const record = this.#feed.read(seq, this.#epoch) as FeedRecord;
      last = record;
      if (record.index < this.#minIndex) continue;
      for (const event of record.events) {
        if (!filter(event)) continue;
        if (mode === "watch" && event.revision < minRevision) continue;
        events += events.length === 0 ? event.json() : `,${event.json()}`;
        if (event.revision > newestRevision) newestRevision = event.revision;
      }
      if (mode === "events" && events.length > 0) {
        text += changeMessage(record.index, record, events);
        events = "";
      }
    }
    if (mode === "watch" && events.length > 0 && last !== undefined) {
      text = changeMessage(newestRevision, last, events);
    }
    return text;
  }

  /** {@link #encode} of a kv watch in the binary format: one change frame, or NOTHING. */
  #encodeBinary(end: number): Buffer {
    const { filter } = this.#options;
    const minRevision = this.#minRevision;
    const events: Buffer[] = [];
    let eventBytes = 0;
    let newestRevision = 0;
    let last: FeedRecord | undefined;
    for (let seq = this.#cursor; seq < end; seq++) {
      const record = this.#feed.read(seq, this.#epoch) as FeedRecord;
      last = record;
      for (const event of record.events) {
        if (!filter(event) || event.revision < minRevision) continue;
        const bytes = event.binary();
        if (bytes.length === 0) continue;
        events.push(bytes);
        eventBytes += bytes.length;
        if (event.revision > newestRevision) newestRevision = event.revision;
      }
    }
    if (events.length === 0 || last === undefined) return NOTHING;
    return changeFrame(newestRevision, last.index, last.kvRevision, events, eventBytes);
  }

  /** A message other than a change (open, heartbeat/progress, error), in this stream's format. */
  #message(event: "open" | "heartbeat" | "progress" | "error", data: unknown): string | Buffer {
    if (!this.#binary) return message(event, undefined, data);
    const kind =
      event === "open"
        ? WatchFrameKind.Open
        : event === "error"
          ? WatchFrameKind.Error
          : WatchFrameKind.Progress;
    return jsonFrame(kind, data);
  }

  #sendHeartbeat(): void {
    if (this.#closed || this.#waitingForDrain) return;
    // Only a caught-up stream can promise that nothing up to now is missing.
    if (this.#cursor < this.#feed.nextSeq) return;
    const node = this.#options.node();
    this.#write(
      this.#message(this.#options.mode === "events" ? "heartbeat" : "progress", {
        index: Math.max(this.#deliveredIndex, this.#feed.lastIndex),
        revision: Math.max(this.#deliveredRevision, this.#feed.kvRevision),
        leader: node.leader,
        term: node.term,
      }),
    );
  }

  #cutOff(code: "FELL_BEHIND" | "GONE", reason: string): void {
    const events = this.#options.mode === "events";
    // FELL_BEHIND: the next undelivered entry is still kept. GONE: the oldest that is.
    const resumeFrom =
      code === "FELL_BEHIND"
        ? (events ? this.#deliveredIndex : this.#deliveredRevision) + 1
        : (events ? this.#feed.floorIndex : this.#feed.floorRevision) + 1;
    const what = events ? "index" : "revision";
    const data = {
      code,
      message:
        code === "FELL_BEHIND"
          ? `fell behind: this consumer read too slowly and was cut off; resume from ${what} ${resumeFrom}`
          : `${reason.split(";")[0] ?? reason}; re-read the state and resume from ${what} ${resumeFrom}`,
      resumeFrom,
    };
    this.#response.end(this.#message("error", data));
    const timer = setTimeout(() => this.#response.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    this.#close();
  }

  #write(text: string | Buffer): boolean {
    if (this.#closed) return false;
    const more = (this.#socket as Socket).write(text);
    if (!more) this.#waitingForDrain = true;
    return more;
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
  }
}

/** A `change` message: `events` is the JSON of the events, comma-separated. */
function changeMessage(id: number, last: FeedRecord, events: string): string {
  return (
    `id: ${id}\nevent: change\ndata: {"index":${last.index},` +
    `"revision":${last.kvRevision},"events":[${events}]}\n\n`
  );
}

function message(event: string, id: number | undefined, data: unknown): string {
  return `${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
