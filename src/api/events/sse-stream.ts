/**
 * One Server-Sent Events stream over the change feed: it walks a cursor through the feed's
 * history and writes each entry's matching events as one SSE message, so an entry is delivered
 * whole or not at all and a resume point is always an entry boundary.
 *
 * Wire format (`text/event-stream`):
 * - `event: open`, data `{index, revision}`: where the node's feed is as the stream starts;
 * - `event: change`, `id: N`, data `{index, revision, events: [...]}`, where `N` is the raft
 *   index (event stream) or the newest kv revision in the message (kv watch): resume from N+1;
 * - `event: heartbeat` (event stream) / `event: progress` (kv watch), data `{index, revision,
 *   leader, term}`: sent every `heartbeatMs`, and only when the stream has delivered everything
 *   up to that index and revision (etcd's progress notification), so resuming from index+1 or
 *   revision+1 skips nothing;
 * - `event: error`, data `{code, message, resumeFrom}`, then the stream ends: `FELL_BEHIND` (the
 *   consumer did not read fast enough; `resumeFrom` is still kept) or `GONE` (history dropped).
 *
 * Backpressure: a message is written only while the socket takes it (`write` returns true), so a
 * stream holds at most one socket buffer. A consumer more than `maxLagRecords` entries behind is
 * cut off rather than buffered for. Catching up yields to the event loop every batch.
 */
import type { ServerResponse } from "node:http";
import { isBlixardError } from "../../common/errors.js";
import type { ChangeFeed, FeedRecord } from "./change-feed.js";
import type { FeedEvent } from "./feed-event.js";

/** Default of {@link SseStreamOptions.heartbeatMs}. */
export const DEFAULT_HEARTBEAT_MS = 5_000;
/** Default of {@link SseStreamOptions.maxLagRecords}. */
export const DEFAULT_MAX_LAG_RECORDS = 4_096;
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
  /** kv watch: skip changes below this revision (the start record may hold older ones). */
  readonly minRevision?: number;
  /**
   * Event stream: skip entries below this index. A node still replaying its log after a restart
   * applies entries older than what a resuming consumer asked for; they must not be resent.
   */
  readonly minIndex?: number;
  /** Default {@link DEFAULT_HEARTBEAT_MS}. */
  readonly heartbeatMs?: number;
  /** Default {@link DEFAULT_MAX_LAG_RECORDS}. */
  readonly maxLagRecords?: number;
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
  readonly #options: SseStreamOptions;
  readonly #feed: ChangeFeed;
  readonly #epoch: number;
  readonly #maxLagRecords: number;
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
    this.#deliveredIndex = Math.max(this.#feed.lastIndex, (options.minIndex ?? 0) - 1);
    this.#deliveredRevision = Math.max(this.#feed.kvRevision, (options.minRevision ?? 0) - 1);
  }

  start(): void {
    const response = this.#response;
    response.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    });
    response.on("close", () => this.#close());
    response.on("drain", () => {
      this.#waitingForDrain = false;
      this.#pump();
    });
    this.#unsubscribe = this.#feed.subscribe(() => this.#pump());
    this.#heartbeat = setInterval(
      () => this.#sendHeartbeat(),
      this.#options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    );
    this.#write(
      message("open", undefined, {
        index: this.#feed.lastIndex,
        revision: this.#feed.kvRevision,
      }),
    );
    this.#pump();
  }

  /** Writes what the socket takes, a batch per event-loop turn. */
  #pump(): void {
    if (this.#closed || this.#pumpScheduled) return;
    if (this.#feed.nextSeq - this.#cursor > this.#maxLagRecords) {
      this.#cutOff("FELL_BEHIND", "");
      return;
    }
    if (this.#waitingForDrain) return;
    let chunk = "";
    for (let n = 0; n < RECORDS_PER_TURN; n++) {
      let record: FeedRecord | undefined;
      try {
        record = this.#feed.read(this.#cursor, this.#epoch);
      } catch (error) {
        if (chunk.length > 0) this.#write(chunk);
        this.#cutOff("GONE", isBlixardError(error) ? error.message : String(error));
        return;
      }
      if (record === undefined) break;
      this.#cursor++;
      chunk += this.#format(record);
      if (chunk.length >= WRITE_CHUNK_BYTES) {
        const more = this.#write(chunk);
        chunk = "";
        if (!more) return;
      }
    }
    if (chunk.length > 0 && !this.#write(chunk)) return;
    if (this.#cursor < this.#feed.nextSeq) {
      this.#pumpScheduled = true;
      setImmediate(() => {
        this.#pumpScheduled = false;
        this.#pump();
      });
    }
  }

  /** The SSE message of one record ("" if none of its events match), and marks it delivered. */
  #format(record: FeedRecord): string {
    const { filter, mode, minRevision = 0, minIndex = 0 } = this.#options;
    if (record.index < minIndex) return "";
    let events = "";
    let newestRevision = 0;
    for (const event of record.events) {
      if (!filter(event)) continue;
      if (mode === "watch" && event.revision < minRevision) continue;
      events += events.length === 0 ? event.json() : `,${event.json()}`;
      if (event.revision > newestRevision) newestRevision = event.revision;
    }
    this.#deliveredIndex = Math.max(this.#deliveredIndex, record.index);
    this.#deliveredRevision = Math.max(this.#deliveredRevision, record.kvRevision);
    if (events.length === 0) return "";
    const id = mode === "events" ? record.index : newestRevision;
    return (
      `id: ${id}\nevent: change\ndata: {"index":${record.index},` +
      `"revision":${record.kvRevision},"events":[${events}]}\n\n`
    );
  }

  #sendHeartbeat(): void {
    if (this.#closed || this.#waitingForDrain) return;
    // Only a caught-up stream can promise that nothing up to now is missing.
    if (this.#cursor < this.#feed.nextSeq) return;
    const node = this.#options.node();
    this.#write(
      message(this.#options.mode === "events" ? "heartbeat" : "progress", undefined, {
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
    this.#response.end(message("error", undefined, data));
    const timer = setTimeout(() => this.#response.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    this.#close();
  }

  #write(text: string): boolean {
    if (this.#closed) return false;
    const more = this.#response.write(text);
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

function message(event: string, id: number | undefined, data: unknown): string {
  return `${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
