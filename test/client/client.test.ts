import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CancelledError,
  InvalidArgumentError,
  TimeoutError,
  TooLargeError,
} from "../../src/common/errors.js";
import { BlixardClient } from "../../src/client/index.js";
import { startCluster, type TestCluster } from "../api/harness.js";

/** An HTTP server on 127.0.0.1:0; resolves with its base URL. */
async function listen(server: Server): Promise<URL> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
}

/**
 * A proxy to `target` that, for the first PUT, delivers the request but destroys the client's
 * connection instead of answering: the write applies, its reply is lost.
 */
function lossyProxy(target: URL): Server {
  let dropped = false;
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const upstream = httpRequest(
        new URL(req.url ?? "/", target),
        { method: req.method, headers: req.headers },
        (answer) => {
          const body: Buffer[] = [];
          answer.on("data", (c: Buffer) => body.push(c));
          answer.on("end", () => {
            if (req.method === "PUT" && !dropped) {
              dropped = true;
              req.socket.destroy();
              return;
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(body));
          });
        },
      );
      upstream.end(Buffer.concat(chunks));
    });
  });
}

describe("BlixardClient", () => {
  let cluster: TestCluster;
  const extraServers: Server[] = [];
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    for (const s of extraServers) {
      s.closeAllConnections();
      s.close();
    }
    await cluster.stop();
  });

  it("finds the leader from a follower endpoint and reads its writes", async () => {
    const leader = await cluster.leader();
    const [follower] = await cluster.followers();
    const client = new BlixardClient({ endpoints: [follower!.url.href] });
    const put = await client.put("sdk/a", "hello");
    expect(client.leaderEndpoint?.href).toBe(leader.url.href);
    const got = await client.get("sdk/a");
    expect(got?.entry.valueText).toBe("hello");
    expect(got?.entry.modRevision).toBe(put.revision);
    expect(await client.get("sdk/missing")).toBeNull();
    const bytes = new Uint8Array([0, 255, 1]);
    await client.put("sdk/bin", bytes);
    expect((await client.get("sdk/bin", { consistency: "stale" }))?.entry.value ?? bytes).toEqual(
      bytes,
    );
    const listed = await client.list({ prefix: "sdk/" });
    expect(listed.entries.map((e) => e.key)).toEqual(["sdk/a", "sdk/bin"]);
  });

  it("does compare-and-set and delete with typed results", async () => {
    const client = new BlixardClient({ endpoints: cluster.nodes.map((n) => n.url) });
    const first = await client.cas("sdk/lock", { expected: { absent: true }, value: "me" });
    expect(first.succeeded).toBe(true);
    const second = await client.cas("sdk/lock", { expected: { absent: true }, value: "you" });
    expect(second).toMatchObject({ succeeded: false, current: { valueText: "me" } });
    const deleted = await client.delete("sdk/lock", { returnPrevious: true });
    expect(deleted.deleted).toBe(true);
    expect(deleted.previous?.valueText).toBe("me");
  });

  it("moves past a dead endpoint", async () => {
    const dead = createServer();
    const deadUrl = await listen(dead);
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const client = new BlixardClient({
      endpoints: [deadUrl, ...cluster.nodes.map((n) => n.url)],
      backoffMs: 1,
    });
    expect((await client.put("sdk/past-dead", "ok")).revision).toBeGreaterThan(0);
  });

  it("retries a write whose reply was lost and applies it once", async () => {
    const leader = await cluster.leader();
    const proxy = lossyProxy(leader.url);
    extraServers.push(proxy);
    const proxyUrl = await listen(proxy);
    const client = new BlixardClient({ endpoints: [proxyUrl], backoffMs: 1 });
    const startRevision = leader.kv.revision;
    // The first reply is dropped after the write applied; the retry gets the first result.
    const put = await client.put("sdk/warm-up", "opens the session");
    expect(put.revision).toBe(startRevision + 1);
    const warm = await client.get("sdk/warm-up");
    expect(warm?.entry.version).toBe(1);
    const before = leader.kv.revision;
    await client.put("sdk/after", "x");
    expect(leader.kv.revision).toBe(before + 1);
  });

  it("reports typed errors from the server", async () => {
    const client = new BlixardClient({ endpoints: cluster.nodes.map((n) => n.url) });
    await expect(client.put("sdk/big", new Uint8Array(1024 * 1024 + 1))).rejects.toBeInstanceOf(
      TooLargeError,
    );
    await expect(client.get("")).rejects.toBeInstanceOf(InvalidArgumentError);
    const members = await client.members();
    expect(members.members).toHaveLength(3);
  });

  it("honours AbortSignal and timeouts", async () => {
    const silent = createServer(() => undefined);
    extraServers.push(silent);
    const url = await listen(silent);
    const client = new BlixardClient({ endpoints: [url], timeoutMs: 150 });
    await expect(client.get("k")).rejects.toBeInstanceOf(TimeoutError);
    // A read's timeout says so; only a write's leaves its outcome in doubt.
    await expect(client.get("k")).rejects.toThrow(/read timed out within 150 ms; retry/);
    await expect(client.put("k", "v")).rejects.toThrow(/write's outcome is unknown/);
    const controller = new AbortController();
    const pending = client.put("k", "v", { signal: controller.signal, timeoutMs: 5000 });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
    expect(() => new BlixardClient({ endpoints: [] })).toThrow(InvalidArgumentError);
  });

  it("says the task wait ran out, not the call, when the call was cut to the wait's time", async () => {
    const silent = createServer(() => undefined);
    extraServers.push(silent);
    const client = new BlixardClient({ endpoints: [await listen(silent)] });
    // One long-poll cut to the 40 ms limit: its timer may fire a fraction of a millisecond
    // before performance.now() reaches the limit; the error must still name the wait.
    for (let i = 0; i < 5; i++) {
      await expect(
        client.orchestrator.waitTask("t-1", { timeoutMs: 40, pollMs: 10_000 }),
      ).rejects.toThrow(/task t-1 did not end within 40 ms; it goes on/);
    }
  });

  it("takes a fractional timeout (a deadline minus now) and refuses a non-positive one", async () => {
    const client = new BlixardClient({ endpoints: cluster.nodes.map((n) => n.url) });
    // A caller's remaining time is `end - performance.now()`: fractional. Node's
    // AbortSignal.timeout throws a RangeError on it unless the client rounds it.
    expect(
      (await client.put("sdk/fractional", "ok", { timeoutMs: 29_999.987 })).revision,
    ).toBeGreaterThan(0);
    await expect(client.get("sdk/fractional", { timeoutMs: 0 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(client.get("sdk/fractional", { timeoutMs: Number.NaN })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});
