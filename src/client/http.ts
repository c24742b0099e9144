/** One HTTP exchange with a node, with the caller's signal; JSON in, JSON (or text) out. */
import { HEADERS } from "../api/schema/common.js";

/** A request to a node. */
export interface HttpRequest {
  readonly method: "GET" | "PUT" | "POST" | "DELETE";
  /** Path and query, already URL-encoded. */
  readonly path: string;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A node's response. */
export interface HttpResponse {
  readonly statusCode: number;
  readonly body: unknown;
  /** The leader's address when the node forwarded the request there. */
  readonly leaderAddress: string | undefined;
}

/**
 * Why an exchange failed without a response: `refused` means the request never reached a node
 * (safe to retry anything); `lost` means it may have arrived (retry only what is idempotent).
 */
export class ExchangeFailure extends Error {
  /** @param kind whether the request may have reached the node. */
  constructor(
    readonly kind: "refused" | "lost",
    message: string,
  ) {
    super(message);
    this.name = "ExchangeFailure";
  }
}

const NEVER_SENT_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

function causeCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as Error & { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = current.cause;
  }
  return undefined;
}

/**
 * Sends `request` to `endpoint`. Rejects with `ExchangeFailure` on a network failure, or with
 * the signal's reason if `signal` fired.
 */
export async function exchange(
  endpoint: URL,
  request: HttpRequest,
  options: { readonly signal: AbortSignal; readonly timeoutMs: number },
): Promise<HttpResponse> {
  const headers: Record<string, string> = {
    ...request.headers,
    [HEADERS.timeoutMs]: String(Math.max(1, Math.floor(options.timeoutMs))),
    accept: "application/json",
  };
  let body: string | undefined;
  if (request.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(request.body);
  }
  let response: Response;
  let text: string;
  try {
    response = await fetch(new URL(request.path, endpoint), {
      method: request.method,
      headers,
      ...(body === undefined ? {} : { body }),
      signal: options.signal,
    });
    text = await response.text();
  } catch (error) {
    if (options.signal.aborted) throw options.signal.reason;
    const code = causeCode(error);
    const kind = code !== undefined && NEVER_SENT_CODES.has(code) ? "refused" : "lost";
    throw new ExchangeFailure(kind, `${endpoint.href}: ${code ?? String(error)}`);
  }
  let parsed: unknown = text;
  if ((response.headers.get("content-type") ?? "").includes("json")) {
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      // Not JSON after all: keep the text for the error message.
    }
  }
  return {
    statusCode: response.status,
    body: parsed,
    leaderAddress: response.headers.get(HEADERS.leaderAddress) ?? undefined,
  };
}
