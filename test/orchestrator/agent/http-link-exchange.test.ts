/**
 * The agent link's real exchange (node:http, an `--insecure` agent) against a local HTTP server:
 * it keeps at most {@link AGENT_MAX_SOCKETS} connections to a server however many requests it
 * has (the rest wait in the pool), sends one report at a time and answers heartbeats meanwhile,
 * a request past its deadline rejects TIMEOUT and one the caller cancels rejects CANCELLED,
 * either while sent or while waiting for a socket.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  AGENT_MAX_SOCKETS,
  AgentHttpLink,
  nodeExchange,
} from "../../../src/orchestrator/agent/remote/http-link.js";
import { SILENT } from "./agent-fakes.js";

interface TestServer {
  readonly url: URL;
  /** Connections accepted so far. */
  connections: number;
  /** Requests received and not answered yet (when the handler holds them). */
  readonly held: ServerResponse[];
  close(): Promise<void>;
}

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A server that answers every request with `answer`, or holds it when `hold` says so. */
async function serve(
  answer: (request: IncomingMessage) => unknown,
  hold: (request: IncomingMessage) => boolean = () => false,
): Promise<TestServer> {
  const held: ServerResponse[] = [];
  const server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      if (hold(request)) {
        held.push(response);
        return;
      }
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify(answer(request)));
    });
  });
  servers.push(server);
  const result: TestServer = {
    url: new URL("http://127.0.0.1"),
    connections: 0,
    held,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  server.on("connection", () => result.connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  result.url.port = String((server.address() as AddressInfo).port);
  return result;
}

describe("the agent link's HTTP exchange", () => {
  it(`keeps at most ${AGENT_MAX_SOCKETS} connections to a server however many requests it sends`, async () => {
    const server = await serve(() => ({ leaderId: 1, workerDeadAfterMs: 10_000 }));
    const link = new AgentHttpLink({ nodeId: 7, servers: [server.url], log: SILENT });
    const answers = await Promise.all(Array.from({ length: 20 }, () => link.heartbeat()));
    expect(answers).toHaveLength(20);
    expect(answers[19]).toEqual({ leaderId: 1, workerDeadAfterMs: 10_000 });
    // And again: the connections were kept, not opened anew.
    await Promise.all(Array.from({ length: 20 }, () => link.heartbeat()));
    expect(server.connections).toBeLessThanOrEqual(AGENT_MAX_SOCKETS);
  });

  it("sends one report at a time, and a heartbeat while a report is held", async () => {
    const server = await serve(
      () => ({ leaderId: 1, workerDeadAfterMs: 10_000 }),
      (request) => request.url === "/v1/agent/reports",
    );
    const link = new AgentHttpLink({ nodeId: 7, servers: [server.url], log: SILENT });
    const reports = Array.from({ length: 3 }, () =>
      link.propose({ type: "markWorkerOffline", nodeId: 7 }),
    );
    await until(() => server.held.length === 1);
    expect(await link.heartbeat()).toEqual({ leaderId: 1, workerDeadAfterMs: 10_000 });
    // Each next report is sent once the one before was answered.
    for (let i = 0; i < 3; i++) {
      await until(() => server.held.length === 1);
      expect(server.held.length).toBe(1);
      server.held.pop()?.end("{}");
    }
    await Promise.all(reports);
    expect(server.connections).toBeLessThanOrEqual(AGENT_MAX_SOCKETS);
  });

  it("rejects TIMEOUT past the deadline, whether the request was sent or waited for a socket", async () => {
    const server = await serve(
      () => ({}),
      () => true,
    );
    const exchange = nodeExchange({});
    const send = () =>
      exchange({
        url: new URL("/v1/agent/heartbeat", server.url),
        method: "POST",
        body: "{}",
        timeoutMs: 50,
        serverTimeoutMs: 50,
        signal: undefined,
      });
    // As many as the pool holds are sent and held; one more waits in the pool until its deadline.
    const outcomes = await Promise.allSettled(
      Array.from({ length: AGENT_MAX_SOCKETS + 1 }, () => send()),
    );
    for (const outcome of outcomes) {
      expect(outcome.status).toBe("rejected");
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: "TIMEOUT" });
    }
  });

  it("rejects CANCELLED when the caller's signal fires, before or after sending", async () => {
    const server = await serve(
      () => ({}),
      () => true,
    );
    const exchange = nodeExchange({});
    const send = (signal: AbortSignal) =>
      exchange({
        url: new URL("/v1/agent/assignments", server.url),
        method: "GET",
        body: undefined,
        timeoutMs: 60_000,
        serverTimeoutMs: 60_000,
        signal,
      });
    const aborted = new AbortController();
    aborted.abort();
    await expect(send(aborted.signal)).rejects.toMatchObject({ code: "CANCELLED" });
    const later = new AbortController();
    const pending = send(later.signal);
    // Cancel once the server holds it (it was sent).
    await until(() => server.held.length === 1);
    later.abort();
    await expect(pending).rejects.toMatchObject({ code: "CANCELLED" });
  });

  it("answers after a cancelled request on the connection that is left", async () => {
    let holdNext = true;
    const server = await serve(
      () => ({ leaderId: 2, workerDeadAfterMs: 5000 }),
      () => {
        const hold = holdNext;
        holdNext = false;
        return hold;
      },
    );
    const exchange = nodeExchange({});
    const abort = new AbortController();
    const request = (signal: AbortSignal | undefined) =>
      exchange({
        url: new URL("/v1/agent/heartbeat", server.url),
        method: "POST",
        body: "{}",
        timeoutMs: 60_000,
        serverTimeoutMs: 60_000,
        signal,
      });
    const held = request(abort.signal);
    await until(() => server.held.length === 1);
    abort.abort();
    await expect(held).rejects.toMatchObject({ code: "CANCELLED" });
    const answer = await request(undefined);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ leaderId: 2, workerDeadAfterMs: 5000 });
  });
});

/** Resolves once `condition` holds (checked on each turn of the event loop). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
