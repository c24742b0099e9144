/**
 * The event stream and kv watch on a real 3-node cluster (processes, TLS, ACLs enforced):
 * consumers that disconnect at random points and resume, across a leader kill and a node
 * restart, see every change exactly once and in order; a restarted node that restored a
 * snapshot answers 410 GONE for what it no longer keeps while the client resumes elsewhere; and
 * the streams respect each token's permissions.
 */
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GoneError } from "../../src/common/errors.js";
import { BlixardClient, type ClusterEvent, type WatchEvent } from "../../src/client/index.js";
import { SeededRandom } from "../../src/common/random.js";
import { ensureBuilt } from "../cli/helpers.js";
import { http, ProcessCluster, until } from "./process-cluster.js";

const clusters: ProcessCluster[] = [];
beforeAll(ensureBuilt);
beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    for (const c of clusters) console.log(`node logs (${c.saveLogs()}):\n${c.logs(40)}`);
  });
});
afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.destroy()));
});

async function startCluster(extraArgs: string[] = []): Promise<ProcessCluster> {
  const cluster = await ProcessCluster.create({ size: 3, name: "blixard-events", extraArgs });
  clusters.push(cluster);
  cluster.startAll();
  // Generous: this machine is shared by many test runs at once.
  try {
    await cluster.waitForLeader(undefined, 60_000);
  } catch (error) {
    throw new Error(`${String(error)}\n${cluster.logs(20)}`, { cause: error });
  }
  await cluster.bootstrapAcl();
  return cluster;
}

/**
 * Reads `open()`'s stream until `done()`, breaking off after a random number of items each time
 * and starting again from just after the last item seen (the consumer's own resume point).
 */
async function consumeWithDisconnects<T>(
  random: SeededRandom,
  open: (signal: AbortSignal, resumeAfter: T | undefined) => AsyncIterable<T>,
  done: (seen: readonly T[]) => boolean,
): Promise<{ seen: T[]; reconnects: number }> {
  const seen: T[] = [];
  let reconnects = 0;
  while (!done(seen)) {
    const controller = new AbortController();
    const budget = 1 + random.int(40);
    let taken = 0;
    const timer = setTimeout(() => controller.abort(), 2_000);
    for await (const item of open(controller.signal, seen.at(-1))) {
      seen.push(item);
      if (++taken >= budget || done(seen)) break;
    }
    clearTimeout(timer);
    reconnects++;
  }
  return { seen, reconnects };
}

