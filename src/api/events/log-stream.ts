/**
 * A followed log (`task logs --follow`, `vm logs --follow`) as Server-Sent Events, the wire
 * format of the event stream (see `sse-stream.ts`): one `event:` line and one JSON `data:` line
 * per message. A source (the task's live output, a VM's log file) writes messages through a
 * {@link LogSink} until it ends the stream; the node sends a `heartbeat` every `heartbeatMs`
 * so that a dead connection is noticed at both ends.
 *
 * Backpressure: `send` answers false once the socket buffer is full; a source that can wait (a
 * file) reads on only after `onDrain`. A source that cannot (a task's pipe, which must be drained
 * or the task blocks) keeps writing, and a consumer that lets more than `maxBufferedBytes` pile
 * up is cut off with `event: error` `FELL_BEHIND` rather than buffered for without bound.
 */
import type { ServerResponse } from "node:http";

/** Default of {@link LogStreamOptions.heartbeatMs}. */
export const DEFAULT_LOG_HEARTBEAT_MS = 5_000;
/** Default of {@link LogStreamOptions.maxBufferedBytes}. */
export const DEFAULT_LOG_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** A stream that ended is destroyed if its last message is not flushed within this long. */
const CLOSE_GRACE_MS = 2_000;

/** How a source writes to the stream. */
export interface LogSink {
  /** Writes one message; false when the socket is full (wait for `onDrain` if you can). */
  send(event: string, data: unknown): boolean;
  /** Writes the last message (`event: end` unless named) and ends the stream. Idempotent. */
  end(data: unknown, event?: string): void;
  /** Calls `listener` each time the socket buffer drained. */
  onDrain(listener: () => void): void;
  /** True once the stream ended or the consumer went away. */
  readonly closed: boolean;
}

/** Starts writing to `sink`; returns the function that stops (called once the stream closes). */
export type LogSource = (sink: LogSink) => () => void;

/** Options of {@link serveLogStream}. */
export interface LogStreamOptions {
  /** Default {@link DEFAULT_LOG_HEARTBEAT_MS}. */
  readonly heartbeatMs?: number;
  /** Default {@link DEFAULT_LOG_MAX_BUFFERED_BYTES}. */
  readonly maxBufferedBytes?: number;
}

/** Serves `source` on `response` as SSE until it ends or the client goes away. Throws nothing. */
export function serveLogStream(
  response: ServerResponse,
  source: LogSource,
  options: LogStreamOptions = {},
): void {
  const maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_LOG_MAX_BUFFERED_BYTES;
  const drainListeners: (() => void)[] = [];
  let closed = false;
  let stop: () => void = () => undefined;
  const close = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    stop();
  };
  const finish = (event: string, data: unknown): void => {
    if (closed) return;
    response.write(format(event, data));
    close();
    response.end();
    setTimeout(() => response.destroy(), CLOSE_GRACE_MS).unref();
  };
  const sink: LogSink = {
    send: (event, data) => {
      if (closed) return false;
      const more = response.write(format(event, data));
      if (response.writableLength > maxBufferedBytes) {
        finish("error", {
          code: "FELL_BEHIND",
          message: `the consumer fell more than ${maxBufferedBytes} bytes behind the log; follow again`,
        });
        return false;
      }
      return more;
    },
    end: (data, event = "end") => finish(event, data),
    onDrain: (listener) => drainListeners.push(listener),
    get closed() {
      return closed;
    },
  };
  response.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    "x-accel-buffering": "no",
  });
  response.on("close", close);
  response.on("drain", () => {
    for (const listener of drainListeners) if (!closed) listener();
  });
  const heartbeat = setInterval(() => {
    if (!closed && response.writableLength === 0) response.write(format("heartbeat", {}));
  }, options.heartbeatMs ?? DEFAULT_LOG_HEARTBEAT_MS);
  stop = source(sink);
  // The source may have ended the stream while starting.
  if (closed) stop();
}

function format(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
