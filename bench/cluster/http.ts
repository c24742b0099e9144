/**
 * The load generator's HTTP client: `node:http` with one keep-alive agent per server, no
 * retries, no JSON parsing unless asked. Leaner than `fetch` (no WHATWG streams per request), so
 * both systems are driven by the same cheap client and the servers, not the client, set the pace.
 */
import { Agent, request } from "node:http";

/** A response: status and body text. */
export interface HttpReply {
  readonly status: number;
  readonly body: string;
}

/** A keep-alive connection pool to one HTTP server. */
export class HttpPool {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 1024 });
  readonly #host: string;
  readonly #port: number;

  /** @param baseUrl the server's base URL, e.g. `http://127.0.0.1:9000`. */
  constructor(readonly baseUrl: string) {
    const url = new URL(baseUrl);
    this.#host = url.hostname;
    this.#port = Number(url.port);
  }

  /** Sends one request; rejects on a network failure or after `timeoutMs`. */
  send(
    method: "GET" | "PUT" | "POST",
    path: string,
    body?: string,
    timeoutMs = 5000,
  ): Promise<HttpReply> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { accept: "application/json" };
      if (body !== undefined) {
        headers["content-type"] = "application/json";
        headers["content-length"] = Buffer.byteLength(body);
      }
      const req = request(
        { host: this.#host, port: this.#port, method, path, headers, agent: this.#agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on("error", reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end(body);
    });
  }

  /** Sends one request and rejects unless the status is 2xx. */
  async ok(
    method: "GET" | "PUT" | "POST",
    path: string,
    body?: string,
    timeoutMs?: number,
  ): Promise<string> {
    const reply = await this.send(method, path, body, timeoutMs);
    if (reply.status < 200 || reply.status > 299) {
      throw new Error(`${method} ${this.baseUrl}${path}: ${reply.status} ${reply.body}`);
    }
    return reply.body;
  }

  /** Closes every socket. */
  close(): void {
    this.#agent.destroy();
  }
}