describe("event stream and kv watch on a real cluster", () => {
  it("deliver every change exactly once, in order, across disconnects, a leader kill and a restart", async () => {
    const cluster = await startCluster();
    // Writes retry through the leader change (sessions keep each one exactly-once).
    const client = cluster.client(undefined, { retries: 200, timeoutMs: 60_000 });
    const total = 240;
    let written = 0;
    let finalRevision: number | undefined;
    const writer = (async () => {
      for (let i = 0; i < total; i++) {
        await client.put(`w/${i % 50}`, `v${i}`);
        written = i + 1;
      }
      finalRevision = (await client.list({ prefix: "w/", limit: 1 })).revision;
    })();
    const faults = (async () => {
      await until(() => (written >= 60 ? true : undefined), "60 writes", 60_000);
      const leader = await cluster.waitForLeader(undefined, 60_000);
      await cluster.kill(leader);
      await until(() => (written >= 120 ? true : undefined), "120 writes", 60_000);
      cluster.start(leader, "restart");
      await until(() => (written >= 170 ? true : undefined), "170 writes", 60_000);
      const follower = cluster.nodes.map((n) => n.id).find((id) => id !== leader) as number;
      await cluster.stop(follower);
      cluster.start(follower, "restart");
    })();

    const random = new SeededRandom(14);
    const caughtUp = (revision: number | undefined): boolean =>
      finalRevision !== undefined && revision !== undefined && revision >= finalRevision;
    const watch = consumeWithDisconnects<WatchEvent>(
      random,
      (signal, last) =>
        client.watch({ prefix: "w/", fromRevision: (last?.revision ?? 0) + 1, signal }),
      (seen) => caughtUp(seen.at(-1)?.revision),
    );
    const events = consumeWithDisconnects<ClusterEvent>(
      random,
      (signal, last) => client.events({ topics: ["kv"], from: (last?.index ?? 0) + 1, signal }),
      (seen) => caughtUp(seen.at(-1)?.kv?.modRevision),
    );
    await Promise.all([writer, faults]);
    const [watched, streamed] = await Promise.all([watch, events]);

    // Only these puts changed the kv store: revisions 1..final, each exactly once, in order.
    expect(finalRevision).toBeGreaterThanOrEqual(total);
    const revisions = Array.from({ length: finalRevision ?? 0 }, (_, i) => i + 1);
    expect(watched.seen.map((e) => e.revision)).toEqual(revisions);
    expect(watched.seen.every((e) => e.type === "put")).toBe(true);
    expect(watched.reconnects).toBeGreaterThan(5);
    // The event stream: raft indexes strictly increase, and its kv changes are the same ones.
    const indexes = streamed.seen.map((e) => e.index);
    const backwards = indexes.findIndex((index, i) => i > 0 && index <= (indexes[i - 1] ?? 0));
    expect(
      backwards,
      `indexes around ${backwards}: ${indexes.slice(backwards - 3, backwards + 3).join(",")}, revisions ${streamed.seen
        .slice(backwards - 3, backwards + 3)
        .map((e) => e.kv?.modRevision)
        .join(",")}`,
    ).toBe(-1);
    expect(streamed.seen.map((e) => e.kv?.modRevision)).toEqual(revisions);
    // Every value written shows up once, in the order written.
    const order = watched.seen.map((e) => Number(e.entry?.valueText?.slice(1)));
    expect(new Set(order).size).toBe(order.length);
    expect(order.every((n, i) => i === 0 || n > (order[i - 1] ?? -1))).toBe(true);
    expect(new Set(order)).toEqual(new Set(Array.from({ length: total }, (_, i) => i)));
  }, 180_000);

  it("answers 410 GONE with the oldest index on a node that restored a snapshot; the client resumes on another node", async () => {
    const cluster = await startCluster(["--snapshot-every-entries", "20"]);
    const client = cluster.client();
    for (let i = 0; i < 60; i++) await client.put(`g/${i}`, "x");
    // Restart node 3: it restores its latest snapshot, so its history starts after it.
    await cluster.stop(3);
    cluster.start(3, "restart");
    await until(
      async () => ((await cluster.status(3))?.appliedIndex ?? 0) > 60 || undefined,
      "node 3 caught up",
      60_000,
    );
    const answer = await http(cluster.node(3).apiUrl, "GET", "/v1/events?from=1", {
      headers: { authorization: `Bearer ${cluster.token ?? ""}` },
    });
    expect(answer.status).toBe(410);
    expect((answer.body as { code: string; message: string }).code).toBe("GONE");
    expect((answer.body as { message: string }).message).toMatch(/resume from \d+/);
    // Through node 3 alone, the client gives up with GoneError; with all nodes, it still gets
    // everything from revision 1 from a node that kept it (nodes 1 and 2 never restarted).
    const only3 = cluster.client([3]);
    await expect(
      (async () => {
        for await (const event of only3.watch({ prefix: "g/", fromRevision: 1 })) return event;
        return undefined;
      })(),
    ).rejects.toBeInstanceOf(GoneError);
    const all = cluster.client([3, 1, 2]);
    const seen: number[] = [];
    for await (const event of all.watch({ prefix: "g/", fromRevision: 1 })) {
      seen.push(event.revision);
      if (seen.length === 60) break;
    }
    expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  }, 120_000);

  it("respect permissions: per topic, per watched prefix, and no stream without a credential", async () => {
    const cluster = await startCluster();
    const admin: BlixardClient = cluster.client();
    await admin.acl.putPolicy("viewer", {
      rules: [
        { resource: "task", access: "read" },
        { resource: "kv", access: "read", prefix: "app/" },
      ],
    });
    const { secret } = await admin.acl.createToken({ name: "viewer", policies: ["viewer"] });
    const url = cluster.node(2).apiUrl;
    // A linearizable read served by node 2 waits until it applied past the token's creation:
    // before that, node 2 does not know the token yet (401, not the 403 this test is about).
    await cluster.client([2]).get("sync");
    const as = (token?: string) => ({
      withoutCertificate: true,
      ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }),
    });
    // Refusals answer at once with JSON; granted streams open (their first line arrives).
    expect((await http(url, "GET", "/v1/events?topic=kv", as(secret))).status).toBe(403);
    expect((await http(url, "GET", "/v1/events", as(secret))).status).toBe(403);
    expect((await http(url, "GET", "/v1/kv/watch?prefix=other/", as(secret))).status).toBe(403);
    expect(await http(url, "GET", "/v1/events?topic=task", as())).toMatchObject({ status: 401 });
    const viewer = new BlixardClient({
      endpoints: [url],
      ca: cluster.pki.clientOptions.ca,
      token: secret,
    });
    const controller = new AbortController();
    const got: WatchEvent[] = [];
    const watching = (async () => {
      for await (const event of viewer.watch({ prefix: "app/", signal: controller.signal })) {
        got.push(event);
        controller.abort();
      }
    })();
    const tasks = viewer.events({ topics: ["task"], signal: controller.signal });
    await until(async () => {
      await admin.put("app/x", "1");
      return got.length > 0 ? true : undefined;
    }, "the viewer's watch to see app/x");
    await watching;
    await tasks.return(undefined);
    expect(got[0]).toMatchObject({ type: "put", key: "app/x" });
  }, 120_000);
  it("cuts off a consumer that does not read, and the node's memory stays bounded", async () => {
    const cluster = await startCluster();
    const client = cluster.client(undefined, { retries: 50 });
    const rssBytes = (): number => {
      const status = readFileSync(`/proc/${cluster.pid(2)}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    };
    // 6,000 entries of 8 KiB (48 MiB) over 8 keys: more than the 4,096 entries of lag allowed.
    const value = "v".repeat(8 * 1024);
    const writeBatch = async (): Promise<void> => {
      for (let n = 0; n < 6_000; n += 32) {
        await Promise.all(
          Array.from({ length: 32 }, (_, i) => client.put(`s/${(n + i) % 8}`, value)),
        );
      }
    };
    // Phase A, nobody watching: what the log, the store and the history cost.
    const startBytes = rssBytes();
    await writeBatch();
    const withoutConsumerBytes = rssBytes() - startBytes;
    // Phase B: the same writes with a consumer on node 2 that never reads.
    const url = new URL("/v1/events?topic=kv", cluster.node(2).apiUrl);
    let received = "";
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = httpsRequest(
        url,
        {
          ca: cluster.pki.clientOptions.ca,
          headers: { authorization: `Bearer ${cluster.token ?? ""}` },
        },
        resolve,
      );
      request.on("error", reject);
      request.end();
    });
    expect(response.statusCode).toBe(200);
    response.pause();
    const beforeBytes = rssBytes();
    await writeBatch();
    const withConsumerBytes = rssBytes() - beforeBytes;
    // A backlog kept for the consumer would be ~66 MiB of JSON (8 KiB values in base64) on top.
    expect(withConsumerBytes).toBeLessThan(withoutConsumerBytes + 32 * 1024 * 1024);
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => (received += chunk));
    response.resume();
    await new Promise((resolve) => response.once("close", resolve));
    // The node ended the stream: a consumer that reads again within the close grace gets the
    // "fell behind, resume from N" message; this one read nothing for seconds, so its
    // connection was closed and it never got most of the changes.
    const changes = received.split("event: change").length - 1;
    expect(changes).toBeLessThan(6_000);
    if (received.includes("event: error")) {
      expect(received).toMatch(/"code":"FELL_BEHIND".*resume from index \d+/);
    }
    const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
    console.log(
      `node 2 RSS growth per 6,000 × 8 KiB writes: ${mib(withoutConsumerBytes)} MiB without, ` +
        `${mib(withConsumerBytes)} MiB with a consumer that does not read`,
    );
  }, 180_000);
});
