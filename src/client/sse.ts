/**
 * One Server-Sent Events response from a node, read as an async iterable of messages. A non-200
 * answer becomes the API's typed error; a network failure an `ExchangeFailure`.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest, type Agent as HttpsAgent } from "node:https";
import { errorFromResponse } from "./errors.js";
import { ExchangeFailure } from "./http.js";

/** One SSE message. */
export interface SseMessage {
  readonly event: string;
  readonly id: string | undefined;
  readonly data: string;
}

/** Largest message accepted, in characters (a guard against a broken peer, not a real limit). */
const MAX_MESSAGE_CHARS = 64 * 1024 * 1024;

/** How a stream is opened. */
/** A message whose data is JSON (every stream of the API): its event and parsed data. */
interface JsonMessage {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

/** `batch` with each message's data parsed as JSON (the stream protocol's, typed by its event). */
export function parseJsonMessages(batch: readonly SseMessage[]): JsonMessage[] {
  return batch.map((m) => ({
    event: m.event,
    data: JSON.parse(m.data) as Record<string, unknown>,
  }));
}

export interface SseOptions {
  readonly headers: Readonly<Record<string, string>>;
  readonly signal: AbortSignal;
  readonly httpsAgent: HttpsAgent;
  readonly connectTimeoutMs: number;
}

/**
 * Opens `path` on `endpoint`, asking for `accept`, and resolves once the response headers
 * arrived. Rejects with `ExchangeFailure`.
 */
export function openStream(
  endpoint: URL,
  path: string,
  options: SseOptions,
  accept = "text/event-stream",
): Promise<IncomingMessage> {
  const url = new URL(path, endpoint);
  const secure = url.protocol === "https:";
  return new Promise((resolve, reject) => {
    const outgoing = (secure ? httpsRequest : httpRequest)(url, {
      method: "GET",
      headers: { ...options.headers, accept },
      // A stream holds its socket for as long as it lasts: not from the shared keep-alive pool.
      ...(secure ? { agent: options.httpsAgent } : { agent: false }),
      signal: options.signal,
    });
    const timer = setTimeout(
      () => outgoing.destroy(new Error(`no answer within ${options.connectTimeoutMs} ms`)),
      options.connectTimeoutMs,
    );
    outgoing.on("response", (response) => {
      clearTimeout(timer);
      resolve(response);
    });
    outgoing.on("error", (error) => {
      clearTimeout(timer);
      const code = (error as Error & { code?: string }).code;
      reject(
        new ExchangeFailure(
          code === "ECONNREFUSED" ? "refused" : "lost",
          `${endpoint.href}: ${code ?? error.message}`,
        ),
      );
    });
    outgoing.end();
  });
}

/**
 * The messages of one SSE response until it ends. Throws the typed API error of a non-200
 * answer, or `ExchangeFailure` if the connection fails.
 */
export async function* sseMessages(
  endpoint: URL,
  path: string,
  options: SseOptions,
): AsyncGenerator<SseMessage> {
  for await (const batch of sseBatches(endpoint, path, options)) yield* batch;
}

/**
 * The messages of one SSE response until it ends, those of each chunk read together (one step of
 * the iteration per chunk, not per message: a watcher of a busy prefix gets many per chunk).
 * Throws like {@link sseMessages}.
 */
export async function* sseBatches(
  endpoint: URL,
  path: string,
  options: SseOptions,
): AsyncGenerator<readonly SseMessage[]> {
  yield* sseResponseBatches(await openStream(endpoint, path, options), endpoint, options);
}

/**
 * Throws the typed API error of `response` if it is not a 200 (reading its body), else returns.
 */
export async function throwUnlessOk(response: IncomingMessage): Promise<void> {
  if (response.statusCode === 200) return;
  let text = "";
  for await (const chunk of response) text += String(chunk);
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text for the error
  }
  throw errorFromResponse(response.statusCode ?? 0, body);
}

/**
 * {@link sseBatches} of a response already open (destroyed when the iteration ends).
 */
export async function* sseResponseBatches(
  response: IncomingMessage,
  endpoint: URL,
  options: Pick<SseOptions, "signal">,
): AsyncGenerator<readonly SseMessage[]> {
  try {
    await throwUnlessOk(response);
    response.setEncoding("utf8");
    let buffer = "";
    try {
      for await (const chunk of response as AsyncIterable<string>) {
        // A message's end may straddle the chunks: look from just before the new text.
        let from = Math.max(0, buffer.length - 1);
        buffer = buffer.length === 0 ? chunk : buffer + chunk;
        if (buffer.length > MAX_MESSAGE_CHARS) {
          throw new ExchangeFailure(
            "lost",
            `${endpoint.href}: an event stream message is too large`,
          );
        }
        let start = 0;
        let end: number;
        const messages: SseMessage[] = [];
        while ((end = buffer.indexOf("\n\n", from)) >= 0) {
          const message = parseBlock(buffer, start, end);
          if (message !== undefined) messages.push(message);
          start = from = end + 2;
        }
        if (start > 0) buffer = buffer.slice(start);
        if (messages.length > 0) yield messages;
      }
    } catch (error) {
      if (error instanceof ExchangeFailure || options.signal.aborted) throw error;
      throw new ExchangeFailure("lost", `${endpoint.href}: ${String(error)}`);
    }
  } finally {
    response.destroy();
  }
}

/** The message of the block `text[start, end)` (its lines, without the blank line after). */
function parseBlock(text: string, start: number, end: number): SseMessage | undefined {
  let event = "message";
  let id: string | undefined;
  let data: string | undefined;
  for (let line = start; line < end;) {
    let lineEnd = text.indexOf("\n", line);
    if (lineEnd < 0 || lineEnd > end) lineEnd = end;
    if (lineEnd > line && text.charCodeAt(line) !== COLON) {
      let colon = text.indexOf(":", line);
      if (colon < 0 || colon > lineEnd) colon = lineEnd;
      let valueStart = colon + 1;
      if (valueStart < lineEnd && text.charCodeAt(valueStart) === SPACE) valueStart++;
      const value = valueStart >= lineEnd ? "" : text.slice(valueStart, lineEnd);
      const fieldLength = colon - line;
      if (fieldLength === 4 && text.startsWith("data", line)) {
        data = data === undefined ? value : `${data}\n${value}`;
      } else if (fieldLength === 5 && text.startsWith("event", line)) {
        event = value;
      } else if (fieldLength === 2 && text.startsWith("id", line)) {
        id = value;
      }
    }
    line = lineEnd + 1;
  }
  if (data === undefined && id === undefined) return undefined;
  return { event, id, data: data ?? "" };
}

const COLON = 0x3a;
const SPACE = 0x20;
