/**
 * Forwarding to the leader. A write, a lease read or a membership change that reaches a
 * follower is re-sent over HTTP(S) to the leader's API address, with the same body and session
 * headers (so exactly-once still holds) and a hop count that stops loops: a node never forwards
 * a request that was already forwarded. The leader's answer, error or not, goes back as is.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest, type Agent as HttpsAgent } from "node:https";
import { CancelledError, TimeoutError, UnavailableError } from "../common/errors.js";
import { FORWARDED_IDENTITY_HEADER } from "./auth/authenticator.js";
import { HEADERS } from "./schema/common.js";

/** A request to re-send. */
export interface ForwardedRequest {
  readonly method: string;
  /** The path and query string as received (still URL-encoded). */
  readonly url: string;
  /** The parsed JSON body, if any. */
  readonly body: unknown;
  /** The headers of the original request (session headers and `authorization` are passed on). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * The certificate identity this node authenticated (`node:N`, `cert:<CN>`), for the leader,
   * which trusts it only because this node's own certificate presents the forwarding connection.
   */
  readonly forwardedIdentity?: string;
}

/** The leader's answer. */
export interface ForwardedResponse {
  readonly statusCode: number;
  readonly contentType: string;
  readonly text: string;
  /**
   * A streamed answer (`text/event-stream`, asked for with `ForwardOptions.stream`): the open
   * response to pipe to the client; `text` is empty.
   */
  readonly stream?: IncomingMessage;
}

/** How to forward. */
export interface ForwardOptions {
  /** The hop count the request arrived with (0 from a client). */
  readonly hops: number;
  /** The time left for the request; the leader gets it as its deadline. */
  readonly timeoutMs: number;
  /** Fires when the client went away. */
  readonly signal: AbortSignal;
  /**
   * The HTTPS pool for an `https://` leader: it trusts the cluster's CA and presents this node's
   * certificate, so the leader sees that a member forwarded the request.
   */
  readonly httpsAgent?: HttpsAgent;
  /**
   * The answer may be a long-lived `text/event-stream` (a followed log): the deadline then only
   * bounds the wait for its headers, and a 200 stream is handed back open, not read.
   */
  readonly stream?: boolean;
}

/** Passed on unchanged: the session, and the bearer token (the leader re-authenticates it). */
const PASSED_HEADERS = [
  HEADERS.clientId,
  HEADERS.sequence,
  HEADERS.ackedBelow,
  "authorization",
] as const;

/**
 * Sends `request` to the node at `leader` and returns its response.
 * @throws UnavailableError if the leader cannot be reached, TimeoutError past the deadline,
 *   CancelledError if the client went away.
 */
export async function forwardRequest(
  leader: URL,
  request: ForwardedRequest,
  options: ForwardOptions,
): Promise<ForwardedResponse> {
  const headers: Record<string, string> = {
    [HEADERS.forwardedHops]: String(options.hops + 1),
    [HEADERS.timeoutMs]: String(Math.max(1, Math.floor(options.timeoutMs))),
  };
  for (const name of PASSED_HEADERS) {
    const value = request.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  if (request.forwardedIdentity !== undefined) {
    headers[FORWARDED_IDENTITY_HEADER] = request.forwardedIdentity;
  }
  let body: string | undefined;
  if (request.body !== undefined && request.method !== "GET") {
    headers["content-type"] = "application/json";
    body = JSON.stringify(request.body);
    headers["content-length"] = String(Buffer.byteLength(body));
  }
  const timeoutMs = Math.max(1, Math.floor(options.timeoutMs));
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  try {
    return await send(new URL(request.url, leader), {
      method: request.method,
      headers,
      body,
      // A stream's deadline ends with its headers (the timer is cleared then), not its life.
      signal:
        options.stream === true
          ? options.signal
          : AbortSignal.any([timeout.signal, options.signal]),
      headersDeadline: timeout.signal,
      stream: options.stream === true,
      ...(options.httpsAgent === undefined ? {} : { httpsAgent: options.httpsAgent }),
    });
  } catch (error) {
    if (options.signal.aborted) throw new CancelledError("the client went away");
    if (timeout.signal.aborted) {
      throw new TimeoutError(
        `the leader at ${leader.href} did not answer within ${options.timeoutMs} ms; outcome unknown`,
      );
    }
    const reason =
      error instanceof Error
        ? ((error as NodeJS.ErrnoException).code ?? error.message)
        : String(error);
    throw new UnavailableError(`could not reach the leader at ${leader.href}: ${reason}; retry`);
  } finally {
    clearTimeout(timer);
  }
}

/** One request with node:http(s) (not fetch: fetch cannot take a CA or a client certificate). */
function send(
  url: URL,
  options: {
    readonly method: string;
    readonly headers: Record<string, string>;
    readonly body: string | undefined;
    readonly signal: AbortSignal;
    /** Fires at the deadline; a stream is abandoned if its headers have not come by then. */
    readonly headersDeadline: AbortSignal;
    readonly stream: boolean;
    readonly httpsAgent?: HttpsAgent;
  },
): Promise<ForwardedResponse> {
  return new Promise((resolve, reject) => {
    if (options.signal.aborted) {
      reject(options.signal.reason as Error);
      return;
    }
    const secure = url.protocol === "https:";
    const outgoing = (secure ? httpsRequest : httpRequest)(
      url,
      {
        method: options.method,
        headers: options.headers,
        signal: options.signal,
        ...(secure && options.httpsAgent !== undefined ? { agent: options.httpsAgent } : {}),
      },
      (response) => {
        options.headersDeadline.removeEventListener("abort", onDeadline);
        const contentType = response.headers["content-type"] ?? "application/json";
        if (
          options.stream &&
          response.statusCode === 200 &&
          contentType.startsWith("text/event-stream")
        ) {
          resolve({ statusCode: 200, contentType, text: "", stream: response });
          return;
        }
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("error", reject);
        response.on("end", () =>
          resolve({
            statusCode: response.statusCode ?? 502,
            contentType,
            text: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      },
    );
    const onDeadline = (): void => {
      outgoing.destroy(new Error("no answer before the deadline"));
    };
    if (options.stream)
      options.headersDeadline.addEventListener("abort", onDeadline, { once: true });
    outgoing.on("error", reject);
    outgoing.end(options.body);
  });
}

/**
 * Thrown by a handler whose answer lives on another node (a VM's console log is on the node that
 * runs it): the server forwards the request there, like a leader-only request to the leader.
 * Not a client-facing error: past the hop limit it becomes UNAVAILABLE.
 */
export class ServedByOtherNodeError extends Error {
  /** @param apiAddress the other node's API base URL. */
  constructor(
    readonly nodeId: number,
    readonly apiAddress: string,
  ) {
    super(`served by node ${nodeId} at ${apiAddress}`);
  }
}
