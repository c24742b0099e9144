/**
 * The change feed and its SSE streams without a cluster: a real ClusterStateMachine applied
 * entry by entry through the feed's wrapper, and streams served by a plain HTTP server and read
 * by the client's SSE reader. Checks events per entry in log order, entity events after the
 * entry, bounds and 410 GONE, the reset on a restore, kv watch from a revision with progress,
 * and a slow consumer cut off with "resume from N" (from where nothing was skipped).
 */
import { Agent as HttpsAgent } from "node:https";
import { describe, expect, it } from "vitest";
import { httpServers } from "./http-servers.js";
import { GoneError } from "../../src/common/errors.js";
import { ChangeFeed } from "../../src/api/events/change-feed.js";
import { serveSseStream, type SseStreamOptions } from "../../src/api/events/sse-stream.js";
import { buildOpenApiDocument } from "../../src/api/openapi.js";
import { eventRoutes } from "../../src/api/routes/event-routes.js";
import { sseMessages, type SseMessage } from "../../src/client/sse.js";
import { watchStream, type WatchEvent } from "../../src/client/streams.js";
import {
  ClusterStateMachine,
  encodeOrchestratorCommand,
} from "../../src/statemachine/cluster/cluster-state-machine.js";
import { encodeKvCommand } from "../../src/statemachine/kv/command-codec.js";
import type { KvCommand } from "../../src/statemachine/kv/types.js";
import type { OrchestratorCommand } from "../../src/statemachine/orchestrator/commands.js";
import { encodeCommandEnvelope } from "../../src/statemachine/session/envelope.js";
import type { StateMachine } from "../../src/statemachine/state-machine.js";

const text = (value: string) => new TextEncoder().encode(value);

/** The data of a kv watch `change` message. */
interface ChangeData {
  readonly index: number;
  readonly revision: number;
  readonly events: readonly { readonly key: string; readonly kv: { modRevision: number } }[];
}

function cluster(
  options: { maxRecords?: number; maxBytes?: number; defer?: (callback: () => void) => void } = {},
) {
  const machine = new ClusterStateMachine();
  const feed = new ChangeFeed(machine, options);
  const wrapped: StateMachine<unknown> = feed.wrap(machine);
  let index = 0;
  const apply = (payload: Uint8Array) =>
    wrapped.apply({
      index: ++index,
      term: 1,
      data: encodeCommandEnvelope({ proposedAtMs: 1000, payload }),
    });
  return {
    machine,
    feed,
    wrapped,
    kv: (command: KvCommand) => apply(encodeKvCommand(command)),
    orchestrator: (command: OrchestratorCommand) => apply(encodeOrchestratorCommand(command)),
    skipTo: (next: number) => (index = next - 1),
  };
}

const spec = {
  command: "echo",
  args: ["hi"],
  env: {},
  cwd: "",
  shell: false,
  resources: { cpuMillis: 1000, memoryMb: 256, diskGb: 0 },
  requiredFeatures: [],
  timeoutMs: 0,
  maxAttempts: 2,
};

function eventsOf(feed: ChangeFeed, from: number) {
  const out: { index: number; json: string[] }[] = [];
  for (let seq = feed.seekIndex(from); ; seq++) {
    const record = feed.read(seq, feed.epoch);
    if (record === undefined) return out;
    out.push({ index: record.index, json: record.events.map((e) => e.json()) });
  }
}

