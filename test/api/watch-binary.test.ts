/**
 * The binary kv watch format (`common/watch-wire.ts`): a node writes it when asked, the client
 * reads the same events from it as from Server-Sent Events, and the frame reader survives any
 * cut of the byte stream and refuses broken frames.
 */
import { createServer, get as httpGet, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { httpServers } from "./http-servers.js";
import { ChangeFeed } from "../../src/api/events/change-feed.js";
import { serveSseStream, type SseStreamOptions } from "../../src/api/events/sse-stream.js";
import { eventRoutes } from "../../src/api/routes/event-routes.js";
import { StreamBody, type RequestContext } from "../../src/api/route.js";
import { watchBatchStream, watchStream, type WatchEvent } from "../../src/client/streams.js";
import {
  FrameReader,
  FrameSplitter,
  watchBatches,
  WATCH_ACCEPT,
} from "../../src/client/watch-binary.js";
import { WATCH_BINARY_MEDIA_TYPE } from "../../src/common/watch-wire.js";
import { ClusterStateMachine } from "../../src/statemachine/cluster/cluster-state-machine.js";
import { encodeKvCommand } from "../../src/statemachine/kv/command-codec.js";
import type { KvCommand } from "../../src/statemachine/kv/types.js";
import { encodeCommandEnvelope } from "../../src/statemachine/session/envelope.js";

const text = (value: string) => new TextEncoder().encode(value);

function kvFeed() {
  const machine = new ClusterStateMachine();
  const feed = new ChangeFeed(machine);
  const wrapped = feed.wrap(machine);
  let index = 0;
  return {
    feed,
    kv: (command: KvCommand) =>
      wrapped.apply({
        index: ++index,
        term: 1,
        data: encodeCommandEnvelope({ proposedAtMs: 1000, payload: encodeKvCommand(command) }),
      }),
  };
}

const binary = new Uint8Array([0xff, 0x00, 0xc3, 0x28]);
// A BOM and a character outside the BMP are text too, and must come back byte for byte.
const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...text("x😀")]);

/** A feed with puts of text, bytes, nothing and a BOM, then a delete (revisions 1 to 5). */
function mixedFeed() {
  const c = kvFeed();
  c.kv({ op: "put", key: "app/text", value: text("héllo") });
  c.kv({ op: "put", key: "app/binary", value: binary });
  c.kv({ op: "put", key: "app/empty", value: new Uint8Array() });
  c.kv({ op: "put", key: "app/bom", value: bom });
  c.kv({ op: "delete", key: "app/text" });
  return c;
}

/** A feed of `count` puts of `bytes`-byte values under app/ (revisions 1 to count). */
function putFeed(count: number, bytes: number) {
  const c = kvFeed();
  for (let n = 1; n <= count; n++) {
    c.kv({ op: "put", key: `app/${n % 97}`, value: text(String(n).padEnd(bytes, "v")) });
  }
  return c;
}

/** The stream options of a kv watch of `feed` from revision 1 (SSE unless `format`). */
function kvWatch(feed: ChangeFeed, more: Partial<SseStreamOptions> = {}): SseStreamOptions {
  return {
    feed,
    cursor: feed.seekRevision(1),
    mode: "watch",
    minRevision: 1,
    filter: (e) => e.topic === "kv",
    node: () => ({ leader: 1, term: 1 }),
    ...more,
  };
}

