/**
 * A client that goes away cancels the work it asked for: through a listening server (its
 * connection closing while the request is in its handler) and the per-connection signal itself.
 */
import { EventEmitter, getEventListeners } from "node:events";
import { Agent, request as httpRequest } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { connectionCancel, requestSignal } from "../../src/api/connection-cancel.js";
import { ApiServer } from "../../src/api/server.js";
import type { KvPutRequest, WriteOptions } from "../../src/api/service.js";
import { CancelledError } from "../../src/common/errors.js";
import { until } from "./harness.js";
import { fakeNodeService } from "./orchestrator-fakes.js";

/** A put the fake holds until it is released or its signal aborts. */
interface HeldPut {
  readonly key: string;
  readonly signal: AbortSignal | undefined;
  release(): void;
}

const servers: ApiServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A server whose puts of keys starting with `hold` wait; others answer at once. */
async function serve(): Promise<{ url: URL; held: HeldPut[] }> {
  const held: HeldPut[] = [];
  let revision = 0;
  const kvPut = (request: KvPutRequest, options: WriteOptions = {}) =>
    new Promise<{ op: "put"; revision: number }>((resolve, reject) => {
      const answer = (): void => resolve({ op: "put", revision: ++revision });
      if (!request.key.startsWith("hold")) {
        answer();
        return;
      }
      const signal = options.signal;
      const onAbort = (): void => reject(new CancelledError("the client went away"));
      signal?.addEventListener("abort", onAbort, { once: true });
      held.push({
        key: request.key,
        signal,
        release: () => {
          signal?.removeEventListener("abort", onAbort);
          answer();
        },
      });
    });
  const server = new ApiServer({
    auth: { mode: "insecure-open" },
    service: { ...fakeNodeService(1), kvPut },
  });
  servers.push(server);
  return { url: await server.listen(), held };
}

/** Sends a put on `agent`; resolves with the status, or rejects when the connection is cut. */
function put(url: URL, agent: Agent, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ value: "v" });
    const outgoing = httpRequest(
      new URL(`/v1/kv/${key}`, url),
      { method: "PUT", agent, headers: { "content-type": "application/json" } },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
      },
    );
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}

describe("a client that disconnects mid-request", () => {
  it("cancels the work its request asked for", async () => {
    const { url, held } = await serve();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const pending = put(url, agent, "hold-1");
    const [first] = await until(() => (held.length === 1 ? held : undefined), "the held put");
    expect(first?.signal?.aborted).toBe(false);
    agent.destroy();
    await expect(pending).rejects.toThrow();
    await until(() => (first?.signal?.aborted === true ? true : undefined), "the abort");
  });

  it("on a kept-alive connection: requests after answered ones run, and the one in its handler is cancelled", async () => {
    const { url, held } = await serve();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 20; i++) expect(await put(url, agent, `k${i}`)).toBe(200);
    const answered = put(url, agent, "hold-answered");
    const [first] = await until(() => (held.length === 1 ? held : undefined), "the held put");
    expect(first?.signal?.aborted).toBe(false);
    first?.release();
    expect(await answered).toBe(200);
    // The held request's listener was removed when it ended; nothing else listens.
    expect(getEventListeners(first?.signal as AbortSignal, "abort")).toHaveLength(0);
    const cut = put(url, agent, "hold-cut");
    const second = await until(() => held[1], "the second held put");
    expect(second.signal?.aborted).toBe(false);
    agent.destroy();
    await expect(cut).rejects.toThrow();
    await until(() => (second.signal?.aborted === true ? true : undefined), "the abort");
  });
});

describe("connectionCancel", () => {
  it("aborts when the connection closes while a request is in its handler", () => {
    const connection = new EventEmitter();
    const cancel = connectionCancel(connection);
    expect(connectionCancel(connection)).toBe(cancel);
    const signal = cancel.begin();
    expect(signal.aborted).toBe(false);
    connection.emit("close");
    expect(signal.aborted).toBe(true);
  });

  it("aborts nothing when the connection closes with no request in its handler", () => {
    const connection = new EventEmitter();
    const cancel = connectionCancel(connection);
    const signal = cancel.begin();
    cancel.end();
    connection.emit("close");
    expect(signal.aborted).toBe(false);
  });

  it("a request without a connection is never cancelled", () => {
    const cancel = connectionCancel(undefined);
    const signal = cancel.begin();
    cancel.end();
    expect(signal.aborted).toBe(false);
  });
});

describe("requestSignal", () => {
  it("aborts with the connection's signal until released, and leaves no listener on it", () => {
    const connection = new AbortController();
    const first = requestSignal(connection.signal);
    first.release();
    expect(getEventListeners(connection.signal, "abort")).toHaveLength(0);
    const second = requestSignal(connection.signal);
    connection.abort();
    expect(first.signal.aborted).toBe(false);
    expect(second.signal.aborted).toBe(true);
    expect(requestSignal(connection.signal).signal.aborted).toBe(true);
  });
});