describe("the change feed", () => {
  it("notifies its subscribers once per burst, through the defer it is given", () => {
    // The simulator hands in its clock's zero-delay event: its runs never yield to the event
    // loop, so a real setImmediate never fired there (the agent hub's waiters were not woken,
    // and each run's cluster stayed referenced by the pending immediate until the sweep ended).
    const deferred: (() => void)[] = [];
    const c = cluster({ defer: (callback) => deferred.push(callback) });
    let calls = 0;
    c.feed.subscribe(() => calls++);
    c.kv({ op: "put", key: "a", value: text("1") });
    c.kv({ op: "put", key: "b", value: text("2") });
    expect(calls).toBe(0);
    expect(deferred).toHaveLength(1);
    deferred.shift()?.();
    expect(calls).toBe(1);
    c.kv({ op: "put", key: "c", value: text("3") });
    expect(deferred).toHaveLength(1);
    deferred.shift()?.();
    expect(calls).toBe(2);
  });

  it("records each entry's changes under its raft index, entities as they stand after it", () => {
    const c = cluster();
    c.kv({ op: "put", key: "a", value: text("1") });
    c.kv({ op: "get", key: "a" }); // no change: no record
    c.kv({ op: "delete", key: "missing" }); // no change
    c.orchestrator({
      type: "registerWorker",
      nodeId: 1,
      capacity: { cpuMillis: 4000, memoryMb: 4096, diskGb: 10 },
      features: ["raw_exec"],
    });
    c.orchestrator({ type: "submitTask", id: "t1", spec });
    c.kv({ op: "delete", key: "a" });
    const records = eventsOf(c.feed, 1);
    expect(records.map((r) => r.index)).toEqual([1, 4, 5, 6]);
    const parsed = records.map((r) => r.json.map((j) => JSON.parse(j) as Record<string, unknown>));
    expect(parsed[0]).toEqual([expect.objectContaining({ topic: "kv", type: "put", key: "a" })]);
    expect(parsed[0]?.[0]?.["kv"]).toMatchObject({ value: "1", modRevision: 1, version: 1 });
    // Submitting places the task on the worker: the task and the worker's allocation change
    // in the same entry, each reported once, as they are after it.
    const submitted = parsed[2] ?? [];
    expect(submitted.map((e) => `${String(e["topic"])}:${String(e["key"])}`).sort()).toEqual([
      "task:t1",
      "worker:1",
    ]);
    const task = submitted.find((e) => e["topic"] === "task")?.["task"] as { status: string };
    expect(task.status).toBe("assigned");
    const worker = submitted.find((e) => e["topic"] === "worker")?.["worker"] as {
      allocated: { cpuMillis: number };
    };
    expect(worker.allocated.cpuMillis).toBe(1000);
    expect(parsed[3]).toEqual([
      expect.objectContaining({
        topic: "kv",
        type: "delete",
        key: "a",
        kv: { key: "a", modRevision: 2 },
      }),
    ]);
    // Resuming from an index in the middle starts at the first record at or after it.
    expect(eventsOf(c.feed, 2).map((r) => r.index)).toEqual([4, 5, 6]);
  });

  it("keeps a bounded history and answers GONE with the oldest index still kept", () => {
    const c = cluster({ maxRecords: 8 });
    for (let i = 0; i < 20; i++) c.kv({ op: "put", key: `k${i}`, value: text("v") });
    expect(c.feed.size.records).toBe(8);
    expect(c.feed.floorIndex).toBe(12);
    expect(() => c.feed.seekIndex(12)).toThrow(GoneError);
    try {
      c.feed.seekIndex(5);
    } catch (error) {
      expect((error as GoneError).oldest).toBe(13);
      expect((error as GoneError).message).toMatch(/resume from 13/);
    }
    expect(eventsOf(c.feed, 13).map((r) => r.index)).toEqual([13, 14, 15, 16, 17, 18, 19, 20]);
    // kv revisions: 20 puts, 12 of them dropped.
    expect(() => c.feed.seekRevision(12)).toThrow(GoneError);
    expect(c.feed.read(c.feed.seekRevision(13), c.feed.epoch)?.index).toBe(13);
  });

  it("bounds the history by bytes as well", () => {
    const c = cluster({ maxBytes: 64 * 1024 });
    for (let i = 0; i < 50; i++) c.kv({ op: "put", key: `k${i}`, value: new Uint8Array(8000) });
    expect(c.feed.size.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(c.feed.size.records).toBeGreaterThan(0);
    expect(c.feed.size.records).toBeLessThan(10);
  });

  it("starts over after a restore: old cursors are GONE, the floor is the snapshot's index", () => {
    const c = cluster();
    for (let i = 0; i < 5; i++) c.kv({ op: "put", key: `k${i}`, value: text("v") });
    const epoch = c.feed.epoch;
    const cursor = c.feed.seekIndex(1);
    const other = cluster();
    for (let i = 0; i < 9; i++) other.kv({ op: "put", key: `x${i}`, value: text("v") });
    c.wrapped.restore(other.machine.snapshot());
    c.skipTo(10);
    c.kv({ op: "put", key: "after", value: text("v") });
    expect(() => c.feed.read(cursor, epoch)).toThrow(GoneError);
    expect(c.feed.floorIndex).toBe(9);
    expect(c.feed.floorRevision).toBe(9);
    expect(eventsOf(c.feed, 10).map((r) => r.index)).toEqual([10]);
  });
});

describe("SSE streams over the feed", () => {
  const listen = httpServers();

  async function serve(options: (url: URL) => SseStreamOptions): Promise<URL> {
    return listen((request, response) =>
      serveSseStream(response, options(new URL(request.url ?? "/", "http://x"))),
    );
  }

  async function take(url: URL, path: string, count: number): Promise<SseMessage[]> {
    const controller = new AbortController();
    const out: SseMessage[] = [];
    for await (const message of sseMessages(url, path, {
      headers: {},
      signal: controller.signal,
      httpsAgent: new HttpsAgent(),
      connectTimeoutMs: 2000,
    })) {
      out.push(message);
      if (out.length === count) {
        controller.abort();
        break;
      }
    }
    return out;
  }

  it("sends the matching events of every entry since its last write as one message, then progress when caught up", async () => {
    const c = cluster();
    c.kv({ op: "put", key: "app/a", value: text("1") });
    c.kv({ op: "put", key: "other", value: text("2") });
    c.kv({ op: "put", key: "app/b", value: text("3") });
    const url = await serve(() => ({
      feed: c.feed,
      cursor: c.feed.seekRevision(1),
      mode: "watch",
      minRevision: 1,
      filter: (e) => e.topic === "kv" && e.key.startsWith("app/"),
      heartbeatMs: 20,
      node: () => ({ leader: 1, term: 2 }),
    }));
    const messages = await take(url, "/", 4);
    expect(messages.map((m) => m.event)).toEqual(["open", "change", "progress", "progress"]);
    // Like an etcd watch response: the id is the newest revision it carries.
    expect(messages[1]?.id).toBe("3");
    const change = JSON.parse(messages[1]?.data ?? "") as {
      index: number;
      revision: number;
      events: { key: string; kv: { modRevision: number } }[];
    };
    expect([change.index, change.revision]).toEqual([3, 3]);
    expect(change.events.map((e) => [e.key, e.kv.modRevision])).toEqual([
      ["app/a", 1],
      ["app/b", 3],
    ]);
    expect(JSON.parse(messages[2]?.data ?? "")).toEqual({
      index: 3,
      revision: 3,
      leader: 1,
      term: 2,
    });
  });

  it("gives watchers of one prefix the same changes, and one that starts inside an entry only what follows", async () => {
    const c = cluster();
    const url = await serve((request) => {
      const from = Number(request.searchParams.get("from") ?? "0");
      return {
        feed: c.feed,
        cursor: c.feed.seekRevision(from === 0 ? undefined : from),
        mode: "watch",
        minRevision: from,
        filter: (e) => e.topic === "kv" && e.key.startsWith("app/"),
        filterKey: "prefix:app/",
        node: () => ({ leader: 1, term: 1 }),
        // Each burst of entries its own message (not paced), to check what each stream reads.
        deliveryIntervalMs: 0,
      };
    });
    /** Opens a watch; resolves once it is served, with the keys of its next `count` changes. */
    const watch = async (path: string, count: number) => {
      const controller = new AbortController();
      const messages = sseMessages(url, path, {
        headers: {},
        signal: controller.signal,
        httpsAgent: new HttpsAgent(),
        connectTimeoutMs: 2000,
      });
      expect((await messages.next()).value?.event).toBe("open");
      // Wrapped: an async function's returned promise would be awaited with it.
      return {
        keys: (async () => {
          const keys: string[][] = [];
          for await (const message of messages) {
            if (message.event !== "change") continue;
            const data = JSON.parse(message.data) as { events: { key: string }[] };
            keys.push(data.events.map((e) => e.key));
            if (keys.length === count) break;
          }
          controller.abort();
          return keys;
        })(),
      };
    };
    // Subscribed in this order, so the streams from now encode before the one from revision 3
    // in the same turn: it must not take their bytes for the entry it starts inside.
    const fromNow = [await watch("/", 3), await watch("/", 3)];
    const fromThree = await watch("/?from=3", 3);
    // One entry, revisions 1 to 3.
    c.kv({
      op: "txn",
      compare: [],
      success: [
        { op: "put", key: "app/a", value: text("1") },
        { op: "put", key: "app/b", value: text("2") },
        { op: "put", key: "app/c", value: text("3") },
      ],
      failure: [],
    });
    await new Promise((resolve) => setImmediate(resolve));
    // Two entries applied in one turn: one message.
    c.kv({ op: "put", key: "app/d", value: text("4") });
    c.kv({ op: "put", key: "other", value: text("5") });
    c.kv({ op: "put", key: "app/e", value: text("6") });
    await new Promise((resolve) => setImmediate(resolve));
    c.kv({ op: "delete", key: "app/a" });
    expect(await fromThree.keys).toEqual([["app/c"], ["app/d", "app/e"], ["app/a"]]);
    for (const { keys } of fromNow) {
      expect(await keys).toEqual([["app/a", "app/b", "app/c"], ["app/d", "app/e"], ["app/a"]]);
    }
  });

  it("sends a UTF-8 value as `value` alone and other bytes as `valueBase64` alone; the client gives bytes and text", async () => {
    const c = cluster();
    const binary = new Uint8Array([0xff, 0x00, 0xc3, 0x28]);
    // A BOM and a character outside the BMP are text too, and must come back byte for byte.
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...text("x😀")]);
    c.kv({ op: "put", key: "app/text", value: text("héllo") });
    c.kv({ op: "put", key: "app/binary", value: binary });
    c.kv({ op: "put", key: "app/empty", value: new Uint8Array() });
    c.kv({ op: "put", key: "app/bom", value: bom });
    c.kv({ op: "delete", key: "app/text" });
    const url = await serve(() => ({
      feed: c.feed,
      cursor: c.feed.seekRevision(1),
      mode: "watch",
      minRevision: 1,
      filter: (e) => e.topic === "kv",
      node: () => ({ leader: 1, term: 1 }),
    }));
    const [, change] = await take(url, "/", 2);
    const data = JSON.parse(change?.data ?? "") as { events: { kv: Record<string, unknown> }[] };
    expect(data.events.map((e) => e.kv)).toEqual([
      { key: "app/text", value: "héllo", createRevision: 1, modRevision: 1, version: 1 },
      {
        key: "app/binary",
        valueBase64: Buffer.from(binary).toString("base64"),
        createRevision: 2,
        modRevision: 2,
        version: 1,
      },
      { key: "app/empty", value: "", createRevision: 3, modRevision: 3, version: 1 },
      { key: "app/bom", value: "\uFEFFx😀", createRevision: 4, modRevision: 4, version: 1 },
      { key: "app/text", modRevision: 5 },
    ]);

    const controller = new AbortController();
    const events: WatchEvent[] = [];
    for await (const event of watchStream(
      {
        endpoints: [url],
        headers: {},
        httpsAgent: new HttpsAgent(),
        connectTimeoutMs: 2000,
        backoffMs: 10,
      },
      { prefix: "app/", fromRevision: 1, signal: controller.signal },
    )) {
      events.push(event);
      if (events.length === 5) controller.abort();
    }
    expect(events.map((e) => [e.type, e.key, e.entry?.valueText])).toEqual([
      ["put", "app/text", "héllo"],
      ["put", "app/binary", undefined],
      ["put", "app/empty", ""],
      ["put", "app/bom", "\uFEFFx😀"],
      ["delete", "app/text", undefined],
    ]);
    expect(events.slice(0, 4).map((e) => [...(e.entry?.value ?? [])])).toEqual([
      [...text("héllo")],
      [...binary],
      [],
      [...bom],
    ]);
  });

  it("never resends entries below the requested index (a node replaying its log after a restart)", async () => {
    const c = cluster();
    for (let i = 0; i < 5; i++) c.kv({ op: "put", key: `k${i}`, value: text("v") });
    // A consumer resumes at index 9 on a node that has applied only up to 5 so far.
    const url = await serve(() => ({
      feed: c.feed,
      cursor: c.feed.seekIndex(9),
      mode: "events",
      minIndex: 9,
      filter: () => true,
      node: () => ({ leader: 1, term: 1 }),
    }));
    const taking = take(url, "/", 3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (let i = 5; i < 12; i++) c.kv({ op: "put", key: `k${i}`, value: text("v") });
    const messages = await taking;
    expect(messages.map((m) => [m.event, m.id])).toEqual([
      ["open", undefined],
      ["change", "9"],
      ["change", "10"],
    ]);
  });

  it("writes the body as bare messages ended by the connection, every put once and in order across paced writes", async () => {
    const c = cluster();
    const url = await serve(() => ({
      feed: c.feed,
      cursor: c.feed.seekRevision(undefined),
      mode: "watch",
      filter: (e) => e.topic === "kv" && e.key.startsWith("app/"),
      filterKey: "prefix:app/",
      node: () => ({ leader: 1, term: 1 }),
    }));
    // A raw connection, to see the framing the server writes.
    const { connect } = await import("node:net");
    const socket = connect(Number(url.port), "127.0.0.1");
    socket.write(`GET / HTTP/1.1\r\nhost: x\r\n\r\n`);
    let received = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (received += chunk));
    const until = async (done: () => boolean): Promise<void> => {
      while (!done()) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    await until(() => received.includes("event: open"));
    // 2,000 puts, 20 a turn with a timer between turns: many paced wake-ups, several batches each.
    const puts = 2_000;
    for (let i = 0; i < puts; i++) {
      c.kv({ op: "put", key: `app/${i % 7}`, value: text(`v${i}`) });
      if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await until(() => received.includes(`"modRevision":${puts},`));
    socket.destroy();
    const [head = "", body = ""] = received.split("\r\n\r\n", 2);
    // No chunked framing: the body is the messages' bytes, and the connection ends it.
    expect(head.toLowerCase()).not.toContain("transfer-encoding");
    expect(head.toLowerCase()).toContain("connection: close");
    expect(body.startsWith("event: open\n")).toBe(true);
    const changes = body
      .split("\n\n")
      .filter((block) => block.includes("event: change"))
      .map((block) => JSON.parse(block.split("data: ")[1] ?? "{}") as ChangeData);
    // Paced: fewer messages than puts, yet every put once, in revision order.
    expect(changes.length).toBeGreaterThan(1);
    expect(changes.length).toBeLessThan(puts);
    const revisions = changes.flatMap((change) => change.events.map((e) => e.kv.modRevision));
    expect(revisions).toEqual(Array.from({ length: puts }, (_, i) => i + 1));
  });

  it("cuts a consumer that does not read off, with where to resume", async () => {
    const c = cluster({ maxRecords: 5000 });
    const url = await serve(() => ({
      feed: c.feed,
      cursor: c.feed.seekIndex(undefined),
      mode: "events",
      filter: () => true,
      maxLagRecords: 500,
      node: () => ({ leader: 1, term: 1 }),
    }));
    // A client that connects and never reads: the socket fills, the stream stops writing.
    const { connect } = await import("node:net");
    const socket = connect(Number(url.port), "127.0.0.1");
    socket.write(`GET / HTTP/1.1\r\nhost: x\r\n\r\n`);
    socket.pause();
    await new Promise((resolve) => socket.once("connect", resolve));
    const value = new Uint8Array(4000);
    for (let i = 0; i < 3000; i++) {
      c.kv({ op: "put", key: `k${i}`, value });
      if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    // Now read everything the server sent: it ends with the cut-off.
    socket.resume();
    let received = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (received += chunk));
    await new Promise((resolve) => socket.once("close", resolve));
    const errorBlock = received.split("\n\n").find((b) => b.includes("event: error"));
    expect(errorBlock).toBeDefined();
    const data = JSON.parse(errorBlock?.split("data: ")[1] ?? "{}") as {
      code: string;
      resumeFrom: number;
      message: string;
    };
    expect(data.code).toBe("FELL_BEHIND");
    expect(data.message).toMatch(/resume from index \d+/);
    // Everything before resumeFrom was delivered, so resuming there skips nothing.
    const ids = [...received.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids.length).toBeGreaterThan(0);
    expect(data.resumeFrom).toBe((ids.at(-1) ?? 0) + 1);
    expect(() => c.feed.seekIndex(data.resumeFrom)).not.toThrow();
  });
});

describe("the streams' OpenAPI description", () => {
  it("gives a watch event's kv entry its value as text or as base64, never both", () => {
    const c = cluster();
    const routes = eventRoutes({ feed: c.feed, node: () => ({ leader: 1, term: 1 }) });
    const doc = buildOpenApiDocument(routes, { title: "t", version: "1" }) as {
      paths: Record<string, { get: { responses: Record<string, { content: object }> } }>;
    };
    for (const path of ["/v1/kv/watch", "/v1/events"]) {
      const content = doc.paths[path]?.get.responses["200"]?.content as Record<string, unknown>;
      expect(Object.keys(content), path).toEqual(["text/event-stream"]);
    }
    const watch = doc.paths["/v1/kv/watch"]?.get.responses["200"]?.content as {
      "text/event-stream": {
        "x-change-data": {
          properties: {
            events: { items: { anyOf: { properties: { kv: { anyOf: object[] } } }[] } };
          };
        };
      };
    };
    const put = watch["text/event-stream"]["x-change-data"].properties.events.items.anyOf[0];
    const entries = (put?.properties.kv.anyOf ?? []) as {
      required: string[];
      properties: object;
    }[];
    expect(
      entries.map((entry) => entry.required.filter((name) => name.startsWith("value"))),
    ).toEqual([["value"], ["valueBase64"]]);
    for (const entry of entries) {
      expect(Object.keys(entry.properties).filter((name) => name.startsWith("value"))).toHaveLength(
        1,
      );
    }
  });
});