describe("the binary kv watch", () => {
  const listen = httpServers();

  const transport = (url: URL) => ({
    endpoints: [url],
    headers: {},
    httpsAgent: new HttpsAgent(),
    connectTimeoutMs: 2000,
    backoffMs: 10,
  });

  async function collect(url: URL, count: number): Promise<WatchEvent[]> {
    const controller = new AbortController();
    const events: WatchEvent[] = [];
    for await (const event of watchStream(transport(url), {
      prefix: "app/",
      fromRevision: 1,
      signal: controller.signal,
    })) {
      events.push(event);
      if (events.length === count) controller.abort();
    }
    return events;
  }

  const summary = (events: readonly WatchEvent[]) =>
    events.map((e) => [
      e.type,
      e.key,
      e.revision,
      e.entry === undefined ? undefined : [...e.entry.value],
      e.entry?.valueText,
      e.entry?.createRevision,
      e.entry?.version,
    ]);

  it("gives the client the same events, values byte for byte, as Server-Sent Events do", async () => {
    const c = mixedFeed();
    const served = (format: "sse" | "binary") => kvWatch(c.feed, { format });
    const sse = await listen((_, response) => serveSseStream(response, served("sse")));
    const bin = await listen((_, response) => serveSseStream(response, served("binary")));

    const viaSse = await collect(sse, 5);
    const viaBinary = await collect(bin, 5);

    expect(summary(viaBinary)).toEqual([
      ["put", "app/text", 1, [...text("héllo")], "héllo", 1, 1],
      ["put", "app/binary", 2, [...binary], undefined, 2, 1],
      ["put", "app/empty", 3, [], "", 3, 1],
      ["put", "app/bom", 4, [...bom], "\uFEFFx😀", 4, 1],
      ["delete", "app/text", 5, undefined, undefined, undefined, undefined],
    ]);
    expect(summary(viaBinary)).toEqual(summary(viaSse));
    // The text is decoded lazily, yet shows when the entry is serialized.
    expect(JSON.parse(JSON.stringify(viaBinary[0]?.entry))).toMatchObject({
      key: "app/text",
      valueText: "héllo",
      modRevision: 1,
    });
  });

  it("gives watchBatches the events of each message as one array, in order, over either format", async () => {
    for (const format of ["sse", "binary"] as const) {
      const c = mixedFeed();
      const url = await listen((_, response) =>
        serveSseStream(response, kvWatch(c.feed, { format })),
      );
      const controller = new AbortController();
      const batches: string[][] = [];
      for await (const batch of watchBatchStream(transport(url), {
        prefix: "app/",
        fromRevision: 1,
        signal: controller.signal,
      })) {
        batches.push(batch.map((e) => `${e.type} ${e.key} ${e.revision}`));
        if (batches.length === 1) c.kv({ op: "put", key: "app/later", value: text("x") });
        else controller.abort();
      }
      // The five changes already applied come in one message; the put after, in the next.
      expect(batches, format).toEqual([
        [
          "put app/text 1",
          "put app/binary 2",
          "put app/empty 3",
          "put app/bom 4",
          "delete app/text 5",
        ],
        ["put app/later 6"],
      ]);
    }
  });

  it("sends frames: open, one change with every matching event and the newest revision, then progress", async () => {
    const c = mixedFeed();
    const url = await listen((_, response) =>
      serveSseStream(response, {
        feed: c.feed,
        cursor: c.feed.seekRevision(2),
        mode: "watch",
        format: "binary",
        minRevision: 2,
        filter: (e) => e.topic === "kv" && e.key !== "app/empty",
        heartbeatMs: 20,
        node: () => ({ leader: 1, term: 2 }),
      }),
    );
    const controller = new AbortController();
    const messages = [];
    for await (const batch of await watchBatches(url, "/", {
      headers: {},
      signal: controller.signal,
      httpsAgent: new HttpsAgent(),
      connectTimeoutMs: 2000,
    })) {
      messages.push(...batch);
      if (messages.length >= 3) controller.abort();
    }
    expect(messages.slice(0, 3).map((m) => m.event)).toEqual(["open", "change", "progress"]);
    expect(messages[1]?.data).toEqual({ index: 5, revision: 5 });
    expect(messages[1]?.events?.map((e) => [e.type, e.key])).toEqual([
      ["put", "app/binary"],
      ["put", "app/bom"],
      ["delete", "app/text"],
    ]);
    expect(messages[2]?.data).toEqual({ index: 5, revision: 5, leader: 1, term: 2 });
  });

  it("is what the watch route writes when the request accepts it, and SSE otherwise", async () => {
    const c = mixedFeed();
    const route = eventRoutes({ feed: c.feed, node: () => ({ leader: 1, term: 1 }) }).find(
      (r) => r.url === "/v1/kv/watch",
    );
    const url = await listen((request, response) => {
      const context = {
        params: {},
        query: { prefix: "app/", fromRevision: "1" },
        body: undefined,
        headers: request.headers,
        session: undefined,
        identity: undefined,
      } as unknown as RequestContext;
      const body = route?.handler(context) as StreamBody;
      body.start(response);
    });
    const contentType = async (accept: string | undefined) => {
      const response = await fetch(url, accept === undefined ? {} : { headers: { accept } });
      const type = response.headers.get("content-type");
      await response.body?.cancel();
      return type;
    };

    expect(await contentType(WATCH_ACCEPT)).toBe(WATCH_BINARY_MEDIA_TYPE);
    expect(await contentType("text/event-stream")).toMatch(/^text\/event-stream/);
    expect(await contentType(undefined)).toMatch(/^text\/event-stream/);
    // The client reads the route's binary answer.
    expect(summary(await collect(url, 5)).map((e) => e.slice(0, 3))).toEqual([
      ["put", "app/text", 1],
      ["put", "app/binary", 2],
      ["put", "app/empty", 3],
      ["put", "app/bom", 4],
      ["delete", "app/text", 5],
    ]);
  });

  it("delivers every event once and in order when connections drop inside frames, resuming from the last revision", async () => {
    const total = 3000;
    const c = putFeed(total, 200);
    const froms: (string | null)[] = [];
    const url = await listen((request, response) => {
      const from = new URL(request.url ?? "/", "http://x").searchParams.get("fromRevision");
      froms.push(from);
      const socket = request.socket;
      // The first three connections are cut inside a frame, after some 40 KB of the body.
      if (froms.length <= 3) {
        let written = 0;
        const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
        socket.write = ((chunk: Buffer) => {
          if (written > 40_000) {
            write(chunk.subarray(0, Math.floor(chunk.length / 2)));
            socket.destroy();
            return false;
          }
          written += chunk.length;
          return write(chunk);
        }) as typeof socket.write;
      }
      serveSseStream(
        response,
        kvWatch(c.feed, {
          format: "binary",
          cursor: c.feed.seekRevision(Number(from)),
          minRevision: Number(from),
        }),
      );
    });
    const events = await collect(url, total);
    expect(events.map((e) => e.revision)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    // Each value is its own put's (a view of the right bytes of the right frame).
    expect(events.every((e) => e.entry?.valueText?.startsWith(`${e.revision}v`))).toBe(true);
    // It did reconnect, each time from just after the last revision it had delivered.
    expect(froms.length).toBeGreaterThanOrEqual(4);
    expect(froms[0]).toBe("1");
    expect(Number(froms[1])).toBeGreaterThan(1);
  });

  it("gives a consumer slower than the stream every event once and in order (the reader pauses, then resumes)", async () => {
    const total = 4_000;
    // 12 MB: far more than the reader queues before it stops reading.
    const c = putFeed(total, 3000);
    let refused = 0;
    const url = await listen((request, response) => {
      const socket = request.socket;
      const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
      socket.write = ((chunk: Buffer) => {
        const more = write(chunk);
        if (!more) refused++;
        return more;
      }) as typeof socket.write;
      serveSseStream(response, kvWatch(c.feed, { format: "binary" }));
    });
    const controller = new AbortController();
    const revisions: number[] = [];
    for await (const batch of watchBatchStream(transport(url), {
      prefix: "app/",
      fromRevision: 1,
      signal: controller.signal,
    })) {
      for (const event of batch) revisions.push(event.revision);
      // Slow: a few turns of the event loop per batch, while the node keeps writing.
      for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
      if (revisions.length >= total) controller.abort();
    }
    expect(revisions).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    // The reader stopped reading while its consumer lagged, so the node's socket filled up (the
    // node then waits for it to drain; a watcher that stays behind is cut off, not buffered for).
    expect(refused).toBeGreaterThan(0);
  });

  it("hands out watch() events one at a time in order even when next() is called before the last one settled", async () => {
    const c = mixedFeed();
    const url = await listen((_, response) =>
      serveSseStream(response, kvWatch(c.feed, { format: "binary" })),
    );
    const controller = new AbortController();
    const events = watchStream(transport(url), {
      prefix: "app/",
      fromRevision: 1,
      signal: controller.signal,
    });
    // Five calls at once: the first waits for the frame, the others must wait their turn.
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => events.next()));
    expect(results.map((r) => (r.done === true ? undefined : r.value.revision))).toEqual([
      1, 2, 3, 4, 5,
    ]);
    c.kv({ op: "put", key: "app/later", value: text("x") });
    const later = await events.next();
    expect(later.done === true ? undefined : [later.value.key, later.value.revision]).toEqual([
      "app/later",
      6,
    ]);
    // return() ends it (and closes its connection): nothing more comes.
    expect(await events.return(undefined)).toEqual({ done: true, value: undefined });
    expect(await events.next()).toEqual({ done: true, value: undefined });
    controller.abort();
  });

  it("gives each value as a plain Uint8Array view of the frame", async () => {
    const c = mixedFeed();
    const url = await listen((_, response) =>
      serveSseStream(response, kvWatch(c.feed, { format: "binary" })),
    );
    const [first] = await collect(url, 1);
    const value = first?.entry?.value as Uint8Array;
    expect(Object.getPrototypeOf(value)).toBe(Uint8Array.prototype);
    expect(Buffer.from(value).toString()).toBe("héllo");
  });

  it("reads a client's watch from a node that answers only Server-Sent Events (an older release)", async () => {
    const c = mixedFeed();
    let accepted: string | undefined;
    const url = await listen((request, response) => {
      accepted = request.headers.accept;
      serveSseStream(response, kvWatch(c.feed));
    });
    const events = await collect(url, 5);
    expect(accepted).toBe(WATCH_ACCEPT);
    expect(events.map((e) => [e.type, e.key, e.entry?.valueText])).toEqual([
      ["put", "app/text", "héllo"],
      ["put", "app/binary", undefined],
      ["put", "app/empty", ""],
      ["put", "app/bom", "\uFEFFx😀"],
      ["delete", "app/text", undefined],
    ]);
  });
});

