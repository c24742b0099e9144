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

/** Opens `path` on `endpoint` and resolves once the response headers arrived. */
function open(
  endpoint: URL,
  path: string,
  options: {
    readonly headers: Readonly<Record<string, string>>;
    readonly signal: AbortSignal;
    readonly httpsAgent: HttpsAgent;
    readonly connectTimeoutMs: number;
  },
): Promise<IncomingMessage> {
  const url = new URL(path, endpoint);
  const secure = url.protocol === "https:";
  return new Promise((resolve, reject) => {
    const outgoing = (secure ? httpsRequest : httpRequest)(url, {
      method: "GET",
      headers: { ...options.headers, accept: "text/event-stream" },
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
  options: {
    readonly headers: Readonly<Record<string, string>>;
    readonly signal: AbortSignal;
    readonly httpsAgent: HttpsAgent;
    readonly connectTimeoutMs: number;
  },
): AsyncGenerator<SseMessage> {
  const response = await open(endpoint, path, options);
  try {
    if (response.statusCode !== 200) {
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
    response.setEncoding("utf8");
    let buffer = "";
    try {
      for await (const chunk of response as AsyncIterable<string>) {
        buffer += chunk;
        if (buffer.length > MAX_MESSAGE_CHARS) {
          throw new ExchangeFailure(
            "lost",
            `${endpoint.href}: an event stream message is too large`,
          );
        }
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const message = parseBlock(block);
          if (message !== undefined) yield message;
        }
      }
    } catch (error) {
      if (error instanceof ExchangeFailure || options.signal.aborted) throw error;
      throw new ExchangeFailure("lost", `${endpoint.href}: ${String(error)}`);
    }
  } finally {
    response.destroy();
  }
}

function parseBlock(block: string): SseMessage | undefined {
  let event = "message";
  let id: string | undefined;
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "id") id = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0 && id === undefined) return undefined;
  return { event, id, data: data.join("\n") };
}