describe("the binary watch's reader of a response", () => {
  const listen = httpServers();

  it("stops reading past its bound while the consumer does not ask, then gives every event once and in order", async () => {
    const c = putFeed(2000, 1000); // ~2 MB of frames, the reader holds 64 KiB
    const url = await listen((_, response) =>
      serveSseStream(response, kvWatch(c.feed, { format: "binary" })),
    );
    const controller = new AbortController();
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = httpGet(url, { signal: controller.signal }, resolve);
      request.on("error", reject);
    });
    const reader = new FrameReader(response, url, controller.signal);
    // Nobody asks yet: after each read, is the response paused, or did it end anyway?
    const outcome = await new Promise<string>((resolve) => {
      let received = 0;
      response.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (response.isPaused()) resolve("paused");
        else if (received > 1024 * 1024) resolve("read over 1 MiB");
      });
    });
    expect(outcome).toBe("paused");
    const revisions: number[] = [];
    while (revisions.length < 2000) {
      const step = await reader.next();
      if (step.done === true) break;
      for (const message of step.value)
        for (const e of message.events ?? []) revisions.push(e.revision);
    }
    expect(revisions).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    await reader.return();
    controller.abort();
  });
});

describe("the binary watch frame reader", () => {
  /** The bytes a node writes for the mixed feed: open, one change, a progress. */
  async function streamBytes(): Promise<Buffer> {
    const c = mixedFeed();
    const server = createServer((_, response) =>
      serveSseStream(response, kvWatch(c.feed, { format: "binary", heartbeatMs: 10 })),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const response = await fetch(`http://127.0.0.1:${port}/`);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let bytes = Buffer.alloc(0);
      // open (5 + 27 bytes) + change + progress: read until a progress frame's JSON is in.
      while (!bytes.includes(Buffer.from('"term"'))) {
        const { value, done } = await reader.read();
        if (done) break;
        bytes = Buffer.concat([bytes, value]);
      }
      await reader.cancel();
      return bytes;
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  it("decodes the same messages whatever byte the stream is cut at", async () => {
    const bytes = await streamBytes();
    const whole = new FrameSplitter().push(bytes);
    expect(whole.map((m) => m.event)).toEqual(["open", "change", "progress"]);
    const keys = (messages: ReturnType<FrameSplitter["push"]>) =>
      JSON.stringify(
        messages.map((m) => [
          m.event,
          m.data,
          m.events?.map((e) => [e.type, e.key, e.revision, [...(e.entry?.value ?? [])]]),
        ]),
      );
    for (let cut = 1; cut < bytes.length; cut++) {
      const splitter = new FrameSplitter();
      const messages = [
        ...splitter.push(bytes.subarray(0, cut)),
        ...splitter.push(bytes.subarray(cut)),
      ];
      expect(keys(messages), `cut at ${cut}`).toBe(keys(whole));
    }
  });

  it("refuses a frame longer than the bound, an event cut short and an unknown op; skips an unknown kind", async () => {
    const bytes = await streamBytes();
    const huge = Buffer.alloc(5);
    huge.writeUInt32LE(0xffffffff, 0);
    expect(() => new FrameSplitter().push(huge)).toThrow(/a watch frame of 4294967295 bytes/);

    // The change frame (after the open frame) with its event count raised by one.
    const openLength = bytes.readUInt32LE(0) + 4;
    const changeLength = bytes.readUInt32LE(openLength) + 4;
    const change = Buffer.from(bytes.subarray(openLength, openLength + changeLength));
    const countAt = 4 + 1 + 24;
    change.writeUInt32LE(change.readUInt32LE(countAt) + 1, countAt);
    expect(() => new FrameSplitter().push(change)).toThrow(/cut inside an event/);

    const badOp = Buffer.from(bytes.subarray(openLength, openLength + changeLength));
    badOp.writeUInt8(9, countAt + 4);
    expect(() => new FrameSplitter().push(badOp)).toThrow(/unknown op 9/);

    const unknownKind = Buffer.from([2, 0, 0, 0, 99, 0]);
    expect(new FrameSplitter().push(unknownKind)).toEqual([]);
  });
});
